"""Teacher-student distillation: collect teacher labels, filter them (AIQA), export them.

* :func:`collect` runs a teacher ``LLM`` through the real cascade and checkpoints one
  :class:`ShopperRecord` per shopper (resumable);
* :func:`aiqa_filter` keeps the labels the gates, retrieval and (optionally) a judge
  confirm, and says why each other label was dropped;
* :func:`export_labels` writes chat-format JSONL (OpenAI fine-tuning format), split by
  shopper and deduplicated, never with the evaluation shoppers (:func:`evaluation_shoppers`);
* :class:`BestOfNLLM` is the teacher available everywhere (the local model sampled N
  times, the best candidate kept); :func:`synthetic_shoppers` draws seeded shoppers from
  a catalog to label more prompts.

Training a student and evaluating it are not built yet (see docs/distillation.md).
"""

from .aiqa import FilterReport, aiqa_filter, labels_of, read_labels, write_labels
from .collect import collect, read_checkpoint, shopper_record
from .errors import DistillError
from .export import ExportReport, chat_example, export_labels, split_shoppers
from .heldout import EVALUATION_INSTACART_USERS, evaluation_shoppers
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
from .synthetic import synthetic_shoppers
from .teacher import BestOfNLLM, JudgeScorer, score_candidates

__all__ = [
    "EVALUATION_INSTACART_USERS",
    "BestOfNLLM",
    "DistillError",
    "ExportReport",
    "FilterReport",
    "GateVerdict",
    "JudgeScorer",
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
    "evaluation_shoppers",
    "export_labels",
    "labels_of",
    "read_checkpoint",
    "read_labels",
    "score_candidates",
    "shopper_record",
    "split_shoppers",
    "synthetic_shoppers",
    "write_labels",
]
