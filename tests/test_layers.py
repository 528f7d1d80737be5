"""Layers run one way: experiments -> environments -> rljax. rljax imports nothing from
environments/ or experiments/, environments/ nothing from experiments/, and no module imports
itself back through a cycle (function-local imports count: they hide a cycle, they don't remove
it; imports under ``if TYPE_CHECKING:`` do not, they never run). The walk is over the source
(AST), so it sees imports that a test run never executes."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("rljax", "environments", "experiments")
LAYER = {"rljax": 0, "environments": 1, "experiments": 2}


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
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported own module: line}."""
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
        for node in _runtime_nodes(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                # the longest own module the import names (``from x import y``: y may be a module)
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and t.split(".")[0] in PACKAGES:
                    deps.setdefault(t, node.lineno)
        graph[name] = deps
    return graph


def _path(name: str) -> str:
    return name.replace(".", "/") + ".py"


def test_layers_run_one_way():
    bad = []
    for mod, deps in _graph().items():
        for dep, line in deps.items():
            if LAYER[dep.split(".")[0]] > LAYER[mod.split(".")[0]]:
                bad.append(f"{_path(mod)}:{line} imports {dep}")
    assert not bad, "imports against the layers (experiments -> environments -> rljax):\n" + "\n".join(sorted(bad))


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
