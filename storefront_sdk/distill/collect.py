"""collect: run a teacher through the real cascade and record every label with its verdicts.

``collect(catalog, teacher, users, checkpoint)`` builds each shopper's page with
``Storefront(catalog, llm=RecordingLLM(teacher), ...)`` and appends one
:class:`~storefront_sdk.distill.records.ShopperRecord` per shopper to ``checkpoint``
(JSON Lines, flushed per shopper). A re-run reads the checkpoint first and skips the
shoppers already in it, so an interrupted collection resumes where it stopped. With a
``cache`` the teacher is wrapped in a :class:`~storefront_sdk.llm.cached.CachingLLM`
*inside* the recorder, so cache hits are recorded too (flagged ``cache_hit``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from ..catalog import Catalog
from ..interfaces import Gate, Judge
from ..llm.base import LLM
from ..llm.cached import CachingLLM
from ..text import normalize
from ..types import Page, UserContext
from .errors import DistillError
from .recorder import RecordingLLM
from .records import GateVerdict, JudgeVerdict, LLMCallRecord, ShopperRecord, ThemeOutcome

if TYPE_CHECKING:
    from ..cache import BaseGenerationCache
    from ..storefront import StorefrontConfig

__all__ = ["collect", "find_outcome", "read_checkpoint", "shopper_record"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


def _drop_cut_tail(p: Path) -> None:
    """Remove a last line without its newline: a write interrupted by a crash (collect
    writes whole lines only); its shopper is collected again."""
    data = p.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    logger.warning(
        "%s: dropping a cut-off last line (%d bytes, an interrupted write); "
        "its shopper is collected again",
        p,
        len(data) - keep,
    )
    with p.open("r+b") as fh:
        fh.truncate(keep)


def read_checkpoint(path: str | Path) -> list[ShopperRecord]:
    """The shopper records in ``path`` (none when it does not exist).

    A line that is not a valid record raises :class:`DistillError` naming file and line.
    (:func:`collect` first drops a cut-off last line, the trace of an interrupted write.)
    """
    p = Path(path)
    if not p.exists():
        return []
    if p.is_dir():
        raise DistillError(f"{p}: is a directory, expected a JSONL checkpoint file")
    out: list[ShopperRecord] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(ShopperRecord.model_validate_json(line))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(x) for x in err["loc"]) or "<line>"
                cut = "" if line.endswith("\n") else " (the last line is cut off: interrupted?)"
                raise DistillError(
                    f"{p}:{lineno}: not a shopper record ({where}: {err['msg']}){cut}; "
                    "fix or delete the line to resume"
                ) from None
    return out


def _verdicts(page: Page) -> list[GateVerdict]:
    out = []
    for ev in page.trace.events_of("gate"):
        d = ev.data
        subject = d.get("keyword") or d.get("product_id")
        out.append(
            GateVerdict(
                gate=str(d.get("gate", "")),
                level=str(d.get("level", "theme")),
                reason=str(d.get("reason", "")),
                placement=ev.placement,
                title=d.get("title") if isinstance(d.get("title"), str) else None,
                subject=str(subject) if subject is not None else None,
            )
        )
    return out


def find_outcome(outcomes: dict[str, ThemeOutcome], title: str) -> ThemeOutcome | None:
    """The outcome of ``title`` (keyed by normalized title), also when the theme generator
    shortened the teacher's title (the traced title is then a prefix of it)."""
    key = normalize(title)
    if key in outcomes:
        return outcomes[key]
    matches = [oc for k, oc in outcomes.items() if len(k) >= 8 and key.startswith(k)]
    return max(matches, key=lambda oc: len(oc.title)) if matches else None


def _repair_rejections(page: Page) -> list[tuple[str, str]]:
    """``(normalized title prefix, reason)`` of drafts the theme generator rejected."""
    out: list[tuple[str, str]] = []
    for rec in page.trace.stages:
        if rec.stage != "themes":
            continue
        for item in rec.details.get("themes_rejected") or []:
            if isinstance(item, str) and ": " in item:
                title, why = item.rsplit(": ", 1)
                out.append((normalize(title), why))
    return out


