"""Page metrics on small hand-built pages, where each definition can be checked by eye."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from storefront_sdk import Catalog
from storefront_sdk.evaluation import (
    aisle_coverage,
    density,
    department_coverage,
    discovery_recall,
    diversity,
    hit_rate,
    keyword_utilisation,
    mean_placement_size,
    nanmean,
    next_basket_recall,
    novelty,
    on_theme_from_filter,
    precision_on_theme,
)
from storefront_sdk.interfaces import RelevanceFilter
from storefront_sdk.retrieval.bm25 import BM25Retriever
from storefront_sdk.types import (
    Interaction,
    JudgeReport,
    Page,
    Placement,
    Product,
    ScoredProduct,
    Theme,
    UserContext,
    Verdict,
)

P = {
    "milk": Product(id="1", title="Organic Whole Milk", department="dairy eggs", aisle="milk"),
    "yogurt": Product(id="2", title="Greek Yogurt", department="dairy eggs", aisle="yogurt"),
    "cheddar": Product(
        id="3", title="Sharp Cheddar", department="dairy eggs", aisle="packaged cheese"
    ),
    "banana": Product(id="4", title="Banana", department="produce", aisle="fresh fruits"),
    "apple": Product(id="5", title="Honeycrisp Apple", department="produce", aisle="fresh fruits"),
    "soap": Product(id="6", title="Dish Soap", department="household", aisle="dish detergents"),
}


def placement(title: str, *names: str, keywords: Sequence[str] = ()) -> Placement:
    return Placement(
        theme=Theme(title=title),
        keywords=list(keywords),
        products=[ScoredProduct(product=P[n]) for n in names],
    )


@pytest.fixture
def page() -> Page:
    return Page(
        user_id="u1",
        placements=[
            placement("Dairy", "milk", "yogurt", "cheddar", "soap"),
            placement("Fruit", "banana", "apple"),
        ],
    )


@pytest.fixture
def user() -> UserContext:
    return UserContext(
        user_id="u1",
        history=[
            Interaction(product_id="1", order_number=1),
            Interaction(product_id="4", order_number=1),
        ],
    )


class TitleWordFilter(RelevanceFilter):
    """On theme when the product's department/aisle shares a word with the theme title."""

    threshold = 0.5

    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        want = {"Dairy": "dairy", "Fruit": "fruit"}.get(theme.title, "")
        return [1.0 if want and want in f"{p.department} {p.aisle}" else 0.0 for p in products]


def test_precision_on_theme_averages_top_k_share_over_placements(page: Page) -> None:
    flt = TitleWordFilter()
    # Dairy: milk, yogurt, cheddar on theme, soap not -> top-5 = 3/4; Fruit: 2/2.
    assert precision_on_theme(page, flt, k=5) == pytest.approx((3 / 4 + 1.0) / 2)
    # top-1: milk and banana, both on theme.
    assert precision_on_theme(page, flt, k=1) == 1.0
    assert precision_on_theme(page, on_theme_from_filter(flt, threshold=2.0), k=5) == 0.0


def test_precision_on_theme_from_a_judge_report_skips_unjudged_and_invalid(page: Page) -> None:
    report = JudgeReport(
        user_id="u1",
        judge="test",
        verdicts=[
            Verdict(
                level="product", criterion="on_theme", placement=0, product_id="1", passed=True
            ),
            Verdict(
                level="product", criterion="on_theme", placement=0, product_id="6", passed=False
            ),
            Verdict(
                level="product", criterion="on_theme", placement=0, product_id="2", valid=False
            ),
        ],
    )
    # Placement 0: one pass, one fail judged (invalid yogurt left out); placement 1 unjudged.
    assert precision_on_theme(page, report, k=5) == 0.5
    assert math.isnan(precision_on_theme(Page(user_id="u1"), report))


def _catalog() -> Catalog:
    return Catalog(P.values())


def test_keyword_utilisation_counts_keywords_that_retrieve_relevant_products() -> None:
    pg = Page(
        user_id="u1",
        placements=[placement("Dairy", "milk", keywords=["milk", "soap", "cheese"])],
    )
    index = {"milk": [P["milk"], P["soap"]], "soap": [P["soap"]], "cheese": [P["cheddar"]]}
    flt = TitleWordFilter()
    assert keyword_utilisation(pg, lambda kw: index[kw], flt) == pytest.approx(2 / 3)
    assert keyword_utilisation(pg, lambda kw: index[kw], flt, min_relevant=2) == 0.0
    with pytest.raises(TypeError, match="lookup"):
        keyword_utilisation(pg, BM25Retriever(_catalog()), flt)  # ids need a lookup


def test_keyword_utilisation_with_a_real_retriever() -> None:
    cat = _catalog()
    pg = Page(
        user_id="u1", placements=[placement("Dairy", "milk", keywords=["yogurt", "dish soap"])]
    )
    ku = keyword_utilisation(pg, BM25Retriever(cat), TitleWordFilter(), lookup=cat.get)
    assert ku == 0.5  # "yogurt" finds the yogurt (dairy), "dish soap" only soap


def test_density_and_size(page: Page) -> None:
    assert density(page, min_products=3) == 0.5
    assert density(page, min_products=2) == 1.0
    assert mean_placement_size(page) == 3.0
    assert math.isnan(density(Page(user_id="x")))


def test_coverage_counts_distinct_departments_and_aisles(page: Page) -> None:
    assert department_coverage(page) == 3  # dairy eggs, household, produce
    assert aisle_coverage(page) == 5  # milk, yogurt, packaged cheese, dish detergents, fresh fruits


def test_diversity_is_one_minus_mean_pairwise_jaccard() -> None:
    pg = Page(
        user_id="u",
        placements=[
            placement("A", "milk", "yogurt"),
            placement("B", "yogurt", "cheddar"),
            placement("C", "banana"),
        ],
    )
    # Jaccard: A-B = 1/3, A-C = 0, B-C = 0 -> mean 1/9.
    assert diversity(pg) == pytest.approx(1 - 1 / 9)
    # Aisles: A={milk, yogurt}, B={yogurt, packaged cheese}, C={fresh fruits}: the same.
    assert diversity(pg, by="aisles") == pytest.approx(1 - 1 / 9)
    assert math.isnan(diversity(Page(user_id="u", placements=[placement("A", "milk")])))
    with pytest.raises(ValueError, match="by"):
        diversity(pg, by="colour")


def test_novelty_and_recall_family(page: Page, user: UserContext) -> None:
    shown = {"1", "2", "3", "4", "5", "6"}
    assert novelty(page, user) == pytest.approx(len(shown - {"1", "4"}) / len(shown))
    targets = ["1", "2", "99"]  # milk (repeat), yogurt (new), one not shown
    assert next_basket_recall(page, targets) == pytest.approx(2 / 3)
    # Discovery: only targets outside the history ("2", "99"): yogurt shown.
    assert discovery_recall(page, targets, user) == 0.5
    assert hit_rate(page, targets) == 1.0
    assert hit_rate(page, ["99"]) == 0.0
    assert math.isnan(next_basket_recall(page, []))
    assert math.isnan(discovery_recall(page, ["1"], user))  # every target is a repeat


def test_products_shown_twice_count_once() -> None:
    pg = Page(user_id="u", placements=[placement("A", "milk"), placement("B", "milk")])
    assert next_basket_recall(pg, ["1", "2"]) == 0.5
    assert novelty(pg, UserContext(user_id="u")) == 1.0


def test_nanmean_ignores_undefined_values() -> None:
    assert nanmean([1.0, math.nan, 0.0]) == 0.5
    assert math.isnan(nanmean([math.nan]))
