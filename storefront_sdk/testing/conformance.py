"""Conformance checks for your own components, like scikit-learn's ``check_estimator``.

Run them in your test suite against the component you plug into a
:class:`~storefront_sdk.Storefront`; each raises :class:`ConformanceError`
(an ``AssertionError``) saying which rule was broken::

    from storefront_sdk.testing import check_retriever
    check_retriever(MySearchServiceRetriever(...), catalog)

Every built-in component passes them (the SDK's own tests run them).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from ..catalog import Catalog
from ..interfaces import (
    GATE_LEVELS,
    Gate,
    KeywordGenerator,
    Ranker,
    RelevanceFilter,
    Retriever,
    ThemeGenerator,
)
from ..taxonomy import KeywordTaxonomy
from ..text import tokenize
from ..types import (
    Candidate,
    Interaction,
    Placement,
    RetrievalQuery,
    ScoredProduct,
    Theme,
    UserContext,
)

__all__ = [
    "ConformanceError",
    "check_gate",
    "check_keyword_generator",
    "check_ranker",
    "check_relevance_filter",
    "check_retriever",
    "check_theme_generator",
]


class ConformanceError(AssertionError):
    """A component does not honour its contract."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConformanceError(message)


def _check_twins(obj: Any, sync: str, kind: type) -> None:
    _require(isinstance(obj, kind), f"{type(obj).__name__} is not a {kind.__name__} subclass")
    s = inspect.signature(getattr(type(obj), sync))
    a = inspect.signature(getattr(type(obj), "a" + sync))

    def shape(sig: inspect.Signature) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in sig.parameters.values()]

    _require(
        shape(s) == shape(a),
        f"{type(obj).__name__}.{sync}{s} and .a{sync}{a} must have identical signatures",
    )
    _require(
        inspect.iscoroutinefunction(getattr(type(obj), "a" + sync)),
        f"{type(obj).__name__}.a{sync} must be an async def",
    )


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _sample_keywords(catalog: Catalog, n: int = 4) -> list[str]:
    counts: Counter[str] = Counter()
    for p in list(catalog)[:2000]:
        counts.update(set(tokenize(p.title)))
    return [w for w, _ in counts.most_common(n)]


def _sample_user(catalog: Catalog, n: int = 12) -> UserContext:
    products = list(catalog)[: n * 3 : 3]
    return UserContext(
        user_id="conformance-user",
        history=[
            Interaction(product_id=p.id, order_number=1 + i % 3) for i, p in enumerate(products)
        ],
    )


def check_retriever(
    retriever: Retriever, catalog: Catalog, keywords: Sequence[str] | None = None
) -> None:
    """Check a :class:`Retriever` against ``catalog`` (the products it indexes)."""
    _check_twins(retriever, "retrieve", Retriever)
    kws = list(keywords) if keywords else _sample_keywords(catalog)
    _require(bool(kws), "no keywords to query with")
    query = RetrievalQuery(keywords=kws, k=12, per_keyword_k=5)
    got = retriever.retrieve(query)
    _require(isinstance(got, list), f"retrieve must return a list, got {type(got).__name__}")
    _require(all(isinstance(c, Candidate) for c in got), "retrieve must return Candidate objects")
    _require(len(got) > 0, f"retrieve returned nothing for common keywords {kws}")
    _require(len(got) <= query.k, f"retrieve returned {len(got)} > k={query.k} candidates")
    ids = [c.product_id for c in got]
    _require(len(ids) == len(set(ids)), "retrieve returned duplicate product ids")
    _require(all(math.isfinite(c.score) for c in got), "retrieval scores must be finite")
    per_kw = Counter(c.keyword for c in got)
    _require(
        all(v <= 5 for v in per_kw.values()),
        f"per_keyword_k=5 not honoured: {dict(per_kw)}",
    )
    _require(
        all(c.keyword in kws for c in got), "Candidate.keyword must be one of the query's keywords"
    )
    unknown = [i for i in ids if i not in catalog]
    _require(not unknown, f"retrieve returned ids not in the catalog: {unknown[:5]}")
    again = retriever.retrieve(query)
    _require(
        [c.product_id for c in again] == ids, "retrieve must be deterministic for the same query"
    )
    excluded = frozenset(ids[:3])
    ex = retriever.retrieve(query.model_copy(update={"exclude_ids": excluded}))
    _require(not excluded & {c.product_id for c in ex}, "exclude_ids not honoured")
    dept = catalog[ids[0]].department
    if dept:
        only = retriever.retrieve(query.model_copy(update={"departments": [dept]}))
        wrong = [
            c.product_id for c in only if catalog[c.product_id].department.lower() != dept.lower()
        ]
        _require(not wrong, f"departments filter not honoured: {wrong[:5]}")
    empty = retriever.retrieve(RetrievalQuery(keywords=[], k=5))
    _require(empty == [], "an empty keyword list must retrieve nothing")
    async_got = _run(retriever.aretrieve(query))
    _require(
        [c.product_id for c in async_got] == ids, "aretrieve must return what retrieve returns"
    )
    # The optional fast path (retrieve_products) must return what retrieve returns.
    for q in (query, query.model_copy(update={"exclude_ids": excluded})):
        expected = [(c.product_id, c.keyword, c.score) for c in retriever.retrieve(q)]
        for name, hits in (
            ("retrieve_products", retriever.retrieve_products(q, catalog)),
            ("aretrieve_products", _run(retriever.aretrieve_products(q, catalog))),
        ):
            _require(isinstance(hits, list), f"{name} must return a list")
            _require(
                [(p.id, kw, s) for p, kw, s in hits] == expected,
                f"{name} must return retrieve()'s results as (product, keyword, score)",
            )
            _require(
                all(catalog.get(p.id) is p for p, _, _ in hits),
                f"{name} must return the catalog's own Product objects",
            )


