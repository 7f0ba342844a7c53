"""Personalised themes without a language model: the baseline the LLM must beat.

From the user's own history: "Buy it again" (frequent and recent products,
pinned), the user's top aisles, products often bought together with theirs
(after :meth:`HistoryThemeGenerator.fit` on other users' orders), their stated
preferences, and popular picks for a cold start.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from ..catalog import Catalog
from ..interfaces import ThemeGenerator
from ..text import normalize
from ..types import Interaction, Product, Theme, UserContext

__all__ = ["HistoryThemeGenerator", "user_product_weights"]

_EVENT_WEIGHT = {"purchase": 1.0, "cart": 0.6, "view": 0.2, "click": 0.3}
_AISLE_TITLES = (
    "Your {x} favourites",
    "More {x} for you",
    "Stock up on {x}",
    "Fresh finds in {x}",
    "Picked for you: {x}",
    "Explore {x}",
)


def user_product_weights(history: Iterable[Interaction]) -> dict[str, float]:
    """Affinity of a user to each product: event-weighted counts, recent orders weigh more."""
    hist = list(history)
    last = max((i.order_number or 0 for i in hist), default=0)
    weights: dict[str, float] = defaultdict(float)
    for it in hist:
        recency = 1.0
        if last and it.order_number is not None:
            recency = 0.5 + 0.5 * (it.order_number / last)
        weights[it.product_id] += _EVENT_WEIGHT[it.event] * it.quantity * recency
    return dict(weights)


def _display(name: str) -> str:
    """Aisle/department names in catalogs are often lower case: make them title-like."""
    small = {"and", "or", "of", "the", "in", "for", "with"}
    words = name.replace("_", " ").split()
    return " ".join(w if (i and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))


class HistoryThemeGenerator(ThemeGenerator):
    """Themes from the user's own purchases; popular picks when there are none."""

    source = "history"

    @property
    def run_inline(self) -> bool:
        return True

    def __init__(
        self,
        catalog: Catalog,
        *,
        buy_again: bool = True,
        pins_per_aisle: int = 4,
        max_pinned: int = 30,
    ) -> None:
        self.catalog = catalog
        self.buy_again = buy_again
        self.pins_per_aisle = pins_per_aisle
        self.max_pinned = max_pinned
        self._copurchase: dict[str, Counter[str]] = {}
        self._popular_cache: list[Theme] | None = None
        # The last (user, n, themes): a page asks twice for the same user (the LLM theme
        # generator's "Buy it again", then the storefront's fallback themes).
        self._last: tuple[UserContext, int, list[Theme]] | None = None
        self._phrase_memo: dict[tuple[str, ...], list[str]] = {}

    # -- optional fitting -------------------------------------------------------------
    def fit(self, users: Iterable[UserContext]) -> HistoryThemeGenerator:
        """Learn which products are bought together, from other users' orders."""
        co: dict[str, Counter[str]] = defaultdict(Counter)
        for user in users:
            orders: dict[int, set[str]] = defaultdict(set)
            for it in user.history:
                if it.order_number is not None and it.product_id in self.catalog:
                    orders[it.order_number].add(it.product_id)
            for basket in orders.values():
                items = sorted(basket)
                for a in items:
                    for b in items:
                        if a != b:
                            co[a][b] += 1
        self._copurchase = dict(co)
        self._last = None
        return self

    # -- generation ---------------------------------------------------------------------
    def generate(self, user: UserContext, n: int) -> list[Theme]:
        last = self._last
        if last is not None and last[0] is user and last[1] == n:
            return list(last[2])
        themes = self._generate(user, n)
        self._last = (user, n, themes)
        return list(themes)

    def _generate(self, user: UserContext, n: int) -> list[Theme]:
        weights = {
            pid: w for pid, w in user_product_weights(user.history).items() if pid in self.catalog
        }
        themes: list[Theme] = []
        if weights:
            themes.extend(self._personal(user, weights, n))
        for pref in user.preferences[:2]:
            if len(themes) >= n:
                break
            clean = normalize(pref)
            if clean:
                themes.append(
                    Theme(
                        title=f"{_display(clean)} picks"[:60],
                        description=f"Because you told us you like {clean}.",
                        concepts=[clean],
                        kind="preference",
                        source="history",
                    )
                )
        if len(themes) < n:
            themes.extend(self._popular_themes(n - len(themes), exclude={t.title for t in themes}))
        return themes[:n]

    def _personal(self, user: UserContext, weights: dict[str, float], n: int) -> list[Theme]:
        ranked = sorted(weights, key=lambda pid: -weights[pid])
        themes: list[Theme] = []
        shown: set[str] = set()
        if self.buy_again:
            pinned = ranked[: self.max_pinned]
            shown.update(pinned)
            top_aisles = [
                a for a, _ in Counter(self.catalog[p].aisle for p in pinned).most_common(3) if a
            ]
            names = ", ".join(self.catalog[p].title for p in pinned[:3])
            themes.append(
                Theme(
                    title="Buy it again",
                    description=f"Your regulars, like {names}."[:200],
                    concepts=top_aisles,
                    kind="buy_again",
                    source="history",
                    pinned_product_ids=pinned,
                )
            )
        aisle_weight: dict[str, float] = defaultdict(float)
        by_aisle: dict[str, list[str]] = defaultdict(list)
        for pid in ranked:
            p = self.catalog[pid]
            if p.aisle:
                aisle_weight[p.aisle] += weights[pid]
                by_aisle[p.aisle].append(pid)
        top_aisles = sorted(aisle_weight, key=lambda a: -aisle_weight[a])[:n]
        for i, aisle in enumerate(top_aisles):
            products = [self.catalog[pid] for pid in by_aisle[aisle]]
            pins = [pid for pid in by_aisle[aisle] if pid not in shown][: self.pins_per_aisle]
            shown.update(pins)
            concepts = [aisle, *self._phrases(by_aisle[aisle], products)]
            themes.append(
                Theme(
                    title=_AISLE_TITLES[i % len(_AISLE_TITLES)].format(x=_display(aisle))[:60],
                    description=f"More from {aisle}, the aisle you shop most.",
                    concepts=list(dict.fromkeys(concepts))[:5],
                    kind="aisle",
                    source="history",
                    departments=[products[0].department] if products[0].department else [],
                    pinned_product_ids=pins,
                )
            )
        if self._copurchase:
            themes[2:2] = self._together(ranked, shown)
        return themes

    def _phrases(self, ids: list[str], products: Sequence[Product]) -> list[str]:
        """:func:`_title_phrases` of these products, remembered (a user's aisles repeat)."""
        key = tuple(ids)
        hit = self._phrase_memo.get(key)
        if hit is None:
            if len(self._phrase_memo) > 50_000:
                self._phrase_memo.clear()
            hit = self._phrase_memo[key] = _title_phrases(products, 3)
        return hit

    def _together(self, ranked: Sequence[str], shown: set[str]) -> list[Theme]:
        for anchor in ranked[:5]:
            partners = [
                pid
                for pid, _ in self._copurchase.get(anchor, Counter()).most_common(40)
                if pid not in shown
            ]
            if len(partners) >= 3:
                p = self.catalog[anchor]
                return [
                    Theme(
                        title=f"Goes well with {p.title}"[:60],
                        description=f"Often bought together with {p.title}.",
                        concepts=list(dict.fromkeys(self.catalog[x].aisle for x in partners[:10]))[
                            :5
                        ],
                        kind="bought_together",
                        source="history",
                        pinned_product_ids=partners[:20],
                    )
                ]
        return []

    def _popular_themes(self, n: int, exclude: set[str]) -> list[Theme]:
        if self._popular_cache is None:
            self._popular_cache = self._make_popular_themes()
        return [t for t in self._popular_cache if t.title not in exclude][:n]

    def _make_popular_themes(self) -> list[Theme]:
        """User-independent: computed once per catalog."""
        popular = sorted(self.catalog, key=lambda p: -p.popularity)
        themes: list[Theme] = []
        if popular and popular[0].popularity > 0:
            themes.append(
                Theme(
                    title="Popular right now",
                    description="What other shoppers buy most.",
                    concepts=[
                        a for a, _ in Counter(p.aisle for p in popular[:50]).most_common(3) if a
                    ],
                    kind="popular",
                    source="history",
                    pinned_product_ids=[p.id for p in popular[:30]],
                )
            )
        dept_pop: dict[str, float] = defaultdict(float)
        dept_aisles: dict[str, Counter[str]] = defaultdict(Counter)
        for p in popular:
            if p.department:
                dept_pop[p.department] += p.popularity + 1e-6
                if p.aisle and sum(dept_aisles[p.department].values()) < 200:
                    dept_aisles[p.department][p.aisle] += 1
        for dept in sorted(dept_pop, key=lambda d: -dept_pop[d]):
            aisles = [a for a, _ in dept_aisles[dept].most_common(3)]
            themes.append(
                Theme(
                    title=f"Popular in {_display(dept)}"[:60],
                    description=f"Best sellers from {dept}.",
                    concepts=[dept, *aisles][:5],
                    kind="popular",
                    source="history",
                    departments=[dept],
                )
            )
        return themes


def _title_phrases(products: Sequence[Product], k: int) -> list[str]:
    """The most frequent two-word (else one-word) phrases of a set of product titles."""
    counts: Counter[str] = Counter()
    for p in products:
        words = [w for w in normalize(p.title).split() if len(w) > 2 and not w.isdigit()]
        # dict.fromkeys, not set: ties in most_common keep first-seen order, whatever
        # the process's hash seed (a set's order would change pages between runs).
        pairs = [" ".join(words[i : i + 2]) for i in range(len(words) - 1)]
        counts.update(list(dict.fromkeys(pairs)))
        counts.update(list(dict.fromkeys(words)))
    return [w for w, _ in counts.most_common(k)]
