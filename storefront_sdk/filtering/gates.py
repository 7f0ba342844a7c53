"""Quality and safety gates (AIQA) in the page assembly path.

The :class:`~storefront_sdk.interfaces.Gate` contract lives in
:mod:`storefront_sdk.interfaces` (re-exported here). A gate looks at a theme
before retrieval (against the themes accepted so far), at each keyword, at each
product of a placement, and at each assembled placement against those already
accepted. A check that raises is recorded (``gate_failed``) and rejects. Each check returns
``None`` to accept or a short reason code to reject; the storefront drops what
is rejected and records ``gate``, ``reason`` and the subject in the trace
(``page.trace.events_of("gate")``). Gates must be cheap: they run on every build.

A reason is a code from :data:`REASON_CODES`, optionally followed by ``:`` and
a detail (``"sensitive_trait:health"``, ``"restricted_product:red wines"``);
:func:`reason_code` strips the detail. The concrete gates, in the order
:func:`default_gates` runs them:

* :class:`SafetyGate` -- blocklist, sensitive-trait inference, age-restricted
  categories (by :class:`~storefront_sdk.filtering.safety.SafetyPolicy`) and
  instruction-like text;
* :class:`MerchandisingGate` -- the merchandising rules (banned words,
  age-restricted terms, at most ``max_seasonal`` seasonal themes);
* :class:`TitleQualityGate` -- empty, long, repeated, shouting, oddly cased,
  placeholder or off-topic titles;
* :class:`NearDuplicateGate` -- placements too similar to one already accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from functools import lru_cache
from itertools import chain

from ..generation.rules import MerchandisingRules
from ..interfaces import Gate
from ..text import tokenize
from ..types import Placement, Product, Theme, UserContext
from .safety import SafetyPolicy
from .titles import DUPLICATE_THRESHOLD, TitleRules, is_duplicate_title, text_similarity

__all__ = [
    "REASON_CODES",
    "Gate",
    "MerchandisingGate",
    "NearDuplicateGate",
    "SafetyGate",
    "TitleQualityGate",
    "default_gates",
    "reason_code",
    "text_similarity",
]

REASON_CODES: dict[str, str] = {
    # SafetyGate
    "blocked_term": "contains a blocklisted word or phrase (detail: the phrase)",
    "sensitive_trait": "infers a sensitive trait such as health or religion (detail: category)",
    "prompt_injection": "generated text reads like instructions to a model",
    "restricted_theme": "age-restricted theme shown to a non-verified user (detail: the word)",
    "restricted_product": "age-restricted product for a non-verified user (detail: category)",
    # TitleQualityGate
    "empty_title": "the title has no letters",
    "title_too_short": "the title is shorter than min_len characters",
    "title_too_long": "the title is longer than max_len characters",
    "repeated_words": "a word is repeated back to back, or three times or more",
    "all_caps": "the title is shouting (mostly upper case)",
    "odd_casing": 'a word alternates case ("sNaCkS")',
    "not_letters": "the title is mostly digits, symbols or emoji",
    "markup": "the title holds markup, code, a URL or control characters",
    "placeholder": 'the title is placeholder text ("Theme 1", "Untitled", "lorem")',
    "off_topic": "no word of the title appears in the placement's products or keywords",
    "too_many_words": "the title has more than max_words words (judges only by default)",
    "not_capitalised": "the title starts in lower case (judges only by default)",
    # MerchandisingGate
    "banned_word": "contains a word the merchandising rules ban (detail: the word)",
    "age_restricted": "names an age-restricted term for a non-verified user (detail: the term)",
    "extra_seasonal": "one seasonal placement more than the rules allow",
    # NearDuplicateGate
    "duplicate_title": "the title is nearly the same as an accepted placement's",
    "duplicate_theme": "title, concepts and keywords nearly match an accepted placement's",
    "duplicate_products": "the products overlap an accepted placement's too much",
}
"""Every reason code the shipped gates return, with what it means."""


def reason_code(reason: str) -> str:
    """The code part of a gate reason: ``"sensitive_trait:health"`` -> ``"sensitive_trait"``."""
    return reason.split(":", 1)[0]


# -- safety -------------------------------------------------------------------------------


class SafetyGate(Gate):
    """Enforces a :class:`~storefront_sdk.filtering.safety.SafetyPolicy` on themes and products.

    Themes: blocklisted phrases, sensitive-trait inference and instruction-like
    text are rejected for everyone; age-restricted themes ("Wine night") for
    users whose ``age_verified`` is False. Products: blocklisted phrases in the
    title or brand; restricted categories for non-verified users. Placements
    are re-checked as a whole, so nothing blocked reaches a page even if a
    product slipped past the product check (e.g. a custom assembly path), and
    the placement's keywords are held to the blocklist and age rules too.
    """

    def __init__(self, policy: SafetyPolicy | None = None) -> None:
        self.policy = policy if policy is not None else SafetyPolicy()
        # Product verdicts depend only on the product and the (frozen) policy: memoised,
        # because every candidate of every placement is checked on every build.
        self._product_memo: dict[str, tuple[Product, tuple[str | None, str | None]]] = {}
        self._theme_memo: dict[tuple[object, ...], str | None] = {}
        self._keyword_memo: dict[tuple[str, bool], str | None] = {}

    def check_keyword(self, keyword: str, theme: Theme, user: UserContext) -> str | None:
        key = (keyword, user.age_verified)
        if key not in self._keyword_memo:
            if len(self._keyword_memo) > 100_000:
                self._keyword_memo.clear()
            self._keyword_memo[key] = self._check_keyword(keyword, user)
        return self._keyword_memo[key]

    def _check_keyword(self, keyword: str, user: UserContext) -> str | None:
        term = self.policy.blocked_term(keyword)
        if term:
            return f"blocked_term:{term}"
        if not user.age_verified:
            what = self.policy.restricted_term(keyword)
            if what or self.policy.is_restricted_category(keyword):
                return f"restricted_theme:{what or keyword}"
        return None

    def _product_verdicts(self, product: Product) -> tuple[str | None, str | None]:
        # Keyed by id; the entry keeps the product it was computed for, so a changed copy
        # under the same id (equal fields or not) is judged on its own fields.
        hit = self._product_memo.get(product.id)
        if hit is not None and (hit[0] is product or hit[0] == product):
            return hit[1]
        blocked = None
        for text in (product.title, product.brand or ""):
            term = self.policy.blocked_term(text) if text else None
            if term:
                blocked = f"blocked_term:{term}"
                break
        what = self.policy.restricted_product(product)
        verdict = (blocked, f"restricted_product:{what}" if what else None)
        if len(self._product_memo) > 500_000:
            self._product_memo.clear()
        self._product_memo[product.id] = (product, verdict)
        return verdict

    def check_theme(
        self, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        # A verdict depends only on the theme's texts and the user's age flag: memoised.
        key = (
            theme.title,
            theme.description,
            tuple(theme.concepts),
            tuple(theme.departments),
            user.age_verified,
        )
        if key not in self._theme_memo:
            if len(self._theme_memo) > 100_000:
                self._theme_memo.clear()
            self._theme_memo[key] = self._check_theme(theme, user)
        return self._theme_memo[key]

    def _check_theme(self, theme: Theme, user: UserContext) -> str | None:
        texts = self.policy.theme_texts(theme)
        for text in texts:
            term = self.policy.blocked_term(text)
            if term:
                return f"blocked_term:{term}"
        for text in texts:
            hit = self.policy.sensitive_term(text)
            if hit:
                return f"sensitive_trait:{hit[0]}"
        for text in texts:
            if self.policy.injection(text):
                return "prompt_injection"
        if not user.age_verified:
            what = self.policy.restricted_theme(theme)
            if what:
                return f"restricted_theme:{what}"
        return None

    def check_product(self, product: Product, theme: Theme, user: UserContext) -> str | None:
        blocked, restricted = self._product_verdicts(product)
        if blocked:
            return blocked
        return None if user.age_verified else restricted

    def check_placement(
        self, placement: Placement, accepted: Sequence[Placement], user: UserContext
    ) -> str | None:
        why = self.check_theme(placement.theme, user)
        if why:
            return why
        for kw in placement.keywords:
            why = self.check_keyword(kw, placement.theme, user)
            if why:
                return why
        for sp in placement.products:
            why = self.check_product(sp.product, placement.theme, user)
            if why:
                return why
        return None


# -- title quality --------------------------------------------------------------------------

GENERIC_TITLE_WORDS: frozenset[str] = frozenset(
    tokenize(
        """
        buy again popular right now picked picks pick favourite favourites favorite favorites
        more explore stock up fresh finds find top best seller sellers love loved trending
        seasonal season summer winter spring fall autumn holiday holidays weekend weekday week
        weeknight night nights morning evening day daily time everyday essentials essential
        staple staples treat treats quick easy healthy family kids deal deals save saving
        savings recommended recommendation recommendations suggested just because based
        shopping shop list basket cart goes well together often bought regular regulars
        new arrivals arrival try something different classic classics ideas idea inspiration
        perfect great good tasty delicious simple tonight today hand picked handpicked
        selection selections collection mix favourites again home cozy comfort go back
        """
    )
)
"""Words a title may use without them naming anything in the placement (off-topic check)."""


class TitleQualityGate(Gate):
    """Rejects titles a shopper should never see: empty, too long, repeated, shouting,
    oddly cased, symbols only, placeholders, markup, or off-topic for the placement.

    Title checks run on the theme (before retrieval is spent on it) with
    :class:`~storefront_sdk.filtering.titles.TitleRules`, the same rules the offline
    judges use; the off-topic check runs on the assembled placement, where its
    products and keywords are known. ``generic_words`` may appear in any title
    ("Buy it again", "Weeknight favourites") without naming a product.
    """

    def __init__(
        self,
        max_len: int = 60,
        *,
        min_len: int = 3,
        max_caps_ratio: float = 0.7,
        min_letter_ratio: float = 0.6,
        max_word_repeats: int = 2,
        check_off_topic: bool = True,
        generic_words: Iterable[str] = GENERIC_TITLE_WORDS,
        placeholders: Iterable[str] = (),
    ) -> None:
        self.rules = TitleRules(
            max_len=max_len,
            min_len=min_len,
            max_caps_ratio=max_caps_ratio,
            min_letter_ratio=min_letter_ratio,
            max_word_repeats=max_word_repeats,
            placeholders=tuple(placeholders),
        )
        self.check_off_topic = check_off_topic
        self.generic_words = frozenset(tokenize(" ".join(generic_words)))
        self._title_memo: dict[str, str | None] = {}
        self._memo_rules = self.rules

    @property
    def max_len(self) -> int:
        return self.rules.max_len

    def check_theme(
        self, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        return self.check_title(theme.title)

    def check_title(self, title: str) -> str | None:
        """The reason code a title alone fails on, or None (usable outside a page build)."""
        # Memoised: the rules are frozen, and the same titles come back on every page.
        memo = self._title_memo
        if self._memo_rules is not self.rules:  # rules replaced after construction
            memo.clear()
            self._memo_rules = self.rules
        if title not in memo:
            if len(memo) > 100_000:
                memo.clear()
            memo[title] = self.rules.first_problem(title)
        return memo[title]

    def check_placement(
        self, placement: Placement, accepted: Sequence[Placement], user: UserContext
    ) -> str | None:
        if not self.check_off_topic or not placement.products:
            return None
        named = [t for t in tokenize(placement.theme.title) if t not in self.generic_words]
        named = [t for t in named if not t.isdigit()]
        if not named:
            return None  # a generic title ("Buy it again") names nothing to check
        # A named word is on topic when a product's or keyword's words hold it, or one of
        # five letters or more that starts like it. Checked text by text: the first product
        # usually settles it.
        long_named = [t[:5] for t in named if len(t) >= 5]
        texts = chain((sp.product.text for sp in placement.products), placement.keywords)
        for text in texts:
            words = _token_set(text)
            if any(t in words for t in named):
                return None
            if long_named and not _prefix_set(text).isdisjoint(long_named):
                return None
        return "off_topic"


# -- near duplicates -----------------------------------------------------------------------


@lru_cache(maxsize=65_536)
def _token_set(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


@lru_cache(maxsize=65_536)
def _prefix_set(text: str) -> frozenset[str]:
    """The five-letter prefixes of the text's words of five letters or more."""
    return frozenset(t[:5] for t in _token_set(text) if len(t) >= 5)


