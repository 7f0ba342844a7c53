"""Weak labels: bootstrap (theme, product) training pairs from a catalog's own structure.

Positives are products of the aisle a theme names; negatives are products of
other aisles and departments. :func:`aisle_themes` makes synthetic themes
shaped like generated ones when you have none.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from ..catalog import Catalog
from ..exceptions import ConfigurationError
from ..text import STOP_WORDS, normalize, tokenize
from ..types import Product, Theme

__all__ = ["aisle_themes", "weak_labels"]


def _display(name: str) -> str:
    return " ".join(w[:1].upper() + w[1:] if i == 0 else w for i, w in enumerate(name.split()))


_TITLES = (
    "{c} favourites",
    "All about {c}",
    "{c} night",
    "Stock up on {c}",
    "Fresh {c} finds",
    "Weekend {c}",
    "{a} picks",
)


def aisle_themes(
    catalog: Catalog, *, per_aisle: int = 2, seed: int = 0, min_products: int = 5
) -> list[Theme]:
    """Synthetic themes for bootstrapping: ``per_aisle`` per aisle, shaped like generated ones.

    Concepts are words typical of the aisle's product titles ("spaghetti",
    "penne" for pasta); the aisle name itself is a concept only sometimes, and
    titles vary ("Spaghetti night", "All about penne"), so a model trained on
    them learns the text features too, not only "the concept is the aisle name".
    """
    return [theme for theme, _ in _aisle_themes(catalog, per_aisle, seed, min_products)]


def _title_words(title: str) -> set[str]:
    return {w for w in normalize(title).split() if len(w) > 2 and w not in STOP_WORDS}


def _aisle_themes(
    catalog: Catalog, per_aisle: int, seed: int, min_products: int
) -> list[tuple[Theme, str]]:
    rng = random.Random(seed)
    by_aisle: dict[str, list[Product]] = defaultdict(list)
    overall: Counter[str] = Counter()
    for p in catalog:
        overall.update(_title_words(p.title))
        if p.aisle:
            by_aisle[p.aisle].append(p)
    themes: list[tuple[Theme, str]] = []
    for aisle in sorted(by_aisle):
        products = by_aisle[aisle]
        if len(products) < min_products:
            continue
        counts: Counter[str] = Counter()
        for p in products:
            counts.update(_title_words(p.title))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # deterministic ties
        typical = [w for w, c in ranked if c >= 2 and c / overall[w] >= 0.5 and not w.isdigit()][
            :8
        ] or [aisle]
        dept = products[0].department
        for _ in range(per_aisle):
            concepts = rng.sample(typical, min(len(typical), rng.randint(1, 3)))
            if rng.random() < 0.3 and aisle not in concepts:
                concepts.append(aisle)
            template = rng.choice(_TITLES)
            title = template.format(c=concepts[0], a=aisle)
            theme = Theme(
                title=title[:1].upper() + title[1:60],
                description=f"Ideas with {' and '.join(concepts[:2])}.",
                concepts=concepts,
                kind="aisle",
                departments=[dept] if dept and rng.random() < 0.3 else [],
            )
            themes.append((theme, aisle))
    return themes


def _matching_aisles(theme: Theme, aisles: Iterable[str]) -> set[str]:
    """Aisles a theme's concepts name: equal, or every word of a concept is in the aisle name."""
    out: set[str] = set()
    concepts = [set(tokenize(c)) for c in theme.concepts]
    title = set(tokenize(theme.title))
    for aisle in aisles:
        words = set(tokenize(aisle))
        if not words:
            continue
        if any(c and c <= words for c in concepts) or (title and words <= title):
            out.add(aisle)
    return out


def weak_labels(
    catalog: Catalog,
    themes: Sequence[Theme] | None = None,
    *,
    positives_per_theme: int = 12,
    negatives_per_theme: int = 24,
    hard_negative_share: float = 0.3,
    seed: int = 0,
) -> tuple[list[tuple[Theme, Product]], list[int]]:
    """Bootstrap labelled pairs from the catalog's structure (no human labels needed).

    For each theme (default: :func:`aisle_themes`), positives are products of
    the aisles its concepts name; negatives are random products of other
    departments, plus a ``hard_negative_share`` from other aisles of the same
    department. Themes that name no aisle are skipped. Returns ``(pairs, labels)``
    ready for :meth:`TrainableRelevanceFilter.fit`.
    """
    rng = random.Random(seed)
    by_aisle: dict[str, list[Product]] = defaultdict(list)
    aisles_of: dict[str, set[str]] = defaultdict(set)
    for p in catalog:
        by_aisle[p.aisle].append(p)
        aisles_of[p.department].add(p.aisle)
    everything = list(catalog)
    if themes is None:
        targets = [(t, {a}) for t, a in _aisle_themes(catalog, 2, seed, 5)]
    else:
        targets = [(t, _matching_aisles(t, by_aisle)) for t in themes]
    pairs: list[tuple[Theme, Product]] = []
    labels: list[int] = []
    for theme, aisles in targets:
        if not aisles:
            continue
        pos = [p for a in sorted(aisles) for p in by_aisle[a]]
        depts = {p.department for p in pos}
        siblings = sorted({a for d in depts for a in aisles_of[d]} - aisles)
        near = [p for a in siblings for p in by_aisle[a]]
        n_hard = min(len(near), round(negatives_per_theme * hard_negative_share))
        negs = rng.sample(near, n_hard)
        seen = {p.id for p in negs}
        for _ in range(50 * negatives_per_theme):  # far negatives: rejection sampling
            if len(negs) >= negatives_per_theme:
                break
            p = rng.choice(everything)
            if p.department not in depts and p.id not in seen:
                negs.append(p)
                seen.add(p.id)
        for p in rng.sample(pos, min(len(pos), positives_per_theme)):
            pairs.append((theme, p))
            labels.append(1)
        for p in negs:
            pairs.append((theme, p))
            labels.append(0)
    if not pairs or len(set(labels)) < 2:
        raise ConfigurationError(
            "weak_labels: no theme names an aisle of this catalog; pass other themes"
        )
    return pairs, labels
