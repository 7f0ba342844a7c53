"""Warm ``build()`` latency with the semantic layer vs without, on Instacart users 1..N.

Variants (baselines, ``llm=None``, 8 placements x 20 products), timed interleaved
after a warm-up pass: the lexical storefront (the baseline) and the same with the
semantic layer -- the taxonomy's fused shortlist (its keyword vectors loaded from
the embedding store; ``storefront embed --catalog DIR`` computes them once) and
:class:`EmbeddingDuplicateGate` beside the default gates.

Usage: ``python benchmarks/bench_semantic_build.py [--instacart-dir DIR] [--users N]
[--store-dir DIR] [--passes P]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import bench_builds, default_instacart_dir, load_users

from storefront_sdk import Catalog, Storefront, StorefrontConfig
from storefront_sdk.embeddings import EmbeddingStore, default_embedder
from storefront_sdk.filtering import EmbeddingDuplicateGate, default_gates
from storefront_sdk.taxonomy import KeywordTaxonomy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--instacart-dir", type=Path, default=default_instacart_dir())
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--store-dir", type=Path, default=None)
    args = ap.parse_args()
    emb = default_embedder()
    if emb is None:
        print("the embed extra is not installed")
        return 1
    catalog = Catalog.from_instacart(args.instacart_dir)
    catalog, users = load_users(args.instacart_dir, catalog, args.users)
    config = StorefrontConfig(num_placements=8, products_per_placement=20)
    t0 = time.perf_counter()
    tax = KeywordTaxonomy.from_catalog(catalog).use_embedder(
        emb, store=EmbeddingStore(args.store_dir)
    )
    tax.warm_up()
    print(f"semantic taxonomy ready ({len(tax)} keywords) in {time.perf_counter() - t0:.1f} s")
    variants = {
        "lexical storefront (baseline)": Storefront(catalog, llm=None, config=config),
        "semantic storefront": Storefront(
            catalog,
            llm=None,
            config=config,
            taxonomy=tax,
            gates=[*default_gates(), EmbeddingDuplicateGate(emb)],
        ),
    }
    res = bench_builds(variants, users, args.passes)
    print(f"warm build(), {len(users)} users x {args.passes} passes")
    for name, r in res.items():
        print(
            f"  {name:32s} median {r['median']:6.2f} ms  p95 {r['p95']:6.2f} ms  "
            f"placements {r['placements']:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
