"""The packages' imports point one way: physics_iq <- generators <- agent, with agent.vlm beside generators.

Read from the source (every ``import`` statement, function-level ones included), so an upward import fails
here even when it hides in a lazily-called function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("physics_iq", "generators", "agent", "prompts")

#: Package (dotted prefix) -> the packages of ours it may import. The most specific prefix applies.
ALLOWED: dict[str, tuple[str, ...]] = {
    "physics_iq": ("physics_iq",),
    "prompts": ("prompts",),
    "generators": ("generators", "physics_iq"),
    "agent.vlm": ("agent.vlm", "physics_iq"),
    "agent": ("agent", "generators", "physics_iq", "prompts"),
}
#: Third-party packages a package must never import (a light install scores without them).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "physics_iq": ("torch", "diffusers", "transformers", "langgraph", "openai"),
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                out.append((node.lineno, ".".join([*base, node.module] if node.module else base)))
            elif node.module:
                out.append((node.lineno, node.module))
    return out


def _rule(module: str, table: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    matches = [p for p in table if module == p or module.startswith(p + ".")]
    return table[max(matches, key=len)] if matches else None


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("module,path", _modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_import_runs_upward(module: str, path: Path) -> None:
    allowed = _rule(module, ALLOWED) or ()
    forbidden = _rule(module, FORBIDDEN) or ()
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for line, name in _imports(path, module)
        if (_within(name, OURS) and not _within(name, allowed)) or _within(name, forbidden)
    ]
    assert not wrong, f"{module} may import {allowed} of ours (and none of {forbidden}):\n" + "\n".join(wrong)


def test_the_rules_catch_an_upward_import(tmp_path: Path) -> None:
    """The scanner sees function-level and relative imports (so the test above can fail)."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from agent import graph\n    from . import base\n", encoding="utf-8")
    names = [name for _, name in _imports(source, "generators.mod")]
    assert names == ["agent", "generators"]
    assert not _within("agent", ALLOWED["generators"])
