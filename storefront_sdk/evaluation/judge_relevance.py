"""An on-theme relevance model for judging pages, independent of the pipeline's filter.

A judge that grades a page with the filter that built it only measures what
got past that filter. :class:`JudgeRelevanceModel` is a separate model, trained
on *human* relevance labels (Home Depot search: query, product title, grade
1-3), which shares no code, vocabulary or score with the storefront's
relevance filters or taxonomy:

* its own tokeniser (letters and digits, a plural-stripping stemmer) and its own
  word and character (3-5) TF-IDF vectorisers (scikit-learn), fitted on the
  texts of the catalog being judged;
* fifteen query-title features: the two TF-IDF cosines, plain, IDF-weighted and
  prefix coverage of the query's words by the title, bigram coverage, number
  matches, whether the title holds the query's first and last ("head") word and
  where, title and query lengths, and fuzzy (character-trigram Jaccard)
  coverage for misspellings;
* scikit-learn's ``HistGradientBoostingClassifier`` on those features, exported
  to JSON (no pickle; see :func:`export_trees`) and evaluated with numpy.

The shipped model (``storefront_sdk/data/judge_relevance.json``) was trained by
``scripts/train_judge.py`` on one half of the Home Depot queries and checked on
the other half (query-disjoint); the file records that check. An embedding
model can be added as a sixteenth feature (``pair_features=``) when one is
available, as long as the pipeline under evaluation does not filter with it.

It stays one module because it is one model: its tokeniser, features, training and
save/load must stay in step with each other.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..interfaces import RelevanceFilter
from ..types import JudgeReport, Page, Product, Theme, UserContext, Verdict
from .judges import HeuristicJudge

__all__ = [
    "FEATURES",
    "JUDGE_GENERIC_WORDS",
    "TRUSTED_PIN_KINDS",
    "JudgeRelevanceModel",
    "PairFeatures",
    "RelevanceModelJudge",
    "TreeEnsemble",
    "export_trees",
    "pair_features",
]

FloatArray = NDArray[np.float64]
FORMAT = "storefront_sdk.JudgeRelevanceModel"
_MODEL_FILE = "judge_relevance.json"

FEATURES: tuple[str, ...] = (
    "word_cosine",
    "char_cosine",
    "coverage",
    "idf_coverage",
    "head_match",
    "prefix_coverage",
    "bigram_coverage",
    "number_match",
    "first_match",
    "log_title_words",
    "query_words",
    "head_position",
    "fuzzy_coverage",
    "fuzzy_min",
    "fuzzy_head",
)
"""The model's input features, in order."""

_TOKEN = re.compile(r"[a-z0-9]+")


#: Function words left out of queries and titles ("Dairy and eggs" is about dairy and eggs).
_STOP = frozenset(
    ["a", "an", "and", "or", "the", "of", "for", "to", "in", "on", "with", "by", "at", "from"]
)


def _tokens(text: str) -> list[str]:
    return [w for w in _TOKEN.findall(text.lower()) if w not in _STOP]


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _stemmed(text: str) -> str:
    return " ".join(_stem(w) for w in _tokens(text))


