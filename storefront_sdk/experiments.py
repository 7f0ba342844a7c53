"""A/B experiments: stable arm assignment, exposure logs, lift with a confidence interval.

**Assignment.** :meth:`Experiment.assign` hashes ``"<experiment name>:<user id>"`` with
BLAKE2b into a number in [0, 1) and picks the arm whose share of the configured split
covers it. The same user gets the same arm in every process and on every machine
(no ``PYTHONHASHSEED``, no state); a different experiment name reshuffles users.

**Exposures.** The page server writes one :class:`Exposure` per page served: time,
experiment, user, arm, page id, where the page came from, and the placements and
product ids shown. Sinks: :class:`JsonlExposureSink` (a file, one JSON object per line)
or :class:`RedisStreamExposureSink` (a Redis stream, field ``event``). These, joined with
outcome events (cart adds, as :class:`Outcome` JSON lines), are the input of the analysis.

**Analysis.** :func:`analyze` counts, per arm, page views (exposures) and outcomes of
exposed users at or after their first exposure, and reports the rate (outcomes per
page view) and its relative lift over the control arm. The confidence interval is a
percentile bootstrap that resamples *users* (with replacement, within each arm), so
the correlation between one user's views and outcomes is respected: the lift's
interval at ``confidence`` from ``n_boot`` resamples, seeded.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .exceptions import ConfigurationError

__all__ = [
    "ArmResult",
    "Experiment",
    "ExperimentReport",
    "Exposure",
    "JsonlExposureSink",
    "Outcome",
    "RedisStreamExposureSink",
    "ShownPlacement",
    "analyze",
    "read_exposures",
    "read_outcomes",
]


class Experiment(BaseModel):
    """An experiment: a name and arms with their shares (normalised to sum to 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    split: dict[str, float] = Field(default_factory=lambda: {"generative": 0.5, "control": 0.5})
    control: str = "control"

    @model_validator(mode="after")
    def _check(self) -> Experiment:
        if not self.split:
            raise ValueError("split needs at least one arm")
        if any(w < 0 for w in self.split.values()) or sum(self.split.values()) <= 0:
            raise ValueError("arm shares must be >= 0 and not all 0")
        if self.control not in self.split:
            raise ValueError(f"control arm {self.control!r} is not in split {sorted(self.split)}")
        return self

    @classmethod
    def parse_split(cls, name: str, text: str, control: str = "control") -> Experiment:
        """From ``"generative=50,control=50"`` (shares in any unit)."""
        split: dict[str, float] = {}
        for part in text.split(","):
            arm, sep, share = part.partition("=")
            try:
                if not sep or not arm.strip():
                    raise ValueError
                split[arm.strip()] = float(share)
            except ValueError:
                raise ConfigurationError(
                    f"--split {text!r}: expected ARM=SHARE,... (e.g. generative=50,control=50)"
                ) from None
        try:
            return cls(name=name, split=split, control=control)
        except ValidationError as exc:
            raise ConfigurationError(f"--split {text!r}: {exc.errors()[0]['msg']}") from None

    def bucket(self, user_id: str) -> float:
        """The user's position in [0, 1) for this experiment."""
        digest = hashlib.blake2b(f"{self.name}:{user_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64

    def assign(self, user_id: str) -> str:
        """The user's arm: stable across processes and machines."""
        x = self.bucket(user_id) * sum(self.split.values())
        acc = 0.0
        arms = list(self.split.items())
        for arm, share in arms:
            acc += share
            if x < acc:
                return arm
        return next(a for a, s in reversed(arms) if s > 0)


class ShownPlacement(BaseModel):
    title: str
    source: str = ""
    products: list[str] = Field(default_factory=list)


class Exposure(BaseModel):
    """One page served to one user."""

    ts: float = Field(description="seconds since the epoch")
    experiment: str | None = None
    user_id: str
    arm: str
    page_id: str
    source: str = Field(description="store, built or baseline")
    placements: list[ShownPlacement] = Field(default_factory=list)


class Outcome(BaseModel):
    """Something a user did that the experiment measures (by default a cart add)."""

    user_id: str
    ts: float
    kind: str = "cart_add"
    product_id: str | None = None

    @classmethod
    def at(cls, user_id: str, when: datetime, **kw: Any) -> Outcome:
        return cls(user_id=user_id, ts=when.timestamp(), **kw)


class JsonlExposureSink:
    """Exposure events appended to a JSON-lines file (buffered; flushed every second)."""

    def __init__(self, path: str | Path, *, flush_every: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")
        self._lock = threading.Lock()
        self._flush_every = flush_every
        self._last = time.monotonic()
        self.errors = 0

    def emit(self, event: bytes) -> None:
        """Write one event (a JSON object without a trailing newline)."""
        with self._lock:
            self._fh.write(event + b"\n")
            now = time.monotonic()
            if now - self._last >= self._flush_every:
                self._fh.flush()
                self._last = now

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


class RedisStreamExposureSink:
    """Exposure events appended to a Redis stream (``XADD <stream> * event <json>``).

    Events are sent in pipelined batches (every ``batch`` events or ``flush_every``
    seconds, and on close); the stream is capped near ``maxlen`` entries. A Redis
    error drops the batch and counts it in ``errors``: serving never waits on it.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "storefront:exposures",
        maxlen: int = 10_000_000,
        batch: int = 100,
        flush_every: float = 0.5,
    ) -> None:
        from .serving.redis_cache import redis_client

        self.client = redis_client(url, timeout=0.5)
        self.stream = stream
        self.maxlen = maxlen
        self.batch = batch
        self.flush_every = flush_every
        self._buf: list[bytes] = []
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self.errors = 0

    def emit(self, event: bytes) -> None:
        with self._lock:
            self._buf.append(event)
            if len(self._buf) >= self.batch or time.monotonic() - self._last >= self.flush_every:
                self._flush()

    def _flush(self) -> None:
        buf, self._buf = self._buf, []
        self._last = time.monotonic()
        if not buf:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for ev in buf:
                pipe.xadd(self.stream, {"event": ev}, maxlen=self.maxlen, approximate=True)
            pipe.execute()
        except Exception:
            self.errors += 1

    def close(self) -> None:
        with self._lock:
            self._flush()
        self.client.close()


def read_exposures(source: str | Path, *, stream: str = "storefront:exposures") -> list[Exposure]:
    """Exposures from a JSONL file or a ``redis://`` URL (the whole stream)."""
    text = str(source)
    if text.startswith(("redis://", "rediss://")):
        from .serving.redis_cache import redis_client

        client = redis_client(text, timeout=5.0)
        out: list[Exposure] = []
        last = "-"
        while True:
            rows = client.xrange(stream, min=last, max="+", count=10_000)
            if last != "-":
                rows = rows[1:]
            if not rows:
                break
            for _, fields in rows:
                out.append(Exposure.model_validate_json(fields[b"event"]))
            last = rows[-1][0].decode()
        client.close()
        return out
    return _read_jsonl(Path(text), Exposure)


def read_outcomes(path: str | Path) -> list[Outcome]:
    """Outcome events from a JSON-lines file."""
    return _read_jsonl(Path(path), Outcome)


def _read_jsonl(path: Path, model: Any) -> list[Any]:
    if not path.is_file():
        raise ConfigurationError(f"{path}: file not found")
    out = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(model.model_validate_json(line))
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(x) for x in err["loc"]) or "(line)"
                raise ConfigurationError(f"{path}:{line_no}: field {field}: {err['msg']}") from None
    return out


class ArmResult(BaseModel):
    arm: str
    users: int
    views: int
    outcomes: int
    rate: float = Field(description="outcomes per page view")
    lift: float | None = Field(default=None, description="rate / control rate - 1")
    ci_low: float | None = None
    ci_high: float | None = None


class ExperimentReport(BaseModel):
    control: str
    confidence: float
    n_boot: int
    arms: list[ArmResult]

    def arm(self, name: str) -> ArmResult:
        for a in self.arms:
            if a.arm == name:
                return a
        raise KeyError(name)

    def summary(self) -> str:
        lines = [f"{'arm':<14}{'users':>8}{'views':>9}{'outcomes':>10}{'rate':>9}  lift"]
        for a in self.arms:
            if a.arm == self.control:
                lift = "(control)"
            elif a.lift is None:
                lift = "n/a (no outcome in the control arm)"
            else:
                lift = f"{a.lift:+.2%} [{a.ci_low:+.2%}, {a.ci_high:+.2%}]"
            lines.append(
                f"{a.arm:<14}{a.users:>8}{a.views:>9}{a.outcomes:>10}{a.rate:>9.4f}  {lift}"
            )
        return "\n".join(lines)


def analyze(
    exposures: Iterable[Exposure],
    outcomes: Iterable[Outcome],
    *,
    control: str = "control",
    experiment: str | None = None,
    kind: str = "cart_add",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> ExperimentReport:
    """Outcomes per page view by arm, and each arm's lift over ``control`` (see module).

    A user seen in several arms (a changed split) is counted in the arm of their first
    exposure only. ``experiment`` keeps only that experiment's exposures.
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigurationError("confidence must be within (0, 1)")
    first: dict[str, tuple[float, str]] = {}
    views: dict[str, int] = defaultdict(int)
    for e in sorted(exposures, key=lambda e: e.ts):
        if experiment is not None and e.experiment != experiment:
            continue
        if e.user_id not in first:
            first[e.user_id] = (e.ts, e.arm)
        if first[e.user_id][1] == e.arm:
            views[e.user_id] += 1
    adds: dict[str, int] = defaultdict(int)
    for o in outcomes:
        seen = first.get(o.user_id)
        if o.kind == kind and seen is not None and o.ts >= seen[0]:
            adds[o.user_id] += 1
    per_arm: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    by_arm: dict[str, list[str]] = defaultdict(list)
    for uid, (_, arm) in first.items():
        by_arm[arm].append(uid)
    for arm, uids in by_arm.items():
        per_arm[arm] = (
            np.array([views[u] for u in uids], dtype=np.float64),
            np.array([adds[u] for u in uids], dtype=np.float64),
        )
    if control not in per_arm:
        raise ConfigurationError(f"no exposures in the control arm {control!r}")
    rng = np.random.default_rng(seed)
    boot = {arm: _boot_rates(v, a, n_boot, rng) for arm, (v, a) in per_arm.items()}
    c_v, c_a = per_arm[control]
    c_rate = c_a.sum() / c_v.sum()
    alpha = (1.0 - confidence) / 2.0
    results: list[ArmResult] = []
    for arm in sorted(per_arm, key=lambda a: (a != control, a)):
        v, a = per_arm[arm]
        rate = float(a.sum() / v.sum())
        res = ArmResult(arm=arm, users=len(v), views=int(v.sum()), outcomes=int(a.sum()), rate=rate)
        if arm != control and c_rate > 0:
            lifts = boot[arm] / boot[control] - 1.0
            res.lift = rate / c_rate - 1.0
            res.ci_low = float(np.quantile(lifts, alpha))
            res.ci_high = float(np.quantile(lifts, 1.0 - alpha))
        results.append(res)
    return ExperimentReport(control=control, confidence=confidence, n_boot=n_boot, arms=results)


def _boot_rates(
    views: np.ndarray, adds: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_boot`` bootstrap replicates of sum(adds)/sum(views), resampling users."""
    n = len(views)
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(n, 1))
    for i in range(0, n_boot, chunk):
        k = min(chunk, n_boot - i)
        idx = rng.integers(0, n, size=(k, n))
        out[i : i + k] = adds[idx].sum(axis=1) / np.maximum(views[idx].sum(axis=1), 1.0)
    return out
