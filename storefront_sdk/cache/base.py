"""The cache contract: everything a generation cache does except storing text.

:class:`BaseGenerationCache` holds key derivation, the JSON envelope, TTL
against an injectable ``clock``, statistics, the in-memory LRU, bypass and
the public methods; a storage backend implements five primitives on envelope
text (see the class docs). :class:`~storefront_sdk.cache.sqlite.GenerationCache`
is the embedded backend.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from pydantic import BaseModel

from ..exceptions import ConfigurationError, StorefrontError
from ..tracing import annotate, event
from .keys import derive_key

__all__ = ["BaseGenerationCache", "CacheError", "CacheReadOnlyError", "CacheStats"]

T = TypeVar("T")
log = logging.getLogger("storefront_sdk.cache")

_ENVELOPE = "storefront-generation"
#: Bumped when the stored envelope changes shape (2: ``expires_at`` inside the envelope).
ENVELOPE_VERSION = 2

_BYPASS: ContextVar[tuple[bool, bool] | None] = ContextVar("storefront_cache_bypass", default=None)


class CacheError(StorefrontError):
    """The cache store cannot be used (unreadable, not a cache, a link, ...).

    ``get``/``set`` never raise it (an unusable store is a miss, counted in
    ``stats.errors``); ``len()``, ``clear()`` and ``delete()`` do, instead of a
    raw ``sqlite3`` or ``OSError``.
    """


class CacheReadOnlyError(CacheError):
    """A write (``clear``) was asked of a cache opened read-only."""


class _Corrupt(Exception):
    """A stored entry that is not a generation: a miss, deleted by key."""


@dataclass
class CacheStats:
    """Counters of one cache in this process.

    ``hits = memory_hits + disk_hits``; ``errors`` counts unreadable entries
    and failed store operations (each also counted as a miss when reading);
    ``bypassed`` counts reads skipped inside :meth:`BaseGenerationCache.bypass`;
    ``expired`` counts reads that found an entry past its TTL (also misses).
    """

    hits: int = 0
    misses: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    errors: int = 0
    sets: int = 0
    bypassed: int = 0
    expired: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["hit_rate"] = self.hit_rate
        return out


# -- the stored envelope -----------------------------------------------------------------------


def _encode(value: Any, expires_at: float | None) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return json.dumps(
            {
                "format": _ENVELOPE,
                "version": ENVELOPE_VERSION,
                "expires_at": expires_at,
                "value": value,
            },
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigurationError(f"cache values must be JSON-serialisable: {exc}") from None


def _decode(raw: Any) -> tuple[Any, float | None]:
    """``(value, expires_at)`` of a stored envelope; :class:`_Corrupt` for anything else."""
    if not isinstance(raw, str):
        raise _Corrupt(f"stored {type(raw).__name__}, expected JSON text")
    try:
        env = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _Corrupt(f"undecodable JSON: {type(exc).__name__}") from None
    if not (isinstance(env, dict) and env.get("format") == _ENVELOPE and "value" in env):
        raise _Corrupt("not a generation-cache envelope")
    expires_at = env.get("expires_at")
    if expires_at is not None and (
        type(expires_at) not in (int, float) or not math.isfinite(expires_at)
    ):
        raise _Corrupt("bad expires_at")
    return env["value"], expires_at


# -- the contract --------------------------------------------------------------------------------


class BaseGenerationCache(ABC):
    """Everything a generation cache does except storing text: subclass it for a new store.

    A backend implements five primitives, each on *envelope text* (JSON,
    already encoded; the value's expiry is inside it):

    * ``_load(key) -> str | None``: the stored text, or None when absent. Raise
      :class:`CacheError` when the store is unusable; any other exception
      means "this entry is corrupt" (it is then deleted with ``_delete``).
    * ``_store(key, text, expire_at)``: write (overwrite) one entry.
      ``expire_at`` (``clock()`` time, or None) is for the store's own clean-up;
      expiry is decided here, on read, against ``clock``.
    * ``_delete(key)``, ``_clear()``, ``_size() -> int``; optionally ``_close()``.

    This class adds the key derivation (:meth:`key`), JSON encoding, the TTL,
    statistics, a thread-safe in-memory LRU of ``memory_items`` entries in front
    of the store, :meth:`bypass`, and the public methods. ``get``/``set`` never
    raise for store failures: the cache can make a build faster, never break it.
    """

    def __init__(
        self,
        *,
        ttl: float | None = None,
        memory_items: int = 1024,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl is not None and not ttl > 0:
            raise ConfigurationError("ttl must be a positive number of seconds, or None")
        if memory_items < 0:
            raise ConfigurationError("memory_items must be >= 0")
        self.ttl = ttl
        self.memory_items = memory_items
        self.enabled = enabled
        self.clock = clock
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._memory: OrderedDict[str, tuple[float | None, str]] = OrderedDict()
        self._stats = CacheStats()
        self._warned_read_only = False

    # -- primitives ----------------------------------------------------------------------
    @abstractmethod
    def _load(self, key: str) -> str | None:
        """The stored envelope text of ``key``, or None."""

    @abstractmethod
    def _store(self, key: str, text: str, expire_at: float | None) -> None:
        """Write ``text`` under ``key``."""

    @abstractmethod
    def _delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine)."""

    @abstractmethod
    def _clear(self) -> None:
        """Remove every entry."""

    @abstractmethod
    def _size(self) -> int:
        """Number of stored entries (expired ones not yet removed included)."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release handles (reopened on next use)."""

    # -- keys ----------------------------------------------------------------------------
    @staticmethod
    def key(stage: str, **parts: Any) -> str:
        """A stable key: ``"<stage>/<sha256 of canonical JSON of (stage, parts)>"``.

        Parts are what determines the generation (prompt version, model
        fingerprint, output schema, taxonomy version, user fingerprint ...).
        Mapping order does not matter; sets are sorted; nothing depends on
        ``hash()``, so a key is the same in every process and on every machine.
        A part that is a credential (see :func:`secret_reason`) or not JSON
        data raises :class:`ConfigurationError`.
        """
        return derive_key(stage, parts)

    # -- counters ------------------------------------------------------------------------
    @property
    def stats(self) -> CacheStats:
        """A snapshot of this process's counters."""
        with self._lock:
            return CacheStats(**{f.name: getattr(self._stats, f.name) for f in fields(CacheStats)})

    def _count(self, **inc: int) -> None:
        with self._lock:
            for k, v in inc.items():
                setattr(self._stats, k, getattr(self._stats, k) + v)

    def _report(self, key: str, problem: str) -> None:
        """A corrupt entry or a failed store operation: counted, logged and traced."""
        self._count(errors=1)
        log.warning("generation cache %s: %s (%s)", type(self).__name__, problem, key[:80])
        annotate(cache_error=problem)
        event("cache_error", f"cache entry discarded or store failed: {problem}", key=key[:80])

    # -- memory layer --------------------------------------------------------------------
    def _remember(self, key: str, expires_at: float | None, text: str) -> None:
        if self.memory_items == 0:
            return
        with self._lock:
            self._memory[key] = (expires_at, text)
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    # -- public methods ------------------------------------------------------------------
    def get(self, key: str) -> Any | None:
        """The cached value, or None on a miss (absent, expired, unreadable, bypassed)."""
        if not self.enabled:
            self._count(misses=1)
            return None
        bypass = _BYPASS.get()
        if bypass is not None and bypass[0]:
            self._count(bypassed=1)
            return None
        now = self.clock()
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                if entry[0] is not None and entry[0] <= now:
                    del self._memory[key]
                else:
                    self._memory.move_to_end(key)
                    self._stats.hits += 1
                    self._stats.memory_hits += 1
                    return _decode(entry[1])[0]
        try:
            text = self._load(key)
            if text is None:
                self._count(misses=1)
                return None
            value, expires_at = _decode(text)
        except CacheError as exc:
            self._count(misses=1)
            self._report(key, f"store unusable: {exc}")
            return None
        except Exception as exc:  # a corrupt row is a miss, whatever it is
            self._count(misses=1)
            self._report(key, f"corrupt entry: {exc}"[:200])
            self._discard(key)
            return None
        if expires_at is not None and expires_at <= now:
            self._count(misses=1, expired=1)
            self._discard(key, quiet=True)
            return None
        self._remember(key, expires_at, text)
        self._count(hits=1, disk_hits=1)
        return value

    def set(self, key: str, value: Any) -> None:
        """Store JSON-serialisable ``value`` (pydantic models are dumped to JSON)."""
        if not self.enabled:
            return
        bypass = _BYPASS.get()
        if bypass is not None and not bypass[1]:
            return
        expires_at = self.clock() + self.ttl if self.ttl is not None else None
        text = _encode(value, expires_at)
        try:
            self._store(key, text, expires_at)
        except CacheReadOnlyError:
            # A read-only (shared, prebuilt) store: serve this process from memory.
            if not self._warned_read_only:
                self._warned_read_only = True
                log.info("generation cache %s is read-only; new entries stay in memory", self)
            self._remember(key, expires_at, text)
            return
        except Exception as exc:  # a failed write never breaks a build
            self._report(key, f"write failed: {exc}"[:200])
            return
        self._remember(key, expires_at, text)
        self._count(sets=1)

    def get_or_compute(self, key: str, compute: Callable[[], T]) -> tuple[Any, bool]:
        """``(value, hit)``: the cached value, or ``compute()`` stored and returned.

        ``compute`` must return JSON-serialisable data (or a pydantic model,
        stored and returned as its JSON data). Exceptions from ``compute``
        propagate and nothing is stored.
        """
        cached = self.get(key)
        if cached is not None:
            return cached, True
        value = compute()
        self.set(key, value)
        return _decode(_encode(value, None))[0], False

    async def aget_or_compute(
        self, key: str, compute: Callable[[], Awaitable[T]]
    ) -> tuple[Any, bool]:
        """Async twin of :meth:`get_or_compute` (``compute`` is a coroutine function)."""
        cached = self.get(key)
        if cached is not None:
            return cached, True
        value = await compute()
        self.set(key, value)
        return _decode(_encode(value, None))[0], False

    def delete(self, key: str) -> None:
        """Remove one entry from both layers (:class:`CacheError` if the store fails)."""
        with self._lock:
            self._memory.pop(key, None)
        self._delete(key)

    def _discard(self, key: str, *, quiet: bool = False) -> None:
        with self._lock:
            self._memory.pop(key, None)
        try:
            self._delete(key)
        except Exception as exc:
            if not quiet:
                self._report(key, f"delete failed: {exc}"[:200])

    def clear(self) -> None:
        """Remove every entry, in memory and in the store (for every process sharing it)."""
        with self._lock:
            self._memory.clear()
        self._clear()

    def close(self) -> None:
        """Release the store's handles (reopened on next use)."""
        with self._lock:
            self._close()

    def __enter__(self) -> BaseGenerationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Entries in the store (including expired ones not yet removed)."""
        return self._size()

    @contextmanager
    def bypass(self, *, refresh: bool = False) -> Iterator[None]:
        """Skip cache reads in this context (thread / task); with ``refresh``, still write.

        Use it to force fresh generations for one request (``refresh=False``
        leaves the cache untouched) or to re-generate and overwrite stale
        entries (``refresh=True``). Other threads and tasks are unaffected.
        """
        token = _BYPASS.set((True, refresh))
        try:
            yield
        finally:
            _BYPASS.reset(token)
