"""The orchestrator: composes the cascade into a page, with gates and fallbacks.

``Storefront.build(user)`` runs, for one user::

    themes ─► [theme gates] ─► per placement (concurrently in abuild):
        keywords (closed taxonomy) ─► retrieve ─► [product gates] ─► relevance filter ─► rank
    ─► assemble in theme order: de-duplicate products, density, [placement gates]
    ─► replace dropped placements from spare themes, then fallback generators

The cascade is written once, as a generator that *yields* component calls;
two small drivers run it, one calling ``generate``/``retrieve``/... and one
awaiting ``agenerate``/``aretrieve``/... So ``build`` and ``abuild`` cannot
drift apart. Every call is timed into ``page.trace``; a failing component is
recorded and replaced by its fallback, never raised out of ``build``.
"""

from __future__ import annotations

import asyncio
import functools
import operator
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .catalog import Catalog
from .exceptions import ComponentError, ConfigurationError
from .filtering.gates import Gate, NearDuplicateGate
from .filtering.lexical import LexicalRelevanceFilter
from .generation.history import HistoryThemeGenerator
from .generation.static import StaticThemeGenerator
from .generation.taxonomy_keywords import TaxonomyKeywordGenerator
from .interfaces import KeywordGenerator, Ranker, RelevanceFilter, Retriever, ThemeGenerator
from .ranking.popularity import FusionRanker
from .retrieval.bm25 import BM25Retriever
from .taxonomy import KeywordTaxonomy
from .text import normalize
from .tracing import stage
from .types import (
    Page,
    Placement,
    PlacementSource,
    Product,
    RetrievalQuery,
    ScoredProduct,
    StageRecord,
    Theme,
    Trace,
    UserContext,
)

__all__ = ["Storefront", "StorefrontConfig"]


class StorefrontConfig(BaseModel):
    """Page shape and assembly policy."""

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

    @model_validator(mode="after")
    def _check(self) -> StorefrontConfig:
        if self.min_products > self.products_per_placement:
            raise ValueError("min_products cannot exceed products_per_placement")
        return self


_AUTO: Any = "auto"


@dataclass
class _Call:
    """One component call requested by the cascade; a driver performs it."""

    stage: str
    component: Any
    method: str
    args: tuple[Any, ...]
    placement: int | None = None
    fallback_reason: str | None = None


@dataclass
class _Parallel:
    steps: list[Generator[Any, Any, Any]]


_Hit = tuple[Product, str | None, float]
"""A retrieved, known product before it is scored by the filter: (product, keyword, score)."""


@dataclass
class _Draft:
    slot: int
    theme: Theme
    source: PlacementSource
    keywords: list[str]
    products: list[ScoredProduct] = field(default_factory=list)


_Steps = Generator[Any, Any, Any]


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


