"""A relevance filter you train on your own labels: calibrated logistic regression.

:class:`TrainableRelevanceFilter` scores a (theme, product) pair from a dozen
cheap lexical features -- word and character TF-IDF cosine, a BM25 score,
department/aisle agreement with the theme, concept hits in the title -- with a
scikit-learn ``LogisticRegression`` whose output is calibrated (Platt or
isotonic, fitted on out-of-fold predictions) so ``threshold=0.5`` means
"more likely on-theme than not".

A fitted filter saves to JSON (:meth:`~TrainableRelevanceFilter.save`):
coefficients, calibration, vocabularies and document frequencies. No pickle:
loading a file from somewhere else cannot run code, and a damaged file fails
with an error naming the file and field.

No labels yet? :func:`weak_labels` bootstraps them from the catalog's own
structure (positives: products of the aisle a theme names; negatives: products
of other aisles and departments).
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np
from numpy.typing import NDArray

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..interfaces import RelevanceFilter
from ..text import STOP_WORDS, normalize, tokenize
from ..types import Product, Theme

if TYPE_CHECKING:
    from ..embeddings import Embedder

__all__ = ["FEATURE_NAMES", "TrainableRelevanceFilter", "aisle_themes", "weak_labels"]

FORMAT = "storefront_sdk.TrainableRelevanceFilter"
FORMAT_VERSION = 1

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
)
"""The features, in the order of the model's coefficients."""

EMBEDDING_FEATURE = "embedding_cosine"
"""Appended to :data:`FEATURE_NAMES` when the filter has an ``embedder``: the cosine of
the theme's and the product's sentence embeddings."""

Calibration = Literal["auto", "sigmoid", "isotonic", "none"]
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


# -- the filter -------------------------------------------------------------------------------


