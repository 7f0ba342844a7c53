"""Keyword shortlist quality and cost: lexical (TF-IDF) vs semantic (MiniLM) vs fused (RRF).

On the labelled grocery themes in ``tests/data/shortlist_themes.txt`` (written
against the demo catalog's taxonomy), prints recall@16 and recall@100 of each
shortlist mode (the lexical one is the baseline), the first-use cost of
embedding the taxonomy, the load-from-disk cost, and the per-theme shortlist
latency. Usage: ``python benchmarks/bench_shortlist.py [--store-dir DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from storefront_sdk import Catalog
from storefront_sdk.embeddings import EmbeddingStore, LocalEmbedder
from storefront_sdk.taxonomy import KeywordTaxonomy

THEMES = Path(__file__).resolve().parents[1] / "tests" / "data" / "shortlist_themes.txt"


def load_themes(
    taxonomy: KeywordTaxonomy, path: Path = THEMES
) -> list[tuple[str, str, list[str], list[str]]]:
    """``(kind, title, concepts, expected)``; ``kw?`` entries count only when in the taxonomy."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4:
            raise ValueError(f"{path}:{n}: expected 4 '|'-separated fields, got {len(parts)}")
        kind, title, concepts, expected = parts
        exp: list[str] = []
        for kw in (k.strip() for k in expected.split(";")):
            optional = kw.endswith("?")
            kw = kw.rstrip("?")
            if kw in taxonomy:
                exp.append(kw)
            elif not optional:
                raise ValueError(f"{path}:{n}: expected keyword {kw!r} is not in the taxonomy")
        concept_list = [c.strip() for c in concepts.split(";") if c.strip()]
        out.append((kind, title, concept_list, exp))
    return out


def recall(
    taxonomy: KeywordTaxonomy,
    themes: list[tuple[str, str, list[str], list[str]]],
    k: int,
    mode: str,
) -> float:
    hits = total = 0
    for _, title, concepts, expected in themes:
        got = set(taxonomy.shortlist([title, *concepts], k=k, mode=mode))  # type: ignore[arg-type]
        hits += sum(kw in got for kw in expected)
        total += len(expected)
    return hits / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store-dir", type=Path, default=None)
    args = ap.parse_args()
    store_dir = args.store_dir or Path(tempfile.mkdtemp(prefix="sf-emb-"))

    t0 = time.perf_counter()
    embedder = LocalEmbedder()
    tax = KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(
        embedder, store=EmbeddingStore(store_dir)
    )
    tax.warm_up()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    tax2 = KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(
        LocalEmbedder(), store=EmbeddingStore(store_dir)
    )
    tax2.keyword_vectors()
    load = time.perf_counter() - t0
    print(f"demo taxonomy: {len(tax)} keywords")
    print(
        f"first use (load model + embed + store): {first:.1f} s; second process load: {load:.3f} s"
    )

    themes = load_themes(tax)
    n_exp = sum(len(t[3]) for t in themes)
    print(f"labelled themes: {len(themes)}, expected keywords: {n_exp}")
    print(f"{'mode':10s} {'recall@16':>10s} {'recall@100':>11s}")
    for mode in ("lexical", "semantic", "fused"):
        print(
            f"{mode:10s} {recall(tax, themes, 16, mode):10.3f} "
            f"{recall(tax, themes, 100, mode):11.3f}"
        )
    kinds = sorted({t[0] for t in themes})
    for kind in kinds:
        sub = [t for t in themes if t[0] == kind]
        print(
            f"  {kind:10s} n={len(sub):3d} lexical@16 {recall(tax, sub, 16, 'lexical'):.3f} "
            f"fused@16 {recall(tax, sub, 16, 'fused'):.3f} "
            f"fused@100 {recall(tax, sub, 100, 'fused'):.3f}"
        )

    # per-theme latency, cold (concepts not yet embedded) and memoised
    fresh = KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(
        LocalEmbedder(), store=EmbeddingStore(store_dir)
    )
    fresh.warm_up()
    lat: dict[str, list[float]] = {"lexical": [], "fused": []}
    for mode in lat:
        for _, title, concepts, _ in themes:
            t0 = time.perf_counter()
            fresh.shortlist([title, *concepts], k=100, mode=mode)  # type: ignore[arg-type]
            lat[mode].append((time.perf_counter() - t0) * 1000)
    for mode, xs in lat.items():
        print(
            f"shortlist latency {mode:8s} first call per theme: "
            f"median {statistics.median(xs):.1f} ms"
        )


if __name__ == "__main__":
    main()
