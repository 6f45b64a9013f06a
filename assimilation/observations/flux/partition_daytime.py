"""Day-time flux partitioning with a light-response curve (Lasslop et al. 2010).

Model (rectangular hyperbola with VPD limitation plus Lloyd-Taylor respiration)::

    NEE = -alpha * beta * Rg / (alpha * Rg + beta) + rb * exp(E0 (1/(T_ref - T0) - 1/(T - T0)))
    beta = beta0 * exp(-k (VPD - VPD0))  if VPD > VPD0 = 10 hPa, else beta0

alpha (umol CO2 J-1, initial slope per W m-2 of Rg), beta0 (umol m-2 s-1, maximum
uptake), k (hPa-1), rb (umol m-2 s-1, respiration at 15 degC), E0 (K).

Algorithm (REddyProc ``PartitioningLasslop10``, ONEFlux ``daytime.py`` settings):

1. E0 per window from **night-time** Lloyd-Taylor fits in a 12-day window, widened to
   24 and 48 days when the fit fails (> 6 records, T range >= 5 K, 30 < E0 < 450 K);
   E0 is clipped to [50, 400] K and held fixed in the day fit. Alternatively (``e0=``,
   what :func:`~.pipeline.process_tower` does) the annual night-time E0 of Reichstein
   et al. (2005) is held fixed: at CH-Dav the 12-day window E0 scatters from 50 to
   400 K and makes Reco_DT noisy.
2. Day fits (Rg >= 10 W m-2, measured NEE) in 4-day windows every 2 days, at least 10
   records, weighted by 1/sigma (the record's random error; missing or small sigmas are
   replaced by max(0.2 |NEE|, 0.7), REddyProc's perc/minSd). Start values alpha 0.1,
   beta0 = |q03 - q97| of day NEE, k 0.05, rb from the night fit.
3. Validity: 0 <= alpha <= 0.22, 0 <= beta0 < 250, k >= 0, rb > 0. The bounds are built
   into the fit (alpha, beta0, k, rb = lo + (hi - lo) sigmoid(u), u unconstrained); an
   estimate pinned at the alpha or beta0 bound counts as invalid. A window whose free
   fit is invalid is refitted with k = 0, then with alpha fixed at the last valid
   window's alpha (all three fits run for every window at once; the first valid one is
   kept); windows still invalid are dropped.
4. Parameters are interpolated linearly in time between window centres; then
   GPP_DT = alpha beta Rg / (alpha Rg + beta) and Reco_DT = rb f(T, E0) for every record.

All window fits run at once (vmapped Levenberg-Marquardt, :mod:`._fit`).

References
----------
Lasslop, G. et al. (2010) Separation of net ecosystem exchange into assimilation and
respiration using a light response curve approach: critical issues and global
evaluation. Global Change Biology 16, 187-208. doi:10.1111/j.1365-2486.2009.02041.x
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from process_models.units import DataValidationError

from ._fit import gather_windows, levenberg_marquardt
from .partition_nighttime import fit_lloyd_taylor, lloyd_taylor

__all__ = ["light_response_nee", "fit_light_response", "DayTimeSettings", "DayTimeResult",
           "partition_daytime", "VPD0"]

VPD0 = 10.0
"""VPD above which beta declines, hPa (Lasslop et al. 2010)."""


def _beta(beta0, k, vpd):
    return beta0 * jnp.exp(-k * jnp.clip(vpd - VPD0, 0.0, None))


def light_response_nee(rg, temperature, vpd, alpha, beta0, k, rb, e0):
    """NEE of the Lasslop et al. (2010) model, umol m-2 s-1 (see module docstring).

    Returns ``(nee, gpp, reco)``; rg in W m-2, temperature in degC, vpd in hPa."""
    beta = _beta(beta0, k, vpd)
    gpp = alpha * beta * rg / (alpha * rg + beta + 1e-12)
    reco = lloyd_taylor(temperature, rb, e0)
    return reco - gpp, gpp, reco


# Fitted in unconstrained coordinates: p_j = lo_j + (hi_j - lo_j) sigmoid(u_j) for alpha,
# beta0, k, rb (no clipping at the bounds, smooth gradients, well conditioned in float32);
# E0 (held fixed) as E0 / 100 K.
_LO = (0.0, 0.0, 0.0, 0.0)
_HI = (0.22, 250.0, 1.0, 100.0)


def _to_params(u):
    lo = jnp.asarray(_LO, u.dtype)
    hi = jnp.asarray(_HI, u.dtype)
    head = lo + (hi - lo) * jax.nn.sigmoid(u[..., :4])
    return jnp.concatenate([head, u[..., 4:] * 100.0], axis=-1)


def _to_unconstrained(p):
    lo = jnp.asarray(_LO, p.dtype)
    hi = jnp.asarray(_HI, p.dtype)
    f = jnp.clip((p[..., :4] - lo) / (hi - lo), 1e-12, 1 - 1e-6)
    return jnp.concatenate([jnp.clip(jnp.log(f) - jnp.log1p(-f), -30.0, 30.0),
                            p[..., 4:] / 100.0], axis=-1)


def _lrc_model(p, x):
    p = _to_params(p)
    nee, _, _ = light_response_nee(x[0], x[1], x[2], p[0], p[1], p[2], p[3], p[4])
    # x[3] == 1 marks a pseudo-observation of rb (Gaussian prior on rb)
    return jnp.where(x[3] > 0.5, p[3], nee)




def fit_light_response(rg, temperature, vpd, nee, sigma, mask, p0, free, *, rb_prior=None,
                       rb_prior_sd=None, n_iter: int = 80):
    """Weighted fit of (alpha, beta0, k, rb, E0) in each window.

    Parameters
    ----------
    rg, temperature, vpd, nee, sigma : (B, L) arrays; mask : (B, L) bool.
    p0 : (B, 5) start values (alpha, beta0, k, rb, E0); free : (B, 5) bool.
    rb_prior, rb_prior_sd : optional (B,) Gaussian prior on rb (umol m-2 s-1), added as
        one pseudo-observation per window (NaN = no prior).

    Returns
    -------
    FitResult
    """
    flag = jnp.zeros_like(jnp.asarray(rg, dtype=float))
    if rb_prior is not None:
        has = jnp.isfinite(rb_prior)[:, None]
        rg = jnp.concatenate([rg, jnp.zeros_like(rg[:, :1])], axis=1)
        temperature = jnp.concatenate([temperature, jnp.full_like(temperature[:, :1], 15.0)], 1)
        vpd = jnp.concatenate([vpd, jnp.zeros_like(vpd[:, :1])], axis=1)
        nee = jnp.concatenate([nee, jnp.nan_to_num(rb_prior)[:, None]], axis=1)
        sigma = jnp.concatenate([sigma, jnp.nan_to_num(rb_prior_sd, nan=1.0)[:, None]], axis=1)
        mask = jnp.concatenate([mask, has], axis=1)
        flag = jnp.concatenate([flag, jnp.ones_like(flag[:, :1])], axis=1)
    x = jnp.stack([jnp.where(mask, rg, 0.0), jnp.where(mask, temperature, 15.0),
                   jnp.where(mask, vpd, 0.0), flag], axis=1)
    w = 1.0 / jnp.where(mask, sigma, 1.0) ** 2
    dt = jnp.asarray(p0).dtype
    u0 = _to_unconstrained(jnp.asarray(p0))
    big = jnp.asarray([40.0, 40.0, 40.0, 40.0, 10.0], dt)
    f = levenberg_marquardt(_lrc_model, u0, x.astype(dt),
                            jnp.where(mask, nee, 0.0).astype(dt), w.astype(dt),
                            jnp.asarray(mask), jnp.asarray(free), -big, big, n_iter=n_iter)
    p = _to_params(f.params)
    dpdu = jax.vmap(jax.jacfwd(_to_params))(f.params)
    se = jnp.abs(jnp.einsum("bij,bj->bi", dpdu, f.se))
    return f._replace(params=p, se=se)


@dataclass(frozen=True)
class DayTimeSettings:
    """Settings of :func:`partition_daytime` (REddyProc / ONEFlux defaults)."""

    night_rg: float = 10.0
    """Night when Rg < night_rg, W m-2; day records have Rg >= night_rg."""
    window_days: int = 4
    """Length of the day-time windows, days."""
    step_days: int = 2
    """Step between windows, days."""
    min_day_records: int = 10
    """Minimum day records per window."""
    night_window_days: tuple = (12, 24, 48)
    """Night-time E0 window lengths tried in turn, days."""
    e0_clip: tuple = (50.0, 400.0)
    """E0 clipping bounds, K."""
    alpha_max: float = 0.22
    """Upper limit of alpha, umol J-1."""
    beta0_max: float = 250.0
    """Upper limit of beta0, umol m-2 s-1."""
    sigma_perc: float = 0.2
    """Replacement sigma = max(sigma_perc |NEE|, sigma_min) where sigma is missing/small."""
    sigma_min: float = 0.7
    """Minimum sigma, umol m-2 s-1."""
    rb_prior_rel_sd: float = 0.3
    """Relative SD of the rb prior (when ``rb_prior`` is given)."""


class DayTimeResult(NamedTuple):
    """Output of :func:`partition_daytime` (NumPy, shape (N,) unless noted)."""

    gpp: np.ndarray
    """Day-time-method GPP, umol m-2 s-1."""
    reco: np.ndarray
    """Day-time-method Reco, umol m-2 s-1."""
    params: np.ndarray
    """(N, 5) interpolated alpha, beta0, k, rb, E0."""
    window_params: np.ndarray
    """(W, 5) fitted parameters per window (NaN = invalid)."""
    window_centres: np.ndarray
    """(W,) record index of each window centre."""


def _night_e0(t, y, night, centres, spd, settings):
    e0 = np.full(centres.size, np.nan)
    rb = np.full(centres.size, np.nan)
    for days in settings.night_window_days:  # three widths, each fitted for all windows
        half = days * spd // 2
        idx, inside = gather_windows(t.size, centres, half, half)
        m = inside & night[idx]
        fit = fit_lloyd_taylor(t[idx], y[idx], m)
        p = np.asarray(fit.params)
        cnt = m.sum(axis=1)
        tr = np.where(m, t[idx], -np.inf).max(axis=1) - np.where(m, t[idx], np.inf).min(axis=1)
        ok = (cnt > 6) & (tr >= 5.0) & (p[:, 1] > 30) & (p[:, 1] < 450) & np.isnan(e0)
        e0[ok] = p[ok, 1]
        rb[ok] = p[ok, 0]
    return np.clip(e0, *settings.e0_clip), rb


def partition_daytime(nee, temperature, rg, vpd, *, sigma=None, valid=None, e0=None,
                      rb_prior=None,
                      steps_per_day: int = 48,
                      settings: DayTimeSettings = DayTimeSettings()) -> DayTimeResult:
    """Day-time partitioning of Lasslop et al. (2010); see the module docstring.

    Parameters
    ----------
    nee : (N,) measured NEE after QC/u* filtering (NaN = gap), umol m-2 s-1.
    temperature : (N,) air temperature, degC. rg : (N,) W m-2. vpd : (N,) hPa.
    sigma : (N,) random error of NEE (weights), umol m-2 s-1 (default: replacement rule).
    e0 : optional (N,) E0 in K to hold fixed instead of the windowed night-time fits
        (e.g. the annual E0 of :func:`partition_nighttime`; steadier, see the study).
    rb_prior : optional (N,) night-time respiration at 15 degC (e.g. ``r_ref`` of
        :func:`partition_nighttime`) used as a Gaussian prior on rb with SD
        ``settings.rb_prior_rel_sd * rb_prior`` (REddyProc also fits the light response
        with priors centred on the night-time estimates).

    Raises
    ------
    DataValidationError : no night-time data (E0 cannot be estimated) or no valid window.
    """
    y = np.asarray(nee, float)
    t = np.asarray(temperature, float)
    rg = np.asarray(rg, float)
    vpd = np.asarray(vpd, float)
    n = y.size
    spd = steps_per_day
    finite = np.isfinite(y) & np.isfinite(t) & np.isfinite(rg) & np.isfinite(vpd)
    if valid is not None:
        finite &= np.asarray(valid, bool)
    night = finite & (rg < settings.night_rg)
    day = finite & (rg >= settings.night_rg)
    if night.sum() < 7:
        raise DataValidationError(
            f"only {int(night.sum())} night-time records; the day-time method takes E0 from "
            "night-time fits.", variable="nee",
            fix="provide night-time NEE (Rg < 10 W m-2) or check the radiation units.")
    sig = np.full(n, np.nan) if sigma is None else np.asarray(sigma, float)
    repl = np.maximum(settings.sigma_perc * np.abs(np.nan_to_num(y)), settings.sigma_min)
    sig = np.where(np.isfinite(sig) & (sig >= settings.sigma_min), sig, repl)

    step = settings.step_days * spd
    centres = np.arange(step // 2, n, step)
    if e0 is None:
        e0, rb0 = _night_e0(t, y, night, centres, spd, settings)
    else:
        e0 = np.clip(np.asarray(e0, float)[centres], *settings.e0_clip)
        rb0 = np.full(centres.size, np.nan)
    if rb_prior is not None:
        rb0 = np.asarray(rb_prior, float)[centres]
        prior, prior_sd = rb0, np.maximum(settings.rb_prior_rel_sd * rb0, 0.1)
    else:
        prior = prior_sd = None
    half = settings.window_days * spd // 2
    idx, inside = gather_windows(n, centres, half, half)
    m = inside & day[idx] & np.isfinite(e0)[:, None]
    yw = np.where(m, y[idx], np.nan)
    q03 = np.nanquantile(np.where(m.any(axis=1)[:, None], yw, 0.0), 0.03, axis=1)
    q97 = np.nanquantile(np.where(m.any(axis=1)[:, None], yw, 0.0), 0.97, axis=1)
    beta_start = np.clip(np.abs(q03 - q97), 1.0, settings.beta0_max - 1)
    p0 = np.stack([np.full(centres.size, 0.1), beta_start, np.full(centres.size, 0.05),
                   np.nan_to_num(np.clip(rb0, 0.1, 50), nan=1.0), np.nan_to_num(e0, nan=100.0)],
                  axis=1)
    args = (rg[idx], t[idx], vpd[idx], np.nan_to_num(y[idx]), sig[idx], m)
    free_all = np.array([True, True, True, True, False])

    def run(p_start, free):
        f = fit_light_response(*args, p_start, np.broadcast_to(free, p_start.shape),
                               rb_prior=prior, rb_prior_sd=prior_sd)
        return np.asarray(f.params), np.asarray(f.se)

    def is_valid(fit):
        p, se = fit
        # the bounds are built into the parametrisation; an estimate pinned at a bound
        # counts as out of range (REddyProc refits / rejects those)
        return ((p[:, 0] < 0.999 * settings.alpha_max) & (p[:, 1] < 0.999 * settings.beta0_max)
                & (p[:, 1] > 1e-3) & (p[:, 3] > 1e-3)
                & (m.sum(axis=1) >= settings.min_day_records))

    fa = run(p0, free_all)
    pa = fa[0]
    pk0 = p0.copy()
    pk0[:, 2] = 0.0
    fb = run(pk0, np.array([True, True, False, True, False]))
    pb = fb[0]
    va, vb = is_valid(fa), is_valid(fb)
    # alpha of the last valid window (forward fill over windows), for the alpha-fixed refit
    good = va | vb
    a_good = np.where(va, pa[:, 0], pb[:, 0])
    last = np.maximum.accumulate(np.where(good, np.arange(centres.size), -1))
    prev = np.concatenate([[-1], last[:-1]])
    a_prev = np.where(prev >= 0, a_good[np.clip(prev, 0, None)], 0.1)
    pc0 = p0.copy()
    pc0[:, 0] = a_prev
    fc = run(pc0, np.array([False, True, True, True, False]))
    pc = fc[0]
    vc = is_valid(fc)
    params = np.where(va[:, None], pa, np.where(vb[:, None], pb, np.where(vc[:, None], pc, np.nan)))
    ok = np.all(np.isfinite(params), axis=1)
    if not ok.any():
        raise DataValidationError(
            "no 4-day window gave a valid light-response fit.", variable="nee",
            fix="check that day-time NEE, Rg, Tair and VPD are present and in canonical units.")
    rec = np.arange(n)
    pi = np.stack([np.interp(rec, centres[ok], params[ok, j]) for j in range(5)], axis=1)
    _, gpp, reco = light_response_nee(np.clip(rg, 0.0, None), t, vpd, *[pi[:, j] for j in range(5)])
    gpp = np.where(np.isfinite(rg), np.asarray(gpp), np.nan)
    return DayTimeResult(gpp=np.asarray(gpp), reco=np.asarray(reco), params=pi,
                         window_params=params, window_centres=centres)
