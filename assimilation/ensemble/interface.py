"""Ensemble filters on any model of the one model interface.

:func:`interface_forecast` turns ``model.step(state, forcing_t, params) -> (state,
outputs)`` (:class:`process_models.interface.Model`; a plain step function works too) into
the forecast of one filter cycle, ``forecast(member, inputs_k) -> member``: the step runs
under ``lax.scan`` over the forcing window of cycle k (e.g. the 48 half-hours of one day,
:func:`cycle_windows`). A member is

* a bare model state (fixed parameters ``params``), or
* :class:`~assimilation.ensemble.cycling.Augmented` ``(state, params, record)``: joint
  state-parameter estimation (Anderson 2001, Mon. Wea. Rev. 129, 2884; DAPPER
  ``param_estim``). ``params`` is a vector mapped onto the model's parameters by a
  :class:`~assimilation.calibration.ParameterSubset` (log-multipliers of the base values
  by default, or physical / unconstrained values) or by :class:`LogMultipliers` (one
  multiplier shared by several parameters), a whole parameter pytree, or None (fixed
  ``params``); ``record`` keeps what the observation operator reads from the cycle's
  outputs, e.g. :class:`assimilation.operators.CycleMeans` (means over the measured steps).

Cycle inputs are the forcing window, or :class:`CycleInputs` ``(forcing, weights)`` when
the record needs per-step weights (the measured-record mask of the cycle).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .cycling import Augmented, split_step_result

__all__ = ["CycleInputs", "LogMultipliers", "augmented_ensemble", "clip_augmented",
           "cycle_windows", "interface_forecast", "log_factor_bounds"]


class CycleInputs(NamedTuple):
    """Inputs of one filter cycle: the forcing window (leading axis = the S model steps of
    the cycle) and per-step weights (S, K) passed to the record (or None)."""
    forcing: Any
    weights: Any = None


def cycle_windows(forcing, steps_per_cycle: int):
    """Time-major forcing (T, ...) -> windows (T // S, S, ...) for ``inputs=`` of
    :func:`~assimilation.ensemble.ensemble_filter` (trailing steps that do not fill a
    cycle are dropped; static fields such as the time step are kept)."""
    s = int(steps_per_cycle)

    def win(x):
        n = x.shape[0] // s
        return x[:n * s].reshape((n, s) + x.shape[1:])
    return jax.tree_util.tree_map(win, forcing)


def log_factor_bounds(subset) -> np.ndarray:
    """(P, 2) bounds of log-multipliers ``m`` with ``theta = default * exp(m)`` inside the
    parameter-table bounds of a ParameterSubset: ``log(lower / default)`` and
    ``log(upper / default)`` (sorted, so negative parameters such as a closing water
    potential work too)."""
    d, lo, hi = (np.asarray(a, float) for a in (subset.defaults, subset.lower, subset.upper))
    if np.any(d == 0) or np.any(lo * d <= 0) or np.any(hi * d <= 0):
        raise ValueError("log-multiplier bounds need lower, default and upper of one sign.")
    b = np.log(np.stack([lo / d, hi / d], -1))
    return np.sort(b, -1)


@dataclass(frozen=True, eq=False)
class LogMultipliers:
    """P log-multipliers ``m`` acting on the parameters of a ParameterSubset:
    ``theta_i = base_i exp(sum_j L_ij m_j)`` (``loadings`` L, shape (names, P)); e.g. one
    heterotrophic-respiration multiplier shared by three turnover times (``L = -1`` for
    each: a faster turnover).

    Build with :meth:`from_groups` (``{label: {parameter name: loading}}``)."""

    subset: Any
    loadings: np.ndarray
    labels: tuple

    @classmethod
    def from_groups(cls, model, groups: Mapping[str, Mapping[str, float]]) -> "LogMultipliers":
        from assimilation.calibration import ParameterSubset
        names = [n for g in groups.values() for n in g]
        sub = ParameterSubset.from_model(model, names)
        L = np.zeros((len(names), len(groups)))
        i = 0
        for j, g in enumerate(groups.values()):
            for loading in g.values():
                L[i, j] = float(loading)
                i += 1
        return cls(sub, L, tuple(groups))

    @property
    def size(self) -> int:
        return len(self.labels)

    def apply(self, params, log_multipliers):
        """``params`` with the multipliers (P,) applied to its values of the subset."""
        lf = jnp.asarray(self.loadings) @ jnp.asarray(log_multipliers)
        return self.subset.apply_log_factors(params, lf)

    def bounds(self) -> np.ndarray:
        """(P, 2) bounds of each multiplier that keep all its parameters inside their
        table bounds (intersection over the group; :func:`log_factor_bounds`)."""
        b = log_factor_bounds(self.subset)
        out = np.tile([-np.inf, np.inf], (self.size, 1))
        for i, j in zip(*np.nonzero(self.loadings)):
            lj = np.sort(b[i] / self.loadings[i, j])
            out[j] = [max(out[j, 0], lj[0]), min(out[j, 1], lj[1])]
        return out


def _params_map(subset, space: str) -> Optional[Callable]:
    if subset is None:
        return None
    if isinstance(subset, LogMultipliers):
        return subset.apply
    maps = {"log_factors": subset.apply_log_factors, "physical": subset.apply_physical,
            "unconstrained": subset.apply}
    if space not in maps:
        raise ValueError(f"space must be one of {sorted(maps)}, got {space!r}")
    return maps[space]


def interface_forecast(model, *, params=None, subset=None, space: str = "log_factors",
                       record: Optional[Callable] = None,
                       n_substeps: Optional[int] = None) -> Callable:
    """The forecast of one filter cycle from a model's ``step`` (module docstring).

    Parameters
    ----------
    model : a :class:`process_models.interface.Model` (its ``step``) or a step function
        ``step(state, forcing_t, params)`` returning ``(state, outputs)`` (or the state).
    params : base parameters (default ``model.default_params()``): the fixed parameters
        of bare-state members and of ``Augmented`` members with ``params`` None, and the
        base values that ``subset`` modifies.
    subset : None (``member.params`` is a parameter pytree or None), a
        :class:`~assimilation.calibration.ParameterSubset` (``member.params`` (P,) in
        ``space``: ``"log_factors"`` (theta = base exp(m)), ``"physical"`` or
        ``"unconstrained"``) or :class:`LogMultipliers`.
    record : ``record(outputs, weights) -> pytree`` of the cycle's time-major outputs and
        the ``CycleInputs.weights`` (None without them), stored in ``member.record``
        (initialise it with zeros of that shape, e.g. ``(N, CycleMeans.size)``); None:
        outputs are not kept.
    n_substeps : steps per cycle for a model without forcing (``inputs`` None); with a
        forcing window its leading axis sets the number of steps.

    Returns
    -------
    ``forecast(member, inputs_k) -> member`` for
    :func:`~assimilation.ensemble.ensemble_filter` (which vmaps it over members).
    """
    step = model.step if hasattr(model, "step") else model
    if params is None and hasattr(model, "default_params"):
        params = model.default_params()
    to_params = _params_map(subset, space)
    if to_params is not None and params is None:
        raise ValueError("interface_forecast: a subset needs base params (or a Model).")

    def run(state, p, forcing):
        def body(s, f_t):
            s, o = split_step_result(step(s, f_t, p), s)
            return s, (o if record is not None else None)
        return jax.lax.scan(body, state, forcing,
                            length=n_substeps if forcing is None else None)

    def forecast(member, inputs):
        forcing, weights = ((inputs.forcing, inputs.weights) if isinstance(inputs, CycleInputs)
                            else (inputs, None))
        if not isinstance(member, Augmented):
            return run(member, params, forcing)[0]
        if to_params is not None:
            p = to_params(params, member.params)
        else:
            p = params if member.params is None else member.params
        state, outputs = run(member.state, p, forcing)
        rec = member.record
        if record is not None:
            if rec is None:
                raise ValueError("interface_forecast: record= needs members whose record is "
                                 "initialised (zeros of the record's shape).")
            rec = jax.tree_util.tree_map(lambda new, old: jnp.asarray(new, jnp.asarray(old).dtype),
                                         record(outputs, weights), rec)
        return Augmented(state, member.params, rec)

    return forecast


def _replace(obj, **kw):
    return obj.replace(**kw) if hasattr(obj, "replace") else obj._replace(**kw)


def augmented_ensemble(key, state0, n: int, params_sd, record_size: int = 0, *,
                       lognormal_fields: Optional[Mapping[str, float]] = None,
                       clip_fields: Optional[Mapping[str, tuple]] = None) -> Augmented:
    """An initial ensemble of ``n`` :class:`Augmented` members around ``state0``.

    Parameters ``m ~ N(0, diag(params_sd^2))`` (log-multipliers, shape (n, P)); each state
    field of ``lognormal_fields = {field: s}`` is multiplied by one factor ``exp(N(0, s^2))``
    per member (e.g. initial soil water of all layers) and clipped to ``clip_fields[field]
    = (lower, upper)``; the record starts at zeros (n, record_size). Zero sds give ``n``
    equal members (a deterministic reference run through the same filter)."""
    sd = jnp.asarray(params_sd)
    k_par, k_fields = jax.random.split(key)
    states = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n,) + jnp.shape(a)), state0)
    fields = dict(lognormal_fields or {})
    keys = [k_fields] if len(fields) <= 1 else list(jax.random.split(k_fields, len(fields)))
    for k, (name, s) in zip(keys, fields.items()):
        fac = jnp.exp(s * jax.random.normal(k, (n, 1)))
        x = jnp.asarray(getattr(state0, name))[None, :] * fac
        if clip_fields and name in clip_fields:
            x = jnp.clip(x, *clip_fields[name])
        states = _replace(states, **{name: x})
    return Augmented(states, sd * jax.random.normal(k_par, (n,) + sd.shape),
                     jnp.zeros((n, record_size)))


def clip_augmented(params_bounds=None, fields: Optional[Mapping[str, tuple]] = None,
                   nonnegative: tuple = ()) -> Callable:
    """``postprocess`` for :func:`~assimilation.ensemble.ensemble_filter`: clips the
    parameters to ``params_bounds`` (P, 2), each state field of ``fields = {field:
    (lower, upper)}`` and every leaf of the state sub-trees ``nonnegative`` (e.g. carbon
    pools) to >= 0 after each analysis."""
    b = None if params_bounds is None else np.asarray(params_bounds, float)

    def post(E: Augmented) -> Augmented:
        st = E.state
        for name, (lo, hi) in (fields or {}).items():
            st = _replace(st, **{name: jnp.clip(getattr(st, name), lo, hi)})
        for name in nonnegative:
            st = _replace(st, **{name: jax.tree_util.tree_map(lambda a: jnp.maximum(a, 0.0),
                                                              getattr(st, name))})
        p = E.params if b is None else jnp.clip(E.params, b[:, 0], b[:, 1])
        return Augmented(st, p, E.record)
    return post
