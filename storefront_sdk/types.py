"""The data model: every value that crosses a component boundary is one of these.

Vocabulary: a *page* is an ordered list of *placements* (carousels). Each
placement has a *theme* (title, description, concepts), the *keywords* that
retrieved its products, and *scored products* carrying their provenance.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Candidate",
    "Interaction",
    "JudgeReport",
    "Page",
    "Placement",
    "PlacementSource",
    "Product",
    "RetrievalQuery",
    "RetrievedProduct",
    "ScoredProduct",
    "StageRecord",
    "Theme",
    "Trace",
    "TraceEvent",
    "UserContext",
    "Verdict",
]

PlacementSource = Literal["llm", "history", "static", "fallback", "custom"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Product(_Frozen):
    """One catalog item. Product ids are strings, whatever the source used."""

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    department: str = ""
    aisle: str = ""
    brand: str | None = None
    price: float | None = Field(default=None, ge=0)
    attributes: dict[str, str] = Field(default_factory=dict)
    popularity: float = Field(default=0.0, ge=0)

    @field_validator("price", "popularity")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @property
    def category_path(self) -> tuple[str, ...]:
        """``(department, aisle)``, without empty levels."""
        return tuple(p for p in (self.department, self.aisle) if p)

    @property
    def text(self) -> str:
        """The text that retrieval and relevance filtering look at."""
        parts = [self.title, self.aisle, self.department]
        if self.brand:
            parts.append(self.brand)
        return " ".join(p for p in parts if p)


class Interaction(_Frozen):
    """One event in a user's history: by default a purchase within an order."""

    product_id: str = Field(min_length=1)
    event: Literal["purchase", "cart", "view", "click"] = "purchase"
    order_number: int | None = None
    timestamp: datetime | None = None
    quantity: int = Field(default=1, ge=1)

    @field_validator("product_id", mode="before")
    @classmethod
    def _id_as_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v


class UserContext(_Frozen):
    """Everything the page may be personalised on.

    ``notes`` and ``preferences`` are free text supplied by the user or the
    caller; the SDK always treats them as data, never as instructions.
    """

    user_id: str = Field(min_length=1)
    history: list[Interaction] = Field(default_factory=list)
    preferences: list[str] = Field(default_factory=list)
    notes: str | None = None
    session: dict[str, str] = Field(default_factory=dict)
    age_verified: bool = False
    locale: str = "en-US"

    @field_validator("user_id", mode="before")
    @classmethod
    def _uid_as_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v


class Theme(_Frozen):
    """A placement's theme.

    ``concepts`` are freeform product ideas ("eggs", "sourdough") that drive
    keyword generation. ``departments`` optionally restricts retrieval;
    ``pinned_product_ids`` are shown first when present (e.g. "Buy it again").
    ``kind`` is a short machine-readable label ("buy_again", "seasonal", ...).
    """

    title: str = Field(min_length=1, max_length=120)
    description: str = ""
    concepts: list[str] = Field(default_factory=list)
    kind: str = "generic"
    source: PlacementSource = "custom"
    departments: list[str] = Field(default_factory=list)
    pinned_product_ids: list[str] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """Title, description and concepts as one string (for similarity)."""
        return " ".join([self.title, self.description, *self.concepts]).strip()


class RetrievalQuery(_Frozen):
    """What a :class:`~storefront_sdk.interfaces.Retriever` is asked.

    Up to ``per_keyword_k`` products per keyword and ``k`` in total, deduplicated,
    optionally restricted to ``departments`` and excluding ``exclude_ids``.
    """

    keywords: list[str]
    k: int = Field(default=100, ge=1)
    per_keyword_k: int | None = Field(default=None, ge=1)
    departments: list[str] = Field(default_factory=list)
    exclude_ids: frozenset[str] = frozenset()


class Candidate(_Frozen):
    """A retrieved product id, the keyword that found it, and its retrieval score."""

    product_id: str
    score: float
    keyword: str | None = None


RetrievedProduct: TypeAlias = "tuple[Product, str | None, float]"
"""A retrieved catalog product, the keyword that found it and its retrieval score:
``(product, keyword, score)``.

What :meth:`~storefront_sdk.interfaces.Retriever.retrieve_products` returns: a
:class:`Candidate` already resolved to the catalog's own :class:`Product`. A plain
tuple rather than a model or a named tuple, because a page retrieves about a
thousand of them and building each through a Python-level constructor measurably
slows a warm build (the fast path exists to avoid per-hit work); the parts are
already validated.
"""


class ScoredProduct(_Frozen):
    """A product on a page, with the provenance of every score that put it there."""

    product: Product
    score: float = 0.0
    keyword: str | None = None
    retrieval_score: float | None = None
    filter_score: float | None = None
    rank_score: float | None = None
    pinned: bool = False

    @classmethod
    def of(
        cls,
        product: Product,
        *,
        score: float = 0.0,
        keyword: str | None = None,
        retrieval_score: float | None = None,
        filter_score: float | None = None,
        rank_score: float | None = None,
        pinned: bool = False,
    ) -> ScoredProduct:
        """Fast constructor for trusted values (no validation): the hot path of a build."""
        data = {
            "product": product,
            "score": score,
            "keyword": keyword,
            "retrieval_score": retrieval_score,
            "filter_score": filter_score,
            "rank_score": rank_score,
            "pinned": pinned,
        }
        return _fast_new(cls, data)

    def with_scores(self, **changes: Any) -> ScoredProduct:
        """A copy with some score fields changed, without re-validation (cheap)."""
        if not changes.keys() <= _SCORE_FIELDS:  # no set built on the hot path
            unknown = changes.keys() - _SCORE_FIELDS
            raise TypeError(f"with_scores() got unknown fields {sorted(unknown)}")
        data = dict(self.__dict__)
        data.update(changes)
        return _fast_new(type(self), data)


