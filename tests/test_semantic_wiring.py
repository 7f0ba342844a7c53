"""The default storefront turns the semantic layer on when it can, and says so in the trace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storefront_sdk import Catalog, Storefront
from storefront_sdk.embeddings import Embedder, EmbeddingStore, LocalEmbedder
from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.filtering import EmbeddingDuplicateGate
from storefront_sdk.taxonomy import KeywordTaxonomy
from storefront_sdk.types import Page, UserContext


class CharEmbedder(Embedder):
    """Bag of characters: a cheap, deterministic embedder for wiring tests."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def model_id(self) -> str:
        return "char-bag-32"

    @property
    def dim(self) -> int:
        return 32

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.ones((len(texts), 32), dtype=np.float32) * 0.01
        for i, t in enumerate(texts):
            for ch in t.lower():
                out[i, ord(ch) % 32] += 1.0
        return out


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOREFRONT_EMBEDDINGS_DIR", str(tmp_path / "emb"))
    return tmp_path / "emb"


def _semantic_event(page: Page) -> str:
    events = [e for e in page.trace.events if e.kind == "semantic"]
    assert len(events) == 1, [e.kind for e in page.trace.events]
    return events[0].message


def _user() -> UserContext:
    from storefront_sdk.demo import demo_users

    return demo_users()[0]


def test_without_the_extra_the_storefront_is_lexical_and_says_so(
    demo_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Absence simulated: the availability check is what the wiring consults.
    monkeypatch.setattr(LocalEmbedder, "available", classmethod(lambda cls: False))
    sf = Storefront(demo_catalog, llm=None)
    assert sf.embedder is None
    assert sf.taxonomy.embedder is None
    assert not any(isinstance(g, EmbeddingDuplicateGate) for g in sf.gates)
    page = sf.build(_user())
    assert page.placements
    assert "semantic layer unavailable" in _semantic_event(page)
    assert "embed extra" in _semantic_event(page)


def test_embedder_none_turns_it_off(demo_catalog: Catalog) -> None:
    sf = Storefront(demo_catalog, llm=None, embedder=None)
    assert sf.embedder is None and sf.taxonomy.embedder is None
    assert "semantic layer off" in _semantic_event(sf.build(_user()))


def test_an_embedder_is_wired_into_taxonomy_and_gates(
    demo_catalog: Catalog, store_dir: Path
) -> None:
    emb = CharEmbedder()
    sf = Storefront(demo_catalog, llm=None, embedder=emb)
    assert sf.taxonomy.embedder is emb
    dedup = [g for g in sf.gates if isinstance(g, EmbeddingDuplicateGate)]
    assert len(dedup) == 1 and dedup[0].embedder is emb
    page = sf.build(_user())
    assert page.placements
    assert _semantic_event(page).startswith("semantic layer: char-bag-32")
    # The keyword vectors were computed once and stored under the taxonomy's version.
    stored = EmbeddingStore(store_dir).load("taxonomy", sf.taxonomy.version, emb)
    assert stored is not None and stored.shape == (len(sf.taxonomy), 32)
    # A second build of the same user embeds nothing new.
    calls = emb.calls
    sf.build(_user())
    assert emb.calls == calls


def test_explicit_gates_and_taxonomy_are_kept_as_given(demo_catalog: Catalog) -> None:
    tax = KeywordTaxonomy.from_catalog(demo_catalog)
    sf = Storefront(demo_catalog, llm=None, embedder=CharEmbedder(), gates=[], taxonomy=tax)
    assert sf.gates == []
    assert sf.taxonomy is tax and tax.embedder is None


def test_a_wrong_embedder_is_a_configuration_error(demo_catalog: Catalog) -> None:
    with pytest.raises(ConfigurationError, match="embedder must be"):
        Storefront(demo_catalog, llm=None, embedder="minilm")  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.skipif(not LocalEmbedder.available(), reason="embed extra not installed")
def test_default_storefront_uses_the_installed_model(
    demo_catalog: Catalog, store_dir: Path
) -> None:
    sf = Storefront(demo_catalog, llm=None)
    assert isinstance(sf.embedder, LocalEmbedder)
    assert sf.taxonomy.embedder is sf.embedder
    assert any(isinstance(g, EmbeddingDuplicateGate) for g in sf.gates)
    page = sf.build(_user())
    assert page.placements
    assert "all-MiniLM-L6-v2" in _semantic_event(page)
