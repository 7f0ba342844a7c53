"""The orchestrator, used the way a recsys engineer would: real catalog, real users."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storefront_sdk import (
    Candidate,
    Catalog,
    ConfigurationError,
    HistoryThemeGenerator,
    Interaction,
    KeywordGenerator,
    KeywordTaxonomy,
    Page,
    PopularityRanker,
    Product,
    Ranker,
    RelevanceFilter,
    RetrievalQuery,
    Retriever,
    ScoredProduct,
    StaticThemeGenerator,
    Storefront,
    StorefrontConfig,
    Theme,
    ThemeGenerator,
    UserContext,
)
from storefront_sdk.demo import demo_user, demo_users


@pytest.fixture(scope="module")
def sf(demo_catalog: Catalog) -> Storefront:
    return Storefront(demo_catalog, llm=None).warm_up()


def test_page_shape_for_a_returning_user(sf: Storefront) -> None:
    page = sf.build(demo_user("demo-1"))
    assert isinstance(page, Page)
    assert page.user_id == "demo-1"
    assert len(page.placements) >= 6
    titles = [pl.theme.title for pl in page.placements]
    assert len(set(titles)) == len(titles)
    for pl in page.placements:
        assert sf.config.min_products <= len(pl.products) <= sf.config.products_per_placement
        assert pl.source in ("history", "static", "fallback")
        scores = [sp.score for sp in pl.products]
        assert scores == sorted(scores, reverse=True)
    assert page.placements[0].theme.title == "Buy it again"
    bought = {it.product_id for it in demo_user("demo-1").history}
    assert set(page.placements[0].product_ids) <= bought


def test_products_appear_once_per_page_and_keywords_are_in_the_taxonomy(sf: Storefront) -> None:
    for user in demo_users():
        page = sf.build(user)
        ids = page.product_ids
        assert len(ids) == len(set(ids)), user.user_id
        for pl in page.placements:
            assert all(kw in sf.taxonomy for kw in pl.keywords)


def test_trace_explains_every_product(sf: Storefront, demo_catalog: Catalog) -> None:
    page = sf.build(demo_user("demo-2"))
    assert page.trace.total_ms > 0
    # The history themes pin every product: a placement its pins fill runs no keyword,
    # retrieval, filter or ranking stage, and the trace says so for each placement.
    assert {s.stage for s in page.trace.stages} == {"themes"}
    pinned = page.trace.events_of("pinned")
    assert len(pinned) == len(page.placements)
    pairs = zip(pinned, page.placements, strict=True)
    assert all(ev.data["pinned"] >= len(pl.products) for ev, pl in pairs)
    first = page.placements[0].products[0]
    (why,) = page.explain(first.product.id)
    assert why["pinned"] and why["keyword"] is None and why["rank"] == 0
    # Explain a retrieved product on a page of static themes, whose products all come
    # from retrieval.
    static = Storefront(demo_catalog, llm=None, theme_generator=StaticThemeGenerator())
    page = static.build(demo_user("demo-2"))
    retrieved = next(sp for pl in page.placements for sp in pl.products if not sp.pinned)
    (why,) = page.explain(retrieved.product.id)
    assert why["keyword"] in page.placements[why["placement"]].keywords
    assert why["retrieval_score"] is not None and why["filter_score"] is not None
    assert why["rank_score"] is not None


def test_cold_start_user_gets_a_popular_page(sf: Storefront) -> None:
    page = sf.build(UserContext(user_id="new"))
    assert len(page.placements) >= 6
    assert page.trace.events_of("cold_start")


def test_unknown_history_ids_are_skipped_and_reported(
    sf: Storefront, demo_catalog: Catalog
) -> None:
    real = demo_catalog.products[0].id
    user = UserContext(
        user_id="u",
        history=[
            Interaction(product_id="no-such-id"),
            Interaction(product_id=real, order_number=1),
        ],
    )
    page = sf.build(user)
    (ev,) = page.trace.events_of("unknown_product")
    assert ev.data["ids"] == ["no-such-id"]
    assert page.placements


def test_abuild_and_build_many_match_build(sf: Storefront) -> None:
    users = demo_users()
    sync = [sf.build(u) for u in users]
    async_pages = [asyncio.run(sf.abuild(u)) for u in users]
    many = sf.build_many(users, concurrency=3)
    for a, b, c in zip(sync, async_pages, many, strict=False):
        assert [pl.product_ids for pl in a.placements] == [pl.product_ids for pl in b.placements]
        assert [pl.product_ids for pl in a.placements] == [pl.product_ids for pl in c.placements]


def test_page_size_is_configurable(demo_catalog: Catalog) -> None:
    sf = Storefront(
        demo_catalog, llm=None, num_placements=3, products_per_placement=5, min_products=5
    )
    page = sf.build(demo_user("demo-3"))
    assert len(page.placements) == 3
    assert all(len(pl.products) == 5 for pl in page.placements)


def test_bad_configuration_is_refused(demo_catalog: Catalog) -> None:
    with pytest.raises(ConfigurationError, match="unknown Storefront option"):
        Storefront(demo_catalog, llm=None, placements=3)
    with pytest.raises(ConfigurationError, match="min_products"):
        Storefront(demo_catalog, llm=None, products_per_placement=4, min_products=8)
    with pytest.raises(ConfigurationError, match="retriever"):
        Storefront(demo_catalog, llm=None, retriever=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="Catalog"):
        Storefront([], llm=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="UserContext"):
        Storefront(demo_catalog, llm=None).build({"user_id": "x"})  # type: ignore[arg-type]
    assert StorefrontConfig().num_placements == 8


# -- failures degrade the page, are traced, and never escape build() ---------------------
class ExplodingThemes(ThemeGenerator):
    def generate(self, user: UserContext, n: int) -> list[Theme]:
        raise RuntimeError("model server is down")


class ExplodingKeywords(KeywordGenerator):
    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        raise TimeoutError("keyword model timed out")


class OffTaxonomyKeywords(KeywordGenerator):
    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        return ["definitely not a catalog term", "quantum flux"]


class BrokenFilter(RelevanceFilter):
    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        return [0.5]  # wrong length: a contract violation


class BrokenRanker(Ranker):
    def rank(
        self, user: UserContext, theme: Theme, candidates: Sequence[ScoredProduct]
    ) -> list[ScoredProduct]:
        return list(candidates)[:1]


def test_theme_generator_failure_falls_back(demo_catalog: Catalog) -> None:
    sf = Storefront(demo_catalog, llm=None, theme_generator=ExplodingThemes())
    page = sf.build(demo_user("demo-1"))
    assert len(page.placements) >= 6
    assert {pl.source for pl in page.placements} == {"fallback"}
    failed = page.trace.stages_of("themes")[0]
    assert failed.error and "model server is down" in failed.error
    assert any(
        s.fallback_reason == "primary theme generator failed"
        for s in page.trace.stages_of("themes")
    )


def test_keyword_failures_fall_back_to_the_taxonomy_baseline(demo_catalog: Catalog) -> None:
    for gen in (ExplodingKeywords(), OffTaxonomyKeywords()):
        # Static themes (their products all come from retrieval) normally skip the keyword
        # generator; ask it anyway, to see it fail.
        sf = Storefront(
            demo_catalog,
            llm=None,
            keyword_generator=gen,
            theme_generator=StaticThemeGenerator(),
            baseline_keywords_for_baseline_themes=False,
        )
        page = sf.build(demo_user("demo-2"))
        assert len(page.placements) >= 6
        assert all(kw in sf.taxonomy for pl in page.placements for kw in pl.keywords)
        assert any(s.fallback_reason for s in page.trace.stages_of("keywords"))
    assert page.trace.events_of("keyword_not_in_taxonomy")


def test_baseline_themes_skip_the_keyword_generator(demo_catalog: Catalog) -> None:
    sf = Storefront(
        demo_catalog,
        llm=None,
        keyword_generator=ExplodingKeywords(),
        theme_generator=StaticThemeGenerator(),
    )
    page = sf.build(demo_user("demo-2"))
    assert len(page.placements) >= 6
    kw_stages = page.trace.stages_of("keywords")
    assert kw_stages and all(s.component == "TaxonomyKeywordGenerator" for s in kw_stages)
    assert not any(s.error for s in kw_stages)


def test_broken_filter_and_ranker_are_contained(demo_catalog: Catalog) -> None:
    # Static themes: their products come from retrieval, so filter and ranker run.
    sf = Storefront(
        demo_catalog,
        llm=None,
        relevance_filter=BrokenFilter(),
        ranker=BrokenRanker(),
        theme_generator=StaticThemeGenerator(),
    )
    page = sf.build(demo_user("demo-3"))
    assert len(page.placements) >= 6
    assert any("one score per product" in (s.error or "") for s in page.trace.stages_of("filter"))
    assert any("same products" in (s.error or "") for s in page.trace.stages_of("rank"))
    assert any(e.data.get("stage") == "rank" for e in page.trace.events_of("fallback"))


class TinyRetriever(Retriever):
    """Returns ids the catalog does not know, plus a couple it does."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def retrieve(self, query: RetrievalQuery) -> list[Candidate]:
        real = [p.id for p in self.catalog.products[:3]]
        return [
            Candidate(product_id=i, score=1.0, keyword=query.keywords[0])
            for i in ["ghost-1", *real]
        ]


