"""export: labels as chat-format JSON Lines, split by shopper, deduplicated.

Each line is ``{"messages": [{"role": "system", ...}, {"role": "user", ...},
{"role": "assistant", "content": <teacher output>}]}``: the OpenAI fine-tuning format,
which Hugging Face ``datasets.load_dataset("json", ...)`` and TRL's ``SFTTrainer`` read
as is. Shoppers (not examples) are split into train and validation with a seeded
shuffle, so no shopper's prompts leak across the split; identical examples are written
once (a validation example equal to a train example is dropped too).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Collection, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .errors import DistillError
from .records import Label

__all__ = ["ExportReport", "chat_example", "export_labels", "split_shoppers"]


class ExportReport(BaseModel):
    """What was written where."""

    model_config = ConfigDict(extra="forbid")

    train_path: str
    validation_path: str
    train_examples: int
    validation_examples: int
    train_shoppers: list[str]
    validation_shoppers: list[str]
    duplicates_dropped: int
    held_out_dropped: int = 0
    held_out_shoppers: list[str] = []
    filtered: bool
    seed: int


def chat_example(label: Label) -> dict[str, list[dict[str, str]]]:
    """One label as an OpenAI chat fine-tuning example."""
    messages = [{"role": m.role, "content": m.content} for m in label.messages]
    messages.append({"role": "assistant", "content": label.output})
    return {"messages": messages}


def split_shoppers(
    user_ids: Sequence[str], *, validation_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """A seeded shopper split: ``(train, validation)``; validation gets at least one shopper
    when there are two or more and the fraction is positive."""
    if not 0.0 <= validation_fraction < 1.0:
        raise DistillError(f"validation_fraction must be within [0, 1), got {validation_fraction}")
    users = sorted(set(user_ids))
    random.Random(seed).shuffle(users)
    n_val = round(len(users) * validation_fraction)
    if validation_fraction > 0 and n_val == 0 and len(users) >= 2:
        n_val = 1
    return sorted(users[n_val:]), sorted(users[:n_val])


def export_labels(
    labels: Sequence[Label],
    out_dir: str | Path,
    *,
    filtered: bool = True,
    validation_fraction: float = 0.2,
    seed: int = 0,
    exclude: Collection[str] | None = None,
) -> ExportReport:
    """Write ``train.jsonl`` and ``validation.jsonl`` under ``out_dir``.

    ``filtered=True`` exports the kept labels only; ``False`` every label (the
    unfiltered arm of the ablation). Labels of the shoppers in ``exclude`` are dropped
    (default: :func:`~storefront_sdk.distill.heldout.evaluation_shoppers`, the Instacart
    users 31-40 and the demo users; pass ``()`` to keep every shopper) and counted in
    the report. Raises :class:`DistillError` when nothing is left.
    """
    from .heldout import evaluation_shoppers

    banned = evaluation_shoppers() if exclude is None else frozenset(exclude)
    if not labels:
        raise DistillError("no labels to export: the label set is empty")
    held = [lb for lb in labels if lb.user_id in banned]
    if held and len(held) == len(labels):
        raise DistillError(
            f"no labels to export: all {len(labels)} are from shoppers held out for "
            f"evaluation ({', '.join(sorted({lb.user_id for lb in held}))})"
        )
    chosen = [lb for lb in labels if (lb.kept or not filtered) and lb.user_id not in banned]
    if not chosen:
        what = "kept " if filtered else ""
        raise DistillError(
            f"no {what}labels to export ({len(labels)} labels in all); "
            "loosen the filter or collect more shoppers"
        )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DistillError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    train_users, val_users = split_shoppers(
        [lb.user_id for lb in chosen], validation_fraction=validation_fraction, seed=seed
    )
    val_set = set(val_users)
    seen: set[str] = set()
    duplicates = 0
    rows: dict[str, list[str]] = {"train": [], "validation": []}
    # Train first, so a validation example that repeats a train example is the one dropped.
    ordered = sorted(chosen, key=lambda lb: (lb.user_id in val_set, lb.user_id, lb.call_index))
    for label in ordered:
        line = json.dumps(chat_example(label), ensure_ascii=False, sort_keys=True)
        digest = hashlib.sha256(line.encode()).hexdigest()
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        rows["validation" if label.user_id in val_set else "train"].append(line)
    paths = {}
    for split, lines in rows.items():
        paths[split] = out / f"{split}.jsonl"
        paths[split].write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    report = ExportReport(
        train_path=str(paths["train"]),
        validation_path=str(paths["validation"]),
        train_examples=len(rows["train"]),
        validation_examples=len(rows["validation"]),
        train_shoppers=train_users,
        validation_shoppers=val_users,
        duplicates_dropped=duplicates,
        held_out_dropped=len(held),
        held_out_shoppers=sorted({lb.user_id for lb in held}),
        filtered=filtered,
        seed=seed,
    )
    (out / "export.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return report
