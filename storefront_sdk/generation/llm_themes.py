"""Themes from a language model, under a JSON schema, merchandising rules and a cache.

Pipeline for one user: the "Buy it again" theme (from the history baseline,
for returning users) goes first; the model is asked for the remaining themes
with a versioned prompt in which the user's context is fenced *data* (product
names from the catalog, never ids; notes and preferences quoted as untrusted);
its output must validate against :func:`theme_list_model` (``extra="forbid"``,
titles <= 60 characters, 1-5 concepts); with a cache the model is wrapped in
:class:`~storefront_sdk.llm.cached.CachingLLM`, keyed by the user *fingerprint*
rather than the exact prompt (similar shoppers share); the output is then
repaired (whitespace, one-line descriptions, empty or duplicate concepts); the
:class:`~storefront_sdk.generation.rules.MerchandisingRules` shape the prompt and
are enforced by the storefront's ``MerchandisingGate`` for every generator.
Fewer themes may come back; when none survive, :class:`OutputValidationError`
says why and the storefront falls back to the baseline.

It stays one module because it is one pipeline: prompt building, validation,
merchandising rules and caching are the steps of the same generate call.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from ..deadline import expired
from ..exceptions import BackendError, OutputValidationError
from ..interfaces import ThemeGenerator
from ..llm.base import LLM, ChatMessage, LLMResult, Structured
from ..llm.cached import CachingLLM, LazyMessages, cache_identity
from ..text import normalize
from ..tracing import annotate, current_stage
from ..types import Theme, UserContext
from .history import HistoryThemeGenerator, user_product_weights
from .prompts import fence, quote_data, theme_prompt
from .rules import MerchandisingRules
from .seeded_titles import (
    DESCRIPTIVE_WORDS,
    SeedIndex,
    TitleSpec,
    concepts_from_title,
    food_phrases,
    title_pattern,
    title_vocabulary,
)

if TYPE_CHECKING:
    from ..cache import BaseGenerationCache, UserFingerprint
    from ..catalog import Catalog

__all__ = [
    "THEME_BUDGETS",
    "CompactThemeDraft",
    "LLMThemeGenerator",
    "Profile",
    "ThemeBudget",
    "ThemeDraft",
    "repair_drafts",
    "resolve_profile",
    "theme_list_model",
]

TITLE_MAX = 60
DESCRIPTION_MAX = 120
CONCEPT_MAX = 40
COMPACT_TITLE_MAX = 40
COMPACT_CONCEPT_MAX = 24

Profile = Literal["auto", "rich", "compact"]
"""How much the generators ask of the model: ``rich`` for strong (remote) models,
``compact`` for small local ones; ``auto`` picks ``compact`` when the backend is
not ``concurrent`` (an in-process model whose every token costs wall time)."""


def resolve_profile(profile: Profile, llm: LLM) -> Literal["rich", "compact"]:
    """``auto`` -> ``compact`` for in-process (non-concurrent) backends, else ``rich``."""
    if profile == "auto":
        return "rich" if llm.concurrent else "compact"
    if profile not in ("rich", "compact"):
        from ..exceptions import ConfigurationError

        raise ConfigurationError(f"profile must be 'auto', 'rich' or 'compact', got {profile!r}")
    return profile


@dataclass(frozen=True)
class ThemeBudget:
    """The cost knobs of one theme call (see :data:`THEME_BUDGETS`)."""

    prompt_version: str
    max_themes: int
    """Themes asked of the model per call; the storefront fills the page from its baseline."""
    max_history_items: int
    """Product names from the history shown in the prompt."""
    max_aisles: int
    compact_schema: bool
    """``CompactThemeDraft`` (title + 1-3 short concepts) instead of ``ThemeDraft``."""
    tokens_per_theme: int
    """Output-token allowance per theme (plus 30): bounds a looping model."""
    seed_products: int = 4
    """Seeded prompts: product names shown for the seed of each title (3 for compact)."""
    title_tokens: int = 24
    """Seeded prompts: output-token allowance of one title."""


THEME_BUDGETS: dict[str, ThemeBudget] = {
    "rich": ThemeBudget("themes-v2", 8, 40, 5, False, 120),
    # one title per call, for a seed from the history (see generation/seeded_titles.py);
    # measured on 2 cores: ~40-70 new prompt tokens and ~10 output tokens per title
    # (the list-prompt knobs apply when prompt_version="themes-compact-v2" is chosen)
    "compact": ThemeBudget("themes-seeded-v1", 7, 12, 3, True, 60, seed_products=3),
}


class ThemeDraft(BaseModel):
    """One theme as the model must write it (the JSON schema the decoder enforces)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=TITLE_MAX)
    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX)
    concepts: list[Annotated[str, StringConstraints(min_length=1, max_length=CONCEPT_MAX)]] = Field(
        min_length=1, max_length=5
    )


