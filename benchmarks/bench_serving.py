"""Serving throughput and latency under a real load generator (wrk) on 127.0.0.1.

    python benchmarks/bench_serving.py [--instacart-dir DIR] [--pages N] [--duration S]

Starts a ``redis-server`` (Debian package), precomputes ``--pages`` baseline pages
(``llm=None``; Instacart catalog when found, else the demo catalog) for synthetic
shoppers into a Redis page store, then runs the page server (uvicorn + httptools +
uvloop, one process) and drives it with ``wrk`` (one thread, ``--connections``
connections, random stored ids from a Lua script):

(a) **stored pages**: requests/s and latency percentiles, served as pre-serialised
    bytes (the default), against the named baseline **revalidate** in the same run:
    the same server parsing and re-serialising every page with pydantic.
(b) **misses**: every request a new id; the model is the stub OpenAI server with
    ``--model-latency`` seconds per call, so no generated page can be ready within
    ``--deadline-ms``: every answer is the baseline page at the deadline (or at once
    when ``--max-builds`` builds are already running). Reports p50/p99 against the
    deadline.

Also prints the CPU seconds used by the server and by wrk over each run (cores =
CPU seconds / wall seconds), so the figures can be read against the 2 shared cores.
Needs ``redis-server`` and ``wrk`` on PATH and the ``serve`` + ``precompute`` extras.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from storefront_sdk import Catalog, Storefront  # noqa: E402
from storefront_sdk.serving import (  # noqa: E402
    RedisPageStore,
    RedisServer,
    StoredPage,
    page_versions,
    synthetic_users,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _catalog(path: str | None) -> tuple[Catalog, str]:
    root = Path(path) if path else REPO.parent / "shared" / "data" / "instacart"
    if (root / "products.csv").exists():
        return Catalog.from_instacart(root), f"instacart ({root})"
    return Catalog.demo(), "demo catalog"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_main(args: argparse.Namespace) -> None:
    """The server process (started by this script with --serve)."""
    import uvicorn

    from storefront_sdk.serving.app import create_app

    # Miss builds run in threads: a short GIL switch interval hands the event loop back
    # sooner while one of them computes (what `storefront serve` does too).
    sys.setswitchinterval(0.001)

    catalog, _ = _catalog(args.instacart_dir)
    store = RedisPageStore(args.redis, timeout=0.5)
    llm: Any = None
    if args.model_url:
        from storefront_sdk import OpenAICompatibleLLM

        llm = OpenAICompatibleLLM(args.model_url, "stub", timeout=30.0)
    sf = Storefront(catalog, llm=llm, cache=None)
    app = create_app(
        store,
        sf,
        deadline_ms=args.deadline_ms,
        revalidate=args.revalidate,
        max_builds=args.max_builds,
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )


class Server:
    def __init__(self, args: argparse.Namespace, redis_url: str, **extra: Any) -> None:
        self.port = _free_port()
        cmd = [sys.executable, __file__, "--serve", "--port", str(self.port), "--redis", redis_url]
        cmd += ["--deadline-ms", str(args.deadline_ms), "--max-builds", str(args.max_builds)]
        if args.instacart_dir:
            cmd += ["--instacart-dir", args.instacart_dir]
        if extra.get("revalidate"):
            cmd.append("--revalidate")
        if extra.get("model_url"):
            cmd += ["--model-url", extra["model_url"]]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        nice = args.nice

        def prio() -> None:
            if nice:
                os.nice(nice)

        self.proc = subprocess.Popen(cmd, env=env, preexec_fn=prio)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(1200):
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


_LUA_STORED = """
ids = {%s}
request = function()
  return wrk.format("GET", "/v1/pages/" .. ids[math.random(#ids)])
end
"""
_LUA_MISS = """
counter = 0
math.randomseed(os.time())
prefix = "miss-" .. math.random(1, 1000000000) .. "-"
request = function()
  counter = counter + 1
  return wrk.format("GET", "/v1/pages/" .. prefix .. counter)
end
"""


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000.0 if unit == "us" else value * 1000.0 if unit == "s" else value


def run_wrk(url: str, lua: str, args: argparse.Namespace, server: Server) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(lua)
        script = fh.name
    before_srv = _cpu_seconds(server.proc.pid)
    before_children = os.times()
    cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency", "-s", script]
    if args.nice:
        cmd = ["nice", "-n", str(args.nice), *cmd]
    start = time.perf_counter()
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    after_children = os.times()
    os.unlink(script)
    wrk_cpu = (after_children.children_user - before_children.children_user) + (
        after_children.children_system - before_children.children_system
    )
    res: dict[str, float] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "server_cores": (_cpu_seconds(server.proc.pid) - before_srv) / wall,
        "wrk_cores": wrk_cpu / wall,
    }
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = _ms(m.group(1)) if m else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = float(errors.group(1)) if errors else 0.0
    timeouts = re.search(r"Socket errors: .*timeout (\d+)", out)
    res["timeouts"] = float(timeouts.group(1)) if timeouts else 0.0
    return res


def _metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} ([\d.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--instacart-dir")
    p.add_argument("--pages", type=int, default=300, help="distinct stored pages (300)")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    p.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    p.add_argument("--miss-connections", type=int, default=8)
    p.add_argument("--deadline-ms", type=float, default=150.0)
    p.add_argument("--max-builds", type=int, default=2)
    p.add_argument("--model-latency", type=float, default=1.0)
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run server, redis-server and wrk at this nice level (e.g. -10, as root) to\n"
        "approximate dedicated cores on a machine shared with other jobs",
    )
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--redis", help=argparse.SUPPRESS)
    p.add_argument("--revalidate", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model-url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve_main(args)
        return
    for tool in ("redis-server", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install redis-server wrk")

    catalog, where = _catalog(args.instacart_dir)
    print(f"catalog: {where}, {len(catalog)} products; cores on this machine: {os.cpu_count()}")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with RedisServer() as redis:
        if args.nice and redis._proc is not None:
            os.setpriority(os.PRIO_PROCESS, redis._proc.pid, args.nice)
        print(f"nice level of server, redis-server and wrk: {args.nice}")
        store = RedisPageStore(redis.url)
        sf = Storefront(catalog, llm=None, cache=None).warm_up()
        versions = page_versions(sf)
        t0 = time.perf_counter()
        ids = []
        sizes = []
        for user in synthetic_users(catalog, args.pages, seed=11):
            stored = StoredPage.from_page(sf.build(user), versions)
            store.put(stored)
            ids.append(user.user_id)
            sizes.append(len(stored.model_dump_json()))
        print(
            f"stored {len(ids)} baseline pages in {time.perf_counter() - t0:.1f} s "
            f"(median page JSON {sorted(sizes)[len(sizes) // 2] / 1024:.1f} KiB)"
        )
        lua = _LUA_STORED % ",".join(json.dumps(i) for i in ids)
        results: dict[str, dict[str, float]] = {}
        for name, extra in (
            ("pre-serialised", {}),
            ("revalidate (baseline)", {"revalidate": True}),
        ):
            server = Server(args, redis.url, **extra)
            try:
                run_wrk(
                    server.url, lua, argparse.Namespace(**{**vars(args), "duration": 2}), server
                )
                results[name] = run_wrk(server.url, lua, args, server)
            finally:
                server.stop()
        print(
            f"\n(a) stored pages from Redis: wrk -t1 -c{args.connections} -d{args.duration}s, "
            "one uvicorn process (httptools, uvloop)"
        )
        header = f"{'server':<24}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        print(header + f"{'server cores':>14}{'wrk cores':>11}{'non-2xx':>9}")
        for name, r in results.items():
            print(
                f"{name:<24}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}"
                f"{r['p99_ms']:>9.2f}{r['server_cores']:>14.2f}{r['wrk_cores']:>11.2f}"
                f"{r['non_2xx']:>9.0f}"
            )
        a, b = results["pre-serialised"], results["revalidate (baseline)"]
        print(f"throughput ratio pre-serialised / revalidate: {a['rps'] / b['rps']:.2f}x")

        from storefront_sdk.testing.stub_server import StubOpenAIServer

        with StubOpenAIServer(latency=args.model_latency) as stub:
            server = Server(args, redis.url, model_url=stub.base_url)
            try:
                miss_args = argparse.Namespace(
                    **{**vars(args), "connections": args.miss_connections}
                )
                r = run_wrk(server.url, _LUA_MISS, miss_args, server)
                metrics = httpx.get(server.url + "/metrics").text
            finally:
                server.stop()
        print(
            f"\n(b) misses: wrk -t1 -c{args.miss_connections} -d{args.duration}s, every id new; "
            f"model latency {args.model_latency} s/call; deadline {args.deadline_ms:.0f} ms; "
            f"max builds {args.max_builds}"
        )
        print(
            f"req/s {r['rps']:.0f}; p50 {r['p50_ms']:.1f} ms; p90 {r['p90_ms']:.1f} ms; "
            f"p99 {r['p99_ms']:.1f} ms (deadline + 20 ms = {args.deadline_ms + 20:.0f} ms); "
            f"non-2xx {r['non_2xx']:.0f}; timeouts {r['timeouts']:.0f}; "
            f"server cores {r['server_cores']:.2f}, wrk cores {r['wrk_cores']:.2f}"
        )
        for reason in ("deadline", "overloaded", "error"):
            n = _metric(metrics, f'storefront_fallbacks_total{{reason="{reason}"}}')
            print(f"  baseline answers ({reason}): {n:.0f}")
        built = _metric(metrics, 'storefront_requests_total{source="built"}')
        print(f"  generated within the deadline: {built:.0f}")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
