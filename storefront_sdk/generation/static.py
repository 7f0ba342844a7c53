"""The non-personalised baseline: the same fixed themes for every user."""

from __future__ import annotations

from collections.abc import Sequence

from ..interfaces import ThemeGenerator
from ..types import Theme, UserContext

__all__ = ["DEFAULT_STATIC_THEMES", "StaticThemeGenerator"]


def _t(title: str, description: str, *concepts: str) -> Theme:
    return Theme(
        title=title,
        description=description,
        concepts=list(concepts),
        kind="static",
        source="static",
    )


DEFAULT_STATIC_THEMES: tuple[Theme, ...] = (
    _t(
        "Fresh fruit and vegetables",
        "Seasonal produce for every day.",
        "fresh fruits",
        "fresh vegetables",
        "bananas",
        "salad",
    ),
    _t("Dairy and eggs", "Milk, yogurt, cheese and eggs.", "milk", "yogurt", "cheese", "eggs"),
    _t("Bakery favourites", "Breads and baked treats.", "bread", "bagels", "tortillas", "muffins"),
    _t("Snack time", "Chips, crackers and sweet bites.", "chips", "crackers", "cookies", "nuts"),
    _t("Something to drink", "Water, juice, coffee and tea.", "water", "juice", "coffee", "tea"),
    _t(
        "From the freezer",
        "Frozen meals and desserts.",
        "frozen pizza",
        "frozen meals",
        "ice cream",
    ),
    _t("Pantry staples", "Pasta, rice, sauces and cans.", "pasta", "rice", "pasta sauce", "soup"),
    _t(
        "Breakfast", "Cereal, granola and spreads.", "cereal", "granola", "oatmeal", "peanut butter"
    ),
    _t("Meat and seafood", "Chicken, beef and fish.", "chicken", "beef", "salmon", "turkey"),
    _t(
        "Household essentials",
        "Cleaning and paper goods.",
        "paper towels",
        "dish soap",
        "laundry detergent",
    ),
)


class StaticThemeGenerator(ThemeGenerator):
    """Returns the first ``n`` of a fixed list of themes, whoever the user is."""

    source = "static"

    @property
    def run_inline(self) -> bool:
        return True

    def __init__(self, themes: Sequence[Theme] | None = None) -> None:
        self.themes: tuple[Theme, ...] = (
            tuple(themes) if themes is not None else DEFAULT_STATIC_THEMES
        )

    def generate(self, user: UserContext, n: int) -> list[Theme]:
        return list(self.themes[:n])
