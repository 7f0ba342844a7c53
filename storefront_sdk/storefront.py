"""The public entry point: :class:`Storefront` builds pages, :class:`StorefrontConfig` shapes them.

``Storefront.build(user)`` runs the cascade for one user::

    themes ─► [theme gates] ─► per placement (concurrently in abuild):
        keywords (closed taxonomy) ─► retrieve ─► relevance filter ─► rank
    ─► assemble in theme order: de-duplicate products, [product gates], density,
       [placement gates]
    ─► replace dropped placements from spare themes, then fallback generators

Three modules, one concept each: this one (the public API), :mod:`._wiring`
(which components and fallbacks run, chosen explicitly from the arguments) and
:mod:`._cascade` (the cascade's policy, its two drivers and the contract checks).
Every call is timed into ``page.trace``; a failing component is recorded and
replaced by its fallback, never raised out of ``build``; a page never takes much
longer than ``StorefrontConfig.page_budget_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._cascade import Cascade
from ._drive import drive_async, drive_sync
from ._wiring import wire
from .catalog import Catalog
from .deadline import deadline
from .exceptions import ConfigurationError
from .interfaces import (
    Gate,
    KeywordGenerator,
    Ranker,
    RelevanceFilter,
    Retriever,
    ThemeGenerator,
)
from .taxonomy import KeywordTaxonomy
from .types import Page, Trace, UserContext

if TYPE_CHECKING:
    from .cache import BaseGenerationCache
    from .embeddings import Embedder
    from .llm.base import LLM

__all__ = ["Storefront", "StorefrontConfig"]

_log = logging.getLogger(__name__)


class StorefrontConfig(BaseModel):
    """Page shape, assembly policy and the page's time budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_placements: int = Field(default=8, ge=1, le=100)
    products_per_placement: int = Field(default=20, ge=1, le=500)
    min_products: int = Field(default=8, ge=0, description="placements with fewer are dropped")
    keywords_per_placement: int = Field(default=6, ge=1, le=50)
    candidates_per_placement: int = Field(default=100, ge=1, description="retrieval depth")
    spare_themes: int = Field(
        default=4, ge=0, description="extra themes asked for, to replace drops"
    )
    dedupe_products: bool = Field(default=True, description="a product appears once per page")
    max_rounds: int = Field(default=4, ge=1, description="refill rounds after drops")
    baseline_keywords_for_baseline_themes: bool = Field(
        default=True,
        description="themes from the history/static baselines get the taxonomy baseline's "
        "keywords (no model call); only generated themes go to the keyword generator",
    )
    page_budget_s: float | None = Field(
        default=20.0,
        gt=0,
        description="time budget of one page in seconds (None: unbounded); once it has "
        "passed, the page is completed from the baselines without model calls and the trace "
        "says so (event 'deadline')",
    )

    @model_validator(mode="after")
    def _check(self) -> StorefrontConfig:
        if self.min_products > self.products_per_placement:
            raise ValueError("min_products cannot exceed products_per_placement")
        return self


