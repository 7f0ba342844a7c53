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
(``mode="expanded"``). An expander may give several rankings
(:meth:`KeywordExpander.rankings`); :class:`CombinedExpander` joins expanders,
and :func:`default_expander` is what the keyword generator uses by default: the
list expander (:mod:`storefront_sdk.list_expansion`, a small *base* model that
writes the shopping list) with the chat model's prior. See docs/semantic.md for
the measurements.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .exceptions import ComponentError, ConfigurationError

if TYPE_CHECKING:
    from .cache import BaseGenerationCache
    from .llm.base import LLM
    from .taxonomy import KeywordTaxonomy

__all__ = [
    "CombinedExpander",
    "KeywordExpander",
    "LLMKeywordExpander",
    "default_expander",
    "theme_text",
]

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

    def rankings(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> list[np.ndarray]:
        """One or more score vectors, each fused as its own ranking (default: :meth:`scores`)."""
        return [self.scores(texts, taxonomy)]

    def warm_up(self) -> None:  # noqa: B027 (optional hook: most expanders load nothing)
        """Load what the first theme would load (default: nothing)."""


class CombinedExpander(KeywordExpander):
    """Several expanders' rankings fused together (each ranking gets an equal RRF weight).

    An expander that fails is left out and the failure is recorded in the open trace
    stage (``expansion_failed`` event); only when all fail does the shortlist fall back
    to the one without expansion.
    """

    def __init__(self, expanders: Sequence[KeywordExpander]) -> None:
        if not expanders:
            raise ConfigurationError("CombinedExpander needs at least one expander")
        self.expanders = list(expanders)

    def __repr__(self) -> str:
        return f"CombinedExpander({self.expanders!r})"

    @property
    def fingerprint(self) -> str:
        return " + ".join(e.fingerprint for e in self.expanders)

    def scores(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> np.ndarray:
        return self.rankings(texts, taxonomy)[0]

    def warm_up(self) -> None:
        """Warm every member; raises only when none can be warmed (as :meth:`rankings`)."""
        errors: list[ComponentError] = []
        for ex in self.expanders:
            try:
                ex.warm_up()
            except ComponentError as exc:
                errors.append(exc)
        if len(errors) == len(self.expanders):
            raise errors[0]

    def rankings(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> list[np.ndarray]:
        from .tracing import event

        out: list[np.ndarray] = []
        errors: list[str] = []
        for ex in self.expanders:
            try:
                out.extend(ex.rankings(texts, taxonomy))
            except Exception as exc:
                errors.append(f"{ex.fingerprint[:60]}: {type(exc).__name__}: {exc}")
        if not out:
            raise ComponentError("every expander failed: " + "; ".join(errors))
        for message in errors:
            event("expansion_failed", f"one expander left out: {message}"[:500])
        return out


def default_expander(
    llm: LLM | None, *, cache: BaseGenerationCache | None = None
) -> KeywordExpander | None:
    """The keyword generator's ``expander="auto"``: for a local llama.cpp model, its prior
    (:class:`LLMKeywordExpander`) joined by the list expander when the ``expand`` extra
    is installed (:class:`~storefront_sdk.list_expansion.ListKeywordExpander`); for other
    models, None (pass an expander explicitly to use one with an HTTP model)."""
    prior = LLMKeywordExpander.for_llm(llm, cache=cache)
    if prior is None:
        return None
    from .list_expansion import ListKeywordExpander

    if not ListKeywordExpander.available():
        return prior
    # prior.cache: the given cache, else the one of a CachingLLM-wrapped model
    return CombinedExpander([ListKeywordExpander.default(cache=prior.cache), prior])


WordTable = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(token ids, word slot of each id, keyword of each slot)``: see :func:`word_table`."""


def word_table(
    tokenize: Callable[[str], list[int]],
    keywords: Sequence[str],
    forms: Callable[[str], list[list[str]]],
) -> WordTable:
    """The first token of every written form of every word of every keyword.

    ``forms(keyword)`` lists, per word, the strings it may appear as after a list
    marker (``[[" maple", " Maple"], [" syrup", " Syrup"]]``); a word none of whose
    forms tokenizes is left out, a keyword with no word left gets no slot at all.
    """
    ids: list[int] = []
    slot_of: list[int] = []
    owner: list[int] = []
    for i, kw in enumerate(keywords):
        for variants in forms(kw):
            firsts = {t[0] for t in (tokenize(v) for v in variants) if t}
            if not firsts:
                continue
            for tok in sorted(firsts):
                ids.append(int(tok))
                slot_of.append(len(owner))
            owner.append(i)
    return (
        np.asarray(ids, dtype=np.int64),
        np.asarray(slot_of, dtype=np.int64),
        np.asarray(owner, dtype=np.int64),
    )


def keyword_scores(
    logprobs: np.ndarray,
    generic: np.ndarray,
    generic_weight: float,
    table: WordTable,
    n: int,
    how: Literal["mean", "max"] = "mean",
) -> np.ndarray:
    """Keyword scores from next-token log-probabilities (``-inf`` for keywords without slots).

    A word scores the log of the summed probability of its forms' first tokens, minus
    ``generic_weight`` times the same under the generic prompt; a keyword scores the
    mean (or max) over its words.
    """
    ids, slot_of, owner = table
    word = np.full(len(owner), -np.inf)
    np.logaddexp.at(word, slot_of, logprobs[ids])
    base = np.full(len(owner), -np.inf)
    np.logaddexp.at(base, slot_of, generic[ids])
    per_word = word - generic_weight * base
    if how == "mean":
        total = np.bincount(owner, weights=per_word, minlength=n)
        count = np.bincount(owner, minlength=n)
        scores: np.ndarray = np.where(count > 0, total / np.maximum(count, 1), -np.inf)
    else:
        scores = np.full(n, -np.inf)
        np.maximum.at(scores, owner, per_word)
    return scores


def log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max()
    out: np.ndarray = logits - top - np.log(np.exp(logits - top).sum())
    return out


class _CachingExpander(KeywordExpander):
    """Memoises an expander's rankings per (theme, taxonomy) and keeps them in a generation
    cache (stage ``expansion``; the best :data:`STORED_SCORES` of each ranking)."""

    def __init__(self, *, cache: BaseGenerationCache | None, memo_size: int) -> None:
        self.cache = cache
        self.memo_size = memo_size
        self._lock = threading.RLock()
        self._memo: OrderedDict[tuple[str, str], list[np.ndarray]] = OrderedDict()

    @abstractmethod
    def _compute(self, theme: str, taxonomy: KeywordTaxonomy) -> list[np.ndarray]:
        """The rankings for ``theme`` (called under the expander's lock)."""

    def _cache_key(self, theme: str, taxonomy: KeywordTaxonomy) -> str | None:
        if self.cache is None:
            return None
        return self.cache.key(
            "expansion", expander=self.fingerprint, taxonomy=taxonomy.version, theme=theme
        )

    def _load(self, key: str | None, n: int) -> list[np.ndarray] | None:
        if key is None or self.cache is None:
            return None
        value: Any = self.cache.get(key)
        try:
            parts = value["r"] if isinstance(value, dict) and "r" in value else [value]
            out = []
            for part in parts:
                idx = np.asarray(part["i"], dtype=np.int64)
                val = np.asarray(part["s"], dtype=np.float64)
                if idx.shape != val.shape or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                    return None
                scores = np.full(n, -np.inf)
                scores[idx] = val
                out.append(scores)
        except (TypeError, KeyError, IndexError, ValueError):
            return None
        return out or None

    def _store(self, key: str | None, rankings: list[np.ndarray]) -> None:
        if key is None or self.cache is None:
            return
        parts = []
        for scores in rankings:
            top = np.flatnonzero(np.isfinite(scores))
            parts.append({"i": top.tolist(), "s": scores[top].tolist()})
        try:  # the cache reports (and traces) its own write failures
            self.cache.set(key, parts[0] if len(parts) == 1 else {"r": parts})
        except ConfigurationError as exc:  # a value it cannot encode
            from .tracing import event

            event("cache_refused", f"expansion not cached: {exc}"[:300])

    def scores(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> np.ndarray:
        return self.rankings(texts, taxonomy)[0]

    def rankings(self, texts: Sequence[str], taxonomy: KeywordTaxonomy) -> list[np.ndarray]:
        theme = theme_text(texts)
        if not theme:
            return [np.full(len(taxonomy), -np.inf)]
        memo_key = (theme, taxonomy.version)
        with self._lock:
            hit = self._memo.get(memo_key)
            if hit is not None:
                self._memo.move_to_end(memo_key)
                return hit
        key = self._cache_key(theme, taxonomy)
        rankings = self._load(key, len(taxonomy))
        if rankings is None:
            with self._lock:
                rankings = [_keep_top(r) for r in self._compute(theme, taxonomy)]
            self._store(key, rankings)
        with self._lock:
            self._memo[memo_key] = rankings
            if len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return rankings


class LLMKeywordExpander(_CachingExpander):
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
        self.template = template
        self.system = system
        self.generic = generic
        self.generic_weight = float(generic_weight)
        self.words = words
        super().__init__(cache=cache, memo_size=memo_size)
        self._first: dict[str, WordTable] = {}
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
        return log_softmax(logits)

    def _word_tokens(self, taxonomy: KeywordTaxonomy) -> WordTable:
        """Per keyword, the first token of each of its words (of the whole keyword for
        ``words="first"``)."""
        got = self._first.get(taxonomy.version)
        if got is None:
            llama = self._llama()
            got = self._first[taxonomy.version] = word_table(
                lambda text: llama.tokenize(text.encode(), add_bos=False, special=False),
                taxonomy.keywords,
                lambda kw: [[" " + w] for w in (kw.split() if self.words != "first" else [kw])],
            )
        return got

    def _compute(self, theme: str, taxonomy: KeywordTaxonomy) -> list[np.ndarray]:
        table = self._word_tokens(taxonomy)
        generic = self._generic.get(self.generic)
        if generic is None:
            generic = self._generic[self.generic] = self._next_logprobs(self.generic)
        how: Literal["mean", "max"] = "mean" if self.words == "mean" else "max"
        return [
            keyword_scores(
                self._next_logprobs(theme), generic, self.generic_weight, table, len(taxonomy), how
            )
        ]


def _keep_top(scores: np.ndarray) -> np.ndarray:
    """The best :data:`STORED_SCORES` scores rounded to 4 decimals, the rest ``-inf``.

    What is memoised is exactly what a later process loads from the cache.
    """
    out = np.full(scores.shape, -np.inf)
    top = np.argsort(-scores, kind="stable")[:STORED_SCORES]
    out[top] = np.round(scores[top], 4)
    return out
