"""One way to declare an environment's numeric parameters.

An environment's per-instance parameters are a flax struct of jnp scalars (so instances and
members can differ under ``vmap``). Its module declares each field once, in a :class:`ParamTable`:
default, kind (``float``, ``int``, a 0/1 ``flag`` or a fixed-length float ``vector``) and range.
The table then gives, with one behaviour for every environment:

* ``build(overrides)``: validated params; an unknown field or a bad value raises ``ValueError``
  naming the environment, the field and the value (``foraging params: min_food=-1 is invalid:
  must be >= 0``). Checks across fields go in the table's ``check`` function.
* ``settings_class()``: a frozen dataclass of the same fields as Python numbers with the same
  defaults, which experiment configs subclass (adding their static options) instead of
  restating the defaults; ``from_settings(cfg)`` reads the fields back out of such a config.
* ``max_steps(params)``: the truncation step limit of concrete params (the largest over stacked
  instances), or the declared default when ``params`` are traced: shapes that depend on it
  (rollout buffers, episode recorders) must be static.
* :func:`stack_params`: instances or members along a new leading axis.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from rljax.errors import ConfigError

P = TypeVar("P")
KINDS = ("float", "int", "flag", "vector")


class ParamError(ValueError):
    """A bad parameter value: ``"<env> params: <field>=<value> is invalid: <why>"``."""

    def __init__(self, env: str, field: str, value: Any, why: str):
        super().__init__(f"{env} params: {field}={value!r} is invalid: {why}")
        self.env, self.field, self.value, self.why = env, field, value, why


def config_error(error: ValueError, prefix: str) -> ConfigError:
    """The one-line config error for an environment's ``ValueError``, pointing at the config key:
    ``prefix`` ``"env."`` gives ``env.min_food=-1 is invalid: must be >= 0``."""
    if isinstance(error, ParamError):
        return ConfigError(f"{prefix}{error.field}={error.value!r} is invalid: {error.why}")
    return ConfigError(prefix + str(error))


@dataclasses.dataclass(frozen=True)
class Spec:
    """One field: its default, kind and valid range (``ge``/``gt``/``le``/``lt`` bounds, or
    ``choices``; a ``flag`` is an int32 that must be 0 or 1 and may be given as a bool)."""

    default: Any
    kind: str = "float"
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    doc: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Spec kind={self.kind!r} is invalid: must be one of {KINDS}")

    @property
    def dtype(self):
        return jnp.int32 if self.kind in ("int", "flag") else jnp.float32

    @property
    def python_type(self) -> Any:
        if self.kind == "vector":
            return tuple[float, ...]
        if self.kind == "flag":
            return bool if isinstance(self.default, bool) else int
        return int if self.kind == "int" else float

    def why_invalid(self, value: Any) -> str | None:
        """None when ``value`` is valid, else why not (the end of the error message)."""
        if self.kind == "vector":
            n = len(self.default)
            if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != n or not all(_is_number(v) for v in value):
                return f"must be {n} numbers"
            if not np.all(np.isfinite(np.asarray(value, np.float64))):
                return "must be finite"
            return None
        if self.kind == "flag":
            if not (_is_number(value) or isinstance(value, bool)) or float(value) not in (0.0, 1.0):
                return "must be 0 or 1"
            return None
        if not _is_number(value):
            return "must be a number"
        if not math.isfinite(float(value)):
            return "must be finite"
        if self.kind == "int" and float(value) != int(value):
            return "must be an integer"
        if self.choices is not None and value not in self.choices:
            return f"must be one of {self.choices}"
        lo, hi = (self.ge if self.ge is not None else self.gt), (self.le if self.le is not None else self.lt)
        ok = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
              and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
        if ok:
            return None
        if lo is not None and hi is not None:
            return f"must be in {'[' if self.ge is not None else '('}{lo}, {hi}{']' if self.le is not None else ')'}"
        return f"must be {'>=' if self.ge is not None else '>' if self.gt is not None else '<=' if self.le is not None else '<'} {lo if lo is not None else hi}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


class ParamTable(Generic[P]):
    """The fields of one environment's params struct ``cls`` (see the module docstring).

    Args:
        env: the environment's name, first word of every error message.
        cls: the struct; its fields are ``specs``' keys in order, after the ``extra`` ones
            (fields the table does not own, e.g. a nested arena's params or a mode index,
            passed to :meth:`build` as keyword arguments).
        specs: field name -> :class:`Spec`.
        check: checks across fields, called with the validated values (a dict) and this table
            (raise with :meth:`fail`).
        step_limit: the field that truncates episodes, if any (:meth:`max_steps`).
    """

    def __init__(self, env: str, cls: type[P], specs: Mapping[str, Spec], *, extra: Sequence[str] = (),
                 check: Callable[[dict[str, Any], "ParamTable"], None] | None = None, step_limit: str | None = None):
        names = tuple(f.name for f in dataclasses.fields(cls))
        if names != (*extra, *specs):
            raise TypeError(f"{env} params: the table's fields {(*extra, *specs)} differ from {cls.__name__}'s {names}")
        if step_limit is not None and step_limit not in specs:
            raise TypeError(f"{env} params: step_limit={step_limit!r} is not a field")
        self.env, self.cls, self.specs, self.extra = env, cls, dict(specs), tuple(extra)
        self._check, self.step_limit = check, step_limit

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: s.default for k, s in self.specs.items()}

    def fail(self, field: str, value: Any, why: str) -> None:
        raise ParamError(self.env, field, value, why)

    def require(self, ok: bool, field: str, value: Any, why: str) -> None:
        if not ok:
            self.fail(field, value, why)

    def values(self, overrides: Mapping[str, Any] | None = None, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults, then ``base``, then ``overrides``, each field validated; then ``check``."""
        given = {**(base or {}), **(overrides or {})}
        unknown = [k for k in given if k not in self.specs]
        if unknown:
            raise ValueError(f"{self.env} params: unknown field {unknown[0]!r}; valid fields: {list(self.specs)}")
        v = {**self.defaults, **given}
        for k, spec in self.specs.items():
            why = spec.why_invalid(v[k])
            if why is not None:
                self.fail(k, v[k], why)
        if self._check is not None:
            self._check(v, self)
        return v

    def to_params(self, values: Mapping[str, Any], **extra: Any) -> P:
        """The struct of already validated ``values`` (one jnp scalar or vector per field)."""
        arrays = {k: jnp.asarray(np.asarray(values[k], np.float64) if s.kind == "vector"
                                 else int(values[k]) if s.kind in ("int", "flag") else values[k], s.dtype)
                  for k, s in self.specs.items()}
        return self.cls(**extra, **arrays)

    def build(self, overrides: Mapping[str, Any] | None = None, *, base: Mapping[str, Any] | None = None, **extra: Any) -> P:
        """Validated params: defaults < ``base`` < ``overrides``; ``extra`` fills the fields the
        table does not own."""
        return self.to_params(self.values(overrides, base), **extra)

    def max_steps(self, params: P) -> int:
        """The truncation limit of concrete ``params`` (largest instance), the default if traced."""
        if self.step_limit is None:
            raise TypeError(f"{self.env} params declare no step limit")
        try:
            return int(np.max(np.asarray(getattr(params, self.step_limit))))
        except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
            return int(self.specs[self.step_limit].default)

    def settings_class(self, name: str, exclude: Sequence[str] = (), doc: str = "") -> type:
        """A frozen dataclass with one Python-typed field per table field (``exclude`` left out),
        defaults included: the base class of an experiment's environment config."""
        fields = [(k, s.python_type, dataclasses.field(default=s.default))
                  for k, s in self.specs.items() if k not in exclude]
        cls = dataclasses.make_dataclass(name, fields, frozen=True)
        cls.__doc__ = doc or f"The {self.env} environment's parameters with their defaults ({ParamTable.__module__})."
        return cls

    def from_settings(self, settings: Any, exclude: Sequence[str] = ()) -> dict[str, Any]:
        """The table's fields read from a config (an instance of a :meth:`settings_class` subclass)."""
        return {k: getattr(settings, k) for k in self.specs if k not in exclude and hasattr(settings, k)}


def stack_params(params: Sequence[Any]) -> Any:
    """Stacks params pytrees along a new leading axis (one per vmapped instance or member)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params)
