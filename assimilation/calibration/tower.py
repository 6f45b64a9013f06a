"""Half-hourly tower records at the hourly steps of a calibrated model (the xarray edge).

* Forcing: driver gaps filled (:func:`process_models.io.fill_gaps`: linear over
  <= 2 h, else the 15-day mean diurnal cycle, Falge et al. 2001, AFM 107, 43), half-hours
  averaged to hours (precipitation summed), then
  :func:`process_models.coupled.forcing_from_dataset` (LAI from the leaf carbon pool).
* Observations: only measured records (QC flag 0) of NEE and LE are used; per hour their
  mean, their count (0-2) and the sum of the squared random-error sd of the NEE records,
  sigma = a + b+ F+ + b- F- (Richardson et al. 2006, AFM 136, 1), with a, b fitted by the
  24-h paired-observation method (:func:`fit_flux_error_model`; a stated fallback when the
  record is too short). Partitioned GPP/Reco and soil water are hourly means (evaluation).
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .error_models import fit_flux_error_model

__all__ = ["COUPLED_DRIVERS", "hourly_coupled_forcing", "hourly_flux_observations"]

COUPLED_DRIVERS = ("air_temperature", "vpd", "shortwave_in", "precipitation", "air_pressure",
                   "wind_speed", "co2")
"""Drivers of the coupled model read from a tower Dataset (canonical names)."""


def hourly_coupled_forcing(ds_hh, latitude: float, longitude: float,
                           drivers: Sequence[str] = COUPLED_DRIVERS):
    """Hourly :class:`process_models.coupled.CoupledForcing` from a half-hourly reader
    Dataset (module docstring). Returns ``(forcing, hourly times, notes)``; the notes list
    every gap fill and default the forcing builder applied."""
    from process_models import coupled
    from process_models.io import fill_gaps

    ds, notes = fill_gaps(ds_hh, [v for v in drivers if v in ds_hh])
    keep = [v for v in drivers if v in ds and v != "precipitation"]
    h = ds[keep].resample(time="1h").mean()
    h["precipitation"] = ds["precipitation"].resample(time="1h").sum()
    for v in h.data_vars:
        h[v].attrs = dict(ds[v].attrs)
    h.attrs = dict(ds.attrs)
    h.attrs["time_step_seconds"] = 3600.0
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        forcing = coupled.forcing_from_dataset(h, latitude, longitude, lai=False)
    notes += [str(x.message).split(": ", 1)[-1] for x in w if x.category is UserWarning]
    return forcing, h.time.values, notes


def hourly_flux_observations(ds_hh, hourly_times, *, fallback_error: Mapping[str, float],
                             steps_per_day: int = 48):
    """Measured NEE/LE of a half-hourly Dataset at hourly steps (module docstring).

    Returns ``(hourly, error, notes)``: a DataFrame indexed by ``hourly_times`` with
    ``nee``, ``le`` (means of the QC-0 records, umol m-2 s-1 and W m-2), ``n_nee``,
    ``n_le`` (their counts), ``var_nee`` (sum of their squared random-error sd), ``gpp``,
    ``reco``, ``swc``; the fitted error model ``{a, b_pos, b_neg, n_pairs}``
    (``fallback_error`` with ``n_pairs = 0`` when the paired-observation fit fails,
    reported in ``notes``)."""
    notes = []
    t = pd.DatetimeIndex(ds_hh.time.values)
    df = pd.DataFrame(index=t)
    nee = np.where(ds_hh["nee_qc"].values == 0, ds_hh["nee"].values, np.nan)
    le = np.where(ds_hh["le_qc"].values == 0, ds_hh["le"].values, np.nan) if "le" in ds_hh else np.nan
    df["nee"], df["le"] = nee, le
    for v, name in (("gpp", "gpp"), ("reco", "reco"), ("soil_water_content", "swc")):
        df[name] = ds_hh[v].values if v in ds_hh else np.nan
    if "ppfd_in" in ds_hh and np.isfinite(ds_hh["ppfd_in"].values).mean() > 0.9:
        par = ds_hh["ppfd_in"].values
    else:
        par = ds_hh["shortwave_in"].values * 2.02       # PPFD (umol m-2 s-1) per W m-2 shortwave
    try:
        fit = fit_flux_error_model(nee, np.nan_to_num(par), ds_hh["air_temperature"].values,
                                   steps_per_day=steps_per_day)
        err = {k: float(fit[k]) for k in ("a", "b_pos", "b_neg")} | {"n_pairs": int(fit["n_pairs"])}
    except Exception as exc:  # noqa: BLE001 - documented fallback, reported in the notes
        notes.append(f"random-error fit failed ({exc}); reference values used")
        err = dict(fallback_error, n_pairs=0)
    sig = err["a"] + err["b_pos"] * np.maximum(nee, 0) + err["b_neg"] * np.maximum(-nee, 0)
    df["var_nee"] = np.where(np.isfinite(nee), sig ** 2, 0.0)
    g = df.resample("1h")
    hourly = g[["nee", "le", "gpp", "reco", "swc"]].mean()
    hourly["n_nee"] = g["nee"].count()
    hourly["n_le"] = g["le"].count()
    hourly["var_nee"] = g["var_nee"].sum()
    return hourly.reindex(pd.DatetimeIndex(hourly_times)), err, notes
