"""One failure policy for every component call, gates included, and the page deadline.

Issue #8: a raising gate check must not escape ``build()``; ``build_many`` returns a
page for every user; a page is completed from the baselines once its budget is spent.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Sequence

import pytest

from storefront_sdk import (
    Catalog,
    KeywordGenerator,
    KeywordTaxonomy,
    Page,
    Placement,
    Product,
    Storefront,
    Theme,
    ThemeGenerator,
    UserContext,
)
from storefront_sdk.demo import demo_users
from storefront_sdk.filtering.gates import default_gates
from storefront_sdk.generation.rules import MerchandisingRules
from storefront_sdk.generation.static import StaticThemeGenerator
from storefront_sdk.interfaces import Gate


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.demo()


@pytest.fixture(scope="module")
def baseline(catalog: Catalog) -> Storefront:
    return Storefront(catalog, llm=None).warm_up()


class Boom(RuntimeError):
    pass


class RaisingGate(Gate):
    """Raises in one check level, for some subjects only."""

    def __init__(self, level: str) -> None:
        self.level = level

    def _maybe(self, level: str) -> None:
        if level == self.level:
            raise Boom(f"broken {level} check")

    def check_theme(
        self, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        if "Buy" not in theme.title:  # one theme still passes, so the page is not empty
            self._maybe("theme")
        return None

    def check_keyword(self, keyword: str, theme: Theme, user: UserContext) -> str | None:
        self._maybe("keyword")
        return None

    def check_product(self, product: Product, theme: Theme, user: UserContext) -> str | None:
        if product.id.endswith("7"):
            self._maybe("product")
        return None

    def check_placement(
        self, placement: Placement, accepted: Sequence[Placement], user: UserContext
    ) -> str | None:
        if accepted:
            self._maybe("placement")
        return None


@pytest.mark.parametrize("level", ["theme", "keyword", "product", "placement"])
def test_a_raising_gate_is_traced_and_rejects_never_raises(catalog: Catalog, level: str) -> None:
    # Keywords are only generated for placements their pins do not fill: static themes
    # (no pins) reach the keyword gates, then fall back to the pinned history themes.
    themes = StaticThemeGenerator() if level == "keyword" else None
    sf = Storefront(
        catalog, llm=None, gates=[*default_gates(), RaisingGate(level)], theme_generator=themes
    )
    for user in demo_users()[:2]:
        page = sf.build(user)
        failed = page.trace.events_of("gate_failed")
        assert failed, f"no gate_failed event for a raising check_{level}"
        for ev in failed:
            assert ev.data["gate"] == "RaisingGate" and ev.data["level"] == level
            assert "Boom: broken" in ev.data["error"]
        if level == "product":  # rejected products never reach the page
            assert not any(pid.endswith("7") for pid in page.product_ids)
        if level == "placement":
            assert len(page.placements) == 1
        if level == "keyword":  # every keyword rejected: nothing retrieved
            assert all(pl.theme.pinned_product_ids for pl in page.placements)


def test_build_many_over_six_users_with_a_raising_gate_returns_six_traced_pages(
    catalog: Catalog,
) -> None:
    sf = Storefront(catalog, llm=None, gates=[RaisingGate("theme"), *default_gates()])
    users = demo_users()
    assert len(users) == 6
    pages = sf.build_many(users)
    assert [p.user_id for p in pages] == [u.user_id for u in users]
    for page in pages:
        assert page.trace.events_of("gate_failed")


def test_build_many_keeps_every_page_when_one_build_raises(baseline: Storefront) -> None:
    users: list[object] = list(demo_users())
    users.insert(2, {"user_id": "not-a-context"})  # a programmer error
    pages = baseline.build_many(users)  # type: ignore[arg-type]
    assert len(pages) == 7
    broken = pages[2]
    assert broken.placements == []
    [ev] = broken.trace.events_of("build_failed")
    assert "ConfigurationError" in ev.message
    assert all(p.placements for i, p in enumerate(pages) if i != 2)


def test_a_legacy_two_argument_check_theme_still_works(catalog: Catalog) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class OldGate(Gate):
            def check_theme(self, theme: Theme, user: UserContext) -> str | None:  # type: ignore[override]
                return "old_rule" if "Snack" in theme.title else None

    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert OldGate.checks == frozenset({"theme"})
    page = Storefront(catalog, llm=None, gates=[OldGate()]).build(demo_users()[0])
    assert not any("Snack" in pl.theme.title for pl in page.placements)
    assert not page.trace.events_of("gate_failed")


def test_gate_checks_are_known_per_class() -> None:
    assert Gate.checks == frozenset()
    assert RaisingGate.checks == frozenset({"theme", "keyword", "product", "placement"})
    gates = default_gates()
    assert [sorted(g.checks) for g in gates] == [
        ["keyword", "placement", "product", "theme"],  # safety
        ["theme"],  # merchandising rules
        ["placement", "theme"],  # title quality
        ["placement", "theme"],  # near duplicates
    ]


def test_merchandising_rules_apply_to_every_theme_generator(catalog: Catalog) -> None:
    themes = [Theme(title="Cheap snacks", concepts=["chips"]), *StaticThemeGenerator().themes]
    rules = MerchandisingRules(banned_words=("cheap",))
    sf = Storefront(
        catalog,
        llm=None,
        theme_generator=StaticThemeGenerator(themes),
        gates=default_gates(rules=rules),
    )
    page = sf.build(demo_users()[0])
    assert "Cheap snacks" not in [pl.theme.title for pl in page.placements]
    reasons = [e.data["reason"] for e in page.trace.events_of("gate")]
    assert "banned_word:cheap" in reasons


# -- the page deadline -----------------------------------------------------------------------


class SlowThemes(ThemeGenerator):
    """A model-backed theme generator that answers far too late."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def generate(self, user: UserContext, n: int) -> list[Theme]:
        time.sleep(self.delay)
        return [Theme(title="Too late", concepts=["milk"], source="llm")]

    async def agenerate(self, user: UserContext, n: int) -> list[Theme]:
        await asyncio.sleep(self.delay)
        return [Theme(title="Too late", concepts=["milk"], source="llm")]


