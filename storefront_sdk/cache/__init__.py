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
backend: one SQLite file in a directory, written and read with a handful of fixed
SQL statements, JSON text only. Nothing read from the file is ever unpickled,
opened as a path or turned into a setting, so a shared or tampered cache
directory can make a lookup miss, never run code or touch another file (see
``docs/caching.md`` for why this is not diskcache any more).
"""

from .base import BaseGenerationCache, CacheError, CacheReadOnlyError, CacheStats
from .fingerprint import UserFingerprint
from .keys import KEY_FORMAT, secret_reason
from .sqlite import DB_NAME, GenerationCache, default_cache_dir

__all__ = [
    "DB_NAME",
    "KEY_FORMAT",
    "BaseGenerationCache",
    "CacheError",
    "CacheReadOnlyError",
    "CacheStats",
    "GenerationCache",
    "UserFingerprint",
    "default_cache_dir",
    "secret_reason",
]
