"""The cache directory as a hostile tester sees it (issue #8, findings 1, 5, 6 and 7).

A shared cache directory is input: anyone who can write it can put any row in
it. Reading it must never run code, never open or delete a file outside it,
and never crash a build. Rows are planted with plain ``sqlite3`` (and, for the
old on-disk format, with diskcache itself), the way an attacker would.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from storefront_sdk import Catalog, UserContext
from storefront_sdk.cache import (
    DB_NAME,
    CacheError,
    CacheReadOnlyError,
    GenerationCache,
)
from storefront_sdk.llm.base import LLM, ChatMessage, LLMResult, LLMUsage, OutputSpec
from storefront_sdk.tracing import stage
from storefront_sdk.types import Trace

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


class Payload:
    """Unpickling this creates ``path``: proof that a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A cache directory, and a victim file and folder beside it (outside it)."""
    victim_dir = tmp_path / "victim_dir"
    victim_dir.mkdir()
    victim = victim_dir / "victim.txt"
    victim.write_text("precious")
    out = {
        "cache": tmp_path / "cache",
        "victim_dir": victim_dir,
        "victim": victim,
        "marker": tmp_path / "PWNED",
    }
    yield out
    for p in tmp_path.rglob("*"):  # undo any chmod a-w so pytest can clean up
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def plant(cache: GenerationCache, key: str, value: object) -> None:
    len(cache)  # the file and its table exist
    with sqlite3.connect(cache.path) as con:
        con.execute(
            "INSERT OR REPLACE INTO entries (key, value, expire_at, stored_at, size)"
            " VALUES (?, ?, NULL, 0, 0)",
            (key, value),
        )


def assert_untouched(world: dict[str, Path]) -> None:
    assert not world["marker"].exists(), "a pickle payload ran"
    assert world["victim"].read_text() == "precious"
    assert sorted(p.name for p in world["victim_dir"].iterdir()) == ["victim.txt"]


# -- finding 1: rows can never run code or name files ---------------------------------------


@pytest.mark.parametrize("as_text", [False, True], ids=["blob", "text"])
def test_a_pickle_row_never_runs(world: dict[str, Path], as_text: bool) -> None:
    cache = GenerationCache(world["cache"])
    key = cache.key("themes", user="u")
    cache.set(key, {"themes": []})
    payload = pickle.dumps(Payload(world["marker"]))
    plant(cache, key, payload.decode("latin-1") if as_text else payload)
    reader = GenerationCache(world["cache"])  # a fresh process's view: no memory layer
    trace = Trace()
    with stage(trace, "themes"):
        assert reader.get(key) is None
    assert_untouched(world)
    assert reader.stats.errors == 1 and reader.stats.misses == 1
    assert [e.kind for e in trace.events] == ["cache_error"]  # recorded, not silent
    assert trace.stages[0].details["cache_error"].startswith("corrupt entry")
    assert len(reader) == 0  # deleted by key


def legacy_diskcache_dir(world: dict[str, Path]) -> list[str]:
    """The rows of issue #8 in diskcache's format (what the cache used to read)."""
    import diskcache

    keys = ["themes/pickle", "themes/relative", "themes/absolute", "themes/symlink"]
    link = world["cache"] / "link.val"
    with diskcache.Cache(str(world["cache"])) as dc:
        for k in keys:
            dc.set(k, "x")
        dc._sql(  # mode 4: diskcache's Disk.fetch calls pickle.load on it
            "UPDATE Cache SET value = ?, mode = 4 WHERE key = ?",
            (pickle.dumps(Payload(world["marker"])), keys[0]),
        )
        for k, name in [
            (keys[1], "../victim_dir/victim.txt"),
            (keys[2], str(world["victim"])),
            (keys[3], "link.val"),
        ]:
            dc._sql("UPDATE Cache SET mode = 3, filename = ? WHERE key = ?", (name, k))
    link.symlink_to(world["victim"])
    return keys


def test_rows_of_the_old_diskcache_format_are_never_interpreted(world: dict[str, Path]) -> None:
    keys = legacy_diskcache_dir(world)
    cache = GenerationCache(world["cache"])
    for k in keys:
        assert cache.get(k) is None
    cache.set("themes/new", [1])
    assert cache.get("themes/new") == [1]
    cache.delete("themes/relative")
    cache.clear()
    cache.close()
    assert_untouched(world)
    assert (world["cache"] / "link.val").is_symlink()  # not even the link was followed


