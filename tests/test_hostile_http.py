"""The HTTP layer against hostile servers on 127.0.0.1 (issue 8, findings 2, 3 and 7).

Each server is a real socket server (``tests/httpservers.py``): 429 with a day-long
Retry-After, a server that never answers, a slow-loris that trickles its answer, a
500 MB chunked body (generated lazily), a 20 MB invalid answer, and servers echoing the
API key back in every spelling. The tests use small timeouts so they take seconds; one
(slow) test uses the defaults and prints how long ``build()`` took against each server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import resource
import sys
import time
import traceback
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from httpservers import Conn, answer_each, completion, response, serve

from storefront_sdk import Catalog, GenerationCache, Storefront
from storefront_sdk.deadline import deadline
from storefront_sdk.demo import demo_users
from storefront_sdk.exceptions import (
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    FatalBackendError,
    OutputValidationError,
    RetryableBackendError,
)
from storefront_sdk.llm.base import ChatMessage, MultiChoice
from storefront_sdk.llm.openai import OpenAICompatibleLLM
from storefront_sdk.render import render_page_html

Mode = Literal["sync", "async"]
BOTH = pytest.mark.parametrize("mode", ["sync", "async"])
SPEC = MultiChoice(("a", "b"), min_items=1, max_items=1)
MESSAGES = [ChatMessage(role="user", content="pick")]
GOOD = completion('{"items": ["b"]}')


def ask(llm: OpenAICompatibleLLM, mode: Mode) -> Any:
    if mode == "sync":
        try:
            return llm.generate(MESSAGES, SPEC)
        finally:
            llm.close()

    async def go() -> Any:
        try:
            return await llm.agenerate(MESSAGES, SPEC)
        finally:
            await llm.aclose()

    return asyncio.run(go())


def never_answers(conn: Conn) -> None:
    conn.read_request()
    while conn.wait(0.05):
        pass


def slow_loris(step: float, *, headers_too: bool = False) -> Callable[[Conn], None]:
    """Answers a valid completion one byte every ``step`` seconds (body only, or all)."""

    def handler(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        data = response(GOOD)
        split = 0 if headers_too else data.index(b"\r\n\r\n") + 4
        if not conn.send(data[:split]):
            return
        for i in range(split, len(data)):
            if not conn.wait(step) or not conn.send(data[i : i + 1]):
                return

    return handler


# -- Retry-After, hangs and trickles: total time limits -------------------------------------


@BOTH
def test_huge_retry_after_is_not_waited(mode: Mode) -> None:
    reply = response(b'{"error": "slow down"}', status="429 Too Many Requests",
                     headers=("Retry-After: 100000",))  # fmt: skip
    with serve(answer_each(lambda n, r: reply)) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "m")  # defaults: 4 retries, 60 s cap
        start = time.perf_counter()
        with pytest.raises(RetryableBackendError) as info:
            ask(llm, mode)
        print(f"429 + Retry-After 100000 ({mode}): raised after {time.perf_counter() - start:.2f}s")
        assert info.value.retry_after == 100000.0
        assert len(srv.requests) == 1  # not waited for, not asked again


@BOTH
def test_never_answering_server_times_out_in_total(mode: Mode) -> None:
    with serve(never_answers) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "m", timeout=0.3, max_retries=1,
                                  backoff_initial=0.01)  # fmt: skip
        with pytest.raises(BackendTimeoutError):
            ask(llm, mode)
        assert len(srv.requests) == 2
        # Under a page deadline, the 30 s default timeout shrinks to what the page has left.
        llm = OpenAICompatibleLLM(srv.base_url, "m")
        with deadline(0.5), pytest.raises(BackendTimeoutError):
            ask(llm, mode)


@BOTH
@pytest.mark.parametrize("headers_too", [False, True])
def test_slow_loris_cannot_outlive_the_total_timeout(mode: Mode, headers_too: bool) -> None:
    # 1 byte per 0.05 s: every read succeeds well inside the timeout, the whole answer
    # (~200 bytes, ~10 s) does not. Before: the call waited it out and succeeded.
    with serve(slow_loris(0.05, headers_too=headers_too)) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "m", timeout=0.5, max_retries=0)
        start = time.perf_counter()
        with pytest.raises(BackendTimeoutError):
            ask(llm, mode)
        elapsed = time.perf_counter() - start
        print(f"slow-loris ({mode}, headers too: {headers_too}): stopped after {elapsed:.2f}s")
        assert elapsed < 5.0  # generous: the trickle alone would take ~10 s


# -- sizes: bodies, invalid answers -------------------------------------------------------------


def endless_chunked(total: int = 500 * 1024 * 1024) -> Callable[[Conn], None]:
    """A 200 with a ``total``-byte chunked body, generated as it is sent."""

    def handler(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if not conn.send(head + b"Transfer-Encoding: chunked\r\n\r\n"):
            return
        piece = b"x" * 65536
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        for _ in range(total // len(piece)):
            if conn.stopped or not conn.send(chunk):
                return
        conn.send(b"0\r\n\r\n")

    return handler


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@BOTH
def test_500_mb_chunked_body_is_cut_off(mode: Mode) -> None:
    with serve(endless_chunked()) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "m", max_retries=0)
        before = _peak_rss_mb()
        with pytest.raises(FatalBackendError, match="max_response_bytes"):
            ask(llm, mode)
        grown = _peak_rss_mb() - before
        print(f"500 MB body ({mode}): peak RSS grew {grown:.1f} MB")
        assert grown < 100.0


@BOTH
def test_20_mb_invalid_answer_is_quoted_as_an_excerpt(
    mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    huge = completion("x" * (20 * 1024 * 1024))  # not JSON: invalid output
    with serve(answer_each(lambda n, r: response(huge))) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "m", max_retries=0, max_reasks=1,
                                  max_response_bytes=64 * 1024 * 1024)  # fmt: skip
        caplog.set_level(logging.DEBUG)
        with pytest.raises(OutputValidationError) as info:
            ask(llm, mode)
        assert len(srv.requests) == 2
        reask = srv.requests[1]
        assert len(reask) < 20_000, len(reask)  # before: 41.9 MB
        assert len(str(info.value)) < 5_000 and len(info.value.raw or "") < 20_000
        assert len(caplog.text) < 20_000
        # With the default body cap the answer is refused before it is even parsed.
        llm = OpenAICompatibleLLM(srv.base_url, "m", max_retries=0)
        with pytest.raises(FatalBackendError, match="max_response_bytes") as capped:
            ask(llm, mode)
        assert len(str(capped.value)) < 1_000


# -- configuration and junk ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["notaurl", "ftp://x/v1", "http://[::1", "", "http://"])
def test_invalid_base_urls_fail_fast(url: str) -> None:
    with pytest.raises(ConfigurationError):
        OpenAICompatibleLLM(url, "m")


@BOTH
@pytest.mark.parametrize("junk", [1e999, -5, "12", 1.5, None, [1], True])
def test_junk_usage_counts_as_unknown(mode: Mode, junk: Any) -> None:
    raw = completion('{"items": ["a"]}', usage={"prompt_tokens": 0, "completion_tokens": 3})
    raw = raw.replace(b'"prompt_tokens": 0', b'"prompt_tokens": ' + _json_token(junk))
    with serve(answer_each(lambda n, r: response(raw))) as srv:
        result = ask(OpenAICompatibleLLM(srv.base_url, "m"), mode)
    assert result.value == ["a"]
    assert result.usage.prompt_tokens == 0 and result.usage.completion_tokens == 3


def _json_token(value: Any) -> bytes:
    return b"1e999" if value == 1e999 else json.dumps(value).encode()


# -- no request sent twice outside the retry policy ---------------------------------------------


@BOTH
def test_request_dropped_after_it_was_written_is_not_sent_again(mode: Mode) -> None:
    # Request 2 arrives on the kept-alive connection; the server reads it and closes
    # without a byte of answer. With max_retries=0 nothing may send it again (the old
    # hand-written transport did, behind the retry policy's back).
    def reply(n: int, request: bytes) -> bytes | None:
        return None if n == 2 else response(GOOD)

    with serve(answer_each(reply)) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "m", max_retries=0)

        if mode == "sync":
            assert llm.generate(MESSAGES, SPEC).value == ["b"]
            with pytest.raises(RetryableBackendError):
                llm.generate(MESSAGES, SPEC)
            llm.close()
        else:

            async def go() -> None:
                assert (await llm.agenerate(MESSAGES, SPEC)).value == ["b"]
                with pytest.raises(RetryableBackendError):
                    await llm.agenerate(MESSAGES, SPEC)
                await llm.aclose()

            asyncio.run(go())
        assert len(srv.requests) == 2
        assert srv.connections == 1


# -- secrets ------------------------------------------------------------------------------------

KEY = "sk-live-MARKER0123456789abcdefXYZ/+q"


def _escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


ECHOES = {
    "raw after a 250-char pad": "p" * 250 + KEY,
    "json \\u-escaped": _escaped(KEY),
    "half \\u-escaped": KEY[:10] + _escaped(KEY[10:20]) + KEY[20:],
    "json \\/": KEY.replace("/", "\\/"),
    "url-encoded": urllib.parse.quote(KEY, safe=""),
    "base64": base64.b64encode(KEY.encode()).decode(),
}
FORMS = [KEY, KEY[8:], urllib.parse.quote(KEY, safe=""), base64.b64encode(KEY.encode()).decode()]


def _leaks(text: str) -> list[str]:
    return [form for form in FORMS if form in text]


def echoing(status: str) -> Callable[[Conn], None]:
    """Echo the key in every form: in an error body, or in a completion that fails."""
    bodies = list(ECHOES.values())

    def reply(n: int, request: bytes) -> bytes:
        echo = bodies[(n - 1) % len(bodies)]
        if status.startswith("200"):
            if n % 3 == 0:  # not a chat completion at all: quoted in the retryable error
                return response(f'{{"echo": "{echo}"}}'.encode())
            if n % 3 == 1:  # valid JSON, but the key (raw and echoed) is not an option
                return response(completion(json.dumps({"items": [f"{KEY} {echo}"]})))
            return response(completion(f"oops {KEY} {echo}"))  # not JSON
        error = '{"error": {"message": "bad key ' + echo + '"}}'
        return response(error.encode(), status=status)

    return answer_each(reply)


@BOTH
@pytest.mark.parametrize("status", ["500 Internal Server Error", "401 Unauthorized", "200 OK"])
def test_the_key_never_leaks_from_the_backend(
    mode: Mode, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with serve(echoing(status)) as srv:
        for _ in range(len(ECHOES)):
            llm = OpenAICompatibleLLM(srv.base_url, "m", api_key=KEY, max_retries=1,
                                      max_reasks=1, backoff_initial=0.0)  # fmt: skip
            with pytest.raises(BackendError) as info:
                ask(llm, mode)
            exc = info.value
            text = "".join(traceback.format_exception(exc)) + repr(exc.args)
            text += getattr(exc, "raw", None) or ""
            assert not _leaks(text), text
        assert any(KEY.encode() in r for r in srv.requests)  # the key was sent (as a header)
    assert not _leaks(caplog.text)


def test_the_key_never_leaks_into_pages_html_logs_or_cache(
    demo_catalog: Catalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cache_dir = tmp_path / "cache"
    for status in ("500 Internal Server Error", "400 Bad Request", "200 OK"):
        with serve(echoing(status)) as srv:
            llm = OpenAICompatibleLLM(srv.base_url, "m", api_key=KEY, max_retries=1,
                                      backoff_initial=0.0)  # fmt: skip
            sf = Storefront(demo_catalog, llm=llm, cache=GenerationCache(str(cache_dir)))
            for page in [sf.build(demo_users()[0]), *sf.build_many(demo_users()[:2])]:
                assert not _leaks(page.model_dump_json())
                assert not _leaks(str(page.trace))
                assert not _leaks(render_page_html(page))
            assert srv.requests
    assert not _leaks(caplog.text)
    for path in cache_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(form.encode() in data for form in FORMS), path


# -- event loops --------------------------------------------------------------------------------

_ROUNDS = """
import asyncio
from storefront_sdk import Catalog, OpenAICompatibleLLM, Storefront
from storefront_sdk.demo import demo_users
from storefront_sdk.llm.base import ChatMessage, MultiChoice
from storefront_sdk.testing.stub_server import StubOpenAIServer

