"""Collect teacher labels through the cascade, filter them (AIQA) and export them.

The teacher here is an OpenAI-compatible server sampled best-of-3: the in-repo stub, so
the example runs offline (point ``base_url`` at vLLM or another server for a real
teacher; ``BestOfNLLM(LocalLLM.default())`` is the teacher available everywhere). The
shoppers are seeded synthetic ones drawn from the demo catalog: the demo users themselves
are evaluation shoppers, never training data (``export_labels`` drops them).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from storefront_sdk import Catalog, OpenAICompatibleLLM
from storefront_sdk.distill import (
    BestOfNLLM,
    aiqa_filter,
    collect,
    export_labels,
    synthetic_shoppers,
)
from storefront_sdk.testing.stub_server import StubOpenAIServer


def main() -> None:
    catalog = Catalog.demo()
    with tempfile.TemporaryDirectory() as tmp, StubOpenAIServer(seed=0) as server:
        remote = OpenAICompatibleLLM(base_url=server.base_url, model="stub-teacher")
        teacher = BestOfNLLM(remote, n=3, temperature=0.8, seed=0)
        shoppers = synthetic_shoppers(catalog, 3, seed=0)
        checkpoint = Path(tmp) / "collect.jsonl"
        records = collect(catalog, teacher, shoppers, checkpoint)
        # Running it again costs nothing: shoppers already in the checkpoint are skipped.
        records = collect(catalog, teacher, shoppers, checkpoint)
        calls = sum(len(r.calls) for r in records)
        print(f"collected {len(records)} shoppers, {calls} teacher calls ({teacher.sampling})")

        labels, report = aiqa_filter(records, min_theme_yield=0.25)
        print(f"AIQA kept {report.kept} of {report.labels} labels: {report.kept_by_stage}")
        for reason, n in report.drop_reasons.items():
            print(f"  dropped {n:3d}  {reason}")

        exported = export_labels(labels, Path(tmp) / "sft", validation_fraction=0.34, seed=0)
        print(
            f"train.jsonl: {exported.train_examples} examples {exported.train_shoppers}; "
            f"validation.jsonl: {exported.validation_examples} {exported.validation_shoppers}"
        )


if __name__ == "__main__":
    main()
