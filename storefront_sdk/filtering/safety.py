"""The safety policy: what may never appear on a page, and what needs age verification.

A :class:`SafetyPolicy` is plain, serialisable configuration (a frozen pydantic
model) that :class:`~storefront_sdk.filtering.gates.SafetyGate` enforces:

* ``blocklist`` -- words or phrases that reject any theme or product containing them;
* ``sensitive_terms`` -- per category (health, pregnancy, religion, finances,
  sexuality, ethnicity ...) the phrases that would make a theme *infer a
  sensitive trait* from purchases ("for your diabetes", "expecting a baby?");
* restricted categories (alcohol, tobacco ...) by department, aisle, product
  attribute and, for themes, by wording ("Wine night"): shown only to users
  whose ``age_verified`` is True;
* ``injection_patterns`` -- text that reads like instructions to a model
  ("ignore previous instructions", "system prompt"): generated themes that
  echo it are rejected.

Matching is case-insensitive, on word boundaries, after Unicode NFKC folding;
a phrase matches across spaces, hyphens and underscores, and a trailing plural
"s"/"es" is allowed ("wine" matches "Wines").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from ..text import normalize
from ..types import Product, Theme

__all__ = [
    "DEFAULT_INJECTION_PATTERNS",
    "DEFAULT_RESTRICTED_AISLES",
    "DEFAULT_RESTRICTED_ATTRIBUTES",
    "DEFAULT_RESTRICTED_DEPARTMENTS",
    "DEFAULT_RESTRICTED_TERMS",
    "DEFAULT_RESTRICTED_TERM_EXCEPTIONS",
    "DEFAULT_SENSITIVE_TERMS",
    "SafetyPolicy",
]

DEFAULT_SENSITIVE_TERMS: dict[str, tuple[str, ...]] = {
    "health": (
        "diabetes",
        "diabetic",
        "prediabetic",
        "diagnosis",
        "diagnosed",
        "your condition",
        "medical condition",
        "chronic illness",
        "illness",
        "disease",
        "cancer",
        "chemo",
        "chemotherapy",
        "tumor",
        "depression",
        "depressed",
        "anxiety",
        "bipolar",
        "adhd",
        "autism",
        "dementia",
        "alzheimer",
        "hiv",
        "std",
        "incontinence",
        "hemorrhoid",
        "yeast infection",
        "erectile",
        "impotence",
        "celiac",
        "crohn",
        "ibs",
        "arthritis",
        "high blood pressure",
        "hypertension",
        "high cholesterol",
        "obese",
        "obesity",
        "overweight",
        "weight loss journey",
        "eating disorder",
        "anorexia",
        "bulimia",
        "pcos",
        "menopause",
        "infertility",
        "fertility",
        "addiction",
        "alcoholic",
        "alcoholism",
        "sobriety",
        "rehab",
        "your medication",
        "your prescription",
    ),
    "pregnancy": (
        "pregnant",
        "pregnancy",
        "expecting a baby",
        "expecting mom",
        "expecting mother",
        "are you expecting",
        "baby on the way",
        "mom to be",
        "mother to be",
        "moms to be",
        "mum to be",
        "due date",
        "trimester",
        "prenatal",
        "maternity",
        "miscarriage",
        "trying to conceive",
    ),
    "religion": (
        "religion",
        "religious",
        "your faith",
        "christian",
        "muslim",
        "islamic",
        "jewish",
        "judaism",
        "hindu",
        "sikh",
        "buddhist",
        "catholic",
        "protestant",
        "mormon",
        "atheist",
    ),
    "finances": (
        "debt",
        "in debt",
        "tight budget",
        "on a budget",
        "broke",
        "low income",
        "poverty",
        "bankrupt",
        "bankruptcy",
        "payday",
        "paycheck to paycheck",
        "cant afford",
        "can t afford",
        "cannot afford",
        "food stamps",
        "snap benefits",
        "ebt",
        "welfare",
        "unemployed",
        "unemployment",
        "money troubles",
        "struggling financially",
    ),
    "sexuality": (
        "gay",
        "lesbian",
        "bisexual",
        "queer",
        "lgbt",
        "lgbtq",
        "transgender",
        "sexual orientation",
        "sexuality",
        "sex life",
        "your partner s gender",
    ),
    "ethnicity": (
        "ethnicity",
        "ethnic background",
        "your ethnic",
        "your race",
        "racial",
        "your heritage",
        "your ancestry",
        "immigrant",
        "african american",
        "hispanic heritage",
        "people like you",
    ),
}
"""Phrases that make a theme infer a sensitive trait, by category. Curated, not exhaustive."""

DEFAULT_RESTRICTED_DEPARTMENTS: tuple[str, ...] = ("alcohol", "tobacco")
DEFAULT_RESTRICTED_AISLES: tuple[str, ...] = (
    "beers coolers",
    "red wines",
    "white wines",
    "specialty wines champagnes",
    "spirits",
    "wine",
    "beer",
    "liquor",
    "tobacco",
    "cigarettes",
    "vapes",
    "e cigarettes",
)
DEFAULT_RESTRICTED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "age_restricted": ("*",),
    "min_age": ("*",),
    "restricted": ("alcohol", "tobacco", "age", "true", "yes", "1"),
}
"""Product attribute key -> values meaning "age restricted".

