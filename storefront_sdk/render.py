"""Self-contained HTML previews of pages and evaluation reports.

:func:`render_page_html` turns a :class:`~storefront_sdk.types.Page` into one
HTML file a merchandiser or engineer can open anywhere: inline CSS, no script,
no external asset. :func:`render_report_html` does the same for an evaluation
report (metrics side by side, plots as inline PNGs when matplotlib is
installed, sample pages).

Every catalog and generated string is escaped with :func:`html.escape` (text
and attribute values alike), and the page carries a Content-Security-Policy
that forbids scripts, so a product named ``<script>…</script>`` renders as text.
The markup is stable for tests and scrapers: ``section.placement`` (with
``data-placement-index`` and ``data-source``), ``h2.placement-title``,
``p.placement-description``, ``li.keyword``, ``span.source-badge`` and
``article.product-card`` (with ``data-product-id``).

It stays one module because both renderers share one stylesheet, one escaping discipline
and the same markup helpers.
"""

from __future__ import annotations

import base64
import html
import io
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from .types import Page, Placement, ScoredProduct, Trace

__all__ = ["EvalReportLike", "render_page_html", "render_report_html"]

_KNOWN_SOURCES = ("llm", "history", "static", "fallback", "custom")

# No script, no network: styles inline, images only as data: URIs.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
:root{--bg:#f6f7f9;--fg:#1d2330;--muted:#5d6677;--card:#fff;--line:#e3e6ec;--accent:#2f6fde}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
 background:var(--bg);color:var(--fg)}
