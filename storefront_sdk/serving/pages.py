"""Page stores: precomputed pages, with the versions they were built for.

A stored page is a :class:`StoredPage` (the :class:`~storefront_sdk.types.Page`, the
catalog / taxonomy / model versions it was built with, when and how long it took),
kept as pre-serialised JSON bytes so a server can return it without parsing or
re-validating it. One record is three lines of bytes::

    <versions tag: 32 hex chars>\\n<what the page shows, compact JSON>\\n<StoredPage JSON>

The tag lets a batch job skip pages already built for the same versions (one short
read per page); the middle line (page id, placements and their product ids) is what
an exposure event records. Stores:

* :class:`MemoryPageStore`: a dict, for one process (tests, notebooks);
* :class:`DiskPageStore`: one SQLite file in a directory, the embedded default,
  shared by the processes of one machine;
* :class:`RedisPageStore`: Redis, shared by every machine (``redis://`` URLs).

:func:`open_page_store` picks one from a URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..exceptions import ConfigurationError
from ..types import Page

if TYPE_CHECKING:
    from ..storefront import Storefront

__all__ = [
    "DiskPageStore",
    "MemoryPageStore",
    "PageStore",
    "PageVersions",
    "RedisPageStore",
    "StoredPage",
    "encode_stored_page",
    "open_page_store",
    "page_versions",
]

TAG_LEN = 32


class PageVersions(BaseModel):
    """What a page was built from: a page is stale when any of these change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    catalog: str
    taxonomy: str
    model: str

    @property
    def tag(self) -> str:
        """A fixed-length fingerprint of the three versions."""
        blob = f"{self.catalog}\x00{self.taxonomy}\x00{self.model}".encode()
        return hashlib.sha256(blob).hexdigest()[:TAG_LEN]


class StoredPage(BaseModel):
    """A precomputed page and its provenance."""

    model_config = ConfigDict(extra="forbid")

    user_id: str
    variant: str = "generative"
    page_id: str
    versions: PageVersions
    built_at: datetime
    build_ms: float = Field(ge=0.0)
    fallbacks: int = Field(default=0, ge=0)
    page: Page

    @classmethod
    def from_page(
        cls, page: Page, versions: PageVersions, *, variant: str = "generative"
    ) -> StoredPage:
        body = orjson.dumps(
            [page.user_id, variant, versions.tag,
             [(p.theme.title, p.product_ids) for p in page.placements]]
        )  # fmt: skip
        return cls(
            user_id=page.user_id,
            variant=variant,
            page_id=hashlib.sha256(body).hexdigest()[:20],
            versions=versions,
            built_at=datetime.now(timezone.utc),
            build_ms=page.trace.total_ms,
            fallbacks=len(page.trace.fallbacks),
            page=page,
        )


def page_versions(storefront: Storefront) -> PageVersions:
    """The versions of ``storefront``: catalog, taxonomy, model (``"baseline"`` without one)."""
    llm = storefront.llm
    return PageVersions(
        catalog=storefront.catalog.version,
        taxonomy=storefront.taxonomy.version,
        model=llm.fingerprint if llm is not None else "baseline",
    )


def shown_json(stored: StoredPage) -> bytes:
    """What the page shows: page id and, per placement, its title, source and product ids."""
    return orjson.dumps(
        {
            "page_id": stored.page_id,
            "placements": [
                {"title": p.theme.title, "source": p.source, "products": p.product_ids}
                for p in stored.page.placements
            ],
        }
    )


def encode_stored_page(stored: StoredPage) -> bytes:
    """The stored record: tag, shown JSON and page JSON, one line each."""
    envelope = stored.model_dump_json().encode()
    return stored.versions.tag.encode() + b"\n" + shown_json(stored) + b"\n" + envelope


def split_record(record: bytes) -> tuple[str, bytes, bytes]:
    """``(tag, shown JSON, StoredPage JSON)`` of a stored record."""
    tag, shown, envelope = record.split(b"\n", 2)
    return tag.decode(), shown, envelope


