"""Placements whose pinned products fill them skip keywords, retrieval, filter and ranking.

The history baseline pins every product of its themes; the cascade then has nothing
to retrieve for them. These tests count the calls each stage receives and check
that the page is what the full cascade would build: the pins, in order, and when
a gate or an earlier placement takes some of them, the skipped stages run after
all and their candidates follow the remaining pins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storefront_sdk import (
    BM25Retriever,
    Catalog,
    LexicalRelevanceFilter,
    Product,
    RetrievalQuery,
    StaticThemeGenerator,
    Storefront,
    Theme,
    ThemeGenerator,
    UserContext,
)
from storefront_sdk.demo import demo_user, demo_users
from storefront_sdk.filtering.gates import default_gates
from storefront_sdk.interfaces import Gate
from storefront_sdk.types import RetrievedProduct


class CountingRetriever(BM25Retriever):
    """The real BM25 retriever, counting the queries it answers."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        self.queries: list[RetrievalQuery] = []

    def retrieve_products(self, query: RetrievalQuery, catalog: Catalog) -> list[RetrievedProduct]:
        self.queries.append(query)
        return super().retrieve_products(query, catalog)


class CountingFilter(LexicalRelevanceFilter):
    """The real lexical filter, counting the products it scores."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        self.scored = 0

    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        self.scored += len(products)
        return super().score(theme, products)


class RejectProducts(Gate):
    """Rejects the products whose ids it is given (as a safety gate would)."""

    def __init__(self, ids: set[str]) -> None:
        self.ids = ids

    def check_product(self, product: Product, theme: Theme, user: UserContext) -> str | None:
        return "blocked_term:test" if product.id in self.ids else None


class FixedThemes(ThemeGenerator):
    """The same themes for everyone (their pins chosen by the test)."""

    def __init__(self, themes: list[Theme]) -> None:
        self.themes = themes

    def generate(self, user: UserContext, n: int) -> list[Theme]:
        return list(self.themes[:n])


def counting_storefront(
    catalog: Catalog, **kwargs: object
) -> tuple[Storefront, CountingRetriever, CountingFilter]:
    retriever, flt = CountingRetriever(catalog), CountingFilter(catalog)
    sf = Storefront(catalog, llm=None, retriever=retriever, relevance_filter=flt, **kwargs)  # type: ignore[arg-type]
    return sf, retriever, flt


def test_full_pins_run_no_retrieval_filter_or_ranking(demo_catalog: Catalog) -> None:
    sf, retriever, flt = counting_storefront(demo_catalog)
    size = sf.config.products_per_placement
    for user in demo_users()[:3]:  # shoppers whose every placement its pins fill
        page = sf.build(user)
        assert len(page.placements) == sf.config.num_placements
        for pl in page.placements:
            # The placement is its theme's pins, in order, and was not retrieved.
            assert pl.product_ids == pl.theme.pinned_product_ids[:size]
            assert pl.keywords == [] and all(sp.pinned for sp in pl.products)
        assert {s.stage for s in page.trace.stages} == {"themes"}
        assert len(page.trace.events_of("pinned")) == len(page.placements)
    assert retriever.queries == [] and flt.scored == 0


def test_only_placements_short_of_pins_are_retrieved(demo_catalog: Catalog) -> None:
    """One retrieval per placement whose pins do not fill it: too few pins (a cold start's
    popular aisles, a shopper with 18 regulars), or pins already shown above."""
    sf, retriever, _ = counting_storefront(demo_catalog)
    size = sf.config.products_per_placement
    for user in demo_users():
        before = len(retriever.queries)
        page = sf.build(user)
        started = {ev.placement for ev in page.trace.events_of("pinned")}
        topped = {ev.placement for ev in page.trace.events_of("pinned_short")}
        retrieved = {s.placement for s in page.trace.stages_of("retrieve")}
        assert topped <= started and retrieved.isdisjoint(started - topped)
        assert len(retriever.queries) - before == len(retrieved)
        for pl in page.placements:
            if len(pl.theme.pinned_product_ids) < size:
                assert not all(sp.pinned for sp in pl.products)


def test_async_build_skips_the_same_stages(demo_catalog: Catalog) -> None:
    sf, retriever, _ = counting_storefront(demo_catalog)
    users = demo_users()
    sync = [sf.build(u) for u in users]
    sync_queries = len(retriever.queries)
    pages = asyncio.run(sf.abuild_many(users))
    for a, b in zip(sync, pages, strict=True):
        assert [pl.product_ids for pl in a.placements] == [pl.product_ids for pl in b.placements]
        assert len(a.trace.events_of("pinned")) == len(b.trace.events_of("pinned"))
    assert len(retriever.queries) == 2 * sync_queries


def test_a_gate_that_takes_pins_brings_back_the_skipped_stages(demo_catalog: Catalog) -> None:
    user = demo_user("demo-2")
    plain = Storefront(demo_catalog, llm=None).build(user)
    first = plain.placements[0]
    taken = set(first.product_ids[:3])
    sf, retriever, flt = counting_storefront(
        demo_catalog, gates=[*default_gates(), RejectProducts(taken)]
    )
    page = sf.build(user)
    pl = page.placements[0]
    assert pl.theme.title == first.theme.title
    # The remaining pins lead, in order; retrieved candidates fill the three free slots.
    assert pl.product_ids[:17] == first.product_ids[3:]
    assert not taken & set(pl.product_ids)
    assert len(pl.products) == sf.config.products_per_placement
    assert [sp.pinned for sp in pl.products] == [True] * 17 + [False] * 3
    assert pl.keywords and all(sp.keyword in pl.keywords for sp in pl.products[17:])
    # The placements short of pins, and only they, ran the cascade: one retrieval each,
    # traced on their slot (a top-up may take a later placement's pins in turn).
    shorts = {ev.placement: ev.data["missing"] for ev in page.trace.events_of("pinned_short")}
    assert shorts[0] == 3
    assert len(retriever.queries) == len(shorts) and flt.scored > 0
    assert {s.placement for s in page.trace.stages if s.stage != "themes"} == set(shorts)


def test_pins_shown_by_an_earlier_placement_are_replaced_by_retrieval(
    demo_catalog: Catalog,
) -> None:
    dairy = [p.id for p in demo_catalog if p.department == "dairy eggs"]
    assert len(dairy) >= 40
    # Two themes pin overlapping products: the second loses five to the first.
    themes = [
        Theme(title="Milk and cheese", concepts=["milk"], pinned_product_ids=dairy[:20]),
        Theme(title="Yogurt and eggs", concepts=["yogurt"], pinned_product_ids=dairy[15:35]),
    ]
    sf, retriever, _ = counting_storefront(
        demo_catalog, theme_generator=FixedThemes(themes), fallback_theme_generators=[]
    )
    page = sf.build(UserContext(user_id="u"))
    first, second = page.placements[:2]
    assert first.product_ids == dairy[:20] and first.keywords == []
    assert second.product_ids[:15] == dairy[20:35]
    assert len(second.products) == 20 and not set(second.product_ids) & set(first.product_ids)
    assert len(retriever.queries) == 1
    assert retriever.queries[0].exclude_ids == frozenset(dairy[15:35])


@pytest.mark.parametrize("pins", [0, 5])
def test_placements_the_pins_do_not_fill_are_retrieved(demo_catalog: Catalog, pins: int) -> None:
    pinned = [p.id for p in demo_catalog if p.department == "bakery"][:pins]
    theme = Theme(title="Bread and bakery", concepts=["bread"], pinned_product_ids=pinned)
    sf, retriever, flt = counting_storefront(
        demo_catalog, theme_generator=FixedThemes([theme]), fallback_theme_generators=[]
    )
    page = sf.build(UserContext(user_id="u"))
    (pl,) = page.placements
    assert pl.product_ids[:pins] == pinned and len(pl.products) > pins
    assert len(retriever.queries) == 1 and flt.scored > 0
    assert not page.trace.events_of("pinned")


def test_static_themes_still_run_the_whole_cascade(demo_catalog: Catalog) -> None:
    sf, retriever, _ = counting_storefront(demo_catalog, theme_generator=StaticThemeGenerator())
    page = sf.build(demo_user("demo-1"))
    assert len(retriever.queries) >= len(page.placements)
    assert {"keywords", "retrieve", "filter", "rank"} <= {s.stage for s in page.trace.stages}
