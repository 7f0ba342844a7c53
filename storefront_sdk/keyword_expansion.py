"""Keyword expansion: a language model's prior over the taxonomy for a theme.

A sentence encoder ranks keywords by *similarity* to a theme ("Weekend
brunch" -> ``pancake mix``), not by what goes with it (``coffee``,
``maple syrup``). A language model has seen shopping lists. One forward pass
over a prompt such as ``"Write a shopping list for Weekend brunch (pancakes;
eggs benedict)."`` (in the model's chat template, the answer opened with
``-``) gives the next-token distribution at the start of a list item. Each
token is scored by its log-probability there minus half its log-probability
after a generic prompt (``"... for groceries."``), so that tokens likely after
*any* prompt ("bread", "cheese") do not win everywhere; a keyword scores the
mean over its words of their first tokens' scores:

    tok(t)   = log p(t | theme prompt) - 0.5 * log p(t | generic prompt)
    score(k) = mean over the words w of k of tok(first token of " w")

Keywords with the same word tokens tie; the taxonomy breaks ties by embedding
cosine. The cost is one prompt evaluation per theme (~40 tokens, a fraction
of a second with SmolLM2-135M on one core), independent of the taxonomy's
size; results are cached (in process, and in a generation cache when given).
:meth:`KeywordTaxonomy.shortlist(..., expander=...)
<storefront_sdk.taxonomy.KeywordTaxonomy.shortlist>` fuses the expander's
ranking with the semantic and word rankings by reciprocal-rank fusion
(``mode="expanded"``). See docs/semantic.md for the measurements.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .exceptions import ComponentError, ConfigurationError

if TYPE_CHECKING:
    from .cache import BaseGenerationCache
    from .llm.base import LLM
    from .taxonomy import KeywordTaxonomy

__all__ = ["KeywordExpander", "LLMKeywordExpander", "theme_text"]

#: Keeps cached score vectors small for big taxonomies: only the best this many are stored.
STORED_SCORES = 512


def theme_text(texts: Sequence[str]) -> str:
    """``"title (concept; concept)"`` from a shortlist's texts (title first)."""
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        return ""
    return f"{texts[0]} ({'; '.join(texts[1:])})" if len(texts) > 1 else texts[0]