class CompactThemeDraft(BaseModel):
    """A theme as a small local model writes it: a short title and 1-3 short concepts.

    No description: it is the costliest field to generate and a 135M model's
    prose is rarely worth showing. ``Theme.description`` stays empty.
    """

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=COMPACT_TITLE_MAX)
    concepts: list[
        Annotated[str, StringConstraints(min_length=2, max_length=COMPACT_CONCEPT_MAX)]
    ] = Field(min_length=1, max_length=3)


@lru_cache(maxsize=64)
def theme_list_model(n: int, compact: bool = False) -> type[BaseModel]:
    """The output model for ``n`` themes: ``{"themes": [draft x n]}``, extra keys forbidden.

    ``compact`` uses :class:`CompactThemeDraft` instead of :class:`ThemeDraft`.
    """
    draft: type[BaseModel] = CompactThemeDraft if compact else ThemeDraft
    model: type[BaseModel] = create_model(
        f"{'Compact' if compact else ''}ThemeList{n}",
        __config__=ConfigDict(extra="forbid"),
        themes=(list[draft], Field(min_length=n, max_length=n)),  # type: ignore[valid-type]
    )
    return model


@lru_cache(maxsize=64)
def _theme_spec(n: int, compact: bool) -> Structured[BaseModel]:
    """One spec per shape: its ``key`` (a schema hash, part of cache keys) is computed once."""
    return Structured(theme_list_model(n, compact))


# -- repair ----------------------------------------------------------------------------------

_EDGE = re.compile(r"^[\s\"'`*#:\-.,;]+|[\s\"'`*#:\-,;]+$")
_SPACES = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _EDGE.sub("", _SPACES.sub(" ", text)).strip()


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def _repetitive(text: str) -> bool:
    """Degenerate small-model output: "Mocha Mocha", "Baked Baked Baked ..." (stutters, loops)."""
    words = normalize(text).split()
    if any(words[i] == words[i + 1] for i in range(len(words) - 1)):
        return True
    return len(words) >= 4 and len(set(words)) / len(words) < 0.5


def repair_drafts(
    drafts: Sequence[ThemeDraft | CompactThemeDraft], *, title_max: int = TITLE_MAX
) -> tuple[list[Theme], list[tuple[str, str]]]:
    """Fix what is fixable in model output, reject the rest: ``(themes, [(title, reason)])``.

    Whitespace and stray quotes are trimmed; a description keeps its first
    sentence (dropped if degenerate); concepts are cleaned, deduplicated and
    empty ones dropped. A theme without a usable title, with a repetitive
    title, or without any concept is rejected.
    """
    themes: list[Theme] = []
    rejected: list[tuple[str, str]] = []
    for d in drafts:
        title = _cut(_clean(d.title), title_max)
        if sum(ch.isalpha() for ch in title) < 3:
            rejected.append((d.title, "empty_title"))
            continue
        if _repetitive(title):
            rejected.append((title, "repetitive_title"))
            continue
        raw_description = d.description if isinstance(d, ThemeDraft) else ""
        lines = [ln for ln in (_clean(x) for x in raw_description.splitlines()) if ln]
        first = _SENTENCE_END.split(lines[0], maxsplit=1)[0] if lines else ""
        description = "" if _repetitive(first) else _cut(first, DESCRIPTION_MAX)
        concepts: list[str] = []
        seen: set[str] = set()
        for c in d.concepts:
            clean = _cut(_clean(c), CONCEPT_MAX)
            key = normalize(clean)
            usable = key and any(ch.isalpha() for ch in key) and not _repetitive(key)
            if usable and key not in seen:
                seen.add(key)
                concepts.append(clean)
        if not concepts:
            rejected.append((title, "no_concepts"))
            continue
        themes.append(
            Theme(title=title, description=description, concepts=concepts[:5], source="llm")
        )
    return themes, rejected


