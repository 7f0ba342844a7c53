"""The exception tree of storefront_sdk.

Everything the SDK raises on purpose derives from :class:`StorefrontError`::

    StorefrontError
    ├── ConfigurationError        bad arguments or wiring: a programmer error, raised by build()
    ├── CatalogError              invalid catalog input; names file, row and field
    ├── ComponentError            a pluggable component broke its contract (wrong type, bad ids)
    └── BackendError              an LLM / HTTP / model backend failed
        ├── RetryableBackendError     429, 5xx, timeouts, connection errors: worth another try
        │   └── BackendTimeoutError
        └── FatalBackendError         4xx client errors, missing model files: retrying will not help
            └── OutputValidationError the model's output did not validate, even after re-asking

Messages of backend errors are built from what a server or a model sent, so
:class:`BackendError` scrubs registered secrets from them and bounds their length
(:data:`MAX_MESSAGE_CHARS`); :attr:`OutputValidationError.raw` is bounded and scrubbed
the same way (:data:`MAX_RAW_CHARS`): a 20 MB answer never makes a 20 MB exception.

``Storefront.build()`` raises only for programmer errors (``ConfigurationError``,
``CatalogError``). Backend failures during generation degrade the page and are
recorded in ``page.trace``; they never escape ``build()``.
"""

from __future__ import annotations

from ._secrets import excerpt, scrub

MAX_MESSAGE_CHARS = 2_000
"""A backend error's message is cut to this many characters (after scrubbing secrets)."""
MAX_RAW_CHARS = 16_384
"""``OutputValidationError.raw`` keeps at most this many characters of the model's text."""

__all__ = [
    "BackendError",
    "BackendTimeoutError",
    "CatalogError",
    "ComponentError",
    "ConfigurationError",
    "FatalBackendError",
    "OutputValidationError",
    "RetryableBackendError",
    "StorefrontError",
]


class StorefrontError(Exception):
    """Base class of every error the SDK raises on purpose."""


class ConfigurationError(StorefrontError, ValueError):
    """Invalid configuration or wiring of components."""


class CatalogError(StorefrontError, ValueError):
    """Invalid catalog input. ``str(err)`` names the file, row and field.

    The structured parts are kept as attributes so tools can point at the cell.
    Rows are 1-based and count the header line of a CSV file as row 1, the way
    a spreadsheet shows them.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.row = row
        self.field = field
        self.reason = message
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ComponentError(StorefrontError):
    """A pluggable component broke its contract (e.g. returned the wrong type)."""


class BackendError(StorefrontError):
    """An LLM or other model backend failed (message scrubbed of secrets and bounded)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(excerpt(str(message), MAX_MESSAGE_CHARS))


class RetryableBackendError(BackendError):
    """A transient failure (rate limit, server error, timeout): retrying may succeed."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendTimeoutError(RetryableBackendError):
    """The backend did not answer in time."""


class FatalBackendError(BackendError):
    """A failure that retrying will not fix (bad request, auth, missing model)."""


class OutputValidationError(FatalBackendError):
    """The model's output did not validate against the requested type."""

    def __init__(self, message: str, *, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = None if raw is None else _bounded_raw(raw)


def _bounded_raw(raw: str) -> str:
    """``raw`` scrubbed of secrets and cut to :data:`MAX_RAW_CHARS`."""
    if len(raw) <= MAX_RAW_CHARS:
        return scrub(raw)
    return excerpt(raw, MAX_RAW_CHARS)
