"""Page deadlines: how much time the page being built has left, visible to every component.

The storefront opens a deadline around each page (``StorefrontConfig.page_budget_s``);
anything underneath it (an HTTP call, a retry's back-off, a ``Retry-After`` wait) asks
:func:`remaining` and never plans to wait longer than that::

    from storefront_sdk.deadline import remaining
    left = remaining()            # seconds, or None when no deadline is set
    timeout = total_timeout if left is None else min(total_timeout, left)

Deadlines live in a :mod:`contextvars` variable, like trace stages, so concurrent pages
in ``build_many`` and threads started with ``asyncio.to_thread`` each see their own.
Nested deadlines never extend an outer one: the earlier end wins.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["deadline", "expired", "remaining"]

_END: ContextVar[float | None] = ContextVar("storefront_deadline", default=None)


def remaining() -> float | None:
    """Seconds left before the current deadline (never below 0), or None without one."""
    end = _END.get()
    if end is None:
        return None
    return max(0.0, end - time.monotonic())


def expired() -> bool:
    """True when a deadline is set and has passed."""
    left = remaining()
    return left is not None and left <= 0.0


@contextmanager
def deadline(seconds: float | None) -> Iterator[float | None]:
    """Run the block under a deadline ``seconds`` from now (None: keep the outer one).

    Yields the absolute end on :func:`time.monotonic`'s clock, or None.
    """
    outer = _END.get()
    if seconds is None:
        yield outer
        return
    end = time.monotonic() + max(0.0, seconds)
    if outer is not None:
        end = min(end, outer)
    token = _END.set(end)
    try:
        yield end
    finally:
        _END.reset(token)
