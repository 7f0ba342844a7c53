"""Rankers: the traditional models that order a placement's products."""

from .popularity import DEFAULT_WEIGHTS, FusionRanker, PopularityRanker, UserScorer

__all__ = ["DEFAULT_WEIGHTS", "FusionRanker", "PopularityRanker", "UserScorer"]
