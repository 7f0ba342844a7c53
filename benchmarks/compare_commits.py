"""Run one benchmark on two versions of the SDK, interleaved, and compare their medians.

    python benchmarks/compare_commits.py BASE [--against REV] [--bench build|http]
        [--rounds 5] [--nice 5] [--metric NAME=REGEX ...] [--log-dir DIR] [-- ARGS...]

``BASE`` (a commit, tag or branch) is checked out into a temporary worktree
(``git worktree add --detach``, removed at the end). The other side is this
working tree as it is (uncommitted changes included; the header says so), or
``--against REV`` checked out the same way. Each *round* runs the benchmark once
per side, each run in a fresh Python process whose ``storefront_sdk`` is that
side's tree (``PYTHONPATH``; every run prints the path it imported, and the
script refuses to compare if a side imported the wrong tree). The order inside a
round alternates (A B, B A, A B, ...) so that a load that drifts during the session
hits both sides equally. Each side runs *its own copy* of the benchmark script,
so a side is measured the way its commit measured itself; when the two copies
differ the header says so. ``--script-from B`` runs B's copy on both sides instead
(the same benchmark code; A's SDK must have what it calls).

Presets (``--bench``):

build
    ``benchmarks/bench_build.py --users 40 --queries 30 --passes 5``; figures: the
    baseline storefront's warm build median (ms), the static storefront's median (ms),
    and each one's median thread CPU per build (ms) where the script prints it.
http
    ``benchmarks/bench_generation_http.py --only throughput``; figures: the share of
    the ideal (%), the client CPU per page (ms), achieved pages/s.

``--metric NAME=REGEX`` adds (or, with a custom benchmark after ``--``, defines) a
figure: the first group of the first match in a run's output, as a float. Anything
after ``--`` replaces the preset's arguments (script path first).

Printed: the load average before each run, every run's figures, then per figure the
median of each side, the ratio of medians (B / A) and the median and range of the
per-round ratios. The figures are only as good as the machine is quiet: the load
averages are printed so a reader can judge; run more rounds on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PRESETS: dict[str, tuple[list[str], dict[str, str]]] = {
    "build": (
        ["benchmarks/bench_build.py", "--users", "40", "--queries", "30", "--passes", "5"],
        {
            "build_median_ms": r"baseline storefront\s+median\s+([\d.]+) ms",
            "static_median_ms": r"StaticThemeGenerator storefront\s+median\s+([\d.]+) ms",
            # Thread CPU per build (bench_build prints it since fac7362; not on older copies:
            # use --script-from B to read it on both sides).
            "build_cpu_ms": r"baseline storefront\s+median.*?CPU median\s+([\d.]+) ms",
            "static_cpu_ms": r"StaticThemeGenerator storefront\s+median.*?CPU median\s+([\d.]+) ms",
        },
    ),
    "http": (
        ["benchmarks/bench_generation_http.py", "--only", "throughput"],
        {
            "share_pct": r"ideal\s+[\d.]+ pages/s\s+share\s+([\d.]+)%",
            "cpu_ms_per_page": r"= ([\d.]+) ms/page",
            "pages_per_s": r"achieved\s+([\d.]+) pages/s",
        },
    ),
}

# Runs the side's own benchmark script after saying which storefront_sdk it imported.
_RUNNER = (
    "import runpy, sys; import storefront_sdk as s; "
    "print('# storefront_sdk from', s.__file__, flush=True); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@dataclass
class Side:
    label: str
    tree: Path
    rev: str
    runs: list[dict[str, float]] = field(default_factory=list)


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@contextmanager
def checked_out(rev: str) -> Iterator[Path]:
    """``rev`` in a temporary detached worktree, removed (with its git record) afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="sdk-compare-"))
    tree = parent / "tree"
    _git("worktree", "add", "--detach", "--quiet", str(tree), rev)
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)],
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(parent, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True, check=False)


def parse_metrics(text: str, metrics: dict[str, str]) -> dict[str, float]:
    """The first group of the first match of each regex, as floats (missing: absent)."""
    out: dict[str, float] = {}
    for name, pattern in metrics.items():
        m = re.search(pattern, text)
        if m is not None:
            out[name] = float(m.group(1).replace(",", ""))
    return out


