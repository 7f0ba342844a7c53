"""llama.cpp LoRA adapters: the GGUF file format, its manifest, and the adapter shipped here.

A LoRA adapter for llama.cpp is a GGUF file with ``general.type = "adapter"``,
``adapter.type = "lora"``, ``adapter.lora.alpha`` and, for every adapted weight ``W``
(``blk.N.attn_q.weight`` ...), two tensors ``W.lora_a`` (``ne = [in, rank]``) and
``W.lora_b`` (``ne = [rank, out]``): the layout llama.cpp's ``convert_lora_to_gguf.py``
writes and ``llama_adapter_lora_init`` checks. llama.cpp adds
``scale * alpha / rank * B @ A`` to ``W``: the same update as PEFT's LoRA.

* :func:`write_lora_gguf` writes one (with ``gguf.GGUFWriter``);
* :func:`peft_to_gguf_tensors` maps a PEFT state dict (Hugging Face names) to GGUF names,
  re-permuting the rows of ``lora_b`` of the q/k projections (see below);
* :func:`read_adapter` validates a file *before* llama.cpp sees it: llama.cpp's loader
  may abort the whole process on a damaged file, this raises a
  :class:`~storefront_sdk.exceptions.ConfigurationError` naming the file instead;
* :func:`shipped_adapter` is the adapter that ships in this package (if any) with its
  :class:`AdapterManifest`.

Why the permutation: llama.cpp's GGUF conversion of Llama models permutes the rows of
``q_proj`` and ``k_proj`` (its rotary embedding pairs dimensions differently from
Hugging Face's), and ``transformers`` un-permutes them when it loads a GGUF. A LoRA
trained in ``transformers`` on that model therefore has its ``B`` rows in Hugging Face
order; ``convert_lora_to_gguf.py`` permutes them back, and so does this module.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..exceptions import ConfigurationError

__all__ = [
    "SHIPPED_ADAPTER",
    "SHIPPED_MANIFEST",
    "AdapterInfo",
    "AdapterManifest",
    "file_sha256",
    "peft_to_gguf_tensors",
    "permute_rows_for_rope",
    "read_adapter",
    "read_manifest",
    "shipped_adapter",
    "write_lora_gguf",
]

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
SHIPPED_ADAPTER = MODELS_DIR / "smollm2-storefront-lora.gguf"
"""The distilled student's adapter, shipped as package data (absent in a source tree
where it was never built)."""
SHIPPED_MANIFEST = MODELS_DIR / "manifest.json"

_INSTALL_GGUF = 'pip install gguf (part of "storefront-sdk[local]")'
_TENSOR = re.compile(r"^(?P<base>.+\.weight)\.lora_(?P<ab>[ab])$")


class AdapterInfo(BaseModel):
    """What :func:`read_adapter` found in a valid adapter file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    architecture: str
    alpha: float
    rank: int
    weights: list[str] = Field(description="the adapted base weights, GGUF names, sorted")
    sha256: str
    size_bytes: int


class AdapterManifest(BaseModel):
    """``manifest.json`` beside an adapter: how it was made, from what, and how well it did.

    Written by :func:`storefront_sdk.distill.train_student`; the shipped one also carries
    the evaluation figures (``evaluation``) and the data's provenance (``data``)."""

    model_config = ConfigDict(extra="forbid")

    format: int = 1
    name: str
    adapter_file: str
    adapter_sha256: str
    base_model: dict[str, str] = Field(
        description="id, distribution, version and file of the base model"
    )
    lora: dict[str, Any] = Field(description="rank, alpha, dropout, target modules")
    training: dict[str, Any] = Field(description="the training arguments, seed included")
    data: dict[str, Any] = Field(description="files, sha256, example counts, provenance")
    results: dict[str, Any] = Field(description="losses, steps, tokens, wall time, device")
    versions: dict[str, str] = Field(description="torch, transformers, peft, gguf, ...")
    evaluation: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _gguf() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise ConfigurationError(
            f"LoRA adapters need the gguf package ({exc}): {_INSTALL_GGUF}"
        ) from exc
    return gguf


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except Exception:
        return None