class Storefront:
    """Builds personalised storefront pages from a catalog.

    Every component is overridable by keyword; the defaults are the
    non-generative baselines unless a language model is configured:

    * ``llm="auto"`` (default) uses the local model when the ``[local]`` extra
      is installed, else the baselines; ``llm=None`` forces the baselines;
      an :class:`~storefront_sdk.llm.LLM` instance uses that model.
    * ``cache="auto"`` caches generations on disk when a model is used;
      ``cache=None`` disables caching.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        llm: Any = _AUTO,
        cache: Any = _AUTO,
        theme_generator: ThemeGenerator | None = None,
        keyword_generator: KeywordGenerator | None = None,
        retriever: Retriever | None = None,
        relevance_filter: RelevanceFilter | None = None,
        ranker: Ranker | None = None,
        gates: Sequence[Gate] | None = None,
        fallback_theme_generators: Sequence[ThemeGenerator] | None = None,
        taxonomy: KeywordTaxonomy | None = None,
        config: StorefrontConfig | None = None,
        **overrides: Any,
    ) -> None:
        if not isinstance(catalog, Catalog):
            raise ConfigurationError(f"Storefront needs a Catalog, got {type(catalog).__name__}")
        self.catalog = catalog
        self.config = _merge_config(config, overrides)
        self.llm, self.llm_reason = _resolve_llm(llm)
        self.cache = _resolve_cache(cache, self.llm)
        self._taxonomy = taxonomy

        # One history baseline serves as primary, as the LLM generator's "Buy it again"
        # source and as fallback: its per-catalog popular themes are computed once.
        history = HistoryThemeGenerator(catalog)
        if theme_generator is None:
            theme_generator = (
                _llm_theme_generator(self.llm, catalog, self.cache, history)
                if self.llm is not None
                else history
            )
        if keyword_generator is None:
            keyword_generator = (
                _llm_keyword_generator(self.llm, self.cache)
                if self.llm is not None
                else TaxonomyKeywordGenerator()
            )
        self.theme_generator = _expect(theme_generator, ThemeGenerator, "theme_generator")
        self.keyword_generator = _expect(keyword_generator, KeywordGenerator, "keyword_generator")
        self.retriever = _expect(retriever or _default_retriever(catalog), Retriever, "retriever")
        self.relevance_filter = _expect(
            relevance_filter or LexicalRelevanceFilter(catalog), RelevanceFilter, "relevance_filter"
        )
        self.ranker = _expect(ranker or FusionRanker(), Ranker, "ranker")
        self.gates: list[Gate] = list(_default_gates() if gates is None else gates)
        self._gate_key: tuple[Gate, ...] | None = None
        self._gates_by_level: dict[str, list[Gate]] = {}
        for g in self.gates:
            _expect(g, Gate, "gates[]")
        if fallback_theme_generators is None:
            fallback_theme_generators = [
                g
                for g in (history, StaticThemeGenerator())
                if type(g) is not type(self.theme_generator)
            ]
        self.fallback_theme_generators = [
            _expect(g, ThemeGenerator, "fallback_theme_generators[]")
            for g in fallback_theme_generators
        ]
        self.fallback_keyword_generator = (
            self.keyword_generator
            if isinstance(self.keyword_generator, TaxonomyKeywordGenerator)
            else TaxonomyKeywordGenerator()
        )
        # The default filter is its own fallback: no second TF-IDF index over the catalog.
        self._fallback_filter = (
            self.relevance_filter
            if isinstance(self.relevance_filter, LexicalRelevanceFilter)
            else LexicalRelevanceFilter(catalog)
        )

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
            self._taxonomy = KeywordTaxonomy.from_catalog(self.catalog)
        return self._taxonomy

    def warm_up(self) -> Storefront:
        """Build indexes and load models now rather than on the first request."""
        self.taxonomy.warm_up()
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
        """Build ``user``'s page. Never raises for a generation failure."""
        trace = Trace()
        start = time.perf_counter()
        page: Page = _drive_sync(self._page_steps(_expect_user(user), trace), trace)
        page.trace.total_ms = (time.perf_counter() - start) * 1000.0
        return page

    async def abuild(self, user: UserContext) -> Page:
        """Async twin of :meth:`build`; placements are processed concurrently."""
        trace = Trace()
        start = time.perf_counter()
        page: Page = await _drive_async(self._page_steps(_expect_user(user), trace), trace)
        page.trace.total_ms = (time.perf_counter() - start) * 1000.0
        return page

    async def abuild_many(self, users: Iterable[UserContext], concurrency: int = 8) -> list[Page]:
        """Pages for many users, at most ``concurrency`` at a time, in input order."""
        if concurrency < 1:
            raise ConfigurationError("concurrency must be >= 1")
        sem = asyncio.Semaphore(concurrency)

        async def one(u: UserContext) -> Page:
            async with sem:
                return await self.abuild(u)

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

    # -- the cascade --------------------------------------------------------------------
    def _page_steps(self, user: UserContext, trace: Trace) -> _Steps:
        cfg = self.config
        user = self._clean_user(user, trace)
        trace.add_event("config", self.llm_reason, llm=self.llm.model_id if self.llm else None)

        queue: list[tuple[Theme, PlacementSource]] = []
        primary = yield from self._themes(self.theme_generator, user, trace, fallback_reason=None)
        queue.extend((t, t.source) for t in primary)
        fallbacks = list(self.fallback_theme_generators)
        primary_failed = not primary

        accepted: list[Placement] = []
        used: set[str] = set()
        seen_titles: set[str] = set()
        slot = 0
        for _ in range(cfg.max_rounds + len(fallbacks)):
            need = cfg.num_placements - len(accepted)
            if need <= 0:
                break
            if len(queue) < need and fallbacks:
                gen = fallbacks.pop(0)
                reason = (
                    "primary theme generator failed"
                    if primary_failed
                    else f"{need} placement(s) still missing after gates and density checks"
                )
                extra = yield from self._themes(gen, user, trace, fallback_reason=reason)
                queue.extend((t, "fallback") for t in extra)
            batch: list[tuple[int, Theme, PlacementSource]] = []
            while queue and len(batch) < need:
                theme, source = queue.pop(0)
                key = normalize(theme.title)
                if key in seen_titles:
                    trace.add_event(
                        "gate",
                        f"duplicate title {theme.title!r}",
                        gate="Storefront",
                        reason="duplicate_title",
                    )
                    continue
                if self._theme_rejected(theme, user, trace, slot) or self._duplicate_theme(
                    theme, accepted, batch, trace, slot
                ):
                    slot += 1
                    continue
                seen_titles.add(key)
                batch.append((slot, theme, source))
                slot += 1
            if not batch:
                if not fallbacks:
                    break
                continue
            drafts = yield _Parallel(
                [self._placement_steps(s, t, src, user, trace) for s, t, src in batch]
            )
            for draft in drafts:
                placement = self._assemble(draft, accepted, used, user, trace)
                if placement is not None:
                    accepted.append(placement)
                    if cfg.dedupe_products:
                        used.update(placement.product_ids)
        if len(accepted) < cfg.num_placements:
            trace.add_event(
                "short_page",
                f"{len(accepted)} of {cfg.num_placements} placements could be filled",
                filled=len(accepted),
            )
        return Page(user_id=user.user_id, placements=accepted, trace=trace)

    def _themes(
        self, gen: ThemeGenerator, user: UserContext, trace: Trace, *, fallback_reason: str | None
    ) -> _Steps:
        n = self.config.num_placements + self.config.spare_themes
        try:
            themes, rec = yield _Call(
                "themes", gen, "generate", (user, n), fallback_reason=fallback_reason
            )
            _validated(rec, _check_themes, themes, gen.name)
            rec.details["themes"] = len(themes)
            if not themes:
                rec.fallback_reason = rec.fallback_reason or "no themes generated"
            return themes
        except Exception as exc:
            trace.add_event("fallback", f"{gen.name} failed: {_reason(exc)}", stage="themes")
            return []

    @property
    def _direct_retrieval(self) -> bool:
        """Is the retriever the built-in BM25 (its ``retrieve`` not overridden) on this
        catalog? Then it hands over products directly instead of candidate ids."""
        r = self.retriever
        return (
            isinstance(r, BM25Retriever)
            and type(r).retrieve is BM25Retriever.retrieve
            and r.catalog is self.catalog
        )

    def _gates(self, level: str) -> list[Gate]:
        """The gates that override ``check_<level>`` (the others accept everything)."""
        key = tuple(self.gates)
        if key != self._gate_key:
            self._gate_key = key
            self._gates_by_level = {
                lv: [
                    g
                    for g in key
                    if getattr(type(g), f"check_{lv}") is not getattr(Gate, f"check_{lv}")
                ]
                for lv in ("theme", "keyword", "product", "placement")
            }
        return self._gates_by_level[level]

    def _gate_rejects(
        self,
        trace: Trace,
        slot: int,
        level: str,
        subject: str,
        check: Callable[[Gate], str | None],
        **data: Any,
    ) -> bool:
        """Run ``check`` through the gates; record and return True at the first rejection."""
        for gate in self._gates(level):
            why = check(gate)
            if why:
                trace.add_event(
                    "gate",
                    f"{level} {subject} rejected: {why}",
                    placement=slot,
                    gate=gate.name,
                    reason=why,
                    level=level,
                    **data,
                )
                return True
        return False

    def _duplicate_theme(
        self,
        theme: Theme,
        accepted: list[Placement],
        batch: list[tuple[int, Theme, PlacementSource]],
        trace: Trace,
        slot: int,
    ) -> bool:
        """A near-duplicate title of an accepted or batched placement is dropped before
        retrieval (the placement-level gate would drop it after), so the batch takes the
        next theme in the same round instead."""
        for gate in self._gates("placement"):
            if isinstance(gate, NearDuplicateGate):
                others = [p.theme.title for p in accepted] + [t.title for _, t, _ in batch]
                if gate.duplicate_title(theme.title, others):
                    trace.add_event(
                        "gate",
                        f"theme {theme.title!r} rejected: duplicate_title",
                        placement=slot,
                        gate=gate.name,
                        reason="duplicate_title",
                        level="theme",
                        title=theme.title,
                    )
                    return True
        return False

    def _theme_rejected(self, theme: Theme, user: UserContext, trace: Trace, slot: int) -> bool:
        return self._gate_rejects(
            trace,
            slot,
            "theme",
            repr(theme.title),
            lambda g: g.check_theme(theme, user),
            title=theme.title,
        )

    def _placement_steps(
        self, slot: int, theme: Theme, source: PlacementSource, user: UserContext, trace: Trace
    ) -> _Steps:
        keywords, fell_back = yield from self._keywords(slot, theme, user, trace)
        can_retry = not fell_back and self.keyword_generator is not self.fallback_keyword_generator
        products = yield from self._products(
            slot, theme, user, trace, keywords, rank_if_thin=not can_retry
        )
        if len(products) < self.config.min_products and can_retry:
            # Generated keywords that retrieve too little: one more try with the baseline's
            # (the thin first attempt was not ranked: its products are discarded).
            reason = f"only {len(products)} products with the generated keywords"
            trace.add_event("fallback", reason, placement=slot, stage="keywords")
            keywords = yield from self._fallback_keywords(slot, theme, user, trace, reason)
            products = yield from self._products(slot, theme, user, trace, keywords)
        return _Draft(slot=slot, theme=theme, source=source, keywords=keywords, products=products)

    def _products(
        self,
        slot: int,
        theme: Theme,
        user: UserContext,
        trace: Trace,
        keywords: list[str],
        *,
        rank_if_thin: bool = True,
    ) -> _Steps:
        """Pinned products, then retrieved -> filtered -> ranked candidates.

        With ``rank_if_thin=False``, fewer than ``min_products`` in all are returned
        unranked: the caller retries with other keywords and discards them.
        """
        cfg = self.config
        pinned_ids = [pid for pid in dict.fromkeys(theme.pinned_product_ids) if pid in self.catalog]
        hits: list[_Hit] = []
        candidates: list[ScoredProduct] = []
        if keywords:
            query = RetrievalQuery(
                keywords=keywords,
                k=cfg.candidates_per_placement,
                departments=theme.departments,
                exclude_ids=frozenset(pinned_ids),
            )
            try:
                if self._direct_retrieval:
                    # The built-in BM25 over this catalog hands back the products themselves.
                    found, rec = yield _Call(
                        "retrieve", self.retriever, "retrieve_products", (query,), slot
                    )
                    hits = found
                    rec.details["candidates"] = len(hits)
                else:
                    found, rec = yield _Call("retrieve", self.retriever, "retrieve", (query,), slot)
                    hits = _validated(rec, self._hydrate, found, set(pinned_ids), rec, trace, slot)
            except Exception as exc:
                trace.add_event("stage_failed", f"retrieval failed: {_reason(exc)}", placement=slot)
        pinned = [ScoredProduct.of(self.catalog[pid], pinned=True) for pid in pinned_ids]
        if hits:
            candidates = yield from self._filter(slot, theme, hits, trace)
        thin = len(pinned) + len(candidates) < cfg.min_products
        if candidates and (rank_if_thin or not thin):
            candidates = yield from self._rank(slot, theme, user, candidates, trace)
        return pinned + candidates

    def _keywords(self, slot: int, theme: Theme, user: UserContext, trace: Trace) -> _Steps:
        """``(keywords, fell_back)`` from the keyword generator, or its fallback."""
        n = self.config.keywords_per_placement
        args = (theme, self.taxonomy, user, n)
        reason: str | None = None
        if (
            self.config.baseline_keywords_for_baseline_themes
            and theme.source in ("history", "static")
            and self.keyword_generator is not self.fallback_keyword_generator
        ):
            # A baseline theme names catalog aisles already: the baseline picks its keywords
            # without spending a model round (not a failure, so not traced as a fallback).
            keywords = yield from self._fallback_keywords(slot, theme, user, trace, None)
            return keywords, True
        try:
            raw, rec = yield _Call("keywords", self.keyword_generator, "generate", args, slot)
            keywords = _validated(rec, self._in_taxonomy, raw, trace, slot)
            keywords = self._keyword_gates(keywords, theme, user, trace, slot)[:n]
            rec.details["keywords"] = keywords
            if keywords or self.keyword_generator is self.fallback_keyword_generator:
                return keywords, False
            reason = "no keyword of the taxonomy passed the checks"
        except Exception as exc:
            reason = f"keyword generation failed: {_reason(exc)}"
        if self.keyword_generator is self.fallback_keyword_generator:
            return [], False
        trace.add_event("fallback", reason, placement=slot, stage="keywords")
        keywords = yield from self._fallback_keywords(slot, theme, user, trace, reason)
        return keywords, True

    def _fallback_keywords(
        self, slot: int, theme: Theme, user: UserContext, trace: Trace, reason: str | None
    ) -> _Steps:
        n = self.config.keywords_per_placement
        args = (theme, self.taxonomy, user, n)
        try:
            raw, rec = yield _Call(
                "keywords",
                self.fallback_keyword_generator,
                "generate",
                args,
                slot,
                fallback_reason=reason,
            )
            keywords = self._in_taxonomy(raw, trace, slot)
            keywords = self._keyword_gates(keywords, theme, user, trace, slot)[:n]
            rec.details["keywords"] = keywords
            return keywords
        except Exception as exc:  # the baseline itself failed: no retrieval for this theme
            trace.add_event(
                "stage_failed", f"fallback keywords failed: {_reason(exc)}", placement=slot
            )
            return []

    def _in_taxonomy(self, raw: Any, trace: Trace, slot: int) -> list[str]:
        if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
            raise ComponentError("KeywordGenerator.generate must return list[str]")
        out: list[str] = []
        rejected: list[str] = []
        for kw in raw:
            canon = self.taxonomy.canonical(kw)
            if canon is None:
                rejected.append(kw)
            elif canon not in out:
                out.append(canon)
        if rejected:
            trace.add_event(
                "keyword_not_in_taxonomy",
                f"dropped {len(rejected)} keyword(s) outside the taxonomy",
                placement=slot,
                keywords=rejected[:20],
            )
        return out

    def _hydrate(
        self, found: Any, pinned: set[str], rec: StageRecord, trace: Trace, slot: int
    ) -> list[_Hit]:
        if not isinstance(found, list):
            raise ComponentError("Retriever.retrieve must return list[Candidate]")
        out: list[_Hit] = []
        seen: set[str] = set(pinned)
        unknown: list[str] = []
        for c in found:
            product = self.catalog.get(c.product_id)
            if product is None:
                unknown.append(c.product_id)
                continue
            if product.id in seen:
                continue
            seen.add(product.id)
            out.append((product, c.keyword, float(c.score)))
        rec.details["candidates"] = len(out)
        if unknown:
            trace.add_event(
                "unknown_product",
                f"retriever returned {len(unknown)} id(s) not in the catalog",
                placement=slot,
                ids=unknown[:20],
            )
        return out

    def _product_rejected(
        self, product: Product, theme: Theme, user: UserContext, trace: Trace, slot: int
    ) -> bool:
        return self._gate_rejects(
            trace,
            slot,
            "product",
            product.id,
            lambda g: g.check_product(product, theme, user),
            product_id=product.id,
        )

    def _keyword_gates(
        self, keywords: list[str], theme: Theme, user: UserContext, trace: Trace, slot: int
    ) -> list[str]:
        kept: list[str] = []
        for kw in keywords:

            def check(g: Gate, kw: str = kw) -> str | None:
                return g.check_keyword(kw, theme, user)

            if not self._gate_rejects(trace, slot, "keyword", repr(kw), check, keyword=kw):
                kept.append(kw)
        return kept

    def _filter(self, slot: int, theme: Theme, hits: list[_Hit], trace: Trace) -> _Steps:
        products = [h[0] for h in hits]
        flt: RelevanceFilter = self.relevance_filter
        reason: str | None = None
        for attempt in range(2):
            try:
                scores, rec = yield _Call(
                    "filter", flt, "score", (theme, products), slot, fallback_reason=reason
                )
                scores = _validated(rec, _check_scores, scores, len(products), flt.name)
                threshold = flt.threshold
                kept = [
                    ScoredProduct.of(
                        product, keyword=keyword, retrieval_score=r, filter_score=s, score=r
                    )
                    for (product, keyword, r), s in zip(hits, scores, strict=True)
                    if s >= threshold
                ]
                rec.details.update(
                    threshold=flt.threshold, kept=len(kept), dropped=len(hits) - len(kept)
                )
                return kept
            except Exception as exc:
                if attempt or flt is self._fallback_filter:
                    trace.add_event(
                        "stage_failed", f"relevance filter failed: {_reason(exc)}", placement=slot
                    )
                    return []
                reason = f"relevance filter failed: {_reason(exc)}"
                trace.add_event("fallback", reason, placement=slot, stage="filter")
                flt = self._fallback_filter
        return []

    def _rank(
        self,
        slot: int,
        theme: Theme,
        user: UserContext,
        candidates: list[ScoredProduct],
        trace: Trace,
    ) -> _Steps:
        try:
            ranked, rec = yield _Call("rank", self.ranker, "rank", (user, theme, candidates), slot)
            return _validated(rec, _check_ranked, ranked, candidates, self.ranker.name)
        except Exception as exc:
            # Keep the retrieval order; the stage record carries the error, the event says so.
            reason = f"ranker failed, retrieval order kept: {_reason(exc)}"
            trace.add_event("fallback", reason, placement=slot, stage="rank")
            return candidates

    def _assemble(
        self,
        draft: _Draft,
        accepted: list[Placement],
        used: set[str],
        user: UserContext,
        trace: Trace,
    ) -> Placement | None:
        cfg = self.config
        # Product gates run here, lazily, on the products that would be shown: a rejected
        # product is replaced by the next candidate.
        items: list[ScoredProduct] = []
        checked = bool(self._gates("product"))
        for sp in draft.products:
            if sp.product.id in used or (
                checked and self._product_rejected(sp.product, draft.theme, user, trace, draft.slot)
            ):
                continue
            items.append(sp)
            if len(items) >= cfg.products_per_placement:
                break
        items = _final_scores(items)
        if len(items) < cfg.min_products:
            trace.add_event(
                "gate",
                f"placement {draft.theme.title!r} too thin: "
                f"{len(items)} < {cfg.min_products} products",
                placement=draft.slot,
                gate="Storefront",
                reason="density",
                level="placement",
                title=draft.theme.title,
                products=len(items),
            )
            return None
        placement = Placement.model_construct(
            theme=draft.theme, keywords=draft.keywords, products=items, source=draft.source
        )
        if self._gate_rejects(
            trace,
            draft.slot,
            "placement",
            repr(draft.theme.title),
            lambda g: g.check_placement(placement, accepted, user),
            title=draft.theme.title,
        ):
            return None
        return placement

    def _clean_user(self, user: UserContext, trace: Trace) -> UserContext:
        unknown = [it.product_id for it in user.history if it.product_id not in self.catalog]
        if unknown:
            trace.add_event(
                "unknown_product",
                f"skipped {len(unknown)} history item(s) with product ids not in the catalog",
                ids=sorted(set(unknown))[:50],
                count=len(unknown),
            )
            user = user.model_copy(
                update={"history": [it for it in user.history if it.product_id in self.catalog]}
            )
        if not user.history:
            trace.add_event("cold_start", "no usable history: cold-start page")
        return user


