"""In-process BM25 retrieval over a :class:`~storefront_sdk.catalog.Catalog`.

The index stores, for every term, the final BM25 weight of each product that
contains it (a CSR row of a term x product matrix). A query's scores are then
a sparse sum of a few rows, and its top-k is selected among the products that
match at least one query term, never over the whole catalog. Scores are
bit-for-bit those of ``rank_bm25.BM25Okapi`` on the same tokens (same IDF with
the ``epsilon`` floor for negative IDF, same order of float operations).

A multi-keyword :class:`~storefront_sdk.types.RetrievalQuery` runs every
keyword as its own query, gives each keyword a quota, and merges the lists
round-robin so every keyword contributes (see ``docs/retrieval.md``).

It stays one module because it is one index: building, querying and the multi-keyword
merge work on the same CSR structure.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import TypeAdapter

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..interfaces import Retriever
from ..text import tokenize
from ..types import Candidate, Product, RetrievalQuery, RetrievedProduct

__all__ = ["BM25Retriever"]

_PRODUCT_TEXT_FIELDS = ("text", "title", "aisle", "department", "brand")

IntArray = npt.NDArray[np.int64]
IntArray32 = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]
_Key = tuple[tuple[str, ...], tuple[int, ...]]  # (query tokens, department codes)

# A cached keyword ranking keeps this many products: plenty for k=100 after a
# user's exclusions; deeper requests recompute.
_CACHE_DEPTH = 1024

# Validating the whole list at once is about twice as fast as one model at a time.
_CANDIDATES: TypeAdapter[list[Candidate]] = TypeAdapter(list[Candidate])


@dataclass(frozen=True)
class _Index:
    """The built index: read-only after construction, so safe to share between threads."""

    vocab: dict[str, int]
    indptr: IntArray  # CSR row pointers, one row per term
    docs: IntArray32  # product positions, ascending within a row
    weights: FloatArray  # BM25 weight of (term, product)
    idf: FloatArray
    doc_len: IntArray
    avgdl: float
    average_idf: float
    dept_codes: IntArray32  # lower-cased department code per product
    dept_vocab: dict[str, int]
    ids: tuple[str, ...]
    pos: dict[str, int]  # product id -> position


class BM25Retriever(Retriever):
    """BM25 (Okapi) over the catalog's product text; the SDK's default retriever.

    ``k1``, ``b`` and ``epsilon`` mean what they mean in ``rank_bm25.BM25Okapi``.
    ``fields`` names what is indexed: ``"text"`` (title, aisle, department,
    brand), another product field, an ``attributes`` key, or several of these.
    The index is built on first use or in :meth:`warm_up`. The best products
    of the last ``cache_size`` distinct (keyword, departments) pairs are kept:
    keywords come from a closed taxonomy, so they repeat across users. 0
    disables the cache; it never changes a result.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        epsilon: float = 0.25,
        fields: str | Sequence[str] = "text",
        cache_size: int = 4096,
    ) -> None:
        if k1 < 0:
            raise ConfigurationError(f"BM25Retriever: k1 must be >= 0, got {k1}")
        if not 0.0 <= b <= 1.0:
            raise ConfigurationError(f"BM25Retriever: b must be in [0, 1], got {b}")
        names = (fields,) if isinstance(fields, str) else tuple(fields)
        if not names or not all(isinstance(f, str) and f for f in names):
            raise ConfigurationError(
                "BM25Retriever: fields must be a field name or a non-empty list of them, "
                f"got {fields!r}"
            )
        if cache_size < 0:
            raise ConfigurationError(f"BM25Retriever: cache_size must be >= 0, got {cache_size}")
        self.catalog = catalog
        self.k1 = k1
        self.b = b
        self.epsilon = epsilon
        self.fields: tuple[str, ...] = names
        self.cache_size = cache_size
        self._cache = _LRU(cache_size) if cache_size else None
        self._index: _Index | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"BM25Retriever(catalog={self.catalog!r}, k1={self.k1}, b={self.b}, "
            f"epsilon={self.epsilon}, fields={list(self.fields)!r}, cache_size={self.cache_size})"
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickles with its index (for Ray, Dask or process workers), without lock or cache."""
        state = self.__dict__.copy()
        del state["_lock"]
        state["_cache"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._cache = _LRU(self.cache_size) if self.cache_size else None

    # -- index ------------------------------------------------------------------
    def warm_up(self) -> None:
        """Build the index now rather than on the first query (idempotent, thread-safe)."""
        self._get_index()

    @property
    def is_warm(self) -> bool:
        """True once the index is built."""
        return self._index is not None

    def _get_index(self) -> _Index:
        index = self._index
        if index is not None:
            return index
        with self._lock:
            if self._index is None:
                self._index = self._build()
            return self._index

    def _document(self, product: Product) -> str:
        parts: list[str] = []
        for name in self.fields:
            if name in _PRODUCT_TEXT_FIELDS:
                value = getattr(product, name)
            else:
                value = product.attributes.get(name)
            if value:
                parts.append(value)
        return " ".join(parts)

    def _build(self) -> _Index:
        vocab: dict[str, int] = {}
        term_ids: list[int] = []
        doc_len: list[int] = []
        for product in self.catalog:
            tokens = tokenize(self._document(product))
            doc_len.append(len(tokens))
            for tok in tokens:
                tid = vocab.get(tok)
                if tid is None:
                    tid = vocab[tok] = len(vocab)
                term_ids.append(tid)
        n_docs = len(doc_len)
        lengths = np.asarray(doc_len, dtype=np.int64)
        total = int(lengths.sum())
        if not vocab:
            raise ConfigurationError(
                f"BM25Retriever: no product in {self.catalog.name} has indexable text in "
                f"fields {list(self.fields)!r}"
            )
        # term x doc counts; duplicates (a term repeated in a title) are summed into tf.
        rows = np.asarray(term_ids, dtype=np.int64)
        cols = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        tf_matrix = sp.csr_matrix(
            (np.ones(total, dtype=np.int64), (rows, cols)), shape=(len(vocab), n_docs)
        )
        tf_matrix.sum_duplicates()
        tf_matrix.sort_indices()
        indptr = tf_matrix.indptr.astype(np.int64)
        docs = tf_matrix.indices.astype(np.int32)
        tf = tf_matrix.data.astype(np.int64)
        df = np.diff(indptr)

        # IDF exactly as rank_bm25.BM25Okapi: math.log, summed in first-seen order,
        # negative values floored at epsilon * average idf.
        idf_list = [math.log(n_docs - f + 0.5) - math.log(f + 0.5) for f in df.tolist()]
        idf_sum = 0.0
        for v in idf_list:
            idf_sum += v
        average_idf = idf_sum / len(idf_list)
        eps = self.epsilon * average_idf
        idf = np.asarray([eps if v < 0 else v for v in idf_list], dtype=np.float64)

        avgdl = total / n_docs
        # Same operation order as rank_bm25 so scores match to the last bit.
        if avgdl > 0:
            norm = self.k1 * (1 - self.b + self.b * lengths / avgdl)
        else:  # pragma: no cover - every document empty is rejected above
            norm = np.full(n_docs, self.k1 * (1 - self.b))
        term_of = np.repeat(np.arange(len(vocab), dtype=np.int64), df)
        weights = idf[term_of] * (tf * (self.k1 + 1) / (tf + norm[docs]))

        dept_vocab: dict[str, int] = {}
        dept_codes = np.empty(n_docs, dtype=np.int32)
        for i, product in enumerate(self.catalog):
            dept_codes[i] = dept_vocab.setdefault(
                product.department.strip().lower(), len(dept_vocab)
            )
        ids = tuple(p.id for p in self.catalog)
        return _Index(
            vocab=vocab,
            indptr=indptr,
            docs=docs,
            weights=np.ascontiguousarray(weights, dtype=np.float64),
            idf=idf,
            doc_len=lengths,
            avgdl=avgdl,
            average_idf=average_idf,
            dept_codes=dept_codes,
            dept_vocab=dept_vocab,
            ids=ids,
            pos={pid: i for i, pid in enumerate(ids)},
        )

    # -- scoring ----------------------------------------------------------------
    def _matches(self, index: _Index, tokens: Iterable[str]) -> tuple[IntArray32, FloatArray]:
        """Products matching any token and their summed scores, ascending by position."""
        spans = []
        for tok in tokens:
            tid = index.vocab.get(tok)
            if tid is not None:
                spans.append((int(index.indptr[tid]), int(index.indptr[tid + 1])))
        if not spans:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64)
        if len(spans) == 1:
            lo, hi = spans[0]
            return index.docs[lo:hi], index.weights[lo:hi]
        docs = np.concatenate([index.docs[lo:hi] for lo, hi in spans])
        weights = np.concatenate([index.weights[lo:hi] for lo, hi in spans])
        uniq, inverse = np.unique(docs, return_inverse=True)
        # bincount adds in input order, i.e. in query-token order, as rank_bm25 does.
        summed = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
        return uniq, summed.astype(np.float64, copy=False)

    def _ranked(
        self, index: _Index, tokens: tuple[str, ...], n: int, where: _Filter | None
    ) -> tuple[IntArray32, FloatArray]:
        """The ``n`` best products for ``tokens`` that pass ``where``, best first.

        The cache keys on the tokens and the department set (both repeat across
        users); exclusions (per user) are applied to the cached ranking.
        """
        cache = self._cache
        if cache is not None:
            key = (tokens, where.dept_key if where is not None else ())
            ranking = cache.get(key)
            if ranking is None:
                docs, weights = self._matches(index, tokens)
                if where is not None and where.dept_ok is not None and docs.size:
                    mask = where.dept_ok[index.dept_codes[docs]]
                    docs, weights = docs[mask], weights[mask]
                order = _top(weights, _CACHE_DEPTH)
                ranking = _Ranking(docs[order], weights[order], docs.size <= _CACHE_DEPTH)
                cache.put(key, ranking)
            docs, weights = ranking.docs, ranking.scores
            if where is not None and where.excluded is not None and docs.size:
                # Exclusions remove few products: a short prefix usually suffices.
                head = min(docs.size, n + where.excluded.size)
                mask = where.not_excluded(docs[:head])
                docs, weights = docs[:head][mask], weights[:head][mask]
                complete = ranking.complete or docs.size >= n
            else:
                complete = ranking.complete
            if docs.size >= n or complete:
                return docs[:n], weights[:n]
        # No cache, or exclusions reached past the cached prefix: rank every match.
        docs, weights = self._matches(index, tokens)
        if where is not None and docs.size:
            mask = where.keep(index, docs)
            docs, weights = docs[mask], weights[mask]
        order = _top(weights, n)
        return docs[order], weights[order]

    def scores(self, text: str) -> FloatArray:
        """Score of every product for ``text``, in catalog order (rank_bm25's ``get_scores``)."""
        index = self._get_index()
        out = np.zeros(len(index.ids), dtype=np.float64)
        docs, weights = self._matches(index, _query_tokens(text))
        out[docs] = weights
        return out

    def search(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` best ``(product_id, score)`` for one free-text query, best first.

        Ties keep catalog order; products matching no query term are never returned.
        """
        if k < 1:
            raise ConfigurationError(f"BM25Retriever.search: k must be >= 1, got {k}")
        index = self._get_index()
        docs, weights = self._ranked(index, _query_tokens(text), k, None)
        ids = index.ids
        return [(ids[d], s) for d, s in zip(docs.tolist(), weights.tolist(), strict=True)]

    # -- the Retriever contract ---------------------------------------------------
    def retrieve(self, query: RetrievalQuery) -> list[Candidate]:
        """Each keyword searched on its own; lists merged round-robin, deduplicated, filtered."""
        positions, scores, keywords = self._retrieve(query)
        ids = self._get_index().ids if positions else ()
        return _CANDIDATES.validate_python(
            [
                {"product_id": ids[d], "score": s, "keyword": kw}
                for d, s, kw in zip(positions, scores, keywords, strict=True)
            ]
        )

    def retrieve_products(self, query: RetrievalQuery, catalog: Catalog) -> list[RetrievedProduct]:
        """:meth:`retrieve` resolved to ``catalog``'s products (the contract's fast path).

        When ``catalog`` is the one this index was built over, the products come
        straight from it: no :class:`Candidate` per hit, no id looked up again. Over
        another catalog, or when a subclass overrides :meth:`retrieve`, the results of
        :meth:`retrieve` are hydrated as for any retriever.
        """
        if catalog is not self.catalog or not self._native_retrieve:
            return super().retrieve_products(query, catalog)
        positions, scores, keywords = self._retrieve(query)
        products = catalog.products
        return list(zip([products[d] for d in positions], keywords, scores, strict=True))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that changes what retrieve() returns must not be bypassed.
        cls._native_retrieve = cls.retrieve is BM25Retriever.retrieve

    _native_retrieve: bool = True

    def _retrieve(self, query: RetrievalQuery) -> tuple[list[int], list[float], list[str]]:
        """Catalog positions, scores and keywords of the hits, best first."""
        keywords: list[str] = []
        token_lists: list[tuple[str, ...]] = []
        for kw in dict.fromkeys(query.keywords):
            tokens = _query_tokens(kw) if kw else ()
            if tokens:
                keywords.append(kw)
                token_lists.append(tokens)
        if not keywords:
            return [], [], []
        index = self._get_index()
        k = query.k
        quota = query.per_keyword_k or -(-k // len(keywords))
        where = self._filter(index, query)
        if where is False:
            return [], [], []

        # A keyword walks past at most the products other keywords took before
        # it, so k products deep always fills its quota.
        streams = [
            zip(d.tolist(), w.tolist(), strict=True)
            for d, w in (self._ranked(index, tokens, k, where or None) for tokens in token_lists)
        ]
        picked: list[int] = []
        scores: list[float] = []
        used: list[str] = []
        seen: set[int] = set()
        taken = [0] * len(keywords)
        active = list(range(len(keywords)))
        paused: list[int] = []  # reached the quota but not exhausted
        limit = quota
        while active:
            still: list[int] = []
            for j in active:
                for d, score in streams[j]:  # noqa: B007 - used after the break
                    if d not in seen:
                        break
                else:
                    continue  # exhausted
                seen.add(d)
                picked.append(d)
                scores.append(score)
                used.append(keywords[j])
                if len(picked) >= k:
                    return picked, scores, used
                taken[j] += 1
                (still if taken[j] < limit else paused).append(j)
            active = still
            if not active and paused and query.per_keyword_k is None and limit < k:
                # Some keywords ran dry under the default quota: let the others backfill.
                active, paused, limit = sorted(paused), [], k
        return picked, scores, used

    @staticmethod
    def _filter(index: _Index, query: RetrievalQuery) -> _Filter | Literal[False] | None:
        """The query's department and exclusion filters.

        None when nothing is filtered; False when nothing can pass (no known department).
        """
        dept_ok: npt.NDArray[np.bool_] | None = None
        dept_key: tuple[int, ...] = ()
        if query.departments:
            codes = {index.dept_vocab.get(d.strip().lower()) for d in query.departments}
            dept_key = tuple(sorted(c for c in codes if c is not None))
            if not dept_key:
                return False
            dept_ok = np.zeros(len(index.dept_vocab), dtype=bool)
            dept_ok[list(dept_key)] = True
        excluded: IntArray32 | None = None
        if query.exclude_ids:
            pos = index.pos
            ex = sorted(pos[pid] for pid in query.exclude_ids if pid in pos)
            if ex:
                excluded = np.asarray(ex, dtype=np.int32)
        if dept_ok is None and excluded is None:
            return None
        return _Filter(dept_key, dept_ok, excluded)

    @property
    def run_inline(self) -> bool:
        """Inline once warm (a query takes well under a millisecond); in a thread while cold."""
        return self._index is not None


@dataclass(frozen=True)
class _Filter:
    """A query's filters: allowed department codes (``dept_key``) and excluded positions."""

    dept_key: tuple[int, ...]
    dept_ok: npt.NDArray[np.bool_] | None  # indexed by department code
    excluded: IntArray32 | None  # sorted product positions

    def not_excluded(self, docs: IntArray32) -> npt.NDArray[np.bool_]:
        if self.excluded is None:
            return np.ones(docs.size, dtype=bool)
        at = np.searchsorted(self.excluded, docs)
        at[at == self.excluded.size] = 0
        mask: npt.NDArray[np.bool_] = self.excluded[at] != docs
        return mask

    def keep(self, index: _Index, docs: IntArray32) -> npt.NDArray[np.bool_]:
        mask = self.not_excluded(docs)
        if self.dept_ok is not None:
            mask &= self.dept_ok[index.dept_codes[docs]]
        return mask


@dataclass(frozen=True)
class _Ranking:
    """A keyword's best products (at most ``_CACHE_DEPTH``); ``complete`` if that is all of them."""

    docs: IntArray32
    scores: FloatArray
    complete: bool


class _LRU:
    """A small thread-safe LRU of keyword rankings."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[_Key, _Ranking] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _Key) -> _Ranking | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: _Key, value: _Ranking) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)


@lru_cache(maxsize=65_536)
def _query_tokens(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def _top(scores: FloatArray, n: int) -> IntArray:
    """Positions of the ``n`` highest ``scores``, best first; ties keep position order."""
    size = scores.size
    if size <= n:
        return np.argsort(-scores, kind="stable")
    threshold = np.partition(scores, size - n)[size - n]
    above = np.flatnonzero(scores > threshold)
    ties = np.flatnonzero(scores == threshold)[: n - above.size]
    pick = np.concatenate([above, ties])
    pick.sort()
    return pick[np.argsort(-scores[pick], kind="stable")]