class PageStore(ABC):
    """Where precomputed pages live, keyed by (variant, user id).

    Backends implement byte-level primitives; validation happens only in
    :meth:`get` (the serving path reads :meth:`get_record` and returns bytes).
    """

    url: str = ""

    # -- primitives ------------------------------------------------------------------
    @abstractmethod
    def get_record(self, variant: str, user_id: str) -> bytes | None:
        """The raw record, or None."""

    @abstractmethod
    def put_record(self, variant: str, user_id: str, record: bytes) -> None:
        """Store a raw record (overwrites)."""

    @abstractmethod
    def tags(self, variant: str, user_ids: Sequence[str]) -> list[str | None]:
        """The versions tag stored for each user (None where nothing is stored)."""

    @abstractmethod
    def count(self) -> int:
        """Records stored (every variant)."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every record."""

    def ping(self) -> bool:
        """True when the store answers."""
        return True

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections (reopened on next use)."""

    async def aget_record(self, variant: str, user_id: str) -> bytes | None:
        """Async :meth:`get_record` (the default calls the sync one: local stores are fast)."""
        return self.get_record(variant, user_id)

    async def aput_record(self, variant: str, user_id: str, record: bytes) -> None:
        self.put_record(variant, user_id, record)

    async def aping(self) -> bool:
        return self.ping()

    # -- typed API -------------------------------------------------------------------
    def put(self, stored: StoredPage) -> None:
        """Store a page under (its variant, its user id)."""
        self.put_record(stored.variant, stored.user_id, encode_stored_page(stored))

    def get(self, user_id: str, variant: str = "generative") -> StoredPage | None:
        """The stored page, validated, or None."""
        record = self.get_record(variant, user_id)
        if record is None:
            return None
        return StoredPage.model_validate_json(split_record(record)[2])

    def missing(
        self, user_ids: Iterable[str], versions: PageVersions, variant: str = "generative"
    ) -> list[str]:
        """The users without a page stored for ``versions`` (in input order)."""
        ids = list(user_ids)
        out: list[str] = []
        for i in range(0, len(ids), 1000):
            chunk = ids[i : i + 1000]
            for uid, tag in zip(chunk, self.tags(variant, chunk), strict=True):
                if tag != versions.tag:
                    out.append(uid)
        return out

    def __len__(self) -> int:
        return self.count()

    def __enter__(self) -> PageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_id(user_id: str) -> str:
    if not user_id or len(user_id) > 256:
        raise ConfigurationError(f"user id must be 1-256 characters, got {user_id!r:.60}")
    return user_id


class MemoryPageStore(PageStore):
    """Pages in a dict: one process only."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._data: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def get_record(self, variant: str, user_id: str) -> bytes | None:
        return self._data.get((variant, user_id))

    def put_record(self, variant: str, user_id: str, record: bytes) -> None:
        with self._lock:
            self._data[(variant, _check_id(user_id))] = record

    def tags(self, variant: str, user_ids: Sequence[str]) -> list[str | None]:
        out: list[str | None] = []
        for uid in user_ids:
            rec = self._data.get((variant, uid))
            out.append(rec[:TAG_LEN].decode() if rec is not None else None)
        return out

    def count(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class DiskPageStore(PageStore):
    """Pages in one SQLite file in ``directory`` (WAL mode): shared by one machine's processes.

    The embedded default: no server, safe for concurrent readers and writers in
    several processes (a Ray job on one machine and the page server).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self.url = f"file://{self.directory}"
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.directory / "pages.sqlite3", timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS pages (variant TEXT NOT NULL, user_id TEXT NOT NULL,"
                " tag TEXT NOT NULL, record BLOB NOT NULL, PRIMARY KEY (variant, user_id))"
            )
            db.commit()
            self._local.db = db
        return db

    def get_record(self, variant: str, user_id: str) -> bytes | None:
        row = (
            self._db()
            .execute(
                "SELECT record FROM pages WHERE variant = ? AND user_id = ?", (variant, user_id)
            )
            .fetchone()
        )
        return bytes(row[0]) if row is not None else None

    def put_record(self, variant: str, user_id: str, record: bytes) -> None:
        db = self._db()
        tag = record[:TAG_LEN].decode()
        with db:
            db.execute(
                "INSERT OR REPLACE INTO pages (variant, user_id, tag, record) VALUES (?, ?, ?, ?)",
                (variant, _check_id(user_id), tag, record),
            )

    def tags(self, variant: str, user_ids: Sequence[str]) -> list[str | None]:
        db = self._db()
        found: dict[str, str] = {}
        ids = list(user_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for uid, tag in db.execute(
                f"SELECT user_id, tag FROM pages WHERE variant = ? AND user_id IN ({marks})",
                (variant, *chunk),
            ):
                found[uid] = tag
        return [found.get(uid) for uid in ids]

    def count(self) -> int:
        n: int = self._db().execute("SELECT COUNT(*) FROM pages").fetchone()[0]
        return n

    def clear(self) -> None:
        db = self._db()
        with db:
            db.execute("DELETE FROM pages")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class RedisPageStore(PageStore):
    """Pages in Redis under ``<prefix><variant>:<user id>``: shared by every machine.

    ``timeout`` bounds every call (seconds): a serving process must not wait
    long on a Redis that is down. The async methods use ``redis.asyncio`` on
    the caller's event loop (one connection pool per loop).
    """

    def __init__(self, url: str, *, prefix: str = "storefront:page:", timeout: float = 1.0):
        from .redis_cache import redis_client

        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self._client = redis_client(url, timeout=timeout)
        self._aclients: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "prefix": self.prefix, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], prefix=state["prefix"], timeout=state["timeout"])  # type: ignore[misc]

    def _key(self, variant: str, user_id: str) -> str:
        return f"{self.prefix}{variant}:{user_id}"

    def get_record(self, variant: str, user_id: str) -> bytes | None:
        value = self._client.get(self._key(variant, user_id))
        return bytes(value) if value is not None else None

    def put_record(self, variant: str, user_id: str, record: bytes) -> None:
        self._client.set(self._key(variant, _check_id(user_id)), record)

    def tags(self, variant: str, user_ids: Sequence[str]) -> list[str | None]:
        pipe = self._client.pipeline(transaction=False)
        for uid in user_ids:
            pipe.getrange(self._key(variant, uid), 0, TAG_LEN - 1)
        return [bytes(v).decode() if v else None for v in pipe.execute()]

    def count(self) -> int:
        return sum(1 for _ in self._client.scan_iter(match=self.prefix + "*", count=1000))

    def clear(self) -> None:
        keys = list(self._client.scan_iter(match=self.prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            self._client.delete(*keys[i : i + 500])

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._client.close()
        self._aclients.clear()

    def _aclient(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._aclients.get(id(loop))
        if client is None:
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
            )
            self._aclients[id(loop)] = client
        return client

    async def aget_record(self, variant: str, user_id: str) -> bytes | None:
        value = await self._aclient().get(self._key(variant, user_id))
        return bytes(value) if value is not None else None

    async def aput_record(self, variant: str, user_id: str, record: bytes) -> None:
        await self._aclient().set(self._key(variant, _check_id(user_id)), record)

    async def aping(self) -> bool:
        try:
            return bool(await self._aclient().ping())
        except Exception:
            return False


def open_page_store(url: str) -> PageStore:
    """``redis://...`` -> Redis; ``memory://`` -> in-process; ``file:///dir`` or a path -> disk."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisPageStore(url)
    if url == "memory://":
        return MemoryPageStore()
    if url.startswith("file://"):
        return DiskPageStore(url[len("file://") :])
    if "://" in url:
        raise ConfigurationError(
            f"--store {url}: expected redis://host:port/db, file:///directory, a directory "
            "or memory://"
        )
    return DiskPageStore(url)
