"""Demo users with order histories over the packaged demo catalog (:meth:`Catalog.demo`).

Six users with distinct tastes, for examples, tests and trying components out:

========  ==============================================================
demo-1    Italian home cook (pasta, sauce, cheese, olive oil, wine); age verified
demo-2    household with a baby (diapers, wipes, formula, pouches)
demo-3    healthy breakfast (Greek yogurt, granola, oats, berries, tea)
demo-4    pet owner (dog food, cat food and litter, treats)
demo-5    snacker (chips, cookies, soda, frozen pizza; some beer, *not* age verified)
demo-6    new customer with an empty history (cold start)
========  ==============================================================
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from pydantic import ValidationError

from .exceptions import ConfigurationError
from .types import UserContext

__all__ = ["demo_user", "demo_users"]

_USERS_FILE = "demo_users.json"


def demo_users() -> list[UserContext]:
    """All demo users, in id order (``demo-1`` .. ``demo-6``)."""
    return list(_load())


def demo_user(user_id: str) -> UserContext:
    """One demo user by id; an unknown id raises ``ConfigurationError`` listing the valid ones."""
    for user in _load():
        if user.user_id == user_id:
            return user
    valid = ", ".join(u.user_id for u in _load())
    raise ConfigurationError(f"unknown demo user {user_id!r}; valid ids: {valid}")


@cache
def _load() -> tuple[UserContext, ...]:
    text = resources.files("storefront_sdk.data").joinpath(_USERS_FILE).read_text(encoding="utf-8")
    try:
        return tuple(UserContext.model_validate(u) for u in json.loads(text))
    except (ValueError, ValidationError) as e:  # a broken install, not a user error
        raise ConfigurationError(f"storefront_sdk/data/{_USERS_FILE} is invalid: {e}") from e
