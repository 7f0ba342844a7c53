"""The HTTP throughput benchmark's pieces, on the in-process stub server (fast).

``OpenAICompatibleLLM`` keeps at most ``max_connections`` requests in flight, and uses
all of them. The benchmark counts a page's sequential model rounds from its trace and
replays them with a zero-cost client for the ideal.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from storefront_sdk.llm.base import ChatMessage, Structured
from storefront_sdk.llm.openai import OpenAICompatibleLLM
from storefront_sdk.testing.stub_server import StubOpenAIServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_generation_http as bench
import compare_commits

MESSAGES = [ChatMessage(role="user", content="Suggest a breakfast theme for eggs and coffee.")]


class Theme(BaseModel):
    title: str


@pytest.mark.parametrize("limit", [20, 40])
async def test_max_connections_are_all_used_and_never_exceeded(limit: int) -> None:
    with StubOpenAIServer(latency=0.3) as srv:
        async with OpenAICompatibleLLM(srv.base_url, "stub", max_connections=limit) as llm:
            results = await asyncio.gather(
                *(llm.agenerate(MESSAGES, Structured(Theme)) for _ in range(40))
            )
    assert len(results) == 40 and srv.request_count == 40
    # Never more than the limit side by side, and close to it.
    assert limit - 4 <= srv.max_in_flight <= limit


def test_benchmark_section_builds_every_page_and_counts_rounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    figures = bench.run_http_section(
        "throughput", users=6, concurrency=3, latency=0.05, in_process=True
    )
    assert figures["pages"] == figures["users"] == 6
    # The theme call, then at least one batch of keyword calls.
    assert figures["mean_rounds"] >= 2
    assert figures["max_in_flight_server"] is not None
    assert figures["max_in_flight_server"] <= figures["max_connections"]
    # compare_commits.py reads these figures from the printed lines: its preset must
    # find the same numbers the section returned.
    parsed = compare_commits.parse_metrics(
        capsys.readouterr().out, compare_commits.PRESETS["http"][1]
    )
    assert parsed["share_pct"] == pytest.approx(100 * figures["share"], abs=0.06)
    assert parsed["cpu_ms_per_page"] == pytest.approx(figures["cpu_ms_per_page"], abs=0.06)
    assert parsed["pages_per_s"] == pytest.approx(figures["achieved_pages_per_s"], abs=0.006)


def test_replay_ideal_is_list_scheduling_of_the_pages_rounds() -> None:
    # 2 slots, 1 s per round: 3-round page on one slot, three 1-round pages on the other.
    assert bench.replay_ideal([3, 1, 1, 1], concurrency=2, latency=1.0) == pytest.approx(4 / 3)
    # A batch that cannot keep every slot busy to the end falls short of C / (rounds x L).
    assert bench.replay_ideal([2, 2, 2], concurrency=2, latency=1.0) == pytest.approx(0.75)
    assert bench.replay_ideal([2] * 4, concurrency=2, latency=0.5) == pytest.approx(2.0)
