"""Keywords from a language model, constrained to a taxonomy shortlist.

For one theme: shortlist ``shortlist_size`` taxonomy keywords similar to the
theme's title and concepts, then let the model choose up to ``n`` of *exactly
those* (a :class:`~storefront_sdk.llm.base.MultiChoice` constraint). Every
keyword returned is therefore a taxonomy member; this is checked again with
``taxonomy.canonical`` before returning. The user is not part of the prompt:
keywords depend on the theme only, which lets placements share cached choices.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..exceptions import OutputValidationError
from ..interfaces import KeywordGenerator
from ..llm.base import LLM, ChatMessage, LLMResult, MultiChoice
from ..taxonomy import KeywordTaxonomy
from ..tracing import annotate
from ..types import Theme, UserContext
from .llm_themes import record_usage, stage_tokens
from .prompts import fence, keyword_prompt, quote_data

if TYPE_CHECKING:
    from ..cache import GenerationCache

__all__ = ["LLMKeywordGenerator"]


class LLMKeywordGenerator(KeywordGenerator):
    """The model picks ``n`` distinct keywords from the theme's taxonomy shortlist."""

    def __init__(
        self,
        llm: LLM,
        *,
        cache: GenerationCache | None = None,
        shortlist_size: int = 100,
        prompt_version: str = "keywords-v1",
        few_shot: bool = True,
        temperature: float | None = None,
    ) -> None:
        self.llm = llm
        self.cache = cache
        self.shortlist_size = shortlist_size
        self.prompt = keyword_prompt(prompt_version)
        self.prompt_version = prompt_version
        self.few_shot = few_shot
        self.temperature = temperature

    def warm_up(self) -> None:
        self.llm.warm_up()

    def shortlist(self, theme: Theme, taxonomy: KeywordTaxonomy) -> list[str]:
        """The candidates the model may choose from, best first."""
        return taxonomy.shortlist([theme.title, *theme.concepts], k=self.shortlist_size)

    def messages(self, theme: Theme, shortlist: list[str], n: int) -> list[ChatMessage]:
        """The chat messages for choosing ``n`` of ``shortlist`` (the theme is fenced data)."""
        lines = [f'title: "{quote_data(theme.title, 80)}"']
        if theme.description:
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

    def _plan(
        self, theme: Theme, taxonomy: KeywordTaxonomy, n: int
    ) -> tuple[list[str], MultiChoice, list[ChatMessage], str | None]:
        shortlist = self.shortlist(theme, taxonomy)
        if not shortlist:
            raise OutputValidationError(
                f"no taxonomy keyword resembles theme {theme.title!r}: nothing to choose from"
            )
        spec = MultiChoice(
            options=tuple(shortlist), min_items=1, max_items=max(1, min(n, len(shortlist)))
        )
        key = None
        if self.cache is not None:
            key = self.cache.key(
                "keywords",
                prompt=self.prompt_version,
                prompt_hash=self.prompt.fingerprint,
                few_shot=self.few_shot,
                model=self.llm.fingerprint,
                schema=spec.key,
                taxonomy=taxonomy.version,
                shortlist=shortlist,
                theme={
                    "title": theme.title,
                    "description": theme.description,
                    "concepts": theme.concepts,
                },
                n=spec.max_items,
                temperature=self.temperature,
            )
        return shortlist, spec, self.messages(theme, shortlist, spec.max_items), key

    def _cached(self, key: str | None, shortlist: list[str]) -> list[str] | None:
        if self.cache is None or key is None:
            return None
        data = self.cache.get(key)
        if not (
            isinstance(data, list)
            and data
            and all(isinstance(k, str) and k in shortlist for k in data)
        ):
            if data is not None:
                self.cache.delete(key)
            return None
        annotate(cache_hit=True, model_id=self.llm.model_id)
        return data

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
        annotate(prompt_version=self.prompt_version, shortlist_size=len(shortlist))
        return out[:n]

    def _store(self, key: str | None, result: LLMResult[list[str]]) -> list[str]:
        annotate(cache_hit=False)
        if self.cache is not None and key is not None and result.value:
            self.cache.set(key, list(result.value))
        return list(result.value)

    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        shortlist, spec, messages, key = self._plan(theme, taxonomy, n)
        items = self._cached(key, shortlist)
        if items is None:
            before = stage_tokens()
            result = self.llm.generate(
                messages, spec, max_tokens=40 + 16 * spec.max_items, temperature=self.temperature
            )
            record_usage(result, before)
            items = self._store(key, result)
        return self._finish(items, taxonomy, shortlist, n)

    async def agenerate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        if not self.llm.concurrent:
            return await asyncio.to_thread(self.generate, theme, taxonomy, user, n)
        shortlist, spec, messages, key = self._plan(theme, taxonomy, n)
        items = self._cached(key, shortlist)
        if items is None:
            before = stage_tokens()
            result = await self.llm.agenerate(
                messages, spec, max_tokens=40 + 16 * spec.max_items, temperature=self.temperature
            )
            record_usage(result, before)
            items = self._store(key, result)
        return self._finish(items, taxonomy, shortlist, n)
