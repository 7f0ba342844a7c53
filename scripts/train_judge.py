"""Train the evaluation judge's relevance model on human labels, and check it on others.

    python scripts/train_judge.py [--labels ../shared/data/homedepot/relevance_dev.csv]
                                  [--out storefront_sdk/data/judge_relevance.json]

The labels are Home Depot search judgements (query, product title, relevance
1-3); relevant = relevance >= 2.5. The queries are split in two halves at random
(seeded): the model is trained on the pairs of one half and its ROC AUC and
agreement (accuracy of "relevant" at probability 0.5) are measured on the other,
so no query of the check was seen in training. Both figures are printed and
stored in the model file beside the trees.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

from storefront_sdk.evaluation.judge_relevance import (
    FEATURES,
    FORMAT,
    PairFeatures,
    TreeEnsemble,
    export_trees,
)

REPO = Path(__file__).resolve().parents[1]


def load_labels(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    queries: list[str] = []
    titles: list[str] = []
    grades: list[float] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for col in ("query", "product_title", "relevance"):
            if col not in (reader.fieldnames or []):
                sys.exit(f"{path}: row 1: missing column {col!r}")
        for row_no, row in enumerate(reader, start=2):
            try:
                grades.append(float(row["relevance"]))
            except ValueError:
                sys.exit(f"{path}: row {row_no}: relevance: not a number: {row['relevance']!r}")
            queries.append(row["query"])
            titles.append(row["product_title"])
    return queries, titles, np.asarray(grades) >= 2.5


def query_split(queries: list[str], seed: int) -> np.ndarray:
    """True for pairs whose query falls in the training half."""
    unique = sorted(set(queries))
    random.Random(seed).shuffle(unique)
    train = set(unique[: len(unique) // 2])
    return np.asarray([q in train for q in queries])


def main(argv: list[str] | None = None) -> int:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--labels", type=Path, default=REPO.parent / "shared/data/homedepot/relevance_dev.csv"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "storefront_sdk/data/judge_relevance.json"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trees", type=int, default=200)
    args = parser.parse_args(argv)

    queries, titles, y = load_labels(args.labels)
    train = query_split(queries, args.seed)
    start = time.perf_counter()
    x = PairFeatures(titles)(queries, titles)
    print(
        f"{len(queries)} pairs, {len(set(queries))} queries, features in "
        f"{time.perf_counter() - start:.1f} s"
    )
    model = HistGradientBoostingClassifier(
        max_iter=args.trees, learning_rate=0.05, max_leaf_nodes=15, random_state=args.seed
    ).fit(x[train], y[train])
    data = export_trees(model)
    ensemble = TreeEnsemble(data["baseline"], data["trees"])
    p = ensemble.predict_proba(x[~train])
    ref = model.predict_proba(x[~train])[:, 1]
    if not np.allclose(p, ref, atol=1e-9):
        sys.exit("the exported trees disagree with scikit-learn: not writing the model")
    auc = float(roc_auc_score(y[~train], p))
    agreement = float(np.mean((p >= 0.5) == y[~train]))
    base = float(np.mean(y[~train]))
    print(f"held-out queries: {int((~train).sum())} pairs, {base:.1%} relevant")
    print(
        f"  ROC AUC {auc:.4f}   agreement {agreement:.4f} "
        f"(majority class {max(base, 1 - base):.4f})"
    )
    out = {
        "format": FORMAT,
        "features": list(FEATURES),
        "trained_on": f"{args.labels.name}: queries of one half (seed {args.seed}), "
        "relevant = relevance >= 2.5",
        "n_train_pairs": int(train.sum()),
        "heldout": {
            "pairs": int((~train).sum()),
            "roc_auc": round(auc, 4),
            "agreement": round(agreement, 4),
            "relevant_share": round(base, 4),
        },
        "model": f"HistGradientBoostingClassifier(max_iter={args.trees}, learning_rate=0.05, "
        "max_leaf_nodes=15)",
        "baseline": data["baseline"],
        "trees": [
            {
                k: ([round(v, 6) for v in vals] if k in ("threshold", "value") else vals)
                for k, vals in tree.items()
            }
            for tree in data["trees"]
        ],
    }
    args.out.write_text(json.dumps(out, separators=(",", ":")), encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
