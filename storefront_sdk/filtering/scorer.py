"""Any scoring model as a relevance filter: a cross-encoder in-process, or one behind HTTP.

The paper filters with a fine-tuned cross-encoder. :class:`ScorerRelevanceFilter`
wraps any callable ``scorer(theme_text, product_texts) -> list[float]`` -- e.g. a
``sentence_transformers.CrossEncoder`` (DeBERTa, MiniLM ...) you loaded -- and
turns it into a :class:`~storefront_sdk.interfaces.RelevanceFilter`: batching,
score validation (one finite number per product; clamp or reject out-of-range
values; optional sigmoid for logits) and tracing.

:meth:`ScorerRelevanceFilter.http` points it at a reranking server instead
(Text Embeddings Inference, vLLM / Jina / Cohere-style ``/rerank``, or your own):
it POSTs ``{"query": ..., "documents": [...]}`` and reads ``{"scores": [...]}``,
a bare list, or ``{"results": [{"index": i, "relevance_score": s}]}``. Sync and
async clients, retries on 429/5xx/timeouts.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import httpx

from .._secrets import excerpt, register
from ..exceptions import (
    ComponentError,
    ConfigurationError,
    FatalBackendError,
)
from ..http_policy import HttpPolicy, HttpReply, LoopClients, public_url, status_error, validate_url
from ..interfaces import RelevanceFilter
from ..tracing import annotate
from ..types import Product, Theme

__all__ = ["HttpScorer", "ScoreFn", "ScorerRelevanceFilter"]

ScoreFn = Callable[[str, list[str]], Sequence[float] | Awaitable[Sequence[float]]]
"""``scorer(theme_text, product_texts)``: one score per text (sync, or an ``async def``)."""

OutOfRange = Literal["clamp", "error"]


def _default_theme_text(theme: Theme) -> str:
    return theme.text


def _default_product_text(product: Product) -> str:
    return product.text


class ScorerRelevanceFilter(RelevanceFilter):
    """Relevance scores from any model: ``scorer(theme_text, product_texts) -> scores``.

    ``batch_size`` products go to the scorer per call. Scores must be finite
    numbers, one per product; ``logits=True`` applies a sigmoid first (raw
    cross-encoder outputs); values outside [0, 1] are clipped
    (``out_of_range="clamp"``) or rejected (``"error"``). A broken scorer raises
    :class:`~storefront_sdk.exceptions.ComponentError`, and the storefront falls
    back to its lexical filter and records why.
    """

    def __init__(
        self,
        scorer: ScoreFn,
        *,
        threshold: float = 0.5,
        batch_size: int = 64,
        logits: bool = False,
        out_of_range: OutOfRange = "clamp",
        theme_text: Callable[[Theme], str] = _default_theme_text,
        product_text: Callable[[Product], str] = _default_product_text,
        model_id: str | None = None,
    ) -> None:
        if not callable(scorer):
            raise ConfigurationError(f"scorer must be callable, got {type(scorer).__name__}")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigurationError(f"threshold must be in [0, 1], got {threshold}")
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size}")
        if out_of_range not in ("clamp", "error"):
            raise ConfigurationError(
                f"out_of_range must be 'clamp' or 'error', got {out_of_range!r}"
            )
        self.scorer = scorer
        self.threshold = threshold
        self.batch_size = batch_size
        self.logits = logits
        self.out_of_range = out_of_range
        self.theme_text = theme_text
        self.product_text = product_text
        self.model_id = model_id or getattr(scorer, "model_id", None) or _callable_name(scorer)

    @classmethod
    def http(
        cls,
        url: str,
        *,
        threshold: float = 0.5,
        batch_size: int = 64,
        logits: bool = False,
        out_of_range: OutOfRange = "clamp",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        query_field: str = "query",
        documents_field: str = "documents",
        extra_body: Mapping[str, Any] | None = None,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        model_id: str | None = None,
    ) -> ScorerRelevanceFilter:
        """A filter scoring through a reranking HTTP endpoint (see :class:`HttpScorer`)."""
        scorer = HttpScorer(
            url,
            headers=headers,
            timeout=timeout,
            query_field=query_field,
            documents_field=documents_field,
            extra_body=extra_body,
            max_retries=max_retries,
            transport=transport,
            async_transport=async_transport,
            model_id=model_id,
        )
        return cls(
            scorer,
            threshold=threshold,
            batch_size=batch_size,
            logits=logits,
            out_of_range=out_of_range,
        )

    def _batches(self, theme: Theme, products: Sequence[Product]) -> tuple[str, list[list[str]]]:
        texts = [self.product_text(p) for p in products]
        step = self.batch_size
        return self.theme_text(theme), [texts[i : i + step] for i in range(0, len(texts), step)]

    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        if not products:
            return []
        query, batches = self._batches(theme, products)
        out: list[float] = []
        for batch in batches:
            raw = self.scorer(query, batch)
            if inspect.isawaitable(raw):
                raw = _run_awaitable(raw)
            out.extend(self._validate(raw, len(batch)))
        annotate(model_id=self.model_id, batches=len(batches))
        return out

    async def ascore(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        if not products:
            return []
        acall = getattr(self.scorer, "acall", None)
        if acall is None and not inspect.iscoroutinefunction(self.scorer):
            return await asyncio.to_thread(self.score, theme, products)
        query, batches = self._batches(theme, products)
        fn: Callable[[str, list[str]], Any] = acall if acall is not None else self.scorer
        results = await asyncio.gather(*(fn(query, b) for b in batches))
        out: list[float] = []
        for raw, batch in zip(results, batches, strict=True):
            out.extend(self._validate(raw, len(batch)))
        annotate(model_id=self.model_id, batches=len(batches))
        return out

    def _validate(self, raw: object, expected: int) -> list[float]:
        """One finite score per product, in [0, 1] (clamped, or rejected, when outside)."""
        try:
            values = list(raw)  # type: ignore[call-overload]
        except TypeError:
            raise ComponentError(
                f"scorer {self.model_id} returned {type(raw).__name__}, expected a list of numbers"
            ) from None
        if len(values) != expected:
            raise ComponentError(
                f"scorer {self.model_id} returned {len(values)} scores for {expected} products"
            )
        out: list[float] = []
        for i, v in enumerate(values):
            if isinstance(v, (bool, str, bytes)) or not hasattr(v, "__float__"):
                raise ComponentError(f"scorer {self.model_id}: score [{i}] is {v!r}, not a number")
            x = float(v)
            if not math.isfinite(x):
                raise ComponentError(f"scorer {self.model_id}: score [{i}] is {x}, not finite")
            if self.logits:
                x = 1.0 / (1.0 + math.exp(-max(min(x, 500.0), -500.0)))
            if not 0.0 <= x <= 1.0:
                if self.out_of_range == "error":
                    raise ComponentError(
                        f"scorer {self.model_id}: score [{i}] = {x} is outside [0, 1] "
                        "(pass logits=True for raw model outputs, or out_of_range='clamp')"
                    )
                x = min(max(x, 0.0), 1.0)
            out.append(x)
        return out

    def __repr__(self) -> str:
        return f"ScorerRelevanceFilter({self.model_id}, threshold={self.threshold})"


def _callable_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return str(name)


def _run_awaitable(aw: Awaitable[Any]) -> Any:
    """Run an async scorer's result from the sync path (not inside a running loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:

        async def wait() -> Any:
            return await aw

        return asyncio.run(wait())
    raise ConfigurationError("an async scorer was called from a running event loop: use ascore()")


