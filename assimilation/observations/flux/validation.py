"""Agreement of processed fluxes with a reference product (R2, bias, daily sums)."""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["agreement", "daily_agreement", "read_tharandt_reference"]


def agreement(model, reference, mask=None) -> dict:
    """R2 (squared Pearson correlation), bias (model - reference), RMSE and n over the
    records where both are finite (and ``mask``)."""
    m = np.asarray(model, float)
    r = np.asarray(reference, float)
    ok = np.isfinite(m) & np.isfinite(r)
    if mask is not None:
        ok &= np.asarray(mask, bool)
    if ok.sum() < 3:
        return {"n": int(ok.sum()), "r2": np.nan, "bias": np.nan, "rmse": np.nan}
    m, r = m[ok], r[ok]
    return {"n": int(ok.sum()), "r2": float(np.corrcoef(m, r)[0, 1] ** 2),
            "bias": float(np.mean(m - r)), "rmse": float(np.sqrt(np.mean((m - r) ** 2)))}


def daily_agreement(model, reference, time) -> dict:
    """:func:`agreement` of daily sums in g C m-2 d-1 (umol m-2 s-1 -> g C: x 12.011e-6 x
    seconds per record); only complete days where both series are finite."""
    t = pd.DatetimeIndex(np.asarray(time))
    dt_s = float(np.median(np.diff(t.asi8)) / 1e9) if t.size > 1 else 1800.0
    df = pd.DataFrame({"m": np.asarray(model, float), "r": np.asarray(reference, float)}, index=t)
    ok = df.notna().all(axis=1)
    g = df[ok].groupby(df[ok].index.floor("D"))
    full = g.size() == int(round(86400 / dt_s))
    s = g.sum()[full] * 12.011e-6 * dt_s
    return agreement(s["m"].values, s["r"].values)


def read_tharandt_reference(path, year: int = 1998):
    """Measured and gap-filled NEE of one year from the DE-Tha 1996-1998 FLUXNET netCDF
    shipped with REddyProc (``Example_DE-Tha.1996.1998.hourly_selVars.nc``).

    The file's ``time`` cannot be decoded (``days since 1582-10-14``), so records are
    located from the ``year/month/day/hour`` variables; ``hour`` is the END of the
    half-hour, so the year's records start one row after ``(year, 1, 1, 0:00)``.
    Returns ``(nee, nee_filled)`` (umol m-2 s-1, NaN for -9999), one value per half-hour
    of the year on the interval-start axis used by the readers."""
    import xarray as xr

    with xr.open_dataset(path, decode_times=False) as nc:
        y = nc["year"].values.ravel()
        m = nc["month"].values.ravel()
        d = nc["day"].values.ravel()
        h = nc["hour"].values.ravel()
        start = int(np.flatnonzero((y == year) & (m == 1) & (d == 1) & (h == 0))[0]) + 1
        n = 48 * (366 if year % 4 == 0 else 365)
        get = lambda v: np.where(nc[v].values.ravel()[start:start + n] == -9999, np.nan,
                                 nc[v].values.ravel()[start:start + n]).astype(float)
        return get("NEE"), get("NEE_f")
