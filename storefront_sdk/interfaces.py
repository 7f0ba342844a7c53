"""The contracts of the cascade: six components and the gates.

Each component contract is a small abstract base class with one main method and its
async twin of identical signature (``generate``/``agenerate``,
``retrieve``/``aretrieve``, ``score``/``ascore``, ``rank``/``arank``,
``judge``/``ajudge``). Subclasses implement the sync method; the default async
twin runs it in a worker thread, or inline when the component says it is cheap
(``run_inline``: CPU-only work well under a millisecond, where a thread hop
costs more than it saves). Components that do I/O (HTTP) override both natively.

Rules every component follows (``storefront_sdk.testing`` checks them):

* The constructor only stores parameters. Heavy work (indexes, models) happens
  in :meth:`Component.warm_up` or lazily on first use, never at import time.
* Inputs and outputs are the pydantic types of :mod:`storefront_sdk.types`.
* A component may annotate the running trace stage with
  :func:`storefront_sdk.tracing.annotate` (model id, tokens, cache hit).
* Raising is allowed: the storefront catches generation failures, degrades the
  page and records the reason in the trace.

:class:`Gate` is the seventh contract: cheap synchronous checks that accept
(``None``) or reject (a reason code) a theme, a keyword, a product or an
assembled placement. A raising check is recorded in the trace (``gate_failed``)
and counts as a rejection; it never escapes a build.
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .exceptions import ComponentError
from .tracing import annotate
from .types import (
    Candidate,
    JudgeReport,
    Page,
    Placement,
    Product,
    RetrievalQuery,
    RetrievedProduct,
    ScoredProduct,
    Theme,
    UserContext,
)

if TYPE_CHECKING:
    from .catalog import Catalog
    from .taxonomy import KeywordTaxonomy

__all__ = [
    "GATE_LEVELS",
    "Component",
    "Gate",
    "Judge",
    "KeywordGenerator",
    "Ranker",
    "RelevanceFilter",
    "Retriever",
    "ThemeGenerator",
    "hydrate",
]


class Component:
    """Shared behaviour: a name for traces and an optional ``warm_up``."""

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def run_inline(self) -> bool:
        """True when the async twin may call the sync method directly on the event loop."""
        return False

    def warm_up(self) -> None:
        """Load models / build indexes ahead of the first request (optional)."""


class ThemeGenerator(Component, ABC):
    """Generates the ordered themes of a user's page (page level).

    Returns up to ``n`` themes, best first. Each theme's ``source`` says which
    kind of generator made it ("llm", "history", "static", "custom").
    """

    @abstractmethod
    def generate(self, user: UserContext, n: int) -> list[Theme]:
        """Themes for ``user``'s page, at most ``n``."""

    async def agenerate(self, user: UserContext, n: int) -> list[Theme]:
        if self.run_inline:
            return self.generate(user, n)
        return await asyncio.to_thread(self.generate, user, n)


class KeywordGenerator(Component, ABC):
    """Chooses retrieval keywords for one placement's theme.

    Every returned keyword must be a member of ``taxonomy`` (the closed
    vocabulary): the storefront drops any that are not, and records it.
    """

    @abstractmethod
    def generate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        """Up to ``n`` distinct keywords from ``taxonomy`` for ``theme``."""

    async def agenerate(
        self, theme: Theme, taxonomy: KeywordTaxonomy, user: UserContext, n: int
    ) -> list[str]:
        if self.run_inline:
            return self.generate(theme, taxonomy, user, n)
        return await asyncio.to_thread(self.generate, theme, taxonomy, user, n)


class Retriever(Component, ABC):
    """Keywords to candidate products.

    Returns at most ``query.k`` candidates with distinct product ids, best first,
    each tagged with the keyword that retrieved it; at most
    ``query.per_keyword_k`` per keyword when set; only from
    ``query.departments`` when non-empty; never an id in ``query.exclude_ids``.
    Unknown ids are dropped by the storefront (and traced), so a retriever
    backed by an external search service only needs to return ids.

    Optional fast path: :meth:`retrieve_products` returns the catalog's own
    products instead of ids. The default hydrates :meth:`retrieve` (ids looked up
    in the catalog, unknown ids dropped and reported); a retriever that holds the
    products anyway (an in-process index over the same catalog) overrides it to
    skip building a :class:`Candidate` per hit and looking each id up again. The
    storefront always calls :meth:`retrieve_products` / :meth:`aretrieve_products`,
    so a custom retriever gets the same fast path as the built-in BM25.
    """

    _own_retrieve_products: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Once per class: does it implement the product fast path itself?
        cls._own_retrieve_products = cls.retrieve_products is not Retriever.retrieve_products

    @abstractmethod
    def retrieve(self, query: RetrievalQuery) -> list[Candidate]:
        """Candidates for ``query``, best first."""

    async def aretrieve(self, query: RetrievalQuery) -> list[Candidate]:
        if self.run_inline:
            return self.retrieve(query)
        return await asyncio.to_thread(self.retrieve, query)

    def retrieve_products(self, query: RetrievalQuery, catalog: Catalog) -> list[RetrievedProduct]:
        """:meth:`retrieve` resolved to ``catalog``'s products, best first, same contract.

        Override it only to return the same results faster; the products must be
        ``catalog``'s own (``catalog[product.id] is product``).
        """
        return hydrate(self.retrieve(query), catalog, query)

    async def aretrieve_products(
        self, query: RetrievalQuery, catalog: Catalog
    ) -> list[RetrievedProduct]:
        """Async twin of :meth:`retrieve_products`.

        Runs an overridden :meth:`retrieve_products` (inline or in a thread, like the
        other twins); otherwise hydrates :meth:`aretrieve`, so a retriever with a
        native async ``aretrieve`` (an HTTP search service) stays native.
        """
        if not self._own_retrieve_products:
            return hydrate(await self.aretrieve(query), catalog, query)
        if self.run_inline:
            return self.retrieve_products(query, catalog)
        return await asyncio.to_thread(self.retrieve_products, query, catalog)