def check_relevance_filter(flt: RelevanceFilter, catalog: Catalog) -> None:
    """Check a :class:`RelevanceFilter`: one finite score in [0, 1] per product."""
    _check_twins(flt, "score", RelevanceFilter)
    _require(
        isinstance(flt.threshold, (int, float)) and 0.0 <= flt.threshold <= 1.0,
        "threshold must be a number in [0, 1]",
    )
    products = list(catalog)[:25]
    kw = _sample_keywords(catalog, 2)
    theme = Theme(title=f"All about {kw[0]}", description="conformance", concepts=kw)
    scores = flt.score(theme, products)
    _require(isinstance(scores, list), "score must return a list")
    _require(
        len(scores) == len(products),
        f"score returned {len(scores)} scores for {len(products)} products",
    )
    _require(
        all(isinstance(s, (int, float)) and math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores),
        "every score must be a finite number in [0, 1]",
    )
    _require(flt.score(theme, []) == [], "scoring no products must return []")
    _require(flt.score(theme, products) == scores, "score must be deterministic")
    _require(_run(flt.ascore(theme, products)) == scores, "ascore must return what score returns")


def check_ranker(ranker: Ranker, catalog: Catalog) -> None:
    """Check a :class:`Ranker`: same products back, ``rank_score`` set, sorted by it."""
    _check_twins(ranker, "rank", Ranker)
    user = _sample_user(catalog)
    theme = Theme(title="Conformance", concepts=_sample_keywords(catalog, 2))
    cands = [
        ScoredProduct.of(p, retrieval_score=float(30 - i), filter_score=0.5, score=float(30 - i))
        for i, p in enumerate(list(catalog)[:30])
    ]
    before = [sp.model_dump() for sp in cands]
    ranked = ranker.rank(user, theme, cands)
    _require(isinstance(ranked, list), "rank must return a list")
    _require(
        sorted(sp.product.id for sp in ranked) == sorted(sp.product.id for sp in cands),
        "rank must return exactly the products it was given (no drops, no additions)",
    )
    _require(
        all(sp.rank_score is not None for sp in ranked), "rank must set rank_score on every product"
    )
    rs = [float(sp.rank_score or 0.0) for sp in ranked]
    _require(all(math.isfinite(s) for s in rs), "rank scores must be finite")
    _require(all(a >= b for a, b in pairwise(rs)), "rank must sort by rank_score, descending")
    _require([sp.model_dump() for sp in cands] == before, "rank must not modify its input")
    _require(ranker.rank(user, theme, []) == [], "ranking no products must return []")
    cold = UserContext(user_id="cold")
    _require(
        len(ranker.rank(cold, theme, cands)) == len(cands),
        "rank must work for a user without history",
    )
    again = _run(ranker.arank(user, theme, cands))
    _require(
        [sp.product.id for sp in again] == [sp.product.id for sp in ranked], "arank must match rank"
    )


def check_theme_generator(gen: ThemeGenerator, catalog: Catalog) -> None:
    """Check a :class:`ThemeGenerator` on a returning and a cold-start user."""
    _check_twins(gen, "generate", ThemeGenerator)
    for user in (_sample_user(catalog), UserContext(user_id="cold-start")):
        for n in (1, 4):
            themes = gen.generate(user, n)
            _require(isinstance(themes, list), "generate must return a list")
            _require(
                all(isinstance(t, Theme) for t in themes), "generate must return Theme objects"
            )
            _require(len(themes) <= n, f"generate returned {len(themes)} > n={n} themes")
        _require(len(gen.generate(user, 4)) > 0, f"no theme at all for user {user.user_id!r}")
    async_themes = _run(gen.agenerate(_sample_user(catalog), 3))
    _require(
        isinstance(async_themes, list) and all(isinstance(t, Theme) for t in async_themes),
        "agenerate must return list[Theme]",
    )


