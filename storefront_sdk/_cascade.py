"""The cascade engine: one page, from themes to assembled placements.

::

    themes ─► [theme gates] ─► per placement (concurrently in abuild):
        keywords (closed taxonomy) ─► [keyword gates] ─► retrieve ─► relevance filter ─► rank
    ─► assemble in theme order: de-duplicate products, [product gates], density,
       [placement gates]
    ─► replace dropped placements from spare themes, then fallback generators

A placement its theme's pinned products fill skips keywords to rank (a ``pinned``
event); if de-duplication or product gates then leave it short, assembly runs them
for it after all (``pinned_short``), so the page is what the full cascade would build.

The cascade is written once, as a generator that *yields* component calls
(:class:`~._drive.Call`: a typed, bound sync call and its async twin, built with the
component's own methods -- no dispatch by method name); two small drivers run
it (:mod:`._drive`), so ``build`` and ``abuild``
cannot drift apart. Every call is timed into ``page.trace``.

Failure policy, the same for every component call, gates included:

* a component that raises, or returns something that breaks its contract, is
  recorded on its stage (``error``) and replaced by its fallback (baseline
  themes, baseline keywords, the lexical filter, the retrieval order); a stage
  with no fallback (retrieval) yields an empty result and a ``stage_failed`` event;
* a gate check that raises is recorded as a ``gate_failed`` event (gate, level,
  error) and counts as a rejection -- a broken gate fails closed;
* nothing a component does escapes ``build()``.

Page deadline (``StorefrontConfig.page_budget_s``, see :mod:`storefront_sdk.deadline`):
once it has passed, the cascade stops calling components that may call a model
(primary theme and keyword generators, the primary relevance filter) and
completes the page with the baselines, recording a ``deadline`` event each time.
In the async driver, such calls still in flight are cancelled at the deadline
(``asyncio.wait_for``); the sync driver cannot interrupt a call in progress (HTTP
backends cap their own waits with :func:`~storefront_sdk.deadline.remaining`).
Retrieval and ranking are never skipped: they are what fills the baseline page.

Why this module is over 500 lines: it is one concept, the page policy (admission,
per-placement cascade, fallbacks, assembly), and its parts share one per-page state
(trace, gates by level, deadline, accepted placements); split further, that state
and the fallback rules would be spread over modules that only make sense together.
How calls are run lives in :mod:`._drive`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from ._drive import (
    Call,
    Parallel,
    Steps,
    check_hits,
    check_ranked,
    check_scores,
    check_themes,
    error_text,
    validated,
)
from .catalog import Catalog
from .deadline import expired
from .exceptions import ComponentError
from .interfaces import (
    Component,
    Gate,
    KeywordGenerator,
    Ranker,
    RelevanceFilter,
    Retriever,
    ThemeGenerator,
)
from .text import normalize
from .types import (
    Page,
    Placement,
    PlacementSource,
    Product,
    RetrievalQuery,
    RetrievedProduct,
    ScoredProduct,
    Theme,
    Trace,
    UserContext,
)

if TYPE_CHECKING:
    from .llm.base import LLM
    from .taxonomy import KeywordTaxonomy

__all__ = ["Cascade", "Parts"]


class Parts(Protocol):
    """What the cascade runs: the storefront's components (read at the start of each page)."""

    catalog: Catalog
    llm: LLM | None
    llm_reason: str
    semantic_reason: str
    theme_generator: ThemeGenerator
    keyword_generator: KeywordGenerator
    retriever: Retriever
    relevance_filter: RelevanceFilter
    ranker: Ranker
    gates: list[Gate]
    fallback_theme_generators: list[ThemeGenerator]
    fallback_keyword_generator: KeywordGenerator

    @property
    def fallback_filter(self) -> RelevanceFilter: ...

    @property
    def baselines(self) -> frozenset[int]: ...

    @property
    def taxonomy(self) -> KeywordTaxonomy: ...


class _Config(Protocol):
    num_placements: int
    products_per_placement: int
    min_products: int
    keywords_per_placement: int
    candidates_per_placement: int
    spare_themes: int
    dedupe_products: bool
    max_rounds: int
    baseline_keywords_for_baseline_themes: bool