def _final_scores(items: list[ScoredProduct]) -> list[ScoredProduct]:
    """``score`` = rank score (else retrieval score); pinned products lead, scored above."""
    ranked = [
        sp
        if sp.rank_score is None or sp.rank_score == sp.score
        else sp.with_scores(score=sp.rank_score)
        for sp in items
        if not sp.pinned
    ]
    top = max((sp.score for sp in ranked), default=0.0)
    pinned = [sp for sp in items if sp.pinned]
    return [sp.with_scores(score=top + len(pinned) - i) for i, sp in enumerate(pinned)] + ranked


# -- drivers ------------------------------------------------------------------------------
def _drive_sync(steps: _Steps, trace: Trace) -> Any:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        if isinstance(step, _Parallel):
            value = [_drive_sync(s, trace) for s in step.steps]
            continue
        try:
            with stage(
                trace, step.stage, component=step.component, placement=step.placement
            ) as rec:
                rec.fallback_reason = step.fallback_reason
                result = getattr(step.component, step.method)(*step.args)
            value = (result, rec)
        except Exception as exc:
            error = exc


async def _drive_async(steps: _Steps, trace: Trace) -> Any:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        if isinstance(step, _Parallel):
            value = list(await asyncio.gather(*(_drive_async(s, trace) for s in step.steps)))
            continue
        try:
            with stage(
                trace, step.stage, component=step.component, placement=step.placement
            ) as rec:
                rec.fallback_reason = step.fallback_reason
                result = await getattr(step.component, "a" + step.method)(*step.args)
            value = (result, rec)
        except Exception as exc:
            error = exc


