"""BM25Retriever: scores identical to rank_bm25, and the Retriever contract on real queries."""

from __future__ import annotations

import asyncio
import pickle
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from storefront_sdk.catalog import Catalog
from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.interfaces import Retriever
from storefront_sdk.retrieval import BM25Retriever
from storefront_sdk.text import tokenize
from storefront_sdk.types import Product, RetrievalQuery

_ROWS = [
    # id, title, aisle, department, brand
    ("1", "Organic Whole Milk", "milk", "Dairy Eggs", "Horizon"),
    ("2", "Reduced Fat 2% Milk", "milk", "Dairy Eggs", None),
    ("3", "Organic Large Brown Eggs", "eggs", "Dairy Eggs", "Pete and Gerry's"),
    ("4", "Free Range Eggs Dozen", "eggs", "Dairy Eggs", None),
    ("5", "Greek Yogurt Strawberry", "yogurt", "Dairy Eggs", "Chobani"),
    ("6", "Plain Greek Yogurt", "yogurt", "Dairy Eggs", "Fage"),
    ("7", "Sourdough Bread", "bread", "Bakery", None),
    ("8", "Organic Whole Wheat Bread", "bread", "Bakery", "Dave's Killer Bread"),
    ("9", "Chocolate Chip Cookies", "cookies cakes", "Snacks", None),
    ("10", "Milk Chocolate Bar", "candy chocolate", "Snacks", None),
    ("11", "Organic Bananas", "fresh fruits", "Produce", None),
    ("12", "Organic Strawberries", "fresh fruits", "Produce", None),
    ("13", "Organic Baby Spinach", "packaged vegetables fruits", "Produce", None),
    ("14", "Frozen Pepperoni Pizza", "frozen pizza", "Frozen", None),
    ("15", "Frozen Organic Strawberries", "frozen produce", "Frozen", None),
    ("16", "Chocolate Milk", "milk", "Dairy Eggs", None),
    ("17", "Oat Milk Original", "milk", "Dairy Eggs", "Oatly"),
    ("18", "Strawberry Jam", "spreads", "Pantry", None),
    ("19", "Organic Peanut Butter", "spreads", "Pantry", None),
    ("20", "Sparkling Water Lime", "water seltzer sparkling water", "Beverages", None),
]


@pytest.fixture(scope="module")
def grocery() -> Catalog:
    products = [
        Product(
            id=i,
            title=t,
            aisle=a,
            department=d,
            brand=b,
            attributes={"diet": "vegan"} if i == "17" else {},
        )
        for i, t, a, d, b in _ROWS
    ]
    return Catalog(products, name="grocery")


def _reference(catalog: Catalog, **params: float) -> BM25Okapi:
    return BM25Okapi([tokenize(p.text) for p in catalog], **params)


QUERIES = [
    "milk",
    "organic",  # in more than half the documents? no: checks the plain idf path
    "dairy eggs",  # in 9 of 20 documents
    "organic milk",
    "milk milk",  # a repeated query token counts twice, as in rank_bm25
    "greek yogurt strawberry",
    "strawberries",  # plural folding meets "strawberry"
    "chocolate chip cookies",
    "nothing matches this",
    "frozen pizza",
]


@pytest.mark.parametrize("params", [{}, {"k1": 1.2, "b": 0.5, "epsilon": 0.5}])
def test_scores_equal_rank_bm25(grocery: Catalog, params: dict[str, float]) -> None:
    ours = BM25Retriever(grocery, **params)
    ref = _reference(grocery, **params)
    for q in QUERIES:
        expected = ref.get_scores(tokenize(q))
        got = ours.scores(q)
        assert np.array_equal(got, expected), (q, got, expected)


