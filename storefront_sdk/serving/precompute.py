"""Batch precomputation of pages for many shoppers, locally or on Ray.

``precompute(users, store, factory)`` builds every shopper's page with the same
cascade as :meth:`Storefront.abuild <storefront_sdk.Storefront.abuild>` and writes it
to a :class:`~storefront_sdk.serving.pages.PageStore`:

* **idempotent and resumable**: shoppers whose page is already stored for the same
  catalog, taxonomy and model versions are skipped before any work is scheduled, so a
  re-run after a crash does only what is left, and a second run does nothing;
* **failures are isolated**: a shopper whose page cannot be built (bad record, a store
  write that fails) is recorded in the report with its error; the others go on. Model
  failures never get this far: the cascade falls back and the page records why
  (``fallbacks`` in the report counts such pages);
* **engines**: ``"local"`` builds in this process (``workers`` pages at a time on one
  event loop); ``"ray"`` runs Ray Data ``map_batches`` over ``workers`` actors, each
  holding one warmed :class:`~storefront_sdk.Storefront` (a local Ray instance by
  default, a cluster when ``address`` is given).

A Ray actor cannot receive a live Storefront, so the engines take a *factory*: a
picklable zero-argument callable returning one. :class:`StorefrontSpec` is such a
factory built from plain data (catalog path, model server, cache URL).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..exceptions import ConfigurationError
from ..types import UserContext
from .pages import PageStore, PageVersions, StoredPage, open_page_store, page_versions

if TYPE_CHECKING:
    from ..storefront import Storefront

__all__ = [
    "PageBuilder",
    "PrecomputeFailure",
    "PrecomputeReport",
    "StorefrontSpec",
    "load_users_jsonl",
    "precompute",
]

Engine = Literal["local", "ray"]


class StorefrontSpec(BaseModel):
    """A Storefront described by data, so that another process can build it.

    ``catalog``: a .csv / .jsonl file or an Instacart directory (None: the demo
    catalog). ``llm``: ``"none"`` (baselines) or ``"http"`` (an OpenAI-compatible
    server at ``base_url`` serving ``model``). ``cache``: a ``redis://`` URL (shared
    by every worker), a directory (diskcache) or None (no generation cache).
    ``config``: :class:`~storefront_sdk.StorefrontConfig` fields.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    catalog: str | None = None
    llm: Literal["none", "http"] = "none"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable holding the server's API key (read where the
    Storefront is built, so the key itself never travels inside the spec)."""
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    cache: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)

    def __call__(self) -> Storefront:
        from ..cli import load_catalog
        from ..storefront import Storefront

        llm: Any = None
        if self.llm == "http":
            if not self.base_url or not self.model:
                raise ConfigurationError("llm='http' needs base_url and model")
            from ..llm.openai import OpenAICompatibleLLM

            api_key = None
            if self.api_key_env:
                api_key = os.environ.get(self.api_key_env)
                if not api_key:
                    raise ConfigurationError(f"environment variable {self.api_key_env} is not set")
            llm = OpenAICompatibleLLM(
                self.base_url,
                self.model,
                api_key=api_key,
                timeout=self.timeout,
                max_retries=self.max_retries,
                response_format="auto",
            )
        cache: Any = None
        if self.cache:
            if self.cache.startswith(("redis://", "rediss://", "unix://")):
                from .redis_cache import RedisGenerationCache

                cache = RedisGenerationCache(self.cache)
            else:
                from ..cache import GenerationCache

                cache = GenerationCache(self.cache)
        return Storefront(load_catalog(self.catalog), llm=llm, cache=cache, **self.config)


class PrecomputeFailure(BaseModel):
    """A shopper whose page was not stored, and why."""

    user_id: str
    error: str


class PrecomputeReport(BaseModel):
    """What a precompute run did."""

    engine: str
    workers: int
    users: int = Field(description="shoppers given")
    built: int = Field(description="pages built and stored in this run")
    skipped: int = Field(description="already stored for the same versions")
    failed: int
    fallbacks: int = Field(description="stored pages where at least one stage fell back")
    fallback_stages: int = Field(description="stages that fell back, over all built pages")
    seconds: float
    versions: PageVersions
    failures: list[PrecomputeFailure] = Field(default_factory=list)

    @property
    def pages_per_s(self) -> float:
        return self.built / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"{self.users} shoppers: {self.built} built, {self.skipped} already stored, "
            f"{self.failed} failed; {self.fallbacks} pages with fallbacks "
            f"({self.fallback_stages} stages); {self.seconds:.1f} s, "
            f"{self.pages_per_s:.2f} pages/s ({self.engine}, {self.workers} workers)"
        )


class PageBuilder:
    """Builds and stores pages for batches of shoppers (a Ray Data callable class).

    Holds one warmed Storefront, one page store connection and one event loop for
    its lifetime; ``concurrency`` pages of a batch are built at a time (model calls
    overlap). Each row of the output says ``built``, ``skipped`` or ``failed``.
    """

    def __init__(
        self,
        factory: Callable[[], Storefront],
        store: str | PageStore,
        *,
        variant: str = "generative",
        concurrency: int = 8,
        storefront: Storefront | None = None,
    ) -> None:
        self.storefront = storefront if storefront is not None else factory().warm_up()
        self.versions = page_versions(self.storefront)
        self.store = open_page_store(store) if isinstance(store, str) else store
        self.variant = variant
        self.concurrency = max(1, concurrency)
        self._loop = asyncio.new_event_loop()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        rows = self.run([str(u) for u in batch["user"]])
        return {k: np.array([r[k] for r in rows]) for k in _COLUMNS}

    def run(self, records: Sequence[str]) -> list[dict[str, Any]]:
        """Build the shoppers of ``records`` (UserContext JSON); one result row each."""
        return self._loop.run_until_complete(self._run(records))

    def close(self) -> None:
        self._loop.close()

    async def _run(self, records: Sequence[str]) -> list[dict[str, Any]]:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(record: str) -> dict[str, Any]:
            async with sem:
                return await self._one(record)

        return list(await asyncio.gather(*(one(r) for r in records)))

    async def _one(self, record: str) -> dict[str, Any]:
        row: dict[str, Any] = {
            "user_id": "", "status": "failed", "fallbacks": 0, "build_ms": 0.0, "error": "",
        }  # fmt: skip
        try:
            user = UserContext.model_validate_json(record)
        except ValidationError as exc:
            row["user_id"] = _user_id_of(record)
            row["error"] = f"invalid shopper record: {exc.errors()[0]['msg']}"
            return row
        row["user_id"] = user.user_id
        try:
            if self.store.tags(self.variant, [user.user_id])[0] == self.versions.tag:
                row["status"] = "skipped"  # stored meanwhile by another worker or run
                return row
            page = await self.storefront.abuild(user)
            stored = StoredPage.from_page(page, self.versions, variant=self.variant)
            self.store.put(stored)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"[:500]
            return row
        row.update(status="built", fallbacks=stored.fallbacks, build_ms=stored.build_ms)
        return row


_COLUMNS = ("user_id", "status", "fallbacks", "build_ms", "error")


def _user_id_of(record: str) -> str:
    try:
        uid = json.loads(record).get("user_id")
    except Exception:
        return "?"
    return str(uid) if uid is not None else "?"


def load_users_jsonl(path: str | Path) -> list[UserContext]:
    """Shoppers from a JSON-lines file, one :class:`UserContext` per line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigurationError(f"--users {p}: file not found")
    users: list[UserContext] = []
    with p.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                users.append(UserContext.model_validate_json(line))
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(x) for x in err["loc"]) or "(line)"
                raise ConfigurationError(f"{p}:{line_no}: field {field}: {err['msg']}") from None
    return users


