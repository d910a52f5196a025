"""The package stays readable: no function longer than about a screen."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "segmentation"
MAX_BODY_LINES = 60


def _functions() -> list[tuple[str, str, int]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = node.body
            # the docstring is documentation, not code
            if (
                len(body) > 1
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
            ):
                body = body[1:]
            assert node.end_lineno is not None
            found.append(
                (str(path.relative_to(PACKAGE)), node.name, node.end_lineno - body[0].lineno + 1)
            )
    return found


def test_the_package_has_functions() -> None:
    # the walk itself works: a broken glob would make the next test pass vacuously
    assert len(_functions()) > 200


def test_no_function_is_longer_than_a_screen() -> None:
    long = [(path, name, lines) for path, name, lines in _functions() if lines > MAX_BODY_LINES]
    assert not long, long