def test_epsilon_floor_for_terms_in_most_products() -> None:
    # "milk" is in 4 of 5 products: its raw idf is negative and rank_bm25 floors it.
    products = [
        Product(id=str(i), title=title, department="dairy")
        for i, title in enumerate(
            ["whole milk", "skim milk", "milk chocolate", "oat milk", "cheddar cheese"]
        )
    ]
    catalog = Catalog(products)
    ref = _reference(catalog)
    assert ref.idf["milk"] == pytest.approx(0.25 * ref.average_idf)
    ours = BM25Retriever(catalog)
    for q in ["milk", "milk cheddar", "dairy", "oat milk"]:
        assert np.array_equal(ours.scores(q), ref.get_scores(tokenize(q))), q


def test_search_ranks_like_rank_bm25(grocery: Catalog) -> None:
    ours = BM25Retriever(grocery)
    ref = _reference(grocery)
    for q in QUERIES:
        expected = ref.get_scores(tokenize(q))
        hits = ours.search(q, k=5)
        n_matching = int((expected > 0).sum())
        assert len(hits) == min(5, n_matching)
        # Best first, each score the reference's score for that product, and no
        # product outside the hits scores higher than the last hit.
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        pos = {p.id: i for i, p in enumerate(grocery)}
        assert all(expected[pos[pid]] == s for pid, s in hits)
        if hits:
            others = [expected[i] for p, i in pos.items() if p not in dict(hits)]
            assert max(others) <= scores[-1]


def test_retrieve_gives_every_keyword_a_share(grocery: Catalog) -> None:
    retriever = BM25Retriever(grocery)
    cands = retriever.retrieve(RetrievalQuery(keywords=["milk", "bread", "eggs"], k=6))
    assert len(cands) == 6
    assert [c.keyword for c in cands] == ["milk", "bread", "eggs"] * 2
    # Each keyword's own products, in its own BM25 order.
    assert [c.product_id for c in cands if c.keyword == "bread"] == [
        pid for pid, _ in retriever.search("bread", 2)
    ]
    assert len({c.product_id for c in cands}) == len(cands)


def test_retrieve_deduplicates_and_keeps_first_keyword(grocery: Catalog) -> None:
    retriever = BM25Retriever(grocery)
    # "chocolate milk" finds milk products and chocolate products; "milk" overlaps it.
    cands = retriever.retrieve(RetrievalQuery(keywords=["chocolate milk", "milk"], k=20))
    ids = [c.product_id for c in cands]
    assert len(ids) == len(set(ids))
    assert cands[0].keyword == "chocolate milk"
    assert cands[0].product_id == retriever.search("chocolate milk", 1)[0][0]
    # Every product matching either keyword is returned exactly once.
    matching = {pid for pid, _ in retriever.search("chocolate milk", 20)}
    assert set(ids) == matching | {pid for pid, _ in retriever.search("milk", 20)}
    # A product found by the first keyword keeps its first keyword's score.
    by_id = {c.product_id: c for c in cands}
    for pid, score in retriever.search("chocolate milk", 20):
        if by_id[pid].keyword == "chocolate milk":
            assert by_id[pid].score == score


def test_per_keyword_k_is_a_hard_cap(grocery: Catalog) -> None:
    retriever = BM25Retriever(grocery)
    query = RetrievalQuery(keywords=["organic", "milk"], k=10, per_keyword_k=2)
    cands = retriever.retrieve(query)
    assert [c.keyword for c in cands] == ["organic", "milk", "organic", "milk"]


def test_default_quota_backfills_when_a_keyword_runs_dry(grocery: Catalog) -> None:
    retriever = BM25Retriever(grocery)
    # "pizza" matches one product; "organic" has plenty to fill the rest of k.
    cands = retriever.retrieve(RetrievalQuery(keywords=["pizza", "organic"], k=6))
    assert len(cands) == 6
    assert sum(c.keyword == "pizza" for c in cands) == 1
    assert sum(c.keyword == "organic" for c in cands) == 5


