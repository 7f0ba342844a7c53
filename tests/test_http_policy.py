"""Unit tests of the shared HTTP policy and the secrets scrubber (no network)."""

from __future__ import annotations

import base64
import email.utils
import json
import random
import urllib.parse
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from storefront_sdk import _secrets
from storefront_sdk.exceptions import (
    MAX_MESSAGE_CHARS,
    FatalBackendError,
    OutputValidationError,
    RetryableBackendError,
)
from storefront_sdk.http_policy import (
    HttpPolicy,
    public_url,
    retry_after,
    status_error,
    validate_url,
)

SECRET = "sk-policy-test-0123456789/abcdef+XY"
_secrets.register(f"Bearer {SECRET}")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "99"}, 1.5),
        ({"retry-after": "1e999"}, float("inf")),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_parsing(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(httpx.Headers(headers)) == expected


def test_retry_after_http_date() -> None:
    later = datetime.now(timezone.utc) + timedelta(seconds=40)
    value = retry_after(httpx.Headers({"retry-after": email.utils.format_datetime(later, True)}))
    assert value is not None and 30.0 < value <= 40.0


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, None), (302, None), (400, FatalBackendError), (401, FatalBackendError),
     (404, FatalBackendError), (408, RetryableBackendError), (409, RetryableBackendError),
     (429, RetryableBackendError), (500, RetryableBackendError), (503, RetryableBackendError)],
)  # fmt: skip
def test_status_mapping(status: int, kind: type[Exception] | None) -> None:
    error = status_error(status, httpx.Headers({"retry-after": "3"}), "body", "srv")
    if kind is None:
        assert error is None
        return
    assert type(error) is kind
    if isinstance(error, RetryableBackendError):
        assert error.retry_after == 3.0


@pytest.mark.parametrize("url", ["notaurl", "ftp://x", "http://[::1", "", "http://", "//x/y"])
def test_invalid_urls(url: str) -> None:
    from storefront_sdk.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError):
        validate_url(url, "test")


def test_public_url_drops_credentials() -> None:
    assert public_url("https://u:p@h.example:8443/v1?key=x#f") == "https://h.example:8443/v1"
    assert public_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"


def test_policy_rejects_bad_limits() -> None:
    from storefront_sdk.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError):
        HttpPolicy(timeout=0)
    with pytest.raises(ConfigurationError):
        HttpPolicy(max_response_bytes=0)


def _forms(secret: str) -> list[str]:
    escaped = "".join(f"\\u{ord(c):04X}" for c in secret)
    return [
        secret,
        escaped,
        secret[:6] + escaped[36:72] + secret[12:],
        json.dumps(secret).strip('"').replace("/", "\\/"),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode(),
    ]


@pytest.mark.parametrize("form", _forms(SECRET))
def test_scrub_finds_every_spelling(form: str) -> None:
    text = "x" * 250 + form + "y" * 50
    assert SECRET[10:] not in _secrets.scrub(text) and form not in _secrets.scrub(text)
    cut = _secrets.excerpt(text, 300)  # scrubbed before the cut: no tail of it survives
    assert "***" in cut and SECRET[-8:] not in cut and form[-8:] not in cut


def test_scrub_without_escapes_still_finds_literal_and_base64_spellings() -> None:
    # Texts with no backslash and no percent sign take a fast path (only the literal and
    # base64 spellings can occur there): it must find those anywhere, and leave near
    # misses alone.
    rng = random.Random(7)
    b64 = base64.b64encode(SECRET.encode()).decode().rstrip("=")
    forms = [SECRET, b64, base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")]
    for _ in range(200):
        noise = "".join(rng.choice("abc XY{}:,\"+0189-/") for _ in range(rng.randint(0, 80)))
        cut = rng.randint(0, len(noise))
        form = rng.choice(forms)
        text = noise[:cut] + form + noise[cut:]
        assert form not in _secrets.scrub(text) and "***" in _secrets.scrub(text)
        near = noise[:cut] + form[:5] + "#" + form[6:] + noise[cut:]  # one character off
        assert _secrets.scrub(near) == near


def test_excerpt_is_bounded_and_flat() -> None:
    text = "line one\nline two\x1b]0;title\x07" + "z" * 10_000
    cut = _secrets.excerpt(text, 40)
    assert len(cut) < 80 and "\n" not in cut and "\x1b" not in cut and "more characters" in cut


def test_short_values_are_not_secrets() -> None:
    _secrets.register("abc")
    assert _secrets.scrub("abc abc") == "abc abc"


def test_backend_errors_are_scrubbed_and_bounded() -> None:
    error = RetryableBackendError("echo " + SECRET + " " + "w" * 50_000)
    assert SECRET not in str(error) and len(str(error)) < MAX_MESSAGE_CHARS + 100
    invalid = OutputValidationError("bad", raw="r" * 10_000_000 + SECRET)
    assert invalid.raw is not None and len(invalid.raw) < 20_000
    assert SECRET not in (OutputValidationError("bad", raw=f"[{SECRET}]").raw or "")
