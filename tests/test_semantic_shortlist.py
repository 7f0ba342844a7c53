"""The semantic and fused keyword shortlists on the labelled grocery themes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from storefront_sdk import Catalog
from storefront_sdk.embeddings import EmbeddingStore, LocalEmbedder
from storefront_sdk.generation.taxonomy_keywords import TaxonomyKeywordGenerator
from storefront_sdk.taxonomy import KeywordTaxonomy
from storefront_sdk.types import Theme, UserContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_shortlist import load_themes, recall

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LocalEmbedder.available(), reason="embed extra not installed"),
]


@pytest.fixture(scope="module")
def tax(tmp_path_factory: pytest.TempPathFactory) -> KeywordTaxonomy:
    from storefront_sdk.embeddings import default_embedder

    store = EmbeddingStore(tmp_path_factory.mktemp("emb"))
    return KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(
        default_embedder(), store=store
    )


def test_labelled_set_is_large_and_valid(tax: KeywordTaxonomy) -> None:
    themes = load_themes(tax)
    assert len(themes) >= 100
    assert {t[0] for t in themes} >= {"occasion", "diet", "cuisine", "household"}


def test_fused_beats_lexical_on_the_labelled_themes(tax: KeywordTaxonomy) -> None:
    themes = load_themes(tax)
    assert recall(tax, themes, 16, "fused") > recall(tax, themes, 16, "lexical")
    assert recall(tax, themes, 100, "fused") > recall(tax, themes, 100, "lexical")


def test_issue_examples(tax: KeywordTaxonomy) -> None:
    taco = tax.shortlist(["Taco Tuesday", "tacos", "salsa"], k=100)
    assert "tortillas" in taco
    movie = tax.shortlist(["Movie night", "snacks for film"], k=16)
    assert "chips pretzels" in movie
    assert "baby formula" not in movie and "infant formula" not in movie
    brunch = tax.shortlist(["Weekend brunch"], k=16)
    assert "toothbrush" not in brunch


def test_modes_and_vectors_come_from_the_store(tax: KeywordTaxonomy, tmp_path: Path) -> None:
    assert tax.shortlist(["popcorn"], k=5, mode="lexical") != tax.shortlist(
        ["Movie night"], k=5, mode="semantic"
    )
    vecs = tax.keyword_vectors()
    assert vecs.shape == (len(tax), 384)
    again = KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(
        tax.embedder, store=tax._store
    )
    assert again.keyword_vectors().filename is not None  # type: ignore[union-attr]


def test_the_taxonomy_baseline_uses_the_semantic_shortlist(tax: KeywordTaxonomy) -> None:
    theme = Theme(title="Movie night", concepts=["snacks for film"], source="custom")
    kws = TaxonomyKeywordGenerator().generate(theme, tax, UserContext(user_id="u"), 6)
    assert kws and not any("formula" in k for k in kws)


@pytest.mark.instacart
def test_movie_night_finds_popcorn_on_instacart(instacart_catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from storefront_sdk.embeddings import default_embedder

    big = KeywordTaxonomy.from_catalog(instacart_catalog)
    kws = [k for k in big if "popcorn" in k or "formula" in k]
    small = KeywordTaxonomy([*kws, "chips", "candy", "soda", "baby food", "diapers"])
    small.use_embedder(default_embedder(), store=False)
    top = small.shortlist(["Movie night", "snacks for film"], k=5)
    assert any("popcorn" in k for k in top)
    assert not any("formula" in k for k in top)
