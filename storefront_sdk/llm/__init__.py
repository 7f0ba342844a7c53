"""LLM backends: the protocol, an OpenAI-compatible HTTP client and local Outlines models."""

from .adapter import AdapterInfo, AdapterManifest, read_adapter, write_lora_gguf
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
    "AdapterInfo",
    "AdapterManifest",
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
    "read_adapter",
    "write_lora_gguf",
]
