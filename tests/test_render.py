"""HTML previews: structure a browser (or a test) can query, and hostile strings stay text."""

from __future__ import annotations

import base64
import re
import sys

import pytest
from htmldom import Node, parse

from storefront_sdk.evaluation.harness import EvalReport
from storefront_sdk.render import render_page_html, render_report_html
from storefront_sdk.types import Page, Placement, Product, ScoredProduct, StageRecord, Theme

HOSTILE = [
    "<script>document.body.setAttribute('data-pwned','1')</script>",
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">",
    '" onmouseover="alert(1)',
    "' onfocus='alert(2)' autofocus='",
    "</section></main><script>alert(3)</script>",
    "&lt;already escaped&gt; & ampersand",
]


def _product(
    pid: str,
    title: str,
    aisle: str = "fresh fruits",
    dept: str = "produce",
    price: float | None = None,
) -> Product:
    return Product(id=pid, title=title, aisle=aisle, department=dept, price=price)


def _page() -> Page:
    """A small two-placement page, the way a built page looks."""
    fruit = [
        _product("24852", "Banana", price=0.29),
        _product("13176", "Bag of Organic Bananas"),
        _product("21137", "Organic Strawberries", price=4.99),
    ]
    pasta = [_product("5", "Spaghetti", aisle="dry pasta", dept="dry goods pasta", price=1.5)]
    page = Page(
        user_id="demo-1",
        placements=[
            Placement(
                theme=Theme(
                    title="Buy it again",
                    description="Your regulars",
                    kind="buy_again",
                    source="history",
                ),
                keywords=["banana", "strawberries"],
                products=[
                    ScoredProduct(product=p, score=1.0 / (i + 1), keyword="banana")
                    for i, p in enumerate(fruit)
                ],
                source="history",
            ),
            Placement(
                theme=Theme(title="Weeknight pasta", description="Quick dinners", source="llm"),
                keywords=["pasta"],
                products=[ScoredProduct(product=p, score=0.5) for p in pasta],
                source="llm",
            ),
        ],
    )
    page.trace.stages.append(
        StageRecord(
            stage="themes",
            duration_ms=5.0,
            model_id="smollm2-135m",
            fallback_reason="invalid JSON after re-ask",
        )
    )
    page.trace.add_event(
        "gate", "placement rejected", placement=2, gate="DensityGate", reason="too_few_products"
    )
    return page


def _hostile_page() -> Page:
    """Every catalog and generated string on the page is hostile."""
    products = [
        ScoredProduct(product=_product(f"id-{i}{h}", h, aisle=h, dept=h), score=0.1, keyword=h)
        for i, h in enumerate(HOSTILE)
    ]
    placements = [
        Placement(
            theme=Theme(title=h, description=h, kind=h),
            keywords=[h, "plain"],
            products=products,
            source="llm",
        )
        for h in HOSTILE
    ]
    page = Page(user_id=HOSTILE[0], placements=placements)
    page.trace.add_event("gate", HOSTILE[1], gate=HOSTILE[2], reason=HOSTILE[3])
    return page


def test_page_structure_matches_the_page() -> None:
    page = _page()
    dom = parse(render_page_html(page))

    sections = dom.find_all("section", "placement")
    assert len(sections) == len(page.placements)
    for i, (section, pl) in enumerate(zip(sections, page.placements, strict=True)):
        assert section.attrs["data-placement-index"] == str(i)
        assert section.attrs["data-source"] == pl.source
        assert section.find("h2", "placement-title").text == pl.theme.title
        assert section.find("p", "placement-description").text == pl.theme.description
        assert section.find("span", "source-badge").text == pl.source
        assert f"source-{pl.source}" in section.find("span", "source-badge").classes
        assert [li.text for li in section.find_all("li", "keyword")] == pl.keywords
        cards = section.find_all("article", "product-card")
        assert [c.attrs["data-product-id"] for c in cards] == pl.product_ids
        for card, sp in zip(cards, pl.products, strict=True):
            assert card.find("h3", "product-title").text == sp.product.title
            assert card.find(cls="product-category").text == (
                f"{sp.product.aisle} · {sp.product.department}"
            )
            assert card.find(cls="product-score").text == f"score {sp.score:.3f}"
            price = card.find(cls="product-price").text
            assert price == ("" if sp.product.price is None else f"${sp.product.price:.2f}")