``"*"`` means any value except an explicit no (``""``, ``no``, ``false``, ``0``,
``none``): ``attr_age_restricted=21+`` restricts, ``attr_age_restricted=no`` does not.
"""

_FALSY = frozenset({"", "no", "n", "false", "f", "0", "none", "null"})

DEFAULT_RESTRICTED_TERMS: tuple[str, ...] = (
    "alcohol",
    "alcoholic beverage",
    "booze",
    "wine",
    "beer",
    "lager",
    "ipa",
    "stout",
    "ale",
    "spirits",
    "liquor",
    "vodka",
    "whiskey",
    "whisky",
    "bourbon",
    "rum",
    "tequila",
    "mezcal",
    "gin",
    "brandy",
    "cognac",
    "champagne",
    "prosecco",
    "cava",
    "hard cider",
    "hard seltzer",
    "cocktail",
    "margarita",
    "mimosa",
    "sangria",
    "happy hour",
    "tobacco",
    "cigarette",
    "cigar",
    "vape",
    "vaping",
    "e cigarette",
    "nicotine",
)
"""Words that make a *theme* restricted ("Wine night"). Product checks use categories instead."""

DEFAULT_RESTRICTED_TERM_EXCEPTIONS: tuple[str, ...] = (
    "wine vinegar",
    "cooking wine",
    "root beer",
    "ginger beer",
    "birch beer",
    "ginger ale",
    "non alcoholic",
    "alcohol free",
    "rum raisin",
    "mocktail",
    "champagne vinegar",
    "beer battered",
    "beer bread",
    "cocktail sauce",
    "shrimp cocktail",
    "cocktail shrimp",
    "fruit cocktail",
    "cocktail onions",
    "cocktail napkins",
    "cocktail peanuts",
    "margarita pizza",
)
"""Phrases removed before restricted terms are matched ("red wine vinegar" is not wine)."""

DEFAULT_INJECTION_PATTERNS: tuple[str, ...] = (
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instruction|prompt|rule|direction)s?\b",
    r"\bsystem\s+(prompt|message|instruction)s?\b",
    r"\b(reveal|print|output|show|repeat)\b.{0,30}\b(prompt|instructions)\b",
    r"\byou\s+are\s+now\b",
    r"\bas\s+an\s+ai\b",
    r"\b(language\s+model|chatgpt|jailbreak|developer\s+mode)\b",
    r"<\|?\s*(system|assistant|im_start|im_end)\b",
    r"^\s*(system|assistant|user)\s*:",
    r"\byou\s+are\s+(an?|the)\s+(helpful\s+)?(assistant|merchandiser|model|ai|chatbot|bot)\b",
    r"\b(answer|respond|reply)\s+(with|in)\s+json\b",
    r"\bjson\s+(only|schema)\b",
    r"\bshopper_data\b",
)
"""Regular expressions for text that reads like instructions to a model, or like a
system prompt echoed back ("You are a merchandiser ...", "Answer with JSON only")."""


def fold(text: str) -> str:
    """NFKC-fold and lower-case, then keep letters and digits only (single spaces)."""
    return normalize(unicodedata.normalize("NFKC", text).casefold().replace("'", ""))


@lru_cache(maxsize=256)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching any phrase on word boundaries (folded, plural-tolerant)."""
    alts = sorted({fold(p) for p in phrases if fold(p)}, key=len, reverse=True)
    if not alts:
        return None
    body = "|".join(re.escape(a).replace(r"\ ", " ") for a in alts)
    return re.compile(rf"(?<![a-z0-9])({body})(?:s|es)?(?![a-z0-9])")


@lru_cache(maxsize=64)
def _category_patterns(
    items: tuple[tuple[str, tuple[str, ...]], ...],
) -> list[tuple[str, re.Pattern[str]]]:
    out = []
    for category, terms in items:
        pat = _phrase_pattern(tuple(terms))
        if pat is not None:
            out.append((category, pat))
    return out


@lru_cache(maxsize=64)
def _regexes(patterns: tuple[str, ...]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in patterns]