class PairFeatures:
    """Computes :data:`FEATURES` for (query, title) pairs over a fitted text corpus."""

    def __init__(self, corpus: Iterable[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = list(dict.fromkeys(corpus))
        if not texts:
            raise ConfigurationError("PairFeatures needs a non-empty corpus")
        self._word = TfidfVectorizer(
            sublinear_tf=True, token_pattern=r"[a-z0-9]+", preprocessor=_stemmed
        ).fit(texts)
        self._char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True
        ).fit(texts)
        self._idf: dict[str, float] = dict(
            zip(self._word.get_feature_names_out(), self._word.idf_.tolist(), strict=True)
        )
        self._default_idf = float(max(self._word.idf_))
        self._trigrams: dict[str, frozenset[str]] = {}

    def _tri(self, word: str) -> frozenset[str]:
        hit = self._trigrams.get(word)
        if hit is None:
            if len(self._trigrams) > 500_000:
                self._trigrams.clear()
            padded = f"#{word}#"
            hit = self._trigrams[word] = frozenset(
                padded[i : i + 3] for i in range(len(padded) - 2)
            )
        return hit

    def _fuzzy(self, a: str, b: str) -> float:
        x, y = self._tri(a), self._tri(b)
        return len(x & y) / len(x | y) if x or y else 0.0

    def __call__(self, queries: Sequence[str], titles: Sequence[str]) -> FloatArray:
        if len(queries) != len(titles):
            raise ValueError("queries and titles must have the same length")
        if not queries:
            return np.zeros((0, len(FEATURES)))
        word = _row_cosines(self._word, queries, titles)
        char = _row_cosines(self._char, queries, titles)
        rows = [self._lexical(q, t) for q, t in zip(queries, titles, strict=True)]
        return np.column_stack([word, char, np.asarray(rows, dtype=float)])

    def _lexical(self, query: str, title: str) -> list[float]:
        q_raw, t_raw = _tokens(query), _tokens(title)
        qs, ts = [_stem(w) for w in q_raw], [_stem(w) for w in t_raw]
        if not qs or not ts:
            return [0.0] * (len(FEATURES) - 2)
        tset = set(ts)
        cov = sum(w in tset for w in qs) / len(qs)
        idf = [self._idf.get(w, self._default_idf) for w in qs]
        icov = sum(v for w, v in zip(qs, idf, strict=True) if w in tset) / sum(idf)
        head = qs[-1]
        prefixes = {w[:4] for w in ts}
        pcov = sum(w[:4] in prefixes for w in qs) / len(qs)
        q_bi = set(pairwise(qs))
        t_bi = set(pairwise(ts))
        bcov = len(q_bi & t_bi) / len(q_bi) if q_bi else 0.0
        numbers = [w for w in q_raw if w.isdigit()]
        t_words = set(t_raw)
        nmatch = sum(w in t_words for w in numbers) / len(numbers) if numbers else -1.0
        pos = ts.index(head) / len(ts) if head in tset else 1.5
        distinct = list(dict.fromkeys(t_raw))
        fuzzy = [max(self._fuzzy(w, x) for x in distinct) for w in q_raw]
        fuzzy_head = max(self._fuzzy(q_raw[-1], x) for x in distinct[:4])
        return [
            cov,
            icov,
            float(head in tset),
            pcov,
            bcov,
            nmatch,
            float(qs[0] in tset),
            math.log1p(len(ts)),
            float(len(qs)),
            pos,
            sum(fuzzy) / len(fuzzy),
            min(fuzzy),
            fuzzy_head,
        ]


def _row_cosines(vectorizer: Any, a: Sequence[str], b: Sequence[str]) -> FloatArray:
    """Cosine of each pair (rows are L2-normalised by TF-IDF, so a row-wise dot product)."""
    x, y = vectorizer.transform(a), vectorizer.transform(b)
    return np.asarray(x.multiply(y).sum(axis=1), dtype=float).ravel()


def pair_features(corpus: Iterable[str]) -> PairFeatures:
    """:class:`PairFeatures` fitted on ``corpus`` (the texts whose relevance will be judged)."""
    return PairFeatures(corpus)


# -- the model: gradient-boosted trees as plain arrays ------------------------------------------


class TreeEnsemble:
    """A binary gradient-boosted tree ensemble evaluated with numpy.

    ``trees`` are dicts of equal-length lists: ``feature``, ``threshold``,
    ``left``, ``right``, ``leaf`` (bool), ``value`` and ``missing_left``; the
    probability is ``sigmoid(baseline + sum of leaf values)``.
    """

    def __init__(self, baseline: float, trees: Sequence[Mapping[str, Sequence[Any]]]) -> None:
        self.baseline = float(baseline)
        self._trees = [
            (
                np.asarray(t["feature"], dtype=np.int64),
                np.asarray(t["threshold"], dtype=float),
                np.asarray(t["left"], dtype=np.int64),
                np.asarray(t["right"], dtype=np.int64),
                np.asarray(t["leaf"], dtype=bool),
                np.asarray(t["value"], dtype=float),
                np.asarray(t["missing_left"], dtype=bool),
            )
            for t in trees
        ]

    def __len__(self) -> int:
        return len(self._trees)

    def decision(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=float)
        rows = np.arange(x.shape[0])
        raw = np.full(x.shape[0], self.baseline)
        for feature, threshold, left, right, leaf, value, missing_left in self._trees:
            node = np.zeros(x.shape[0], dtype=np.int64)
            for _ in range(len(leaf)):
                inner = ~leaf[node]
                if not inner.any():
                    break
                v = x[rows, feature[node]]
                go_left = np.where(np.isnan(v), missing_left[node], v <= threshold[node])
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            raw += value[node]
        return raw

    def predict_proba(self, x: FloatArray) -> FloatArray:
        """Probability of the positive class for each row of ``x``."""
        return 1.0 / (1.0 + np.exp(-self.decision(x)))


def export_trees(model: Any) -> dict[str, Any]:
    """A fitted binary ``HistGradientBoostingClassifier`` as JSON-ready data for
    :class:`TreeEnsemble` (raises for anything else)."""
    predictors = getattr(model, "_predictors", None)
    if predictors is None or len(model.classes_) != 2:
        raise ConfigurationError(
            "export_trees needs a fitted binary HistGradientBoostingClassifier"
        )
    trees = []
    for (pred,) in predictors:
        nodes = pred.nodes
        trees.append(
            {
                "feature": nodes["feature_idx"].tolist(),
                "threshold": nodes["num_threshold"].tolist(),
                "left": nodes["left"].tolist(),
                "right": nodes["right"].tolist(),
                "leaf": nodes["is_leaf"].astype(bool).tolist(),
                "value": nodes["value"].tolist(),
                "missing_left": nodes["missing_go_to_left"].astype(bool).tolist(),
            }
        )
    baseline = float(np.ravel(model._baseline_prediction)[0])
    return {"baseline": baseline, "trees": trees}


# -- the relevance filter ------------------------------------------------------------------


class JudgeRelevanceModel(RelevanceFilter):
    """P(on theme) of each product for a theme's title, from :data:`FEATURES` and trees.

    ``catalog`` supplies the corpus the TF-IDF vectorisers are fitted on (its
    product titles), lazily on first use. ``model`` is the JSON data written by
    ``scripts/train_judge.py`` (default: the shipped file). ``pair_features``
    replaces the feature extractor (it must produce the features the model was
    trained on). ``threshold`` 0.5: more likely on theme than not.
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        model: Mapping[str, Any] | None = None,
        pair_features: Callable[[Sequence[str], Sequence[str]], FloatArray] | None = None,
        threshold: float = 0.5,
    ) -> None:
        data = dict(model) if model is not None else load_model()
        if data.get("format") != FORMAT:
            raise ConfigurationError(f"not a {FORMAT} model (format={data.get('format')!r})")
        if list(data.get("features", [])) != list(FEATURES) and pair_features is None:
            raise ConfigurationError("the model's features differ from FEATURES")
        self.catalog = catalog
        self.meta: dict[str, Any] = {k: v for k, v in data.items() if k != "trees"}
        self.trees = TreeEnsemble(data["baseline"], data["trees"])
        self.threshold = threshold
        self._features = pair_features

    @property
    def name(self) -> str:
        return "JudgeRelevanceModel"

    def warm_up(self) -> None:
        self._extractor()

    def _extractor(self) -> Callable[[Sequence[str], Sequence[str]], FloatArray]:
        if self._features is None:
            if self.catalog is None:
                raise ConfigurationError("JudgeRelevanceModel needs a catalog or pair_features")
            self._features = PairFeatures(_product_text(p) for p in self.catalog)
        return self._features

    def score_texts(self, queries: Sequence[str], titles: Sequence[str]) -> list[float]:
        """P(relevant) for each (query, title) pair."""
        if not queries:
            return []
        x = self._extractor()(queries, titles)
        return [float(v) for v in self.trees.predict_proba(x)]

    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        """P(relevant) of each product (title, aisle, department) for the theme's title."""
        return self.score_texts([theme.title] * len(products), [_product_text(p) for p in products])


def _product_text(p: Product) -> str:
    return " ".join(x for x in (p.title, p.aisle, p.department) if x)


def load_model(path: str | Path | None = None) -> dict[str, Any]:
    """The model data of ``path`` (default: the file shipped in ``storefront_sdk/data``)."""
    try:
        if path is None:
            text = (
                resources.files("storefront_sdk")
                .joinpath("data")
                .joinpath(_MODEL_FILE)
                .read_text(encoding="utf-8")
            )
        else:
            text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the judge model {path or _MODEL_FILE}: {exc}"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path or _MODEL_FILE}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "trees" not in data or "baseline" not in data:
        raise ConfigurationError(f"{path or _MODEL_FILE}: missing 'trees' or 'baseline'")
    return data


# -- the judge ----------------------------------------------------------------------------------

#: Words that name no product: a title made only of these ("Popular picks for you") gives
#: the relevance model nothing to check, so its products are left unjudged.
JUDGE_GENERIC_WORDS: frozenset[str] = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "for",
        "to",
        "in",
        "on",
        "with",
        "from",
        "your",
        "you",
        "our",
        "my",
        "new",
        "more",
        "top",
        "best",
        "popular",
        "picks",
        "pick",
        "right",
        "now",
        "buy",
        "again",
        "back",
        "basket",
        "regulars",
        "regular",
        "favourites",
        "favorites",
        "favourite",
        "favorite",
        "recommended",
        "recommendations",
        "discover",
        "try",
        "something",
        "essentials",
        "staples",
        "deals",
        "sellers",
        "seller",
        "trending",
        "just",
        "because",
        "week",
        "today",
        "tonight",
        "everyday",
        "daily",
    ]
)

