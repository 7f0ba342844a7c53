"""Page metrics: pure functions over a built :class:`~storefront_sdk.types.Page`.

Every function takes a page (plus, where needed, the user, the target basket
or something that decides "on theme") and returns one number. Undefined
values (an empty page has no precision) are ``nan``; aggregate them with
:func:`nanmean`. Definitions are in each docstring and in ``docs/metrics.md``.

Product sets are *distinct* product ids: a product shown in two placements
counts once for recall, novelty and coverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations

from ..interfaces import RelevanceFilter, Retriever
from ..types import JudgeReport, Page, Placement, Product, RetrievalQuery, UserContext

__all__ = [
    "OnTheme",
    "aisle_coverage",
    "density",
    "department_coverage",
    "discovery_recall",
    "discovery_recall_at",
    "diversity",
    "hit_rate",
    "keyword_utilisation",
    "list_hit_rate",
    "list_recall",
    "mean_placement_size",
    "nanmean",
    "next_basket_recall",
    "novelty",
    "on_theme_from_filter",
    "on_theme_from_report",
    "position_weighted_recall",
    "position_weights",
    "precision_on_theme",
    "unseen_count",
]

OnTheme = Callable[[int, Placement, Sequence[Product]], list[bool | None]]
"""Decides, for placement ``i`` and some of its products, which are on theme.