class TrainableRelevanceFilter(RelevanceFilter):
    """Calibrated logistic regression over lexical (theme, product) features.

    ``fit(pairs, labels)`` learns from labelled pairs (1 = on theme); ``score``
    returns calibrated probabilities; products at or above ``threshold`` are
    kept. ``catalog`` (optional) supplies the corpus for IDF and BM25
    statistics; otherwise the products in the training pairs do.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        C: float = 1.0,
        calibration: Calibration = "auto",
        cv: int = 5,
        class_weight: Literal["balanced"] | None = "balanced",
        catalog: Catalog | None = None,
        max_char_features: int = 50_000,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        random_state: int = 0,
        embedder: Embedder | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigurationError(f"threshold must be in [0, 1], got {threshold}")
        if calibration not in ("auto", "sigmoid", "isotonic", "none"):
            raise ConfigurationError(
                f"calibration must be auto, sigmoid, isotonic or none, got {calibration!r}"
            )
        self.threshold = threshold
        self.C = C
        self.calibration = calibration
        self.cv = cv
        self.class_weight = class_weight
        self.catalog = catalog
        self.max_char_features = max_char_features
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.random_state = random_state
        self.embedder = embedder
        self._state: _Fitted | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features in use: the lexical ones, plus the embedding cosine with an embedder."""
        return FEATURE_NAMES + ((EMBEDDING_FEATURE,) if self.embedder is not None else ())

    @property
    def is_fitted(self) -> bool:
        return self._state is not None

    @property
    def coefficients(self) -> dict[str, float]:
        """Feature name -> coefficient on standardised features (what the model learned)."""
        state = self._require_fitted()
        return {name: float(c) for name, c in zip(self.feature_names, state.coef, strict=True)}

    # -- training -----------------------------------------------------------------------
    def fit(
        self, pairs: Sequence[tuple[Theme, Product]], labels: Sequence[int | bool | float]
    ) -> TrainableRelevanceFilter:
        """Learn from ``pairs`` labelled 1 (on theme) or 0 (off theme); returns ``self``."""
        from sklearn.linear_model import LogisticRegression

        y = _check_labels(pairs, labels)
        products = {p.id: p for _, p in pairs}
        corpus_products: Iterable[Product] = (
            self.catalog if self.catalog is not None else products.values()
        )
        texts = [p.text for p in corpus_products]
        word = _Tfidf.fit("word", texts, None)
        char = _Tfidf.fit("char", texts, self.max_char_features)
        avgdl = float(np.mean([len(tokenize(t)) for t in texts])) if texts else 1.0
        feats = _Features(
            word, char, avgdl or 1.0, self.bm25_k1, self.bm25_b, embedder=self.embedder
        )
        X = feats.matrix(pairs)
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0
        Z = (X - mean) / scale

        # newton-cholesky is fast with few features and many rows; lbfgs is steadier on tiny sets.
        solver = "newton-cholesky" if len(y) >= 200 else "lbfgs"

        def model() -> Any:
            return LogisticRegression(
                C=self.C, class_weight=self.class_weight, solver=solver, max_iter=1000
            )

        calib = self.calibration
        if calib == "auto":
            calib = "isotonic" if len(y) >= 1000 else "sigmoid"
        calibration: dict[str, Any] = {"kind": "none"}
        if calib != "none":
            calibration = _fit_calibration(calib, model, Z, y, self.cv, self.random_state)
        final = model().fit(Z, y)
        self._state = _Fitted(
            feats=feats,
            mean=mean,
            scale=scale,
            coef=np.asarray(final.coef_[0], dtype=np.float64),
            intercept=float(final.intercept_[0]),
            calibration=calibration,
        )
        return self

    # -- scoring ------------------------------------------------------------------------
    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        if not products:
            return []
        state = self._require_fitted()
        X = state.feats.matrix_for_theme(theme, products)
        return [float(p) for p in state.predict(X)]

    def features(self, theme: Theme, products: Sequence[Product]) -> dict[str, list[float]]:
        """The raw feature values per product (for debugging a score)."""
        state = self._require_fitted()
        X = state.feats.matrix_for_theme(theme, products)
        return {name: [float(v) for v in X[:, i]] for i, name in enumerate(self.feature_names)}

    # -- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fitted model as plain JSON-able data."""
        state = self._require_fitted()
        f = state.feats
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "threshold": self.threshold,
            "features": list(self.feature_names),
            "embedding_model": self.embedder.model_id if self.embedder is not None else None,
            "scaler": {"mean": state.mean.tolist(), "scale": state.scale.tolist()},
            "coef": state.coef.tolist(),
            "intercept": state.intercept,
            "calibration": json.loads(json.dumps(state.calibration)),
            "bm25": {"k1": f.k1, "b": f.b, "avgdl": f.avgdl},
            "word": f.word.to_json(),
            "char": f.char.to_json(),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model as JSON (atomically: a crash never leaves half a file)."""
        data = self.to_dict()
        target = Path(path)
        fd, tmp = tempfile.mkstemp(
            dir=target.parent or Path("."), prefix=target.name, suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, allow_nan=False, separators=(",", ":"))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        threshold: float | None = None,
        source: str = "<dict>",
        embedder: Embedder | None = None,
    ) -> TrainableRelevanceFilter:
        """Rebuild a filter from :meth:`to_dict` data, validating every field.

        A model fitted with an embedder needs the same model (``embedder``) to load."""
        v = _Validator(source)
        if not isinstance(data, Mapping):
            v.fail("", f"expected a JSON object, found {_kind(data)}")
        if data.get("format") != FORMAT:
            v.fail("format", f"expected {FORMAT!r}: this is not a TrainableRelevanceFilter file")
        if data.get("version") != FORMAT_VERSION:
            v.fail(
                "version",
                f"unsupported version {data.get('version')!r} (this SDK reads {FORMAT_VERSION})",
            )
        names = v.get(data, "features", list)
        with_embedding = list(names) == [*FEATURE_NAMES, EMBEDDING_FEATURE]
        if list(names) != list(FEATURE_NAMES) and not with_embedding:
            v.fail("features", f"expected {list(FEATURE_NAMES)}, found {names}")
        if with_embedding:
            wanted = data.get("embedding_model")
            if embedder is None:
                v.fail(
                    "embedding_model", f"this model needs the embedder {wanted!r}: pass embedder="
                )
            if embedder.model_id != wanted:
                v.fail("embedding_model", f"fitted with {wanted!r}, got {embedder.model_id!r}")
        else:
            embedder = None
        n = len(names)
        scaler = v.get(data, "scaler", dict)
        mean = v.numbers(scaler, "mean", n, where="scaler.mean")
        scale = v.numbers(scaler, "scale", n, where="scaler.scale")
        if np.any(scale <= 0):
            v.fail("scaler.scale", "every scale must be positive")
        coef = v.numbers(data, "coef", n)
        intercept = v.number(data, "intercept")
        calibration = _check_calibration(v, v.get(data, "calibration", dict))
        bm = v.get(data, "bm25", dict)
        k1, b, avgdl = (v.number(bm, k, where=f"bm25.{k}") for k in ("k1", "b", "avgdl"))
        if avgdl <= 0 or k1 < 0 or not 0 <= b <= 1:
            v.fail("bm25", "expected k1 >= 0, 0 <= b <= 1 and avgdl > 0")
        word = _check_tfidf(v, v.get(data, "word", dict), "word")
        char = _check_tfidf(v, v.get(data, "char", dict), "char")
        saved_threshold = v.number(data, "threshold")
        flt = cls(threshold=saved_threshold if threshold is None else threshold, embedder=embedder)
        flt._state = _Fitted(
            feats=_Features(word, char, avgdl, k1, b, embedder=embedder),
            mean=mean,
            scale=scale,
            coef=coef,
            intercept=intercept,
            calibration=calibration,
        )
        return flt

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        threshold: float | None = None,
        embedder: Embedder | None = None,
    ) -> TrainableRelevanceFilter:
        """Load a model saved by :meth:`save`; safe on untrusted files (JSON only, validated)."""
        source = str(path)
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            raise ConfigurationError(f"{source}: model file not found") from None
        except OSError as e:
            raise ConfigurationError(
                f"{source}: cannot read model file: {e.strerror or e}"
            ) from None
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"{source}: not a JSON model file (binary content; pickled models are not accepted)"
            ) from None
        except (json.JSONDecodeError, ValueError) as e:
            raise ConfigurationError(
                f"{source}: not valid JSON ({e}); the file may be truncated"
            ) from None
        return cls.from_dict(data, threshold=threshold, source=source, embedder=embedder)

    def _require_fitted(self) -> _Fitted:
        if self._state is None:
            raise ConfigurationError(
                "TrainableRelevanceFilter is not fitted: call fit(pairs, labels) or "
                "TrainableRelevanceFilter.load(path)"
            )
        return self._state

    def __repr__(self) -> str:
        state = "fitted" if self._state is not None else "not fitted"
        return f"TrainableRelevanceFilter(threshold={self.threshold}, {state})"


class _Fitted:
    """Everything ``score`` needs; immutable after construction (thread-safe reads)."""

    def __init__(
        self,
        *,
        feats: _Features,
        mean: FloatArray,
        scale: FloatArray,
        coef: FloatArray,
        intercept: float,
        calibration: dict[str, Any],
    ) -> None:
        self.feats = feats
        self.mean = mean
        self.scale = scale
        self.coef = coef
        self.intercept = intercept
        self.calibration = calibration

    def predict(self, X: FloatArray) -> FloatArray:
        z = ((X - self.mean) / self.scale) @ self.coef + self.intercept
        return np.clip(_calibrate(self.calibration, z), 0.0, 1.0)


# -- features -----------------------------------------------------------------------------------


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


def _fit_calibration(
    kind: str, model: Callable[[], Any], Z: FloatArray, y: NDArray[np.int64], cv: int, seed: int
) -> dict[str, Any]:
    """Fit Platt or isotonic calibration on out-of-fold decision values."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = min(cv, int(np.bincount(y).min()))
    if folds < 2:
        raise ConfigurationError(
            "calibration needs at least 2 examples of each class; "
            "add labels or pass calibration='none'"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = cross_val_predict(model(), Z, y, cv=splitter, method="decision_function")
    oof = np.asarray(oof, dtype=np.float64)
    if kind == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(oof, y)
        return {
            "kind": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    platt = LogisticRegression(C=1e6, solver="newton-cholesky").fit(oof.reshape(-1, 1), y)
    return {"kind": "sigmoid", "a": float(platt.coef_[0][0]), "b": float(platt.intercept_[0])}


def _calibrate(calibration: Mapping[str, Any], z: FloatArray) -> FloatArray:
    kind = calibration["kind"]
    if kind == "isotonic":
        xs, ys = np.asarray(calibration["x"]), np.asarray(calibration["y"])
        return np.asarray(np.interp(z, xs, ys), dtype=np.float64)
    if kind == "sigmoid":
        z = calibration["a"] * z + calibration["b"]
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -500, 500))), dtype=np.float64)


