"""Wiring of a :class:`~storefront_sdk.Storefront`: which components run, and their fallbacks.

Every default and every fallback is chosen here, explicitly, from what the caller
passed; nothing downstream inspects component classes:

* ``llm``: ``None`` (the baselines), ``"auto"`` (the local model when the ``[local]``
  extra is installed, else the baselines) or an :class:`~storefront_sdk.llm.LLM`.
* themes: the model's generator when there is a model, else the history baseline.
  Fallbacks: the history baseline, then the static one; a fallback that *is* the
  primary (the default history baseline when there is no model) is left out.
* keywords: the model's generator, else the taxonomy baseline. The fallback is the
  taxonomy baseline -- the very same object when it is also the primary, so a
  failing baseline is not retried with itself.
* relevance filter: the lexical filter, which is also the fallback (one TF-IDF index)
  unless the caller passed another filter; then a lexical filter is the fallback.
* ``cache``: ``"auto"`` caches generations on disk when a model is used.
* ``embedder`` (the semantic layer): ``"auto"`` (default) uses the in-process
  sentence embedder when the ``embed`` extra is installed, else none; ``None`` turns
  it off; an :class:`~storefront_sdk.embeddings.Embedder` uses that one. With an
  embedder, the storefront's default taxonomy shortlists keywords fused (lexical +
  semantic) and :class:`~storefront_sdk.filtering.EmbeddingDuplicateGate` joins the
  default gates; without one, the shortlist is lexical. Either way the page trace
  says which (event ``semantic``).

``Wiring.baselines`` lists the components that never call a model (the fallbacks
and the defaults chosen without one): once a page's deadline has passed, the cascade
calls only those.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .catalog import Catalog
from .exceptions import ConfigurationError
from .filtering.gates import default_gates
from .filtering.lexical import LexicalRelevanceFilter
from .generation.history import HistoryThemeGenerator
from .generation.static import StaticThemeGenerator
from .generation.taxonomy_keywords import TaxonomyKeywordGenerator
from .interfaces import (
    Component,
    Gate,
    KeywordGenerator,
    Ranker,
    RelevanceFilter,
    Retriever,
    ThemeGenerator,
)
from .ranking.popularity import FusionRanker
from .retrieval.bm25 import BM25Retriever

if TYPE_CHECKING:
    from .cache import BaseGenerationCache
    from .embeddings import Embedder
    from .llm.base import LLM

__all__ = ["Wiring", "expect", "resolve_cache", "resolve_embedder", "resolve_llm", "wire"]


@dataclass(frozen=True)
class Wiring:
    """The components of one storefront, primaries and fallbacks, all chosen."""

    llm: LLM | None
    llm_reason: str
    cache: BaseGenerationCache | None
    theme_generator: ThemeGenerator
    keyword_generator: KeywordGenerator
    retriever: Retriever
    relevance_filter: RelevanceFilter
    ranker: Ranker
    gates: list[Gate]
    fallback_theme_generators: list[ThemeGenerator]
    fallback_keyword_generator: KeywordGenerator
    fallback_filter: RelevanceFilter
    baselines: frozenset[int]
    """``id()`` of every component that never calls a model."""
    embedder: Embedder | None = None
    """The semantic layer's embedder (None: lexical shortlist, no embedding gate)."""
    semantic_reason: str = "lexical keyword shortlist (embedder=None)"
    """One line for the trace: whether the semantic layer is on, and why."""


def wire(
    catalog: Catalog,
    *,
    llm: LLM | Literal["auto"] | None,
    cache: BaseGenerationCache | Literal["auto"] | None,
    theme_generator: ThemeGenerator | None,
    keyword_generator: KeywordGenerator | None,
    retriever: Retriever | None,
    relevance_filter: RelevanceFilter | None,
    ranker: Ranker | None,
    gates: Sequence[Gate] | None,
    fallback_theme_generators: Sequence[ThemeGenerator] | None,
    page_shape: tuple[int, int] = (8, 20),
    embedder: Embedder | Literal["auto"] | None = None,
) -> Wiring:
    """Choose every component (see the module docstring for the rules).

    ``page_shape`` is ``(placements, products per placement)``: the history
    baseline lays its page out to it.
    """
    model, reason = resolve_llm(llm)
    emb, semantic_reason = resolve_embedder(embedder)
    gen_cache = resolve_cache(cache, model)
    # One history baseline serves as primary (without a model), as the model
    # generator's "Buy it again" source and as fallback: its per-catalog popular
    # themes are computed once.
    history = HistoryThemeGenerator(
        catalog, placements=page_shape[0], products_per_theme=page_shape[1]
    )
    static = StaticThemeGenerator()
    taxonomy_keywords = TaxonomyKeywordGenerator()
    lexical = LexicalRelevanceFilter(catalog)
    baselines: list[Component] = [history, static, taxonomy_keywords, lexical]

    if theme_generator is None:
        if model is not None:
            theme_generator = _llm_theme_generator(model, catalog, gen_cache, history)
        else:
            theme_generator = history
    if keyword_generator is None:
        if model is not None:
            keyword_generator = _llm_keyword_generator(model, gen_cache)
        else:
            keyword_generator = taxonomy_keywords
    if relevance_filter is None:
        relevance_filter = lexical
    if retriever is None:
        retriever = BM25Retriever(catalog)
        baselines.append(retriever)
    if ranker is None:
        ranker = FusionRanker()
        baselines.append(ranker)
    if fallback_theme_generators is None:
        fallback_theme_generators = [g for g in (history, static) if g is not theme_generator]
    else:
        baselines.extend(fallback_theme_generators)

    if gates is None:
        gates = default_gates()
        if emb is not None:
            from .filtering.embedding_gate import EmbeddingDuplicateGate

            gates.append(EmbeddingDuplicateGate(emb))
    checked_gates = [expect(g, Gate, "gates[]") for g in gates]
    return Wiring(
        llm=model,
        llm_reason=reason,
        cache=gen_cache,
        theme_generator=expect(theme_generator, ThemeGenerator, "theme_generator"),
        keyword_generator=expect(keyword_generator, KeywordGenerator, "keyword_generator"),
        retriever=expect(retriever, Retriever, "retriever"),
        relevance_filter=expect(relevance_filter, RelevanceFilter, "relevance_filter"),
        ranker=expect(ranker, Ranker, "ranker"),
        gates=checked_gates,
        fallback_theme_generators=[
            expect(g, ThemeGenerator, "fallback_theme_generators[]")
            for g in fallback_theme_generators
        ],
        fallback_keyword_generator=taxonomy_keywords,
        fallback_filter=lexical,
        baselines=frozenset(id(c) for c in baselines),
        embedder=emb,
        semantic_reason=semantic_reason,
    )


