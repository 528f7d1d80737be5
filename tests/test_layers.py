"""Layers run one way: experiments -> environments -> rljax. rljax imports nothing from
environments/ or experiments/, environments/ nothing from experiments/, and no module imports
itself back through a cycle (function-local imports count: they hide a cycle, they don't remove
it; imports under ``if TYPE_CHECKING:`` do not, they never run). The walk is over the source
(AST), so it sees imports that a test run never executes.

The checkout's top-level ``environments/`` and ``experiments/`` are imported as
``rljax.environments`` and ``rljax.experiments`` (symlinks in the checkout, subpackages in the
wheel), so that installed they cannot collide with a user's own ``experiments`` package. A module
imported under both names would exist twice (two config classes, two jit caches), so code and
tests must use only the ``rljax.`` names."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("rljax", "environments", "experiments")
TOP_LEVEL = ("environments", "experiments")  # folders of the checkout, imported as rljax.<folder>


def _layer(module: str) -> int:
    parts = module.split(".")
    return {"environments": 1, "experiments": 2}.get(parts[1], 0) if len(parts) > 1 else 0


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    rel = rel[: -len(".__init__")] if rel.endswith(".__init__") else rel
    return "rljax." + rel if rel.split(".")[0] in TOP_LEVEL else rel


def _imports(tree: ast.AST, package: str):
    """(imported module name, line) for every runtime import, relative ones resolved."""
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            yield from ((f"{base}.{a.name}", node.lineno) for a in node.names)
            yield base, node.lineno


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported own module: line} (every file walked is rljax.*)."""
    modules = {}
    for top in PACKAGES:
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    modules[_module_name(os.path.join(dirpath, f))] = os.path.join(dirpath, f)
    graph = {}
    for name, path in modules.items():
        with open(path) as fh:
            tree = ast.parse(fh.read(), path)
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        deps = {}
        for t, line in _imports(tree, package):
            # the longest own module the import names (``from x import y``: y may be a module)
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                deps.setdefault(t, line)
        graph[name] = deps
    return graph


def _path(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 1 and parts[1] in TOP_LEVEL:
        parts = parts[1:]
    return "/".join(parts) + ".py"


def test_layers_run_one_way():
    bad = []
    for mod, deps in _graph().items():
        for dep, line in deps.items():
            if _layer(dep) > _layer(mod):
                bad.append(f"{_path(mod)}:{line} imports {dep}")
    assert not bad, "imports against the layers (experiments -> environments -> rljax):\n" + "\n".join(sorted(bad))


def test_checkout_folders_imported_only_under_rljax():
    bad = []
    for top in (*PACKAGES, "tests"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in (f for f in files if f.endswith(".py")):
                path = os.path.join(dirpath, f)
                with open(path) as fh:
                    tree = ast.parse(fh.read(), path)
                package = _module_name(os.path.join(dirpath, "__init__.py"))
                for t, line in _imports(tree, package):
                    if t.split(".")[0] in TOP_LEVEL:
                        bad.append(f"{os.path.relpath(path, ROOT)}:{line} imports {t} (use rljax.{t})")
    assert not bad, "imports of the checkout's top-level names:\n" + "\n".join(sorted(set(bad)))


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ importing its own submodules is how packages export: not a cycle
    edges = {m: {d for d in deps if not (m == d.rpartition(".")[0] or d.startswith(m + "."))}
             for m, deps in graph.items()}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    lines = [" <-> ".join(_path(m) for m in c) for c in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(lines)
