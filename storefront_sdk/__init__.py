"""storefront_sdk: personalized storefront pages from a cascade of generative models.

Public API, re-exported here; modules inside the package never import from here.
"""

from .cache import BaseGenerationCache, CacheError, CacheStats, GenerationCache, UserFingerprint
from .catalog import Catalog
from .demo import demo_user, demo_users
from .evaluation import (
    EvalCase,
    EvalReport,
    HeuristicJudge,
    LLMJudge,
    evaluate,
    load_instacart_users,
)
from .exceptions import (
    BackendError,
    BackendTimeoutError,
    CatalogError,
    ComponentError,
    ConfigurationError,
    FatalBackendError,
    OutputValidationError,
    RetryableBackendError,
    StorefrontError,
)
from .filtering import (
    Gate,
    LexicalRelevanceFilter,
    MerchandisingGate,
    NearDuplicateGate,
    SafetyGate,
    SafetyPolicy,
    ScorerRelevanceFilter,
    TitleQualityGate,
    TrainableRelevanceFilter,
    default_gates,
)
from .generation.history import HistoryThemeGenerator
from .generation.llm_keywords import LLMKeywordGenerator
from .generation.llm_themes import LLMThemeGenerator
from .generation.rules import MerchandisingRules
from .generation.static import StaticThemeGenerator
from .generation.taxonomy_keywords import TaxonomyKeywordGenerator
from .interfaces import Judge, KeywordGenerator, Ranker, RelevanceFilter, Retriever, ThemeGenerator
from .llm import LLM, CachingLLM, LocalLLM, OpenAICompatibleLLM, OutlinesLLM
from .ranking import FusionRanker, PopularityRanker
from .render import render_page_html, render_report_html
from .retrieval.bm25 import BM25Retriever
from .storefront import Storefront, StorefrontConfig
from .taxonomy import KeywordTaxonomy
from .types import (
    Candidate,
    Interaction,
    JudgeReport,
    Page,
    Placement,
    Product,
    RetrievalQuery,
    RetrievedProduct,
    ScoredProduct,
    StageRecord,
    Theme,
    Trace,
    TraceEvent,
    UserContext,
    Verdict,
)

__version__ = "0.1.0"

__all__ = [
    "LLM",
    "BM25Retriever",
    "BackendError",
    "BackendTimeoutError",
    "BaseGenerationCache",
    "CacheError",
    "CacheStats",
    "CachingLLM",
    "Candidate",
    "Catalog",
    "CatalogError",
    "ComponentError",
    "ConfigurationError",
    "EvalCase",
    "EvalReport",
    "FatalBackendError",
    "FusionRanker",
    "Gate",
    "GenerationCache",
    "HeuristicJudge",
    "HistoryThemeGenerator",
    "Interaction",
    "Judge",
    "JudgeReport",
    "KeywordGenerator",
    "KeywordTaxonomy",
    "LLMJudge",
    "LLMKeywordGenerator",
    "LLMThemeGenerator",
    "LexicalRelevanceFilter",
    "LocalLLM",
    "MerchandisingGate",
    "MerchandisingRules",
    "NearDuplicateGate",
    "OpenAICompatibleLLM",
    "OutlinesLLM",
    "OutputValidationError",
    "Page",
    "Placement",
    "PopularityRanker",
    "Product",
    "Ranker",
    "RelevanceFilter",
    "RetrievalQuery",
    "RetrievedProduct",
    "Retriever",
    "RetryableBackendError",
    "SafetyGate",
    "SafetyPolicy",
    "ScoredProduct",
    "ScorerRelevanceFilter",
    "StageRecord",
    "StaticThemeGenerator",
    "Storefront",
    "StorefrontConfig",
    "StorefrontError",
    "TaxonomyKeywordGenerator",
    "Theme",
    "ThemeGenerator",
    "TitleQualityGate",
    "Trace",
    "TraceEvent",
    "TrainableRelevanceFilter",
    "UserContext",
    "UserFingerprint",
    "Verdict",
    "__version__",
    "default_gates",
    "demo_user",
    "demo_users",
    "evaluate",
    "load_instacart_users",
    "render_page_html",
    "render_report_html",
]
