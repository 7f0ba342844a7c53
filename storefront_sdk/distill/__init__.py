"""Teacher-student distillation: collect teacher labels, filter them (AIQA), export them.

* :func:`collect` runs a teacher ``LLM`` through the real cascade and checkpoints one
  :class:`ShopperRecord` per shopper (resumable);
* :func:`aiqa_filter` keeps the labels the gates, retrieval and (optionally) a judge
  confirm, and says why each other label was dropped;
* :func:`export_labels` writes chat-format JSONL (OpenAI fine-tuning format), split by
  shopper and deduplicated, never with the evaluation shoppers (:func:`evaluation_shoppers`);
* :class:`BestOfNLLM` is the teacher available everywhere (the local model sampled N
  times, the best candidate kept); :func:`synthetic_shoppers` draws seeded shoppers from
  a catalog to label more prompts;
* :func:`train_student` LoRA-trains SmolLM2-135M on that JSONL (the ``train`` extra) and
  writes a llama.cpp LoRA adapter that ``LocalLLM(adapter_path=...)`` runs
  (docs/distillation-training.md).
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
from .train import TrainReport, read_chat_jsonl, train_student

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
    "TrainReport",
    "aiqa_filter",
    "chat_example",
    "collect",
    "constraint_of",
    "evaluation_shoppers",
    "export_labels",
    "labels_of",
    "read_chat_jsonl",
    "read_checkpoint",
    "read_labels",
    "score_candidates",
    "shopper_record",
    "split_shoppers",
    "synthetic_shoppers",
    "train_student",
    "write_labels",
]
