"""Evaluate storefront configurations on the Instacart users, beside the simple references.

    python examples/evaluate_instacart.py --instacart-dir ../shared/data/instacart
    python examples/evaluate_instacart.py --configs history,local --users 10

Prints the metrics table (the references popular and buy_again first, at the
same counts as each page), then issue 10's acceptance checks for the first
configuration: next-basket recall >= buy_again's, discovery recall >= popular's,
>= 95% of placements dense enough. P-T@k comes from the default judge, a
relevance model trained on human labels (not the pipeline's filter). Writes
report.json and report.html to --out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from storefront_sdk import Catalog
from storefront_sdk.evaluation import (
    evaluate,
    history_popularity,
    load_instacart_users,
    standard_configs,
)


def check(what: str, value: float, reference: float) -> None:
    verdict = "PASS" if value >= reference else "FAIL"
    print(f"  {what:<44} {value:.3f}  vs {reference:.3f}   {verdict}")


def main() -> None:
    default_dir = os.environ.get("STOREFRONT_INSTACART_DIR", "../shared/data/instacart")
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--instacart-dir", type=Path, default=Path(default_dir))
    ap.add_argument("--configs", default="history")
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--out", type=Path, default=Path("eval-report"))
    args = ap.parse_args()
    names = args.configs.split(",")

    # 1. The catalog, and one eval case per user: history -> next order.
    catalog = Catalog.from_instacart(args.instacart_dir)
    cases = load_instacart_users(args.instacart_dir, catalog)[: args.users]
    # Popularity from the histories only (never the targets), shared by every configuration
    # and by the references.
    catalog = catalog.with_popularity(history_popularity(cases))

    # 2. Build, judge and measure every page; popular and buy_again at the same counts.
    configs = standard_configs(catalog, names)
    report = evaluate(cases, configs)
    print(report.table())

    # 3. Acceptance: the first configuration against the references, at equal counts.
    name = names[0]
    mine = report.metrics[name]
    print(f"\nacceptance ({len(cases)} users, {name!r}):")
    check("next-basket recall vs buy_again", mine["recall"], mine["ref:buy_again:recall"])
    check(
        "discovery recall vs popular (page's unseen count)",
        mine["discovery_recall"],
        mine["ref:popular:discovery_recall"],
    )
    check("placements meeting min density vs 95%", mine["density"], 0.95)

    report.to_json(args.out / "report.json")
    try:
        from storefront_sdk.render import render_report_html

        (args.out / "report.html").write_text(render_report_html(report), encoding="utf-8")
    except ImportError:
        pass
    print(f"\nwrote {args.out / 'report.json'}")


if __name__ == "__main__":
    main()
