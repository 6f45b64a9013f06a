"""Tower forcing for ensemble filters with the coupled model: driver gaps filled, forcing
cut into assimilation cycles, optional spin-up through the model interface.

* Driver gaps: :func:`process_models.io.fill_gaps` (linear over <= 2 h, else the 15-day mean
  diurnal cycle; Falge et al. 2001, Agric. For. Meteorol. 107, 43), then
  :func:`process_models.coupled.forcing_from_dataset` (LAI from the leaf carbon pool);
  defaults and fills the builder applies are returned as notes.
* Cycles: the forcing of [start, end] as windows of ``steps_per_cycle`` steps
  (:func:`~assimilation.ensemble.interface.cycle_windows`; one day of half-hours).
* Initial state: ``model.initial_state`` of the window's forcing, or the final state of a
  run with the model's default parameters over [spin_up, start) (``model.step`` scanned).
"""
from __future__ import annotations

import warnings
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from process_models.coupled.xarray_api import FILLED_DRIVERS
from process_models.interface import scan_steps

from .interface import cycle_windows

__all__ = ["TowerCycles", "COUPLED_DRIVERS", "coupled_tower_cycles"]

COUPLED_DRIVERS = FILLED_DRIVERS
"""Drivers read from a tower Dataset when present (canonical names; those that
:func:`process_models.coupled.run` gap-fills)."""


class TowerCycles(NamedTuple):
    """Forcing windows and the data they were made from."""
    forcing: Any            # model forcing, leaves (C, S, ...)
    state0: Any             # initial model state
    times: pd.DatetimeIndex  # (C * S,) step times (interval starts)
    data: Any               # the tower Dataset of [start, end] (observations)
    notes: list             # gap fills and defaults applied to the drivers


def _forcing(ds, latitude, longitude, drivers, notes):
    from process_models import coupled
    from process_models.io import fill_gaps
    ds, n = fill_gaps(ds, [v for v in drivers if v in ds])
    notes.extend(n)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        forcing = coupled.forcing_from_dataset(ds, latitude, longitude, lai=False)
    notes.extend(str(x.message).split(": ", 1)[-1] for x in w if x.category is UserWarning)
    return forcing


def coupled_tower_cycles(raw, latitude: float, longitude: float, start: str, end: str, *,
                         model, steps_per_cycle: Optional[int] = None,
                         spin_up: Optional[str] = None,
                         drivers: Sequence[str] = COUPLED_DRIVERS) -> TowerCycles:
    """Coupled-model forcing of ``raw.sel(time=slice(start, end))`` in cycles (module
    docstring). ``steps_per_cycle`` None: one day of model steps; ``spin_up``: start
    date of a default-parameter run up to ``start``."""
    notes: list = []
    params = model.default_params()
    state0 = None
    if spin_up:
        f_spin = _forcing(raw.sel(time=slice(spin_up, start)).isel(time=slice(0, -1)),
                          latitude, longitude, drivers, notes)
        state0 = scan_steps(model.step, model.initial_state(params, f_spin), f_spin, params)[0]
    ds = raw.sel(time=slice(start, end))
    forcing = _forcing(ds, latitude, longitude, drivers, notes)
    s = steps_per_cycle or int(round(86400 / forcing.dt_seconds))
    if state0 is None:
        state0 = model.initial_state(params, forcing)
    n = (forcing.air_temperature.shape[0] // s) * s
    times = pd.DatetimeIndex(np.asarray(ds.time.values)[:n])
    return TowerCycles(cycle_windows(forcing, s), state0, times, ds.isel(time=slice(0, n)),
                       list(dict.fromkeys(notes)))
