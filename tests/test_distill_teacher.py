"""Distillation data side, second slice: the best-of-N teacher, synthetic shoppers, the
held-out evaluation shoppers, and the exported JSONL read back by Hugging Face datasets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from storefront_sdk import Catalog
from storefront_sdk.cli import main
from storefront_sdk.demo import demo_users
from storefront_sdk.distill import (
    BestOfNLLM,
    DistillError,
    Label,
    OutputConstraint,
    RecordingLLM,
    aiqa_filter,
    collect,
    evaluation_shoppers,
    export_labels,
    read_checkpoint,
    synthetic_shoppers,
)
from storefront_sdk.exceptions import ConfigurationError, OutputValidationError
from storefront_sdk.generation.seeded_titles import TitleSpec
from storefront_sdk.llm.base import LLM, ChatMessage, LLMResult, LLMUsage, OutputSpec
from storefront_sdk.llm.openai import OpenAICompatibleLLM
from storefront_sdk.testing.stub_server import StubOpenAIServer

T = TypeVar("T")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.demo()


class _SeededTitles(LLM):
    """A stand-in for a sampled model: the answer depends on the ``seed`` set on it (as
    ``BestOfNLLM`` sets ``LocalLLM.seed`` per candidate) and on greedy vs sampled."""

    def __init__(self, greedy: str, sampled: dict[int, str]) -> None:
        self.model_id = "seeded-titles"
        self.concurrent = False
        self.seed = 0
        self.greedy, self.sampled = greedy, sampled
        self.calls: list[tuple[int, float | None]] = []

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        self.calls.append((self.seed, temperature))
        text = self.greedy if not temperature else self.sampled[self.seed]
        value = output.parse(json.dumps(text))
        return LLMResult(value=value, usage=LLMUsage(model_id=self.model_id), raw=text)


def _title_messages(earlier: Sequence[str], products: Sequence[str]) -> list[ChatMessage]:
    lines = ['season: "winter"']
    if earlier:
        lines.append("on the page: " + "; ".join(f'"{t}"' for t in earlier))
    lines.append("products: " + "; ".join(f'"{p}"' for p in products))
    return [
        ChatMessage(role="system", content="Name the group of products."),
        ChatMessage(
            role="user", content="<shopper_data>\n" + "\n".join(lines) + "\n</shopper_data>"
        ),
    ]


_ANY_TITLE = TitleSpec(r"^[A-Za-z ]+$")


def test_best_of_n_keeps_the_candidate_the_title_rules_prefer() -> None:
    # greedy repeats a title already on the page; two samples agree on a grounded one
    base = _SeededTitles(
        "Greek Yogurt Cups",
        {11: "Yogurt and Yogurt", 12: "Vanilla Granola", 13: "Vanilla Granola"},
    )
    teacher = BestOfNLLM(base, n=4, temperature=0.7, seed=10)
    msgs = _title_messages(["Greek Yogurt Cups"], ["Vanilla Almond Granola", "Honey Granola"])
    result = teacher.generate(msgs, _ANY_TITLE, temperature=0.0)
    assert result.value == "Vanilla Granola"
    # the greedy candidate, then seeds seed+1.. at the teacher's temperature; seed restored
    assert base.calls == [(10, 0.0), (11, 0.7), (12, 0.7), (13, 0.7)] and base.seed == 0
    pick = teacher.pick_of(result)
    assert pick is not None and pick.chosen == 2
    rec = pick.as_record()
    problems = [c["problems"] for c in rec["candidates"]]
    assert "duplicate_title" in problems[0] and "repetitive_title" in problems[1]
    assert result.usage.attempts == 4 and result.usage.model_id == "seeded-titles+best-of-4"


def test_best_of_n_prefers_the_greedy_answer_on_a_tie_and_survives_invalid_samples() -> None:
    base = _SeededTitles("Honey Granola", {1: "Honey Granola", 2: "bad 123", 3: "Almond Granola"})
    teacher = BestOfNLLM(base, n=4, temperature=0.9)
    msgs = _title_messages([], ["Honey Granola", "Almond Granola"])
    result = teacher.generate(msgs, _ANY_TITLE)
    assert result.value == "Honey Granola"  # two votes (greedy + seed 1)
    pick = teacher.pick_of(result)
    assert pick is not None and pick.candidates[2].error is not None


def test_best_of_n_raises_when_every_candidate_is_invalid() -> None:
    teacher = BestOfNLLM(_SeededTitles("1", {1: "2"}), n=2)
    with pytest.raises(OutputValidationError):
        teacher.generate(_title_messages([], ["x"]), _ANY_TITLE)


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"temperature": 0.0}, {"temperature": 3.0}])
def test_best_of_n_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        BestOfNLLM(_SeededTitles("a", {}), **kwargs)


def test_recorder_writes_the_sampling_settings_and_candidates() -> None:
    base = _SeededTitles("Honey Granola", {1: "Almond Granola", 2: "Almond Granola"})
    teacher = BestOfNLLM(base, n=3, temperature=0.6, seed=0)
    recorder = RecordingLLM(teacher)
    recorder.generate(_title_messages([], ["Almond Granola", "Honey Granola"]), _ANY_TITLE)
    (call,) = recorder.take()
    assert call.sampling is not None
    assert call.sampling["method"] == "best-of-n" and call.sampling["n"] == 3
    assert call.sampling["temperature"] == 0.6 and call.sampling["base_model"] == "seeded-titles"
    assert [c["value"] for c in call.sampling["candidates"]] == [
        "Honey Granola",
        "Almond Granola",
        "Almond Granola",
    ]
    assert call.sampling["chosen"] == 1 and call.value == "Almond Granola"
    assert "best-of-3" in call.fingerprint and "t=0.6" in call.fingerprint


def test_collect_with_best_of_n_over_an_http_teacher(catalog: Catalog, tmp_path: Path) -> None:
    # a real OpenAI-compatible server on 127.0.0.1: every candidate is one HTTP request
    with StubOpenAIServer(seed=3) as srv:
        teacher = BestOfNLLM(OpenAICompatibleLLM(srv.base_url, model="stub"), n=3)
        records = collect(catalog, teacher, demo_users()[:1], tmp_path / "c.jsonl")
        served = srv.request_count
    calls = [c for r in records for c in r.calls if c.error is None]
    assert calls and served == 3 * len([c for r in records for c in r.calls])
    assert all(c.sampling and len(c.sampling["candidates"]) == 3 for c in calls)
    assert records[0].teacher_model_id == "stub+best-of-3"
    again = read_checkpoint(tmp_path / "c.jsonl")
    assert again[0].calls[0].sampling == records[0].calls[0].sampling


def test_cli_collect_with_http_teacher_and_synthetic_shoppers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "c.jsonl"
    with StubOpenAIServer(seed=4) as srv:
        argv = ["distill", "collect", "-o", str(ckpt), "--llm", "http", "--quiet"]
        argv += ["--base-url", srv.base_url, "--model", "stub", "--synthetic", "2", "--seed", "5"]
        assert main(argv) == 0
    assert "2 shoppers" in capsys.readouterr().out
    assert [r.user_id for r in read_checkpoint(ckpt)] == ["synthetic-5-1", "synthetic-5-2"]


# -- synthetic shoppers -------------------------------------------------------------------------


def test_synthetic_shoppers_are_seeded_and_stable_per_index(catalog: Catalog) -> None:
    a = synthetic_shoppers(catalog, 5, seed=1)
    assert [u.user_id for u in a] == [f"synthetic-1-{i}" for i in range(1, 6)]
    assert a == synthetic_shoppers(catalog, 5, seed=1)
    assert synthetic_shoppers(catalog, 8, seed=1)[:5] == a  # extending keeps the first ones
    assert synthetic_shoppers(catalog, 5, seed=2) != a
    for user in a:
        orders = {it.order_number for it in user.history}
        assert 4 <= len(orders) <= 12
        assert all(it.product_id in catalog for it in user.history)
        # staples: a re-ordering shopper buys some product in more than one order
        counts: dict[str, int] = {}
        for it in user.history:
            counts[it.product_id] = counts.get(it.product_id, 0) + 1
        assert max(counts.values()) >= 2
        assert user.user_id not in evaluation_shoppers()


def test_synthetic_shoppers_follow_the_source_baskets(catalog: Catalog) -> None:
    from storefront_sdk.types import Interaction, UserContext

    pair = [p.id for p in catalog][:2]
    source = [
        UserContext(
            user_id="s",
            history=[Interaction(product_id=pid, order_number=o) for o in range(5) for pid in pair],
        )
    ]
    users = synthetic_shoppers(catalog, 3, seed=0, source=source)
    # only the source's products carry weight: every basket is drawn from them
    assert all({it.product_id for it in u.history} <= set(pair) for u in users)


@pytest.mark.parametrize(
    "kwargs", [{"n": -1}, {"n": 1, "min_orders": 0}, {"n": 1, "min_orders": 5, "max_orders": 3}]
)
def test_synthetic_shoppers_bad_arguments(catalog: Catalog, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="synthetic shoppers"):
        synthetic_shoppers(catalog, **kwargs)


# -- held-out evaluation shoppers ------------------------------------------------------------


def test_evaluation_shoppers_are_instacart_31_to_40_and_the_demo_users() -> None:
    held = evaluation_shoppers()
    assert {str(i) for i in range(31, 41)} <= held and "30" not in held and "1" not in held
    assert {u.user_id for u in demo_users()} <= held


def _label(user_id: str, output: str = '"Honey Granola"', kept: bool = True) -> Label:
    return Label(
        label_id=f"{user_id}:0",
        user_id=user_id,
        stage="themes",
        call_index=0,
        messages=[
            ChatMessage(role="system", content="s"),
            ChatMessage(role="user", content=user_id),
        ],
        output=output,
        constraint=OutputConstraint(kind="text", json_schema={"type": "string"}),
        teacher_model_id="t",
        kept=kept,
    )


def test_export_drops_held_out_shoppers(tmp_path: Path) -> None:
    labels = [_label("1"), _label("2"), _label("35"), _label("demo-1"), _label("synthetic-0-1")]
    rep = export_labels(labels, tmp_path / "out", validation_fraction=0.0)
    assert rep.held_out_dropped == 2 and rep.held_out_shoppers == ["35", "demo-1"]
    assert rep.train_shoppers == ["1", "2", "synthetic-0-1"]
    text = (tmp_path / "out" / "train.jsonl").read_text()
    assert '"35"' not in text and "demo-1" not in text
    kept_all = export_labels(labels, tmp_path / "all", validation_fraction=0.0, exclude=())
    assert kept_all.train_examples == 5 and kept_all.held_out_dropped == 0


def test_export_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DistillError, match="the label set is empty"):
        export_labels([], tmp_path / "a")
    with pytest.raises(DistillError, match=r"all 2 are from shoppers held out .*31, demo-2"):
        export_labels([_label("31"), _label("demo-2")], tmp_path / "b")
    with pytest.raises(DistillError, match="no kept labels"):
        export_labels([_label("3", kept=False)], tmp_path / "c")


def test_cli_collect_refuses_held_out_instacart_users(
    instacart_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["distill", "collect", "-o", str(tmp_path / "c.jsonl"), "--llm", "http"]
    argv += ["--instacart-dir", str(instacart_dir), "--base-url", "http://127.0.0.1:9/v1"]
    assert main([*argv, "--model", "t", "--users", "29-32"]) == 2
    err = capsys.readouterr().err
    assert "31, 32 are held out for evaluation" in err and "Traceback" not in err
    assert main([*argv, "--model", "t", "--users", "1,999999"]) == 2
    assert "unknown Instacart user(s) 999999" in capsys.readouterr().err
    assert not (tmp_path / "c.jsonl").exists()


# -- the exported JSONL, read back by Hugging Face datasets ----------------------------------


def test_exported_jsonl_loads_as_chat_messages_with_datasets(
    catalog: Catalog, tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    with StubOpenAIServer(seed=6) as srv:
        teacher = BestOfNLLM(OpenAICompatibleLLM(srv.base_url, model="stub"), n=2)
        users = synthetic_shoppers(catalog, 4, seed=0)
        records = collect(catalog, teacher, users, tmp_path / "c.jsonl")
    labels, _ = aiqa_filter(records, min_theme_yield=0.0)
    exp = export_labels(labels, tmp_path / "sft", filtered=False, validation_fraction=0.25)
    ds = datasets.load_dataset(
        "json",
        data_files={"train": exp.train_path, "validation": exp.validation_path},
    )
    assert len(ds["train"]) == exp.train_examples > 0
    assert len(ds["validation"]) == exp.validation_examples
    for row in ds["train"]:
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant" and "user" in roles
        assert all(isinstance(m["content"], str) and m["content"] for m in row["messages"])
        json.loads(row["messages"][-1]["content"])  # the assistant turn is the decoded JSON


# -- the judge-aware scorer and judge verdicts attached by collect ---------------------------


def test_judge_scorer_prefers_the_title_its_products_fit(catalog: Catalog) -> None:
    from storefront_sdk.distill import JudgeScorer

    yogurts = [p.title for p in catalog if "yogurt" in p.title.lower()][:3]
    assert yogurts
    base = _SeededTitles("Pasta Night", {1: "Yogurt Cups", 2: "Pasta Night", 3: "Yogurt Cups"})
    teacher = BestOfNLLM(base, n=4, scorer=JudgeScorer(catalog))
    msgs = _title_messages([], yogurts)
    result = teacher.generate(msgs, _ANY_TITLE)
    pick = teacher.pick_of(result)
    assert pick is not None
    rel = {c.value: s[3] for c, s in zip(pick.candidates, pick.scores, strict=True)}
    assert rel["Yogurt Cups"] > rel["Pasta Night"]
    # two votes for pasta (greedy + seed 2) against two for yogurt: the judge decides
    assert result.value == "Yogurt Cups"
    assert "judge_scorer" in teacher.fingerprint


def test_cli_collect_attaches_the_independent_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, labels = tmp_path / "c.jsonl", tmp_path / "l.jsonl"
    with StubOpenAIServer(seed=8) as srv:
        argv = ["distill", "collect", "-o", str(ckpt), "--llm", "http", "--quiet"]
        argv += ["--base-url", srv.base_url, "--model", "stub", "--synthetic", "2"]
        assert main([*argv, "--judge", "relevance"]) == 0
    on_page = [t for r in read_checkpoint(ckpt) for t in r.themes if t.on_page]
    criteria = {j.criterion for t in on_page for j in t.judge}
    assert {"on_theme@5", "title_quality"} <= criteria
    shares = [j.score for t in on_page for j in t.judge if j.criterion == "on_theme@5"]
    assert shares and all(s is not None and 0.0 <= s <= 1.0 for s in shares)
    assert main(["distill", "filter", str(ckpt), "-o", str(labels), "--use-judge"]) == 0
    assert "labels kept" in capsys.readouterr().out


def test_filter_min_on_theme_replaces_the_judges_pass_mark() -> None:
    from storefront_sdk.distill import JudgeVerdict, LLMCallRecord, ShopperRecord, ThemeOutcome

    text = OutputConstraint(kind="text", json_schema={"type": "string"})
    msgs = [ChatMessage(role="system", content="s"), ChatMessage(role="user", content="u")]
    calls = [
        LLMCallRecord(
            index=i,
            stage="themes",
            messages=msgs,
            constraint=text,
            raw=json.dumps(t),
            value=t,
            model_id="t",
            fingerprint="t",
        )
        for i, t in enumerate(("Half On Theme", "Mostly On Theme"))
    ]

    def outcome(title: str, share: float) -> ThemeOutcome:
        verdict = JudgeVerdict(judge="j", criterion="on_theme@5", passed=share >= 0.6, score=share)
        return ThemeOutcome(title=title, on_page=True, source="llm", density=10, judge=[verdict])

    rec = ShopperRecord(
        user_id="u",
        teacher_model_id="t",
        teacher_fingerprint="t",
        min_products=8,
        calls=calls,
        themes=[outcome("Half On Theme", 0.4), outcome("Mostly On Theme", 0.8)],
    )
    assert aiqa_filter([rec])[1].kept == 2  # without the judge
    labels, _ = aiqa_filter([rec], use_judge=True)
    assert [lb.drop_reasons for lb in labels] == [["judge:on_theme@5"], []]
    assert aiqa_filter([rec], use_judge=True, min_on_theme=0.4)[1].kept == 2
    _, strict = aiqa_filter([rec], use_judge=True, min_on_theme=0.9)
    assert strict.kept == 0 and strict.min_on_theme == 0.9
