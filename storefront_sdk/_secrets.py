"""Secrets that must never leave the process: registered once, scrubbed from any text.

The HTTP backends register their API keys and ``Authorization`` header values here
(:func:`register`); every text built from what a server sent (error excerpts, exception
messages, re-asks, log records) passes through :func:`scrub` *before* it is cut or
escaped, so a secret is never left half-visible by a cut, or hidden from the scrubber by
an escape that a later decoder undoes.

A secret is found in any mix of these spellings, character by character:

- raw (``sk-abc``);
- JSON-escaped: ``\\u0073`` (any case of hex digits) for any character, ``\\/`` for ``/``;
- URL-encoded: ``%73`` for any character, ``+`` for a space;
- base64 of the whole secret (standard and URL-safe alphabets), as in a Basic header.

:func:`excerpt` is the one way to quote untrusted text: scrubbed first, then cut to a
bounded length with control characters flattened. :class:`ScrubFilter` is a
:class:`logging.Filter` that scrubs a log record's final message.
"""

from __future__ import annotations

import base64
import logging
import re
import threading

__all__ = ["MASK", "ScrubFilter", "excerpt", "guard_logger", "register", "scrub"]

MASK = "***"
_MIN_LENGTH = 8
"""Shorter values are not treated as secrets (they would mask ordinary words)."""

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_longest = 0
"""The longest spelling any registered secret can take (``\\uXXXX`` per character)."""
_literal: tuple[re.Pattern[str], tuple[str, ...]] | None = None
"""(the pattern it belongs to, every spelling of every secret that uses no ``\\`` or
``%``): a text with neither character can only hold these literal spellings."""


def _char(c: str) -> str:
    """A regex matching ``c`` in any of its raw, JSON-escaped or URL-encoded spellings."""
    forms = [re.escape(c)]
    code = ord(c)
    if code <= 0xFFFF:
        forms.append(r"\\u" + "".join(f"[{h.lower()}{h.upper()}]" for h in f"{code:04x}"))
    if code < 0x80:
        forms.append("%" + "".join(f"[{h.lower()}{h.upper()}]" for h in f"{code:02x}"))
    if c == "/":
        forms.append(r"\\/")
    if c == " ":
        forms.append(r"\+")
    return "(?:" + "|".join(forms) + ")"


def _literal_forms(secrets: set[str]) -> tuple[str, ...] | None:
    """The spellings :func:`_char` allows without ``\\`` or ``%``: the secret itself and its
    base64 forms. None when a secret has a space (``+`` spells it too): no fast path."""
    if any(" " in secret for secret in secrets):
        return None
    forms: set[str] = set(secrets)
    for secret in secrets:
        raw = secret.encode()
        forms.update(
            e.decode().rstrip("=") for e in (base64.b64encode(raw), base64.urlsafe_b64encode(raw))
        )
    return tuple(sorted(forms))


def _compile(secrets: set[str]) -> re.Pattern[str] | None:
    if not secrets:
        return None
    alternatives: list[str] = []
    for secret in sorted(secrets, key=len, reverse=True):
        alternatives.append("".join(_char(c) for c in secret))
        raw = secret.encode()
        for encoded in {base64.b64encode(raw), base64.urlsafe_b64encode(raw)}:
            alternatives.append(re.escape(encoded.decode().rstrip("=")))
    return re.compile("|".join(alternatives))


def register(secret: str | None) -> None:
    """Treat ``secret`` (an API key, a header value) as secret from now on, process-wide.

    A ``Bearer``/``Basic`` header value registers its credential part too.
    """
    global _pattern, _longest, _literal
    if not secret:
        return
    values = {secret.strip()}
    scheme, _, credential = secret.strip().partition(" ")
    if credential and scheme.lower() in ("bearer", "basic", "token"):
        values.add(credential.strip())
    values = {v for v in values if len(v) >= _MIN_LENGTH}
    with _lock:
        if values <= _secrets:
            return
        _secrets.update(values)
        pattern = _compile(_secrets)
        literal = _literal_forms(_secrets)
        _literal = None if pattern is None or literal is None else (pattern, literal)
        _pattern = pattern
        _longest = max(len(s) for s in _secrets) * 6 + 8


def scrub(text: str) -> str:
    """``text`` with every registered secret, in any spelling, replaced by ``***``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    literal = _literal
    if (
        literal is not None
        and literal[0] is pattern  # registered together (not mid-way through a register())
        and "\\" not in text
        and "%" not in text
        and not any(form in text for form in literal[1])
    ):
        return text  # no spelling can match: skip the regex (most model answers)
    return pattern.sub(MASK, text)


def excerpt(text: str, limit: int = 300) -> str:
    """At most ``limit`` characters of untrusted ``text``: scrubbed first, then cut.

    Only a window a little longer than ``limit`` is scrubbed (a secret overlapping the
    first ``limit`` characters lies inside it whatever its spelling), so quoting the start
    of a 20 MB body costs what quoting a short one does. Line breaks and other control
    characters become spaces.
    """
    window = text[: limit + _longest + 1]
    pieces: list[str] = []
    pos = 0
    pattern = _pattern
    if pattern is not None:
        for match in pattern.finditer(window):
            if match.start() >= limit:
                break
            pieces += [window[pos : match.start()], MASK]
            pos = match.end()
    if pos < limit:
        pieces.append(window[pos:limit])
    flat = "".join(c if c.isprintable() else " " for c in "".join(pieces)).strip()
    rest = len(text) - max(pos, limit)
    if rest > 0:
        flat += f"... [{rest} more characters]"
    return flat


class ScrubFilter(logging.Filter):
    """Scrubs registered secrets from a record's formatted message (attach to a logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is not None:
            message = record.getMessage()
            clean = scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_FILTER = ScrubFilter()


def guard_logger(logger: logging.Logger) -> logging.Logger:
    """Attach the scrubbing filter to ``logger`` once and return it."""
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
