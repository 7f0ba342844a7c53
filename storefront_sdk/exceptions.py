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

``Storefront.build()`` raises only for programmer errors (``ConfigurationError``,
``CatalogError``). Backend failures during generation degrade the page and are
recorded in ``page.trace``; they never escape ``build()``.
"""

from __future__ import annotations

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
    """An LLM or other model backend failed."""


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
        self.raw = raw
