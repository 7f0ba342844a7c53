"""Catalog file formats: CSV, JSONL and Instacart parsing, and the field-size limits.

The readers behind :meth:`~storefront_sdk.catalog.Catalog.from_csv`,
:meth:`~storefront_sdk.catalog.Catalog.from_jsonl` and
:meth:`~storefront_sdk.catalog.Catalog.from_instacart`: decoding, row-precise
:class:`~storefront_sdk.exceptions.CatalogError` messages, and the ``MAX_*``
limits every loader applies. :mod:`storefront_sdk.catalog` re-exports the
public names; import them from there. This module stays one piece because
every format shares the same limit checks and error locating (a file that
loads as CSV loads as JSONL and the other way round).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .exceptions import CatalogError, ConfigurationError
from .types import Product

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_KEY_CHARS",
    "MAX_ATTRIBUTE_VALUE_CHARS",
    "MAX_ID_CHARS",
    "MAX_NAME_CHARS",
    "MAX_TITLE_CHARS",
]

# Limits on one product's fields, the same for every loader (CSV, JSONL, Instacart).
# Generous for real catalogs (the Instacart catalog's longest title has 159 characters);
# they stop a malformed export or a hostile file from putting megabytes into prompts,
# pages and cache keys.
MAX_ID_CHARS = 256
"""Longest product id."""
MAX_TITLE_CHARS = 1_000
"""Longest product title."""
MAX_NAME_CHARS = 256
"""Longest department, aisle or brand name."""
MAX_ATTRIBUTES = 100
"""Most attributes on one product."""
MAX_ATTRIBUTE_KEY_CHARS = 100
"""Longest attribute name."""
MAX_ATTRIBUTE_VALUE_CHARS = 1_000
"""Longest attribute value."""

_TEXT_LIMITS = (
    ("id", MAX_ID_CHARS, "MAX_ID_CHARS"),
    ("title", MAX_TITLE_CHARS, "MAX_TITLE_CHARS"),
    ("department", MAX_NAME_CHARS, "MAX_NAME_CHARS"),
    ("aisle", MAX_NAME_CHARS, "MAX_NAME_CHARS"),
    ("brand", MAX_NAME_CHARS, "MAX_NAME_CHARS"),
)
_LIMIT_OF = {name: (limit, const) for name, limit, const in _TEXT_LIMITS}

PathLike = str | os.PathLike[str]

_ALIASES = {"product_id": "id", "product_name": "title"}
_COLUMNS = ("id", "title", "department", "aisle", "brand", "price", "popularity")
_ATTR_PREFIX = "attr_"


def _products_from_instacart(directory: PathLike, encoding: str) -> list[Product]:
    """Products of the Kaggle Instacart layout; see :meth:`Catalog.from_instacart`."""
    root = Path(directory)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "directory not found"
        raise CatalogError(
            f"{what}; expected the Instacart folder holding products.csv, aisles.csv "
            "and departments.csv",
            path=str(directory),
        )
    aisles = _id_lookup(root / "aisles.csv", "aisle_id", "aisle", encoding)
    departments = _id_lookup(root / "departments.csv", "department_id", "department", encoding)
    source = str(root / "products.csv")
    table = _Table(
        _decode(_read_bytes(root / "products.csv"), source, encoding, csv_rows=True),
        source,
        required=("product_id", "product_name", "aisle_id", "department_id"),
    )
    c_id, c_title = table.col["product_id"], table.col["product_name"]
    c_aisle, c_dept = table.col["aisle_id"], table.col["department_id"]
    products: list[Product] = []
    seen: dict[str, int] = {}
    for row, rec in table.rows():
        # The hot loop of a 50k-row load: cheap checks inline, precise errors on failure.
        pid, title = rec[c_id].strip(), rec[c_title].strip()
        aisle = aisles.get(rec[c_aisle].strip())
        dept = departments.get(rec[c_dept].strip())
        if (
            not pid
            or not title
            or aisle is None
            or dept is None
            or pid in seen
            or len(pid) > MAX_ID_CHARS
            or len(title) > MAX_TITLE_CHARS
        ):
            _required_text(pid, source, row, "product_id")
            _check_unique(seen, pid, source, row, "product_id")
            _required_text(title, source, row, "product_name")
            _lookup(aisles, rec[c_aisle], "aisle_id", "aisles.csv", source, row)
            _lookup(departments, rec[c_dept], "department_id", "departments.csv", source, row)
            _check_limits(source, row, {"id": pid, "title": title}, _INSTACART_LABELS)
        seen[pid] = row
        # Limits: id and title checked above, aisle and department names in _id_lookup.
        products.append(
            _new_product(
                source, row, {"id": pid, "title": title, "aisle": aisle, "department": dept}
            )
        )
    return products


def _read_bytes(path: PathLike) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise CatalogError("file not found", path=str(path)) from None
    except IsADirectoryError:
        raise CatalogError("is a directory, expected a file", path=str(path)) from None
    except OSError as e:
        raise CatalogError(f"cannot read file: {e.strerror or e}", path=str(path)) from None


def _decode(data: bytes, source: str, encoding: str, *, csv_rows: bool) -> str:
    """Decode ``data``; an invalid byte becomes an error naming its row (and CSV column)."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ConfigurationError(f"unknown encoding {encoding!r}") from None
    if codec.name == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]  # Excel writes a BOM; it is not part of the header
    try:
        return data.decode(codec.name)
    except UnicodeDecodeError as e:
        row, field = _locate(data, e.start, codec.name, csv_rows=csv_rows)
        raise CatalogError(
            f"byte 0x{data[e.start]:02x} at file offset {e.start} is not valid {encoding}; "
            "if the file uses another encoding, pass it, e.g. encoding='cp1252' (Excel on "
            "Windows) or encoding='latin-1'",
            path=source,
            row=row,
            field=field,
        ) from None


