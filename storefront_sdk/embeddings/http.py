"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` server.

vLLM, Text Embeddings Inference, llama.cpp's server and OpenAI all accept
``{"model": ..., "input": [...]}`` and answer ``{"data": [{"index": i,
"embedding": [...]}, ...]}``. Sync and async httpx clients; 429/5xx/transport
errors raise :class:`~storefront_sdk.exceptions.RetryableBackendError` after
``max_retries`` tries, other statuses and malformed bodies
:class:`~storefront_sdk.exceptions.FatalBackendError`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from ..deadline import remaining
from ..exceptions import (
    BackendTimeoutError,
    ConfigurationError,
    FatalBackendError,
    RetryableBackendError,
)
from .base import Embedder

__all__ = ["OpenAICompatibleEmbedder"]


class OpenAICompatibleEmbedder(Embedder):
    """An embedding model behind ``POST {base_url}/embeddings``.

    ``dim`` is probed with one request on first use when not given.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 64,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_s: float = 0.25,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self._dim = dim
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max(1, max_retries)
        self.backoff_s = backoff_s
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None

    @property
    def model_id(self) -> str:
        return f"{self.model}@{self.base_url}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(np.asarray(self._embed_batch(["dimension probe"])).shape[1])
        return self._dim

    @property
    def url(self) -> str:
        return f"{self.base_url}/embeddings"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _timeout(self) -> float:
        left = remaining()
        return self.timeout if left is None else max(0.001, min(self.timeout, left))

    def _embed_batch(self, texts: list[str]) -> npt.ArrayLike:
        if self._client is None:
            self._client = httpx.Client(headers=self._headers())
        body = {"model": self.model, "input": texts}
        for attempt in range(self.max_retries):
            try:
                resp = self._client.post(self.url, json=body, timeout=self._timeout())
                return self._parse(resp, len(texts))
            except RetryableBackendError:
                if attempt + 1 >= self.max_retries:
                    raise
            except httpx.TimeoutException as exc:
                if attempt + 1 >= self.max_retries:
                    raise BackendTimeoutError(f"{self.url}: timed out") from exc
            except httpx.TransportError as exc:
                if attempt + 1 >= self.max_retries:
                    raise RetryableBackendError(f"{self.url}: {exc!r}") from exc
            time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _aembed_batch(self, texts: list[str]) -> npt.ArrayLike:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(headers=self._headers())
        body = {"model": self.model, "input": texts}
        for attempt in range(self.max_retries):
            try:
                resp = await self._aclient.post(self.url, json=body, timeout=self._timeout())
                return self._parse(resp, len(texts))
            except RetryableBackendError:
                if attempt + 1 >= self.max_retries:
                    raise
            except httpx.TimeoutException as exc:
                if attempt + 1 >= self.max_retries:
                    raise BackendTimeoutError(f"{self.url}: timed out") from exc
            except httpx.TransportError as exc:
                if attempt + 1 >= self.max_retries:
                    raise RetryableBackendError(f"{self.url}: {exc!r}") from exc
            await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse(self, resp: httpx.Response, n: int) -> npt.ArrayLike:
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RetryableBackendError(f"{self.url}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise FatalBackendError(f"{self.url}: HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            data: Any = resp.json()["data"]
            rows = sorted(data, key=lambda d: int(d.get("index", 0)))
            vecs = [r["embedding"] for r in rows]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FatalBackendError(
                f"{self.url}: expected {{'data': [{{'index', 'embedding'}}]}}, got "
                f"{resp.text[:200]!r}"
            ) from exc
        if len(vecs) != n:
            raise FatalBackendError(f"{self.url}: {len(vecs)} embeddings for {n} inputs")
        return vecs

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
