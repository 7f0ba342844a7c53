"""The generation cache on Redis: generations shared across replicas and machines.

:class:`RedisGenerationCache` has the contract of
:class:`~storefront_sdk.cache.GenerationCache` (the same keys, JSON envelope, TTLs,
memory LRU in front, stats, ``bypass``) with Redis as the shared store instead of
diskcache. Entries live under ``<prefix><key>`` (default prefix ``storefront:gen:``);
a TTL becomes Redis' own expiry (``SET ... PX``), so every replica sees the same
lifetime. A Redis that is down or slow turns reads into misses and writes into
no-ops (counted in ``stats.errors``): a page is built, never failed, because of it.

Requires the ``redis`` extra (``pip install "storefront-sdk[redis]"``).
"""

from __future__ import annotations

import time
from typing import Any

from ..cache import GenerationCache
from ..exceptions import ConfigurationError

__all__ = ["RedisGenerationCache"]


def redis_client(url: str, *, timeout: float = 1.0, decode: bool = False) -> Any:
    """A ``redis.Redis`` for ``url`` with short connect/read timeouts."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(f"expected a redis:// URL, got {url!r}")
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            'Redis support needs the redis package: pip install "storefront-sdk[redis]"'
        ) from exc
    return redis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )


class _RedisStore:
    """The storage primitives the cache needs, on one Redis database."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def get(self, key: str) -> tuple[str | None, float | None]:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.prefix + key)
        pipe.pttl(self.prefix + key)
        raw, pttl = pipe.execute()
        if raw is None:
            return None, None
        expire_at = time.time() + pttl / 1000.0 if pttl is not None and pttl > 0 else None
        return raw, expire_at

    def set(self, key: str, text: str, ttl: float | None) -> None:
        px = max(1, int(ttl * 1000)) if ttl is not None else None
        self.client.set(self.prefix + key, text, px=px)

    def delete(self, key: str) -> None:
        self.client.delete(self.prefix + key)

    def keys(self) -> list[str]:
        return [str(k) for k in self.client.scan_iter(match=self.prefix + "*", count=1000)]

    def clear(self) -> None:
        batch = self.keys()
        for i in range(0, len(batch), 500):
            self.client.delete(*batch[i : i + 500])

    def close(self) -> None:
        self.client.close()


class RedisGenerationCache(GenerationCache):
    """Memory LRU in front of Redis, for JSON-serialisable generations.

    ``url`` is a ``redis://host:port/db`` URL; ``prefix`` namespaces the keys
    (several SDK deployments may share a Redis); ``timeout`` bounds each Redis
    call in seconds. Other arguments are those of
    :class:`~storefront_sdk.cache.GenerationCache`. Instances pickle (the
    connection is reopened), so the cache can be handed to Ray workers.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float | None = None,
        memory_items: int = 1024,
        enabled: bool = True,
        prefix: str = "storefront:gen:",
        timeout: float = 1.0,
    ) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(f"RedisGenerationCache needs a redis:// URL, got {url!r}")
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        super().__init__(None, ttl=ttl, memory_items=memory_items, enabled=enabled)

    def __getstate__(self) -> dict[str, Any]:
        names = ("directory", "ttl", "memory_items", "enabled", "size_limit", "url", "prefix",
                 "timeout")  # fmt: skip
        return {k: getattr(self, k) for k in names}

    def __repr__(self) -> str:
        return (
            f"RedisGenerationCache({_redact(self.url)!r}, ttl={self.ttl}, enabled={self.enabled})"
        )

    def _open(self) -> Any:
        if self._disk is None:
            with self._lock:
                if self._disk is None:
                    client = redis_client(self.url, timeout=self.timeout, decode=True)
                    self._disk = _DiskcacheFacade(_RedisStore(client, self.prefix))
        return self._disk


class _DiskcacheFacade:
    """The slice of diskcache's API that :class:`GenerationCache` calls, over Redis."""

    def __init__(self, store: _RedisStore) -> None:
        self.store = store

    def get(
        self, key: str, default: Any = None, expire_time: bool = False, retry: bool = True
    ) -> Any:
        raw, expire_at = self.store.get(key)
        if raw is None:
            return (default, None) if expire_time else default
        return (raw, expire_at) if expire_time else raw

    def set(self, key: str, text: str, expire: float | None = None, retry: bool = True) -> None:
        self.store.set(key, text, expire)

    def delete(self, key: str, retry: bool = True) -> None:
        self.store.delete(key)

    def clear(self, retry: bool = True) -> None:
        self.store.clear()

    def __len__(self) -> int:
        return len(self.store.keys())

    def close(self) -> None:
        self.store.close()


def _redact(url: str) -> str:
    """``redis://:secret@host`` -> ``redis://***@host``: never print a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
