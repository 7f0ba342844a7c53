"""The embedded generation cache: a memory LRU in front of one SQLite file.

The store runs a handful of fixed SQL statements on one table and only ever reads a
``TEXT`` column, parsed as JSON by the base class: nothing read from the file
is unpickled, opened as a path or turned into a setting, so a shared or
tampered directory can make a lookup miss, never run code or touch another
file. See ``docs/caching.md`` for why this is not diskcache any more.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..exceptions import ConfigurationError
from .base import BaseGenerationCache, CacheError, CacheReadOnlyError, _Corrupt

__all__ = ["DB_NAME", "GenerationCache", "default_cache_dir"]

#: The embedded backend's database file inside the cache directory.
DB_NAME = "generations.sqlite3"


def default_cache_dir() -> Path:
    """``$STOREFRONT_CACHE_DIR``, else ``~/.cache/storefront_sdk``."""
    env = os.environ.get("STOREFRONT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "storefront_sdk"


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL, expire_at REAL, stored_at REAL NOT NULL,"
    " size INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_stored_at ON entries (stored_at)",
    "CREATE INDEX IF NOT EXISTS entries_expire_at ON entries (expire_at)"
    " WHERE expire_at IS NOT NULL",
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
_TOTAL = "SELECT count(*) FROM entries"
# Bytes of the file in use (pages not on the free list): O(1), unlike summing every row.
_PAGES = ("PRAGMA page_count", "PRAGMA freelist_count", "PRAGMA page_size")
_EVICT = "DELETE FROM entries WHERE key IN (SELECT key FROM entries ORDER BY stored_at LIMIT ?)"


def _no_write_bits(path: Path) -> bool:
    """True when nobody may write ``path`` (mode bits), so root treats it as read-only too."""
    return not (path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


class GenerationCache(BaseGenerationCache):
    """Memory LRU in front of one SQLite file in ``directory``, for JSON-serialisable values.

    ``ttl`` (seconds, against ``clock``) applies to both layers; ``None`` keeps
    entries until ``size_limit`` (bytes of the file in use) evicts the least
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

    def _used_bytes(self) -> int:
        pages, free, size = (int(self._run(p, ())[0][0]) for p in _PAGES)
        return (pages - free) * size

    def _cull(self) -> None:
        """Drop expired entries, then the least recently stored while over ``size_limit``."""
        self._run(_EXPIRE, (self.clock(),))
        for _ in range(100):
            if self._used_bytes() <= self.size_limit:
                return
            ((count,),) = self._run(_TOTAL, ())
            if not count:
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
