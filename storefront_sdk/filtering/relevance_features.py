"""Lexical (theme, product) features for the trainable relevance filter.

Word and character TF-IDF cosines (own, exactly serialisable vectorisers), a
normalised BM25 score, department/aisle agreement, concept hits in the title,
query-term coverage of the title (plain, IDF-weighted, by 4-letter prefix, by
word pair), the theme title's head noun in the title and its position, number
matches, title and theme-title lengths, and -- with an embedder -- the
embedding cosine. One concept: turning a pair into the model's feature row.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..text import STOP_WORDS, normalize, tokenize
from ..types import Product, Theme

if TYPE_CHECKING:
    from ..embeddings import Embedder

__all__ = ["EMBEDDING_FEATURE", "FEATURE_NAMES", "V1_FEATURE_NAMES"]

FEATURE_NAMES: tuple[str, ...] = (
    "word_cosine",  # word TF-IDF cosine, theme text vs product text
    "char_cosine",  # character 3-5-gram TF-IDF cosine, same texts
    "concept_cosine",  # word TF-IDF cosine, theme concepts only vs product text
    "bm25",  # BM25 of the theme's words against the product text, normalised to [0, 1]
    "department_match",  # product department is one of theme.departments
    "department_mismatch",  # the theme restricts departments and this is not one of them
    "category_named",  # a concept *is* the product's aisle or department name
    "category_overlap",  # best share of a concept's words found in the aisle/department name
    "concept_in_title",  # a whole concept phrase occurs in the product title
    "concept_hit_share",  # share of concepts with at least one word in the title
    "title_word_hit",  # a content word of the theme title occurs in the product text
    # -- query-term coverage (format version 2) --
    "term_coverage",  # share of the theme's content words found in the product title
    "idf_coverage",  # the same, weighted by the words' IDF (rare words count more)
    "prefix_coverage",  # share of theme words whose 4-letter prefix starts a title word
    "bigram_coverage",  # share of the theme's word pairs found as pairs in the title
    "head_in_title",  # the theme title's last content word (its head noun) is in the title
    "head_position",  # where the head occurs in the title (0 first .. 1 last; 1.5 absent)
    "number_match",  # share of the theme's numbers found in the product text
    "number_missing",  # the theme has numbers and none is in the product text
    "title_words",  # log(1 + product title words)
    "theme_title_words",  # content words of the theme's title (a search query's length)
)
"""The features, in the order of the model's coefficients."""

V1_FEATURE_NAMES: tuple[str, ...] = FEATURE_NAMES[:11]
"""The features of format-version-1 model files (still loadable)."""

EMBEDDING_FEATURE = "embedding_cosine"
"""Appended to :data:`FEATURE_NAMES` when the filter has an ``embedder``: the cosine of
the theme's and the product's sentence embeddings."""

FloatArray = NDArray[np.float64]

# -- text vectorisers (own implementation: exactly serialisable, no pickle) -------------------


def _word_terms(text: str) -> list[str]:
    return tokenize(text)


def _char_terms(text: str) -> list[str]:
    out: list[str] = []
    for tok in tokenize(text):
        padded = f" {tok} "
        for n in (3, 4, 5):
            out.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return out


_ANALYZERS: dict[str, Callable[[str], list[str]]] = {"word": _word_terms, "char": _char_terms}


