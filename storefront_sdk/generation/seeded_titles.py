"""Seeded titles: how a small local model writes a page it could not plan.

A 135M-parameter model asked for a list of themes repeats itself ("Mango-Baked",
"Mango-Cinnamon Cakes", "Mango-Orange Cakes") and drifts off the shopper's
shopping (measured: 24-29% of its placements survived the gates). Asked to name
*one* group of products it knows about, under a vocabulary constraint, it does
well. So the compact profile splits the work:

* **seeds** -- what the page is about comes from the shopper: the topics of the
  history baseline's themes (their top aisles, products bought together,
  popular picks for a cold start), never the model's guess;
* **one call per seed** -- the model sees the seed's products (catalog names,
  quoted data) and the titles already on the page, and writes one title;
* **grounded vocabulary** -- the title is decoded under a regular expression
  (:func:`title_pattern`): one to three words *from the seed's own product and
  aisle names*, possibly ending in a word like "Night" or "Essentials", or two
  such runs joined by "and"/"with"; two to five words. Every
  title therefore names food that is in the placement (the ``off_topic`` gate
  holds by construction, not by relaxing it), cannot invent products or brands,
  cannot carry markup or a banned word, and cannot run on;
* **concepts from the title** -- the runs of product words the model chose
  ("greek yogurt" in "Creamy Greek Yogurt") become the theme's first concepts,
  ahead of the seed's, so retrieval follows what the title promises.

Every call shares the system message and few-shot examples (and, per shopper,
the data block's head), so llama.cpp evaluates only the new tail of each prompt.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ..catalog import Catalog
from ..exceptions import OutputValidationError
from ..llm.base import OutputSpec
from ..text import STOP_WORDS, normalize
from ..types import Product, Theme

__all__ = [
    "DESCRIPTIVE_WORDS",
    "SeedIndex",
    "TitleSpec",
    "concepts_from_title",
    "head_words",
    "title_pattern",
    "title_vocabulary",
]

DESCRIPTIVE_WORDS: tuple[str, ...] = (
    "Night",
    "Bowl",
    "Board",
    "Favourites",
    "Essentials",
    "Staples",
    "Picks",
    "Treats",
    "Basics",
    "Party",
    "Breakfast",
    "Snacks",
    "Classics",
    "Time",
)
"""Words a seeded title may end with after the food it names ("Pasta Night")."""

_CONNECTORS = ("and", "with")
_UNIT_WORDS = frozenset(
    [
        "oz",
        "lb",
        "lbs",
        "fl",
        "ml",
        "gal",
        "pack",
        "pk",
        "ct",
        "count",
        "size",
        "select",
        "each",
        "pc",
        "pcs",
        "ounce",
        "ounces",
        "liter",
        "litre",
        "inch",
        "inches",
        "mg",
        "kg",
        "gram",
        "grams",
        "qt",
        "pint",
        "pints",
        "dozen",
    ]
)
_WORD = re.compile(r"[A-Za-z]+")
_MAX_WORD = 14


def _title_case(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


def title_vocabulary(texts: Iterable[str], banned: Iterable[str] = ()) -> tuple[str, ...]:
    """The product words of ``texts`` a title may use, title-cased, in first-seen order.

    Alphabetic words of 3 to 14 letters that are neither stop words nor units
    ("oz", "pack"); words of ``banned`` phrases are left out.
    """
    ban = {w for phrase in banned for w in normalize(phrase).split()}
    out: dict[str, None] = {}
    for text in texts:
        for raw in _WORD.findall(text):
            low = raw.lower()
            if (
                3 <= len(low) <= _MAX_WORD
                and low not in STOP_WORDS
                and low not in _UNIT_WORDS
                and low not in ban
            ):
                out.setdefault(_title_case(low), None)
    return tuple(out)


def head_words(texts: Iterable[str], vocabulary: Sequence[str]) -> tuple[str, ...]:
    """The words of ``vocabulary`` that end one of ``texts`` (product and aisle names end
    in their noun: "Goat Cheese", "Large Brown Eggs"): what a title's food phrase ends on."""
    vocab = set(vocabulary)
    out: dict[str, None] = {}
    for text in texts:
        words = [_title_case(w) for w in _WORD.findall(text)]
        while words and words[-1] not in vocab:
            words.pop()
        if words:
            out.setdefault(words[-1], None)
    return tuple(out)