class KeywordExpander(ABC):
    """Scores every taxonomy keyword for a theme by what *goes with* it.

    :meth:`scores` returns one float per keyword of ``taxonomy`` (higher is
    more related; ``-inf`` for keywords it does not rank). It may raise: the
    taxonomy then falls back to its fused shortlist and says so in the trace.
    ``fingerprint`` identifies the scoring in cache keys and memos.
    """

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """What identifies this expander's scores (model, prompt, weights)."""

    @abstractmethod
    def scores(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> np.ndarray:
        """``(len(taxonomy),)`` scores for the theme whose title and concepts are ``texts``."""


class LLMKeywordExpander(KeywordExpander):
    """First-token log-probabilities of every keyword under a local llama.cpp model.

    ``llm``: a :class:`~storefront_sdk.llm.outlines.LocalLLM` (anything with a
    ``llama`` attribute holding a ``llama_cpp.Llama``; use :meth:`for_llm` to get
    None for other models). ``cache``: a generation cache for the scores (keyed
    by the theme text, the model fingerprint, the taxonomy version and the
    prompt), so warm builds in a new process do not run the model.
    """

    prompt_version = "expand-v1"

    def __init__(
        self,
        llm: LLM,
        *,
        cache: BaseGenerationCache | None = None,
        template: str = "Write a shopping list for {theme}.",
        system: str | None = "You are a grocery shopping assistant.",
        generic: str = "groceries",
        generic_weight: float = 0.5,
        words: Literal["first", "max", "mean"] = "mean",
        memo_size: int = 1024,
    ) -> None:
        if "{theme}" not in template:
            raise ConfigurationError("the expansion template needs a {theme} placeholder")
        if not hasattr(type(llm), "llama"):  # the class: the property would load the model
            raise ConfigurationError(
                f"{llm.model_id}: keyword expansion needs a local llama.cpp model (LocalLLM)"
            )
        self.llm = llm
        self.cache = cache
        self.template = template
        self.system = system
        self.generic = generic
        self.generic_weight = float(generic_weight)
        self.words = words
        self.memo_size = memo_size
        self._lock = threading.RLock()
        self._memo: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._first: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._generic: dict[str, np.ndarray] = {}

    @classmethod
    def for_llm(
        cls, llm: LLM | None, *, cache: BaseGenerationCache | None = None
    ) -> LLMKeywordExpander | None:
        """An expander on ``llm`` when it is a local llama.cpp model, else None."""
        from .llm.cached import CachingLLM

        inner = llm
        if isinstance(llm, CachingLLM):  # the expansion caches its scores, not the answers
            inner = llm.llm
            cache = cache if cache is not None else llm.cache
        if inner is None or not hasattr(type(inner), "llama"):
            return None
        return cls(inner, cache=cache)

    def __repr__(self) -> str:
        return f"LLMKeywordExpander({self.llm.model_id!r})"

    @property
    def fingerprint(self) -> str:
        return (
            f"{self.prompt_version}:{self.llm.fingerprint}:{self.system}:{self.template}:{self.generic}"
            f":{self.generic_weight:g}:{self.words}"
        )

    # -- the model side ----------------------------------------------------------------
    def _llama(self) -> Any:
        try:
            return self.llm.llama  # type: ignore[attr-defined]
        except Exception as exc:
            raise ComponentError(f"{self.llm.model_id}: cannot load the model: {exc}") from exc

    def _prompt_tokens(self, llama: Any, theme: str) -> list[int]:
        user = self.template.format(theme=theme)
        template = (llama.metadata or {}).get("tokenizer.chat_template")
        if template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            fmt = Jinja2ChatFormatter(
                template=template, eos_token="", bos_token="", add_generation_prompt=True
            )
            messages: list[Any] = [{"role": "user", "content": user}]
            if self.system:
                messages.insert(0, {"role": "system", "content": self.system})
            text = fmt(messages=messages).prompt
        else:
            text = f"{user}\n"
        tokens: list[int] = llama.tokenize((text + "-").encode(), add_bos=True, special=True)
        return tokens

    def _next_logprobs(self, theme: str) -> np.ndarray:
        """Log-softmax of the next-token logits after the list prompt for ``theme``."""
        import llama_cpp

        llama = self._llama()
        tokens = self._prompt_tokens(llama, theme)
        if len(tokens) >= llama.n_ctx():
            raise ComponentError(f"expansion prompt of {len(tokens)} tokens exceeds the context")
        with self.llm.context_lock():  # type: ignore[attr-defined]
            # Llama.eval keeps input_ids/n_tokens consistent with the KV cache, so the next
            # generation on this context reuses (or trims) this prefix correctly.
            llama.reset()
            llama.eval(tokens)
            n_vocab = int(llama.n_vocab())
            ptr = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
            logits = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float64)
        if not np.all(np.isfinite(logits)):
            raise ComponentError(f"{self.llm.model_id}: non-finite logits")
        top = logits.max()
        out: np.ndarray = logits - top - np.log(np.exp(logits - top).sum())
        return out

    def _word_tokens(self, taxonomy: KeywordTaxonomy) -> tuple[np.ndarray, np.ndarray]:
        """Per keyword, the first token of each of its words: ``(token ids, keyword index)``."""
        got = self._first.get(taxonomy.version)
        if got is None:
            llama = self._llama()
            ids: list[int] = []
            owner: list[int] = []
            for i, kw in enumerate(taxonomy.keywords):
                words = kw.split() if self.words != "first" else [kw]
                for word in words:
                    toks = llama.tokenize((" " + word).encode(), add_bos=False, special=False)
                    if toks:
                        ids.append(int(toks[0]))
                        owner.append(i)
            got = self._first[taxonomy.version] = (
                np.asarray(ids, dtype=np.int64),
                np.asarray(owner, dtype=np.int64),
            )
        return got

    def _compute(self, theme: str, taxonomy: KeywordTaxonomy) -> np.ndarray:
        ids, owner = self._word_tokens(taxonomy)
        generic = self._generic.get(self.generic)
        if generic is None:
            generic = self._generic[self.generic] = self._next_logprobs(self.generic)
        per_token = self._next_logprobs(theme) - self.generic_weight * generic
        vals = per_token[ids]
        n = len(taxonomy)
        if self.words == "mean":
            total = np.bincount(owner, weights=vals, minlength=n)
            count = np.bincount(owner, minlength=n)
            scores: np.ndarray = np.where(count > 0, total / np.maximum(count, 1), -np.inf)
        else:  # "first" (one entry per keyword) or "max" over the keyword's words
            scores = np.full(n, -np.inf)
            np.maximum.at(scores, owner, vals)
        return scores

    # -- caching -------------------------------------------------------------------------
    def _cache_key(self, theme: str, taxonomy: KeywordTaxonomy) -> str | None:
        if self.cache is None:
            return None
        return self.cache.key(
            "expansion", expander=self.fingerprint, taxonomy=taxonomy.version, theme=theme
        )

    def _load(self, key: str | None, n: int) -> np.ndarray | None:
        if key is None or self.cache is None:
            return None
        value: Any = self.cache.get(key)
        try:
            idx = np.asarray(value["i"], dtype=np.int64)
            val = np.asarray(value["s"], dtype=np.float64)
            if idx.shape != val.shape or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                return None
        except (TypeError, KeyError, IndexError, ValueError):
            return None
        out = np.full(n, -np.inf)
        out[idx] = val
        return out

    def _store(self, key: str | None, scores: np.ndarray) -> None:
        if key is None or self.cache is None:
            return
        top = np.flatnonzero(np.isfinite(scores))
        try:
            self.cache.set(key, {"i": top.tolist(), "s": scores[top].tolist()})
        except Exception:
            return

    def scores(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> np.ndarray:
        theme = theme_text(texts)
        if not theme:
            return np.full(len(taxonomy), -np.inf)
        memo_key = (theme, taxonomy.version)
        with self._lock:
            hit = self._memo.get(memo_key)
            if hit is not None:
                self._memo.move_to_end(memo_key)
                return hit
        key = self._cache_key(theme, taxonomy)
        scores = self._load(key, len(taxonomy))
        if scores is None:
            with self._lock:
                scores = _keep_top(self._compute(theme, taxonomy))
            self._store(key, scores)
        with self._lock:
            self._memo[memo_key] = scores
            if len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return scores


def _keep_top(scores: np.ndarray) -> np.ndarray:
    """The best :data:`STORED_SCORES` scores rounded to 4 decimals, the rest ``-inf``.

    What is memoised is exactly what a later process loads from the cache.
    """
    out = np.full(scores.shape, -np.inf)
    top = np.argsort(-scores, kind="stable")[:STORED_SCORES]
    out[top] = np.round(scores[top], 4)
    return out
