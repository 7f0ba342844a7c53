"""Embeddings computed once, kept on disk, loaded memory-mapped.

An :class:`EmbeddingStore` keys each matrix by what it embeds (a name such as
``"taxonomy"`` plus the vocabulary's or catalog's version fingerprint) and by
the embedder's ``model_id``, so a changed catalog or model never reuses stale
vectors. Files are ``<dir>/<model>/<name>-<version>.npy`` (float32, written
atomically) and are opened with ``np.load(mmap_mode="r")``: a second process
pays one file open, not a forward pass.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..exceptions import ConfigurationError
from .base import Embedder, FloatMatrix

__all__ = ["EmbeddingStore", "Progress", "default_embedding_dir", "text_version"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each chunk of an embedding run."""


def default_embedding_dir() -> Path:
    """``$STOREFRONT_EMBEDDINGS_DIR``, else ``<cache dir>/embeddings``."""
    env = os.environ.get("STOREFRONT_EMBEDDINGS_DIR")
    if env:
        return Path(env).expanduser()
    from ..cache import default_cache_dir

    return default_cache_dir() / "embeddings"


def text_version(texts: Sequence[str]) -> str:
    """A fingerprint of an ordered list of texts."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:120] or "model"


def progress_bar(label: str) -> Progress:
    """A one-line text progress bar on stderr."""
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        frac = done / total if total else 1.0
        filled = int(30 * frac)
        el = time.perf_counter() - start
        rate = done / el if el > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        sys.stderr.write(
            f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} "
            f"{rate:.0f}/s eta {eta:.0f}s "
        )
        if done >= total:
            sys.stderr.write(f"\n{label}: {total} texts in {el:.1f}s\n")
        sys.stderr.flush()

    return report


class EmbeddingStore:
    """On-disk, memory-mapped embedding matrices keyed by content version and model."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_embedding_dir()

    def path(self, name: str, version: str, embedder: Embedder) -> Path:
        return self.directory / _slug(embedder.model_id) / f"{_slug(name)}-{_slug(version)}.npy"

    def load(self, name: str, version: str, embedder: Embedder) -> FloatMatrix | None:
        """The stored matrix (memory-mapped, read-only), or None when absent or unreadable."""
        path = self.path(name, version, embedder)
        if not path.is_file():
            return None
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        if arr.dtype != np.float32 or arr.ndim != 2:
            return None
        return arr  # type: ignore[no-any-return]

    def get_or_compute(
        self,
        name: str,
        texts: Sequence[str],
        embedder: Embedder,
        *,
        version: str | None = None,
        progress: Progress | None = None,
        chunk: int = 512,
    ) -> FloatMatrix:
        """The embeddings of ``texts``: from disk when stored, else computed and stored.

        ``version`` defaults to a fingerprint of ``texts``.
        """
        version = version or text_version(texts)
        hit = self.load(name, version, embedder)
        if hit is not None and hit.shape[0] == len(texts):
            return hit
        out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
        for start in range(0, len(texts), chunk):
            out[start : start + chunk] = embedder.embed(list(texts[start : start + chunk]))
            if progress is not None:
                progress(min(start + chunk, len(texts)), len(texts))
        self.save(name, version, embedder, out)
        stored = self.load(name, version, embedder)
        return out if stored is None else stored

    def save(self, name: str, version: str, embedder: Embedder, matrix: FloatMatrix) -> Path:
        """Write ``matrix`` atomically (a temporary file, then a rename)."""
        path = self.path(name, version, embedder)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.asarray(matrix, dtype=np.float32))
            os.replace(tmp, path)
        except OSError as exc:
            raise ConfigurationError(f"cannot write embeddings to {path}: {exc}") from exc
        return path
