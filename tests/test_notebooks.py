"""Notebooks run top to bottom on a tiny budget (code cells executed in order, as a kernel would)."""
import json
import os

import matplotlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(path, monkeypatch, tmp_path):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    ns = {}
    with open(path) as f:
        nb = json.load(f)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), path, "exec"), ns)
    return ns


def test_quickstart_notebook(monkeypatch, tmp_path):
    monkeypatch.setenv("RLJAX_NOTEBOOK_STEPS", "4096")
    ns = run_notebook(os.path.join(ROOT, "notebooks", "quickstart.ipynb"), monkeypatch, tmp_path)
    assert ns["same"] is True
    assert len(ns["summary"]["members"]) == 4


def test_pursuit_notebook(monkeypatch, tmp_path):
    monkeypatch.setenv("RLJAX_NOTEBOOK_STEPS", "256")
    ns = run_notebook(os.path.join(ROOT, "notebooks", "pursuit.ipynb"), monkeypatch, tmp_path)
    assert len(ns["summary"]["members"]) == 2
    assert set(ns["phases"]["name"]) == {"seed0", "seed1"} and len(ns["phases"]) >= 2
    assert len(ns["frames"]) >= 1 and ns["frames"][0].ndim == 3
