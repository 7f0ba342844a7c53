"""Cache generations: any model through ``CachingLLM``, whole pages through ``GenerationCache``.

Offline: a real local OpenAI-compatible stub server stands in for the model.
Shows a request answered once and then from the cache, a storefront whose
second build makes no model call, and the same cache directory served
read-only (a prebuilt cache shipped to serving machines).

Run: ``python examples/caching.py`` (a few seconds).
"""

from __future__ import annotations

import shutil
import stat
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from storefront_sdk import Catalog, Storefront
from storefront_sdk.cache import CacheReadOnlyError, GenerationCache
from storefront_sdk.demo import demo_users
from storefront_sdk.llm import CachingLLM, ChatMessage, OpenAICompatibleLLM, Structured
from storefront_sdk.testing.stub_server import StubOpenAIServer


class Idea(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=40)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="storefront-cache-"))
    try:
        with StubOpenAIServer(latency=0.02, seed=1) as server:
            model = OpenAICompatibleLLM(server.base_url, "stub-model")

            # 1. Any model, cached by its canonical request (model, messages, schema, sampling).
            llm = CachingLLM(model, GenerationCache(root / "requests"))
            ask = [ChatMessage(role="user", content="One carousel title for a brunch.")]
            first = llm.generate(ask, Structured(Idea), temperature=0.0)
            again = llm.generate(ask, Structured(Idea), temperature=0.0)
            print(
                f"request: {first.value.title!r} (cache_hit={first.usage.cache_hit}), "
                f"again: cache_hit={again.usage.cache_hit}; "
                f"key {llm.request_key(ask, Structured(Idea), temperature=0.0)[:20]}..."
            )

            # 2. Whole pages: generators wrap the model themselves.
            pages_dir = root / "pages"
            sf = Storefront(Catalog.demo(), llm=model, cache=GenerationCache(pages_dir))
            users = demo_users()[:3]
            before = server.request_count
            cold = [sf.build(u) for u in users]
            calls = server.request_count - before
            warm = [sf.build(u) for u in users]
            print(
                f"pages: cold builds made {calls} model calls, "
                f"warm builds {server.request_count - before - calls}; "
                f"cache hits per warm page {[p.trace.cache_hits for p in warm]} "
                f"(cold {[p.trace.cache_hits for p in cold]})"
            )
            writer = sf.cache
            if writer is not None:
                writer.close()  # a writer that exits folds its log into the file

            # 3. The directory, made read-only, still serves every generation.
            for p in [pages_dir, *pages_dir.rglob("*")]:
                p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
            shipped = GenerationCache(pages_dir)
            sf = Storefront(Catalog.demo(), llm=model, cache=shipped)
            before = server.request_count
            served = [sf.build(u) for u in users]
            print(
                f"read-only copy: {server.request_count - before} model calls, "
                f"hits per page {[p.trace.cache_hits for p in served]}, "
                f"read_only={shipped.read_only}, {len(shipped)} entries"
            )
            try:
                shipped.clear()
            except CacheReadOnlyError as exc:
                print(f"clear() refused: {exc}")
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