def test_hostile_rows_in_our_own_file(world: dict[str, Path]) -> None:
    cache = GenerationCache(world["cache"])
    len(cache)
    with sqlite3.connect(cache.path) as con:
        # Columns a path-following store would read: ours never selects them.
        con.execute("ALTER TABLE entries ADD COLUMN filename TEXT")
        con.execute("ALTER TABLE entries ADD COLUMN mode INTEGER")
        for i, name in enumerate(["../victim_dir/victim.txt", str(world["victim"])]):
            con.execute(
                "INSERT INTO entries (key, value, expire_at, stored_at, size, filename, mode)"
                " VALUES (?, ?, NULL, 0, 0, ?, 3)",
                (f"themes/{i}", pickle.dumps(Payload(world["marker"])), name),
            )
    reader = GenerationCache(world["cache"])
    assert reader.get("themes/0") is None and reader.get("themes/1") is None
    reader.clear()
    assert_untouched(world)
    assert reader.stats.errors == 2


def test_oversized_values_are_never_loaded(world: dict[str, Path]) -> None:
    cache = GenerationCache(world["cache"], max_value_bytes=10_000)
    plant(
        cache, "themes/huge", json.dumps({"format": "storefront-generation", "value": "x" * 50_000})
    )
    assert cache.get("themes/huge") is None
    assert cache.stats.errors == 1 and len(cache) == 0
    cache.set("themes/big", "y" * 20_000)  # refused on the way in too, never raised
    assert cache.stats.errors == 2 and len(cache) == 0


def test_a_symlinked_database_is_refused(world: dict[str, Path]) -> None:
    world["cache"].mkdir()
    (world["cache"] / DB_NAME).symlink_to(world["victim"])
    cache = GenerationCache(world["cache"])
    assert cache.get("themes/x") is None
    cache.set("themes/x", [1])  # a failed write is counted, not raised
    assert cache.stats.errors == 2
    with pytest.raises(CacheError, match="symbolic link"):
        len(cache)
    with pytest.raises(CacheError):
        cache.clear()
    assert_untouched(world)


def test_a_file_that_is_not_a_database(world: dict[str, Path]) -> None:
    world["cache"].mkdir()
    (world["cache"] / DB_NAME).write_bytes(b"\x00garbage" * 100)
    cache = GenerationCache(world["cache"])
    assert cache.get("themes/x") is None and cache.stats.errors == 1
    with pytest.raises(CacheError):
        len(cache)


# -- finding 7: read-only directories serve hits ----------------------------------------------


def make_read_only(path: Path) -> None:
    for p in [*path.rglob("*"), path]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_a_read_only_directory_serves_hits(world: dict[str, Path]) -> None:
    writer = GenerationCache(world["cache"])
    writer.set("themes/a", {"themes": ["eggs"]})
    writer.close()
    make_read_only(world["cache"])
    before = sorted(p.name for p in world["cache"].iterdir())
    cache = GenerationCache(world["cache"])  # root honours the missing write bits too
    assert cache.get("themes/a") == {"themes": ["eggs"]}
    assert cache.read_only and cache.stats.disk_hits == 1
    assert len(cache) == 1
    value, hit = cache.get_or_compute("themes/b", lambda: ["new"])
    assert (value, hit) == (["new"], False)
    assert cache.get("themes/b") == ["new"]  # kept in memory for this process
    assert cache.stats.errors == 0
    with pytest.raises(CacheReadOnlyError, match="read-only"):
        cache.clear()
    cache.close()
    assert sorted(p.name for p in world["cache"].iterdir()) == before  # nothing written