def test_document_is_self_contained() -> None:
    markup = render_page_html(_page())
    dom = parse(markup)
    assert markup.startswith("<!DOCTYPE html>")
    assert dom.find_all("script") == []
    assert dom.find_all("link") == []
    assert len(dom.find_all("style")) == 1
    for node in dom.iter():
        for name in ("src", "href"):
            value = node.attrs.get(name)
            assert value is None or value.startswith(("data:", "#")), (node.tag, name, value)
    metas = dom.find_all("meta")
    csp = [m for m in metas if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0].attrs["content"] or "")


def test_title_defaults_to_user_and_can_be_set() -> None:
    page = _page()
    assert parse(render_page_html(page)).find("title").text == "Storefront for demo-1"
    dom = parse(render_page_html(page, title="Homepage preview"))
    assert dom.find("title").text == "Homepage preview"
    assert dom.find("h1").text == "Homepage preview"


def test_hostile_strings_render_as_text() -> None:
    page = _hostile_page()
    markup = render_page_html(page, title=HOSTILE[4])
    dom = parse(markup)

    # Nothing hostile became markup: no script, no image, no event-handler attribute.
    assert dom.find_all("script") == []
    assert dom.find_all("img") == []
    for node in dom.iter():
        assert not [a for a in node.attrs if a.startswith("on") or a == "autofocus"], node
    # ... and every hostile string is still there, verbatim, as text or attribute value.
    assert dom.find("title").text == HOSTILE[4]
    sections = dom.find_all("section", "placement")
    assert len(sections) == len(HOSTILE)
    for section, h in zip(sections, HOSTILE, strict=True):
        assert section.find("h2", "placement-title").text == h
        assert section.find("p", "placement-description").text == h
        assert section.find(cls="theme-kind").text == h
        assert [li.text for li in section.find_all("li", "keyword")] == [h, "plain"]
        cards = section.find_all("article", "product-card")
        assert [c.attrs["data-product-id"] for c in cards] == [
            f"id-{i}{x}" for i, x in enumerate(HOSTILE)
        ]
        assert [c.attrs["data-keyword"] for c in cards] == HOSTILE
        assert [c.find("h3", "product-title").text for c in cards] == HOSTILE
        assert [c.find(cls="product-category").text for c in cards] == [
            f"{x} · {x}" for x in HOSTILE
        ]
    assert dom.find("main").attrs["data-user-id"] == HOSTILE[0]
    gate_row = dom.find("table", "trace-gates").find("tbody").find("tr")
    assert [td.text for td in gate_row.find_all("td")][:2] == [HOSTILE[2], HOSTILE[3]]
    # The raw forms never appear unescaped in the document.
    for h in HOSTILE[:5]:
        assert h not in markup


def test_trace_summary_shows_timings_fallbacks_and_gates() -> None:
    page = _page()
    details = parse(render_page_html(page)).find("details", "trace")
    summary = details.find("summary").text
    assert "1 stages" in summary and "1 fallbacks" in summary and "1 gate rejections" in summary
    stage_row = details.find("table", "trace-stages").find("tbody").find("tr")
    assert [td.text for td in stage_row.find_all("td")] == [
        "themes",
        "1",
        "5.0",
        "0",
        "smollm2-135m",
    ]
    fallback_row = details.find("table", "trace-fallbacks").find("tbody").find("tr")
    assert "invalid JSON after re-ask" in fallback_row.text
    gate_row = details.find("table", "trace-gates").find("tbody").find("tr")
    assert [td.text for td in gate_row.find_all("td")][:3] == [
        "DensityGate",
        "too_few_products",
        "2",
    ]
    assert parse(render_page_html(page, show_trace=False)).find_all("details") == []


def test_empty_page_says_so() -> None:
    dom = parse(render_page_html(Page(user_id="u0")))
    assert dom.find_all("section", "placement") == []
    assert "no placements" in dom.find("p", "empty").text


@pytest.mark.instacart
def test_real_catalog_products_render(instacart_catalog) -> None:  # type: ignore[no-untyped-def]
    products = list(instacart_catalog)[:40]
    page = Page(
        user_id="1",
        placements=[
            Placement(
                theme=Theme(title=f"Aisle {p.aisle}"),
                products=[ScoredProduct(product=p)],
                source="static",
            )
            for p in products
        ],
    )
    dom = parse(render_page_html(page))
    cards = dom.find_all("article", "product-card")
    assert [c.attrs["data-product-id"] for c in cards] == [p.id for p in products]
    assert [c.find("h3").text for c in cards] == [p.title for p in products]


