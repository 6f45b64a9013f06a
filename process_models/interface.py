"""The one model interface: what every process model and every emulator offers.

Calibration, ensemble filters, the emulator's data generator and the regional map engine
take a model through this interface only, so a new model or surrogate plugs in without
touching them (``bmi-tester`` plays the same role for BMI; ``tests/test_interface.py``
runs every model through one parametrised contract).

A model is an immutable (hashable) object, so it can be a static argument of ``jax.jit``:

============================  ===========================================================
``parameter_table()``         ``pandas.DataFrame`` with the columns of
                              :data:`PARAMETER_COLUMNS` (one row per calibratable scalar;
                              ``name`` is a dotted path accepted by ``get_parameter`` and
                              ``set_parameters``; ``unit`` a UDUNITS string; ``prior`` a
                              ``LogNormal(mu, sd)`` / ``Normal(m, sd)`` string)
``default_params()``          the parameter pytree (frozen ``flax.struct`` dataclass)
``initial_state(params, f)``  the state pytree before the first step (``()`` if stateless)
``step(state, f_t, params)``  ``-> (state, outputs_t)``: one time step, pure, shaped for
                              ``lax.scan``
``simulate(params, f, s0)``   ``-> outputs``: the scan of ``step`` over the leading (time)
                              axis of the forcing (``s0 = None``: ``initial_state``)
``get_parameter(params, n)``  value of the dotted name ``n``
``set_parameters(params, v)`` copy of ``params`` with ``{name: value}`` replaced
``output_units``              ``{output name: UDUNITS unit}``
============================  ===========================================================

Outputs are a pytree (dataclass or dict) with at least ``gpp``, ``reco`` and ``nee`` in
``umol m-2 s-1``, with the sign convention of the whole toolkit::

    GPP >= 0,  Reco >= 0,  NEE = Reco - GPP   (positive = source to the atmosphere)

Parameter names
---------------
A name is a path of attribute names joined by dots (``"leaf.vcmax25"``, ``"carbon.tau_leaf"``,
``"lam"``), optionally followed by ``[k]`` to address entry ``k`` of an array field along its
last axis (VPRM per-class arrays: ``"lam[7]"`` is the entry of the class with id 7, as
mapped by the model's ``index_of``). Setting a whole field with a scalar broadcasts it to
the field's shape; values keep the field's dtype and may carry leading batch axes (an
ensemble of parameter sets, shape ``(N,) + field shape``).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import pandas as pd

__all__ = ["Model", "PARAMETER_COLUMNS", "FLUX_OUTPUTS", "FLUX_UNITS", "get_path", "set_paths",
           "output", "output_names", "scan_steps", "check_parameter_table", "parse_name"]

PARAMETER_COLUMNS = ("name", "unit", "default", "lower", "upper", "prior", "citation")
"""Columns every ``parameter_table()`` has (more may follow, e.g. ``group``, ``class_id``)."""
FLUX_OUTPUTS = ("gpp", "reco", "nee")
"""Outputs every model returns."""
FLUX_UNITS = "umol m-2 s-1"
"""Unit of ``gpp``, ``reco`` and ``nee`` (UDUNITS)."""


@runtime_checkable
class Model(Protocol):
    """Structural type of a model (process model or emulator); see the module docstring."""

    output_units: Mapping[str, str]

    def parameter_table(self) -> pd.DataFrame: ...

    def default_params(self) -> Any: ...

    def initial_state(self, params, forcing) -> Any: ...

    def step(self, state, forcing_t, params) -> tuple[Any, Any]: ...

    def simulate(self, params, forcing, initial_state=None) -> Any: ...

    def get_parameter(self, params, name: str) -> jax.Array: ...

    def set_parameters(self, params, values: Mapping[str, Any]) -> Any: ...


_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\[(-?\d+)\])?$")


def parse_name(name: str) -> tuple[tuple[str, ...], int | None]:
    """``"leaf.vcmax25"`` -> ``(("leaf", "vcmax25"), None)``; ``"lam[7]"`` -> ``(("lam",), 7)``.

    Raises ``KeyError`` for a malformed name."""
    m = _NAME.match(str(name))
    if m is None:
        raise KeyError(f"parameter name {name!r} is not a dotted path (e.g. 'leaf.vcmax25', "
                       "'lam[7]').")
    return tuple(m.group(1).split(".")), (None if m.group(2) is None else int(m.group(2)))


def _walk(params, path, name):
    obj = params
    for p in path:
        if obj is None or not hasattr(obj, p):
            raise KeyError(f"parameter {name!r}: {type(obj).__name__} has no field {p!r}; "
                           "use a name from the model's parameter_table().")
        obj = getattr(obj, p)
    return obj


def get_path(params, name: str, index_of: Callable[[int], int] | None = None):
    """Value of the dotted ``name`` in a nested dataclass/NamedTuple pytree.

    ``index_of`` maps the bracket index of ``"field[k]"`` to a position on the field's last
    axis (default: the index itself)."""
    path, k = parse_name(name)
    value = _walk(params, path, name)
    if k is None:
        return value
    return jnp.asarray(value)[..., k if index_of is None else index_of(k)]


def _replace(obj, field, value):
    if hasattr(obj, "replace"):
        return obj.replace(**{field: value})
    if hasattr(obj, "_replace"):
        return obj._replace(**{field: value})
    raise TypeError(f"cannot replace field {field!r} of {type(obj).__name__}")


def set_paths(params, values: Mapping[str, Any], index_of: Callable[[int], int] | None = None):
    """Copy of ``params`` with each dotted name of ``values`` replaced.

    A value keeps the dtype of the field it replaces and is broadcast to its shape; a value
    with more dimensions than the field (leading batch axes) is kept with those axes."""
    for name, value in values.items():
        path, k = parse_name(name)
        old = jnp.asarray(_walk(params, path, name))
        v = jnp.asarray(value, old.dtype)
        if k is None:
            new = v if v.ndim > old.ndim else jnp.broadcast_to(v, old.shape)
        else:
            pos = k if index_of is None else index_of(k)
            if v.ndim:   # leading batch axes: one value per member
                old = jnp.broadcast_to(old, v.shape + old.shape[-1:])
            new = old.at[..., pos].set(v)
        params = _set(params, path, new)
    return params


def _set(obj, path, value):
    if len(path) == 1:
        return _replace(obj, path[0], value)
    return _replace(obj, path[0], _set(getattr(obj, path[0]), path[1:], value))


def output(outputs, variable: str):
    """``outputs.<variable>`` or ``outputs[variable]`` (dataclass or dict outputs)."""
    if isinstance(outputs, Mapping):
        return outputs[variable]
    return getattr(outputs, variable)


def output_names(outputs) -> tuple[str, ...]:
    """Names of the fields of an outputs pytree (dataclass, NamedTuple or dict)."""
    if isinstance(outputs, Mapping):
        return tuple(outputs)
    if hasattr(outputs, "__dataclass_fields__"):
        return tuple(outputs.__dataclass_fields__)
    if hasattr(outputs, "_fields"):
        return tuple(outputs._fields)
    raise TypeError(f"outputs of type {type(outputs).__name__} have no named fields")


def scan_steps(step: Callable, state, forcing, params, *, unroll: int = 1):
    """``lax.scan`` of ``step(state, forcing_t, params)`` over the leading axis of
    ``forcing``: returns ``(final_state, outputs)`` with time-major outputs. The generic
    ``simulate`` of a stateful model."""
    return jax.lax.scan(lambda s, f: step(s, f, params), state, forcing, unroll=unroll)


def check_parameter_table(table: pd.DataFrame, source: str = "parameter_table") -> pd.DataFrame:
    """Raise ``ValueError`` unless ``table`` has the :data:`PARAMETER_COLUMNS`, unique names,
    ``lower <= default <= upper`` and finite bounds; return it unchanged."""
    missing = [c for c in PARAMETER_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}; a parameter table has "
                         f"{list(PARAMETER_COLUMNS)}.")
    dup = table["name"][table["name"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{source}: duplicated parameter names {dup[:5]}.")
    bad = table[~((table["lower"] <= table["default"]) & (table["default"] <= table["upper"]))]
    if len(bad):
        raise ValueError(f"{source}: default outside [lower, upper] for {bad['name'].tolist()[:5]}.")
    return table