def test_departments_filter_is_case_insensitive(grocery: Catalog) -> None:
    retriever = BM25Retriever(grocery)
    cands = retriever.retrieve(
        RetrievalQuery(keywords=["organic", "strawberry"], k=20, departments=["produce", "FROZEN"])
    )
    assert cands
    assert {grocery[c.product_id].department for c in cands} <= {"Produce", "Frozen"}
    assert "15" in {c.product_id for c in cands}
    nowhere = RetrievalQuery(keywords=["organic"], departments=["garden"])
    assert retriever.retrieve(nowhere) == []


def test_exclude_ids_are_never_returned(grocery: Catalog) -> None:
    retriever = BM25Retriever(grocery)
    ranked = [pid for pid, _ in retriever.search("milk", 20)]
    assert len(ranked) > 3
    cands = retriever.retrieve(
        RetrievalQuery(keywords=["milk"], k=3, exclude_ids=frozenset([*ranked[:3], "no-such-id"]))
    )
    # The next best products take the excluded ones' places.
    assert [c.product_id for c in cands] == ranked[3:6]


def test_empty_and_unmatched_keywords(grocery: Catalog) -> None:
    retriever = BM25Retriever(grocery)
    assert retriever.retrieve(RetrievalQuery(keywords=[])) == []
    assert retriever.retrieve(RetrievalQuery(keywords=["", "  ", "the of"])) == []
    cands = retriever.retrieve(RetrievalQuery(keywords=["xylophone", "sourdough"], k=5))
    assert [(c.product_id, c.keyword) for c in cands] == [("7", "sourdough")]


def test_fields_choose_what_is_indexed(grocery: Catalog) -> None:
    by_title = BM25Retriever(grocery, fields="title")
    # "bakery" is a department: only the default text field sees it.
    assert by_title.search("bakery") == []
    assert {pid for pid, _ in BM25Retriever(grocery).search("bakery")} == {"7", "8"}
    by_attr = BM25Retriever(grocery, fields=["title", "diet"])
    assert by_attr.search("vegan")[0][0] == "17"


def test_bad_parameters_raise_configuration_error(grocery: Catalog) -> None:
    with pytest.raises(ConfigurationError, match="b must be in"):
        BM25Retriever(grocery, b=1.5)
    with pytest.raises(ConfigurationError, match="fields"):
        BM25Retriever(grocery, fields=[])
    with pytest.raises(ConfigurationError, match="indexable text"):
        BM25Retriever(grocery, fields="no_such_attribute").warm_up()
    with pytest.raises(ConfigurationError, match="k must be"):
        BM25Retriever(grocery).search("milk", k=0)


def test_lazy_index_is_built_once_under_concurrency(grocery: Catalog) -> None:
    retriever = BM25Retriever(grocery)
    assert not retriever.is_warm  # construction does no work
    queries = [RetrievalQuery(keywords=[kw], k=5) for kw in ["milk", "organic", "bread"] * 8]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(retriever.retrieve, queries))
    assert retriever.is_warm
    fresh = BM25Retriever(grocery)
    assert results == [fresh.retrieve(q) for q in queries]


def test_pickles_with_its_index(grocery: Catalog) -> None:
    # Batch precomputation ships the storefront to Ray / Dask / process workers.
    retriever = BM25Retriever(grocery)
    query = RetrievalQuery(keywords=["organic", "milk"], k=5)
    expected = retriever.retrieve(query)
    copy = pickle.loads(pickle.dumps(retriever))
    assert copy.is_warm
    assert copy.retrieve(query) == expected
    assert copy.retrieve(query) == expected  # again, now from its own keyword cache


def test_aretrieve_matches_retrieve(grocery: Catalog) -> None:
    query = RetrievalQuery(keywords=["organic", "yogurt"], k=7)
    cold = asyncio.run(BM25Retriever(grocery).aretrieve(query))
    warm_retriever = BM25Retriever(grocery)
    warm_retriever.warm_up()
    assert cold == asyncio.run(warm_retriever.aretrieve(query)) == warm_retriever.retrieve(query)


