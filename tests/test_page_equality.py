"""Golden pages: the baseline storefront builds exactly the pages recorded before a refactor.

``tests/data/page_fingerprints.json`` was written by ``scripts/page_fingerprints.py``
(see its docstring for when and how to regenerate it on purpose).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "page_fingerprints", REPO / "scripts" / "page_fingerprints.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("page_fingerprints", module)
    spec.loader.exec_module(module)
    return module


pf = _script()


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(pf.FINGERPRINTS.read_text(encoding="utf-8"))
    return data


def _compare(got: dict[str, Any], golden: dict[str, Any], prefix: str) -> None:
    want = {k: v for k, v in golden.items() if k.startswith(prefix)}
    assert want, f"no golden pages under {prefix!r}"
    assert sorted(got) == sorted(want)
    for key in sorted(want):
        assert got[key] == want[key], f"page {key} changed"


def test_demo_pages_unchanged(golden: dict[str, Any]) -> None:
    got = pf.demo_fingerprints()
    _compare({k: v for k, v in got.items() if k.startswith("demo/")}, golden, "demo/")
    _compare({k: v for k, v in got.items() if k.startswith("demo_static/")}, golden, "demo_static/")


def test_instacart_pages_unchanged(golden: dict[str, Any]) -> None:
    got = pf.instacart_fingerprints()
    if got is None:
        pytest.skip(f"Instacart data not found at {pf.INSTACART}")
    _compare(got, golden, "instacart/")


def test_abuild_builds_the_same_placements(golden: dict[str, Any]) -> None:
    """The async driver builds the same placements as the sync one (stage order may differ)."""
    from storefront_sdk import Catalog, Storefront
    from storefront_sdk.demo import demo_users

    sf = Storefront(Catalog.demo(), llm=None)
    users = demo_users()
    pages = asyncio.run(sf.abuild_many(users))
    for user, page in zip(users, pages, strict=True):
        want = golden[f"demo/{user.user_id}"]
        got = pf.page_fingerprint(page)
        assert got["placements"] == want["placements"]
        assert sorted(got["stages"]) == sorted(want["stages"])
        assert sorted(got["events"]) == sorted(want["events"])
