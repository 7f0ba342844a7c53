"""Demo users over the demo catalog, and the generator that writes both."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

from storefront_sdk import Catalog, ConfigurationError, UserContext
from storefront_sdk.demo import demo_user, demo_users

REPO = Path(__file__).resolve().parents[1]


def departments_bought(user: UserContext, catalog: Catalog) -> Counter[str]:
    return Counter(catalog[i.product_id].department for i in user.history)


def test_six_demo_users_over_the_demo_catalog(demo_catalog: Catalog) -> None:
    users = demo_users()
    assert [u.user_id for u in users] == [f"demo-{n}" for n in range(1, 7)]
    for user in users:
        assert all(i.product_id in demo_catalog for i in user.history), user.user_id


def test_histories_have_several_orders_and_reorders() -> None:
    for user in demo_users()[:5]:
        orders = {i.order_number for i in user.history}
        assert len(orders) >= 5, user.user_id
        per_product = Counter(i.product_id for i in user.history)
        reordered = [pid for pid, n in per_product.items() if n >= 3]
        assert len(reordered) >= 3, user.user_id
        order_times = sorted({(i.order_number, i.timestamp) for i in user.history if i.timestamp})
        assert len(order_times) == len(orders), "one timestamp per order"
        times = [t for _, t in order_times]
        assert times == sorted(times), "order numbers follow time"


def test_users_have_distinct_tastes(demo_catalog: Catalog) -> None:
    top = {
        u.user_id: departments_bought(u, demo_catalog).most_common(1)[0][0]
        for u in demo_users()[:5]
    }
    assert top["demo-2"] == "babies"
    assert top["demo-4"] == "pets"
    assert top["demo-5"] == "snacks"
    italian = demo_user("demo-1")
    titles = " ".join(demo_catalog[i.product_id].title for i in italian.history).lower()
    assert titles.count("pasta") >= 5 and "parmesan" in titles
    breakfast = demo_user("demo-3")
    aisles = Counter(demo_catalog[i.product_id].aisle for i in breakfast.history)
    assert aisles["yogurt"] >= 3 and aisles["granola oatmeal"] >= 3


def test_alcohol_and_age_verification(demo_catalog: Catalog) -> None:
    """demo-1 buys wine and is verified; demo-5 buys beer but is not (a case for safety gates)."""
    assert departments_bought(demo_user("demo-1"), demo_catalog)["alcohol"] > 0
    assert demo_user("demo-1").age_verified
    assert departments_bought(demo_user("demo-5"), demo_catalog)["alcohol"] > 0
    assert not demo_user("demo-5").age_verified
    assert not any(
        departments_bought(demo_user(u), demo_catalog)["alcohol"]
        for u in ("demo-2", "demo-3", "demo-4")
    )


def test_cold_start_user() -> None:
    user = demo_user("demo-6")
    assert user.history == [] and user.notes


def test_unknown_demo_user_lists_valid_ids() -> None:
    with pytest.raises(
        ConfigurationError, match=r"unknown demo user 'demo-9'; valid ids: demo-1, .*demo-6"
    ):
        demo_user("demo-9")


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_demo_catalog", REPO / "scripts" / "make_demo_catalog.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    try:
        spec.loader.exec_module(module)
        csv_path, users_path = module.write(tmp_path)
    finally:
        del sys.modules[spec.name]
    data = REPO / "storefront_sdk" / "data"
    assert csv_path.read_bytes() == (data / "demo_catalog.csv").read_bytes()
    assert users_path.read_bytes() == (data / "demo_users.json").read_bytes()
