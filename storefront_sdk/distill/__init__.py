"""Teacher-student distillation: collect teacher labels, filter them (AIQA), export them.

* :func:`collect` runs a teacher ``LLM`` through the real cascade and checkpoints one
  :class:`ShopperRecord` per shopper (resumable);
* :func:`aiqa_filter` keeps the labels the gates, retrieval and (optionally) a judge
  confirm, and says why each other label was dropped;
* :func:`export_labels` writes chat-format JSONL (OpenAI fine-tuning format), split by
  shopper and deduplicated.

Training a student and evaluating it are not built yet (see docs/distillation.md).
"""

from .aiqa import FilterReport, aiqa_filter, labels_of, read_labels, write_labels
from .collect import collect, read_checkpoint, shopper_record
from .errors import DistillError
from .export import ExportReport, chat_example, export_labels, split_shoppers
from .recorder import RecordingLLM, constraint_of
from .records import (
    GateVerdict,
    JudgeVerdict,
    Label,
    LLMCallRecord,
    OutputConstraint,
    ShopperRecord,
    ThemeOutcome,
)

__all__ = [
    "DistillError",
    "ExportReport",
    "FilterReport",
    "GateVerdict",
    "JudgeVerdict",
    "LLMCallRecord",
    "Label",
    "OutputConstraint",
    "RecordingLLM",
    "ShopperRecord",
    "ThemeOutcome",
    "aiqa_filter",
    "chat_example",
    "collect",
    "constraint_of",
    "export_labels",
    "labels_of",
    "read_checkpoint",
    "read_labels",
    "shopper_record",
    "split_shoppers",
    "write_labels",
]
