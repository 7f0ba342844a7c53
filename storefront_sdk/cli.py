"""The ``storefront`` command: build a page from the terminal, evaluate configurations.

Structure, so that subcommands are easy to add: each subcommand has an
``_add_<name>(subparsers)`` function that declares its arguments and a
``_cmd_<name>(args) -> int`` function that runs it; :func:`build_parser` calls the
``_add_`` functions. :func:`main` owns error reporting for all of them:

* bad arguments, files and URLs print one line, ``storefront: error: ...``, and exit
  with status 2; nothing is retried and no traceback is shown;
* an unexpected exception (a bug) prints one line too and exits with status 1;
  ``--debug`` (or ``STOREFRONT_DEBUG=1``) prints the traceback as well;
* plain-text output and error lines go through :func:`~storefront_sdk.text.printable`,
  so control and bidi characters in catalog text cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from .catalog import Catalog
from .exceptions import ConfigurationError, StorefrontError
from .text import printable
from .types import Interaction, Page, UserContext

__all__ = ["build_parser", "main"]

PROG = "storefront"
DEBUG_ENV = "STOREFRONT_DEBUG"
_MAX_ERROR_CHARS = 2_000  # an error line quoting a huge argument stays readable

# pydantic field -> the option a user typed, for one-line validation errors.
_OPTION_OF = {
    "num_placements": "--placements",
    "products_per_placement": "--products",
    "min_products": "--min-products",
    "user_id": "--user",
    "product_id": "--history",
}


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (argparse prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


class UsageError(StorefrontError):
    """A bad argument, file or URL given on the command line (exit status 2)."""


# -- argument types: checked while parsing, before any work ------------------------------------


def _int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def base_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host; anything else fails at once."""
    import httpx

    example = "e.g. http://127.0.0.1:8000/v1"
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid URL ({exc}); {example}"
        ) from None
    if url.scheme not in ("http", "https"):
        what = f"scheme {url.scheme!r}" if url.scheme else "no scheme"
        raise argparse.ArgumentTypeError(
            f"{text!r} has {what}; expected an http:// or https:// URL, {example}"
        )
    if not url.host:
        raise argparse.ArgumentTypeError(f"{text!r} has no host; {example}")
    return text


