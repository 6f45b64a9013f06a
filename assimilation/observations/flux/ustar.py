"""u* threshold by the moving-point test (Papale et al. 2006; Reichstein et al. 2005).

At night, low turbulence lets CO2 escape the tower (advection, storage): night NEE
drops at low friction velocity u*. The moving-point test finds the u* above which
night NEE no longer depends on u*:

1. Night records (Rg < 10 W m-2) with measured NEE, u* and Tair, per season (3-month
   groups JFM, AMJ, JAS, OND of each year).
2. Seven air-temperature classes of equal size; within each, twenty u* classes of equal
   size; class means of NEE and u*.
3. The threshold of a temperature class is the mean u* of the first u* class whose mean
   NEE reaches ``plateau`` (99 %, Papale et al. 2006) of the mean NEE of the following
   (up to) 10 classes. A temperature class is skipped when it has < 100 records, when
   |corr(Tair, u*)| >= 0.5, when its first u* class has a mean u* > 0.2 m s-1 (REddyProc
   ``firstUStarMeanCheck``), or when no plateau is found.
4. Season threshold = median over temperature classes (seasons with < 160 records are
   skipped); annual threshold = maximum over the seasons of the year (REddyProc).
5. Uncertainty: the whole estimate is repeated on ``n_bootstrap`` resamples (with
   replacement) of each season's night records; the 5/50/95 percentiles of the annual
   thresholds are reported (ONEFlux/REddyProc use 100 draws).

Everything after the season split is one jitted JAX function, vmapped over bootstrap
draws and seasons (sorting, ranks and ``segment_sum`` instead of loops).

References
----------
Papale, D. et al. (2006) Towards a standardized processing of Net Ecosystem Exchange
measured with eddy covariance technique: algorithms and uncertainty estimation.
Biogeosciences 3, 571-583.
Reichstein, M. et al. (2005) Global Change Biology 11, 1424-1439.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from process_models.units import DataValidationError

__all__ = ["UstarSettings", "UstarResult", "mpt_threshold", "estimate_ustar_threshold",
           "ustar_filter"]


@dataclass(frozen=True)
class UstarSettings:
    """Moving-point-test settings (Papale et al. 2006; REddyProc / ONEFlux counts)."""

    n_temperature_classes: int = 7
    n_ustar_classes: int = 20
    plateau: float = 0.99
    """Fraction of the mean NEE of the following classes that marks the plateau."""
    forward_classes: int = 10
    """Number of following u* classes averaged for the plateau test."""
    min_records_class: int = 100
    """Minimum records per temperature class."""
    min_records_season: int = 160
    """Minimum records per season."""
    max_corr: float = 0.5
    """Temperature classes with |corr(Tair, u*)| >= max_corr are skipped."""
    first_class_max_ustar: float = 0.2
    """Temperature classes whose first u* class has mean u* above this are skipped, m s-1."""
    night_rg: float = 10.0
    """Night when Rg < night_rg, W m-2."""


class UstarResult(NamedTuple):
    """Output of :func:`estimate_ustar_threshold`."""

    threshold: dict
    """year -> annual threshold from the original data, m s-1 (NaN if none)."""
    percentiles: dict
    """year -> (5th, 50th, 95th) percentile of the bootstrap thresholds, m s-1."""
    season_thresholds: dict
    """(year, season 0-3) -> threshold, m s-1."""
    bootstrap: np.ndarray
    """(n_bootstrap, n_years) annual thresholds of the draws."""
    years: np.ndarray
    """Years of the columns of ``bootstrap``."""


@partial(jax.jit, static_argnames=("n_t", "n_u", "fwd"))
def _season_threshold(nee, ustar, tair, valid, plateau, min_class, min_season, max_corr,
                      first_max, *, n_t: int, n_u: int, fwd: int):
    """Moving-point threshold of one season (padded arrays of length L, ``valid`` mask)."""
    dt = nee.dtype
    n = jnp.sum(valid)
    big = jnp.asarray(1e30, dt)
    order_t = jnp.argsort(jnp.where(valid, tair, big))
    rank_t = jnp.zeros_like(order_t).at[order_t].set(jnp.arange(order_t.size))
    tclass = jnp.where(valid, (rank_t * n_t) // jnp.maximum(n, 1), n_t)
    key = tclass.astype(dt) * 1e3 + jnp.where(valid, jnp.clip(ustar, 0, 100), 999.0)
    order_u = jnp.argsort(key)
    pos = jnp.zeros_like(order_u).at[order_u].set(jnp.arange(order_u.size))
    seg = lambda v, ids, k: jax.ops.segment_sum(v, ids, num_segments=k)
    cnt_t = seg(valid.astype(dt), tclass, n_t + 1)[:n_t]
    start = jnp.concatenate([jnp.zeros(1, dt), jnp.cumsum(cnt_t)])[:n_t]
    tc = jnp.clip(tclass, 0, n_t - 1)
    rank_u = pos.astype(dt) - start[tc]
    uclass = jnp.clip((rank_u * n_u) // jnp.maximum(cnt_t[tc], 1), 0, n_u - 1).astype(tc.dtype)
    cell = jnp.where(valid, tc * n_u + uclass, n_t * n_u)
    w = valid.astype(dt)
    k = n_t * n_u + 1
    c = seg(w, cell, k)[:-1].reshape(n_t, n_u)
    mnee = (seg(w * jnp.where(valid, nee, 0), cell, k)[:-1].reshape(n_t, n_u)
            / jnp.maximum(c, 1))
    mu = seg(w * jnp.where(valid, ustar, 0), cell, k)[:-1].reshape(n_t, n_u) / jnp.maximum(c, 1)
    # plateau test: NEE_i >= plateau * mean(NEE_{i+1..i+fwd})
    cs = jnp.concatenate([jnp.zeros((n_t, 1), dt), jnp.cumsum(mnee, axis=1)], axis=1)
    i = jnp.arange(n_u)
    hi = jnp.minimum(i + 1 + fwd, n_u)
    nf = hi - (i + 1)
    fmean = (cs[:, hi] - cs[:, i + 1]) / jnp.maximum(nf, 1).astype(dt)
    ok = (mnee >= plateau * fmean) & (nf > 0)
    first = jnp.argmax(ok, axis=1)
    found = jnp.any(ok, axis=1)
    thr_t = jnp.take_along_axis(mu, first[:, None], axis=1)[:, 0]
    # class checks: size, Tair-u* correlation, first-class u*
    tcell = jnp.where(valid, tc, n_t)
    s = lambda v: seg(w * jnp.where(valid, v, 0), tcell, n_t + 1)[:n_t]
    st, su, stt, suu, stu = s(tair), s(ustar), s(tair * tair), s(ustar * ustar), s(tair * ustar)
    nn = jnp.maximum(cnt_t, 1)
    cov = stu / nn - st * su / nn ** 2
    vt = jnp.clip(stt / nn - (st / nn) ** 2, 1e-12, None)
    vu = jnp.clip(suu / nn - (su / nn) ** 2, 1e-12, None)
    corr = cov / jnp.sqrt(vt * vu)
    good = (found & (cnt_t >= min_class) & (jnp.abs(corr) < max_corr)
            & (mu[:, 0] <= first_max))
    vals = jnp.where(good, thr_t, jnp.nan)
    med = jnp.nanmedian(vals)
    return jnp.where((n >= min_season) & jnp.any(good), med, jnp.nan)


def mpt_threshold(nee, ustar, tair, valid, settings: UstarSettings = UstarSettings()):
    """Moving-point threshold of one season of night records (JAX, jit-compiled).

    Parameters
    ----------
    nee, ustar, tair : (..., L) night-time NEE (umol m-2 s-1), u* (m s-1), Tair (degC);
        leading axes (bootstrap draws, seasons) are vmapped.
    valid : (..., L) bool mask of usable records.

    Returns
    -------
    (...) threshold in m s-1 (NaN if the season gives none).
    """
    f = partial(_season_threshold, n_t=settings.n_temperature_classes,
                n_u=settings.n_ustar_classes, fwd=settings.forward_classes)
    args = (settings.plateau, settings.min_records_class, settings.min_records_season,
            settings.max_corr, settings.first_class_max_ustar)
    nee, ustar, tair, valid = map(jnp.asarray, (nee, ustar, tair, valid))
    g = lambda a, b, c, d: f(a, b, c, d, *args)
    for _ in range(nee.ndim - 1):
        g = jax.vmap(g)
    return g(nee, ustar, tair, valid)


def estimate_ustar_threshold(nee, ustar, tair, rg, time, *, n_bootstrap: int = 100,
                             seed: int = 0,
                             settings: UstarSettings = UstarSettings()) -> UstarResult:
    """Annual u* thresholds with bootstrap percentiles (see the module docstring).

    Parameters
    ----------
    nee, ustar, tair, rg : (N,) NEE (umol m-2 s-1), u* (m s-1), Tair (degC), Rg (W m-2).
    time : (N,) datetime64.
    n_bootstrap : number of resamples (0 = no uncertainty).

    Raises
    ------
    DataValidationError : no night-time record with NEE, u* and Tair.
    """
    nee, ustar, tair, rg = (np.asarray(a, float) for a in (nee, ustar, tair, rg))
    night = (np.isfinite(nee) & np.isfinite(ustar) & np.isfinite(tair)
             & (np.nan_to_num(rg, nan=np.inf) < settings.night_rg))
    if not night.any():
        raise DataValidationError(
            "no night-time record (Rg < 10 W m-2) with measured NEE, u* and Tair; the u* "
            "threshold cannot be estimated.", variable="ustar",
            fix="check radiation/u* columns, or pass a fixed threshold (ustar_threshold=...).")
    t = np.asarray(time, dtype="datetime64[M]")
    year = t.astype("datetime64[Y]").astype(int) + 1970
    month = t.astype(int) % 12
    season_id = (year - year.min()) * 4 + month // 3
    sids = np.unique(season_id[night])
    rows = [np.flatnonzero(night & (season_id == s)) for s in sids]  # seasons, not records
    L = max(r.size for r in rows)
    idx = np.zeros((sids.size, L), dtype=np.int64)
    msk = np.zeros((sids.size, L), dtype=bool)
    for j, r in enumerate(rows):
        idx[j, :r.size] = r
        msk[j, :r.size] = True
    sizes = msk.sum(axis=1)
    rng = np.random.default_rng(seed)
    draws = [np.broadcast_to(np.arange(L), (sids.size, L))]
    for _ in range(n_bootstrap):
        u = rng.integers(0, np.maximum(sizes, 1)[:, None], size=(sids.size, L))
        draws.append(u)
    sel = np.stack(draws)                                   # (B+1, S, L)
    gidx = np.take_along_axis(np.broadcast_to(idx, sel.shape), sel, axis=2)
    th = np.asarray(mpt_threshold(nee[gidx], ustar[gidx], tair[gidx],
                                  np.broadcast_to(msk, sel.shape), settings))  # (B+1, S)
    s_year = year.min() + sids // 4
    years = np.unique(year)
    annual = np.full((th.shape[0], years.size), np.nan)
    for k, yr in enumerate(years):  # a handful of years
        cols = s_year == yr
        if cols.any():
            v = th[:, cols]
            annual[:, k] = np.where(np.isfinite(v).any(axis=1), np.nanmax(np.where(
                np.isfinite(v), v, -np.inf), axis=1), np.nan)
    thr = {int(y): float(annual[0, k]) for k, y in enumerate(years)}
    boot = annual[1:]
    pct = {}
    for k, y in enumerate(years):
        b = boot[:, k][np.isfinite(boot[:, k])]
        pct[int(y)] = tuple(float(x) for x in np.percentile(b, [5, 50, 95])) if b.size else (
            np.nan, np.nan, np.nan)
    seas = {(int(s_year[j]), int(sids[j] % 4)): float(th[0, j]) for j in range(sids.size)}
    return UstarResult(threshold=thr, percentiles=pct, season_thresholds=seas, bootstrap=boot,
                       years=years)


def ustar_filter(ustar, rg, threshold, *, night_rg: float = 10.0):
    """Flag records to discard: night (Rg < night_rg, or Rg missing) with u* below the
    threshold or missing u* (REddyProc ``sMDSGapFillAfterUstar``: only night is filtered).

    ``threshold`` is a scalar or an (N,) array (m s-1). Returns (N,) bool, True = discard."""
    ustar = np.asarray(ustar, float)
    rg = np.asarray(rg, float)
    thr = np.broadcast_to(np.asarray(threshold, float), ustar.shape)
    night = ~np.isfinite(rg) | (rg < night_rg)
    return night & np.isfinite(thr) & (~np.isfinite(ustar) | (ustar < thr))
