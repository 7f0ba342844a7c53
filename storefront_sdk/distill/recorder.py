"""``RecordingLLM``: any :class:`~storefront_sdk.llm.LLM`, with every call written down.

It wraps the teacher the way :class:`~storefront_sdk.llm.cached.CachingLLM` wraps a model:
the cascade talks to it as to any ``LLM``; each call is recorded as an
:class:`~storefront_sdk.distill.records.LLMCallRecord` (exact messages, output constraint,
raw output, model id, sampling settings) together with the cascade stage open at the time
(``themes``, ``keywords``) and, for keyword calls, the theme slot and title.
Failed calls are recorded with their error and re-raised, so the cascade degrades as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from ..llm.base import LLM, ChatMessage, Choice, LLMResult, MultiChoice, OutputSpec, Structured
from ..llm.cached import current_cache_identity
from ..tracing import current_stage
from .records import LLMCallRecord, OutputConstraint

__all__ = ["RecordingLLM", "constraint_of"]

T = TypeVar("T")


def constraint_of(output: OutputSpec[Any]) -> OutputConstraint:
    """The recordable form of an output spec."""
    if isinstance(output, MultiChoice):
        return OutputConstraint(
            kind="multi_choice",
            json_schema=output.json_schema(),
            options=list(output.options),
            min_items=output.min_items,
            max_items=output.max_items,
        )
    if isinstance(output, Choice):
        return OutputConstraint(
            kind="choice", json_schema=output.json_schema(), options=list(output.options)
        )
    if isinstance(output, Structured):
        return OutputConstraint(kind="structured", json_schema=output.json_schema())
    return OutputConstraint(kind="text", json_schema=output.json_schema())


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _sampling(llm: LLM, result: LLMResult[Any] | None) -> dict[str, Any] | None:
    """The sampling settings of the teacher (a wrapper with a ``sampling`` mapping, such as
    :class:`~storefront_sdk.distill.teacher.BestOfNLLM`, possibly inside a cache), plus
    the call's candidates when the teacher kept them."""
    inner: Any = llm
    for _ in range(4):
        settings = getattr(type(inner), "sampling", None)
        if settings is not None:
            break
        inner = getattr(inner, "llm", None)
        if inner is None:
            return None
    else:
        return None
    out = dict(inner.sampling)
    pick_of = getattr(inner, "pick_of", None)
    pick = pick_of(result) if result is not None and callable(pick_of) else None
    if pick is not None:
        out.update(pick.as_record())
    return out


def _theme_title() -> str | None:
    """The theme a keyword call is for, from the open cache identity (the keyword
    generator keys its requests by theme)."""
    identity = current_cache_identity()
    if identity is None or identity[0] != "keywords":
        return None
    try:
        parts = identity[1]() if callable(identity[1]) else identity[1]
        theme = parts.get("theme")
        title = theme.get("title") if isinstance(theme, dict) else None
    except Exception:  # an identity that cannot be evaluated: the title stays unknown
        return None
    return title if isinstance(title, str) else None


class RecordingLLM(LLM):
    """``llm`` with every call appended to :attr:`calls` (see the module docs)."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.model_id = llm.model_id
        self.concurrent = llm.concurrent
        self._lock = threading.Lock()
        self.calls: list[LLMCallRecord] = []

    def __repr__(self) -> str:
        return f"RecordingLLM({self.llm!r})"

    def __getattr__(self, name: str) -> Any:
        # Other attributes (aclose, cache_info ...) are the wrapped model's, as for CachingLLM.
        if name.startswith("__") or name in ("llm", "calls", "_lock"):
            raise AttributeError(name)
        return getattr(self.llm, name)

    @property
    def fingerprint(self) -> str:
        return self.llm.fingerprint

    def warm_up(self) -> None:
        self.llm.warm_up()

    def take(self) -> list[LLMCallRecord]:
        """The calls recorded so far, and forget them (one shopper's worth at a time)."""
        with self._lock:
            out, self.calls = self.calls, []
        return out

    def _record(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[Any],
        max_tokens: int | None,
        temperature: float | None,
        result: LLMResult[Any] | None,
        error: BaseException | None,
    ) -> None:
        rec = current_stage()
        stage_name = rec.stage if rec is not None else "llm"
        with self._lock:
            usage = result.usage if result is not None else None
            self.calls.append(
                LLMCallRecord(
                    index=len(self.calls),
                    stage=stage_name,
                    placement=rec.placement if rec is not None else None,
                    theme_title=_theme_title() if stage_name == "keywords" else None,
                    messages=list(messages),
                    constraint=constraint_of(output),
                    raw=result.raw if result is not None else "",
                    value=_jsonable(result.value) if result is not None else None,
                    error=f"{type(error).__name__}: {error}"[:500] if error is not None else None,
                    model_id=(usage.model_id if usage is not None else self.model_id),
                    fingerprint=self.llm.fingerprint,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    sampling=_sampling(self.llm, result),
                    cache_hit=bool(usage and usage.cache_hit),
                    prompt_tokens=usage.prompt_tokens if usage else 0,
                    completion_tokens=usage.completion_tokens if usage else 0,
                    latency_ms=usage.latency_ms if usage else 0.0,
                )
            )

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        try:
            result = self.llm.generate(
                messages, output, max_tokens=max_tokens, temperature=temperature
            )
        except Exception as exc:
            self._record(messages, output, max_tokens, temperature, None, exc)
            raise
        self._record(messages, output, max_tokens, temperature, result, None)
        return result

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        try:
            result = await self.llm.agenerate(
                messages, output, max_tokens=max_tokens, temperature=temperature
            )
        except Exception as exc:
            self._record(messages, output, max_tokens, temperature, None, exc)
            raise
        self._record(messages, output, max_tokens, temperature, result, None)
        return result
