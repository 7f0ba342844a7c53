"""``check_llm``: the conformance check for :class:`~storefront_sdk.llm.LLM` backends.

A backend author runs it against their backend (pointed at a real or stub server)::

    from storefront_sdk.testing import check_llm
    check_llm(MyBackend(...))

It makes about a dozen model calls, so run it against something fast (a stub
server, a small model) or mark the test slow.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..exceptions import BackendError, OutputValidationError, StorefrontError
from ..llm.base import (
    LLM,
    ChatMessage,
    Choice,
    LLMResult,
    LLMUsage,
    MultiChoice,
    OutputSpec,
    Structured,
)
from .conformance import ConformanceError

__all__ = ["check_llm"]

T = TypeVar("T")


class _Probe(BaseModel):
    """The structured output the check asks for: a little of every JSON type."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    count: int = Field(ge=0, le=9)
    tags: list[str] = Field(min_length=1, max_length=3)
    fresh: bool


class _Rejecting(OutputSpec[str]):
    """A spec whose ``parse`` rejects every text: the backend must report that as an error."""

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": ["conformance probe"]}

    def parse(self, text: str) -> str:
        raise OutputValidationError("conformance probe: this spec rejects every output", raw=text)


_OPTIONS = ("apples", "bread", "cheddar", "dates", "eggs")

_SYSTEM = ChatMessage(role="system", content="You answer in the requested JSON format only.")


def _ask(text: str) -> list[ChatMessage]:
    return [_SYSTEM, ChatMessage(role="user", content=text)]


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConformanceError(message)


def _call(what: str, fn: Callable[[], Any]) -> Any:
    """Run one call; any exception outside the SDK's tree is a contract violation."""
    try:
        return fn()
    except StorefrontError:
        raise
    except Exception as exc:
        raise ConformanceError(
            f"{what} raised {type(exc).__name__}: {exc}; backends must raise errors from "
            "storefront_sdk.exceptions (RetryableBackendError, FatalBackendError, ...)"
        ) from exc


def _check_usage(llm: LLM, result: Any, what: str) -> None:
    _require(isinstance(result, LLMResult), f"{what} must return an LLMResult")
    usage = result.usage
    _require(isinstance(usage, LLMUsage), f"{what}: LLMResult.usage must be an LLMUsage")
    _require(bool(usage.model_id), f"{what}: usage.model_id must be set")
    _require(
        usage.prompt_tokens >= 0 and usage.completion_tokens >= 0,
        f"{what}: token counts must be >= 0",
    )
    _require(
        usage.cache_hit or usage.prompt_tokens + usage.completion_tokens > 0,
        f"{what}: a call that ran the model must report its token usage",
    )
    _require(
        math.isfinite(usage.latency_ms) and usage.latency_ms >= 0,
        f"{what}: latency_ms must be finite and >= 0",
    )
    _require(usage.attempts >= 1, f"{what}: attempts must be >= 1")
    _require(
        usage.cost is None or (math.isfinite(usage.cost) and usage.cost >= 0),
        f"{what}: cost must be None or a finite number >= 0",
    )
    _require(isinstance(result.raw, str), f"{what}: LLMResult.raw must be the raw text (a str)")


def _check_value(spec: OutputSpec[Any], result: LLMResult[Any], what: str) -> None:
    value = result.value
    if isinstance(spec, Structured):
        _require(
            isinstance(value, spec.model),
            f"{what}: value must be a {spec.model.__name__}, got {type(value).__name__}",
        )
    elif isinstance(spec, Choice):
        _require(
            isinstance(value, str) and value in spec.options,
            f"{what}: Choice answer {value!r} is not one of the allowed options",
        )
    elif isinstance(spec, MultiChoice):
        _require(isinstance(value, list), f"{what}: MultiChoice answer must be a list")
        outside = [v for v in value if v not in spec.options]
        _require(not outside, f"{what}: MultiChoice answers outside the allowed options: {outside}")
        _require(len(set(value)) == len(value), f"{what}: MultiChoice answers must be distinct")
        _require(
            spec.min_items <= len(value) <= spec.max_items,
            f"{what}: MultiChoice returned {len(value)} items, "
            f"allowed {spec.min_items}..{spec.max_items}",
        )
    if result.raw:
        try:
            reparsed = spec.parse(result.raw)
        except OutputValidationError:
            raise ConformanceError(
                f"{what}: LLMResult.raw does not validate against the spec, so the value was not "
                "validated with spec.parse"
            ) from None
        _require(reparsed == value, f"{what}: value differs from spec.parse(raw)")


