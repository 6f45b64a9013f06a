"""Night-time flux partitioning (Reichstein et al. 2005).

Night-time NEE is ecosystem respiration. Its temperature response is Lloyd & Taylor
(1994)::

    Reco(T) = R_ref * exp(E0 * (1 / (T_ref - T0) - 1 / (T - T0)))

with T_ref = 15 degC and T0 = -46.02 degC (227.13 K); E0 in K, R_ref in umol m-2 s-1.

Algorithm (REddyProc ``sMRFluxPartition`` settings, Wutzler et al. 2018):

1. Night records: measured NEE (after QC / u* filtering), Rg < 10 W m-2.
2. Short-term E0: Lloyd-Taylor fits (R_ref, E0) in 15-day windows (+-7 d) every
   5 days; a window needs more than 6 records and a temperature range >= 5 K. Each fit
   is repeated after removing the 5 % most negative and 5 % most positive residuals.
   Estimates are kept when E0 - SE > 30 K and E0 + SE < 350 K (REddyProc's limits
   for air temperature; 450 K in the paper). Per calendar year, E0
   is the mean of the (up to) three estimates with the lowest SE. A year with no valid
   window retries with a 3 K temperature range, then takes the mean E0 of the other
   years (``e0_source`` says which).
3. R_ref with E0 fixed, in 7-day windows (+-3 d) every 4 days, by least squares
   (closed form ``R_ref = sum(y f) / sum(f^2)``, f the Lloyd-Taylor factor); at least
   three records, R_ref > 0; R_ref is interpolated linearly in time between the mean
   positions of each window's night records (constant beyond the ends).
4. Reco = R_ref(t) f(T(t)) for every record; GPP = Reco - NEE_filled.

All window fits run at once (:func:`._fit.levenberg_marquardt`).

References
----------
Reichstein, M. et al. (2005) Global Change Biology 11, 1424-1439.
Lloyd, J. & Taylor, J.A. (1994) On the temperature dependence of soil respiration.
Functional Ecology 8, 315-323.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from process_models.units import DataValidationError

from ._fit import gather_windows, levenberg_marquardt, masked_quantile

__all__ = ["lloyd_taylor", "fit_lloyd_taylor", "NightTimeSettings", "NightTimeResult",
           "partition_nighttime", "T_REF", "T0"]

T_REF = 15.0
"""Reference temperature of Lloyd-Taylor in partitioning, degC."""
T0 = -46.02
"""Lloyd-Taylor temperature offset, degC (227.13 K)."""


def lloyd_taylor(temperature, r_ref, e0, t_ref: float = T_REF, t0: float = T0):
    """Lloyd & Taylor (1994) respiration, umol m-2 s-1.

    ``R = r_ref * exp(e0 * (1/(t_ref - t0) - 1/(T - t0)))``; temperature, t_ref, t0 in
    degC, e0 in K, r_ref in umol m-2 s-1 (respiration at t_ref)."""
    return r_ref * jnp.exp(e0 * (1.0 / (t_ref - t0) - 1.0 / (temperature - t0)))


_LT_SCALE = (1.0, 100.0)   # fitted in units of (umol m-2 s-1, 100 K): well conditioned in float32


def _lt_model(p, x):
    return lloyd_taylor(x[0], p[0] * _LT_SCALE[0], p[1] * _LT_SCALE[1])


def fit_lloyd_taylor(temperature, nee, mask, *, e0_start: float = 100.0, n_iter: int = 60):
    """Fit (R_ref, E0) of :func:`lloyd_taylor` in each window.

    Parameters
    ----------
    temperature, nee : (B, L) arrays (degC, umol m-2 s-1); mask : (B, L) bool.

    Returns
    -------
    FitResult with params[:, 0] = R_ref (umol m-2 s-1), params[:, 1] = E0 (K).
    """
    t = jnp.asarray(temperature)
    y = jnp.asarray(nee)
    m = jnp.asarray(mask, bool) & jnp.isfinite(t) & jnp.isfinite(y)
    cnt = jnp.maximum(m.sum(axis=1), 1).astype(y.dtype)
    ymean = jnp.where(m, y, 0.0).sum(axis=1) / cnt
    sc = jnp.asarray(_LT_SCALE, dtype=ymean.dtype)
    p0 = jnp.stack([jnp.clip(ymean, 0.1, None), jnp.full_like(ymean, e0_start)], axis=1) / sc
    x = jnp.where(m, t, T_REF)[:, None, :]
    free = jnp.ones_like(p0, dtype=bool)
    lower = jnp.asarray([0.0, 0.0], dtype=p0.dtype)
    upper = jnp.asarray([1e3, 1e3], dtype=p0.dtype) / sc
    f = levenberg_marquardt(_lt_model, p0, x, jnp.where(m, y, 0.0), jnp.ones_like(y), m,
                            free, lower, upper, n_iter=n_iter)
    return f._replace(params=f.params * sc, se=f.se * sc)


@dataclass(frozen=True)
class NightTimeSettings:
    """Settings of :func:`partition_nighttime` (REddyProc defaults)."""

    night_rg: float = 10.0
    """Night when Rg < night_rg, W m-2."""
    e0_window_days: int = 7
    """Half width of the short-term E0 windows, days (15-day windows)."""
    e0_step_days: int = 5
    """Step between E0 windows, days."""
    e0_min_records: int = 7
    """Minimum night records per E0 window (REddyProc: more than 6)."""
    e0_min_trange: float = 5.0
    """Minimum temperature range in an E0 window, K (relaxed to 3 K if none passes)."""
    e0_bounds: tuple = (30.0, 350.0)
    """E0 +- SE must lie inside these bounds, K (REddyProc: 30-350 for air temperature,
    30-450 generic, 30-550 for soil temperature)."""
    e0_n_best: int = 3
    """Number of lowest-SE windows averaged into the annual E0."""
    trim_fraction: float = 0.05
    """Fraction of residuals removed from each tail before the refit."""
    rref_window_days: int = 3
    """Half width of the R_ref windows, days (7-day windows)."""
    rref_step_days: int = 4
    """Step between R_ref windows, days."""
    rref_min_records: int = 3
    """Minimum night records per R_ref window (REddyProc: more than two)."""
    e0_scope: str = "year"
    """``"year"``: one E0 per calendar year; ``"all"``: one E0 for the whole record
    (REddyProc's behaviour when a multi-year record is passed in one call)."""


class NightTimeResult(NamedTuple):
    """Output of :func:`partition_nighttime` (NumPy)."""

    reco: np.ndarray
    """(N,) ecosystem respiration, umol m-2 s-1."""
    gpp: np.ndarray
    """(N,) GPP = Reco - NEE_filled, umol m-2 s-1."""
    r_ref: np.ndarray
    """(N,) interpolated respiration at 15 degC, umol m-2 s-1."""
    e0: np.ndarray
    """(N,) E0 of the record's year, K."""
    e0_by_year: dict
    """year -> (E0 K, SE K, source) with source 'windows', 'windows_3K' or 'other_years'."""


def _e0_windows(t, y, night, centres, half, settings, min_trange):
    n = t.size
    idx, inside = gather_windows(n, centres, half, half + 1)
    m = inside & night[idx]
    tw, yw = t[idx], y[idx]
    fit = fit_lloyd_taylor(tw, yw, m)
    r = yw - np.asarray(lloyd_taylor(jnp.asarray(tw), fit.params[:, :1], fit.params[:, 1:]))
    lo = np.asarray(masked_quantile(jnp.asarray(r), jnp.asarray(m), settings.trim_fraction))
    hi = np.asarray(masked_quantile(jnp.asarray(r), jnp.asarray(m), 1 - settings.trim_fraction))
    m2 = m & (r >= lo[:, None]) & (r <= hi[:, None])
    fit2 = fit_lloyd_taylor(tw, yw, m2)
    e0 = np.asarray(fit2.params[:, 1])
    se = np.asarray(fit2.se[:, 1])
    cnt = m.sum(axis=1)
    tmax = np.where(m, tw, -np.inf).max(axis=1)
    tmin = np.where(m, tw, np.inf).min(axis=1)
    lo_b, hi_b = settings.e0_bounds
    ok = ((cnt >= settings.e0_min_records) & (tmax - tmin >= min_trange)
          & (e0 - se > lo_b) & (e0 + se < hi_b) & np.isfinite(se) & (se > 0))
    return e0, se, ok


def partition_nighttime(nee, nee_filled, temperature, rg, time, *, valid=None, sun_up=None,
                        steps_per_day: int = 48,
                        settings: NightTimeSettings = NightTimeSettings()) -> NightTimeResult:
    """Night-time partitioning of Reichstein et al. (2005); see the module docstring.

    Parameters
    ----------
    nee : (N,) measured NEE after QC and u* filtering (NaN = gap), umol m-2 s-1.
    nee_filled : (N,) gap-filled NEE, umol m-2 s-1.
    temperature : (N,) air temperature, degC.
    rg : (N,) global radiation, W m-2.
    time : (N,) datetime64 (interval start), a regular axis.
    valid : optional (N,) bool extra selection of usable records.
    sun_up : optional (N,) bool, potential radiation > 0 (REddyProc's night is
        Rg <= 10 W m-2 **and** potential radiation 0; without it only Rg is used).

    Raises
    ------
    DataValidationError : no night-time measurement at all, or no year with a valid E0.
    """
    y = np.asarray(nee, float)
    t = np.asarray(temperature, float)
    rg = np.asarray(rg, float)
    n = y.size
    night = np.isfinite(y) & np.isfinite(t) & (np.nan_to_num(rg, nan=np.inf) < settings.night_rg)
    if valid is not None:
        night &= np.asarray(valid, bool)
    if sun_up is not None:
        night &= ~np.asarray(sun_up, bool)
    if night.sum() < settings.e0_min_records:
        raise DataValidationError(
            f"only {int(night.sum())} night-time NEE records (Rg < {settings.night_rg} W m-2 "
            "with measured NEE and air temperature); night-time partitioning needs night data.",
            variable="nee", fix="check the radiation units/night selection and the u* filter, "
            "or use day-time partitioning only.")
    years = np.asarray(time, dtype="datetime64[Y]").astype(int) + 1970
    spd = steps_per_day
    centres = np.arange(settings.e0_step_days * spd // 2, n, settings.e0_step_days * spd)
    half = settings.e0_window_days * spd
    e0w, sew, okw = _e0_windows(t, y, night, centres, half, settings, settings.e0_min_trange)
    e0w3, sew3, okw3 = _e0_windows(t, y, night, centres, half, settings, 3.0)
    by_year = {}
    groups = years if settings.e0_scope == "year" else np.zeros_like(years)
    cyear = groups[np.clip(centres, 0, n - 1)]
    for yr in np.unique(groups):  # loop over calendar years (a handful), not records
        for e, s, ok, src in ((e0w, sew, okw, "windows"), (e0w3, sew3, okw3, "windows_3K")):
            sel = ok & (cyear == yr)
            if sel.any():
                order = np.argsort(np.where(sel, s, np.inf))[: min(settings.e0_n_best, sel.sum())]
                by_year[int(yr)] = (float(e[order].mean()), float(np.sqrt(np.mean(s[order] ** 2))),
                                    src)
                break
    if not by_year:
        raise DataValidationError(
            "no window gave a valid Lloyd-Taylor E0 (needs > 6 night records, a temperature "
            "range >= 3 K and 30 < E0 +- SE < 450 K).", variable="nee",
            fix="provide more night-time data (a longer record or a looser u* filter).")
    mean_e0 = float(np.mean([v[0] for v in by_year.values()]))
    mean_se = float(np.mean([v[1] for v in by_year.values()]))
    for yr in np.unique(groups):
        by_year.setdefault(int(yr), (mean_e0, mean_se, "other_years"))
    ug = np.unique(groups)
    e0 = np.array([by_year[int(yr)][0] for yr in ug])[np.searchsorted(ug, groups)]

    # R_ref with E0 fixed, closed-form least squares per window.
    rc = np.arange(settings.rref_step_days * spd // 2, n, settings.rref_step_days * spd)
    rh = settings.rref_window_days * spd
    idx, inside = gather_windows(n, rc, rh, rh + 1)
    m = inside & night[idx]
    f = np.asarray(lloyd_taylor(jnp.asarray(t[idx]), 1.0, jnp.asarray(e0[rc][:, None])))
    f = np.where(m, f, 0.0)
    yy = np.where(m, y[idx], 0.0)
    rref_w = (f * yy).sum(axis=1) / np.maximum((f * f).sum(axis=1), 1e-12)
    ok = (m.sum(axis=1) >= settings.rref_min_records) & np.isfinite(rref_w) & (rref_w > 0)
    if not ok.any():
        raise DataValidationError("no window gave a valid reference respiration.",
                                  variable="nee", fix="provide more night-time data.")
    # location of each window: the mean index of its night records (REddyProc MeanHour)
    loc = np.where(m, idx, 0).sum(axis=1) / np.maximum(m.sum(axis=1), 1)
    order = np.argsort(loc[ok])
    r_ref = np.interp(np.arange(n), loc[ok][order], rref_w[ok][order])
    reco = np.asarray(lloyd_taylor(jnp.asarray(t), jnp.asarray(r_ref), jnp.asarray(e0)))
    gpp = reco - np.asarray(nee_filled, float)
    return NightTimeResult(reco=reco, gpp=gpp, r_ref=r_ref, e0=e0, e0_by_year=by_year)
