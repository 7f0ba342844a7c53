"""``storefront distill collect|filter|export|train``: the distillation pipeline from the terminal.

Errors are :class:`~storefront_sdk.exceptions.StorefrontError` s; ``storefront``'s
``main`` prints them on one line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ..types import UserContext
from .errors import DistillError

__all__ = ["parse_user_ids", "register"]


def parse_user_ids(text: str) -> list[str]:
    """``"1-30"``, ``"1,2,5-7"`` or ``"demo-1,demo-2"`` -> user ids (ranges of numbers only)."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep and lo.isdigit() and hi.isdigit():
            if int(lo) > int(hi):
                raise ConfigurationError(f"--users: empty range {part!r}")
            out.extend(str(i) for i in range(int(lo), int(hi) + 1))
        else:
            out.append(part)
    if not out:
        raise ConfigurationError("--users: no user ids given")
    return out


def _users(args: argparse.Namespace) -> tuple[Any, list[UserContext]]:
    """The catalog and the shoppers to label: real ones (``--users``), then synthetic ones
    (``--synthetic N --seed S``) drawn from the real training shoppers' baskets.

    The catalog's popularity is counted over the labelled shoppers' histories only (as
    ``storefront eval`` counts it over the evaluated ones), never over held-out shoppers.
    """
    from ..catalog import Catalog
    from ..demo import demo_users
    from .heldout import evaluation_shoppers, refuse_held_out
    from .synthetic import synthetic_shoppers

    wanted = parse_user_ids(args.users) if args.users else None
    if args.synthetic < 0:
        raise ConfigurationError(f"--synthetic: must be >= 0, got {args.synthetic}")
    if wanted is None and args.synthetic and not args.allow_held_out:
        wanted = []  # synthetic shoppers only
    if args.instacart_dir is None:
        catalog = Catalog.demo()
        users = demo_users()
        if wanted is not None:
            known = {u.user_id for u in users}
            missing = [u for u in wanted if u not in known]
            if missing:
                raise ConfigurationError(
                    f"--users: unknown demo user(s) {', '.join(missing)}; "
                    f"known: {', '.join(sorted(known))}"
                )
            users = [u for u in users if u.user_id in set(wanted)]
        source: list[UserContext] = []  # demo users are evaluation shoppers: never a source
    else:
        from ..evaluation.instacart import load_instacart_users

        catalog = Catalog.from_instacart(args.instacart_dir)
        if wanted is None:
            cases = load_instacart_users(args.instacart_dir, catalog)
            if not args.allow_held_out:
                cases = [c for c in cases if c.user.user_id not in evaluation_shoppers()]
        else:
            cases = (
                load_instacart_users(args.instacart_dir, catalog, users=wanted) if wanted else []
            )
            found = {c.user.user_id for c in cases}
            missing = [u for u in wanted if u not in found]
            if missing:
                raise ConfigurationError(
                    f"--users: unknown Instacart user(s) {', '.join(missing)} "
                    f"(not in {args.instacart_dir}, or without a usable order)"
                )
        users = [c.user for c in cases]
        source = [u for u in users if u.user_id not in evaluation_shoppers()]
        if args.synthetic and not source:
            # synthetic shoppers alone: their baskets follow the training shoppers'
            train = load_instacart_users(args.instacart_dir, catalog)
            source = [c.user for c in train if c.user.user_id not in evaluation_shoppers()]
    if not args.allow_held_out:
        refuse_held_out([u.user_id for u in users])
    if args.synthetic:
        users = users + synthetic_shoppers(
            catalog.with_popularity(_popularity(source)) if source else catalog,
            args.synthetic,
            seed=args.seed,
            source=source or None,
        )
    if args.instacart_dir is not None:
        catalog = catalog.with_popularity(_popularity(users))
    if not users:
        raise ConfigurationError("no shoppers to label: give --users and/or --synthetic N")
    return catalog, users


def _popularity(users: list[UserContext]) -> dict[str, float]:
    counts: dict[str, float] = {}
    for user in users:
        for it in user.history:
            counts[it.product_id] = counts.get(it.product_id, 0.0) + it.quantity
    return counts