#: Theme kinds whose pinned products from the user's own history are on theme by
#: definition ("Buy it again" shows what the user bought; its title names no product).
TRUSTED_PIN_KINDS: frozenset[str] = frozenset({"buy_again", "past_orders"})


class RelevanceModelJudge(HeuristicJudge):
    """:class:`~.judges.HeuristicJudge` grading on-theme with :class:`JudgeRelevanceModel`.

    Product ``on_theme``: the model's P(relevant) of the product (title, aisle,
    department) for the placement's title is at least 0.5. Two exceptions,
    both explicit in the verdict's reason: products a "Buy it again"-style theme
    (``TRUSTED_PIN_KINDS``) pins from the user's own history are on theme, and
    a placement whose title names no product (only :data:`JUDGE_GENERIC_WORDS`)
    is not judged (no verdict value, left out of P-T@k). Placement and page
    criteria are :class:`~.judges.HeuristicJudge`'s.
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        model: JudgeRelevanceModel | None = None,
        **kwargs: Any,
    ) -> None:
        relevance = model if model is not None else JudgeRelevanceModel(catalog)
        super().__init__(relevance, relevance.threshold, catalog=catalog, **kwargs)
        self.model = relevance

    @property
    def name(self) -> str:
        return "HeuristicJudge(relevance=JudgeRelevanceModel, trained on Home Depot labels)"

    def judge(self, page: Page, user: UserContext) -> JudgeReport:
        base = super().judge(page, user)
        history_ids = {it.product_id for it in user.history}
        cut = self.model.threshold
        product_verdicts: dict[tuple[int | None, str | None], Verdict] = {}
        for i, pl in enumerate(page.placements):
            top = [sp.product for sp in pl.products[: self.k]]
            if not top:
                continue
            words = [w for w in _tokens(pl.theme.title) if w not in JUDGE_GENERIC_WORDS]
            trusted = pl.theme.kind in TRUSTED_PIN_KINDS
            pinned = set(pl.theme.pinned_product_ids)
            scores = (
                self.model.score_texts(
                    [pl.theme.title] * len(top),
                    [_product_text(p) for p in top],
                )
                if words
                else [math.nan] * len(top)
            )
            for p, s in zip(top, scores, strict=True):
                if trusted and p.id in pinned and p.id in history_ids:
                    v = Verdict(
                        level="product",
                        criterion="on_theme",
                        reason="pinned by a buy-again theme from the user's own history",
                        score=None if math.isnan(s) else s,
                        passed=True,
                        placement=i,
                        product_id=p.id,
                    )
                elif not words:
                    v = Verdict(
                        level="product",
                        criterion="on_theme",
                        reason=f"title {pl.theme.title!r} names no product: not judged",
                        passed=None,
                        placement=i,
                        product_id=p.id,
                    )
                else:
                    ok = s >= cut
                    v = Verdict(
                        level="product",
                        criterion="on_theme",
                        reason=f"P(relevant) {s:.2f} {'>=' if ok else '<'} {cut:.2f} "
                        f"for {pl.theme.title!r}",
                        score=s,
                        passed=ok,
                        placement=i,
                        product_id=p.id,
                    )
                product_verdicts[(i, p.id)] = v
        verdicts = [
            product_verdicts.get((v.placement, v.product_id), v)
            if v.level == "product" and v.criterion == "on_theme"
            else v
            for v in base.verdicts
        ]
        return JudgeReport(user_id=base.user_id, judge=self.name, verdicts=verdicts)
