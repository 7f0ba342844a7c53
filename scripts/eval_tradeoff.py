"""Relevance versus discovery: sweep the history page's ``discovery`` knob on Instacart users.

    python scripts/eval_tradeoff.py [--instacart-dir ../shared/data/instacart]
                                    [--out docs/img/eval-tradeoff.png]

For each value of ``HistoryThemeGenerator(discovery=...)`` it builds every
user's page and prints next-basket recall and discovery recall beside the
``popular`` and ``buy_again`` references at the same counts, for users 1-30,
31-40 (held out while the defaults were chosen) and all; then plots the
trade-off (needs matplotlib, the ``[eval]`` extra).
"""

from __future__ import annotations

import argparse
import io
import warnings
from pathlib import Path

from storefront_sdk import Catalog, HistoryThemeGenerator, Storefront
from storefront_sdk.evaluation import (
    HeuristicJudge,
    evaluate,
    history_popularity,
    load_instacart_users,
)

REPO = Path(__file__).resolve().parents[1]
KNOB = (0.0, 0.25, 0.5, 0.75, 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instacart-dir", type=Path, default=REPO.parent / "shared/data/instacart")
    parser.add_argument("--out", type=Path, default=REPO / "docs/img/eval-tradeoff.png")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", UserWarning)
    catalog = Catalog.from_instacart(args.instacart_dir)
    cases = load_instacart_users(args.instacart_dir, catalog)
    catalog = catalog.with_popularity(history_popularity(cases))
    judge = HeuristicJudge(catalog=catalog)  # only recall figures are used here
    rows = []
    print(
        f"{'discovery':>9} {'users':>6} {'recall':>7} {'buy_again':>9} "
        f"{'discovery':>9} {'popular':>8} {'unseen':>7}"
    )
    for knob in KNOB:
        sf = Storefront(
            catalog,
            llm=None,
            cache=None,
            theme_generator=HistoryThemeGenerator(catalog, discovery=knob),
        )
        for label, part in (("1-30", cases[:30]), ("31-40", cases[30:]), ("1-40", cases)):
            r = evaluate(part, {"history": sf}, judge=judge, progress=io.StringIO())
            h, b, p = (r.metrics[c] for c in ("history", "buy_again", "popular"))
            rows.append((knob, label, h, b, p))
            print(
                f"{knob:9.2f} {label:>6} {h['recall']:7.3f} {b['recall']:9.3f} "
                f"{h['discovery_recall']:9.3f} {p['discovery_recall']:8.3f} {h['unseen']:7.1f}"
            )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install 'storefront-sdk[eval]'): no plot")
        return 0
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, marker in (("1-30", "o"), ("31-40", "s"), ("1-40", "D")):
        pts = [(h["recall"], h["discovery_recall"], k) for k, lab, h, _, _ in rows if lab == label]
        ax.plot(
            [x for x, _, _ in pts], [y for _, y, _ in pts], marker=marker, label=f"users {label}"
        )
        if label == "1-40":
            for x, y, k in pts:
                ax.annotate(
                    f"discovery={k:g}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
            b = next(b for k, lab, _, b, _ in rows if lab == "1-40" and k == 0.25)
            p = next(p for k, lab, _, _, p in rows if lab == "1-40" and k == 0.25)
            ax.scatter(
                [b["recall"]],
                [b["discovery_recall"]],
                marker="x",
                color="black",
                label="buy_again (users 1-40)",
            )
            ax.scatter(
                [p["recall"]],
                [p["discovery_recall"]],
                marker="+",
                color="grey",
                label="popular (users 1-40)",
            )
    ax.set_xlabel("next-basket recall (page's product count)")
    ax.set_ylabel("discovery recall (page's unseen count)")
    ax.set_title("Storefront(catalog, llm=None): the discovery knob")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
