"""storefront_sdk: personalized storefront pages from a cascade of generative models.

The top level holds what a user building pages and an author of a component or
LLM backend need; everything else is importable from its module (the list, with
a reason for each name, is in ``docs/api.md``). Modules inside the package never
import from here.
"""

from .cache import BaseGenerationCache, CacheError, GenerationCache
from .catalog import Catalog
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
from .filtering import Gate, LexicalRelevanceFilter, default_gates
from .generation.history import HistoryThemeGenerator
from .generation.llm_keywords import LLMKeywordGenerator
from .generation.llm_themes import LLMThemeGenerator
from .generation.rules import MerchandisingRules
from .generation.static import StaticThemeGenerator
from .generation.taxonomy_keywords import TaxonomyKeywordGenerator
from .interfaces import Judge, KeywordGenerator, Ranker, RelevanceFilter, Retriever, ThemeGenerator
from .llm import (
    LLM,
    CachingLLM,
    ChatMessage,
    Choice,
    LLMResult,
    LLMUsage,
    LocalLLM,
    MultiChoice,
    OpenAICompatibleLLM,
    OutputSpec,
    Structured,
)
from .ranking import FusionRanker, PopularityRanker
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
    Theme,
    UserContext,
    Verdict,
)

__version__ = "0.1.0"

__all__ = [  # grouped, with a reason for each, in docs/api.md
    "LLM",
    "BM25Retriever",
    "BackendError",
    "BackendTimeoutError",
    "BaseGenerationCache",
    "CacheError",
    "CachingLLM",
    "Candidate",
    "Catalog",
    "CatalogError",
    "ChatMessage",
    "Choice",
    "ComponentError",
    "ConfigurationError",
    "FatalBackendError",
    "FusionRanker",
    "Gate",
    "GenerationCache",
    "HistoryThemeGenerator",
    "Interaction",
    "Judge",
    "JudgeReport",
    "KeywordGenerator",
    "KeywordTaxonomy",
    "LLMKeywordGenerator",
    "LLMResult",
    "LLMThemeGenerator",
    "LLMUsage",
    "LexicalRelevanceFilter",
    "LocalLLM",
    "MerchandisingGate",
    "MerchandisingRules",
    "MultiChoice",
    "OpenAICompatibleLLM",
    "OutputSpec",
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
    "ScoredProduct",
    "StaticThemeGenerator",
    "Storefront",
    "StorefrontConfig",
    "StorefrontError",
    "Structured",
    "TaxonomyKeywordGenerator",
    "Theme",
    "ThemeGenerator",
    "UserContext",
    "Verdict",
    "__version__",
    "default_gates",
]
