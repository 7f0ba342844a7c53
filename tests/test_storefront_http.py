"""The generative storefront over a real HTTP server (the in-process OpenAI-compatible stub).

Every page is built even when the model server fails a third of the time, and every
failure that reached the storefront is matched by a fallback in the page's trace.
"""

from __future__ import annotations

import pytest

from storefront_sdk import Catalog, GenerationCache, OpenAICompatibleLLM, Page, Storefront
from storefront_sdk.demo import demo_users
from storefront_sdk.testing.stub_server import StubOpenAIServer


def _assert_fallbacks_traced(page: Page) -> None:
    """Each failed generation stage is followed by a fallback stage for the same slot."""
    for rec in page.trace.stages:
        if rec.stage not in ("themes", "keywords") or not rec.error or rec.fallback_reason:
            continue
        replaced = [
            r
            for r in page.trace.stages
            if r.stage == rec.stage and r.placement == rec.placement and r.fallback_reason
        ]
        assert replaced, f"{rec.stage} failure without a traced fallback: {rec.error}"
        assert page.trace.events_of("fallback")


def test_generated_placements_say_llm_and_keywords_stay_in_the_taxonomy(
    demo_catalog: Catalog,
) -> None:
    with StubOpenAIServer(seed=1) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, model="stub-model", response_format="auto")
        sf = Storefront(demo_catalog, llm=llm, cache=None)
        pages = sf.build_many(demo_users(), concurrency=4)
        assert srv.request_count > 0
    # The stub answers with random (schema-valid) words: many of its themes are too thin
    # to keep and are replaced by fallbacks, but some survive, and every page is full.
    assert sum(pl.source == "llm" for page in pages for pl in page.placements) > 0
    for page in pages:
        assert len(page.placements) >= 6
        for pl in page.placements:
            assert all(kw in sf.taxonomy for kw in pl.keywords)
        assert any(s.model_id for s in page.trace.stages_of("themes"))


@pytest.mark.slow
def test_thirty_percent_failures_still_build_every_page(demo_catalog: Catalog) -> None:
    users = demo_users() * 3
    with StubOpenAIServer(failure_rate=0.3, seed=7, retry_after=0.05, hang_seconds=2.0) as srv:
        llm = OpenAICompatibleLLM(
            srv.base_url,
            model="stub-model",
            response_format="auto",
            timeout=0.5,
            max_retries=1,
            max_reasks=0,
            backoff_initial=0.01,
            backoff_max=0.05,
        )
        sf = Storefront(demo_catalog, llm=llm, cache=None)
        pages = sf.build_many(users, concurrency=8)
        assert sum(srv.failures_injected.values()) > 0
    assert len(pages) == len(users)
    failed_stages = 0
    for page in pages:
        assert len(page.placements) >= 6, page.trace.events
        _assert_fallbacks_traced(page)
        failed_stages += sum(1 for s in page.trace.stages if s.error)
    assert failed_stages > 0  # failures did reach the storefront, and were absorbed


def test_cache_hit_on_second_build(demo_catalog: Catalog, tmp_path: object) -> None:
    with StubOpenAIServer(seed=3) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, model="stub-model", response_format="auto")
        sf = Storefront(demo_catalog, llm=llm, cache=GenerationCache(str(tmp_path)))
        user = demo_users()[0]
        first = sf.build(user)
        calls = srv.request_count
        second = sf.build(user)
        assert srv.request_count == calls  # nothing asked of the model the second time
    assert [pl.theme.title for pl in first.placements] == [
        pl.theme.title for pl in second.placements
    ]
    primary = second.trace.stages_of("themes")[0]  # later ones are fallback generators
    assert primary.cache_hit is True
    model_keywords = [
        s for s in second.trace.stages_of("keywords") if s.component == "LLMKeywordGenerator"
    ]
    assert model_keywords and all(s.cache_hit for s in model_keywords)
