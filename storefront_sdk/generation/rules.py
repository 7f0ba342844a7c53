"""Merchandising rules: business policy, not model taste.

The rules say what a page must and must not contain regardless of what made
its themes: "Buy it again" first for returning users, at most one seasonal
placement (the season comes from ``user.session["season"]`` or the date), no
banned words, no age-restricted themes for users who are not age-verified.
This module holds the rules and their checks; they are *enforced* by
:class:`~storefront_sdk.filtering.gates.MerchandisingGate` in the storefront's
gates, for every theme generator (model, history, static or your own), on every
build, so changing a rule never needs a cache flush. Near-duplicate titles are
:class:`~storefront_sdk.filtering.gates.NearDuplicateGate`'s (one implementation,
:func:`~storefront_sdk.filtering.titles.is_duplicate_title`). The
:class:`~storefront_sdk.generation.llm_themes.LLMThemeGenerator` also puts the
rules in its prompt (banned words, season, the "Buy it again" title).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from functools import cached_property, lru_cache

from ..text import tokenize
from ..types import Theme, UserContext

__all__ = ["DEFAULT_AGE_RESTRICTED", "SEASONAL_WORDS", "MerchandisingRules"]

#: Terms that mark a theme as age-restricted (shown only to age-verified users).
DEFAULT_AGE_RESTRICTED: tuple[str, ...] = (
    "alcohol",
    "beer",
    "wine",
    "spirits",
    "liquor",
    "vodka",
    "whiskey",
    "whisky",
    "tequila",
    "rum",
    "gin",
    "champagne",
    "cocktail",
    "hard seltzer",
    "tobacco",
    "cigarette",
    "cigar",
)

#: Words that make a theme seasonal even when the model did not flag it.
SEASONAL_WORDS: tuple[str, ...] = (
    "spring",
    "summer",
    "autumn",
    "fall",
    "winter",
    "holiday",
    "holidays",
    "christmas",
    "thanksgiving",
    "halloween",
    "easter",
    "valentine",
    "new year",
    "hanukkah",
    "diwali",
    "ramadan",
    "back to school",
    "seasonal",
)

_NORTH = {
    12: "winter",
    1: "winter",
    2: "winter",
    3: "spring",
    4: "spring",
    5: "spring",
    6: "summer",
    7: "summer",
    8: "summer",
    9: "autumn",
    10: "autumn",
    11: "autumn",
}
_FLIP = {"winter": "summer", "summer": "winter", "spring": "autumn", "autumn": "spring"}


@lru_cache(maxsize=8192)
def _phrase(word: str) -> tuple[str, ...]:
    return tuple(tokenize(word))


def _phrases(words: Iterable[str]) -> list[tuple[str, ...]]:
    return [p for p in map(_phrase, words) if p]


def _contains(tokens: Sequence[str], phrase: tuple[str, ...]) -> bool:
    if phrase[0] not in tokens:  # the common case, decided in C
        return False
    n = len(phrase)
    return any(tuple(tokens[i : i + n]) == phrase for i in range(len(tokens) - n + 1))


@dataclass(frozen=True)
class MerchandisingRules:
    """Business rules every generated page obeys. Cheap, deterministic, configurable.

    ``season`` (if set) overrides the session and the date for every user;
    ``hemisphere`` decides which months are which season.
    """

    buy_it_again_first: bool = True
    buy_it_again_title: str = "Buy it again"
    max_seasonal: int = 1
    season: str | None = None
    hemisphere: str = "north"
    banned_words: tuple[str, ...] = ()
    age_restricted_terms: tuple[str, ...] = DEFAULT_AGE_RESTRICTED
    seasonal_words: tuple[str, ...] = SEASONAL_WORDS
    title_max_chars: int = 60

    @cached_property  # frozen: computed once (it is part of every cache key)
    def fingerprint(self) -> str:
        """A hash of the rules (rules shape the prompt, so they are part of cache keys)."""
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # -- season -------------------------------------------------------------------------
    def season_for(self, user: UserContext, today: date | None = None) -> str:
        """``rules.season``, else ``user.session["season"]``, else the season of ``today``."""
        if self.season:
            return self.season
        explicit = user.session.get("season", "").strip()
        if explicit:
            return explicit.lower()
        name = _NORTH[(today or date.today()).month]
        return _FLIP[name] if self.hemisphere == "south" else name

    def is_seasonal(self, theme: Theme, season: str | None = None) -> bool:
        """Flagged seasonal by kind, or its title names the season or a seasonal word.

        Only the title counts: small models sprinkle "holiday season" into
        descriptions of themes that are not seasonal at all.
        """
        if theme.kind == "seasonal":
            return True
        words = list(self.seasonal_words)
        if season:
            words.append(season)
        toks = tokenize(theme.title)
        return any(_contains(toks, p) for p in _phrases(words))

    # -- checks ---------------------------------------------------------------------------
    def violation(self, theme: Theme, user: UserContext) -> str | None:
        """Why ``theme`` may not be shown to ``user`` at all, or None."""
        toks = tokenize(theme.text)
        for word in self.banned_words:
            phrase = _phrase(word)
            if phrase and _contains(toks, phrase):
                return f"banned_word:{word}"
        if not user.age_verified:
            for phrase in _phrases(self.age_restricted_terms):
                if _contains(toks, phrase):
                    return f"age_restricted:{' '.join(phrase)}"
        return None
