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


# The quickstart notebook runs in tests/test_installed_wheel.py, from an installed wheel outside the
# checkout (the stricter of the two places; same budget and assertions).


def test_communities_notebook(monkeypatch, tmp_path):
    monkeypatch.setenv("RLJAX_NOTEBOOK_STEPS", "2048")
    monkeypatch.setenv("RLJAX_NOTEBOOK_EPISODE", "32")
    monkeypatch.setenv("RLJAX_NOTEBOOK_EVAL", "1")
    ns = run_notebook(os.path.join(ROOT, "notebooks", "communities.ipynb"), monkeypatch, tmp_path)
    assert len(ns["summary"]["members"]) == 4
    assert ns["frames"].shape == (32, 88, 88, 3)
    assert set(ns["report"]["arms"]) == {"treatment", "control"}
    assert ns["verdict"] in ("strong", "acceptable", "failure", "below acceptable") or "not tested" in ns["verdict"]


def test_empo_notebook(monkeypatch, tmp_path):
    monkeypatch.setenv("RLJAX_NOTEBOOK_STEPS", "400")
    ns = run_notebook(os.path.join(ROOT, "notebooks", "empo.ipynb"), monkeypatch, tmp_path)
    assert len(ns["summary"]["members"]) == 2
    errors = ns["report"]["members"][0]["errors"]
    assert all(0 <= errors[q]["mean"] < float("inf") for q in ("v_r", "pi_r", "x_h"))
    assert ns["learned"].v_r.shape[0] == 2


def test_pursuit_notebook(monkeypatch, tmp_path):
    monkeypatch.setenv("RLJAX_NOTEBOOK_STEPS", "256")
    ns = run_notebook(os.path.join(ROOT, "notebooks", "pursuit.ipynb"), monkeypatch, tmp_path)
    assert len(ns["summary"]["members"]) == 2
    assert set(ns["phases"]["name"]) == {"seed0", "seed1"} and len(ns["phases"]) >= 2
    assert len(ns["frames"]) >= 1 and ns["frames"][0].ndim == 3