# -- evaluation report ------------------------------------------------------------------


def _report() -> EvalReport:
    page = _page()
    return EvalReport(
        configs=["baseline", "llm+bm25", HOSTILE[0]],
        n_cases=3,
        k=[5],
        judge="heuristic",
        metrics={
            "baseline": {"P-T@5": 0.62, "K-U": 0.40, "density": 7.5},
            "llm+bm25": {"P-T@5": 0.81, "K-U": 0.66, "density": 9.0, "diversity": 0.5},
            HOSTILE[0]: {"P-T@5": float("nan"), HOSTILE[1]: 1.0},
        },
        gate_rejections={"baseline": {"density": 3}, "llm+bm25": {"density": 1, "duplicate": 4}},
        fallbacks={"llm+bm25": {"themes: invalid JSON": 2}},
        judge_pass_rates={
            "baseline": {"placement/title": 0.5},
            "llm+bm25": {"placement/title": 0.9},
        },
        invalid_verdicts={"llm+bm25": 1},
        sample_pages={"baseline": [page, page, page], "llm+bm25": [page]},
    )


def _cells(table: Node) -> dict[str, list[str]]:
    return {
        tr.find("th").text: [td.text for td in tr.find_all("td")]
        for tr in table.find("tbody").find_all("tr")
    }


def test_report_puts_configs_side_by_side() -> None:
    report = _report()
    dom = parse(render_report_html(report, plots=False))
    metrics = dom.find("table", "metrics")
    assert [th.text for th in metrics.find("thead").find_all("th")][1:] == report.configs
    assert _cells(metrics) == {
        "P-T@5": ["0.620", "0.810", "—"],
        "K-U": ["0.400", "0.660", "—"],
        "density": ["7.500", "9.000", "—"],
        "diversity": ["—", "0.500", "—"],
        HOSTILE[1]: ["—", "—", "1.000"],
    }
    assert _cells(dom.find("table", "gate-rejections")) == {
        "density": ["3", "1", "0"],
        "duplicate": ["0", "4", "0"],
    }
    assert _cells(dom.find("table", "fallbacks")) == {"themes: invalid JSON": ["0", "2", "0"]}
    assert _cells(dom.find("table", "judge-pass-rates")) == {
        "placement/title": ["0.500", "0.900", "—"]
    }
    assert "3 users" in dom.find("p", "page-meta").text
    assert dom.find_all("img") == [] and dom.find_all("script") == []


def test_report_sample_pages_reuse_the_card_markup() -> None:
    report = _report()
    dom = parse(render_report_html(report, pages_per_config=2, plots=False))
    samples = dom.find_all("div", "sample-page")
    assert [s.attrs["data-config"] for s in samples] == ["baseline", "baseline", "llm+bm25"]
    page = report.sample_pages["baseline"][0]
    cards = samples[0].find_all("article", "product-card")
    assert [c.attrs["data-product-id"] for c in cards] == page.product_ids
    assert (
        parse(render_report_html(report, pages_per_config=0, plots=False)).find_all(
            "div", "sample-page"
        )
        == []
    )


def test_report_plots_are_inline_pngs() -> None:
    pytest.importorskip("matplotlib")
    report = _report()
    report.configs.append("$5 budget $")  # no mathtext surprises from names
    report.metrics["$5 budget $"] = {"P-T@5": 0.7}
    report.gate_rejections["$5 budget $"] = {"_hidden": 2}
    dom = parse(render_report_html(report))
    assert dom.find_all("p", "note") == []
    imgs = dom.find_all("img")
    assert len(imgs) == 2  # metrics and gate rejections
    for img in imgs:
        src = img.attrs["src"] or ""
        m = re.fullmatch(r"data:image/png;base64,([A-Za-z0-9+/=]+)", src)
        assert m, src[:60]
        assert base64.b64decode(m.group(1)).startswith(b"\x89PNG\r\n\x1a\n")


def test_report_without_matplotlib_keeps_its_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    dom = parse(render_report_html(_report()))
    assert dom.find_all("img") == []
    assert "Install matplotlib" in dom.find("p", "note").text
    assert dom.find_all("table", "metrics") and dom.find_all("table", "gate-rejections")
