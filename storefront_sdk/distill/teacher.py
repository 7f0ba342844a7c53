"""``BestOfNLLM``: a teacher available everywhere -- a model sampled N times, best answer kept.

A strong remote teacher (an OpenAI-compatible server) is not always at hand. The local
model itself becomes a better teacher than its greedy self by *best-of-N sampling*: for
every call it writes ``n`` candidates (the greedy answer plus ``n - 1`` samples at
``temperature``, each with its own seed) and keeps the one a scorer likes best. The
default scorer (:func:`score_candidates`) uses only rules that are independent of the
model:

* for a title (a bare string, the seeded-title calls of the compact profile): the
  title-quality rules of the judges and gates
  (:func:`~storefront_sdk.evaluation.judges.title_problems`, including near copies of
  the titles already on the page, which the prompt lists), the seeded generator's own
  stutter / duplicate rule, and how many of the title's words come from the seed's
  product names (a title about the products rather than about the aisle);
* for every output: agreement among the candidates (self-consistency: an answer that
  several samples reach is likelier right), then the greedy answer on a tie.

:class:`JudgeScorer` (the CLI's default) puts the independent relevance judge's verdict
on the seed's products under each title ahead of agreement.

The wrapper keeps the wrapped model's ``concurrent`` flag, so the cascade sends it the
same prompts as the student (the compact, seeded ones for a local model): the labels are
answers to exactly the prompts the student will see.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..catalog import Catalog
from ..exceptions import ConfigurationError, OutputValidationError
from ..llm.base import LLM, ChatMessage, LLMResult, LLMUsage, OutputSpec
from ..text import normalize

__all__ = ["BestOfNLLM", "Candidate", "JudgeScorer", "Pick", "score_candidates"]

T = TypeVar("T")

_MAX_PICKS = 256


@dataclass(frozen=True)
class Candidate:
    """One sampled answer: its value (None when invalid), raw text, seed and temperature."""

    value: Any
    raw: str
    seed: int | None
    temperature: float
    error: str | None = None


@dataclass
class Pick:
    """What best-of-N did for one call: every candidate, its score, the chosen index."""

    candidates: list[Candidate]
    scores: list[tuple[float, ...]]
    chosen: int
    problems: list[list[str]] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        """The JSON-ready form recorded with the call (``LLMCallRecord.sampling``)."""
        return {
            "chosen": self.chosen,
            "candidates": [
                {
                    "value": _jsonable(c.value),
                    "seed": c.seed,
                    "temperature": c.temperature,
                    "error": c.error,
                    "score": list(s),
                    "problems": p,
                }
                for c, s, p in zip(self.candidates, self.scores, self._problems(), strict=True)
            ],
        }

    def _problems(self) -> list[list[str]]:
        return self.problems or [[] for _ in self.candidates]


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return str(value)


Scorer = Callable[
    [Sequence[ChatMessage], Sequence[Candidate]],
    tuple[list[tuple[float, ...]], list[list[str]]],
]


def _data_field(messages: Sequence[ChatMessage], name: str) -> list[str]:
    """The quoted values of a ``name: "a"; "b"`` line in the last user message's data block."""
    user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    prefix = f"{name}: "
    for line in user.splitlines():
        if line.startswith(prefix):
            return [v for v in line[len(prefix) :].split('"') if v.strip() not in ("", ";")]
    return []


def _key(value: Any) -> str:
    if isinstance(value, str):
        return normalize(value)
    if isinstance(value, list):
        return "|".join(sorted(normalize(str(v)) for v in value))
    dump = getattr(value, "model_dump_json", None)
    return str(dump()) if callable(dump) else repr(value)


