"""The baseline keyword generator: the top of the taxonomy shortlist, no model."""

from __future__ import annotations

import asyncio

from ..interfaces import KeywordGenerator
from ..taxonomy import KeywordTaxonomy
from ..text import tokenize
from ..types import Theme, UserContext

__all__ = ["TaxonomyKeywordGenerator"]


class TaxonomyKeywordGenerator(KeywordGenerator):
    """Picks keywords from the shortlist of a theme's title and concepts.

    Concepts that are taxonomy members come first; then the most similar
    shortlisted keywords, skipping any whose words are all already covered by
    a chosen keyword (so "organic yogurt" does not crowd out "kefir").
    """

    def __init__(self, shortlist_size: int = 100) -> None:
        self.shortlist_size = shortlist_size

    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        texts = (
            [*theme.concepts, theme.title] if theme.concepts else [theme.title, theme.description]
        )
        shortlist = taxonomy.shortlist(texts, k=self.shortlist_size)
        chosen: list[str] = []
        covered: set[str] = set()
        for kw in shortlist:
            toks = set(tokenize(kw))
            if not toks or toks <= covered:
                continue
            chosen.append(kw)
            covered |= toks
            if len(chosen) >= n:
                break
        return chosen

    async def agenerate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        if taxonomy.is_warm:  # a memoised or sub-millisecond shortlist: no thread hop
            return self.generate(theme, taxonomy, user, n)
        return await asyncio.to_thread(self.generate, theme, taxonomy, user, n)
