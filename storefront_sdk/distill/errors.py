"""The error raised for bad distillation inputs (checkpoints, label files, empty sets)."""

from __future__ import annotations

from ..exceptions import ConfigurationError

__all__ = ["DistillError"]


class DistillError(ConfigurationError):
    """Invalid distillation input: a malformed checkpoint or label line, an empty label set,
    or a keyword label outside the taxonomy. The message names the file and line when known."""
