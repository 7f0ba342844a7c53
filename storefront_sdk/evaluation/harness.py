"""The evaluation harness: build every case's page under several configurations, side by side.

``evaluate(cases, {"history": sf})`` builds one page per case and
configuration, judges it, computes the metrics of :mod:`.metrics` per case,
averages them per configuration, counts gate rejections and fallbacks from the
pages' traces and keeps a few pages for previews. The result, an
:class:`EvalReport`, prints as a text table and saves as JSON (and as HTML
through :func:`storefront_sdk.render.render_report_html`).

Beside every configuration the harness computes the simple references of
:mod:`.references` (``popular``, ``buy_again``) for the same users *at the same
counts*: cut to the page's own number of products for next-basket recall, and
to the page's own number of unseen products for discovery recall. Each
configuration gets the paired differences (``recall - buy_again``,
``discovery - popular``); the reference columns, listed first, are computed at
the counts of ``reference_counts`` (default: the first configuration).

It stays one module because it is one loop: building, judging, aggregating and reporting
are the stages of the same evaluate call.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import BaseModel, ConfigDict, Field

from ..exceptions import ConfigurationError
from ..interfaces import Judge, RelevanceFilter
from ..types import JudgeReport, Page
from . import metrics as m
from .instacart import EvalCase
from .judges import HeuristicJudge
from .references import REFERENCES, PopularList, reference_lists

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..storefront import Storefront, StorefrontConfig

__all__ = ["CaseResult", "EvalReport", "evaluate", "standard_configs"]

#: Metrics shown by :meth:`EvalReport.table`, in order, with their labels.
TABLE_METRICS: tuple[tuple[str, str], ...] = (
    ("recall", "next-basket recall"),
    ("discovery_recall", "discovery recall (page's unseen count)"),
    ("recall_vs_buy_again", "recall - buy_again"),
    ("discovery_vs_popular", "discovery - popular"),
    ("discovery_recall_own", "discovery recall (list's own count)"),
    ("weighted_recall", "position-weighted recall"),
    ("products", "products / page"),
    ("unseen", "unseen products / page"),
    ("hit_rate", "hit rate"),
    ("P-T@5", "P-T@5"),
    ("P-T@20", "P-T@20"),
    ("K-U", "K-U"),
    ("density", "density (share >= min)"),
    ("products_per_placement", "products / placement"),
    ("placements", "placements / page"),
    ("departments", "departments shown"),
    ("aisles", "aisles shown"),
    ("diversity", "diversity (products)"),
    ("aisle_diversity", "diversity (aisles)"),
    ("novelty", "novelty"),
    ("llm_share", "placements from the model"),
    ("fallback_share", "placements from fallbacks"),
    ("title_quality", "title quality (all placements)"),
    ("title_quality_llm", "title quality (model's placements)"),
    ("keywords_in_taxonomy", "keywords inside the taxonomy"),
    ("tokens", "model tokens / page"),
    ("build_ms", "build ms / page"),
)


class CaseResult(BaseModel):
    """One case under one configuration: its metrics and the judge's pass rates."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    user_id: str
    metrics: dict[str, float]
    invalid_verdicts: int = 0


