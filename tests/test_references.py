"""The references every evaluation reports (popular, buy_again) and the metrics at equal counts."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import pytest

from storefront_sdk import (
    Catalog,
    Interaction,
    Placement,
    Product,
    ScoredProduct,
    Storefront,
    Theme,
    UserContext,
)
from storefront_sdk.evaluation import (
    EvalCase,
    HeuristicJudge,
    buy_again_list,
    evaluate,
    history_popularity,
    load_instacart_users,
    popular_list,
)
from storefront_sdk.evaluation import metrics as m
from storefront_sdk.types import Page


def _catalog() -> Catalog:
    pops = {"a": 5.0, "b": 9.0, "c": 9.0, "d": 1.0, "e": 0.0, "f": 3.0}
    return Catalog([Product(id=k, title=f"Product {k}", popularity=v) for k, v in pops.items()])


def _user(*ids: str) -> UserContext:
    return UserContext(
        user_id="u",
        history=[Interaction(product_id=p, order_number=i + 1) for i, p in enumerate(ids)],
    )


def test_popular_list_is_by_popularity_with_ties_in_catalog_order() -> None:
    # "e" has no popularity: it is nobody's popular product.
    assert popular_list(_catalog()) == ["b", "c", "a", "f", "d"]


def test_buy_again_is_own_products_by_count_then_popular_ones_never_bought() -> None:
    cat = _catalog()
    user = _user("d", "a", "a", "e", "d", "a")
    # a x3, d x2, e x1 (first bought first on ties), then popular products not bought.
    assert buy_again_list(user, popular_list(cat), cat) == ["a", "d", "e", "b", "c", "f"]


def test_discovery_recall_at_counts_only_unseen_products() -> None:
    user = _user("a", "b")
    targets = ["a", "c", "d"]  # "a" is a repeat: the new targets are c and d
    ranked = ["a", "b", "c", "f", "d"]
    assert m.discovery_recall_at(ranked, targets, user, 1) == 0.5  # unseen: c
    assert m.discovery_recall_at(ranked, targets, user, 2) == 0.5  # unseen: c, f
    assert m.discovery_recall_at(ranked, targets, user, 3) == 1.0  # unseen: c, f, d
    assert math.isnan(m.discovery_recall_at(ranked, ["a"], user, 3))


def _page(*placements: list[str]) -> Page:
    cat = _catalog()
    return Page(
        user_id="u",
        placements=[
            Placement(
                theme=Theme(title=f"P{i}"),
                products=[ScoredProduct.of(cat[p]) for p in ids],
            )
            for i, ids in enumerate(placements)
        ],
    )


def test_position_weighted_recall_prefers_the_first_slots() -> None:
    early = m.position_weighted_recall([["a", "b"], ["c", "d"]], ["a"])
    late = m.position_weighted_recall([["b", "c"], ["d", "a"]], ["a"])
    assert early == 1.0  # first product of the first placement
    assert 0 < late < early
    assert late == pytest.approx(1 / (math.log2(3) * math.log2(3)))
    assert math.isnan(m.position_weighted_recall([["a"]], []))


def test_references_are_cut_to_the_page_counts() -> None:
    """A page of 3 products, 2 of them unseen, is compared with 3-product reference lists
    whose discovery recall is taken over their first 2 unseen products."""
    cat = _catalog()
    user = _user("d", "d", "f")
    case = EvalCase(user=user, target_product_ids=["d", "c", "a"])

    class Fixed(Storefront):
        def build(self, user: UserContext) -> Page:  # the page under test, fixed
            return _page(["d", "a"], ["e"])

    sf = Fixed(cat, llm=None, cache=None)
    report = evaluate(
        [case], {"fixed": sf}, judge=HeuristicJudge(catalog=cat), progress=io.StringIO()
    )
    assert report.configs == ["popular", "buy_again", "fixed"]
    page, pop, ba = (report.metrics[c] for c in ("fixed", "popular", "buy_again"))
    assert page["products"] == pop["products"] == ba["products"] == 3
    assert page["unseen"] == 2  # a, e
    assert page["recall"] == pytest.approx(2 / 3)  # d, a
    assert pop["recall"] == pytest.approx(2 / 3)  # b, c, a -> c, a
    assert ba["recall"] == pytest.approx(1 / 3)  # d, f, b -> d
    # New targets: c, a. Page unseen: a, e -> 1/2. popular's first 2 unseen: b, c -> 1/2;
    # buy_again's first 2 unseen: b, c -> 1/2 (its own count within 3 products: b -> 0).
    assert page["discovery_recall"] == pytest.approx(0.5)
    assert pop["discovery_recall"] == pytest.approx(0.5)
    assert ba["discovery_recall"] == pytest.approx(0.5)
    assert ba["discovery_recall_own"] == 0.0
    assert page["recall_vs_buy_again"] == pytest.approx(1 / 3)
    assert page["discovery_vs_popular"] == pytest.approx(0.0)
    assert [cr.user_id for cr in report.per_case["buy_again"]] == ["u"]
    assert "buy_again" in report.table().splitlines()[1]


def test_reference_names_are_reserved(demo_catalog: Catalog) -> None:
    from storefront_sdk.exceptions import ConfigurationError

    sf = Storefront(demo_catalog, llm=None, cache=None)
    with pytest.raises(ConfigurationError, match="reserved"):
        evaluate([], {"popular": sf})
    with pytest.raises(ConfigurationError, match="unknown reference"):
        evaluate([], {"x": sf}, references=["random"])


# -- acceptance on real shoppers ---------------------------------------------------------------


@pytest.mark.slow
def test_default_page_beats_both_references_on_instacart(
    instacart_dir: Path, instacart_catalog: Catalog
) -> None:
    """Issue 10's acceptance: Storefront(catalog, llm=None) against buy_again (recall) and
    popular (discovery) at equal counts, users 1-40, popularity from the histories only."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cases = load_instacart_users(instacart_dir, instacart_catalog)
    catalog = instacart_catalog.with_popularity(history_popularity(cases))
    sf = Storefront(catalog, llm=None, cache=None)
    report = evaluate(
        cases, {"history": sf}, judge=HeuristicJudge(catalog=catalog), progress=io.StringIO()
    )
    h, ba, pop = (report.metrics[c] for c in ("history", "buy_again", "popular"))
    assert h["recall"] >= ba["recall"]
    assert h["discovery_recall"] >= pop["discovery_recall"]
    assert h["density"] >= 0.95
    assert h["products"] == ba["products"] == pop["products"]
