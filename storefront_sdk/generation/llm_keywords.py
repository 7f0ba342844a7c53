"""Keywords from a language model, constrained to a taxonomy shortlist.

For one theme: shortlist ``shortlist_size`` taxonomy keywords similar to the
theme's title and concepts, then let the model choose up to ``n`` of *exactly
those* (a :class:`~storefront_sdk.llm.base.MultiChoice` constraint). Every
keyword returned is therefore a taxonomy member; this is checked again with
``taxonomy.canonical`` before returning. The user is not part of the prompt:
keywords depend on the theme only, which lets placements share cached choices.

Profiles (:data:`KEYWORD_BUDGETS`): ``rich`` lists 100 options and lets the
model choose all ``n``; ``compact`` (in-process models) lists 16 and lets it
choose up to 3, then fills to ``n`` from the top of the shortlist, so the
prompt and output stay a few dozen tokens and the shared prompt prefix is
reused by llama.cpp across placements.

Expansion (``expander="auto"``, the default): with a local llama.cpp model, the
shortlist is the taxonomy's ``"expanded"`` one, which fuses what the model
expects on a shopping list for the theme with the embedding and word rankings
(:mod:`storefront_sdk.keyword_expansion`; one prompt evaluation per theme,
cached in ``cache``), joined, when the ``expand`` extra is installed, by the list a
small base model writes for the theme (:mod:`storefront_sdk.list_expansion`). Other
models, or ``expander=None``, keep the fused shortlist.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import ComponentError, OutputValidationError
from ..interfaces import KeywordGenerator
from ..keyword_expansion import KeywordExpander, default_expander
from ..llm.base import LLM, ChatMessage, MultiChoice
from ..llm.cached import CachingLLM, LazyMessages, cache_identity
from ..taxonomy import KeywordTaxonomy
from ..tracing import annotate
from ..types import Theme, UserContext
from .llm_themes import Profile, record_usage, resolve_profile, stage_tokens
from .prompts import fence, keyword_prompt, quote_data

if TYPE_CHECKING:
    from ..cache import BaseGenerationCache

__all__ = ["KEYWORD_BUDGETS", "KeywordBudget", "LLMKeywordGenerator"]


@dataclass(frozen=True)
class KeywordBudget:
    """The cost knobs of one keyword call (see :data:`KEYWORD_BUDGETS`)."""

    prompt_version: str
    shortlist_size: int
    """Taxonomy keywords listed in the prompt (and allowed by the constraint)."""
    max_model_keywords: int | None
    """At most this many are chosen by the model (None: all ``n``)."""
    fill: bool
    """Top up to ``n`` with the best remaining shortlist keywords."""
    describe: bool
    """Show the theme's description in the prompt."""
    few_shot: bool
    """Include the worked example (the compact one costs ~70 prompt tokens per call
    unless the backend reuses the evaluated prefix; measured: same picks without it)."""
    exact_shortcut: int | None
    """When at least this many of the theme's title and concepts are taxonomy keywords
    themselves, return them (then the shortlist) without a model call. None: always ask."""


KEYWORD_BUDGETS: dict[str, KeywordBudget] = {
    "rich": KeywordBudget("keywords-v1", 100, None, False, True, True, None),
    # measured on 2 cores: ~125 prompt and ~18 output tokens per placement (was ~540 / ~30)
    "compact": KeywordBudget("keywords-compact-v1", 16, 3, True, False, False, 2),
}


