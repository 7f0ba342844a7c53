"""The LLM backend protocol.

A backend takes chat messages and an *output spec* and returns a validated
value plus usage. Output specs say what the model may produce:

* :class:`Structured` -- an instance of a pydantic model (JSON schema constrained);
* :class:`Choice` -- exactly one string of a closed list;
* :class:`MultiChoice` -- ``min_items..max_items`` distinct strings of a closed list.

``as_output(x)`` turns a pydantic model class or a list of strings into a spec.
Every spec knows its JSON schema (what constrained decoders and structured-output
APIs consume), how to parse and validate raw model text, and a stable ``key``
(used to cache compiled constraints and generations).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from ..exceptions import ConfigurationError, OutputValidationError

__all__ = [
    "LLM",
    "ChatMessage",
    "Choice",
    "LLMResult",
    "LLMUsage",
    "MultiChoice",
    "OutputSpec",
    "Structured",
    "as_output",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class ChatMessage(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class LLMUsage(BaseModel):
    """What one call cost. ``cache_hit`` is True when no model was called."""

    model_config = ConfigDict(extra="forbid")

    model_id: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    cache_hit: bool = False
    cost: float | None = None
    attempts: int = 1


@dataclass(frozen=True)
class LLMResult(Generic[T]):
    """A validated value and the usage that produced it."""

    value: T
    usage: LLMUsage
    raw: str = ""


def _stable_hash(obj: Any) -> str:
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:20]


class OutputSpec(ABC, Generic[T]):
    """What a model is allowed to output, and how to validate it."""

    @abstractmethod
    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the raw output."""

    @abstractmethod
    def parse(self, text: str) -> T:
        """Parse and validate raw model text; raise ``OutputValidationError``."""

    @cached_property
    def key(self) -> str:
        """A stable identity of the constraint (schema hash); computed once per spec."""
        return _stable_hash(self.json_schema())

    def _load_json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise OutputValidationError(f"output is not valid JSON: {exc}", raw=text) from None


@dataclass(frozen=True, eq=False)
class Structured(OutputSpec[M]):
    """An instance of ``model`` (a pydantic model; give it ``extra="forbid"``)."""

    model: type[M]

    def json_schema(self) -> dict[str, Any]:
        return copy.deepcopy(_model_schema(self.model))  # callers may edit their copy

    def parse(self, text: str) -> M:
        try:
            return self.model.model_validate_json(text)
        except ValidationError as exc:
            raise OutputValidationError(
                f"output does not match {self.model.__name__}: {_short_errors(exc)}", raw=text
            ) from None


@dataclass(frozen=True, eq=False)
class Choice(OutputSpec[str]):
    """Exactly one of ``options``. Raw output is the JSON string, e.g. ``"eggs"``."""

    options: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise ConfigurationError("Choice needs at least one option")

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.options)}

    def parse(self, text: str) -> str:
        stripped = text.strip()
        value = self._load_json(stripped) if stripped.startswith('"') else stripped
        if value not in self.options:
            raise OutputValidationError(f"{value!r} is not one of the allowed options", raw=text)
        return cast(str, value)


@dataclass(frozen=True, eq=False)
class MultiChoice(OutputSpec[list[str]]):
    """``min_items..max_items`` distinct strings from ``options``.

    Raw output is ``{"items": [...]}``: an object wrapper, because several
    structured-output APIs only accept an object at the top level.
    """

    options: tuple[str, ...]
    min_items: int = 1
    max_items: int = 8

    def __post_init__(self) -> None:
        if not self.options:
            raise ConfigurationError("MultiChoice needs at least one option")
        if not 1 <= self.min_items <= self.max_items:
            raise ConfigurationError("MultiChoice needs 1 <= min_items <= max_items")

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(self.options)},
                    "minItems": self.min_items,
                    "maxItems": self.max_items,
                }
            },
            "required": ["items"],
            "additionalProperties": False,
        }

    def parse(self, text: str) -> list[str]:
        data = self._load_json(text)
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise OutputValidationError('expected an object {"items": [...]}', raw=text)
        allowed = set(self.options)
        out: list[str] = []
        for item in items:
            if not isinstance(item, str) or item not in allowed:
                raise OutputValidationError(f"{item!r} is not one of the allowed options", raw=text)
            if item not in out:
                out.append(item)
        if len(out) < self.min_items:
            raise OutputValidationError(
                f"expected at least {self.min_items} distinct items, got {len(out)}", raw=text
            )
        return out[: self.max_items]


@functools.lru_cache(maxsize=256)
def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    # pydantic rebuilds the schema on every call (~1 ms); models are immutable classes.
    return model.model_json_schema()


def as_output(spec: Any) -> OutputSpec[Any]:
    """Coerce a pydantic model class or a list of strings into an :class:`OutputSpec`."""
    if isinstance(spec, OutputSpec):
        return spec
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return Structured(spec)
    if isinstance(spec, (list, tuple)) and all(isinstance(s, str) for s in spec):
        return Choice(tuple(spec))
    raise ConfigurationError(f"cannot use {spec!r} as an output type")


def _short_errors(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(x) for x in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class LLM(ABC):
    """A language model backend: messages + output spec -> validated value + usage.

    ``generate`` and ``agenerate`` have identical signatures. ``concurrent``
    says whether several calls may usefully run at once (an HTTP server: yes;
    a single local llama.cpp context: no).
    """

    model_id: str = "unknown"
    concurrent: bool = False

    @abstractmethod
    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        """Run the model under ``output``'s constraint and return the validated value."""

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        return await asyncio.to_thread(
            self.generate, messages, output, max_tokens=max_tokens, temperature=temperature
        )

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Load weights / open connections ahead of the first call (optional)."""

    @property
    def fingerprint(self) -> str:
        """What identifies this model's outputs in cache keys (never secrets)."""
        return self.model_id
