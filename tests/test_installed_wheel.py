"""The package as a user installs it: a wheel built from this checkout, installed into a fresh
virtual environment in a directory outside the repository, runs `rljax list`, a short CartPole
run and the quickstart notebook there, next to a user's own `experiments/` and `environments/`
packages that would shadow ours if the wheel still installed those generic top-level names.

The new environment sees this interpreter's site-packages (``--system-site-packages``) so that
jax and friends are not downloaded again; the wheel itself goes into the new environment's own
site-packages, which comes first on its path, and the test checks that it, not the checkout,
is what ran."""
import json
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECOY = "raise ImportError('the user\\'s own {0} package was imported: rljax must not claim the name {0}')\n"


def _run(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("installed")
    wheels = base / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), ROOT], cwd=base)
    (wheel,) = wheels.glob("rljax-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=base)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], cwd=base)
    work = base / "user_project"
    for name in ("experiments", "environments"):
        (work / name).mkdir(parents=True)
        (work / name / "__init__.py").write_text(DECOY.format(name))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(JAX_PLATFORMS="cpu", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return {"wheel": wheel, "py": py, "rljax": venv / "bin" / "rljax", "work": work, "env": env, "venv": venv}


def test_wheel_holds_only_the_rljax_namespace(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"rljax"}
    assert "rljax/environments/harvest.py" in names and "rljax/experiments/goodhart/experiment.py" in names


def test_installed_package_lists_runs_and_runs_a_notebook(installed):
    work, env = installed["work"], installed["env"]
    where = _run([str(installed["py"]), "-c", "import rljax, rljax.experiments.cartpole.experiment as e; print(rljax.__file__); print(e.__file__)"],
                 cwd=work, env=env)
    assert all(line.startswith(str(installed["venv"])) for line in where.split()), where

    listing = _run([str(installed["rljax"]), "list"], cwd=work, env=env)
    for name in ("cartpole", "communities", "empo", "goodhart", "pursuit"):
        assert name in listing

    _run([str(installed["rljax"]), "run", "cartpole", "--preset", "smoke", "--out", "runs/cp"], cwd=work, env=env)
    summary = json.loads((work / "runs" / "cp" / "summary.json").read_text())
    assert summary["env_steps_per_member"] > 90_000 and summary["eval_return_mean"] > 100  # it trained (random: ~22)

    # the quickstart notebook, cell by cell as a kernel runs it, from the user's directory
    code = ("import json, os, matplotlib; matplotlib.use('Agg'); ns = {}; nb = json.load(open(os.environ['NB']));\n"
            "[exec(compile(''.join(c['source']), 'quickstart', 'exec'), ns) for c in nb['cells'] if c['cell_type'] == 'code']\n"
            "print('SAME', ns['same'], len(ns['summary']['members']))")
    out = _run([str(installed["py"]), "-c", code], cwd=work,
               env=dict(env, NB=os.path.join(ROOT, "notebooks", "quickstart.ipynb"), RLJAX_NOTEBOOK_STEPS="4096"))
    assert "SAME True 4" in out
