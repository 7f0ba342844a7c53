"""Collect teacher labels through the cascade, filter them (AIQA) and export them.

The teacher here is an OpenAI-compatible server: the in-repo stub, so the example runs
offline (point ``base_url`` at vLLM or another server for a real teacher). The demo users
are used for illustration only: they are evaluation shoppers, never training data.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from storefront_sdk import Catalog, OpenAICompatibleLLM
from storefront_sdk.demo import demo_users
from storefront_sdk.distill import aiqa_filter, collect, export_labels
from storefront_sdk.testing.stub_server import StubOpenAIServer


def main() -> None:
    catalog = Catalog.demo()
    with tempfile.TemporaryDirectory() as tmp, StubOpenAIServer(seed=0) as server:
        teacher = OpenAICompatibleLLM(base_url=server.base_url, model="stub-teacher")
        checkpoint = Path(tmp) / "collect.jsonl"
        records = collect(catalog, teacher, demo_users()[:3], checkpoint)
        # Running it again costs nothing: shoppers already in the checkpoint are skipped.
        records = collect(catalog, teacher, demo_users()[:3], checkpoint)
        calls = sum(len(r.calls) for r in records)
        print(f"collected {len(records)} shoppers, {calls} teacher calls")

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
