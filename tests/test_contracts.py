"""Every interface has an async twin of identical signature; built-ins pass conformance."""

from __future__ import annotations

import inspect

import pytest

from storefront_sdk import (
    BM25Retriever,
    Catalog,
    FusionRanker,
    HistoryThemeGenerator,
    Judge,
    KeywordGenerator,
    LexicalRelevanceFilter,
    PopularityRanker,
    Ranker,
    RelevanceFilter,
    Retriever,
    StaticThemeGenerator,
    TaxonomyKeywordGenerator,
    ThemeGenerator,
)
from storefront_sdk.testing import (
    ConformanceError,
    check_keyword_generator,
    check_ranker,
    check_relevance_filter,
    check_retriever,
    check_theme_generator,
)

PAIRS = [
    (ThemeGenerator, "generate"),
    (KeywordGenerator, "generate"),
    (Retriever, "retrieve"),
    (RelevanceFilter, "score"),
    (Ranker, "rank"),
    (Judge, "judge"),
]


@pytest.mark.parametrize(("cls", "method"), PAIRS)
def test_async_twin_has_identical_signature(cls: type, method: str) -> None:
    sync = inspect.signature(getattr(cls, method))
    twin = getattr(cls, "a" + method)
    assert inspect.iscoroutinefunction(twin)
    assert inspect.signature(twin).parameters == sync.parameters
    assert inspect.signature(twin).return_annotation == sync.return_annotation


def test_builtins_pass_conformance(demo_catalog: Catalog) -> None:
    check_retriever(BM25Retriever(demo_catalog), demo_catalog)
    check_relevance_filter(LexicalRelevanceFilter(demo_catalog), demo_catalog)
    check_ranker(PopularityRanker(), demo_catalog)
    check_ranker(FusionRanker(), demo_catalog)
    check_ranker(
        FusionRanker(user_model=lambda user, products: [len(p.title) for p in products]),
        demo_catalog,
    )
    check_theme_generator(HistoryThemeGenerator(demo_catalog), demo_catalog)
    check_theme_generator(StaticThemeGenerator(), demo_catalog)
    check_keyword_generator(TaxonomyKeywordGenerator(), demo_catalog)


def test_conformance_checks_catch_broken_components(demo_catalog: Catalog) -> None:
    class Unsorted(Ranker):
        def rank(self, user, theme, candidates):  # type: ignore[no-untyped-def]
            return [sp.with_scores(rank_score=float(i)) for i, sp in enumerate(candidates)]

    class Leaky(KeywordGenerator):
        def generate(self, theme, taxonomy, user, n):  # type: ignore[no-untyped-def]
            return ["not-a-keyword-xyz"][:n]

    with pytest.raises(ConformanceError, match="sort by rank_score"):
        check_ranker(Unsorted(), demo_catalog)
    with pytest.raises(ConformanceError, match="outside the taxonomy"):
        check_keyword_generator(Leaky(), demo_catalog)


def test_fusion_ranker_ranks_interleaved_users_by_their_own_history(demo_catalog: Catalog) -> None:
    # build_many interleaves the placements of several pages: each user's ranking must use
    # that user's purchase affinity, exactly as a fresh ranker computes it.
    from storefront_sdk import Interaction, Theme, UserContext
    from storefront_sdk.types import ScoredProduct

    products = list(demo_catalog)[:12]
    candidates = [ScoredProduct(product=p, retrieval_score=1.0) for p in products]
    users = [
        UserContext(
            user_id=f"u{k}",
            history=[Interaction(product_id=p.id) for p in products[k * 4 : k * 4 + 4]] * 3,
        )
        for k in range(3)
    ]
    theme = Theme(title="Anything")
    ranker = FusionRanker()
    for _ in range(2):
        for user in users:
            got = [sp.product.id for sp in ranker.rank(user, theme, candidates)]
            fresh = [sp.product.id for sp in FusionRanker().rank(user, theme, candidates)]
            assert got == fresh
            assert set(got[:4]) == {p.id for p in products[int(user.user_id[1]) * 4 :][:4]}