@dataclass
class _Draft:
    slot: int
    theme: Theme
    source: PlacementSource
    keywords: list[str]
    products: list[ScoredProduct] = field(default_factory=list)
    pinned_only: bool = False
    """The pins fill the placement: keywords, retrieval, filter and ranking were skipped
    (assembly runs them after all if gates or duplicates leave the placement short)."""


class Cascade:
    """The steps of one page for one user; a driver runs :meth:`page`."""

    def __init__(self, parts: Parts, config: _Config, trace: Trace) -> None:
        self.parts = parts
        self.config = config
        self.trace = trace
        self.catalog = parts.catalog
        self.baselines = parts.baselines
        gates = list(parts.gates)
        # Only the checks a gate class overrides are called (Gate.checks, per class).
        self.gates_by_level: dict[str, list[Gate]] = {
            level: [g for g in gates if level in g.checks]
            for level in ("theme", "keyword", "product", "placement")
        }

    # -- deadline -----------------------------------------------------------------------
    def _generative(self, component: Component) -> bool:
        return id(component) not in self.baselines

    def _past_deadline(self, what: str, stage_name: str, slot: int | None = None) -> bool:
        """True (and traced) when the page deadline has passed: ``what`` is skipped."""
        if not expired():
            return False
        self.trace.add_event(
            "deadline",
            f"page deadline passed: {what} skipped, baseline used",
            placement=slot,
            stage=stage_name,
        )
        return True

    # -- the page -----------------------------------------------------------------------
    def page(self, user: UserContext) -> Steps:
        cfg, trace, parts = self.config, self.trace, self.parts
        user = self._clean_user(user)
        trace.add_event("config", parts.llm_reason, llm=parts.llm.model_id if parts.llm else None)
        trace.add_event("semantic", parts.semantic_reason)

        queue: list[tuple[Theme, PlacementSource]] = []
        primary_gen = parts.theme_generator
        if self._generative(primary_gen) and self._past_deadline(
            f"theme generator {primary_gen.name}", "themes"
        ):
            primary: list[Theme] = []
            primary_reason = "page deadline passed"
        else:
            primary = yield from self._themes(primary_gen, user, fallback_reason=None)
            primary_reason = "primary theme generator failed"
        queue.extend((t, t.source) for t in primary)
        fallbacks = list(parts.fallback_theme_generators)
        primary_failed = not primary

        accepted: list[Placement] = []
        used: set[str] = set()
        # A title is tried at most once per page (also when its placement was dropped
        # later, and without any gate): a fallback generator offering it again is skipped.
        seen_titles: set[str] = set()
        slot = 0
        for _ in range(cfg.max_rounds + len(fallbacks)):
            need = cfg.num_placements - len(accepted)
            if need <= 0:
                break
            if len(queue) < need and fallbacks:
                gen = fallbacks.pop(0)
                reason = (
                    primary_reason
                    if primary_failed
                    else f"{need} placement(s) still missing after gates and density checks"
                )
                extra = yield from self._themes(gen, user, fallback_reason=reason)
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
                if self._theme_rejected(theme, user, accepted, batch, slot):
                    slot += 1
                    continue
                seen_titles.add(key)
                batch.append((slot, theme, source))
                slot += 1
            if not batch:
                if not fallbacks:
                    break
                continue
            drafts = yield Parallel([self._placement(s, t, src, user) for s, t, src in batch])
            for draft in drafts:
                placement = yield from self._assemble(draft, accepted, used, user)
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
        self, gen: ThemeGenerator, user: UserContext, *, fallback_reason: str | None
    ) -> Steps:
        n = self.config.num_placements + self.config.spare_themes
        try:
            themes, rec = yield Call(
                "themes",
                gen,
                partial(gen.generate, user, n),
                partial(gen.agenerate, user, n),
                fallback_reason=fallback_reason,
                cancellable=self._generative(gen),
            )
            validated(rec, check_themes, themes, gen.name)
            rec.details["themes"] = len(themes)
            if not themes:
                rec.fallback_reason = rec.fallback_reason or "no themes generated"
            return themes
        except Exception as exc:
            self.trace.add_event(
                "fallback", f"{gen.name} failed: {error_text(exc)}", stage="themes"
            )
            return []

    # -- gates ----------------------------------------------------------------------------
    def _gate_rejects(
        self,
        slot: int,
        level: str,
        subject: str,
        check: Callable[[Gate], str | None],
        **data: Any,
    ) -> bool:
        """Run ``check`` through the gates of ``level``; record and return True at the first
        rejection. A gate that raises is recorded (``gate_failed``) and rejects."""
        for gate in self.gates_by_level[level]:
            try:
                why = check(gate)
            except Exception as exc:
                self._gate_failed(gate, slot, level, subject, exc, data)
                return True
            if why:
                self._gate_rejected(gate, slot, level, subject, why, data)
                return True
        return False

    def _gate_failed(
        self, gate: Gate, slot: int, level: str, subject: str, exc: Exception, data: dict[str, Any]
    ) -> None:
        error = error_text(exc)
        self.trace.add_event(
            "gate_failed",
            f"{gate.name}.check_{level} raised on {level} {subject}: {error}; rejected",
            placement=slot,
            gate=gate.name,
            level=level,
            error=error,
            **data,
        )

    def _gate_rejected(
        self, gate: Gate, slot: int, level: str, subject: str, why: str, data: dict[str, Any]
    ) -> None:
        self.trace.add_event(
            "gate",
            f"{level} {subject} rejected: {why}",
            placement=slot,
            gate=gate.name,
            reason=why,
            level=level,
            **data,
        )

    def _theme_rejected(
        self,
        theme: Theme,
        user: UserContext,
        accepted: list[Placement],
        batch: list[tuple[int, Theme, PlacementSource]],
        slot: int,
    ) -> bool:
        if not self.gates_by_level["theme"]:
            return False
        admitted = [p.theme for p in accepted] + [t for _, t, _ in batch]
        return self._gate_rejects(
            slot,
            "theme",
            repr(theme.title),
            lambda g: g.check_theme(theme, user, admitted),
            title=theme.title,
        )

    def _keyword_gates(
        self, keywords: list[str], theme: Theme, user: UserContext, slot: int
    ) -> list[str]:
        if not self.gates_by_level["keyword"]:
            return keywords
        kept: list[str] = []
        for kw in keywords:

            def check(g: Gate, kw: str = kw) -> str | None:
                return g.check_keyword(kw, theme, user)

            if not self._gate_rejects(slot, "keyword", repr(kw), check, keyword=kw):
                kept.append(kw)
        return kept

    def _product_rejected(
        self, product: Product, theme: Theme, user: UserContext, slot: int, gates: list[Gate]
    ) -> bool:
        """:meth:`_gate_rejects` for the product level, written out: it runs for every
        product shown."""
        for gate in gates:
            try:
                why = gate.check_product(product, theme, user)
            except Exception as exc:
                self._gate_failed(
                    gate, slot, "product", product.id, exc, {"product_id": product.id}
                )
                return True
            if why:
                self._gate_rejected(
                    gate, slot, "product", product.id, why, {"product_id": product.id}
                )
                return True
        return False

    # -- one placement ------------------------------------------------------------------------
    def _placement(
        self, slot: int, theme: Theme, source: PlacementSource, user: UserContext
    ) -> Steps:
        pinned = self._pinned(theme)
        if len(pinned) >= self.config.products_per_placement:
            # The theme's pins fill the placement (the history baseline pins every
            # product): keywords, retrieval, filter and ranking could only add candidates
            # that are never shown, so they are skipped. Product and placement gates still
            # run in assembly, which retrieves after all if they leave the placement short.
            self.trace.add_event(
                "pinned",
                f"{len(pinned)} pinned products fill the placement: keywords, retrieval, "
                "filter and ranking skipped",
                placement=slot,
                pinned=len(pinned),
            )
            return _Draft(
                slot=slot,
                theme=theme,
                source=source,
                keywords=[],
                products=pinned,
                pinned_only=True,
            )
        draft = yield from self._retrieved(slot, theme, source, user)
        return draft

    def _pinned(self, theme: Theme) -> list[ScoredProduct]:
        """The theme's pinned products that are in the catalog, once each, in order, scored
        as :func:`_final_scores` scores a placement of pins only (so it need not copy them)."""
        get = self.catalog.products_by_id.get
        found = [p for pid in dict.fromkeys(theme.pinned_product_ids) if (p := get(pid))]
        top = min(len(found), self.config.products_per_placement)
        return [ScoredProduct.of(p, pinned=True, score=float(top - i)) for i, p in enumerate(found)]

    def _retrieved(
        self, slot: int, theme: Theme, source: PlacementSource, user: UserContext
    ) -> Steps:
        """The full per-placement cascade: keywords, then pinned + retrieved products."""
        parts = self.parts
        keywords, fell_back = yield from self._keywords(slot, theme, user)
        can_retry = (
            not fell_back and parts.keyword_generator is not parts.fallback_keyword_generator
        )
        products = yield from self._products(
            slot, theme, user, keywords, rank_if_thin=not can_retry
        )
        if len(products) < self.config.min_products and can_retry:
            # Generated keywords that retrieve too little: one more try with the baseline's
            # (the thin first attempt was not ranked: its products are discarded).
            reason = f"only {len(products)} products with the generated keywords"
            self.trace.add_event("fallback", reason, placement=slot, stage="keywords")
            keywords = yield from self._fallback_keywords(slot, theme, user, reason)
            products = yield from self._products(slot, theme, user, keywords)
        return _Draft(slot=slot, theme=theme, source=source, keywords=keywords, products=products)

    def _keywords(self, slot: int, theme: Theme, user: UserContext) -> Steps:
        """``(keywords, fell_back)`` from the keyword generator, or its fallback."""
        parts = self.parts
        gen = parts.keyword_generator
        is_fallback = gen is parts.fallback_keyword_generator
        if (
            self.config.baseline_keywords_for_baseline_themes
            and theme.source in ("history", "static")
            and not is_fallback
        ):
            # A baseline theme names catalog aisles already: the baseline picks its keywords
            # without spending a model round (not a failure, so not traced as a fallback).
            keywords = yield from self._fallback_keywords(slot, theme, user, None)
            return keywords, True
        reason: str | None = None
        if (
            not is_fallback
            and self._generative(gen)
            and self._past_deadline(f"keyword generator {gen.name}", "keywords", slot)
        ):
            reason = "page deadline passed"
        else:
            try:
                keywords = yield from self._keyword_call(
                    gen, slot, theme, user, cancellable=not is_fallback and self._generative(gen)
                )
                if keywords or is_fallback:
                    return keywords, False
                reason = "no keyword of the taxonomy passed the checks"
            except Exception as exc:
                reason = f"keyword generation failed: {error_text(exc)}"
            if is_fallback:
                return [], False
            self.trace.add_event("fallback", reason, placement=slot, stage="keywords")
        keywords = yield from self._fallback_keywords(slot, theme, user, reason)
        return keywords, True

    def _fallback_keywords(
        self, slot: int, theme: Theme, user: UserContext, reason: str | None
    ) -> Steps:
        try:
            keywords: list[str] = yield from self._keyword_call(
                self.parts.fallback_keyword_generator, slot, theme, user, fallback_reason=reason
            )
            return keywords
        except Exception as exc:  # the baseline itself failed: no retrieval for this theme
            self.trace.add_event(
                "stage_failed", f"fallback keywords failed: {error_text(exc)}", placement=slot
            )
            return []

    def _keyword_call(
        self,
        gen: KeywordGenerator,
        slot: int,
        theme: Theme,
        user: UserContext,
        *,
        cancellable: bool = False,
        fallback_reason: str | None = None,
    ) -> Steps:
        """One keyword generator's keywords for ``theme``: in the taxonomy, past the gates,
        at most ``keywords_per_placement``, recorded on the stage. Raises what the call or
        its contract check raised."""
        n = self.config.keywords_per_placement
        taxonomy = self.parts.taxonomy
        raw, rec = yield Call(
            "keywords",
            gen,
            partial(gen.generate, theme, taxonomy, user, n),
            partial(gen.agenerate, theme, taxonomy, user, n),
            slot,
            fallback_reason=fallback_reason,
            cancellable=cancellable,
        )
        keywords = validated(rec, self._in_taxonomy, raw, slot)
        keywords = self._keyword_gates(keywords, theme, user, slot)[:n]
        rec.details["keywords"] = keywords
        return keywords

    def _in_taxonomy(self, raw: Any, slot: int) -> list[str]:
        if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
            raise ComponentError("KeywordGenerator.generate must return list[str]")
        taxonomy = self.parts.taxonomy
        out: list[str] = []
        rejected: list[str] = []
        for kw in raw:
            canon = taxonomy.canonical(kw)
            if canon is None:
                rejected.append(kw)
            elif canon not in out:
                out.append(canon)
        if rejected:
            self.trace.add_event(
                "keyword_not_in_taxonomy",
                f"dropped {len(rejected)} keyword(s) outside the taxonomy",
                placement=slot,
                keywords=rejected[:20],
            )
        return out

    def _products(
        self,
        slot: int,
        theme: Theme,
        user: UserContext,
        keywords: list[str],
        *,
        rank_if_thin: bool = True,
    ) -> Steps:
        """Pinned products, then retrieved -> filtered -> ranked candidates.

        With ``rank_if_thin=False``, fewer than ``min_products`` in all are returned
        unranked: the caller retries with other keywords and discards them.
        """
        cfg = self.config
        catalog = self.catalog
        pinned_ids = [pid for pid in dict.fromkeys(theme.pinned_product_ids) if pid in catalog]
        hits: list[RetrievedProduct] = []
        candidates: list[ScoredProduct] = []
        if keywords:
            query = RetrievalQuery(
                keywords=keywords,
                k=cfg.candidates_per_placement,
                departments=theme.departments,
                exclude_ids=frozenset(pinned_ids),
            )
            retriever = self.parts.retriever
            try:
                found, rec = yield Call(
                    "retrieve",
                    retriever,
                    partial(retriever.retrieve_products, query, catalog),
                    partial(retriever.aretrieve_products, query, catalog),
                    slot,
                )
                hits = validated(rec, check_hits, found, retriever.name)
                unknown = rec.details.pop("unknown_product_ids", None)
                rec.details["candidates"] = len(hits)
                if unknown:
                    self.trace.add_event(
                        "unknown_product",
                        f"retriever returned {len(unknown)} id(s) not in the catalog",
                        placement=slot,
                        ids=unknown[:20],
                    )
            except Exception as exc:
                self.trace.add_event(
                    "stage_failed", f"retrieval failed: {error_text(exc)}", placement=slot
                )
        pinned = [ScoredProduct.of(catalog[pid], pinned=True) for pid in pinned_ids]
        if hits:
            candidates = yield from self._filter(slot, theme, hits)
        thin = len(pinned) + len(candidates) < cfg.min_products
        if candidates and (rank_if_thin or not thin):
            candidates = yield from self._rank(slot, theme, user, candidates)
        return pinned + candidates

    def _filter(self, slot: int, theme: Theme, hits: list[RetrievedProduct]) -> Steps:
        products = [h[0] for h in hits]
        flt = self.parts.relevance_filter
        fallback = self.parts.fallback_filter
        reason: str | None = None
        if (
            flt is not fallback
            and self._generative(flt)
            and self._past_deadline(f"relevance filter {flt.name}", "filter", slot)
        ):
            flt, reason = fallback, "page deadline passed"
        for attempt in range(2):
            try:
                scores, rec = yield Call(
                    "filter",
                    flt,
                    partial(flt.score, theme, products),
                    partial(flt.ascore, theme, products),
                    slot,
                    fallback_reason=reason,
                    cancellable=flt is not fallback and self._generative(flt),
                )
                scores = validated(rec, check_scores, scores, len(products), flt.name)
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
                if attempt or flt is fallback:
                    self.trace.add_event(
                        "stage_failed",
                        f"relevance filter failed: {error_text(exc)}",
                        placement=slot,
                    )
                    return []
                reason = f"relevance filter failed: {error_text(exc)}"
                self.trace.add_event("fallback", reason, placement=slot, stage="filter")
                flt = fallback
        return []

    def _rank(
        self, slot: int, theme: Theme, user: UserContext, candidates: list[ScoredProduct]
    ) -> Steps:
        ranker = self.parts.ranker
        try:
            ranked, rec = yield Call(
                "rank",
                ranker,
                partial(ranker.rank, user, theme, candidates),
                partial(ranker.arank, user, theme, candidates),
                slot,
            )
            checked: list[ScoredProduct] = validated(
                rec, check_ranked, ranked, candidates, ranker.name
            )
            return checked
        except Exception as exc:
            # Keep the retrieval order; the stage record carries the error, the event says so.
            reason = f"ranker failed, retrieval order kept: {error_text(exc)}"
            self.trace.add_event("fallback", reason, placement=slot, stage="rank")
            return candidates

    # -- assembly -----------------------------------------------------------------------------
    def _assemble(
        self, draft: _Draft, accepted: list[Placement], used: set[str], user: UserContext
    ) -> Steps:
        """The placement of ``draft`` (None when it is dropped), after product gates,
        product de-duplication, density and placement gates."""
        cfg = self.config
        items: list[ScoredProduct] = []
        self._admit(draft, draft.products, items, used, user)
        if draft.pinned_only and len(items) < cfg.products_per_placement:
            # Gates or products shown above took some pins: the skipped stages run after
            # all, and their candidates follow the pins exactly as they would have.
            short = cfg.products_per_placement - len(items)
            self.trace.add_event(
                "pinned_short",
                f"{short} pinned product(s) not shown: retrieving candidates to top up",
                placement=draft.slot,
                missing=short,
            )
            full = yield from self._retrieved(draft.slot, draft.theme, draft.source, user)
            draft.keywords = full.keywords
            self._admit(draft, [sp for sp in full.products if not sp.pinned], items, used, user)
        return self._finish(draft, items, accepted, user)

    def _admit(
        self,
        draft: _Draft,
        products: list[ScoredProduct],
        items: list[ScoredProduct],
        used: set[str],
        user: UserContext,
    ) -> None:
        """Append ``products`` to ``items`` until the placement is full, skipping products
        shown above (``used``) and those a product gate rejects. Product gates run here,
        lazily, on the products that would be shown: a rejected product is replaced by the
        next candidate."""
        size = self.config.products_per_placement
        gates = self.gates_by_level["product"]
        theme, slot = draft.theme, draft.slot
        for sp in products:
            if len(items) >= size:
                break
            product = sp.product
            if product.id in used:
                continue
            if gates and self._product_rejected(product, theme, user, slot, gates):
                continue
            items.append(sp)

    def _finish(
        self,
        draft: _Draft,
        items: list[ScoredProduct],
        accepted: list[Placement],
        user: UserContext,
    ) -> Placement | None:
        cfg = self.config
        items = _final_scores(items)
        if len(items) < cfg.min_products:
            self.trace.add_event(
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
            draft.slot,
            "placement",
            repr(draft.theme.title),
            lambda g: g.check_placement(placement, accepted, user),
            title=draft.theme.title,
        ):
            return None
        return placement

    def _clean_user(self, user: UserContext) -> UserContext:
        known = self.catalog.products_by_id
        unknown = [it.product_id for it in user.history if it.product_id not in known]
        if unknown:
            self.trace.add_event(
                "unknown_product",
                f"skipped {len(unknown)} history item(s) with product ids not in the catalog",
                ids=sorted(set(unknown))[:50],
                count=len(unknown),
            )
            user = user.model_copy(
                update={"history": [it for it in user.history if it.product_id in known]}
            )
        if not user.history:
            self.trace.add_event("cold_start", "no usable history: cold-start page")
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
    n = len(pinned)
    return [
        sp if sp.score == top + n - i else sp.with_scores(score=top + n - i)
        for i, sp in enumerate(pinned)
    ] + ranked