def title_pattern(
    vocabulary: Sequence[str], heads: Sequence[str], descriptive: Sequence[str]
) -> str:
    """The regular expression a seeded title is decoded under (anchored).

    A *food phrase* is up to two words of ``vocabulary`` (the seed's product and
    aisle words) followed by one of ``heads`` (words that end a product or aisle
    name), so it ends on a noun ("Goat Cheese", never "Goat"). A title is a food
    phrase of two or three words, or one followed by a word of ``descriptive``
    ("Pasta Night"), or two short food phrases joined by "and"/"with": two to
    five words. Longest alternatives first, so a regex engine that stops at the
    first match still matches whole words.
    """

    def alt(words: Iterable[str]) -> str:
        return "(?:" + "|".join(sorted(set(words), key=lambda w: (-len(w), w))) + ")"

    m, h = alt(vocabulary), alt(heads)
    c = alt(_CONNECTORS)
    forms = [f"{m}(?: {m})? {h}", f"(?:{m} )?{h} {c} (?:{m} )?{h}"]
    d_words = set(descriptive) - set(vocabulary)
    if d_words:
        forms.insert(1, f"(?:{m} ){{0,2}}{h} {alt(d_words)}")
    return "^(?:" + "|".join(forms) + ")$"


class TitleSpec(OutputSpec[str]):
    """One title matching ``pattern``, output as a bare JSON string (``"Pasta Night"``).

    Cheaper than an object for a small local model: two structural tokens per
    call instead of about eight.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regex = re.compile(pattern)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": self.pattern, "minLength": 3, "maxLength": 60}

    def parse(self, text: str) -> str:
        stripped = text.strip()
        value = self._load_json(stripped) if stripped.startswith('"') else stripped
        if not isinstance(value, str) or not self._regex.fullmatch(value):
            raise OutputValidationError(
                f"{str(value)[:80]!r} does not match the title pattern", raw=text[:200]
            )
        return value


def concepts_from_title(title: str, vocabulary: Iterable[str]) -> list[str]:
    """The runs of product words in ``title``, lower case: "Creamy Greek Yogurt and
    Granola" -> ["greek yogurt", "granola"] (descriptive words and connectors split runs)."""
    vocab = set(vocabulary)
    runs: list[str] = []
    current: list[str] = []
    for word in title.split():
        if word in vocab:
            current.append(word.lower())
            continue
        if current:
            runs.append(" ".join(current))
        current = []
    if current:
        runs.append(" ".join(current))
    return list(dict.fromkeys(runs))


class SeedIndex:
    """Which products describe a seed theme: its pinned products, else the most
    popular products of its aisles (then departments). Built once per catalog."""

    def __init__(self, catalog: Catalog, per_group: int = 8) -> None:
        self.catalog = catalog
        by_aisle: dict[str, list[Product]] = defaultdict(list)
        by_dept: dict[str, list[Product]] = defaultdict(list)
        for p in sorted(catalog, key=lambda p: (-p.popularity, p.id)):
            if p.aisle and len(by_aisle[p.aisle]) < per_group:
                by_aisle[p.aisle].append(p)
            if p.department and len(by_dept[p.department]) < per_group:
                by_dept[p.department].append(p)
        self._aisle = dict(by_aisle)
        self._dept = dict(by_dept)
        self.groups = frozenset(normalize(g) for g in [*by_aisle, *by_dept])
        """Normalised aisle and department names of the catalog."""

    def products(self, seed: Theme, k: int = 4) -> list[Product]:
        """Up to ``k`` products of one aisle that show what ``seed`` is about: its pinned
        products in their most common aisle, else the most popular products of the
        first of its concepts that is an aisle (then a department)."""
        pinned = [self.catalog[p] for p in seed.pinned_product_ids if p in self.catalog]
        if pinned:
            aisles = Counter(p.aisle for p in pinned[:12])
            top = max(aisles, key=lambda a: (aisles[a], -_first(pinned, a)))
            return [p for p in pinned if p.aisle == top][:k]
        for concept in seed.concepts:
            group = self._aisle.get(concept) or self._aisle.get(normalize(concept))
            if group:
                return group[:k]
        for dept in [*seed.departments, *seed.concepts]:
            group = self._dept.get(dept)
            if group:
                aisle = group[0].aisle
                return [p for p in group if p.aisle == aisle][:k]
        return []


def _first(products: Sequence[Product], aisle: str | None) -> int:
    return next(i for i, p in enumerate(products) if p.aisle == aisle)
