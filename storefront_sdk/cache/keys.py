"""Cache keys: canonical JSON of what determines a generation, hashed; credentials refused.

A key is ``"<stage>/<sha256>"`` of the canonical JSON of its parts (sorted keys,
sets sorted, floats exact): nothing depends on ``hash()`` or set order, so a
key is the same in every process and on every machine. Parts that are
credentials (by name or by shape, :func:`secret_reason`) or not JSON data raise
:class:`~storefront_sdk.exceptions.ConfigurationError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from ..exceptions import ConfigurationError

__all__ = ["KEY_FORMAT", "canonical_digest", "derive_key", "secret_reason"]

#: Bumped when the key derivation changes shape.
KEY_FORMAT = 1

# -- secrets in key parts ------------------------------------------------------------------
#
# A key is a hash, but a credential has no business determining (or being logged next to) a
# generation, and a key part that carries one is a wiring mistake. Only what *is* a
# credential is refused: a part NAMED like one, or a value SHAPED like a real one. Ordinary
# text ("Bearer market", "token ring cake", "secret santa") passes.

_SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:api[_-]?key|apikey|x[_-]api[_-]key|secret|client[_-]?secret|secret[_-]?key"
    r"|passw(?:or)?d|passphrase|authori[sz]ation|credentials?|cookie|set[_-]cookie"
    r"|private[_-]?key|access[_-]?key|signing[_-]?key|token|bearer)$",
    re.I,
)
"""A part name ending in a credential word (``api_key``, ``Authorization``, ``access_token``)."""

_KEYISH_NAME = re.compile(r"(?:^|[_\-.])(?:key|license[_-]?key)$", re.I)
_BLOB = re.compile(r"[A-Fa-f0-9]{32,}|[A-Za-z0-9+/_-]{40,}={0,2}")
"""A long hex or base64 blob: a credential when its part is named ``key``/``*_key``."""

_CREDENTIAL_SHAPES = (
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI / Anthropic style API keys
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}"  # GitHub tokens
    r"|\bxox[abposr]-[A-Za-z0-9-]{15,}"  # Slack tokens
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API key
)
_HEADER = r"\s*(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/-]{20,}=*\s*"
"""An Authorization header value: the scheme then a 20+ character credential, nothing else."""

_SHAPES = re.compile(_CREDENTIAL_SHAPES)
_HEADER_VALUE = re.compile(rf"\A{_HEADER}\Z", re.I)
_HEADER_IN_JOINED = re.compile(rf"(?:\A|\x00){_HEADER}(?=\x00|\Z)", re.I)
# Literal fragments every shape above contains: a C-speed ``in`` test skips the regexes
# for ordinary text (a 100-keyword shortlist, a prompt) -- key derivation is on every call.
_SHAPE_HINTS = (
    "sk-",
    "eyJ",
    "hp_",
    "ho_",
    "hu_",
    "hs_",
    "hr_",
    "github_pat_",
    "xox",
    "AKIA",
    "AIza",
)
_HEADER_HINTS = ("earer", "EARER", "asic", "ASIC", "oken", "OKEN")


def _secret_shaped(text: str, *, joined: bool = False) -> bool:
    """Whether ``text`` (or an item of a ``"\x00"``-joined list) has a credential's shape."""
    if len(text) < 20:  # every shape below is longer: ids, hashes and words end here
        return False
    if any(h in text for h in _SHAPE_HINTS) and _SHAPES.search(text):
        return True
    if any(h in text for h in _HEADER_HINTS):
        header = _HEADER_IN_JOINED if joined else _HEADER_VALUE
        return header.search(text) is not None
    return False


def secret_reason(name: str, value: Any = None) -> str | None:
    """Why a key part named ``name`` with ``value`` is a credential, or None when it is not.

    Refused: names ending in a credential word (``api_key``, ``authorization``,
    ``access_token``, ``password``, ``secret``, ``cookie`` ...); values shaped
    like real credentials anywhere in the text (``sk-`` + 20 characters, JWTs,
    GitHub/Slack/AWS/Google key formats); a whole value that is an
    ``Authorization`` header (``Bearer`` + a 20+ character token); a long
    hex/base64 blob under a name ending in ``key``. The reason never quotes the value.
    """
    if name and _secret_name(name):
        return f"its name {name!r} is a credential name"
    if isinstance(value, str):
        if _secret_shaped(value):
            return "its value has the shape of a credential"
        if name and _KEYISH_NAME.search(name) and _BLOB.fullmatch(value.strip()):
            return f"its value is a key-like blob named {name!r}"
    return None


@lru_cache(maxsize=1024)
def _secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


_STR_ONLY = {str}


def _refuse(path: str, reason: str) -> ConfigurationError:
    return ConfigurationError(f"cache key part {path} looks like a secret: {reason}")


def _canonical(value: Any, path: str, name: str = "") -> Any:
    """A JSON-ready, order-stable form of a key part; rejects secrets and opaque objects."""
    kind = type(value)  # exact types first: ABC isinstance checks cost a microsecond each
    if kind is str:
        if _secret_shaped(value) or (name and _KEYISH_NAME.search(name)):
            reason = secret_reason(name, value)
            if reason:
                raise _refuse(path, reason)
        return value
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump(mode="json"), path, name)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = str(k)
            if _secret_name(key):
                raise _refuse(f"{path}.{key}", f"its name {key!r} is a credential name")
            out[key] = _canonical(v, f"{path}.{key}", key)
        return out
    if isinstance(value, (list, tuple)):
        # Lists of strings (shortlists: ~100 items, chat messages) are checked in one pass.
        if set(map(type, value)) <= _STR_ONLY and not (
            _secret_shaped("\x00".join(value), joined=True) or (name and _KEYISH_NAME.search(name))
        ):
            return list(value)
        return [_canonical(v, f"{path}[{i}]", name) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_canonical(v, path, name) for v in value]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    if isinstance(value, str):
        return _canonical(str(value), path, name)
    if isinstance(value, (bool, int)):
        return int(value) if not isinstance(value, bool) else bool(value)
    if isinstance(value, float):
        return repr(value)  # exact and stable, also for nan/inf
    raise ConfigurationError(
        f"cache key part {path} of type {type(value).__name__} is not JSON-serialisable"
    )


def derive_key(stage: str, parts: Mapping[str, Any]) -> str:
    """``"<stage>/<sha256 of canonical JSON of (stage, parts)>"`` (see the module docs)."""
    if not stage or not re.fullmatch(r"[A-Za-z0-9_.-]+", stage):
        raise ConfigurationError(f"cache stage must be a short identifier, got {stage!r}")
    canon = _canonical({"stage": stage, "key_format": KEY_FORMAT, "parts": parts}, "key")
    blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{stage}/{hashlib.sha256(blob.encode()).hexdigest()}"


def canonical_digest(value: Any, path: str, length: int = 24) -> str:
    """A short SHA-256 of the canonical JSON of ``value`` (credentials refused as in keys)."""
    canon = _canonical(value, path)
    blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
