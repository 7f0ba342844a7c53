"""The `storefront` command, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from storefront_sdk.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storefront_sdk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_build_json_has_six_dense_placements_with_distinct_titles() -> None:
    proc = run_cli("build", "--user", "demo-1", "--format", "json", "--llm", "none")
    assert proc.returncode == 0, proc.stderr
    page = json.loads(proc.stdout)
    placements = page["placements"]
    assert len(placements) >= 6
    assert all(len(pl["products"]) >= 8 for pl in placements)
    titles = [pl["theme"]["title"] for pl in placements]
    assert len(set(titles)) == len(titles)
    assert page["trace"]["stages"]


def test_build_table_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--user", "demo-6", "--llm", "none"]) == 0
    out = capsys.readouterr().out
    assert "Storefront for user demo-6" in out and "1. " in out
    target = tmp_path / "page.json"
    assert (
        main(["build", "--user", "demo-2", "--llm", "none", "--format", "json", "-o", str(target)])
        == 0
    )
    assert json.loads(target.read_text())["user_id"] == "demo-2"


def test_custom_catalog_and_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from storefront_sdk import Catalog

    demo = Catalog.demo()
    path = tmp_path / "mini.csv"
    rows = ["id,title,department,aisle,price"]
    rows += [
        f"{p.id},{p.title.replace(',', ' ')},{p.department},{p.aisle},{p.price or 1}"
        for p in demo.products[:400]
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    ids = ",".join(p.id for p in demo.products[:5])
    code = main(
        [
            "build",
            "--user",
            "x",
            "--catalog",
            str(path),
            "--history",
            ids,
            "--llm",
            "none",
            "--placements",
            "4",
            "--products",
            "6",
            "--min-products",
            "3",
            "--format",
            "json",
        ]
    )
    assert code == 0
    page = json.loads(capsys.readouterr().out)
    assert 1 <= len(page["placements"]) <= 4


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    proc = run_cli("build", "--user", "nobody", "--llm", "none")
    assert proc.returncode == 2
    assert "unknown demo user 'nobody'" in proc.stderr and "demo-1" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title,price\n1,Milk,abc\n", encoding="utf-8")
    proc = run_cli("build", "--user", "x", "--catalog", str(bad), "--llm", "none")
    assert proc.returncode == 2
    assert "bad.csv" in proc.stderr and "row 2" in proc.stderr and "price" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_describes_commands() -> None:
    proc = run_cli("build", "--help")
    assert proc.returncode == 0
    for option in ("--user", "--catalog", "--history", "--format", "--llm", "--base-url"):
        assert option in proc.stdout
