"""HTTP generation benchmark: ``build_many`` over ``OpenAICompatibleLLM`` against an ideal.

    python benchmarks/bench_generation_http.py [--users 100] [--concurrency 16] [--latency 0.2]
        [--only throughput failures] [--in-process] [--profile]

The model server is :class:`~storefront_sdk.testing.stub_server.StubOpenAIServer`, run in a
separate process (``python -m storefront_sdk.testing.stub_server``) so that its CPU does not
compete with the client's GIL, answering every request after ``--latency`` seconds.
The storefront is ``Storefront(Catalog.demo(), llm=OpenAICompatibleLLM(...), cache=None)``
and the users are the demo users repeated under distinct ids.

throughput
    Achieved pages/s of ``build_many(users, concurrency=C)`` against the *ideal*
    pages/s: a page needs a chain of model round trips (the theme call, then the
    keyword calls of a batch of placements in parallel, then possibly another batch
    for refills). Every model call is timed (start, end) into its stage's
    ``details``; a page's *rounds* are the groups of its overlapping model calls
    (a new group starts when every earlier call has ended).

    The ideal is what a client costing nothing would achieve on the same pages: each
    page takes exactly ``rounds * L``, and ``build_many`` gives the next user the first
    of its C slots to free up (in input order). That replay's makespan gives the
    ideal pages/s; its share is the headline (target >= 80%). Also printed, the
    steady-state bound ``C / (mean rounds * L)``, which an endless stream of pages
    would approach; a batch of 100 cannot (its last pages run with slots idle),
    so it is the stricter yardstick. Then the client CPU time per page
    (``time.process_time``) and the CPU-bound ceiling ``1 / cpu_per_page``.
failures
    The same with 30% of requests failing (429 / 500 / hangs past a 1 s client
    timeout / malformed JSON): pages built / users, placements per page, failed
    generation stages, and whether every failed stage has a fallback stage for the
    same placement in the trace.

``bench_generation.py`` calls :func:`main_http` (or :func:`run_http_section`); this
file also runs alone.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import heapq
import io
import logging
import os
import pstats
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from storefront_sdk import Catalog, OpenAICompatibleLLM, Page, Storefront, UserContext
from storefront_sdk.demo import demo_users
from storefront_sdk.llm.base import ChatMessage, LLMResult, OutputSpec
from storefront_sdk.testing.stub_server import StubOpenAIServer
from storefront_sdk.tracing import current_stage

__all__ = ["HTTP_SECTIONS", "add_http_arguments", "main_http", "run_http_section"]

T = TypeVar("T")

HTTP_SECTIONS = ("throughput", "failures")
TARGET_SHARE = 0.8
GENERATION_STAGES = ("themes", "keywords")


# -- the client, with every model call timed into its stage -----------------------------------


class _Count(logging.Handler):
    """Counts the HTTP backend's retry warnings instead of printing one line each."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextlib.contextmanager
def counted_retries() -> Iterator[_Count]:
    log = logging.getLogger("storefront_sdk.llm.http")
    handler, propagate = _Count(), log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


class TimedLLM(OpenAICompatibleLLM):
    """``OpenAICompatibleLLM`` that records (start, end) of each call in the stage's details.

    Only two ``perf_counter`` reads and a list append per call: it lets the benchmark
    count a page's sequential model rounds from ``page.trace`` alone.
    """

    in_flight = 0
    max_in_flight = 0
    calls = 0

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        rec = current_stage()
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        start = time.perf_counter()
        try:
            return await super().agenerate(
                messages, output, max_tokens=max_tokens, temperature=temperature
            )
        finally:
            self.in_flight -= 1
            if rec is not None:
                rec.details.setdefault("bench_calls", []).append((start, time.perf_counter()))


def replay_ideal(rounds: Sequence[int], concurrency: int, latency: float) -> float:
    """Pages/s of a zero-cost client: page i takes ``rounds[i] * latency`` and starts on
    the first of ``concurrency`` slots to free up, in input order (as ``build_many``)."""
    if not rounds:
        return float("nan")
    slots = [0.0] * concurrency
    for r in rounds:
        start = heapq.heappop(slots)
        heapq.heappush(slots, start + r * latency)
    return len(rounds) / max(slots)


def page_rounds(page: Page) -> int:
    """Sequential model rounds of a page: groups of overlapping model calls.

    Calls sorted by start; a new round begins when a call starts after every earlier
    call has ended (the theme call, then each batch of parallel keyword calls).
    """
    calls: list[tuple[float, float]] = sorted(
        call
        for rec in page.trace.stages
        if rec.model_id
        for call in rec.details.get("bench_calls", ())
    )
    rounds, busy_until = 0, float("-inf")
    for start, end in calls:
        if start >= busy_until:
            rounds += 1
        busy_until = max(busy_until, end)
    return rounds


