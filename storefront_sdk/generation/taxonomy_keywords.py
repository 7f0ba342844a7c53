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

    With ``shared_word=True`` (default) a keyword must share a word (after
    stemming) with the theme's title or concepts: the shortlist's character
    n-gram similarity otherwise lets in spelling neighbours ("bread" ->
    "breast", "pasta" -> "pasture", "oils vinegars" -> "sour"). A theme whose
    words match no keyword then gets none (its placement is filled by pinned
    products, or dropped as too thin) rather than off-theme ones.
    """

    def __init__(self, shortlist_size: int = 100, *, shared_word: bool = True) -> None:
        self.shortlist_size = shortlist_size
        self.shared_word = shared_word

    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        texts = (
            [*theme.concepts, theme.title] if theme.concepts else [theme.title, theme.description]
        )
        shortlist = taxonomy.shortlist(texts, k=self.shortlist_size)
        theme_words = set(tokenize(" ".join([theme.title, *theme.concepts])))
        chosen: list[str] = []
        covered: set[str] = set()
        for kw in shortlist:
            toks = set(tokenize(kw))
            if not toks or toks <= covered:
                continue
            if self.shared_word and not toks & theme_words:
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
