"""Text helpers: tokenisation (retrieval, taxonomy, relevance filters) and terminal-safe text.

Lower-cased alphanumeric tokens, English stop words removed, and a light
plural folding ("berries" -> "berry", "eggs" -> "egg") so that a keyword and
a product title meet whether either is singular or plural.

:func:`printable` neutralises control and bidi characters in text bound for a
terminal (catalog titles are untrusted input).
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["STOP_WORDS", "normalize", "printable", "stem", "tokenize"]

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


# C0 controls (NUL, ESC, CR, LF, TAB ...), DEL and the C1 controls (U+0080-U+009F: 8-bit
# CSI/OSC introducers some terminals honour), line/paragraph separators, and the bidi
# marks, embeddings, overrides and isolates that reorder what a terminal shows.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control and bidi characters shown as escapes (``\\x1b``, ``\\u202e``).

    For plain-text output to a terminal: an ESC sequence in a product title cannot
    retitle the terminal or move the cursor, and U+202E cannot reverse what follows.
    Everything else, including non-Latin scripts and emoji, is kept as is.
    """
    return _UNPRINTABLE.sub(_escape, text) if _UNPRINTABLE.search(text) else text
