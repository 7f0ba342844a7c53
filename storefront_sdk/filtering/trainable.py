"""A relevance filter you train on your own labels: calibrated logistic regression.

:class:`TrainableRelevanceFilter` scores a (theme, product) pair from twenty-one
cheap lexical features -- word and character TF-IDF cosine, a BM25 score,
department/aisle agreement with the theme, concept hits in the title, coverage of
the theme's words by the title (plain, IDF-weighted, by prefix, by word pair),
the head noun, numbers, lengths -- and, with an embedder, the embedding cosine, with a
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

Features live in :mod:`.relevance_features` and weak labels in
:mod:`.weak_labels` (both re-exported here); this module is the model itself --
fit, calibration, score, and the validated JSON save/load, kept together
because the loader must rebuild exactly what ``fit`` produced.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np
from numpy.typing import NDArray

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..interfaces import RelevanceFilter
from ..text import tokenize
from ..types import Product, Theme
from .relevance_features import (
    EMBEDDING_FEATURE,
    FEATURE_NAMES,
    V1_FEATURE_NAMES,
    FloatArray,
    _Features,
    _Tfidf,
)
from .weak_labels import aisle_themes, weak_labels

if TYPE_CHECKING:
    from ..embeddings import Embedder


__all__ = [
    "EMBEDDING_FEATURE",
    "FEATURE_NAMES",
    "TrainableRelevanceFilter",
    "aisle_themes",
    "weak_labels",
]

FORMAT = "storefront_sdk.TrainableRelevanceFilter"
FORMAT_VERSION = 2
#: Version 1 files (the first eleven features) still load and score as fitted.
READABLE_VERSIONS = (1, 2)

Calibration = Literal["auto", "sigmoid", "isotonic", "none"]


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
        """The features in use: the lexical ones, plus the embedding cosine with an embedder
        (a model loaded from a version-1 file: the eleven it was fitted on)."""
        if self._state is not None:
            return self._state.names
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
            names=self.feature_names,
        )
        return self

    # -- scoring ------------------------------------------------------------------------
    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        if not products:
            return []
        state = self._require_fitted()
        X = state.feats.matrix_for_theme(theme, products)[:, state.columns]
        return [float(p) for p in state.predict(X)]

    def features(self, theme: Theme, products: Sequence[Product]) -> dict[str, list[float]]:
        """The raw feature values per product (for debugging a score)."""
        state = self._require_fitted()
        X = state.feats.matrix_for_theme(theme, products)[:, state.columns]
        return {name: [float(v) for v in X[:, i]] for i, name in enumerate(self.feature_names)}

    # -- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fitted model as plain JSON-able data."""
        state = self._require_fitted()
        f = state.feats
        return {
            "format": FORMAT,
            # a model loaded from a version-1 file is saved as version 1 again
            "version": FORMAT_VERSION if state.names[: len(FEATURE_NAMES)] == FEATURE_NAMES else 1,
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
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            v.fail(
                "version",
                f"unsupported version {version!r} (this SDK reads {list(READABLE_VERSIONS)})",
            )
        names = v.get(data, "features", list)
        base = list(FEATURE_NAMES if version == FORMAT_VERSION else V1_FEATURE_NAMES)
        with_embedding = list(names) == [*base, EMBEDDING_FEATURE]
        if list(names) != base and not with_embedding:
            v.fail("features", f"expected {base} (version {version}), found {names}")
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
            names=tuple(names),
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
        names: tuple[str, ...],
    ) -> None:
        self.names = names
        #: Columns of the feature matrix (all features, embedding last) this model uses.
        self.columns = np.array(
            [
                len(FEATURE_NAMES) if n == EMBEDDING_FEATURE else FEATURE_NAMES.index(n)
                for n in names
            ],
            dtype=np.int64,
        )
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