def _teacher(args: argparse.Namespace, catalog: Any) -> Any:
    if args.llm in ("local", "local-best-of"):
        from ..llm.outlines import LocalLLM

        # the plain model: LocalLLM.default() is the shipped student, and a rebuild must
        # not learn from the previous student's answers
        local = LocalLLM.base()
        if args.llm == "local":
            return local
        from .teacher import BestOfNLLM, JudgeScorer

        return BestOfNLLM(
            local,
            n=args.n,
            temperature=args.temperature,
            seed=args.sample_seed,
            scorer=JudgeScorer(catalog) if args.scorer == "judge" else None,
        )
    if not args.base_url or not args.model:
        raise ConfigurationError("--llm http needs --base-url and --model")
    from ..cli import base_url

    try:
        base_url(args.base_url)
    except argparse.ArgumentTypeError as exc:
        raise ConfigurationError(f"--base-url: {exc}") from None
    from ..llm.openai import OpenAICompatibleLLM

    return OpenAICompatibleLLM(base_url=args.base_url, model=args.model, response_format="auto")


def _cmd_collect(args: argparse.Namespace) -> int:
    from .collect import collect

    catalog, users = _users(args)
    cache = None
    if args.cache_dir:
        from ..cache import GenerationCache

        cache = GenerationCache(args.cache_dir)
    judge = None
    if args.judge != "none":
        from ..evaluation.judge_relevance import RelevanceModelJudge
        from ..evaluation.judges import HeuristicJudge

        judge = (
            RelevanceModelJudge(catalog)
            if args.judge == "relevance"
            else HeuristicJudge(catalog=catalog)
        )
    records = collect(
        catalog,
        _teacher(args, catalog),
        users,
        args.out,
        cache=cache,
        judge=judge,
        progress=not args.quiet,
    )
    calls = sum(len(r.calls) for r in records)
    print(f"{len(records)} shoppers, {calls} teacher calls in {args.out}")
    return 0