class GeneratedThemes(ThemeGenerator):
    """Model-like themes (source "llm"), so they go to the keyword generator."""

    def __init__(self, baseline: ThemeGenerator) -> None:
        self.baseline = baseline

    def generate(self, user: UserContext, n: int) -> list[Theme]:
        return [t.model_copy(update={"source": "llm"}) for t in self.baseline.generate(user, n)]


class SlowKeywords(KeywordGenerator):
    """A model-backed keyword generator that takes ``delay`` seconds per call."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        self.calls += 1
        time.sleep(self.delay)
        return []

    async def agenerate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return []


def _complete_like(page: Page, reference: Page) -> None:
    assert len(page.placements) == len(reference.placements) > 0
    assert all(len(pl.products) >= 8 for pl in page.placements)


def test_abuild_cancels_a_theme_generator_at_the_deadline(
    catalog: Catalog, baseline: Storefront
) -> None:
    user = demo_users()[0]
    sf = Storefront(catalog, llm=None, theme_generator=SlowThemes(60.0), page_budget_s=1.0)
    start = time.monotonic()
    page = asyncio.run(sf.abuild(user))
    elapsed = time.monotonic() - start
    assert elapsed < 1.0 + 5.0
    deadline = page.trace.events_of("deadline")
    assert deadline and deadline[0].data["stage"] == "themes"
    assert "Too late" not in [pl.theme.title for pl in page.placements]
    assert all(pl.source == "fallback" for pl in page.placements)
    _complete_like(page, baseline.build(user))


def test_build_stops_calling_models_once_the_deadline_has_passed(
    catalog: Catalog, baseline: Storefront
) -> None:
    user = demo_users()[1]
    slow = SlowKeywords(0.4)
    sf = Storefront(
        catalog,
        llm=None,
        theme_generator=GeneratedThemes(StaticThemeGenerator()),
        keyword_generator=slow,
        page_budget_s=1.0,
    )
    start = time.monotonic()
    page = sf.build(user)
    elapsed = time.monotonic() - start
    assert elapsed < 1.0 + 5.0
    skipped = [e for e in page.trace.events_of("deadline") if e.data["stage"] == "keywords"]
    assert skipped, "keyword calls past the deadline are skipped"
    assert slow.calls < len(page.placements) + len(skipped)
    # The skipped placements got the taxonomy baseline's keywords instead.
    baseline_kw = [s for s in page.trace.stages_of("keywords") if s.component != "SlowKeywords"]
    assert any(s.fallback_reason == "page deadline passed" for s in baseline_kw)
    _complete_like(page, baseline.build(user))


def test_abuild_cancels_keyword_calls_in_flight(catalog: Catalog, baseline: Storefront) -> None:
    user = demo_users()[2]
    sf = Storefront(
        catalog,
        llm=None,
        theme_generator=GeneratedThemes(StaticThemeGenerator()),
        keyword_generator=SlowKeywords(60.0),
        page_budget_s=1.0,
    )
    start = time.monotonic()
    page = asyncio.run(sf.abuild(user))
    assert time.monotonic() - start < 1.0 + 5.0
    cancelled = [e for e in page.trace.events_of("deadline") if "cancelled" in e.message]
    assert cancelled and all(e.data["stage"] == "keywords" for e in cancelled)
    _complete_like(page, baseline.build(user))


def test_no_budget_means_no_deadline(catalog: Catalog) -> None:
    sf = Storefront(catalog, llm=None, page_budget_s=None)
    page = sf.build(demo_users()[0])
    assert page.placements and not page.trace.events_of("deadline")
