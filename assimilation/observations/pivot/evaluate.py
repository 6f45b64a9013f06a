"""Evaluation of the pivots on withheld Sentinel-2 dates, and the pivot Dataset itself.

Withholding (:func:`withhold_dates`): 25 % of the clear S2 *dates* are hidden from every
method, for all pixels at once (a date is an acquisition), either at random or in 30-60-day
blocks that cover about 25 % of the dates (cloudy spells). Scores on the hidden
observations (:func:`assimilation.observations.fusion.score`): RMSE, bias, and the share
inside the central 90 % predictive interval of an observation (fused sd and the sensor
noise together).

Methods (:func:`evaluate_pivots`): ``linear``, ``whittaker`` (GCV) and ``kalman`` (damped
anomaly around a 2-harmonic climatology, pooled MLE) on the S2 series alone (the fusion
package); ``multires`` (:mod:`.multires`, S2 + the coarse daily proxy); ``multires_resid``
(the same after the learned coarse-operator correction of :mod:`.hybrid`); ``learned``
(:mod:`.learned`, S2 + proxy [+ S1] tokens) and ``learned_phys`` (initialised from and
regularised by the ``multires`` pivot).

The pivot format (:func:`to_pivot`, :func:`validate_pivot`): an ``xarray.Dataset`` with
dims (time, y, x), daily ``time`` at 00:00 on contiguous days, variables from ``evi, ndvi,
lswi, nirv`` (units "1"), ``lai`` (m2 m-2), ``fapar`` (1), each with ``<name>_sd`` (> 0),
no NaN; coords x, y in metres; attrs ``crs`` and ``pivot_method``. When the regional map
engine's ``assimilation.maps.pivot.validate_pivot`` exists it is used instead.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

from ..fusion import fuse_arrays, score, withhold
from .multires import cell_observations, fine_predictive_sd, multires_fuse
from .sensors import fapar_from_ndvi, lai_from_ndvi

__all__ = ["withhold_dates", "to_pivot", "validate_pivot", "PIVOT_VARIABLES", "PIVOT_UNITS", "evaluate_pivots",
           "METHODS", "downstream_vprm_regression", "pivot_point_park_falls"]

PIVOT_UNITS = {"evi": "1", "evi2": "1", "ndvi": "1", "lswi": "1", "nirv": "1", "lai": "m2 m-2", "fapar": "1"}
PIVOT_VARIABLES = tuple(PIVOT_UNITS)
METHODS = ("linear", "whittaker", "kalman", "multires", "multires_resid", "learned", "learned_phys")


def withhold_dates(mask, fraction: float = 0.25, mode: str = "random", block_days=(30, 60), seed: int = 0):
    """Split a (P, T) mask into (train, test) by withholding whole dates (all pixels).

    ``random``: ``round(fraction x dates)`` of the dates with any clear pixel, drawn without
    replacement. The first and last clear dates are never withheld (all methods would
    extrapolate there). ``block``: day blocks of 30-60 days (the fusion package's block rule on the
    date axis) until about ``fraction`` of the days are covered."""
    mask = np.asarray(mask, bool)
    days = np.flatnonzero(mask.any(0))
    rng = np.random.default_rng(seed)
    hide = np.zeros(mask.shape[1], bool)
    inner = days[1:-1]            # the first and last clear dates stay: scores are interpolation, not extrapolation
    if mode == "random":
        hide[rng.choice(inner, int(round(fraction * len(days))), replace=False)] = True
    elif mode == "block":
        _, t = withhold(np.ones((1, mask.shape[1], 1), bool), fraction, "block", block_days, seed)
        hide = t[0, :, 0]
        hide[days[[0, -1]]] = False
    else:
        raise ValueError("mode must be 'random' or 'block'")
    test = mask & hide[None, :]
    return mask & ~test, test


def validate_pivot(ds: xr.Dataset) -> xr.Dataset:
    """Check ``ds`` against the pivot format (module docstring); returns it or raises
    :class:`DataValidationError`. Delegates to ``assimilation.maps.pivot.validate_pivot``
    when that module exists."""
    try:
        from assimilation.maps.pivot import validate_pivot as _engine
    except ImportError:
        _engine = None
    if _engine is not None:
        return _engine(ds)
    if tuple(ds.dims) and set(ds.dims) != {"time", "y", "x"}:
        raise DataValidationError(f"dims {tuple(ds.dims)} are not (time, y, x)", variable="dims",
                                  fix="a point series has y = x = 1")
    t = pd.DatetimeIndex(ds.time.values)
    if len(t) == 0 or (t != t.floor("D")).any() or (len(t) > 1 and (np.diff(t.asi8) != 86_400 * 10**9).any()):
        raise DataValidationError("time is not contiguous daily at 00:00", variable="time",
                                  fix="put the pivot on pd.date_range(start, end, freq='D')")
    names = [v for v in ds.data_vars if not v.endswith("_sd")]
    if not names:
        raise DataValidationError("no pivot variable", variable="data_vars", fix=f"add one of {PIVOT_VARIABLES}")
    for v in names:
        if v not in PIVOT_UNITS:
            raise DataValidationError(f"{v!r} is not a pivot variable", variable=v, fix=f"use {PIVOT_VARIABLES}")
        if f"{v}_sd" not in ds:
            raise DataValidationError("companion sd missing", variable=f"{v}_sd", fix=f"add {v}_sd")
        for n in (v, f"{v}_sd"):
            a = ds[n]
            if a.dims != ("time", "y", "x"):
                raise DataValidationError(f"dims {a.dims}", variable=n, fix="transpose to (time, y, x)")
            if a.attrs.get("units") != PIVOT_UNITS[v]:
                raise DataValidationError(f"units {a.attrs.get('units')!r}", variable=n,
                                          fix=f"units must be {PIVOT_UNITS[v]!r}")
            if not np.isfinite(a.values).all():
                raise DataValidationError("NaN or inf", variable=n, fix="fill every day and pixel")
        if not (ds[f"{v}_sd"].values > 0).all():
            raise DataValidationError("sd not > 0", variable=f"{v}_sd", fix="floor the sd at a small positive value")
    for k in ("crs", "pivot_method"):
        if k not in ds.attrs:
            raise DataValidationError(f"attribute {k!r} missing", variable=k, fix=f"set ds.attrs[{k!r}]")
    return ds


def to_pivot(means: dict, sds: dict, days, x, y, *, method: str, crs: str = "EPSG:3035",
             derive: bool = True, sd_floor: float = 1e-4) -> xr.Dataset:
    """Pivot Dataset from ``{name: (P, T)}`` means and sds (pixels row-major over (y, x)).
    ``derive``: add ``lai`` and ``fapar`` from NDVI (:mod:`.sensors`), sd by the delta method."""
    days = pd.DatetimeIndex(days)
    ny, nx = len(y), len(x)
    means, sds = dict(means), dict(sds)
    if derive and "ndvi" in means:
        n, s = np.asarray(means["ndvi"]), np.asarray(sds["ndvi"])
        means["lai"], sds["lai"] = (np.asarray(a) for a in lai_from_ndvi(n, s))
        means["fapar"], sds["fapar"] = (np.asarray(a) for a in fapar_from_ndvi(n, s))
    out = {}
    for v, m in means.items():
        shape = (ny, nx, len(days))
        to3 = lambda a: np.moveaxis(np.asarray(a, float).reshape(shape), -1, 0)  # noqa: E731
        out[v] = (("time", "y", "x"), to3(m), {"units": PIVOT_UNITS[v], "long_name": f"daily pivot {v}"})
        out[f"{v}_sd"] = (("time", "y", "x"), np.maximum(to3(sds[v]), sd_floor),
                          {"units": PIVOT_UNITS[v], "long_name": f"sd of daily pivot {v}"})
    ds = xr.Dataset(out, coords={"time": days.astype("datetime64[ns]"),
                                 "y": ("y", np.asarray(y, float), {"units": "m"}),
                                 "x": ("x", np.asarray(x, float), {"units": "m"})},
                    attrs={"crs": crs, "pivot_method": method,
                           "history": "ecoflux assimilation.observations.pivot"})
    return validate_pivot(ds)


# ----------------------------------------------------------------------------- evaluation
def _score_rows(rows, mode, method, index, y, test, mean, osd, seconds):
    rows.append({"mode": mode, "method": method, "index": index, "seconds": seconds,
                 **score(y, test, mean, osd)})


def evaluate_pivots(obs, proxies: dict, *, eval_pixels, modes=("random", "block"), fraction: float = 0.25,
                    block_days=(30, 60), seed: int = 0, methods=METHODS, indices=("ndvi", "evi"),
                    fit_steps: int = 100, learned_config=None, train_config=None, s1=None,
                    checkpoint_root=None, progress=None, train_pixels=None, calibrate: bool = True,
                    calibration_fraction: float = 0.2):
    """Withhold S2 dates, fill with every method, score NDVI/EVI on the withheld dates.

    obs : :class:`.sensors.S2Observations` (screened); proxies : ``{index: CoarseProxy}``;
    eval_pixels : fine pixels that are filled and scored (the cell level always uses all);
    s1 : optional (P, T) Sentinel-1 proxy values and mask (tuple) as an extra learned input.
    train_pixels : pixels the learned models train on (with ``eval_pixels``; default those only).
        The withheld dates are hidden from training as from every other method.
    calibrate : calibrate the learned models' sd (:func:`.learned.train_calibrated`): a
        ``calibration_fraction`` of the remaining dates (drawn in the same mode, random or
        blocks, so disjoint from the evaluation dates) is hidden from the learned models'
        training, physical prior and input (also when the evaluation dates are scored, so
        that calibration and evaluation dates are exchangeable), and one conformal scale
        per index is fitted on it.
    Returns (table DataFrame, {(mode, method): {index: (mean, obs_sd)}}, extras dict).
    """
    from .hybrid import correct_coarse, fit_coarse_residual, physics_informed_series
    from .learned import LearnedConfig, PixelSeries, hide_targets, predict, train_calibrated, train_pivot_mae
    ev = np.asarray(eval_pixels)
    pool = np.unique(np.concatenate([ev, np.asarray(ev if train_pixels is None else train_pixels)]))
    pos = np.searchsorted(pool, ev)
    rows, fills, extras = [], {}, {}
    doy = obs.days.day_of_year.to_numpy().astype(float)
    for mode in modes:
        train, test = withhold_dates(obs.mask, fraction, mode, block_days, seed)
        extras[(mode, "test_share")] = float(test.sum() / max(obs.mask.sum(), 1))
        # calibration dates of the learned sd: withheld from the remaining (training) dates in
        # the same mode, so disjoint from the evaluation dates by construction
        fit_mask, cal = withhold_dates(train, calibration_fraction, mode, block_days, seed + 1)
        prior = {}
        mr_out = {}
        for ix in indices:
            y, sd = obs.values[ix], obs.sd[ix]
            pr = proxies[ix]
            for m in ("linear", "whittaker", "kalman"):
                if m not in methods:
                    continue
                t0 = time.perf_counter()
                opts = dict(climatology="harmonic", fit_steps=fit_steps) if m == "kalman" else {}
                r = fuse_arrays(y[ev, :, None], train[ev, :, None], m, **opts)
                _score_rows(rows, mode, m, ix, y[ev], test[ev], r.obs_mean[..., 0], r.obs_sd[..., 0],
                            time.perf_counter() - t0)
                fills.setdefault((mode, m), {})[ix] = (r.mean, r.obs_sd[..., 0])
                if progress is not None:
                    progress.update()
            t0 = time.perf_counter()
            mr = multires_fuse(y, train, sd, pr.values, pr.mask, pr.cell, fit_steps=fit_steps, seed=seed,
                               pixels=pool)
            mean_all, sd_all = mr.mean, mr.sd
            osd_all = fine_predictive_sd(mr, sd[pool])
            sel = lambda a: a[pos]  # noqa: E731
            mr_out[ix] = (mean_all, sd_all)
            if "learned_phys" in methods:
                # the physical prior of learned_phys must not see the calibration dates either
                # (the parameters fitted above are kept: only the smoothers are re-run)
                prior[ix] = mr_out[ix] if not calibrate else (lambda r: (r.mean, r.sd))(multires_fuse(
                    y, fit_mask, sd, pr.values, pr.mask, pr.cell, seed=seed, pixels=pool,
                    cell_process=mr.cell_fit.process, cell_sensors=mr.cell_fit.sensors,
                    pixel_params=mr.pixel_params))
            if "multires" in methods:
                _score_rows(rows, mode, "multires", ix, y[ev], test[ev], sel(mean_all), sel(osd_all),
                            time.perf_counter() - t0)
                fills.setdefault((mode, "multires"), {})[ix] = (sel(mean_all), sel(osd_all))
                extras[(mode, "multires", ix)] = {"loglik": mr.log_likelihood, "pixel": mr.pixel_params,
                                                  "cell_sensors": mr.cell_fit.sensors}
            if "multires_resid" in methods:
                t0 = time.perf_counter()
                yc, mc = cell_observations(y, train, pr.values, pr.mask, pr.cell)
                g, hist = fit_coarse_residual(yc, mc, mr.cell_fit.sensors, doy, seed=seed)
                corr = correct_coarse(g, pr.values, pr.mask, mr.cell_mean, doy)
                mr2 = multires_fuse(y, train, sd, corr, pr.mask, pr.cell, fit_steps=fit_steps, seed=seed, pixels=ev)
                _score_rows(rows, mode, "multires_resid", ix, y[ev], test[ev], mr2.mean,
                            fine_predictive_sd(mr2, sd[ev]), time.perf_counter() - t0)
                fills.setdefault((mode, "multires_resid"), {})[ix] = (mr2.mean, fine_predictive_sd(mr2, sd[ev]))
                extras[(mode, "multires_resid", ix)] = {"loglik": mr2.log_likelihood, "residual_mse": float(hist[-1]),
                                                        "residual_mse_start": float(hist[0])}
            if progress is not None:
                progress.update()
        lm = [m for m in ("learned", "learned_phys") if m in methods]
        if lm:
            vals = [obs.values[ix][pool] for ix in indices] + [proxies[ix].values[proxies[ix].cell[pool]]
                                                                for ix in indices]
            msk = [train[pool] for _ in indices] + [proxies[ix].mask[proxies[ix].cell[pool]] for ix in indices]
            sensor_of = [0] * len(indices) + [1] * len(indices)
            if s1 is not None:
                vals.append((s1[0][pool] + 10.0) / 3.0)        # dB, standardised about -10 dB
                msk.append(s1[1][pool])
                sensor_of.append(2)
            series = PixelSeries(np.stack(vals, -1), np.stack(msk, -1), tuple(sensor_of),
                                 tuple(range(len(indices))), doy)
            cfg = learned_config or LearnedConfig(seed=seed)
            for m in lm:
                t0 = time.perf_counter()
                s_m, c_m = series, cfg
                if m == "learned_phys":
                    pm = np.stack([prior[ix][0] for ix in indices], -1)
                    ps = np.stack([prior[ix][1] for ix in indices], -1)
                    s_m = physics_informed_series(series, pm, ps)
                    from dataclasses import replace
                    c_m = replace(cfg, phys_weight=max(cfg.phys_weight, 1.0),
                                  pretrain_steps=cfg.pretrain_steps or max(train_config.steps // 4, 1))
                ck = None if checkpoint_root is None else f"{checkpoint_root}/{mode}_{m}"
                pre = None if ck is None else ck + "_pre"
                if calibrate:
                    res, scales = train_calibrated(s_m, c_m, train_config, cal[pool], checkpoint_dir=ck,
                                                   pretrain_checkpoint_dir=pre)
                else:
                    res = train_pivot_mae(s_m, c_m, train_config, checkpoint_dir=ck, pretrain_checkpoint_dir=pre)
                    scales = np.ones(len(indices))
                # scored with the calibration run's input (the calibration dates hidden too): calibration
                # and evaluation dates are then exchangeable, as split-conformal scaling assumes
                m_in = hide_targets(series, cal[pool]).mask if calibrate else series.mask
                sub = PixelSeries(series.values[pos], m_in[pos], series.sensor_of, series.target, doy)
                _, mean, s = predict(res.model, sub)
                dt = time.perf_counter() - t0
                for k, ix in enumerate(indices):
                    _score_rows(rows, mode, m, ix, obs.values[ix][ev], test[ev], mean[..., k].astype(float),
                                scales[k] * s[..., k].astype(float), dt)
                    raw = score(obs.values[ix][ev], test[ev], mean[..., k].astype(float), s[..., k].astype(float))
                    extras[(mode, m, ix, "calibration")] = {"scale": float(scales[k]),
                                                            "coverage90_uncalibrated": raw["coverage90"]}
                    fills.setdefault((mode, m), {})[ix] = (mean[..., k], scales[k] * s[..., k])
                extras[(mode, m, "train")] = {"best_val_loss": res.best_val_loss, "steps": res.steps_done}
                if progress is not None:
                    progress.update()
    return pd.DataFrame(rows), fills, extras


# ----------------------------------------------------------------------------- downstream test
def pivot_point_park_falls(start: str = "2004-01-01", end: str = "2006-12-31", fit_steps: int = 100) -> xr.Dataset:
    """The physical pivot of the US-PFa tower pixel (y = x = 1): MOD13Q1 EVI fused with
    MCD43A4 EVI by the Kalman smoother (:func:`..fusion.park_falls_fused_indices`), the sd
    from the same smoother, as a validated pivot Dataset (``evi``; coordinates: the tower's
    WGS84 position in attrs, x = y = 0 m)."""
    from process_models.io import read_park_falls
    from process_models.satellite import evi as _evi

    from ..fusion import fuse
    from ..fusion.modis_sites import EVI_VALID_RANGE
    d = read_park_falls()
    span = slice(start, end)
    r = d["reflectance"].sel(time=span)
    e8 = xr.Dataset({"evi": ("time", np.asarray(_evi(r.nir.values, r.red.values, r.blue.values)))},
                    coords={"time": r.time}).assign_attrs(sensor="MCD43A4")
    e8["evi"] = e8["evi"].where((e8["evi"] > EVI_VALID_RANGE[0]) & (e8["evi"] < EVI_VALID_RANGE[1]))
    e16 = d["evi"][["evi"]].sel(time=span).assign_attrs(sensor="MOD13Q1")
    days = pd.date_range(start, end)
    f = fuse([e16, e8], "kalman", "evi", days=days, kind="damped", climatology="harmonic", n_harmonics=3,
             fit_steps=fit_steps)
    m, s = f["evi_mean"].values.reshape(1, -1), f["evi_sd"].values.reshape(1, -1)
    ds = to_pivot({"evi": m}, {"evi": s}, days, [0.0], [0.0], method="kalman", crs="EPSG:4326", derive=False)
    ds.attrs.update(site="US-PFa", latitude=45.9459, longitude=-90.2723,
                    note="point pivot: one MODIS-scale pixel; x = y = 0 stand for the tower position")
    return ds


def downstream_vprm_regression(tower: xr.Dataset, sources: dict, lswi_satellite: xr.Dataset, *, year: int = 2005,
                               vprm_class: int = 3) -> pd.DataFrame:
    """Does an EVI source predict tower NEE better? For each ``{name: Dataset with evi}``,
    VPRM (Mahadevan et al. 2008, eq. 1 and 5) with the Mahadevan 2008 class parameters
    gives the light-use term ``G = Tscale Wscale Pscale EVI PAR / (1 + PAR / PAR0)``; then
    ``NEE = -lambda G + alpha T + beta`` is fitted by least squares on the even ISO weeks
    and scored on the odd ones (hourly NEE, umol m-2 s-1). The tower has NEE, not GPP, so
    the GPP skill is measured through the NEE fit, whose only satellite input is EVI (and
    LSWI, the same for every source). Returns one row per source: lambda (umol CO2 per umol
    PAR), alpha, beta, test RMSE, test R2, n."""
    import jax.numpy as jnp

    from process_models.io import vprm_site_forcing
    from process_models.vprm import VPRMOptions, load_parameters, simulate
    base = load_parameters("mahadevan2008", temperatures="mahadevan2008", classes=[vprm_class])
    unit = base.replace(lam=jnp.ones_like(base.lam), alpha=jnp.zeros_like(base.alpha), beta=jnp.zeros_like(base.beta))
    obs = tower.nee.values.astype(float)
    t = pd.DatetimeIndex(tower.time.values)
    even = (t.isocalendar().week.to_numpy() % 2) == 0
    temp = tower.air_temperature.values.astype(float)
    rows = []
    for name, sat in sources.items():
        forcing = vprm_site_forcing(tower, sat, lswi_satellite=lswi_satellite, year=year)
        g = np.asarray(simulate(unit, forcing, VPRMOptions()).gpp, float).reshape(-1)
        X = np.stack([-g, np.maximum(temp, float(np.asarray(base.tlow).reshape(-1)[0])), np.ones_like(g)], 1)
        ok = np.isfinite(obs) & np.isfinite(X).all(1)
        coef = np.linalg.lstsq(X[ok & even], obs[ok & even], rcond=None)[0]
        pred = X @ coef
        te = ok & ~even
        res = pred[te] - obs[te]
        r2 = float(np.corrcoef(pred[te], obs[te])[0, 1] ** 2)
        rows.append({"source": name, "lambda": coef[0], "alpha": coef[1], "beta": coef[2],
                     "test_rmse": float(np.sqrt(np.mean(res**2))), "test_r2": r2, "n_test": int(te.sum())})
    return pd.DataFrame(rows)
