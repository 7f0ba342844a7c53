"""GenerationCache and UserFingerprint: keys, layers, expiry, corruption, sharing.

Hostile rows (pickles, paths, symlinks, read-only directories) are in test_hostile_cache.py.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from storefront_sdk import Catalog, ConfigurationError, Interaction, Product, UserContext
from storefront_sdk.cache import (
    BaseGenerationCache,
    GenerationCache,
    UserFingerprint,
    default_cache_dir,
    secret_reason,
)
from storefront_sdk.llm.base import (
    LLM,
    ChatMessage,
    Choice,
    LLMResult,
    LLMUsage,
    MultiChoice,
    OutputSpec,
)
from storefront_sdk.llm.cached import CachingLLM, LazyMessages, cache_identity
from storefront_sdk.tracing import stage
from storefront_sdk.types import Trace

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    """An injectable clock: TTL tests move time instead of sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def raw_rows(cache: GenerationCache) -> list[tuple[object, ...]]:
    """What is in the file, read with plain sqlite3."""
    with sqlite3.connect(cache.path) as con:
        return con.execute("SELECT key, typeof(value), value FROM entries").fetchall()


def raw_put(cache: GenerationCache, key: str, value: object) -> None:
    """Write a row behind the cache's back (another process, a tampered file)."""
    len(cache)  # creates the file and its table
    with sqlite3.connect(cache.path) as con:
        con.execute(
            "INSERT OR REPLACE INTO entries (key, value, expire_at, stored_at, size)"
            " VALUES (?, ?, NULL, 0, 0)",
            (key, value),
        )


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


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    "parts",
    [
        {"api_key": "abc"},
        {"headers": {"Authorization": "x"}},
        {"access_token": "x"},
        {"x-api-key": "x"},
        {"session": {"password": "hunter2"}},
        {"model": "sk-abcdefghijklmnopqrstuvwx"},
        {"model": "sk-proj-abcdefghijklmnopqrstuvwx"},
        {"notes": "my key is sk-abcdefghijklmnopqrstuvwx, keep it"},
        {"header": "Bearer abcdefghijklmnopqrstuvwxyz012345"},
        {"session": {"occasion": JWT}},
        {"aws": "AKIAIOSFODNN7EXAMPLE"},
        {"license_key": "0123456789abcdef0123456789abcdef"},
        {"shortlist": ["eggs", "sk-abcdefghijklmnopqrstuvwx"]},
    ],
)
def test_secrets_are_refused_as_key_parts(cache: GenerationCache, parts: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="secret") as info:
        cache.key("themes", **parts)
    assert "abcdefghijklmnop" not in str(info.value) and "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "parts",
    [
        {"session": {"occasion": "Bearer market"}},
        {"session": {"occasion": "Bearer market day with the kids"}},
        {"theme": "Token ring cake"},
        {"notes": "secret santa gifts"},
        {"preferences": ["sk-8 skate wax"]},
        {"max_tokens": 120, "prompt_tokens": 3},
        {"schema": "0123456789abcdef0123456789abcdef"},  # a hash is not a credential
        {"spec_key": "3f9a2c"},
        {"shortlist": ["bearer bonds", "secret garden", "token"]},
    ],
)
def test_ordinary_text_is_not_a_secret(cache: GenerationCache, parts: dict[str, object]) -> None:
    assert cache.key("themes", **parts).startswith("themes/")


def test_secret_reason_names_the_rule_never_the_value() -> None:
    assert secret_reason("occasion", "Bearer market") is None
    assert secret_reason("api_key", "x") == "its name 'api_key' is a credential name"
    reason = secret_reason("note", "sk-abcdefghijklmnopqrstuvwx")
    assert reason is not None and "sk-" not in reason


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
    ((key, kind, stored),) = raw_rows(cache)
    assert (key, kind) == ("themes/x", "text")
    assert isinstance(stored, str)
    assert json.loads(stored)["value"] == {"title": "Breakfast"}
    # One file, nothing beside it but SQLite's own journal files.
    assert {p.name for p in tmp_path.iterdir()} <= {
        "generations.sqlite3",
        "generations.sqlite3-wal",
        "generations.sqlite3-shm",
    }


