"""No module over ~500 lines without the reason stated in its docstring (issue #9).

One concept per module: a module that grows past 500 lines either splits or says in its
docstring why it is one concept (``It stays one module because ...``). This test finds
the long modules and checks that their docstring carries such a sentence, so a module
that grows past the line later has to state its case (or split) in the same change.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import storefront_sdk

PACKAGE = Path(storefront_sdk.__file__).resolve().parent
LIMIT = 500
REASON = re.compile(
    r"(stays one (module|piece)|over 500 lines|kept together)[^.]*(because|:)", re.IGNORECASE
)


def long_modules() -> list[tuple[Path, int]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > LIMIT:
            out.append((path, lines))
    return out


def test_every_long_module_states_why_it_is_one_module() -> None:
    missing = []
    for path, lines in long_modules():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if not REASON.search(" ".join(doc.split())):
            missing.append(f"{path.relative_to(PACKAGE.parent)} ({lines} lines)")
    assert not missing, (
        f"modules over {LIMIT} lines without the reason in their docstring "
        "(split them, or say 'It stays one module because ...'):\n" + "\n".join(missing)
    )


def test_the_reason_pattern_rejects_a_docstring_without_one() -> None:
    assert REASON.search("It stays one module because it is one server.")
    assert REASON.search("Why this module is over 500 lines: it is one concept.")
    assert not REASON.search("Chat completions over HTTP with retries. One module.")
