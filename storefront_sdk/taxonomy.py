"""The closed keyword vocabulary, built from the catalog, and shortlisting.

Every keyword a generator emits must come from here, so every keyword is a
real, retrievable term. The vocabulary holds department and aisle names and
the product-title n-grams (1..3 words) that occur in at least ``min_count``
products. ``shortlist(texts, k)`` ranks the vocabulary by lexical similarity
(word and character TF-IDF, scikit-learn) to free text such as a theme's
title and concepts: the candidates a keyword generator chooses from.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import ConfigurationError
from .text import STOP_WORDS, normalize, tokenize

if TYPE_CHECKING:
    from .catalog import Catalog

__all__ = ["KeywordTaxonomy"]


class KeywordTaxonomy:
    """A closed, ordered set of keywords with similarity shortlisting.

    Keywords are stored normalised (lower case, single spaces); membership
    tests normalise their argument the same way.
    """

    def __init__(self, keywords: Iterable[str], *, name: str = "taxonomy") -> None:
        seen: dict[str, None] = {}
        for kw in keywords:
            norm = normalize(kw)
            if norm and tokenize(norm):
                seen.setdefault(norm, None)
        if not seen:
            raise ConfigurationError("a keyword taxonomy needs at least one keyword")
        self.name = name
        self._keywords: tuple[str, ...] = tuple(seen)
        self._index = {kw: i for i, kw in enumerate(self._keywords)}
        self._lock = threading.RLock()
        self._word: Any = None
        self._char: Any = None
        self._word_m: Any = None
        self._char_m: Any = None
        self.memo_size = 4096
        self._memo: OrderedDict[tuple[tuple[str, ...], int], tuple[str, ...]] = OrderedDict()

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_catalog(
        cls, catalog: Catalog, *, min_count: int = 3, max_ngram: int = 3, max_keywords: int = 50_000
    ) -> KeywordTaxonomy:
        """Departments, aisles and frequent title n-grams of ``catalog``.

        An n-gram counts once per product; n-grams that start or end with a
        stop word or a number are skipped ("of the", "12"). The order (and so
        :attr:`version`, shortlist ties and every cache key built on them) is a
        function of the catalog alone: by count, ties alphabetical, never by
        set iteration order (which changes with ``PYTHONHASHSEED``).
        """
        counts: Counter[str] = Counter()
        for p in catalog:
            words = normalize(p.title).split()
            grams: dict[str, None] = {}  # ordered, unlike a set
            for n in range(1, max_ngram + 1):
                for i in range(len(words) - n + 1):
                    gram = words[i : i + n]
                    if _bad_edge(gram[0]) or _bad_edge(gram[-1]):
                        continue
                    grams[" ".join(gram)] = None
            counts.update(grams.keys())
        ranked = sorted(counts.items(), key=lambda gc: (-gc[1], gc[0]))
        frequent = [g for g, c in ranked if c >= min_count and len(g) > 2]
        kws = [*catalog.departments, *catalog.aisles, *frequent[:max_keywords]]
        return cls(kws, name=f"{catalog.name}-taxonomy")

    # -- collection protocol -----------------------------------------------------
    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and (
            keyword in self._index or normalize(keyword) in self._index
        )

    def __len__(self) -> int:
        return len(self._keywords)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keywords)

    def __repr__(self) -> str:
        return f"KeywordTaxonomy(name={self.name!r}, keywords={len(self)})"

    @property
    def keywords(self) -> tuple[str, ...]:
        return self._keywords

    def canonical(self, keyword: str) -> str | None:
        """The taxonomy's spelling of ``keyword``, or None if it is not a member."""
        if keyword in self._index:
            return keyword
        norm = normalize(keyword)
        return norm if norm in self._index else None

    @cached_property
    def version(self) -> str:
        """A fingerprint of the vocabulary (part of generation cache keys)."""
        return hashlib.sha256("\n".join(self._keywords).encode()).hexdigest()[:16]

    # -- shortlisting ----------------------------------------------------------------
    @property
    def is_warm(self) -> bool:
        """Whether the similarity index is fitted (shortlists then cost a millisecond or two)."""
        return self._word is not None

    def warm_up(self) -> None:
        """Fit the similarity index (done lazily on the first shortlist otherwise)."""
        if self._word is not None:
            return
        with self._lock:
            if self._word is not None:
                return
            from sklearn.feature_extraction.text import TfidfVectorizer

            word = TfidfVectorizer(
                tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True
            )
            char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True)
            self._word_m = word.fit_transform(self._keywords).T.tocsr()
            self._char_m = char.fit_transform(self._keywords).T.tocsr()
            self._char = char
            self._word = word

    def similarity(self, texts: Sequence[str]) -> np.ndarray:
        """Similarity of every keyword to ``texts`` (max over texts), shape ``(len(self),)``."""
        self.warm_up()
        texts = [t for t in texts if t and t.strip()]
        if not texts:
            return np.zeros(len(self._keywords))
        qw = self._word.transform(texts)
        qc = self._char.transform(texts)
        return self._combined(qw, qc)

    def _combined(self, qw: Any, qc: Any) -> np.ndarray:
        # (n_texts x F) @ (F x K): keyword matrices are stored transposed as (F x K).
        w = (qw @ self._word_m).toarray()
        c = (qc @ self._char_m).toarray()
        combined: np.ndarray = (0.65 * w + 0.35 * c).max(axis=0)
        return combined

    def shortlist(self, texts: Sequence[str] | str, k: int = 100) -> list[str]:
        """The ``k`` keywords most similar to ``texts``, best first.

        Exact members among ``texts`` come first, then by similarity; keywords
        with no similarity at all are never returned.
        """
        if isinstance(texts, str):
            texts = [texts]
        memo_key = (tuple(texts), k)
        with self._lock:
            hit = self._memo.get(memo_key)
            if hit is not None:
                self._memo.move_to_end(memo_key)
                return list(hit)
        result = self._shortlist(texts, k)
        with self._lock:
            self._memo[memo_key] = tuple(result)
            if len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return result

    def _shortlist(self, texts: Sequence[str], k: int) -> list[str]:
        exact: list[str] = []
        for t in texts:
            c = self.canonical(t)
            if c is not None and c not in exact:
                exact.append(c)
        sims = self.similarity(texts)
        k_rest = max(k - len(exact), 0)
        if k_rest and sims.size:
            top = np.argpartition(-sims, min(k_rest + len(exact), sims.size - 1))[
                : k_rest + len(exact)
            ]
            top = top[np.argsort(-sims[top], kind="stable")]
            rest = [
                self._keywords[i] for i in top if sims[i] > 0 and self._keywords[i] not in exact
            ]
        else:
            rest = []
        return (exact + rest)[:k]


def _bad_edge(word: str) -> bool:
    return word in STOP_WORDS or word.isdigit() or len(word) < 2