def expect(obj: Any, kind: type, what: str) -> Any:
    """``obj`` if it fulfils the contract ``kind``, else a ConfigurationError naming ``what``."""
    if not isinstance(obj, kind):
        raise ConfigurationError(f"{what} must be a {kind.__name__}, got {type(obj).__name__}")
    return obj


def resolve_llm(llm: LLM | Literal["auto"] | None) -> tuple[LLM | None, str]:
    """The model to use (or None) and a one-line reason for the trace."""
    from .llm.base import LLM

    if llm is None:
        return None, "baseline generators (llm=None)"
    if isinstance(llm, LLM):
        return llm, f"generative: {type(llm).__name__} {llm.model_id}"
    if isinstance(llm, str) and llm == "auto":
        try:
            from .llm.outlines import LocalLLM
        except ImportError:
            return None, "baseline generators: local model support not importable"
        if LocalLLM.available():
            local = shared_local_llm()
            return local, f"generative: local model {local.model_id} (llm='auto')"
        return None, "baseline generators: the [local] extra is not installed (llm='auto')"
    raise ConfigurationError(f"llm must be None, 'auto' or an LLM instance, got {llm!r}")


@functools.lru_cache(maxsize=1)
def shared_local_llm() -> LLM:
    """One default local model per process: Storefronts built with llm="auto" share its
    weights, its llama.cpp context lock and its compiled-constraint cache."""
    from .llm.outlines import LocalLLM

    local: LLM = LocalLLM.default()
    return local


def resolve_embedder(
    embedder: Embedder | Literal["auto"] | None,
) -> tuple[Embedder | None, str]:
    """The semantic layer's embedder (or None) and a one-line reason for the trace."""
    from .embeddings import Embedder, LocalEmbedder, default_embedder

    uses = "fused keyword shortlist, embedding near-duplicate gate"
    if embedder is None:
        return None, "semantic layer off (embedder=None): lexical keyword shortlist"
    if isinstance(embedder, Embedder):
        return embedder, f"semantic layer: {embedder.model_id} ({uses})"
    if isinstance(embedder, str) and embedder == "auto":
        found = default_embedder() if LocalEmbedder.available() else None
        if found is None:
            return None, (
                "semantic layer unavailable: the embed extra is not installed "
                "(embedder='auto'); lexical keyword shortlist"
            )
        return found, f"semantic layer: {found.model_id} ({uses}; embedder='auto')"
    raise ConfigurationError(
        f"embedder must be None, 'auto' or an Embedder instance, got {embedder!r}"
    )


def resolve_cache(
    cache: BaseGenerationCache | Literal["auto"] | None, llm: LLM | None
) -> BaseGenerationCache | None:
    """``"auto"``: an on-disk generation cache when a model is used, else none."""
    if cache is None:
        return None
    if isinstance(cache, str):
        if cache != "auto":
            raise ConfigurationError(f"cache must be None, 'auto' or a cache, got {cache!r}")
        if llm is None:
            return None
        from .cache import GenerationCache

        return GenerationCache()
    return cache


def _llm_theme_generator(
    llm: LLM, catalog: Catalog, cache: BaseGenerationCache | None, baseline: ThemeGenerator
) -> ThemeGenerator:
    from .generation.llm_themes import LLMThemeGenerator

    return LLMThemeGenerator(llm, catalog, cache=cache, baseline=baseline)


def _llm_keyword_generator(llm: LLM, cache: BaseGenerationCache | None) -> KeywordGenerator:
    from .generation.llm_keywords import LLMKeywordGenerator

    return LLMKeywordGenerator(llm, cache=cache)
