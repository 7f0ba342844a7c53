"""The records of a distillation run: what the teacher was asked and said, and what the
cascade made of it (gate verdicts, retrieval, placements), one :class:`ShopperRecord` per
shopper; :class:`Label` is one teacher answer with its AIQA verdict."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..llm.base import ChatMessage

__all__ = [
    "GateVerdict",
    "JudgeVerdict",
    "LLMCallRecord",
    "Label",
    "OutputConstraint",
    "ShopperRecord",
    "ThemeOutcome",
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputConstraint(_Record):
    """The constraint the teacher decoded under: a JSON schema, and the closed list of a choice.

    ``kind``: ``structured`` (a pydantic model), ``choice``, ``multi_choice``, or ``text``
    (another spec, e.g. a title pattern; its schema says what it allows)."""

    kind: Literal["structured", "choice", "multi_choice", "text"]
    json_schema: dict[str, Any]
    options: list[str] | None = None
    min_items: int | None = None
    max_items: int | None = None


class LLMCallRecord(_Record):
    """One teacher call: exact messages, constraint, raw output, model and sampling settings."""

    index: int = Field(ge=0, description="order of the call within the shopper's page")
    stage: str = Field(description='the cascade stage open during the call ("themes", "keywords")')
    placement: int | None = Field(default=None, description="the theme slot of a keyword call")
    theme_title: str | None = Field(default=None, description="the theme a keyword call is for")
    messages: list[ChatMessage]
    constraint: OutputConstraint
    raw: str = ""
    value: Any = None
    error: str | None = None
    model_id: str
    fingerprint: str
    temperature: float | None = None
    max_tokens: int | None = None
    sampling: dict[str, Any] | None = Field(
        default=None,
        description="the teacher's sampling settings (best-of-N: n, temperature, seed) and, "
        "when the call sampled, its candidates with their scores and the chosen one",
    )
    cache_hit: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


class GateVerdict(_Record):
    """A rejection recorded on the page's trace (a ``gate`` event)."""

    gate: str
    level: str
    reason: str
    placement: int | None = None
    title: str | None = None
    subject: str | None = None


class JudgeVerdict(_Record):
    """A judge's placement-level verdict."""

    judge: str
    criterion: str
    passed: bool | None = None
    score: float | None = None
    reason: str = ""


class ThemeOutcome(_Record):
    """What the cascade made of one theme: gates, retrieval, the placement on the page."""

    title: str
    slot: int | None = None
    rejections: list[GateVerdict] = Field(default_factory=list)
    keywords_fell_back: bool = False
    candidates: int | None = Field(default=None, description="products retrieved (last attempt)")
    on_page: bool = False
    source: str | None = None
    keywords: list[str] = Field(default_factory=list)
    density: int = Field(default=0, description="products in the placement on the page")
    judge: list[JudgeVerdict] = Field(default_factory=list)


class ShopperRecord(_Record):
    """One checkpoint line: a shopper's page built with the teacher, fully annotated."""

    user_id: str
    teacher_model_id: str
    teacher_fingerprint: str
    min_products: int
    calls: list[LLMCallRecord] = Field(default_factory=list)
    themes: list[ThemeOutcome] = Field(default_factory=list)
    gate_verdicts: list[GateVerdict] = Field(default_factory=list)
    placements_on_page: int = 0
    placements_from_model: int = 0
    fallbacks: list[str] = Field(default_factory=list)
    build_ms: float = 0.0


class Label(_Record):
    """One teacher answer as a training example, with its AIQA verdict."""

    label_id: str
    user_id: str
    stage: str
    call_index: int
    messages: list[ChatMessage]
    output: str = Field(description="the assistant turn: the teacher's output as decoded")
    constraint: OutputConstraint
    teacher_model_id: str
    temperature: float | None = None
    theme_titles: list[str] = Field(default_factory=list)
    kept: bool = True
    drop_reasons: list[str] = Field(default_factory=list)
