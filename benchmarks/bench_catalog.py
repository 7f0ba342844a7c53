"""Catalog load time: ``Catalog.from_instacart`` on the real Instacart catalog (49,688 products).

    python benchmarks/bench_catalog.py [--instacart-dir DIR] [--repeat N]

Baseline in the same run: a bare ``csv.reader`` pass over the same three files that
resolves aisle and department names into tuples (no validation, no ``Product``
objects): the floor any CSV loader pays. Runs alternate between the two so machine
noise hits both; the ratio is the median of per-run ratios. Also times
``Catalog.demo()`` from the packaged CSV (uncached) and ``Catalog.from_csv`` on a
CSV export of the Instacart catalog.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from storefront_sdk import Catalog

REPO = Path(__file__).resolve().parents[1]


def default_instacart_dir() -> Path:
    env = os.environ.get("STOREFRONT_INSTACART_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "instacart"


def bare_csv(directory: Path) -> list[tuple[str, str, str, str]]:
    """The baseline: parse and join the three files, nothing else."""

    def table(name: str) -> list[list[str]]:
        with open(directory / name, encoding="utf-8", newline="") as f:
            return list(csv.reader(f))[1:]

    aisles = {r[0]: r[1] for r in table("aisles.csv")}
    departments = {r[0]: r[1] for r in table("departments.csv")}
    return [(r[0], r[1], aisles[r[2]], departments[r[3]]) for r in table("products.csv")]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instacart-dir", type=Path, default=default_instacart_dir())
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    directory: Path = args.instacart_dir
    if not (directory / "products.csv").exists():
        raise SystemExit(f"Instacart data not found at {directory} (pass --instacart-dir)")

    catalog = Catalog.from_instacart(directory)  # warm the OS file cache
    bare_csv(directory)
    sdk, base = [], []
    for _ in range(args.repeat):
        sdk.append(timed(lambda: Catalog.from_instacart(directory)))
        base.append(timed(lambda: bare_csv(directory)))
    ratios = [s / b for s, b in zip(sdk, base, strict=True)]

    from storefront_sdk.catalog import _demo_catalog

    demo_times = []
    for _ in range(args.repeat):
        _demo_catalog.cache_clear()
        demo_times.append(timed(Catalog.demo))
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "instacart.csv"
        catalog.to_csv(export)
        csv_times = [timed(lambda: Catalog.from_csv(export)) for _ in range(args.repeat)]

    ms = 1000.0
    print(f"Catalog.from_instacart  {len(catalog):,} products, median of {args.repeat} runs")
    print(f"  from_instacart           {statistics.median(sdk) * ms:8.1f} ms")
    print(f"  baseline bare csv.reader {statistics.median(base) * ms:8.1f} ms")
    print(f"  ratio (sdk / baseline)   {statistics.median(ratios):8.2f} x")
    print(f"  from_csv (same, as CSV)  {statistics.median(csv_times) * ms:8.1f} ms")
    demo_ms = statistics.median(demo_times) * ms
    print(f"Catalog.demo()  {len(Catalog.demo()):,} products  {demo_ms:.1f} ms")


if __name__ == "__main__":
    main()