@lru_cache(maxsize=64)
def _folded_set(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(fold(x) for x in names)


@lru_cache(maxsize=64)
def _attribute_rules(items: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, frozenset[str]]:
    return {fold(k): frozenset(fold(v) if v != "*" else "*" for v in vs) for k, vs in items}


class SafetyPolicy(BaseModel):
    """What :class:`~storefront_sdk.filtering.gates.SafetyGate` enforces (all configurable).

    Build a stricter or looser policy with ``SafetyPolicy(blocklist=[...])`` or
    ``SafetyPolicy().model_copy(update={...})``; ``SafetyPolicy.model_validate(json)``
    loads one from configuration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    blocklist: tuple[str, ...] = ()
    sensitive_terms: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_SENSITIVE_TERMS)
    )
    restricted_departments: tuple[str, ...] = DEFAULT_RESTRICTED_DEPARTMENTS
    restricted_aisles: tuple[str, ...] = DEFAULT_RESTRICTED_AISLES
    restricted_attributes: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_RESTRICTED_ATTRIBUTES)
    )
    restricted_terms: tuple[str, ...] = DEFAULT_RESTRICTED_TERMS
    restricted_term_exceptions: tuple[str, ...] = DEFAULT_RESTRICTED_TERM_EXCEPTIONS
    injection_patterns: tuple[str, ...] = DEFAULT_INJECTION_PATTERNS
    check_concepts: bool = True
    """Also check a theme's (unshown) concepts for blocked, sensitive and restricted terms."""

    # -- compiled matchers: memoised on the term lists, so model_copy(update=...) is safe --
    @property
    def _blocked(self) -> re.Pattern[str] | None:
        return _phrase_pattern(self.blocklist)

    @property
    def _sensitive(self) -> list[tuple[str, re.Pattern[str]]]:
        return _category_patterns(tuple(self.sensitive_terms.items()))

    @property
    def _restricted(self) -> re.Pattern[str] | None:
        return _phrase_pattern(self.restricted_terms)

    @property
    def _exceptions(self) -> re.Pattern[str] | None:
        return _phrase_pattern(self.restricted_term_exceptions)

    @property
    def _injection(self) -> list[re.Pattern[str]]:
        return _regexes(self.injection_patterns)

    @property
    def _restricted_categories(self) -> frozenset[str]:
        return _folded_set((*self.restricted_departments, *self.restricted_aisles))

    @property
    def _restricted_attrs(self) -> dict[str, frozenset[str]]:
        return _attribute_rules(tuple(self.restricted_attributes.items()))

    # -- checks ----------------------------------------------------------------------
    def blocked_term(self, text: str) -> str | None:
        """The blocklisted phrase found in ``text``, if any."""
        if self._blocked is None:
            return None
        m = self._blocked.search(fold(text))
        return m.group(1) if m else None

    def sensitive_term(self, text: str) -> tuple[str, str] | None:
        """``(category, phrase)`` when ``text`` refers to a sensitive trait."""
        folded = fold(text)
        for category, pat in self._sensitive:
            m = pat.search(folded)
            if m:
                return category, m.group(1)
        return None

    def restricted_term(self, text: str) -> str | None:
        """The restricted-category word in ``text`` ("wine"), exceptions excepted."""
        if self._restricted is None:
            return None
        folded = fold(text)
        if self._exceptions is not None:
            folded = self._exceptions.sub(" ", folded)
        m = self._restricted.search(folded)
        return m.group(1) if m else None

    def injection(self, text: str) -> str | None:
        """The instruction-like fragment in ``text``, if any."""
        flat = unicodedata.normalize("NFKC", text)
        for pat in self._injection:
            m = pat.search(flat)
            if m:
                return m.group(0).strip()
        return None

    def is_restricted_category(self, name: str) -> bool:
        """Whether a department or aisle name is age restricted."""
        return bool(name) and fold(name) in self._restricted_categories

    def restricted_product(self, product: Product) -> str | None:
        """The restricted department, aisle or attribute ``product`` falls under, or None."""
        for name in (product.department, product.aisle):
            if self.is_restricted_category(name):
                return fold(name)
        attrs = self._restricted_attrs
        for key, value in product.attributes.items():
            allowed = attrs.get(fold(key))
            if allowed is None:
                continue
            v = fold(value)
            if v in allowed or ("*" in allowed and v not in _FALSY):
                return key
        return None

    def theme_texts(self, theme: Theme) -> list[str]:
        """The theme texts the policy checks: title, description and (optionally) concepts."""
        texts = [theme.title, theme.description]
        if self.check_concepts:
            texts.extend(theme.concepts)
        return [t for t in texts if t]

    def restricted_theme(self, theme: Theme) -> str | None:
        """The restricted word or category a theme names ("wine", "alcohol"), or None."""
        names = list(theme.departments)
        if self.check_concepts:
            names.extend(theme.concepts)
        for name in names:
            if self.is_restricted_category(name):
                return fold(name)
        for text in self.theme_texts(theme):
            term = self.restricted_term(text)
            if term:
                return term
        return None
