"""The embedder contract: texts in, L2-normalised float32 vectors out.

An :class:`Embedder` maps a batch of texts to an ``(n, dim)`` float32 array
whose rows have unit length, so a dot product is a cosine similarity. The sync
:meth:`Embedder.embed` and its async twin :meth:`Embedder.aembed` have the same
signature; backends implement :meth:`Embedder._embed_batch` (and, when they do
I/O, :meth:`Embedder._aembed_batch`). The base class does the batching, input
checks, normalisation and an LRU memo of short texts (a theme's concepts are
embedded once per process, not once per build).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..exceptions import ComponentError, ConfigurationError

__all__ = ["Embedder", "FloatMatrix", "normalize_rows"]

FloatMatrix = npt.NDArray[np.float32]


def normalize_rows(x: npt.ArrayLike) -> FloatMatrix:
    """Rows scaled to unit L2 norm (zero rows stay zero), as float32."""
    a = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    out: FloatMatrix = (a / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


class Embedder(ABC):
    """Texts to unit-length float32 vectors, batched, sync and async.

    Subclasses set :attr:`model_id` and :attr:`dim` and implement
    :meth:`_embed_batch`. ``memo_size`` short texts (at most ``memo_max_chars``
    characters) are remembered, so repeated concept lookups cost a dict access.
    """

    batch_size: int = 32
    memo_size: int = 4096
    memo_max_chars: int = 200

    @property
    @abstractmethod
    def model_id(self) -> str:
        """A stable identifier of the model (part of on-disk embedding keys)."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """The vector dimension."""

    @property
    def name(self) -> str:
        return type(self).__name__

    @abstractmethod
    def _embed_batch(self, texts: list[str]) -> npt.ArrayLike:
        """Raw vectors for one batch (at most ``batch_size`` texts), shape ``(len(texts), dim)``."""

    async def _aembed_batch(self, texts: list[str]) -> npt.ArrayLike:
        return await asyncio.to_thread(self._embed_batch, texts)

    def warm_up(self) -> None:  # noqa: B027 (optional hook)
        """Load the model now instead of on the first call (optional)."""

    # -- public API ------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> FloatMatrix:
        """One unit-length float32 row per text, in input order."""
        items = self._check_texts(texts)
        out, todo = self._from_memo(items)
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            vecs = self._validated(self._embed_batch([items[i] for i in idx]), len(idx))
            self._fill(out, items, idx, vecs)
        return out

    async def aembed(self, texts: Sequence[str]) -> FloatMatrix:
        """The async twin of :meth:`embed`."""
        items = self._check_texts(texts)
        out, todo = self._from_memo(items)
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            raw = await self._aembed_batch([items[i] for i in idx])
            self._fill(out, items, idx, self._validated(raw, len(idx)))
        return out

    def embed_one(self, text: str) -> FloatMatrix:
        """The vector of one text, shape ``(dim,)``."""
        row: FloatMatrix = self.embed([text])[0]
        return row

    def remember(self, texts: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Seed the memo with known vectors (e.g. loaded from an :class:`EmbeddingStore`),
        growing ``memo_size`` to hold them; long texts are remembered too."""
        arr = normalize_rows(vectors)
        if arr.shape != (len(texts), self.dim):
            raise ConfigurationError(f"remember: {len(texts)} texts but vectors of {arr.shape}")
        memo = self._memo
        with self.__dict__["_memo_lock"]:
            self.memo_size = max(self.memo_size, len(memo) + len(texts))
            for t, v in zip(texts, arr, strict=True):
                memo[t] = v

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r})"

    # -- helpers ---------------------------------------------------------------------
    @property
    def _memo(self) -> OrderedDict[str, FloatMatrix]:
        memo: OrderedDict[str, FloatMatrix] | None = self.__dict__.get("_memo_store")
        if memo is None:
            memo = self.__dict__.setdefault("_memo_store", OrderedDict())
            self.__dict__.setdefault("_memo_lock", threading.Lock())
        return memo

    def _check_texts(self, texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise ConfigurationError(f"{self.name}.embed takes a list of texts, not one string")
        items = list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise ConfigurationError(
                    f"{self.name}.embed: texts[{i}] is {type(t).__name__}, not str"
                )
        return items

    def _from_memo(self, items: list[str]) -> tuple[FloatMatrix, list[int]]:
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        todo: list[int] = []
        memo = self._memo
        with self.__dict__["_memo_lock"]:
            for i, t in enumerate(items):
                hit = memo.get(t)
                if hit is None:
                    todo.append(i)
                else:
                    memo.move_to_end(t)
                    out[i] = hit
        return out, todo

    def _fill(self, out: FloatMatrix, items: list[str], idx: list[int], vecs: FloatMatrix) -> None:
        out[idx] = vecs
        if not self.memo_size:
            return
        memo = self._memo
        with self.__dict__["_memo_lock"]:
            for j, i in enumerate(idx):
                if len(items[i]) <= self.memo_max_chars:
                    memo[items[i]] = vecs[j].copy()
            while len(memo) > self.memo_size:
                memo.popitem(last=False)

    def _validated(self, raw: npt.ArrayLike, n: int) -> FloatMatrix:
        try:
            arr = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ComponentError(f"{self.name} returned non-numeric vectors: {exc}") from exc
        if arr.shape != (n, self.dim):
            raise ComponentError(
                f"{self.name} returned vectors of shape {arr.shape}, expected ({n}, {self.dim})"
            )
        if not np.isfinite(arr).all():
            raise ComponentError(f"{self.name} returned non-finite vector values")
        return normalize_rows(arr)
