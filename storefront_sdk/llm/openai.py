"""An LLM backend for any OpenAI-compatible chat-completions server.

Works against OpenAI, vLLM, SGLang and llama.cpp's server. One request and
response protocol is written once (:meth:`OpenAICompatibleLLM._dialogue`, a
generator that yields HTTP requests and receives replies); ``generate`` drives
it with a pooled ``httpx.Client`` and ``agenerate`` with a pooled
``httpx.AsyncClient``, so the sync and async paths cannot drift apart.

What happens on one call::

    build request (messages + response_format from the output spec)
      └─ POST /chat/completions ── tenacity: 429 / 5xx / timeout / connection error
                                   -> back off (exponential + jitter, or Retry-After) and retry
                                   other 4xx -> FatalBackendError, no retry
      └─ server rejects json_schema (response_format="auto")
                                   -> switch to {"type": "json_object", "schema": ...}, remember it
      └─ output.parse(content) fails -> re-ask with the bad answer and the error (max_reasks)
                                   -> still invalid: OutputValidationError

The API key comes from the argument, ``STOREFRONT_LLM_API_KEY`` or
``OPENAI_API_KEY``. It is sent as a bearer token and nowhere else: not in
``repr``, logs, ``fingerprint`` (cache keys), traces or error messages.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import ssl
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from ..exceptions import (
    BackendTimeoutError,
    ConfigurationError,
    FatalBackendError,
    OutputValidationError,
    RetryableBackendError,
)
from ..tracing import annotate
from .base import LLM, ChatMessage, LLMResult, LLMUsage, OutputSpec, Structured
from .transport import AsyncHTTP11Transport

__all__ = ["OpenAICompatibleLLM", "ResponseFormat"]

T = TypeVar("T")

ResponseFormat = Literal["json_schema", "json_object", "auto"]
"""How structured output is requested: OpenAI/vLLM/SGLang style, llama.cpp style, or detect."""

logger = logging.getLogger("storefront_sdk.llm.http")

_API_KEY_ENV = ("STOREFRONT_LLM_API_KEY", "OPENAI_API_KEY")
_POOL_SHARD = 16
"""Most connections per httpcore pool, used only when a proxy is configured (otherwise the
async side runs on :class:`~storefront_sdk.llm.transport.AsyncHTTP11Transport`).
httpcore's pool does O(connections^2) bookkeeping per request (encode/httpcore#1035):
128 connections in one pool cost ~80 ms of CPU per page in ``build_many``."""
_REASK = (
    "Your previous answer was rejected: {error}. "
    "Answer again with JSON only, matching the required schema exactly."
)


class _Secret:
    """Holds a secret so that printing the holder never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass(frozen=True)
class _Reply:
    """One successful HTTP exchange, reduced to what the dialogue needs."""

    content: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    attempts: int


@dataclass
class _AsyncIO:
    """One event loop's async I/O: a transport called directly or, behind a proxy, clients."""

    loop: asyncio.AbstractEventLoop
    transport: httpx.AsyncBaseTransport | None = None
    owned: bool = False
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    loads: list[int] = field(default_factory=list)
    closed: bool = False