def score_candidates(
    messages: Sequence[ChatMessage], candidates: Sequence[Candidate]
) -> tuple[list[tuple[float, ...]], list[list[str]]]:
    """Scores (higher is better, compared as tuples) and title problems of each candidate.

    ``(valid, no title problem, -number of problems, agreement, share of title words
    from the seed's products, greedy)``; see the module docs.
    """
    from ..evaluation.judges import title_problems
    from ..generation.llm_themes import _title_problem

    earlier = _data_field(messages, "on the page")
    products = {w for name in _data_field(messages, "products") for w in normalize(name).split()}
    votes = Counter(_key(c.value) for c in candidates if c.error is None)
    scores: list[tuple[float, ...]] = []
    problems: list[list[str]] = []
    for c in candidates:
        if c.error is not None:
            scores.append((0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
            problems.append(["invalid_output"])
            continue
        found: list[str] = []
        grounded = 0.0
        if isinstance(c.value, str):
            found = list(title_problems(c.value, earlier))
            own = _title_problem(c.value, earlier)
            if own is not None and own not in found:
                found.append(own)
            words = [w for w in normalize(c.value).split() if w not in ("and", "with")]
            if words and products:
                grounded = sum(w in products for w in words) / len(words)
        scores.append(
            (
                1.0,
                0.0 if found else 1.0,
                -float(len(found)),
                float(votes[_key(c.value)]),
                round(grounded, 4),
                1.0 if c.temperature == 0.0 else 0.0,
            )
        )
        problems.append(found)
    return scores, problems


class JudgeScorer:
    """:func:`score_candidates` with the independent relevance judge in front of agreement.

    A title's *judge relevance* is the mean probability, under
    :class:`~storefront_sdk.evaluation.judge_relevance.JudgeRelevanceModel` (trained on
    human relevance labels, not the pipeline's filter), that the seed's products named in
    the prompt (with its aisle) are relevant to the title: the placement is filled with
    such products, so this is the P-T@5 the page will get. Measured on users 1-2: the
    greedy "Fry Breading Mix" scores 0.32, the sampled "Spices Seasonings" 0.83 for
    products "Cajun Crispy Fish Fry Breading", "Organic Garlic Salt", "Organic Sumac".
    Score: ``(valid, no title problem, -problems, judge relevance (0.05 steps),
    agreement, grounding, greedy)``.
    """

    def __init__(self, catalog: Catalog) -> None:
        from ..evaluation.judge_relevance import JudgeRelevanceModel

        self.model = JudgeRelevanceModel(catalog)
        self.__name__ = "judge_scorer"

    def __call__(
        self, messages: Sequence[ChatMessage], candidates: Sequence[Candidate]
    ) -> tuple[list[tuple[float, ...]], list[list[str]]]:
        scores, problems = score_candidates(messages, candidates)
        products = _data_field(messages, "products")
        aisle = " ".join(_data_field(messages, "aisle")[:1])
        texts = [f"{p.rstrip('…')} {aisle}".strip() for p in products]
        out: list[tuple[float, ...]] = []
        for c, sc in zip(candidates, scores, strict=True):
            rel = 0.0
            if c.error is None and isinstance(c.value, str) and texts:
                probs = self.model.score_texts([c.value] * len(texts), texts)
                rel = round(sum(probs) / len(probs) / 0.05) * 0.05
            out.append((*sc[:3], round(rel, 2), *sc[3:]))
        return out, problems


class BestOfNLLM(LLM):
    """``llm`` sampled ``n`` times per call, the best candidate kept (see the module docs).

    ``greedy=True`` makes the first candidate the greedy answer (temperature 0), so the
    teacher never loses the answer the plain model would give; the others are sampled at
    ``temperature`` with seeds ``seed + 1, seed + 2, ...``. A wrapped model with an integer
    ``seed`` attribute (``LocalLLM``) gets each candidate's seed set on it for the call;
    a remote model samples differently per request anyway.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        n: int = 4,
        temperature: float = 0.8,
        seed: int = 0,
        greedy: bool = True,
        scorer: Scorer | None = None,
    ) -> None:
        if n < 1:
            raise ConfigurationError(f"best-of-N needs n >= 1, got {n}")
        if not 0.0 < temperature <= 2.0:
            raise ConfigurationError(
                f"best-of-N samples at a temperature in (0, 2], got {temperature}"
            )
        self.llm = llm
        self.n = n
        self.temperature = temperature
        self.seed = seed
        self.greedy = greedy
        self.scorer: Scorer = scorer or score_candidates
        self.model_id = f"{llm.model_id}+best-of-{n}"
        self.concurrent = llm.concurrent
        self._lock = threading.Lock()
        # id(result) -> (result, pick); the result is held so its id is not reused
        self._picks: OrderedDict[int, tuple[LLMResult[Any], Pick]] = OrderedDict()

    def __repr__(self) -> str:
        return f"BestOfNLLM({self.llm!r}, n={self.n}, temperature={self.temperature})"

    @property
    def sampling(self) -> dict[str, Any]:
        """The sampling settings, recorded with every label (``LLMCallRecord.sampling``)."""
        return {
            "method": "best-of-n",
            "n": self.n,
            "temperature": self.temperature,
            "seed": self.seed,
            "greedy_candidate": self.greedy,
            "scorer": getattr(self.scorer, "__name__", type(self.scorer).__name__),
            "base_model": self.llm.model_id,
        }

    @property
    def fingerprint(self) -> str:
        return (
            f"{self.llm.fingerprint}|best-of-{self.n}|t={self.temperature}|seed={self.seed}"
            f"|greedy={self.greedy}|{self.sampling['scorer']}"
        )

    def warm_up(self) -> None:
        self.llm.warm_up()

    def pick_of(self, result: LLMResult[Any]) -> Pick | None:
        """The best-of-N record of a result this wrapper returned (None for others)."""
        with self._lock:
            entry = self._picks.get(id(result))
        return entry[1] if entry is not None and entry[0] is result else None

    @contextlib.contextmanager
    def _seeded(self, seed: int) -> Iterator[None]:
        old = getattr(self.llm, "seed", None)
        if not isinstance(old, int) or isinstance(old, bool):
            yield
            return
        self.llm.seed = seed  # type: ignore[attr-defined]
        try:
            yield
        finally:
            self.llm.seed = old  # type: ignore[attr-defined]

    def _plan(self) -> list[tuple[int, float]]:
        plan = [(self.seed, 0.0)] if self.greedy else []
        i = 1
        while len(plan) < self.n:
            plan.append((self.seed + i, self.temperature))
            i += 1
        return plan

    def generate(
        self,
        messages: Sequence[ChatMessage],
        output: OutputSpec[T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> LLMResult[T]:
        # ``temperature`` of the caller is ignored: the teacher samples as configured
        # (a retry by the cascade at a higher temperature gets the same best-of-N).
        del temperature
        candidates: list[Candidate] = []
        results: list[LLMResult[T] | None] = []
        last_error: Exception | None = None
        with self._lock:
            for seed, temp in self._plan():
                try:
                    with self._seeded(seed):
                        res = self.llm.generate(
                            messages, output, max_tokens=max_tokens, temperature=temp
                        )
                except OutputValidationError as exc:
                    last_error = exc
                    results.append(None)
                    candidates.append(
                        Candidate(None, exc.raw or "", seed, temp, error=str(exc)[:200])
                    )
                    continue
                results.append(res)
                candidates.append(Candidate(res.value, res.raw, seed, temp))
        if all(r is None for r in results):
            assert last_error is not None
            raise last_error
        scores, problems = self.scorer(messages, candidates)
        best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
        chosen = results[best]
        assert chosen is not None
        done = [r for r in results if r is not None]
        usage = LLMUsage(
            model_id=self.model_id,
            prompt_tokens=sum(r.usage.prompt_tokens for r in done),
            completion_tokens=sum(r.usage.completion_tokens for r in done),
            latency_ms=sum(r.usage.latency_ms for r in done),
            attempts=len(candidates),
        )
        out = LLMResult(value=chosen.value, usage=usage, raw=chosen.raw)
        with self._lock:
            self._picks[id(out)] = (out, Pick(candidates, scores, best, problems))
            while len(self._picks) > _MAX_PICKS:
                self._picks.popitem(last=False)
        return out