with StubOpenAIServer(seed=1) as srv:
    llm = OpenAICompatibleLLM(srv.base_url, "stub", response_format="auto")
    spec = MultiChoice(("a", "b"), min_items=1, max_items=1)
    for _ in range(3):
        asyncio.run(llm.agenerate([ChatMessage(role="user", content="pick")], spec))
    sf = Storefront(Catalog.demo(), llm=llm, cache=None)
    for _ in range(3):
        assert len(sf.build_many(demo_users()[:2], concurrency=2)) == 2
    llm.close()
print("rounds done")
"""


def test_clients_close_with_their_event_loop(tmp_path: Path) -> None:
    """Three asyncio.run rounds of agenerate and of build_many: no unclosed transport."""
    import subprocess

    script = tmp_path / "rounds.py"
    script.write_text(_ROUNDS)
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rounds done" in done.stdout
    assert "ResourceWarning" not in done.stderr and "unclosed" not in done.stderr, done.stderr


# -- with defaults, build() returns within the page budget --------------------------------------


@pytest.mark.slow
def test_build_returns_within_the_page_budget_with_defaults(demo_catalog: Catalog) -> None:
    """Defaults everywhere: the storefront's own page budget (``page_budget_s``, 20 s)."""
    from storefront_sdk import StorefrontConfig

    budget = StorefrontConfig().page_budget_s
    assert budget is not None
    servers: dict[str, Callable[[Conn], None]] = {
        "429 + Retry-After 100000": answer_each(lambda n, r: response(
            b"{}", status="429 Too Many Requests", headers=("Retry-After: 100000",))),
        "never answers": never_answers,
        "slow-loris 1 byte / 0.5 s": slow_loris(0.5),
        "500 MB chunked body": endless_chunked(),
    }  # fmt: skip
    user = demo_users()[0]
    timings = {}
    for name, handler in servers.items():
        with serve(handler) as srv:
            sf = Storefront(demo_catalog, llm=OpenAICompatibleLLM(srv.base_url, "m"), cache=None)
            start = time.perf_counter()
            page = sf.build(user)
            timings[name] = time.perf_counter() - start
            assert page.placements
    for name, seconds in timings.items():
        print(f"build() against {name}: {seconds:.2f}s (budget {budget:g}s)")
    assert max(timings.values()) < budget + 10.0  # generous; the printed figures are the record


