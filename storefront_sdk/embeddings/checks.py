"""A conformance check for :class:`~storefront_sdk.embeddings.Embedder` implementations."""

from __future__ import annotations

import asyncio

import numpy as np

from ..exceptions import ConfigurationError
from .base import Embedder

__all__ = ["check_embedder"]

_TEXTS = ["Taco Tuesday", "tortillas", "tortillas", "baby formula", "", "x " * 40]


def check_embedder(embedder: Embedder) -> None:
    """Raise AssertionError unless ``embedder`` keeps the contract.

    Checks: ``dim`` and ``model_id``; one float32 row of unit length per text, in
    order; identical texts give identical rows; batching does not change the
    result; the empty list gives shape ``(0, dim)``; ``aembed`` equals
    ``embed``; a bare string is refused with ConfigurationError.
    """
    dim = embedder.dim
    assert isinstance(dim, int) and dim > 0, f"dim must be a positive int, got {dim!r}"
    assert isinstance(embedder.model_id, str) and embedder.model_id, "model_id must be non-empty"
    vecs = embedder.embed(_TEXTS)
    assert isinstance(vecs, np.ndarray), f"embed returned {type(vecs).__name__}"
    assert vecs.dtype == np.float32, f"embed returned dtype {vecs.dtype}, expected float32"
    assert vecs.shape == (len(_TEXTS), dim), f"embed returned shape {vecs.shape}"
    assert np.isfinite(vecs).all(), "embed returned non-finite values"
    norms = np.linalg.norm(vecs, axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-4), f"rows are not unit length: {norms}"
    assert np.allclose(vecs[1], vecs[2], atol=1e-5), "identical texts gave different vectors"
    one = np.stack([embedder.embed([t])[0] for t in _TEXTS[:4]])
    assert np.allclose(one, vecs[:4], atol=1e-4), "batching changed the vectors"
    assert embedder.embed([]).shape == (0, dim), "embed([]) must have shape (0, dim)"
    avecs = asyncio.run(embedder.aembed(_TEXTS))
    assert np.allclose(avecs, vecs, atol=1e-4), "aembed differs from embed"
    try:
        embedder.embed("a string")  # type: ignore[arg-type]
    except ConfigurationError:
        pass
    else:
        raise AssertionError("embed('a string') must raise ConfigurationError")
