"""Synthetic shoppers: seeded purchase histories sampled from a catalog.

For load and scale runs (precompute thousands of pages) when real histories are
few. Not for quality figures: these shoppers are a generative model's guess of
shopping behaviour, not shoppers.

The generator, per shopper (``random.Random(seed)``, so a seed gives the same
shoppers on every machine):

1. picks 1-3 *favourite departments* (weighted by how many products they hold)
   and, within them, 2-6 *favourite aisles*;
2. draws the number of orders (uniform 2-12) and per order the basket size
   (uniform 4-14);
3. fills each basket item by: re-buying an earlier item with probability
   ``rebuy`` (Instacart's reorder rate is about 0.6); else, with probability
   ``focus``, a product of a favourite aisle; else any product of the catalog.
   Products are drawn by ``popularity`` when the catalog has it, else uniformly.

Shopper ids are ``f"{prefix}{i}"`` (default ``synth-0`` ...), stable for a seed.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import defaultdict

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..types import Interaction, UserContext

__all__ = ["synthetic_users"]


class _Pool:
    """Products with cumulative weights, for fast weighted draws."""

    def __init__(self, ids: list[str], weights: list[float]) -> None:
        self.ids = ids
        self.cum = list(itertools.accumulate(w if w > 0 else 1e-3 for w in weights))

    def draw(self, rng: random.Random) -> str:
        return self.ids[bisect.bisect_left(self.cum, rng.random() * self.cum[-1])]


def synthetic_users(
    catalog: Catalog,
    n: int,
    *,
    seed: int = 0,
    prefix: str = "synth-",
    rebuy: float = 0.5,
    focus: float = 0.8,
) -> list[UserContext]:
    """``n`` shoppers with seeded purchase histories drawn from ``catalog`` (see module)."""
    if n < 0:
        raise ConfigurationError("n must be >= 0")
    if not 0.0 <= rebuy <= 1.0 or not 0.0 <= focus <= 1.0:
        raise ConfigurationError("rebuy and focus are probabilities within [0, 1]")
    if len(catalog) == 0:
        raise ConfigurationError("cannot sample shoppers from an empty catalog")
    products = list(catalog)
    weigh = any(p.popularity for p in products)
    by_aisle: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, p in enumerate(products):
        by_aisle[(p.department or "", p.aisle or "")].append(i)
    departments: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in sorted(by_aisle):
        departments[key[0]].append(key)
    dept_names = sorted(departments)
    dept_sizes = [sum(len(by_aisle[a]) for a in departments[d]) for d in dept_names]

    def pool(indices: list[int]) -> _Pool:
        return _Pool(
            [products[i].id for i in indices],
            [float(products[i].popularity or 0.0) if weigh else 1.0 for i in indices],
        )

    everything = pool(list(range(len(products))))
    aisle_pools: dict[tuple[str, str], _Pool] = {}
    rng = random.Random(seed)
    users: list[UserContext] = []
    for u in range(n):
        favs = set(rng.choices(dept_names, weights=dept_sizes, k=rng.randint(1, 3)))
        aisles = [a for d in sorted(favs) for a in departments[d]]
        fav_aisles = rng.sample(aisles, min(len(aisles), rng.randint(2, 6)))
        bought: list[str] = []
        history: list[Interaction] = []
        for order in range(1, rng.randint(2, 12) + 1):
            for _ in range(rng.randint(4, 14)):
                if bought and rng.random() < rebuy:
                    pid = rng.choice(bought)
                elif fav_aisles and rng.random() < focus:
                    key = rng.choice(fav_aisles)
                    if key not in aisle_pools:
                        aisle_pools[key] = pool(by_aisle[key])
                    pid = aisle_pools[key].draw(rng)
                else:
                    pid = everything.draw(rng)
                bought.append(pid)
                history.append(Interaction(product_id=pid, order_number=order))
        users.append(UserContext(user_id=f"{prefix}{u}", history=history))
    return users
