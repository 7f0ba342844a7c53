"""Judges: heuristic verdicts on real pages, LLM verdicts by majority vote, invalid output kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from storefront_sdk import Catalog, JudgeReport, StaticThemeGenerator, Storefront
from storefront_sdk.evaluation import HeuristicJudge, LLMJudge, load_instacart_users, title_problems
from storefront_sdk.evaluation.judges import PlacementVerdictOutput, ProductVerdictOutput
from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.testing import MockLLM
from storefront_sdk.types import Page, Placement, Product, ScoredProduct, Theme, UserContext

T = TypeVar("T")


def ScriptedLLM(answer: Callable[[str, int], str]) -> MockLLM:
    """A model double: answers each prompt with ``answer(prompt_text, call_number)`` raw text,
    which is then parsed by the real output spec (so bad text fails the real validation)."""
    return MockLLM(
        handler=lambda req: answer(req.prompt, req.call), model_id="scripted", concurrent=False
    )


def _temperatures(llm: MockLLM) -> list[float | None]:
    return [r.temperature for r in llm.requests]


def _answer(verdict: str, reason: str = "because") -> str:
    return json.dumps({"reason": reason, "verdict": verdict})


# -- heuristic judge on real pages ------------------------------------------------------------


@pytest.fixture(scope="module")
def user_page(
    instacart_dir: Any, instacart_catalog: Catalog
) -> tuple[UserContext, Page, Storefront]:
    case = load_instacart_users(instacart_dir, instacart_catalog, users=[1])[0]
    # The judges are under test, not the keyword shortlist: embedder=None keeps these pages
    # the same whether or not the embed extra is installed.
    sf = Storefront(instacart_catalog, llm=None, embedder=None)
    return case.user, sf.build(case.user), sf


def test_heuristic_judge_gives_verdicts_at_every_level(
    user_page: tuple[UserContext, Page, Storefront], instacart_catalog: Catalog
) -> None:
    user, page, _ = user_page
    judge = HeuristicJudge(catalog=instacart_catalog, k=20)
    report = judge.judge(page, user)
    assert report.user_id == user.user_id and not report.invalid
    products = report.of("product", "on_theme")
    assert len(products) == sum(min(20, len(pl.products)) for pl in page.placements)
    for v in products:
        assert v.placement is not None and v.product_id in page.placements[v.placement].product_ids
        assert v.reason and v.passed is not None
    for crit in ("title_quality", "history_fit", "density"):
        assert len(report.of("placement", crit)) == len(page.placements)
    assert {v.criterion for v in report.of("page")} == {
        "cohesion",
        "diversity",
        "coverage",
        "density",
    }
    # A history-based page comes more from the user's own aisles than a static page does
    # (it also holds discovery placements, so it is compared, not held to a fixed bar).
    def mean_fit(r: JudgeReport) -> float:
        fits = [v.score for v in r.of("placement", "history_fit") if v.score is not None]
        return sum(fits) / len(fits)

    # Same shortlist as the history page (lexical). With the semantic shortlist the static
    # page of user 1 fits the history better (0.40 -> 0.56), above the history page's 0.48.
    static = Storefront(
        instacart_catalog, llm=None, embedder=None, theme_generator=StaticThemeGenerator()
    )
    static_report = judge.judge(static.build(user), user)
    assert mean_fit(report) > mean_fit(static_report)
    assert max(v.score or 0.0 for v in report.of("placement", "history_fit")) >= 0.9


def test_heuristic_judge_flags_an_off_theme_product(
    user_page: tuple[UserContext, Page, Storefront], instacart_catalog: Catalog
) -> None:
    user, page, _ = user_page
    soap = next(
        p
        for p in instacart_catalog
        if p.aisle == "dish detergents" and "fresh" not in p.title.lower()
    )
    theme = Theme(title="Fresh fruit", concepts=["fresh fruits", "apples", "bananas"])
    fruit = [p for p in instacart_catalog if p.aisle == "fresh fruits"][:4]
    odd = Placement(theme=theme, products=[ScoredProduct(product=p) for p in [*fruit, soap]])
    report = HeuristicJudge(catalog=instacart_catalog).judge(
        page.model_copy(update={"placements": [odd]}), user
    )
    verdicts = {v.product_id: v.passed for v in report.of("product", "on_theme")}
    assert verdicts[soap.id] is False
    assert all(verdicts[p.id] for p in fruit)


def test_title_problems() -> None:
    assert title_problems("Weeknight pasta night") == []
    assert "placeholder" in title_problems("Theme 1")
    assert "all_caps" in title_problems("BUY NOW SNACKS")
    assert "not_capitalised" in title_problems("snacks for you")
    assert "title_too_long" in title_problems("A" * 80)
    assert "too_many_words" in title_problems("One two three four five six seven eight nine")
    assert "duplicate_title" in title_problems("Snacks", others=["snacks"])
    assert "duplicate_title" in title_problems("Snacks!", others=["Snacks"])
    assert "repeated_words" in title_problems("Milk milk milk")


def test_judges_and_gates_share_one_title_rule_set() -> None:
    """The judge reports every code the title-quality gate would reject on, with the same
    names, and the near-duplicate test is the near-duplicate gate's."""
    from storefront_sdk.filtering.gates import REASON_CODES, NearDuplicateGate, TitleQualityGate

    gate = TitleQualityGate()
    for title in ("Theme 1", "BUY NOW SNACKS", "A" * 80, "Milk milk milk", "sNaCkS", "<b>x</b>"):
        code = gate.check_title(title)
        assert code is not None and code in title_problems(title)
        assert set(title_problems(title)) <= set(REASON_CODES)
    dup = NearDuplicateGate()
    for a, b in (("Pasta night", "Pasta nights"), ("Snacks", "Fruit")):
        assert dup.duplicate_title(a, [b]) == ("duplicate_title" in title_problems(a, [b]))


