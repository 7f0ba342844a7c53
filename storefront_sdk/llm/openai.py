"""An LLM backend for any OpenAI-compatible chat-completions server.

Works against OpenAI, vLLM, SGLang and llama.cpp's server. One request and
response protocol is written once (:meth:`OpenAICompatibleLLM._dialogue`, a
generator that yields request bodies and receives replies); ``generate`` drives
it with an ``httpx.Client`` and ``agenerate`` with an ``httpx.AsyncClient`` (on
aiohttp's connection pool, see ``docs/llm/http.md``), so the sync and async paths
cannot drift apart. Pass your own clients (``http_client=``, ``async_http_client=``)
and their auth, event hooks, default headers, proxies and TLS settings apply.

What happens on one call::

    build request (messages + response_format from the output spec)
      └─ POST /chat/completions ── storefront_sdk.http_policy: a total time limit per
                                   attempt (capped by the page deadline), the body capped,
                                   429 / 5xx / timeout / connection error -> back off
                                   (exponential + jitter, or a short Retry-After) and retry;
                                   other 4xx -> FatalBackendError, no retry
      └─ server rejects json_schema (response_format="auto")
                                   -> switch to {"type": "json_object", "schema": ...}, remember it
      └─ output.parse(content) fails -> re-ask with an excerpt of the bad answer and the error
                                   (max_reasks) -> still invalid: OutputValidationError

The API key comes from the argument, ``STOREFRONT_LLM_API_KEY`` or
``OPENAI_API_KEY``. It is sent as a bearer token and nowhere else: it is registered
with :mod:`storefront_sdk._secrets`, which scrubs it (raw, JSON-escaped, URL-encoded,
base64) from every error, re-ask, log line and completion before anything is cut.

It stays one module because it is one backend: the sync and async paths share the one
dialogue generator, which splitting would separate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from .._secrets import excerpt, guard_logger, register, scrub
from ..exceptions import (
    ConfigurationError,
    FatalBackendError,
    OutputValidationError,
    RetryableBackendError,
)
from ..http_policy import HttpPolicy, HttpReply, LoopClients, public_url, status_error, validate_url
from ..tracing import annotate
from .base import LLM, ChatMessage, LLMResult, LLMUsage, OutputSpec, Structured

__all__ = ["OpenAICompatibleLLM", "ResponseFormat"]

T = TypeVar("T")
C = TypeVar("C", httpx.Client, httpx.AsyncClient)

ResponseFormat = Literal["json_schema", "json_object", "auto"]
"""How structured output is requested: OpenAI/vLLM/SGLang style, llama.cpp style, or detect."""

logger = guard_logger(logging.getLogger("storefront_sdk.llm.http"))

_API_KEY_ENV = ("STOREFRONT_LLM_API_KEY", "OPENAI_API_KEY")
_REASK = (
    "Your previous answer was rejected: {error}. "
    "Answer again with JSON only, matching the required schema exactly."
)
_MAX_TOKENS_COUNT = 2**53
"""Token counts above this (or not integers) are junk: counted as unknown (0)."""


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


def _encode(body: dict[str, Any]) -> bytes:
    """The request body as httpx's ``json=`` would encode it."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class _SetCookieJar(httpx.Cookies):
    """The client's cookie store, skipping the cookie parser when a response sets none.

    httpx hands every response to ``http.cookiejar`` (a ``urllib`` request and response
    built per call: about a tenth of the client's CPU per model call), although model
    servers rarely set cookies. A response with a ``Set-Cookie``/``Set-Cookie2`` header is
    stored exactly as before; any other has nothing to store.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        for key, _ in response.headers.raw:
            if key.lower() in (b"set-cookie", b"set-cookie2"):
                super().extract_cookies(response)
                return


def _fast_cookies(client: C) -> C:
    """``client`` with :class:`_SetCookieJar` over its cookie jar (clients we create only)."""
    jar = getattr(client, "_cookies", None)
    if type(jar) is httpx.Cookies:  # the attribute httpx 0.28 reads; else leave it be
        client._cookies = _SetCookieJar(jar.jar)  # type: ignore[union-attr]
    return client


class _FormatRejected(FatalBackendError):
    """The server refused the ``response_format`` shape we sent (400/422 naming it)."""


class OpenAICompatibleLLM(LLM):
    """Chat completions over HTTP with structured output, retries and re-asking.

    Construction checks the parameters and stores them; clients are created on first
    use (one ``httpx.Client``, and one ``httpx.AsyncClient`` per event loop, closed when
    that loop shuts down). Clients you pass in are used as they are and never closed
    here. Use the backend as a context manager, or call ``close()`` / ``aclose()``.
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
        http_client: httpx.Client | httpx.AsyncClient | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | str | bool = True,
        cert: str | tuple[str, str] | tuple[str, str, str] | None = None,
        proxy: str | httpx.Proxy | None = None,
        max_connections: int = 32,
        default_max_tokens: int = 512,
        temperature: float = 0.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = 60.0,
        max_response_bytes: int = 8 * 1024 * 1024,
        max_reask_chars: int = 4_000,
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
        if timeout <= 0 or max_connections < 1 or max_reask_chars < 1:
            raise ConfigurationError(
                "timeout must be > 0, max_connections >= 1 and max_reask_chars >= 1"
            )
        validate_url(base_url, "OpenAICompatibleLLM base_url")
        if not isinstance(http_client, (httpx.Client, httpx.AsyncClient, type(None))):
            raise ConfigurationError("http_client must be an httpx.Client or httpx.AsyncClient")
        if isinstance(http_client, httpx.AsyncClient):
            if async_http_client is not None:
                raise ConfigurationError("pass one async client: http_client or async_http_client")
            http_client, async_http_client = None, http_client
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.response_format: ResponseFormat = response_format
        self.max_reasks = max_reasks
        self.max_reask_chars = max_reask_chars
        self.prices = dict(prices or {})
        self.max_connections = max_connections
        self.default_max_tokens = default_max_tokens
        self.temperature = temperature
        key = api_key or next((os.environ[v] for v in _API_KEY_ENV if os.environ.get(v)), None)
        self._api_key = _Secret(key) if key else None
        register(key)
        for client in (http_client, async_http_client):
            if client is not None:
                register(client.headers.get("authorization"))
        self.policy = HttpPolicy(
            timeout=timeout,
            max_retries=max_retries,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            max_retry_after=max_retry_after,
            max_response_bytes=max_response_bytes,
            sleep=sleep,
            async_sleep=async_sleep,
            name=model,
            log=logger,
        )
        self._user_client = http_client
        self._user_aclient = async_http_client
        self._transport = transport
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            async_transport = transport  # e.g. httpx.MockTransport serves both
        self._async_transport = async_transport
        self._verify = verify
        self._cert = cert
        self._proxy = proxy
        # "auto" resolves to the first format the server accepted; None until then.
        self._detected_format: Literal["json_schema", "json_object"] | None = None
        self._where_for: tuple[str | None, str] = (None, "")
        self._client: httpx.Client | None = None
        self._aclients: LoopClients[httpx.AsyncClient] = LoopClients(
            self._new_async_client, _aclose
        )
        self._url = httpx.URL(f"{self.base_url}/chat/completions")  # parsed once
        self._ssl: ssl.SSLContext | None = None  # shared by our clients: CA bundle loaded once
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
            f"{type(self).__name__}(base_url={public_url(self.base_url)!r}, model={self.model!r}, "
            f"api_key={key}, response_format={self.response_format!r})"
        )

    @property
    def fingerprint(self) -> str:
        """Model and server (credentials and query string stripped): what determines outputs."""
        return f"{self.model}@{public_url(self.base_url)}"

    @property
    def backoff_initial(self) -> float:
        return self.policy.backoff_initial

    @property
    def backoff_max(self) -> float:
        return self.policy.backoff_max

    @property
    def max_retry_after(self) -> float:
        return self.policy.max_retry_after

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

    def _limits(self) -> httpx.Limits:
        n = self.max_connections
        return httpx.Limits(max_connections=n, max_keepalive_connections=n)

    def _tls(self) -> ssl.SSLContext | bool:
        """One SSL context for every client we create (loading the CA bundle costs ~40 ms
        per client otherwise): ``verify`` (True: certifi's CAs, or ``SSL_CERT_FILE`` /
        ``SSL_CERT_DIR``; a CA bundle path; your context; False: no checks) plus the
        client certificate ``cert``."""
        if self._verify is False and self._cert is None:
            return False
        with self._lock:
            if self._ssl is None:
                verify = self._verify
                if isinstance(verify, ssl.SSLContext):
                    context = verify
                elif isinstance(verify, str):
                    context = ssl.create_default_context(cafile=verify)
                else:
                    context = httpx.create_ssl_context(verify=bool(verify))
                if self._cert is not None:
                    cert = (self._cert,) if isinstance(self._cert, str) else self._cert
                    context.load_cert_chain(*cert)
                self._ssl = context
            return self._ssl

    def _sync_client(self) -> httpx.Client:
        if self._user_client is not None:
            return self._user_client
        with self._lock:
            client = self._client
        if client is None or client.is_closed:
            tls = self._tls()
            with self._lock:
                if self._client is None or self._client.is_closed:
                    self._client = _fast_cookies(
                        httpx.Client(
                            headers=self._headers(),
                            timeout=self.timeout,
                            limits=self._limits(),
                            transport=self._transport,
                            verify=tls,
                            proxy=self._proxy,
                        )
                    )
                client = self._client
        return client

    def _new_async_client(self) -> httpx.AsyncClient:
        """Our async client for the running loop: ``httpx.AsyncClient`` on aiohttp's pool."""
        from httpx_aiohttp import HttpxAiohttpClient

        return _fast_cookies(
            HttpxAiohttpClient(
                headers=self._headers(),
                timeout=self.timeout,
                limits=self._limits(),
                transport=self._async_transport,
                verify=self._tls(),
                proxy=self._proxy,
            )
        )

    async def _async_client(self) -> httpx.AsyncClient:
        if self._user_aclient is not None:
            return self._user_aclient
        return await self._aclients.get()

    def warm_up(self) -> None:
        """Create the sync client ahead of the first call."""
        self._sync_client()

    def close(self) -> None:
        """Close the sync client this backend created (yours stays open)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the sync client and this loop's async client (clients you passed stay open).

        Without it, the async client still closes when its event loop shuts down.
        """
        self.close()
        await self._aclients.aclose()

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
                            public_url(self.base_url),
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
                # Quote a bounded excerpt: a 20 MB answer must not make a 40 MB re-ask.
                quoted = (
                    raw if len(raw) <= self.max_reask_chars else excerpt(raw, self.max_reask_chars)
                )
                history.append({"role": "assistant", "content": quoted})
                history.append(
                    {"role": "user", "content": _REASK.format(error=excerpt(str(exc), 1_000))}
                )
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

    # ------------------------------------------------------------------ HTTP (policy: retries,
    # total time limits, body caps, status mapping: storefront_sdk.http_policy)

    def _request(self, client: httpx.Client | httpx.AsyncClient, content: bytes) -> httpx.Request:
        ours = client is not self._user_client and client is not self._user_aclient
        headers = None if ours else self._headers()  # our clients carry them already
        return client.build_request("POST", self._url, content=content, headers=headers)

    def _exchange(self, body: dict[str, Any]) -> _Reply | _FormatRejected:
        client = self._sync_client()
        content = _encode(body)
        where = self._where()

        def attempt(number: int) -> _Reply | _FormatRejected:
            reply = self.policy.send(client, self._request(client, content), where=where)
            return self._interpret(reply, number)

        return self.policy.run(attempt)

    async def _aexchange(self, body: dict[str, Any]) -> _Reply | _FormatRejected:
        client = await self._async_client()
        content = _encode(body)
        where = self._where()

        async def attempt(number: int) -> _Reply | _FormatRejected:
            reply = await self.policy.asend(client, self._request(client, content), where=where)
            return self._interpret(reply, number)

        return await self.policy.arun(attempt)

    def _interpret(self, reply: HttpReply, attempt: int) -> _Reply | _FormatRejected:
        """Map an HTTP reply to a chat reply, or raise the matching backend error."""
        status = reply.status
        if status >= 400:
            text = reply.text
            if _rejects_response_format(status, text[:65536]):
                return _FormatRejected(
                    f"{self._where()} rejected response_format (HTTP {status}): {excerpt(text)}"
                )
            error = status_error(status, reply.headers, text, self._where())
            assert error is not None
            raise error
        try:
            data = json.loads(reply.body)
            choice = data["choices"][0]
            message = choice["message"]
            content = message.get("content")
            usage = data.get("usage")
            usage = usage if isinstance(usage, dict) else {}
            finish = choice.get("finish_reason")
            return _Reply(
                content=scrub(content) if isinstance(content, str) else None,
                finish_reason=finish if isinstance(finish, str) else None,
                prompt_tokens=_tokens(usage.get("prompt_tokens")),
                completion_tokens=_tokens(usage.get("completion_tokens")),
                attempts=attempt,
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
            raise RetryableBackendError(
                f"{self._where()} sent a malformed chat completion: {excerpt(reply.text)}"
            ) from None

    def _where(self) -> str:
        """The endpoint as errors and logs name it (no credentials); once per ``base_url``."""
        base, where = self._where_for
        if base is not self.base_url:
            where = f"{public_url(self.base_url)}/chat/completions"
            self._where_for = (self.base_url, where)
        return where


async def _aclose(client: httpx.AsyncClient) -> None:
    await client.aclose()


def _tokens(value: Any) -> int:
    """A token count from ``usage``; junk (``1e999``, strings, negatives) is unknown: 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return 0
        value = int(value)
    if isinstance(value, int) and 0 <= value < _MAX_TOKENS_COUNT:
        return value
    return 0


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
