"""OpenAICompatibleLLM: retries, Retry-After, re-asking, format fallback, secrets, async twin.

The first half drives the client through ``httpx.MockTransport`` with small
scripted servers (what a real server answers, in order); the second half runs
it over real HTTP against ``StubOpenAIServer``.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import json
import logging
import random
import runpy
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from storefront_sdk.exceptions import (
    BackendTimeoutError,
    ConfigurationError,
    FatalBackendError,
    OutputValidationError,
    RetryableBackendError,
)
from storefront_sdk.llm.base import LLM, ChatMessage, Choice, MultiChoice, OutputSpec, Structured
from storefront_sdk.llm.openai import OpenAICompatibleLLM
from storefront_sdk.testing.stub_server import FAILURE_KINDS, StubOpenAIServer, sample_from_schema
from storefront_sdk.tracing import stage
from storefront_sdk.types import Trace

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-test-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
Mode = Literal["sync", "async"]


class Theme(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=60)
    concepts: list[str] = Field(min_length=2, max_length=6)


MESSAGES = [
    ChatMessage(role="system", content="You write storefront themes as JSON."),
    ChatMessage(
        role="user", content="The shopper buys sourdough bread, organic eggs and avocados."
    ),
]
THEME = Structured(Theme)
GOOD_THEME = '{"title": "Brunch at home", "concepts": ["eggs", "sourdough"]}'


# ---------------------------------------------------------------- scripted servers


class Script:
    """A chat-completions server that plays a list of answers, recording each request."""

    def __init__(self, *answers: Callable[[dict[str, Any]], httpx.Response] | str) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(request.headers)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, str):
            return completion(answer)
        return answer(body)


def completion(
    content: str, prompt_tokens: int = 20, completion_tokens: int = 10
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "served-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        },
    )


def status(code: int, headers: dict[str, str] | None = None, message: str = "error") -> Any:
    def answer(body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(code, headers=headers, json={"error": {"message": message}})

    return answer


def timeout(body: dict[str, Any]) -> httpx.Response:
    raise httpx.ReadTimeout("timed out")


def refuse_connection(body: dict[str, Any]) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


class Waits(list[float]):
    """Records the waits the client chose, instead of sleeping them."""

    def sleep(self, seconds: float) -> None:
        self.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def make_llm(waits: Waits) -> Iterator[Callable[..., OpenAICompatibleLLM]]:
    made: list[OpenAICompatibleLLM] = []

    def make(script: Script, **kwargs: Any) -> OpenAICompatibleLLM:
        kwargs.setdefault("api_key", SECRET)
        llm = OpenAICompatibleLLM(
            "http://models.internal:8000/v1",
            "test-model",
            transport=httpx.MockTransport(script),
            sleep=waits.sleep,
            async_sleep=waits.async_sleep,
            **kwargs,
        )
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


def call(llm: LLM, mode: Mode, output: OutputSpec[Any], **kwargs: Any) -> Any:
    """generate or agenerate, so each scenario runs on both paths."""
    if mode == "sync":
        return llm.generate(MESSAGES, output, **kwargs)
    return asyncio.run(llm.agenerate(MESSAGES, output, **kwargs))


BOTH = pytest.mark.parametrize("mode", ["sync", "async"])


# ---------------------------------------------------------------- the happy path and the request


@BOTH
def test_structured_output_request_and_result(make_llm: Any, mode: Mode) -> None:
    script = Script(GOOD_THEME)
    llm = make_llm(script, prices={"test-model": (0.5, 1.5)})

    result = call(llm, mode, THEME, max_tokens=64)

    assert result.value == Theme(title="Brunch at home", concepts=["eggs", "sourdough"])
    assert result.raw == GOOD_THEME
    body = script.requests[0]
    assert body["model"] == "test-model"
    assert body["max_tokens"] == 64
    assert body["temperature"] == 0.0
    assert body["messages"][1] == {"role": "user", "content": MESSAGES[1].content}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Theme", "schema": Theme.model_json_schema(), "strict": True},
    }
    assert script.headers[0]["authorization"] == f"Bearer {SECRET}"
    usage = result.usage
    assert (usage.model_id, usage.prompt_tokens, usage.completion_tokens) == ("test-model", 20, 10)
    assert usage.attempts == 1 and usage.cache_hit is False
    assert usage.cost == pytest.approx((20 * 0.5 + 10 * 1.5) / 1000)


@BOTH
def test_choice_and_multichoice_are_enum_schemas(make_llm: Any, mode: Mode) -> None:
    options = ("eggs", "sourdough", "avocado")
    script = Script('"avocado"', '{"items": ["eggs", "avocado"]}')
    llm = make_llm(script)

    assert call(llm, mode, Choice(options)).value == "avocado"
    assert call(llm, mode, MultiChoice(options, 1, 2)).value == ["eggs", "avocado"]

    choice_schema = script.requests[0]["response_format"]["json_schema"]["schema"]
    multi_schema = script.requests[1]["response_format"]["json_schema"]["schema"]
    assert choice_schema == {"type": "string", "enum": list(options)}
    assert multi_schema["properties"]["items"]["items"]["enum"] == list(options)
    assert multi_schema["properties"]["items"]["maxItems"] == 2


@BOTH
def test_usage_is_annotated_on_the_running_stage(make_llm: Any, mode: Mode) -> None:
    llm = make_llm(Script(GOOD_THEME), prices={"test-model": (1.0, 2.0)})
    trace = Trace()

    with stage(trace, "themes", component=llm):
        call(llm, mode, THEME)

    record = trace.stages[0]
    assert record.model_id == "test-model"
    assert (record.prompt_tokens, record.completion_tokens) == (20, 10)
    assert record.cost == pytest.approx((20 * 1.0 + 10 * 2.0) / 1000)
    assert record.cache_hit is False


# ---------------------------------------------------------------- retries


@BOTH
def test_rate_limited_then_success(make_llm: Any, waits: Waits, mode: Mode) -> None:
    script = Script(status(429), GOOD_THEME)
    llm = make_llm(script)

    result = call(llm, mode, THEME)

    assert result.value.title == "Brunch at home"
    assert result.usage.attempts == 2
    assert len(script.requests) == 2
    assert len(waits) == 1 and 0 < waits[0] <= llm.backoff_max


@BOTH
def test_retry_after_seconds_is_the_wait(make_llm: Any, waits: Waits, mode: Mode) -> None:
    llm = make_llm(
        Script(status(429, {"Retry-After": "7"}), status(503, {"Retry-After": "2.5"}), "1")
    )

    call(llm, mode, Choice(("1", "2")))

    assert waits == [7.0, 2.5]


@BOTH
def test_retry_after_http_date_and_cap(make_llm: Any, waits: Waits, mode: Mode) -> None:
    later = datetime.now(timezone.utc) + timedelta(seconds=40)
    http_date = email.utils.format_datetime(later, usegmt=True)
    script = Script(
        status(429, {"Retry-After": http_date}), status(429, {"Retry-After": "3600"}), '"1"'
    )
    llm = make_llm(script, max_retry_after=60.0)

    with pytest.raises(RetryableBackendError) as info:
        call(llm, mode, Choice(("1", "2")))

    assert len(waits) == 1 and 30.0 < waits[0] <= 40.0  # the date, counted from now
    assert info.value.retry_after == 3600.0  # an hour is over the cap: raised, not waited
    assert len(script.requests) == 2


@BOTH
def test_retry_waits_never_pass_the_page_deadline(
    make_llm: Any, waits: Waits, mode: Mode
) -> None:
    from storefront_sdk.deadline import deadline

    script = Script(status(429, {"Retry-After": "30"}), status(500), status(500), '"1"')
    llm = make_llm(script, max_retry_after=60.0, backoff_initial=0.5)
    with deadline(10.0), pytest.raises(RetryableBackendError):
        call(llm, mode, Choice(("1", "2")))  # 30 s asked, 10 s left: no wait at all
    assert waits == [] and len(script.requests) == 1
    with deadline(10.0):
        assert call(llm, mode, Choice(("1", "2"))).value == "1"  # 500, 500: short back-offs
    assert len(waits) == 2 and all(0 < w <= 10.0 for w in waits)


@BOTH
def test_server_errors_exhaust_retries(make_llm: Any, waits: Waits, mode: Mode) -> None:
    script = Script(status(500, message="upstream exploded"))
    llm = make_llm(script, max_retries=3, backoff_initial=0.5, backoff_max=4.0)

    with pytest.raises(RetryableBackendError, match=r"HTTP 500: .*upstream exploded") as info:
        call(llm, mode, THEME)

    assert not isinstance(info.value, BackendTimeoutError)
    assert len(script.requests) == 4
    assert len(waits) == 3
    assert all(0 < w <= 4.0 for w in waits)
    assert waits[2] >= 0.5 * 2**2  # exponential: the third wait is at least initial * 4


@BOTH
def test_client_error_is_fatal_without_retry(make_llm: Any, waits: Waits, mode: Mode) -> None:
    script = Script(status(400, message="messages: field required"))
    llm = make_llm(script)

    with pytest.raises(FatalBackendError, match="HTTP 400") as info:
        call(llm, mode, THEME)

    assert not isinstance(info.value, OutputValidationError)
    assert len(script.requests) == 1 and waits == []


@BOTH
def test_timeouts_retry_then_raise_timeout_error(make_llm: Any, waits: Waits, mode: Mode) -> None:
    script = Script(timeout)
    llm = make_llm(script, max_retries=2, timeout=1.5)

    with pytest.raises(BackendTimeoutError, match=r"did not answer within 1.5s"):
        call(llm, mode, THEME)

    assert len(script.requests) == 3 and len(waits) == 2


@BOTH
def test_timeout_then_connection_error_then_success(make_llm: Any, mode: Mode) -> None:
    llm = make_llm(Script(timeout, refuse_connection, GOOD_THEME))

    assert call(llm, mode, THEME).usage.attempts == 3


@BOTH
def test_malformed_chat_completion_is_retried(make_llm: Any, mode: Mode) -> None:
    def proxy_garbage(body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, text="<html>bad gateway</html>")

    llm = make_llm(Script(proxy_garbage, GOOD_THEME))

    assert call(llm, mode, THEME).usage.attempts == 2


# ---------------------------------------------------------------- re-asking


@BOTH
def test_invalid_json_is_reasked_with_the_error(make_llm: Any, mode: Mode) -> None:
    script = Script('{"title": "Brunch at ho', GOOD_THEME)
    llm = make_llm(script)

    result = call(llm, mode, THEME)

    assert result.value.title == "Brunch at home"
    reask = script.requests[1]["messages"]
    assert reask[:2] == script.requests[0]["messages"]
    assert reask[2] == {"role": "assistant", "content": '{"title": "Brunch at ho'}
    assert reask[3]["role"] == "user"
    assert "does not match Theme" in reask[3]["content"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (40, 20)


@BOTH
def test_choice_outside_the_options_is_reasked(make_llm: Any, mode: Mode) -> None:
    script = Script('"bacon"', '"eggs"')
    llm = make_llm(script)

    assert call(llm, mode, Choice(("eggs", "avocado"))).value == "eggs"
    assert (
        "'bacon' is not one of the allowed options" in script.requests[1]["messages"][-1]["content"]
    )


@BOTH
def test_invalid_after_all_reasks_raises(make_llm: Any, mode: Mode) -> None:
    script = Script('{"title": "x"}')
    llm = make_llm(script, max_reasks=2)

    with pytest.raises(OutputValidationError, match="3 time") as info:
        call(llm, mode, THEME)

    assert info.value.raw == '{"title": "x"}'
    assert len(script.requests) == 3


# ---------------------------------------------------------------- response_format fallback


def rejects_json_schema(body: dict[str, Any]) -> httpx.Response:
    """llama.cpp's server: json_object + schema only."""
    if body["response_format"]["type"] != "json_object":
        return httpx.Response(
            422,
            json={"detail": [{"loc": ["body", "response_format", "type"], "msg": "bad value"}]},
        )
    return completion(GOOD_THEME)


