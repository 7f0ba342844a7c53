"""Relevance filters and quality / safety gates (AIQA)."""

from .embedding_gate import EmbeddingDuplicateGate
from .gates import (
    REASON_CODES,
    Gate,
    MerchandisingGate,
    NearDuplicateGate,
    SafetyGate,
    TitleQualityGate,
    default_gates,
    reason_code,
)
from .lexical import LexicalRelevanceFilter
from .safety import SafetyPolicy
from .scorer import HttpScorer, ScorerRelevanceFilter
from .trainable import TrainableRelevanceFilter, aisle_themes, weak_labels

__all__ = [
    "REASON_CODES",
    "EmbeddingDuplicateGate",
    "Gate",
    "HttpScorer",
    "LexicalRelevanceFilter",
    "MerchandisingGate",
    "NearDuplicateGate",
    "SafetyGate",
    "SafetyPolicy",
    "ScorerRelevanceFilter",
    "TitleQualityGate",
    "TrainableRelevanceFilter",
    "aisle_themes",
    "default_gates",
    "reason_code",
    "weak_labels",
]
