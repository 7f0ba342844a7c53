"""The generation cache on Redis: generations shared across replicas and machines.

:class:`RedisGenerationCache` is a :class:`~storefront_sdk.cache.BaseGenerationCache`
(the same keys, JSON envelope, TTL, memory LRU in front, stats and ``bypass`` as the
embedded :class:`~storefront_sdk.cache.GenerationCache`) whose store is Redis. Entries
live under ``<prefix><key>`` (default prefix ``storefront:gen:``); a TTL also becomes
Redis' own expiry (``SET ... PX``), so expired entries leave Redis by themselves. A
Redis that is down or slow turns reads into misses and writes into no-ops (the base
class counts and logs them): a page is built, never failed, because of it.

Requires the ``redis`` extra (``pip install "storefront-sdk[redis]"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..cache import BaseGenerationCache, CacheError
from ..exceptions import ConfigurationError

__all__ = ["RedisGenerationCache", "redis_client"]

_SCHEMES = ("redis://", "rediss://", "unix://")


def redis_client(url: str, *, timeout: float = 1.0, decode: bool = False) -> Any:
    """A ``redis.Redis`` for ``url`` with short connect/read timeouts."""
    if not url.startswith(_SCHEMES):
        raise ConfigurationError(f"expected a redis:// URL, got {_redact(url)!r}")
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


class RedisGenerationCache(BaseGenerationCache):
    """Memory LRU in front of Redis, for JSON-serialisable generations.

    ``url`` is a ``redis://host:port/db`` URL; ``prefix`` namespaces the keys
    (several deployments may share a Redis); ``timeout`` bounds each Redis call in
    seconds. ``ttl``, ``memory_items``, ``enabled`` and ``clock`` are those of
    :class:`~storefront_sdk.cache.BaseGenerationCache`. Instances pickle (the
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not url.startswith(_SCHEMES):
            raise ConfigurationError(
                f"RedisGenerationCache needs a redis:// URL, got {_redact(url)!r}"
            )
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        super().__init__(ttl=ttl, memory_items=memory_items, enabled=enabled, clock=clock)

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        names = ("url", "prefix", "timeout", "ttl", "memory_items", "enabled", "clock")
        return {k: getattr(self, k) for k in names}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return (
            f"RedisGenerationCache({_redact(self.url)!r}, prefix={self.prefix!r}, "
            f"ttl={self.ttl}, enabled={self.enabled})"
        )

    def _redis(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = redis_client(self.url, timeout=self.timeout, decode=True)
        return self._client

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        import redis

        try:
            return fn(self._redis())
        except redis.RedisError as exc:
            raise CacheError(f"Redis at {_redact(self.url)}: {exc}") from None

    # -- primitives ----------------------------------------------------------------------
    def _load(self, key: str) -> str | None:
        value = self._call(lambda r: r.get(self.prefix + key))
        return None if value is None else str(value)

    def _store(self, key: str, text: str, expire_at: float | None) -> None:
        px = None if expire_at is None else max(1, int((expire_at - self.clock()) * 1000))
        self._call(lambda r: r.set(self.prefix + key, text, px=px))

    def _delete(self, key: str) -> None:
        self._call(lambda r: r.delete(self.prefix + key))

    def _keys(self) -> list[str]:
        def scan(r: Any) -> list[str]:
            return [str(k) for k in r.scan_iter(match=self.prefix + "*", count=1000)]

        keys: list[str] = self._call(scan)
        return keys

    def _clear(self) -> None:
        keys = self._keys()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]

            def delete(r: Any, c: list[str] = chunk) -> Any:
                return r.delete(*c)

            self._call(delete)

    def _size(self) -> int:
        return len(self._keys())

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _redact(url: str) -> str:
    """``redis://:secret@host`` -> ``redis://***@host``: never print a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
