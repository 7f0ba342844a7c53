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
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..interfaces import Retriever
from ..text import tokenize
from ..types import Candidate, Product, RetrievalQuery

__all__ = ["BM25Retriever"]

_PRODUCT_TEXT_FIELDS = ("text", "title", "aisle", "department", "brand")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Index:
    """The built index: read-only after construction, so safe to share between threads."""

    vocab: dict[str, int]
    indptr: IntArray  # CSR row pointers, one row per term
    docs: npt.NDArray[np.int32]  # product positions, ascending within a row
    weights: FloatArray  # BM25 weight of (term, product)
    idf: FloatArray
    doc_len: IntArray
    avgdl: float
    average_idf: float
    dept_codes: npt.NDArray[np.int32]  # lower-cased department code per product
    dept_vocab: dict[str, int]
    ids: tuple[str, ...]
    pos: dict[str, int]  # product id -> position


class BM25Retriever(Retriever):
    """BM25 (Okapi) over the catalog's product text; the SDK's default retriever.

    ``k1``, ``b`` and ``epsilon`` mean what they mean in ``rank_bm25.BM25Okapi``.
    ``fields`` names what is indexed: ``"text"`` (title, aisle, department,
    brand), another product field, an ``attributes`` key, or several of these.
    The index is built on first use or in :meth:`warm_up`.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        epsilon: float = 0.25,
        fields: str | Sequence[str] = "text",
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
        self.catalog = catalog
        self.k1 = k1
        self.b = b
        self.epsilon = epsilon
        self.fields: tuple[str, ...] = names
        self._index: _Index | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"BM25Retriever(catalog={self.catalog!r}, k1={self.k1}, b={self.b}, "
            f"epsilon={self.epsilon}, fields={list(self.fields)!r})"
        )

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
    def _matches(
        self, index: _Index, tokens: Iterable[str]
    ) -> tuple[npt.NDArray[np.int32], FloatArray]:
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

    def scores(self, text: str) -> FloatArray:
        """Score of every product for ``text``, in catalog order (rank_bm25's ``get_scores``)."""
        index = self._get_index()
        out = np.zeros(len(index.ids), dtype=np.float64)
        docs, weights = self._matches(index, tokenize(text))
        out[docs] = weights
        return out

    def search(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` best ``(product_id, score)`` for one free-text query, best first.

        Ties keep catalog order; products matching no query term are never returned.
        """
        if k < 1:
            raise ConfigurationError(f"BM25Retriever.search: k must be >= 1, got {k}")
        index = self._get_index()
        docs, weights = self._matches(index, tokenize(text))
        order = _top(weights, k)
        ids = index.ids
        return [
            (ids[d], float(s))
            for d, s in zip(docs[order].tolist(), weights[order].tolist(), strict=True)
        ]

    # -- the Retriever contract ---------------------------------------------------
    def retrieve(self, query: RetrievalQuery) -> list[Candidate]:
        """Each keyword searched on its own; lists merged round-robin, deduplicated, filtered."""
        keywords = list(dict.fromkeys(kw for kw in query.keywords if kw and kw.strip()))
        if not keywords:
            return []
        index = self._get_index()
        k = query.k
        quota = query.per_keyword_k or -(-k // len(keywords))
        strict = query.per_keyword_k is not None

        allowed: npt.NDArray[np.int32] | None = None
        if query.departments:
            codes = {index.dept_vocab.get(d.strip().lower()) for d in query.departments}
            allowed = np.fromiter((c for c in codes if c is not None), dtype=np.int32)
            if allowed.size == 0:
                return []
        excluded: npt.NDArray[np.int32] | None = None
        if query.exclude_ids:
            ex = [index.pos[pid] for pid in query.exclude_ids if pid in index.pos]
            if ex:
                excluded = np.asarray(ex, dtype=np.int32)

        # Deep enough that a keyword still fills its quota after losing
        # products to keywords earlier in the round-robin.
        depth = min(k, quota) + (k if len(keywords) > 1 else 0)
        lists: list[tuple[list[int], list[float]]] = []
        for kw in keywords:
            docs, weights = self._matches(index, tokenize(kw))
            if docs.size and (allowed is not None or excluded is not None):
                keep = np.ones(docs.size, dtype=bool)
                if allowed is not None:
                    keep &= np.isin(index.dept_codes[docs], allowed)
                if excluded is not None:
                    keep &= ~np.isin(docs, excluded)
                docs, weights = docs[keep], weights[keep]
            order = _top(weights, depth)
            lists.append((docs[order].tolist(), weights[order].tolist()))

        out: list[Candidate] = []
        seen: set[int] = set()
        ids = index.ids
        taken = [0] * len(keywords)
        cursor = [0] * len(keywords)
        limit = quota
        while len(out) < k:
            progressed = False
            for j, (docs_j, weights_j) in enumerate(lists):
                if taken[j] >= limit:
                    continue
                c = cursor[j]
                while c < len(docs_j) and docs_j[c] in seen:
                    c += 1
                if c >= len(docs_j):
                    cursor[j] = c
                    continue
                d = docs_j[c]
                seen.add(d)
                cursor[j] = c + 1
                taken[j] += 1
                progressed = True
                # Values are ours and already valid: skip pydantic validation on the hot path.
                out.append(
                    Candidate.model_construct(
                        product_id=ids[d], score=weights_j[c], keyword=keywords[j]
                    )
                )
                if len(out) >= k:
                    break
            if not progressed:
                if strict or limit >= k:
                    break
                # Some keywords ran dry under the default quota: let the others backfill.
                limit = k
        return out

    async def aretrieve(self, query: RetrievalQuery) -> list[Candidate]:
        """Inline once warm (a query takes well under a millisecond); in a thread while cold."""
        if self._index is None:
            return await asyncio.to_thread(self.retrieve, query)
        return self.retrieve(query)


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