class EvalReport(BaseModel):
    """Per-configuration metrics (means over cases), trace counts and sample pages.

    ``metrics[config][name]`` is the mean over cases where the metric is defined
    (nan when it never is); ``gate_rejections[config]["Gate: reason"]`` and
    ``fallbacks[config]["stage: reason"]`` count trace entries over all pages;
    ``judge_pass_rates[config]["level/criterion"]`` is the share of valid
    verdicts that passed.
    """

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    configs: list[str]
    references: list[str] = Field(default_factory=list)
    reference_counts: str | None = None
    n_cases: int
    k: list[int]
    judge: str | None = None
    min_products: int | None = None
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    judge_pass_rates: dict[str, dict[str, float]] = Field(default_factory=dict)
    invalid_verdicts: dict[str, int] = Field(default_factory=dict)
    gate_rejections: dict[str, dict[str, int]] = Field(default_factory=dict)
    fallbacks: dict[str, dict[str, int]] = Field(default_factory=dict)
    events: dict[str, dict[str, int]] = Field(default_factory=dict)
    per_case: dict[str, list[CaseResult]] = Field(default_factory=dict)
    sample_pages: dict[str, list[Page]] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=datetime.now)

    def ratio(self, metric: str, config: str, baseline: str) -> float:
        """``metrics[config][metric] / metrics[baseline][metric]`` (nan when undefined)."""
        a = self.metrics.get(config, {}).get(metric, math.nan)
        b = self.metrics.get(baseline, {}).get(metric, math.nan)
        if math.isnan(a) or math.isnan(b) or b == 0:
            return math.inf if b == 0 and a > 0 else math.nan
        return a / b

    def table(self) -> str:
        """A plain-text table: one row per metric, configurations side by side."""
        rows: list[tuple[str, list[str]]] = []
        for key, label in TABLE_METRICS:
            if any(key in self.metrics.get(c, {}) for c in self.configs):
                rows.append((label, [_fmt(self.metrics.get(c, {}).get(key)) for c in self.configs]))
        crits = sorted({k for c in self.configs for k in self.judge_pass_rates.get(c, {})})
        if crits:
            rows.append(("", ["" for _ in self.configs]))
            for crit in crits:
                rows.append(
                    (
                        f"judge {crit}",
                        [_fmt(self.judge_pass_rates.get(c, {}).get(crit)) for c in self.configs],
                    )
                )
            rows.append(
                ("invalid verdicts", [str(self.invalid_verdicts.get(c, 0)) for c in self.configs])
            )
        rows.append(("", ["" for _ in self.configs]))
        rows.append(
            (
                "gate rejections",
                [str(sum(self.gate_rejections.get(c, {}).values())) for c in self.configs],
            )
        )
        rows.append(
            ("fallbacks", [str(sum(self.fallbacks.get(c, {}).values())) for c in self.configs])
        )

        width0 = max([len("metric"), *(len(r[0]) for r in rows)])
        widths = [max(len(c), *(len(r[1][i]) for r in rows), 6) for i, c in enumerate(self.configs)]
        head = (
            "metric".ljust(width0)
            + "  "
            + "  ".join(c.rjust(w) for c, w in zip(self.configs, widths, strict=True))
        )
        note = (
            f"; references ({', '.join(self.references)}) at the counts of "
            f"{self.reference_counts!r}"
            if self.references
            else ""
        )
        lines = [
            f"{self.n_cases} users, judge: {self.judge or 'none'}{note}",
            head,
            "-" * len(head),
        ]
        for label, cells in rows:
            lines.append(
                label.ljust(width0)
                + "  "
                + "  ".join(v.rjust(w) for v, w in zip(cells, widths, strict=True))
            )
        return "\n".join(lines)

    def to_json(self, path: str | Path) -> Path:
        """Write the report as JSON (undefined values as ``"NaN"``); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        return p

    @classmethod
    def from_json(cls, path: str | Path) -> EvalReport:
        """Read a report written by :meth:`to_json`."""
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def _fmt(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "-"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


class _Progress:
    """A one-line progress indicator on stderr: no dependency, silent when disabled."""

    def __init__(self, total: int, label: str, stream: TextIO | None) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.done = 0
        self.start = time.perf_counter()

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.stream is None:
            return
        elapsed = time.perf_counter() - self.start
        finished = self.done >= self.total
        if self.stream.isatty():
            bar = "#" * int((self.done / self.total if self.total else 1.0) * 24)
            self.stream.write(
                f"\r{self.label:<12} [{bar:<24}] {self.done}/{self.total} pages  {elapsed:6.1f}s"
            )
            if finished:
                self.stream.write("\n")
        elif finished or self.done * 10 // self.total > (self.done - n) * 10 // self.total:
            # Logs and pipes: a line per tenth of the way, no carriage returns.
            self.stream.write(f"{self.label:<12} {self.done}/{self.total} pages  {elapsed:6.1f}s\n")
        self.stream.flush()


def _case_metrics(
    page: Page,
    case: EvalCase,
    report: JudgeReport | None,
    sf: Storefront,
    ku_filter: RelevanceFilter,
    k: Sequence[int],
    min_products: int,
    ku_min_relevant: int,
) -> dict[str, float]:
    targets = case.target_product_ids
    out: dict[str, float] = {
        "recall": m.next_basket_recall(page, targets),
        "discovery_recall": m.discovery_recall(page, targets, case.user),
        "hit_rate": m.hit_rate(page, targets),
    }
    if report is not None:
        judged = m.on_theme_from_report(report)
        for kk in k:
            out[f"P-T@{kk}"] = m.precision_on_theme(page, judged, k=kk)
    out["K-U"] = m.keyword_utilisation(
        page,
        sf.retriever,
        ku_filter,
        min_relevant=ku_min_relevant,
        lookup=sf.catalog.get,
    )
    out.update(
        {
            "density": m.density(page, min_products=min_products),
            "products_per_placement": m.mean_placement_size(page),
            "placements": float(len(page.placements)),
            "departments": m.department_coverage(page),
            "aisles": m.aisle_coverage(page),
            "diversity": m.diversity(page),
            "aisle_diversity": m.diversity(page, by="aisles"),
            "novelty": m.novelty(page, case.user),
            "llm_share": _source_share(page, "llm"),
            "fallback_share": _source_share(page, "fallback"),
            "title_quality": _title_quality(page, None),
            "title_quality_llm": _title_quality(page, "llm"),
            "keywords_in_taxonomy": _keywords_in_taxonomy(page, sf),
            "tokens": float(
                sum((s.prompt_tokens or 0) + (s.completion_tokens or 0) for s in page.trace.stages)
            ),
            "build_ms": page.trace.total_ms,
        }
    )
    return out


def _keywords_in_taxonomy(page: Page, sf: Storefront) -> float:
    """Share of the keywords on the page's placements that are members of the storefront's
    closed taxonomy (1.0 is the contract); nan when the page has no keywords."""
    keywords = [kw for pl in page.placements for kw in pl.keywords]
    if not keywords:
        return math.nan
    return sum(kw in sf.taxonomy for kw in keywords) / len(keywords)


def _title_quality(page: Page, source: str | None) -> float:
    """Share of the page's placements (of ``source`` only, when given) whose title passes
    the judges' title rules (:func:`~.judges.title_problems`); nan when there are none."""
    from .judges import title_problems

    titles = [pl.theme.title for pl in page.placements]
    passed = [
        not title_problems(pl.theme.title, titles[:i] + titles[i + 1 :])
        for i, pl in enumerate(page.placements)
        if source is None or pl.source == source
    ]
    return sum(passed) / len(passed) if passed else math.nan


