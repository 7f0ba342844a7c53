"""The one HTTP policy of the SDK: time limits, retries, Retry-After, status mapping, body caps.

Shared by :class:`~storefront_sdk.llm.openai.OpenAICompatibleLLM` and
:class:`~storefront_sdk.filtering.scorer.HttpScorer`, so the two cannot drift apart::

    policy = HttpPolicy(timeout=30.0, max_retries=4)
    reply = policy.run(lambda attempt: policy.send(client, request, where="llm"))

One attempt (:meth:`HttpPolicy.send` / :meth:`HttpPolicy.asend`):

- has a **total** time limit, ``timeout`` capped by the page deadline
  (:func:`storefront_sdk.deadline.remaining`): a server trickling one byte per second
  cannot keep a call alive past it. The async path runs the whole exchange under one
  asyncio timeout; the sync path gives every read that limit, checks the clock between
  body chunks, and a watchdog shuts the socket of a new connection down when the limit
  passes (so a trickle of header bytes ends too);
- streams the body and stops at ``max_response_bytes`` (decoded bytes, counted as they
  arrive): a 500 MB answer costs at most that much memory;
- maps the outcome onto :mod:`storefront_sdk.exceptions`: 408, 409, 429 and 5xx,
  timeouts and connection errors are :class:`RetryableBackendError` (with
  ``retry_after`` when the server sent one); other 4xx are :class:`FatalBackendError`;
  error bodies are quoted as a short, scrubbed excerpt.

Retries (:meth:`HttpPolicy.run` / :meth:`HttpPolicy.arun`, with tenacity) are the only
place a request is ever sent again: at most ``max_retries`` more times, only after a
retryable error, waiting exponential back-off with jitter capped at ``backoff_max``, or
the server's ``Retry-After``. A ``Retry-After`` longer than ``max_retry_after``, or any
wait that would end past the page deadline, is not waited for: the error is raised at
once (waiting 60 s for a server that asked for a day helps nobody).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type

from ._secrets import excerpt, guard_logger
from .deadline import remaining
from .exceptions import (
    BackendTimeoutError,
    ConfigurationError,
    FatalBackendError,
    RetryableBackendError,
)
from .loop_clients import LoopClients  # re-exported: the backends import it from here

__all__ = [
    "HttpPolicy",
    "HttpReply",
    "LoopClients",
    "public_url",
    "retry_after",
    "status_error",
    "validate_url",
]

T = TypeVar("T")

logger = guard_logger(logging.getLogger("storefront_sdk.http"))

_RETRYABLE_STATUS = frozenset({408, 409, 429})
_EXCERPT_CHARS = 300
_MIN_ATTEMPT_S = 0.01
"""Below this much time left in the page, an attempt is not started."""


# -- URLs -------------------------------------------------------------------------------------


def validate_url(url: str, what: str) -> httpx.URL:
    """``url`` parsed, or :class:`ConfigurationError` naming ``what`` (never retried)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{what}: invalid URL {url!r} ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"{what}: URL must be http:// or https:// with a host, got {url!r}"
        )
    return parsed


def public_url(url: str | httpx.URL) -> str:
    """``url`` without user info, query or fragment (where credentials sometimes hide)."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<invalid url>"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# -- status and headers -----------------------------------------------------------------------


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date).

    Junk (``nan``, negative, unparsable) is ignored; ``1e999`` is infinite, so too long.
    """
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return None if math.isnan(seconds) or seconds < 0 else seconds


def status_error(
    status: int, headers: httpx.Headers, body: str, where: str
) -> RetryableBackendError | FatalBackendError | None:
    """The exception an HTTP status maps to (None for 1xx-3xx), quoting a scrubbed excerpt."""
    if status < 400:
        return None
    message = f"{where} answered HTTP {status}: {excerpt(body, _EXCERPT_CHARS)}"
    if status in _RETRYABLE_STATUS or status >= 500:
        return RetryableBackendError(message, retry_after=retry_after(headers))
    return FatalBackendError(message)


# -- one attempt ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpReply:
    """One HTTP exchange, read whole (within the body cap)."""

    status: int
    headers: httpx.Headers
    body: bytes
    encoding: str | None = None

    @property
    def text(self) -> str:
        return self.body.decode(self.encoding or "utf-8", errors="replace")