def _locate(data: bytes, offset: int, encoding: str, *, csv_rows: bool) -> tuple[int, str | None]:
    """Row (and, for CSV, column name) of the byte at ``offset``."""
    line = data.count(b"\n", 0, offset) + 1
    if not csv_rows:
        return line, None
    try:
        prefix = data[:offset].decode(encoding)
        records = list(csv.reader(io.StringIO(prefix, newline="")))
        header = records[0] if records else []
        partial_last = bool(prefix) and not prefix.endswith(("\n", "\r"))
        row = len(records) if partial_last else len(records) + 1
        col: int | None = None  # the header row itself has no column to blame
        if row > 1:
            col = len(records[-1]) - 1 if partial_last else 0
        field = header[col].strip() if col is not None and col < len(header) else None
        return row, field
    except (csv.Error, UnicodeDecodeError):  # pragma: no cover - fall back to the line number
        return line, None


class _Table:
    """A decoded CSV text: validated header, column index, and (row, record) pairs."""

    def __init__(
        self, text: str, source: str, *, required: tuple[str, ...], expect: str = ""
    ) -> None:
        self.source = source
        self._text = text
        self._row = 0
        self._reader = csv.reader(io.StringIO(text, newline=""))
        header = self._next()
        while header is not None and not any(h.strip() for h in header):
            header = self._next()  # leading blank lines
        if header is None:
            raise CatalogError(
                "file is empty; expected a header row with columns "
                + (expect or ", ".join(required)),
                path=source,
            )
        self.header_row = self._row
        self.header = [h.strip() for h in header]
        self.col: dict[str, int] = {}
        for i, h in enumerate(self.header):
            key = h.lower()
            if not key:
                continue
            if key in self.col:
                raise CatalogError(
                    f"duplicate column {h!r}", path=source, row=self.header_row, field=h
                )
            self.col[key] = i
        missing = [c for c in required if c not in self.col]
        if missing:
            raise CatalogError(
                f"missing required column(s) {', '.join(repr(m) for m in missing)}; "
                f"found {', '.join(repr(h) for h in self.header) or 'none'}",
                path=source,
                row=self.header_row,
                field=missing[0],
            )

    def _next(self) -> list[str] | None:
        try:
            rec = next(self._reader)
        except StopIteration:
            return None
        except csv.Error as e:
            raise self._csv_error(e, self._row + 1) from None
        self._row += 1
        return rec

    def _csv_error(self, exc: csv.Error, row: int) -> CatalogError:
        """A ``csv.Error`` as a CatalogError; an over-long field is named like any limit."""
        limit = csv.field_size_limit()
        if "field larger than field limit" in str(exc):
            found = _csv_long_field(self._text, row, limit)
            if found is not None:
                col, length = found
                header = getattr(self, "header", [])
                name = header[col] if col < len(header) else f"column {col + 1}"
                canon = _ALIASES.get(name.lower(), name.lower())
                if canon.startswith(_ATTR_PREFIX):
                    limit_of = (MAX_ATTRIBUTE_VALUE_CHARS, "MAX_ATTRIBUTE_VALUE_CHARS")
                else:
                    limit_of = _LIMIT_OF.get(canon, (limit, "the CSV reader's field limit"))
                return _too_long(name, length, *limit_of, source=self.source, row=row)
        return CatalogError(f"malformed CSV: {exc}", path=self.source, row=row)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Data records with their 1-based row numbers; blank lines are skipped."""
        n = len(self.header)
        any_rows = False
        try:
            for rec in self._reader:
                self._row += 1
                if len(rec) != n:
                    if not rec or (len(rec) == 1 and not rec[0].strip()):
                        continue  # a blank line
                    raise CatalogError(
                        f"expected {n} fields as in the header, found {len(rec)}",
                        path=self.source,
                        row=self._row,
                    )
                any_rows = True
                yield self._row, rec
        except csv.Error as e:
            raise self._csv_error(e, self._row + 1) from None
        if not any_rows:
            raise CatalogError(
                "no products: the file has a header but no data rows", path=self.source
            )


def _products_from_csv(text: str, source: str) -> list[Product]:
    table = _Table(text, source, required=(), expect="id, title (and optional product fields)")
    # Resolve aliases: product_id -> id, product_name -> title.
    cols: dict[str, int] = {}
    for key, i in table.col.items():
        canon = _ALIASES.get(key, key)
        if canon in cols:
            alias = next(a for a, c in _ALIASES.items() if c == canon)
            raise CatalogError(
                f"both {canon!r} and its alias {alias!r} are present; keep one",
                path=source,
                row=table.header_row,
                field=table.header[i],
            )
        cols[canon] = i
    missing = [c for c in ("id", "title") if c not in cols]
    if missing:
        alias_of = {c: a for a, c in _ALIASES.items()}
        names = " and ".join(f"{m!r} (or {alias_of[m]!r})" for m in missing)
        raise CatalogError(
            f"missing required column {names}; found {', '.join(repr(h) for h in table.header)}",
            path=source,
            row=table.header_row,
            field=missing[0],
        )
    attr_cols: list[tuple[str, int]] = []
    for i, h in enumerate(table.header):
        if h.lower().startswith(_ATTR_PREFIX):
            key = h[len(_ATTR_PREFIX) :]
            if not key:
                raise CatalogError(
                    "attribute column needs a name after 'attr_'",
                    path=source,
                    row=table.header_row,
                    field=h,
                )
            attr_cols.append((key, i))
    c_id, c_title = cols["id"], cols["title"]
    c_dept, c_aisle, c_brand = cols.get("department"), cols.get("aisle"), cols.get("brand")
    c_price, c_pop = cols.get("price"), cols.get("popularity")

    products: list[Product] = []
    seen: dict[str, int] = {}
    for row, rec in table.rows():
        pid = _required_text(rec[c_id], source, row, "id")
        _check_unique(seen, pid, source, row, "id")
        fields: dict[str, Any] = {
            "id": pid,
            "title": _required_text(rec[c_title], source, row, "title"),
        }
        if c_dept is not None:
            fields["department"] = rec[c_dept].strip()
        if c_aisle is not None:
            fields["aisle"] = rec[c_aisle].strip()
        if c_brand is not None:
            fields["brand"] = rec[c_brand].strip() or None
        if c_price is not None:
            fields["price"] = _number(rec[c_price], source, row, "price")
        if c_pop is not None:
            pop = _number(rec[c_pop], source, row, "popularity")
            fields["popularity"] = 0.0 if pop is None else pop
        if attr_cols:
            fields["attributes"] = {k: v for k, i in attr_cols if (v := rec[i].strip())}
        products.append(_make_product(source, row, attr_label=_CSV_ATTR_LABEL, **fields))
    return products


def _products_from_jsonl(text: str, source: str) -> list[Product]:
    products: list[Product] = []
    seen: dict[str, int] = {}
    for row, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CatalogError(
                f"malformed JSON: {e.msg} at column {e.colno}", path=source, row=row
            ) from None
        except RecursionError:
            raise CatalogError(
                "JSON nested too deeply: product fields are scalars and 'attributes' is one "
                "object of scalars",
                path=source,
                row=row,
                field=_json_culprit(line, deepest=True),
            ) from None
        except ValueError as e:  # e.g. an integer longer than Python converts (4300 digits)
            raise CatalogError(
                f"invalid JSON value: {str(e).split(';')[0][:200]}",
                path=source,
                row=row,
                field=_json_culprit(line, deepest=False),
            ) from None
        if not isinstance(obj, dict):
            raise CatalogError(
                f"expected a JSON object per line, found {_json_type(obj)}", path=source, row=row
            )
        obj = _resolve_aliases(obj, source, row)
        for key in ("id", "title"):
            if key not in obj:
                raise CatalogError(f"missing required key {key!r}", path=source, row=row, field=key)
        pid = _required_text(_json_id(obj["id"], source, row), source, row, "id")
        _check_unique(seen, pid, source, row, "id")
        fields: dict[str, Any] = {
            "id": pid,
            "title": _required_text(
                _json_str(obj["title"], source, row, "title"), source, row, "title"
            ),
        }
        for key in ("department", "aisle"):
            if obj.get(key) is not None:
                fields[key] = _json_str(obj[key], source, row, key).strip()
        if obj.get("brand") is not None:
            fields["brand"] = _json_str(obj["brand"], source, row, "brand").strip() or None
        if "price" in obj:
            fields["price"] = _json_number(obj["price"], source, row, "price")
        if "popularity" in obj:
            pop = _json_number(obj["popularity"], source, row, "popularity")
            fields["popularity"] = 0.0 if pop is None else pop
        if obj.get("attributes") is not None:
            fields["attributes"] = _json_attributes(obj["attributes"], source, row)
        products.append(_make_product(source, row, **fields))
    if not products:
        raise CatalogError("file is empty; expected one JSON object per line", path=source)
    return products


# -- field validation --------------------------------------------------------------------


def _required_text(value: str, source: str, row: int, field: str) -> str:
    value = value.strip()
    if not value:
        raise CatalogError(f"{field} is empty", path=source, row=row, field=field)
    return value


def _check_unique(seen: dict[str, int], pid: str, source: str, row: int, field: str) -> None:
    first = seen.setdefault(pid, row)
    if first != row:
        raise CatalogError(
            f"duplicate id {pid!r}: already used in row {first}", path=source, row=row, field=field
        )


def _number(text: str, source: str, row: int, field: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CatalogError(f"{text!r} is not a number", path=source, row=row, field=field) from None
    return _check_number(value, text, source, row, field)


def _check_number(value: float, shown: str, source: str, row: int, field: str) -> float:
    if not math.isfinite(value):
        raise CatalogError(f"{shown!r} is not a finite number", path=source, row=row, field=field)
    if value < 0:
        raise CatalogError(f"{shown!r} is negative", path=source, row=row, field=field)
    return value


def _lookup(
    table: dict[str, str], key: str, field: str, lookup_file: str, source: str, row: int
) -> str:
    key = key.strip()
    try:
        return table[key]
    except KeyError:
        raise CatalogError(
            f"unknown {field} {key!r} (not in {lookup_file})", path=source, row=row, field=field
        ) from None


def _id_lookup(path: Path, id_col: str, name_col: str, encoding: str) -> dict[str, str]:
    source = str(path)
    table = _Table(
        _decode(_read_bytes(path), source, encoding, csv_rows=True),
        source,
        required=(id_col, name_col),
    )
    c_id, c_name = table.col[id_col], table.col[name_col]
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for row, rec in table.rows():
        key = _required_text(rec[c_id], source, row, id_col)
        _check_unique(seen, key, source, row, id_col)
        value = _required_text(rec[c_name], source, row, name_col)
        if len(value) > MAX_NAME_CHARS:  # named here, in the file that holds it
            raise _too_long(
                name_col, len(value), MAX_NAME_CHARS, "MAX_NAME_CHARS", source=source, row=row
            )
        out[key] = value
    return out


_INSTACART_LABELS = {"id": "product_id", "title": "product_name"}
_CSV_ATTR_LABEL = _ATTR_PREFIX + "{}"


def _make_product(
    source: str, row: int, *, attr_label: str = "attributes.{}", **fields: Any
) -> Product:
    """A validated Product; field size limits first (the same for every loader)."""
    get = fields.get
    if (  # one cheap test per row (~0.2 us); _check_limits names the field when it fails
        len(fields["id"]) > MAX_ID_CHARS
        or len(fields["title"]) > MAX_TITLE_CHARS
        or len(get("department", "")) > MAX_NAME_CHARS
        or len(get("aisle", "")) > MAX_NAME_CHARS
        or len(get("brand") or "") > MAX_NAME_CHARS
    ):
        _check_limits(source, row, fields)
    attrs = fields.get("attributes")
    if attrs:
        _check_attributes(attrs, source, row, attr_label)
    try:
        return Product(**fields)
    except ValidationError as e:  # a safety net: the checks above catch the common cases
        raise _invalid(e, source, row) from None


def _new_product(source: str, row: int, fields: dict[str, Any]) -> Product:
    """A validated Product from fields whose sizes the caller has checked."""
    try:
        return Product(**fields)
    except ValidationError as e:  # a safety net: the loaders' checks catch the common cases
        raise _invalid(e, source, row) from None


def _invalid(exc: ValidationError, source: str, row: int) -> CatalogError:
    err = exc.errors()[0]
    field = ".".join(str(x) for x in err["loc"]) or None
    return CatalogError(err["msg"], path=source, row=row, field=field)


def _check_limits(
    source: str, row: int, fields: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> None:
    for name, limit, const in _TEXT_LIMITS:
        value = fields.get(name)
        if value is not None and len(value) > limit:
            label = labels.get(name, name) if labels else name
            raise _too_long(label, len(value), limit, const, source=source, row=row)


def _check_attributes(attrs: Mapping[str, str], source: str, row: int, label: str) -> None:
    if len(attrs) > MAX_ATTRIBUTES:
        raise CatalogError(
            f"{len(attrs):,} attributes; the limit is {MAX_ATTRIBUTES:,} (MAX_ATTRIBUTES)",
            path=source,
            row=row,
            field="attributes",
        )
    for key, value in attrs.items():
        if len(key) > MAX_ATTRIBUTE_KEY_CHARS:
            raise _too_long(
                "attribute name",
                len(key),
                MAX_ATTRIBUTE_KEY_CHARS,
                "MAX_ATTRIBUTE_KEY_CHARS",
                source=source,
                row=row,
                field=label.format(key[:40] + "..."),
            )
        if len(value) > MAX_ATTRIBUTE_VALUE_CHARS:
            raise _too_long(
                label.format(key),
                len(value),
                MAX_ATTRIBUTE_VALUE_CHARS,
                "MAX_ATTRIBUTE_VALUE_CHARS",
                source=source,
                row=row,
            )


def _too_long(
    what: str,
    length: int,
    limit: int,
    const: str,
    *,
    source: str,
    row: int,
    field: str | None = None,
) -> CatalogError:
    return CatalogError(
        f"{what} is {length:,} characters long; the limit is {limit:,} ({const})",
        path=source,
        row=row,
        field=field or what,
    )


def _csv_long_field(text: str, row: int, limit: int) -> tuple[int, int] | None:
    """(column, length) of the first field longer than ``limit`` in CSV record ``row``.

    Only runs after the csv module refused a field; it follows the same quoting
    rules (RFC 4180, ``"`` doubled inside quotes) to find the record and column.
    """
    record, col, length, quoted, i, n = 1, 0, 0, False, 0, len(text)
    while i < n:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    length += 1
                    i += 1
                else:
                    quoted = False
            else:
                length += 1
        elif ch == '"':
            quoted = True
        elif ch == ",":
            col, length = col + 1, 0
        elif ch in "\r\n":
            if record == row:
                return None
            if ch == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            record, col, length = record + 1, 0, 0
        else:
            length += 1
        if record == row and length > limit:
            end = _field_end(text, i + 1, quoted)
            return col, length + end
        i += 1
    return None


def _field_end(text: str, start: int, quoted: bool) -> int:
    """How many more characters the field that continues at ``start`` has (approximately)."""
    if quoted:
        end = text.find('"', start)
        while end != -1 and text.startswith('""', end):
            end = text.find('"', end + 2)
        return (end if end != -1 else len(text)) - start
    stops = [j for j in (text.find(c, start) for c in ",\r\n") if j != -1]
    return (min(stops) if stops else len(text)) - start


def _json_culprit(line: str, *, deepest: bool) -> str | None:
    """Which top-level key of a JSON line holds its deepest nesting or its longest number.

    Used only to name the field in an error after ``json.loads`` failed on ``line``.
    """
    keys: list[str | None] = [None]
    depth, last, best, best_score, digits = 0, None, None, 0, 0
    quoted, escaped, start = False, False, 0
    for i, ch in enumerate(line):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted, last = False, line[start:i]
            continue
        if ch == '"':
            quoted, start, digits = True, i + 1, 0
        elif ch == ":":
            keys[depth] = last
        elif ch in "{[":
            depth += 1
            keys.append(None)
            if deepest and depth > best_score:
                best, best_score = keys[1] if len(keys) > 1 else None, depth
        elif ch in "}]":
            depth = max(0, depth - 1)
            del keys[depth + 1 :]
        elif ch.isdigit():
            digits += 1
            if not deepest and digits > best_score:
                best, best_score = keys[1] if depth >= 1 else None, digits
            continue
        digits = 0
    return best


def _resolve_aliases(obj: dict[str, Any], source: str, row: int) -> dict[str, Any]:
    for alias, canon in _ALIASES.items():
        if alias in obj:
            if canon in obj:
                raise CatalogError(
                    f"both {canon!r} and its alias {alias!r} are present; keep one",
                    path=source,
                    row=row,
                    field=alias,
                )
            obj = {**obj, canon: obj[alias]}
    return obj


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
    }.get(type(value), type(value).__name__)


def _json_id(value: object, source: str, row: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise CatalogError(
        f"expected a string or integer, found {_json_type(value)}", path=source, row=row, field="id"
    )


def _json_str(value: object, source: str, row: int, field: str) -> str:
    if isinstance(value, str):
        return value
    raise CatalogError(
        f"expected a string, found {_json_type(value)}", path=source, row=row, field=field
    )


def _json_number(value: object, source: str, row: int, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _number(value, source, row, field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _check_number(float(value), str(value), source, row, field)
    raise CatalogError(
        f"expected a number, found {_json_type(value)}", path=source, row=row, field=field
    )


def _json_attributes(value: object, source: str, row: int) -> dict[str, str]:
    if not isinstance(value, dict):
        raise CatalogError(
            f"expected an object, found {_json_type(value)}",
            path=source,
            row=row,
            field="attributes",
        )
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            continue
        if isinstance(v, (dict, list)):
            raise CatalogError(
                f"attribute values must be scalars, found {_json_type(v)}",
                path=source,
                row=row,
                field=f"attributes.{k}",
            )
        out[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def _fmt_number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
