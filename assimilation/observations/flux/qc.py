"""Quality selection of half-hourly fluxes: flags, missing codes, day/night, spikes.

* :func:`select_valid` keeps finite values that are not a missing code (-9999, ...)
  and whose quality flag is in ``good_flags``.
* :func:`is_night`: Rg < threshold (10 W m-2 for u* filtering and partitioning as in
  REddyProc; Papale et al. 2006 used 20 W m-2 for the despiking day/night split).
* :func:`despike_mad` (Papale et al. 2006): double differences
  ``d_i = (x_i - x_{i-1}) - (x_{i+1} - x_i)``; in a moving window (15 days, moved by one
  day, as hesseflux ``madspikes``) the median ``Md`` and ``MAD`` of d are computed
  separately for day and night; a record is a spike when
  ``d < Md - z MAD / 0.6745`` or ``d > Md + z MAD / 0.6745`` (z = 7 hesseflux default;
  ONEFlux uses 5; Papale et al. suggest 4, 5.5 or 7).

References
----------
Papale, D. et al. (2006) Biogeosciences 3, 571-583.
Cuntz, M., hesseflux ``madspikes`` (MIT), https://github.com/mcuntz/hesseflux
"""
from __future__ import annotations

import numpy as np

from process_models.solar import cos_solar_zenith_at
from process_models.units import FILL_VALUES, DataValidationError

__all__ = ["select_valid", "is_night", "despike_mad", "solar_elevation_sin"]


def select_valid(values, flags=None, *, good_flags=(0,), name: str = "nee"):
    """Bool mask of usable records: finite, not a missing code, flag in ``good_flags``.

    Raises DataValidationError when nothing remains (names the variable)."""
    v = np.asarray(values, float)
    ok = np.isfinite(v) & ~np.isin(v, FILL_VALUES)
    if flags is not None:
        f = np.asarray(flags, float)
        ok &= np.isin(f, np.asarray(good_flags, float))
    if not ok.any():
        raise DataValidationError(
            "no valid record after the quality selection (all missing or flagged).",
            variable=name, fix=f"check the flag convention (good flags {tuple(good_flags)}) "
            "and the missing-value code.")
    return ok


def is_night(rg, threshold: float = 10.0):
    """Night when global radiation < ``threshold`` W m-2 (missing Rg counts as night)."""
    rg = np.asarray(rg, float)
    return ~np.isfinite(rg) | (rg < threshold)


def despike_mad(values, rg, *, steps_per_day: int = 48, window_days: int = 15,
                z: float = 7.0, night_threshold: float = 10.0, valid=None):
    """Spike flags by the MAD test of Papale et al. (2006) on double differences.

    Parameters
    ----------
    values : (N,) flux; rg : (N,) W m-2; valid : optional (N,) mask of usable records.

    Returns
    -------
    (N,) bool, True = spike.
    """
    x = np.asarray(values, float).copy()
    n = x.size
    if valid is not None:
        x[~np.asarray(valid, bool)] = np.nan
    d = np.full(n, np.nan)
    d[1:-1] = (x[1:-1] - x[:-2]) - (x[2:] - x[1:-1])
    night = is_night(rg, night_threshold)
    nday = -(-n // steps_per_day)
    pad = nday * steps_per_day - n
    dd = np.concatenate([d, np.full(pad, np.nan)]).reshape(nday, steps_per_day)
    nn = np.concatenate([night, np.zeros(pad, bool)]).reshape(nday, steps_per_day)
    half = window_days // 2
    # window of days [k - half, k + half] for every day k: (nday, window_days * spd)
    dayidx = np.clip(np.arange(nday)[:, None] + np.arange(-half, half + 1)[None, :], -1, nday)
    inside = (dayidx >= 0) & (dayidx < nday)
    dayidx = np.clip(dayidx, 0, nday - 1)
    wd = np.where(inside[:, :, None], dd[dayidx], np.nan).reshape(nday, -1)
    wn = nn[dayidx].reshape(nday, -1)
    flags = np.zeros((nday, steps_per_day), bool)
    for is_n in (True, False):  # night and day separately
        sel = np.where(wn == is_n, wd, np.nan)
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                md = np.nanmedian(sel, axis=1)
                mad = np.nanmedian(np.abs(sel - md[:, None]), axis=1)
        lo = md - z * mad / 0.6745
        hi = md + z * mad / 0.6745
        cls = nn == is_n
        flags |= cls & ((dd < lo[:, None]) | (dd > hi[:, None]))
    return flags.reshape(-1)[:n]


def solar_elevation_sin(time, latitude: float, longitude: float, utc_offset_hours: float,
                        step_seconds: float = 1800.0):
    """Sine of the solar elevation at the middle of each record (= cos of the solar zenith,
    Spencer 1971 declination and equation of time, via
    :func:`process_models.solar.cos_solar_zenith_at`). ``time`` is the interval start in
    local standard time (UTC + ``utc_offset_hours``); latitude and longitude in degrees
    (east positive). Potential radiation is zero where <= 0."""
    return cos_solar_zenith_at(time, latitude, longitude, utc_offset_hours=utc_offset_hours,
                               step_seconds=step_seconds)
