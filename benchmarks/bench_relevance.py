"""Relevance filters on human labels: lexical vs trainable vs embedding vs fused.

Home Depot search relevance labels (query, product title, grade 1-3); a pair is
relevant when grade >= 2.5. Query-disjoint cross-validation (``GroupKFold`` by
query, 5 folds): every model is fitted on four folds' queries and scored on the
fifth's, so no query is seen in training. Prints ROC AUC (pooled out-of-fold
scores), mean nDCG@5 per query (graded), and a threshold sweep of the fused
scorer. The lexical baselines need no training: ``LexicalRelevanceFilter`` (the
storefront default) and a scikit-learn character TF-IDF cosine.

``fused`` = ``TrainableRelevanceFilter(embedder=...)``: the trainable filter's
lexical features plus the embedding cosine in one calibrated logistic
regression, fitted on the training folds only.

Usage: ``python benchmarks/bench_relevance.py [--csv PATH] [--queries N] [--store-dir DIR]``
(``--queries``: a seeded sample of queries, all of their pairs; 0 = all, the default; the
embeddings of the sample's titles are computed once and kept in the store).
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import numpy as np

from storefront_sdk import Catalog
from storefront_sdk.embeddings import EmbeddingStore, default_embedder, progress_bar
from storefront_sdk.filtering import LexicalRelevanceFilter, TrainableRelevanceFilter
from storefront_sdk.types import Product, Theme

DEFAULT_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "homedepot" / "relevance_dev.csv"
)


def load(path: Path, n_queries: int, seed: int) -> list[dict[str, str]]:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    if n_queries:
        qs = list(dict.fromkeys(r["query"] for r in rows))
        random.Random(seed).shuffle(qs)
        keep = set(qs[:n_queries])
        rows = [r for r in rows if r["query"] in keep]
    return rows


def ndcg5(queries: list[str], grades: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import ndcg_score

    by_q: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        by_q.setdefault(q, []).append(i)
    vals = [ndcg_score([grades[idx]], [scores[idx]], k=5) for idx in by_q.values() if len(idx) > 1]
    return float(np.mean(vals))


def main() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--queries", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store-dir", type=Path, default=None)
    args = ap.parse_args()
    rows = load(args.csv, args.queries, args.seed)
    queries = [r["query"] for r in rows]
    titles = [r["product_title"] for r in rows]
    grades = np.array([float(r["relevance"]) for r in rows])
    y = (grades >= 2.5).astype(int)
    print(f"{len(rows)} pairs, {len(set(queries))} queries, {y.mean():.2f} relevant")

    themes = {q: Theme(title=q[:120]) for q in set(queries)}
    products = [Product(id=f"{r['product_id']}", title=r["product_title"]) for r in rows]
    pairs = [(themes[q], p) for q, p in zip(queries, products, strict=True)]

    # embedding cosine (MiniLM), computed once per distinct text and stored
    emb = default_embedder()
    if emb is None:
        raise SystemExit("the embed extra is not installed")
    store = EmbeddingStore(args.store_dir) if args.store_dir else EmbeddingStore()
    t0 = time.perf_counter()
    uq, ut = sorted(set(queries)), sorted(set(titles))
    qv = store.get_or_compute("hd-queries", uq, emb, progress=progress_bar("queries"))
    tv = store.get_or_compute("hd-titles", ut, emb, progress=progress_bar("titles"))
    qi = {q: i for i, q in enumerate(uq)}
    ti = {t: i for i, t in enumerate(ut)}
    cosine = np.array([float(qv[qi[q]] @ tv[ti[t]]) for q, t in zip(queries, titles, strict=True)])
    print(f"embeddings: {time.perf_counter() - t0:.1f} s")
    emb.remember(uq, qv)
    emb.remember(ut, tv)

    # lexical baselines (no training)
    catalog = Catalog(list({p.id: p for p in products}.values()), name="homedepot")
    lex = LexicalRelevanceFilter(catalog)
    lexical = np.zeros(len(rows))
    for q, th in themes.items():
        idx = [i for i, qq in enumerate(queries) if qq == q]
        lexical[idx] = lex.score(th, [products[i] for i in idx])
    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    m = tfidf.fit_transform([*titles, *uq])
    tq = m[len(titles) :]
    char = np.asarray(m[: len(titles)].multiply(tq[[qi[q] for q in queries]]).sum(axis=1)).ravel()

    trainable = np.zeros(len(rows))
    fused = np.zeros(len(rows))
    groups = np.array([qi[q] for q in queries])
    for train, test in GroupKFold(n_splits=5).split(np.zeros(len(rows)), y, groups):
        for out, embedder in ((trainable, None), (fused, emb)):
            flt = TrainableRelevanceFilter(catalog=catalog, embedder=embedder)
            flt.fit([pairs[i] for i in train], y[train])
            by_theme: dict[str, list[int]] = {}
            for i in test:
                by_theme.setdefault(queries[i], []).append(int(i))
            for q, idx in by_theme.items():
                out[idx] = flt.score(themes[q], [products[i] for i in idx])

    print(f"\n{'filter':28s} {'ROC AUC':>8s} {'nDCG@5':>8s}")
    for name, s in (
        ("lexical (default filter)", lexical),
        ("char TF-IDF cosine", char),
        ("trainable (lexical LR)", trainable),
        ("embedding cosine (MiniLM)", cosine),
        ("fused: trainable + embedding", fused),
    ):
        print(f"{name:28s} {roc_auc_score(y, s):8.3f} {ndcg5(queries, grades, s):8.3f}")

    print("\nthreshold sweep (fused, out-of-fold): threshold precision recall kept")
    for th in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        keep = fused >= th
        prec = float(y[keep].mean()) if keep.any() else float("nan")
        rec = float(keep[y == 1].mean())
        print(f"  {th:.1f} {prec:.3f} {rec:.3f} {keep.mean():.3f}")


if __name__ == "__main__":
    main()
