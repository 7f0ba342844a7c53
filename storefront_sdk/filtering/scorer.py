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
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

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
    ComponentError,
    ConfigurationError,
    FatalBackendError,
    RetryableBackendError,
)
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
    "score": s}, ...]`` (any order). 429, 5xx, timeouts and connection errors
    are retried ``max_retries`` times (honouring ``Retry-After``); other 4xx fail
    at once. ``headers`` (e.g. an API key) are sent, never logged or shown.
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
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"scorer url must start with http:// or https://, got {url!r}")
        self.url = url
        self._headers = dict(headers or {})
        self.timeout = timeout
        self.query_field = query_field
        self.documents_field = documents_field
        self.extra_body = dict(extra_body or {})
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.model_id = model_id or str(self.extra_body.get("model") or url)
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"HttpScorer({self.url!r})"

    # -- clients ----------------------------------------------------------------------
    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                headers=self._headers, timeout=self.timeout, transport=self._transport
            )
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(
                headers=self._headers, timeout=self.timeout, transport=self._async_transport
            )
        return self._aclient

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None

    # -- calls ----------------------------------------------------------------------------
    def _body(self, query: str, documents: list[str]) -> dict[str, Any]:
        return {**self.extra_body, self.query_field: query, self.documents_field: documents}

    def _retry_options(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": self._wait,
            "retry": retry_if_exception_type(RetryableBackendError),
            "reraise": True,
        }

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RetryableBackendError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_wait)
        backoff = 0.2 * 2.0 ** (int(state.attempt_number) - 1) + random.uniform(0.0, 0.2)
        return min(backoff, self.max_retry_wait)

    def __call__(self, query: str, documents: list[str]) -> list[float]:
        body = self._body(query, documents)
        for attempt in Retrying(**self._retry_options()):
            with attempt:
                try:
                    response = self._sync_client().post(self.url, json=body)
                except httpx.TransportError as exc:
                    raise self._transport_error(exc) from None
                return self._parse(response, len(documents))
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def acall(self, query: str, documents: list[str]) -> list[float]:
        body = self._body(query, documents)
        async for attempt in AsyncRetrying(**self._retry_options()):
            with attempt:
                try:
                    response = await self._async_client().post(self.url, json=body)
                except httpx.TransportError as exc:
                    raise self._transport_error(exc) from None
                return self._parse(response, len(documents))
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _transport_error(self, exc: httpx.TransportError) -> RetryableBackendError:
        if isinstance(exc, httpx.TimeoutException):
            return BackendTimeoutError(f"scorer {self.url} timed out after {self.timeout}s")
        return RetryableBackendError(f"scorer {self.url} unreachable: {type(exc).__name__}")

    def _parse(self, response: httpx.Response, n: int) -> list[float]:
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableBackendError(
                f"scorer {self.url} answered HTTP {status}", retry_after=_retry_after(response)
            )
        if status >= 400:
            raise FatalBackendError(
                f"scorer {self.url} answered HTTP {status}: {response.text[:200]!r}"
            )
        try:
            data = response.json()
        except ValueError:
            raise FatalBackendError(
                f"scorer {self.url} did not answer JSON: {response.text[:200]!r}"
            ) from None
        return _scores_from(data, n, self.url)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


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
