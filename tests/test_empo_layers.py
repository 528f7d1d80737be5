"""EMPO's share of the layering rule: ``rljax/empo`` imports nothing from ``environments`` or
``experiments`` (it knows worlds only through :mod:`rljax.empo.world_model` and
:mod:`rljax.empo.world`), checked on the source's imports (AST, function-local ones included)."""
from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORBIDDEN = ("environments", "experiments")


def imports_of(path: str) -> list[tuple[int, str]]:
    tree = ast.parse(open(path).read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def test_rljax_empo_imports_no_environment_or_experiment():
    folder = os.path.join(ROOT, "rljax", "empo")
    bad = [f"rljax/empo/{name}:{line} imports {mod}"
           for name in sorted(os.listdir(folder)) if name.endswith(".py")
           for line, mod in imports_of(os.path.join(folder, name)) if mod.split(".")[0] in FORBIDDEN]
    assert not bad, "; ".join(bad)


def test_the_check_can_fail(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from environments.multigrid import MultiGrid\n")
    assert imports_of(str(p)) == [(2, "environments.multigrid")]