class _Tfidf:
    """Sublinear TF x smooth IDF, L2-normalised rows; the vocabulary is a plain list."""

    def __init__(
        self, analyzer: str, vocabulary: Sequence[str], df: Sequence[int], n_docs: int
    ) -> None:
        self.analyzer = analyzer
        self.vocabulary = list(vocabulary)
        self.index = {t: i for i, t in enumerate(self.vocabulary)}
        self.df = np.asarray(df, dtype=np.float64)
        self.n_docs = int(n_docs)
        self.idf = np.log((1.0 + self.n_docs) / (1.0 + self.df)) + 1.0
        self._idf: list[float] = self.idf.tolist()
        self._terms = _ANALYZERS[analyzer]
        self.memo_size = 20_000
        self._memo: dict[str, dict[int, float]] = {}

    @classmethod
    def fit(cls, analyzer: str, docs: Iterable[str], max_features: int | None) -> _Tfidf:
        terms = _ANALYZERS[analyzer]
        df: Counter[str] = Counter()
        n = 0
        for doc in docs:
            df.update(set(terms(doc)))
            n += 1
        ranked = sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))
        if max_features is not None:
            ranked = ranked[:max_features]
        ranked.sort(key=lambda kv: kv[0])
        return cls(analyzer, [t for t, _ in ranked], [c for _, c in ranked], n)

    def vector(self, text: str) -> dict[int, float]:
        """The L2-normalised TF-IDF vector of ``text`` as ``{term index: weight}`` (memoised)."""
        vec = self._memo.get(text)
        if vec is not None:
            return vec
        vec = {}
        for term, tf in Counter(self._terms(text)).items():
            i = self.index.get(term)
            if i is not None:
                vec[i] = (1.0 + math.log(tf)) * self._idf[i]
        norm = math.sqrt(sum(v * v for v in vec.values()))
        if norm > 0:
            vec = {i: v / norm for i, v in vec.items()}
        if len(self._memo) >= self.memo_size:
            self._memo.clear()
        self._memo[text] = vec
        return vec

    def idf_of(self, term: str) -> float:
        """The term's IDF (an unseen term gets the largest one)."""
        i = self.index.get(term)
        if i is not None:
            return self._idf[i]
        return math.log((1.0 + self.n_docs) / 1.0) + 1.0

    def cosine(self, query: str, texts: Sequence[str]) -> FloatArray:
        q = self.vector(query)
        out = np.zeros(len(texts), dtype=np.float64)
        if not q:
            return out
        for r, text in enumerate(texts):
            out[r] = sum(w * q[i] for i, w in self.vector(text).items() if i in q)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "analyzer": self.analyzer,
            "n_docs": self.n_docs,
            "vocabulary": list(self.vocabulary),
            "df": [int(x) for x in self.df],
        }