def test_thin_placements_are_dropped_and_unknown_ids_reported(demo_catalog: Catalog) -> None:
    sf = Storefront(
        demo_catalog,
        llm=None,
        retriever=TinyRetriever(demo_catalog),
        theme_generator=StaticThemeGenerator(),
    )
    page = sf.build(demo_user("demo-1"))
    # Static themes cannot fill a placement from three products; only the history fallback's
    # themes, which pin their products, survive. A page from fallbacks, not an exception.
    assert page.placements[0].theme.title == "Buy it again"
    assert all(pl.source == "fallback" for pl in page.placements)
    assert all(sp.pinned for pl in page.placements for sp in pl.products)
    assert page.trace.events_of("unknown_product")
    assert any(e.data.get("reason") == "density" for e in page.trace.events_of("gate"))


def test_popularity_ranker_and_history_generator_plug_in(demo_catalog: Catalog) -> None:
    sf = Storefront(
        demo_catalog,
        llm=None,
        theme_generator=HistoryThemeGenerator(demo_catalog),
        ranker=PopularityRanker(),
    )
    # A returning user's history themes pin their products; a cold start's "Popular in
    # <department>" themes are retrieved and ranked.
    page = sf.build(UserContext(user_id="new"))
    pl = next(p for p in page.placements if not any(sp.pinned for sp in p.products))
    pops = [sp.product.popularity for sp in pl.products]
    assert pops == sorted(pops, reverse=True)


