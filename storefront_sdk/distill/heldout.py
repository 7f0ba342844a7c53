"""Which shoppers may be labelled: the evaluation shoppers never go into training.

The student is judged on Instacart users 31-40 of ``../shared/data/instacart`` and on the
demo users; a label from one of them in the training set would grade the student on its
own homework. ``storefront distill collect`` refuses them (``--allow-held-out`` to try
the pipeline on the demo users), and :func:`~storefront_sdk.distill.export.export_labels`
drops their labels by default, whatever was collected.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from .errors import DistillError

__all__ = ["EVALUATION_INSTACART_USERS", "evaluation_shoppers", "refuse_held_out"]

EVALUATION_INSTACART_USERS: frozenset[str] = frozenset(str(i) for i in range(31, 41))
"""Instacart users 31-40: evaluation only."""


@cache
def evaluation_shoppers() -> frozenset[str]:
    """User ids that never go into training: Instacart users 31-40 and the demo users."""
    from ..demo import demo_users

    return EVALUATION_INSTACART_USERS | {u.user_id for u in demo_users()}


def refuse_held_out(user_ids: Iterable[str], *, what: str = "collect") -> None:
    """Raise :class:`DistillError` naming the evaluation shoppers among ``user_ids``."""
    held = sorted(
        {u for u in user_ids if u in evaluation_shoppers()},
        key=lambda u: (not u.isdigit(), int(u) if u.isdigit() else 0, u),
    )
    if held:
        raise DistillError(
            f"{what}: shopper(s) {', '.join(held)} are held out for evaluation (Instacart "
            "users 31-40 and the demo users) and may not be labelled for training; "
            "pass --allow-held-out to try the pipeline on them anyway"
        )
