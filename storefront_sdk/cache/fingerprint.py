"""User fingerprints: which facts about a user decide which cached themes they share."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..text import normalize
from .keys import canonical_digest

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..types import UserContext

__all__ = ["UserFingerprint"]


@dataclass(frozen=True)
class UserFingerprint:
    """Which facts about a user determine their generations (and so their cache key).

    The default keys on the user's top aisles and departments (by purchase
    weight), whether they have a history at all, their stated preferences,
    a hash of their notes, ``age_verified``, locale and the listed session
    fields: users who look alike on these share generated themes. Raw user
    and product ids are never part of it. Raise ``top_aisles`` (or set
    ``products=N``) for more personal, less shared generations.
    """

    top_aisles: int = 5
    top_departments: int = 3
    products: int = 0
    preferences: bool = True
    notes: bool = True
    session_keys: tuple[str, ...] = ("season", "occasion")
    age_verified: bool = True
    locale: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def parts(self, user: UserContext, catalog: Catalog) -> dict[str, Any]:
        """The readable features that are hashed; handy to see why two users share."""
        weights: Counter[str] = Counter()
        for it in user.history:
            if it.product_id in catalog:
                weights[it.product_id] += it.quantity
        aisles: Counter[str] = Counter()
        departments: Counter[str] = Counter()
        for pid, w in weights.items():
            p = catalog[pid]
            if p.aisle:
                aisles[p.aisle] += w
            if p.department:
                departments[p.department] += w
        out: dict[str, Any] = {
            "returning": bool(weights),
            "aisles": _top(aisles, self.top_aisles),
            "departments": _top(departments, self.top_departments),
        }
        if self.products:
            out["products"] = [catalog[pid].title for pid in _top(weights, self.products)]
        if self.preferences:
            out["preferences"] = sorted({normalize(p) for p in user.preferences if normalize(p)})
        if self.notes and user.notes and normalize(user.notes):
            out["notes"] = hashlib.sha256(normalize(user.notes).encode()).hexdigest()[:16]
        if self.session_keys:
            out["session"] = {k: user.session[k] for k in self.session_keys if k in user.session}
        if self.age_verified:
            out["age_verified"] = user.age_verified
        if self.locale:
            out["locale"] = user.locale
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    def __call__(self, user: UserContext, catalog: Catalog) -> str:
        return canonical_digest(self.parts(user, catalog), "user")


def _top(counts: Counter[str], k: int) -> list[str]:
    """The ``k`` most frequent keys, ties broken alphabetically (stable across runs)."""
    return [x for x, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:k]
