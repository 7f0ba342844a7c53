"""The production path on one machine: precompute pages, serve them, log exposures, analyse.

    python examples/production_path.py

Uses a throwaway redis-server when one is installed (Debian: apt-get install
redis-server), else a directory; the model is the in-repo OpenAI-compatible stub
server. In production: vLLM for the model, a Redis shared by every process, Ray
for the batch (``engine="ray"``) and ``storefront serve`` behind a load balancer.
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import uvicorn

from storefront_sdk import Catalog, OpenAICompatibleLLM, Storefront
from storefront_sdk.demo import demo_users
from storefront_sdk.experiments import (
    Experiment,
    JsonlExposureSink,
    Outcome,
    analyze,
    read_exposures,
)
from storefront_sdk.serving import (
    RedisServer,
    StorefrontSpec,
    create_app,
    open_page_store,
    precompute,
    synthetic_users,
)
from storefront_sdk.serving.redis_server import redis_server_available
from storefront_sdk.testing.stub_server import StubOpenAIServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


with ExitStack() as stack:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    if redis_server_available():
        store_url = stack.enter_context(RedisServer()).url
    else:
        store_url = str(tmp / "pages")
    model = stack.enter_context(StubOpenAIServer(failure_rate=0.1, hang_seconds=1.0, seed=0))

    # 1. Precompute: the same cascade as Storefront.build, for every shopper not stored yet.
    catalog = Catalog.demo()
    shoppers = demo_users() + synthetic_users(catalog, 30, seed=0)
    spec = StorefrontSpec(llm="http", base_url=model.base_url, model="stub", timeout=0.5)
    report = precompute(shoppers, store_url, spec, workers=8, progress=False)
    print(report.summary())
    print("re-run:", precompute(shoppers, store_url, spec, progress=False).summary())

    # 2. Serve: stored pages as stored; misses built within the deadline.
    exp = Experiment(name="home", split={"generative": 0.5, "control": 0.5})
    sf = Storefront(catalog, llm=OpenAICompatibleLLM(model.base_url, "stub"), cache=None)
    app = create_app(
        open_page_store(store_url),
        sf,
        users={u.user_id: u for u in shoppers},
        deadline_ms=150,
        experiment=exp,
        exposures=JsonlExposureSink(tmp / "exposures.jsonl"),
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for uid in ["demo-1", "synth-3", "new-shopper-7", "bad id!"]:
            r = client.get(f"/v1/pages/{uid}")
            body = r.json()
            if r.status_code != 200:
                print(f"{uid!r}: HTTP {r.status_code}: {body['error']}")
                continue
            titles = [p["theme"]["title"] for p in body["stored"]["page"]["placements"]]
            print(f"{uid}: arm={body['arm']} source={body['source']} {titles[:3]}")
        print(client.get("/healthz").json())
        for _ in range(5):  # traffic for the exposure log
            for user in shoppers:
                client.get(f"/v1/pages/{user.user_id}")
    server.should_exit = True
    thread.join()

    # 3. Analyse: exposures joined with (here simulated) cart adds.
    rng = random.Random(0)
    exposures = read_exposures(tmp / "exposures.jsonl")
    outcomes = [
        Outcome(user_id=e.user_id, ts=e.ts + 1.0)
        for e in exposures
        if rng.random() < (0.3 if e.arm == "generative" else 0.2)
    ]
    print(analyze(exposures, outcomes, n_boot=500).summary())
