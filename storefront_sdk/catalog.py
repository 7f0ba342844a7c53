"""The product catalog: loading, validation and lookups.

A :class:`Catalog` is an immutable, ordered collection of :class:`Product`
with O(1) lookup by id. Loaders validate their input and raise
:class:`~storefront_sdk.exceptions.CatalogError` naming file, row and field.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property

from .exceptions import CatalogError
from .types import Product

__all__ = ["Catalog"]


class Catalog:
    """An immutable collection of products, indexed by id."""

    def __init__(self, products: Iterable[Product], *, name: str = "catalog") -> None:
        self.name = name
        self._products: tuple[Product, ...] = tuple(products)
        self._by_id: dict[str, Product] = {}
        for i, p in enumerate(self._products):
            if p.id in self._by_id:
                raise CatalogError(f"duplicate product id {p.id!r}", path=name, row=i + 1, field="id")
            self._by_id[p.id] = p
        if not self._products:
            raise CatalogError("catalog is empty", path=name)

    # -- lookups ---------------------------------------------------------------
    @property
    def products(self) -> tuple[Product, ...]:
        return self._products

    def __len__(self) -> int:
        return len(self._products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self._products)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._by_id

    def __getitem__(self, product_id: str) -> Product:
        try:
            return self._by_id[product_id]
        except KeyError:
            raise KeyError(f"unknown product id {product_id!r} in {self.name}") from None

    def get(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    def __repr__(self) -> str:
        return f"Catalog(name={self.name!r}, products={len(self)})"

    @cached_property
    def departments(self) -> list[str]:
        """Department names, most products first."""
        return [d for d, _ in Counter(p.department for p in self._products if p.department).most_common()]

    @cached_property
    def aisles(self) -> list[str]:
        """Aisle names, most products first."""
        return [a for a, _ in Counter(p.aisle for p in self._products if p.aisle).most_common()]

    @cached_property
    def version(self) -> str:
        """A stable fingerprint of the catalog's content (used in cache keys)."""
        h = hashlib.sha256()
        for p in self._products:
            h.update(p.model_dump_json().encode())
        return h.hexdigest()[:16]

    # -- derived catalogs ----------------------------------------------------------
    def with_popularity(self, counts: Mapping[str, float]) -> Catalog:
        """A copy whose products carry ``counts`` as popularity (0 when absent)."""
        return Catalog(
            (p.model_copy(update={"popularity": float(counts.get(p.id, 0.0))}) for p in self._products),
            name=self.name,
        )
