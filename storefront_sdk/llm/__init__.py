"""LLM backends: the protocol, an OpenAI-compatible HTTP client and local Outlines models."""

from .base import (
    LLM,
    ChatMessage,
    Choice,
    LLMResult,
    LLMUsage,
    MultiChoice,
    OutputSpec,
    Structured,
    as_output,
)
from .cached import CachingLLM
from .openai import OpenAICompatibleLLM
from .outlines import LocalLLM, OutlinesLLM  # cheap: outlines/llama_cpp load on first use

__all__ = [
    "LLM",
    "CachingLLM",
    "ChatMessage",
    "Choice",
    "LLMResult",
    "LLMUsage",
    "LocalLLM",
    "MultiChoice",
    "OpenAICompatibleLLM",
    "OutlinesLLM",
    "OutputSpec",
    "Structured",
    "as_output",
]
