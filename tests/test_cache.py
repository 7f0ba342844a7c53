"""GenerationCache and UserFingerprint: keys, layers, expiry, corruption, sharing."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import diskcache
import pytest

from storefront_sdk import Catalog, ConfigurationError, Interaction, Product, UserContext
from storefront_sdk.cache import GenerationCache, UserFingerprint, default_cache_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path: Path) -> GenerationCache:
    return GenerationCache(tmp_path / "cache")


def themes_key(cache: GenerationCache, **overrides: object) -> str:
    parts: dict[str, object] = {
        "prompt": "themes-v1",
        "model": "smollm2-135m",
        "schema": "abc123",
        "user": "u-fp",
        "n": 8,
    }
    parts.update(overrides)
    return cache.key("themes", **parts)


# -- keys ------------------------------------------------------------------------------


def test_key_is_stable_and_order_independent(cache: GenerationCache) -> None:
    a = cache.key("themes", model="m", parts={"x": 1, "y": [1, 2]}, tags={"b", "a"})
    b = cache.key("themes", tags={"a", "b"}, parts={"y": [1, 2], "x": 1}, model="m")
    assert a == b
    assert a.startswith("themes/") and len(a.split("/")[1]) == 64


def test_every_part_changes_the_key(cache: GenerationCache) -> None:
    base = themes_key(cache)
    for part, value in [
        ("prompt", "themes-v2"),
        ("model", "gpt"),
        ("schema", "x"),
        ("user", "v"),
        ("n", 9),
    ]:
        assert themes_key(cache, **{part: value}) != base, part
    assert cache.key("keywords", model="m") != cache.key("themes", model="m")


def test_key_in_a_new_process_is_identical(cache: GenerationCache) -> None:
    code = (
        "from storefront_sdk.cache import GenerationCache as G;"
        "print(G.key('themes', prompt='themes-v1', model='smollm2-135m', schema='abc123',"
        " user='u-fp', n=8))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == themes_key(cache)


@pytest.mark.parametrize(
    "parts",
    [
        {"api_key": "abc"},
        {"headers": {"Authorization": "x"}},
        {"access_token": "x"},
        {"model": "sk-abcdefghijklmnop"},
        {"model": "Bearer abc.def"},
    ],
)
def test_secrets_are_refused_as_key_parts(cache: GenerationCache, parts: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        cache.key("themes", **parts)


def test_opaque_objects_are_refused_as_key_parts(cache: GenerationCache) -> None:
    with pytest.raises(ConfigurationError, match="not JSON-serialisable"):
        cache.key("themes", model=object())


# -- storage -------------------------------------------------------------------------------


def test_second_call_is_a_memory_hit(cache: GenerationCache) -> None:
    calls: list[int] = []

    def compute() -> dict[str, object]:
        calls.append(1)
        return {"themes": [{"title": "Breakfast", "concepts": ["eggs"]}]}

    key = themes_key(cache)
    first, hit1 = cache.get_or_compute(key, compute)
    second, hit2 = cache.get_or_compute(key, compute)
    assert (hit1, hit2) == (False, True)
    assert first == second and len(calls) == 1
    s = cache.stats
    assert (s.hits, s.misses, s.memory_hits, s.disk_hits, s.sets) == (1, 1, 1, 0, 1)


def test_a_fresh_instance_hits_the_disk(tmp_path: Path) -> None:
    GenerationCache(tmp_path).set("themes/x", ["eggs", "bacon"])
    other = GenerationCache(tmp_path)
    assert other.get("themes/x") == ["eggs", "bacon"]
    assert other.stats.disk_hits == 1
    assert other.get("themes/x") == ["eggs", "bacon"]
    assert other.stats.memory_hits == 1


def test_values_are_stored_as_json_text_not_pickles(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path)
    cache.set("themes/x", {"title": "Breakfast"})
    with diskcache.Cache(str(tmp_path)) as raw:
        stored = raw.get("themes/x")
    assert isinstance(stored, str)
    assert json.loads(stored)["value"] == {"title": "Breakfast"}


def test_pydantic_values_come_back_as_json_data(cache: GenerationCache) -> None:
    theme_like = Product(id="1", title="Eggs")
    value, hit = cache.get_or_compute("themes/p", lambda: theme_like)
    assert not hit and value == theme_like.model_dump(mode="json")
    assert cache.get("themes/p") == value


def test_ttl_expires_memory_and_disk(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path, ttl=0.05)
    cache.set("themes/x", [1])
    assert cache.get("themes/x") == [1]
    time.sleep(0.1)
    assert cache.get("themes/x") is None
    assert GenerationCache(tmp_path, ttl=0.05).get("themes/x") is None


def test_entries_without_ttl_outlive_short_waits(tmp_path: Path) -> None:
    GenerationCache(tmp_path).set("themes/x", [1])
    time.sleep(0.06)
    assert GenerationCache(tmp_path).get("themes/x") == [1]


@pytest.mark.parametrize(
    "garbage",
    [b"\x80\x04garbage\xff", "{not json", json.dumps({"some": "other format"}), 42],
    ids=["bytes", "bad-json", "foreign-json", "int"],
)
def test_corrupt_entry_is_a_miss_and_is_deleted(tmp_path: Path, garbage: object) -> None:
    key = "themes/corrupt"
    with diskcache.Cache(str(tmp_path)) as raw:
        raw.set(key, garbage)
    cache = GenerationCache(tmp_path)
    value, hit = cache.get_or_compute(key, lambda: ["fresh"])
    assert (value, hit) == (["fresh"], False)
    assert cache.stats.errors == 1 and cache.stats.misses == 1
    assert GenerationCache(tmp_path).get(key) == ["fresh"]


def test_unreadable_pickled_entry_is_a_miss(tmp_path: Path) -> None:
    key = "themes/pickled"
    with diskcache.Cache(str(tmp_path)) as raw:
        raw.set(key, {"a": 1})  # a dict is pickled by diskcache
        # Corrupt the pickle in place: diskcache will fail to unpickle it.
        raw._sql("UPDATE Cache SET value = ? WHERE key = ?", (b"\x80\x05garbage", key))
    cache = GenerationCache(tmp_path)
    assert cache.get(key) is None
    assert cache.stats.errors == 1
    with diskcache.Cache(str(tmp_path)) as raw:
        assert key not in raw


def test_shared_between_processes(tmp_path: Path) -> None:
    code = (
        "import sys; from storefront_sdk.cache import GenerationCache as G;"
        "c = G(sys.argv[1]); k = c.key('themes', model='m', user='u');"
        "c.set(k, {'themes': ['written by the child']}); print(k)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    parent = GenerationCache(tmp_path)
    key = parent.key("themes", model="m", user="u")
    assert out.stdout.strip() == key
    assert parent.get(key) == {"themes": ["written by the child"]}
    assert parent.stats.disk_hits == 1


def test_pickled_cache_reopens_the_same_store(cache: GenerationCache) -> None:
    cache.set("themes/x", [1, 2])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.directory == cache.directory
    assert clone.get("themes/x") == [1, 2]


def test_threads_share_one_cache(cache: GenerationCache) -> None:
    computed: list[int] = []
    lock = threading.Lock()
    results: list[list[int]] = []

    def compute(i: int) -> list[int]:
        with lock:
            computed.append(i)
        return [i, i * i]

    def worker() -> None:
        for rep in range(5):
            for i in range(10):
                value, _ = cache.get_or_compute(f"themes/{i}", lambda i=i: compute(i))
                with lock:
                    results.append(value)
            del rep

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 * 5 * 10
    assert all(v == [v[0], v[0] ** 2] for v in results)
    s = cache.stats
    assert s.hits + s.misses == 400
    assert s.misses == len(computed) >= 10
    assert s.errors == 0


def test_bypass_skips_reads_and_optionally_writes(cache: GenerationCache) -> None:
    key = themes_key(cache)
    cache.set(key, ["old"])
    with cache.bypass():
        value, hit = cache.get_or_compute(key, lambda: ["new"])
        assert (value, hit) == (["new"], False)
    assert cache.get(key) == ["old"]  # not overwritten
    with cache.bypass(refresh=True):
        cache.get_or_compute(key, lambda: ["refreshed"])
    assert cache.get(key) == ["refreshed"]
    assert cache.stats.bypassed == 2


def test_bypass_is_local_to_the_thread(cache: GenerationCache) -> None:
    cache.set("themes/x", [1])
    seen: list[object] = []
    with cache.bypass():
        t = threading.Thread(target=lambda: seen.append(cache.get("themes/x")))
        t.start()
        t.join()
        assert cache.get("themes/x") is None
    assert seen == [[1]]


def test_disabled_cache_never_stores(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path, enabled=False)
    calls: list[int] = []
    for _ in range(2):
        cache.get_or_compute("themes/x", lambda: calls.append(1) or [1])
    assert len(calls) == 2
    assert cache.stats.hits == 0


def test_clear_empties_both_layers(cache: GenerationCache) -> None:
    cache.set("themes/x", [1])
    cache.clear()
    assert cache.get("themes/x") is None
    assert len(cache) == 0


def test_memory_layer_is_bounded(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path, memory_items=2)
    for i in range(3):
        cache.set(f"themes/{i}", [i])
    assert cache.get("themes/0") == [0]
    assert cache.stats.disk_hits == 1  # evicted from memory, still on disk


def test_default_directory_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STOREFRONT_CACHE_DIR", str(tmp_path / "env"))
    assert GenerationCache().directory == tmp_path / "env"
    monkeypatch.delenv("STOREFRONT_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "storefront_sdk"


def test_bad_settings_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        GenerationCache(tmp_path, ttl=0)
    with pytest.raises(ConfigurationError):
        GenerationCache(tmp_path).set("themes/x", {"a": object()})


# -- user fingerprints ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grocery() -> Catalog:
    rows = [
        ("1", "Organic Bananas", "produce", "fresh fruits"),
        ("2", "Strawberries", "produce", "fresh fruits"),
        ("3", "Honeycrisp Apple", "produce", "fresh fruits"),
        ("4", "Greek Plain Yogurt", "dairy eggs", "yogurt"),
        ("5", "Vanilla Skyr", "dairy eggs", "yogurt"),
        ("6", "Large Brown Eggs", "dairy eggs", "eggs"),
        ("7", "Sourdough Bread", "bakery", "bread"),
        ("8", "IPA Beer 6 Pack", "alcohol", "beers coolers"),
    ]
    return Catalog(Product(id=i, title=t, department=d, aisle=a) for i, t, d, a in rows)


def shopper(uid: str, pids: list[str], **kw: object) -> UserContext:
    history = [Interaction(product_id=p, order_number=n) for n, p in enumerate(pids, 1)]
    return UserContext(user_id=uid, history=history, **kw)  # type: ignore[arg-type]


def test_similar_users_share_a_fingerprint(grocery: Catalog) -> None:
    fp = UserFingerprint()
    a = shopper("alice", ["1", "2", "4", "1"])
    b = shopper("bob", ["3", "2", "5", "3"])  # other products, same aisles in the same order
    assert fp(a, grocery) == fp(b, grocery)
    assert "alice" not in json.dumps(fp.parts(a, grocery))
    c = shopper("carol", ["4", "5", "4", "1"])  # yogurt first
    assert fp(a, grocery) != fp(c, grocery)


def test_fingerprint_separates_what_matters(grocery: Catalog) -> None:
    fp = UserFingerprint()
    base = shopper("u", ["1", "4"])
    variants = [
        shopper("u", ["1", "4"], age_verified=True),
        shopper("u", ["1", "4"], preferences=["vegan"]),
        shopper("u", ["1", "4"], notes="hosting a brunch"),
        shopper("u", ["1", "4"], session={"season": "winter"}),
        shopper("u", []),
    ]
    assert len({fp(base, grocery), *(fp(v, grocery) for v in variants)}) == 6
    # Session fields outside session_keys do not split users.
    noisy = shopper("u", ["1", "4"], session={"hour_of_day": "8"})
    assert fp(noisy, grocery) == fp(base, grocery)


def test_fingerprint_can_be_made_more_personal(grocery: Catalog) -> None:
    a = shopper("a", ["1", "4"])
    b = shopper("b", ["2", "5"])
    assert UserFingerprint()(a, grocery) == UserFingerprint()(b, grocery)
    personal = UserFingerprint(products=10)
    assert personal(a, grocery) != personal(b, grocery)
    assert "Organic Bananas" in personal.parts(a, grocery)["products"]
