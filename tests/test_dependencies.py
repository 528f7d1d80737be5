"""Every third-party module that rljax, environments or experiments import is declared in
pyproject.toml: in the core dependencies, or (for an optional back-end listed in
``rljax.optional.EXTRAS``) in the extra that the table names. A module that is only present on
this machine because something else pulled it in fails here, not on a user's fresh install."""
import ast
import os
import sys
import tomllib

import pytest

from rljax.errors import ConfigError
from rljax.optional import EXTRAS, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWN = {"rljax", "environments", "experiments", "tests"}
# import name -> distribution name, where they differ
DISTRIBUTION = {"PIL": "pillow", "orbax": "orbax-checkpoint", "yaml": "pyyaml", "IPython": "ipython", "stable_baselines3": "stable-baselines3",
                "tensorboardX": "tensorboardx"}
# `jax_plugins` is the namespace that jax's own accelerator plugins install into; the CLI only
# probes it (inside try/except ImportError) to tell whether an accelerator may be present.
PROBED_ONLY = {"jax_plugins"}


def _requirement_name(req: str) -> str:
    name = req.split(";")[0].split("[")[0]
    for sep in "<>=!~ ":
        name = name.split(sep)[0]
    return name.strip().lower().replace("_", "-")


def _imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for top in ("rljax", "environments", "experiments"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for fname in files:
                if not fname.endswith(".py"):
                    continue
                path = os.path.join(dirpath, fname)
                with open(path) as f:
                    tree = ast.parse(f.read(), path)
                for node in ast.walk(tree):
                    names = []
                    if isinstance(node, ast.Import):
                        names = [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        names = [node.module]
                    for name in names:
                        found.setdefault(name.split(".")[0], set()).add(os.path.relpath(path, ROOT))
    return {m: p for m, p in found.items() if m not in sys.stdlib_module_names and m not in OWN}


def test_every_imported_module_is_declared():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    core = {_requirement_name(r) for r in project["dependencies"]}
    extras = {k: {_requirement_name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    problems = []
    for module, paths in sorted(_imports().items()):
        if module in PROBED_ONLY:
            continue
        dist = DISTRIBUTION.get(module, module).lower().replace("_", "-")
        where = f"{module} (imported by {', '.join(sorted(paths)[:3])})"
        if module in EXTRAS:
            if dist not in extras.get(EXTRAS[module], set()):
                problems.append(f"{where}: not in the extra [{EXTRAS[module]}] that rljax.optional names")
        elif dist not in core:
            problems.append(f"{where}: not a core dependency in pyproject.toml, and not an optional back-end "
                            "in rljax.optional.EXTRAS")
    assert not problems, "\n".join(problems)


def test_the_check_can_fail():
    # the walk sees imports inside functions too (the optional back-ends are imported there)
    found = _imports()
    assert "tensorboardX" in found and "rljax/logger.py" in found["tensorboardX"]
    assert "optuna" in found


def test_missing_backend_names_the_extra(monkeypatch):
    import rljax.optional as optional

    monkeypatch.setattr(optional, "installed", lambda module: module != "tensorboardX")
    with pytest.raises(ConfigError, match=r"runner.tensorboard=true needs tensorboardX.*pip install -e '\.\[tensorboard\]'"):
        require("tensorboardX", "runner.tensorboard=true")
    require("wandb", "runner.wandb=true")  # reported as installed by the patch: no error


@pytest.mark.parametrize("key,module,extra", [("runner.tensorboard", "tensorboardX", "tensorboard"),
                                              ("runner.wandb", "wandb", "wandb")])
def test_cli_stops_before_compiling_when_a_backend_is_missing(monkeypatch, capsys, tmp_path, key, module, extra):
    import rljax.optional as optional
    from rljax import cli

    monkeypatch.setattr(optional, "installed", lambda m: m != module)
    code = cli.main(["run", "cartpole", "--set", f"{key}=true", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and f"{key}=true needs {module}" in err[0] and f".[{extra}]" in err[0], err
    assert not (tmp_path / "run").exists()  # nothing was set up, let alone compiled
