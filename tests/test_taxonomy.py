from __future__ import annotations

import pytest

from storefront_sdk import Catalog, ConfigurationError, KeywordTaxonomy
from storefront_sdk.text import normalize, tokenize


def test_taxonomy_from_catalog_holds_aisles_and_title_phrases(demo_catalog: Catalog) -> None:
    tax = KeywordTaxonomy.from_catalog(demo_catalog)
    assert len(tax) > 200
    for aisle in demo_catalog.aisles:
        assert aisle in tax
    assert "Not A Real Keyword Zzz" not in tax
    aisle = demo_catalog.aisles[0]
    assert tax.canonical(aisle.upper()) == normalize(aisle)
    assert tax.canonical("Not A Real Keyword Zzz") is None


def test_shortlist_ranks_by_similarity_and_stays_closed(demo_catalog: Catalog) -> None:
    tax = KeywordTaxonomy.from_catalog(demo_catalog)
    short = tax.shortlist(["pasta night", "spaghetti", "tomato sauce"], k=50)
    assert 0 < len(short) <= 50
    assert all(kw in tax for kw in short)
    assert len(set(short)) == len(short)
    top = " ".join(short[:10])
    assert "pasta" in top or "spaghetti" in top or "sauce" in top
    assert tax.shortlist(["qqqq zzzz"], k=10) == []  # nothing similar: nothing offered


def test_exact_members_come_first() -> None:
    tax = KeywordTaxonomy(["milk", "oat milk", "eggs", "bread"])
    assert tax.shortlist(["eggs", "milk"], k=3)[:2] == ["eggs", "milk"]
    assert tax.version == KeywordTaxonomy(["milk", "oat milk", "eggs", "bread"]).version


def test_empty_taxonomy_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        KeywordTaxonomy(["", "  ", "the"])


def test_tokenize_folds_plurals() -> None:
    assert tokenize("Organic Strawberries & Eggs") == ["organic", "strawberry", "egg"]
