"""One async HTTP client per running event loop, closed when that loop shuts down.

Connections belong to the loop that opened them, so a backend used from several
``asyncio.run`` calls (every ``build_many``) needs one client per loop, and each must
be closed on its own loop. :class:`LoopClients` does that for the HTTP backends
(:class:`~storefront_sdk.llm.openai.OpenAICompatibleLLM`,
:class:`~storefront_sdk.filtering.scorer.HttpScorer`); the request policy they share
lives in :mod:`storefront_sdk.http_policy`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["LoopClients"]

C = TypeVar("C")


@dataclass
class _Entry(Generic[C]):
    loop: weakref.ref[asyncio.AbstractEventLoop]
    client: C
    closer: Any


class LoopClients(Generic[C]):
    """One async client per running event loop, closed when that loop shuts down.

    Connections belong to the loop that opened them, so every loop (each ``asyncio.run``)
    gets its own client from ``factory``. The client is closed by an async generator
    parked on its loop: ``asyncio.run`` (``loop.shutdown_asyncgens()``) finalises it, so
    no connection outlives its loop and nothing warns about unclosed transports.
    """

    def __init__(self, factory: Callable[[], C], close: Callable[[C], Awaitable[None]]) -> None:
        self._factory = factory
        self._close = close
        self._entries: dict[int, _Entry[C]] = {}
        self._lock = threading.Lock()

    async def get(self) -> C:
        loop = asyncio.get_running_loop()
        entry = self._entries.get(id(loop))
        if entry is not None and entry.loop() is loop:
            return entry.client
        client = self._factory()
        closer = self._closer(id(loop), client)
        await closer.__anext__()  # registers with the loop's async-generator hooks
        with self._lock:
            self._entries[id(loop)] = _Entry(weakref.ref(loop), client, closer)
        return client

    async def _closer(self, key: int, client: C) -> AsyncIterator[None]:
        try:
            yield
        finally:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.client is client:
                    del self._entries[key]
            await self._close(client)

    async def aclose(self) -> None:
        """Close the running loop's client now (other loops' clients close with them)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._entries.get(id(loop))
        if entry is not None and entry.loop() is loop:
            await entry.closer.aclose()