# -- wiring helpers -------------------------------------------------------------------
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


def _expect(obj: Any, kind: type, what: str) -> Any:
    if not isinstance(obj, kind):
        raise ConfigurationError(f"{what} must be a {kind.__name__}, got {type(obj).__name__}")
    return obj


def _expect_user(user: Any) -> UserContext:
    if not isinstance(user, UserContext):
        raise ConfigurationError(f"build() needs a UserContext, got {type(user).__name__}")
    return user


def _validated(rec: StageRecord, check: Any, *args: Any) -> Any:
    """Run a contract check on a component's output; a violation is recorded on its stage."""
    try:
        return check(*args)
    except Exception as exc:
        rec.error = _reason(exc)
        raise


def _check_themes(themes: Any, name: str) -> list[Theme]:
    if not isinstance(themes, list) or not all(isinstance(t, Theme) for t in themes):
        raise ComponentError(f"{name}.generate must return list[Theme]")
    return themes


_product_id = operator.attrgetter("product.id")


def _check_ranked(ranked: Any, candidates: list[ScoredProduct], name: str) -> list[ScoredProduct]:
    if (
        not isinstance(ranked, list)
        or len(ranked) != len(candidates)
        or set(map(_product_id, ranked)) != set(map(_product_id, candidates))
    ):
        raise ComponentError(f"{name}.rank must return the same products it was given")
    return ranked