# -- usage bookkeeping ---------------------------------------------------------------------------


def record_usage(result: LLMResult[Any], prompt_tokens_before: int | None) -> None:
    """Annotate token usage unless the backend already did (avoids double counting)."""
    rec = current_stage()
    if rec is None or result.usage.cache_hit:
        return
    if rec.prompt_tokens == prompt_tokens_before:
        u = result.usage
        annotate(
            model_id=u.model_id,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            cost=u.cost,
        )


def stage_tokens() -> int | None:
    rec = current_stage()
    return rec.prompt_tokens if rec is not None else None


# -- the generator -----------------------------------------------------------------------------


@dataclass
class _Plan:
    buy_again: Theme | None
    k: int
    season: str
    messages: LazyMessages
    """The prompt, rendered only when the model is actually called (not on a cache hit)."""
    spec: Structured[BaseModel]
    identity: Callable[[], dict[str, Any]]


class LLMThemeGenerator(ThemeGenerator):
    """Personalised themes from ``llm``: schema-constrained, rule-checked, cached.

    ``fingerprint`` decides which users share cached generations (default:
    :class:`~storefront_sdk.cache.UserFingerprint`). ``baseline`` supplies the
    pinned "Buy it again" theme (default: :class:`HistoryThemeGenerator`).
    ``profile`` sets the cost knobs (:data:`THEME_BUDGETS`): ``compact`` (the
    ``auto`` choice for in-process models) asks for 4 short themes without
    descriptions from a shorter prompt; ``rich`` for 8 full ones. Explicit
    ``prompt_version``, ``max_themes``, ``max_history_items`` and ``max_tokens``
    override the profile. At most ``max_themes`` are asked of the model per
    call; the storefront fills the rest of the page from its baseline.
    ``session_keys`` are the ``user.session`` fields shown to the model
    (the season always is); keep them in the fingerprint's too. The default
    ``temperature`` of 0.7 avoids the loops greedy decoding falls into with
    small models ("Baked Baked Baked ..."); backends seed their sampling.
    """

    source = "llm"

    def __init__(
        self,
        llm: LLM,
        catalog: Catalog,
        *,
        cache: BaseGenerationCache | None = None,
        rules: MerchandisingRules | None = None,
        profile: Profile = "auto",
        prompt_version: str | None = None,
        max_history_items: int | None = None,
        max_themes: int | None = None,
        few_shot: bool = True,
        fingerprint: Callable[[UserContext, Catalog], str] | UserFingerprint | None = None,
        baseline: ThemeGenerator | None = None,
        temperature: float | None = 0.7,
        max_tokens: int | None = None,
        session_keys: tuple[str, ...] = ("occasion",),
        today: Callable[[], date] = date.today,
    ) -> None:
        self.llm = CachingLLM.wrap(llm, cache, stage="themes")
        self.catalog = catalog
        self.cache = cache
        self.rules = rules if rules is not None else MerchandisingRules()
        self.profile = resolve_profile(profile, llm)
        self.budget = budget = THEME_BUDGETS[self.profile]
        self.prompt_version = prompt_version or budget.prompt_version
        self.prompt = theme_prompt(self.prompt_version)
        self.max_history_items = (
            budget.max_history_items if max_history_items is None else max_history_items
        )
        self.max_themes = budget.max_themes if max_themes is None else max_themes
        self.few_shot = few_shot
        if fingerprint is None:
            from ..cache import UserFingerprint

            fingerprint = UserFingerprint()
        self.fingerprint = fingerprint
        self.baseline = baseline if baseline is not None else HistoryThemeGenerator(catalog)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.session_keys = session_keys
        self.today = today

    def warm_up(self) -> None:
        self.llm.warm_up()

    @property
    def seeded(self) -> bool:
        """One title per call for seeds from the history (the ``themes-seeded-*`` prompts)."""
        return self.prompt_version.startswith("themes-seeded")

    @cached_property
    def seed_index(self) -> SeedIndex:
        """Products that describe a seed theme (built on first use, once per catalog)."""
        return SeedIndex(self.catalog)

    # -- prompt ------------------------------------------------------------------------------
    def user_data(self, user: UserContext, season: str) -> str:
        """The user's context as a fenced data block: names and quoted text, never ids."""
        weights = {
            pid: w for pid, w in user_product_weights(user.history).items() if pid in self.catalog
        }
        ranked = sorted(weights, key=lambda pid: (-weights[pid], pid))
        aisles: dict[str, float] = {}
        for pid in ranked:
            aisle = self.catalog[pid].aisle
            if aisle:
                aisles[aisle] = aisles.get(aisle, 0.0) + weights[pid]
        compact = self.budget.compact_schema
        name_chars = 40 if compact else 60
        lines = [f'season: "{quote_data(season, 40)}"']
        if ranked:
            top = "; ".join(
                f'"{quote_data(a, 40)}"'
                for a in sorted(aisles, key=lambda a: -aisles[a])[: self.budget.max_aisles]
            )
            lines.append(f"favourite aisles: {top}")
            names = [
                quote_data(self.catalog[pid].title, name_chars)
                for pid in ranked[: self.max_history_items]
            ]
            lines.append("often bought: " + "; ".join(f'"{n}"' for n in names))
        else:
            lines.append("often bought: nothing yet (a new shopper)")
        prefs = [quote_data(p, 60) for p in user.preferences[: 5 if compact else 10]]
        prefs = [p for p in prefs if p]
        if prefs:
            lines.append(
                "preferences (quoted from the shopper): " + "; ".join(f'"{p}"' for p in prefs)
            )
        if user.notes and quote_data(user.notes):
            note = quote_data(user.notes, 150 if compact else 300)
            lines.append(f'notes (quoted from the shopper): "{note}"')
        for k in self.session_keys:
            v = quote_data(user.session.get(k, ""), 60)
            if v and k != "season":
                lines.append(f'{quote_data(k, 30)}: "{v}"')
        banned = [w for w in (quote_data(w, 30) for w in self.rules.banned_words) if w]
        if banned:
            lines.append("avoid: " + "; ".join(f'"{w}"' for w in banned))
        return fence("shopper_data", lines)

    def messages(
        self, user: UserContext, n: int, *, season: str | None = None
    ) -> list[ChatMessage]:
        """The chat messages sent to the model for ``n`` themes (inspectable)."""
        season = season or self.rules.season_for(user, self.today())
        return self.prompt.render(
            few_shot=self.few_shot,
            system_fields={"n": n},
            data=self.user_data(user, season),
            n=n,
        )

    def cache_identity(self, user: UserContext, n: int, *, season: str) -> dict[str, Any]:
        """What determines the model's answer besides model, schema and sampling settings.

        The user enters as their fingerprint, not their exact prompt, so that
        similar shoppers share a cached generation.
        """
        return {
            "prompt": self.prompt_version,
            "prompt_hash": self.prompt.fingerprint,
            "few_shot": self.few_shot,
            "user": self.fingerprint(user, self.catalog),
            "n": n,
            "catalog": self.catalog.version,
            "rules": self.rules.fingerprint,
            "season": season,
            "max_history_items": self.max_history_items,
            "compact": self.budget.compact_schema,
        }

    def cache_key(self, user: UserContext, n: int, *, season: str, spec_key: str) -> str | None:
        """The cache key of the model call for ``n`` themes; None without a cache."""
        if not isinstance(self.llm, CachingLLM):
            return None
        with cache_identity("themes", self.cache_identity(user, n, season=season)):
            return self.llm.request_key(
                (), spec_key, max_tokens=self._max_tokens(n), temperature=self.temperature
            )

    # -- generation ----------------------------------------------------------------------------
    def _plan(self, user: UserContext, n: int) -> _Plan:
        buy_again = None
        if self.rules.buy_it_again_first and n > 0:
            buy_again = next(
                # n, not 1: the storefront asks the baseline for n fallback themes of the
                # same user, which the history baseline then answers from memory.
                (t for t in self.baseline.generate(user, n) if t.kind == "buy_again"),
                None,
            )
            if buy_again is not None and buy_again.title != self.rules.buy_it_again_title:
                buy_again = buy_again.model_copy(update={"title": self.rules.buy_it_again_title})
        k = n - (1 if buy_again is not None else 0)
        if self.max_themes is not None:
            k = min(k, self.max_themes)
        season = self.rules.season_for(user, self.today())
        spec = _theme_spec(max(k, 1), self.budget.compact_schema)
        return _Plan(
            buy_again,
            k,
            season,
            LazyMessages(lambda: self.messages(user, k, season=season)),
            spec,
            lambda: self.cache_identity(user, k, season=season),
        )

    def _finish(
        self,
        plan: _Plan,
        user: UserContext,
        drafts: Sequence[ThemeDraft | CompactThemeDraft],
    ) -> list[Theme]:
        # The merchandising rules are enforced by the storefront's MerchandisingGate, for
        # every generator; here the drafts are only repaired.
        themes, rejected = repair_drafts(drafts, title_max=self.rules.title_max_chars)
        existing = [plan.buy_again] if plan.buy_again is not None else []
        annotate(
            prompt_version=self.prompt_version,
            profile=self.profile,
            season=plan.season,
            themes_generated=len(drafts),
            themes_rejected=[f"{title[:60]}: {why}" for title, why in rejected],
        )
        if not themes:
            reasons = ", ".join(sorted({why.split(":")[0] for _, why in rejected})) or "no output"
            raise OutputValidationError(
                f"all {len(drafts)} generated themes were rejected ({reasons})"
            )
        return [*existing, *themes]

    def generate(self, user: UserContext, n: int) -> list[Theme]:
        if self.seeded:
            return self._generate_seeded(user, n)
        plan = self._plan(user, n)
        if plan.k <= 0:
            return [plan.buy_again] if plan.buy_again is not None else []
        before = stage_tokens()
        with cache_identity("themes", plan.identity):
            result = self.llm.generate(
                plan.messages,
                plan.spec,
                max_tokens=self._max_tokens(plan.k),
                temperature=self.temperature,
            )
        record_usage(result, before)
        return self._finish(plan, user, list(result.value.themes))  # type: ignore[attr-defined]

    async def agenerate(self, user: UserContext, n: int) -> list[Theme]:
        if not self.llm.concurrent or self.seeded:
            return await asyncio.to_thread(self.generate, user, n)
        plan = self._plan(user, n)
        if plan.k <= 0:
            return [plan.buy_again] if plan.buy_again is not None else []
        before = stage_tokens()
        with cache_identity("themes", plan.identity):
            result = await self.llm.agenerate(
                plan.messages,
                plan.spec,
                max_tokens=self._max_tokens(plan.k),
                temperature=self.temperature,
            )
        record_usage(result, before)
        return self._finish(plan, user, list(result.value.themes))  # type: ignore[attr-defined]

    def _max_tokens(self, k: int) -> int:
        # Room for k themes; the schema bounds the output anyway, this bounds a looping model.
        return self.max_tokens or 30 + k * self.budget.tokens_per_theme

    # -- seeded: one title per call (small local models) ---------------------------------------
    def seeds(self, user: UserContext, n: int) -> tuple[Theme | None, list[Theme]]:
        """``(buy_again, seeds)``: the baseline's themes for ``user``; the pinned "Buy it
        again" one is kept as it is, the others are the topics the model names."""
        themes = self.baseline.generate(user, n) if n > 0 else []
        buy_again = next((t for t in themes if t.kind == "buy_again"), None)
        if not self.rules.buy_it_again_first:
            buy_again = None
        elif buy_again is not None and buy_again.title != self.rules.buy_it_again_title:
            buy_again = buy_again.model_copy(update={"title": self.rules.buy_it_again_title})
        return buy_again, [t for t in themes if t.kind != "buy_again"]

    def shopper_lines(self, user: UserContext, season: str) -> list[str]:
        """The shopper's lines of a seeded prompt's data block (quoted), shared by its calls."""
        lines = [f'season: "{quote_data(season, 40)}"']
        prefs = [p for p in (quote_data(p, 40) for p in user.preferences[:3]) if p]
        if prefs:
            lines.append("preferences: " + "; ".join(f'"{p}"' for p in prefs))
        for k in self.session_keys:
            v = quote_data(user.session.get(k, ""), 40)
            if v and k != "season":
                lines.append(f'{quote_data(k, 30)}: "{v}"')
        if user.notes and quote_data(user.notes):
            lines.append(f'notes: "{quote_data(user.notes, 100)}"')
        return lines

    def seed_messages(
        self, shopper: Sequence[str], aisle: str, products: Sequence[str], earlier: Sequence[str]
    ) -> list[ChatMessage]:
        """The messages asking for one seed's title: every value is quoted data."""
        lines = list(shopper)
        if earlier:
            lines.append("on the page: " + "; ".join(f'"{quote_data(t, 40)}"' for t in earlier))
        lines.append("products: " + "; ".join(f'"{quote_data(t, 32)}"' for t in products))
        if quote_data(aisle, 40):
            lines.append(f'aisle: "{quote_data(aisle, 40)}"')
        return self.prompt.render(
            few_shot=self.few_shot, system_fields={}, data=fence("shopper_data", lines)
        )

    def _generate_seeded(self, user: UserContext, n: int) -> list[Theme]:
        buy_again, seeds = self.seeds(user, n)
        k = n - (1 if buy_again is not None else 0)
        if self.max_themes is not None:
            k = min(k, self.max_themes)
        existing = [buy_again] if buy_again is not None else []
        if k <= 0:
            return existing
        season = self.rules.season_for(user, self.today())
        shopper = self.shopper_lines(user, season)
        themes: list[Theme] = []  # the seeds the model retitled
        aisles: set[str] = set()
        rejected: list[tuple[str, str]] = []
        calls = 0
        # The page keeps the baseline's seeds, in the baseline's order: the model retitles
        # the first k, and a seed it cannot title keeps its baseline title in its place.
        # What the page shows (the seeds' pinned products) is therefore the baseline's;
        # taking a later seed instead would swap the shopper's own products for a spare
        # seed's new ones (measured: next-basket recall 0.570 against 0.591 on Instacart).
        page: list[Theme] = []
        stopped = False
        for i, seed in enumerate(seeds):
            if stopped or i >= k:
                page.append(seed)
                continue
            if expired():
                rejected.append((seed.title, "page_deadline"))
                stopped = True
                page.append(seed)
                continue
            try:
                theme, why, used = self._seed_theme(seed, shopper, themes, aisles)
            except OutputValidationError as exc:
                theme, why, used = None, f"invalid_output:{str(exc)[:80]}", 1
            except BackendError:
                if not themes:
                    raise
                rejected.append((seed.title, "backend_error"))
                stopped = True
                page.append(seed)
                continue
            calls += used
            if theme is None:
                rejected.append((seed.title, why or "no_title"))
                page.append(seed)
            else:
                themes.append(theme)
                page.append(theme)
        annotate(
            prompt_version=self.prompt_version,
            profile=self.profile,
            season=season,
            seeds=len(seeds),
            model_calls=calls,
            themes_generated=len(themes),
            themes_rejected=[f"{title[:60]}: {why}" for title, why in rejected],
        )
        if not themes:
            reasons = ", ".join(sorted({why.split(":")[0] for _, why in rejected})) or "no seeds"
            raise OutputValidationError(f"no seeded title was usable ({reasons})")
        return [*existing, *page][: max(n, len(existing) + len(themes))]

    def _seed_theme(
        self, seed: Theme, shopper: Sequence[str], accepted: Sequence[Theme], aisles: set[str]
    ) -> tuple[Theme | None, str | None, int]:
        """One seed's theme (or None and why), and how many model calls it took.

        ``aisles`` are those of the themes accepted so far: a seed whose products
        are in one of them would make a second placement about the same thing.
        """
        products = self.seed_index.products(seed, self.budget.seed_products)
        if not products:
            return None, "no_products", 0
        aisle = products[0].aisle or ""
        if aisle in aisles:
            return None, "duplicate_topic", 0
        names = [p.title for p in products]
        banned = self.rules.banned_words
        vocabulary = title_vocabulary([*names, aisle], banned=banned)
        phrases, finals = food_phrases([*names, aisle], banned=banned)
        if not finals:
            return None, "no_vocabulary", 0
        descriptive = title_vocabulary(DESCRIPTIVE_WORDS, banned=banned)
        spec = TitleSpec(title_pattern(phrases, finals, descriptive))
        earlier = [t.title for t in accepted]
        messages = self.seed_messages(shopper, aisle, names, earlier)
        why: str | None = None
        for attempt in range(2):
            before = stage_tokens()
            temperature = self.temperature if attempt == 0 else max(self.temperature or 0.0, 0.9)
            result = self.llm.generate(
                messages,
                spec,
                max_tokens=self.max_tokens or self.budget.title_tokens,
                temperature=temperature,
            )
            record_usage(result, before)
            title = _clean(result.value)
            why = _title_problem(title, earlier)
            if why is None:
                aisles.add(aisle)
                return self._seeded_theme(seed, title, vocabulary, aisle), None, attempt + 1
        return None, why, 2

    def _seeded_theme(
        self, seed: Theme, title: str, vocabulary: Sequence[str], aisle: str
    ) -> Theme:
        """The seed with the model's title: the title's food phrases lead the concepts
        (then the seed's own, or its aisle), so keywords follow what the title promises;
        pinned products, departments and kind stay the seed's."""
        concepts: list[str] = []
        seen: set[str] = set()
        for c in [*concepts_from_title(title, vocabulary), *(seed.concepts or [aisle])]:
            key = normalize(c)
            if key and key not in seen:
                seen.add(key)
                concepts.append(c)
        return seed.model_copy(
            update={"title": title, "description": "", "concepts": concepts[:5], "source": "llm"}
        )


def _title_problem(title: str, earlier: Sequence[str]) -> str | None:
    """Why a seeded title is not worth showing: a stutter, or a near copy of an earlier one."""
    content = [w for w in normalize(title).split() if w not in _CONNECTOR_WORDS]
    if _repetitive(title) or len(set(content)) < len(content):
        return "repetitive_title"
    words = set(content)
    for other in earlier:
        theirs = set(normalize(other).split()) - _CONNECTOR_WORDS
        if words and theirs and len(words & theirs) / len(words | theirs) >= 0.5:
            return "duplicate_title"
    return None


_CONNECTOR_WORDS = frozenset({"and", "with"})
