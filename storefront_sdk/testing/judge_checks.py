"""``check_judge``: the conformance check for :class:`~storefront_sdk.interfaces.Judge`."""

from __future__ import annotations

import asyncio
import copy
import inspect
import math
from collections.abc import Callable
from typing import Any

from ..catalog import Catalog
from ..interfaces import Judge
from ..llm.base import LLM
from ..types import Interaction, JudgeReport, Page, Placement, ScoredProduct, Theme, UserContext
from .conformance import ConformanceError
from .mock_llm import MockLLM

__all__ = ["check_judge", "sample_page"]


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConformanceError(message)


def sample_page(
    catalog: Catalog, *, placements: int = 2, products: int = 5
) -> tuple[Page, UserContext]:
    """A small page over ``catalog`` and a user whose history is the page's first products.

    Placements take consecutive runs of the catalog, grouped by aisle where possible,
    so that they look like real carousels to a judge.
    """
    by_aisle: dict[str, list[Any]] = {}
    for p in list(catalog)[:5000]:
        by_aisle.setdefault(p.aisle or p.department or "misc", []).append(p)
    groups = sorted(by_aisle.items(), key=lambda kv: -len(kv[1]))[:placements]
    pls: list[Placement] = []
    for aisle, items in groups:
        chosen = items[:products]
        pls.append(
            Placement(
                theme=Theme(title=f"Best of {aisle}"[:120], description=f"Picks from {aisle}."),
                keywords=[aisle],
                products=[
                    ScoredProduct.of(p, score=1.0 - i / 10, keyword=aisle)
                    for i, p in enumerate(chosen)
                ],
                source="custom",
            )
        )
    history = [
        Interaction(product_id=sp.product.id, order_number=1 + i % 2)
        for i, sp in enumerate(sp for pl in pls for sp in pl.products[:2])
    ]
    user = UserContext(user_id="conformance-user", history=history)
    return Page(user_id=user.user_id, placements=pls), user


def _run(what: str, fn: Callable[[], Any]) -> Any:
    """Run one judge call; an exception is a contract violation (failures become verdicts)."""
    try:
        return fn()
    except ConformanceError:
        raise
    except Exception as exc:
        raise ConformanceError(
            f"{what} raised {type(exc).__name__}: {exc}; a judge records what it cannot "
            "judge as verdicts (valid=False), it does not raise"
        ) from exc


def _keys(report: JudgeReport) -> list[tuple[str, str, int | None, str | None]]:
    return sorted((v.level, v.criterion, v.placement, v.product_id) for v in report.verdicts)


def _check_report(got: Any, page: Page, what: str) -> JudgeReport:
    _require(isinstance(got, JudgeReport), f"{what} must return a JudgeReport")
    report: JudgeReport = got
    _require(report.user_id == page.user_id, f"{what}: report.user_id must be the page's user_id")
    _require(
        isinstance(report.judge, str) and bool(report.judge),
        f"{what}: report.judge must name the judge",
    )
    for v in report.verdicts:
        where = f"{what}: verdict {v.level}/{v.criterion}"
        if v.level in ("placement", "product"):
            _require(
                v.placement is not None and 0 <= v.placement < len(page.placements),
                f"{where} must name a placement index within the page",
            )
        if v.level == "product":
            assert v.placement is not None
            _require(
                v.product_id in page.placements[v.placement].product_ids,
                f"{where}: product_id {v.product_id!r} is not in placement {v.placement}",
            )
        if v.valid:
            _require(
                v.score is not None or v.passed is not None or bool(v.reason),
                f"{where} has neither a score nor passed, and no reason why it does not apply",
            )
            _require(
                v.score is None or (math.isfinite(v.score) and 0.0 <= v.score <= 1.0),
                f"{where}: score {v.score} must be a finite number in [0, 1]",
            )
        else:
            _require(bool(v.reason), f"{where} is invalid and must say why in its reason")
            _require(
                v.score is None and v.passed is None,
                f"{where} is invalid and must not carry a score or a pass/fail",
            )
    return report


def check_judge(
    judge: Judge,
    catalog: Catalog,
    *,
    with_llm: Callable[[LLM], Judge] | None = None,
) -> None:
    """Check a :class:`~storefront_sdk.interfaces.Judge` on a small page over ``catalog``.

    * ``judge``/``ajudge`` have identical signatures; ``ajudge`` is ``async def``;
    * a :class:`JudgeReport` for the page's user, naming the judge, with at least one verdict;
      placement and product verdicts point into the page; valid verdicts carry a score in
      [0, 1] or a pass/fail (or, when the criterion does not apply, a reason saying so);
      invalid ones carry a reason and no score;
    * ``ajudge`` gives verdicts on the same (level, criterion, placement, product);
    * an empty page is judged without raising;
    * for a model-backed judge -- ``with_llm(llm)`` builds one like ``judge`` around a
      given LLM, or, without it, the judge's ``llm`` attribute is set on a copy -- output
      that does not validate is *recorded* as ``valid=False`` verdicts, not dropped: the
      same verdicts as with a well-behaved model.
    """
    name = type(judge).__name__
    _require(isinstance(judge, Judge), f"{name} is not a Judge subclass")
    shape = [
        [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
        for fn in (type(judge).judge, type(judge).ajudge)
    ]
    _require(shape[0] == shape[1], f"{name}.judge and .ajudge must have identical signatures")
    _require(inspect.iscoroutinefunction(type(judge).ajudge), f"{name}.ajudge must be an async def")

    page, user = sample_page(catalog)
    report = _check_report(
        _run(f"{name}.judge", lambda: judge.judge(page, user)), page, f"{name}.judge"
    )
    _require(bool(report.verdicts), f"{name}.judge gave no verdict at all on a two-placement page")
    areport = _check_report(
        _run(f"{name}.ajudge", lambda: asyncio.run(judge.ajudge(page, user))),
        page,
        f"{name}.ajudge",
    )
    _require(
        _keys(areport) == _keys(report),
        f"{name}.ajudge must judge the same things as .judge",
    )
    empty = Page(user_id=user.user_id)
    what = f"{name}.judge on an empty page"
    _check_report(_run(what, lambda: judge.judge(empty, user)), empty, what)

    if with_llm is None and isinstance(getattr(judge, "llm", None), LLM):

        def with_llm(llm: LLM) -> Judge:
            clone = copy.copy(judge)
            clone.llm = llm  # type: ignore[attr-defined]
            return clone

    if with_llm is None:
        return
    what = f"{name} with a well-behaved model"
    good_judge = with_llm(MockLLM())
    good = _check_report(_run(what, lambda: good_judge.judge(page, user)), page, what)
    bad_llm = MockLLM("this is not what you asked for")
    what = f"{name} with a broken model"
    bad_judge = with_llm(bad_llm)
    bad = _check_report(_run(what, lambda: bad_judge.judge(page, user)), page, what)
    _require(
        bad_llm.calls > 0,
        f"{name} never called the model it was given; if setting its llm attribute does not "
        f"change the model it uses, pass with_llm=lambda llm: {name}(llm, ...)",
    )
    _require(
        _keys(bad) == _keys(good),
        f"{name} dropped verdicts when the model's output did not validate: "
        f"{len(bad.verdicts)} verdicts instead of {len(good.verdicts)}; "
        "record them with valid=False",
    )
    _require(
        any(not v.valid for v in bad.verdicts),
        f"{name} with a broken model must record its verdicts as invalid (valid=False)",
    )
