"""The page-serving API: stored pages first, misses built within a deadline.

``create_app(...)`` returns a FastAPI application; ``storefront serve`` runs it with
uvicorn. Endpoints:

* ``GET /v1/pages/{user_id}``: the user's page. A stored page is returned as its
  stored JSON bytes (no parsing, no re-validation). On a miss the page is built in a
  worker thread; if it is not ready when the deadline passes, the answer is the
  baseline page (the user's stored control page if there is one, else the
  non-generative cold-start page built at start-up) with ``"source": "baseline"``
  and a ``note`` saying why, and the generated page is stored when it arrives.
  Users the server does not know get a cold-start page (an empty history).
  Malformed ids get HTTP 400 with a message. At most ``max_builds`` builds run at
  once; a miss beyond that is answered with the baseline at once (``overloaded``).
* ``GET /healthz``: ``ok``, or ``degraded`` when the page store does not answer
  (pages are then built in-process and kept in memory).
* ``GET /metrics``: Prometheus text format: requests, latency histogram, hits and
  misses, fallbacks by reason, build time, store errors.

With an :class:`~storefront_sdk.experiments.Experiment`, each user is assigned an arm;
the control arm gets the baseline (non-generative) page, the others the generative
one, and every page served is written to the exposure sink.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ..types import UserContext
from .pages import PageStore, StoredPage, encode_stored_page, page_versions, split_record

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..experiments import Experiment
    from ..storefront import Storefront

__all__ = ["ExposureSink", "create_app"]

USER_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
COLD_START_ID = "__cold_start__"


class ExposureSink(Protocol):
    def emit(self, event: bytes) -> None: ...

    def close(self) -> None: ...


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "storefront_requests", "Page requests by source of the answer", ["source"], registry=r
        )
        self.latency = Histogram(
            "storefront_request_seconds",
            "Page request latency",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0),
            registry=r,
        )
        self.lookups = Counter("storefront_page_lookups", "Store lookups", ["result"], registry=r)
        self.fallbacks = Counter(
            "storefront_fallbacks", "Baseline answers by reason", ["reason"], registry=r
        )
        self.build = Histogram(
            "storefront_build_seconds",
            "Time to build a missing page",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.build_errors = Counter("storefront_build_errors", "Builds that raised", registry=r)
        self.store_errors = Counter("storefront_store_errors", "Page store errors", registry=r)
        self.bad_requests = Counter("storefront_bad_requests", "Rejected ids", registry=r)
        self.in_flight = Gauge("storefront_builds_in_flight", "Builds running", registry=r)
        self.degraded = Gauge("storefront_degraded", "1 when the store is down", registry=r)


class _Server:
    def __init__(
        self,
        store: PageStore,
        storefront: Storefront,
        baseline: Storefront,
        users: Mapping[str, UserContext],
        deadline_s: float,
        experiment: Experiment | None,
        exposures: ExposureSink | None,
        max_builds: int,
        revalidate: bool = False,
    ) -> None:
        self.revalidate = revalidate
        self.store = store
        self.sf = {"generative": storefront, "control": baseline}
        self.versions = {k: page_versions(v) for k, v in self.sf.items()}
        self.users = users
        self.deadline_s = deadline_s
        self.experiment = experiment
        self.exposures = exposures
        self.max_builds = max_builds
        self.pool = ThreadPoolExecutor(max_builds, thread_name_prefix="storefront-build")
        self.inflight: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        self.local: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.store_ok = True
        self.store_retry_at = 0.0
        self.writes: set[asyncio.Future[None]] = set()
        self.metrics = _Metrics()
        cold = baseline.build(UserContext(user_id=COLD_START_ID))
        self.cold_record = encode_stored_page(
            StoredPage.from_page(cold, self.versions["control"], variant="control")
        )

    # -- store access with a circuit breaker -------------------------------------------
    def _mark_down(self) -> None:
        self.metrics.store_errors.inc()
        self.store_ok = False
        self.store_retry_at = time.monotonic() + 1.0
        self.metrics.degraded.set(1)

    def _store_usable(self) -> bool:
        return self.store_ok or time.monotonic() >= self.store_retry_at

    async def read(self, variant: str, uid: str, timeout: float) -> bytes | None:
        local = self.local.get((variant, uid))
        if local is not None:
            return local
        if not self._store_usable():
            return None
        try:
            rec = await asyncio.wait_for(self.store.aget_record(variant, uid), max(timeout, 0.001))
        except asyncio.TimeoutError:
            self.metrics.store_errors.inc()  # slow, not necessarily down: no circuit break
            return None
        except Exception:
            self._mark_down()
            return None
        if not self.store_ok:
            self.store_ok = True
            self.metrics.degraded.set(0)
        return rec

    async def write(self, variant: str, uid: str, record: bytes) -> None:
        if self._store_usable():
            try:
                await asyncio.wait_for(self.store.aput_record(variant, uid, record), 2.0)
                self.local.pop((variant, uid), None)
                return
            except Exception:
                self._mark_down()
        self.local[(variant, uid)] = record
        while len(self.local) > 10_000:
            self.local.popitem(last=False)

    # -- building ----------------------------------------------------------------------
    def _build(self, variant: str, user: UserContext) -> bytes:
        page = self.sf[variant].build(user)
        stored = StoredPage.from_page(page, self.versions[variant], variant=variant)
        return encode_stored_page(stored)

    def start_build(self, variant: str, user: UserContext) -> asyncio.Future[bytes] | None:
        key = (variant, user.user_id)
        fut = self.inflight.get(key)
        if fut is not None:
            return fut
        if len(self.inflight) >= self.max_builds:
            return None
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        fut = asyncio.ensure_future(loop.run_in_executor(self.pool, self._build, variant, user))
        self.inflight[key] = fut
        self.metrics.in_flight.set(len(self.inflight))

        def done(f: asyncio.Future[bytes]) -> None:
            self.inflight.pop(key, None)
            self.metrics.in_flight.set(len(self.inflight))
            self.metrics.build.observe(time.perf_counter() - started)
            if f.cancelled() or f.exception() is not None:
                self.metrics.build_errors.inc()
                return
            task = asyncio.ensure_future(self.write(variant, user.user_id, f.result()))
            self.writes.add(task)
            task.add_done_callback(self.writes.discard)

        fut.add_done_callback(done)
        return fut

    # -- one request -------------------------------------------------------------------
    async def page(self, uid: str) -> tuple[int, bytes]:
        t0 = time.perf_counter()
        end = t0 + self.deadline_s
        if USER_ID.fullmatch(uid) is None:
            self.metrics.bad_requests.inc()
            msg = (
                f"malformed user id {uid[:60]!r}: use 1-128 characters among A-Z a-z 0-9 _ . : @ -"
            )
            return 400, orjson.dumps({"error": msg})
        arm = self.experiment.assign(uid) if self.experiment else "generative"
        control = self.experiment.control if self.experiment else "control"
        variant = "control" if arm == control else "generative"
        source, note = "store", None
        record = await self.read(variant, uid, end - time.perf_counter())
        self.metrics.lookups.labels("hit" if record is not None else "miss").inc()
        if record is None:
            user = self.users.get(uid) or UserContext(user_id=uid)
            fut = self.start_build(variant, user)
            if fut is not None:
                try:
                    record = await asyncio.wait_for(
                        asyncio.shield(fut), max(end - time.perf_counter(), 0.0)
                    )
                    source = "built"
                except asyncio.TimeoutError:
                    note = (
                        f"deadline of {self.deadline_s * 1000:.0f} ms passed; "
                        "the generated page is stored when it arrives"
                    )
                    reason = "deadline"
                except Exception as exc:
                    note = f"page build failed ({type(exc).__name__}); baseline page served"
                    reason = "error"
            else:
                note = "too many pages being built; baseline page served"
                reason = "overloaded"
            if record is None:
                source = "baseline"
                self.metrics.fallbacks.labels(reason).inc()
                if variant != "control":
                    record = await self.read("control", uid, end + 0.01 - time.perf_counter())
                if record is None:
                    record = self.cold_record
        self.metrics.requests.labels(source).inc()
        _, shown, envelope = split_record(record)
        if self.revalidate:
            envelope = StoredPage.model_validate_json(envelope).model_dump_json().encode()
        head = {"user_id": uid, "arm": arm, "source": source, "note": note}
        if self.experiment is not None:
            head["experiment"] = self.experiment.name
        body = orjson.dumps(head)[:-1] + b',"stored":' + envelope + b"}"
        if self.exposures is not None:
            ev = orjson.dumps(
                {"ts": time.time(), "experiment": self.experiment.name if self.experiment else None,
                 "user_id": uid, "arm": arm, "source": source}
            )  # fmt: skip
            self.exposures.emit(ev[:-1] + b"," + shown[1:])
        self.metrics.latency.observe(time.perf_counter() - t0)
        return 200, body

    async def health(self) -> dict[str, Any]:
        ok = False
        try:
            ok = await asyncio.wait_for(self.store.aping(), 0.5)
        except Exception:
            ok = False
        if ok and not self.store_ok:
            self.store_ok = True
        self.metrics.degraded.set(0 if ok else 1)
        return {
            "status": "ok" if ok else "degraded",
            "store": "ok" if ok else "unreachable: pages are built in-process",
            "builds_in_flight": len(self.inflight),
            "deadline_ms": self.deadline_s * 1000.0,
        }

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.exposures is not None:
            self.exposures.close()


def create_app(
    store: PageStore,
    storefront: Storefront,
    *,
    baseline: Storefront | None = None,
    users: Mapping[str, UserContext] | None = None,
    deadline_ms: float = 150.0,
    experiment: Experiment | None = None,
    exposures: ExposureSink | None = None,
    max_builds: int = 2,
    revalidate: bool = False,
) -> FastAPI:
    """The page-serving application (see module).

    ``baseline`` defaults to an ``llm=None`` Storefront over the same catalog;
    ``users`` maps ids to known shoppers; ``revalidate`` parses and re-serialises
    every stored page before answering (slower: the benchmark's baseline, and a
    debugging aid when a store's contents are in doubt).
    """
    from fastapi import FastAPI
    from fastapi.responses import Response

    from ..storefront import Storefront as _Storefront

    if baseline is None:
        baseline = _Storefront(storefront.catalog, llm=None, cache=None, config=storefront.config)
    server = _Server(
        store, storefront.warm_up(), baseline.warm_up(), users or {}, deadline_ms / 1000.0,
        experiment, exposures, max(1, max_builds), revalidate,
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The catalog, indexes and models loaded above are long-lived: moving them out of
        # the collector's generations keeps full collections (which walked ~1M objects and
        # paused every request) off the serving path. The process is ours, so this
        # process-wide setting is the server's to make (the library never calls it).
        gc.collect()
        gc.freeze()
        yield
        server.close()

    app = FastAPI(
        title="storefront pages", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.server = server

    @app.get("/v1/pages/{user_id}")
    async def get_page(user_id: str) -> Response:
        status, body = await server.page(user_id)
        return Response(body, status_code=status, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(orjson.dumps(await server.health()), media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
