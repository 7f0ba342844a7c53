"""Synthetic shoppers: seeded order histories sampled from a catalog, to label more prompts.

Thirty real shoppers give a few hundred teacher calls; a student needs more. A synthetic
shopper is drawn so that its history looks like a grocery history without copying any
real one:

1. **a department/aisle mix**: 3-7 aisles drawn without replacement with probability
   proportional to the square root of their popularity mass (popular aisles are likelier,
   but not every shopper is "fresh fruits and yogurt"), each with a gamma-distributed
   taste weight;
2. **staples**: 2-6 products of those aisles (popularity-weighted) that the shopper
   re-orders (each is in a basket with probability 0.6, the typical re-order rate);
3. **baskets**: 4-12 orders (``min_orders``-``max_orders``); each adds 2-8 more products,
   either a product *bought together* with one already in the basket (co-purchase counts
   of the ``source`` histories, probability 0.35 when known) or a popularity-weighted
   product of an aisle picked by taste weight.

Popularity and co-purchase come from ``source`` (histories of shoppers *allowed in
training*, e.g. Instacart users 1-30) when given, else from the catalog's ``popularity``
column, else uniform. Never pass evaluation shoppers as ``source``: their baskets would
leak into the training prompts. Shopper ``i`` of a seed is the same whatever ``n`` is
(each has its own ``random.Random(f"{seed}:{i}")``), so a run can be extended.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..types import Interaction, Product, UserContext

__all__ = ["SYNTHETIC_PREFIX", "synthetic_shoppers"]

SYNTHETIC_PREFIX = "synthetic"
"""User ids of synthetic shoppers: ``synthetic-<seed>-<i>``."""

_REORDER = 0.6
_COPURCHASE = 0.35
_MAX_PAIR_ITEMS = 30


def _weights(catalog: Catalog, source: Sequence[UserContext] | None) -> dict[str, float]:
    if source:
        counts: Counter[str] = Counter()
        for user in source:
            for it in user.history:
                if it.product_id in catalog:
                    counts[it.product_id] += it.quantity
        if counts:
            return {pid: float(c) for pid, c in counts.items()}
    pops = {p.id: float(p.popularity) for p in catalog if p.popularity > 0}
    return pops or {p.id: 1.0 for p in catalog}


def _co_purchase(source: Sequence[UserContext] | None) -> dict[str, Counter[str]]:
    pairs: dict[str, Counter[str]] = defaultdict(Counter)
    for user in source or ():
        orders: dict[int | None, list[str]] = defaultdict(list)
        for it in user.history:
            orders[it.order_number].append(it.product_id)
        for basket in orders.values():
            items = list(dict.fromkeys(basket))[:_MAX_PAIR_ITEMS]
            for a in items:
                for b in items:
                    if a != b:
                        pairs[a][b] += 1
    return dict(pairs)


def _pick(rng: random.Random, items: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(items, weights=weights, k=1)[0]


def synthetic_shoppers(
    catalog: Catalog,
    n: int,
    *,
    seed: int = 0,
    source: Iterable[UserContext] | None = None,
    min_orders: int = 4,
    max_orders: int = 12,
    prefix: str = SYNTHETIC_PREFIX,
) -> list[UserContext]:
    """``n`` seeded synthetic shoppers drawn from ``catalog`` (see the module docs)."""
    if n < 0:
        raise ConfigurationError(f"synthetic shoppers: n must be >= 0, got {n}")
    if not 1 <= min_orders <= max_orders:
        raise ConfigurationError(
            f"synthetic shoppers: need 1 <= min_orders <= max_orders, got {min_orders}, "
            f"{max_orders}"
        )
    if len(catalog) == 0:
        raise ConfigurationError("synthetic shoppers: the catalog is empty")
    src = list(source) if source is not None else None
    weights = _weights(catalog, src)
    pairs = _co_purchase(src)
    by_aisle: dict[str, list[Product]] = defaultdict(list)
    for product_id in sorted(weights):
        p = catalog[product_id]
        by_aisle[p.aisle or p.department or "other"].append(p)
    aisle_names = sorted(by_aisle)
    aisle_mass = [sum(weights[p.id] for p in by_aisle[a]) ** 0.5 for a in aisle_names]
    shoppers: list[UserContext] = []
    for i in range(1, n + 1):
        rng = random.Random(f"{seed}:{i}")
        k = min(len(aisle_names), rng.randint(3, 7))
        chosen: list[str] = []
        names, mass = list(aisle_names), list(aisle_mass)
        while len(chosen) < k:
            j = rng.choices(range(len(names)), weights=mass, k=1)[0]
            chosen.append(names.pop(j))
            mass.pop(j)
        taste = [rng.gammavariate(1.0, 1.0) + 0.05 for _ in chosen]

        def from_aisles(
            rng: random.Random = rng, chosen: list[str] = chosen, taste: list[float] = taste
        ) -> str:
            aisle = _pick(rng, chosen, taste)
            products = by_aisle[aisle]
            return _pick(rng, [p.id for p in products], [weights[p.id] for p in products])

        staples = list(dict.fromkeys(from_aisles() for _ in range(rng.randint(2, 6))))
        history: list[Interaction] = []
        for order in range(1, rng.randint(min_orders, max_orders) + 1):
            basket = [s for s in staples if rng.random() < _REORDER]
            target = len(basket) + rng.randint(2, 8)
            tries = 0
            while len(basket) < target and tries < 50:
                tries += 1
                pid: str | None = None
                if basket and rng.random() < _COPURCHASE:
                    near = pairs.get(rng.choice(basket))
                    if near:
                        cands = sorted(near)
                        pid = _pick(rng, cands, [near[c] for c in cands])
                if pid is None:
                    pid = from_aisles()
                if pid not in basket and pid in catalog:
                    basket.append(pid)
            history.extend(Interaction(product_id=pid, order_number=order) for pid in basket)
        session = {
            "day_of_week": str(rng.randrange(7)),
            "hour_of_day": str(rng.choice(range(7, 23))),
            "days_since_prior_order": str(rng.choice((3, 5, 7, 7, 10, 14, 30))),
        }
        shoppers.append(
            UserContext(user_id=f"{prefix}-{seed}-{i}", history=history, session=session)
        )
    return shoppers