@lru_cache(maxsize=8192)
def _bag_of(title: str, words: tuple[str, ...]) -> str:
    return " ".join(sorted(set(tokenize(" ".join([title, *words])))))


def _bag(placement: Placement) -> str:
    theme = placement.theme
    return _bag_of(theme.title, (*theme.concepts, *placement.keywords))


class NearDuplicateGate(Gate):
    """Rejects a placement too similar to one accepted before it.

    Themes: a title nearly the same as an accepted theme's is rejected before
    retrieval. Placements -- similar text: the titles, or the bags of title +
    concept + keyword words, have a character-trigram cosine at or above ``text_threshold``. Similar
    products: the overlap coefficient ``|A ∩ B| / min(|A|, |B|)`` of the two
    product sets is at or above ``overlap_threshold``.
    """

    def __init__(
        self, text_threshold: float = DUPLICATE_THRESHOLD, overlap_threshold: float = 0.5
    ) -> None:
        self.text_threshold = text_threshold
        self.overlap_threshold = overlap_threshold

    def duplicate_title(self, title: str, others: Iterable[str]) -> bool:
        """Is ``title`` too similar to one of ``others``?"""
        return is_duplicate_title(title, others, self.text_threshold)

    def check_theme(
        self, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        """A near-duplicate of an accepted (or already admitted) theme's title is dropped
        before retrieval is spent on it, so the round takes the next theme instead."""
        if self.duplicate_title(theme.title, [t.title for t in accepted]):
            return "duplicate_title"
        return None

    def check_placement(
        self, placement: Placement, accepted: Sequence[Placement], user: UserContext
    ) -> str | None:
        ids = set(placement.product_ids)
        bag = _bag(placement)
        for other in accepted:
            if text_similarity(placement.theme.title, other.theme.title) >= self.text_threshold:
                return "duplicate_title"
            if text_similarity(bag, _bag(other)) >= self.text_threshold:
                return "duplicate_theme"
            other_ids = set(other.product_ids)
            if ids and other_ids:
                overlap = len(ids & other_ids) / min(len(ids), len(other_ids))
                if overlap >= self.overlap_threshold:
                    return "duplicate_products"
        return None


# -- merchandising rules ------------------------------------------------------------------


class MerchandisingGate(Gate):
    """Enforces :class:`~storefront_sdk.generation.rules.MerchandisingRules` on every
    theme, whichever generator made it.

    Rejects themes naming a banned word (``banned_word:<word>``), an age-restricted
    term for a user who is not age-verified (``age_restricted:<term>``), and a
    seasonal theme when the themes accepted so far already hold ``max_seasonal``
    (``extra_seasonal``; the season is the rules' ``season_for(user, today())``).
    Near-duplicate titles are :class:`NearDuplicateGate`'s. ``today`` makes the date
    injectable (tests, replays).
    """

    def __init__(
        self,
        rules: MerchandisingRules | None = None,
        *,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.rules = rules if rules is not None else MerchandisingRules()
        self.today = today
        # Verdicts depend only on the theme's text, the age flag and the season: memoised
        # (the same baseline themes come back for every user).
        self._violations: dict[tuple[str, bool], str | None] = {}
        self._seasonal: dict[tuple[str, str, str], bool] = {}

    def _is_seasonal(self, theme: Theme, season: str) -> bool:
        key = (theme.title, theme.kind, season)
        hit = self._seasonal.get(key)
        if hit is None:
            if len(self._seasonal) > 100_000:
                self._seasonal.clear()
            hit = self._seasonal[key] = self.rules.is_seasonal(theme, season)
        return hit

    def check_theme(
        self, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        rules = self.rules
        key = (theme.text, user.age_verified)
        if key in self._violations:
            why = self._violations[key]
        else:
            if len(self._violations) > 100_000:
                self._violations.clear()
            why = self._violations[key] = rules.violation(theme, user)
        if why is not None:
            return why
        season = rules.season_for(user, self.today())
        if self._is_seasonal(theme, season):
            seasonal = sum(1 for t in accepted if self._is_seasonal(t, season))
            if seasonal >= rules.max_seasonal:
                return "extra_seasonal"
        return None


def default_gates(
    policy: SafetyPolicy | None = None,
    *,
    rules: MerchandisingRules | None = None,
    today: Callable[[], date] = date.today,
) -> list[Gate]:
    """The gates a :class:`~storefront_sdk.Storefront` runs unless told otherwise.

    ``policy`` configures the safety gate, ``rules`` the merchandising gate (pass the
    same rules you gave an ``LLMThemeGenerator``, whose prompt they shape) and ``today``
    its clock.

    Safety first (cheapest and most important), then the merchandising rules, then
    title quality, then near-duplicates (which compare against what is accepted).
    """
    return [
        SafetyGate(policy),
        MerchandisingGate(rules, today=today),
        TitleQualityGate(),
        NearDuplicateGate(),
    ]