def run_once(
    side: Side, argv: Sequence[str], metrics: dict[str, str], nice: int, env: dict[str, str]
) -> tuple[dict[str, float], str]:
    """One benchmark process on ``side``; its figures and full output."""
    cmd = [sys.executable, "-c", _RUNNER, *argv]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    run_env = dict(env, PYTHONPATH=str(side.tree))
    proc = subprocess.run(cmd, cwd=side.tree, env=run_env, capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    imported = re.search(r"# storefront_sdk from (\S+)", text)
    where = Path(imported.group(1)).resolve() if imported else None
    if where is None or side.tree.resolve() not in where.parents:
        raise SystemExit(
            f"{side.label}: the run imported storefront_sdk from {where}, not {side.tree}; "
            f"exit status {proc.returncode}\n{text[-2000:]}"
        )
    if proc.returncode != 0:
        raise SystemExit(f"{side.label}: exit status {proc.returncode}\n{text[-3000:]}")
    return parse_metrics(text, metrics), text


def summarise(a: Side, b: Side, names: Sequence[str]) -> None:
    print(
        f"\nmedians over {len(a.runs)} rounds (B / A: ratio of medians; per round: median, range)"
    )
    print(f"  A = {a.label} ({a.rev})\n  B = {b.label} ({b.rev})")
    for name in names:
        xs = [r[name] for r in a.runs if name in r]
        ys = [r[name] for r in b.runs if name in r]
        if not xs or not ys:
            print(f"  {name:<18} not found in the output of {'A' if not xs else 'B'}")
            continue
        ma, mb = statistics.median(xs), statistics.median(ys)
        pairs = [
            rb[name] / ra[name]
            for ra, rb in zip(a.runs, b.runs, strict=True)
            if name in ra and name in rb and ra[name]
        ]
        per_round = (
            f"per round {statistics.median(pairs):.3f} ({min(pairs):.3f}-{max(pairs):.3f})"
            if pairs
            else ""
        )
        print(
            f"  {name:<18} A {ma:9.2f}  B {mb:9.2f}  B/A {mb / ma if ma else float('nan'):.3f}  "
            f"{per_round}   A runs {_fmt(xs)}  B runs {_fmt(ys)}"
        )


def _fmt(xs: Sequence[float]) -> str:
    return "[" + ", ".join(f"{x:g}" for x in xs) + "]"


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_in:
        cut = args_in.index("--")
        args_in, extra = args_in[:cut], args_in[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="commit A: checked out into a temporary worktree")
    parser.add_argument(
        "--against", default=None, help="commit B (default: this working tree as it is)"
    )
    parser.add_argument("--bench", choices=sorted(PRESETS), default="build")
    parser.add_argument("--rounds", type=int, default=5, help="runs per side, interleaved")
    parser.add_argument("--nice", type=int, default=5, help="niceness of every run (0: none)")
    parser.add_argument("--metric", action="append", default=[], metavar="NAME=REGEX")
    parser.add_argument(
        "--script-from",
        choices=("own", "B"),
        default="own",
        help="each side runs its own copy of the script (default), or both run B's copy",
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="keep every run's output")
    args = parser.parse_args(args_in)

    preset_argv, metrics = PRESETS[args.bench]
    bench_argv = extra or preset_argv
    # A custom command keeps the preset's figures only when it runs the preset's script.
    metrics = {} if extra and extra[0] != preset_argv[0] else dict(metrics)
    for spec in args.metric:
        name, _, pattern = spec.partition("=")
        if not pattern:
            parser.error(f"--metric {spec!r}: expected NAME=REGEX")
        metrics[name] = pattern
    if not metrics:
        parser.error("no figures to compare: add --metric NAME=REGEX")

    env = dict(os.environ)
    # The temporary worktrees are not beside ../shared: point the benchmarks at the data.
    env.setdefault("STOREFRONT_INSTACART_DIR", str(REPO.parent / "shared" / "data" / "instacart"))
    env["PYTHONHASHSEED"] = env.get("PYTHONHASHSEED", "0")
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)

    with ExitStack() as stack:
        a_tree = stack.enter_context(checked_out(args.base))
        a = Side("A", a_tree, _git("rev-parse", "--short", "HEAD", cwd=a_tree))
        if args.against is None:
            dirty = _git("status", "--porcelain", "--untracked-files=no")
            rev = _git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")
            b = Side("B", REPO, rev)
        else:
            b_tree = stack.enter_context(checked_out(args.against))
            b = Side("B", b_tree, _git("rev-parse", "--short", "HEAD", cwd=b_tree))
        script = bench_argv[0]
        if args.script_from == "B":
            # Both sides run B's copy of the script (as an absolute path); each still imports
            # its own storefront_sdk. The same benchmark code, if A's SDK has what it calls.
            bench_argv = [str((b.tree / script).resolve()), *bench_argv[1:]]
        same = args.script_from == "B" or (
            (a.tree / script).exists()
            and (a.tree / script).read_bytes() == (b.tree / script).read_bytes()
        )
        print(
            f"compare: {' '.join(bench_argv)}\n  A = {args.base} ({a.rev}) in {a.tree}\n"
            f"  B = {b.rev} in {b.tree}\n  {args.rounds} rounds, order alternating (AB, BA, ...),"
            f" nice {args.nice}, {os.cpu_count()} CPUs; "
            + (
                f"both sides run B's {script}"
                if args.script_from == "B"
                else f"each side runs its own {script}"
                + ("" if same else " (the two copies differ)")
            )
        )
        names = list(metrics)
        t_start = time.perf_counter()
        for i in range(args.rounds):
            order = (a, b) if i % 2 == 0 else (b, a)
            for side in order:
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                figures, text = run_once(side, bench_argv, metrics, args.nice, env)
                side.runs.append(figures)
                if args.log_dir is not None:
                    (args.log_dir / f"round{i + 1}_{side.label}.txt").write_text(text)
                shown = "  ".join(f"{k} {v:g}" for k, v in figures.items())
                print(
                    f"  round {i + 1} {side.label}: {shown}   "
                    f"(load average {load:.2f}, {time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
        summarise(a, b, names)
        print(f"  total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