def read_adapter(
    path: str | Path, *, base_model: str | Path | None = None, check_values: bool = True
) -> AdapterInfo:
    """Validate a llama.cpp LoRA adapter file; :class:`ConfigurationError` naming it if bad.

    Checks: a readable GGUF (not truncated), ``general.type = adapter``,
    ``adapter.type = lora``, an ``adapter.lora.alpha``, paired ``lora_a``/``lora_b``
    tensors of one rank with llama.cpp's layout, finite values (``check_values``), and,
    with ``base_model`` (a GGUF model file), the architecture and every adapted weight's
    shape against that model.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigurationError(f"LoRA adapter {p}: no such file")
    gguf = _gguf()
    try:
        reader = gguf.GGUFReader(str(p))
    except Exception as exc:
        raise ConfigurationError(
            f"LoRA adapter {p}: not a readable GGUF file (truncated or corrupt?): "
            f"{type(exc).__name__}: {exc}"
        ) from None

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(f"LoRA adapter {p}: {why}")

    if _field(reader, "general.type") != "adapter":
        raise bad(f"general.type is {_field(reader, 'general.type')!r}, expected 'adapter'")
    if _field(reader, "adapter.type") != "lora":
        raise bad(f"adapter.type is {_field(reader, 'adapter.type')!r}, expected 'lora'")
    alpha = _field(reader, "adapter.lora.alpha")
    if not isinstance(alpha, (int, float)) or not np.isfinite(alpha):
        raise bad(f"adapter.lora.alpha is missing or not a number ({alpha!r})")
    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str) or not arch:
        raise bad("general.architecture is missing")
    pairs: dict[str, dict[str, Any]] = {}
    for t in reader.tensors:
        m = _TENSOR.match(t.name)
        if m is None:
            raise bad(f"unexpected tensor {t.name!r} (expected <weight>.lora_a / .lora_b)")
        pairs.setdefault(m["base"], {})[m["ab"]] = t
    if not pairs:
        raise bad("contains no LoRA tensors")
    ranks: set[int] = set()
    for base, ab in sorted(pairs.items()):
        if set(ab) != {"a", "b"}:
            raise bad(f"{base} has lora_{next(iter(ab))} but not its pair")
        a, b = ab["a"], ab["b"]
        a_ne, b_ne = [int(x) for x in a.shape], [int(x) for x in b.shape]
        if len(a_ne) != 2 or len(b_ne) != 2 or a_ne[1] != b_ne[0]:
            raise bad(
                f"{base}: lora_a ne={a_ne} and lora_b ne={b_ne} do not chain "
                "(llama.cpp expects lora_a ne=[in, rank], lora_b ne=[rank, out])"
            )
        ranks.add(a_ne[1])
        if check_values:
            for t in (a, b):
                data = np.asarray(t.data)
                if data.dtype.kind != "f":
                    raise bad(f"{t.name}: type {t.tensor_type.name} (expected F32/F16)")
                if not np.isfinite(data).all():
                    raise bad(f"{t.name}: contains NaN or infinite values")
    if len(ranks) != 1:
        raise bad(f"mixed LoRA ranks {sorted(ranks)}")
    if base_model is not None:
        _check_against_base(p, arch, pairs, Path(base_model))
    return AdapterInfo(
        path=str(p),
        architecture=arch,
        alpha=float(alpha),
        rank=ranks.pop(),
        weights=sorted(pairs),
        sha256=file_sha256(p),
        size_bytes=p.stat().st_size,
    )


def _base_shapes(base_model: Path) -> tuple[str, dict[str, list[int]]]:
    st = base_model.stat()
    return _base_shapes_cached(str(base_model.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _base_shapes_cached(path: str, size: int, mtime_ns: int) -> tuple[str, dict[str, list[int]]]:
    """Architecture and tensor shapes of a model file (parsing its vocabulary takes seconds:
    read once per file version)."""
    gguf = _gguf()
    reader = gguf.GGUFReader(path)
    arch = _field(reader, "general.architecture")
    return str(arch), {t.name: [int(x) for x in t.shape] for t in reader.tensors}


def _check_against_base(
    p: Path, arch: str, pairs: Mapping[str, Mapping[str, Any]], base_model: Path
) -> None:
    base_arch, shapes = _base_shapes(base_model)
    if base_arch != arch:
        raise ConfigurationError(
            f"LoRA adapter {p}: made for architecture {arch!r}, "
            f"but {base_model.name} is {base_arch!r}"
        )
    for name, ab in sorted(pairs.items()):
        ne = shapes.get(name)
        if ne is None:
            raise ConfigurationError(
                f"LoRA adapter {p}: adapts {name}, which {base_model.name} does not have"
            )
        a_ne, b_ne = [int(x) for x in ab["a"].shape], [int(x) for x in ab["b"].shape]
        if ne[0] != a_ne[0] or ne[1] != b_ne[1]:
            raise ConfigurationError(
                f"LoRA adapter {p}: {name} is {ne} in {base_model.name}, but the adapter's "
                f"lora_a ne={a_ne} / lora_b ne={b_ne} do not fit it"
            )


def permute_rows_for_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """Hugging Face -> GGUF row order of a q/k projection (or of a LoRA ``B`` for one).

    The permutation llama.cpp's converter applies to Llama's ``q_proj`` (``n_head`` heads)
    and ``k_proj`` (``n_head_kv`` heads): within each head, the two rotary halves are
    interleaved."""
    rows = w.shape[0]
    if rows % (2 * n_head):
        raise ValueError(f"{rows} rows do not split into {n_head} heads of two halves")
    out: np.ndarray = (
        w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )
    return out


_PEFT_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$"
)


def peft_to_gguf_tensors(
    state: Mapping[str, np.ndarray],
    *,
    n_layers: int,
    n_head: int,
    n_head_kv: int,
    architecture: str = "llama",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A PEFT LoRA state dict (``...layers.3.self_attn.q_proj.lora_A.weight``: arrays)
    as ``{gguf weight name: (lora_a, lora_b)}``, names mapped by ``gguf``'s own tensor
    map, q/k ``lora_b`` rows permuted to GGUF order."""
    gguf = _gguf()
    arch = next((a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == architecture), None)
    if arch is None:
        raise ConfigurationError(f"unknown GGUF architecture {architecture!r}")
    name_map = gguf.get_tensor_name_map(arch, n_layers)
    halves: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        m = _PEFT_KEY.match(key)
        if m is None:
            raise ConfigurationError(f"not a LoRA A/B tensor: {key!r}")
        halves.setdefault(m["module"], {})[m["ab"]] = np.asarray(value, dtype=np.float32)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for module, ab in sorted(halves.items()):
        if set(ab) != {"A", "B"}:
            raise ConfigurationError(f"{module}: lora_A and lora_B must both be present")
        gguf_name = name_map.get_name(module)
        if gguf_name is None:
            raise ConfigurationError(f"{module}: no GGUF name for it in the {architecture} map")
        a, b = ab["A"], ab["B"]
        if module.endswith("q_proj"):
            b = permute_rows_for_rope(b, n_head)
        elif module.endswith("k_proj"):
            b = permute_rows_for_rope(b, n_head_kv)
        out[f"{gguf_name}.weight"] = (a, b)
    return out