class _Features:
    def __init__(
        self,
        word: _Tfidf,
        char: _Tfidf,
        avgdl: float,
        k1: float,
        b: float,
        *,
        embedder: Embedder | None = None,
    ) -> None:
        self.embedder = embedder
        self.n_features = len(FEATURE_NAMES) + (embedder is not None)
        self.word = word
        self.char = char
        self.avgdl = avgdl
        self.k1 = k1
        self.b = b
        df = np.asarray(word.df, dtype=np.float64)
        n = float(word.n_docs)
        self._bm25_idf = dict(
            zip(word.vocabulary, np.log(1.0 + (n - df + 0.5) / (df + 0.5)), strict=True)
        )
        self._unseen_idf = math.log(1.0 + (n + 0.5) / 0.5)

    def matrix(self, pairs: Sequence[tuple[Theme, Product]]) -> FloatArray:
        """Feature rows for ``pairs``, computed theme by theme (same order as ``pairs``)."""
        X = np.zeros((len(pairs), self.n_features), dtype=np.float64)
        groups: dict[int, list[int]] = defaultdict(list)  # by theme identity: themes hold lists
        for i, (theme, _) in enumerate(pairs):
            groups[id(theme)].append(i)
        for idx in groups.values():
            X[idx] = self.matrix_for_theme(pairs[idx[0]][0], [pairs[i][1] for i in idx])
        return X

    def matrix_for_theme(self, theme: Theme, products: Sequence[Product]) -> FloatArray:
        texts = [p.text for p in products]
        X = np.zeros((len(products), self.n_features), dtype=np.float64)
        if self.embedder is not None:
            vecs = self.embedder.embed([theme.text, *texts])
            X[:, len(FEATURE_NAMES)] = vecs[1:] @ vecs[0]
        X[:, 0] = self.word.cosine(theme.text, texts)
        X[:, 1] = self.char.cosine(theme.text, texts)
        concepts_text = " ".join(theme.concepts)
        if concepts_text.strip():
            X[:, 2] = self.word.cosine(concepts_text, texts)
        query = sorted(set(tokenize(theme.text)))  # sorted: float sums in a fixed order
        depts = {normalize(d) for d in theme.departments}
        concepts = [normalize(c) for c in theme.concepts if normalize(c)]
        concept_set = set(concepts)
        concept_tokens = [set(tokenize(c)) for c in concepts]
        concept_tokens = [t for t in concept_tokens if t]
        concept_seqs = [" ".join(tokenize(c)) for c in concepts]
        concept_seqs = [s for s in concept_seqs if s]
        title_words = {t for t in tokenize(theme.title) if t not in STOP_WORDS and not t.isdigit()}
        theme_terms = list(dict.fromkeys(tokenize(theme.text)))
        head_terms = [t for t in tokenize(theme.title) if not t.isdigit()]
        head = head_terms[-1] if head_terms else None
        numbers = {t for t in theme_terms if t.isdigit()}
        term_idf = [self.word.idf_of(t) for t in theme_terms]
        idf_total = sum(term_idf)
        theme_pairs = set(pairwise(theme_terms))
        X[:, 20] = float(len(tokenize(theme.title)))
        for i, p in enumerate(products):
            doc = tokenize(p.text)
            X[i, 3] = self._bm25(query, doc)
            dept = normalize(p.department)
            aisle = normalize(p.aisle)
            if depts:
                X[i, 4] = float(dept in depts)
                X[i, 5] = float(dept not in depts)
            X[i, 6] = float(bool(concept_set) and (aisle in concept_set or dept in concept_set))
            cat_tokens = set(tokenize(f"{p.aisle} {p.department}"))
            if concept_tokens and cat_tokens:
                X[i, 7] = max(len(ct & cat_tokens) / len(ct) for ct in concept_tokens)
            title_tokens = tokenize(p.title)
            title_seq = f" {' '.join(title_tokens)} "
            title_set = set(title_tokens)
            if concept_seqs:
                X[i, 8] = float(any(f" {s} " in title_seq for s in concept_seqs))
            if concept_tokens:
                X[i, 9] = sum(1 for ct in concept_tokens if ct & title_set) / len(concept_tokens)
            if title_words:
                X[i, 10] = float(bool(title_words & set(doc)))
            if theme_terms and title_tokens:
                hits = [t in title_set for t in theme_terms]
                X[i, 11] = sum(hits) / len(theme_terms)
                X[i, 12] = sum(w for w, h in zip(term_idf, hits, strict=True) if h) / idf_total
                prefixes = {t[:4] for t in title_tokens}
                X[i, 13] = sum(t[:4] in prefixes for t in theme_terms) / len(theme_terms)
                if theme_pairs:
                    pairs = set(pairwise(title_tokens))
                    X[i, 14] = len(theme_pairs & pairs) / len(theme_pairs)
            if head is not None:
                X[i, 15] = float(head in title_set)
                X[i, 16] = (
                    title_tokens.index(head) / max(len(title_tokens) - 1, 1)
                    if head in title_set
                    else 1.5
                )
            if numbers:
                found = len(numbers & set(doc)) / len(numbers)
                X[i, 17] = found
                X[i, 18] = float(found == 0.0)
            X[i, 19] = math.log1p(len(title_tokens))
        return X

    def _bm25(self, query: Sequence[str], doc: list[str]) -> float:
        if not query or not doc:
            return 0.0
        tf = Counter(doc)
        norm = self.k1 * (1.0 - self.b + self.b * len(doc) / self.avgdl)
        score = 0.0
        best = 0.0
        for q in query:
            idf = self._bm25_idf.get(q, self._unseen_idf)
            best += idf * (self.k1 + 1.0)
            f = tf.get(q, 0)
            if f:
                score += idf * f * (self.k1 + 1.0) / (f + norm)
        return score / best if best > 0 else 0.0


# -- calibration ---------------------------------------------------------------------------------
