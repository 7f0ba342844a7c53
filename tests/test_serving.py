"""The page-serving API on a real uvicorn server on 127.0.0.1 (and a real redis-server)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from storefront_sdk import Catalog, OpenAICompatibleLLM, Storefront
from storefront_sdk.demo import demo_users
from storefront_sdk.experiments import Experiment, JsonlExposureSink, read_exposures
from storefront_sdk.serving import (
    MemoryPageStore,
    PageStore,
    RedisPageStore,
    RedisServer,
    StoredPage,
    create_app,
    page_versions,
)
from storefront_sdk.serving.redis_server import redis_server_available
from storefront_sdk.testing.stub_server import StubOpenAIServer

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

needs_redis = pytest.mark.skipif(
    not redis_server_available(),
    reason="redis-server not installed (apt-get install redis-server; .ci/run installs it)",
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[httpx.Client]:
    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def baseline_sf() -> Storefront:
    return Storefront(Catalog.demo(), llm=None, cache=None).warm_up()


def _store_pages(store: PageStore, sf: Storefront) -> list[StoredPage]:
    out = []
    for user in demo_users():
        stored = StoredPage.from_page(sf.build(user), page_versions(sf))
        store.put(stored)
        out.append(stored)
    return out


def test_stored_pages_are_served_as_stored(baseline_sf: Storefront) -> None:
    store = MemoryPageStore()
    stored = _store_pages(store, baseline_sf)
    app = create_app(store, baseline_sf, users={u.user_id: u for u in demo_users()})
    with serving(app) as client:
        r = client.get(f"/v1/pages/{stored[0].user_id}")
        assert r.status_code == 200
        body = r.json()
        assert body["source"] == "store" and body["arm"] == "generative" and body["note"] is None
        assert body["stored"]["page_id"] == stored[0].page_id
        assert StoredPage.model_validate(body["stored"]) == stored[0]
        assert client.get("/healthz").json()["status"] == "ok"


def test_unknown_and_malformed_users(baseline_sf: Storefront) -> None:
    app = create_app(MemoryPageStore(), baseline_sf, deadline_ms=5000)
    with serving(app) as client:
        r = client.get("/v1/pages/never-seen-42")
        assert r.status_code == 200
        body = r.json()
        assert body["source"] == "built" and body["user_id"] == "never-seen-42"
        assert body["stored"]["page"]["placements"]  # a cold-start page, not an error
        again = client.get("/v1/pages/never-seen-42").json()
        assert again["source"] == "store"  # stored once built
        bad = client.get("/v1/pages/" + "x" * 200)
        assert bad.status_code == 400 and "malformed user id" in bad.json()["error"]
        assert client.get("/v1/pages/a%20b").status_code == 400


def test_a_slow_miss_gets_the_baseline_then_the_generated_page(tmp_path: Path) -> None:
    catalog = Catalog.demo()
    with StubOpenAIServer(latency=0.6) as stub:
        llm = OpenAICompatibleLLM(stub.base_url, "stub", timeout=10.0)
        sf = Storefront(catalog, llm=llm, cache=None)
        app = create_app(MemoryPageStore(), sf, deadline_ms=150)
        user = demo_users()[1]
        with serving(app) as client:
            start = time.perf_counter()
            body = client.get(f"/v1/pages/{user.user_id}").json()
            waited = time.perf_counter() - start
            assert body["source"] == "baseline"
            assert "deadline of 150 ms passed" in body["note"]
            assert body["stored"]["versions"]["model"] == "baseline"
            assert waited < 2.0  # answered at the deadline, not after the model (a hang check)
            for _ in range(200):  # the generated page is stored when it arrives
                body = client.get(f"/v1/pages/{user.user_id}").json()
                if body["source"] == "store":
                    break
                time.sleep(0.1)
            assert body["source"] == "store"
            assert body["stored"]["versions"]["model"].startswith("stub")
            metrics = client.get("/metrics").text
            assert 'storefront_fallbacks_total{reason="deadline"}' in metrics
            assert "storefront_request_seconds_bucket" in metrics
            assert 'storefront_page_lookups_total{result="hit"}' in metrics
            assert "storefront_build_seconds_count 1.0" in metrics


def test_experiment_arms_and_exposures(baseline_sf: Storefront, tmp_path: Path) -> None:
    exp = Experiment(name="home", split={"generative": 0.5, "control": 0.5})
    sink = JsonlExposureSink(tmp_path / "exposures.jsonl")
    store = MemoryPageStore()
    stored = {s.user_id: s for s in _store_pages(store, baseline_sf)}
    app = create_app(store, baseline_sf, experiment=exp, exposures=sink, deadline_ms=5000)
    with serving(app) as client:
        arms = {}
        for uid in [*stored, "cold-1", "cold-2", "cold-3"]:
            body = client.get(f"/v1/pages/{uid}").json()
            assert body["arm"] == exp.assign(uid) and body["experiment"] == "home"
            arms[uid] = body
    exposures = read_exposures(tmp_path / "exposures.jsonl")  # closed by the app's shutdown
    assert [e.user_id for e in exposures] == list(arms)
    for e in exposures:
        body = arms[e.user_id]
        assert e.arm == body["arm"] and e.page_id == body["stored"]["page_id"]
        shown = [p["product"]["id"] for pl in body["stored"]["page"]["placements"]
                 for p in pl["products"]]  # fmt: skip
        assert [pid for pl in e.placements for pid in pl.products] == shown
        if e.arm == "control":
            assert body["stored"]["variant"] == "control"


@needs_redis
def test_redis_store_and_redis_down_degrades(baseline_sf: Storefront) -> None:
    srv = RedisServer().start()
    try:
        store = RedisPageStore(srv.url, timeout=0.2)
        stored = _store_pages(store, baseline_sf)
        app = create_app(store, baseline_sf, deadline_ms=3000)
        with serving(app) as client:
            assert client.get(f"/v1/pages/{stored[0].user_id}").json()["source"] == "store"
            assert client.get("/healthz").json()["status"] == "ok"
            srv.stop()
            health = client.get("/healthz").json()
            assert health["status"] == "degraded"
            r = client.get(f"/v1/pages/{stored[0].user_id}")
            assert r.status_code == 200 and r.json()["source"] in ("built", "baseline")
            r2 = client.get("/v1/pages/someone-new")
            assert r2.status_code == 200 and r2.json()["stored"]["page"]["placements"]
            assert "storefront_store_errors_total" in client.get("/metrics").text
    finally:
        srv.stop()


def test_exposure_lines_are_json(tmp_path: Path) -> None:
    sink = JsonlExposureSink(tmp_path / "e.jsonl")
    sink.emit(b'{"a":1}')
    sink.close()
    assert json.loads((tmp_path / "e.jsonl").read_text()) == {"a": 1}


@pytest.mark.slow
def test_storefront_serve_command(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    port = _port()
    exposures = tmp_path / "exposures.jsonl"
    cmd = [sys.executable, "-m", "storefront_sdk.cli", "serve", "--store", str(tmp_path / "pages")]
    cmd += ["--port", str(port), "--experiment", "home", "--exposures", str(exposures)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=1.0).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = httpx.get(url + "/v1/pages/demo-1", timeout=10.0).json()
        assert body["arm"] == Experiment(name="home").assign("demo-1")
        assert body["stored"]["page"]["placements"]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode(errors="replace")
    assert proc.returncode in (0, -15), out
    assert read_exposures(exposures)[0].user_id == "demo-1"


@needs_redis
def test_a_frozen_redis_does_not_hang_requests(baseline_sf: Storefront) -> None:
    import os
    import signal

    srv = RedisServer().start()
    try:
        store = RedisPageStore(srv.url, timeout=5.0)  # the deadline, not this, must bound it
        stored = _store_pages(store, baseline_sf)
        app = create_app(store, baseline_sf, deadline_ms=300)
        with serving(app) as client:
            assert client.get(f"/v1/pages/{stored[0].user_id}").json()["source"] == "store"
            assert srv._proc is not None
            os.kill(srv._proc.pid, signal.SIGSTOP)  # accepts connections, never answers
            try:
                start = time.perf_counter()
                r = client.get(f"/v1/pages/{stored[1].user_id}")
                waited = time.perf_counter() - start
                assert r.status_code == 200 and r.json()["source"] in ("built", "baseline")
                assert waited < 3.0  # a hang check, not a speed figure
            finally:
                os.kill(srv._proc.pid, signal.SIGCONT)
    finally:
        srv.stop()
