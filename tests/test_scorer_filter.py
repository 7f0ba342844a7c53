"""ScorerRelevanceFilter: a user's scoring model (in-process or over HTTP) as a relevance filter."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from storefront_sdk import Catalog, ComponentError, StaticThemeGenerator, Storefront, Theme
from storefront_sdk.demo import demo_user
from storefront_sdk.exceptions import FatalBackendError, RetryableBackendError
from storefront_sdk.filtering.scorer import ScorerRelevanceFilter
from storefront_sdk.testing import check_relevance_filter
from storefront_sdk.text import tokenize


def overlap_scorer(query: str, documents: list[str]) -> list[float]:
    """A stand-in cross-encoder: share of a document's words that the query mentions."""
    q = set(tokenize(query))
    out = []
    for doc in documents:
        d = set(tokenize(doc))
        out.append(len(q & d) / len(d) if d else 0.0)
    return out


PASTA = Theme(title="Pasta night", concepts=["spaghetti", "pasta sauce", "penne pasta"])


def _pasta_and_others(catalog: Catalog) -> list:  # type: ignore[type-arg]
    on = [p for p in catalog if p.aisle in ("pasta", "pasta sauce")][:10]
    off = [p for p in catalog if p.department in ("pets", "household")][:20]
    return on + off


# -- in-process scorers ------------------------------------------------------------------------


def test_wraps_a_callable_batches_and_keeps_on_theme_products(demo_catalog: Catalog) -> None:
    batches: list[int] = []

    def scorer(query: str, documents: list[str]) -> list[float]:
        batches.append(len(documents))
        return overlap_scorer(query, documents)

    flt = ScorerRelevanceFilter(scorer, threshold=0.2, batch_size=8)
    products = _pasta_and_others(demo_catalog)
    scores = flt.score(PASTA, products)
    assert batches == [8, 8, 8, 6]
    assert scores == overlap_scorer(PASTA.text, [p.text for p in products])
    kept = {p.aisle for p, s in zip(products, scores, strict=True) if s >= flt.threshold}
    assert kept and kept <= {"pasta", "pasta sauce"}


def test_honours_the_relevance_filter_contract(demo_catalog: Catalog) -> None:
    check_relevance_filter(ScorerRelevanceFilter(overlap_scorer), demo_catalog)


async def test_async_scorers_are_awaited_batch_by_batch(demo_catalog: Catalog) -> None:
    calls: list[int] = []

    async def scorer(query: str, documents: list[str]) -> list[float]:
        calls.append(len(documents))
        return overlap_scorer(query, documents)

    flt = ScorerRelevanceFilter(scorer, batch_size=16)
    products = _pasta_and_others(demo_catalog)
    assert await flt.ascore(PASTA, products) == overlap_scorer(
        PASTA.text, [p.text for p in products]
    )
    assert sorted(calls) == [14, 16]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda docs: [0.5] * (len(docs) - 1), "scores for"),
        (lambda docs: [math.nan] * len(docs), "not finite"),
        (lambda docs: ["high"] * len(docs), "not a number"),
        (lambda docs: None, "expected a list of numbers"),
    ],
)
def test_invalid_scores_raise_component_errors(
    demo_catalog: Catalog, answer: Any, message: str
) -> None:
    flt = ScorerRelevanceFilter(lambda q, docs: answer(docs))
    with pytest.raises(ComponentError, match=message):
        flt.score(PASTA, list(demo_catalog)[:5])


def test_out_of_range_scores_are_clamped_or_rejected_and_logits_squashed(
    demo_catalog: Catalog,
) -> None:
    products = list(demo_catalog)[:4]
    raw = [-3.0, 0.0, 0.7, 4.0]
    assert ScorerRelevanceFilter(lambda q, d: raw).score(PASTA, products) == [0.0, 0.0, 0.7, 1.0]
    with pytest.raises(ComponentError, match="outside"):
        ScorerRelevanceFilter(lambda q, d: raw, out_of_range="error").score(PASTA, products)
    squashed = ScorerRelevanceFilter(lambda q, d: raw, logits=True).score(PASTA, products)
    assert squashed == [1 / (1 + math.exp(-x)) for x in raw]
    assert squashed[1] == 0.5 and squashed == sorted(squashed)


def test_a_broken_scorer_degrades_the_page_instead_of_failing_it(demo_catalog: Catalog) -> None:
    broken = ScorerRelevanceFilter(lambda q, docs: [0.9])  # one score, whatever the batch
    # Static themes: their products all come from retrieval, so the filter runs (a history
    # page's placements are filled by their pins and skip it).
    page = Storefront(
        demo_catalog,
        llm=None,
        cache=None,
        relevance_filter=broken,
        theme_generator=StaticThemeGenerator(),
    ).build(demo_user("demo-1"))
    assert page.placements
    fallbacks = [e for e in page.trace.events_of("fallback") if e.data.get("stage") == "filter"]
    assert fallbacks and "scores for" in fallbacks[0].message


# -- HTTP --------------------------------------------------------------------------------------