class LLMKeywordGenerator(KeywordGenerator):
    """The model picks up to ``n`` distinct keywords from the theme's taxonomy shortlist.

    ``profile`` sets the cost knobs (:data:`KEYWORD_BUDGETS`; ``auto`` is
    ``compact`` for in-process models); explicit ``shortlist_size``,
    ``prompt_version``, ``max_model_keywords``, ``fill``, ``few_shot`` and
    ``exact_shortcut`` override it (``exact_shortcut=0`` disables the shortcut).
    ``expander``: ``"auto"`` (:func:`~storefront_sdk.keyword_expansion.default_expander`:
    for a local llama.cpp model, its prior joined by the list expander when the ``expand``
    extra is installed; else none), a
    :class:`~storefront_sdk.keyword_expansion.KeywordExpander`, or None.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        cache: BaseGenerationCache | None = None,
        profile: Profile = "auto",
        shortlist_size: int | None = None,
        prompt_version: str | None = None,
        max_model_keywords: int | None = None,
        fill: bool | None = None,
        exact_shortcut: int | None = None,
        few_shot: bool | None = None,
        temperature: float | None = None,
        expander: KeywordExpander | Literal["auto"] | None = "auto",
    ) -> None:
        self.llm = CachingLLM.wrap(llm, cache, stage="keywords")
        self.expander: KeywordExpander | None = (
            default_expander(llm, cache=cache) if expander == "auto" else expander
        )
        self.cache = cache
        self.profile = resolve_profile(profile, llm)
        self.budget = budget = KEYWORD_BUDGETS[self.profile]
        self.shortlist_size = budget.shortlist_size if shortlist_size is None else shortlist_size
        self.prompt_version = prompt_version or budget.prompt_version
        self.prompt = keyword_prompt(self.prompt_version)
        self.max_model_keywords = (
            budget.max_model_keywords if max_model_keywords is None else max_model_keywords
        )
        self.fill = budget.fill if fill is None else fill
        shortcut = budget.exact_shortcut if exact_shortcut is None else exact_shortcut
        self.exact_shortcut = shortcut or None
        self.few_shot = budget.few_shot if few_shot is None else few_shot
        self.temperature = temperature

    def warm_up(self) -> None:
        self.llm.warm_up()
        if self.expander is not None:
            # a model that cannot load degrades the expansion on use, and the trace says why
            with contextlib.suppress(ComponentError):
                self.expander.warm_up()

    def shortlist(self, theme: Theme, taxonomy: KeywordTaxonomy) -> list[str]:
        """The candidates the model may choose from, best first."""
        return taxonomy.shortlist(
            [theme.title, *theme.concepts], k=self.shortlist_size, expander=self.expander
        )

    def messages(self, theme: Theme, shortlist: list[str], n: int) -> list[ChatMessage]:
        """The chat messages for choosing ``n`` of ``shortlist`` (the theme is fenced data)."""
        lines = [f'title: "{quote_data(theme.title, 80)}"']
        if theme.description and self.budget.describe:
            lines.append(f'description: "{quote_data(theme.description, 160)}"')
        if theme.concepts:
            lines.append(
                "concepts: " + "; ".join(f'"{quote_data(c, 40)}"' for c in theme.concepts[:8])
            )
        return self.prompt.render(
            few_shot=self.few_shot,
            system_fields={"n": n},
            theme=fence("theme", lines),
            options=", ".join(shortlist),
            n=n,
        )

    def exact_keywords(self, theme: Theme, taxonomy: KeywordTaxonomy, n: int) -> list[str] | None:
        """The theme's own taxonomy keywords, then the shortlist, when the shortcut applies.

        A theme whose title and concepts already name enough taxonomy keywords
        (the history baseline's themes, most compact model themes) gains little
        from a small model re-choosing them; the call is skipped.
        """
        if self.exact_shortcut is None:
            return None
        exact: list[str] = []
        for text in (theme.title, *theme.concepts):
            kw = taxonomy.canonical(text)
            if kw is not None and kw not in exact:
                exact.append(kw)
        if len(exact) < self.exact_shortcut:
            return None
        out = exact[:n]
        if self.fill and len(out) < n:
            out.extend(kw for kw in self.shortlist(theme, taxonomy) if kw not in out)
        annotate(
            prompt_version=self.prompt_version,
            profile=self.profile,
            model_skipped=f"{len(exact)} exact taxonomy keywords in the theme",
            model_keywords=0,
        )
        return out[:n]

    def _plan(
        self, theme: Theme, taxonomy: KeywordTaxonomy, n: int
    ) -> tuple[list[str], MultiChoice, dict[str, Any]]:
        shortlist = self.shortlist(theme, taxonomy)
        if not shortlist:
            raise OutputValidationError(
                f"no taxonomy keyword resembles theme {theme.title!r}: nothing to choose from"
            )
        asked = n if self.max_model_keywords is None else min(n, self.max_model_keywords)
        spec = MultiChoice(
            options=tuple(shortlist), min_items=1, max_items=max(1, min(asked, len(shortlist)))
        )
        # What determines the choice (keyed instead of the rendered prompt): the theme,
        # never the user, so every placement with this theme shares the cached choice.
        identity = {
            "prompt": self.prompt_version,
            "prompt_hash": self.prompt.fingerprint,
            "few_shot": self.few_shot,
            "taxonomy": taxonomy.version,
            "shortlist": shortlist,
            "theme": {
                "title": theme.title,
                "description": theme.description,
                "concepts": theme.concepts,
            },
            "n": spec.max_items,
            "describe": self.budget.describe,
        }
        return shortlist, spec, identity

    def _finish(
        self, items: list[str], taxonomy: KeywordTaxonomy, shortlist: list[str], n: int
    ) -> list[str]:
        out: list[str] = []
        for item in items:
            kw = taxonomy.canonical(item)
            if kw is None or item not in shortlist:
                raise OutputValidationError(f"{item!r} is not a shortlisted taxonomy keyword")
            if kw not in out:
                out.append(kw)
        if not out:
            raise OutputValidationError("the model chose no keyword")
        chosen = len(out)
        if self.fill:
            out.extend(kw for kw in shortlist if kw not in out)
        annotate(
            prompt_version=self.prompt_version,
            profile=self.profile,
            shortlist_size=len(shortlist),
            model_keywords=min(chosen, n),
        )
        return out[:n]

    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        exact = self.exact_keywords(theme, taxonomy, n)
        if exact is not None:
            return exact
        shortlist, spec, identity = self._plan(theme, taxonomy, n)
        before = stage_tokens()
        with cache_identity("keywords", identity):
            result = self.llm.generate(
                LazyMessages(lambda: self.messages(theme, shortlist, spec.max_items)),
                spec,
                max_tokens=self._max_tokens(spec),
                temperature=self.temperature,
            )
        record_usage(result, before)
        return self._finish(list(result.value), taxonomy, shortlist, n)

    async def agenerate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        if not self.llm.concurrent:
            return await asyncio.to_thread(self.generate, theme, taxonomy, user, n)
        exact = self.exact_keywords(theme, taxonomy, n)
        if exact is not None:
            return exact
        shortlist, spec, identity = self._plan(theme, taxonomy, n)
        before = stage_tokens()
        with cache_identity("keywords", identity):
            result = await self.llm.agenerate(
                LazyMessages(lambda: self.messages(theme, shortlist, spec.max_items)),
                spec,
                max_tokens=self._max_tokens(spec),
                temperature=self.temperature,
            )
        record_usage(result, before)
        return self._finish(list(result.value), taxonomy, shortlist, n)

    def _max_tokens(self, spec: MultiChoice) -> int:
        # {"items": [...]}: ~8 tokens of wrapper, a few per keyword; bounds a looping model.
        longest = max(map(len, spec.options))
        return 16 + spec.max_items * (4 + longest // 2)