@BOTH
def test_auto_falls_back_to_json_object_and_remembers(make_llm: Any, mode: Mode) -> None:
    script = Script(rejects_json_schema)
    llm = make_llm(script, response_format="auto")

    assert call(llm, mode, THEME).value.title == "Brunch at home"
    assert call(llm, mode, THEME).value.title == "Brunch at home"

    kinds = [r["response_format"]["type"] for r in script.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert script.requests[1]["response_format"]["schema"] == Theme.model_json_schema()
    assert llm.active_response_format == "json_object"


LLAMACPP_500 = {
    "error": {
        "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
        "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
        "'input': 'json_schema'}",
        "type": "internal_server_error",
    }
}


@BOTH
def test_auto_recognises_llamacpp_server_500(make_llm: Any, waits: Waits, mode: Mode) -> None:
    def llamacpp(body: dict[str, Any]) -> httpx.Response:
        if body["response_format"]["type"] == "json_schema":
            return httpx.Response(500, json=LLAMACPP_500)
        return completion(GOOD_THEME)

    script = Script(llamacpp)
    llm = make_llm(script, response_format="auto")

    assert call(llm, mode, THEME).value.title == "Brunch at home"
    assert len(script.requests) == 2 and waits == []  # switched at once, no retry loop


@BOTH
def test_json_schema_rejected_without_auto_is_fatal(make_llm: Any, mode: Mode) -> None:
    llm = make_llm(Script(rejects_json_schema), response_format="json_schema")

    with pytest.raises(FatalBackendError, match="response_format='auto'"):
        call(llm, mode, THEME)


@BOTH
def test_json_object_mode_sends_llamacpp_shape(make_llm: Any, mode: Mode) -> None:
    script = Script(rejects_json_schema)
    llm = make_llm(script, response_format="json_object")

    call(llm, mode, THEME)

    assert script.requests[0]["response_format"] == {
        "type": "json_object",
        "schema": Theme.model_json_schema(),
    }


# ---------------------------------------------------------------- the API key


@BOTH
def test_api_key_never_leaks(make_llm: Any, mode: Mode, caplog: pytest.LogCaptureFixture) -> None:
    def echoes_key(body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key {SECRET}"}})

    llm = make_llm(Script(status(500), echoes_key))
    trace = Trace()
    caplog.set_level(logging.DEBUG)

    with pytest.raises(FatalBackendError) as info, stage(trace, "themes", component=llm):
        call(llm, mode, THEME)

    leaks = {
        "repr": repr(llm),
        "str": str(llm),
        "vars": repr(vars(llm)),
        "fingerprint": llm.fingerprint,
        "error": str(info.value),
        "traceback": "".join(traceback.format_exception(info.value)),
        "trace": trace.model_dump_json(),
        "logs": caplog.text,
    }
    assert "HTTP 401" in leaks["error"] and "***" in leaks["error"]
    assert [where for where, text in leaks.items() if SECRET in text] == []


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch, make_llm: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    script = Script(GOOD_THEME)
    make_llm(script, api_key=None).generate(MESSAGES, THEME)
    monkeypatch.setenv("STOREFRONT_LLM_API_KEY", "sk-storefront")
    make_llm(script, api_key=None).generate(MESSAGES, THEME)
    monkeypatch.delenv("STOREFRONT_LLM_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")
    make_llm(script, api_key=None).generate(MESSAGES, THEME)

    sent = [h.get("authorization") for h in script.headers]
    assert sent == ["Bearer sk-openai", "Bearer sk-storefront", None]


def test_fingerprint_names_model_and_server_without_credentials() -> None:
    llm = OpenAICompatibleLLM("https://user:pw@llm.example.com/v1?api-key=abc", "qwen2.5-7b")

    assert llm.fingerprint == "qwen2.5-7b@https://llm.example.com/v1"
    assert llm.fingerprint != OpenAICompatibleLLM("http://other:8000/v1", "qwen2.5-7b").fingerprint


# ---------------------------------------------------------------- the async twin and config


def test_generate_and_agenerate_have_the_same_signature() -> None:
    sync = inspect.signature(OpenAICompatibleLLM.generate)
    asyn = inspect.signature(OpenAICompatibleLLM.agenerate)
    assert sync == asyn
    assert sync == inspect.signature(LLM.generate)
    assert inspect.iscoroutinefunction(OpenAICompatibleLLM.agenerate)
    assert OpenAICompatibleLLM.concurrent is True


async def test_async_twin_gives_the_same_results(make_llm: Any) -> None:
    answers = ('"bacon"', '"eggs"', status(429, {"Retry-After": "1"}), GOOD_THEME)
    sync_llm, async_llm = make_llm(Script(*answers)), make_llm(Script(*answers))
    options = Choice(("eggs", "avocado"))

    sync_results = [sync_llm.generate(MESSAGES, options), sync_llm.generate(MESSAGES, THEME)]
    async_results = [
        await async_llm.agenerate(MESSAGES, options),
        await async_llm.agenerate(MESSAGES, THEME),
    ]
    await async_llm.aclose()

    for s, a in zip(sync_results, async_results, strict=True):
        assert s.value == a.value and s.raw == a.raw
        assert s.usage.model_dump(exclude={"latency_ms"}) == a.usage.model_dump(
            exclude={"latency_ms"}
        )


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="response_format"):
        OpenAICompatibleLLM("http://x/v1", "m", response_format="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="base_url"):
        OpenAICompatibleLLM("", "m")


# ---------------------------------------------------------------- over real HTTP: StubOpenAIServer


class Basket(BaseModel):
    model_config = ConfigDict(extra="forbid")

    theme: Theme
    keywords: list[Literal["eggs", "sourdough", "avocado", "coffee"]] = Field(
        min_length=2, max_length=3
    )
    servings: int = Field(ge=1, le=4)


def test_stub_server_answers_every_output_kind() -> None:
    with StubOpenAIServer(seed=3) as srv, OpenAICompatibleLLM(srv.base_url, "stub") as llm:
        basket = llm.generate(MESSAGES, Structured(Basket)).value
        picked = llm.generate(MESSAGES, Choice(("eggs", "coffee"))).value
        many = llm.generate(MESSAGES, MultiChoice(("a", "b", "c", "d", "e"), 2, 3)).value

    assert 2 <= len(basket.keywords) <= 3 and 1 <= basket.servings <= 4
    assert picked in ("eggs", "coffee")
    assert 2 <= len(many) <= 3 and set(many) <= set("abcde")
    assert srv.request_count == 3


async def test_stub_server_async_concurrency() -> None:
    with StubOpenAIServer(latency=0.2) as srv:
        async with OpenAICompatibleLLM(srv.base_url, "stub", max_connections=16) as llm:
            results = await asyncio.gather(
                *(llm.agenerate(MESSAGES, Structured(Theme)) for _ in range(16))
            )

    assert len(results) == 16 and srv.request_count == 16
    assert srv.max_in_flight >= 8  # served side by side, not one after another


def test_stub_server_threaded_clients_share_one_pool() -> None:
    with (
        StubOpenAIServer(latency=0.1) as srv,
        OpenAICompatibleLLM(srv.base_url, "stub") as llm,
        ThreadPoolExecutor(max_workers=16) as pool,
    ):
        values = list(pool.map(lambda _: llm.generate(MESSAGES, THEME).value, range(32)))

    assert all(isinstance(v, Theme) for v in values)
    assert srv.request_count == 32 and srv.max_in_flight > 1


@BOTH
@pytest.mark.parametrize("kind", FAILURE_KINDS)
def test_stub_server_injected_failures_are_survived(waits: Waits, mode: Mode, kind: str) -> None:
    with StubOpenAIServer(
        failure_rate=0.5, failures=[kind], seed=7, retry_after=0.25, hang_seconds=2.0
    ) as srv:
        llm = OpenAICompatibleLLM(
            srv.base_url,
            "stub",
            # Only the injected hang needs a short timeout; the other kinds get a roomy one so
            # a loaded machine's slow answer is not taken for an extra failure.
            timeout=0.25 if kind == "timeout" else 5.0,
            max_retries=8,
            max_reasks=8,
            sleep=waits.sleep,
            async_sleep=waits.async_sleep,
        )
        results = [call(llm, mode, THEME) for _ in range(5)]
        llm.close()

    injected = srv.failures_injected[kind]
    assert all(isinstance(r.value, Theme) for r in results)
    assert injected >= 1 and srv.request_count == 5 + injected
    if kind == "malformed":  # answered, then re-asked: no transport retry
        assert waits == [] and sum(r.usage.attempts for r in results) == srv.request_count
    else:
        assert len(waits) == injected
    if kind == "rate_limit":
        assert waits == [0.25] * injected  # Retry-After honoured


def test_stub_server_failures_are_deterministic_by_seed() -> None:
    def run(seed: int) -> list[int]:
        codes = []
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        with (
            StubOpenAIServer(failure_rate=0.5, seed=seed, failures=["rate_limit"]) as srv,
            httpx.Client(base_url=srv.base_url) as client,
        ):
            for _ in range(20):
                codes.append(client.post("chat/completions", json=body).status_code)
        return codes

    first = run(5)
    assert first == run(5)
    assert first != run(6)
    assert set(first) == {200, 429}


def test_stub_server_behaves_like_llamacpp_and_auto_adapts() -> None:
    with StubOpenAIServer(response_formats=("json_object",)) as srv:
        strict = OpenAICompatibleLLM(srv.base_url, "stub", response_format="json_schema")
        with pytest.raises(FatalBackendError, match="not supported"):
            strict.generate(MESSAGES, THEME)
        auto = OpenAICompatibleLLM(srv.base_url, "stub", response_format="auto")
        assert isinstance(auto.generate(MESSAGES, THEME).value, Theme)
        assert auto.active_response_format == "json_object"
        strict.close()
        auto.close()


def test_stub_server_responder_and_api_key() -> None:
    seen: list[dict[str, Any]] = []

    def responder(request: dict[str, Any]) -> str:
        seen.append(request)
        return '"avocado"'

    with StubOpenAIServer(responder, api_key=SECRET) as srv:
        good = OpenAICompatibleLLM(srv.base_url, "stub", api_key=SECRET)
        bad = OpenAICompatibleLLM(srv.base_url, "stub", api_key="sk-wrong")
        assert good.generate(MESSAGES, Choice(("eggs", "avocado"))).value == "avocado"
        with pytest.raises(FatalBackendError, match="HTTP 401"):
            bad.generate(MESSAGES, Choice(("eggs", "avocado")))
        good.close()
        bad.close()

    assert len(seen) == 1 and seen[0]["messages"][1]["content"] == MESSAGES[1].content


def test_unreachable_server_is_retryable(waits: Waits) -> None:
    with StubOpenAIServer() as srv:
        url = srv.base_url
    llm = OpenAICompatibleLLM(url, "stub", max_retries=1, sleep=waits.sleep)

    with pytest.raises(RetryableBackendError, match="cannot reach"):
        llm.generate(MESSAGES, THEME)
    assert len(waits) == 1


@pytest.mark.parametrize("seed", range(20))
def test_sample_from_schema_satisfies_the_schema(seed: int) -> None:
    raw = sample_from_schema(Basket.model_json_schema(), random.Random(seed), ["eggs", "toast"])

    Basket.model_validate(raw)  # raises if the sampler broke a constraint
    spec = MultiChoice(("x", "y", "z"), 2, 3)
    spec.parse(json.dumps(sample_from_schema(spec.json_schema(), random.Random(seed))))


def test_example_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(REPO / "examples" / "http_backend.py"), run_name="__main__")

    out = capsys.readouterr().out
    assert "themes" in out.lower()