class _RerankServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.flaky_left = 2

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _RerankServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body, dict(self.headers)))
        if self.path == "/bad":
            return self._send(400, {"error": "model not found"})
        if self.path == "/flaky" and self.server.flaky_left > 0:
            self.server.flaky_left -= 1
            return self._send(503, {"error": "warming up"}, {"Retry-After": "0"})
        docs = body.get("documents", body.get("texts", []))
        scores = overlap_scorer(body["query"], docs)
        if self.path == "/tei":  # Text Embeddings Inference: [{index, score}], best first
            ranked = sorted(range(len(docs)), key=lambda i: -scores[i])
            return self._send(200, [{"index": i, "score": scores[i]} for i in ranked])
        if self.path == "/cohere":
            return self._send(
                200,
                {
                    "results": [{"index": i, "relevance_score": s} for i, s in enumerate(scores)][
                        ::-1
                    ]
                },
            )
        return self._send(200, {"scores": scores})


@pytest.fixture
def server() -> Iterator[_RerankServer]:
    srv = _RerankServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.mark.slow
def test_http_scorer_matches_the_local_model(server: _RerankServer, demo_catalog: Catalog) -> None:
    products = _pasta_and_others(demo_catalog)
    expected = overlap_scorer(PASTA.text, [p.text for p in products])
    flt = ScorerRelevanceFilter.http(
        f"{server.url}/rerank",
        batch_size=12,
        headers={"Authorization": "Bearer s3cret"},
        extra_body={"model": "tiny-reranker"},
    )
    assert flt.score(PASTA, products) == expected
    assert len(server.requests) == 3
    _, body, headers = server.requests[0]
    assert (
        body["model"] == "tiny-reranker"
        and body["query"] == PASTA.text
        and len(body["documents"]) == 12
    )
    assert headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(flt) and "s3cret" not in repr(flt.scorer)
    check_relevance_filter(flt, demo_catalog)


@pytest.mark.slow
async def test_http_scorer_async_and_rerank_answer_shapes(
    server: _RerankServer, demo_catalog: Catalog
) -> None:
    products = _pasta_and_others(demo_catalog)
    expected = overlap_scorer(PASTA.text, [p.text for p in products])
    tei = ScorerRelevanceFilter.http(f"{server.url}/tei", documents_field="texts", batch_size=7)
    assert await tei.ascore(PASTA, products) == expected
    assert all("texts" in body for _, body, _ in server.requests)
    cohere = ScorerRelevanceFilter.http(f"{server.url}/cohere")
    assert cohere.score(PASTA, products) == expected


@pytest.mark.slow
def test_http_scorer_retries_server_errors_and_fails_fast_on_client_errors(
    server: _RerankServer, demo_catalog: Catalog
) -> None:
    products = list(demo_catalog)[:5]
    flaky = ScorerRelevanceFilter.http(f"{server.url}/flaky", max_retries=2)
    assert flaky.score(PASTA, products) == overlap_scorer(PASTA.text, [p.text for p in products])
    assert [p for p, _, _ in server.requests] == ["/flaky"] * 3
    server.flaky_left = 5
    with pytest.raises(RetryableBackendError, match="503"):
        ScorerRelevanceFilter.http(f"{server.url}/flaky", max_retries=1).score(PASTA, products)
    server.requests.clear()
    with pytest.raises(FatalBackendError, match="400"):
        ScorerRelevanceFilter.http(f"{server.url}/bad", max_retries=3).score(PASTA, products)
    assert len(server.requests) == 1


@pytest.mark.slow
def test_storefront_pages_with_an_http_cross_encoder(
    server: _RerankServer, demo_catalog: Catalog
) -> None:
    flt = ScorerRelevanceFilter.http(f"{server.url}/rerank", threshold=0.1)
    page = Storefront(
        demo_catalog,
        llm=None,
        cache=None,
        relevance_filter=flt,
        theme_generator=StaticThemeGenerator(),  # retrieved products, so the filter runs
    ).build(demo_user("demo-1"))
    assert page.placements and server.requests
    stages = page.trace.stages_of("filter")
    assert stages and all(
        s.component == "ScorerRelevanceFilter" and s.error is None for s in stages
    )
    assert all(s.model_id == f"{server.url}/rerank" for s in stages)


def test_http_answers_that_are_not_scores_are_backend_errors(demo_catalog: Catalog) -> None:
    answers = iter(
        [
            httpx.Response(200, text="<html>oops</html>"),
            httpx.Response(200, json={"results": [{"index": 7, "score": 0.3}]}),
            httpx.Response(200, json={"unexpected": True}),
            httpx.Response(200, json={"scores": [0.1, 0.2]}),
        ]
    )
    flt = ScorerRelevanceFilter.http(
        "http://reranker.test/rerank", transport=httpx.MockTransport(lambda request: next(answers))
    )
    products = list(demo_catalog)[:3]
    with pytest.raises(FatalBackendError, match="did not answer JSON"):
        flt.score(PASTA, products)
    with pytest.raises(FatalBackendError, match="index 7"):
        flt.score(PASTA, products)
    with pytest.raises(FatalBackendError, match="unexpected answer"):
        flt.score(PASTA, products)
    with pytest.raises(ComponentError, match="2 scores for 3 products"):
        flt.score(PASTA, products)


def test_http_connection_errors_are_retryable(demo_catalog: Catalog) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    flt = ScorerRelevanceFilter.http(
        "http://reranker.test/rerank", max_retries=0, transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(RetryableBackendError, match="cannot reach"):
        flt.score(PASTA, list(demo_catalog)[:2])
