"""Plug your own retriever into a Storefront, prove it honours the contract, compare it with BM25.

    python examples/custom_retriever.py

Runs offline in a few seconds on the demo catalog. The retriever here is a
small in-memory one (products ranked by how many of the keyword's words they
contain, then by popularity); a retriever that calls your search service has
the same shape (see docs/tutorials/custom-retriever.md).
"""

from __future__ import annotations

from collections import defaultdict

from storefront_sdk import (
    BM25Retriever,
    Candidate,
    Catalog,
    RetrievalQuery,
    Retriever,
    Storefront,
)
from storefront_sdk.demo import demo_users
from storefront_sdk.testing import check_retriever
from storefront_sdk.text import tokenize


class WordMatchRetriever(Retriever):
    """Products containing most of a keyword's words, most popular first."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog  # the constructor only stores parameters
        self._postings: dict[str, set[str]] | None = None

    def warm_up(self) -> None:
        if self._postings is not None:
            return
        postings: dict[str, set[str]] = defaultdict(set)
        for product in self.catalog:
            for token in tokenize(product.text):
                postings[token].add(product.id)
        self._postings = dict(postings)

    def _search(self, keyword: str) -> list[tuple[str, float]]:
        self.warm_up()
        assert self._postings is not None
        hits: dict[str, int] = defaultdict(int)
        for token in set(tokenize(keyword)):
            for pid in self._postings.get(token, ()):
                hits[pid] += 1
        # Score: matched words, ties broken by popularity, then by id (deterministic).
        ranked = sorted(hits, key=lambda pid: (-hits[pid], -self.catalog[pid].popularity, pid))
        return [(pid, float(hits[pid])) for pid in ranked]

    def retrieve(self, query: RetrievalQuery) -> list[Candidate]:
        departments = {d.lower() for d in query.departments}
        # Share k among the keywords so that every keyword contributes.
        quota = query.per_keyword_k or -(-query.k // max(len(query.keywords), 1))
        out: list[Candidate] = []
        seen: set[str] = set()
        for keyword in query.keywords:
            taken = 0
            for pid, score in self._search(keyword):
                if taken >= quota or len(out) >= query.k:
                    break
                product = self.catalog[pid]
                if pid in seen or pid in query.exclude_ids:
                    continue
                if departments and product.department.lower() not in departments:
                    continue
                seen.add(pid)
                taken += 1
                out.append(Candidate(product_id=pid, score=score, keyword=keyword))
        return out


def main() -> None:
    catalog = Catalog.demo()
    mine = WordMatchRetriever(catalog)

    # 1. The conformance suite: raises ConformanceError naming the broken rule.
    check_retriever(mine, catalog)
    print(f"check_retriever: {type(mine).__name__} honours the Retriever contract")

    # 2. Side by side with the default BM25 retriever on one query.
    query = RetrievalQuery(keywords=["greek yogurt", "granola"], k=6)
    bm25 = BM25Retriever(catalog)
    for name, retriever in (("WordMatchRetriever", mine), ("BM25Retriever", bm25)):
        print(f"\n{name}: {query.keywords}")
        for c in retriever.retrieve(query):
            print(f"  {c.score:6.2f}  {c.keyword:<13} {catalog[c.product_id].title}")

    # 3. Plug it in: every placement's products now come from it.
    storefront = Storefront(catalog, llm=None, retriever=mine).warm_up()
    user = demo_users()[0]
    page = storefront.build(user)
    print(f"\nPage for {user.user_id}, built with {storefront.retriever.name}:")
    for placement in page.placements[:4]:
        titles = ", ".join(sp.product.title for sp in placement.products[:3])
        print(f"  {placement.theme.title}: {titles} ...")
    retrieve_ms = sum(s.duration_ms for s in page.trace.stages_of("retrieve"))
    print(f"retrieval took {retrieve_ms:.1f} ms of {page.trace.total_ms:.1f} ms")


if __name__ == "__main__":
    main()
