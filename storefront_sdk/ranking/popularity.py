"""Traditional rankers: popularity, and a fusion of signals with the user's own model."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..exceptions import ComponentError, ConfigurationError
from ..generation.history import user_product_weights
from ..interfaces import Ranker
from ..types import Product, ScoredProduct, Theme, UserContext

__all__ = ["DEFAULT_WEIGHTS", "FusionRanker", "PopularityRanker", "UserScorer"]

_RECENT_USERS = 64
"""Users whose affinity is remembered (build_many's default concurrency is far below)."""

UserScorer = Callable[[UserContext, Sequence[Product]], Sequence[float]]
"""Your own model: ``(user, products) -> one score per product`` (any scale)."""


def _ranked(candidates: Sequence[ScoredProduct], scores: Sequence[float]) -> list[ScoredProduct]:
    """``candidates`` best first (stable on ties), ``rank_score`` and ``score`` set to the
    ranking score (the storefront shows ``score``: set here, it needs no other copy)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return [candidates[i].with_scores(rank_score=scores[i], score=scores[i]) for i in order]


class PopularityRanker(Ranker):
    """Most popular first (``log1p(popularity)``): the classic non-personalised ranker."""

    @property
    def run_inline(self) -> bool:
        return True

    def rank(
        self, user: UserContext, theme: Theme, candidates: Sequence[ScoredProduct]
    ) -> list[ScoredProduct]:
        return _ranked(candidates, [math.log1p(sp.product.popularity) for sp in candidates])


DEFAULT_WEIGHTS: Mapping[str, float] = {
    "retrieval": 0.25,
    "relevance": 0.25,
    "popularity": 0.2,
    "affinity": 0.3,
    "user_model": 0.5,
}


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi - lo < 1e-12 else (x - lo) / (hi - lo)


class FusionRanker(Ranker):
    """A weighted blend of min-max normalised signals within the placement.

    Signals: ``retrieval`` (BM25 score), ``relevance`` (filter score),
    ``popularity`` (log), ``affinity`` (the user's own purchase history: reorder
    propensity) and ``user_model``: your ranking model's scores, plugged in as a
    callable ``(user, products) -> scores``. The generative stages choose *what*
    is on a placement; this keeps your ranker in charge of the *order*.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        *,
        user_model: UserScorer | None = None,
    ) -> None:
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise ConfigurationError(
                f"unknown FusionRanker signals {sorted(unknown)}; known: {sorted(DEFAULT_WEIGHTS)}"
            )
        self.user_model = user_model
        # Affinity by id(user) for the recent users: build_many interleaves the placements
        # of up to `concurrency` pages, so remembering only the last user missed there.
        # An entry holds its user object, so the id cannot be reused while remembered.
        self._recent: dict[int, tuple[UserContext, dict[str, float]]] = {}

    @property
    def run_inline(self) -> bool:
        return self.user_model is None  # your model may be slow: it gets a worker thread

    def _affinity(self, user: UserContext) -> dict[str, float]:
        """Purchase affinity, computed once per user object (a build ranks 8+ placements)."""
        hit = self._recent.get(id(user))
        if hit is not None and hit[0] is user:
            return hit[1]
        aff = user_product_weights(user.history)
        recent = self._recent
        recent[id(user)] = (user, aff)
        while len(recent) > _RECENT_USERS:
            try:
                del recent[next(iter(recent))]  # the oldest
            except (KeyError, RuntimeError, StopIteration):  # another thread got there
                break
        return aff

    def rank(
        self, user: UserContext, theme: Theme, candidates: Sequence[ScoredProduct]
    ) -> list[ScoredProduct]:
        if not candidates:
            return []
        n = len(candidates)
        products = [sp.product for sp in candidates]
        names = ["retrieval", "relevance", "popularity"]
        rows: list[tuple[float, ...]]
        if user.history:
            aff = self._affinity(user).get
            names.append("affinity")
            rows = [
                (sp.retrieval_score or 0.0, sp.filter_score or 0.0, p.popularity, aff(p.id, 0.0))
                for sp, p in zip(candidates, products, strict=True)
            ]
        else:
            rows = [
                (sp.retrieval_score or 0.0, sp.filter_score or 0.0, p.popularity)
                for sp, p in zip(candidates, products, strict=True)
            ]
        # One (n, signals) matrix: popularity and affinity on a log scale, every column
        # min-max normalised within the placement, then weighted.
        m = np.array(rows, dtype=float)
        m[:, 2:] = np.log1p(m[:, 2:])
        if self.user_model is not None:
            raw = list(self.user_model(user, products))
            if len(raw) != n:
                raise ComponentError(f"user_model returned {len(raw)} scores for {n} products")
            names.append("user_model")
            m = np.column_stack([m, np.asarray(raw, dtype=float)])
        lo, hi = m.min(axis=0), m.max(axis=0)
        span = hi - lo
        flat = span < 1e-12
        norm = (m - lo) / np.where(flat, 1.0, span)
        norm[:, flat] = 0.0
        w = np.array([self.weights.get(name, 0.0) for name in names])
        total = norm @ w
        return _ranked(candidates, total.tolist())
