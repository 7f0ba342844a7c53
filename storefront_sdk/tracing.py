"""Stage timing and annotation for ``Page.trace``.

The orchestrator opens a stage around every component call; the component
(or the LLM backend under it) may annotate the open stage with what only it
knows (model id, token usage, cache hit) without that crossing its interface::

    from storefront_sdk.tracing import annotate
    annotate(model_id="smollm2-135m", prompt_tokens=312, completion_tokens=40)

Stages live in a :mod:`contextvars` variable, so concurrent placements, threads
started with ``asyncio.to_thread`` and ``build_many`` each see their own stage.
Outside a stage, ``annotate`` does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .types import StageRecord, Trace

__all__ = ["annotate", "current_stage", "event", "stage"]

_CURRENT: ContextVar[StageRecord | None] = ContextVar("storefront_stage", default=None)
_TRACE: ContextVar[tuple[Trace, int | None] | None] = ContextVar("storefront_trace", default=None)

_SUMMED = ("prompt_tokens", "completion_tokens", "cost")


def current_stage() -> StageRecord | None:
    """The stage being recorded in this context, if any."""
    return _CURRENT.get()


def annotate(**fields: Any) -> None:
    """Record facts on the current stage.

    Token counts and cost add up over several calls; ``cache_hit`` stays True
    only if every call in the stage was a hit; other known fields overwrite;
    unknown keys go into ``details``.
    """
    rec = _CURRENT.get()
    if rec is None:
        return
    for key, value in fields.items():
        if value is None:
            continue
        if key in _SUMMED:
            old = getattr(rec, key)
            setattr(rec, key, value if old is None else old + value)
        elif key == "cache_hit":
            rec.cache_hit = bool(value) if rec.cache_hit is None else (rec.cache_hit and value)
        elif key in StageRecord.model_fields and key not in ("stage", "details"):
            setattr(rec, key, value)
        else:
            rec.details[key] = value


def event(kind: str, message: str, **data: Any) -> None:
    """Append a :class:`~storefront_sdk.types.TraceEvent` to the trace of the open stage.

    For facts a component must not keep silent (a cache entry refused or
    discarded ...). The event carries the stage's placement. Outside a stage,
    it does nothing.
    """
    current = _TRACE.get()
    if current is None:
        return
    trace, placement = current
    trace.add_event(kind, message, placement=placement, **data)


@contextmanager
def stage(
    trace: Trace, name: str, *, component: object = None, placement: int | None = None
) -> Iterator[StageRecord]:
    """Time a stage and append its record to ``trace`` (also when it raises)."""
    rec = StageRecord(
        stage=name,
        component=type(component).__name__ if component is not None else "",
        placement=placement,
    )
    token = _CURRENT.set(rec)
    trace_token = _TRACE.set((trace, placement))
    start = time.perf_counter()
    try:
        yield rec
    except BaseException as exc:
        if rec.error is None:
            rec.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        rec.duration_ms = (time.perf_counter() - start) * 1000.0
        _CURRENT.reset(token)
        _TRACE.reset(trace_token)
        trace.stages.append(rec)