# -- validation of inputs and files -------------------------------------------------------------


def _check_labels(
    pairs: Sequence[tuple[Theme, Product]], labels: Sequence[int | bool | float]
) -> NDArray[np.int64]:
    if len(pairs) != len(labels):
        raise ConfigurationError(f"fit: {len(pairs)} pairs but {len(labels)} labels")
    for i, pair in enumerate(pairs):
        if (
            not isinstance(pair, tuple)
            or len(pair) != 2
            or not isinstance(pair[0], Theme)
            or not isinstance(pair[1], Product)
        ):
            raise ConfigurationError(f"fit: pairs[{i}] must be a (Theme, Product) tuple")
    y = np.zeros(len(labels), dtype=np.int64)
    for i, lab in enumerate(labels):
        if lab not in (0, 1):
            raise ConfigurationError(f"fit: labels[{i}] is {lab!r}; labels must be 0 or 1")
        y[i] = int(lab)
    if len(set(y.tolist())) < 2:
        raise ConfigurationError("fit: labels need both classes (some 1s and some 0s)")
    return y


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid number in a model file")


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


class _Validator:
    """Field checks that raise ``ConfigurationError`` naming the file and field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, message: str) -> NoReturn:
        where = f"{self.source}, field {field!r}" if field else self.source
        raise ConfigurationError(f"{where}: {message}")

    def get(
        self, data: Mapping[str, Any], key: str, kind: type, *, where: str | None = None
    ) -> Any:
        if key not in data:
            self.fail(where or key, "missing")
        value = data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(where or key, f"expected {_kind(kind())}, found {_kind(value)}")
        return value

    def number(self, data: Mapping[str, Any], key: str, *, where: str | None = None) -> float:
        if key not in data:
            self.fail(where or key, "missing")
        value = data[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            self.fail(where or key, f"expected a finite number, found {value!r}")
        return float(value)

    def numbers(
        self, data: Mapping[str, Any], key: str, length: int | None, *, where: str | None = None
    ) -> FloatArray:
        values = self.get(data, key, list, where=where)
        name = where or key
        if length is not None and len(values) != length:
            self.fail(name, f"expected {length} numbers, found {len(values)}")
        for i, x in enumerate(values):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                self.fail(f"{name}[{i}]", f"expected a finite number, found {x!r}")
        return np.asarray(values, dtype=np.float64)


def _check_calibration(v: _Validator, cal: Mapping[str, Any]) -> dict[str, Any]:
    kind = cal.get("kind")
    if kind == "none":
        return {"kind": "none"}
    if kind == "sigmoid":
        return {
            "kind": "sigmoid",
            "a": v.number(cal, "a", where="calibration.a"),
            "b": v.number(cal, "b", where="calibration.b"),
        }
    if kind == "isotonic":
        x = v.numbers(cal, "x", None, where="calibration.x")
        y = v.numbers(cal, "y", len(x), where="calibration.y")
        if len(x) == 0 or np.any(np.diff(x) < 0):
            v.fail("calibration.x", "expected a non-empty, non-decreasing list")
        if np.any((y < 0) | (y > 1)):
            v.fail("calibration.y", "expected probabilities in [0, 1]")
        return {"kind": "isotonic", "x": x.tolist(), "y": y.tolist()}
    v.fail("calibration.kind", f"expected none, sigmoid or isotonic, found {kind!r}")


def _check_tfidf(v: _Validator, d: Mapping[str, Any], analyzer: str) -> _Tfidf:
    if d.get("analyzer") != analyzer:
        v.fail(f"{analyzer}.analyzer", f"expected {analyzer!r}, found {d.get('analyzer')!r}")
    n_docs = v.number(d, "n_docs", where=f"{analyzer}.n_docs")
    if n_docs < 1 or not float(n_docs).is_integer():
        v.fail(f"{analyzer}.n_docs", "expected a positive integer")
    vocab = v.get(d, "vocabulary", list, where=f"{analyzer}.vocabulary")
    if not all(isinstance(t, str) for t in vocab) or len(set(vocab)) != len(vocab):
        v.fail(f"{analyzer}.vocabulary", "expected a list of distinct strings")
    df = v.numbers(d, "df", len(vocab), where=f"{analyzer}.df")
    if np.any(df < 1) or np.any(df > n_docs) or not np.all(np.mod(df, 1) == 0):
        v.fail(f"{analyzer}.df", "document frequencies must be integers in [1, n_docs]")
    return _Tfidf(analyzer, vocab, df.astype(np.int64).tolist(), int(n_docs))


# -- weak labels ---------------------------------------------------------------------------------


def _display(name: str) -> str:
    return " ".join(w[:1].upper() + w[1:] if i == 0 else w for i, w in enumerate(name.split()))


_TITLES = (
    "{c} favourites",
    "All about {c}",
    "{c} night",
    "Stock up on {c}",
    "Fresh {c} finds",
    "Weekend {c}",
    "{a} picks",
)


def aisle_themes(
    catalog: Catalog, *, per_aisle: int = 2, seed: int = 0, min_products: int = 5
) -> list[Theme]:
    """Synthetic themes for bootstrapping: ``per_aisle`` per aisle, shaped like generated ones.

    Concepts are words typical of the aisle's product titles ("spaghetti",
    "penne" for pasta); the aisle name itself is a concept only sometimes, and
    titles vary ("Spaghetti night", "All about penne"), so a model trained on
    them learns the text features too, not only "the concept is the aisle name".
    """
    return [theme for theme, _ in _aisle_themes(catalog, per_aisle, seed, min_products)]


def _title_words(title: str) -> set[str]:
    return {w for w in normalize(title).split() if len(w) > 2 and w not in STOP_WORDS}


def _aisle_themes(
    catalog: Catalog, per_aisle: int, seed: int, min_products: int
) -> list[tuple[Theme, str]]:
    rng = random.Random(seed)
    by_aisle: dict[str, list[Product]] = defaultdict(list)
    overall: Counter[str] = Counter()
    for p in catalog:
        overall.update(_title_words(p.title))
        if p.aisle:
            by_aisle[p.aisle].append(p)
    themes: list[tuple[Theme, str]] = []
    for aisle in sorted(by_aisle):
        products = by_aisle[aisle]
        if len(products) < min_products:
            continue
        counts: Counter[str] = Counter()
        for p in products:
            counts.update(_title_words(p.title))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # deterministic ties
        typical = [w for w, c in ranked if c >= 2 and c / overall[w] >= 0.5 and not w.isdigit()][
            :8
        ] or [aisle]
        dept = products[0].department
        for _ in range(per_aisle):
            concepts = rng.sample(typical, min(len(typical), rng.randint(1, 3)))
            if rng.random() < 0.3 and aisle not in concepts:
                concepts.append(aisle)
            template = rng.choice(_TITLES)
            title = template.format(c=concepts[0], a=aisle)
            theme = Theme(
                title=title[:1].upper() + title[1:60],
                description=f"Ideas with {' and '.join(concepts[:2])}.",
                concepts=concepts,
                kind="aisle",
                departments=[dept] if dept and rng.random() < 0.3 else [],
            )
            themes.append((theme, aisle))
    return themes


def _matching_aisles(theme: Theme, aisles: Iterable[str]) -> set[str]:
    """Aisles a theme's concepts name: equal, or every word of a concept is in the aisle name."""
    out: set[str] = set()
    concepts = [set(tokenize(c)) for c in theme.concepts]
    title = set(tokenize(theme.title))
    for aisle in aisles:
        words = set(tokenize(aisle))
        if not words:
            continue
        if any(c and c <= words for c in concepts) or (title and words <= title):
            out.add(aisle)
    return out


