"""``storefront precompute`` and ``storefront serve`` (registered by the main command)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ..types import UserContext

__all__ = ["register"]


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--catalog",
        help="catalog: .csv, .jsonl or an Instacart directory (default: the demo catalog, "
        "or --instacart-dir's products)",
    )
    p.add_argument(
        "--llm", choices=("none", "http"), default="none",
        help="none (default): baselines; http: an OpenAI-compatible server (vLLM, llama.cpp ...)",
    )  # fmt: skip
    p.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", help="model name on that server")
    p.add_argument("--api-key-env", help="environment variable holding the model server's API key")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per model call (30)")
    p.add_argument("--cache", help="generation cache: redis://host:port/db (shared) or a directory")
    p.add_argument("--placements", type=int, default=8, help="placements per page (default: 8)")


def _spec(args: argparse.Namespace, catalog: str | None) -> Any:
    from .precompute import StorefrontSpec

    if args.llm == "http" and (not args.base_url or not args.model):
        raise ConfigurationError("--llm http needs --base-url and --model")
    return StorefrontSpec(
        catalog=catalog,
        llm=args.llm,
        base_url=args.base_url,
        model=args.model,
        api_key_env=args.api_key_env,
        timeout=args.timeout,
        cache=args.cache,
        config={"num_placements": args.placements},
    )


def _users(args: argparse.Namespace, sf: Any) -> list[UserContext]:
    users: list[UserContext] = []
    if getattr(args, "instacart_dir", None):
        from ..evaluation.instacart import load_instacart_users

        orders = args.orders_dir or args.instacart_dir
        users += [c.user for c in load_instacart_users(orders, sf.catalog)]
    if getattr(args, "users", None):
        from .precompute import load_users_jsonl

        users += load_users_jsonl(args.users)
    if getattr(args, "synthetic", 0):
        from .synthetic import synthetic_users

        users += synthetic_users(sf.catalog, args.synthetic, seed=args.seed)
    return users


def _catalog_path(args: argparse.Namespace) -> str | None:
    if args.catalog:
        return str(args.catalog)
    if getattr(args, "instacart_dir", None):
        return str(args.instacart_dir)
    return None


def _cmd_precompute(args: argparse.Namespace) -> int:
    from .precompute import precompute

    if not (args.instacart_dir or args.users or args.synthetic):
        raise ConfigurationError(
            "give shoppers: --instacart-dir DIR, --users FILE or --synthetic N"
        )
    spec = _spec(args, _catalog_path(args))
    sf = spec()
    users = _users(args, sf)
    report = precompute(
        users, args.store, spec, engine=args.engine, workers=args.workers,
        batch_size=args.batch_size, concurrency=args.concurrency, address=args.address,
        variant=args.variant,
        progress=not args.quiet, storefront=sf,
    )  # fmt: skip
    if args.json:
        out = report.model_dump(mode="json")
        out["pages_per_s"] = report.pages_per_s
        import json

        print(json.dumps(out, indent=2))
    else:
        print(report.summary())
        for f in report.failures[:20]:
            print(f"  failed {f.user_id}: {f.error}", file=sys.stderr)
    return 1 if report.failed else 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .pages import open_page_store

    spec = _spec(args, _catalog_path(args))
    sf = spec()
    known = {u.user_id: u for u in _users(args, sf)}
    experiment = None
    if args.experiment:
        from ..experiments import Experiment

        experiment = Experiment.parse_split(args.experiment, args.split, control=args.control)
    sink: Any = None
    if args.exposures:
        from ..experiments import JsonlExposureSink, RedisStreamExposureSink

        sink = (
            RedisStreamExposureSink(args.exposures)
            if args.exposures.startswith(("redis://", "rediss://"))
            else JsonlExposureSink(args.exposures)
        )
    app = create_app(
        open_page_store(args.store), sf, users=known, deadline_ms=args.deadline_ms,
        experiment=experiment, exposures=sink, max_builds=args.max_builds,
    )  # fmt: skip
    # Miss builds run in threads: a short GIL switch interval hands the event loop back
    # sooner while one of them computes, so answers at the deadline are not late.
    sys.setswitchinterval(0.001)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
        http="httptools", loop="uvloop",
    )  # fmt: skip
    return 0


def register(sub: Any) -> list[argparse.ArgumentParser]:
    """Add ``precompute`` and ``serve`` to the ``storefront`` command's subparsers."""
    p = sub.add_parser(
        "precompute",
        help="build and store pages for many shoppers (local or Ray)",
        description="Build pages for many shoppers and write them to a page store. Pages "
        "already stored for the same catalog, taxonomy and model versions are skipped.",
    )
    src = p.add_argument_group("shoppers (one or more)")
    src.add_argument("--instacart-dir", type=Path, help="Instacart folder (catalog + orders)")
    src.add_argument("--orders-dir", type=Path, help="orders folder when not under --instacart-dir")
    src.add_argument("--users", type=Path, help="JSON lines, one UserContext per line")
    src.add_argument("--synthetic", type=int, default=0, help="add N synthetic shoppers")
    src.add_argument("--seed", type=int, default=0, help="seed of the synthetic shoppers")
    p.add_argument(
        "--store", required=True, help="redis://host:port/db, a directory or file:///dir"
    )
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="default: local")
    p.add_argument(
        "--workers", type=int, default=1,
        help="Ray actors (engine ray) or pages in flight (engine local); default 1",
    )  # fmt: skip
    p.add_argument("--concurrency", type=int, default=8, help="pages in flight per Ray actor")
    p.add_argument("--batch-size", type=int, default=16, help="shoppers per batch (16)")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    p.add_argument(
        "--variant",
        default="generative",
        choices=("generative", "control"),
        help="page variant to store: generative (default) or control (use with --llm none: "
        "the experiment's control pages)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _model_args(p)
    p.set_defaults(func=_cmd_precompute)

    s = sub.add_parser(
        "serve",
        help="serve stored pages over HTTP (misses built within a deadline)",
        description="Serve pages from a page store: GET /v1/pages/{user_id}, /healthz, /metrics.",
    )
    s.add_argument(
        "--store", required=True, help="redis://host:port/db, a directory or file:///dir"
    )
    s.add_argument("--deadline-ms", type=float, default=150.0, help="miss deadline (150 ms)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--max-builds", type=int, default=2, help="concurrent miss builds (2)")
    s.add_argument("--instacart-dir", type=Path, help="known shoppers: an Instacart folder")
    s.add_argument("--orders-dir", type=Path, help="orders folder when not under --instacart-dir")
    s.add_argument("--users", type=Path, help="known shoppers: JSON lines of UserContext")
    s.add_argument("--experiment", help="experiment name: assign arms and log exposures")
    s.add_argument("--split", default="generative=50,control=50", help="arm shares")
    s.add_argument("--control", default="control", help="the control arm (baseline pages)")
    s.add_argument("--exposures", help="exposure sink: a .jsonl path or redis:// (a stream)")
    s.add_argument("--log-level", default="warning")
    _model_args(s)
    s.set_defaults(func=_cmd_serve)
    return [p, s]