def _cmd_filter(args: argparse.Namespace) -> int:
    from .aiqa import aiqa_filter, write_labels
    from .collect import read_checkpoint

    if not Path(args.checkpoint).is_file():
        raise DistillError(f"{args.checkpoint}: no such checkpoint file")
    labels, report = aiqa_filter(
        read_checkpoint(args.checkpoint),
        min_products=args.min_products,
        min_theme_yield=args.min_theme_yield,
        use_judge=args.use_judge,
        min_on_theme=args.min_on_theme,
    )
    write_labels(labels, args.out)
    print(
        f"{report.kept} of {report.labels} labels kept ({report.kept_by_stage}); wrote {args.out}"
    )
    for reason, n in report.drop_reasons.items():
        print(f"  dropped {n:5d}  {reason}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .aiqa import read_labels
    from .export import export_labels

    report = export_labels(
        read_labels(args.labels),
        args.out,
        filtered=not args.unfiltered,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        exclude=() if args.include_held_out else None,
    )
    if report.held_out_dropped:
        print(
            f"dropped {report.held_out_dropped} labels of held-out shoppers "
            f"({', '.join(report.held_out_shoppers)})"
        )
    print(
        f"train: {report.train_examples} examples ({len(report.train_shoppers)} shoppers), "
        f"validation: {report.validation_examples} ({len(report.validation_shoppers)}), "
        f"duplicates dropped: {report.duplicates_dropped}; wrote {args.out}"
    )
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not within [0, 1)")
    return value


def register(
    sub: Any, *, add_debug: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.ArgumentParser:
    """Add ``distill`` (``collect``, ``filter``, ``export``, ``train``) to ``storefront``'s
    parsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "distill",
        help="collect, filter and export teacher labels for a student model",
        description="Teacher-student distillation: collect -> filter -> export -> train "
        "(see docs/distillation.md).",
    )
    steps = p.add_subparsers(dest="step", metavar="STEP", parser_class=type(p))
    steps.required = True

    c = steps.add_parser("collect", help="run a teacher through the cascade, checkpointed")
    c.add_argument("--out", "-o", required=True, help="checkpoint JSONL (appended; resumable)")
    c.add_argument(
        "--instacart-dir",
        type=Path,
        help="Instacart folder (catalog + users_*/ orders); default: the demo catalog and users",
    )
    c.add_argument(
        "--users",
        help="user ids, e.g. 1-30 or demo-1,demo-2 (default: all but the held-out ones; "
        "none when --synthetic is given)",
    )
    c.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="add N seeded synthetic shoppers drawn from the catalog and the training "
        "shoppers' baskets (see docs/distillation.md)",
    )
    c.add_argument("--seed", type=int, default=0, help="seed of the synthetic shoppers")
    c.add_argument(
        "--allow-held-out",
        action="store_true",
        help="allow the evaluation shoppers (Instacart 31-40, demo users): for trying the "
        "pipeline only, never for training data",
    )
    c.add_argument(
        "--llm",
        "--teacher",
        dest="llm",
        choices=("local", "local-best-of", "http"),
        default="http",
        help="the teacher: an OpenAI-compatible server (http), the local model (local), or "
        "the local model with best-of-N sampling (local-best-of; see --n, --temperature)",
    )
    c.add_argument("--n", type=int, default=4, help="best-of-N: candidates per call (default 4)")
    c.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="best-of-N: sampling temperature of the non-greedy candidates (default 0.8)",
    )
    c.add_argument("--sample-seed", type=int, default=0, help="best-of-N: first seed (default 0)")
    c.add_argument(
        "--scorer",
        choices=("judge", "rules"),
        default="judge",
        help="best-of-N: pick by the title rules, the independent relevance judge and "
        "agreement (judge, default), or by the title rules and agreement only (rules)",
    )
    c.add_argument("--base-url", help="OpenAI-compatible server (with --llm http)")
    c.add_argument("--model", help="model name on that server (with --llm http)")
    c.add_argument("--cache-dir", help="reuse this generation cache for teacher calls")
    c.add_argument(
        "--judge",
        choices=("none", "relevance", "heuristic"),
        default="none",
        help="attach a judge's placement verdicts for `filter --use-judge`: relevance (the "
        "independent judge of storefront eval: on-theme share of the first 5 products, "
        "title quality, history fit) or heuristic (the lexical judge)",
    )
    c.add_argument("--quiet", action="store_true", help="no progress output")
    c.set_defaults(func=_cmd_collect)

    f = steps.add_parser("filter", help="AIQA: keep labels the gates, retrieval and judge confirm")
    f.add_argument("checkpoint", help="checkpoint JSONL written by collect")
    f.add_argument(
        "--out", "-o", required=True, help="labels JSONL (kept and dropped, with reasons)"
    )
    f.add_argument(
        "--min-products", type=int, default=None, help="density floor (default: the collect's)"
    )
    f.add_argument(
        "--min-theme-yield",
        type=_fraction,
        default=0.5,
        help="share of a themes label's themes that must pass (default: 0.5)",
    )
    f.add_argument("--use-judge", action="store_true", help="also drop judge-failed placements")
    f.add_argument(
        "--min-on-theme",
        type=float,
        default=None,
        help="with --use-judge: the least share of a placement's first 5 products the judge "
        "finds on theme (default: the judge's own pass mark, 0.6)",
    )
    f.set_defaults(func=_cmd_filter)

    e = steps.add_parser("export", help="chat-format JSONL, split by shopper, deduplicated")
    e.add_argument("labels", help="labels JSONL written by filter")
    e.add_argument("--out", "-o", required=True, help="output folder")
    e.add_argument("--unfiltered", action="store_true", help="export every label (ablation)")
    e.add_argument("--validation-fraction", type=_fraction, default=0.2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument(
        "--include-held-out",
        action="store_true",
        help="keep the evaluation shoppers' labels (dropped by default)",
    )
    e.set_defaults(func=_cmd_export)

    from .train_cli import add_train_parser

    t = add_train_parser(steps)
    if add_debug is not None:
        for step in (c, f, e, t):
            add_debug(step)
    return p


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience
    from ..cli import main as storefront_main

    return storefront_main(["distill", *(argv if argv is not None else sys.argv[1:])])
