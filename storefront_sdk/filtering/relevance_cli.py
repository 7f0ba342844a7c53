"""``storefront relevance fit|eval``: train and evaluate a relevance filter on your labels.

The CSV needs a ``query`` (or ``theme``) column, a ``product_title`` (or ``title``)
column and a ``relevance`` (or ``label``) column; a pair counts as relevant when its
value is at least ``--relevant-at`` (default 0.5: 0/1 labels; 2.5 for 1-3 grades).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ..types import Product, Theme

__all__ = ["load_labels", "register"]


def load_labels(
    path: str | Path, relevant_at: float = 0.5
) -> tuple[list[tuple[Theme, Product]], list[int], list[float], list[str]]:
    """``(pairs, labels, grades, queries)`` from a labelled CSV; errors name the row and field."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        q_col = next((c for c in ("query", "theme") if c in cols), None)
        t_col = next((c for c in ("product_title", "title") if c in cols), None)
        y_col = next((c for c in ("relevance", "label") if c in cols), None)
        missing = [
            n
            for n, c in (
                ("query/theme", q_col),
                ("product_title/title", t_col),
                ("relevance/label", y_col),
            )
            if c is None
        ]
        if missing:
            raise ConfigurationError(
                f"{path}: missing column(s) {', '.join(missing)}; found {cols}"
            )
        assert q_col and t_col and y_col
        themes: dict[str, Theme] = {}
        pairs: list[tuple[Theme, Product]] = []
        labels: list[int] = []
        grades: list[float] = []
        queries: list[str] = []
        for n, row in enumerate(reader, start=2):
            q, title, raw = (
                (row.get(q_col) or "").strip(),
                (row.get(t_col) or "").strip(),
                row.get(y_col),
            )
            if not q or not title:
                raise ConfigurationError(f"{path}:{n}: empty {q_col if not q else t_col}")
            try:
                grade = float(raw or "")
            except ValueError:
                raise ConfigurationError(f"{path}:{n}: {y_col} {raw!r} is not a number") from None
            theme = themes.setdefault(q, Theme(title=q[:120], description=q))
            pid = (row.get("product_id") or "").strip() or f"row{n}"
            pairs.append((theme, Product(id=pid, title=title)))
            grades.append(grade)
            labels.append(int(grade >= relevant_at))
            queries.append(q)
    if len(set(labels)) < 2:
        raise ConfigurationError(f"{path}: needs both relevant and irrelevant pairs")
    return pairs, labels, grades, queries


def _embedder(args: argparse.Namespace) -> Any:
    if not args.embed:
        return None
    from ..embeddings import default_embedder

    emb = default_embedder()
    if emb is None:
        raise ConfigurationError("--embed needs the embed extra")
    return emb


def _cmd_fit(args: argparse.Namespace) -> int:
    from .trainable import TrainableRelevanceFilter

    pairs, labels, _, _ = load_labels(args.csv, args.relevant_at)
    flt = TrainableRelevanceFilter(embedder=_embedder(args)).fit(pairs, labels)
    flt.save(args.output)
    print(f"fitted on {len(pairs)} pairs; saved to {args.output}")
    for name, c in flt.coefficients.items():
        print(f"  {name:22s} {c:+.3f}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    from .trainable import TrainableRelevanceFilter

    pairs, labels, _, queries = load_labels(args.csv, args.relevant_at)
    y = np.array(labels)
    scores = np.zeros(len(pairs))
    if args.model:
        flt = TrainableRelevanceFilter.load(args.model, embedder=_embedder(args))
        for i, (theme, product) in enumerate(pairs):
            scores[i] = flt.score(theme, [product])[0]
        how = f"model {args.model}"
    else:
        ids: dict[str, int] = {}
        groups = np.array([ids.setdefault(q, len(ids)) for q in queries])
        folds = min(args.folds, len(set(queries)))
        for train, test in GroupKFold(n_splits=folds).split(scores, y, groups):
            flt = TrainableRelevanceFilter(embedder=_embedder(args))
            flt.fit([pairs[i] for i in train], y[train])
            for i in test:
                scores[i] = flt.score(pairs[i][0], [pairs[i][1]])[0]
        how = f"{folds}-fold query-disjoint cross-validation"
    print(f"{len(pairs)} pairs, {len(set(queries))} queries ({how})")
    print(f"ROC AUC {roc_auc_score(y, scores):.3f}")
    for th in (0.3, 0.5, 0.7):
        keep = scores >= th
        prec = float(y[keep].mean()) if keep.any() else float("nan")
        print(f"threshold {th:.1f}: precision {prec:.3f} recall {float(keep[y == 1].mean()):.3f}")
    return 0


def register(sub: Any) -> argparse.ArgumentParser:
    """Add ``relevance fit`` and ``relevance eval`` to the ``storefront`` CLI."""
    p: argparse.ArgumentParser = sub.add_parser(
        "relevance", help="train / evaluate a relevance filter on labelled pairs"
    )
    rs = p.add_subparsers(dest="relevance_command", metavar="ACTION")
    rs.required = True
    for name, func, helptext in (
        ("fit", _cmd_fit, "fit TrainableRelevanceFilter on a labelled CSV and save it"),
        ("eval", _cmd_eval, "ROC AUC of a saved model, or query-disjoint cross-validation"),
    ):
        a = rs.add_parser(name, help=helptext, description=__doc__)
        a.add_argument(
            "--csv", required=True, help="labelled pairs (query, product_title, relevance)"
        )
        a.add_argument("--relevant-at", type=float, default=0.5, help="relevant when >= this")
        a.add_argument("--embed", action="store_true", help="add the embedding-cosine feature")
        if name == "fit":
            a.add_argument("--output", "-o", required=True, help="where to save the model (JSON)")
        else:
            a.add_argument("--model", help="a saved model (default: cross-validate a new one)")
            a.add_argument("--folds", type=int, default=5)
        a.set_defaults(func=func)
    return p