def test_pydantic_values_come_back_as_json_data(cache: GenerationCache) -> None:
    theme_like = Product(id="1", title="Eggs")
    value, hit = cache.get_or_compute("themes/p", lambda: theme_like)
    assert not hit and value == theme_like.model_dump(mode="json")
    assert cache.get("themes/p") == value


def test_ttl_expires_memory_and_disk(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = GenerationCache(tmp_path, ttl=60, clock=clock)
    cache.set("themes/x", [1])
    clock.now += 59
    assert cache.get("themes/x") == [1]  # memory
    assert GenerationCache(tmp_path, clock=clock).get("themes/x") == [1]  # disk
    clock.now += 2
    assert cache.get("themes/x") is None
    assert cache.stats.expired == 1
    other = GenerationCache(tmp_path, ttl=60, clock=clock)
    assert other.get("themes/x") is None  # the expiry travels with the entry
    assert len(other) == 0  # and the expired row was removed


def test_entries_without_ttl_never_expire(tmp_path: Path) -> None:
    clock = FakeClock()
    GenerationCache(tmp_path, clock=clock).set("themes/x", [1])
    clock.now += 10 * 365 * 86400
    assert GenerationCache(tmp_path, clock=clock).get("themes/x") == [1]


def test_the_default_clock_is_wall_time(tmp_path: Path) -> None:
    import time

    assert GenerationCache(tmp_path).clock is time.time


def test_size_limit_evicts_the_least_recently_stored(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path, size_limit=20_000, memory_items=0)
    for i in range(200):
        cache.set(f"themes/{i:03d}", ["x" * 200, i])
    assert 0 < len(cache) < 200
    assert cache.get("themes/199") == ["x" * 200, 199]  # the newest survive
    assert cache.get("themes/000") is None


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x80\x04garbage\xff",
        "{not json",
        json.dumps({"some": "other format"}),
        42,
        1.5,
        json.dumps({"format": "storefront-generation", "value": 1, "expires_at": "soon"}),
        "[" * 100_000,
    ],
    ids=["bytes", "bad-json", "foreign-json", "int", "float", "bad-expiry", "deep-json"],
)
def test_corrupt_entry_is_a_miss_and_is_deleted(tmp_path: Path, garbage: object) -> None:
    key = "themes/corrupt"
    cache = GenerationCache(tmp_path)
    raw_put(cache, key, garbage)
    value, hit = cache.get_or_compute(key, lambda: ["fresh"])
    assert (value, hit) == (["fresh"], False)
    assert cache.stats.errors == 1 and cache.stats.misses == 1
    assert GenerationCache(tmp_path).get(key) == ["fresh"]


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


def test_the_base_class_is_small_and_abstract() -> None:
    class DictCache(BaseGenerationCache):
        """A whole backend: five primitives over a dict."""

        def __init__(self, **kw: object) -> None:
            super().__init__(**kw)  # type: ignore[arg-type]
            self.rows: dict[str, str] = {}

        def _load(self, key: str) -> str | None:
            return self.rows.get(key)

        def _store(self, key: str, text: str, expire_at: float | None) -> None:
            self.rows[key] = text

        def _delete(self, key: str) -> None:
            self.rows.pop(key, None)

        def _clear(self) -> None:
            self.rows.clear()

        def _size(self) -> int:
            return len(self.rows)

    with pytest.raises(TypeError):
        BaseGenerationCache()  # type: ignore[abstract]
    clock = FakeClock()
    cache = DictCache(ttl=10, memory_items=0, clock=clock)
    value, hit = cache.get_or_compute(cache.key("themes", n=1), lambda: {"a": [1]})
    assert (value, hit) == ({"a": [1]}, False)
    assert cache.get_or_compute(cache.key("themes", n=1), lambda: {"a": [2]}) == ({"a": [1]}, True)
    clock.now += 11
    assert cache.get(cache.key("themes", n=1)) is None and len(cache) == 0
    cache.rows["themes/bad"] = "not json"
    assert cache.get("themes/bad") is None and "themes/bad" not in cache.rows
    assert cache.stats.errors == 1


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


