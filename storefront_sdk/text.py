"""Tokenisation shared by retrieval, the taxonomy and relevance filters.

Lower-cased alphanumeric tokens, English stop words removed, and a light
plural folding ("berries" -> "berry", "eggs" -> "egg") so that a keyword and
a product title meet whether either is singular or plural.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["STOP_WORDS", "normalize", "stem", "tokenize"]

_TOKEN = re.compile(r"[a-z0-9]+")

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
        "your",
        "you",
        "our",
        "all",
        "new",
        "size",
        "oz",
        "fl",
        "lb",
        "ct",
        "pk",
        "count",
        "pack",
    ]
)


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """Fold simple English plurals. Deterministic and cheap; not a full stemmer."""
    if len(token) <= 3 or token.isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "xes", "ches", "shes")):
        return token[:-2]
    if token.endswith("oes") and len(token) > 5:
        return token[:-2]
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


@lru_cache(maxsize=65_536)
def normalize(text: str) -> str:
    """Lower-case and collapse everything but letters and digits to single spaces."""
    return " ".join(_TOKEN.findall(text.lower()))


def tokenize(text: str) -> list[str]:
    """Tokens for indexing and matching: lower-case, stop words dropped, plurals folded."""
    return [stem(t) for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS]