# -- the HTTP scorer runs under the same policy ---------------------------------------------------


@BOTH
def test_http_scorer_shares_the_policy(mode: Mode) -> None:
    from storefront_sdk.filtering.scorer import HttpScorer

    def run(scorer: HttpScorer) -> list[float]:
        if mode == "sync":
            return scorer("pasta night", ["spaghetti", "soap"])

        async def go() -> list[float]:
            try:
                return await scorer.acall("pasta night", ["spaghetti", "soap"])
            finally:
                await scorer.aclose()

        return asyncio.run(go())

    busy = response(b"{}", status="429 Too Many Requests", headers=("Retry-After: 100000",))
    with serve(answer_each(lambda n, r: busy)) as srv:
        with pytest.raises(RetryableBackendError):
            run(HttpScorer(f"http://127.0.0.1:{srv.port}/rerank"))  # default: 2 retries
        assert len(srv.requests) == 1
    with serve(slow_loris(0.05)) as srv, pytest.raises(BackendTimeoutError):
        run(HttpScorer(f"http://127.0.0.1:{srv.port}/rerank", timeout=0.5, max_retries=0))
    too_big = pytest.raises(FatalBackendError, match="max_response_bytes")
    with serve(endless_chunked()) as srv, too_big:
        run(HttpScorer(f"http://127.0.0.1:{srv.port}/rerank", max_retries=0))
    with pytest.raises(ConfigurationError):
        HttpScorer("http://[::1")
