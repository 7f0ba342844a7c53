"""Distillation, first slice: collect -> filter (AIQA) -> export, with a scripted teacher
through the real cascade on the demo catalog, and an HTTP teacher on the stub server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storefront_sdk import Catalog
from storefront_sdk.cache import GenerationCache
from storefront_sdk.cli import main
from storefront_sdk.demo import demo_users
from storefront_sdk.distill import (
    DistillError,
    GateVerdict,
    JudgeVerdict,
    LLMCallRecord,
    OutputConstraint,
    ShopperRecord,
    ThemeOutcome,
    aiqa_filter,
    chat_example,
    collect,
    export_labels,
    read_checkpoint,
    read_labels,
    split_shoppers,
    write_labels,
)
from storefront_sdk.llm.base import ChatMessage, MultiChoice
from storefront_sdk.llm.openai import OpenAICompatibleLLM
from storefront_sdk.testing import MockLLM
from storefront_sdk.testing.stub_server import StubOpenAIServer


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.demo()


def _teacher() -> MockLLM:
    # Deterministic answers sampled from each request's own constraint (schema, choices).
    return MockLLM(model_id="scripted-teacher", seed=7)


# -- collect ----------------------------------------------------------------------------------


def test_collect_filter_export_end_to_end(catalog: Catalog, tmp_path: Path) -> None:
    users = demo_users()[:4]
    ckpt = tmp_path / "collect.jsonl"
    teacher = _teacher()
    records = collect(catalog, teacher, users, ckpt)

    assert [r.user_id for r in records] == [u.user_id for u in users]
    assert len(ckpt.read_text().splitlines()) == 4
    assert read_checkpoint(ckpt) == records
    # Every teacher call is recorded, with its stage, exact messages and constraint.
    assert sum(len(r.calls) for r in records) == teacher.calls
    for rec in records:
        stages = {c.stage for c in rec.calls}
        assert {"themes", "keywords"} <= stages
        for call in rec.calls:
            assert call.model_id == "scripted-teacher"
            assert call.fingerprint == "mock:scripted-teacher"
            assert call.messages and call.messages[0].role == "system"
            assert call.raw and call.error is None
            if call.stage == "keywords":
                assert call.constraint.kind == "multi_choice"
                assert call.placement is not None and call.theme_title
                assert set(call.value) <= set(call.constraint.options or ())
            else:
                assert call.constraint.kind == "structured" and call.constraint.json_schema
        # What the cascade made of it: every page placement is an outcome on the page.
        on_page = [t for t in rec.themes if t.on_page]
        assert len(on_page) == rec.placements_on_page > 0
        assert all(t.density >= rec.min_products for t in on_page)
    # The recorded messages are the ones the teacher received.
    first = records[0].calls[0]
    assert tuple(first.messages) == teacher.requests[0].messages

    labels, report = aiqa_filter(records)
    assert report.labels == len(labels) == sum(len(r.calls) for r in records)
    assert 0 < report.kept < report.labels  # a sampled teacher is neither all good nor all bad
    assert sum(report.drop_reasons.values()) >= report.dropped
    for label in labels:
        assert label.kept == (not label.drop_reasons)

    out = tmp_path / "export"
    exp = export_labels(labels, out, validation_fraction=0.25, seed=3, exclude=())
    assert set(exp.train_shoppers).isdisjoint(exp.validation_shoppers)
    assert len(exp.validation_shoppers) == 1
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (out / "validation.jsonl").read_text().splitlines()]
    assert len(train) == exp.train_examples and len(val) == exp.validation_examples
    assert exp.train_examples + exp.validation_examples + exp.duplicates_dropped == report.kept
    kept = {json.dumps(chat_example(lb), sort_keys=True) for lb in labels if lb.kept}
    for row in train + val:
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[-2:] == ["user", "assistant"]
        assert json.dumps(row, sort_keys=True) in kept
    rows = [json.dumps(r, sort_keys=True) for r in train + val]
    assert len(rows) == len(set(rows))  # deduplicated
    assert json.loads((out / "export.json").read_text())["seed"] == 3

    # The unfiltered arm keeps everything (minus duplicates).
    unf = export_labels(labels, tmp_path / "unfiltered", filtered=False, seed=3, exclude=())
    assert unf.train_examples + unf.validation_examples + unf.duplicates_dropped == len(labels)


def test_exported_keyword_answers_parse_under_their_constraint(
    catalog: Catalog, tmp_path: Path
) -> None:
    records = collect(catalog, _teacher(), demo_users()[:2], tmp_path / "c.jsonl")
    labels, _ = aiqa_filter(records)
    for label in labels:
        if label.constraint.kind == "multi_choice":
            spec = MultiChoice(
                tuple(label.constraint.options or ()),
                label.constraint.min_items or 1,
                label.constraint.max_items or 8,
            )
            assert spec.parse(chat_example(label)["messages"][-1]["content"])
        else:
            assert json.loads(label.output)["themes"]


def test_collect_resumes_and_skips_done_shoppers(catalog: Catalog, tmp_path: Path) -> None:
    users = demo_users()[:3]
    ckpt = tmp_path / "c.jsonl"
    collect(catalog, _teacher(), users[:2], ckpt)
    before = ckpt.read_text().splitlines()

    second = _teacher()
    records = collect(catalog, second, [*users, users[0]], ckpt)  # a repeat is collected once
    after = ckpt.read_text().splitlines()
    assert after[:2] == before  # earlier lines untouched
    assert [r.user_id for r in records] == [u.user_id for u in users]
    assert second.calls == len(records[2].calls) > 0  # only the new shopper cost calls

    third = _teacher()
    collect(catalog, third, users, ckpt)
    assert third.calls == 0 and len(ckpt.read_text().splitlines()) == 3

    # A crash in the middle of writing the last line: that shopper is collected again.
    text = ckpt.read_text()
    ckpt.write_text(text[: len(text) - 50])
    fourth = _teacher()
    records = collect(catalog, fourth, users, ckpt)
    assert fourth.calls == len(records[2].calls) > 0
    assert [r.user_id for r in read_checkpoint(ckpt)] == [u.user_id for u in users]


def test_collect_reuses_the_generation_cache(catalog: Catalog, tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "cache")
    users = demo_users()[:2]
    first = collect(catalog, _teacher(), users, tmp_path / "a.jsonl", cache=cache)
    again = _teacher()
    second = collect(catalog, again, users, tmp_path / "b.jsonl", cache=cache)
    assert again.calls == 0
    calls = [c for r in second for c in r.calls]
    assert calls and all(c.cache_hit for c in calls)
    assert [c.value for r in first for c in r.calls] == [c.value for c in calls]
    cache.close()


def test_collect_records_teacher_failures(catalog: Catalog, tmp_path: Path) -> None:
    teacher = MockLLM(default="error", model_id="broken")
    records = collect(catalog, teacher, demo_users()[:1], tmp_path / "c.jsonl")
    calls = records[0].calls
    assert calls and all(c.error and "FatalBackendError" in c.error for c in calls)
    assert records[0].placements_from_model == 0 and records[0].placements_on_page > 0
    labels, report = aiqa_filter(records)
    assert report.kept == 0 and report.drop_reasons == {"teacher_error": len(labels)}
    with pytest.raises(DistillError, match="no kept labels"):
        export_labels(labels, tmp_path / "out", exclude=())


def test_recorder_is_transparent() -> None:
    from storefront_sdk.distill import RecordingLLM

    inner = _teacher()
    rec = RecordingLLM(inner)
    assert rec.model_id == "scripted-teacher" and rec.fingerprint == inner.fingerprint
    assert rec.concurrent is inner.concurrent and rec.requests is inner.requests  # forwarded
    spec = MultiChoice(("eggs", "milk"), 1, 2)
    out = rec.generate([ChatMessage(role="user", content="breakfast")], spec, temperature=0.3)
    (call,) = rec.take()
    assert call.stage == "llm" and call.value == out.value and call.temperature == 0.3
    assert call.constraint.options == ["eggs", "milk"] and rec.take() == []


def test_progress_callback_and_line_output(
    catalog: Catalog,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int, str]] = []
    users = demo_users()[:2]
    collect(catalog, _teacher(), users, tmp_path / "c.jsonl", progress=lambda *a: seen.append(a))
    assert seen == [(1, 2, users[0].user_id), (2, 2, users[1].user_id)]

    # Without tqdm: a plain line per 10% of the shoppers, on stderr.
    import importlib

    real = importlib.import_module

    def no_tqdm(name: str, package: str | None = None) -> object:
        if name == "tqdm":
            raise ImportError("no tqdm here")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_tqdm)
    collect(catalog, _teacher(), users, tmp_path / "d.jsonl", progress=True)
    err = capsys.readouterr().err
    assert "collect: 1/2 shoppers (last demo-1)" in err and "collect: 2/2" in err


# -- filter -----------------------------------------------------------------------------------


def _call(
    index: int, stage: str, title: str | None, value: object, slot: int | None = None
) -> LLMCallRecord:
    if stage == "keywords":
        constraint = OutputConstraint(
            kind="multi_choice",
            json_schema={},
            options=["eggs", "milk", "yogurt"],
            min_items=1,
            max_items=3,
        )
        raw = json.dumps({"items": value})
    else:
        constraint = OutputConstraint(kind="structured", json_schema={"type": "object"})
        raw = json.dumps(value)
    return LLMCallRecord(
        index=index,
        stage=stage,
        placement=slot,
        theme_title=title,
        messages=[ChatMessage(role="system", content="s"), ChatMessage(role="user", content="u")],
        constraint=constraint,
        raw=raw,
        value=value,
        model_id="t",
        fingerprint="t",
    )


def _record(user_id: str = "u1") -> ShopperRecord:
    titles = ["Good", "Gated", "Thin", "Fell back", "Judged", "Missing"]
    themes = {"themes": [{"title": t} for t in titles]}
    calls = [_call(0, "themes", None, themes)]
    calls += [_call(i, "keywords", t, ["eggs"], slot=i) for i, t in enumerate(titles, 1)]
    outcomes = [
        ThemeOutcome(title="Good", slot=1, on_page=True, source="llm", density=12),
        ThemeOutcome(
            title="Gated",
            slot=2,
            rejections=[
                GateVerdict(gate="SafetyGate", level="theme", reason="unsafe:alcohol", placement=2)
            ],
        ),
        ThemeOutcome(title="Thin", slot=3, on_page=True, source="llm", density=3),
        ThemeOutcome(title="Fell back", slot=4, keywords_fell_back=True, on_page=True, density=10),
        ThemeOutcome(
            title="Judged",
            slot=5,
            on_page=True,
            density=10,
            rejections=[GateVerdict(gate="Safety", level="product", reason="restricted")],
            judge=[JudgeVerdict(judge="j", criterion="relevance", passed=False)],
        ),
    ]
    return ShopperRecord(
        user_id=user_id,
        teacher_model_id="t",
        teacher_fingerprint="t",
        min_products=8,
        calls=calls,
        themes=outcomes,
    )


def test_filter_drop_reasons() -> None:
    labels, report = aiqa_filter([_record()], use_judge=True)
    reasons = {lb.theme_titles[0]: lb.drop_reasons for lb in labels if lb.stage == "keywords"}
    assert reasons == {
        "Good": [],
        "Gated": ["gate:theme:unsafe", "not_on_page"],
        "Thin": ["density_below:8"],
        "Fell back": ["keywords_fell_back"],
        "Judged": ["judge:relevance"],  # a product-level rejection never drops a label
        "Missing": ["theme_not_traced"],
    }
    themes_label = next(lb for lb in labels if lb.stage == "themes")
    # Good themes: "Good" and "Fell back" (its keywords failed, not the theme itself).
    assert themes_label.drop_reasons == ["theme_yield:2/6"]
    assert report.kept == 1 and report.kept_by_stage == {"keywords": 1}
    assert report.drop_reasons["not_on_page"] == 1 and report.drop_reasons["theme_yield"] == 1

    # Without the judge, "Judged" is kept; a low yield threshold keeps the themes label.
    labels, report = aiqa_filter([_record()], min_theme_yield=0.3)
    assert report.kept_by_stage == {"keywords": 2, "themes": 1}
    # A lower density floor than the collect's keeps "Thin".
    _, report = aiqa_filter([_record()], min_products=3, min_theme_yield=1.0)
    assert report.kept_by_stage == {"keywords": 3}


def test_a_shortened_title_still_finds_its_outcome() -> None:
    from storefront_sdk.distill.collect import find_outcome

    rec = _record()
    long_title = "Good " + "x" * 200  # the generator cuts titles to its maximum length
    call = rec.calls[1].model_copy(update={"theme_title": long_title})
    cut = ThemeOutcome(title="Good xxxxxxxxxxxx", slot=1, on_page=True, density=12)
    rec = rec.model_copy(update={"calls": [call], "themes": [cut]})
    assert find_outcome({"good xxxxxxxxxxxx": cut}, long_title) is cut
    assert find_outcome({"good": cut}, long_title) is None  # too short a prefix to trust
    labels, report = aiqa_filter([rec])
    assert report.kept == 1 and labels[0].theme_titles == [long_title]


def test_one_title_per_call_themes_labels() -> None:
    # The local model's seeded profile asks for one title per call (a bare JSON string).
    rec = _record()
    text = OutputConstraint(kind="text", json_schema={"type": "string"})
    calls = [
        rec.calls[0].model_copy(update={"value": t, "raw": json.dumps(t), "constraint": text})
        for t in ("Good", "Thin", "Never shown")
    ]
    rec = rec.model_copy(update={"calls": calls})
    labels, _ = aiqa_filter([rec])
    assert [(lb.theme_titles, lb.drop_reasons) for lb in labels] == [
        (["Good"], []),
        (["Thin"], ["density_below:8"]),
        (["Never shown"], ["theme_not_traced"]),
    ]
    assert labels[0].output == '"Good"'


def test_labels_round_trip_through_jsonl(tmp_path: Path) -> None:
    labels, _ = aiqa_filter([_record("a"), _record("b")])
    path = tmp_path / "labels.jsonl"
    assert write_labels(labels, path) == len(labels)
    assert read_labels(path) == labels


# -- bad inputs -------------------------------------------------------------------------------


def test_empty_label_set_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DistillError, match="no labels"):
        aiqa_filter([])
    empty = ShopperRecord(
        user_id="x", teacher_model_id="t", teacher_fingerprint="t", min_products=8
    )
    with pytest.raises(DistillError, match="no labels"):
        aiqa_filter([empty])
    with pytest.raises(DistillError, match="no labels to export"):
        export_labels([], tmp_path / "out", filtered=False)


def test_keyword_outside_the_options_or_taxonomy_is_an_error(catalog: Catalog) -> None:
    rec = _record()
    bad = rec.calls[1].model_copy(update={"value": ["caviar"]})
    rec = rec.model_copy(update={"calls": [rec.calls[0], bad]})
    with pytest.raises(DistillError, match=r"shopper 'u1', call 1 .*'caviar' is not one of"):
        aiqa_filter([rec])

    from storefront_sdk.taxonomy import KeywordTaxonomy

    taxonomy = KeywordTaxonomy.from_catalog(catalog)
    rec = _record()
    odd = rec.calls[1].model_copy(
        update={
            "value": ["zzz-not-a-keyword"],
            "constraint": rec.calls[1].constraint.model_copy(
                update={"options": ["zzz-not-a-keyword"]}
            ),
        }
    )
    rec = rec.model_copy(update={"calls": [rec.calls[0], odd]})
    aiqa_filter([rec])  # fine without a taxonomy: the call's own options allow it
    with pytest.raises(DistillError, match="outside the taxonomy"):
        aiqa_filter([rec], taxonomy=taxonomy)


def test_malformed_checkpoint_line_names_file_and_line(catalog: Catalog, tmp_path: Path) -> None:
    ckpt = tmp_path / "c.jsonl"
    good = _record().model_dump_json()
    ckpt.write_text(good + "\n" + '{"user_id": "x"}\n')
    with pytest.raises(DistillError, match=r"c\.jsonl:2: not a shopper record"):
        read_checkpoint(ckpt)
    ckpt.write_text(good + "\n" + good[:40])  # a write cut off by a crash
    with pytest.raises(DistillError, match=r"c\.jsonl:2: .*cut off"):
        read_checkpoint(ckpt)
    ckpt.write_text(good + "\n\n{not json\n")
    with pytest.raises(DistillError, match=r"c\.jsonl:3:"):
        collect(catalog, _teacher(), demo_users()[:1], ckpt)  # checked before any work
    bad_labels = tmp_path / "labels.jsonl"
    bad_labels.write_text("[]\n")
    with pytest.raises(DistillError, match=r"labels\.jsonl:1: not a label"):
        read_labels(bad_labels)
    with pytest.raises(DistillError, match="does not exist"):
        collect(catalog, _teacher(), demo_users()[:1], tmp_path / "nope" / "c.jsonl")


def test_split_is_by_shopper_and_seeded() -> None:
    ids = [f"u{i}" for i in range(10)]
    a = split_shoppers(ids * 2, validation_fraction=0.3, seed=1)
    assert a == split_shoppers(list(reversed(ids)), validation_fraction=0.3, seed=1)
    assert len(a[1]) == 3 and sorted(a[0] + a[1]) == sorted(ids)
    assert split_shoppers(ids, validation_fraction=0.3, seed=2) != a
    with pytest.raises(DistillError, match="validation_fraction"):
        split_shoppers(ids, validation_fraction=1.0, seed=0)


def test_export_loads_with_hugging_face_datasets(catalog: Catalog, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    records = collect(catalog, _teacher(), demo_users()[:3], tmp_path / "c.jsonl")
    labels, _ = aiqa_filter(records, min_theme_yield=0.0)
    exp = export_labels(labels, tmp_path / "out", validation_fraction=0.0, exclude=())
    ds = datasets.load_dataset("json", data_files=exp.train_path, split="train")
    assert len(ds) == exp.train_examples and ds[0]["messages"][-1]["role"] == "assistant"


# -- an HTTP teacher on the stub OpenAI server, from Python and from the CLI ----------------------


def test_http_teacher_python_api(catalog: Catalog, tmp_path: Path) -> None:
    with StubOpenAIServer(seed=0) as srv:
        teacher = OpenAICompatibleLLM(base_url=srv.base_url, model="stub-teacher")
        records = collect(catalog, teacher, demo_users()[:2], tmp_path / "c.jsonl")
        served = srv.request_count
    calls = [c for r in records for c in r.calls]
    assert len(records) == 2 and len(calls) == served > 0
    assert {c.stage for c in calls} >= {"themes", "keywords"}
    assert all(c.model_id for c in calls) and all(c.error is None for c in calls)
    assert any(r.placements_from_model for r in records)


def test_cli_collect_filter_export_with_http_teacher(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, labels, out = tmp_path / "c.jsonl", tmp_path / "labels.jsonl", tmp_path / "sft"
    with StubOpenAIServer(seed=1) as srv:
        argv = ["distill", "collect", "-o", str(ckpt), "--llm", "http", "--quiet"]
        argv += ["--base-url", srv.base_url, "--model", "stub", "--users", "demo-1,demo-2"]
        argv += ["--allow-held-out"]  # demo users: trying the pipeline, not training data
        assert main(argv) == 0
    assert "2 shoppers" in capsys.readouterr().out
    assert main(["distill", "filter", str(ckpt), "-o", str(labels), "--min-theme-yield", "0"]) == 0
    printed = capsys.readouterr().out
    assert "labels kept" in printed
    export = ["distill", "export", str(labels), "-o", str(out), "--seed", "1"]
    assert main(export) == 2  # every label is a held-out (demo) shopper's
    assert "held out for evaluation" in capsys.readouterr().err
    assert main([*export, "--include-held-out"]) == 0
    assert "train:" in capsys.readouterr().out
    assert (out / "train.jsonl").read_text().strip()


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "c.jsonl"
    bad.write_text("{oops\n")
    assert main(["distill", "filter", str(bad), "-o", str(tmp_path / "l.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "c.jsonl:1: not a shopper record" in err and "Traceback" not in err
    assert main(["distill", "collect", "-o", str(bad), "--users", "demo-9", "--llm", "http"]) == 2
    assert "unknown demo user(s) demo-9" in capsys.readouterr().err
    args = ["distill", "collect", "-o", str(tmp_path / "x.jsonl"), "--users", "demo-1"]
    assert main([*args, "--llm", "http"]) == 2
    assert "held out for evaluation" in capsys.readouterr().err
    args.append("--allow-held-out")
    assert main([*args, "--llm", "http"]) == 2
    assert "needs --base-url and --model" in capsys.readouterr().err
    assert main(["distill", "export", str(tmp_path / "none.jsonl"), "-o", str(tmp_path)]) == 2
    assert "no such labels file" in capsys.readouterr().err
    assert main(["distill", "export", str(bad), "-o", "x", "--validation-fraction", "2"]) == 2


def test_collect_attaches_judge_verdicts(catalog: Catalog, tmp_path: Path) -> None:
    from storefront_sdk.evaluation import HeuristicJudge

    judge = HeuristicJudge(catalog=catalog, min_products=15)
    records = collect(catalog, _teacher(), demo_users()[:2], tmp_path / "c.jsonl", judge=judge)
    on_page = [t for r in records for t in r.themes if t.on_page]
    assert on_page and all(t.judge for t in on_page)
    criteria = {j.criterion for t in on_page for j in t.judge}
    assert "density" in criteria
    thin = [
        t for t in on_page if any(j.criterion == "density" and j.passed is False for j in t.judge)
    ]
    _, judged = aiqa_filter(records, use_judge=True)
    _, plain = aiqa_filter(records)
    assert judged.kept <= plain.kept
    assert thin  # min_products=15 is stricter than the storefront's 8
    # A placement the judge finds too thin drops its keyword label (when it had one).
    assert judged.drop_reasons.get("judge:density", 0) >= 1


def test_cli_collect_on_instacart_users(
    instacart_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "c.jsonl"
    with StubOpenAIServer(seed=2) as srv:
        argv = ["distill", "collect", "-o", str(ckpt), "--instacart-dir", str(instacart_dir)]
        argv += ["--users", "1-2", "--llm", "http", "--base-url", srv.base_url, "--model", "t"]
        assert main([*argv, "--quiet"]) == 0
    records = read_checkpoint(ckpt)
    assert sorted(r.user_id for r in records) == ["1", "2"]
    assert all(r.calls and r.placements_on_page for r in records)