def precompute(
    users: Iterable[UserContext],
    store: str | PageStore,
    factory: Callable[[], Storefront],
    *,
    engine: Engine = "local",
    workers: int = 1,
    batch_size: int = 16,
    concurrency: int = 8,
    variant: str = "generative",
    address: str | None = None,
    progress: bool = True,
    storefront: Storefront | None = None,
) -> PrecomputeReport:
    """Build and store the pages of ``users`` that are not stored yet (see module).

    ``workers``: Ray actors (``engine="ray"``) or pages in flight (``"local"``);
    ``concurrency``: pages in flight per Ray actor; ``storefront``: an already
    built Storefront the local engine (and the version check) may use instead of
    calling ``factory``.
    """
    if engine not in ("local", "ray"):
        raise ConfigurationError(f"engine must be 'local' or 'ray', got {engine!r}")
    if workers < 1 or batch_size < 1 or concurrency < 1:
        raise ConfigurationError("workers, batch_size and concurrency must be >= 1")
    start = time.perf_counter()
    page_store = open_page_store(store) if isinstance(store, str) else store
    sf = storefront if storefront is not None else factory()
    versions = page_versions(sf)
    all_users = list(users)
    seen: set[str] = set()
    unique: list[UserContext] = []
    for u in all_users:
        if u.user_id not in seen:
            seen.add(u.user_id)
            unique.append(u)
    todo_ids = set(page_store.missing([u.user_id for u in unique], versions, variant))
    todo = [u.model_dump_json() for u in unique if u.user_id in todo_ids]
    rows: list[dict[str, Any]] = []
    bar = _progress(len(todo), progress)
    try:
        if todo and engine == "local":
            builder = PageBuilder(
                factory, page_store, variant=variant, concurrency=workers,
                storefront=sf.warm_up(),
            )  # fmt: skip
            try:
                for i in range(0, len(todo), batch_size * workers):
                    chunk = builder.run(todo[i : i + batch_size * workers])
                    rows.extend(chunk)
                    bar.update(len(chunk))
            finally:
                builder.close()
        elif todo:
            if not isinstance(store, str):
                store = page_store.url
                if store == "memory://":
                    raise ConfigurationError(
                        "the Ray engine needs a store other processes can reach "
                        "(redis:// or a directory), not memory://"
                    )
            for row in _ray_rows(todo, factory, store, workers, batch_size, concurrency,
                                 variant, address):  # fmt: skip
                rows.append(row)
                bar.update(1)
    finally:
        bar.close()
    built = [r for r in rows if r["status"] == "built"]
    failed = [r for r in rows if r["status"] == "failed"]
    return PrecomputeReport(
        engine=engine,
        workers=workers,
        users=len(all_users),
        built=len(built),
        skipped=len(unique) - len(todo) + sum(r["status"] == "skipped" for r in rows),
        failed=len(failed),
        fallbacks=sum(1 for r in built if int(r["fallbacks"]) > 0),
        fallback_stages=sum(int(r["fallbacks"]) for r in built),
        seconds=time.perf_counter() - start,
        versions=versions,
        failures=[
            PrecomputeFailure(user_id=str(r["user_id"]), error=str(r["error"])) for r in failed
        ],
    )


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="page", desc="precompute", smoothing=0.1)


def _ray_rows(
    todo: list[str],
    factory: Callable[[], Storefront],
    store: str,
    workers: int,
    batch_size: int,
    concurrency: int,
    variant: str,
    address: str | None,
) -> Iterator[dict[str, Any]]:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ConfigurationError(
            'the Ray engine needs Ray: pip install "storefront-sdk[precompute]"'
        ) from exc
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False, "log_to_driver": False, "configure_logging": False,
        }  # fmt: skip
        if address is None:
            kwargs["num_cpus"] = workers
        ray.init(address=address, **kwargs)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        blocks = max(1, min(len(todo), workers * 4, (len(todo) + batch_size - 1) // batch_size))
        ds = ray.data.from_items([{"user": t} for t in todo], override_num_blocks=blocks)
        out = ds.map_batches(
            PageBuilder,
            fn_constructor_args=(factory, store),
            fn_constructor_kwargs={"variant": variant, "concurrency": concurrency},
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        for row in out.iter_rows():
            yield dict(row)
    finally:
        if started:
            ray.shutdown()
