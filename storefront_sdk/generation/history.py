"""Personalised themes without a language model: the baseline the LLM must beat.

A page from the user's own history, laid out as a recommender engineer would:

1. **Buy it again**: the user's regulars (purchase counts, recent orders
   weighing more).
2. **One placement per department** they shop (an aisle of it when the
   department alone holds more of their products than a placement shows):
   their own products there first, by affinity, then the products of that
   department they have never bought, most popular first. Popularity is the
   catalog's (``Product.popularity``); a department the user buys a lot from
   boosts its popular products (``discovery_boost``).
3. **More from your past orders**: the rest of their history, so an occasional
   purchase is not lost because its department did not get a placement.
4. **Popular picks for you** (new to the user) and, for a cold start, the
   catalog's popular themes.

The page policy has one knob, ``discovery``: the share of each department
placement kept for products the user has never bought (0 = their own products
fill it first; 1 = only new products). More discovery shows more unseen
products and fewer repeats; see ``docs/evaluation.md`` for what it does to
next-basket and discovery recall.

Every theme pins its products (``Theme.pinned_product_ids``), computed together
so that no product appears twice on a page; retrieval only tops up a placement
whose pinned products run short. :meth:`HistoryThemeGenerator.fit` on other
users' orders adds a "Goes well with ..." theme (products bought together).

It stays one module because it is one generator: each placement kind above is a step of
the same page layout over the same affinity scores.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..filtering.safety import SafetyPolicy
from ..interfaces import ThemeGenerator
from ..text import normalize
from ..types import Interaction, Product, Theme, UserContext

__all__ = ["HistoryThemeGenerator", "display_name", "user_product_weights"]

_EVENT_WEIGHT = {"purchase": 1.0, "cart": 0.6, "view": 0.2, "click": 0.3}
#: Discovery candidates kept per department (most popular first).
_POOL_PER_DEPARTMENT = 200
_RECENT_USERS = 64
"""Users whose themes are remembered (build_many's default concurrency is far below)."""


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


def display_name(name: str) -> str:
    """A catalog category name as a title: "oils vinegars" -> "Oils & vinegars".

    Category names often run plural nouns together without punctuation
    ("chips pretzels", "nuts seeds dried fruit"). A break goes after each plural
    word that is followed by another word; the last break reads "&", the others
    ",". Only the first letter is capitalised.
    """
    words = name.replace("_", " ").split()
    if not words:
        return name
    parts: list[list[str]] = [[]]
    for i, w in enumerate(words):
        parts[-1].append(w)
        if i < len(words) - 1 and _plural(w):
            parts.append([])
    phrases = [" ".join(p) for p in parts]
    text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " & " + phrases[-1]
    return text[:1].upper() + text[1:]


def _plural(word: str) -> bool:
    w = word.lower()
    return len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is"))


@dataclass(frozen=True)
class _Pools:
    """Discovery candidates per department, per (department, aisle) in the same order, and
    each department's merge keys ``(-popularity, id)`` at no boost."""

    by_dept: dict[str, list[Product]]
    by_aisle: dict[tuple[str, str], list[Product]]
    keys: dict[str, list[tuple[float, str]]]

    @classmethod
    def of(cls, by_dept: dict[str, list[Product]]) -> _Pools:
        by_aisle: dict[tuple[str, str], list[Product]] = defaultdict(list)
        for dept, products in by_dept.items():
            for p in products:
                by_aisle[(dept, p.aisle)].append(p)
        keys = {d: [(-p.popularity, p.id) for p in ps] for d, ps in by_dept.items()}
        return cls(by_dept, dict(by_aisle), keys)


@dataclass
class _Group:
    """A candidate placement: a department, or one aisle of a department."""

    level: str  # "department" | "aisle"
    name: str
    department: str
    own: list[str] = field(default_factory=list)


class HistoryThemeGenerator(ThemeGenerator):
    """Themes from the user's own purchases and the catalog's popularity, no model.

    ``placements`` and ``products_per_theme`` are the page's shape (the
    storefront passes its own); ``discovery`` in [0, 1] is the share of each
    department placement kept for products new to the user; ``discovery_boost``
    multiplies a new product's popularity by ``1 + boost * share`` where
    ``share`` is the user's share of purchases in its department (0 = plain
    popularity). Products ``safety`` restricts (age-restricted categories) are
    left out for users who are not age-verified.
    """

    source = "history"

    @property
    def run_inline(self) -> bool:
        return True

    def __init__(
        self,
        catalog: Catalog,
        *,
        buy_again: bool = True,
        discovery: float = 0.25,
        discovery_boost: float = 8.0,
        placements: int = 8,
        products_per_theme: int = 20,
        past_orders: bool = True,
        safety: SafetyPolicy | None = None,
    ) -> None:
        if not 0.0 <= discovery <= 1.0:
            raise ConfigurationError(f"discovery must be in [0, 1], got {discovery}")
        if discovery_boost < 0:
            raise ConfigurationError(f"discovery_boost must be >= 0, got {discovery_boost}")
        if placements < 1 or products_per_theme < 1:
            raise ConfigurationError("placements and products_per_theme must be >= 1")
        self.catalog = catalog
        self.buy_again = buy_again
        self.discovery = discovery
        self.discovery_boost = discovery_boost
        self.placements = placements
        self.products_per_theme = products_per_theme
        self.past_orders = past_orders
        # Age-restricted products (alcohol, by default) are left out of the themes of a user
        # who is not age-verified: the storefront's SafetyGate would drop them (and a theme
        # naming their aisle) anyway, leaving holes. The gate still enforces the real policy.
        self.safety = safety if safety is not None else SafetyPolicy()
        self._restricted: dict[str, bool] = {}
        self._terms: dict[str, list[str]] = {}
        self._copurchase: dict[str, Counter[str]] = {}
        self._popular_cache: list[Theme] | None = None
        self._pool_cache: dict[bool, _Pools] = {}
        # The recent (user, n, themes), by id(user): a page asks twice for the same user
        # (the LLM theme generator's "Buy it again", then the storefront's fallback
        # themes), and build_many interleaves up to `concurrency` pages, so one remembered
        # user (as before) missed about half the time there. The entry holds the user
        # object, so its id cannot be reused while it is remembered.
        self._recent: dict[int, tuple[UserContext, int, list[Theme]]] = {}
        self._recent_lock = threading.Lock()

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
        with self._recent_lock:
            self._recent.clear()
        return self

    # -- generation ---------------------------------------------------------------------
    def generate(self, user: UserContext, n: int) -> list[Theme]:
        key = id(user)
        hit = self._recent.get(key)
        if hit is not None and hit[0] is user and hit[1] == n:
            return list(hit[2])
        themes = self._generate(user, n)
        with self._recent_lock:
            self._recent[key] = (user, n, themes)
            while len(self._recent) > _RECENT_USERS:
                del self._recent[next(iter(self._recent))]  # the oldest
        return list(themes)

    def _allowed(self, pid: str) -> bool:
        hit = self._restricted.get(pid)
        if hit is None:
            hit = self._restricted[pid] = (
                self.safety.restricted_product(self.catalog[pid]) is not None
            )
        return not hit

    def _generate(self, user: UserContext, n: int) -> list[Theme]:
        weights = {
            pid: w for pid, w in user_product_weights(user.history).items() if pid in self.catalog
        }
        banned: set[str] = set()
        if not user.age_verified:
            banned = {pid for pid in weights if not self._allowed(pid)}
        themes: list[Theme] = (
            self._personal(weights, n, banned, not user.age_verified) if weights else []
        )
        for pref in user.preferences[:2]:
            if len(themes) >= n:
                break
            clean = normalize(pref)
            if clean:
                themes.append(
                    Theme(
                        title=f"{display_name(clean)} picks"[:60],
                        description=f"Because you told us you like {clean}.",
                        concepts=[clean],
                        kind="preference",
                        source="history",
                    )
                )
        if len(themes) < n:
            shown = {pid for t in themes for pid in t.pinned_product_ids}
            for t in self._popular_themes(n, exclude={t.title for t in themes}):
                if len(themes) >= n:
                    break
                if t.pinned_product_ids:
                    # Pins of the catalog-wide list: none the page shows already, none the
                    # user may not see.
                    pins = [
                        p
                        for p in t.pinned_product_ids
                        if p not in shown and (user.age_verified or self._allowed(p))
                    ]
                    if not pins:
                        continue
                    t = t.model_copy(update={"pinned_product_ids": pins})
                themes.append(t)
        return themes[:n]

    # -- the personal page ----------------------------------------------------------------
    def _pools(self, restrict: bool) -> _Pools:
        """The discovery candidates (once per catalog): products with some popularity, most
        popular first, at most ``_POOL_PER_DEPARTMENT`` per department; for ``restrict``,
        those of them a user who is not age-verified may see."""
        pools = self._pool_cache.get(restrict)
        if pools is None:
            if restrict:
                by_dept = {
                    dept: [p for p in products if self._allowed(p.id)]
                    for dept, products in self._pools(False).by_dept.items()
                }
            else:
                pool: dict[str, list[Product]] = defaultdict(list)
                for p in sorted(self.catalog, key=lambda p: -p.popularity):
                    if p.popularity <= 0:
                        break
                    if len(pool[p.department]) < _POOL_PER_DEPARTMENT:
                        pool[p.department].append(p)
                by_dept = dict(pool)
            pools = self._pool_cache[restrict] = _Pools.of(by_dept)
        return pools

    def _new_products(
        self,
        weights: dict[str, float],
        dept_share: dict[str, float],
        restrict: bool,
        limit: int,
        user_departments: set[str],
    ) -> _Lazy:
        """The first ``limit`` products the user never bought, by popularity boosted in their
        departments (a merge of the per-department lists: the boost is per department).

        ``user_departments`` are those of every product in ``weights``: only their lists
        and boosted ones are filtered per user; the others are merged as they are."""
        boost = self.discovery_boost
        pools = self._pools(restrict)

        def stream(products: list[Product], factor: float) -> Iterator[tuple[float, str]]:
            for p in products:
                if p.id not in weights:
                    yield -p.popularity * factor, p.id

        streams: list[Iterable[tuple[float, str]]] = []
        for dept, keys in pools.keys.items():
            factor = 1.0 + boost * dept_share.get(dept, 0.0)
            if factor == 1.0 and dept not in user_departments:
                streams.append(keys)  # nothing to filter nor boost: merged as it is
            else:
                streams.append(stream(pools.by_dept[dept], factor))
        return _Lazy(pid for _, pid in islice(heapq.merge(*streams), limit))

    def _group_new(self, group: _Group, weights: dict[str, float], restrict: bool) -> Iterator[str]:
        """Products of ``group`` the user never bought, most popular first."""
        pools = self._pools(restrict)
        if group.level == "aisle":
            products = pools.by_aisle.get((group.department, group.name), ())
        else:
            products = pools.by_dept.get(group.department, ())
        for p in products:
            if p.id not in weights:
                yield p.id

    def _personal(
        self, weights: dict[str, float], n: int, banned: set[str], restrict: bool
    ) -> list[Theme]:
        cat = self.catalog
        size = self.products_per_theme
        ranked = sorted((p for p in weights if p not in banned), key=lambda p: (-weights[p], p))
        dept_w: dict[str, float] = defaultdict(float)
        for pid in ranked:
            dept_w[cat[pid].department] += weights[pid]
        total = sum(dept_w.values()) or 1.0
        limit = len(banned) + (self.placements + n) * size
        new = self._new_products(
            weights,
            {d: w / total for d, w in dept_w.items()},
            restrict,
            limit,
            {cat[pid].department for pid in weights},
        )
        shown: set[str] = set(banned)

        def take(ids: Iterable[str], k: int) -> list[str]:
            out: list[str] = []
            for pid in ids:
                if len(out) >= k:
                    break
                if pid not in shown:
                    out.append(pid)
                    shown.add(pid)
            return out

        head: list[Theme] = []
        if self.buy_again:
            pinned = take(ranked, size)
            names = ", ".join(cat[p].title for p in pinned[:3])
            head.append(
                self._pinned_theme(
                    "Buy it again", f"Your regulars, like {names}.", "buy_again", pinned
                )
            )
        if self._copurchase:
            head.extend(self._together(ranked, shown, take))

        # 1. Department (or aisle) placements with the user's own products, best first;
        #    the page keeps a slot for the rest of the history and one for popular picks.
        reserve = round(self.discovery * size)
        tail_slots = (1 if self.past_orders else 0) + 1
        slots = max(self.placements - len(head) - tail_slots, 0)
        used: set[tuple[str, str]] = set()
        groups: list[tuple[_Group, list[str]]] = []
        while len(groups) < slots:
            group = self._best_group(ranked, weights, new, shown, used, size - reserve)
            if group is None or not group.own:
                break
            used.add((group.level, group.name))
            groups.append((group, take(group.own, size - reserve)))
        past = take(ranked, size) if self.past_orders else []

        # 2. Discovery: the best new products for the room left on the page go to the
        #    placement of their department, the others to "Popular picks for you".
        room = (len(groups) * size - sum(len(own) for _, own in groups)) + size
        budget = list(islice((p for p in new if p not in shown), room))
        fresh: list[list[str]] = [[] for _ in groups]
        picks: list[str] = []
        for pid in budget:
            product = cat[pid]
            for i, (group, own) in enumerate(groups):
                name = product.department if group.level == "department" else product.aisle
                if len(own) + len(fresh[i]) < size and name == group.name:
                    fresh[i].append(pid)
                    break
            else:
                if len(picks) < size:
                    picks.append(pid)
                    continue
                continue
            shown.add(pid)
        shown.update(picks)
        # 3. A department placement still short is topped up with its next new products.
        for i, (group, own) in enumerate(groups):
            short = size - len(own) - len(fresh[i])
            if short > 0:
                fresh[i].extend(take(self._group_new(group, weights, restrict), short))

        themes = [
            *head,
            *(self._group_theme(g, own, f) for (g, own), f in zip(groups, fresh, strict=True)),
        ]
        if past:
            themes.append(
                self._pinned_theme(
                    "Back in your basket",
                    "Things you bought before, now and then.",
                    "past_orders",
                    past,
                )
            )
        if picks:
            themes.append(
                self._pinned_theme(
                    "Popular picks for you",
                    "What other shoppers buy most that you have not tried yet.",
                    "popular",
                    picks,
                )
            )
        # 4. Spare themes (for placements a gate drops): more departments, new products only.
        while len(themes) < n:
            group = self._best_group(ranked, weights, new, shown, used, size)
            if group is None:
                break
            used.add((group.level, group.name))
            own = take(group.own, size)
            extra = take(self._group_new(group, weights, restrict), size - len(own))
            if not own and not extra:
                break
            themes.append(self._group_theme(group, own, extra))
        return themes

    def _pinned_theme(self, title: str, description: str, kind: str, ids: list[str]) -> Theme:
        aisles = [a for a, _ in Counter(self.catalog[p].aisle for p in ids).most_common(3) if a]
        return Theme(
            title=title[:60],
            description=description[:200],
            concepts=aisles,
            kind=kind,
            source="history",
            pinned_product_ids=ids,
        )

    def _best_group(
        self,
        ranked: Sequence[str],
        weights: dict[str, float],
        new: _Lazy,
        shown: set[str],
        used: set[tuple[str, str]],
        own_room: int,
    ) -> _Group | None:
        """The department (or, for a department too big for one placement, the aisle) with
        the most remaining affinity; without remaining history, that of the most popular
        remaining new product."""
        product = self.catalog.products_by_id
        by_dept: dict[str, list[str]] = defaultdict(list)
        for pid in ranked:
            if pid not in shown:
                by_dept[product[pid].department].append(pid)
        split = {d for level, d in used if level == "aisle-of"}
        groups: list[_Group] = []
        for dept, ids in by_dept.items():
            if ("department", dept) in used:
                continue
            if len(ids) <= max(own_room, 1) and dept not in split:
                groups.append(_Group("department", dept, dept, ids))
                continue
            by_aisle: dict[str, list[str]] = defaultdict(list)
            for pid in ids:
                by_aisle[product[pid].aisle].append(pid)
            groups.extend(
                _Group("aisle", a, dept, a_ids)
                for a, a_ids in by_aisle.items()
                if ("aisle", a) not in used
            )
        if groups:
            best = max(groups, key=lambda g: sum(weights[p] for p in g.own[: max(own_room, 1)]))
            if best.level == "aisle":
                used.add(("aisle-of", best.department))
            return best

        def taken(pid: str) -> bool:
            dept = product[pid].department
            return pid in shown or ("department", dept) in used or dept in split

        # Shown products and used departments stay so for the rest of the page: the scan
        # goes on where the previous call stopped.
        first = new.skip_while(taken)
        if first is None:
            return None
        dept = product[first].department
        return _Group("department", dept, dept, [])

    def _group_theme(self, group: _Group, own: list[str], fresh: list[str]) -> Theme:
        name = display_name(group.name) if group.name else "More for you"
        mostly_new = len(fresh) > len(own)
        title = f"Discover {name[:1].lower()}{name[1:]}" if mostly_new else name
        if own and fresh:
            description = f"Your usual {group.name}, and popular ones you have not tried."
        elif own:
            description = f"Your usual {group.name}."
        else:
            description = f"Popular {group.name} you have not tried yet."
        ids = own + fresh
        concepts = [group.name, *self._phrases(ids)]
        return Theme(
            title=title[:60],
            description=description[:200],
            concepts=list(dict.fromkeys(c for c in concepts if c))[:5],
            kind=group.level,
            source="history",
            departments=[group.department] if group.department else [],
            pinned_product_ids=ids,
        )

    def _phrases(self, ids: list[str]) -> list[str]:
        """The most frequent title phrases of a placement's first products (keyword seeds)."""
        counts: Counter[str] = Counter()
        for pid in ids[:10]:
            terms = self._terms.get(pid)
            if terms is None:
                if len(self._terms) > 200_000:
                    self._terms.clear()
                terms = self._terms[pid] = _title_terms(self.catalog[pid])
            counts.update(terms)
        return [w for w, _ in counts.most_common(3)]

    def _together(
        self,
        ranked: Sequence[str],
        shown: set[str],
        take: Callable[[Iterable[str], int], list[str]],
    ) -> list[Theme]:
        for anchor in ranked[:5]:
            partners = [
                pid
                for pid, _ in self._copurchase.get(anchor, Counter()).most_common(40)
                if pid not in shown
            ]
            if len(partners) >= 3:
                p = self.catalog[anchor]
                ids = take(partners, self.products_per_theme)
                return [
                    self._pinned_theme(
                        f"Goes well with {p.title}",
                        f"Often bought together with {p.title}.",
                        "bought_together",
                        ids,
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
                    pinned_product_ids=[p.id for p in popular[: self.products_per_theme]],
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
                    title=f"Popular in {display_name(dept)[:1].lower()}{display_name(dept)[1:]}"[
                        :60
                    ],
                    description=f"Best sellers from {dept}.",
                    concepts=[dept, *aisles][:5],
                    kind="popular",
                    source="history",
                    departments=[dept],
                )
            )
        return themes


class _Lazy:
    """A list read from an iterator as far as it is iterated (re-iterable from the start):
    the merged new products are read only as deep as the page layout looks."""

    def __init__(self, items: Iterable[str]) -> None:
        self._source = iter(items)
        self._items: list[str] = []
        self._cursor = 0

    def skip_while(self, skip: Callable[[str], bool]) -> str | None:
        """The first item from the cursor on that ``skip`` refuses, else None; the cursor
        moves past the skipped ones (for a ``skip`` whose refusals stay refusals)."""
        items = self._items
        while True:
            if self._cursor == len(items):
                nxt = next(self._source, None)
                if nxt is None:
                    return None
                items.append(nxt)
            item = items[self._cursor]
            if not skip(item):
                return item
            self._cursor += 1

    def __iter__(self) -> Iterator[str]:
        items = self._items
        i = 0
        while True:
            if i < len(items):
                end = len(items)
                yield from items[i:end]
                i = end
                continue
            nxt = next(self._source, None)
            if nxt is None:
                return
            items.append(nxt)


def _title_terms(product: Product) -> list[str]:
    """A title's distinct two-word phrases, then its words (longer than two letters)."""
    words = [w for w in normalize(product.title).split() if len(w) > 2 and not w.isdigit()]
    # dict.fromkeys, not set: ties in most_common keep first-seen order, whatever
    # the process's hash seed (a set's order would change pages between runs).
    pairs = [" ".join(words[i : i + 2]) for i in range(len(words) - 1)]
    return list(dict.fromkeys(pairs)) + list(dict.fromkeys(words))