def hydrate(found: Any, catalog: Catalog, query: RetrievalQuery) -> list[RetrievedProduct]:
    """Resolve retrieved candidates to ``catalog``'s products.

    Drops ids not in the catalog (reported on the running trace stage as
    ``unknown_product_ids``, which the storefront turns into an ``unknown_product``
    event), repeated ids and ids in ``query.exclude_ids``. Raises
    :class:`~storefront_sdk.exceptions.ComponentError` when ``found`` is not a list.
    """
    if not isinstance(found, list):
        raise ComponentError("Retriever.retrieve must return list[Candidate]")
    out: list[RetrievedProduct] = []
    seen: set[str] = set(query.exclude_ids)
    unknown: list[str] = []
    get = catalog.get
    for c in found:
        product = get(c.product_id)
        if product is None:
            unknown.append(c.product_id)
            continue
        if product.id in seen:
            continue
        seen.add(product.id)
        out.append((product, c.keyword, float(c.score)))
    if unknown:
        annotate(unknown_product_ids=unknown)
    return out


class RelevanceFilter(Component, ABC):
    """Scores how well products fit a theme; keeps those at or above ``threshold``.

    ``score`` returns one number in [0, 1] per product, in input order.
    """

    threshold: float = 0.5

    @abstractmethod
    def score(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        """Relevance of each product to ``theme``, in [0, 1]."""

    async def ascore(self, theme: Theme, products: Sequence[Product]) -> list[float]:
        if self.run_inline:
            return self.score(theme, products)
        return await asyncio.to_thread(self.score, theme, products)


class Ranker(Component, ABC):
    """Orders a placement's candidates for a user (a traditional ranker).

    Returns the same products (no additions, no drops), each with
    ``rank_score`` set, sorted by it descending.
    """

    @abstractmethod
    def rank(
        self, user: UserContext, theme: Theme, candidates: Sequence[ScoredProduct]
    ) -> list[ScoredProduct]:
        """``candidates`` re-ordered for ``user``, with ``rank_score`` set."""

    async def arank(
        self, user: UserContext, theme: Theme, candidates: Sequence[ScoredProduct]
    ) -> list[ScoredProduct]:
        if self.run_inline:
            return self.rank(user, theme, candidates)
        return await asyncio.to_thread(self.rank, user, theme, candidates)


class Judge(Component, ABC):
    """Judges a built page offline at page, placement and product level."""

    @abstractmethod
    def judge(self, page: Page, user: UserContext) -> JudgeReport:
        """Verdicts on ``page`` as shown to ``user``."""

    async def ajudge(self, page: Page, user: UserContext) -> JudgeReport:
        return await asyncio.to_thread(self.judge, page, user)


GATE_LEVELS: tuple[str, ...] = ("theme", "keyword", "product", "placement")
"""What a gate can check, in cascade order: ``check_<level>``."""


class Gate(Component):
    """A cheap, synchronous quality or safety check in the page assembly path.

    Every check accepts (returns ``None``) unless overridden; a rejection is a
    reason code, ``"code"`` or ``"code:detail"``. The storefront drops what is
    rejected and records it (``page.trace.events_of("gate")``). A check that
    raises is recorded as a ``gate_failed`` event (gate name and error) and
    treated as a rejection: a broken gate fails closed, never open, and never
    escapes ``build()``.

    The storefront calls only the checks a gate class overrides
    (:attr:`checks`, computed once per class).
    """

    checks: ClassVar[frozenset[str]] = frozenset()
    """The levels of :data:`GATE_LEVELS` this gate class overrides (set per class)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("check_theme")
        if own is not None and _positional_params(own) == 3:  # self, theme, user
            cls.check_theme = _legacy_check_theme(own)  # type: ignore[method-assign]
        cls.checks = frozenset(
            level
            for level in GATE_LEVELS
            if getattr(cls, f"check_{level}") is not getattr(Gate, f"check_{level}")
        )

    def check_theme(
        self, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        """Reject a theme before any retrieval is spent on it.

        ``accepted``: the themes of the placements accepted so far plus the themes
        already admitted to the current round, so a near-duplicate check needs
        nothing else.
        """
        return None

    def check_keyword(self, keyword: str, theme: Theme, user: UserContext) -> str | None:
        """Reject one retrieval keyword before it is used (the placement keeps the others)."""
        return None

    def check_product(self, product: Product, theme: Theme, user: UserContext) -> str | None:
        """Reject one product of a placement (e.g. restricted category)."""
        return None

    def check_placement(
        self, placement: Placement, accepted: Sequence[Placement], user: UserContext
    ) -> str | None:
        """Reject an assembled placement, given the placements accepted before it."""
        return None


def _positional_params(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return -1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return -1
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _legacy_check_theme(fn: Callable[..., str | None]) -> Callable[..., str | None]:
    """Adapt a pre-0.x ``check_theme(self, theme, user)`` to the current contract."""
    warnings.warn(
        f"{fn.__qualname__}(theme, user) is deprecated: Gate.check_theme now also "
        "receives the accepted themes, check_theme(theme, user, accepted)",
        DeprecationWarning,
        stacklevel=4,
    )

    def check_theme(
        self: Gate, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        return fn(self, theme, user)

    check_theme.__doc__ = fn.__doc__
    check_theme.__qualname__ = fn.__qualname__
    return check_theme
