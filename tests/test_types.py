"""The fast ScoredProduct constructors build exactly what pydantic's validating one does."""

from __future__ import annotations

import pickle

from storefront_sdk import Catalog
from storefront_sdk.types import ScoredProduct


def test_fast_constructors_match_the_validating_constructor() -> None:
    product = next(iter(Catalog.demo()))
    fields = {
        "product": product,
        "score": 1.5,
        "keyword": "milk",
        "retrieval_score": 1.5,
        "filter_score": 0.7,
        "rank_score": None,
        "pinned": False,
    }
    slow = ScoredProduct(**fields)
    fast = ScoredProduct.of(**fields)
    assert fast == slow
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json() == slow.model_dump_json()
    assert pickle.loads(pickle.dumps(fast)) == slow
    assert fast.model_copy(update={"score": 2.0}) == slow.model_copy(update={"score": 2.0})
    changed = fast.with_scores(rank_score=0.3, score=0.3)
    assert changed == ScoredProduct(**{**fields, "rank_score": 0.3, "score": 0.3})
    assert fast.rank_score is None  # the original is untouched
