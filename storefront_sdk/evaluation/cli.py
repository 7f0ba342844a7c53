"""``storefront eval``: compare storefront configurations on Instacart users.

The main ``storefront`` command calls :func:`register` to add the subcommand;
``python -m storefront_sdk.evaluation.cli ...`` runs it on its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "register", "run"]

_CONFIGS = ("static", "history", "local", "local-base", "teacher", "http")


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--instacart-dir",
        type=Path,
        help="folder with products.csv, aisles.csv, departments.csv and the orders "
        "(orders.csv and order_products__*.csv, here or in one sub-folder)",
    )
    p.add_argument(
        "--orders-dir",
        type=Path,
        default=None,
        help="folder with orders.csv and order_products__*.csv when not under --instacart-dir",
    )
    p.add_argument(
        "--configs",
        default="history",
        help=f"comma-separated, among {', '.join(_CONFIGS)} (default: history); the "
        "references popular and buy_again are always computed beside them",
    )
    p.add_argument("--users", type=int, default=None, help="evaluate the first N users only")
    p.add_argument(
        "--user-ids",
        default=None,
        help="evaluate these users only, e.g. 31-40 (the held-out distillation shoppers)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="evaluate the demo users on the demo catalog (each one's last order is the "
        "target) instead of --instacart-dir",
    )
    p.add_argument(
        "--base-url", default=None, help="OpenAI-compatible server for the 'http' config"
    )
    p.add_argument("--model", default=None, help="model name on --base-url")
    p.add_argument(
        "--adapter",
        type=Path,
        default=None,
        help="a LoRA adapter (GGUF) for the 'local' config instead of the shipped student",
    )
    p.add_argument(
        "--judge",
        choices=("heuristic", "llm"),
        default="heuristic",
        help="heuristic (default): a relevance model trained on human labels, independent of "
        "the pipeline's filter; llm: rubric prompts to --base-url/--model",
    )
    p.add_argument("--out", type=Path, default=Path("eval-report"), help="output folder")
    p.add_argument("--pages", type=int, default=3, help="sample pages kept per configuration")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to the ``storefront`` command's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "eval",
        help="evaluate storefront configurations on Instacart users",
        description="Build a page per user under each configuration, side by side; print the "
        "metrics table and write report.json and report.html to --out.",
    )
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the evaluation described by parsed ``args``; returns the exit code."""
    from ..catalog import Catalog
    from ..exceptions import StorefrontError
    from .harness import evaluate, standard_configs
    from .instacart import history_popularity, load_instacart_users

    if (args.instacart_dir is None) == (not args.demo):
        print("storefront eval: give --instacart-dir DIR or --demo (one of them)", file=sys.stderr)
        return 2
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in _CONFIGS]
    if unknown or not names:
        print(
            f"storefront eval: unknown configuration(s) {unknown}; choose from {_CONFIGS}",
            file=sys.stderr,
        )
        return 2
    if args.judge == "llm" and not (args.base_url and args.model):
        print("storefront eval: --judge llm needs --base-url and --model", file=sys.stderr)
        return 2
    if "http" in names and not (args.base_url and args.model):
        print(
            "storefront eval: the 'http' configuration needs --base-url and --model",
            file=sys.stderr,
        )
        return 2
    try:
        if args.demo:
            from .demo_cases import demo_cases

            catalog = Catalog.demo()
            cases = demo_cases(catalog)
        else:
            from ..distill.cli import parse_user_ids

            catalog = Catalog.from_instacart(args.instacart_dir)
            wanted = parse_user_ids(args.user_ids) if args.user_ids else None
            cases = load_instacart_users(
                args.orders_dir or args.instacart_dir, catalog, users=wanted
            )
        if args.users is not None:
            cases = cases[: args.users]
        # Popularity from the evaluated histories only, shared by every configuration.
        catalog = catalog.with_popularity(history_popularity(cases))
        configs = standard_configs(
            catalog, names, base_url=args.base_url, model=args.model, adapter=args.adapter
        )
        judge = None
        if args.judge == "llm":
            from ..llm.openai import OpenAICompatibleLLM
            from .judges import LLMJudge

            judge = LLMJudge(OpenAICompatibleLLM(args.base_url, args.model), catalog=catalog)
        report = evaluate(
            cases, configs, judge=judge, keep_pages=args.pages, progress=not args.quiet
        )
    except StorefrontError as exc:  # bad input (a catalog, a folder): one line, status 2
        from ..text import printable

        print(f"storefront eval: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    print(report.table())
    out: Path = args.out
    json_path = report.to_json(out / "report.json")
    written = [str(json_path)]
    try:
        from ..render import render_report_html
    except ImportError:
        render_report_html = None  # type: ignore[assignment]
    if render_report_html is not None:
        html_path = out / "report.html"
        html_path.write_text(render_report_html(report), encoding="utf-8")
        written.append(str(html_path))
    print("wrote " + ", ".join(written))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m storefront_sdk.evaluation.cli --instacart-dir DIR``."""
    parser = argparse.ArgumentParser(prog="storefront eval", description=__doc__)
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
