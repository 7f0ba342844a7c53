"""A fast lexical relevance filter: TF-IDF cosine between theme and product text."""

from __future__ import annotations

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
        self._matrix: Any = None
        self._indexed: tuple[Product, ...] = ()
        self._vocab: dict[str, int] = {}
        self._idf: Any = None

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
            matrix = vec.fit_transform(corpus).tocsr()
            if self.catalog is not None:
                self._rows = {p.id: i for i, p in enumerate(self.catalog)}
                self._indexed = self.catalog.products
                self._matrix = matrix
            self._vocab = vec.vocabulary_
            self._idf = vec.idf_
            self._vec = vec

    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        if not products:
            return []
        self.warm_up()
        q = self._query_vector(theme.text)
        rows = [self._rows.get(p.id, -1) for p in products]
        indexed = self._indexed
        if self._matrix is not None and all(
            r >= 0 and indexed[r] is p for r, p in zip(rows, products, strict=True)
        ):
            m = self._matrix[rows]
        else:  # products from outside the catalog (or changed copies): vectorise them now
            m = self._vec.transform([p.text for p in products])
        sims = m @ q
        named = {normalize(c) for c in theme.concepts}
        out = []
        for p, s in zip(products, sims, strict=True):
            v = float(s)
            if named and (normalize(p.aisle) in named or normalize(p.department) in named):
                v = max(v, self.category_match)
            out.append(min(max(v, 0.0), 1.0))
        return out

    def _query_vector(self, text: str) -> np.ndarray:
        """The theme's TF-IDF vector as the fitted vectoriser makes it, without its overhead."""
        q = np.zeros(len(self._idf))
        for tok, count in Counter(tokenize(text)).items():
            if tok in self.ignore:
                continue
            j = self._vocab.get(tok)
            if j is not None:
                q[j] = (1.0 + np.log(count)) * self._idf[j]
        norm = float(np.linalg.norm(q))
        return q / norm if norm else q