def _check_output(path: str) -> Path:
    """Fail before the page is built if ``path`` cannot be written."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"--output {path}: is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"--output {path}: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise UsageError(f"--output {path}: {str(parent)!r} is not a folder")
    return p


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
    """A page as plain text: one block per placement.

    Every piece of catalog or model text goes through :func:`printable`: control
    characters (ESC, NUL, C1) and bidi overrides are shown as escapes, never sent raw.
    """
    t = printable
    lines = [f"Storefront for user {t(page.user_id)}: {len(page.placements)} placements"]
    for i, pl in enumerate(page.placements, 1):
        lines.append("")
        lines.append(f"{i}. {t(pl.theme.title)}  [{pl.source}]")
        if pl.theme.description:
            lines.append(f"   {t(pl.theme.description)}")
        if pl.keywords:
            lines.append(f"   keywords: {t(', '.join(pl.keywords))}")
        for sp in pl.products:
            price = f"  ${sp.product.price:.2f}" if sp.product.price is not None else ""
            pin = " *" if sp.pinned else ""
            lines.append(f"   - {t(sp.product.title)} ({t(sp.product.aisle)}){price}{pin}")
    fallbacks = page.trace.fallbacks
    lines.append("")
    lines.append(
        f"built in {page.trace.total_ms:.1f} ms; cache hits {page.trace.cache_hits}; "
        f"fallbacks {len(fallbacks)}; gate rejections {len(page.trace.events_of('gate'))}"
    )
    return "\n".join(lines)


def _cmd_build(args: argparse.Namespace) -> int:
    output = _check_output(args.output) if args.output else None
    if args.cache_dir and Path(args.cache_dir).exists() and not Path(args.cache_dir).is_dir():
        raise UsageError(f"--cache-dir {args.cache_dir}: exists and is not a folder")
    catalog = load_catalog(args.catalog)
    user = _user(args, demo_catalog=args.catalog is None)
    from .storefront import Storefront, StorefrontConfig

    config = StorefrontConfig(  # a ValidationError names the option (see _one_line)
        num_placements=args.placements,
        products_per_placement=args.products,
        min_products=min(args.min_products, args.products),
    )
    sf = Storefront(catalog, llm=_llm(args), cache=_cache(args), config=config)
    page = sf.build(user)
    if args.format == "json":
        out = page.model_dump_json(indent=2)
    elif args.format == "html":
        from .render import render_page_html

        out = render_page_html(page)
    else:
        out = format_table(page)
    if output is not None:
        try:
            output.write_text(out, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--output {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(out + "\n")
    return 0


def _add_build(sub: Any) -> argparse.ArgumentParser:
    b: argparse.ArgumentParser = sub.add_parser(
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
        type=base_url,
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (with --llm http)",
    )
    b.add_argument("--model", help="model name on that server (with --llm http)")
    b.add_argument(
        "--placements", type=_int_at_least(1), default=8, help="placements per page (default: 8)"
    )
    b.add_argument(
        "--products",
        type=_int_at_least(1),
        default=20,
        help="products per placement (default: 20)",
    )
    b.add_argument(
        "--min-products",
        type=_int_at_least(0),
        default=8,
        help="drop placements with fewer products (default: 8)",
    )
    b.add_argument(
        "--cache-dir",
        help="generation cache directory (default: $STOREFRONT_CACHE_DIR or ~/.cache)",
    )
    b.add_argument("--no-cache", action="store_true", help="do not cache generations")
    b.set_defaults(func=_cmd_build)
    return b


def _add_eval(sub: Any) -> argparse.ArgumentParser:
    from .evaluation.cli import register

    p = register(sub)
    run = p.get_default("func")

    def checked(args: argparse.Namespace) -> int:
        if args.users is not None and args.users < 1:
            raise UsageError(f"--users {args.users}: give 1 or more (or leave it out: all)")
        if args.pages < 0:
            raise UsageError(f"--pages {args.pages}: give 0 or more")
        if args.base_url:  # the same fail-fast URL check as ``build``
            try:
                base_url(args.base_url)
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"--base-url: {exc}") from None
        code: int = run(args)
        return code

    p.set_defaults(func=checked)
    return p


def _add_distill(sub: Any) -> argparse.ArgumentParser:
    from .distill.cli import register

    # "storefront distill collect --debug" works like "storefront build --debug".
    return register(sub, add_debug=lambda step: _add_debug(step, default=argparse.SUPPRESS))


def _add_embed(sub: Any) -> argparse.ArgumentParser:
    from .embeddings.cli import register

    return register(sub)


def _add_relevance(sub: Any) -> argparse.ArgumentParser:
    from .filtering.relevance_cli import register

    return register(sub)


def _add_debug(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help=f"print tracebacks of errors (or set {DEBUG_ENV}=1)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Build personalised storefront pages with a cascade of generative models.",
    )
    _add_debug(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in (_add_build, _add_eval, _add_distill, _add_embed, _add_relevance):
        # SUPPRESS: "storefront --debug build" and "storefront build --debug" both work.
        _add_debug(add(sub), default=argparse.SUPPRESS)
    from .serving.cli import register as register_serving

    for p in register_serving(sub):  # precompute, serve
        _add_debug(p, default=argparse.SUPPRESS)
    return parser


def _one_line(exc: BaseException) -> tuple[str, int]:
    """The message and exit status for an exception that reached the command line."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = [str(x) for x in err["loc"]]
        where = next((_OPTION_OF[x] for x in reversed(loc) if x in _OPTION_OF), ".".join(loc))
        msg = str(err["msg"]).removeprefix("Value error, ")
        return (f"{where}: {msg}" if where else msg), 2
    if isinstance(exc, StorefrontError):  # one line, even when the message has several
        return "; ".join(s.strip() for s in str(exc).splitlines() if s.strip()), 2
    if isinstance(exc, OSError):
        name = f"{exc.filename}: " if exc.filename else ""
        return f"{name}{exc.strerror or exc}", 2
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    return (
        f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} "
        f"(rerun with --debug for the traceback)",
        1,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``storefront`` command; returns the exit status (0, 1 for a bug, 2 for bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a one-line argument error
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    debug = bool(args.debug) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # "storefront build ... | head": the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if debug:
            traceback.print_exc()
        message, status = _one_line(exc)
        if len(message) > _MAX_ERROR_CHARS:
            message = message[:_MAX_ERROR_CHARS] + " ..."
        print(f"{PROG}: error: {printable(message)}", file=sys.stderr)
        return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
