"""The simple baselines every configuration is compared with, at equal counts.

A recommender engineer replacing nothing would show one of two lists:

* ``popular``: the catalog's most popular products, the same for everyone
  (popularity is ``Product.popularity``: in the Instacart evaluation, purchase
  counts over the evaluated histories only, never their targets);
* ``buy_again``: the user's own products by purchase count (ties: first bought
  first), then the popular products they never bought -- the ten-line list.

:func:`reference_lists` returns both for a user; the harness cuts each to the
evaluated page's own product count (next-basket recall) and its unseen products
to the page's own count of unseen products (discovery recall), so a page is only
ever compared with a list of the same length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..catalog import Catalog
from ..types import UserContext

__all__ = ["REFERENCES", "PopularList", "buy_again_list", "popular_list", "reference_lists"]

REFERENCES: tuple[str, ...] = ("popular", "buy_again")
"""The reference configurations, in the order reports list them (first)."""


class PopularList:
    """The catalog's products with some popularity, most popular first (ties: catalog order).

    Computed once per catalog; ``ids`` is the ordered list.
    """

    def __init__(self, catalog: Catalog) -> None:
        ranked = sorted(
            (p for p in catalog if p.popularity > 0), key=lambda p: -p.popularity
        )  # sorted() is stable: equal popularity keeps the catalog's order
        self.catalog = catalog
        self.ids: list[str] = [p.id for p in ranked]


def popular_list(catalog: Catalog) -> list[str]:
    """Product ids by popularity, most popular first (products with popularity 0 left out)."""
    return PopularList(catalog).ids


def buy_again_list(user: UserContext, popular: Sequence[str], catalog: Catalog) -> list[str]:
    """The user's purchased products by count (ties: first bought first), then ``popular``
    products they never bought."""
    counts: Counter[str] = Counter()
    for it in user.history:
        if it.event == "purchase" and it.product_id in catalog:
            counts[it.product_id] += it.quantity
    own = [pid for pid, _ in counts.most_common()]
    mine = set(own)
    return own + [pid for pid in popular if pid not in mine]


def reference_lists(
    user: UserContext, popular: Sequence[str], catalog: Catalog
) -> dict[str, list[str]]:
    """``{"popular": [...], "buy_again": [...]}`` for one user (uncut)."""
    return {"popular": list(popular), "buy_again": buy_again_list(user, popular, catalog)}
