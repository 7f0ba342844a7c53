"""A disk-backed cache of generations (themes, keywords), shared across threads and processes.

Generation is slow and pages are requested often, so generated themes and
keywords are stored under a key derived from *everything that determines
them*: the stage, the prompt template version, the model fingerprint, the
output schema, the taxonomy/catalog version and a coarse *user fingerprint*
(see :class:`UserFingerprint`), so that similar users share generations.

:class:`GenerationCache` is a small thread-safe in-memory LRU in front of a
:class:`diskcache.Cache` (SQLite; safe across processes). Values are stored as
JSON text, never pickled; an entry that cannot be read or decoded counts as a
miss and is deleted. A hit is flagged (``get_or_compute`` returns it, and
generators record ``cache_hit`` in the page trace), never hidden.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from .exceptions import ConfigurationError
from .text import normalize

if TYPE_CHECKING:
    from .catalog import Catalog
    from .types import UserContext

__all__ = ["CacheStats", "GenerationCache", "UserFingerprint", "default_cache_dir"]

T = TypeVar("T")

#: Bumped when the key derivation or the stored envelope changes shape.
KEY_FORMAT = 1
_ENVELOPE = "storefront-generation"

# Names of key parts that must never be cached on: the key is a hash, but a
# secret has no business determining (or being logged next to) a generation.
_SECRET_NAME = re.compile(
    r"(api_?key|secret|passw|authori[sz]ation|credential|bearer|cookie|(^|_)token$)", re.I
)
_SECRET_VALUE = re.compile(r"^(sk-[A-Za-z0-9_-]{8,}|Bearer\s+\S+)")
_SECRET_IN_JOINED = re.compile(r"(?:^|\x00)(?:sk-[A-Za-z0-9_-]{8,}|Bearer\s+\S+)")
"""``_SECRET_VALUE`` at the start of any item of a ``"\\x00"``-joined list of strings."""

_BYPASS: ContextVar[tuple[bool, bool] | None] = ContextVar("storefront_cache_bypass", default=None)


def default_cache_dir() -> Path:
    """``$STOREFRONT_CACHE_DIR``, else ``~/.cache/storefront_sdk``."""
    env = os.environ.get("STOREFRONT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "storefront_sdk"


@dataclass
class CacheStats:
    """Counters of one :class:`GenerationCache` in this process.

    ``hits = memory_hits + disk_hits``; ``errors`` counts unreadable entries
    and failed disk operations (each also counted as a miss when reading);
    ``bypassed`` counts reads skipped inside :meth:`GenerationCache.bypass`.
    """

    hits: int = 0
    misses: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    errors: int = 0
    sets: int = 0
    bypassed: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["hit_rate"] = self.hit_rate
        return out


_STR_ONLY = {str}


@lru_cache(maxsize=1024)
def _secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def _canonical(value: Any, path: str) -> Any:
    """A JSON-ready, order-stable form of a key part; rejects secrets and opaque objects."""
    kind = type(value)  # exact types first: ABC isinstance checks cost a microsecond each
    if kind is str:
        if _SECRET_VALUE.match(value):
            raise ConfigurationError(f"cache key part {path} looks like a secret")
        return value
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump(mode="json"), path)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            name = str(k)
            if _secret_name(name):
                raise ConfigurationError(f"cache key part {path}.{name} looks like a secret")
            out[name] = _canonical(v, f"{path}.{name}")
        return out
    if isinstance(value, (list, tuple)):
        # Lists of strings (keyword shortlists: ~100 items) are checked in one regex pass.
        if set(map(type, value)) <= _STR_ONLY and not _SECRET_IN_JOINED.search(
            "\x00".join(value)
        ):
            return list(value)
        return [_canonical(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted(_canonical(v, path) for v in value)
    if isinstance(value, str):
        if _SECRET_VALUE.match(value):
            raise ConfigurationError(f"cache key part {path} looks like a secret")
        return value
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return repr(value)  # exact and stable, also for nan/inf
    raise ConfigurationError(
        f"cache key part {path} of type {type(value).__name__} is not JSON-serialisable"
    )


def _encode(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return json.dumps(
            {"format": _ENVELOPE, "version": KEY_FORMAT, "value": value},
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"cache values must be JSON-serialisable: {exc}") from None


class _Corrupt(Exception):
    pass


def _decode(raw: Any) -> Any:
    if not isinstance(raw, str):
        raise _Corrupt(f"stored {type(raw).__name__}, expected JSON text")
    try:
        env = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _Corrupt(f"undecodable JSON: {exc}") from None
    if not (isinstance(env, dict) and env.get("format") == _ENVELOPE and "value" in env):
        raise _Corrupt("not a generation-cache envelope")
    return env["value"]


class GenerationCache:
    """Memory LRU in front of diskcache, for JSON-serialisable generations.

    ``ttl`` (seconds) applies to both layers; ``None`` keeps entries until
    ``size_limit`` (bytes on disk) evicts them. ``enabled=False`` turns every
    read into a miss and every write into a no-op. The constructor is cheap: the
    disk store opens on first use. Instances pickle (the handle is reopened),
    so a cache can be handed to worker processes.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        ttl: float | None = None,
        memory_items: int = 1024,
        enabled: bool = True,
        size_limit: int = 2**30,
    ) -> None:
        if ttl is not None and ttl <= 0:
            raise ConfigurationError("ttl must be a positive number of seconds, or None")
        if memory_items < 0:
            raise ConfigurationError("memory_items must be >= 0")
        self.directory = (
            Path(directory).expanduser() if directory is not None else default_cache_dir()
        )
        self.ttl = ttl
        self.memory_items = memory_items
        self.enabled = enabled
        self.size_limit = size_limit
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._memory: OrderedDict[str, tuple[float | None, str]] = OrderedDict()
        self._disk: Any = None
        self._stats = CacheStats()

    def __getstate__(self) -> dict[str, Any]:
        names = ("directory", "ttl", "memory_items", "enabled", "size_limit")
        return {k: getattr(self, k) for k in names}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return f"GenerationCache({str(self.directory)!r}, ttl={self.ttl}, enabled={self.enabled})"

    # -- keys ----------------------------------------------------------------------
    @staticmethod
    def key(stage: str, **parts: Any) -> str:
        """A stable key: ``"<stage>/<sha256 of canonical JSON of (stage, parts)>"``.

        Parts are what determines the generation (prompt version, model
        fingerprint, output schema, taxonomy version, user fingerprint ...).
        Mapping order does not matter; sets are sorted. Parts named like
        secrets (``api_key``, ``token``, ``password`` ...) or valued like them
        (``sk-...``, ``Bearer ...``) raise :class:`ConfigurationError`, as do
        values that are not JSON data.
        """
        if not stage or not re.fullmatch(r"[A-Za-z0-9_.-]+", stage):
            raise ConfigurationError(f"cache stage must be a short identifier, got {stage!r}")
        canon = _canonical({"stage": stage, "key_format": KEY_FORMAT, "parts": parts}, "key")
        blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return f"{stage}/{hashlib.sha256(blob.encode()).hexdigest()}"

    # -- storage -------------------------------------------------------------------
    def _open(self) -> Any:
        if self._disk is None:
            with self._lock:
                if self._disk is None:
                    import diskcache

                    self.directory.mkdir(parents=True, exist_ok=True)
                    self._disk = diskcache.Cache(
                        str(self.directory),
                        size_limit=self.size_limit,
                        eviction_policy="least-recently-stored",
                    )
        return self._disk

    @property
    def stats(self) -> CacheStats:
        """A snapshot of this process's counters."""
        with self._lock:
            return CacheStats(**{f.name: getattr(self._stats, f.name) for f in fields(CacheStats)})

    def _count(self, **inc: int) -> None:
        with self._lock:
            for k, v in inc.items():
                setattr(self._stats, k, getattr(self._stats, k) + v)

    def _remember(self, key: str, expires_at: float | None, text: str) -> None:
        if self.memory_items == 0:
            return
        with self._lock:
            self._memory[key] = (expires_at, text)
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    def get(self, key: str) -> Any | None:
        """The cached value, or None on a miss (absent, expired, unreadable, bypassed)."""
        if not self.enabled:
            self._count(misses=1)
            return None
        bypass = _BYPASS.get()
        if bypass is not None and bypass[0]:
            self._count(bypassed=1)
            return None
        now = time.time()
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                expires_at, text = entry
                if expires_at is not None and expires_at <= now:
                    del self._memory[key]
                else:
                    self._memory.move_to_end(key)
                    self._stats.hits += 1
                    self._stats.memory_hits += 1
                    return _decode(text)
        try:
            raw, expire_time = self._open().get(key, default=None, expire_time=True, retry=True)
        except Exception:
            # Unpicklable garbage or an unreadable store: a miss, never a crash.
            self._count(misses=1, errors=1)
            self._discard(key)
            return None
        if raw is None:
            self._count(misses=1)
            return None
        try:
            value = _decode(raw)
        except _Corrupt:
            self._count(misses=1, errors=1)
            self._discard(key)
            return None
        self._remember(key, expire_time, raw)
        self._count(hits=1, disk_hits=1)
        return value

    def set(self, key: str, value: Any) -> None:
        """Store JSON-serialisable ``value`` (pydantic models are dumped to JSON)."""
        if not self.enabled:
            return
        bypass = _BYPASS.get()
        if bypass is not None and not bypass[1]:
            return
        text = _encode(value)
        expires_at = time.time() + self.ttl if self.ttl is not None else None
        try:
            self._open().set(key, text, expire=self.ttl, retry=True)
        except Exception:
            self._count(errors=1)
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
        return _decode(_encode(value)), False

    async def aget_or_compute(
        self, key: str, compute: Callable[[], Awaitable[T]]
    ) -> tuple[Any, bool]:
        """Async twin of :meth:`get_or_compute` (``compute`` is a coroutine function)."""
        cached = self.get(key)
        if cached is not None:
            return cached, True
        value = await compute()
        self.set(key, value)
        return _decode(_encode(value)), False

    def delete(self, key: str) -> None:
        """Remove one entry from both layers."""
        self._discard(key)

    def _discard(self, key: str) -> None:
        with self._lock:
            self._memory.pop(key, None)
        try:
            self._open().delete(key, retry=True)
        except Exception:
            self._count(errors=1)

    def clear(self) -> None:
        """Remove every entry (memory and disk, for every process sharing the directory)."""
        with self._lock:
            self._memory.clear()
        self._open().clear(retry=True)

    def close(self) -> None:
        """Close the disk handle (reopened on next use)."""
        with self._lock:
            if self._disk is not None:
                self._disk.close()
                self._disk = None

    def __enter__(self) -> GenerationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        """Entries on disk (including expired ones not yet culled)."""
        n: int = len(self._open())
        return n

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


