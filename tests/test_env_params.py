"""rljax.envs.params: one declaration per environment's parameters, the same checks, messages,
config classes and step limit everywhere."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from rljax.config import from_dict
from rljax.environments import foraging, harvest, memory, navigation, probes, pursuit_evasion
from rljax.envs.params import ParamError, ParamTable, Spec, config_error, stack_params
from rljax.errors import ConfigError


@struct.dataclass
class _Params:
    arena: jax.Array
    n: jax.Array
    rate: jax.Array
    on: jax.Array
    probs: jax.Array


def _table():
    def check(v, t):
        t.require(v["n"] * v["rate"] <= 10, "rate", v["rate"], f"n * rate must be <= 10, n={v['n']}")

    return ParamTable("toy", _Params, {
        "n": Spec(4, "int", ge=1),
        "rate": Spec(0.5, gt=0, le=1),
        "on": Spec(False, "flag"),
        "probs": Spec((0.5, 0.5), "vector"),
    }, extra=("arena",), check=check, step_limit="n")


@pytest.mark.parametrize("overrides, message", [
    ({"n": 0}, "toy params: n=0 is invalid: must be >= 1"),
    ({"n": 2.5}, "toy params: n=2.5 is invalid: must be an integer"),
    ({"rate": 0.0}, "toy params: rate=0.0 is invalid: must be in (0, 1]"),
    ({"rate": float("nan")}, "toy params: rate=nan is invalid: must be finite"),
    ({"rate": "fast"}, "toy params: rate='fast' is invalid: must be a number"),
    ({"rate": True}, "toy params: rate=True is invalid: must be a number"),
    ({"on": 2}, "toy params: on=2 is invalid: must be 0 or 1"),
    ({"probs": (1.0,)}, "toy params: probs=(1.0,) is invalid: must be 2 numbers"),
    ({"n": 30, "rate": 0.5}, "toy params: rate=0.5 is invalid: n * rate must be <= 10, n=30"),
    ({"speed": 1}, "toy params: unknown field 'speed'; valid fields: ['n', 'rate', 'on', 'probs']"),
])
def test_bad_values_name_the_field_and_the_value(overrides, message):
    with pytest.raises(ValueError) as e:
        _table().build(overrides, arena=jnp.zeros(()))
    assert str(e.value) == message


def test_build_types_and_defaults():
    t = _table()
    p = t.build({"on": True, "n": 7.0}, arena=jnp.ones(3))
    assert p.n.dtype == jnp.int32 and int(p.n) == 7 and p.on.dtype == jnp.int32 and int(p.on) == 1
    assert p.rate.dtype == jnp.float32 and p.probs.shape == (2,) and p.arena.shape == (3,)
    assert t.build(base={"n": 3}, overrides={"rate": 0.25}, arena=0).n == 3  # defaults < base < overrides


def test_config_class_holds_the_table_defaults_and_reads_back():
    t = _table()
    Settings = t.settings_class("ToySettings", exclude=("probs",))

    @dataclasses.dataclass(frozen=True)
    class EnvConfig(Settings):
        arms: tuple[str, ...] = ("a",)

    cfg = from_dict(EnvConfig, {"n": 9, "on": True})
    assert dataclasses.asdict(EnvConfig()) == {"n": 4, "rate": 0.5, "on": False, "arms": ("a",)}
    assert t.from_settings(cfg, exclude=("probs",)) == {"n": 9, "rate": 0.5, "on": True}
    with pytest.raises(ConfigError, match="env.n: expected an integer"):
        from_dict(EnvConfig, {"n": "many"}, prefix="env.")
    with pytest.raises(ValueError) as e:
        t.build(t.from_settings(from_dict(EnvConfig, {"n": -1})), arena=0)
    assert str(config_error(e.value, "env.")) == "env.n=-1 is invalid: must be >= 1"


def test_step_limit_concrete_stacked_and_traced():
    t = _table()
    stacked = stack_params([t.build({"n": n}, arena=0) for n in (3, 8, 5)])
    assert stacked.n.shape == (3,) and t.max_steps(stacked) == 8
    seen = []
    jax.jit(lambda p: seen.append(t.max_steps(p)) or p.n)(stacked)
    assert seen == [4]  # traced: the declared default, a static shape


def test_table_must_match_the_struct():
    with pytest.raises(TypeError, match="differ from _Params"):
        ParamTable("toy", _Params, {"n": Spec(1, "int")}, extra=("arena",))


@pytest.mark.parametrize("module, cls", [
    (foraging, foraging.ForagingParams), (harvest, harvest.HarvestParams), (pursuit_evasion, pursuit_evasion.PursuitParams),
    (navigation, navigation.NavigationParams), (memory, memory.MemoryParams), (probes, probes.ProbeParams),
])
def test_every_numeric_environment_declares_its_params_with_the_table(module, cls):
    assert isinstance(module.PARAMS, ParamTable) and module.PARAMS.cls is cls
    assert not hasattr(module, "_FIELDS") and not hasattr(module, "_check")


@pytest.mark.parametrize("experiment, section, table, exclude", [
    ("goodhart", "env", foraging.PARAMS, ("gamma",)),
    ("pursuit", "env", pursuit_evasion.PARAMS, ()),
    ("communities", "env", harvest.PARAMS, ("permitted", "treatment", "ego_is_resident", "community_probs")),
    ("memory", "env", memory.PARAMS, ()),
])
def test_experiment_configs_embed_the_environment_params(experiment, section, table, exclude):
    from rljax.experiment import load_experiment

    cfg = load_experiment(experiment).config_cls()
    env_cfg = getattr(cfg, section)
    fields = {f.name for f in dataclasses.fields(env_cfg)}
    assert set(table.specs) - set(exclude) <= fields
    defaults = {k: v for k, v in table.defaults.items() if k not in exclude}
    ours = table.from_settings(env_cfg, exclude=exclude)
    changed = {k for k in defaults if ours[k] != defaults[k]}
    # an experiment may choose another default, but then says so in its own class body
    own = set(type(env_cfg).__dict__.get("__annotations__", {}))
    assert changed <= own, f"{experiment}: {changed - own} differ from the environment's defaults without a declaration"