class Storefront:
    """Builds personalised storefront pages from a catalog.

    Every component is overridable by keyword; the defaults are the
    non-generative baselines unless a language model is configured:

    * ``llm="auto"`` (default) uses the local model when the ``[local]`` extra
      is installed, else the baselines; ``llm=None`` forces the baselines;
      an :class:`~storefront_sdk.llm.LLM` instance uses that model.
    * ``cache="auto"`` caches generations on disk when a model is used;
      ``cache=None`` disables caching.
    * ``gates``: default :func:`~storefront_sdk.filtering.gates.default_gates`
      (safety, merchandising rules, title quality, near-duplicates).
    * ``embedder="auto"`` (default) turns the semantic layer on when the ``embed``
      extra is installed: the default taxonomy's keyword shortlist is fused (lexical
      + sentence embeddings) and :class:`~storefront_sdk.filtering.EmbeddingDuplicateGate`
      joins the default gates; ``embedder=None`` keeps both lexical; an
      :class:`~storefront_sdk.embeddings.Embedder` uses that model. A ``taxonomy``
      you pass is used as given (attach an embedder with ``taxonomy.use_embedder``).
      Every page's trace says which (event ``semantic``).
    * ``fallback_theme_generators``: default the history baseline, then the static
      one (without the primary itself). The keyword fallback is the taxonomy
      baseline; the filter fallback the lexical filter (see ``_wiring``).

    Config fields may also be given by keyword (``Storefront(cat, num_placements=4)``).
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        llm: LLM | Literal["auto"] | None = "auto",
        cache: BaseGenerationCache | Literal["auto"] | None = "auto",
        theme_generator: ThemeGenerator | None = None,
        keyword_generator: KeywordGenerator | None = None,
        retriever: Retriever | None = None,
        relevance_filter: RelevanceFilter | None = None,
        ranker: Ranker | None = None,
        gates: Sequence[Gate] | None = None,
        fallback_theme_generators: Sequence[ThemeGenerator] | None = None,
        taxonomy: KeywordTaxonomy | None = None,
        embedder: Embedder | Literal["auto"] | None = "auto",
        config: StorefrontConfig | None = None,
        **overrides: Any,
    ) -> None:
        if not isinstance(catalog, Catalog):
            raise ConfigurationError(f"Storefront needs a Catalog, got {type(catalog).__name__}")
        self.catalog = catalog
        self.config = _merge_config(config, overrides)
        self._taxonomy = taxonomy
        wiring = wire(
            catalog,
            llm=llm,
            cache=cache,
            theme_generator=theme_generator,
            keyword_generator=keyword_generator,
            retriever=retriever,
            relevance_filter=relevance_filter,
            ranker=ranker,
            gates=gates,
            fallback_theme_generators=fallback_theme_generators,
            page_shape=(self.config.num_placements, self.config.products_per_placement),
            embedder=embedder,
        )
        self.llm: LLM | None = wiring.llm
        self.llm_reason: str = wiring.llm_reason
        self.cache: BaseGenerationCache | None = wiring.cache
        self.theme_generator: ThemeGenerator = wiring.theme_generator
        self.keyword_generator: KeywordGenerator = wiring.keyword_generator
        self.retriever: Retriever = wiring.retriever
        self.relevance_filter: RelevanceFilter = wiring.relevance_filter
        self.ranker: Ranker = wiring.ranker
        self.gates: list[Gate] = wiring.gates
        self.fallback_theme_generators: list[ThemeGenerator] = wiring.fallback_theme_generators
        self.fallback_keyword_generator: KeywordGenerator = wiring.fallback_keyword_generator
        self._fallback_filter: RelevanceFilter = wiring.fallback_filter
        self._baselines = wiring.baselines
        self.embedder: Embedder | None = wiring.embedder
        self.semantic_reason: str = wiring.semantic_reason

    def __repr__(self) -> str:
        return (
            f"Storefront(catalog={self.catalog!r}, themes={self.theme_generator.name}, "
            f"keywords={self.keyword_generator.name}, retriever={self.retriever.name}, "
            f"filter={self.relevance_filter.name}, ranker={self.ranker.name})"
        )

    # -- properties -------------------------------------------------------------------
    @property
    def taxonomy(self) -> KeywordTaxonomy:
        """The closed keyword vocabulary in use (built from the catalog on first use)."""
        if self._taxonomy is None:
            taxonomy = KeywordTaxonomy.from_catalog(self.catalog)
            if self.embedder is not None:
                taxonomy.use_embedder(self.embedder)
            self._taxonomy = taxonomy
        return self._taxonomy

    @property
    def fallback_filter(self) -> RelevanceFilter:
        """The relevance filter used when the configured one fails (the lexical baseline)."""
        return self._fallback_filter

    @property
    def baselines(self) -> frozenset[int]:
        """``id()`` of the components that never call a model (used past the deadline)."""
        return self._baselines

    def warm_up(self) -> Storefront:
        """Build indexes and load models now rather than on the first request."""
        self.taxonomy.warm_up()
        if self.embedder is not None:
            self.embedder.warm_up()
        for comp in (
            self.theme_generator,
            self.keyword_generator,
            self.retriever,
            self.relevance_filter,
            self.ranker,
            self._fallback_filter,
            *self.fallback_theme_generators,
        ):
            comp.warm_up()
        return self

    # -- public API -------------------------------------------------------------------
    def build(self, user: UserContext) -> Page:
        """Build ``user``'s page. Never raises for a component failure.

        Under ``config.page_budget_s``: once it has passed, no more model calls are
        started and the page is completed from the baselines (a call already running
        in this thread cannot be interrupted; HTTP backends cap their own waits).
        """
        user = _expect_user(user)
        trace = Trace()
        start = time.perf_counter()
        with deadline(self.config.page_budget_s):
            page: Page = drive_sync(Cascade(self, self.config, trace).page(user), trace)
        page.trace.total_ms = (time.perf_counter() - start) * 1000.0
        return page

    async def abuild(self, user: UserContext) -> Page:
        """Async twin of :meth:`build`; placements are processed concurrently, and model
        calls still running at the page deadline are cancelled."""
        user = _expect_user(user)
        trace = Trace()
        start = time.perf_counter()
        with deadline(self.config.page_budget_s):
            page: Page = await drive_async(Cascade(self, self.config, trace).page(user), trace)
        page.trace.total_ms = (time.perf_counter() - start) * 1000.0
        return page

    async def abuild_many(self, users: Iterable[UserContext], concurrency: int = 8) -> list[Page]:
        """Pages for many users, at most ``concurrency`` at a time, in input order.

        Always one page per user: a build that raises anyway (a programmer error such as
        a non-``UserContext`` in ``users``, or a bug) gives that user an empty page whose
        trace holds a ``build_failed`` event with the error; the others are unaffected.
        """
        if concurrency < 1:
            raise ConfigurationError("concurrency must be >= 1")
        sem = asyncio.Semaphore(concurrency)

        async def one(u: UserContext) -> Page:
            async with sem:
                try:
                    return await self.abuild(u)
                except Exception as exc:
                    return _failed_page(u, exc)

        return list(await asyncio.gather(*(one(u) for u in users)))

    def build_many(self, users: Iterable[UserContext], concurrency: int = 8) -> list[Page]:
        """Sync wrapper of :meth:`abuild_many` (do not call from a running event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.abuild_many(list(users), concurrency))
        raise ConfigurationError(
            "build_many() called inside an event loop: use `await sf.abuild_many(...)`"
        )


