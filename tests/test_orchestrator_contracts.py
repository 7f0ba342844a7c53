"""The orchestrator talks to contracts, never to a concrete built-in component (issue #9).

``storefront.py``, ``_cascade.py``, ``_drive.py`` and ``_wiring.py`` may check a value
against a Python type (``list``, ``str``), a contract (a ``Protocol`` or abstract class
such as ``Retriever`` or ``LLM``), a data type (``types.py``, ``Catalog``) or one of their
own step types. They may not ask "is this our ``NearDuplicateGate``/``BM25Retriever``?":
such a special case is a fast path or a behaviour a custom component can never get.
Checked on the syntax tree: every ``isinstance``/``issubclass`` call, every
``type(x) is/== C`` comparison, and the contract passed to ``_wiring.expect``.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest

import storefront_sdk

PACKAGE = Path(storefront_sdk.__file__).resolve().parent
ORCHESTRATOR = ("storefront", "_cascade", "_drive", "_wiring")
DATA_MODULES = ("storefront_sdk.types", "storefront_sdk.catalog")
CONTRACT_MODULES = (
    "storefront_sdk.interfaces",
    "storefront_sdk.llm.base",
    "storefront_sdk.cache.base",
)


def allowed(cls: Any) -> bool:
    """A Python type, a contract, a data type or an orchestrator type: not a component."""
    if not inspect.isclass(cls):
        return False
    module = cls.__module__ or ""
    if module == "builtins" or not module.startswith("storefront_sdk"):
        return True
    if getattr(cls, "_is_protocol", False) or inspect.isabstract(cls):
        return True  # a contract: typing.Protocol or an ABC with abstract methods
    if module in CONTRACT_MODULES:
        return True  # a contract base with default behaviour (``Gate``: every check accepts)
    if module in DATA_MODULES:
        return True
    return module.removeprefix("storefront_sdk.") in ORCHESTRATOR


def names_in_scope(module_name: str, tree: ast.Module) -> dict[str, Any]:
    """The module's globals plus every name it imports anywhere (function-level too)."""
    module = importlib.import_module(module_name)
    scope: dict[str, Any] = dict(vars(builtins))
    scope.update(vars(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = importlib.import_module(
                "." * node.level + (node.module or ""), package="storefront_sdk"
            )
            for alias in node.names:
                scope[alias.asname or alias.name] = getattr(source, alias.name)
    return scope


def resolve(node: ast.expr, scope: dict[str, Any]) -> list[Any]:
    """The classes an ``isinstance`` second argument names (a tuple names several)."""
    if isinstance(node, ast.Tuple):
        return [cls for elt in node.elts for cls in resolve(elt, scope)]
    if isinstance(node, ast.Name):
        if node.id not in scope:
            raise LookupError(node.id)
        return [scope[node.id]]
    if isinstance(node, ast.Attribute):
        (base,) = resolve(node.value, scope)
        return [getattr(base, node.attr)]
    raise LookupError(ast.unparse(node))


def class_checks(tree: ast.Module) -> list[tuple[int, str, ast.expr]]:
    """(line, source, class expression) of every class check in the tree."""
    found: list[tuple[int, str, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            # isinstance(x, C), issubclass(X, C), and _wiring.expect(x, Contract, what)
            if node.func.id in ("isinstance", "issubclass", "expect") and len(node.args) >= 2:
                found.append((node.lineno, ast.unparse(node), node.args[1]))
        elif isinstance(node, ast.Compare):
            left = node.left
            if (
                isinstance(left, ast.Call)
                and isinstance(left.func, ast.Name)
                and left.func.id == "type"
                and all(isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)) for op in node.ops)
            ):
                found.extend((node.lineno, ast.unparse(node), c) for c in node.comparators)
    return found


# The one function whose class argument is a parameter: its call sites are checked instead.
PARAMETERS = {("_wiring", "kind")}


@pytest.mark.parametrize("name", ORCHESTRATOR)
def test_no_class_check_on_a_concrete_component(name: str) -> None:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    scope = names_in_scope(f"storefront_sdk.{name}", tree)
    bad: list[str] = []
    for line, source, expr in class_checks(tree):
        try:
            classes = resolve(expr, scope)
        except LookupError as missing:
            if (name, str(missing.args[0])) in PARAMETERS:
                continue
            bad.append(f"{name}.py:{line}: {source}: cannot resolve {missing.args[0]}")
            continue
        bad.extend(
            f"{name}.py:{line}: {source}: {cls!r} is a concrete component"
            for cls in classes
            if not allowed(cls)
        )
    assert not bad, "\n".join(bad)


def test_the_check_would_catch_the_old_special_cases() -> None:
    # The shapes issue #9 found on da874c2 (storefront.py:370-379, 433; harness.py:285).
    from storefront_sdk import BM25Retriever, StaticThemeGenerator
    from storefront_sdk.filtering import NearDuplicateGate
    from storefront_sdk.interfaces import Gate, Retriever

    source = (
        "if isinstance(retriever, BM25Retriever): pass\n"
        "if isinstance(gate, (Gate, NearDuplicateGate)): pass\n"
        "if type(fallback) is StaticThemeGenerator: pass\n"
        "expect(r, Retriever, 'retriever')\n"
    )
    scope = {
        "BM25Retriever": BM25Retriever,
        "NearDuplicateGate": NearDuplicateGate,
        "StaticThemeGenerator": StaticThemeGenerator,
        "Gate": Gate,
        "Retriever": Retriever,
    }
    verdicts = [
        [allowed(cls) for cls in resolve(expr, scope)]
        for _, _, expr in class_checks(ast.parse(source))
    ]
    assert verdicts == [[False], [True, False], [False], [True]]
