"""Keyword expansion: a language model's prior fused into the taxonomy shortlist."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from storefront_sdk import Catalog
from storefront_sdk.cache import GenerationCache
from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.generation.llm_keywords import LLMKeywordGenerator
from storefront_sdk.keyword_expansion import KeywordExpander, LLMKeywordExpander, theme_text
from storefront_sdk.llm.outlines import LocalLLM
from storefront_sdk.taxonomy import KeywordTaxonomy
from storefront_sdk.testing import MockLLM
from storefront_sdk.tracing import stage
from storefront_sdk.types import Theme, Trace, UserContext

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_shortlist import load_themes, recall

KEYWORDS = ["coffee", "pancake mix", "maple syrup", "eggs", "toothbrush", "dog food", "tea"]


class WordPrior(KeywordExpander):
    """Scores keywords containing one of ``liked`` words 1, others 0 (an expander to fuse)."""

    def __init__(self, liked: Sequence[str]) -> None:
        self.liked = set(liked)
        self.calls = 0

    @property
    def fingerprint(self) -> str:
        return "word-prior:" + ",".join(sorted(self.liked))

    def scores(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> np.ndarray:
        self.calls += 1
        return np.array([float(bool(set(kw.split()) & self.liked)) for kw in taxonomy])


class BrokenPrior(KeywordExpander):
    def __init__(self, result: object = None) -> None:
        self.result = result

    @property
    def fingerprint(self) -> str:
        return "broken"

    def scores(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> np.ndarray:
        if self.result is None:
            raise RuntimeError("model crashed")
        return np.asarray(self.result)


def test_theme_text() -> None:
    assert theme_text(["Weekend brunch", "pancakes", " ", "eggs"]) == (
        "Weekend brunch (pancakes; eggs)"
    )
    assert theme_text(["Tea"]) == "Tea"
    assert theme_text(["", " "]) == ""


def test_expander_ranking_joins_the_word_ranking_without_an_embedder() -> None:
    tax = KeywordTaxonomy(KEYWORDS)
    prior = WordPrior(["coffee", "syrup"])
    got = tax.shortlist(["Weekend brunch", "pancakes"], k=4, expander=prior)
    # the word match first, then what the prior likes; toothbrush ("brunch"~"brush") is out
    assert got[:3] == ["pancake mix", "coffee", "maple syrup"]
    assert all(kw in tax for kw in got)  # only taxonomy members, never an invented keyword
    assert "coffee" not in tax.shortlist(["Weekend brunch", "pancakes"], k=4, mode="lexical")
    # memoised per expander fingerprint
    tax.shortlist(["Weekend brunch", "pancakes"], k=4, expander=prior)
    assert prior.calls == 1
    other = WordPrior(["tea"])
    assert "tea" in tax.shortlist(["Weekend brunch", "pancakes"], k=4, expander=other)


def test_expanded_mode_needs_an_expander() -> None:
    tax = KeywordTaxonomy(KEYWORDS)
    with pytest.raises(ConfigurationError, match="needs an expander"):
        tax.shortlist(["brunch"], mode="expanded")
    # other modes ignore an expander
    assert tax.shortlist(["eggs"], k=3, mode="lexical", expander=WordPrior(["tea"])) == (
        tax.shortlist(["eggs"], k=3, mode="lexical")
    )


@pytest.mark.parametrize("result", [None, [1.0, 2.0], [float("nan")] * len(KEYWORDS)])
def test_a_failing_expander_degrades_to_the_plain_shortlist_and_says_so(result: object) -> None:
    tax = KeywordTaxonomy(KEYWORDS)
    trace = Trace()
    with stage(trace, "keywords") as rec:
        got = tax.shortlist(["eggs", "pancakes"], k=3, expander=BrokenPrior(result))
    assert got == tax.shortlist(["eggs", "pancakes"], k=3, mode="lexical")
    assert "keyword expansion failed" in rec.details["expansion_error"]
    assert [e.kind for e in trace.events] == ["expansion_failed"]


def test_expander_is_only_built_for_local_models() -> None:
    assert LLMKeywordExpander.for_llm(None) is None
    assert LLMKeywordExpander.for_llm(MockLLM()) is None
    assert LLMKeywordGenerator(MockLLM()).expander is None
    with pytest.raises(ConfigurationError, match=r"local llama\.cpp model"):
        LLMKeywordExpander(MockLLM())
    prior = WordPrior(["coffee"])
    assert LLMKeywordGenerator(MockLLM(), expander=prior).expander is prior


def test_template_must_name_the_theme() -> None:
    with pytest.raises(ConfigurationError, match="placeholder"):
        LLMKeywordExpander(LocalLLM(model_path="missing.gguf"), template="List groceries")


def test_an_unloadable_model_degrades_the_shortlist(tmp_path: Path) -> None:
    """A real failure: the model file does not exist (llama.cpp is never reached)."""
    tax = KeywordTaxonomy(KEYWORDS)
    broken = LLMKeywordExpander(LocalLLM(model_path=tmp_path / "missing.gguf"))
    trace = Trace()
    with stage(trace, "keywords") as rec:
        got = tax.shortlist(["eggs", "pancakes"], k=3, expander=broken)
    assert got == tax.shortlist(["eggs", "pancakes"], k=3, mode="lexical")
    assert "cannot load the model" in rec.details["expansion_error"]


# -- with the real model ----------------------------------------------------------------------

local = pytest.mark.skipif(not LocalLLM.available(), reason="local model not installed")


@pytest.fixture(scope="module")
def llm() -> LocalLLM:
    return LocalLLM.base()


@pytest.fixture(scope="module")
def tax(semantic_demo_taxonomy: KeywordTaxonomy) -> KeywordTaxonomy:
    return semantic_demo_taxonomy


@pytest.mark.slow
@local
def test_real_scores_cover_the_taxonomy_and_know_brunch_drinks_coffee(
    llm: LocalLLM, tax: KeywordTaxonomy
) -> None:
    ex = LLMKeywordExpander(llm)
    s = ex.scores(["Weekend brunch", "pancakes", "eggs benedict"], tax)
    assert s.shape == (len(tax),) and np.isfinite(s).sum() == min(len(tax), 512)
    texts = ["Weekend brunch", "pancakes", "eggs benedict"]
    expanded = tax.shortlist(texts, k=671, expander=ex)
    fused = tax.shortlist(texts, k=671, mode="fused")
    assert sorted(expanded) == sorted(fused) == sorted(tax)  # a reordering of the taxonomy
    assert expanded.index("coffee") < fused.index("coffee")


@pytest.mark.slow
@local
def test_expanded_beats_fused_on_the_labelled_themes(llm: LocalLLM, tax: KeywordTaxonomy) -> None:
    themes = load_themes(tax)
    ex = LLMKeywordExpander(llm)
    hits = {16: 0, 100: 0}
    total = sum(len(t[3]) for t in themes)
    for _, title, concepts, expected in themes:
        got = tax.shortlist([title, *concepts], k=100, expander=ex)
        for k in hits:
            hits[k] += sum(kw in got[:k] for kw in expected)
    assert hits[100] / total > recall(tax, themes, 100, "fused")
    assert hits[16] / total > recall(tax, themes, 16, "lexical")
    taco = tax.shortlist(["Taco Tuesday", "tacos", "salsa"], k=100, expander=ex)
    assert "tortillas" in taco
    movie = tax.shortlist(["Movie night", "snacks for film"], k=100, expander=ex)
    assert "baby formula" not in movie[:16] and "infant formula" not in movie[:16]


@pytest.mark.slow
@local
def test_scores_are_cached_and_generation_still_works_after(
    llm: LocalLLM, tax: KeywordTaxonomy, tmp_path: Path
) -> None:
    cache = GenerationCache(tmp_path / "cache")
    texts = ["Afternoon tea", "scones"]
    first = LLMKeywordExpander(llm, cache=cache).scores(texts, tax)
    again = LLMKeywordExpander(llm, cache=cache)

    def no_model(theme: str) -> np.ndarray:
        raise AssertionError("the model ran although the scores were cached")

    again._next_logprobs = no_model  # type: ignore[method-assign]
    assert np.array_equal(again.scores(texts, tax), first)
    # the keyword generator on the same model context: expansion, then a constrained choice
    chat = LLMKeywordExpander(llm, cache=cache)
    gen = LLMKeywordGenerator(llm, cache=cache, expander=chat, exact_shortcut=0)
    theme = Theme(title="Weekend brunch", concepts=["pancakes", "eggs benedict"])
    trace = Trace()
    with stage(trace, "keywords") as rec:
        keywords = gen.generate(theme, tax, UserContext(user_id="u"), 4)
    assert keywords and all(kw in tax for kw in keywords)
    assert rec.details["expansion"].startswith("expand-v1:")
    assert gen.shortlist(theme, tax) == tax.shortlist(
        [theme.title, *theme.concepts], k=gen.shortlist_size, expander=gen.expander
    )


@pytest.mark.slow
@local
def test_a_warm_build_reads_the_expansion_from_the_cache(tmp_path: Path) -> None:
    """Cold build on the local model, then a new storefront on the same cache: the keyword
    stages use the expansion (traced) without running the model for it."""
    from storefront_sdk import Storefront
    from storefront_sdk.demo import demo_user

    cache = GenerationCache(tmp_path / "cache")
    user = demo_user("demo-4")  # has placements that are not pinned
    cold = Storefront(Catalog.demo(), llm=LocalLLM.base(), cache=cache).build(user)
    expanded = [st for st in cold.trace.stages if "expansion" in st.details]
    assert expanded, "no keyword stage used the expansion"

    warm_sf = Storefront(Catalog.demo(), llm=LocalLLM.base(), cache=cache)
    gen = warm_sf.keyword_generator
    assert isinstance(gen, LLMKeywordGenerator) and gen.expander is not None

    def no_model(theme: str) -> np.ndarray:
        raise AssertionError("the expansion ran the model on a warm build")

    gen.expander._next_logprobs = no_model  # type: ignore[attr-defined]
    warm = warm_sf.build(user)
    assert not [e for e in warm.trace.events if e.kind == "expansion_failed"]
    assert [p.keywords for p in warm.placements] == [p.keywords for p in cold.placements]