def _reference_metrics(
    page: Page,
    case: EvalCase,
    popular: PopularList,
    names: Sequence[str],
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The page's count-based metrics, and each reference's at the page's counts."""
    targets = case.target_product_ids
    user = case.user
    ids = list(dict.fromkeys(page.product_ids))
    n, u = len(ids), m.unseen_count(page, user)
    sizes = [len(pl.products) for pl in page.placements]
    own = {
        "products": float(n),
        "unseen": float(u),
        "discovery_recall_own": m.discovery_recall(page, targets, user),
        "weighted_recall": m.position_weighted_recall(
            [pl.product_ids for pl in page.placements], targets
        ),
    }
    refs: dict[str, dict[str, float]] = {}
    lists = reference_lists(user, popular.ids, popular.catalog)
    history = {it.product_id for it in user.history}
    for name in names:
        full = lists[name]
        cut = full[:n]
        layout: list[list[str]] = []
        start = 0
        for size in sizes:
            layout.append(cut[start : start + size])
            start += size
        refs[name] = {
            "recall": m.list_recall(cut, targets),
            "discovery_recall": m.discovery_recall_at(full, targets, user, u),
            "discovery_recall_own": m.discovery_recall_at(cut, targets, user, n),
            "weighted_recall": m.position_weighted_recall(layout, targets),
            "hit_rate": m.list_hit_rate(cut, targets),
            "products": float(len(cut)),
            "unseen": float(sum(1 for pid in cut if pid not in history)),
        }
    return own, refs


def _source_share(page: Page, source: str) -> float:
    """Share of the page's placements whose ``source`` is ``source`` (nan for an empty page)."""
    if not page.placements:
        return math.nan
    return sum(1 for pl in page.placements if pl.source == source) / len(page.placements)


def evaluate(
    cases: Sequence[EvalCase],
    configs: Mapping[str, Storefront],
    *,
    judge: Judge | None = None,
    k: Iterable[int] = (5, 20),
    min_products: int | None = None,
    ku_filter: RelevanceFilter | None = None,
    ku_min_relevant: int = 1,
    keep_pages: int = 3,
    progress: bool | TextIO = True,
    references: Sequence[str] = REFERENCES,
    reference_counts: str | None = None,
) -> EvalReport:
    """Build, judge and measure every case's page under each configuration.

    ``judge`` decides on-theme products for P-T@k (default: a
    :class:`~.judge_relevance.RelevanceModelJudge` over the first
    configuration's catalog: a relevance model trained on human labels, not
    the pipeline's filter).
    K-U issues each keyword to the configuration's own retriever and judges the
    results with ``ku_filter`` (default: the judge's filter when it has one,
    else the configuration's). ``min_products`` defaults to each configuration's
    own ``config.min_products``. ``progress`` writes a progress line to stderr
    (or to the given stream).

    ``references`` (default ``popular`` and ``buy_again``, see
    :mod:`.references`) are computed for every configuration at its pages'
    counts: each configuration's metrics include ``recall_vs_buy_again`` and
    ``discovery_vs_popular`` (mean paired differences) and
    ``ref:<name>:<metric>``; the reference columns of the report (listed first)
    hold the references at the counts of ``reference_counts`` (default: the
    first configuration).
    """
    if not configs:
        raise ConfigurationError("evaluate() needs at least one configuration")
    unknown_refs = [r for r in references if r not in REFERENCES]
    if unknown_refs:
        raise ConfigurationError(
            f"unknown reference(s) {unknown_refs}: choose from {', '.join(REFERENCES)}"
        )
    clash = [r for r in references if r in configs]
    if clash:
        raise ConfigurationError(f"configuration name(s) {clash} are reserved for references")
    counts_of = reference_counts or next(iter(configs))
    if counts_of not in configs:
        raise ConfigurationError(f"reference_counts={counts_of!r} is not a configuration")
    ks = sorted(set(k))
    first = next(iter(configs.values()))
    if judge is None:
        # Never the pipeline's own filter: a relevance model trained on human labels.
        from .judge_relevance import RelevanceModelJudge

        judge = RelevanceModelJudge(first.catalog)
    stream: TextIO | None = sys.stderr if progress is True else (progress or None)
    refs = list(references)
    report = EvalReport(
        configs=[*refs, *configs],
        references=refs,
        reference_counts=counts_of if refs else None,
        n_cases=len(cases),
        k=ks,
        judge=judge.name,
        min_products=min_products,
    )
    for name, sf in configs.items():
        need = min_products if min_products is not None else sf.config.min_products
        flt = ku_filter or (
            judge.filter if isinstance(judge, HeuristicJudge) else sf.relevance_filter
        )
        bar = _Progress(len(cases), name, stream)
        per_case: list[CaseResult] = []
        gates: Counter[str] = Counter()
        falls: Counter[str] = Counter()
        events: Counter[str] = Counter()
        passes: dict[str, list[bool]] = {}
        invalid = 0
        samples: list[Page] = []
        popular = PopularList(sf.catalog)
        ref_cases: dict[str, list[CaseResult]] = {r: [] for r in refs}
        for case in cases:
            page = sf.build(case.user)
            jr = judge.judge(page, case.user)
            values = _case_metrics(page, case, jr, sf, flt, ks, need, ku_min_relevant)
            own, ref_values = _reference_metrics(page, case, popular, refs)
            values.update(own)
            for r, rv in ref_values.items():
                values.update({f"ref:{r}:{key}": v for key, v in rv.items()})
                ref_cases[r].append(CaseResult(user_id=case.user.user_id, metrics=rv))
            if "buy_again" in ref_values:
                values["recall_vs_buy_again"] = values["recall"] - ref_values["buy_again"]["recall"]
            if "popular" in ref_values:
                values["discovery_vs_popular"] = (
                    values["discovery_recall"] - ref_values["popular"]["discovery_recall"]
                )
            n_invalid = len(jr.invalid)
            invalid += n_invalid
            for v in jr.verdicts:
                if v.valid and v.passed is not None:
                    passes.setdefault(f"{v.level}/{v.criterion}", []).append(v.passed)
            per_case.append(
                CaseResult(user_id=case.user.user_id, metrics=values, invalid_verdicts=n_invalid)
            )
            for ev in page.trace.events:
                events[ev.kind] += 1
            for ev in page.trace.events_of("gate"):
                gates[f"{ev.data.get('gate', '?')}: {ev.data.get('reason', '?')}"] += 1
            for rec in page.trace.fallbacks:
                falls[f"{rec.stage}: {_short(rec.fallback_reason or '')}"] += 1
            if len(samples) < keep_pages:
                samples.append(page)
            bar.step()
        keys = list(dict.fromkeys(key for cr in per_case for key in cr.metrics))
        report.metrics[name] = {
            key: m.nanmean(cr.metrics.get(key, math.nan) for cr in per_case) for key in keys
        }
        report.judge_pass_rates[name] = {c: sum(v) / len(v) for c, v in sorted(passes.items())}
        report.invalid_verdicts[name] = invalid
        report.gate_rejections[name] = dict(gates.most_common())
        report.fallbacks[name] = dict(falls.most_common())
        report.events[name] = dict(events.most_common())
        report.per_case[name] = per_case
        report.sample_pages[name] = samples
        if name == counts_of:
            for r, rcases in ref_cases.items():
                rkeys = list(dict.fromkeys(k for cr in rcases for k in cr.metrics))
                report.metrics[r] = {
                    key: m.nanmean(cr.metrics.get(key, math.nan) for cr in rcases) for key in rkeys
                }
                report.per_case[r] = rcases
    return report


def _short(reason: str, limit: int = 80) -> str:
    """Group fallback reasons: keep the head before any ':', numbers as N."""
    head = reason.split(":")[0] if ":" in reason else reason
    return re.sub(r"\d+", "N", head).strip()[:limit]


def standard_configs(
    catalog: Catalog,
    names: Sequence[str] = ("history",),
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    config: StorefrontConfig | None = None,
    cache: Any = None,
    adapter: str | Path | None = None,
) -> dict[str, Storefront]:
    """The named configurations the CLI compares, all with the same page shape.

    ``history``: ``Storefront(catalog, llm=None)``, the default without a
    model; ``static``: fixed themes for everyone (a strawman kept for
    regression checks, not a baseline to quote); ``local``: the local model
    (``LocalLLM.default()``); ``local-base``: the plain local model without any adapter
    (``LocalLLM.base()``); ``teacher``: the plain local model with best-of-4 sampling
    (:class:`~storefront_sdk.distill.BestOfNLLM`, the teacher of the distillation labels);
    ``http``: an OpenAI-compatible server at ``base_url`` serving ``model``.
    ``adapter``: a LoRA adapter file that ``local`` uses instead of the shipped student
    (``LocalLLM(adapter_path=adapter)``), e.g. a student trained on other labels.
    """
    from ..filtering.lexical import LexicalRelevanceFilter
    from ..generation.static import StaticThemeGenerator
    from ..retrieval.bm25 import BM25Retriever
    from ..storefront import Storefront
    from ..taxonomy import KeywordTaxonomy

    # One index, vocabulary and filter for all: the configurations differ only in generation.
    shared: dict[str, Any] = {
        "retriever": BM25Retriever(catalog),
        "relevance_filter": LexicalRelevanceFilter(catalog),
        "taxonomy": KeywordTaxonomy.from_catalog(catalog),
        "config": config,
    }
    out: dict[str, Storefront] = {}
    for name in names:
        if name == "static":
            out[name] = Storefront(
                catalog, llm=None, cache=None, theme_generator=StaticThemeGenerator(), **shared
            )
        elif name == "history":
            out[name] = Storefront(catalog, llm=None, cache=None, **shared)
        elif name == "local":
            from ..llm.outlines import LocalLLM

            student = LocalLLM.default() if adapter is None else LocalLLM(adapter_path=adapter)
            out[name] = Storefront(catalog, llm=student, cache=cache, **shared)
        elif name in ("local-base", "teacher"):
            plain: Any = _plain_local_llm()
            if name == "teacher":
                from ..distill.teacher import BestOfNLLM, JudgeScorer

                plain = BestOfNLLM(
                    plain, n=4, temperature=0.8, seed=0, scorer=JudgeScorer(catalog)
                )
            out[name] = Storefront(catalog, llm=plain, cache=cache, **shared)
        elif name == "http":
            if not base_url or not model:
                raise ConfigurationError("the 'http' configuration needs base_url and model")
            from ..llm.openai import OpenAICompatibleLLM

            llm = OpenAICompatibleLLM(base_url, model, api_key=api_key)
            out[name] = Storefront(catalog, llm=llm, cache=cache, **shared)
        else:
            raise ConfigurationError(
                f"unknown configuration {name!r}: choose from {', '.join(CONFIG_NAMES)}"
            )
    return out


CONFIG_NAMES: tuple[str, ...] = ("static", "history", "local", "local-base", "teacher", "http")
"""The configurations :func:`standard_configs` (and ``storefront eval --configs``) knows."""


def _plain_local_llm() -> Any:
    """The plain local model, no adapter: ``LocalLLM.base()`` where it exists, else the
    SmolLM2 model as ``LocalLLM.default()`` loads it (checked installed the same way)."""
    from ..llm.outlines import LocalLLM

    base = getattr(LocalLLM, "base", None)
    if callable(base):
        return base()
    LocalLLM.default()  # a clear ConfigurationError when the [local] extra is missing
    return LocalLLM()
