"""The six contracts of the cascade.

Each contract is a small abstract base class with one main method and its
async twin of identical signature (``generate``/``agenerate``,
``retrieve``/``aretrieve``, ``score``/``ascore``, ``rank``/``arank``,
``judge``/``ajudge``). Subclasses implement the sync method; the default async
twin runs it in a worker thread, or inline when the component says it is cheap
(``run_inline``: CPU-only work well under a millisecond, where a thread hop
costs more than it saves). Components that do I/O (HTTP) override both natively.

Rules every component follows (``storefront_sdk.testing`` checks them):

* The constructor only stores parameters. Heavy work (indexes, models) happens
  in :meth:`Component.warm_up` or lazily on first use, never at import time.
* Inputs and outputs are the pydantic types of :mod:`storefront_sdk.types`.
* A component may annotate the running trace stage with
  :func:`storefront_sdk.tracing.annotate` (model id, tokens, cache hit).
* Raising is allowed: the storefront catches generation failures, degrades the
  page and records the reason in the trace.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .types import (
    Candidate,
    JudgeReport,
    Page,
    Product,
    RetrievalQuery,
    ScoredProduct,
    Theme,
    UserContext,
)

if TYPE_CHECKING:
    from .taxonomy import KeywordTaxonomy

__all__ = [
    "Component",
    "Judge",
    "KeywordGenerator",
    "Ranker",
    "RelevanceFilter",
    "Retriever",
    "ThemeGenerator",
]


class Component:
    """Shared behaviour: a name for traces and an optional ``warm_up``."""

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def run_inline(self) -> bool:
        """True when the async twin may call the sync method directly on the event loop."""
        return False

    def warm_up(self) -> None:
        """Load models / build indexes ahead of the first request (optional)."""


class ThemeGenerator(Component, ABC):
    """Generates the ordered themes of a user's page (page level).

    Returns up to ``n`` themes, best first. Each theme's ``source`` says which
    kind of generator made it ("llm", "history", "static", "custom").
    """

    @abstractmethod
    def generate(self, user: UserContext, n: int) -> list[Theme]:
        """Themes for ``user``'s page, at most ``n``."""

    async def agenerate(self, user: UserContext, n: int) -> list[Theme]:
        if self.run_inline:
            return self.generate(user, n)
        return await asyncio.to_thread(self.generate, user, n)


class KeywordGenerator(Component, ABC):
    """Chooses retrieval keywords for one placement's theme.

    Every returned keyword must be a member of ``taxonomy`` (the closed
    vocabulary): the storefront drops any that are not, and records it.
    """

    @abstractmethod
    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        """Up to ``n`` distinct keywords from ``taxonomy`` for ``theme``."""

    async def agenerate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        if self.run_inline:
            return self.generate(theme, taxonomy, user, n)
        return await asyncio.to_thread(self.generate, theme, taxonomy, user, n)


class Retriever(Component, ABC):
    """Keywords to candidate products.

    Returns at most ``query.k`` candidates with distinct product ids, best first,
    each tagged with the keyword that retrieved it; at most
    ``query.per_keyword_k`` per keyword when set; only from
    ``query.departments`` when non-empty; never an id in ``query.exclude_ids``.
    Unknown ids are dropped by the storefront (and traced), so a retriever
    backed by an external search service only needs to return ids.
    """

    @abstractmethod
    def retrieve(self, query: RetrievalQuery) -> list[Candidate]:
        """Candidates for ``query``, best first."""

    async def aretrieve(self, query: RetrievalQuery) -> list[Candidate]:
        if self.run_inline:
            return self.retrieve(query)
        return await asyncio.to_thread(self.retrieve, query)


class RelevanceFilter(Component, ABC):
    """Scores how well products fit a theme; keeps those at or above ``threshold``.

    ``score`` returns one number in [0, 1] per product, in input order.
    """

    threshold: float = 0.5

    @abstractmethod
    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        """Relevance of each product to ``theme``, in [0, 1]."""

    async def ascore(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        if self.run_inline:
            return self.score(theme, products)
        return await asyncio.to_thread(self.score, theme, products)


class Ranker(Component, ABC):
    """Orders a placement's candidates for a user (a traditional ranker).

    Returns the same products (no additions, no drops), each with
    ``rank_score`` set, sorted by it descending.
    """

    @abstractmethod
    def rank(
        self, user: UserContext, theme: Theme, candidates: Sequence[ScoredProduct]
    ) -> list[ScoredProduct]:
        """``candidates`` re-ordered for ``user``, with ``rank_score`` set."""

    async def arank(
        self, user: UserContext, theme: Theme, candidates: Sequence[ScoredProduct]
    ) -> list[ScoredProduct]:
        if self.run_inline:
            return self.rank(user, theme, candidates)
        return await asyncio.to_thread(self.rank, user, theme, candidates)


class Judge(Component, ABC):
    """Judges a built page offline at page, placement and product level."""

    @abstractmethod
    def judge(self, page: Page, user: UserContext) -> JudgeReport:
        """Verdicts on ``page`` as shown to ``user``."""

    async def ajudge(self, page: Page, user: UserContext) -> JudgeReport:
        return await asyncio.to_thread(self.judge, page, user)