def _titles_asked(calls: Sequence[LLMCallRecord]) -> list[str]:
    titles: list[str] = []
    for call in calls:
        if call.stage == "themes" and isinstance(call.value, dict):
            for draft in call.value.get("themes") or []:
                if isinstance(draft, dict) and isinstance(draft.get("title"), str):
                    titles.append(draft["title"])
        elif call.stage == "themes" and isinstance(call.value, str) and call.value.strip():
            titles.append(call.value)  # one title per call (seeded themes)
        if call.theme_title:
            titles.append(call.theme_title)
    return titles


def shopper_record(
    page: Page,
    calls: list[LLMCallRecord],
    *,
    teacher: LLM,
    min_products: int,
    judge: Judge | None = None,
    user: UserContext | None = None,
) -> ShopperRecord:
    """Attach what the cascade made of each theme (gates, retrieval, page) to the calls."""
    verdicts = _verdicts(page)
    outcomes: dict[str, ThemeOutcome] = {}

    def outcome(title: str) -> ThemeOutcome:
        key = normalize(title)
        if key not in outcomes:
            outcomes[key] = ThemeOutcome(title=title)
        return outcomes[key]

    slots: dict[int, ThemeOutcome] = {}
    for v in verdicts:
        if v.title is not None and v.placement is not None:
            slots.setdefault(v.placement, outcome(v.title))
    for call in calls:
        if call.theme_title is not None and call.placement is not None:
            slots.setdefault(call.placement, outcome(call.theme_title))
    for slot, oc in slots.items():
        oc.slot = slot
    for v in verdicts:
        target = outcome(v.title) if v.title else slots.get(v.placement or -1)
        if target is not None:
            target.rejections.append(v)
    for ev in page.trace.events_of("fallback"):
        if ev.data.get("stage") == "keywords" and ev.placement in slots:
            slots[ev.placement].keywords_fell_back = True
    for rec in page.trace.stages:
        if rec.stage == "retrieve" and rec.placement in slots:
            cand = rec.details.get("candidates")
            if isinstance(cand, int):
                slots[rec.placement].candidates = cand
    for pl in page.placements:
        oc = outcome(pl.theme.title)
        oc.on_page = True
        oc.source = pl.source
        oc.keywords = list(pl.keywords)
        oc.density = len(pl.products)
    # Themes the teacher wrote that left no trace (the generator's repair may have cut or
    # rejected them): an outcome each, with the repair's reason when the trace has it.
    repaired = _repair_rejections(page)
    for title in _titles_asked(calls):
        if find_outcome(outcomes, title) is None:
            oc = outcome(title)
            why = next((r for t, r in repaired if normalize(title).startswith(t)), None)
            if why is not None:
                oc.rejections.append(
                    GateVerdict(gate="repair_drafts", level="theme", reason=why, title=title)
                )
    if judge is not None and user is not None:
        report = judge.judge(page, user)
        _on_theme_verdicts(page, report, outcome)
        for verdict in report.verdicts:
            if verdict.level != "placement" or verdict.placement is None:
                continue
            if 0 <= verdict.placement < len(page.placements):
                outcome(page.placements[verdict.placement].theme.title).judge.append(
                    JudgeVerdict(
                        judge=report.judge,
                        criterion=verdict.criterion,
                        passed=verdict.passed if verdict.valid else None,
                        score=verdict.score,
                        reason=verdict.reason,
                    )
                )
    return ShopperRecord(
        user_id=page.user_id,
        teacher_model_id=teacher.model_id,
        teacher_fingerprint=teacher.fingerprint,
        min_products=min_products,
        calls=calls,
        themes=list(outcomes.values()),
        gate_verdicts=verdicts,
        placements_on_page=len(page.placements),
        placements_from_model=sum(1 for p in page.placements if p.source == "llm"),
        fallbacks=[ev.message for ev in page.trace.events_of("fallback")],
        build_ms=page.trace.total_ms,
    )


ON_THEME_TOP = 5
"""Products per placement whose product-level ``on_theme`` verdicts are summarised."""
ON_THEME_MIN_SHARE = 0.6
"""The share of them that must be on theme for the ``on_theme@5`` verdict to pass."""