_SCORE_FIELDS = frozenset(
    {"score", "keyword", "retrieval_score", "filter_score", "rank_score", "pinned"}
)


_new = object.__new__
_set = object.__setattr__
_FIELDS_SET: dict[type, set[str]] = {}


def _fast_new(cls: type[ScoredProduct], data: dict[str, Any]) -> ScoredProduct:
    """What ``model_construct`` does for trusted, complete data, at a fraction of its cost.

    Every instance made here has all fields set, and a frozen model never changes its
    fields-set, so they share one set object: a page holds hundreds of these, and one
    set less each is less work for the garbage collector.

    Why it is kept although it writes pydantic's instance slots directly: a warm page
    build makes ~1,500-2,000 ``ScoredProduct`` (filter survivors, ranker scores, final
    scores). Measured per instance (demo product, pydantic 2, same machine and run):
    this path 6.4 us, the validating constructor 9.7 us, ``model_copy`` 9.7 us,
    ``model_construct`` 17.5 us -- without it a build does ~3 us x ~1,700 more work,
    about a tenth of a warm baseline build. ``tests/test_types.py`` pins the result
    to what the validating constructor builds (equality, fields set, dump, pickle,
    copy), so a pydantic upgrade that changes the slots fails there, not in a page.
    """
    fields = _FIELDS_SET.get(cls)
    if fields is None:
        fields = _FIELDS_SET[cls] = set(cls.model_fields)
    obj = _new(cls)
    _set(obj, "__dict__", data)
    _set(obj, "__pydantic_fields_set__", fields)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


class Placement(_Frozen):
    """One carousel of a page."""

    theme: Theme
    keywords: list[str] = Field(default_factory=list)
    products: list[ScoredProduct] = Field(default_factory=list)
    source: PlacementSource = "custom"

    @property
    def product_ids(self) -> list[str]:
        return [sp.product.id for sp in self.products]


class StageRecord(BaseModel):
    """One stage of the cascade as it ran: what, how long, from where."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    component: str = ""
    placement: int | None = None
    duration_ms: float = 0.0
    cache_hit: bool | None = None
    model_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    fallback_reason: str | None = None
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TraceEvent(BaseModel):
    """Something worth knowing that is not a stage: skipped ids, gate rejections ..."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    message: str
    placement: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Trace(BaseModel):
    """Why the page looks the way it does. Appended to while the page is built."""

    model_config = ConfigDict(extra="forbid")

    stages: list[StageRecord] = Field(default_factory=list)
    events: list[TraceEvent] = Field(default_factory=list)
    total_ms: float = 0.0

    def add_event(
        self, kind: str, message: str, *, placement: int | None = None, **data: Any
    ) -> TraceEvent:
        ev = TraceEvent(kind=kind, message=message, placement=placement, data=data)
        self.events.append(ev)
        return ev

    def events_of(self, kind: str) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == kind]

    def stages_of(self, stage: str) -> list[StageRecord]:
        return [s for s in self.stages if s.stage == stage]

    @property
    def fallbacks(self) -> list[StageRecord]:
        """Stages that fell back, with their reasons."""
        return [s for s in self.stages if s.fallback_reason]

    @property
    def cache_hits(self) -> int:
        return sum(1 for s in self.stages if s.cache_hit)


class Page(BaseModel):
    """A built storefront page for one user."""

    model_config = ConfigDict(extra="forbid")

    user_id: str
    placements: list[Placement] = Field(default_factory=list)
    trace: Trace = Field(default_factory=Trace)
    created_at: datetime = Field(default_factory=datetime.now)

    @property
    def product_ids(self) -> list[str]:
        """Every product id on the page, in page order (may repeat across placements)."""
        return [pid for pl in self.placements for pid in pl.product_ids]

    def explain(self, product_id: str) -> list[dict[str, Any]]:
        """For each appearance of ``product_id``: placement, theme, keyword, scores, rank."""
        out: list[dict[str, Any]] = []
        for i, pl in enumerate(self.placements):
            for rank, sp in enumerate(pl.products):
                if sp.product.id == product_id:
                    out.append(
                        {
                            "placement": i,
                            "theme": pl.theme.title,
                            "source": pl.source,
                            "keyword": sp.keyword,
                            "retrieval_score": sp.retrieval_score,
                            "filter_score": sp.filter_score,
                            "rank_score": sp.rank_score,
                            "rank": rank,
                            "pinned": sp.pinned,
                        }
                    )
        return out


class Verdict(_Frozen):
    """One judgement: reason first, then score and pass/fail.

    ``valid`` is False when the judge's own output could not be parsed; such a
    verdict is kept (and counted) rather than silently dropped.
    """

    level: Literal["page", "placement", "product"]
    criterion: str
    reason: str = ""
    score: float | None = None
    passed: bool | None = None
    valid: bool = True
    placement: int | None = None
    product_id: str | None = None


class JudgeReport(BaseModel):
    """All verdicts a judge gave on one page."""

    model_config = ConfigDict(extra="forbid")

    user_id: str
    judge: str
    verdicts: list[Verdict] = Field(default_factory=list)

    def of(self, level: str, criterion: str | None = None) -> list[Verdict]:
        return [
            v
            for v in self.verdicts
            if v.level == level and (criterion is None or v.criterion == criterion)
        ]

    @property
    def invalid(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.valid]