def _merge_config(config: StorefrontConfig | None, overrides: dict[str, Any]) -> StorefrontConfig:
    base = config or StorefrontConfig()
    if not overrides:
        return base
    unknown = set(overrides) - set(StorefrontConfig.model_fields)
    if unknown:
        raise ConfigurationError(
            f"unknown Storefront option(s) {sorted(unknown)}; "
            f"config fields: {sorted(StorefrontConfig.model_fields)}"
        )
    try:
        return StorefrontConfig(**{**base.model_dump(), **overrides})
    except ValidationError as exc:
        raise ConfigurationError(f"invalid Storefront configuration: {exc}") from None


def _expect_user(user: Any) -> UserContext:
    if not isinstance(user, UserContext):
        raise ConfigurationError(f"build() needs a UserContext, got {type(user).__name__}")
    return user


def _failed_page(user: Any, exc: Exception) -> Page:
    """The page of a user whose build raised: empty, with the error in its trace."""
    uid = getattr(user, "user_id", None)
    user_id = uid if isinstance(uid, str) and uid else f"<invalid user: {type(user).__name__}>"
    _log.warning("build of user %r failed: %s", user_id, exc, exc_info=exc)
    trace = Trace()
    trace.add_event(
        "build_failed",
        f"the page could not be built: {type(exc).__name__}: {exc}"[:500],
        error=type(exc).__name__,
    )
    return Page(user_id=user_id, trace=trace)
