"""The distilled student's cost against its base model: llama.cpp speed with and without the
LoRA adapter, and cold page builds, interleaved so both see the same machine load.

Run: ``python benchmarks/bench_student.py [--adapter PATH] [--rounds 3] [--pages demo-1,demo-2]``

The named baseline is ``LocalLLM.base()`` (the plain SmolLM2-135M); the student is
``LocalLLM(adapter_path=...)`` (default: the adapter shipped in the package), run two ways:
merged into a cached Q8_0 copy of the weights (``student``, the default) and applied at run
time by llama.cpp (``runtime``, ``merge_adapter=False``). Each round measures every model
in turn (prompt evaluation of 300 tokens, 64 generated tokens, and one cold ``build()``
per page user), so a load change on a shared machine hits all of them. Prints per-round
figures and the medians with the ratio to the base model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench_local_build import raw_speed  # the same llama.cpp speed probe as the base benchmark

from storefront_sdk import Catalog, Storefront
from storefront_sdk.demo import demo_users
from storefront_sdk.llm.adapter import SHIPPED_ADAPTER
from storefront_sdk.llm.outlines import LocalLLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapter", type=Path, default=SHIPPED_ADAPTER)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pages", default="demo-1,demo-2", help="demo users built cold per round")
    args = ap.parse_args()
    models = {
        "base": LocalLLM.base(),
        "student": LocalLLM(adapter_path=args.adapter),
        "runtime": LocalLLM(adapter_path=args.adapter, merge_adapter=False),
    }
    for name, llm in models.items():
        t0 = time.perf_counter()
        llm.warm_up()
        print(f"{name:8s} {llm.model_id}: load + warm-up {time.perf_counter() - t0:.1f} s")
    catalog = Catalog.demo()
    wanted = set(args.pages.split(",")) if args.pages else set()
    users = [u for u in demo_users() if u.user_id in wanted]
    stores = {name: Storefront(catalog, llm=llm, cache=None) for name, llm in models.items()}
    figures: dict[str, dict[str, list[float]]] = {
        n: {"prefill": [], "gen": [], "build": [], "from_model": []} for n in models
    }
    for r in range(args.rounds):
        for name, llm in models.items():
            prefill, gen = raw_speed(llm)
            f = figures[name]
            f["prefill"].append(prefill)
            f["gen"].append(gen)
            for user in users:
                t0 = time.perf_counter()
                page = stores[name].build(user)
                f["build"].append(time.perf_counter() - t0)
                f["from_model"].append(
                    sum(p.source == "llm" for p in page.placements) / max(len(page.placements), 1)
                )
            builds = ", ".join(f"{b:.1f}" for b in f["build"][-len(users) :]) if users else "-"
            print(
                f"round {r + 1} {name:8s} prompt {prefill:6.0f} tok/s  "
                f"generation {gen:5.0f} tok/s  cold builds {builds} s"
            )
    med = {n: {k: statistics.median(v) for k, v in f.items() if v} for n, f in figures.items()}
    print("\nmedians (ratio: model / base):")
    for key, label in (
        ("prefill", "prompt tok/s"),
        ("gen", "generation tok/s"),
        ("build", "cold build s"),
        ("from_model", "share of placements from the model"),
    ):
        if key in med["base"]:
            b = med["base"][key]
            cells = "  ".join(
                f"{n} {med[n][key]:8.2f} ({med[n][key] / max(b, 1e-9):.2f}x)"
                for n in models
                if n != "base"
            )
            print(f"  {label:36s} base {b:8.2f}  {cells}")


if __name__ == "__main__":
    main()
