"""A fast lexical relevance filter: TF-IDF cosine between theme and product text."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..catalog import Catalog
from ..interfaces import RelevanceFilter
from ..text import normalize, tokenize
from ..types import Product, Theme

__all__ = ["MARKETING_WORDS", "LexicalRelevanceFilter"]

MARKETING_WORDS = frozenset(
    tokenize(
        "fresh organic natural original classic premium select favorite favourite style "
        "simply pure real homestyle traditional gourmet artisan best great "
        "food item product variety assorted"
    )
)
"""Words that describe how a product is sold, or nothing at all, not what it is: a theme's
"fresh" must not vouch for "Fresh Scent Dishwasher Cleaner", nor "food" for dog food.
Ignored on the theme side."""


class LexicalRelevanceFilter(RelevanceFilter):
    """Cosine similarity of word TF-IDF vectors (IDF from the catalog), in [0, 1].

    A product whose aisle or department is named by one of the theme's concepts
    scores at least ``category_match``: "yogurt" as a concept vouches for
    everything in the yogurt aisle. (``Theme.departments`` only restricts
    retrieval; it vouches for nothing.)
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        threshold: float = 0.12,
        *,
        category_match: float = 0.6,
    ) -> None:
        self.catalog = catalog
        self.threshold = threshold
        self.category_match = category_match
        self.ignore: frozenset[str] = MARKETING_WORDS
        self._vec: Any = None
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}
        self._indexed: tuple[Product, ...] = ()
        self._vocab: dict[str, int] = {}
        self._idf: list[float] = []
        # The catalog's TF-IDF matrix by column (CSC): a theme has a handful of terms, so
        # its cosines are a sum over those columns, not a product with a row slice.
        self._col_ptr: Any = None
        self._col_rows: Any = None
        self._col_vals: Any = None
        # Per catalog row, the codes of its normalised aisle and department names.
        self._category: dict[str, int] = {}
        self._aisle_code: Any = None
        self._dept_code: Any = None

    @property
    def run_inline(self) -> bool:
        return self._vec is not None  # cheap once fitted; the fit itself goes to a thread

    def warm_up(self) -> None:
        if self._vec is not None:
            return
        with self._lock:
            if self._vec is not None:
                return
            from sklearn.feature_extraction.text import TfidfVectorizer

            vec = TfidfVectorizer(
                tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True
            )
            corpus = [p.text for p in self.catalog] if self.catalog is not None else ["placeholder"]
            matrix = vec.fit_transform(corpus)
            if self.catalog is not None:
                self._rows = {p.id: i for i, p in enumerate(self.catalog)}
                self._indexed = self.catalog.products
                csc = matrix.tocsc()
                csc.sort_indices()
                self._col_ptr = csc.indptr
                self._col_rows = csc.indices
                self._col_vals = csc.data
                codes = self._category
                self._aisle_code = np.array(
                    [codes.setdefault(normalize(p.aisle), len(codes)) for p in self.catalog],
                    dtype=np.int64,
                )
                self._dept_code = np.array(
                    [codes.setdefault(normalize(p.department), len(codes)) for p in self.catalog],
                    dtype=np.int64,
                )
            self._vocab = vec.vocabulary_
            self._idf = vec.idf_.tolist()
            self._vec = vec

    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        if not products:
            return []
        self.warm_up()
        terms = self._query_terms(theme.text)
        named = {normalize(c) for c in theme.concepts}
        get = self._rows.get
        rows = [get(p.id, -1) for p in products]
        indexed = self._indexed
        if self._col_ptr is not None and all(
            r >= 0 and indexed[r] is p for r, p in zip(rows, products, strict=True)
        ):
            return self._score_rows(np.array(rows, dtype=np.intp), terms, named)
        # Products from outside the catalog (or changed copies): vectorise them now.
        q = np.zeros(len(self._idf))
        for j, w in terms:
            q[j] = w
        sims = self._vec.transform([p.text for p in products]) @ q
        out = []
        for p, s in zip(products, sims, strict=True):
            v = float(s)
            if named and (normalize(p.aisle) in named or normalize(p.department) in named):
                v = max(v, self.category_match)
            out.append(min(max(v, 0.0), 1.0))
        return out

    def _score_rows(
        self, rows: np.ndarray, terms: list[tuple[int, float]], named: set[str]
    ) -> list[float]:
        """Cosines of catalog rows: the theme's few columns summed into one dense vector."""
        ptr, col_rows, col_vals = self._col_ptr, self._col_rows, self._col_vals
        acc = np.zeros(len(self._indexed))
        for j, w in terms:
            lo, hi = ptr[j], ptr[j + 1]
            acc[col_rows[lo:hi]] += w * col_vals[lo:hi]  # a column's rows are distinct
        sims = acc[rows]
        codes = [self._category[n] for n in named if n in self._category]
        if codes:
            wanted = np.zeros(len(self._category), dtype=bool)
            wanted[codes] = True
            hit = wanted[self._aisle_code[rows]] | wanted[self._dept_code[rows]]
            sims = np.where(hit, np.maximum(sims, self.category_match), sims)
        out: list[float] = np.clip(sims, 0.0, 1.0).tolist()
        return out

    def _query_terms(self, text: str) -> list[tuple[int, float]]:
        """The theme's L2-normalised TF-IDF vector as ``(column, weight)`` pairs, as the
        fitted vectoriser (sublinear tf) would make it, minus the ignored words."""
        terms: list[tuple[int, float]] = []
        for tok, count in Counter(tokenize(text)).items():
            if tok in self.ignore:
                continue
            j = self._vocab.get(tok)
            if j is not None:
                terms.append((j, (1.0 + math.log(count)) * self._idf[j]))
        norm = math.sqrt(sum(w * w for _, w in terms))
        return [(j, w / norm) for j, w in terms] if norm else []
