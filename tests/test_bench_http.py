"""The HTTP throughput benchmark's pieces, on the in-process stub server (fast).

``OpenAICompatibleLLM`` splits a large ``max_connections`` into several small httpx
pools (httpcore's pool bookkeeping is quadratic in its size); the total stays the
limit the user asked for. The benchmark counts a page's sequential model rounds from
its trace.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from storefront_sdk.llm.base import ChatMessage, Structured
from storefront_sdk.llm.openai import OpenAICompatibleLLM
from storefront_sdk.llm.stub_server import StubOpenAIServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_generation_http as bench

MESSAGES = [ChatMessage(role="user", content="Suggest a breakfast theme for eggs and coffee.")]


class Theme(BaseModel):
    title: str


@pytest.mark.parametrize("limit", [20, 40])
async def test_split_pools_serve_up_to_max_connections_at_once(limit: int) -> None:
    with StubOpenAIServer(latency=0.3) as srv:
        async with OpenAICompatibleLLM(srv.base_url, "stub", max_connections=limit) as llm:
            results = await asyncio.gather(
                *(llm.agenerate(MESSAGES, Structured(Theme)) for _ in range(40))
            )
    assert len(results) == 40 and srv.request_count == 40
    # Never more than the limit side by side, and close to it: the pools share the load.
    assert limit - 4 <= srv.max_in_flight <= limit


def test_benchmark_section_builds_every_page_and_counts_rounds() -> None:
    figures = bench.run_http_section(
        "throughput", users=6, concurrency=3, latency=0.05, in_process=True
    )
    assert figures["pages"] == figures["users"] == 6
    # The theme call, then at least one batch of keyword calls.
    assert figures["mean_rounds"] >= 2
    assert figures["max_in_flight_server"] is not None
    assert figures["max_in_flight_server"] <= figures["max_connections"]
