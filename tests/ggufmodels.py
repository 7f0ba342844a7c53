"""Small GGUF files for tests: random LoRA adapters for SmolLM2-135M (numpy only) and a
float32 two-block copy of the packaged model (so that llama.cpp's quantized matmuls do not
drown a comparison of logits)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from storefront_sdk.llm.adapter import write_lora_gguf

# SmolLM2-135M's shapes: a LoRA for it can be made without torch.
HIDDEN, FFN, N_HEAD, N_KV, N_LAYERS = 576, 1536, 9, 3, 30


def base_model_path() -> Path:
    from storefront_sdk.llm.outlines import _smollm2_path

    return _smollm2_path()


def random_adapter(
    path: Path, *, rank: int = 2, layers: int = N_LAYERS, seed: int = 0, scale: float = 0.01
) -> Path:
    """A valid adapter for SmolLM2's q/v/down projections (numpy only)."""
    rng = np.random.default_rng(seed)
    shapes = {"attn_q": (HIDDEN, HIDDEN), "attn_v": (HIDDEN, 192), "ffn_down": (FFN, HIDDEN)}
    tensors = {}
    for i in range(layers):
        for name, (inp, out) in shapes.items():
            a = rng.normal(0, scale, (rank, inp)).astype(np.float32)
            b = rng.normal(0, scale, (out, rank)).astype(np.float32)
            tensors[f"blk.{i}.{name}.weight"] = (a, b)
    return write_lora_gguf(path, tensors, alpha=2.0 * rank)


def write_small_f32_model(src: Path, dst: Path, n_layers: int = 2) -> Path:
    """The first ``n_layers`` blocks of a GGUF model, dequantized (float32; the embedding
    float16), with all of its metadata (tokenizer, chat template)."""
    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(dst), arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        vtype = field.types[0]
        value = n_layers if name == f"{arch}.block_count" else field.contents()
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, value, vtype, sub_type=sub)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in reader.tensors:
        if t.name.startswith("blk.") and int(t.name.split(".")[1]) >= n_layers:
            continue
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if t.name == "token_embd.weight":
            data = data.astype(np.float16)
        writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst
