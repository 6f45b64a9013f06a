"""Runs of the coupled model with a prescribed soil-water state, and root-zone averages.

* :func:`simulate_with_daily_reset`: direct insertion of a soil-water profile at the start
  of every day (the simplest data-insertion scheme; e.g. Walker & Houser 2001, J. Geophys.
  Res. 106, 11761, for soil moisture): the day's steps are one ``simulate`` call, the days
  a ``lax.scan``. With the profile at field capacity this removes water limitation where a
  site lacks precipitation records, so a run isolates the light/LAI response.
* :func:`root_zone_weights`: layer weights of a thickness-weighted mean over 0..depth,
  ``w_i = max(0, min(z_i + dz_i, depth) - z_i) / sum_j (...)`` (z_i the top of layer i, m),
  so that ``theta_root = sum_i w_i theta_i`` (m3 m-3).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .canopy import canopy_fluxes
from .model import initial_state as _initial_state
from .model import simulate

__all__ = ["simulate_with_daily_reset", "root_zone_weights"]


def simulate_with_daily_reset(params, forcing, soil_water_content, *, initial_state=None,
                              canopy=canopy_fluxes):
    """Simulate with the soil water set to ``soil_water_content`` at every midnight.

    Parameters
    ----------
    params : CoupledParams (one site).
    forcing : CoupledForcing of T steps starting at midnight; the trailing part of an
        incomplete last day is not simulated.
    soil_water_content : (n_layers,) or scalar volumetric soil water (m3 m-3) inserted at
        the start of each day.
    initial_state : CoupledState or None (None: :func:`process_models.coupled.initial_state`).

    Returns
    -------
    (CoupledOutputs of n_days * steps_per_day steps, final CoupledState)
    """
    per_day = int(round(86400 / forcing.dt_seconds))
    n_days = forcing.n_steps // per_day
    if n_days < 1:
        raise ValueError(f"forcing: {forcing.n_steps} steps is less than one day ({per_day} steps); "
                         "pass at least one full day.")
    days = jax.tree_util.tree_map(
        lambda x: x[:n_days * per_day].reshape((n_days, per_day) + x.shape[1:]), forcing)
    state0 = _initial_state(params, forcing) if initial_state is None else initial_state
    theta = jnp.broadcast_to(jnp.asarray(soil_water_content, state0.soil_water_content.dtype),
                             state0.soil_water_content.shape)

    def one_day(state, forcing_day):
        out, state = simulate(params, forcing_day, state.replace(soil_water_content=theta),
                              return_state=True, canopy=canopy)
        return state, out

    final, out = jax.lax.scan(one_day, state0, days)
    return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), out), final


def root_zone_weights(layer_thickness, depth: float) -> np.ndarray:
    """Weights (n_layers,), summing to 1, of the thickness-weighted mean over 0..``depth``
    (m) of layers of thickness ``layer_thickness`` (m), surface first (module docstring)."""
    dz = np.asarray(layer_thickness, float)
    if depth <= 0:
        raise ValueError(f"depth must be > 0 m, got {depth}.")
    top = np.cumsum(dz) - dz
    w = np.clip(np.minimum(top + dz, depth) - top, 0, None)
    return w / w.sum()