``None`` means "not judged" (e.g. an invalid judge verdict): such a product is
left out of the denominator rather than counted either way.
"""


def nanmean(values: Iterable[float]) -> float:
    """Mean of the defined (non-nan) values; nan when there are none."""
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _page_ids(page: Page) -> set[str]:
    return set(page.product_ids)


def _history_ids(user: UserContext) -> set[str]:
    return {it.product_id for it in user.history}


# -- on-theme sources ---------------------------------------------------------------


def on_theme_from_filter(
    relevance_filter: RelevanceFilter, threshold: float | None = None
) -> OnTheme:
    """On theme = the filter scores the product against the placement's theme at or above
    ``threshold`` (default: the filter's own ``threshold``)."""
    cut = relevance_filter.threshold if threshold is None else threshold

    def decide(i: int, placement: Placement, products: Sequence[Product]) -> list[bool | None]:
        if not products:
            return []
        scores = relevance_filter.score(placement.theme, products)
        return [s >= cut for s in scores]

    return decide


def on_theme_from_report(report: JudgeReport) -> OnTheme:
    """On theme = the judge's valid product-level verdict for (placement, product) passed.

    Products the judge did not judge, or judged invalidly, are ``None`` (left out).
    """
    verdicts: dict[tuple[int | None, str | None], bool | None] = {}
    for v in report.of("product"):
        verdicts[(v.placement, v.product_id)] = v.passed if v.valid else None

    def decide(i: int, placement: Placement, products: Sequence[Product]) -> list[bool | None]:
        return [verdicts.get((i, p.id)) for p in products]

    return decide


# -- relevance ------------------------------------------------------------------------


def precision_on_theme(
    page: Page, on_theme: OnTheme | RelevanceFilter | JudgeReport, *, k: int = 5
) -> float:
    """P-T@k: share of a placement's top-``k`` products that are on theme, averaged over placements.

    Only judged products count (a top-k with 3 judged products of which 2 are on
    theme scores 2/3). Placements with no judged product are skipped; nan when
    none is left. ``on_theme`` is a relevance filter, a judge's report (its
    product verdicts), or any :data:`OnTheme` callable.
    """
    decide = _as_on_theme(on_theme)
    per_placement: list[float] = []
    for i, pl in enumerate(page.placements):
        top = [sp.product for sp in pl.products[:k]]
        flags = [f for f in decide(i, pl, top) if f is not None]
        if flags:
            per_placement.append(sum(flags) / len(flags))
    return nanmean(per_placement)


def _as_on_theme(src: OnTheme | RelevanceFilter | JudgeReport) -> OnTheme:
    if isinstance(src, RelevanceFilter):
        return on_theme_from_filter(src)
    if isinstance(src, JudgeReport):
        return on_theme_from_report(src)
    return src


def keyword_utilisation(
    page: Page,
    retrieve: Retriever | Callable[[str], Sequence[Product]],
    on_theme: OnTheme | RelevanceFilter,
    *,
    min_relevant: int = 1,
    depth: int = 20,
    lookup: Callable[[str], Product | None] | None = None,
) -> float:
    """K-U: share of generated keywords that retrieve at least ``min_relevant`` on-theme products.

    Each keyword of each placement is issued alone (top ``depth`` results) and its
    results are judged against that placement's theme. ``retrieve`` is a
    :class:`Retriever` (then ``lookup``, e.g. ``catalog.get``, maps ids to
    products) or a function ``keyword -> products``. nan when the page has no keywords.
    """
    decide = _as_on_theme(on_theme)
    if isinstance(retrieve, Retriever):
        if lookup is None:
            raise TypeError("keyword_utilisation with a Retriever needs lookup= (e.g. catalog.get)")
        retriever, get = retrieve, lookup

        def fetch(kw: str) -> Sequence[Product]:
            cands = retriever.retrieve(RetrievalQuery(keywords=[kw], k=depth))
            return [p for c in cands if (p := get(c.product_id)) is not None]

    else:
        fn = retrieve

        def fetch(kw: str) -> Sequence[Product]:
            return list(fn(kw))[:depth]

    used = total = 0
    for i, pl in enumerate(page.placements):
        for kw in pl.keywords:
            total += 1
            flags = decide(i, pl, fetch(kw))
            if sum(1 for f in flags if f) >= min_relevant:
                used += 1
    return used / total if total else math.nan


# -- shape ------------------------------------------------------------------------------


def density(page: Page, *, min_products: int = 5) -> float:
    """Share of placements with at least ``min_products`` products (nan for an empty page)."""
    if not page.placements:
        return math.nan
    return sum(1 for pl in page.placements if len(pl.products) >= min_products) / len(
        page.placements
    )


def mean_placement_size(page: Page) -> float:
    """Mean number of products per placement (nan for an empty page)."""
    if not page.placements:
        return math.nan
    return sum(len(pl.products) for pl in page.placements) / len(page.placements)


def department_coverage(page: Page) -> float:
    """Number of distinct departments among the page's products."""
    return float(
        len(
            {
                sp.product.department
                for pl in page.placements
                for sp in pl.products
                if sp.product.department
            }
        )
    )


def aisle_coverage(page: Page) -> float:
    """Number of distinct aisles among the page's products."""
    return float(
        len({sp.product.aisle for pl in page.placements for sp in pl.products if sp.product.aisle})
    )


def diversity(page: Page, *, by: str = "products") -> float:
    """Intra-page diversity: 1 - mean pairwise Jaccard similarity of placements.

    ``by="products"`` compares the placements' product-id sets; ``by="aisles"``
    their aisle sets (two placements of the same aisles are redundant even with
    different products). 1.0 = no overlap at all. nan with fewer than two
    non-empty placements.
    """
    if by == "products":
        sets = [set(pl.product_ids) for pl in page.placements]
    elif by == "aisles":
        sets = [
            {sp.product.aisle for sp in pl.products if sp.product.aisle} for pl in page.placements
        ]
    else:
        raise ValueError(f"diversity(by=...) must be 'products' or 'aisles', not {by!r}")
    sets = [s for s in sets if s]
    if len(sets) < 2:
        return math.nan
    sims = [len(a & b) / len(a | b) for a, b in combinations(sets, 2)]
    return 1.0 - sum(sims) / len(sims)


# -- personalisation ------------------------------------------------------------------------


def novelty(page: Page, user: UserContext) -> float:
    """Share of the page's distinct products the user has never interacted with (nan if empty)."""
    shown = _page_ids(page)
    if not shown:
        return math.nan
    return len(shown - _history_ids(user)) / len(shown)


def next_basket_recall(page: Page, targets: Iterable[str]) -> float:
    """Share of the target (next) order's distinct products shown anywhere on the page.

    nan when there are no targets.
    """
    target = set(targets)
    if not target:
        return math.nan
    return len(target & _page_ids(page)) / len(target)


def discovery_recall(page: Page, targets: Iterable[str], user: UserContext) -> float:
    """Next-basket recall restricted to target products absent from the user's history.

    Measures whether the page surfaces what the user will buy *for the first time*;
    nan when every target product is a repeat purchase.
    """
    return next_basket_recall(page, set(targets) - _history_ids(user))


def list_recall(ranked: Iterable[str], targets: Iterable[str]) -> float:
    """:func:`next_basket_recall` of a plain list of product ids (nan without targets)."""
    target = set(targets)
    if not target:
        return math.nan
    return len(target & set(ranked)) / len(target)


def list_hit_rate(ranked: Iterable[str], targets: Iterable[str]) -> float:
    """:func:`hit_rate` of a plain list of product ids (nan without targets)."""
    target = set(targets)
    if not target:
        return math.nan
    return 1.0 if target & set(ranked) else 0.0


def unseen_count(page: Page, user: UserContext) -> int:
    """Number of the page's distinct products absent from the user's history."""
    return len(_page_ids(page) - _history_ids(user))


def discovery_recall_at(
    ranked: Sequence[str], targets: Iterable[str], user: UserContext, count: int
) -> float:
    """Discovery recall of a ranked list at ``count`` unseen products.

    The first ``count`` products of ``ranked`` the user has never interacted
    with are the list's "new to you" products; the value is the share of the
    target products absent from the history that are among them (nan when
    every target is a repeat). A page's own discovery recall is this at its own
    count of unseen products (:func:`discovery_recall`); a reference list is cut
    to the page's count, so both offer the same number of new products.
    """
    history = _history_ids(user)
    new_targets = set(targets) - history
    if not new_targets:
        return math.nan
    unseen: list[str] = []
    seen: set[str] = set()
    for pid in ranked:
        if len(unseen) >= count:
            break
        if pid not in history and pid not in seen:
            seen.add(pid)
            unseen.append(pid)
    return len(new_targets & seen) / len(new_targets)


def position_weights(sizes: Sequence[int]) -> list[list[float]]:
    """Attention a shopper gives each slot of a page whose placements hold ``sizes`` products:
    ``1 / log2(i + 2) * 1 / log2(j + 2)`` for product ``j`` of placement ``i`` (both from 0):
    the first placements, and the first products of each, are seen first."""
    return [
        [1.0 / (math.log2(i + 2) * math.log2(j + 2)) for j in range(n)] for i, n in enumerate(sizes)
    ]


def position_weighted_recall(placements: Sequence[Sequence[str]], targets: Iterable[str]) -> float:
    """Next-basket recall where a hit counts its slot's :func:`position_weights` weight.

    ``placements`` are product-id lists in page order (a reference list is laid
    out in the evaluated page's placement sizes). Sum of the weights of the
    slots holding a target product (each product counted at its first slot),
    divided by the number of target products. nan without targets.
    """
    target = set(targets)
    if not target:
        return math.nan
    weights = position_weights([len(pl) for pl in placements])
    found: set[str] = set()
    total = 0.0
    for pl, ws in zip(placements, weights, strict=True):
        for pid, w in zip(pl, ws, strict=True):
            if pid in target and pid not in found:
                found.add(pid)
                total += w
    return total / len(target)


def hit_rate(page: Page, targets: Iterable[str]) -> float:
    """1.0 when at least one target product is on the page, else 0.0 (nan without targets)."""
    target = set(targets)
    if not target:
        return math.nan
    return 1.0 if target & _page_ids(page) else 0.0