def _on_theme_verdicts(page: Page, report: Any, outcome: Callable[[str], ThemeOutcome]) -> None:
    """The judge's product ``on_theme`` verdicts of each placement's first products as one
    placement verdict ``on_theme@5`` (score: the on-theme share, as P-T@5 counts it)."""
    by_placement: dict[int, dict[str, bool]] = {}
    for v in report.verdicts:
        usable = v.valid and v.passed is not None and v.product_id is not None
        usable = usable and v.placement is not None
        if v.level == "product" and v.criterion == "on_theme" and usable:
            by_placement.setdefault(v.placement, {})[v.product_id] = v.passed
    for i, pl in enumerate(page.placements):
        judged = by_placement.get(i, {})
        top = [judged[p] for p in pl.product_ids[:ON_THEME_TOP] if p in judged]
        if not top:
            continue
        share = sum(top) / len(top)
        outcome(pl.theme.title).judge.append(
            JudgeVerdict(
                judge=report.judge,
                criterion=f"on_theme@{ON_THEME_TOP}",
                passed=share >= ON_THEME_MIN_SHARE,
                score=round(share, 4),
                reason=f"{sum(top)} of the first {len(top)} products on theme",
            )
        )


def _progress_printer(stream: TextIO) -> Progress:
    """A progress callback: a tqdm bar when tqdm is installed, else a plain line every 10%."""
    tqdm: Any = None
    with contextlib.suppress(ImportError):  # optional: not a dependency of the SDK
        tqdm = importlib.import_module("tqdm").tqdm
    state: dict[str, Any] = {}

    def report(done: int, total: int, user_id: str) -> None:
        if tqdm is not None:
            bar = state.get("bar")
            if bar is None:
                bar = state["bar"] = tqdm(total=total, unit="shopper", file=stream)
            bar.update(done - bar.n)
            bar.set_postfix_str(user_id)
            if done >= total:
                bar.close()
            return
        step = max(1, total // 10)
        if done and (done == total or done % step == 0):
            print(f"collect: {done}/{total} shoppers (last {user_id})", file=stream, flush=True)

    return report


def collect(
    catalog: Catalog,
    teacher: LLM,
    users: Iterable[UserContext],
    checkpoint: str | Path,
    *,
    cache: BaseGenerationCache | None = None,
    config: StorefrontConfig | None = None,
    gates: Sequence[Gate] | None = None,
    judge: Judge | None = None,
    progress: Progress | bool = False,
) -> list[ShopperRecord]:
    """Build every shopper's page with ``teacher`` and checkpoint one record per shopper.

    Returns all records in the checkpoint (earlier runs' included). Shoppers already in
    ``checkpoint`` are skipped; a user id given twice is collected once.
    """
    from ..storefront import Storefront, StorefrontConfig

    path = Path(checkpoint)
    if path.parent and not path.parent.exists():
        raise DistillError(f"{path}: folder {str(path.parent)!r} does not exist")
    if path.is_file():
        _drop_cut_tail(path)
    records = read_checkpoint(path)
    done = {r.user_id for r in records}
    todo: list[UserContext] = []
    for user in users:
        if user.user_id not in done:
            done.add(user.user_id)
            todo.append(user)
    cfg = config or StorefrontConfig()
    inner = CachingLLM(teacher, cache) if cache is not None else teacher
    recorder = RecordingLLM(inner)
    sf = Storefront(catalog, llm=recorder, cache=None, config=cfg, gates=gates)
    report: Progress | None
    if progress is True:
        report = _progress_printer(sys.stderr)
        if todo:
            report(0, len(todo), "")  # the bar shows before the first (slow) page
    elif progress is False:
        report = None
    else:
        report = progress
    with path.open("a", encoding="utf-8") as fh:
        for i, user in enumerate(todo, 1):
            recorder.take()
            started = time.perf_counter()
            page = sf.build(user)
            page.trace.total_ms = page.trace.total_ms or (time.perf_counter() - started) * 1e3
            rec = shopper_record(
                page,
                recorder.take(),
                teacher=teacher,
                min_products=cfg.min_products,
                judge=judge,
                user=user,
            )
            fh.write(json.dumps(rec.model_dump(mode="json"), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            records.append(rec)
            if report is not None:
                report(i, len(todo), user.user_id)
    return records
