"""Shared fixtures: the demo catalog and, when present, the real Instacart data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def instacart_path() -> Path:
    """``$STOREFRONT_INSTACART_DIR`` or ``../shared/data/instacart`` beside the repo."""
    env = os.environ.get("STOREFRONT_INSTACART_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "instacart"


@pytest.fixture(scope="session")
def instacart_dir() -> Path:
    path = instacart_path()
    if not (path / "products.csv").exists():
        pytest.skip(f"Instacart data not found at {path}")
    return path


@pytest.fixture(scope="session")
def instacart_catalog(instacart_dir: Path):  # type: ignore[no-untyped-def]
    from storefront_sdk import Catalog

    return Catalog.from_instacart(instacart_dir)


@pytest.fixture(scope="session")
def demo_catalog():  # type: ignore[no-untyped-def]
    from storefront_sdk import Catalog

    return Catalog.demo()


@pytest.fixture(scope="session")
def semantic_demo_taxonomy(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The demo catalog's taxonomy with the default embedder (vectors in a temp store)."""
    from storefront_sdk import Catalog
    from storefront_sdk.embeddings import EmbeddingStore, default_embedder
    from storefront_sdk.taxonomy import KeywordTaxonomy

    embedder = default_embedder()
    if embedder is None:
        pytest.skip("embed extra not installed")
    store = EmbeddingStore(tmp_path_factory.mktemp("emb"))
    return KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(embedder, store=store)
