"""A caching wrapper around any :class:`~storefront_sdk.llm.base.LLM`.

``CachingLLM(llm, cache)`` is itself an ``LLM``: ``generate``/``agenerate``
look the request up in a :class:`~storefront_sdk.cache.BaseGenerationCache`
first and call ``llm`` only on a miss. The key is the canonical request:

* the stage (``"llm"`` unless the caller names one, see :func:`cache_identity`),
* ``llm.fingerprint`` (model id and weights version, never credentials),
* the output constraint (its JSON schema's hash, ``OutputSpec.key``),
* ``max_tokens`` and ``temperature``, and an optional ``salt`` (e.g. a sample index),
* the messages (role and text of each), or the caller's *identity* parts.

Generators whose answer is determined by something coarser than the exact
prompt (themes: the user *fingerprint*, so similar shoppers share a
generation) say so with :func:`cache_identity`; the messages are then neither
hashed nor rendered on a hit when passed as :class:`LazyMessages`.

A hit is re-validated with the request's own ``output.parse`` (a stored answer
that no longer validates is a miss and is deleted) and flagged on the trace
(``cache_hit=True``; usage says ``cache_hit`` with zero tokens). A request that
cannot be keyed (a key part that is a credential) is sent uncached and the
refusal is recorded as a ``cache_refused`` trace event, never silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from ..exceptions import ConfigurationError, OutputValidationError
from ..tracing import annotate, event
from .base import LLM, ChatMessage, LLMResult, LLMUsage, MultiChoice, OutputSpec

if TYPE_CHECKING:
    from ..cache import BaseGenerationCache

__all__ = ["CachingLLM", "LazyMessages", "cache_identity", "current_cache_identity"]

T = TypeVar("T")

Parts = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class _Identity:
    stage: str
    parts: Parts


_IDENTITY: ContextVar[_Identity | None] = ContextVar("storefront_cache_identity", default=None)


@contextmanager
def cache_identity(stage: str, parts: Parts) -> Iterator[None]:
    """Key the requests made in this block by ``parts`` instead of their messages.

    Use it when ``parts`` determine the answer as far as caching should care
    (themes: the prompt version, the *user fingerprint*, the catalog version ...);
    everything that is not in ``parts`` is deliberately shared. ``parts`` may be
    a callable, evaluated only when a :class:`CachingLLM` derives a key (a key
    part that raises :class:`ConfigurationError` makes the request uncached, traced).
    Model fingerprint, output constraint and sampling settings are always added.
    """
    token = _IDENTITY.set(_Identity(stage, parts))
    try:
        yield
    finally:
        _IDENTITY.reset(token)


def current_cache_identity() -> tuple[str, Parts] | None:
    """``(stage, parts)`` of the :func:`cache_identity` block open in this context, if any
    (a wrapper such as the distillation recorder reads which theme a call is for)."""
    identity = _IDENTITY.get()
    return None if identity is None else (identity.stage, identity.parts)


class LazyMessages(Sequence[ChatMessage]):
    """Chat messages rendered on first use: a cache hit keyed by identity never renders them."""

    def __init__(self, render: Callable[[], Sequence[ChatMessage]]) -> None:
        self._render = render
        self._messages: tuple[ChatMessage, ...] | None = None

    @property
    def messages(self) -> tuple[ChatMessage, ...]:
        if self._messages is None:
            self._messages = tuple(self._render())
        return self._messages

    @overload
    def __getitem__(self, index: int) -> ChatMessage: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ChatMessage]: ...

    def __getitem__(self, index: int | slice) -> ChatMessage | Sequence[ChatMessage]:
        return self.messages[index]

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        state = "rendered" if self._messages is not None else "not rendered"
        return f"LazyMessages({state})"


def _stored_text(output: OutputSpec[Any], value: Any, raw: str) -> str | None:
    """Raw text that ``output.parse`` turns back into ``value``, or None when there is none."""
    if isinstance(value, BaseModel):
        candidate = value.model_dump_json()
    elif isinstance(output, MultiChoice):
        candidate = json.dumps({"items": value}, ensure_ascii=False)
    else:
        try:
            candidate = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):
            candidate = raw
    for text in dict.fromkeys((candidate, raw)):
        if not text:
            continue
        try:
            if output.parse(text) == value:
                return text
        except OutputValidationError:
            continue
    return None


class CachingLLM(LLM):
    """``llm`` with its answers cached in ``cache`` (see the module docs for the key).

    ``stage`` names the keys (``"<stage>/<sha256>"``) when no
    :func:`cache_identity` is open; ``salt`` separates otherwise equal requests
    that must not share an answer (an ``LLMJudge`` sample index, say). Other
    attributes (``aclose``, ``cache_info`` ...) are those of the wrapped ``llm``.
    """

    def __init__(
        self,
        llm: LLM,
        cache: BaseGenerationCache,
        *,
        stage: str = "llm",
        salt: str | None = None,
    ) -> None:
        if isinstance(llm, CachingLLM):
            raise ConfigurationError("this LLM is already cached; wrap the inner model once")
        self.llm = llm
        self.cache = cache
        self.stage = stage
        self.salt = salt
        self.model_id = llm.model_id
        self.concurrent = llm.concurrent

    @classmethod
    def wrap(
        cls,
        llm: LLM,
        cache: BaseGenerationCache | None,
        *,
        stage: str = "llm",
        salt: str | None = None,
    ) -> LLM:
        """``llm`` cached in ``cache`` under ``stage``: what components call on their model.

        An already cached ``llm`` is re-wrapped around its inner model (its cache
        unless ``cache`` is given), so a component's stage and salt always apply;
        without any cache, ``llm`` comes back unchanged.
        """
        if isinstance(llm, CachingLLM):
            return cls(llm.llm, cache if cache is not None else llm.cache, stage=stage, salt=salt)
        if cache is None:
            return llm
        return cls(llm, cache, stage=stage, salt=salt)

    def __repr__(self) -> str:
        return f"CachingLLM({self.llm!r}, {self.cache!r})"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("llm", "cache"):
            raise AttributeError(name)
        return getattr(self.llm, name)

    @property
    def fingerprint(self) -> str:
        return self.llm.fingerprint

    def warm_up(self) -> None:
        self.llm.warm_up()

    # -- keys ------------------------------------------------------------------------------
    def request_key(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[Any] | str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """The cache key of this request (inside an open :func:`cache_identity`, of its parts).

        ``output`` may be the spec or its ``key``. Raises :class:`ConfigurationError`
        when a part is a credential or not JSON data.
        """
        identity = _IDENTITY.get()
        parts: dict[str, Any] = {
            "model": self.llm.fingerprint,
            "output": output.key if isinstance(output, OutputSpec) else output,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "salt": self.salt,
        }
        if identity is not None:
            raw = identity.parts
            parts["identity"] = dict(raw() if callable(raw) else raw)
            stage = identity.stage
        else:
            parts["messages"] = [[m.role, m.content] for m in messages]
            stage = self.stage
        return self.cache.key(stage, **parts)

    def _key(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[Any],
        max_tokens: int | None,
        temperature: float | None,
    ) -> str | None:
        try:
            return self.request_key(
                messages, output, max_tokens=max_tokens, temperature=temperature
            )
        except ConfigurationError as exc:
            annotate(cache_refused=str(exc))
            event("cache_refused", f"request not cached: {exc}")
            return None

    def _hit(self, key: str, output: OutputSpec[T]) -> LLMResult[T] | None:
        text = self.cache.get(key)
        if text is None:
            return None
        try:
            if not isinstance(text, str):
                raise OutputValidationError(f"stored {type(text).__name__}, expected raw text")
            value = output.parse(text)
        except OutputValidationError as exc:
            self.cache.delete(key)
            annotate(cache_error=f"stale answer: {exc}"[:200])
            event("cache_error", f"cached answer no longer validates: {exc}"[:300], key=key)
            return None
        annotate(cache_hit=True, model_id=self.model_id)
        usage = LLMUsage(model_id=self.model_id, cache_hit=True, attempts=0)
        return LLMResult(value=value, usage=usage, raw=text)

    def _keep(self, key: str | None, output: OutputSpec[T], result: LLMResult[T]) -> None:
        annotate(cache_hit=False)
        if key is None:
            return
        text = _stored_text(output, result.value, result.raw)
        if text is None:
            event("cache_refused", "answer not cached: it does not re-validate as stored text")
            return
        try:
            self.cache.set(key, text)
        except ConfigurationError as exc:  # over a size limit
            event("cache_refused", f"answer not cached: {exc}")

    # -- the LLM protocol ----------------------------------------------------------------
    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        key = self._key(messages, output, max_tokens, temperature)
        if key is not None:
            hit = self._hit(key, output)
            if hit is not None:
                return hit
        result = self.llm.generate(messages, output, max_tokens=max_tokens, temperature=temperature)
        self._keep(key, output, result)
        return result

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        key = self._key(messages, output, max_tokens, temperature)
        if key is not None:
            hit = self._hit(key, output)
            if hit is not None:
                return hit
        result = await self.llm.agenerate(
            messages, output, max_tokens=max_tokens, temperature=temperature
        )
        self._keep(key, output, result)
        return result