# -- user fingerprints ---------------------------------------------------------------------


@dataclass(frozen=True)
class UserFingerprint:
    """Which facts about a user determine their generations (and so their cache key).

    The default keys on the user's top aisles and departments (by purchase
    weight), whether they have a history at all, their stated preferences,
    a hash of their notes, ``age_verified``, locale and the listed session
    fields: users who look alike on these share generated themes. Raw user
    and product ids are never part of it. Raise ``top_aisles`` (or set
    ``products=N``) for more personal, less shared generations.
    """

    top_aisles: int = 5
    top_departments: int = 3
    products: int = 0
    preferences: bool = True
    notes: bool = True
    session_keys: tuple[str, ...] = ("season", "occasion")
    age_verified: bool = True
    locale: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def parts(self, user: UserContext, catalog: Catalog) -> dict[str, Any]:
        """The readable features that are hashed; handy to see why two users share."""
        weights: Counter[str] = Counter()
        for it in user.history:
            if it.product_id in catalog:
                weights[it.product_id] += it.quantity
        aisles: Counter[str] = Counter()
        departments: Counter[str] = Counter()
        for pid, w in weights.items():
            p = catalog[pid]
            if p.aisle:
                aisles[p.aisle] += w
            if p.department:
                departments[p.department] += w
        out: dict[str, Any] = {
            "returning": bool(weights),
            "aisles": _top(aisles, self.top_aisles),
            "departments": _top(departments, self.top_departments),
        }
        if self.products:
            out["products"] = [catalog[pid].title for pid in _top(weights, self.products)]
        if self.preferences:
            out["preferences"] = sorted({normalize(p) for p in user.preferences if normalize(p)})
        if self.notes and user.notes and normalize(user.notes):
            out["notes"] = hashlib.sha256(normalize(user.notes).encode()).hexdigest()[:16]
        if self.session_keys:
            out["session"] = {k: user.session[k] for k in self.session_keys if k in user.session}
        if self.age_verified:
            out["age_verified"] = user.age_verified
        if self.locale:
            out["locale"] = user.locale
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    def __call__(self, user: UserContext, catalog: Catalog) -> str:
        canon = _canonical(self.parts(user, catalog), "user")
        blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _top(counts: Counter[str], k: int) -> list[str]:
    """The ``k`` most frequent keys, ties broken alphabetically (stable across runs)."""
    return [x for x, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:k]
