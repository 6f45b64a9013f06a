"""Gap filling of meteorological drivers (never of the observations a model is scored on).

Rules, applied per variable of a regular half-hourly/hourly Dataset:

1. gaps of at most ``max_interp_hours`` are linearly interpolated in time;
2. longer gaps get the mean diurnal cycle (same time of day) of a centred window of
   ``window_days`` days (a simplified marginal distribution sampling look-up, Reichstein
   et al. 2005, Glob. Change Biol. 11:1424, without the similar-meteorology condition);
3. anything left (a gap longer than the window) gets the all-period mean for that time of
   day. Precipitation gaps are set to 0 mm instead (and counted).

Every fill is counted in the returned notes, so reports can state how much was filled.

Usage::

    from process_models.io import fill_gaps
    filled, notes = fill_gaps(ds, ["air_temperature", "vpd", "shortwave_in", "precipitation"])
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["fill_gaps"]


def fill_gaps(ds: xr.Dataset, variables, *, max_interp_hours: float = 2.0,
              window_days: int = 15) -> tuple[xr.Dataset, list[str]]:
    """Fill NaN gaps of the driver ``variables`` of a regular half-hourly/hourly Dataset
    (rules in the module docstring).

    ``max_interp_hours`` (h): longest gap filled by linear interpolation; ``window_days``
    (d): width of the centred window of the mean diurnal cycle. Returns ``(filled copy,
    notes)``; variables absent from ``ds`` are skipped, units and attributes are kept."""
    out = ds.copy()
    notes = []
    t = pd.DatetimeIndex(ds.time.values)
    ns = np.asarray(ds.time.values, dtype="datetime64[ns]").astype(np.int64)
    dt_h = float(np.median(np.diff(ns)) / 3.6e12) if t.size > 1 else 1.0
    tod = (t.hour * 60 + t.minute).to_numpy()
    for name in variables:
        if name not in ds:
            continue
        v = ds[name].values.astype(float).copy()
        n_nan = int(np.isnan(v).sum())
        if n_nan == 0:
            continue
        if name == "precipitation":
            v[np.isnan(v)] = 0.0
            notes.append(f"{name}: {n_nan} missing records set to 0 mm.")
            out[name] = (ds[name].dims, v, ds[name].attrs)
            continue
        s = pd.Series(v, index=t)
        lim = max(1, int(round(max_interp_hours / dt_h)))
        interp = s.interpolate(method="time", limit=lim, limit_area="inside")
        # only gaps no longer than lim are filled by interpolation
        isna = s.isna().to_numpy()
        run_id = np.cumsum(~isna)
        run_len = pd.Series(isna).groupby(run_id).transform("sum").to_numpy()
        short = isna & (run_len <= lim)
        v2 = np.where(short, interp.to_numpy(), v)
        n_short = int(np.sum(short & np.isfinite(v2)))
        left = np.isnan(v2)
        n_diurnal = 0
        if left.any():
            frame = pd.DataFrame({"v": v2, "tod": tod}, index=t)
            # rolling mean per time of day over a centred window of days
            clim = frame.groupby("tod")["v"].transform(
                lambda x: x.rolling(window_days, center=True, min_periods=3).mean())
            fill = clim.to_numpy()
            use = left & np.isfinite(fill)
            v2[use] = fill[use]
            n_diurnal = int(use.sum())
        left = np.isnan(v2)
        n_clim = int(left.sum())
        if n_clim:
            allmean = pd.Series(v2, index=t).groupby(tod).transform("mean").to_numpy()
            v2[left] = allmean[left]
        notes.append(f"{name}: {n_nan} missing records filled ({n_short} interpolated, "
                     f"{n_diurnal} mean diurnal cycle of {window_days} d, {n_clim} all-period "
                     "diurnal mean).")
        out[name] = (ds[name].dims, v2, ds[name].attrs)
    return out, notes
