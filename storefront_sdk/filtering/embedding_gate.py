"""Near-duplicate themes and placements by embedding cosine (the AIQA dedup step).

Character trigrams miss paraphrases ("Bite-sized food" / "Bites-big-food",
"Movie night snacks" / "Snacks for movie night"); sentence embeddings catch
them. The title threshold (0.70) was chosen on the labelled pairs in
``tests/data/duplicate_theme_pairs.txt`` as the best F0.5 (precision weighs
double: rejecting a distinct theme costs a placement) over 0.50-0.95 in steps
of 0.05: precision 0.91, recall 0.67 there (trigram cosine at its best F0.5,
0.55: precision 0.94, recall 0.53). Run it beside :class:`NearDuplicateGate`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..embeddings import Embedder, default_embedder
from ..exceptions import ConfigurationError
from ..interfaces import Gate
from ..types import Placement, Theme, UserContext

__all__ = ["EmbeddingDuplicateGate"]

TITLE_THRESHOLD = 0.70
THEME_THRESHOLD = 0.85


def _theme_text(theme: Theme) -> str:
    return f"{theme.title}: {', '.join(theme.concepts)}" if theme.concepts else theme.title


class EmbeddingDuplicateGate(Gate):
    """Rejects a theme or placement whose title (cosine >= ``title_threshold``) or
    title + concepts (cosine >= ``theme_threshold``) nearly matches an accepted one.

    ``embedder``: default :func:`~storefront_sdk.embeddings.default_embedder`
    (raises ConfigurationError when the ``embed`` extra is missing). Texts are
    memoised by the embedder, so each title costs one forward pass per process.
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        title_threshold: float = TITLE_THRESHOLD,
        theme_threshold: float = THEME_THRESHOLD,
    ) -> None:
        self._embedder = embedder
        self.title_threshold = title_threshold
        self.theme_threshold = theme_threshold

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
            if self._embedder is None:
                raise ConfigurationError(
                    "EmbeddingDuplicateGate needs an embedder: install the embed extra or pass one"
                )
        return self._embedder

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def similarity(self, a: str, others: Sequence[str]) -> np.ndarray:
        """Cosine of ``a`` to each of ``others``."""
        if not others:
            return np.zeros(0, dtype=np.float32)
        vecs = self.embedder.embed([a, *others])
        sims: np.ndarray = vecs[1:] @ vecs[0]
        return sims

    def _check(self, theme: Theme, others: Sequence[Theme]) -> str | None:
        if not others:
            return None
        # One embedder call (memo lookups on a warm path) for titles and theme texts.
        n = len(others)
        vecs = self.embedder.embed(
            [
                theme.title,
                _theme_text(theme),
                *(t.title for t in others),
                *(_theme_text(t) for t in others),
            ]
        )
        if (vecs[2 : 2 + n] @ vecs[0] >= self.title_threshold).any():
            return "duplicate_title"
        if (vecs[2 + n :] @ vecs[1] >= self.theme_threshold).any():
            return "duplicate_theme"
        return None

    def check_theme(
        self, theme: Theme, user: UserContext, accepted: Sequence[Theme] = ()
    ) -> str | None:
        return self._check(theme, accepted)

    def check_placement(
        self, placement: Placement, accepted: Sequence[Placement], user: UserContext
    ) -> str | None:
        return self._check(placement.theme, [p.theme for p in accepted])
