"""Batch precompute on Ray: Instacart shoppers plus synthetic ones, model failures injected.

    python benchmarks/bench_precompute.py [--instacart-dir DIR] [--synthetic 2000]
        [--workers 1,2] [--failure-rate 0.1] [--engine ray]

The production set-up on one machine: a ``redis-server`` (page store and shared
generation cache), the in-repo OpenAI-compatible stub server as the model
(``--model-latency`` per call, ``--failure-rate`` of calls failing: 429, 500, hangs past
the client's timeout, malformed JSON) and ``storefront_sdk.serving.precompute`` with
the HTTP backend. For each worker count: empty Redis, precompute the 40 Instacart users
plus ``--synthetic`` seeded synthetic shoppers, check every page is stored, then run
again and check the re-run builds nothing and calls the model zero times.

The named baseline is the same job with ``--engine local`` in one process (one event
loop, ``--local-concurrency`` pages in flight), run first in the same invocation
(``--no-baseline`` skips it). Prints pages/s (wall time from submission to the last
page stored, actor start-up and catalog loading included).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from storefront_sdk.evaluation.instacart import load_instacart_users  # noqa: E402
from storefront_sdk.serving import (  # noqa: E402
    RedisPageStore,
    RedisServer,
    StorefrontSpec,
    precompute,
    synthetic_users,
)
from storefront_sdk.testing.stub_server import StubOpenAIServer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--instacart-dir", default=str(REPO.parent / "shared" / "data" / "instacart"))
    p.add_argument("--synthetic", type=int, default=2000)
    p.add_argument("--workers", default="1,2", help="Ray worker counts to run (1,2)")
    p.add_argument("--failure-rate", type=float, default=0.1)
    p.add_argument("--model-latency", type=float, default=0.05)
    p.add_argument("--concurrency", type=int, default=8, help="pages in flight per actor")
    p.add_argument("--local-concurrency", type=int, default=8)
    p.add_argument("--no-baseline", action="store_true")
    args = p.parse_args()
    logging.getLogger("storefront_sdk").setLevel(logging.ERROR)  # retries are expected

    root = Path(args.instacart_dir)
    if not (root / "products.csv").exists():
        sys.exit(f"Instacart data not found at {root}")
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
    with (
        RedisServer() as redis,
        StubOpenAIServer(
            latency=args.model_latency, failure_rate=args.failure_rate, hang_seconds=2.0, seed=0
        ) as stub,
    ):
        spec = StorefrontSpec(
            catalog=str(root),
            llm="http",
            base_url=stub.base_url,
            model="stub",
            timeout=1.0,
            max_retries=3,
            cache=redis.url,
        )
        t0 = time.perf_counter()
        sf = spec()
        users = [c.user for c in load_instacart_users(root, sf.catalog)]
        users += synthetic_users(sf.catalog, args.synthetic, seed=0)
        print(
            f"{len(users)} shoppers ({len(users) - args.synthetic} Instacart + "
            f"{args.synthetic} synthetic); loaded in {time.perf_counter() - t0:.1f} s"
        )
        store = RedisPageStore(redis.url)
        runs: list[tuple[str, int]] = [] if args.no_baseline else [("local", 1)]
        runs += [("ray", int(w)) for w in args.workers.split(",")]
        for engine, workers in runs:
            store._client.flushdb()  # empty page store and generation cache
            before = stub.request_count
            injected = sum(stub.failures_injected.values())
            report = precompute(
                users, store, spec, engine=engine,  # type: ignore[arg-type]
                workers=workers if engine == "ray" else args.local_concurrency,
                concurrency=args.concurrency, progress=False,
                storefront=sf if engine == "local" else None,
            )  # fmt: skip
            calls = stub.request_count - before
            failed_calls = sum(stub.failures_injected.values()) - injected
            label = (
                f"{engine} x{workers}"
                if engine == "ray"
                else f"local ({args.local_concurrency} in flight)"
            )
            print(f"\n[{label}] {report.summary()}")
            print(
                f"  model calls {calls}, injected failures {failed_calls} "
                f"({failed_calls / max(calls, 1):.1%}); pages in the store: "
                f"{sum(1 for k in store._client.scan_iter(match=store.prefix + '*'))}"
                f" of {len({u.user_id for u in users})}; lost: "
                f"{len(users) - report.built - report.skipped - report.failed}"
            )
            for f in report.failures[:5]:
                print(f"  failed {f.user_id}: {f.error}")
            before = stub.request_count
            again = precompute(
                users,
                store,
                spec,
                engine=engine,  # type: ignore[arg-type]
                workers=workers,
                progress=False,
                storefront=sf,
            )
            print(
                f"  re-run: {again.built} built, {again.skipped} skipped, "
                f"{stub.request_count - before} model calls, {again.seconds:.1f} s"
            )


if __name__ == "__main__":
    main()
