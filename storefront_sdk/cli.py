"""The ``storefront`` command: build a page from the terminal, evaluate configurations."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .exceptions import ConfigurationError, StorefrontError
from .types import Interaction, Page, UserContext

__all__ = ["main"]


def load_catalog(path: str | None) -> Catalog:
    """The demo catalog, or a CSV / JSONL file, or an Instacart-layout directory."""
    if path is None:
        return Catalog.demo()
    p = Path(path)
    if p.is_dir():
        return Catalog.from_instacart(p)
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        return Catalog.from_jsonl(p)
    if p.suffix.lower() == ".csv":
        return Catalog.from_csv(p)
    raise ConfigurationError(
        f"--catalog {path}: expected a .csv or .jsonl file or an Instacart directory"
    )


def _user(args: argparse.Namespace, demo_catalog: bool) -> UserContext:
    from .demo import demo_user, demo_users

    history: list[Interaction] = []
    if args.history:
        ids = [x.strip() for x in args.history.split(",") if x.strip()]
        history = [Interaction(product_id=pid, order_number=1) for pid in ids]
        return UserContext(user_id=args.user, history=history, age_verified=args.age_verified)
    if demo_catalog:
        if args.user in {u.user_id for u in demo_users()}:
            user = demo_user(args.user)
            return user.model_copy(update={"age_verified": args.age_verified or user.age_verified})
        raise ConfigurationError(
            f"unknown demo user {args.user!r}; known: {', '.join(u.user_id for u in demo_users())} "
            "(or pass --history ID,ID,...)"
        )
    return UserContext(user_id=args.user, age_verified=args.age_verified)


def _llm(args: argparse.Namespace) -> Any:
    if args.llm == "none":
        return None
    if args.llm == "auto":
        return "auto"
    if args.llm == "local":
        from .llm.outlines import LocalLLM

        return LocalLLM.default()
    if not args.base_url or not args.model:
        raise ConfigurationError("--llm http needs --base-url and --model")
    from .llm.openai import OpenAICompatibleLLM

    # "auto" negotiates json_schema vs llama.cpp's json_object+schema on the first call.
    return OpenAICompatibleLLM(base_url=args.base_url, model=args.model, response_format="auto")


def _cache(args: argparse.Namespace) -> Any:
    if args.no_cache:
        return None
    if args.cache_dir:
        from .cache import GenerationCache

        return GenerationCache(args.cache_dir)
    return "auto"


def format_table(page: Page) -> str:
    """A page as plain text: one block per placement."""
    lines = [f"Storefront for user {page.user_id}: {len(page.placements)} placements"]
    for i, pl in enumerate(page.placements, 1):
        lines.append("")
        lines.append(f"{i}. {pl.theme.title}  [{pl.source}]")
        if pl.theme.description:
            lines.append(f"   {pl.theme.description}")
        if pl.keywords:
            lines.append(f"   keywords: {', '.join(pl.keywords)}")
        for sp in pl.products:
            price = f"  ${sp.product.price:.2f}" if sp.product.price is not None else ""
            pin = " *" if sp.pinned else ""
            lines.append(f"   - {sp.product.title} ({sp.product.aisle}){price}{pin}")
    fallbacks = page.trace.fallbacks
    lines.append("")
    lines.append(
        f"built in {page.trace.total_ms:.1f} ms; cache hits {page.trace.cache_hits}; "
        f"fallbacks {len(fallbacks)}; gate rejections {len(page.trace.events_of('gate'))}"
    )
    return "\n".join(lines)


def _cmd_build(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog)
    user = _user(args, demo_catalog=args.catalog is None)
    from .storefront import Storefront

    sf = Storefront(
        catalog,
        llm=_llm(args),
        cache=_cache(args),
        num_placements=args.placements,
        products_per_placement=args.products,
        min_products=min(args.min_products, args.products),
    )
    page = sf.build(user)
    if args.format == "json":
        out = page.model_dump_json(indent=2)
    elif args.format == "html":
        from .render import render_page_html

        out = render_page_html(page)
    else:
        out = format_table(page)
    if args.output:
        Path(args.output).write_text(out, encoding="utf-8")
    else:
        sys.stdout.write(out + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storefront",
        description="Build personalised storefront pages with a cascade of generative models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    b = sub.add_parser(
        "build",
        help="build one user's page",
        description="Build one user's storefront page and print it.",
    )
    b.add_argument(
        "--user", required=True, help="user id (a demo user such as demo-1 on the demo catalog)"
    )
    b.add_argument(
        "--catalog",
        help="catalog: .csv, .jsonl or an Instacart directory (default: the demo catalog)",
    )
    b.add_argument(
        "--history", help="comma-separated product ids the user bought (overrides demo history)"
    )
    b.add_argument(
        "--age-verified", action="store_true", help="the user may see restricted categories"
    )
    b.add_argument(
        "--format",
        choices=("table", "json", "html"),
        default="table",
        help="output format (default: table)",
    )
    b.add_argument("--output", "-o", help="write to this file instead of stdout")
    b.add_argument(
        "--llm",
        choices=("auto", "none", "local", "http"),
        default="auto",
        help="auto (default): the local model if installed, else baselines; none: baselines only; "
        "local: the local model; http: an OpenAI-compatible server",
    )
    b.add_argument(
        "--base-url",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (with --llm http)",
    )
    b.add_argument("--model", help="model name on that server (with --llm http)")
    b.add_argument("--placements", type=int, default=8, help="placements per page (default: 8)")
    b.add_argument("--products", type=int, default=20, help="products per placement (default: 20)")
    b.add_argument(
        "--min-products",
        type=int,
        default=8,
        help="drop placements with fewer products (default: 8)",
    )
    b.add_argument(
        "--cache-dir",
        help="generation cache directory (default: $STOREFRONT_CACHE_DIR or ~/.cache)",
    )
    b.add_argument("--no-cache", action="store_true", help="do not cache generations")
    b.set_defaults(func=_cmd_build)
    from .evaluation.cli import register

    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except StorefrontError as exc:
        print(f"storefront: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
