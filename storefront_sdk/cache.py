"""A cache of generations (themes, keywords, judge verdicts), shared across threads and processes.

Generation is slow and pages are requested often, so generated themes and
keywords are stored under a key derived from *everything that determines
them*: the stage, the prompt template version, the model fingerprint, the
output schema, the taxonomy/catalog version and a coarse *user fingerprint*
(see :class:`UserFingerprint`), so that similar users share generations.

Two layers. :class:`BaseGenerationCache` holds everything a storage backend
does not need to know: key derivation, the JSON envelope, TTL (against an
injectable ``clock``), statistics, the in-memory LRU, bypass and the public
methods. A backend implements five primitives (``_load``, ``_store``,
``_delete``, ``_clear``, ``_size``). :class:`GenerationCache` is the embedded
backend: one SQLite file in a directory, written and read with five fixed SQL
statements, JSON text only. Nothing read from the file is ever unpickled,
opened as a path or turned into a setting, so a shared or tampered cache
directory can make a lookup miss, never run code or touch another file (see
``docs/caching.md`` for why this is not diskcache any more).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import stat
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from .exceptions import ConfigurationError, StorefrontError
from .text import normalize
from .tracing import annotate, event

if TYPE_CHECKING:
    from .catalog import Catalog
    from .types import UserContext

__all__ = [
    "BaseGenerationCache",
    "CacheError",
    "CacheReadOnlyError",
    "CacheStats",
    "GenerationCache",
    "UserFingerprint",
    "default_cache_dir",
    "secret_reason",
]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Bumped when the key derivation changes shape.
KEY_FORMAT = 1
_ENVELOPE = "storefront-generation"
#: Bumped when the stored envelope changes shape (2: ``expires_at`` inside the envelope).
ENVELOPE_VERSION = 2
#: The embedded backend's database file inside the cache directory.
DB_NAME = "generations.sqlite3"

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


def default_cache_dir() -> Path:
    """``$STOREFRONT_CACHE_DIR``, else ``~/.cache/storefront_sdk``."""
    env = os.environ.get("STOREFRONT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "storefront_sdk"


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


# -- secrets in key parts ------------------------------------------------------------------
#
# A key is a hash, but a credential has no business determining (or being logged next to) a
# generation, and a key part that carries one is a wiring mistake. Only what *is* a
# credential is refused: a part NAMED like one, or a value SHAPED like a real one. Ordinary
# text ("Bearer market", "token ring cake", "secret santa") passes.

_SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:api[_-]?key|apikey|x[_-]api[_-]key|secret|client[_-]?secret|secret[_-]?key"
    r"|passw(?:or)?d|passphrase|authori[sz]ation|credentials?|cookie|set[_-]cookie"
    r"|private[_-]?key|access[_-]?key|signing[_-]?key|token|bearer)$",
    re.I,
)
"""A part name ending in a credential word (``api_key``, ``Authorization``, ``access_token``)."""

_KEYISH_NAME = re.compile(r"(?:^|[_\-.])(?:key|license[_-]?key)$", re.I)
_BLOB = re.compile(r"[A-Fa-f0-9]{32,}|[A-Za-z0-9+/_-]{40,}={0,2}")
"""A long hex or base64 blob: a credential when its part is named ``key``/``*_key``."""

_CREDENTIAL_SHAPES = (
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic style API keys
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}"  # GitHub tokens
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API key
)
_HEADER = r"\s*(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/-]{20,}=*\s*"
"""An Authorization header value: the scheme then a 20+ character credential, nothing else."""

_SHAPES = re.compile(_CREDENTIAL_SHAPES)
_HEADER_VALUE = re.compile(rf"\A{_HEADER}\Z", re.I)
_HEADER_IN_JOINED = re.compile(rf"(?:\A|\x00){_HEADER}(?=\x00|\Z)", re.I)
# Literal fragments every shape above contains: a C-speed ``in`` test skips the regexes
# for ordinary text (a 100-keyword shortlist, a prompt) -- key derivation is on every call.
_SHAPE_HINTS = (
    "sk-",
    "eyJ",
    "hp_",
    "ho_",
    "hu_",
    "hs_",
    "hr_",
    "github_pat_",
    "xox",
    "AKIA",
    "AIza",
)
_HEADER_HINTS = ("earer", "EARER", "asic", "ASIC", "oken", "OKEN")


def _secret_shaped(text: str, *, joined: bool = False) -> bool:
    """Whether ``text`` (or an item of a ``"\x00"``-joined list) has a credential's shape."""
    if any(h in text for h in _SHAPE_HINTS) and _SHAPES.search(text):
        return True
    if any(h in text for h in _HEADER_HINTS):
        header = _HEADER_IN_JOINED if joined else _HEADER_VALUE
        return header.search(text) is not None
    return False


