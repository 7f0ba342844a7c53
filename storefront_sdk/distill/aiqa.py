"""filter (AIQA): keep the teacher labels the cascade's own quality checks confirm.

A *label* is one teacher call (its messages and decoded output). Every label is kept
in the output with ``kept`` and, when dropped, the reason codes, so the unfiltered
set stays available for the ablation. The rules, per label:

* keyword label (one theme): dropped when the call failed (``teacher_error``), when the
  theme was rejected by a theme-, keyword- or placement-level gate (``gate:<level>:<reason>``,
  ``density`` included), when its generated keywords retrieved too little and the baseline's
  replaced them (``keywords_fell_back``), when the placement did not reach the page
  (``not_on_page``), reached it with fewer than ``min_products`` products
  (``density_below:<n>``), or a judge failed it (``judge:<criterion>``, with ``use_judge``);
* themes label (a list of themes): each theme is checked as above (without the keyword
  rule); the label is dropped (``theme_yield:<good>/<all>``) when the share of good
  themes is below ``min_theme_yield``.

Product-level gate rejections never drop a label: the cascade replaces the product.
A keyword label whose output is outside its closed list, or outside ``taxonomy`` when one
is given, is an error (:class:`DistillError`), not a drop: such a label means the
records are corrupt, since the cascade only accepts in-taxonomy keywords.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..taxonomy import KeywordTaxonomy
from ..text import normalize
from .collect import find_outcome
from .errors import DistillError
from .records import JudgeVerdict, Label, LLMCallRecord, ShopperRecord, ThemeOutcome

__all__ = ["FilterReport", "aiqa_filter", "labels_of", "read_labels", "write_labels"]

_DROPPING_LEVELS = frozenset({"theme", "keyword", "placement"})


class FilterReport(BaseModel):
    """How many labels were kept and why the others were dropped."""

    model_config = ConfigDict(extra="forbid")

    labels: int = 0
    kept: int = 0
    dropped: int = 0
    kept_by_stage: dict[str, int] = Field(default_factory=dict)
    drop_reasons: dict[str, int] = Field(default_factory=dict)
    min_products: int = 0
    min_theme_yield: float = 0.0
    use_judge: bool = False
    min_on_theme: float | None = None


def _assistant_text(call: LLMCallRecord) -> str:
    if call.constraint.kind == "multi_choice" and isinstance(call.value, list):
        return json.dumps({"items": call.value}, ensure_ascii=False)
    if call.constraint.kind in ("structured", "text") and call.raw.strip():
        return call.raw.strip()  # the teacher's own text (it validated)
    if call.value is not None:
        return json.dumps(call.value, ensure_ascii=False)
    return call.raw.strip()


def _check_keywords(
    rec: ShopperRecord, call: LLMCallRecord, taxonomy: KeywordTaxonomy | None
) -> None:
    if call.constraint.kind != "multi_choice" or call.error is not None:
        return
    items = call.value if isinstance(call.value, list) else None
    where = f"shopper {rec.user_id!r}, call {call.index} ({call.stage})"
    if items is None:
        raise DistillError(f"{where}: keyword output is not a list: {call.value!r}"[:500])
    allowed = set(call.constraint.options or ())
    for kw in items:
        if not isinstance(kw, str) or kw not in allowed:
            raise DistillError(f"{where}: keyword {kw!r} is not one of the call's options")
        if taxonomy is not None and taxonomy.canonical(kw) is None:
            raise DistillError(f"{where}: keyword {kw!r} is outside the taxonomy")


def _judge_failed(j: JudgeVerdict, min_on_theme: float | None) -> bool:
    """A judge verdict that drops the label: failed, or for ``on_theme@k`` with
    ``min_on_theme`` set, an on-theme share below it."""
    if min_on_theme is not None and j.criterion.startswith("on_theme@") and j.score is not None:
        return bool(j.score < min_on_theme)
    return j.passed is False


def _theme_reasons(
    oc: ThemeOutcome | None,
    min_products: int,
    use_judge: bool,
    keyword_label: bool,
    min_on_theme: float | None = None,
) -> list[str]:
    if oc is None:
        return ["theme_not_traced"]
    reasons = [
        f"gate:{v.level}:{v.reason.split(':')[0] or 'rejected'}"
        for v in oc.rejections
        if v.level in _DROPPING_LEVELS
    ]
    if keyword_label and oc.keywords_fell_back:
        reasons.append("keywords_fell_back")
    if not oc.on_page:
        reasons.append("not_on_page")
    elif oc.density < min_products:
        reasons.append(f"density_below:{min_products}")
    if use_judge:
        reasons.extend(f"judge:{j.criterion}" for j in oc.judge if _judge_failed(j, min_on_theme))
    return list(dict.fromkeys(reasons))


def labels_of(
    records: Iterable[ShopperRecord],
    *,
    min_products: int | None = None,
    min_theme_yield: float = 0.5,
    use_judge: bool = False,
    taxonomy: KeywordTaxonomy | None = None,
    min_on_theme: float | None = None,
) -> list[Label]:
    """Every themes/keywords call of ``records`` as a :class:`Label` with its AIQA verdict."""
    if not 0.0 <= min_theme_yield <= 1.0:
        raise DistillError(f"min_theme_yield must be within 0..1, got {min_theme_yield}")
    out: list[Label] = []
    for rec in records:
        floor = rec.min_products if min_products is None else min_products
        by_title = {normalize(t.title): t for t in rec.themes}

        def find(
            title: str | None, by_title: dict[str, ThemeOutcome] = by_title
        ) -> ThemeOutcome | None:
            return find_outcome(by_title, title) if title else None

        for call in rec.calls:
            if call.stage not in ("themes", "keywords"):
                continue
            _check_keywords(rec, call, taxonomy)
            reasons: list[str] = []
            titles: list[str] = []
            if call.error is not None or call.value is None:
                reasons.append("teacher_error")
            elif call.stage == "keywords":
                titles = [call.theme_title] if call.theme_title else []
                reasons.extend(
                    _theme_reasons(find(call.theme_title), floor, use_judge, True, min_on_theme)
                )
            elif isinstance(call.value, str):
                # One title per call (the seeded profile of the local model): one theme.
                titles = [call.value]
                reasons.extend(
                    _theme_reasons(find(call.value), floor, use_judge, False, min_on_theme)
                )
            else:
                drafts = call.value.get("themes") if isinstance(call.value, dict) else None
                titles = [
                    d["title"]
                    for d in drafts or []
                    if isinstance(d, dict) and isinstance(d.get("title"), str)
                ]
                good = sum(
                    1
                    for t in titles
                    if not _theme_reasons(find(t), floor, use_judge, False, min_on_theme)
                )
                if not titles or good / len(titles) < min_theme_yield:
                    reasons.append(f"theme_yield:{good}/{len(titles)}")
            digest = hashlib.sha256(
                f"{rec.user_id}\x00{call.index}\x00{call.raw}".encode()
            ).hexdigest()[:16]
            out.append(
                Label(
                    label_id=digest,
                    user_id=rec.user_id,
                    stage=call.stage,
                    call_index=call.index,
                    messages=call.messages,
                    output=_assistant_text(call),
                    constraint=call.constraint,
                    teacher_model_id=call.model_id,
                    temperature=call.temperature,
                    theme_titles=titles,
                    kept=not reasons,
                    drop_reasons=reasons,
                )
            )
    return out


def aiqa_filter(
    records: Iterable[ShopperRecord],
    *,
    min_products: int | None = None,
    min_theme_yield: float = 0.5,
    use_judge: bool = False,
    taxonomy: KeywordTaxonomy | None = None,
    min_on_theme: float | None = None,
) -> tuple[list[Label], FilterReport]:
    """All labels (kept and dropped, with reasons) and the counts; see the module docs.

    ``min_products`` defaults to each record's own (the collecting storefront's).
    ``min_on_theme`` (with ``use_judge``) replaces the judge's own pass mark of the
    ``on_theme@k`` verdicts (the share of a placement's first products on theme).
    Raises :class:`DistillError` when there are no labels at all.
    """
    labels = labels_of(
        records,
        min_products=min_products,
        min_theme_yield=min_theme_yield,
        use_judge=use_judge,
        taxonomy=taxonomy,
        min_on_theme=min_on_theme,
    )
    if not labels:
        raise DistillError(
            "no labels: the records hold no themes or keyword calls of the teacher "
            "(was the teacher used at all? see the page traces' 'config' event)"
        )
    reasons: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    for label in labels:
        if label.kept:
            kept[label.stage] += 1
        for r in label.drop_reasons:
            reasons[r.split(":")[0] if r.startswith("theme_yield") else r] += 1
    n_kept = sum(kept.values())
    report = FilterReport(
        labels=len(labels),
        kept=n_kept,
        dropped=len(labels) - n_kept,
        kept_by_stage=dict(kept),
        drop_reasons=dict(reasons.most_common()),
        min_products=min_products or 0,
        min_theme_yield=min_theme_yield,
        use_judge=use_judge,
        min_on_theme=min_on_theme,
    )
    return labels, report


def write_labels(labels: Iterable[Label], path: str | Path) -> int:
    """Write labels as JSON Lines; returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for label in labels:
            fh.write(label.model_dump_json() + "\n")
            n += 1
    return n


def read_labels(path: str | Path) -> list[Label]:
    """Labels written by :func:`write_labels`; a bad line raises naming file and line."""
    p = Path(path)
    if not p.is_file():
        raise DistillError(f"{p}: no such labels file")
    out: list[Label] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(Label.model_validate_json(line))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(x) for x in err["loc"]) or "<line>"
                raise DistillError(f"{p}:{lineno}: not a label ({where}: {err['msg']})") from None
    return out