# -- CachingLLM: any LLM, cached by its canonical request ------------------------------------------


class CountingLLM(LLM):
    """A model double: answers ``answer(call_number)`` raw text, parsed by the real spec."""

    model_id = "counting"
    concurrent = True

    def __init__(self, answer: Callable[[int], str]) -> None:
        self.answer = answer
        self.calls = 0
        self.extra = "delegated"

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        self.calls += 1
        raw = self.answer(self.calls)
        usage = LLMUsage(model_id=self.model_id, prompt_tokens=50, completion_tokens=5)
        return LLMResult(output.parse(raw), usage, raw)


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content=text)]


def test_caching_llm_calls_the_model_once_per_request(cache: GenerationCache) -> None:
    inner = CountingLLM(lambda n: json.dumps({"items": ["eggs", "milk"][: 1 + n % 2]}))
    llm = CachingLLM(inner, cache)
    spec = MultiChoice(options=("eggs", "milk", "bread"), max_items=2)
    first_trace, second_trace = Trace(), Trace()
    with stage(first_trace, "keywords"):
        first = llm.generate(ask("brunch"), spec, max_tokens=20, temperature=0.0)
    with stage(second_trace, "keywords"):
        second = llm.generate(ask("brunch"), spec, max_tokens=20, temperature=0.0)
    assert inner.calls == 1 and first.value == second.value == ["eggs", "milk"]
    assert first_trace.stages[0].cache_hit is False and not first.usage.cache_hit
    assert (
        second_trace.stages[0].cache_hit is True and second_trace.stages[0].model_id == "counting"
    )
    assert second.usage.cache_hit and second.usage.prompt_tokens == 0
    assert (llm.model_id, llm.concurrent, llm.fingerprint) == ("counting", True, "counting")
    assert llm.extra == "delegated"  # other attributes are the wrapped model's


def test_caching_llm_keys_cover_the_whole_request(cache: GenerationCache) -> None:
    llm = CachingLLM(CountingLLM(lambda n: '"eggs"'), cache)
    spec = Choice(("eggs", "milk"))

    def key(**kw: Any) -> str:
        args: dict[str, Any] = {"messages": ask("brunch"), "output": spec, "temperature": 0.0}
        args.update(kw)
        messages, output = args.pop("messages"), args.pop("output")
        return llm.request_key(messages, output, **args)

    variants = {
        key(messages=ask("dinner")),
        key(messages=[*ask("brunch")[:1], ChatMessage(role="assistant", content="brunch")]),
        key(output=Choice(("eggs", "bread"))),
        key(temperature=0.7),
        key(max_tokens=10),
        CachingLLM(CountingLLM(lambda n: '"eggs"'), cache, salt="sample-1").request_key(
            ask("brunch"), spec, temperature=0.0
        ),
    }
    assert key() not in variants and len(variants) == 6
    assert key() == key()


async def test_caching_llm_async_shares_the_sync_entries(cache: GenerationCache) -> None:
    inner = CountingLLM(lambda n: '"milk"')
    llm = CachingLLM(inner, cache)
    spec = Choice(("eggs", "milk"))
    assert (await llm.agenerate(ask("x"), spec)).value == "milk"
    assert llm.generate(ask("x"), spec).usage.cache_hit
    assert (await llm.agenerate(ask("x"), spec)).usage.cache_hit
    assert inner.calls == 1


def test_caching_llm_stale_answers_are_regenerated(cache: GenerationCache) -> None:
    inner = CountingLLM(lambda n: '"milk"')
    llm = CachingLLM(inner, cache)
    spec = Choice(("eggs", "milk"))
    llm.generate(ask("x"), spec)
    cache.set(llm.request_key(ask("x"), spec), '"caviar"')  # valid JSON, not an option
    trace = Trace()
    with stage(trace, "x"):
        assert llm.generate(ask("x"), spec).value == "milk"
    assert inner.calls == 2 and [e.kind for e in trace.events] == ["cache_error"]


