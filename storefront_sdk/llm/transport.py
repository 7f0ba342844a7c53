"""A lean HTTP/1.1 keep-alive transport for ``httpx.AsyncClient``: asyncio streams + h11.

``OpenAICompatibleLLM`` uses it for its async calls by default. httpx's own async
transport (httpcore over anyio) costs about 0.8 ms of CPU per request on these machines,
against about 0.15 ms here (``benchmarks/bench_generation_http.py --transport``
prints both). That matters once a process keeps a hundred model calls in flight: at
``build_many(concurrency=16)`` the HTTP stack was a third of the client's CPU per page.

The HTTP/1.1 framing (content length, chunked bodies, keep-alive and connection-close
rules, size limits) is h11's, the library httpcore itself uses, so this module only
pools connections and maps errors and timeouts onto httpx's exception types, which the
retry logic understands. What it does not do: HTTP/2, proxies (``OpenAICompatibleLLM``
keeps httpx's transport when the environment names a proxy for the server), and
streaming request bodies (a request body is read whole before sending; chat requests
are small).

Usable on its own::

    async with httpx.AsyncClient(transport=AsyncHTTP11Transport(max_connections=64)) as c:
        r = await c.post("http://127.0.0.1:8000/v1/chat/completions", json=body)
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any, TypeVar

import h11
import httpx

__all__ = ["AsyncHTTP11Transport"]

T = TypeVar("T")

_READ_SIZE = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024
"""A response body larger than this is refused (a chat completion is a few KiB)."""


class _Stale(Exception):
    """A pooled connection turned out closed before any byte of the response arrived."""


async def _within(
    awaitable: Awaitable[T],
    seconds: float | None,
    error: type[httpx.TimeoutException],
    request: httpx.Request,
) -> T:
    """``await awaitable``, raising ``error`` after ``seconds`` (None: no limit)."""
    if seconds is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        try:
            async with asyncio.timeout(seconds):
                return await awaitable
        except TimeoutError:
            raise error(f"timed out after {seconds:g} s", request=request) from None
    try:  # pragma: no cover - Python 3.10
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:  # pragma: no cover - Python 3.10
        raise error(f"timed out after {seconds:g} s", request=request) from None


class _Connection:
    """One TCP (or TLS) connection and its h11 state machine."""

    __slots__ = ("h11", "idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.idle_since = time.monotonic()

    def usable(self, expiry: float) -> bool:
        return (
            not self.writer.is_closing()
            and not self.reader.at_eof()
            and time.monotonic() - self.idle_since < expiry
        )

    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def close(self) -> None:
        self.writer.close()

    async def exchange(
        self, request: httpx.Request, body: bytes, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        conn = self.h11
        if conn.our_state is h11.DONE:
            conn.start_next_cycle()
        head = h11.Request(
            method=request.method,
            target=request.url.raw_path,
            headers=[(k, v) for k, v in request.headers.raw if k.lower() != b"connection"],
        )
        try:
            data = conn.send(head) or b""
            if body:
                data += conn.send(h11.Data(data=body)) or b""
            data += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        try:
            self.writer.write(data)
            await _within(self.writer.drain(), timeouts.get("write"), httpx.WriteTimeout, request)
        except OSError as exc:  # ConnectionError included
            raise _Stale(str(exc)) from None
        return await self._receive(request, timeouts.get("read"))

    async def _receive(self, request: httpx.Request, read_timeout: float | None) -> httpx.Response:
        conn = self.h11
        response: h11.Response | None = None
        chunks: list[bytes] = []
        size = 0
        received_any = False
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=request) from None
            if event is h11.NEED_DATA:
                try:
                    data = await _within(
                        self.reader.read(_READ_SIZE), read_timeout, httpx.ReadTimeout, request
                    )
                except OSError as exc:  # ConnectionError included
                    if not received_any:
                        raise _Stale(str(exc)) from None
                    raise httpx.ReadError(str(exc), request=request) from None
                if not data and not received_any:
                    raise _Stale("server closed the connection")
                received_any = True
                try:
                    conn.receive_data(data)  # b"" tells h11 about EOF
                except h11.RemoteProtocolError as exc:
                    raise httpx.RemoteProtocolError(str(exc), request=request) from None
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > _MAX_BODY:
                    raise httpx.RemoteProtocolError(
                        f"response body over {_MAX_BODY} bytes", request=request
                    )
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed mid-response
                raise httpx.RemoteProtocolError(
                    "server disconnected before the response was complete", request=request
                )
        assert response is not None
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers.raw_items(),
            stream=httpx.ByteStream(b"".join(chunks)),
            request=request,
            extensions={
                "http_version": b"HTTP/" + response.http_version,
                "reason_phrase": response.reason,
            },
        )


class AsyncHTTP11Transport(httpx.AsyncBaseTransport):
    """Pooled HTTP/1.1 keep-alive connections on asyncio streams, framed by h11.

    ``max_connections`` bounds the requests in flight (and so the open connections);
    a request waits up to the ``pool`` timeout for a free slot. Idle connections are
    kept per origin (at most ``max_keepalive_connections``) for ``keepalive_expiry``
    seconds. A request whose pooled connection turns out to have been closed by the
    server before any response byte is sent again on a fresh connection, once.
    Like every asyncio object it belongs to the event loop that first uses it.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self.max_connections = max_connections
        self.max_keepalive_connections = (
            max_connections if max_keepalive_connections is None else max_keepalive_connections
        )
        self.keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("transport is closed", request=request)
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        body = await request.aread()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        await _within(self._slots.acquire(), timeouts.get("pool"), httpx.PoolTimeout, request)
        try:
            for attempt in (1, 2):
                conn, reused = await self._connection(origin, request, timeouts)
                try:
                    response = await conn.exchange(request, body, timeouts)
                except _Stale as exc:
                    conn.close()
                    if reused and attempt == 1:
                        continue  # the server had closed an idle connection: a fresh one
                    raise httpx.RemoteProtocolError(
                        f"server disconnected without sending a response ({exc})",
                        request=request,
                    ) from None
                except BaseException:
                    conn.close()
                    raise
                self._release(origin, conn)
                return response
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._slots.release()

    async def _connection(
        self, origin: tuple[str, str, int], request: httpx.Request, timeouts: dict[str, Any]
    ) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable(self.keepalive_expiry):
                return conn, True
            conn.close()
        scheme, host, port = origin
        tls: dict[str, Any] = {}
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            tls = {"ssl": self._ssl_context, "server_hostname": host}
        try:
            reader, writer = await _within(
                asyncio.open_connection(host, port, limit=_READ_SIZE, **tls),
                timeouts.get("connect"),
                httpx.ConnectTimeout,
                request,
            )
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from None
        return _Connection(reader, writer), False

    def _release(self, origin: tuple[str, str, int], conn: _Connection) -> None:
        if self._closed or not conn.reusable():
            conn.close()
            return
        idle = self._idle.setdefault(origin, deque())
        if len(idle) >= self.max_keepalive_connections:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
