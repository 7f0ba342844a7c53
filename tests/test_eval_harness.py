"""Instacart eval cases, the side-by-side harness, its report and the ``storefront eval`` CLI."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from storefront_sdk import Catalog, Gate, Product, Storefront, StorefrontConfig, Theme, UserContext
from storefront_sdk.evaluation import (
    EvalCase,
    EvalReport,
    evaluate,
    history_popularity,
    load_instacart_users,
    standard_configs,
)
from storefront_sdk.evaluation.cli import main as eval_main
from storefront_sdk.exceptions import CatalogError

# -- loading -------------------------------------------------------------------------------------


def _orders(users_dir: Path) -> list[dict[str, str]]:
    with (users_dir / "orders.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _order_items(users_dir: Path, name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with (users_dir / name).open(newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["order_id"], []).append(row["product_id"])
    return out


def test_cases_target_the_last_known_order_and_history_precedes_it(
    instacart_dir: Path, instacart_catalog: Catalog
) -> None:
    users_dir = instacart_dir / "users_1_40"
    cases = load_instacart_users(instacart_dir, instacart_catalog)
    assert [c.user.user_id for c in cases] == sorted(
        {r["user_id"] for r in _orders(users_dir)}, key=int
    )
    train = _order_items(users_dir, "order_products__train.csv")
    orders = _orders(users_dir)
    for case in cases:
        mine = [r for r in orders if r["user_id"] == case.user.user_id]
        train_orders = [r for r in mine if r["eval_set"] == "train"]
        if train_orders:  # the train order is the target
            assert case.target_order_number == int(train_orders[0]["order_number"])
            assert set(case.target_product_ids) == set(train[train_orders[0]["order_id"]])
        numbers = {it.order_number for it in case.user.history}
        assert numbers and max(n for n in numbers if n is not None) < (
            case.target_order_number or 0
        )
        assert case.skipped_unknown == 0


def test_unknown_products_are_skipped_and_counted(tmp_path: Path) -> None:
    catalog = Catalog([Product(id="1", title="Milk"), Product(id="2", title="Bread")])
    (tmp_path / "orders.csv").write_text(
        "order_id,user_id,eval_set,order_number\n10,5,prior,1\n11,5,prior,2\n12,5,train,3\n"
    )
    (tmp_path / "order_products__prior.csv").write_text("order_id,product_id\n10,1\n10,999\n11,2\n")
    (tmp_path / "order_products__train.csv").write_text("order_id,product_id\n12,2\n12,998\n")
    with pytest.warns(UserWarning, match="skipped 2"):
        [case] = load_instacart_users(tmp_path, catalog)
    assert case.target_product_ids == ["2"]
    assert [(it.product_id, it.order_number) for it in case.user.history] == [("1", 1), ("2", 2)]
    assert case.skipped_unknown == 2


def test_without_a_train_order_the_last_prior_order_is_the_target(tmp_path: Path) -> None:
    catalog = Catalog([Product(id="1", title="Milk"), Product(id="2", title="Bread")])
    (tmp_path / "orders.csv").write_text(
        "order_id,user_id,eval_set,order_number\n10,5,prior,1\n11,5,prior,2\n13,5,test,3\n"
    )
    (tmp_path / "order_products__prior.csv").write_text("order_id,product_id\n10,1\n11,2\n11,1\n")
    [case] = load_instacart_users(tmp_path, catalog)
    assert case.target_order_number == 2 and case.target_product_ids == ["2", "1"]
    assert [it.product_id for it in case.user.history] == ["1"]


def test_bad_orders_file_names_file_row_and_field(tmp_path: Path) -> None:
    catalog = Catalog([Product(id="1", title="Milk")])
    (tmp_path / "orders.csv").write_text(
        "order_id,user_id,eval_set,order_number\n10,5,prior,first\n"
    )
    (tmp_path / "order_products__prior.csv").write_text("order_id,product_id\n10,1\n")
    with pytest.raises(CatalogError) as err:
        load_instacart_users(tmp_path, catalog)
    assert err.value.row == 2 and err.value.field == "order_number"
    assert "orders.csv" in str(err.value)


def test_history_popularity_never_sees_targets() -> None:
    case = EvalCase(
        user=UserContext(user_id="1", history=[{"product_id": "a"}, {"product_id": "a"}]),  # type: ignore[list-item]
        target_product_ids=["b"],
    )
    assert history_popularity([case]) == {"a": 2.0}


# -- the harness -----------------------------------------------------------------------------------


class NoSoap(Gate):
    """Rejects household products: a business rule the report must count."""

    def check_product(self, product: Product, theme: Theme, user: UserContext) -> str | None:
        return "household" if product.department == "household" else None


@pytest.fixture(scope="module")
def eval_setup(instacart_dir: Path, instacart_catalog: Catalog) -> tuple[list[EvalCase], Catalog]:
    cases = load_instacart_users(instacart_dir, instacart_catalog, users=range(1, 9))
    return cases, instacart_catalog.with_popularity(history_popularity(cases))


@pytest.fixture(scope="module")
def report_configs(eval_setup: tuple[list[EvalCase], Catalog]) -> dict[str, Storefront]:
    return standard_configs(eval_setup[1], ("static", "history"))


@pytest.fixture(scope="module")
def report(
    eval_setup: tuple[list[EvalCase], Catalog], report_configs: dict[str, Storefront]
) -> EvalReport:
    cases, catalog = eval_setup
    configs = dict(report_configs)
    h = configs["history"]  # share its index, vocabulary and filter: only the gates differ
    configs["history_no_soap"] = Storefront(
        catalog,
        llm=None,
        cache=None,
        gates=[NoSoap()],
        retriever=h.retriever,
        relevance_filter=h.relevance_filter,
        taxonomy=h.taxonomy,
    )
    return evaluate(cases, configs, keep_pages=2, progress=io.StringIO())


def test_report_compares_every_configuration(report: EvalReport) -> None:
    # The references come first, at the counts of the first configuration.
    assert report.configs == ["popular", "buy_again", "static", "history", "history_no_soap"]
    assert report.references == ["popular", "buy_again"]
    assert report.reference_counts == "static"
    assert report.n_cases == 8 and report.k == [5, 20]
    for name in report.references:
        assert len(report.per_case[name]) == 8
        for key in ("recall", "discovery_recall", "discovery_recall_own", "weighted_recall"):
            assert 0.0 <= report.metrics[name][key] <= 1.0
    for name in report.configs[2:]:
        values = report.metrics[name]
        for key in (
            "recall",
            "discovery_recall",
            "hit_rate",
            "P-T@5",
            "P-T@20",
            "K-U",
            "density",
            "novelty",
        ):
            assert 0.0 <= values[key] <= 1.0 or math.isnan(values[key])
        assert len(report.per_case[name]) == 8
        assert len(report.sample_pages[name]) == 2
        assert report.judge_pass_rates[name]
    # The personalised page finds more of the next basket than the fixed one.
    assert report.metrics["history"]["recall"] > report.metrics["static"]["recall"]
    # Baselines generate nothing and need no fallback.
    assert report.metrics["history"]["llm_share"] == 0.0
    # Static themes ignore history: (almost) everything they show is new to the user.
    assert report.metrics["static"]["novelty"] > report.metrics["history"]["novelty"]


def test_gate_rejections_are_counted_from_traces(report: EvalReport) -> None:
    rejected = report.gate_rejections["history_no_soap"].get("NoSoap: household", 0)
    shown = [
        sp.product
        for page in report.sample_pages["history_no_soap"]
        for pl in page.placements
        for sp in pl.products
    ]
    assert not any(p.department == "household" for p in shown)
    traced = sum(
        1
        for page in report.sample_pages["history_no_soap"]
        for ev in page.trace.events_of("gate")
        if ev.data.get("gate") == "NoSoap"
    )
    assert rejected >= traced > 0
    assert "NoSoap: household" not in report.gate_rejections["history"]


def test_report_table_and_json_round_trip(report: EvalReport, tmp_path: Path) -> None:
    table = report.table()
    header = table.splitlines()[1]
    assert all(name in header for name in report.configs)
    for label in (
        "next-basket recall",
        "discovery recall",
        "hit rate",
        "P-T@5",
        "P-T@20",
        "K-U",
        "novelty",
    ):
        assert label in table
    path = report.to_json(tmp_path / "out" / "report.json")
    again = EvalReport.from_json(path)
    assert again.configs == report.configs
    for name in report.configs:
        for key, value in report.metrics[name].items():
            other = again.metrics[name][key]
            assert (math.isnan(value) and math.isnan(other)) or value == other
    assert (
        again.sample_pages["static"][0].product_ids == report.sample_pages["static"][0].product_ids
    )


def test_min_products_override_changes_density(eval_setup: tuple[list[EvalCase], Catalog]) -> None:
    cases, catalog = eval_setup
    sf = Storefront(
        catalog,
        llm=None,
        cache=None,
        config=StorefrontConfig(min_products=2, products_per_placement=4),
    )
    rep = evaluate(cases[:2], {"history": sf}, min_products=5, progress=False)
    # Placements hold at most 4 products, so none meets a minimum of 5.
    assert rep.metrics["history"]["density"] == 0.0


@pytest.mark.slow
def test_cli_prints_the_table_and_writes_reports(
    instacart_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = eval_main(
        [
            "--instacart-dir",
            str(instacart_dir),
            "--users",
            "2",
            "--configs",
            "static,history",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "next-basket recall" in out and "static" in out and "history" in out
    report = EvalReport.from_json(tmp_path / "report.json")
    assert report.n_cases == 2
    html = (tmp_path / "report.html").read_text()
    assert "<html" in html and "history" in html


def test_cli_rejects_unknown_configs(
    instacart_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert eval_main(["--instacart-dir", str(instacart_dir), "--configs", "magic"]) == 2
    assert "magic" in capsys.readouterr().err
    assert eval_main(["--instacart-dir", str(instacart_dir), "--configs", "http"]) == 2


@pytest.mark.slow
def test_http_configuration_against_a_local_openai_compatible_server(
    eval_setup: tuple[list[EvalCase], Catalog],
) -> None:
    from storefront_sdk.testing.stub_server import StubOpenAIServer

    cases, catalog = eval_setup
    with StubOpenAIServer(seed=1) as srv:
        configs = standard_configs(catalog, ["http"], base_url=srv.base_url, model="stub-model")
        rep = evaluate(cases[:2], configs, progress=False)
        assert srv.request_count > 0
    pages = rep.sample_pages["http"]
    assert any(pl.source == "llm" for page in pages for pl in page.placements)
    assert rep.metrics["http"]["llm_share"] > 0
    # Whatever the model said, every page was built, judged and measured.
    assert len(rep.per_case["http"]) == 2 and rep.invalid_verdicts["http"] == 0
    assert rep.metrics["http"]["placements"] > 0
