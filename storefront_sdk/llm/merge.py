"""Merge a llama.cpp LoRA adapter into a copy of its base model's weights, once, on disk.

Why: llama.cpp applies a runtime adapter (``lora_path``) as two extra low-rank matmuls on
every adapted weight of every token. For SmolLM2-135M with the student's adapter on all
seven projections that cost about 30% of decoding speed (measured here: 62 tokens/s for
the base model, 43-51 with the adapter). A merged copy has no adapter left to apply.

How: every adapted weight ``W`` is dequantized (``gguf.quants``), ``scale * alpha / rank *
B @ A`` is added in float32, and the sum is re-quantized. The re-quantization type matters:
the packaged base model is Q4_1, whose grid step is far coarser than a LoRA update, so a
Q4_1 merge rounds most of the update away (measured: logits as far from the runtime
adapter's as the base model's are). ``Q8_0`` keeps it (logits within ~2-3% of the runtime
adapter's, the same order as llama.cpp's own float16 adapter arithmetic) and llama.cpp
decodes Q8_0 faster than Q4_1 on x86 CPUs (86 vs 62 tokens/s here, 1 thread). The file is
~1.5x the base model's size (145 MB for SmolLM2-135M); weights that no adapter touches are
copied byte for byte, metadata and tokenizer included.

:func:`merged_model` keeps merged files in a cache directory keyed by the base model's and
the adapter's bytes, the scale and the type: merging happens once per machine (~6 s for
SmolLM2-135M on one core), and a retrained adapter gets a new file. Files are written
to a temporary name and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ConfigurationError
from .adapter import _gguf, file_sha256, read_adapter

__all__ = [
    "MERGE_FORMAT",
    "cached_model_file",
    "default_models_dir",
    "merge_lora",
    "merged_model",
]

MERGE_FORMAT = 1
"""Bumped when the merge arithmetic or layout changes: old cached files are not reused."""

_DEFAULT_QTYPE = "Q8_0"


def default_models_dir() -> Path:
    """``$STOREFRONT_MODELS_DIR``, else ``<cache dir>/models``."""
    env = os.environ.get("STOREFRONT_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    from ..cache import default_cache_dir

    return default_cache_dir() / "models"


@functools.lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def _sha256(path: Path) -> str:
    """A file's SHA-256, hashed once per (path, size, mtime): the base model is ~100 MB."""
    st = path.stat()
    return _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)


