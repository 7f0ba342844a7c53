"""Client CPU per request at N requests in flight, for the async HTTP client candidates.

    python benchmarks/bench_http_clients.py [--in-flight 64] [--requests 1500] [--latency 0.05]
        [--repeat 3] [--only TEXT]

The server is the stub OpenAI server (``storefront_sdk.testing.stub_server``) in a separate
process, so its CPU does not count. Each candidate POSTs the same small chat-completions
body ``--requests`` times with ``--in-flight`` requests outstanding, and the client's
``time.process_time()`` divided by the number of requests is printed, with the wall time.
The baseline (first line) is httpx's default ``AsyncClient`` (httpcore). Candidates whose
package is not installed are skipped with a note. The last line is the SDK's whole
backend call (``OpenAICompatibleLLM.agenerate`` with a 30-option ``MultiChoice``, an API
key to scrub), on the chosen client: what one model call costs a page build.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

BODY = json.dumps(
    {
        "model": "stub",
        "messages": [{"role": "user", "content": "pick a theme for a pasta lover"}],
        "max_tokens": 64,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "T",
                "schema": {"type": "object", "properties": {"title": {"type": "string"}},
                           "required": ["title"]},
            },
        },
    }
).encode()  # fmt: skip

Post = Callable[[], Awaitable[int]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def stub(latency: float) -> Iterator[str]:
    import importlib.util

    port = _free_port()
    module = "storefront_sdk.testing.stub_server"
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        module = "storefront_sdk.llm.stub_server"  # older trees
    cmd = [sys.executable, "-m", module, "--port", str(port),
           "--latency", str(latency)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and "http://" in proc.stdout.readline()
        yield f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def drive(post: Post, n: int, in_flight: int) -> tuple[float, float]:
    for _ in range(in_flight):  # warm the pool
        await post()
    await asyncio.gather(*(post() for _ in range(in_flight)))
    sem = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with sem:
            assert await post() == 200

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return (time.process_time() - cpu) / n * 1000.0, time.perf_counter() - wall


def candidates(url: str, in_flight: int) -> dict[str, Callable[[], Any]]:
    """name -> factory of (async context manager yielding a post function)."""
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    out: dict[str, Callable[[], Any]] = {}

    import httpx

    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)

    @contextlib.asynccontextmanager
    async def httpx_client(client: Any) -> Any:
        async with client:

            async def post() -> int:
                r = await client.post(url, content=BODY, headers=headers)
                return int(r.status_code)

            yield post

    out["httpx 0.28 AsyncClient (httpcore)"] = lambda: httpx_client(
        httpx.AsyncClient(limits=limits)
    )
    try:
        import httpx2

        l2 = httpx2.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        out["httpx2 AsyncClient (httpcore2)"] = lambda: httpx_client(httpx2.AsyncClient(limits=l2))
    except ImportError:
        print("  (httpx2 not installed: skipped)")
    try:
        from httpx_aiohttp import HttpxAiohttpClient

        out["httpx.AsyncClient + httpx-aiohttp"] = lambda: httpx_client(
            HttpxAiohttpClient(limits=limits)
        )
    except ImportError:
        print("  (httpx-aiohttp not installed: skipped)")
    try:  # the hand-written transport of earlier versions, if importable (PYTHONPATH=old tree)
        from storefront_sdk.llm.transport import AsyncHTTP11Transport  # type: ignore

        out["httpx.AsyncClient + old hand-written transport"] = lambda: httpx_client(
            httpx.AsyncClient(transport=AsyncHTTP11Transport(max_connections=in_flight))
        )
    except ImportError:
        pass
    try:
        import aiohttp

        @contextlib.asynccontextmanager
        async def raw_aiohttp() -> Any:
            conn = aiohttp.TCPConnector(limit=in_flight)
            async with aiohttp.ClientSession(connector=conn) as session:

                async def post() -> int:
                    async with session.post(url, data=BODY, headers=headers) as r:
                        await r.read()
                        return r.status

                yield post

        out["aiohttp ClientSession alone (floor)"] = raw_aiohttp
    except ImportError:
        pass
    try:
        from storefront_sdk.llm.base import ChatMessage, MultiChoice
        from storefront_sdk.llm.openai import OpenAICompatibleLLM

        messages = [ChatMessage(role="user", content="pick keywords for a pasta lover")]
        spec = MultiChoice(tuple(f"keyword {i}" for i in range(30)), min_items=1, max_items=4)

        @contextlib.asynccontextmanager
        async def backend() -> Any:
            llm = OpenAICompatibleLLM(
                url.rsplit("/chat/completions", 1)[0],
                "stub",
                api_key="sk-bench-0123456789",
                response_format="json_schema",
                max_connections=in_flight,
            )
            try:

                async def post() -> int:
                    await llm.agenerate(messages, spec)
                    return 200

                yield post
            finally:
                await llm.aclose()

        out[BACKEND] = backend
    except ImportError:
        pass
    return out


BACKEND = "OpenAICompatibleLLM.agenerate (whole backend)"
"""The SDK's own call path on the chosen client: request body, policy (time limit, retry,
body cap), response parsing, secret scrubbing and output validation."""


async def measure(factory: Callable[[], Any], n: int, in_flight: int) -> tuple[float, float]:
    async with factory() as post:
        return await drive(post, n, in_flight)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", default=None, help="run only the candidates whose name contains this text"
    )
    args = parser.parse_args(argv)
    with stub(args.latency) as url:
        found = candidates(url, args.in_flight)
        if args.only:
            found = {name: f for name, f in found.items() if args.only in name}
        print(f"{args.requests} POSTs, {args.in_flight} in flight, stub latency {args.latency}s")
        print(f"{'client':50s} {'CPU ms/request (median, min-max)':>34s} {'wall s':>7s}")
        for name, factory in found.items():
            runs = [asyncio.run(measure(factory, args.requests, args.in_flight))
                    for _ in range(args.repeat)]  # fmt: skip
            cpus = [r[0] for r in runs]
            print(
                f"{name:50s} {statistics.median(cpus):10.3f} ({min(cpus):.3f}-{max(cpus):.3f})"
                f"{'':12s} {statistics.median(r[1] for r in runs):7.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