def test_a_read_only_directory_without_a_cache_is_empty(world: dict[str, Path]) -> None:
    world["cache"].mkdir()
    make_read_only(world["cache"])
    cache = GenerationCache(world["cache"])
    assert cache.get("themes/a") is None and len(cache) == 0
    cache.set("themes/a", [1])
    assert cache.get("themes/a") == [1]
    with pytest.raises(CacheReadOnlyError):
        cache.clear()
    assert list(world["cache"].iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another uid")
def test_read_only_for_an_ordinary_user(world: dict[str, Path]) -> None:
    """The same as another uid, for whom the permission bits really hold."""
    writer = GenerationCache(world["cache"])
    writer.set("themes/a", ["eggs"])
    writer.close()
    make_read_only(world["cache"])
    for p in [world["cache"], *world["cache"].parents]:
        if p == Path("/"):
            break
        p.chmod(p.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
    code = textwrap.dedent(
        f"""
        import os, sqlite3, urllib.parse
        from storefront_sdk.cache import GenerationCache, CacheReadOnlyError
        os.setgid(65534); os.setuid(65534)  # after the imports: the venv may be root-only
        c = GenerationCache({str(world["cache"])!r})
        assert c.get("themes/a") == ["eggs"], c.stats
        assert c.read_only
        try:
            c.clear()
        except CacheReadOnlyError:
            print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/"
    )
    if "Permission denied" in out.stderr and "storefront_sdk" not in out.stderr:
        pytest.skip("the interpreter is not readable by another uid here")
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


# -- finding 5: keys are the same in every process -------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from storefront_sdk import Catalog, Storefront
    from storefront_sdk.cache import GenerationCache
    from storefront_sdk.demo import demo_users
    from storefront_sdk.llm.base import LLM, LLMResult, LLMUsage, MultiChoice

    TITLES = ["Weekend brunch", "Fresh fruit bowl", "Pantry staples", "Snack attack",
              "Dinner tonight", "Baking day", "Breakfast table", "Healthy lunch"]
    CONCEPTS = [["eggs", "bread"], ["bananas", "berries"], ["pasta", "rice"],
                ["chips", "nuts"], ["chicken", "vegetables"], ["flour", "sugar"],
                ["cereal", "milk"], ["salad", "yogurt"]]

    class Deterministic(LLM):
        model_id = "deterministic"
        concurrent = True
        calls = 0

        def generate(self, messages, output, *, max_tokens=None, temperature=None):
            Deterministic.calls += 1
            if isinstance(output, MultiChoice):
                raw = json.dumps({"items": list(output.options[: output.max_items])})
            else:
                n = output.json_schema()["properties"]["themes"]["minItems"]
                raw = json.dumps({"themes": [
                    {"title": TITLES[i], "description": "Picked for you.", "concepts": CONCEPTS[i]}
                    for i in range(n)]})
            return LLMResult(output.parse(raw), LLMUsage(model_id=self.model_id), raw)

    sf = Storefront(Catalog.demo(), llm=Deterministic(), cache=GenerationCache(sys.argv[1]))
    counts = {}
    for user in demo_users():
        for rec in sf.build(user).trace.stages:
            if rec.stage in ("themes", "keywords") and rec.cache_hit is not None:
                hits, total = counts.get(rec.stage, (0, 0))
                counts[rec.stage] = (hits + bool(rec.cache_hit), total + 1)
    print(json.dumps({"calls": Deterministic.calls, "counts": counts}))
    """
)


def test_keys_are_stable_across_hash_seeds(tmp_path: Path) -> None:
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["calls"] > 0 and set(first["counts"]) == {"themes", "keywords"}
    assert second["calls"] == 0, second
    for name, (hits, total) in second["counts"].items():
        assert total == first["counts"][name][1] and hits == total, (name, second)


def test_taxonomy_version_ignores_the_hash_seed() -> None:
    code = (
        "from storefront_sdk import Catalog; from storefront_sdk.taxonomy import KeywordTaxonomy;"
        "t = KeywordTaxonomy.from_catalog(Catalog.demo());"
        "print(t.version, t.shortlist(['weekend brunch', 'eggs'], 20))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
        ).stdout
        for seed in ("0", "1", "4242")
    }
    assert len(outs) == 1


# -- finding 6: "Bearer market" is an occasion, not a credential ---------------------------------


def test_an_ordinary_occasion_gets_cached_model_themes(tmp_path: Path) -> None:
    from storefront_sdk import Interaction
    from storefront_sdk.generation.llm_themes import LLMThemeGenerator

    catalog = Catalog.demo()
    history = [Interaction(product_id=p.id, order_number=1) for p in list(catalog)[:5]]
    themes_raw = json.dumps(
        {
            "themes": [
                {"title": t, "description": "For the market.", "concepts": [c]}
                for t, c in [
                    ("Market picnic", "bread"),
                    ("Fresh stall finds", "apples"),
                    ("Farmers cheese board", "cheese"),
                    ("Market flowers", "herbs"),
                    ("Street food night", "tortillas"),
                    ("Bakery run", "croissants"),
                    ("Berry season", "berries"),
                    ("Veggie haul", "carrots"),
                ]
            ]
        }
    )
    llm = Scripted(themes_raw)
    gen = LLMThemeGenerator(llm, catalog, cache=GenerationCache(tmp_path))
    market = UserContext(user_id="m", history=history, session={"occasion": "Bearer market"})
    for expect_hit in (False, True):
        trace = Trace()
        with stage(trace, "themes"):
            themes = gen.generate(market, 4)
        assert [t.source for t in themes[1:]] == ["llm"] * 3
        assert trace.stages[0].cache_hit is expect_hit and not trace.events
    assert len(llm.calls) == 1

    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF"
    leaky = market.model_copy(update={"session": {"occasion": jwt}})
    trace = Trace()
    with stage(trace, "themes"):
        themes = gen.generate(leaky, 4)
    assert [t.source for t in themes[1:]] == ["llm"] * 3  # still model themes, just uncached
    (ev,) = trace.events
    assert ev.kind == "cache_refused" and "credential" in ev.message and jwt not in ev.message
    assert len(llm.calls) == 2
    blobs = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert jwt.encode() not in blobs


class Scripted(LLM):
    """Answers the first ``n`` themes of a script; records each call."""

    model_id = "scripted"
    concurrent = True

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.calls: list[list[ChatMessage]] = []

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        self.calls.append(list(messages))
        n = output.json_schema()["properties"]["themes"]["minItems"]
        raw = json.dumps({"themes": json.loads(self.raw)["themes"][:n]})
        return LLMResult(output.parse(raw), LLMUsage(model_id=self.model_id, prompt_tokens=9), raw)


# -- concurrency: several processes writing one fresh directory at once --------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from storefront_sdk.cache import GenerationCache
    c = GenerationCache(sys.argv[1], memory_items=0)
    me = int(sys.argv[2])
    for i in range(60):
        c.set(f"themes/{me}-{i}", {"writer": me, "i": i})
        c.set("themes/shared", {"writer": me, "i": i})
        assert c.get(f"themes/{me}-{i}") == {"writer": me, "i": i}
        assert c.get("themes/shared") is not None
    s = c.stats
    print(s.errors, s.sets, s.disk_hits)
    """
)


def test_six_processes_share_one_fresh_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path / "cache"), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(6)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert out.split() == ["0", "120", "120"], (out, err[-500:])
    cache = GenerationCache(tmp_path / "cache")
    assert len(cache) == 6 * 60 + 1
    assert cache.get("themes/5-59") == {"writer": 5, "i": 59}


# -- end to end: a tampered directory under Storefront.build --------------------------------------


class Deterministic(LLM):
    """Answers from the request's own constraint: the first options, fixed theme titles."""

    model_id = "deterministic"
    concurrent = True

    def __init__(self) -> None:
        self.calls = 0

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        self.calls += 1
        schema = output.json_schema()
        if "themes" in schema.get("properties", {}):
            n = schema["properties"]["themes"]["minItems"]
            titles = ["Weekend brunch", "Fresh fruit bowl", "Pantry staples", "Snack attack"]
            raw = json.dumps(
                {
                    "themes": [
                        {
                            "title": titles[i % 4] + f" {i}",
                            "description": "For you.",
                            "concepts": ["eggs", "bread"],
                        }
                        for i in range(n)
                    ]
                }
            )
        else:
            options = schema["properties"]["items"]["items"]["enum"]
            raw = json.dumps({"items": options[: schema["properties"]["items"]["maxItems"]]})
        return LLMResult(output.parse(raw), LLMUsage(model_id=self.model_id), raw)


def test_build_over_a_tampered_directory(world: dict[str, Path]) -> None:
    from storefront_sdk import Storefront
    from storefront_sdk.demo import demo_users

    users = demo_users()[:2]
    llm = Deterministic()
    Storefront(Catalog.demo(), llm=llm, cache=GenerationCache(world["cache"])).build_many(users)
    stored = llm.calls
    assert stored > 0
    with sqlite3.connect(world["cache"] / DB_NAME) as con:  # every row becomes a pickle bomb
        rows = con.execute("SELECT count(*) FROM entries").fetchone()[0]
        con.execute("UPDATE entries SET value = ?", (pickle.dumps(Payload(world["marker"])),))
    assert rows > 0
    sf = Storefront(Catalog.demo(), llm=llm, cache=GenerationCache(world["cache"]))
    pages = sf.build_many(users)
    assert_untouched(world)
    assert all(p.placements for p in pages)
    regenerated = llm.calls - stored
    assert regenerated >= rows  # every entry a miss, regenerated
    errors = [e for p in pages for e in p.trace.events if e.kind == "cache_error"]
    # every discarded entry is on a page's trace (concurrent pages may ask for one key twice)
    assert len({e.data["key"] for e in errors}) == rows
    again = Storefront(Catalog.demo(), llm=llm, cache=GenerationCache(world["cache"]))
    assert all(p.trace.cache_hits for p in again.build_many(users))  # healed
    assert llm.calls == stored + regenerated
