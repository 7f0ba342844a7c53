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
from collections import defaultdict
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
    "food_phrases",
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
        "bag",
        "bags",
        "box",
        "boxes",
        "jar",
        "jars",
        "bottle",
        "bottles",
        "can",
        "cans",
        "carton",
        "cartons",
        "tub",
        "tube",
        "pouch",
        "refrigerated",
        "original",
        "variety",
        "value",
    ]
)
"""Units and packaging: they end a phrase ("Organic Lemon, Bag" ends on "Lemon")."""
_WORD = re.compile(r"[A-Za-z]+")
_MAX_WORD = 14


def _title_case(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


def _segments(text: str, ban: set[str]) -> list[list[str]]:
    """The runs of usable words of a name, title-cased: a stop word, unit, number,
    banned or over-long word ends a run ("Infant Formula with Iron" -> [[Infant,
    Formula], [Iron]]), so phrases never join words that are not side by side."""
    runs: list[list[str]] = [[]]
    for raw in re.split(r"[^A-Za-z]+", text):
        low = raw.lower()
        if not low:
            continue
        if (
            3 <= len(low) <= _MAX_WORD
            and low not in STOP_WORDS
            and low not in _UNIT_WORDS
            and low not in ban
        ):
            runs[-1].append(_title_case(low))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _banned_words(banned: Iterable[str]) -> set[str]:
    return {w for phrase in banned for w in normalize(phrase).split()}


def title_vocabulary(texts: Iterable[str], banned: Iterable[str] = ()) -> tuple[str, ...]:
    """The product words of ``texts`` a title may use, title-cased, in first-seen order.

    Alphabetic words of 3 to 14 letters that are neither stop words nor units
    ("oz", "pack"); words of ``banned`` phrases are left out.
    """
    ban = _banned_words(banned)
    out: dict[str, None] = {}
    for text in texts:
        for run in _segments(text, ban):
            for w in run:
                out.setdefault(w, None)
    return tuple(out)


def food_phrases(
    texts: Iterable[str], banned: Iterable[str] = (), max_words: int = 3
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(phrases, finals)`` of ``texts`` (the seed's product and aisle names).

    ``phrases``: every run of up to ``max_words`` words that stand side by side in
    one of the names ("Grated Parmesan", "Parmesan Cheese"), so a title can only
    quote real product wording, never pair words that never met ("Extra Cheese").
    ``finals``: those that end on the last word of a name (names end in their
    noun: "Goat Cheese", "Large Brown Eggs"), which is where a title must end.
    """
    ban = _banned_words(banned)
    segmented = [_segments(text, ban) for text in texts]
    runs = [run for segments in segmented for run in segments]
    heads = {segments[-1][-1] for segments in segmented if segments}
    phrases: dict[str, None] = {}
    for run in runs:
        for i in range(len(run)):
            for j in range(i + 1, min(i + max_words, len(run)) + 1):
                phrases.setdefault(" ".join(run[i:j]), None)
    finals = tuple(p for p in phrases if p.rsplit(" ", 1)[-1] in heads)
    return tuple(phrases), finals


def title_pattern(phrases: Sequence[str], finals: Sequence[str], descriptive: Sequence[str]) -> str:
    """The regular expression a seeded title is decoded under (anchored).

    ``phrases`` are runs of words from the seed's names and ``finals`` those of
    them that end on a noun (see :func:`food_phrases`). A title is a final phrase
    of two or three words ("Goat Cheese"), a final phrase followed by a word of
    ``descriptive`` ("Pasta Night"), or two final phrases joined by "and"/"with"
    ("Carrots and Garlic"). Longest alternatives first, so a
    regex engine that stops at the first match still matches whole words.
    """

    def alt(items: Iterable[str]) -> str:
        ordered = sorted(set(items), key=lambda w: (-len(w), w))
        return "(?:" + "|".join(ordered) + ")"

    final = alt(finals)
    long_finals = [f for f in finals if " " in f]
    forms = [f"{final} {alt(_CONNECTORS)} {final}"]
    d_words = set(descriptive) - {w for p in phrases for w in p.split()}
    if d_words:
        forms.insert(0, f"{final} {alt(d_words)}")
    if long_finals:
        forms.insert(0, alt(long_finals))
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

    def products(self, seed: Theme, k: int = 4) -> list[Product]:
        """Up to ``k`` products that show what ``seed`` is about: its first pinned
        products (what its placement shows first), else the most popular products of
        the first of its concepts that is an aisle (then a department)."""
        pinned = [self.catalog[p] for p in seed.pinned_product_ids if p in self.catalog]
        if pinned:
            return pinned[:k]
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
