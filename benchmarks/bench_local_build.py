"""Cold page builds on the local model: wall time, per-stage tokens, llm vs fallback placements.

Run: ``python benchmarks/bench_local_build.py [--users demo-1,demo-2] [--instacart 3]``
``[--profile compact|rich]``

Every build is cold (``cache=None``); the model is loaded and warmed once first.
``--expander auto|chat|none``: the keyword expansion (``auto``, the default: the
list expander and the chat model's prior when the ``expand`` extra is installed;
``chat``: the chat model's prior alone; ``none`` or ``--no-expander``: the fused
shortlist without expansion). ``--profile rich`` runs the generators with the
HTTP-model defaults (the named baseline); ``compact`` (the default for local
models) is what ``Storefront`` wires for ``LocalLLM``. Prints per-build lines
and median/p95 of the wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any, cast

from storefront_sdk import Catalog, Storefront
from storefront_sdk.demo import demo_users
from storefront_sdk.generation.llm_keywords import LLMKeywordGenerator
from storefront_sdk.generation.llm_themes import LLMThemeGenerator, Profile
from storefront_sdk.keyword_expansion import LLMKeywordExpander
from storefront_sdk.llm.outlines import LocalLLM
from storefront_sdk.types import UserContext

DATA = Path(
    os.environ.get("STOREFRONT_INSTACART_DIR")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "instacart"
)
THEME_EXAMPLES = True
EXPANDER = "auto"


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def run(
    catalog: Catalog, users: list[UserContext], llm: LocalLLM, profile: Profile | None
) -> list[float]:
    kwargs: dict[str, Any] = {}
    if profile is not None or not THEME_EXAMPLES or EXPANDER != "auto":
        expander: Any = "auto"
        if EXPANDER == "none":
            expander = None
        elif EXPANDER == "chat":
            expander = LLMKeywordExpander.for_llm(llm)
        kwargs = {
            "theme_generator": LLMThemeGenerator(
                llm, catalog, cache=None, profile=profile or "auto", few_shot=THEME_EXAMPLES
            ),
            "keyword_generator": LLMKeywordGenerator(
                llm, cache=None, profile=profile or "auto", expander=expander
            ),
        }
    sf = Storefront(catalog, llm=llm, cache=None, **kwargs)
    walls = []
    for user in users:
        t0 = time.perf_counter()
        page = sf.build(user)
        wall = time.perf_counter() - t0
        walls.append(wall)
        by_source: dict[str, int] = {}
        for p in page.placements:
            by_source[p.source] = by_source.get(p.source, 0) + 1
        parts = []
        for st in page.trace.stages:
            if st.stage in ("themes", "keywords") and st.prompt_tokens:
                parts.append(
                    f"{st.stage[:2]}{'' if st.placement is None else st.placement}:"
                    f"{st.duration_ms / 1000:.1f}s/{st.prompt_tokens}p/{st.completion_tokens}c"
                )
        kw_s = sum(st.duration_ms for st in page.trace.stages if st.stage == "keywords") / 1000
        print(
            f"{user.user_id:>10} {wall:6.2f}s placements={len(page.placements)} {by_source} "
            f"keyword stages {kw_s:.2f}s"
        )
        print("           " + " ".join(parts))
        for p in page.placements:
            print(f"             [{p.source}] {p.theme.title!r} kw={p.keywords}")
    return walls


def raw_speed(llm: LocalLLM) -> tuple[float, float]:
    """The named baseline: raw llama.cpp prompt and generation tokens/s on this machine, now."""
    llama = llm.llama
    tokens = llama.tokenize(("Fresh fruit and yogurt for breakfast. " * 60).encode())[:300]
    llama.reset()
    t0 = time.perf_counter()
    llama.eval(tokens)
    prefill = len(tokens) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    out = llama.create_completion("Once upon a time", max_tokens=64, temperature=0.0)
    gen = out["usage"]["completion_tokens"] / (time.perf_counter() - t0)
    llama.reset()
    return prefill, gen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", default="demo-1,demo-2,demo-3,demo-4,demo-5")
    ap.add_argument("--instacart", type=int, default=0)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--no-theme-examples", action="store_true", help="themes without few-shot")
    ap.add_argument(
        "--no-expander", action="store_true", help="keyword shortlists without the LLM's prior"
    )
    ap.add_argument("--expander", choices=("auto", "chat", "none"), default="auto")
    ap.add_argument(
        "--reuse-prefix",
        action="store_true",
        help="projection: keep llama.cpp's evaluated prompt between calls (Outlines resets it)",
    )
    args = ap.parse_args()
    global THEME_EXAMPLES, EXPANDER
    THEME_EXAMPLES = not args.no_theme_examples
    EXPANDER = "none" if args.no_expander else args.expander
    llm = LocalLLM.default()
    if args.reuse_prefix:
        llm.llama.reset = lambda: None  # llama.cpp then reuses the longest common prefix
    t0 = time.perf_counter()
    llm.warm_up()
    print(f"warm-up {time.perf_counter() - t0:.1f}s")
    prefill, gen = raw_speed(llm)
    print(f"raw llama.cpp: prompt {prefill:.0f} tok/s, generation {gen:.0f} tok/s")
    wanted = set(args.users.split(",")) if args.users else set()
    demo = Catalog.demo()
    users = [u for u in demo_users() if u.user_id in wanted]
    profile = cast(Profile | None, args.profile)
    walls = run(demo, users, llm, profile) if users else []
    if args.instacart:
        from storefront_sdk.evaluation import load_instacart_users

        cat = Catalog.from_instacart(DATA)
        ev = load_instacart_users(DATA, cat)[: args.instacart]
        walls += run(cat, [e.user for e in ev], llm, profile)
    after = raw_speed(llm)
    print(f"raw llama.cpp after: prompt {after[0]:.0f} tok/s, generation {after[1]:.0f} tok/s")
    print(
        f"cold builds={len(walls)} median={statistics.median(walls):.2f}s p95={_p95(walls):.2f}s "
        f"profile={args.profile or 'default'} theme_examples={THEME_EXAMPLES} "
        f"reuse_prefix={args.reuse_prefix} expander={EXPANDER}"
    )


if __name__ == "__main__":
    main()
