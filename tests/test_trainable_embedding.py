"""TrainableRelevanceFilter with the embedding-cosine feature: fit, score, save, load."""

from __future__ import annotations

from pathlib import Path

import pytest

from storefront_sdk import Catalog, ConfigurationError, Theme
from storefront_sdk.embeddings import LocalEmbedder, default_embedder
from storefront_sdk.filtering.trainable import (
    EMBEDDING_FEATURE,
    FEATURE_NAMES,
    TrainableRelevanceFilter,
    aisle_themes,
    weak_labels,
)
from storefront_sdk.testing import check_relevance_filter

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LocalEmbedder.available(), reason="embed extra not installed"),
]


@pytest.fixture(scope="module")
def fitted(demo_catalog: Catalog) -> TrainableRelevanceFilter:
    themes = aisle_themes(demo_catalog, per_aisle=1)[::3]
    pairs, labels = weak_labels(demo_catalog, themes, seed=0)
    flt = TrainableRelevanceFilter(catalog=demo_catalog, embedder=default_embedder())
    return flt.fit(pairs, labels)


def test_the_embedding_feature_is_learned(fitted: TrainableRelevanceFilter) -> None:
    assert fitted.feature_names == (*FEATURE_NAMES, EMBEDDING_FEATURE)
    assert EMBEDDING_FEATURE in fitted.coefficients


def test_contract_and_round_trip(
    fitted: TrainableRelevanceFilter, demo_catalog: Catalog, tmp_path: Path
) -> None:
    check_relevance_filter(fitted, demo_catalog)
    path = tmp_path / "f.json"
    fitted.save(path)
    with pytest.raises(ConfigurationError, match="embedding_model"):
        TrainableRelevanceFilter.load(path)
    loaded = TrainableRelevanceFilter.load(path, embedder=default_embedder())
    theme = Theme(title="Movie night", concepts=["popcorn", "snacks"])
    products = list(demo_catalog)[::40]
    assert loaded.score(theme, products) == pytest.approx(fitted.score(theme, products))
