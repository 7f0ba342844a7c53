"""Redis as the shared backend: the generation cache and the page store on a real redis-server."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storefront_sdk import Catalog, Storefront
from storefront_sdk.demo import demo_users
from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.serving import (
    DiskPageStore,
    MemoryPageStore,
    PageStore,
    RedisGenerationCache,
    RedisPageStore,
    RedisServer,
    StoredPage,
    open_page_store,
    page_versions,
)
from storefront_sdk.serving.redis_server import redis_server_available
from storefront_sdk.testing.stub_server import StubOpenAIServer

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not redis_server_available(),
    reason="redis-server not installed (apt-get install redis-server; .ci/run installs it)",
)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as srv:
        yield srv.url


def test_cache_roundtrip_ttl_and_stats(redis_url: str) -> None:
    cache = RedisGenerationCache(redis_url, ttl=0.5, prefix="t1:")
    key = cache.key("themes", prompt="v1", user="abc")
    assert key == RedisGenerationCache.key("themes", prompt="v1", user="abc")
    assert cache.get(key) is None
    cache.set(key, {"themes": ["a", "b"]})
    other = RedisGenerationCache(redis_url, prefix="t1:", memory_items=0)  # another replica
    assert other.get(key) == {"themes": ["a", "b"]}
    assert other.stats.disk_hits == 1 and len(other) == 1
    time.sleep(0.7)  # Redis' own expiry applies to every replica
    assert other.get(key) is None
    value, hit = other.get_or_compute(key, lambda: [1, 2])
    assert (value, hit) == ([1, 2], False)
    assert other.get_or_compute(key, lambda: [3])[1] is True
    other.clear()
    assert len(other) == 0


def test_cache_is_picklable_and_prefixed(redis_url: str) -> None:
    cache = RedisGenerationCache(redis_url, prefix="t2:")
    cache.set(cache.key("kw", a=1), ["x"])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get(cache.key("kw", a=1)) == ["x"]
    assert len(RedisGenerationCache(redis_url, prefix="t2-other:")) == 0


def test_corrupt_entry_is_a_miss(redis_url: str) -> None:
    import redis

    cache = RedisGenerationCache(redis_url, prefix="t3:", memory_items=0)
    key = cache.key("themes", a=1)
    redis.Redis.from_url(redis_url).set("t3:" + key, b"not json")
    assert cache.get(key) is None
    assert cache.stats.errors == 1


def test_redis_down_is_a_miss_never_a_crash() -> None:
    with RedisServer() as srv:
        url = srv.url
    cache = RedisGenerationCache(url, timeout=0.2)
    key = cache.key("themes", a=1)
    cache.set(key, ["x"])  # no-op
    assert cache.get(key) is None
    assert cache.stats.errors >= 1


def test_bad_urls_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisGenerationCache("http://localhost:6379")
    with pytest.raises(ConfigurationError, match="--store"):
        open_page_store("ftp://x")


@pytest.mark.parametrize("kind", ["memory", "disk", "redis"])
def test_page_stores_share_one_contract(kind: str, redis_url: str, tmp_path: Path) -> None:
    store: PageStore
    if kind == "memory":
        store = MemoryPageStore()
    elif kind == "disk":
        store = open_page_store(str(tmp_path / "pages"))
        assert isinstance(store, DiskPageStore)
    else:
        store = RedisPageStore(redis_url, prefix=f"pages-{os.getpid()}:")
    store.clear()
    sf = Storefront(Catalog.demo(), llm=None, cache=None)
    versions = page_versions(sf)
    user = demo_users()[0]
    page = sf.build(user)
    assert store.get(user.user_id) is None
    assert store.missing([user.user_id, "nobody"], versions) == [user.user_id, "nobody"]
    stored = StoredPage.from_page(page, versions)
    store.put(stored)
    back = store.get(user.user_id)
    assert back is not None and back.page_id == stored.page_id
    assert back.page.product_ids == page.product_ids and back.versions == versions
    assert store.missing([user.user_id, "nobody"], versions) == ["nobody"]
    newer = versions.model_copy(update={"model": "another-model"})
    assert store.missing([user.user_id], newer) == [user.user_id]
    assert store.get(user.user_id, variant="control") is None
    assert len(store) == 1 and store.ping()
    store.clear()
    assert len(store) == 0


_BUILD = textwrap.dedent(
    """
    import sys
    from storefront_sdk import Catalog, Storefront, OpenAICompatibleLLM
    from storefront_sdk.demo import demo_users
    from storefront_sdk.serving import RedisGenerationCache
    llm = OpenAICompatibleLLM(sys.argv[1], "stub-model")
    sf = Storefront(Catalog.demo(), llm=llm, cache=RedisGenerationCache(sys.argv[2]))
    for u in demo_users():
        page = sf.build(u)
    print(sum(1 for s in page.trace.stages if s.cache_hit))
    """
)


@pytest.mark.slow
def test_second_process_never_calls_the_model_for_what_the_first_generated(
    redis_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "build.py"
    script.write_text(_BUILD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with StubOpenAIServer(seed=3) as stub:
        args = [sys.executable, str(script), stub.base_url, redis_url]
        subprocess.run(args, check=True, env=env, capture_output=True, timeout=300)
        first = stub.request_count
        assert first > 0
        out = subprocess.run(args, check=True, env=env, capture_output=True, timeout=300)
        assert stub.request_count == first, "the second process called the model"
        assert int(out.stdout.decode().strip().splitlines()[-1]) > 0  # its trace shows hits
