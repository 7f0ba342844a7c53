"""The embedding near-duplicate gate on labelled theme pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storefront_sdk.embeddings import LocalEmbedder, default_embedder
from storefront_sdk.filtering.embedding_gate import TITLE_THRESHOLD, EmbeddingDuplicateGate
from storefront_sdk.types import Theme, UserContext

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LocalEmbedder.available(), reason="embed extra not installed"),
]
PAIRS = Path(__file__).parent / "data" / "duplicate_theme_pairs.txt"
USER = UserContext(user_id="u")


def _pairs() -> list[tuple[int, str, str]]:
    rows = []
    for line in PAIRS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            label, a, b = (x.strip() for x in line.split("|"))
            rows.append((int(label), a, b))
    return rows


def _theme(title: str) -> Theme:
    return Theme(title=title, source="custom")


def test_threshold_is_the_best_f05_on_the_labelled_pairs() -> None:
    rows = _pairs()
    assert len(rows) >= 60
    e = default_embedder()
    assert e is not None
    y = np.array([r[0] for r in rows])
    cos = (e.embed([r[1] for r in rows]) * e.embed([r[2] for r in rows])).sum(1)

    def f05(th: float) -> float:
        pred = cos >= th
        tp = float((pred & (y == 1)).sum())
        p, r = tp / max(pred.sum(), 1), tp / (y == 1).sum()
        return 1.25 * p * r / (0.25 * p + r) if p + r else 0.0

    grid = [round(x, 2) for x in np.arange(0.5, 0.951, 0.05)]
    assert max(grid, key=f05) == pytest.approx(TITLE_THRESHOLD)
    pred = cos >= TITLE_THRESHOLD
    precision = (pred & (y == 1)).sum() / pred.sum()
    recall = (pred & (y == 1)).sum() / (y == 1).sum()
    assert precision >= 0.85 and recall >= 0.6


def test_gate_catches_the_issue_pair_and_keeps_distinct_themes() -> None:
    gate = EmbeddingDuplicateGate()
    assert gate.check_theme(_theme("Bites-big-food"), USER, [_theme("Bite-sized food")]) == (
        "duplicate_title"
    )
    assert gate.check_theme(_theme("Movie night"), USER, [_theme("Baby essentials")]) is None
    assert gate.check_theme(_theme("Anything"), USER, []) is None


def test_gate_checks_placements_by_theme() -> None:
    from storefront_sdk.types import Placement

    gate = EmbeddingDuplicateGate()
    a = Placement(theme=_theme("Snacks for movie night"), products=[], source="custom")
    b = Placement(theme=_theme("Movie night snacks"), products=[], source="custom")
    assert gate.check_placement(b, [a], USER) == "duplicate_title"