def check_keyword_generator(
    gen: KeywordGenerator, catalog: Catalog, taxonomy: KeywordTaxonomy | None = None
) -> None:
    """Check a :class:`KeywordGenerator`: distinct keywords, all in the taxonomy."""
    _check_twins(gen, "generate", KeywordGenerator)
    taxonomy = taxonomy or KeywordTaxonomy.from_catalog(catalog)
    user = _sample_user(catalog)
    for concepts in (_sample_keywords(catalog, 3), ["something unusual", "zzqx"]):
        theme = Theme(title=f"Ideas: {concepts[0]}", concepts=concepts)
        for n in (1, 5):
            kws = gen.generate(theme, taxonomy, user, n)
            _require(
                isinstance(kws, list) and all(isinstance(k, str) for k in kws),
                "generate must return list[str]",
            )
            _require(len(kws) <= n, f"generate returned {len(kws)} > n={n} keywords")
            _require(len(set(kws)) == len(kws), "keywords must be distinct")
            outside = [k for k in kws if k not in taxonomy]
            _require(not outside, f"keywords outside the taxonomy: {outside}")
    theme = Theme(title="Breakfast", concepts=_sample_keywords(catalog, 2))
    _require(
        len(gen.generate(theme, taxonomy, user, 4)) > 0,
        "no keyword for a theme made of catalog words",
    )
    akws = _run(gen.agenerate(theme, taxonomy, user, 4))
    _require(all(k in taxonomy for k in akws), "agenerate returned keywords outside the taxonomy")


_REASON = re.compile(r"^[a-z][a-z0-9_]*(:.+)?$", re.DOTALL)


def check_gate(gate: Gate, catalog: Catalog) -> None:
    """Check a :class:`~storefront_sdk.interfaces.Gate` on sample themes, keywords,
    products and placements drawn from ``catalog``.

    Rules: it is a ``Gate``; its checks are plain (sync) methods with the contract's
    signatures (``check_theme`` takes ``accepted``); ``Gate.checks`` names exactly the
    checks it overrides; every verdict is ``None`` or a reason ``"code"`` /
    ``"code:detail"`` (a lower-case code); verdicts are deterministic; the checks
    accept empty ``accepted`` lists and the minimal theme. A check may reject the
    samples, but must not raise on them: a raising check is recorded in the trace and
    rejects, which is a failure of the gate, not a verdict.
    """
    name = type(gate).__name__
    _require(isinstance(gate, Gate), f"{name} is not a Gate subclass")
    _require(
        gate.checks <= frozenset(GATE_LEVELS), f"{name}.checks has unknown levels {gate.checks}"
    )
    for level in GATE_LEVELS:
        method = getattr(type(gate), f"check_{level}")
        overridden = method is not getattr(Gate, f"check_{level}")
        _require(
            overridden == (level in gate.checks),
            f"{name}.checks must list exactly the overridden checks ({level})",
        )
        _require(
            not inspect.iscoroutinefunction(method),
            f"{name}.check_{level} must be a plain (sync) method: gates run inline",
        )
    params = list(inspect.signature(type(gate).check_theme).parameters)
    _require(
        len(params) >= 4,
        f"{name}.check_theme must take (theme, user, accepted), got {params[1:]}",
    )

    products = [p for p in list(catalog)[:200] if p.title][:12]
    _require(len(products) >= 2, "the catalog needs at least 2 products to check a gate")
    user = _sample_user(catalog)
    adult = user.model_copy(update={"age_verified": True})
    aisle = products[0].aisle or products[0].title
    themes = [
        Theme(title=aisle.title()[:60] or "Picks", concepts=[aisle], source="custom"),
        Theme(title="Buy it again", kind="buy_again", source="history"),
        Theme(title="x"),
    ]
    keywords = [*_sample_keywords(catalog, 3), aisle.lower()]
    placement = Placement(
        theme=themes[0],
        keywords=keywords[:2],
        products=[ScoredProduct(product=p, score=1.0 - i / 100) for i, p in enumerate(products)],
    )

    def verdict(what: str, call: Any) -> str | None:
        try:
            out = call()
        except Exception as exc:
            raise ConformanceError(f"{name}.{what} raised {type(exc).__name__}: {exc}") from exc
        _require(
            out is None or (isinstance(out, str) and bool(_REASON.match(out))),
            f"{name}.{what} must return None or a reason 'code[:detail]', got {out!r}",
        )
        again = call()
        _require(again == out, f"{name}.{what} must be deterministic ({out!r} then {again!r})")
        return out  # type: ignore[no-any-return]

    for u in (user, adult):
        for theme in themes:
            verdict("check_theme", lambda t=theme, u=u: gate.check_theme(t, u, []))
            verdict("check_theme", lambda t=theme, u=u: gate.check_theme(t, u, themes[:1]))
            for kw in keywords:
                verdict("check_keyword", lambda k=kw, t=theme, u=u: gate.check_keyword(k, t, u))
            for product in products:
                verdict(
                    "check_product", lambda p=product, t=theme, u=u: gate.check_product(p, t, u)
                )
        verdict("check_placement", lambda u=u: gate.check_placement(placement, [], u))
        verdict("check_placement", lambda u=u: gate.check_placement(placement, [placement], u))
