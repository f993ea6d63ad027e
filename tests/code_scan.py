"""Reading the code for the names it publishes (detail-types, metric names), so tests derive
those lists from the code instead of restating them."""

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT / "functions" if "functions" in path.parts else ROOT)
    return ".".join(relative.with_suffix("").parts)


def python_files(*folders: str) -> Iterator[tuple[Path, ast.Module, str]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text()), module_name(path)


def assignments(tree: ast.AST) -> dict[str, list[ast.expr]]:
    """name -> every expression assigned to it anywhere in the module (locals included), and
    for loop targets over `X.items()` / `X.values()`, the values of X."""
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Call):
            method = node.iter.func
            if isinstance(method, ast.Attribute) and method.attr in ("items", "values"):
                target = node.target
                if isinstance(target, ast.Tuple) and method.attr == "items":
                    target = target.elts[1]
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(
                        ast.Attribute(value=method.value, attr="__values__")
                    )
    return assigned


def strings(
    node: ast.AST, module: str, assigned: dict[str, list[ast.expr]] | None = None
) -> Iterator[str]:
    """The string values an expression can take: literals, module constants, local variables
    assigned from those, both branches of a conditional, the values of a constant dict."""
    assigned = assigned or {}
    namespace = importlib.import_module(module).__dict__
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.Name):
        value = namespace.get(node.id)
        if isinstance(value, str):
            yield value
        elif value is None:
            for expression in assigned.get(node.id, []):
                yield from strings(expression, module)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        base = namespace.get(node.value.id)
        if node.attr == "__values__" and isinstance(base, dict):
            yield from (v for v in base.values() if isinstance(v, str))
        else:
            value = getattr(base, node.attr, None)
            if isinstance(value, str):
                yield value
    elif isinstance(node, ast.IfExp):
        yield from strings(node.body, module, assigned)
        yield from strings(node.orelse, module, assigned)