# -- LLM judge ---------------------------------------------------------------------------------


def _page() -> Page:
    def prod(i: int, title: str, aisle: str) -> Product:
        return Product(id=str(i), title=title, aisle=aisle, department="produce")

    return Page(
        user_id="7",
        placements=[
            Placement(
                theme=Theme(title="Fresh fruit", description="Apples and bananas"),
                products=[
                    ScoredProduct(product=prod(1, "Banana", "fresh fruits")),
                    ScoredProduct(product=prod(2, "Dish Soap", "dish detergents")),
                ],
            )
        ],
    )


def test_output_schemas_put_reason_before_verdict_and_forbid_extra_keys() -> None:
    for model in (ProductVerdictOutput, PlacementVerdictOutput):
        schema = model.model_json_schema()
        assert list(schema["properties"]) == ["reason", "verdict"]
        assert schema["additionalProperties"] is False


def test_llm_judge_product_verdicts_follow_the_model() -> None:
    llm = ScriptedLLM(
        lambda prompt, _: _answer("off_theme" if "Dish Soap" in prompt else "on_theme")
    )
    report = LLMJudge(llm, levels=("product",)).judge(_page(), UserContext(user_id="7"))
    verdicts = {v.product_id: v for v in report.of("product", "on_theme")}
    assert verdicts["1"].passed is True and verdicts["2"].passed is False
    assert verdicts["1"].reason == "because"
    assert all(t == 0.0 for t in _temperatures(llm))  # strictness 1: deterministic


def test_llm_judge_majority_vote_over_samples() -> None:
    # Per verdict, three samples: pass, fail, pass -> majority pass with score 2/3.
    llm = ScriptedLLM(lambda _, n: _answer("fail" if n % 3 == 2 else "pass"))
    judge = LLMJudge(llm, strictness=3, levels=("placement",))
    report = judge.judge(_page(), UserContext(user_id="7"))
    assert llm.calls == 3 * 2  # two placement criteria, three samples each
    for v in report.of("placement"):
        assert v.passed is True and v.score == pytest.approx(2 / 3)
    assert all(t is not None and t > 0 for t in _temperatures(llm))


def test_invalid_judge_output_is_kept_as_an_invalid_verdict() -> None:
    llm = ScriptedLLM(
        lambda prompt, _: "not json" if "Dish Soap" in prompt else _answer("on_theme")
    )
    report = LLMJudge(llm, levels=("product",)).judge(_page(), UserContext(user_id="7"))
    assert len(report.of("product")) == 2
    [bad] = report.invalid
    assert bad.product_id == "2" and bad.passed is None and "invalid judge output" in bad.reason


def test_a_valid_majority_survives_one_invalid_sample() -> None:
    # Call 1 is garbage, calls 2 and 3 say fail; later criteria all pass.
    llm = ScriptedLLM(lambda _, n: "garbage" if n == 1 else _answer("fail" if n <= 3 else "pass"))
    report = LLMJudge(llm, strictness=3, levels=("page",)).judge(_page(), UserContext(user_id="7"))
    first = report.verdicts[0]
    assert first.valid and first.passed is False and first.score == 0.0


def test_llm_judge_rejects_bad_settings() -> None:
    llm = ScriptedLLM(lambda _, __: _answer("pass"))
    with pytest.raises(ConfigurationError, match="strictness"):
        LLMJudge(llm, strictness=2)
    with pytest.raises(ConfigurationError, match="levels"):
        LLMJudge(llm, levels=("aisle",))  # type: ignore[arg-type]


async def test_llm_judge_async_matches_sync() -> None:
    def answer(prompt: str, _: int) -> str:
        return _answer("off_theme" if "Dish Soap" in prompt else "on_theme")

    sync = LLMJudge(ScriptedLLM(answer)).judge(_page(), UserContext(user_id="7"))
    async_ = await LLMJudge(ScriptedLLM(answer)).ajudge(_page(), UserContext(user_id="7"))
    assert [(v.level, v.criterion, v.passed) for v in sync.verdicts] == [
        (v.level, v.criterion, v.passed) for v in async_.verdicts
    ]


def test_llm_judge_over_http_counts_malformed_answers() -> None:
    from storefront_sdk.llm.openai import OpenAICompatibleLLM
    from storefront_sdk.testing.stub_server import StubOpenAIServer

    def responder(body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        return _answer("off_theme" if "Dish Soap" in prompt else "on_theme", "checked the aisle")

    with StubOpenAIServer(responder, failure_rate=0.5, failures=("malformed",), seed=3) as srv:
        llm = OpenAICompatibleLLM(srv.base_url, "stub-model", max_reasks=0, max_retries=0)
        report = LLMJudge(llm, levels=("product", "placement")).judge(
            _page(), UserContext(user_id="7")
        )
        injected = srv.failures_injected["malformed"]
    # Every request became a verdict: 2 products + 2 placement criteria.
    assert len(report.verdicts) == 4
    assert len(report.invalid) == injected > 0
    for v in report.of("product"):
        if v.valid:
            assert v.passed is (v.product_id == "1")
