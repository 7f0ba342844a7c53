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

__all__ = [
    "LLM",
    "ChatMessage",
    "Choice",
    "LLMResult",
    "LLMUsage",
    "MultiChoice",
    "OutputSpec",
    "Structured",
    "as_output",
]
