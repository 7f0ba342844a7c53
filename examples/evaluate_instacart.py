"""Evaluate storefront configurations on the Instacart users, side by side.

    python examples/evaluate_instacart.py --instacart-dir ../shared/data/instacart
    python examples/evaluate_instacart.py --configs static,history,local --users 10

Prints the metrics table, P-T@k under a stricter, independent judge, and the
acceptance checks (personalised recall >= 1.5x static; P-T@5 >= 0.9; >= 95% of
placements dense enough); writes report.json and report.html to --out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from storefront_sdk import Catalog, LexicalRelevanceFilter
from storefront_sdk.evaluation import (
    evaluate,
    history_popularity,
    load_instacart_users,
    nanmean,
    precision_on_theme,
    standard_configs,
)


def check(what: str, value: float, minimum: float, shown: str) -> None:
    print(f"  {what} = {shown}   (>= {minimum}: {'PASS' if value >= minimum else 'FAIL'})")


def main() -> None:
    default_dir = os.environ.get("STOREFRONT_INSTACART_DIR", "../shared/data/instacart")
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--instacart-dir", type=Path, default=Path(default_dir))
    ap.add_argument("--configs", default="static,history")
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--out", type=Path, default=Path("eval-report"))
    args = ap.parse_args()
    names = args.configs.split(",")

    # 1. The catalog, and one eval case per user: history -> next order.
    catalog = Catalog.from_instacart(args.instacart_dir)
    cases = load_instacart_users(args.instacart_dir, catalog)[: args.users]
    # Popularity from the histories only (never the targets), shared by every configuration.
    catalog = catalog.with_popularity(history_popularity(cases))

    # 2. Build, judge and measure every page under every configuration.
    configs = standard_configs(catalog, names)
    report = evaluate(cases, configs, keep_pages=len(cases))
    print(report.table())

    # 3. The default judge uses the storefront's own filter, so P-T@k is close to 1 by
    #    construction. Re-judge the kept pages with a stricter lexical filter that does not
    #    vouch for whole aisles: an independent look at whether products match their themes.
    strict = LexicalRelevanceFilter(catalog, category_match=0.0)
    print("\nP-T@k, strict lexical judge (text similarity only, no aisle match):")
    for name in names:
        pages = report.sample_pages[name]
        pt = {k: nanmean(precision_on_theme(p, strict, k=k) for p in pages) for k in (5, 20)}
        print(f"  {name:<10} P-T@5 {pt[5]:.3f}  P-T@20 {pt[20]:.3f}")

    # 4. Acceptance checks.
    default = "local" if "local" in names else names[-1]
    print(f"\nacceptance ({len(cases)} users; default storefront = {default!r}):")
    if "static" in names and "history" in names:
        ratio = report.ratio("recall", "history", "static")
        check("history recall / static recall", ratio, 1.5, f"{ratio:.2f}x")
    pt5 = report.metrics[default]["P-T@5"]
    check(f"P-T@5 ({default}, HeuristicJudge)", pt5, 0.9, f"{pt5:.3f}")
    dense = report.metrics[default]["density"]
    check("placements meeting min density", dense, 0.95, f"{dense:.1%}")

    report.sample_pages = {name: pages[:3] for name, pages in report.sample_pages.items()}
    report.to_json(args.out / "report.json")
    try:
        from storefront_sdk.render import render_report_html

        (args.out / "report.html").write_text(render_report_html(report), encoding="utf-8")
    except ImportError:
        pass
    print(f"\nwrote {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
