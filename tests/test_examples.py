"""Every script in examples/ runs, offline, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path, request: pytest.FixtureRequest) -> None:
    if script.name == "evaluate_instacart.py":
        request.getfixturevalue("instacart_dir")  # skips when the shared data is absent
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=script.parent.parent,
    )
    assert proc.returncode == 0, (
        f"{script.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    assert proc.stdout.strip(), f"{script.name} printed nothing"
