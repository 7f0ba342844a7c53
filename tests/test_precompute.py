"""Batch precompute: every page stored, failures isolated, re-runs do no work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storefront_sdk import Catalog, Storefront
from storefront_sdk.cli import main
from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.serving import (
    MemoryPageStore,
    StorefrontSpec,
    open_page_store,
    page_versions,
    precompute,
    synthetic_users,
)
from storefront_sdk.serving.precompute import load_users_jsonl
from storefront_sdk.testing.stub_server import StubOpenAIServer


def test_synthetic_users_are_seeded_and_use_the_catalog() -> None:
    catalog = Catalog.demo()
    a = synthetic_users(catalog, 30, seed=5)
    assert a == synthetic_users(catalog, 30, seed=5)
    assert a != synthetic_users(catalog, 30, seed=6)
    assert len({u.user_id for u in a}) == 30
    assert all(u.history and all(it.product_id in catalog for it in u.history) for u in a)
    with pytest.raises(ConfigurationError):
        synthetic_users(catalog, 3, rebuy=2.0)


class _FlakyStore(MemoryPageStore):
    """A store whose writes fail for one shopper (a real failure mode: the write raises)."""

    def put_record(self, variant: str, user_id: str, record: bytes) -> None:
        if user_id == "synth-3":
            raise ConnectionError("store refused the write")
        super().put_record(variant, user_id, record)


def test_local_precompute_with_model_failures_loses_nothing() -> None:
    catalog = Catalog.demo()
    users = synthetic_users(catalog, 20, seed=1)
    store = _FlakyStore()
    with StubOpenAIServer(failure_rate=0.1, hang_seconds=1.5, seed=2) as stub:
        spec = StorefrontSpec(llm="http", base_url=stub.base_url, model="stub", timeout=0.5)
        report = precompute(users, store, spec, workers=4, progress=False)
        assert stub.failures_injected  # the model did fail
        assert report.built == 19 and report.failed == 1 and report.skipped == 0
        assert report.failures[0].user_id == "synth-3"
        assert "store refused the write" in report.failures[0].error
        assert len(store) == 19
        requests = stub.request_count
        again = precompute(users, store, spec, workers=4, progress=False)
        # Only synth-3 is tried again (and fails again: its store still refuses it).
        assert (again.built, again.skipped, again.failed) == (0, 19, 1)
        assert stub.request_count > requests
        stored = store.get("synth-0")
        assert stored is not None and stored.versions.model.startswith("stub")
        assert stored.page.placements


def test_rerun_does_no_work_and_new_versions_rebuild(tmp_path: Path) -> None:
    users = synthetic_users(Catalog.demo(), 10, seed=2)
    url = str(tmp_path / "pages")
    spec = StorefrontSpec()
    first = precompute(users + users[:3], url, spec, workers=2, progress=False)
    assert (first.built, first.users) == (10, 13)  # duplicates are built once
    second = precompute(users, url, spec, progress=False)
    assert (second.built, second.skipped) == (0, 10)
    fewer = StorefrontSpec(config={"num_placements": 3})
    sf = fewer()
    assert page_versions(sf) == second.versions  # config is not a version: stored pages stay
    other_catalog = Storefront(Catalog.demo().with_popularity({"1": 5.0}), llm=None)
    third = precompute(users, url, lambda: other_catalog, progress=False, storefront=other_catalog)
    assert third.built == 10  # another catalog version: rebuilt
    assert len(open_page_store(url)) == 10


def test_cli_precompute_from_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = synthetic_users(Catalog.demo(), 5, seed=4)
    path = tmp_path / "users.jsonl"
    path.write_text("".join(u.model_dump_json() + "\n" for u in users))
    store = tmp_path / "store"
    args = ["precompute", "--users", str(path), "--store", str(store), "--quiet", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["built"] == 5 and out["failed"] == 0
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 5
    path.write_text(users[0].model_dump_json() + '\n{"user_id": ""}\n')
    with pytest.raises(ConfigurationError, match=r"users.jsonl:2: field user_id"):
        load_users_jsonl(path)
    assert main(["precompute", "--store", str(store)]) == 2


@pytest.mark.slow
def test_ray_precompute_small_run(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    users = synthetic_users(Catalog.demo(), 12, seed=9)
    url = str(tmp_path / "pages")
    with StubOpenAIServer(failure_rate=0.1, hang_seconds=1.5, seed=4) as stub:
        spec = StorefrontSpec(llm="http", base_url=stub.base_url, model="stub", timeout=0.5)
        report = precompute(users, url, spec, engine="ray", workers=1, batch_size=4, progress=False)
        assert (report.built, report.failed) == (12, 0), report.failures
        assert stub.request_count > 0
        assert len(open_page_store(url)) == 12
        again = precompute(users, url, spec, engine="ray", workers=1, progress=False)
        assert (again.built, again.skipped) == (0, 12)