def secret_reason(name: str, value: Any = None) -> str | None:
    """Why a key part named ``name`` with ``value`` is a credential, or None when it is not.

    Refused: names ending in a credential word (``api_key``, ``authorization``,
    ``access_token``, ``password``, ``secret``, ``cookie`` ...); values shaped
    like real credentials anywhere in the text (``sk-`` + 20 characters, JWTs,
    GitHub/Slack/AWS/Google key formats); a whole value that is an
    ``Authorization`` header (``Bearer`` + a 20+ character token); a long
    hex/base64 blob under a name ending in ``key``. The reason never quotes the value.
    """
    if name and _secret_name(name):
        return f"its name {name!r} is a credential name"
    if isinstance(value, str):
        if _secret_shaped(value):
            return "its value has the shape of a credential"
        if name and _KEYISH_NAME.search(name) and _BLOB.fullmatch(value.strip()):
            return f"its value is a key-like blob named {name!r}"
    return None


@lru_cache(maxsize=1024)
def _secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


_STR_ONLY = {str}


def _refuse(path: str, reason: str) -> ConfigurationError:
    return ConfigurationError(f"cache key part {path} looks like a secret: {reason}")


def _canonical(value: Any, path: str, name: str = "") -> Any:
    """A JSON-ready, order-stable form of a key part; rejects secrets and opaque objects."""
    kind = type(value)  # exact types first: ABC isinstance checks cost a microsecond each
    if kind is str:
        if _secret_shaped(value) or (name and _KEYISH_NAME.search(name)):
            reason = secret_reason(name, value)
            if reason:
                raise _refuse(path, reason)
        return value
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump(mode="json"), path, name)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = str(k)
            if _secret_name(key):
                raise _refuse(f"{path}.{key}", f"its name {key!r} is a credential name")
            out[key] = _canonical(v, f"{path}.{key}", key)
        return out
    if isinstance(value, (list, tuple)):
        # Lists of strings (shortlists: ~100 items, chat messages) are checked in one pass.
        if set(map(type, value)) <= _STR_ONLY and not (
            _secret_shaped("\x00".join(value), joined=True) or (name and _KEYISH_NAME.search(name))
        ):
            return list(value)
        return [_canonical(v, f"{path}[{i}]", name) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_canonical(v, path, name) for v in value]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    if isinstance(value, str):
        return _canonical(str(value), path, name)
    if isinstance(value, (bool, int)):
        return int(value) if not isinstance(value, bool) else bool(value)
    if isinstance(value, float):
        return repr(value)  # exact and stable, also for nan/inf
    raise ConfigurationError(
        f"cache key part {path} of type {type(value).__name__} is not JSON-serialisable"
    )


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
        if not stage or not re.fullmatch(r"[A-Za-z0-9_.-]+", stage):
            raise ConfigurationError(f"cache stage must be a short identifier, got {stage!r}")
        canon = _canonical({"stage": stage, "key_format": KEY_FORMAT, "parts": parts}, "key")
        blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return f"{stage}/{hashlib.sha256(blob.encode()).hexdigest()}"

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


