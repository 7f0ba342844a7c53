"""Arm assignment, exposure sinks and lift analysis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.experiments import (
    Experiment,
    Exposure,
    JsonlExposureSink,
    Outcome,
    analyze,
    read_exposures,
    read_outcomes,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "split", [{"generative": 0.5, "control": 0.5}, {"a": 0.2, "b": 0.3, "control": 0.5}]
)
def test_split_matches_configuration_within_one_percent(split: dict[str, float]) -> None:
    exp = Experiment(name="homepage-2026", split=split)
    counts = Counter(exp.assign(f"user-{i}") for i in range(100_000))
    for arm, share in split.items():
        assert abs(counts[arm] / 100_000 - share) < 0.01, (arm, counts)


def test_assignment_is_stable_across_processes() -> None:
    exp = Experiment(name="homepage-2026")
    ids = [f"u{i}" for i in range(2000)]
    here = "".join(exp.assign(u)[0] for u in ids)
    code = (
        "from storefront_sdk.experiments import Experiment\n"
        "e = Experiment(name='homepage-2026')\n"
        "print(''.join(e.assign(f'u{i}')[0] for i in range(2000)))"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, check=True, text=True
        )
        assert out.stdout.strip() == here
    other = Experiment(name="another")
    assert sum(other.assign(u) != exp.assign(u) for u in ids) > 500  # names reshuffle


def test_parse_split_and_bad_configs() -> None:
    exp = Experiment.parse_split("x", "generative=90,control=10")
    assert exp.split == {"generative": 90.0, "control": 10.0}
    with pytest.raises(ConfigurationError, match="ARM=SHARE"):
        Experiment.parse_split("x", "generative:90")
    with pytest.raises(ConfigurationError, match="control"):
        Experiment.parse_split("x", "a=1,b=1")


def _simulate(lift: float, users: int, seed: int) -> tuple[list[Exposure], list[Outcome]]:
    """Users see 1-6 pages; each page view leads to a cart add with p (x (1 + lift) if treated)."""
    rng = np.random.default_rng(seed)
    exp = Experiment(name="sim")
    exposures: list[Exposure] = []
    outcomes: list[Outcome] = []
    for i in range(users):
        uid = f"s{i}"
        arm = exp.assign(uid)
        base = rng.beta(2, 18)  # users differ: mean 0.1
        p = min(1.0, base * (1.0 + lift) if arm == "generative" else base)
        for v in range(int(rng.integers(1, 7))):
            ts = 1000.0 + v
            exposures.append(
                Exposure(ts=ts, experiment="sim", user_id=uid, arm=arm, page_id="p", source="store")
            )
            for _ in range(int(rng.binomial(2, p / 2))):
                outcomes.append(Outcome(user_id=uid, ts=ts + 0.5))
    outcomes.append(Outcome(user_id="s0", ts=1.0))  # before any exposure: not attributed
    outcomes.append(Outcome(user_id="stranger", ts=2000.0))  # never exposed
    return exposures, outcomes


def test_planted_lift_is_recovered_with_its_interval() -> None:
    exposures, outcomes = _simulate(lift=0.10, users=20_000, seed=7)
    report = analyze(exposures, outcomes, n_boot=500, seed=1)
    gen = report.arm("generative")
    assert report.arm("control").lift is None
    assert gen.lift is not None and gen.ci_low is not None and gen.ci_high is not None
    assert gen.ci_low < 0.10 < gen.ci_high
    assert gen.ci_low > 0.0  # a 10% lift on 20k users is detected
    assert abs(gen.lift - 0.10) < 0.05
    assert "generative" in report.summary()


def test_no_lift_gives_an_interval_around_zero() -> None:
    exposures, outcomes = _simulate(lift=0.0, users=10_000, seed=3)
    gen = analyze(exposures, outcomes, n_boot=500).arm("generative")
    assert gen.ci_low is not None and gen.ci_high is not None
    assert gen.ci_low < 0.0 < gen.ci_high


def test_jsonl_roundtrip_and_errors_name_the_line(tmp_path: Path) -> None:
    sink = JsonlExposureSink(tmp_path / "exp.jsonl")
    ev = Exposure(ts=1.0, user_id="u", arm="control", page_id="p", source="store")
    sink.emit(ev.model_dump_json().encode())
    sink.close()
    assert read_exposures(tmp_path / "exp.jsonl") == [ev]
    bad = tmp_path / "outcomes.jsonl"
    bad.write_text('{"user_id": "u", "ts": 1}\n{"user_id": "u"}\n')
    with pytest.raises(ConfigurationError, match=r"outcomes.jsonl:2: field ts"):
        read_outcomes(bad)
    with pytest.raises(ConfigurationError, match="control"):
        analyze([ev.model_copy(update={"arm": "generative"})], [])