def _encode(body: dict[str, Any]) -> bytes:
    """The request body as httpx's ``json=`` would encode it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class _FormatRejected(FatalBackendError):
    """The server refused the ``response_format`` shape we sent (400/422 naming it)."""


class OpenAICompatibleLLM(LLM):
    """Chat completions over HTTP with structured output, retries and re-asking.

    Construction stores parameters only; clients are created on first use and
    pooled (``max_connections``). Use it as a context manager, or call
    ``close()`` / ``aclose()``, to release connections.
    """

    concurrent = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        response_format: ResponseFormat = "json_schema",
        max_reasks: int = 1,
        prices: Mapping[str, tuple[float, float]] | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 32,
        default_max_tokens: int = 512,
        temperature: float = 0.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not base_url:
            raise ConfigurationError(
                "OpenAICompatibleLLM needs a base_url, e.g. http://localhost:8000/v1"
            )
        if not model:
            raise ConfigurationError("OpenAICompatibleLLM needs a model name")
        if response_format not in ("json_schema", "json_object", "auto"):
            raise ConfigurationError(
                "response_format must be 'json_schema', 'json_object' or 'auto', "
                f"got {response_format!r}"
            )
        if max_retries < 0 or max_reasks < 0:
            raise ConfigurationError("max_retries and max_reasks must be >= 0")
        if timeout <= 0 or max_connections < 1:
            raise ConfigurationError("timeout must be > 0 and max_connections >= 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.response_format: ResponseFormat = response_format
        self.max_reasks = max_reasks
        self.prices = dict(prices or {})
        self.max_connections = max_connections
        self.default_max_tokens = default_max_tokens
        self.temperature = temperature
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        key = api_key or next((os.environ[v] for v in _API_KEY_ENV if os.environ.get(v)), None)
        self._api_key = _Secret(key) if key else None
        self._transport = transport
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            async_transport = transport  # e.g. httpx.MockTransport serves both
        self._async_transport = async_transport
        self._sleep = sleep
        self._async_sleep = async_sleep
        # "auto" resolves to the first format the server accepted; None until then.
        self._detected_format: Literal["json_schema", "json_object"] | None = None
        self._client: httpx.Client | None = None
        # Async I/O of the event loop in use (see _async_io).
        self._aio: _AsyncIO | None = None
        self._url = httpx.URL(f"{self.base_url}/chat/completions")
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._ssl: ssl.SSLContext | None = None  # shared by every client: CA bundle loaded once
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, **kwargs: Any) -> OpenAICompatibleLLM:
        """Build from ``STOREFRONT_LLM_BASE_URL`` and ``STOREFRONT_LLM_MODEL`` (+ key vars)."""
        base_url = os.environ.get("STOREFRONT_LLM_BASE_URL")
        model = os.environ.get("STOREFRONT_LLM_MODEL")
        if not base_url or not model:
            raise ConfigurationError(
                "set STOREFRONT_LLM_BASE_URL and STOREFRONT_LLM_MODEL to configure the HTTP LLM"
            )
        return cls(base_url, model, **kwargs)

    # ------------------------------------------------------------------ identity

    def __repr__(self) -> str:
        key = "'***'" if self._api_key is not None else "None"
        return (
            f"{type(self).__name__}(base_url={_public_url(self.base_url)!r}, model={self.model!r}, "
            f"api_key={key}, response_format={self.response_format!r})"
        )

    @property
    def fingerprint(self) -> str:
        """Model and server (credentials and query string stripped): what determines outputs."""
        return f"{self.model}@{_public_url(self.base_url)}"

    @property
    def active_response_format(self) -> Literal["json_schema", "json_object"]:
        """The request shape the next call will use (``auto`` resolves after the first call)."""
        if self.response_format != "auto":
            return self.response_format
        return self._detected_format or "json_schema"

    # ------------------------------------------------------------------ clients

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
        return headers

    def _limits(self, connections: int | None = None) -> httpx.Limits:
        n = connections or self.max_connections
        return httpx.Limits(max_connections=n, max_keepalive_connections=n)

    def _verify(self) -> ssl.SSLContext:
        """A shared SSL context: loading the CA bundle costs ~40 ms per client otherwise."""
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = httpx.Client(
                    base_url=self.base_url,
                    headers=self._headers(),
                    timeout=self.timeout,
                    limits=self._limits(),
                    transport=self._transport,
                    verify=self._verify() if self._transport is None else True,
                )
            return self._client

    def _async_io(self) -> _AsyncIO:
        """This event loop's async I/O: a transport to call directly, or (proxy) clients.

        Pooled connections belong to one event loop: a new loop (e.g. a second
        ``asyncio.run``) gets its own.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            io = self._aio
            if io is None or io.loop is not loop or io.closed:
                io = self._aio = self._new_async_io(loop)
            return io

    def _new_async_io(self, loop: asyncio.AbstractEventLoop) -> _AsyncIO:
        if self._async_transport is not None:  # the caller's transport keeps its own pool
            return _AsyncIO(loop, transport=self._async_transport)
        if not _env_proxy(self.base_url):
            transport = AsyncHTTP11Transport(
                max_connections=self.max_connections, ssl_context=self._verify()
            )
            return _AsyncIO(loop, transport=transport, owned=True)
        # A proxy: httpx's client mounts it over httpcore, whose pool does O(connections^2)
        # bookkeeping per request (encode/httpcore#1035): shards of <= _POOL_SHARD.
        shards = -(-self.max_connections // _POOL_SHARD)
        base, extra = divmod(self.max_connections, shards)
        clients = [
            httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers(),
                timeout=self.timeout,
                limits=self._limits(base + (1 if i < extra else 0)),
                verify=self._verify(),
            )
            for i in range(shards)
        ]
        return _AsyncIO(loop, clients=clients, loads=[0] * shards)

    def warm_up(self) -> None:
        """Create the connection pool ahead of the first call."""
        self._sync_client()

    def close(self) -> None:
        """Close the sync client (the async one is closed by ``aclose``)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the sync client and the async connections (a transport passed in as
        ``async_transport`` stays open: it is the caller's)."""
        self.close()
        with self._lock:
            io, self._aio = self._aio, None
        if io is None:
            return
        io.closed = True
        for client in io.clients:
            await client.aclose()
        if io.owned and io.transport is not None:
            await io.transport.aclose()

    def __enter__(self) -> OpenAICompatibleLLM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> OpenAICompatibleLLM:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ public calls

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        """Ask the server, validate against ``output``, re-ask on invalid output."""
        dialogue = self._dialogue(messages, output, max_tokens=max_tokens, temperature=temperature)
        try:
            body = next(dialogue)
            while True:
                body = dialogue.send(self._exchange(body))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        """Native async twin of :meth:`generate` (same protocol, ``httpx.AsyncClient``)."""
        dialogue = self._dialogue(messages, output, max_tokens=max_tokens, temperature=temperature)
        try:
            body = next(dialogue)
            while True:
                body = dialogue.send(await self._aexchange(body))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ the protocol (I/O free)

    def _dialogue(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None,
        temperature: float | None,
    ) -> Generator[dict[str, Any], _Reply | _FormatRejected, LLMResult[T]]:
        """Yield request bodies, receive replies; return the validated result.

        Shared by ``generate`` and ``agenerate``: all decisions (format fallback,
        re-asking, usage accounting, tracing) live here.
        """
        if not messages:
            raise ConfigurationError("generate() needs at least one message")
        history: list[dict[str, str]] = [{"role": m.role, "content": m.content} for m in messages]
        schema = output.json_schema()
        name = output.model.__name__ if isinstance(output, Structured) else type(output).__name__
        prompt_tokens = completion_tokens = attempts = 0
        start = time.perf_counter()
        last_error: OutputValidationError | None = None
        for _ask in range(self.max_reasks + 1):
            while True:
                fmt = self.active_response_format
                body = {
                    "model": self.model,
                    "messages": list(history),
                    "max_tokens": max_tokens if max_tokens is not None else self.default_max_tokens,
                    "temperature": temperature if temperature is not None else self.temperature,
                    "response_format": _response_format(fmt, _schema_name(name), schema),
                }
                outcome = yield body
                if isinstance(outcome, _FormatRejected):
                    if self.response_format == "auto" and fmt == "json_schema":
                        logger.info(
                            "%s rejected response_format json_schema; using json_object + schema",
                            _public_url(self.base_url),
                        )
                        self._detected_format = "json_object"
                        continue
                    hint = " (try response_format='auto')" if self.response_format != "auto" else ""
                    raise FatalBackendError(f"{outcome}{hint}")
                break
            if self.response_format == "auto" and self._detected_format is None:
                self._detected_format = fmt
            prompt_tokens += outcome.prompt_tokens
            completion_tokens += outcome.completion_tokens
            attempts += outcome.attempts
            annotate(
                model_id=self.model_id,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                cost=self._cost(outcome.prompt_tokens, outcome.completion_tokens),
                cache_hit=False,
            )
            raw = outcome.content or ""
            try:
                if outcome.content is None:
                    raise OutputValidationError("the model returned no content", raw="")
                value = output.parse(raw)
            except OutputValidationError as exc:
                if outcome.finish_reason == "length":
                    exc = OutputValidationError(f"{exc} (output cut off at max_tokens)", raw=raw)
                last_error = exc
                logger.info("invalid output from %s: %s", self.model_id, exc)
                history.append({"role": "assistant", "content": raw})
                history.append({"role": "user", "content": _REASK.format(error=exc)})
                continue
            usage = LLMUsage(
                model_id=self.model_id,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                latency_ms=(time.perf_counter() - start) * 1000.0,
                cost=self._cost(prompt_tokens, completion_tokens),
                attempts=attempts,
            )
            return LLMResult(value=value, usage=usage, raw=raw)
        assert last_error is not None
        raise OutputValidationError(
            f"{self.model_id} gave invalid output {self.max_reasks + 1} time(s): {last_error}",
            raw=last_error.raw,
        )

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        price = self.prices.get(self.model)
        if price is None:
            return None
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1000.0

    # ------------------------------------------------------------------ HTTP with retries

    def _retry_options(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": self._wait,
            "retry": retry_if_exception_type(RetryableBackendError),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def _exchange(self, body: dict[str, Any]) -> _Reply | _FormatRejected:
        client = self._sync_client()
        content = _encode(body)
        for attempt in Retrying(sleep=self._sleep, **self._retry_options()):
            with attempt:
                try:
                    response = client.post("chat/completions", content=content)
                except httpx.TransportError as exc:
                    raise self._transport_error(exc) from None
                return self._interpret(response, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _aexchange(self, body: dict[str, Any]) -> _Reply | _FormatRejected:
        io = self._async_io()
        content = _encode(body)
        async for attempt in AsyncRetrying(sleep=self._async_sleep, **self._retry_options()):
            with attempt:
                try:
                    response = await self._apost(io, content)
                except httpx.TransportError as exc:
                    raise self._transport_error(exc) from None
                return self._interpret(response, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _apost(self, io: _AsyncIO, content: bytes) -> httpx.Response:
        """POST straight to the transport: none of the client's redirect, cookie and auth
        machinery, which a JSON API call does not use (it was a third of the cost)."""
        if io.transport is not None:
            request = httpx.Request(
                "POST",
                self._url,
                headers=self._headers(),
                content=content,
                extensions={"timeout": self._timeouts},
            )
            response = await io.transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
            return response
        index = min(range(len(io.clients)), key=io.loads.__getitem__)
        io.loads[index] += 1
        try:
            return await io.clients[index].post("chat/completions", content=content)
        finally:
            io.loads[index] -= 1

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server sent one (capped), else exponential backoff with jitter."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RetryableBackendError) and exc.retry_after is not None:
            return max(0.0, min(exc.retry_after, self.max_retry_after))
        exponential = self.backoff_initial * 2.0 ** (state.attempt_number - 1)
        jitter = random.uniform(0.0, self.backoff_initial)
        return min(self.backoff_max, exponential + jitter)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning(
            "%s attempt %d/%d failed (%s); retrying in %.2fs",
            self.model_id,
            state.attempt_number,
            self.max_retries + 1,
            exc,
            wait,
        )

    def _transport_error(self, exc: httpx.TransportError) -> RetryableBackendError:
        where = _public_url(self.base_url)
        if isinstance(exc, httpx.TimeoutException):
            return BackendTimeoutError(
                f"{where} did not answer within {self.timeout:g}s ({type(exc).__name__})"
            )
        return RetryableBackendError(
            f"cannot reach {where}: {type(exc).__name__}: {self._scrub(str(exc))}"
        )

    def _interpret(self, response: httpx.Response, attempt: int) -> _Reply | _FormatRejected:
        """Map an HTTP response to a reply, or raise the matching backend error."""
        status = response.status_code
        if status >= 400:
            text = self._body_excerpt(response)
            if _rejects_response_format(status, text):
                return _FormatRejected(
                    f"{self._where()} rejected response_format (HTTP {status}): {text}"
                )
            if status == 429 or status >= 500:
                raise RetryableBackendError(
                    f"{self._where()} answered HTTP {status}: {text}",
                    retry_after=_retry_after(response.headers),
                )
            raise FatalBackendError(f"{self._where()} answered HTTP {status}: {text}")
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
            content = message.get("content")
            usage = data.get("usage") or {}
            return _Reply(
                content=content if isinstance(content, str) else None,
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                attempts=attempt,
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise RetryableBackendError(
                f"{self._where()} sent a malformed chat completion: {self._body_excerpt(response)}"
            ) from None

    def _where(self) -> str:
        return f"{_public_url(self.base_url)}/chat/completions"

    def _body_excerpt(self, response: httpx.Response, limit: int = 300) -> str:
        text = response.text.strip().replace("\n", " ")
        if len(text) > limit:
            text = text[:limit] + "..."
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        """Remove the API key from text that goes into an error message."""
        if self._api_key is not None and self._api_key.reveal():
            text = text.replace(self._api_key.reveal(), "***")
        return text


def _rejects_response_format(status: int, text: str) -> bool:
    """Does this error say the server cannot take our ``response_format`` shape?

    OpenAI-style servers answer 400, FastAPI ones 422; llama-cpp-python's server
    reports its request validation error as a 500 naming the field.
    """
    if status in (400, 422):
        return "response_format" in text or "json_schema" in text
    if status == 500:
        return "response_format" in text and ("validation" in text or "json_object" in text)
    return False


def _schema_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    return cleaned[:64] or "output"


def _response_format(
    fmt: Literal["json_schema", "json_object"], name: str, schema: dict[str, Any]
) -> dict[str, Any]:
    """The ``response_format`` field in the shape the server understands."""
    if fmt == "json_object":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials sometimes hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _env_proxy(url: str) -> bool:
    """Does the environment (``HTTP_PROXY``, ``NO_PROXY``...) route ``url`` through a proxy?"""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")
