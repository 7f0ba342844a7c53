"""``MockLLM``: a scriptable, in-process :class:`~storefront_sdk.llm.LLM` for tests.

It plays the part ``httpx.MockTransport`` plays for HTTP: the code under test
talks to a real ``LLM`` object, and the test decides what the "model" says::

    llm = MockLLM('{"verdict": "pass", "reason": "fits"}')         # every call
    llm = MockLLM(RetryableBackendError("429"), '"eggs"')           # fail once, then answer
    llm = MockLLM(rules={r"brunch": '{"items": ["eggs"]}'})         # by prompt pattern
    llm = MockLLM(handler=lambda req: '"eggs"' if req.call == 1 else '"milk"')
    llm = MockLLM()                                                 # any spec: a valid sample

Whatever the answer, it goes through the requested output spec's ``parse``
exactly as a real backend's text does, so an answer the spec rejects raises
:class:`~storefront_sdk.exceptions.OutputValidationError`. Every request is
recorded (:attr:`MockLLM.requests`) and usage is counted (:attr:`MockLLM.usage`).
``MockLLM`` passes :func:`~storefront_sdk.testing.check_llm`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

from pydantic import BaseModel

from ..exceptions import ConfigurationError, FatalBackendError
from ..llm.base import LLM, ChatMessage, LLMResult, LLMUsage, OutputSpec
from .stub_server import sample_from_schema

__all__ = ["Answer", "LLMRequest", "MockLLM", "MockUsage"]

T = TypeVar("T")

Answer: TypeAlias = (
    str | BaseModel | dict[str, Any] | list[Any] | BaseException | Callable[["LLMRequest"], Any]
)
"""What the mock says for one call.

* ``str`` -- the raw model text, parsed by the request's output spec (``'"eggs"'`` or
  ``'eggs'`` for a ``Choice``, ``'{"items": [...]}'`` for a ``MultiChoice``, JSON for
  ``Structured``);
* a pydantic model instance, a ``dict`` or a ``list`` -- dumped to JSON, then parsed;
* an exception instance -- raised (e.g. ``RetryableBackendError("429", retry_after=1)``);
* a callable ``(LLMRequest) -> answer`` -- called, and its result used as above.
"""


@dataclass(frozen=True)
class LLMRequest:
    """One call the mock received."""

    call: int
    """1-based number of the call on this mock."""
    messages: tuple[ChatMessage, ...]
    output: OutputSpec[Any]
    max_tokens: int | None
    temperature: float | None
    is_async: bool

    @property
    def prompt(self) -> str:
        """The last message's text (usually the user turn)."""
        return self.messages[-1].content if self.messages else ""

    @property
    def system(self) -> str:
        """The system message's text, or ``""``."""
        return next((m.content for m in self.messages if m.role == "system"), "")

    @property
    def text(self) -> str:
        """Every message's text, joined by newlines (what ``rules`` patterns search)."""
        return "\n".join(m.content for m in self.messages)


@dataclass
class MockUsage:
    """What the mock was asked for in total."""

    calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_spec: dict[str, int] = field(default_factory=dict)


def _tokens(text: str) -> int:
    """A deterministic token estimate (4 characters a token), at least 1 for any text."""
    return math.ceil(len(text) / 4) if text else 0