def test_caching_llm_never_caches_on_a_credential(cache: GenerationCache) -> None:
    inner = CountingLLM(lambda n: '"eggs"')
    llm = CachingLLM(inner, cache)
    secret = "sk-live-abcdefghijklmnopqrstuvwxyz"
    trace = Trace()
    with stage(trace, "x"):
        for _ in range(2):
            assert llm.generate(ask(f"my key is {secret}"), Choice(("eggs",))).value == "eggs"
    assert inner.calls == 2 and len(cache) == 0  # answered, just not cached
    kinds = [e.kind for e in trace.events]
    assert kinds == ["cache_refused", "cache_refused"]
    assert secret not in json.dumps(trace.model_dump(mode="json"))


def test_identity_keys_replace_the_messages(cache: GenerationCache) -> None:
    inner = CountingLLM(lambda n: '"eggs"')
    llm = CachingLLM(inner, cache)
    rendered: list[int] = []

    def render() -> list[ChatMessage]:
        rendered.append(1)
        return ask(f"alice #{len(rendered)}")

    for _ in range(3):
        with cache_identity("themes", lambda: {"user": "fp-1"}):
            llm.generate(LazyMessages(render), Choice(("eggs",)))
    assert inner.calls == 1
    assert len(rendered) == 0  # the double never looked at them; hits never render


def test_wrapping_twice_is_refused(cache: GenerationCache) -> None:
    llm = CachingLLM(CountingLLM(lambda n: '"eggs"'), cache)
    with pytest.raises(ConfigurationError, match="already cached"):
        CachingLLM(llm, cache)


def test_llm_judge_caches_each_sample_separately(tmp_path: Path) -> None:
    from storefront_sdk.evaluation import LLMJudge
    from storefront_sdk.types import Page, Placement, ScoredProduct, Theme

    inner = CountingLLM(
        lambda n: json.dumps({"reason": "ok", "verdict": "fail" if n % 3 == 2 else "pass"})
    )
    page = Page(
        user_id="7",
        placements=[
            Placement(
                theme=Theme(title="Weekend brunch", concepts=["eggs"], source="llm"),
                products=[ScoredProduct(product=Product(id="1", title="Eggs"), score=1.0)],
            )
        ],
    )
    judge = LLMJudge(inner, strictness=3, levels=("placement",), cache=GenerationCache(tmp_path))
    first = judge.judge(page, UserContext(user_id="7"))
    assert inner.calls == 2 * 3  # two criteria, three distinct samples each: not collapsed
    assert all(v.score == pytest.approx(2 / 3) for v in first.verdicts)
    again = LLMJudge(inner, strictness=3, levels=("placement",), cache=GenerationCache(tmp_path))
    assert again.judge(page, UserContext(user_id="7")).verdicts == first.verdicts
    assert inner.calls == 6  # every vote re-read from the cache


def test_components_rewrap_an_already_cached_model(cache: GenerationCache) -> None:
    from storefront_sdk.evaluation import LLMJudge
    from storefront_sdk.types import Page, Placement, Theme

    inner = CountingLLM(lambda n: json.dumps({"reason": "ok", "verdict": "pass"}))
    cached = CachingLLM(inner, cache)
    assert CachingLLM.wrap(inner, None) is inner
    page = Page(user_id="7", placements=[Placement(theme=Theme(title="Brunch", source="llm"))])
    LLMJudge(cached, strictness=3, levels=("placement",)).judge(page, UserContext(user_id="7"))
    assert inner.calls == 2 * 3  # the judge's sample salts still apply: votes are not collapsed
    rewrapped = CachingLLM.wrap(cached, None, stage="themes")
    assert isinstance(rewrapped, CachingLLM) and rewrapped.llm is inner
    assert rewrapped.cache is cache and rewrapped.stage == "themes"
