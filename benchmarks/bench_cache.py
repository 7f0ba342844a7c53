"""Generation cache get/set cost: the SQLite store against diskcache, old and hardened.

    python benchmarks/bench_cache.py [--ops N] [--rounds N] [--baseline-rev REV]

Contenders, alternated round by round so machine noise hits all of them:

* ``baseline``: the ``GenerationCache`` of ``--baseline-rev`` (default ``2339b0f``, the
  last commit with the diskcache store; loaded from git, so the comparison runs in the
  same process) -- diskcache with its default ``Disk``, which unpickles mode-4 rows and
  opens the paths rows name;
* ``diskcache-json``: diskcache with a JSON-only ``Disk`` subclass (values stored inline
  as text, ``fetch`` reads MODE_RAW text only, ``filename``/``remove`` never touch a
  path) behind the new ``BaseGenerationCache``: the candidate that keeps diskcache;
* ``sqlite``: the new ``GenerationCache`` (one SQLite file, five fixed statements).

Measured per operation, with the memory layer off (``memory_items=0``) so every read
reaches the store: ``set`` of a theme-sized value (~1.5 kB of JSON) to a fresh key,
``get`` of a stored key (a hit), ``get`` of an absent key (a miss). Printed: median
microseconds per operation over the rounds, and the ratio to the baseline (median of
per-round ratios). Also printed: the memory-layer hit, and key derivation for a theme
and a keyword request (100-keyword shortlist), old ``key()`` against the new one.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import diskcache
from diskcache.core import MODE_RAW

from storefront_sdk.cache import BaseGenerationCache, GenerationCache

REPO = Path(__file__).resolve().parents[1]
#: The last commit whose ``storefront_sdk/cache.py`` was the diskcache store.
BASELINE_REV = "2339b0f"

VALUE = {
    "themes": [
        {
            "title": f"Weekend brunch {i}",
            "description": "Everything for a slow Sunday morning, from eggs to sourdough.",
            "concepts": ["eggs", "sourdough bread", "greek yogurt", "berries", "orange juice"],
        }
        for i in range(8)
    ]
}


# -- the diskcache candidate ---------------------------------------------------------------------


class JSONOnlyDisk(diskcache.Disk):
    """diskcache's Disk that stores and reads inline text only and never touches a path."""

    def __init__(self, directory: str, **_settings: Any) -> None:
        super().__init__(directory, min_file_size=2**62, pickle_protocol=0)

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError("keys are text")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if not raw or type(key) is not str:
            raise ValueError("not a text key")  # never unpickled
        return key

    def store(self, value: Any, read: bool, key: Any = None) -> tuple[int, int, None, Any]:
        if type(value) is not str or read:
            raise TypeError("values are JSON text")
        return 0, MODE_RAW, None, value

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode != MODE_RAW or filename is not None or type(value) is not str:
            raise ValueError(f"not inline text (mode {mode})")  # never opened, never unpickled
        return value

    def filename(self, key: Any = None, value: Any = None) -> tuple[str, str]:
        raise TypeError("no value files")

    def remove(self, file_path: str) -> None:
        """Never delete the path a row names (rows are input)."""