class MockLLM(LLM):
    """A scriptable in-process model; see the module docstring for the answer kinds.

    For each call the first source that has an answer wins:

    1. failures queued with :meth:`fail_next`;
    2. ``rules``: the first regex (searched in every message's text) that matches;
    3. the positional ``answers``, one per call in order; the last one is reused when
       ``repeat_last`` is true (the default when exactly one answer is given);
    4. ``handler(request)``;
    5. ``default="schema"``: a value sampled from the spec's JSON schema (deterministic
       for a given ``seed``), so any generator can run without a script;
       ``default="error"`` raises :class:`FatalBackendError` instead.

    ``concurrent`` stands for a remote model (True) or an in-process one (False);
    generators choose their prompt profile from it. ``latency`` (seconds) is slept on
    every call (``asyncio.sleep`` on the async path). ``cost_per_1k_tokens`` fills
    ``LLMUsage.cost``.
    """

    def __init__(
        self,
        *answers: Answer,
        rules: Mapping[str | re.Pattern[str], Answer] | None = None,
        handler: Callable[[LLMRequest], Any] | None = None,
        default: Literal["schema", "error"] = "schema",
        repeat_last: bool | None = None,
        model_id: str = "mock-llm",
        concurrent: bool = True,
        latency: float = 0.0,
        seed: int = 0,
        cost_per_1k_tokens: float | None = None,
    ) -> None:
        if default not in ("schema", "error"):
            raise ConfigurationError(f"default must be 'schema' or 'error', got {default!r}")
        if latency < 0:
            raise ConfigurationError("latency must be >= 0")
        self.model_id = model_id
        self.concurrent = concurrent
        self.latency = latency
        self.default = default
        self.cost_per_1k_tokens = cost_per_1k_tokens
        self.handler = handler
        self.rules: list[tuple[re.Pattern[str], Answer]] = [
            (p if isinstance(p, re.Pattern) else re.compile(p), a) for p, a in (rules or {}).items()
        ]
        self._answers: deque[Answer] = deque(answers)
        self._repeat_last = len(answers) == 1 if repeat_last is None else repeat_last
        self._failures: deque[BaseException] = deque()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests: list[LLMRequest] = []
        """Every request received, in arrival order."""
        self.usage = MockUsage()
        """Totals over all calls."""

    # -- scripting -----------------------------------------------------------------------
    def add_answers(self, *answers: Answer) -> MockLLM:
        """Queue more positional answers (after those not used yet)."""
        with self._lock:
            self._answers.extend(answers)
        return self

    def fail_next(self, error: BaseException, times: int = 1) -> MockLLM:
        """Raise ``error`` on the next ``times`` calls, before any other answer source."""
        with self._lock:
            self._failures.extend([error] * times)
        return self

    @property
    def calls(self) -> int:
        """How many calls were made (sync and async)."""
        return len(self.requests)

    @property
    def prompts(self) -> list[str]:
        """The last message of every request, in arrival order."""
        return [r.prompt for r in self.requests]

    def reset(self) -> None:
        """Forget the recorded requests and usage (the script is kept)."""
        with self._lock:
            self.requests.clear()
            self.usage = MockUsage()

    # -- the LLM protocol ----------------------------------------------------------------
    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        request, answer = self._receive(messages, output, max_tokens, temperature, False)
        if self.latency:
            time.sleep(self.latency)
        return self._answer(request, answer)

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        request, answer = self._receive(messages, output, max_tokens, temperature, True)
        await asyncio.sleep(self.latency)  # also yields to the loop, like real I/O
        return self._answer(request, answer)

    @property
    def fingerprint(self) -> str:
        return f"mock:{self.model_id}"

    # -- internals -----------------------------------------------------------------------
    def _receive(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[Any],
        max_tokens: int | None,
        temperature: float | None,
        is_async: bool,
    ) -> tuple[LLMRequest, Answer | None]:
        if not messages:
            raise ConfigurationError("generate() needs at least one message")
        if not isinstance(output, OutputSpec):
            raise ConfigurationError(f"output must be an OutputSpec, got {type(output).__name__}")
        with self._lock:
            request = LLMRequest(
                call=len(self.requests) + 1,
                messages=tuple(messages),
                output=output,
                max_tokens=max_tokens,
                temperature=temperature,
                is_async=is_async,
            )
            self.requests.append(request)
            self.usage.calls += 1
            kind = type(output).__name__
            self.usage.by_spec[kind] = self.usage.by_spec.get(kind, 0) + 1
            return request, self._pick(request)

    def _pick(self, request: LLMRequest) -> Answer | None:
        if self._failures:
            return self._failures.popleft()
        for pattern, answer in self.rules:
            if pattern.search(request.text):
                return answer
        if self._answers:
            if len(self._answers) == 1 and self._repeat_last:
                return self._answers[0]
            return self._answers.popleft()
        return None

    def _answer(self, request: LLMRequest, answer: Answer | None) -> LLMResult[Any]:
        start = time.perf_counter()
        try:
            raw = self._raw(request, answer)
        except BaseException:
            with self._lock:
                self.usage.failures += 1
            raise
        prompt_tokens = _tokens(request.text)
        completion_tokens = max(1, _tokens(raw))
        with self._lock:
            self.usage.prompt_tokens += prompt_tokens
            self.usage.completion_tokens += completion_tokens
        cost = None
        if self.cost_per_1k_tokens is not None:
            cost = (prompt_tokens + completion_tokens) * self.cost_per_1k_tokens / 1000
        try:
            value = request.output.parse(raw)
        except BaseException:
            with self._lock:
                self.usage.failures += 1
            raise
        usage = LLMUsage(
            model_id=self.model_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=self.latency * 1000 + (time.perf_counter() - start) * 1000,
            cost=cost,
        )
        return LLMResult(value=value, usage=usage, raw=raw)

    def _raw(self, request: LLMRequest, answer: Answer | None) -> str:
        if answer is None and self.handler is not None:
            answer = self.handler(request)
            if answer is None:
                raise FatalBackendError(f"MockLLM handler returned None for call {request.call}")
        if answer is None:
            if self.default == "error":
                raise FatalBackendError(
                    f"MockLLM has no answer for call {request.call} "
                    f"({type(request.output).__name__}, prompt {request.prompt[:60]!r})"
                )
            with self._lock:
                value = sample_from_schema(
                    request.output.json_schema(),
                    self._rng,
                    re.findall(r"[A-Za-z]{4,}", request.text),
                )
            return json.dumps(value)
        for _ in range(8):  # a callable may return another answer kind
            if callable(answer) and not isinstance(answer, (BaseModel, BaseException, type)):
                answer = answer(request)
                continue
            break
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, str):
            return answer
        if isinstance(answer, BaseModel):
            return answer.model_dump_json()
        if isinstance(answer, (dict, list)):
            return json.dumps(answer)
        raise ConfigurationError(f"MockLLM cannot use {type(answer).__name__} as an answer")
