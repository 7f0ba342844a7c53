"""Placement titles: the one title-quality rule set and the one near-duplicate test.

Used by the gates in the page assembly path
(:class:`~storefront_sdk.filtering.gates.TitleQualityGate`,
:class:`~storefront_sdk.filtering.gates.NearDuplicateGate`) and by the offline
judges (:func:`~storefront_sdk.evaluation.judges.title_problems`), so a title is
held to the same rules, with the same reason codes, wherever it is checked.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from ..text import STOP_WORDS, normalize, tokenize

__all__ = [
    "DUPLICATE_THRESHOLD",
    "TitleRules",
    "is_duplicate_title",
    "text_similarity",
]

DUPLICATE_THRESHOLD = 0.8
"""Titles at or above this character-trigram cosine are the same title."""


# -- near duplicates ---------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _trigrams(text: str) -> tuple[dict[str, int], float]:
    """Character-trigram counts of the text's tokens, and their L2 norm."""
    grams: Counter[str] = Counter()
    for tok in tokenize(text):
        padded = f" {tok} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return dict(grams), math.sqrt(sum(v * v for v in grams.values()))


@lru_cache(maxsize=65_536)
def text_similarity(a: str, b: str) -> float:
    """Cosine similarity of character-trigram counts of two texts' tokens, in [0, 1].

    Memoised: pages compare the same titles ("Buy it again", aisle names) again and again.
    """
    (ga, na), (gb, nb) = _trigrams(a), _trigrams(b)
    if not ga or not gb:
        return 0.0
    dot = sum(ga[k] * gb[k] for k in ga.keys() & gb.keys())
    return dot / (na * nb)


def is_duplicate_title(
    title: str, others: Iterable[str], threshold: float = DUPLICATE_THRESHOLD
) -> bool:
    """Is ``title`` nearly the same as one of ``others`` (trigram cosine >= ``threshold``)?

    Titles without word characters compare by their stripped, lower-cased text.
    """
    if not _trigrams(title)[0]:
        flat = title.strip().lower()
        return any(o.strip().lower() == flat for o in others)
    return any(text_similarity(title, o) >= threshold for o in others)


# -- quality -------------------------------------------------------------------------------

_PLACEHOLDER_FULL = re.compile(
    r"^(theme|placement|carousel|section|row|category|title|collection|heading|untitled|"
    r"placeholder|test|testing|sample|example|todo|tbd|n a|na|none|null|nil|undefined|"
    r"string|text|name|empty|default|x+|foo|bar|baz|asdf|qwerty)( ?[0-9]+)?$"
)
_PLACEHOLDER_ANY = re.compile(
    r"(?<![a-z0-9])(lorem|ipsum|dolor sit|untitled|placeholder|todo|tbd|xxx+|asdf|"
    r"insert title|title here|your title|sample title|theme title|"
    r"(theme|placement|carousel|section|row) ?[0-9]+)(?![a-z0-9])"
)
_MARKUP = re.compile(r"[{}<>\[\]|\\`^~]|https?://|www\.|\.(com|net|org|io)\b", re.IGNORECASE)


def _case_flips(word: str) -> int:
    """How many times a word goes from lower to upper case inside it ("wEiRd" -> 2)."""
    return sum(1 for a, b in pairwise(word) if a.islower() and b.isupper())


@dataclass(frozen=True)
class TitleRules:
    """What a shopper-facing title must be; :meth:`problems` lists what it is not.

    Reason codes, in the order they are checked: ``empty_title``, ``markup``,
    ``title_too_long``, ``title_too_short``, ``too_many_words`` (only with
    ``max_words``), ``not_letters``, ``placeholder``, ``repeated_words``,
    ``all_caps``, ``odd_casing``, ``not_capitalised`` (only with
    ``require_capital``). ``placeholders`` adds phrases of your own.
    """

    max_len: int = 60
    min_len: int = 3
    max_caps_ratio: float = 0.7
    min_letter_ratio: float = 0.6
    max_word_repeats: int = 2
    max_words: int | None = None
    require_capital: bool = False
    placeholders: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "placeholders", tuple(normalize(p) for p in self.placeholders if normalize(p))
        )

    def first_problem(self, title: str) -> str | None:
        """The first reason code ``title`` fails on, or None (what a gate reports)."""
        for code in self._problems(title):
            return code
        return None

    def problems(self, title: str) -> list[str]:
        """Every reason code ``title`` fails on, in check order (what a judge reports)."""
        return list(self._problems(title))

    def _problems(self, title: str) -> Iterable[str]:
        text = unicodedata.normalize("NFKC", title).strip()
        letters = [c for c in text if c.isalpha()]
        if not letters:
            yield "empty_title"
            return
        if any(unicodedata.category(c) in ("Cc", "Cf") for c in text) or _MARKUP.search(text):
            yield "markup"
        if len(text) > self.max_len:
            yield "title_too_long"
        if len(text) < self.min_len:
            yield "title_too_short"
        if self.max_words is not None and len(text.split()) > self.max_words:
            yield "too_many_words"
        visible = [c for c in text if not c.isspace()]
        if len(letters) / len(visible) < self.min_letter_ratio:
            yield "not_letters"
        flat = normalize(text)
        if (
            _PLACEHOLDER_FULL.match(flat)
            or _PLACEHOLDER_ANY.search(flat)
            or any(
                p == flat or re.search(rf"(?<![a-z0-9]){re.escape(p)}(?![a-z0-9])", flat)
                for p in self.placeholders
            )
        ):
            yield "placeholder"
        words = flat.split()
        counts = Counter(w for w in words if w not in STOP_WORDS)
        if any(a == b for a, b in pairwise(words)) or (
            counts and max(counts.values()) > self.max_word_repeats
        ):
            yield "repeated_words"
        upper = sum(1 for c in letters if c.isupper())
        if len(letters) >= 6 and upper / len(letters) > self.max_caps_ratio:
            yield "all_caps"
        if any(_case_flips(w) >= 2 for w in text.split()):
            yield "odd_casing"
        if self.require_capital and not (text[0].isupper() or text[0].isdigit()):
            yield "not_capitalised"
