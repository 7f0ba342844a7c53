"""The closed keyword vocabulary, built from the catalog, and shortlisting.

Every keyword a generator emits must come from here, so every keyword is a
real, retrievable term. The vocabulary holds department and aisle names and
the product-title n-grams (1..3 words) that occur in at least ``min_count``
products. ``shortlist(texts, k)`` ranks the vocabulary by lexical similarity
(word and character TF-IDF, scikit-learn) to free text such as a theme's
title and concepts: the candidates a keyword generator chooses from.

With an embedder attached (:meth:`KeywordTaxonomy.use_embedder`), the shortlist
also ranks the vocabulary by embedding cosine (the keywords embedded once,
stored on disk and memory-mapped) and fuses the two rankings by reciprocal-rank
fusion: ``score(kw) = w/(60 + rank_word) + 1/(60 + rank_semantic)``, where
``rank_word`` ranks the keywords sharing a word with the texts by word TF-IDF
(a keyword absent from a list gets nothing from it). With a keyword expander
(``shortlist(..., expander=...)``, :mod:`storefront_sdk.keyword_expansion`), its
rankings join the fusion, one RRF term each: what language models expect on a
shopping list for the theme (``mode="expanded"``). See docs/semantic.md.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .exceptions import ConfigurationError
from .text import STOP_WORDS, normalize, tokenize

if TYPE_CHECKING:
    from .catalog import Catalog
    from .embeddings import Embedder, EmbeddingStore
    from .keyword_expansion import KeywordExpander

ShortlistMode = Literal["auto", "lexical", "semantic", "fused", "expanded"]
RRF_K = 60

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
        self._memo: OrderedDict[tuple[Any, ...], tuple[str, ...]] = OrderedDict()
        self._embedder: Embedder | None = None
        self._store: EmbeddingStore | None = None
        self._vectors: np.ndarray | None = None
        #: Weight of the lexical ranking in the fused shortlist (the semantic one has 1).
        self.lexical_weight = 1.0

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
        return self._word is not None and (self._embedder is None or self._vectors is not None)

    def warm_up(self) -> None:
        """Fit the similarity index (done lazily on the first shortlist otherwise)."""
        if self._embedder is not None:
            self.keyword_vectors()
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

    def shortlist(
        self,
        texts: Sequence[str] | str,
        k: int = 100,
        *,
        mode: ShortlistMode = "auto",
        expander: KeywordExpander | None = None,
    ) -> list[str]:
        """The ``k`` keywords most similar to ``texts``, best first.

        Exact members among ``texts`` come first, then by similarity; keywords
        with no similarity at all are never returned. ``mode``: ``"lexical"``
        (TF-IDF), ``"semantic"`` (embedding cosine), ``"fused"`` (reciprocal-rank
        fusion of both), ``"expanded"`` (the fused rankings plus ``expander``'s;
        ``texts`` then start with the theme's title) or ``"auto"`` (expanded when
        an expander is given, else fused when an embedder is attached, else
        lexical). When the expander fails, the shortlist is the one without it
        and the open trace stage records why (``expansion_error``).
        """
        if isinstance(texts, str):
            texts = [texts]
        if mode == "auto":
            if expander is not None:
                mode = "expanded"
            else:
                mode = "fused" if self._embedder is not None else "lexical"
        if mode == "expanded" and expander is None:
            raise ConfigurationError('shortlist(mode="expanded") needs an expander')
        with_expander = expander if mode == "expanded" else None
        memo_key = (
            tuple(texts),
            k,
            mode,
            with_expander.fingerprint if with_expander is not None else None,
        )
        with self._lock:
            hit = self._memo.get(memo_key)
            if hit is not None:
                self._memo.move_to_end(memo_key)
                return list(hit)
        if mode == "lexical":
            result = self._shortlist(texts, k)
        else:
            try:
                result = self._semantic_shortlist(
                    texts, k, fused=mode != "semantic", expander=with_expander
                )
            except _ExpansionFailed:
                # degrade to the shortlist without the expander; not memoised: a later call retries
                if self._embedder is None:
                    return self._shortlist(texts, k)
                return self._semantic_shortlist(texts, k, fused=True)
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


    # -- semantic shortlisting -------------------------------------------------------
    def use_embedder(
        self, embedder: Embedder | None, *, store: EmbeddingStore | bool | None = True
    ) -> KeywordTaxonomy:
        """Attach ``embedder`` for semantic and fused shortlists (None detaches).

        The keywords' vectors are computed on first use and kept in ``store``
        (``True``: the default :class:`~storefront_sdk.embeddings.EmbeddingStore`;
        ``False``/``None``: in memory only), keyed by :attr:`version` and the
        embedder's model id. Returns ``self``.
        """
        with self._lock:
            self._embedder = embedder
            if store is True:
                from .embeddings import EmbeddingStore

                store = EmbeddingStore()
            self._store = store or None
            self._vectors = None
            self._memo.clear()
        return self

    @property
    def embedder(self) -> Embedder | None:
        """The attached embedder, if any."""
        return self._embedder

    def keyword_vectors(self) -> np.ndarray:
        """The keywords' embeddings, ``(len(self), dim)`` (computed or loaded once)."""
        if self._vectors is not None:
            return self._vectors
        emb = self._embedder
        if emb is None:
            raise ConfigurationError("no embedder attached: call use_embedder() first")
        with self._lock:
            if self._vectors is None:
                if self._store is not None:
                    self._vectors = self._store.get_or_compute(
                        "taxonomy", self._keywords, emb, version=self.version
                    )
                else:
                    self._vectors = emb.embed(list(self._keywords))
        return self._vectors

    def semantic_similarity(self, texts: Sequence[str]) -> np.ndarray:
        """Embedding cosine of every keyword to ``texts`` (max over texts), ``(len(self),)``."""
        texts = [t for t in texts if t and t.strip()]
        if not texts or self._embedder is None:
            return np.zeros(len(self._keywords))
        q = self._embedder.embed(texts)
        sims: np.ndarray = (self.keyword_vectors() @ q.T).max(axis=1)
        return sims

    def _semantic_shortlist(
        self,
        texts: Sequence[str],
        k: int,
        *,
        fused: bool,
        expander: KeywordExpander | None = None,
    ) -> list[str]:
        exact: list[str] = []
        for t in texts:
            c = self.canonical(t)
            if c is not None and c not in exact:
                exact.append(c)
        # Each text, and all of them joined (a theme's title and concepts read as one).
        queries = [*texts, " ".join(texts)] if len(texts) > 1 else list(texts)
        sem = self.semantic_similarity(queries)
        depth = min(len(self._keywords), max(2 * k, 200))
        scores: dict[int, float] = {}
        if self._embedder is not None:
            sem_top = np.argsort(-sem, kind="stable")[:depth]
            for rank, i in enumerate(sem_top):
                scores[int(i)] = 1.0 / (RRF_K + rank + 1)
        if expander is not None:
            for prior in self._expansion(expander, texts):
                # keywords sharing a first token tie in a prior: cosine breaks the tie
                order = np.lexsort((-sem, -prior))[:depth]
                for rank, i in enumerate(order[np.isfinite(prior[order])]):
                    scores[int(i)] = scores.get(int(i), 0.0) + 1.0 / (RRF_K + rank + 1)
        if fused:
            # The lexical side of the fusion is word matches only: character n-grams
            # ("film" ~ "formula") are the lexical mode's typo tolerance, and the
            # embedding already covers near spellings.
            self.warm_up()
            w = (self._word.transform(texts) @ self._word_m).toarray().max(axis=0)
            hits = np.flatnonzero(w > 0)
            for rank, i in enumerate(hits[np.argsort(-w[hits], kind="stable")][:depth]):
                scores[int(i)] = scores.get(int(i), 0.0) + self.lexical_weight / (RRF_K + rank + 1)
        ordered = sorted(scores, key=lambda i: -scores[i])
        rest = [self._keywords[i] for i in ordered if self._keywords[i] not in exact]
        return (exact + rest)[:k]

    def _expansion(self, expander: KeywordExpander, texts: Sequence[str]) -> list[np.ndarray]:
        """The expander's rankings, validated; failures become :class:`_ExpansionFailed`."""
        from .tracing import annotate, event

        try:
            priors = [np.asarray(r, dtype=np.float64) for r in expander.rankings(texts, self)]
            if not priors:
                raise ValueError("the expander returned no ranking")
            for prior in priors:
                if prior.shape != (len(self._keywords),) or np.isnan(prior).any():
                    raise ValueError(
                        f"expected {len(self._keywords)} scores without NaN, "
                        f"got shape {prior.shape}"
                    )
        except Exception as exc:
            message = f"keyword expansion failed, fused shortlist used: {type(exc).__name__}: {exc}"
            annotate(expansion_error=message[:300])
            event("expansion_failed", message[:500])
            raise _ExpansionFailed(message) from exc
        annotate(expansion=expander.fingerprint[:240])
        return priors


class _ExpansionFailed(Exception):
    """The expander raised or returned garbage; the caller degrades to the fused shortlist."""


def _bad_edge(word: str) -> bool:
    return word in STOP_WORDS or word.isdigit() or len(word) < 2