def test_pages_do_not_depend_on_the_hash_seed() -> None:
    """The same user gets the same page in every process (no set-order tie-breaks)."""
    import os
    import subprocess
    import sys

    script = (
        "import json\n"
        "from storefront_sdk import Catalog, Storefront\n"
        "from storefront_sdk.demo import demo_users\n"
        "sf = Storefront(Catalog.demo(), llm=None)\n"
        "print(json.dumps([[(p.theme.title, p.theme.concepts, p.keywords,\n"
        "    [(sp.product.id, round(sp.score, 9)) for sp in p.products])\n"
        "    for p in sf.build(u).placements] for u in demo_users()]))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


def test_near_duplicate_titles_are_dropped_before_retrieval(demo_catalog: Catalog) -> None:
    class Echoing(ThemeGenerator):
        """A model that says the same thing twice in slightly different words."""

        def generate(self, user: UserContext, n: int) -> list[Theme]:
            titles = ["Pasta night", "Pasta nights", "Fresh fruit", "Cheese board",
                      "Breakfast cereal", "Coffee break", "Snack time", "Baking day",
                      "Soup season", "Frozen pizza"]  # fmt: skip
            return [Theme(title=t, concepts=[t.lower()], source="custom") for t in titles][:n]

    sf = Storefront(demo_catalog, llm=None, theme_generator=Echoing())
    page = sf.build(demo_user("demo-1"))
    dropped = [
        e for e in page.trace.events_of("gate") if e.data.get("level") == "theme"
    ]  # fmt: skip
    assert [e.data["title"] for e in dropped] == ["Pasta nights"]
    assert dropped[0].data["reason"] == "duplicate_title"
    assert dropped[0].data["gate"] == "NearDuplicateGate"
    # No retrieval was spent on it, and its place went to the next theme.
    retrieved = {s.placement for s in page.trace.stages_of("retrieve")}
    assert dropped[0].placement not in retrieved
    titles = [pl.theme.title for pl in page.placements]
    assert "Pasta nights" not in titles and "Pasta night" in titles

    # Without the near-duplicate gate both are retrieved and shown.
    plain = Storefront(demo_catalog, llm=None, theme_generator=Echoing(), gates=[])
    titles = [pl.theme.title for pl in plain.build(demo_user("demo-1")).placements]
    assert {"Pasta night", "Pasta nights"} <= set(titles)
