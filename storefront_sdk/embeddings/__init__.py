"""Sentence embeddings: the :class:`Embedder` contract, backends, and an on-disk store.

* :class:`LocalEmbedder`: all-MiniLM-L6-v2 (or any sentence-transformers BERT)
  in-process, numpy only (the ``embed`` extra).
* :class:`OpenAICompatibleEmbedder`: any ``/v1/embeddings`` server.
* :class:`EmbeddingStore`: matrices computed once, memory-mapped from disk.
* :func:`default_embedder`: the in-process model when the extra is installed, else None.
"""

from __future__ import annotations

import threading

from .base import Embedder, FloatMatrix, normalize_rows
from .checks import check_embedder
from .http import OpenAICompatibleEmbedder
from .local import LocalEmbedder, default_model_path
from .store import EmbeddingStore, default_embedding_dir, progress_bar, text_version

__all__ = [
    "Embedder",
    "EmbeddingStore",
    "FloatMatrix",
    "LocalEmbedder",
    "OpenAICompatibleEmbedder",
    "check_embedder",
    "default_embedder",
    "default_embedding_dir",
    "default_model_path",
    "normalize_rows",
    "progress_bar",
    "text_version",
]

_default: LocalEmbedder | None = None
_lock = threading.Lock()


def default_embedder() -> Embedder | None:
    """The shared in-process embedder (all-MiniLM-L6-v2), or None without the ``embed`` extra.

    One instance per process (the model loads lazily, on first use).
    """
    global _default
    if not LocalEmbedder.available():
        return None
    with _lock:
        if _default is None:
            _default = LocalEmbedder()
    return _default
