"""The production path: shared Redis cache and page store, batch precompute, page serving.

Optional parts (``redis``, ``precompute`` and ``serve`` extras). Names are imported on
first use, so ``import storefront_sdk`` and the ``storefront`` command never need them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .pages import (
        DiskPageStore,
        MemoryPageStore,
        PageStore,
        PageVersions,
        RedisPageStore,
        StoredPage,
        open_page_store,
        page_versions,
    )
    from .precompute import PrecomputeReport, StorefrontSpec, precompute
    from .redis_cache import RedisGenerationCache
    from .redis_server import RedisServer
    from .synthetic import synthetic_users

_WHERE = {
    "DiskPageStore": "pages",
    "MemoryPageStore": "pages",
    "PageStore": "pages",
    "PageVersions": "pages",
    "RedisPageStore": "pages",
    "StoredPage": "pages",
    "open_page_store": "pages",
    "page_versions": "pages",
    "PrecomputeReport": "precompute",
    "StorefrontSpec": "precompute",
    "precompute": "precompute",
    "RedisGenerationCache": "redis_cache",
    "RedisServer": "redis_server",
    "synthetic_users": "synthetic",
    "create_app": "app",
}

__all__ = [
    "DiskPageStore",
    "MemoryPageStore",
    "PageStore",
    "PageVersions",
    "PrecomputeReport",
    "RedisGenerationCache",
    "RedisPageStore",
    "RedisServer",
    "StoredPage",
    "StorefrontSpec",
    "create_app",
    "open_page_store",
    "page_versions",
    "precompute",
    "synthetic_users",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    mod = import_module(f".{module}", __name__)
    # Bind every name of that module now: importing ``.precompute`` set the package's
    # ``precompute`` attribute to the module, and the function must win.
    for other, where in _WHERE.items():
        if where == module:
            globals()[other] = getattr(mod, other)
    return getattr(mod, name)
