"""The history page policy: buy again, department placements, the rest, popular picks."""

from __future__ import annotations

import pytest

from storefront_sdk import (
    Catalog,
    HistoryThemeGenerator,
    Interaction,
    KeywordTaxonomy,
    Product,
    Theme,
    UserContext,
)
from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.generation.history import display_name
from storefront_sdk.generation.taxonomy_keywords import TaxonomyKeywordGenerator


def _catalog() -> Catalog:
    products = []
    for dept, aisle, n in (
        ("dairy eggs", "yogurt", 30),
        ("produce", "fresh fruits", 30),
        ("snacks", "chips pretzels", 30),
        ("alcohol", "beers coolers", 10),
    ):
        for i in range(n):
            products.append(
                Product(
                    id=f"{aisle[:3]}{i}",
                    title=f"{aisle} item {i}",
                    department=dept,
                    aisle=aisle,
                    popularity=float(100 - i),
                )
            )
    return Catalog(products)


def _user(ids: list[str], *, age_verified: bool = False) -> UserContext:
    history = [
        Interaction(product_id=pid, order_number=order) for order in range(1, 4) for pid in ids
    ]
    return UserContext(user_id="u", history=history, age_verified=age_verified)


def test_display_names_read_like_titles() -> None:
    assert display_name("oils vinegars") == "Oils & vinegars"
    assert display_name("nuts seeds dried fruit") == "Nuts, seeds & dried fruit"
    assert display_name("fresh fruits") == "Fresh fruits"
    assert display_name("packaged vegetables fruits") == "Packaged vegetables & fruits"
    assert display_name("glass") == "Glass"


def test_page_policy_shapes_and_never_repeats_a_product() -> None:
    cat = _catalog()
    own = [f"yog{i}" for i in range(25)] + [f"fre{i}" for i in range(3)] + ["chi0", "bee0"]
    gen = HistoryThemeGenerator(cat, placements=5, products_per_theme=10, discovery=0.2)
    themes = gen.generate(_user(own), 8)
    assert themes[0].kind == "buy_again" and themes[0].title == "Buy it again"
    ids = [pid for t in themes for pid in t.pinned_product_ids]
    assert len(ids) == len(set(ids))
    # Beer is age-restricted and the user is not verified: never shown.
    assert not any(pid.startswith("bee") for pid in ids)
    bought = set(own)
    for t in themes:
        if t.kind in ("department", "aisle"):
            flags = [pid in bought for pid in t.pinned_product_ids]
            assert flags == sorted(flags, reverse=True)  # own products first, then new ones
            assert {cat[p].department for p in t.pinned_product_ids} == set(t.departments)
            assert sum(flags) <= 8  # 20% of 10 kept for discovery
    # Every purchase fits on a 5 x 10 page except what "Back in your basket" could not hold.
    titles = [t.title for t in themes]
    assert len(set(titles)) == len(titles)


def test_discovery_knob_trades_own_products_for_new_ones() -> None:
    cat = _catalog()
    own = [f"yog{i}" for i in range(12)] + [f"fre{i}" for i in range(12)]
    user = _user(own)

    def new_share(discovery: float) -> float:
        gen = HistoryThemeGenerator(cat, placements=4, products_per_theme=10, discovery=discovery)
        shown = [
            pid
            for t in gen.generate(user, 4)
            if t.kind in ("department", "aisle")
            for pid in t.pinned_product_ids
        ]
        return sum(pid not in own for pid in shown) / len(shown)

    assert new_share(0.0) < new_share(0.5) < new_share(1.0) == 1.0


def test_new_products_follow_the_users_departments() -> None:
    cat = _catalog()
    gen = HistoryThemeGenerator(cat, placements=3, products_per_theme=5)
    themes = gen.generate(_user([f"chi{i}" for i in range(5)]), 3)
    picks = next(t for t in themes if t.kind == "popular")
    # Snacks is all this user buys: its popular products outrank equally popular others.
    assert all(cat[p].department == "snacks" for p in picks.pinned_product_ids[:3])


def test_cold_start_and_bad_knobs() -> None:
    cat = _catalog()
    themes = HistoryThemeGenerator(cat).generate(UserContext(user_id="new"), 4)
    assert themes[0].title == "Popular right now"
    with pytest.raises(ConfigurationError):
        HistoryThemeGenerator(cat, discovery=1.5)
    with pytest.raises(ConfigurationError):
        HistoryThemeGenerator(cat, discovery_boost=-1)


def test_taxonomy_keywords_share_a_word_with_the_theme() -> None:
    taxonomy = KeywordTaxonomy(["breast", "chicken breast", "bread", "sourdough bread", "bags"])
    user = UserContext(user_id="u")
    kws = TaxonomyKeywordGenerator().generate(
        Theme(title="Bread", concepts=["bread"]), taxonomy, user, 5
    )
    assert "bread" in kws and "breast" not in kws and "bags" not in kws
    loose = TaxonomyKeywordGenerator(shared_word=False).generate(
        Theme(title="Bread", concepts=["bread"]), taxonomy, user, 5
    )
    assert len(loose) >= len(kws)


def test_interleaved_users_get_their_own_themes() -> None:
    # build_many interleaves pages, so the generator is asked for users in turn (and twice
    # per page): every answer must be that user's, as a fresh generator computes it.
    cat = _catalog()
    users = [
        _user(["yog1", "yog2", "fre3"]),
        _user(["chi1", "chi2"]),
        _user(["fre5", "bee1"], age_verified=True),
    ]
    remembered = HistoryThemeGenerator(cat)
    for _ in range(2):
        for user in users:
            for n in (8, 3, 8):
                assert remembered.generate(user, n) == HistoryThemeGenerator(cat).generate(user, n)
    # An equal but distinct user object is computed afresh, not confused with another.
    again = users[1].model_copy()
    assert remembered.generate(again, 8) == HistoryThemeGenerator(cat).generate(users[1], 8)
    # Callers may edit what they get back without touching what is remembered.
    got = remembered.generate(users[0], 8)
    got.clear()
    assert remembered.generate(users[0], 8) == HistoryThemeGenerator(cat).generate(users[0], 8)