def test_demo_catalog_scores_equal_rank_bm25(demo_catalog: Catalog) -> None:
    demo = demo_catalog
    ours = BM25Retriever(demo)
    ref = _reference(demo)
    for q in [*demo.aisles[:10], *demo.departments, "organic milk", "pasta sauce"]:
        assert np.array_equal(ours.scores(q), ref.get_scores(tokenize(q))), q


def test_passes_the_public_retriever_checks(demo_catalog: Catalog) -> None:
    from storefront_sdk.testing import check_retriever

    check_retriever(BM25Retriever(demo_catalog), demo_catalog)


def _keywords(catalog: Catalog) -> list[str]:
    from storefront_sdk.taxonomy import KeywordTaxonomy

    return list(KeywordTaxonomy.from_catalog(catalog).keywords)


@pytest.fixture(scope="module")
def instacart_keywords(instacart_catalog: Catalog) -> list[str]:
    return _keywords(instacart_catalog)


def _random_queries(
    catalog: Catalog, keywords: list[str], n: int, seed: int
) -> list[RetrievalQuery]:
    rng = random.Random(seed)
    ids = [p.id for p in catalog]
    queries = []
    for _ in range(n):
        queries.append(
            RetrievalQuery(
                keywords=rng.sample(keywords, rng.randint(1, 6)),
                k=rng.choice([10, 50, 100]),
                per_keyword_k=rng.choice([None, None, 5]),
                departments=rng.sample(catalog.departments, rng.choice([0, 0, 1, 2])),
                exclude_ids=frozenset(rng.sample(ids, rng.choice([0, 20]))),
            )
        )
    return queries


def test_keyword_cache_never_changes_results(demo_catalog: Catalog) -> None:
    cached, uncached = BM25Retriever(demo_catalog), BM25Retriever(demo_catalog, cache_size=0)
    queries = _random_queries(demo_catalog, _keywords(demo_catalog), 150, seed=3)
    for q in [*queries, *queries]:  # the second pass is served from the cache
        assert cached.retrieve(q) == uncached.retrieve(q), q


@pytest.mark.instacart
def test_instacart_scores_and_rankings_equal_rank_bm25(
    instacart_catalog: Catalog, instacart_keywords: list[str]
) -> None:
    ours = BM25Retriever(instacart_catalog)
    ref = _reference(instacart_catalog)
    queries = [
        *random.Random(7).sample(instacart_keywords, 25),
        "organic",
        "milk milk",
        "frozen pizza",
    ]
    for q in queries:
        expected = ref.get_scores(tokenize(q))
        assert np.array_equal(ours.scores(q), expected), q
        hits = ours.search(q, 100)
        assert [s for _, s in hits] == sorted(expected[expected > 0], reverse=True)[:100], q


@pytest.mark.instacart
def test_instacart_keyword_cache_never_changes_results(
    instacart_catalog: Catalog, instacart_keywords: list[str]
) -> None:
    # The cache keeps a prefix of each keyword's ranking; filters that reach
    # past it (excluding the 1,000 best "organic" products) must not change results.
    cached = BM25Retriever(instacart_catalog, cache_size=64)
    uncached = BM25Retriever(instacart_catalog, cache_size=0)
    queries = _random_queries(instacart_catalog, instacart_keywords, 80, seed=11)
    best = frozenset(pid for pid, _ in uncached.search("organic", 1000))
    queries.append(RetrievalQuery(keywords=["organic"], k=100, departments=["produce"]))
    queries.append(RetrievalQuery(keywords=["organic", "milk"], k=100, exclude_ids=best))
    for q in [*queries, *queries]:
        assert cached.retrieve(q) == uncached.retrieve(q), q


