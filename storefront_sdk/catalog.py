"""The product catalog: loading, validation and lookups.

A :class:`Catalog` is an immutable, ordered collection of :class:`Product`
with O(1) lookup by id. Loaders validate their input and raise
:class:`~storefront_sdk.exceptions.CatalogError` naming file, row and field:

* :meth:`Catalog.from_csv` — ``id,title`` (or ``product_id,product_name``) plus
  optional ``department, aisle, brand, price, popularity`` and ``attr_*`` columns;
* :meth:`Catalog.from_jsonl` — one JSON object per line, same fields,
  ``attributes`` as an object;
* :meth:`Catalog.from_instacart` — the Kaggle Instacart layout
  (``products.csv`` + ``aisles.csv`` + ``departments.csv``);
* :meth:`Catalog.demo` — the small grocery catalog shipped with the package.

Rows are 1-based; in a CSV file the header is row 1 (as a spreadsheet shows
it), in a JSONL file the row is the line number.

Every loader applies the same limits on field sizes (the ``MAX_*`` constants,
defined with the parsers in :mod:`storefront_sdk.catalog_io` and re-exported
here), so a file that loads as CSV loads as JSONL and the other way round.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from .catalog_io import (
    _ATTR_PREFIX,
    _COLUMNS,
    MAX_ATTRIBUTE_KEY_CHARS,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_TITLE_CHARS,
    PathLike,
    _decode,
    _fmt_number,
    _products_from_csv,
    _products_from_instacart,
    _products_from_jsonl,
    _read_bytes,
)
from .exceptions import CatalogError
from .types import Product

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_KEY_CHARS",
    "MAX_ATTRIBUTE_VALUE_CHARS",
    "MAX_ID_CHARS",
    "MAX_NAME_CHARS",
    "MAX_TITLE_CHARS",
    "Catalog",
]

# Limits on one product's fields, the same for every loader (CSV, JSONL, Instacart).
# Generous for real catalogs (the Instacart catalog's longest title has 159 characters);
# they stop a malformed export or a hostile file from putting megabytes into prompts,
# pages and cache keys.
_DEMO_FILE = "demo_catalog.csv"


class Catalog:
    """An immutable collection of products, indexed by id."""

    def __init__(self, products: Iterable[Product], *, name: str = "catalog") -> None:
        self.name = name
        self._products: tuple[Product, ...] = tuple(products)
        self._by_id: dict[str, Product] = {p.id: p for p in self._products}
        if len(self._by_id) != len(self._products):
            seen: set[str] = set()
            for i, p in enumerate(self._products):
                if p.id in seen:
                    raise CatalogError(
                        f"duplicate product id {p.id!r}", path=name, row=i + 1, field="id"
                    )
                seen.add(p.id)
        if not self._products:
            raise CatalogError("catalog is empty", path=name)

    # -- loaders -------------------------------------------------------------------
    @classmethod
    def from_csv(
        cls, path: PathLike, *, encoding: str = "utf-8", name: str | None = None
    ) -> Catalog:
        """Load a CSV file with columns ``id,title`` and optional product fields.

        ``product_id``/``product_name`` are accepted for ``id``/``title``; every
        ``attr_<key>`` column becomes ``attributes[<key>]`` (empty cells are
        skipped); other columns are ignored. Column names are case-insensitive.
        """
        source = str(path)
        text = _decode(_read_bytes(path), source, encoding, csv_rows=True)
        products = _products_from_csv(text, source)
        return cls(products, name=name or Path(path).stem)

    @classmethod
    def from_jsonl(
        cls, path: PathLike, *, encoding: str = "utf-8", name: str | None = None
    ) -> Catalog:
        """Load one JSON object per line (blank lines skipped), fields as in :meth:`from_csv`.

        ``attributes`` is an object of scalar values; ids may be strings or integers.
        """
        source = str(path)
        text = _decode(_read_bytes(path), source, encoding, csv_rows=False)
        products = _products_from_jsonl(text, source)
        return cls(products, name=name or Path(path).stem)

    @classmethod
    def from_instacart(
        cls, directory: PathLike, *, encoding: str = "utf-8", name: str = "instacart"
    ) -> Catalog:
        """Load the Kaggle Instacart layout: ``products.csv``, ``aisles.csv``, ``departments.csv``.

        Aisle and department ids are resolved to their names; an id missing from
        its lookup file is an error naming the products row and column.
        """
        products = _products_from_instacart(directory, encoding)
        return cls(products, name=name)

    @classmethod
    def demo(cls) -> Catalog:
        """The grocery demo catalog shipped with the package (~1,400 products, cached)."""
        return _demo_catalog()

    # -- writers -------------------------------------------------------------------
    def to_csv(self, path: PathLike) -> None:
        """Write a UTF-8 CSV that :meth:`from_csv` reads back to an equal catalog."""
        attr_keys = sorted({k for p in self._products for k in p.attributes})
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow([*_COLUMNS, *(_ATTR_PREFIX + k for k in attr_keys)])
            for p in self._products:
                w.writerow(
                    [
                        p.id,
                        p.title,
                        p.department,
                        p.aisle,
                        p.brand or "",
                        _fmt_number(p.price),
                        _fmt_number(p.popularity),
                        *(p.attributes.get(k, "") for k in attr_keys),
                    ]
                )

    def to_jsonl(self, path: PathLike) -> None:
        """Write one JSON object per product; :meth:`from_jsonl` reads it back."""
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for p in self._products:
                f.write(json.dumps(p.model_dump(), ensure_ascii=False))
                f.write("\n")

    # -- lookups ---------------------------------------------------------------
    @property
    def products(self) -> tuple[Product, ...]:
        return self._products

    @property
    def products_by_id(self) -> Mapping[str, Product]:
        """Read-only view id -> product: a plain mapping lookup, for hot loops (a KeyError
        names only the id; ``catalog[id]`` says which catalog)."""
        return MappingProxyType(self._by_id)

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
        return [
            d
            for d, _ in Counter(p.department for p in self._products if p.department).most_common()
        ]

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
            (
                p.model_copy(update={"popularity": float(counts.get(p.id, 0.0))})
                for p in self._products
            ),
            name=self.name,
        )


# -- reading and decoding ---------------------------------------------------------------


@cache
def _demo_catalog() -> Catalog:
    data = resources.files("storefront_sdk.data").joinpath(_DEMO_FILE).read_bytes()
    source = f"storefront_sdk/data/{_DEMO_FILE}"
    return Catalog(
        _products_from_csv(_decode(data, source, "utf-8", csv_rows=True), source), name="demo"
    )