def weak_labels(
    catalog: Catalog,
    themes: Sequence[Theme] | None = None,
    *,
    positives_per_theme: int = 12,
    negatives_per_theme: int = 24,
    hard_negative_share: float = 0.3,
    seed: int = 0,
) -> tuple[list[tuple[Theme, Product]], list[int]]:
    """Bootstrap labelled pairs from the catalog's structure (no human labels needed).

    For each theme (default: :func:`aisle_themes`), positives are products of
    the aisles its concepts name; negatives are random products of other
    departments, plus a ``hard_negative_share`` from other aisles of the same
    department. Themes that name no aisle are skipped. Returns ``(pairs, labels)``
    ready for :meth:`TrainableRelevanceFilter.fit`.
    """
    rng = random.Random(seed)
    by_aisle: dict[str, list[Product]] = defaultdict(list)
    aisles_of: dict[str, set[str]] = defaultdict(set)
    for p in catalog:
        by_aisle[p.aisle].append(p)
        aisles_of[p.department].add(p.aisle)
    everything = list(catalog)
    if themes is None:
        targets = [(t, {a}) for t, a in _aisle_themes(catalog, 2, seed, 5)]
    else:
        targets = [(t, _matching_aisles(t, by_aisle)) for t in themes]
    pairs: list[tuple[Theme, Product]] = []
    labels: list[int] = []
    for theme, aisles in targets:
        if not aisles:
            continue
        pos = [p for a in sorted(aisles) for p in by_aisle[a]]
        depts = {p.department for p in pos}
        siblings = sorted({a for d in depts for a in aisles_of[d]} - aisles)
        near = [p for a in siblings for p in by_aisle[a]]
        n_hard = min(len(near), round(negatives_per_theme * hard_negative_share))
        negs = rng.sample(near, n_hard)
        seen = {p.id for p in negs}
        for _ in range(50 * negatives_per_theme):  # far negatives: rejection sampling
            if len(negs) >= negatives_per_theme:
                break
            p = rng.choice(everything)
            if p.department not in depts and p.id not in seen:
                negs.append(p)
                seen.add(p.id)
        for p in rng.sample(pos, min(len(pos), positives_per_theme)):
            pairs.append((theme, p))
            labels.append(1)
        for p in negs:
            pairs.append((theme, p))
            labels.append(0)
    if not pairs or len(set(labels)) < 2:
        raise ConfigurationError(
            "weak_labels: no theme names an aisle of this catalog; pass other themes"
        )
    return pairs, labels
