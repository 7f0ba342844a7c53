"""The Embedder contract, the in-process MiniLM backend, the HTTP backend and the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from embedding_server import EmbeddingServer

from storefront_sdk.embeddings import (
    Embedder,
    EmbeddingStore,
    LocalEmbedder,
    OpenAICompatibleEmbedder,
    check_embedder,
    default_embedder,
)
from storefront_sdk.exceptions import ComponentError, FatalBackendError, RetryableBackendError

DATA = Path(__file__).parent / "data"
needs_model = pytest.mark.skipif(not LocalEmbedder.available(), reason="embed extra not installed")


@pytest.fixture(scope="module")
def local() -> Embedder:
    e = default_embedder()
    assert e is not None
    return e


class HashEmbedder(Embedder):
    """A deterministic bag-of-characters embedder (tests of the base class and the store)."""

    def __init__(self, dim: int = 16) -> None:
        self._dim = dim
        self.calls = 0

    @property
    def model_id(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % self._dim] += 1.0
        return out


def test_base_class_keeps_the_contract() -> None:
    check_embedder(HashEmbedder())


def test_memo_avoids_recomputing_short_texts() -> None:
    e = HashEmbedder()
    e.embed(["a", "b"])
    calls = e.calls
    e.embed(["b", "a"])
    assert e.calls == calls


def test_wrong_shape_from_a_backend_is_a_component_error() -> None:
    class Broken(HashEmbedder):
        def _embed_batch(self, texts: list[str]) -> np.ndarray:
            return np.zeros((len(texts) + 1, self.dim), dtype=np.float32)

    with pytest.raises(ComponentError, match="shape"):
        Broken().embed(["x"])


@pytest.mark.slow
@needs_model
def test_local_embedder_keeps_the_contract(local: Embedder) -> None:
    check_embedder(local)


@pytest.mark.slow
@needs_model
def test_local_embedder_equals_sentence_transformers() -> None:
    ref = json.loads((DATA / "minilm_reference.json").read_text())
    vecs = LocalEmbedder(batch_size=4).embed(ref["texts"])
    assert np.abs(vecs - np.asarray(ref["vectors"], dtype=np.float32)).max() < 1e-4


@pytest.mark.slow
@needs_model
def test_local_embedder_similarities_are_semantic() -> None:
    e = default_embedder()
    assert e is not None and e is default_embedder()
    v = e.embed(["movie night snacks", "popcorn", "baby formula"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    from storefront_sdk.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="not found"):
        LocalEmbedder(tmp_path / "nope").embed(["x"])
    (tmp_path / "m").mkdir()
    with pytest.raises(ConfigurationError, match=r"config\.json"):
        LocalEmbedder(tmp_path / "m").embed(["x"])


@pytest.mark.slow
@needs_model
def test_http_embedder_against_a_real_server(local: Embedder) -> None:
    texts = ["Taco Tuesday", "tortillas", "baby formula", "popcorn"]
    with EmbeddingServer(local) as server:
        http = OpenAICompatibleEmbedder(server.base_url, "minilm", batch_size=3, backoff_s=0.01)
        check_embedder(http)
        assert http.dim == 384
        assert np.abs(http.embed(texts) - local.embed(texts)).max() < 1e-5
        server.fail_next = 1
        http.memo_size = 0
        assert http.embed(["retry me"]).shape == (1, 384)
        server.fail_next = 5
        with pytest.raises(RetryableBackendError):
            http.embed(["busy again"])
        server.fail_next = 0
        bad = OpenAICompatibleEmbedder(server.base_url.replace("/v1", "/v2"), "m", dim=384)
        with pytest.raises(FatalBackendError, match="404"):
            bad.embed(["x"])
        http.close()


def test_http_embedder_connection_refused_is_retryable() -> None:
    e = OpenAICompatibleEmbedder("http://127.0.0.1:9", "m", dim=4, max_retries=2, backoff_s=0.01)
    with pytest.raises(RetryableBackendError):
        e.embed(["x"])


def test_store_computes_once_then_memory_maps(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path)
    e = HashEmbedder()
    seen: list[tuple[int, int]] = []
    a = store.get_or_compute(
        "taxonomy", ["a", "b", "c"], e, progress=lambda d, t: seen.append((d, t)), chunk=2
    )
    assert seen == [(2, 3), (3, 3)]
    calls = e.calls
    b = store.get_or_compute("taxonomy", ["a", "b", "c"], HashEmbedder())
    assert isinstance(b, np.memmap)
    assert np.array_equal(a, b)
    # another model or another version is another file
    assert store.path("taxonomy", "v", e) != store.path("taxonomy", "v", HashEmbedder(8))
    assert store.load("taxonomy", "other", e) is None
    assert e.calls == calls


@pytest.mark.slow
@needs_model
def test_embed_cli_stores_then_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from storefront_sdk.cli import main

    assert main(["embed", "--store-dir", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "taxonomy:" in out.out and "taxonomy (" in out.err  # the progress bar
    files = list(tmp_path.rglob("taxonomy-*.npy"))
    assert len(files) == 1
    assert main(["embed", "--store-dir", str(tmp_path)]) == 0
    assert list(tmp_path.rglob("taxonomy-*.npy")) == files


@pytest.mark.slow
@needs_model
def test_embedding_relevance_filter_ranks_on_theme_products_higher(local: Embedder) -> None:
    from storefront_sdk.filtering.embedding_relevance import embedding_relevance_filter
    from storefront_sdk.types import Product, Theme

    flt = embedding_relevance_filter(local)
    theme = Theme(title="Movie night", concepts=["snacks for film"])
    prods = [
        Product(id="a", title="Butter Microwave Popcorn"),
        Product(id="b", title="Infant Formula Powder"),
    ]
    s = flt.score(theme, prods)
    assert 0.0 <= s[1] < s[0] <= 1.0


def test_model_zip_is_unpacked_once_then_read_from_the_directory(tmp_path: Path) -> None:
    import os
    import zipfile

    from storefront_sdk.embeddings.local import unpacked

    src = tmp_path / "model.zip"
    with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("m/config.json", "{}")
        z.writestr("m/model.safetensors", b"weights")
        z.writestr("m/tokenizer.json", "{}")
        z.writestr("m/1_Pooling/config.json", "{}")
    first = unpacked(src, tmp_path / "cache")
    assert first.is_dir() and (first / "model.safetensors").read_bytes() == b"weights"
    assert (first / "1_Pooling" / "config.json").is_file()
    (first / "model.safetensors").write_bytes(b"kept")  # a second call reuses the directory
    assert unpacked(src, tmp_path / "cache") == first
    assert (first / "model.safetensors").read_bytes() == b"kept"
    assert unpacked(tmp_path, tmp_path / "cache") == tmp_path  # a directory is used as is
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert unpacked(src, ro / "cache") == src  # cannot cache: read the zip itself