class _Watchdog:
    """Shuts down the socket of a sync request's new connection when its time is up."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = getattr(stream, "get_extra_info", lambda _: None)("socket")
            if isinstance(sock, socket.socket):
                self._sock = sock

    def _fire(self) -> None:
        self.fired = True
        sock = self._sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


@dataclass
class HttpPolicy:
    """Time limits, retries and caps for one HTTP client (see the module docstring)."""

    timeout: float = 30.0
    """Total seconds for one attempt (connect, send, headers and the whole body)."""
    max_retries: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    """A longer ``Retry-After`` is not waited for: the error is raised at once."""
    max_response_bytes: int = 8 * 1024 * 1024
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    name: str = "http"
    """Who is calling, for log lines."""
    log: logging.Logger = field(default_factory=lambda: logger)

    def __post_init__(self) -> None:
        if not self.timeout > 0 or self.max_retries < 0 or self.max_response_bytes < 1:
            raise ConfigurationError(
                "timeout must be > 0, max_retries >= 0 and max_response_bytes >= 1"
            )
        if self.backoff_initial < 0 or self.backoff_max < 0 or self.max_retry_after < 0:
            raise ConfigurationError("back-off and Retry-After limits must be >= 0")
        guard_logger(self.log)

    # -- time -------------------------------------------------------------------------------
    def attempt_timeout(self, where: str) -> float:
        """This attempt's total limit: ``timeout``, capped by what the page has left."""
        left = remaining()
        if left is None:
            return self.timeout
        if left < _MIN_ATTEMPT_S:
            raise BackendTimeoutError(f"{where}: the page's time budget is spent")
        return min(self.timeout, left)

    # -- one attempt --------------------------------------------------------------------------
    def send(self, client: httpx.Client, request: httpx.Request, *, where: str) -> HttpReply:
        """One sync attempt under a total time limit, the body capped (see module doc)."""
        limit = self.attempt_timeout(where)
        request.extensions["timeout"] = httpx.Timeout(limit).as_dict()
        end = time.monotonic() + limit
        with _Watchdog(limit) as watchdog:
            request.extensions["trace"] = watchdog.trace
            try:
                response = client.send(request, stream=True)
                try:
                    body = self._read(response.iter_bytes(), response, where, end, limit)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                if watchdog.fired:
                    raise self._timed_out(where, limit) from None
                raise self.transport_error(exc, where, limit) from None
        return HttpReply(response.status_code, response.headers, body, response.encoding)

    async def asend(
        self, client: httpx.AsyncClient, request: httpx.Request, *, where: str
    ) -> HttpReply:
        """One async attempt, the whole exchange under one asyncio timeout."""
        limit = self.attempt_timeout(where)
        request.extensions["timeout"] = httpx.Timeout(limit).as_dict()
        try:
            async with _timeout(limit):
                response = await client.send(request, stream=True)
                try:
                    chunks: list[bytes] = []
                    size = 0
                    self._check_length(response, where)
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self.max_response_bytes:
                            raise self._too_big(where)
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except asyncio.TimeoutError:
            raise self._timed_out(where, limit) from None
        except httpx.TransportError as exc:
            raise self.transport_error(exc, where, limit) from None
        except _aiohttp_errors() as exc:  # what httpx-aiohttp leaves unmapped (bad status line)
            raise RetryableBackendError(
                f"{where} broke the protocol: {type(exc).__name__}: {exc}"
            ) from None
        body = b"".join(chunks)
        return HttpReply(response.status_code, response.headers, body, response.encoding)

    def _read(
        self,
        chunks: Iterator[bytes],
        response: httpx.Response,
        where: str,
        end: float,
        limit: float,
    ) -> bytes:
        self._check_length(response, where)
        out: list[bytes] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > self.max_response_bytes:
                raise self._too_big(where)
            if time.monotonic() > end:
                raise self._timed_out(where, limit)
            out.append(chunk)
        return b"".join(out)

    def _check_length(self, response: httpx.Response, where: str) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_response_bytes:
            raise self._too_big(where)

    def _too_big(self, where: str) -> FatalBackendError:
        return FatalBackendError(
            f"{where}: response body over {self.max_response_bytes} bytes (max_response_bytes)"
        )

    def _timed_out(self, where: str, limit: float) -> BackendTimeoutError:
        return BackendTimeoutError(f"{where} did not answer within {limit:.3g}s")

    def transport_error(
        self, exc: httpx.TransportError, where: str, limit: float
    ) -> RetryableBackendError:
        """A connection-level failure as a retryable error (timeouts as timeouts).

        httpx-aiohttp reports a refused connection or a failed certificate check as
        ``ConnectTimeout``; the aiohttp error it wraps tells them apart.
        """
        cause = exc.__cause__
        if isinstance(exc, httpx.TimeoutException) and (
            cause is None or isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__
        ):
            return self._timed_out(where, limit)
        shown = cause if cause is not None and type(cause).__module__.startswith("aiohttp") else exc
        return RetryableBackendError(f"cannot reach {where}: {type(shown).__name__}: {shown}")

    # -- retries ------------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        return {
            "stop": self._stop,
            "wait": self._wait,
            "retry": retry_if_exception_type(RetryableBackendError),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def run(self, attempt: Callable[[int], T]) -> T:
        """Call ``attempt(n)`` (n = 1, 2, ...) until it returns, retrying as the policy says.

        The first attempt runs directly (most calls succeed at once, and tenacity's
        per-call bookkeeping cost more CPU than the rest of the policy); only after a
        retryable error does tenacity take over, seeing that first failure as its
        attempt 1, so stop, wait and logging decide exactly as if it had run it.
        """
        try:
            return attempt(1)
        except RetryableBackendError as exc:
            first: RetryableBackendError | None = exc
        for trial in Retrying(sleep=self.sleep, **self._options()):
            with trial:
                number = trial.retry_state.attempt_number
                if first is not None:
                    failed, first = first, None
                    raise failed
                return attempt(number)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def arun(self, attempt: Callable[[int], Awaitable[T]]) -> T:
        """The async twin of :meth:`run` (the same first attempt outside tenacity)."""
        try:
            return await attempt(1)
        except RetryableBackendError as exc:
            first: RetryableBackendError | None = exc
        async for trial in AsyncRetrying(sleep=self.async_sleep, **self._options()):
            with trial:
                number = trial.retry_state.attempt_number
                if first is not None:
                    failed, first = first, None
                    raise failed
                return await attempt(number)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _least_wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RetryableBackendError) and exc.retry_after is not None:
            return exc.retry_after
        return min(self.backoff_max, self.backoff_initial * 2.0 ** (state.attempt_number - 1))

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number > self.max_retries:
            return True
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = exc.retry_after if isinstance(exc, RetryableBackendError) else None
        if retry_after is not None and retry_after > self.max_retry_after:
            return True  # the server asks for longer than we will ever wait
        left = remaining()
        return left is not None and left <= self._least_wait(state) + _MIN_ATTEMPT_S

    def _wait(self, state: RetryCallState) -> float:
        wait = self._least_wait(state)
        exc = state.outcome.exception() if state.outcome is not None else None
        if not (isinstance(exc, RetryableBackendError) and exc.retry_after is not None):
            wait = min(self.backoff_max, wait + random.uniform(0.0, self.backoff_initial))
        left = remaining()
        return max(0.0, wait if left is None else min(wait, left))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        self.log.warning(
            "%s attempt %d/%d failed (%s); retrying in %.2fs",
            self.name,
            state.attempt_number,
            self.max_retries + 1,
            exc,
            wait,
        )


def _aiohttp_errors() -> tuple[type[BaseException], ...]:
    """aiohttp's client errors, when aiohttp is loaded (it is, once our async client runs)."""
    aiohttp = sys.modules.get("aiohttp")
    error = getattr(aiohttp, "ClientError", None)
    return (error,) if isinstance(error, type) else ()


if sys.version_info >= (3, 11):
    _timeout = asyncio.timeout
else:  # pragma: no cover - Python 3.10

    @asynccontextmanager
    async def _timeout(seconds: float) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        handle = asyncio.get_running_loop().call_later(seconds, task.cancel)
        try:
            yield
        except asyncio.CancelledError:
            if handle.cancelled() or handle.when() > asyncio.get_running_loop().time():
                raise
            raise asyncio.TimeoutError from None
        finally:
            handle.cancel()
