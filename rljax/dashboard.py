"""A live multi-panel figure per member, refreshed between chunks (a runner callback).

Panels: training episode return, episode length, losses, entropy, action distribution of the
latest update, and the current observation of environment 0. Written as PNG
(``<run>/dashboard_<member>.png``) and, inside a notebook, shown inline.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from rljax.runner import ChunkContext

ObsToImage = Callable[[np.ndarray], np.ndarray]


class Dashboard:
    """``obs_to_image(obs) -> HxW or HxWx3`` array for the observation panel (optional).
    Keeps one float per metric per update in memory (a few MB for a million updates)."""

    def __init__(self, obs_to_image: ObsToImage | None = None, every: int = 1, inline: bool | None = None,
                 max_members: int = 16):
        self.obs_to_image = obs_to_image
        self.max_members = max_members  # figures for the first members only: one PNG each
        self.every = max(1, every)
        self.history: dict[str, list[np.ndarray]] = {}
        self.steps: list[np.ndarray] = []
        self.calls = 0
        self.inline = _in_notebook() if inline is None else inline
        self.paths: list[str] = []

    def __call__(self, ctx: ChunkContext) -> None:
        batch = ctx.runner.steps_per_update
        k = next(iter(ctx.metrics.values())).shape[1]
        self.steps.append((ctx.update - k + 1 + np.arange(k)) * batch)
        for name, v in ctx.metrics.items():
            if np.ndim(v) == 2:
                self.history.setdefault(name, []).append(np.asarray(v))
        self.calls += 1
        if self.calls % self.every == 0 or ctx.update == ctx.runner.num_updates:
            self.render(ctx)

    def series(self, name: str) -> np.ndarray:
        return np.concatenate(self.history[name], axis=1) if name in self.history else np.zeros((0, 0))

    def render(self, ctx: ChunkContext) -> list[str]:
        import matplotlib

        if not self.inline:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        steps = np.concatenate(self.steps)
        obs = ctx.runner.algorithm.observation(ctx.state)  # [M, N, ...] or None
        self.paths = []
        for i, member in enumerate(ctx.runner.members[: self.max_members]):
            fig, axes = plt.subplots(2, 3, figsize=(13, 7))
            fig.suptitle(f"{ctx.runner.experiment.name} / {member.name} @ {ctx.update * ctx.runner.steps_per_update:,} steps")
            self._line(axes[0, 0], steps, ["episode_return"], i, "episode return")
            self._line(axes[0, 1], steps, ["episode_length"], i, "episode length")
            self._line(axes[0, 2], steps, ["pg_loss", "v_loss"], i, "losses")
            self._line(axes[1, 0], steps, ["entropy", "approx_kl"], i, "entropy / KL")
            acts = sorted((k for k in self.history if k.startswith("action_frac")), key=lambda k: int(k[11:]))
            ax = axes[1, 1]
            if acts:
                ax.bar(range(len(acts)), [self.series(k)[i, -1] for k in acts])
                ax.set_xticks(range(len(acts)))
            ax.set_title("action distribution (latest update)")
            ax = axes[1, 2]
            if self.obs_to_image is not None and obs is not None:
                ax.imshow(self.obs_to_image(np.asarray(obs[i, 0])), interpolation="nearest")
            ax.set_title("observation, env 0")
            ax.axis("off")
            fig.tight_layout()
            path = os.path.join(ctx.runner.out_dir, f"dashboard_{member.name}.png")
            fig.savefig(path, dpi=80)
            self.paths.append(path)
            if self.inline:
                from IPython.display import clear_output, display

                if i == 0:
                    clear_output(wait=True)
                display(fig)
            plt.close(fig)
        return self.paths

    def _line(self, ax: Any, steps: np.ndarray, names: list[str], i: int, title: str) -> None:
        """First series on the left axis, a second one on its own right axis (scales differ)."""
        for j, n in enumerate(names):
            v = self.series(n)
            target = ax if j == 0 else ax.twinx()
            if v.size:
                ok = np.isfinite(v[i])
                target.plot(steps[ok], v[i][ok], color=f"C{j}")
            target.set_ylabel(n, color=f"C{j}")
        ax.set_title(title)
        ax.set_xlabel("env steps")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:
        return False
