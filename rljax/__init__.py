"""rljax: end-to-end compiled reinforcement learning in JAX."""
__version__ = "0.1.0"


def load(run_dir: str, checkpoint: "str | int" = "latest", member: "str | int | None" = None,
         role: "str | None" = None):
    """A trained run's policy, environment and task parameters; see :func:`rljax.trained.load`."""
    from rljax.trained import load as _load  # lazy: ``import rljax`` stays light

    return _load(run_dir, checkpoint=checkpoint, member=member, role=role)
