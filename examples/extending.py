"""Extend the SDK: a custom retriever with the product fast path and a custom gate.

    python examples/extending.py

Runs offline in a few seconds on the demo catalog (see docs/extending.md). It
defines both components, runs their conformance checks, builds a page with them,
and shows that the storefront used the retriever's fast path and the gate's
verdicts (both are in ``page.trace``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from storefront_sdk import (
    Candidate,
    Catalog,
    RetrievalQuery,
    Retriever,
    StaticThemeGenerator,
    Storefront,
    Theme,
)
from storefront_sdk.demo import demo_users
from storefront_sdk.filtering.gates import default_gates
from storefront_sdk.interfaces import Gate
from storefront_sdk.testing import check_gate, check_retriever
from storefront_sdk.text import tokenize
from storefront_sdk.types import RetrievedProduct, UserContext


class AisleRetriever(Retriever):
    """Products whose aisle or title shares a keyword's words, most popular first.

    It holds the catalog's products anyway, so it also implements the optional
    ``retrieve_products`` fast path: the storefront then gets products, not ids.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog  # the constructor only stores parameters
        self._postings: dict[str, list[str]] | None = None
        self.fast_path_calls = 0

    def warm_up(self) -> None:
        if self._postings is not None:
            return
        postings: dict[str, set[str]] = defaultdict(set)
        for product in self.catalog:
            for token in tokenize(f"{product.title} {product.aisle}"):
                postings[token].add(product.id)
        popularity = {p.id: p.popularity for p in self.catalog}
        self._postings = {
            tok: sorted(ids, key=lambda pid: (-popularity[pid], pid))
            for tok, ids in postings.items()
        }

    @property
    def run_inline(self) -> bool:
        return self._postings is not None  # microseconds once warm: no thread hop

    def retrieve(self, query: RetrievalQuery) -> list[Candidate]:
        self.warm_up()
        assert self._postings is not None
        departments = {d.lower() for d in query.departments}
        quota = query.per_keyword_k or -(-query.k // max(len(query.keywords), 1))
        out: list[Candidate] = []
        seen: set[str] = set(query.exclude_ids)
        for keyword in query.keywords:
            hits: dict[str, int] = defaultdict(int)
            for token in set(tokenize(keyword)):
                for pid in self._postings.get(token, ()):
                    hits[pid] += 1
            ranked = sorted(hits, key=lambda pid: -hits[pid])  # stable: popularity order kept
            taken = 0
            for pid in ranked:
                if taken >= quota or len(out) >= query.k:
                    break
                if pid in seen:
                    continue
                if departments and self.catalog[pid].department.lower() not in departments:
                    continue
                seen.add(pid)
                taken += 1
                out.append(Candidate(product_id=pid, score=float(hits[pid]), keyword=keyword))
        return out

    def retrieve_products(self, query: RetrievalQuery, catalog: Catalog) -> list[RetrievedProduct]:
        if catalog is not self.catalog:  # another catalog: the contract's default hydration
            return super().retrieve_products(query, catalog)
        self.fast_path_calls += 1
        get = catalog.get
        out = []
        for c in self.retrieve(query):
            product = get(c.product_id)
            if product is not None:
                out.append((product, c.keyword, c.score))
        return out


class NoDessertForBreakfastGate(Gate):
    """House rule: a breakfast placement shows no candy or ice cream."""

    BANNED_AISLES = frozenset({"candy chocolate", "ice cream", "cookies"})

    def check_theme(
        self, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        breakfasts = sum("breakfast" in t.title.lower() for t in accepted)
        if "breakfast" in theme.title.lower() and breakfasts >= 1:
            return "extra_breakfast"  # one breakfast placement per page is enough
        return None

    def check_product(self, product, theme, user):  # type: ignore[no-untyped-def]
        if "breakfast" in theme.title.lower() and product.aisle.lower() in self.BANNED_AISLES:
            return f"dessert_for_breakfast:{product.aisle}"
        return None


def main() -> None:
    catalog = Catalog.demo()
    retriever = AisleRetriever(catalog)
    gate = NoDessertForBreakfastGate()

    # 1. Conformance checks: each raises ConformanceError naming the broken rule.
    check_retriever(retriever, catalog)
    print(f"check_retriever: {type(retriever).__name__} honours the Retriever contract")
    check_gate(gate, catalog)
    print(f"check_gate: {type(gate).__name__} honours the Gate contract")
    print(f"  the storefront calls its checks: {sorted(gate.checks)}")

    # 2. Build a page with both (the default gates first, then ours). Two breakfast
    #    themes lead, so the gate has something to do.
    breakfast = [
        Theme(title="Breakfast treats", concepts=["chocolate", "cereal", "cookies", "pancake"]),
        Theme(title="Breakfast table", concepts=["eggs", "bagels"]),
    ]
    storefront = Storefront(
        catalog,
        llm=None,
        theme_generator=StaticThemeGenerator([*breakfast, *StaticThemeGenerator().themes]),
        retriever=retriever,
        gates=[*default_gates(), gate],
    ).warm_up()
    user = demo_users()[0]
    before = retriever.fast_path_calls
    page = storefront.build(user)
    print(f"\nPage for {user.user_id} ({len(page.placements)} placements):")
    for placement in page.placements:
        print(f"  {placement.theme.title}: {len(placement.products)} products")
    print(f"retrieve_products fast path used {retriever.fast_path_calls - before} times")
    ours = [e for e in page.trace.events_of("gate") if e.data.get("gate") == gate.name]
    for event in ours[:4]:
        print(f"  {event.message}")
    print(
        f"{gate.name} rejected {len(ours)} item(s); any gate failures: "
        f"{len(page.trace.events_of('gate_failed'))}"
    )


if __name__ == "__main__":
    main()
