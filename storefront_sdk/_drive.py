"""How a cascade's component calls are run: the call type, the two drivers, contract checks.

A cascade (:mod:`._cascade`) is a generator that yields :class:`Call` (one typed,
bound component call and its async twin -- no dispatch by method name) and
:class:`Parallel` (sub-cascades); :func:`drive_sync` performs calls with the sync
methods, :func:`drive_async` awaits the async twins, running :class:`Parallel`
steps concurrently and cancelling ``cancellable`` calls at the page deadline.
Each call is timed into the page's trace as a stage; an exception is thrown back
into the cascade, which applies its failure policy. The ``_check_*`` functions are
the contract checks the cascade runs on component outputs.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .deadline import expired, remaining
from .exceptions import ComponentError
from .interfaces import Component
from .tracing import stage
from .types import RetrievedProduct, ScoredProduct, StageRecord, Theme, Trace

__all__ = [
    "Call",
    "Parallel",
    "Steps",
    "check_hits",
    "check_ranked",
    "check_scores",
    "check_themes",
    "drive_async",
    "drive_sync",
    "error_text",
    "validated",
]

Steps = Generator[Any, Any, Any]


def error_text(exc: BaseException) -> str:
    """``"ErrorType: message"``, bounded, for traces."""
    return f"{type(exc).__name__}: {exc}"[:500]


@dataclass
class Call:
    """One component call requested by the cascade; a driver performs it.

    ``run`` and ``arun`` are the component's own sync and async methods bound to
    their arguments. ``cancellable`` calls (those that may call a model) are
    cancelled at the page deadline by the async driver.
    """

    stage: str
    component: Component
    run: Callable[[], Any]
    arun: Callable[[], Awaitable[Any]]
    placement: int | None = None
    fallback_reason: str | None = None
    cancellable: bool = False


@dataclass
class Parallel:
    """Sub-cascades the async driver runs concurrently (the sync driver in order)."""

    steps: list[Generator[Any, Any, Any]]


# -- drivers ------------------------------------------------------------------------------
def drive_sync(steps: Steps, trace: Trace) -> Any:
    """Run a cascade calling each component's sync method."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        if isinstance(step, Parallel):
            value = [drive_sync(s, trace) for s in step.steps]
            continue
        try:
            with stage(
                trace, step.stage, component=step.component, placement=step.placement
            ) as rec:
                rec.fallback_reason = step.fallback_reason
                result = step.run()
            value = (result, rec)
        except Exception as exc:
            error = exc


async def drive_async(steps: Steps, trace: Trace) -> Any:
    """Run a cascade awaiting each component's async twin; :class:`Parallel` steps run
    concurrently; cancellable calls are cancelled at the page deadline."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        if isinstance(step, Parallel):
            value = list(await asyncio.gather(*(drive_async(s, trace) for s in step.steps)))
            continue
        try:
            with stage(
                trace, step.stage, component=step.component, placement=step.placement
            ) as rec:
                rec.fallback_reason = step.fallback_reason
                left = remaining() if step.cancellable else None
                if left is None:
                    result = await step.arun()
                else:
                    try:
                        result = await asyncio.wait_for(step.arun(), left)
                    except asyncio.TimeoutError:
                        if expired():
                            trace.add_event(
                                "deadline",
                                f"page deadline passed: {step.component.name} cancelled",
                                placement=step.placement,
                                stage=step.stage,
                            )
                        raise
            value = (result, rec)
        except Exception as exc:
            error = exc


# -- contract checks ------------------------------------------------------------------------
def validated(rec: StageRecord, check: Callable[..., Any], *args: Any) -> Any:
    """Run a contract check on a component's output; a violation is recorded on its stage."""
    try:
        return check(*args)
    except Exception as exc:
        rec.error = error_text(exc)
        raise


def check_themes(themes: Any, name: str) -> list[Theme]:
    if not isinstance(themes, list) or not all(isinstance(t, Theme) for t in themes):
        raise ComponentError(f"{name}.generate must return list[Theme]")
    return themes


def check_hits(found: Any, name: str) -> list[RetrievedProduct]:
    if not isinstance(found, list):
        raise ComponentError(f"{name}.retrieve_products must return list[RetrievedProduct]")
    return found


_product_id = operator.attrgetter("product.id")


def check_ranked(
    ranked: Any, candidates: Sequence[ScoredProduct], name: str
) -> list[ScoredProduct]:
    if (
        not isinstance(ranked, list)
        or len(ranked) != len(candidates)
        or set(map(_product_id, ranked)) != set(map(_product_id, candidates))
    ):
        raise ComponentError(f"{name}.rank must return the same products it was given")
    return ranked


def check_scores(scores: Any, n: int, name: str) -> list[float]:
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
