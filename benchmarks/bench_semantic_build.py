"""Warm ``build()`` latency with the semantic layer vs without, on Instacart users 1..N.

Variants (baselines, ``llm=None``, 8 placements x 20 products), timed interleaved
after a warm-up pass: the lexical storefront (``embedder=None``, the baseline) and
the default storefront, which has the semantic layer when the embed extra is
installed -- the taxonomy's fused shortlist (its keyword vectors loaded from the
embedding store; ``storefront embed --catalog DIR`` computes them once) and
:class:`EmbeddingDuplicateGate` beside the default gates. Prints the median, p95
and the per-stage time of each.

Usage: ``python benchmarks/bench_semantic_build.py [--instacart-dir DIR] [--users N]
[--store-dir DIR] [--passes P]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import bench_builds, default_instacart_dir, load_users

from storefront_sdk import Catalog, Storefront, StorefrontConfig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--instacart-dir", type=Path, default=default_instacart_dir())
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--store-dir", type=Path, default=None)
    args = ap.parse_args()
    catalog = Catalog.from_instacart(args.instacart_dir)
    catalog, users = load_users(args.instacart_dir, catalog, args.users)
    config = StorefrontConfig(num_placements=8, products_per_placement=20)
    if args.store_dir is not None:
        os.environ["STOREFRONT_EMBEDDINGS_DIR"] = str(args.store_dir)
    semantic = Storefront(catalog, llm=None, config=config)
    if semantic.embedder is None:
        print(semantic.semantic_reason)
        return 1
    t0 = time.perf_counter()
    semantic.warm_up()
    print(
        f"semantic storefront ready ({len(semantic.taxonomy)} keyword vectors from the store) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    variants = {
        "lexical (embedder=None)": Storefront(catalog, llm=None, config=config, embedder=None),
        "semantic (default)": semantic,
    }
    res = bench_builds(variants, users, args.passes)
    print(f"warm build(), {len(users)} users x {args.passes} passes")
    for name, r in res.items():
        print(
            f"  {name:32s} median {r['median']:6.2f} ms  p95 {r['p95']:6.2f} ms  "
            f"placements {r['placements']:.1f}"
        )
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(r["stages"].items())[:5])
        print(f"    per build, ms: {top}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