def merge_lora(
    base_model: str | Path,
    adapter: str | Path,
    out: str | Path,
    *,
    scale: float = 1.0,
    qtype: str = _DEFAULT_QTYPE,
) -> Path:
    """Write ``base_model`` with ``adapter`` (a llama.cpp LoRA GGUF) merged into it to ``out``.

    The adapter is validated against the base model first (:func:`read_adapter`); every
    adapted weight becomes ``dequant(W) + scale * alpha / rank * B @ A`` quantized as
    ``qtype`` (``"Q8_0"``, or ``"F16"``/``"F32"``; a weight whose rows do not split into
    the type's blocks is written F16). Raises :class:`ConfigurationError` naming the files.
    """
    gguf = _gguf()
    base_p, adapter_p, out_p = Path(base_model), Path(adapter), Path(out)
    try:
        target = gguf.GGMLQuantizationType[qtype]
    except KeyError:
        raise ConfigurationError(
            f"unknown GGUF tensor type {qtype!r} (use Q8_0, F16 or F32)"
        ) from None
    info = read_adapter(adapter_p, base_model=base_p)
    if not np.isfinite(scale):
        raise ConfigurationError(f"merge scale must be finite, got {scale}")
    factor = float(scale) * info.alpha / info.rank
    lora: dict[str, dict[str, np.ndarray]] = {}
    for t in gguf.GGUFReader(str(adapter_p)).tensors:
        weight, ab = t.name.rsplit(".lora_", 1)
        lora.setdefault(weight, {})[ab] = np.asarray(t.data, dtype=np.float32)
    try:
        base = gguf.GGUFReader(str(base_p))
    except Exception as exc:
        raise ConfigurationError(
            f"base model {base_p}: not a readable GGUF file: {type(exc).__name__}: {exc}"
        ) from None
    out_p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out_p.name + ".", suffix=".part", dir=out_p.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp), base.fields["general.architecture"].contents())
        try:
            _copy_metadata(gguf, base, writer, info.sha256, scale, qtype)
            for t in base.tensors:
                pair = lora.get(t.name)
                if pair is None:
                    writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
                    continue
                w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
                w += factor * (pair["b"] @ pair["a"])  # numpy (out, in), as llama.cpp adds it
                data, dtype = _quantize(gguf, w, target)
                writer.add_tensor(t.name, data, raw_dtype=dtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
        tmp.replace(out_p)
    finally:
        tmp.unlink(missing_ok=True)
    return out_p


def _copy_metadata(
    gguf: Any, base: Any, writer: Any, adapter_sha256: str, scale: float, qtype: str
) -> None:
    """Every key of the base model (tokenizer and chat template included), plus where the
    merge came from."""
    for field in base.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        if field.name == gguf.Keys.General.FILE_TYPE:
            continue  # no longer one type throughout
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    writer.add_string("storefront.merge.adapter_sha256", adapter_sha256)
    writer.add_float32("storefront.merge.scale", float(scale))
    writer.add_string("storefront.merge.qtype", qtype)
    writer.add_uint32("storefront.merge.format", MERGE_FORMAT)


def _quantize(gguf: Any, w: np.ndarray, target: Any) -> tuple[np.ndarray, Any]:
    t = gguf.GGMLQuantizationType
    if target == t.F32:
        return w, t.F32
    if target == t.F16:
        return w.astype(np.float16), t.F16
    block = gguf.GGML_QUANT_SIZES[target][0]
    if w.shape[-1] % block:
        return w.astype(np.float16), t.F16
    return gguf.quants.quantize(w, target), target


def merged_model(
    base_model: str | Path,
    adapter: str | Path,
    *,
    scale: float = 1.0,
    qtype: str = _DEFAULT_QTYPE,
    models_dir: str | Path | None = None,
) -> Path:
    """The merged model for (base model, adapter, scale, type), merged on first use.

    Kept in ``models_dir`` (default :func:`default_models_dir`) under a name keyed by the
    SHA-256 of both files' bytes; when that directory is not writable, the system's
    temporary directory is used. A cached file whose size does not match its sidecar
    ``.json`` (truncated, damaged) is merged again; a new merge of the same adapter path
    (retrained) onto the same base deletes the older one. :class:`ConfigurationError` if neither
    place can hold it, or the adapter does not fit the model.
    """
    base_p, adapter_p = Path(base_model), Path(adapter)
    key = hashlib.sha256(
        json.dumps(
            [MERGE_FORMAT, _sha256(base_p), _sha256(adapter_p), float(scale), qtype]
        ).encode()
    ).hexdigest()[:20]
    name = f"{adapter_p.stem}-merged-{qtype.lower()}-{key}.gguf"

    def write(path: Path) -> None:
        merge_lora(base_p, adapter_p, path, scale=scale, qtype=qtype)
        meta = {
            "size": path.stat().st_size,
            "base": str(base_p.resolve()),
            "adapter": str(adapter_p.resolve()),
        }
        path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
        _drop_superseded(path.parent, keep=path, meta=meta)

    return cached_model_file(
        name,
        models_dir,
        intact=_intact,
        write=write,
        what=f"the merged model for LoRA adapter {adapter_p}",
    )


def cached_model_file(
    name: str,
    models_dir: str | Path | None,
    *,
    intact: Callable[[Path], bool],
    write: Callable[[Path], None],
    what: str,
) -> Path:
    """``<models dir>/<name>`` when ``intact``, else made there by ``write``; when that
    directory is not writable, the same in the system's temporary directory.
    :class:`ConfigurationError` if neither place can hold it."""
    dirs = [Path(models_dir) if models_dir is not None else default_models_dir()]
    dirs.append(Path(tempfile.gettempdir()) / "storefront_sdk-models")
    errors: list[str] = []
    for folder in dirs:
        path = folder / name
        if intact(path):
            return path
        try:
            write(path)
            return path
        except OSError as exc:
            errors.append(f"{folder}: {type(exc).__name__}: {exc}")
    raise ConfigurationError(f"cannot write {what}: " + "; ".join(errors))


def _drop_superseded(folder: Path, *, keep: Path, meta: dict[str, Any]) -> None:
    """Delete older merges of the same adapter file onto the same base model (a retrained
    adapter at one path replaces its merge instead of piling up 145 MB files)."""
    for sidecar in folder.glob("*-merged-*.json"):
        old = sidecar.with_suffix(".gguf")
        if old == keep:
            continue
        try:
            other = json.loads(sidecar.read_text(encoding="utf-8"))
            if (other.get("adapter"), other.get("base")) == (meta["adapter"], meta["base"]):
                old.unlink(missing_ok=True)
                sidecar.unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            continue  # another process's file, or not ours: leave it


def _intact(path: Path) -> bool:
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        return bool(path.stat().st_size == meta["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
