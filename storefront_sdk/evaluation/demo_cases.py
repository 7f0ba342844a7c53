"""Evaluation cases of the demo users: each one's last order is the basket to predict.

The demo users (``storefront_sdk.demo``) are evaluation shoppers, like Instacart users
31-40: they never go into distillation training. A user with fewer than two orders (the
cold-start ``demo-6``) has no next basket to score and is left out.
"""

from __future__ import annotations

from ..catalog import Catalog
from .instacart import EvalCase

__all__ = ["demo_cases"]


def demo_cases(catalog: Catalog | None = None) -> list[EvalCase]:
    """One :class:`EvalCase` per demo user with two orders or more (history: every order
    but the last; target: the last order's products known to ``catalog``)."""
    from ..demo import demo_users

    cat = catalog or Catalog.demo()
    cases: list[EvalCase] = []
    for user in demo_users():
        numbers = sorted({it.order_number for it in user.history if it.order_number is not None})
        if len(numbers) < 2:
            continue
        last = numbers[-1]
        history = [it for it in user.history if it.order_number != last]
        target = list(
            dict.fromkeys(
                it.product_id
                for it in user.history
                if it.order_number == last and it.product_id in cat
            )
        )
        if target:
            cases.append(
                EvalCase(
                    user=user.model_copy(update={"history": history}),
                    target_product_ids=target,
                    target_order_number=last,
                )
            )
    return cases