# -- the server ------------------------------------------------------------------------------


@dataclass
class Stub:
    """A running stub: where it listens, and (in process only) its live counters."""

    base_url: str
    where: str
    server: StubOpenAIServer | None = None
    pid: int | None = None

    def stats(self) -> dict[str, Any]:
        """The stub's counters and lateness (``GET /v1/stub/stats`` when out of process)."""
        if self.server is not None:
            return self.server.stats()
        try:
            data: dict[str, Any] = httpx.get(f"{self.base_url}/stub/stats", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the stub process has used so far; None in process."""
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def stub_server(
    *,
    latency: float,
    failure_rate: float,
    seed: int,
    in_process: bool = False,
    choices: str = "random",
) -> Iterator[Stub]:
    """The stub in a child process (default) or, with ``in_process``, on a thread here."""
    if not in_process:
        port = _free_port()
        cmd = [
            sys.executable, "-m", "storefront_sdk.testing.stub_server", "--port", str(port),
            "--latency", str(latency), "--failure-rate", str(failure_rate), "--seed", str(seed),
            "--choices", choices,
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline() if proc.stdout is not None else ""
            if "http://" in line:
                try:
                    yield Stub(f"http://127.0.0.1:{port}/v1", "separate process", pid=proc.pid)
                finally:
                    proc.terminate()
                    proc.wait(timeout=10)
                return
            err = proc.stderr.read() if proc.stderr is not None else ""
            print(f"  (stub process did not start: {err.strip()[-300:]}; using in-process)")
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
    with StubOpenAIServer(
        latency=latency, failure_rate=failure_rate, seed=seed, choices=choices
    ) as srv:
        yield Stub(srv.base_url, "in process (thread)", srv)


# -- one run ---------------------------------------------------------------------------------


def bench_users(n: int) -> list[UserContext]:
    """``n`` users: the demo users repeated under distinct ids."""
    base = demo_users()
    return [
        base[i % len(base)].model_copy(update={"user_id": f"{base[i % len(base)].user_id}-{i}"})
        for i in range(n)
    ]


@dataclass
class RunResult:
    pages: list[Page]
    wall_s: float
    cpu_s: float
    llm: TimedLLM
    stub: Stub
    stub_cpu_s: float | None = None
    profile: str = ""
    stub_stats: dict[str, Any] | None = None


def _run(
    catalog: Catalog,
    users: list[UserContext],
    *,
    concurrency: int,
    latency: float,
    failure_rate: float,
    seed: int,
    max_connections: int,
    in_process: bool,
    client: dict[str, Any],
    choices: str = "random",
    profile: bool = False,
) -> RunResult:
    with stub_server(
        latency=latency,
        failure_rate=failure_rate,
        seed=seed,
        in_process=in_process,
        choices=choices,
    ) as stub:
        llm = TimedLLM(
            stub.base_url,
            model="stub-model",
            response_format="auto",
            max_connections=max_connections,
            **client,
        )
        with llm:
            sf = Storefront(catalog, llm=llm, cache=None).warm_up()
            # Warm: the format probe, the pool, lazy indexes; not timed.
            sf.build_many(bench_users(min(concurrency, len(users))), concurrency=concurrency)
            llm.calls = llm.max_in_flight = 0
            if stub.server is not None:
                stub.server.max_in_flight = 0
            prof = cProfile.Profile() if profile else None
            stub_cpu0 = stub.cpu_seconds()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if prof is not None:
                prof.enable()
            pages = sf.build_many(users, concurrency=concurrency)
            if prof is not None:
                prof.disable()
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            stub_cpu1 = stub.cpu_seconds()
            stub_stats = stub.stats()
            stub_cpu = None if stub_cpu0 is None or stub_cpu1 is None else stub_cpu1 - stub_cpu0
        text = ""
        if prof is not None:
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(30)
            text = out.getvalue()
        return RunResult(pages, wall, cpu, llm, stub, stub_cpu, text, stub_stats)


def _failed_stage_check(pages: list[Page]) -> dict[str, int]:
    """Failed generation stages, and how many have a fallback for the same placement."""
    failed = covered = 0
    for page in pages:
        stages = page.trace.stages
        for rec in stages:
            if rec.stage not in GENERATION_STAGES or not rec.error or rec.fallback_reason:
                continue
            failed += 1
            if any(
                r.stage == rec.stage and r.placement == rec.placement and r.fallback_reason
                for r in stages
            ):
                covered += 1
    return {"failed_stages": failed, "with_fallback": covered, "uncovered": failed - covered}


def run_http_section(
    kind: str = "throughput",
    *,
    users: int = 100,
    concurrency: int = 16,
    latency: float = 0.2,
    failure_rate: float | None = None,
    seed: int = 0,
    max_connections: int | None = None,
    in_process: bool = False,
    profile: bool = False,
    choices: str = "random",
) -> dict[str, Any]:
    """Run one section (``throughput`` or ``failures``), print its figures, return them."""
    if kind not in HTTP_SECTIONS:
        raise ValueError(f"unknown HTTP section {kind!r}; use one of {HTTP_SECTIONS}")
    catalog = Catalog.demo()
    placements = Storefront(catalog, llm=None).config.num_placements
    conns = max_connections or concurrency * placements * 2
    failing = kind == "failures"
    rate = failure_rate if failure_rate is not None else (0.3 if failing else 0.0)
    client: dict[str, Any] = {}
    if failing:
        # The stub hangs 10 s on an injected timeout: the client gives up after 1 s.
        client = dict(timeout=1.0, max_retries=1, max_reasks=0, backoff_initial=0.05,
                      backoff_max=0.2, max_retry_after=1.0)  # fmt: skip
    the_users = bench_users(users)
    with counted_retries() as retries:
        res = _run(
            catalog, the_users, concurrency=concurrency, latency=latency, failure_rate=rate,
            seed=seed, max_connections=conns, in_process=in_process, client=client,
            profile=profile, choices=choices,
        )  # fmt: skip
    pages = res.pages
    rounds = [page_rounds(p) for p in pages]
    mean_rounds = statistics.fmean(rounds) if rounds else 0.0
    achieved = len(pages) / res.wall_s
    steady = concurrency / (mean_rounds * latency) if mean_rounds else float("nan")
    ideal = replay_ideal(rounds, concurrency, latency)
    cpu_page_ms = 1000.0 * res.cpu_s / max(1, len(pages))
    n_placements = [len(p.placements) for p in pages]
    srv_in_flight = res.stub.server.max_in_flight if res.stub.server is not None else None
    print(
        f"\nHTTP {kind}: {len(pages)}/{len(the_users)} pages, concurrency {concurrency}, "
        f"stub latency {latency * 1000:.0f} ms, failure rate {rate:.0%}, stub {res.stub.where}"
    )
    print(
        f"  client: max_connections {conns} (>= concurrency {concurrency} x "
        f"{placements} placements), timeout {res.llm.timeout:g} s, "
        f"max_retries {res.llm.max_retries}"
    )
    print(
        "  a page's rounds = groups of overlapping model calls (timed into page.trace), a new "
        "group starting when every earlier call has ended: themes, then each keyword batch; "
        "ideal = these pages with a zero-cost client (each page rounds x latency, next user "
        "on the first free slot); steady-state bound = concurrency / (mean rounds x latency)"
    )
    hist = {r: rounds.count(r) for r in sorted(set(rounds))}
    durations = sorted(
        1000.0 * (end - start)
        for p in pages
        for rec in p.trace.stages
        for start, end in rec.details.get("bench_calls", ())
    )
    call_ms = {
        "mean": statistics.fmean(durations) if durations else 0.0,
        "p50": durations[len(durations) // 2] if durations else 0.0,
        "p95": durations[int(len(durations) * 0.95)] if durations else 0.0,
    }
    page_ms = sorted(p.trace.total_ms for p in pages)
    print(f"  rounds per page: mean {mean_rounds:.2f}  histogram {hist}")
    print(
        f"  model call as the client saw it: mean {call_ms['mean']:.0f} ms, p50 "
        f"{call_ms['p50']:.0f} ms, p95 {call_ms['p95']:.0f} ms (stub sleeps {latency * 1000:.0f});"
        f" page build median {statistics.median(page_ms):.0f} ms vs mean rounds x latency "
        f"{mean_rounds * latency * 1000:.0f} ms"
    )
    print(
        f"  achieved {achieved:6.2f} pages/s   ideal {ideal:6.2f} pages/s   share "
        f"{achieved / ideal:6.1%}"
        + (f"  (target >= {TARGET_SHARE:.0%})" if not failing else "")
        + f";  steady-state bound {steady:6.2f} pages/s, share {achieved / steady:6.1%}"
    )
    print(
        f"  wall {res.wall_s:.2f} s, client CPU {res.cpu_s:.2f} s = {cpu_page_ms:.1f} ms/page "
        f"(CPU-bound ceiling {1000.0 / cpu_page_ms:.1f} pages/s on one core), "
        f"CPU utilisation {res.cpu_s / res.wall_s:.0%}"
        + (
            f"; stub process CPU {res.stub_cpu_s:.2f} s "
            f"({res.stub_cpu_s / res.wall_s:.0%} of a core)"
            if res.stub_cpu_s is not None
            else ""
        )
    )
    if not failing:
        lockstep = concurrency / (mean_rounds * latency + concurrency * res.cpu_s / len(pages))
        budget = 1000.0 * mean_rounds * latency * (1 - TARGET_SHARE) / TARGET_SHARE / concurrency
        print(
            f"  if the {concurrency} pages' client CPU ran one after another every round: "
            f"C / (rounds x L + C x cpu/page) = {lockstep:.2f} pages/s; {TARGET_SHARE:.0%} of "
            f"the steady-state bound then needs <= {budget:.0f} ms of client CPU per page"
        )
    late = (res.stub_stats or {}).get("late_ms") or {}
    if late:
        print(
            f"  stub answers late by (after arrival + latency): p50 {late['p50']:.1f} ms, "
            f"p95 {late['p95']:.1f} ms, max {late['max']:.1f} ms (warm-up included)"
        )
    srv_in_flight = (res.stub_stats or {}).get("max_in_flight", srv_in_flight)
    server_side = "" if srv_in_flight is None else f", in flight max (server) {srv_in_flight}"
    print(
        f"  model calls {res.llm.calls}, calls in flight max (client) {res.llm.max_in_flight}"
        f"{server_side}, retries {retries.count} (warm-up included)"
    )
    figures: dict[str, Any] = {
        "pages": len(pages),
        "users": len(the_users),
        "concurrency": concurrency,
        "latency_s": latency,
        "failure_rate": rate,
        "max_connections": conns,
        "mean_rounds": mean_rounds,
        "rounds_histogram": hist,
        "model_call_ms": call_ms,
        "page_ms_median": statistics.median(page_ms),
        "achieved_pages_per_s": achieved,
        "ideal_pages_per_s": ideal,
        "share": achieved / ideal,
        "steady_state_pages_per_s": steady,
        "share_of_steady_state": achieved / steady,
        "wall_s": res.wall_s,
        "cpu_s": res.cpu_s,
        "cpu_ms_per_page": cpu_page_ms,
        "stub_cpu_s": res.stub_cpu_s,
        "model_calls": res.llm.calls,
        "retries": retries.count,
        "max_in_flight_client": res.llm.max_in_flight,
        "max_in_flight_server": srv_in_flight,
        "stub": res.stub.where,
        "stub_late_ms": late,
        "placements_min": min(n_placements, default=0),
        "placements_median": statistics.median(n_placements) if n_placements else 0,
    }
    print(
        f"  placements per page: min {figures['placements_min']}, "
        f"median {figures['placements_median']:g}"
    )
    if failing:
        check = _failed_stage_check(pages)
        events = sum(len(p.trace.events_of("fallback")) for p in pages)
        errors = sum(1 for p in pages for s in p.trace.stages if s.error)
        figures.update(check, fallback_events=events, stages_with_error=errors)
        verdict = "every one has" if check["uncovered"] == 0 else f"{check['uncovered']} lack"
        print(
            f"  failed generation stages {check['failed_stages']}: {verdict} a fallback stage "
            f"(same placement, fallback_reason set); fallback events {events}; "
            f"all stages with an error {errors}"
        )
        print(f"  every page built: {'yes' if len(pages) == len(the_users) else 'NO'}")
    elif achieved / ideal < TARGET_SHARE:
        print(f"  target share {TARGET_SHARE:.0%} NOT met")
    else:
        print(f"  target share {TARGET_SHARE:.0%} met")
    if res.profile:
        print("\n  cProfile of the timed run (client process):")
        print(res.profile)
    return figures


def add_http_arguments(parser: argparse.ArgumentParser) -> None:
    """The options :func:`main_http` reads (for ``bench_generation.py`` to share)."""
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.2, help="stub seconds per answer")
    parser.add_argument("--max-connections", type=int, default=None)
    parser.add_argument("--in-process", action="store_true", help="stub on a thread, not a process")
    parser.add_argument("--profile", action="store_true", help="cProfile the throughput run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--choices",
        choices=("random", "first"),
        default="random",
        help="stub enum picks: random, or the first (best-ranked) options like a capable model",
    )


def main_http(args: argparse.Namespace | None = None) -> dict[str, dict[str, Any]]:
    """Run the HTTP sections named in ``args.only`` (all by default); return their figures."""
    if args is None:
        args = argparse.Namespace()
    only = [s for s in (getattr(args, "only", None) or HTTP_SECTIONS) if s in HTTP_SECTIONS]
    figures: dict[str, dict[str, Any]] = {}
    for kind in only:
        figures[kind] = run_http_section(
            kind,
            users=getattr(args, "users", 100),
            concurrency=getattr(args, "concurrency", 16),
            latency=getattr(args, "latency", 0.2),
            seed=getattr(args, "seed", 0),
            max_connections=getattr(args, "max_connections", None),
            in_process=getattr(args, "in_process", False),
            choices=getattr(args, "choices", "random"),
            profile=getattr(args, "profile", False) and kind == "throughput",
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_http_arguments(parser)
    parser.add_argument("--only", nargs="*", choices=HTTP_SECTIONS, default=None)
    main_http(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