def _signature_shape(fn: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def check_llm(llm: LLM, *, concurrency: int = 3) -> None:
    """Check an :class:`~storefront_sdk.llm.LLM` backend against the protocol.

    * ``generate``/``agenerate`` have identical signatures; ``agenerate`` is ``async def``;
    * ``model_id`` and ``fingerprint`` are non-empty strings, ``concurrent`` a bool;
    * a ``Structured`` answer is an instance of the pydantic type, a ``Choice`` answer one of
      the options, a ``MultiChoice`` answer distinct options within ``min..max`` items, on
      both paths, and ``spec.parse(result.raw)`` gives the same value;
    * usage is reported: an ``LLMUsage`` with the model id, token counts (unless
      ``cache_hit``), a finite latency, ``attempts >= 1``;
    * errors come from the SDK's exception tree: no messages is a ``StorefrontError``, output
      that the spec rejects is a ``BackendError`` (usually ``OutputValidationError``), never a
      value; nothing else escapes;
    * ``concurrent`` backends answer ``concurrency`` simultaneous ``agenerate`` calls.
    """
    name = type(llm).__name__
    _require(isinstance(llm, LLM), f"{name} is not an LLM subclass")
    _require(
        _signature_shape(type(llm).generate) == _signature_shape(type(llm).agenerate),
        f"{name}.generate and .agenerate must have identical signatures",
    )
    _require(
        inspect.iscoroutinefunction(type(llm).agenerate), f"{name}.agenerate must be an async def"
    )
    _require(
        isinstance(llm.model_id, str) and bool(llm.model_id), "model_id must be a non-empty str"
    )
    _require(
        isinstance(llm.fingerprint, str) and bool(llm.fingerprint),
        "fingerprint must be a non-empty str",
    )
    _require(isinstance(llm.concurrent, bool), "concurrent must be a bool")

    probes: list[tuple[str, OutputSpec[Any], list[ChatMessage]]] = [
        (
            "Structured",
            Structured(_Probe),
            _ask(
                'Describe a grocery item as JSON: {"name": str, "count": 0-9, '
                '"tags": 1-3 strings, "fresh": bool}.'
            ),
        ),
        ("Choice", Choice(_OPTIONS), _ask(f"Pick the breakfast item among {list(_OPTIONS)}.")),
        (
            "MultiChoice",
            MultiChoice(_OPTIONS, min_items=2, max_items=3),
            _ask(f'Pick two or three picnic items among {list(_OPTIONS)} as {{"items": [...]}}.'),
        ),
    ]
    for kind, spec, messages in probes:
        _check_probe(llm, f"{name}.generate({kind})", spec, messages, is_async=False)
        _check_probe(llm, f"{name}.agenerate({kind})", spec, messages, is_async=True)

    _check_raises(
        f"{name}.generate with no messages",
        lambda: llm.generate([], Choice(_OPTIONS)),
        StorefrontError,
    )
    rejecting = _Rejecting()
    msgs = _ask("Answer with the only allowed string.")
    _check_raises(
        f"{name}.generate with output the spec rejects",
        lambda: llm.generate(msgs, rejecting, max_tokens=16),
        BackendError,
    )
    _check_raises(
        f"{name}.agenerate with output the spec rejects",
        lambda: asyncio.run(llm.agenerate(msgs, rejecting, max_tokens=16)),
        BackendError,
    )

    if llm.concurrent and concurrency > 1:
        spec = Choice(_OPTIONS)
        messages = probes[1][2]

        async def many() -> Sequence[LLMResult[str]]:
            return await asyncio.gather(
                *(llm.agenerate(messages, spec, max_tokens=16) for _ in range(concurrency))
            )

        results = _call(
            f"{concurrency} concurrent {name}.agenerate calls", lambda: asyncio.run(many())
        )
        _require(len(results) == concurrency, "gather returned the wrong number of results")
        for r in results:
            _check_value(spec, r, f"concurrent {name}.agenerate")


def _check_probe(
    llm: LLM, what: str, spec: OutputSpec[Any], messages: list[ChatMessage], *, is_async: bool
) -> None:
    def call() -> Any:
        if is_async:
            return asyncio.run(llm.agenerate(messages, spec, max_tokens=96, temperature=0.0))
        return llm.generate(messages, spec, max_tokens=96, temperature=0.0)

    result = _call(what, call)
    _check_usage(llm, result, what)
    _check_value(spec, result, what)


def _check_raises(what: str, fn: Callable[[], Any], kind: type[BaseException]) -> None:
    try:
        got = fn()
    except kind:
        return
    except Exception as exc:
        raise ConformanceError(
            f"{what} raised {type(exc).__name__}: {exc}; expected a {kind.__name__}"
        ) from exc
    raise ConformanceError(f"{what} returned {got!r}; expected a {kind.__name__}")