# -- HTTP ---------------------------------------------------------------------------------------


class HttpScorer:
    """POSTs ``{query_field: theme_text, documents_field: texts, **extra_body}`` to ``url``.

    Reads ``{"scores": [...]}``, a bare list of numbers, or a rerank answer
    ``{"results": [{"index": i, "relevance_score": s}, ...]}`` / ``[{"index": i,
    "score": s}, ...]`` (any order). Time limits, retries (429, 5xx, timeouts and
    connection errors, ``max_retries`` times, honouring a short ``Retry-After``), the
    status mapping and the body cap are :class:`~storefront_sdk.http_policy.HttpPolicy`'s,
    the same as the LLM backend's; other 4xx fail at once. ``headers`` (e.g. an API key)
    are sent, never logged or shown: their values are registered as secrets.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        query_field: str = "query",
        documents_field: str = "documents",
        extra_body: Mapping[str, Any] | None = None,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        model_id: str | None = None,
        max_retry_wait: float = 10.0,
        max_response_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        validate_url(url, "HttpScorer url")
        self.url = url
        self._headers = dict(headers or {})
        for value in self._headers.values():
            register(value)
        self.timeout = timeout
        self.query_field = query_field
        self.documents_field = documents_field
        self.extra_body = dict(extra_body or {})
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.policy = HttpPolicy(
            timeout=timeout,
            max_retries=max_retries,
            backoff_initial=0.2,
            backoff_max=max_retry_wait,
            max_retry_after=max_retry_wait,
            max_response_bytes=max_response_bytes,
            name=f"scorer {public_url(url)}",
        )
        self.model_id = model_id or str(self.extra_body.get("model") or public_url(url))
        self._where = f"scorer {public_url(url)}"
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._aclients: LoopClients[httpx.AsyncClient] = LoopClients(
            self._new_async_client, _aclose
        )

    def __repr__(self) -> str:
        return f"HttpScorer({public_url(self.url)!r})"

    # -- clients ----------------------------------------------------------------------
    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                headers=self._headers, timeout=self.timeout, transport=self._transport
            )
        return self._client

    def _new_async_client(self) -> httpx.AsyncClient:
        from httpx_aiohttp import HttpxAiohttpClient

        return HttpxAiohttpClient(
            headers=self._headers, timeout=self.timeout, transport=self._async_transport
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close this loop's async client now (it also closes when its loop shuts down)."""
        await self._aclients.aclose()

    # -- calls ----------------------------------------------------------------------------
    def _content(self, query: str, documents: list[str]) -> bytes:
        body = {**self.extra_body, self.query_field: query, self.documents_field: documents}
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode()

    def _request(self, client: httpx.Client | httpx.AsyncClient, content: bytes) -> httpx.Request:
        headers = {"Content-Type": "application/json"}
        return client.build_request("POST", self.url, content=content, headers=headers)

    def __call__(self, query: str, documents: list[str]) -> list[float]:
        client = self._sync_client()
        content = self._content(query, documents)

        def attempt(_: int) -> list[float]:
            reply = self.policy.send(client, self._request(client, content), where=self._where)
            return self._parse(reply, len(documents))

        return self.policy.run(attempt)

    async def acall(self, query: str, documents: list[str]) -> list[float]:
        client = await self._aclients.get()
        content = self._content(query, documents)

        async def attempt(_: int) -> list[float]:
            request = self._request(client, content)
            reply = await self.policy.asend(client, request, where=self._where)
            return self._parse(reply, len(documents))

        return await self.policy.arun(attempt)

    def _parse(self, reply: HttpReply, n: int) -> list[float]:
        error = status_error(reply.status, reply.headers, reply.text, self._where)
        if error is not None:
            raise error
        try:
            data = json.loads(reply.body)
        except (ValueError, RecursionError):
            raise FatalBackendError(
                f"{self._where} did not answer JSON: {excerpt(reply.text, 200)}"
            ) from None
        return _scores_from(data, n, public_url(self.url))


async def _aclose(client: httpx.AsyncClient) -> None:
    await client.aclose()


def _scores_from(data: Any, n: int, url: str) -> list[float]:
    """Scores in input order from the answer shapes rerank servers use."""
    if isinstance(data, dict):
        if isinstance(data.get("scores"), list):
            return list(data["scores"])
        if isinstance(data.get("results"), list):
            data = data["results"]
        elif isinstance(data.get("data"), list):
            data = data["data"]
    if isinstance(data, list) and all(isinstance(x, dict) for x in data) and data:
        out: list[Any] = [None] * n
        for item in data:
            idx = item.get("index")
            value = item.get("relevance_score", item.get("score"))
            if not isinstance(idx, int) or not 0 <= idx < n or out[idx] is not None:
                raise FatalBackendError(f"scorer {url}: bad or repeated index {idx!r} in results")
            out[idx] = value
        if any(v is None for v in out):
            raise FatalBackendError(f"scorer {url}: results miss some documents")
        return out
    if isinstance(data, list):
        return data
    raise FatalBackendError(
        f"scorer {url}: unexpected answer; expected {{'scores': [...]}}, a list, "
        "or {'results': [{'index', 'relevance_score'}]}"
    )