def write_lora_gguf(
    path: str | Path,
    tensors: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    alpha: float,
    architecture: str = "llama",
    name: str = "lora",
    dtype: type[np.floating[Any]] = np.float16,
) -> Path:
    """Write ``{weight name: (A [rank, in], B [out, rank])}`` as a llama.cpp LoRA GGUF.

    Numpy's row-major ``A`` of shape ``(rank, in)`` is GGUF ``ne = [in, rank]``, the
    layout llama.cpp wants; ``dtype`` float16 (half the size, what llama.cpp computes
    LoRA in anyway on CPU) or float32."""
    gguf = _gguf()
    if not tensors:
        raise ConfigurationError("write_lora_gguf: no tensors to write")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    writer = gguf.GGUFWriter(str(tmp), architecture)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_name(name)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        for weight, (a, b) in sorted(tensors.items()):
            if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
                raise ConfigurationError(
                    f"{weight}: A {a.shape} and B {b.shape} are not a LoRA pair"
                )
            writer.add_tensor(f"{weight}.lora_a", np.ascontiguousarray(a, dtype=dtype))
            writer.add_tensor(f"{weight}.lora_b", np.ascontiguousarray(b, dtype=dtype))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    tmp.replace(out)
    return out


def read_manifest(path: str | Path) -> AdapterManifest:
    """An adapter's ``manifest.json``; :class:`ConfigurationError` naming it if invalid."""
    p = Path(path)
    try:
        return AdapterManifest.model_validate(json.loads(p.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ConfigurationError(f"adapter manifest {p}: no such file") from None
    except (OSError, ValueError, ValidationError) as exc:
        raise ConfigurationError(f"adapter manifest {p}: {exc}") from None


def shipped_adapter() -> tuple[Path, AdapterManifest] | None:
    """The adapter shipped in this package and its manifest, or None when it is absent
    (the file or its manifest). Validity is checked by :func:`read_adapter`."""
    if not (SHIPPED_ADAPTER.is_file() and SHIPPED_MANIFEST.is_file()):
        return None
    return SHIPPED_ADAPTER, read_manifest(SHIPPED_MANIFEST)
