"""benchmarks/compare_commits.py: two commits, interleaved runs, each importing its own tree."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import compare_commits  # noqa: E402


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    done = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=REPO, capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout.strip() == "true"


def test_parse_metrics_takes_the_first_match_as_a_float() -> None:
    text = "a 1,234.5 ms\nshare  80.1%\nshare 12.0%\n"
    got = compare_commits.parse_metrics(
        text, {"ms": r"a ([\d.,]+) ms", "share": r"share\s+([\d.]+)%", "gone": r"nope (\d)"}
    )
    assert got == {"ms": 1234.5, "share": 80.1}


@pytest.mark.skipif(not _in_git_checkout(), reason="needs a git checkout")
def test_runs_alternate_and_each_side_imports_its_own_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A tiny "benchmark" that prints where storefront_sdk came from and a figure.
    script = tmp_path / "bench_where.py"
    script.write_text(
        "import storefront_sdk, pathlib\n"
        "root = pathlib.Path(storefront_sdk.__file__).resolve().parents[1]\n"
        f"print('figure', 7 if root == pathlib.Path(r'{REPO.resolve()}') else 3)\n"
    )
    status = compare_commits.main(
        ["HEAD", "--rounds", "2", "--nice", "0", "--script-from", "B",
         "--metric", r"figure=figure (\d+)", "--", str(script)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    # A (a temporary worktree of HEAD) printed 3, B (this tree) 7; order A B, then B A.
    rounds = [line.split(":")[0].strip() for line in out.splitlines() if "  round " in line]
    assert rounds == ["round 1 A", "round 1 B", "round 2 B", "round 2 A"]
    assert "A runs [3, 3]  B runs [7, 7]" in out
    assert "B/A 2.333" in out
    # The temporary worktree is gone again (this run's: others may be running).
    tree = re.search(r"A = HEAD \(\w+\) in (\S+)", out)
    assert tree is not None
    listed = subprocess.run(
        ["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert tree.group(1) not in listed and not Path(tree.group(1)).exists()