@pytest.mark.instacart
def test_instacart_multi_keyword_retrieval(instacart_catalog: Catalog) -> None:
    retriever = BM25Retriever(instacart_catalog)
    query = RetrievalQuery(
        keywords=["pasta sauce", "spaghetti", "parmesan", "garlic bread"],
        k=40,
        departments=["Pantry"],
    )
    cands = retriever.retrieve(query)
    assert len(cands) == 40
    assert {c.keyword for c in cands} == {"pasta sauce", "spaghetti", "parmesan", "garlic bread"}
    assert all(instacart_catalog[c.product_id].department.lower() == "pantry" for c in cands)


def test_custom_retriever_example_runs() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "custom_retriever.py"
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "honours the Retriever contract" in done.stdout
    assert "built with WordMatchRetriever" in done.stdout


def test_retrieve_products_is_retrieve_with_the_catalogs_products() -> None:
    catalog = Catalog.demo()
    twin = Catalog(catalog.products, name="twin")  # equal products, another catalog
    r = BM25Retriever(catalog)
    rng = random.Random(5)
    words = ["milk", "pasta sauce", "organic", "dog food", "chips", "apples", "nothing-here"]
    for _ in range(30):
        query = RetrievalQuery(
            keywords=rng.sample(words, rng.randint(1, 4)),
            k=rng.choice([5, 20, 100]),
            departments=rng.choice([[], ["pantry"], ["Produce", "dairy eggs"]]),
            exclude_ids=frozenset(p.id for p in rng.sample(list(catalog), 200)),
        )
        expected = [(c.product_id, c.keyword, c.score) for c in r.retrieve(query)]
        for cat in (catalog, twin):  # fast path on its own catalog, hydrated on another
            got = r.retrieve_products(query, cat)
            assert [(p.id, kw, s) for p, kw, s in got] == expected
            assert all(p is cat[p.id] for p, _, _ in got)
            assert asyncio.run(r.aretrieve_products(query, cat)) == got


def test_storefront_gets_the_same_pages_through_every_retrieval_path() -> None:
    """Plain BM25 (fast path), BM25 over another catalog (hydrated ids), a subclass that
    overrides retrieve() (its retrieve is honoured) and a custom retriever with its own
    retrieve_products (called by the storefront) all build the same pages."""
    from storefront_sdk import StaticThemeGenerator, Storefront
    from storefront_sdk.demo import demo_users
    from storefront_sdk.types import RetrievedProduct

    catalog = Catalog.demo()
    calls: list[str] = []

    class Logged(BM25Retriever):
        def retrieve(self, query: RetrievalQuery) -> list:  # type: ignore[type-arg]
            calls.append("retrieve")
            return super().retrieve(query)

    class OwnFastPath(Retriever):
        def __init__(self) -> None:
            self.inner = BM25Retriever(catalog)

        def retrieve(self, query: RetrievalQuery) -> list:  # type: ignore[type-arg]
            raise AssertionError("the storefront should use retrieve_products")

        def retrieve_products(
            self, query: RetrievalQuery, catalog: Catalog
        ) -> list[RetrievedProduct]:
            calls.append("retrieve_products")
            return self.inner.retrieve_products(query, catalog)

    user = demo_users()[0]
    twin = Catalog(catalog.products, name="twin")
    # Static themes: their products all come from retrieval (history themes pin theirs).
    static = StaticThemeGenerator
    storefronts = [
        Storefront(catalog, llm=None, theme_generator=static()),
        Storefront(catalog, llm=None, retriever=BM25Retriever(twin), theme_generator=static()),
        Storefront(catalog, llm=None, retriever=Logged(catalog), theme_generator=static()),
        Storefront(catalog, llm=None, retriever=OwnFastPath(), theme_generator=static()),
    ]
    pages = [sf.build(user) for sf in storefronts]
    assert "retrieve" in calls, "an overridden retrieve() is always called"
    assert "retrieve_products" in calls, "a custom fast path is used"
    pages.append(asyncio.run(storefronts[3].abuild(user)))
    ids = [[p.product_ids for p in page.placements] for page in pages]
    assert all(i == ids[0] for i in ids)  # same results either way
    assert all(not page.trace.events_of("stage_failed") for page in pages)
