"""Retrieval: keywords to candidate products. BM25 in-process by default; any
:class:`~storefront_sdk.interfaces.Retriever` (your search service) plugs in."""

from .bm25 import BM25Retriever

__all__ = ["BM25Retriever"]