def _check_scores(scores: Any, n: int, name: str) -> list[float]:
    if not isinstance(scores, (list, tuple)) or len(scores) != n:
        raise ComponentError(f"{name}.score must return one score per product ({n})")
    try:
        arr = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise ComponentError(f"{name}.score must return numbers") from None
    if arr.ndim != 1 or not np.isfinite(arr).all():
        raise ComponentError(f"{name}.score returned a non-finite score")
    out: list[float] = arr.tolist()
    return out


def _resolve_llm(llm: Any) -> tuple[Any, str]:
    from .llm.base import LLM

    if llm is None:
        return None, "baseline generators (llm=None)"
    if isinstance(llm, LLM):
        return llm, f"generative: {type(llm).__name__} {llm.model_id}"
    if llm == "auto":
        try:
            from .llm.outlines import LocalLLM
        except ImportError:
            return None, "baseline generators: local model support not importable"
        if LocalLLM.available():
            local = _shared_local_llm()
            return local, f"generative: local model {local.model_id} (llm='auto')"
        return None, "baseline generators: the [local] extra is not installed (llm='auto')"
    raise ConfigurationError(f"llm must be None, 'auto' or an LLM instance, got {llm!r}")


@functools.lru_cache(maxsize=1)
def _shared_local_llm() -> Any:
    """One default local model per process: Storefronts built with llm="auto" share its
    weights, its llama.cpp context lock and its compiled-constraint cache."""
    from .llm.outlines import LocalLLM

    return LocalLLM.default()


def _resolve_cache(cache: Any, llm: Any) -> Any:
    if cache is None:
        return None
    if cache == "auto":
        if llm is None:
            return None
        from .cache import GenerationCache

        return GenerationCache()
    return cache


def _llm_theme_generator(
    llm: Any, catalog: Catalog, cache: Any, baseline: ThemeGenerator
) -> ThemeGenerator:
    from .generation.llm_themes import LLMThemeGenerator

    gen: ThemeGenerator = LLMThemeGenerator(llm, catalog, cache=cache, baseline=baseline)
    return gen


def _llm_keyword_generator(llm: Any, cache: Any) -> KeywordGenerator:
    from .generation.llm_keywords import LLMKeywordGenerator

    gen: KeywordGenerator = LLMKeywordGenerator(llm, cache=cache)
    return gen


def _default_retriever(catalog: Catalog) -> Retriever:
    r: Retriever = BM25Retriever(catalog)
    return r


def _default_gates() -> list[Gate]:
    from .filtering import gates as gates_module

    factory = getattr(gates_module, "default_gates", None)
    return list(factory()) if factory is not None else []