header.page-header{padding:20px 32px 12px;background:#fff;border-bottom:1px solid var(--line)}
header.page-header h1{margin:0 0 4px;font-size:22px}
.page-meta{color:var(--muted);font-size:13px;margin:0}
main{padding:8px 32px 32px}
section.placement{background:#fff;border:1px solid var(--line);border-radius:12px;margin:18px 0;
 padding:16px 18px 8px}
.placement-head{display:flex;align-items:baseline;gap:10px;flex-wrap:wrap}
h2.placement-title{font-size:18px;margin:0}
p.placement-description{margin:4px 0 8px;color:var(--muted)}
.source-badge{font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.04em;
 padding:2px 8px;border-radius:999px;background:#e9ecf2;color:#394150}
.source-llm{background:#e4edff;color:#1f4fb0}
.source-history{background:#e3f5e8;color:#1e6b37}
.source-static{background:#efe8fb;color:#5b32a3}
.source-fallback{background:#fdebd8;color:#8a4a0b}
.theme-kind{font-size:12px;color:var(--muted)}
ul.keywords{list-style:none;margin:0 0 10px;padding:0;display:flex;flex-wrap:wrap;gap:6px}
li.keyword{font-size:12px;padding:2px 10px;border:1px solid var(--line);border-radius:999px;
 background:#fafbfc;color:#394150}
.carousel{display:flex;gap:12px;overflow-x:auto;padding:4px 2px 14px;margin-top:6px;
 scroll-snap-type:x mandatory}
article.product-card{flex:0 0 176px;scroll-snap-align:start;background:var(--card);
 border:1px solid var(--line);border-radius:10px;overflow:hidden;display:flex;flex-direction:column}
.product-image{height:110px;display:flex;align-items:center;justify-content:center;
 font-size:34px;font-weight:700;color:rgba(255,255,255,.92)}
.product-body{padding:8px 10px 10px;display:flex;flex-direction:column;gap:3px;flex:1}
h3.product-title{font-size:13px;font-weight:600;margin:0;overflow-wrap:anywhere;
 display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}
.product-category{font-size:12px;color:var(--muted);overflow-wrap:anywhere}
.product-foot{margin-top:auto;display:flex;justify-content:space-between;align-items:baseline;
 padding-top:4px}
.product-price{font-weight:700}
.product-score{font-size:11px;color:var(--muted);font-variant-numeric:tabular-nums}
.pinned{font-size:10px;color:#1e6b37;font-weight:600}
.empty{color:var(--muted);font-style:italic}
details.trace{background:#fff;border:1px solid var(--line);border-radius:12px;padding:10px 18px;
 margin:18px 0}
details.trace summary{cursor:pointer;font-weight:600}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px;background:#fff}
caption{caption-side:top;text-align:left;padding:0 0 4px}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
h2.report-section{font-size:18px;margin:26px 0 8px}
h3.sample-title{font-size:15px;margin:16px 0 0}
figure.plot{margin:8px 0 18px}
figure.plot img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:8px;
 background:#fff}
.note{color:var(--muted);font-size:13px}
"""


def _esc(value: object) -> str:
    """Escape any value for HTML text *and* attribute context."""
    return html.escape(str(value), quote=True)


def _hue(key: str) -> int:
    """A stable hue for a placeholder box (same department, same colour)."""
    return zlib.crc32(key.encode("utf-8")) % 360


_SKIP_WORDS = frozenset({"organic", "the", "a", "an", "of", "and", "&", "100%", "original"})


def _initials(title: str) -> str:
    """Up to two initials for the placeholder image, skipping words like "Organic"."""
    words = [w for w in title.split() if w[:1].isalnum()]
    useful = [w for w in words if w.lower() not in _SKIP_WORDS] or words
    return "".join(w[0].upper() for w in useful[:2]) or "?"


def _fmt_num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(_CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


# -- page ------------------------------------------------------------------------------


def _card_html(sp: ScoredProduct) -> str:
    p = sp.product
    category = " · ".join(_esc(part) for part in (p.aisle, p.department) if part)
    hue = (_hue(p.department or p.aisle or p.title) + _hue(p.id) % 24) % 360
    price = (
        f'<span class="product-price">${p.price:.2f}</span>'
        if p.price is not None
        else '<span class="product-price product-price-unknown"></span>'
    )
    pinned = '<span class="pinned">pinned</span>' if sp.pinned else ""
    keyword = f' data-keyword="{_esc(sp.keyword)}"' if sp.keyword else ""
    return (
        f'<article class="product-card" data-product-id="{_esc(p.id)}"{keyword}>'
        f'<div class="product-image" role="img" aria-label="{_esc(p.title)}" '
        f'style="background:linear-gradient(135deg,hsl({hue} 55% 62%),'
        f'hsl({(hue + 40) % 360} 60% 46%))">'
        f"{_esc(_initials(p.title))}</div>"
        f'<div class="product-body"><h3 class="product-title" title="{_esc(p.title)}">'
        f"{_esc(p.title)}</h3>"
        f'<div class="product-category">{category}</div>{pinned}'
        f'<div class="product-foot">{price}'
        f'<span class="product-score">score {_fmt_num(sp.score)}</span></div>'
        "</div></article>"
    )


def _placement_html(pl: Placement, index: int) -> str:
    source = pl.source if pl.source in _KNOWN_SOURCES else "other"
    desc = (
        f'<p class="placement-description">{_esc(pl.theme.description)}</p>'
        if pl.theme.description
        else ""
    )
    kind = (
        f'<span class="theme-kind">{_esc(pl.theme.kind)}</span>'
        if pl.theme.kind and pl.theme.kind != "generic"
        else ""
    )
    chips = "".join(f'<li class="keyword">{_esc(k)}</li>' for k in pl.keywords)
    keywords = f'<ul class="keywords" aria-label="keywords">{chips}</ul>' if chips else ""
    cards = "".join(_card_html(sp) for sp in pl.products)
    if not cards:
        cards = '<p class="empty">No products.</p>'
    return (
        f'<section class="placement" data-placement-index="{index}" '
        f'data-source="{_esc(pl.source)}">'
        f'<div class="placement-head"><h2 class="placement-title">{_esc(pl.theme.title)}</h2>'
        f'<span class="source-badge source-{source}">{_esc(pl.source)}</span>{kind}</div>'
        f"{desc}{keywords}"
        f'<div class="carousel">{cards}</div></section>\n'
    )


def _placements_html(page: Page) -> str:
    if not page.placements:
        return '<p class="empty">This page has no placements.</p>\n'
    return "".join(_placement_html(pl, i) for i, pl in enumerate(page.placements))


def _trace_html(trace: Trace) -> str:
    """Stage timings, fallbacks and gate rejections, folded away in a <details>."""
    by_stage: dict[str, list[float]] = {}
    hits: Counter[str] = Counter()
    models: dict[str, set[str]] = {}
    for rec in trace.stages:
        by_stage.setdefault(rec.stage, []).append(rec.duration_ms)
        if rec.cache_hit:
            hits[rec.stage] += 1
        if rec.model_id:
            models.setdefault(rec.stage, set()).add(rec.model_id)
    gates = trace.events_of("gate")
    fallbacks = trace.fallbacks
    errors = [s for s in trace.stages if s.error]
    summary = (
        f"Trace: {len(trace.stages)} stages, {_fmt_num(trace.total_ms, 1)} ms, "
        f"{len(fallbacks)} fallbacks, {len(gates)} gate rejections"
    )
    parts = [f'<details class="trace"><summary>{_esc(summary)}</summary>']
    if by_stage:
        rows = "".join(
            f"<tr><td>{_esc(name)}</td><td class='num'>{len(ms)}</td>"
            f"<td class='num'>{_fmt_num(sum(ms), 1)}</td><td class='num'>{hits[name]}</td>"
            f"<td>{_esc(', '.join(sorted(models.get(name, ()))))}</td></tr>"
            for name, ms in by_stage.items()
        )
        parts.append(
            '<table class="trace-stages"><thead><tr><th>stage</th><th class="num">runs</th>'
            '<th class="num">total ms</th><th class="num">cache hits</th><th>models</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    if fallbacks or errors:
        rows = "".join(
            f"<tr><td>{_esc(s.stage)}</td><td>{_esc('' if s.placement is None else s.placement)}"
            f"</td><td>{_esc(s.fallback_reason or '')}</td><td>{_esc(s.error or '')}</td></tr>"
            for s in trace.stages
            if s.fallback_reason or s.error
        )
        parts.append(
            '<table class="trace-fallbacks"><thead><tr><th>stage</th><th>placement</th>'
            f"<th>fallback</th><th>error</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    if gates:
        rows = "".join(
            f"<tr><td>{_esc(ev.data.get('gate', ''))}</td><td>{_esc(ev.data.get('reason', ''))}"
            f"</td><td>{_esc('' if ev.placement is None else ev.placement)}</td>"
            f"<td>{_esc(ev.message)}</td></tr>"
            for ev in gates
        )
        parts.append(
            '<table class="trace-gates"><thead><tr><th>gate</th><th>reason</th>'
            f"<th>placement</th><th>message</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    other = Counter(ev.kind for ev in trace.events if ev.kind != "gate")
    if other:
        items = "".join(f"<li>{_esc(k)}: {n}</li>" for k, n in sorted(other.items()))
        parts.append(f'<ul class="trace-events">{items}</ul>')
    parts.append("</details>\n")
    return "".join(parts)


def render_page_html(page: Page, *, title: str | None = None, show_trace: bool = True) -> str:
    """One storefront page as a standalone HTML document (placements as carousels).

    ``title`` defaults to "Storefront for <user id>". With ``show_trace`` a small,
    collapsed trace summary (stage timings, fallbacks, gate rejections) follows.
    """
    heading = title if title is not None else f"Storefront for {page.user_id}"
    n_products = sum(len(pl.products) for pl in page.placements)
    meta = (
        f"user {page.user_id} · {len(page.placements)} placements · {n_products} products · "
        f"built {page.created_at:%Y-%m-%d %H:%M}"
    )
    body = (
        f'<header class="page-header"><h1 class="page-title">{_esc(heading)}</h1>'
        f'<p class="page-meta" data-user-id="{_esc(page.user_id)}">{_esc(meta)}</p></header>\n'
        f'<main class="page" data-user-id="{_esc(page.user_id)}">\n{_placements_html(page)}'
    )
    if show_trace and (page.trace.stages or page.trace.events):
        body += _trace_html(page.trace)
    body += "</main>\n"
    return _document(heading, body)


# -- evaluation report ---------------------------------------------------------------


class EvalReportLike(Protocol):
    """What :func:`render_report_html` reads from an evaluation report."""

    @property
    def configs(self) -> Sequence[str]: ...

    @property
    def metrics(self) -> Mapping[str, Mapping[str, float]]: ...

    @property
    def gate_rejections(self) -> Mapping[str, Mapping[str, int]]: ...

    @property
    def sample_pages(self) -> Mapping[str, Sequence[Page]]: ...


def _ordered_union(groups: Iterable[Iterable[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for g in groups:
        for k in g:
            seen.setdefault(k, None)
    return list(seen)


def _table(
    caption: str, row_names: Sequence[str], configs: Sequence[str], cell: Any, css: str
) -> str:
    head = "".join(f'<th class="num">{_esc(c)}</th>' for c in configs)
    rows = "".join(
        f"<tr><th>{_esc(r)}</th>"
        + "".join(f'<td class="num">{cell(c, r)}</td>' for c in configs)
        + "</tr>"
        for r in row_names
    )
    return (
        f'<table class="{css}"><caption class="note">{_esc(caption)}</caption>'
        f"<thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table>\n"
    )


def _png_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots_html(
    configs: Sequence[str],
    metric_names: Sequence[str],
    metrics: Mapping[str, Mapping[str, float]],
    reasons: Sequence[str],
    rejections: Mapping[str, Mapping[str, int]],
) -> str | None:
    """Bar charts as inline PNGs; ``None`` when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    colours = [f"C{i % 10}" for i in range(len(configs))]
    labels = [_plot_label(c) for c in configs]
    out: list[str] = []
    shown = [m for m in metric_names if any(_finite(metrics.get(c, {}).get(m)) for c in configs)]
    if shown:
        ncols = min(3, len(shown))
        nrows = math.ceil(len(shown) / ncols)
        fig = Figure(figsize=(4.0 * ncols, 2.8 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            if i >= len(shown):
                ax.set_axis_off()
                continue
            name = shown[i]
            values = [_value_or_nan(metrics.get(c, {}).get(name)) for c in configs]
            ax.bar(range(len(configs)), values, color=colours)
            ax.set_xticks(range(len(configs)), labels, rotation=20, ha="right", fontsize=8)
            ax.set_title(_plot_label(name, 40), fontsize=10)
            ax.grid(axis="y", alpha=0.3)
        out.append(
            f'<figure class="plot plot-metrics"><img alt="metrics by configuration" '
            f'src="{_png_data_uri(fig)}"></figure>\n'
        )
    if reasons and any(sum(rejections.get(c, {}).values()) for c in configs):
        fig = Figure(figsize=(max(5.0, 1.2 * len(configs) + 3), 3.2), layout="constrained")
        ax = fig.subplots()
        bottom = [0.0] * len(configs)
        for j, reason in enumerate(reasons):
            counts = [float(rejections.get(c, {}).get(reason, 0)) for c in configs]
            ax.bar(
                range(len(configs)),
                counts,
                bottom=bottom,
                label=_plot_label(reason),
                color=f"C{j % 10}",
            )
            bottom = [b + v for b, v in zip(bottom, counts, strict=True)]
        ax.set_xticks(range(len(configs)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_title("gate rejections", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        out.append(
            f'<figure class="plot plot-gates"><img alt="gate rejections by configuration" '
            f'src="{_png_data_uri(fig)}"></figure>\n'
        )
    return "".join(out)


def _plot_label(text: str, width: int = 24) -> str:
    """A short, literal plot label: truncated, with ``$`` kept out of mathtext."""
    short = text if len(text) <= width else text[: width - 1] + "…"
    # A leading underscore would hide the entry from the legend.
    return (" " + short if short.startswith("_") else short).replace("$", r"\$")


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _value_or_nan(v: object) -> float:
    return float(v) if isinstance(v, (int, float)) else math.nan


def render_report_html(
    report: EvalReportLike,
    *,
    title: str = "Storefront evaluation report",
    pages_per_config: int = 2,
    plots: bool = True,
) -> str:
    """An evaluation report as a standalone HTML document.

    Configurations side by side (metrics, per-gate rejection counts and, for an
    :class:`~storefront_sdk.evaluation.harness.EvalReport`, fallbacks and judge
    pass rates), bar charts as inline PNGs when matplotlib is installed (tables
    only otherwise), and up to ``pages_per_config`` sample pages per configuration.
    """
    configs = list(report.configs)
    metrics = report.metrics
    rejections = report.gate_rejections
    samples = report.sample_pages
    metric_names = _ordered_union(metrics.get(c, {}).keys() for c in configs)
    reasons = _ordered_union(rejections.get(c, {}).keys() for c in configs)

    # Optional fields of storefront_sdk.evaluation.EvalReport, shown when present.
    n_cases = getattr(report, "n_cases", None)
    judge = getattr(report, "judge", None)
    pass_rates: Mapping[str, Mapping[str, float]] = getattr(report, "judge_pass_rates", None) or {}
    invalid: Mapping[str, int] = getattr(report, "invalid_verdicts", None) or {}
    fallbacks: Mapping[str, Mapping[str, int]] = getattr(report, "fallbacks", None) or {}
    meta = [f"{len(configs)} configurations"]
    if isinstance(n_cases, int):
        meta.append(f"{n_cases} users")
    if judge:
        meta.append(f"judge: {judge}")
    meta.append(f"generated {datetime.now():%Y-%m-%d %H:%M}")

    parts = [
        f'<header class="page-header"><h1 class="page-title">{_esc(title)}</h1>'
        f'<p class="page-meta">{_esc(" · ".join(meta))}</p></header>\n<main class="report">\n',
        '<h2 class="report-section" id="metrics">Metrics</h2>\n',
    ]
    if metric_names:
        parts.append(
            _table(
                "metric value per configuration",
                metric_names,
                configs,
                lambda c, m: _fmt_num(metrics.get(c, {}).get(m)),
                "metrics",
            )
        )
    else:
        parts.append('<p class="empty">No metrics.</p>\n')
    if plots:
        try:
            plot_html = _plots_html(configs, metric_names, metrics, reasons, rejections)
        except Exception as exc:  # a plot is never worth losing the report over
            plot_html = (
                f'<p class="note">Plots failed: {_esc(type(exc).__name__)}: {_esc(exc)}</p>\n'
            )
        if plot_html is None:
            parts.append('<p class="note">Install matplotlib for plots.</p>\n')
        else:
            parts.append(plot_html)
    parts.append('<h2 class="report-section" id="gates">Gate rejections</h2>\n')
    if reasons:
        parts.append(
            _table(
                "rejections per gate reason",
                reasons,
                configs,
                lambda c, r: _esc(rejections.get(c, {}).get(r, 0)),
                "gate-rejections",
            )
        )
    else:
        parts.append('<p class="empty">No gate rejected anything.</p>\n')
    fallback_reasons = _ordered_union(fallbacks.get(c, {}).keys() for c in configs)
    if fallback_reasons:
        parts.append('<h2 class="report-section" id="fallbacks">Fallbacks</h2>\n')
        parts.append(
            _table(
                "fallbacks per stage and reason",
                fallback_reasons,
                configs,
                lambda c, r: _esc(fallbacks.get(c, {}).get(r, 0)),
                "fallbacks",
            )
        )
    criteria = sorted({k for c in configs for k in pass_rates.get(c, {})})
    if criteria:
        parts.append('<h2 class="report-section" id="judge">Judge pass rates</h2>\n')
        parts.append(
            _table(
                "share of valid verdicts that passed"
                + (
                    f"; invalid verdicts: {', '.join(f'{c} {invalid.get(c, 0)}' for c in configs)}"
                    if invalid
                    else ""
                ),
                criteria,
                configs,
                lambda c, k: _fmt_num(pass_rates.get(c, {}).get(k)),
                "judge-pass-rates",
            )
        )
    if pages_per_config > 0 and any(samples.get(c) for c in configs):
        parts.append('<h2 class="report-section" id="samples">Sample pages</h2>\n')
        for c in configs:
            for page in list(samples.get(c, ()))[:pages_per_config]:
                parts.append(
                    f'<div class="sample-page" data-config="{_esc(c)}" '
                    f'data-user-id="{_esc(page.user_id)}">'
                    f'<h3 class="sample-title">{_esc(c)} — user {_esc(page.user_id)}</h3>\n'
                    f"{_placements_html(page)}</div>\n"
                )
    parts.append("</main>\n")
    return _document(title, "".join(parts))