# -- the embedded backend: one SQLite file ---------------------------------------------------------

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL, expire_at REAL, stored_at REAL NOT NULL,"
    " size INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_stored_at ON entries (stored_at)",
)
# The only statements ever run on the file. Values are selected only when they are TEXT of
# at most ``max_value_bytes`` characters: a huge or binary row is never even loaded.
_SELECT = (
    "SELECT CASE WHEN typeof(value) = 'text' AND length(value) <= ? THEN value END,"
    " typeof(value), length(value) FROM entries WHERE key = ?"
)
_UPSERT = (
    "INSERT OR REPLACE INTO entries (key, value, expire_at, stored_at, size) VALUES (?, ?, ?, ?, ?)"
)
_DELETE = "DELETE FROM entries WHERE key = ?"
_EXPIRE = "DELETE FROM entries WHERE expire_at IS NOT NULL AND expire_at <= ?"
_TOTAL = "SELECT count(*), coalesce(sum(size), 0) FROM entries"
_EVICT = "DELETE FROM entries WHERE key IN (SELECT key FROM entries ORDER BY stored_at LIMIT ?)"


def _no_write_bits(path: Path) -> bool:
    """True when nobody may write ``path`` (mode bits), so root treats it as read-only too."""
    return not (path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


class GenerationCache(BaseGenerationCache):
    """Memory LRU in front of one SQLite file in ``directory``, for JSON-serialisable values.

    ``ttl`` (seconds, against ``clock``) applies to both layers; ``None`` keeps
    entries until ``size_limit`` (bytes of stored text) evicts the least
    recently stored. ``enabled=False`` turns every read into a miss and every
    write into a no-op. Values over ``max_value_bytes`` are neither stored nor
    read. The constructor is cheap: the file opens on first use. A directory
    that cannot be written (or has no write permission bits at all, which root
    honours too) is opened read-only: hits are served, writes are skipped,
    ``clear()`` raises :class:`CacheReadOnlyError`. Instances pickle (the handle
    is reopened), so a cache can be handed to worker processes.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        ttl: float | None = None,
        memory_items: int = 1024,
        enabled: bool = True,
        size_limit: int = 2**30,
        max_value_bytes: int = 2**20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if size_limit <= 0 or max_value_bytes <= 0:
            raise ConfigurationError("size_limit and max_value_bytes must be positive")
        self.directory = (
            Path(directory).expanduser() if directory is not None else default_cache_dir()
        )
        self.size_limit = size_limit
        self.max_value_bytes = max_value_bytes
        super().__init__(ttl=ttl, memory_items=memory_items, enabled=enabled, clock=clock)

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self._con: sqlite3.Connection | None = None
        self._pid = 0
        self._read_only = False
        self._absent = False  # read-only directory without a database: every read misses
        self._sets_since_check = 0

    _SETTINGS = ("directory", "ttl", "memory_items", "enabled", "size_limit", "max_value_bytes")

    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in self._SETTINGS}
        state["clock"] = self.clock
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return f"GenerationCache({str(self.directory)!r}, ttl={self.ttl}, enabled={self.enabled})"

    @property
    def path(self) -> Path:
        """The database file."""
        return self.directory / DB_NAME

    @property
    def read_only(self) -> bool:
        """Whether the store was opened read-only (known after first use)."""
        return self._read_only

    # -- connection ----------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection | None:
        """The open connection (None: read-only and empty). Raises :class:`CacheError`."""
        con = self._con
        if con is not None and self._pid == os.getpid():
            return con
        with self._lock:
            if self._con is not None and self._pid == os.getpid():
                return self._con
            self._con = None  # a forked child never reuses its parent's handle
            try:
                self._con = self._open()
            except CacheError:
                raise
            except (sqlite3.Error, OSError) as exc:
                raise CacheError(f"cannot open the generation cache {self.path}: {exc}") from exc
            self._pid = os.getpid()
            return self._con

    def _open(self) -> sqlite3.Connection | None:
        directory, path = self.directory, self.path
        for p in (path, path.with_name(DB_NAME + "-wal"), path.with_name(DB_NAME + "-shm")):
            if p.is_symlink():
                raise CacheError(f"{p} is a symbolic link; a cache file must be a plain file")
        if directory.exists() and not directory.is_dir():
            raise CacheError(f"cache directory {directory} is not a directory")
        writable = not directory.exists() or (
            os.access(directory, os.W_OK) and not _no_write_bits(directory)
        )
        if writable and path.exists():
            writable = os.access(path, os.W_OK) and not _no_write_bits(path)
        if not writable:
            self._read_only = True
            if not path.exists():
                self._absent = True
                return None
            # A WAL that still holds pages needs SQLite's shared-memory index (mode=ro);
            # otherwise ``immutable`` reads the file without creating or locking anything.
            wal = path.with_name(DB_NAME + "-wal")
            flags = "mode=ro" if wal.exists() and wal.stat().st_size else "mode=ro&immutable=1"
            con = sqlite3.connect(
                f"file:{quote(str(path.resolve()))}?{flags}",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
            )
            con.execute("PRAGMA trusted_schema = OFF")
            con.execute(_SELECT, (0, "")).fetchall()  # fails now if this is not a cache file
            return con
        directory.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(
            str(path), timeout=30.0, check_same_thread=False, isolation_level=None
        )
        try:
            con.execute("PRAGMA trusted_schema = OFF")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            for statement in _SCHEMA:
                con.execute(statement)
            con.execute(_SELECT, (0, "")).fetchall()
        except BaseException:
            con.close()
            raise
        self._read_only = False
        return con

    def _run(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        con = self._connection()
        if con is None:
            return []
        try:
            with self._lock:
                return con.execute(statement, params).fetchall()
        except sqlite3.Error as exc:
            raise CacheError(f"generation cache {self.path}: {exc}") from exc

    def _writable(self) -> bool:
        self._connection()
        return not self._read_only

    # -- primitives ------------------------------------------------------------------------
    def _load(self, key: str) -> str | None:
        rows = self._run(_SELECT, (self.max_value_bytes, key))
        if not rows:
            return None
        text, kind, length = rows[0]
        if text is None:
            if kind == "text":
                raise _Corrupt(f"oversized entry ({length} characters)")
            raise _Corrupt(f"stored {kind}, expected text")
        if not isinstance(text, str):
            raise _Corrupt(f"stored {type(text).__name__}, expected text")
        return text

    def _store(self, key: str, text: str, expire_at: float | None) -> None:
        if not self._writable():
            raise CacheReadOnlyError(f"the generation cache in {self.directory} is read-only")
        size = len(text.encode("utf-8"))
        if size > self.max_value_bytes:
            raise ConfigurationError(
                f"value of {size} bytes is over max_value_bytes={self.max_value_bytes}"
            )
        self._run(_UPSERT, (key, text, expire_at, time.time(), size))
        self._sets_since_check += 1
        if self._sets_since_check >= 64:
            self._sets_since_check = 0
            self._cull()

    def _cull(self) -> None:
        """Drop expired entries, then the least recently stored beyond ``size_limit``."""
        self._run(_EXPIRE, (self.clock(),))
        for _ in range(100):
            ((count, total),) = self._run(_TOTAL, ())
            if total <= self.size_limit or not count:
                return
            self._run(_EVICT, (max(1, count // 10),))

    def _delete(self, key: str) -> None:
        if self._writable():
            self._run(_DELETE, (key,))

    def _clear(self) -> None:
        if not self._writable():
            raise CacheReadOnlyError(f"the generation cache in {self.directory} is read-only")
        self._run("DELETE FROM entries", ())

    def _size(self) -> int:
        rows = self._run(_TOTAL, ())
        return int(rows[0][0]) if rows else 0

    def _close(self) -> None:
        if self._con is not None:
            with suppress(sqlite3.Error):
                self._con.close()
            self._con = None

    def __enter__(self) -> GenerationCache:
        return self


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