class DiskcacheJSONCache(BaseGenerationCache):
    """The new base class over diskcache + :class:`JSONOnlyDisk` (benchmark only)."""

    def __init__(self, directory: Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.dc = diskcache.Cache(str(directory), disk=JSONOnlyDisk)

    def _load(self, key: str) -> str | None:
        value: str | None = self.dc.get(key, default=None, retry=True)
        return value

    def _store(self, key: str, text: str, expire_at: float | None) -> None:
        self.dc.set(key, text, retry=True)

    def _delete(self, key: str) -> None:
        self.dc.delete(key, retry=True)

    def _clear(self) -> None:
        self.dc.clear(retry=True)

    def _size(self) -> int:
        return len(self.dc)

    def _close(self) -> None:
        self.dc.close()


# -- the baseline, from git ---------------------------------------------------------------------


def load_baseline(rev: str) -> ModuleType | None:
    """``storefront_sdk/cache.py`` at ``rev``, imported as a sibling module of the package."""
    try:
        source = subprocess.run(
            ["git", "show", f"{rev}:storefront_sdk/cache.py"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"baseline {rev} not available ({exc}); skipped", file=sys.stderr)
        return None
    spec = importlib.util.spec_from_loader("storefront_sdk._bench_baseline_cache", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "storefront_sdk"
    sys.modules[spec.name] = module
    exec(compile(source, f"{rev}:storefront_sdk/cache.py", "exec"), module.__dict__)
    return module


# -- timing --------------------------------------------------------------------------------------


def per_op_us(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


def run_round(cache: Any, tag: str, n: int) -> dict[str, float]:
    keys = [f"themes/{tag}-{i:06d}" for i in range(n)]
    out = {"set": per_op_us(lambda i: cache.set(keys[i], VALUE), n)}
    out["get hit"] = per_op_us(lambda i: cache.get(keys[i]), n)
    out["get miss"] = per_op_us(lambda i: cache.get(f"themes/absent-{tag}-{i}"), n)
    assert cache.get(keys[0]) is not None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations per kind per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    args = parser.parse_args()

    baseline = load_baseline(args.baseline_rev)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        makers: dict[str, Callable[[], Any]] = {}
        if baseline is not None:
            makers["baseline"] = lambda: baseline.GenerationCache(root / "old", memory_items=0)
        makers["diskcache-json"] = lambda: DiskcacheJSONCache(root / "dj", memory_items=0)
        makers["sqlite"] = lambda: GenerationCache(root / "new", memory_items=0)
        caches = {name: make() for name, make in makers.items()}
        for cache in caches.values():  # open the stores before timing
            cache.set("themes/warm", VALUE)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in caches}
        for r in range(args.rounds):
            for name, cache in caches.items():
                results[name].append(run_round(cache, f"r{r}", args.ops))
        ops = ["set", "get hit", "get miss"]
        print(f"per-operation cost, memory layer off, {args.ops} ops x {args.rounds} rounds")
        print(f"{'contender':<16}" + "".join(f"{op + ' (us)':>16}" for op in ops), end="")
        print("".join(f"{op + ' x base':>16}" for op in ops) if "baseline" in caches else "")
        for name, rounds in results.items():
            line = f"{name:<16}"
            line += "".join(f"{statistics.median(x[op] for x in rounds):>16.1f}" for op in ops)
            if "baseline" in results:
                base = results["baseline"]
                for op in ops:
                    ratio = statistics.median(
                        x[op] / b[op] for x, b in zip(rounds, base, strict=True)
                    )
                    line += f"{ratio:>16.2f}"
            print(line)
        for cache in caches.values():
            cache.close()

        memory = GenerationCache(root / "mem")
        memory.set("themes/m", VALUE)
        us = statistics.median(
            per_op_us(lambda i: memory.get("themes/m"), args.ops) for _ in range(args.rounds)
        )
        print(f"\nmemory-layer hit (sqlite cache, default memory_items): {us:.1f} us")
        memory.close()

    shortlist = [f"keyword number {i}" for i in range(100)]
    theme_parts = {"prompt": "themes-v1", "user": "ab" * 12, "n": 7, "catalog": "c" * 16}
    kw_parts = {"prompt": "keywords-v1", "taxonomy": "t" * 16, "shortlist": shortlist}
    print("\nkey derivation (us per key)")
    keyers: list[tuple[str, Callable[..., str]]] = [("new", GenerationCache.key)]
    if baseline is not None:
        keyers.insert(0, ("baseline", baseline.GenerationCache.key))
    for name, key in keyers:
        t = statistics.median(
            per_op_us(lambda i, key=key: key("themes", **theme_parts), args.ops) for _ in range(3)
        )
        k = statistics.median(
            per_op_us(lambda i, key=key: key("keywords", **kw_parts), args.ops) for _ in range(3)
        )
        print(f"{name:<16}{'themes':>10} {t:8.1f}{'keywords':>12} {k:8.1f}")


if __name__ == "__main__":
    main()
