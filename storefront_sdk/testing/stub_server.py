"""A real, in-process OpenAI-compatible HTTP server for tests, demos and benchmarks.

``StubOpenAIServer`` listens on ``127.0.0.1`` (a free port), answers
``POST /v1/chat/completions`` and ``GET /v1/models`` over HTTP/1.1 with
keep-alive. It runs an asyncio event loop on a background thread, so hundreds of
concurrent requests each wait out ``latency`` without a thread apiece, and a
request is answered ``latency`` seconds after it arrived (plus the time to
compute the answer, which :attr:`StubOpenAIServer.service_seconds` measures)::

    with StubOpenAIServer(latency=0.2, failure_rate=0.1, seed=0) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, model="stub")
        ...
        srv.request_count, srv.failures_injected, srv.max_in_flight

Answers come from ``responder(request_json) -> str`` when given, otherwise from
:func:`sample_from_schema`, which produces JSON satisfying the request's
``response_format`` schema (either the OpenAI ``json_schema`` or the llama.cpp
``json_object`` + ``schema`` shape). Failures (429 with Retry-After, 500,
hangs past the client's timeout, malformed JSON content) are injected at
``failure_rate``, drawn from a seeded generator, so a run is reproducible.

It stays one module because it is one server: the HTTP framing, the schema sampler that
writes the answers and the fault injection all serve the same request loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["FAILURE_KINDS", "StubOpenAIServer", "sample_from_schema"]

Responder = Callable[[dict[str, Any]], str]

FAILURE_KINDS = ("rate_limit", "server_error", "timeout", "malformed")
"""What the stub can inject: 429 + Retry-After, 500, a hang, invalid JSON content."""

_FALLBACK_WORDS = (
    "fresh", "pantry", "weeknight", "breakfast", "snacks", "organic", "pasta", "greens",
    "baking", "citrus", "coffee", "cheese", "soup", "picnic", "spice", "berries",
)  # fmt: skip
_STOPWORD_TEXT = (
    "about also after answer based been bought choose every from give have into json list more "
    "must only other placement placements propose should some than that their theme themes "
    "them then there these they this those user users recently shopper shoppers storefront "
    "using what when which with would your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def sample_from_schema(
    schema: dict[str, Any],
    rng: random.Random,
    words: Sequence[str] = (),
    *,
    choices: str = "random",
) -> Any:
    """A value that satisfies a (reasonable) JSON schema.

    Enums pick among their options, strings are built from ``words`` (e.g. the
    prompt's words), arrays respect ``minItems``/``maxItems`` (distinct picks
    from enum items), objects fill their required properties, ``$ref`` into
    ``$defs`` is followed. Unsupported keywords (``pattern``, ``format``) are
    ignored. ``choices="first"`` picks the first options of every enum instead
    of random ones: a stand-in for a model that takes the best of a list ranked
    best first (the SDK's keyword shortlists are).
    """
    if choices not in ("random", "first"):
        raise ConfigurationError(f"choices must be 'random' or 'first', got {choices!r}")
    pool = tuple(words) if len(words) >= 6 else tuple(words) + _FALLBACK_WORDS
    return _Sampler(schema, rng, pool, first=choices == "first").sample(schema, "")


class _Sampler:
    def __init__(
        self, root: dict[str, Any], rng: random.Random, words: tuple[str, ...], first: bool = False
    ) -> None:
        self.root = root
        self.rng = rng
        self.words = words
        self.first = first

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            ref = str(schema["$ref"])
            if not ref.startswith("#/"):
                raise ConfigurationError(f"stub server cannot follow $ref {ref!r}")
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return schema

    def sample(self, schema: dict[str, Any], key: str) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0] if self.first else self.rng.choice(list(schema["enum"]))
        for combo in ("anyOf", "oneOf", "allOf"):
            if combo in schema:
                options = [self.resolve(s) for s in schema[combo]]
                usable = [s for s in options if s.get("type") != "null"] or options
                return self.sample(usable[0], key)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        if kind == "object":
            props: dict[str, Any] = schema.get("properties", {})
            required = schema.get("required", [])
            return {name: self.sample(props.get(name, {}), name) for name in required}
        if kind == "array":
            return self.array(schema, key)
        if kind == "string":
            return self.string(schema, key)
        if kind == "integer":
            lo, hi = self.bounds(schema, 1, 5)
            return self.rng.randint(math.ceil(lo), max(math.ceil(lo), math.floor(hi)))
        if kind == "number":
            lo, hi = self.bounds(schema, 0.0, 1.0)
            return round(self.rng.uniform(lo, hi), 3)
        if kind == "boolean":
            return self.rng.random() < 0.5
        return None

    def bounds(self, schema: dict[str, Any], lo: float, hi: float) -> tuple[float, float]:
        step = 1.0 if schema.get("type") == "integer" else 1e-6
        low = schema.get("minimum")
        if low is None and "exclusiveMinimum" in schema:
            low = float(schema["exclusiveMinimum"]) + step
        high = schema.get("maximum")
        if high is None and "exclusiveMaximum" in schema:
            high = float(schema["exclusiveMaximum"]) - step
        if low is None:
            low = lo if high is None else min(lo, float(high))
        if high is None:
            high = max(hi, float(low))
        return float(low), max(float(low), float(high))

    def array(self, schema: dict[str, Any], key: str) -> list[Any]:
        lo = int(schema.get("minItems", 1))
        hi = int(schema.get("maxItems", lo + 2))
        n = self.rng.randint(lo, max(lo, min(hi, lo + 3)))
        items = self.resolve(schema.get("items", {}))
        if "enum" in items:
            options = list(dict.fromkeys(items["enum"]))
            if self.first:
                return options[: min(hi, len(options))]
            return self.rng.sample(options, min(n, len(options)))
        out: list[Any] = []
        for _ in range(n * 4):
            value = self.sample(items, key)
            if not schema.get("uniqueItems") or value not in out:
                out.append(value)
            if len(out) == n:
                break
        return out

    def string(self, schema: dict[str, Any], key: str) -> str:
        lo = int(schema.get("minLength", 0))
        hi = int(schema.get("maxLength", 200))
        name = key.lower()
        if name in ("title", "name", "label", "headline"):
            count, cap = self.rng.randint(2, 4), True
        elif name in ("description", "reason", "reasoning", "rationale", "summary", "explanation"):
            count, cap = self.rng.randint(6, 10), False
        else:
            count, cap = self.rng.randint(1, 2), False
        pool = self.words
        picked = self.rng.sample(pool, count) if len(pool) >= count else list(pool)
        text = " ".join(w.capitalize() for w in picked) if cap else " ".join(picked)
        if name in ("description", "reason", "reasoning", "rationale", "summary", "explanation"):
            text = text[:1].upper() + text[1:] + "."
        while len(text) < lo:
            text += " " + self.rng.choice(self.words)
        return text[:hi].rstrip() if len(text[:hi].rstrip()) >= lo else text[:hi]


def _prompt_words(messages: Any) -> list[str]:
    """Distinct content words of the user/system messages: material for plausible strings."""
    words: list[str] = []
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") in ("system", "user"):
                for word in re.findall(r"[A-Za-z]{4,}", str(message.get("content", ""))):
                    lower = word.lower()
                    if lower not in _STOPWORDS and lower not in words:
                        words.append(lower)
    return words


def _request_schema(body: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """(format type, schema) of the request's ``response_format``, in either shape."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None, None
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema") or {}
        return kind, spec.get("schema") if isinstance(spec, dict) else None
    if kind == "json_object":
        schema = fmt.get("schema")
        return kind, schema if isinstance(schema, dict) else None
    return str(kind) if kind is not None else None, None


_MAX_HEADER_LINES = 100
_MAX_BODY = 64 * 1024 * 1024
_IDLE_SECONDS = 30.0
"""An idle keep-alive connection is closed after this long."""


class _BadRequest(Exception):
    """The bytes on a connection are not an HTTP/1.1 request we can read."""


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """One request from a keep-alive connection; None when the client closed it (or idled)."""
    try:
        line = await asyncio.wait_for(reader.readline(), _IDLE_SECONDS)
    except (asyncio.TimeoutError, ConnectionError):
        return None
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"bad request line {line[:80]!r}")
    method, path, version = parts
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADER_LINES):
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest(f"bad header line {raw[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    else:
        raise _BadRequest("too many header lines")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if not 0 <= length <= _MAX_BODY:
            raise _BadRequest("Content-Length out of range")
        body = await reader.readexactly(length) if length else b""
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    return _Request(method, path.split("?", 1)[0], headers, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            raise _BadRequest("body too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _response_bytes(
    status: int, payload: Any, headers: dict[str, str] | None, keep_alive: bool
) -> bytes:
    data = json.dumps(payload).encode()
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class StubOpenAIServer:
    """An OpenAI-compatible chat-completions server on ``127.0.0.1`` for offline use.

    ``latency`` delays every answer; ``failure_rate`` injects one of
    ``failures`` (see :data:`FAILURE_KINDS`); ``response_formats`` lists the
    ``response_format`` types accepted (``("json_object",)`` behaves like
    llama.cpp's server and rejects ``json_schema`` with HTTP 400);
    ``api_key``, when set, is required as a bearer token.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        failures: Collection[str] = FAILURE_KINDS,
        seed: int = 0,
        retry_after: float = 1.0,
        hang_seconds: float = 10.0,
        response_formats: Collection[str] = ("json_schema", "json_object"),
        api_key: str | None = None,
        model: str = "stub-model",
        choices: str = "random",
    ) -> None:
        unknown = set(failures) - set(FAILURE_KINDS)
        if unknown:
            raise ConfigurationError(
                f"unknown failure kinds {sorted(unknown)}; use {FAILURE_KINDS}"
            )
        if not 0.0 <= failure_rate <= 1.0:
            raise ConfigurationError("failure_rate must be within [0, 1]")
        self.responder = responder
        self.choices = choices
        self.latency = latency
        self.failure_rate = failure_rate
        self.failures = tuple(k for k in FAILURE_KINDS if k in set(failures))
        self.seed = seed
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.response_formats = tuple(response_formats)
        self.model = model
        self._api_key = api_key
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self.request_count = 0
        """Chat-completion requests received (including failed ones)."""
        self.max_in_flight = 0
        """The most requests that were being served at the same moment."""
        self.connections = 0
        """TCP connections accepted (keep-alive clients reuse theirs)."""
        self.failures_injected: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        """Every chat-completion request body, in arrival order."""
        self.service_seconds: list[float] = []
        """Per answered chat-completion request: how late its answer was ready, in seconds
        after ``latency`` (and any injected hang) from its arrival: the stub's own delay."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: what to pass to ``OpenAICompatibleLLM``."""
        if self._address is None:
            raise ConfigurationError("StubOpenAIServer is not running; use it as a context manager")
        host, port = self._address
        return f"http://{host}:{port}/v1"

    def start(self, port: int = 0) -> StubOpenAIServer:
        """Bind ``port`` (default: a free one) and serve on a background thread."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._connection, "127.0.0.1", port, backlog=1024, reuse_address=True
                    )
                )
                host, bound = self._server.sockets[0].getsockname()[:2]
                self._address = (str(host), int(bound))
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close_all())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(
            target=serve, daemon=True, name=f"StubOpenAIServer:{port or 'auto'}"
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise ConfigurationError(f"StubOpenAIServer cannot listen on port {port}: {failure[0]}")
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are released and connections closed."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        self._thread = self._loop = None
        self._server = None
        self._address = None

    def stats(self) -> dict[str, Any]:
        """Counters and the stub's own lateness (also served at ``GET /v1/stub/stats``)."""
        with self._lock:
            late = sorted(self.service_seconds)
            return {
                "requests": self.request_count,
                "connections": self.connections,
                "max_in_flight": self.max_in_flight,
                "failures_injected": dict(self.failures_injected),
                "late_ms": {
                    "p50": 1000.0 * late[len(late) // 2] if late else 0.0,
                    "p95": 1000.0 * late[int(len(late) * 0.95)] if late else 0.0,
                    "max": 1000.0 * late[-1] if late else 0.0,
                },
            }

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def __enter__(self) -> StubOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ one request

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one keep-alive connection until the client closes it (or idles out)."""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        with self._lock:
            self.connections += 1
        try:
            while True:
                try:
                    request = await _read_request(reader)
                except (_BadRequest, asyncio.IncompleteReadError, ValueError) as exc:
                    message = {"error": {"message": f"bad request: {exc}"}}
                    writer.write(_response_bytes(400, message, None, keep_alive=False))
                    break
                if request is None:
                    break
                status, payload, headers = await self._route(request)
                writer.write(_response_bytes(status, payload, headers, request.keep_alive))
                await writer.drain()
                if not request.keep_alive:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away (e.g. gave up on an injected hang), or we stop
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _route(self, request: _Request) -> tuple[int, Any, dict[str, str]]:
        arrived = time.perf_counter()
        path = request.path.rstrip("/")
        if request.method == "GET" and path in ("/v1/models", "/models"):
            return 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]}, {}
        if request.method == "GET" and path in ("/v1/stub/stats", "/stub/stats"):
            return 200, self.stats(), {}
        if request.method != "POST" or path not in ("/v1/chat/completions", "/chat/completions"):
            return 404, {"error": {"message": f"no route {request.method} {request.path}"}}, {}
        try:
            body = json.loads(request.body)
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return 400, {"error": {"message": f"invalid JSON body: {exc}"}}, {}
        return await self._handle(body, request.headers.get("authorization"), arrived)

    async def _handle(
        self, body: dict[str, Any], authorization: str | None, arrived: float
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.request_count += 1
            number = self.request_count
            self.requests.append(body)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            failure = None
            if self.failures and self._rng.random() < self.failure_rate:
                failure = self._rng.choice(self.failures)
                self.failures_injected[failure] += 1
        try:
            # The answer is computed while the latency runs, like a model server decoding:
            # a burst of requests is answered ``latency`` after each arrived, not queued
            # behind the stub's own CPU (unless that exceeds the latency).
            result = self._answer(body, authorization, number, failure)
            due = arrived + self.latency + (self.hang_seconds if failure == "timeout" else 0.0)
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            with self._lock:
                self.service_seconds.append(time.perf_counter() - due)
            return result
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(
        self, body: dict[str, Any], authorization: str | None, number: int, failure: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        if self._api_key is not None and authorization != f"Bearer {self._api_key}":
            return 401, _error("invalid or missing API key", "authentication_error"), {}
        kind, schema = _request_schema(body)
        if kind is not None and kind != "text" and kind not in self.response_formats:
            message = f"response_format type {kind!r} is not supported; use {self.response_formats}"
            return 400, _error(message, "invalid_request_error", "response_format"), {}
        if failure == "rate_limit":
            return (
                429,
                _error("rate limited (injected)", "rate_limit_error"),
                {"Retry-After": f"{self.retry_after:g}"},
            )
        if failure == "server_error":
            return 500, _error("internal error (injected)", "server_error"), {}
        content = self._content(body, schema)
        if failure == "malformed":
            content = _malformed(content)
        return 200, self._completion(body, content, number), {}

    def _content(self, body: dict[str, Any], schema: dict[str, Any] | None) -> str:
        if self.responder is not None:
            return self.responder(body)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        rng = random.Random(f"{self.seed}:{digest}")
        words = _prompt_words(body.get("messages"))
        if schema is None:
            return " ".join(rng.choice(words or list(_FALLBACK_WORDS)) for _ in range(8))
        return json.dumps(sample_from_schema(schema, rng, words, choices=self.choices))

    def _completion(self, body: dict[str, Any], content: str, number: int) -> dict[str, Any]:
        prompt = sum(
            len(str(m.get("content", "")).split()) + 4
            for m in body.get("messages", [])
            if isinstance(m, dict)
        )
        completion = max(1, len(content) // 4)
        return {
            "id": f"chatcmpl-stub-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m storefront_sdk.testing.stub_server``: serve until Ctrl-C (try the CLI)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--choices",
        choices=("random", "first"),
        default="random",
        help="enum picks: random, or the first options (a model taking the best of a ranked list)",
    )
    parser.add_argument(
        "--json-object-only", action="store_true", help="reject json_schema like llama.cpp"
    )
    args = parser.parse_args(argv)
    formats = ("json_object",) if args.json_object_only else ("json_schema", "json_object")
    stub = StubOpenAIServer(
        latency=args.latency,
        failure_rate=args.failure_rate,
        seed=args.seed,
        response_formats=formats,
        choices=args.choices,
    )
    with stub.start(args.port):
        print(f"stub OpenAI-compatible server on {stub.base_url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def _error(message: str, kind: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


def _malformed(content: str) -> str:
    """Cut ``content`` in half so that it is no longer valid JSON."""
    cut = content[: max(1, len(content) // 2)]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return "{" + cut


if __name__ == "__main__":
    main()
