"""The daily pivot: per-pixel daily index series with a standard deviation, the one satellite
input of the map engine (and the output format of the pivot representations of issue 15).

**Format** (:func:`validate_pivot`): an ``xarray.Dataset`` with dims ``("time", "y", "x")``
(a point series has y = x = 1); ``time`` daily ``datetime64[ns]`` at 00:00, contiguous;
data variables among :data:`PIVOT_VARIABLES` (evi, evi2, ndvi, lswi, nirv: unit "1"; lai:
"m2 m-2"; fapar: "1"), each with a companion ``<name>_sd`` (same unit, > 0), no NaN;
coordinates ``x``, ``y`` in CRS units; attributes ``crs`` (WKT or "EPSG:xxxx") and
``pivot_method``. A value at day d is the state of day d (00:00-24:00 UTC).

**Physical pivot** (:func:`daily_pivot`, :func:`pivot_arrays`): the Kalman/RTS smoother of
:mod:`assimilation.observations.fusion` (damped anomaly around each pixel's mean, sensor
model y = a + b x + v; Rauch, Tung & Striebel 1965; parameters by maximum likelihood pooled
over a strided pixel sample, :func:`fit_fusion`). Its parameters are fitted once per run and
shared by every tile, so a pixel's pivot does not depend on the tiling.

A pixel without any clear observation (all cloud) gets the **scene prior**: the median of
the other pixels' daily means, with sd = sqrt(median sd^2 + spatial variance across pixels),
and ``pixel_flag`` = 1. Pixels with fewer than 4 observations are flagged 2.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

__all__ = ["PIVOT_VARIABLES", "validate_pivot", "FusionParameters", "fit_fusion", "pivot_arrays",
           "daily_pivot", "pivot_days", "FLAG_PRIOR"]

PIVOT_VARIABLES = {"evi": "1", "evi2": "1", "ndvi": "1", "lswi": "1", "nirv": "1", "lai": "m2 m-2", "fapar": "1"}
FLAG_PRIOR = 1
"""``pixel_flag`` of a pixel without a clear observation (scene prior used)."""


def validate_pivot(ds: xr.Dataset, source: str = "pivot") -> xr.Dataset:
    """Check a pivot Dataset against the format above; returns it unchanged or raises a
    :class:`~process_models.units.DataValidationError` naming the variable and the fix."""
    names = [v for v in ds.data_vars if v in PIVOT_VARIABLES]
    if not names:
        raise DataValidationError(f"no pivot variable (one of {sorted(PIVOT_VARIABLES)}).", source=source,
                                  fix="name the daily series evi, ndvi, lswi, nirv, lai or fapar.")
    t = pd.DatetimeIndex(ds["time"].values)
    if len(t) > 1 and not (np.all(np.diff(t.values) == np.timedelta64(1, "D")) and (t == t.floor("D")).all()):
        raise DataValidationError("time is not contiguous daily at 00:00.", source=source, variable="time",
                                  fix="reindex to a daily axis (pandas.date_range(freq='D')).")
    for v in names:
        for name in (v, f"{v}_sd"):
            if name not in ds:
                raise DataValidationError(f"{name!r} missing.", source=source, variable=name,
                                          fix=f"give every pivot variable its standard deviation {v}_sd.")
            da = ds[name]
            if tuple(da.dims) != ("time", "y", "x"):
                raise DataValidationError(f"dims {da.dims}, expected ('time', 'y', 'x').", source=source,
                                          variable=name, fix="transpose to (time, y, x).")
            if da.attrs.get("units") != PIVOT_VARIABLES[v]:
                raise DataValidationError(f"units {da.attrs.get('units')!r}, expected {PIVOT_VARIABLES[v]!r}.",
                                          source=source, variable=name, fix="set the units attribute.")
            if not bool(np.isfinite(da.values).all()):
                raise DataValidationError("NaN or inf values.", source=source, variable=name,
                                          fix="gap-fill the series (the pivot is complete by definition).")
        if not bool((ds[f"{v}_sd"].values > 0).all()):
            raise DataValidationError("standard deviation <= 0.", source=source, variable=f"{v}_sd",
                                      fix="give a positive uncertainty.")
    for a in ("crs", "pivot_method"):
        if a not in ds.attrs:
            raise DataValidationError(f"attribute {a!r} missing.", source=source, variable=a,
                                      fix=f"set ds.attrs[{a!r}].")
    return ds


@dataclass(frozen=True)
class FusionParameters:
    """Kalman-smoother parameters per pivot variable (``{name: (ProcessParams,
    SensorParams)}``), fitted once per run (:func:`fit_fusion`)."""
    by_variable: tuple

    def get(self, name):
        return dict(self.by_variable)[name]


def pivot_days(obs: xr.Dataset, hours: pd.DatetimeIndex, statistics_year: int, pad_days: int = 90):
    """The daily axis of the pivot: the statistics year and the map period, padded by
    ``pad_days`` on each side (the smoother uses observations on the pad)."""
    d0 = min(pd.Timestamp(f"{statistics_year}-01-01"), hours[0].floor("D")) - pd.Timedelta(days=pad_days)
    d1 = max(pd.Timestamp(f"{statistics_year}-12-31"), hours[-1].floor("D")) + pd.Timedelta(days=pad_days)
    return pd.date_range(d0, d1, freq="D").as_unit("ns")


def _daily(obs: xr.Dataset, name: str, days):
    from assimilation.observations.fusion.xarray_api import daily_observations
    y, mask, _, _ = daily_observations(obs[[name] + (["obs_time"] if "obs_time" in obs else [])], name, days)
    return y, mask


def fit_fusion(obs: xr.Dataset, names, days, *, fit_pixels: int = 256, fit_steps: int = 150,
               seed: int = 0) -> FusionParameters:
    """Pooled maximum-likelihood Kalman parameters per variable from a strided sample of
    about ``fit_pixels`` pixels (:func:`assimilation.observations.fusion.fuse_arrays`)."""
    from assimilation.observations.fusion import fuse_arrays
    n_pix = obs.sizes["y"] * obs.sizes["x"]
    step = max(1, int(np.sqrt(n_pix / fit_pixels)))
    sample = obs.isel(y=slice(None, None, step), x=slice(None, None, step))
    out = []
    for n in names:
        y, mask = _daily(sample, n, days)
        if not mask.any():
            raise DataValidationError("no clear observation in the pivot period.", source="satellite",
                                      variable=n, fix="check the cloud mask and run.start/end.")
        fit = fuse_arrays(y, mask, "kalman", fit_pixels=fit_pixels, fit_steps=fit_steps, seed=seed).fit
        out.append((n, (fit.process, fit.sensors)))
    return FusionParameters(tuple(out))


def _scene_prior(mean, sd, bad):
    good = ~bad
    med = np.median(mean[good], axis=0)
    var = np.median(sd[good] ** 2, axis=0) + np.var(mean[good], axis=0)
    return med, np.sqrt(var)


def _daily_time_major(obs: xr.Dataset, name: str, days, dtype=np.float64):
    """Daily observations and mask (T, 1, P), pixel flags and the per-pixel mean prior for
    cubes whose acquisitions fall on distinct days (Sentinel-2 dates, point series): a
    direct index, no scatter-add, flags and prior from the acquisitions themselves. None
    when several acquisitions share a day or pixels have their own days (MODIS
    ``obs_time``): the general path handles those."""
    from assimilation.observations.fusion.methods import (FLAG_CONSTANT, FLAG_FEW_OBS, FLAG_NO_DATA,
                                                          FLAG_OK)
    if "obs_time" in obs:
        return None
    t = pd.DatetimeIndex(obs["time"].values).floor("D")
    if not t.is_unique:
        return None
    d = ((t - days[0]) // pd.Timedelta("1D")).to_numpy()
    keep = (d >= 0) & (d < len(days))
    v = obs[name].transpose("time", "y", "x").values.reshape(obs.sizes["time"], -1)[keep].astype(dtype)
    T, P = len(days), v.shape[1]
    ok = np.isfinite(v)
    y = np.zeros((T, 1, P), dtype)
    m = np.zeros((T, 1, P), bool)
    y[d[keep], 0] = np.where(ok, v, 0.0)
    m[d[keep], 0] = ok
    n = ok.sum(0)
    hi = np.where(ok, v, -np.inf).max(axis=0, initial=-np.inf)
    lo = np.where(ok, v, np.inf).min(axis=0, initial=np.inf)
    flags = np.full(P, FLAG_OK, np.int8)
    flags[(n > 0) & ~(np.where(n > 0, hi - lo, 0.0) > 0)] = FLAG_CONSTANT
    flags[(n > 0) & (n < 4)] = FLAG_FEW_OBS
    flags[n == 0] = FLAG_NO_DATA
    # the 'mean' prior of fusion.harmonic_climatology without harmonics (ridge 1e-3)
    clim = np.where(n > 0, np.where(ok, v, 0.0).sum(0) / (n + 1e-3 * np.maximum(n, 1) + 1e-9), 0.0)
    return y, m, flags, clim.astype(dtype)


def pivot_arrays(obs: xr.Dataset, names, days, params: FusionParameters, prior=None, dtype=np.float64):
    """Pivot of the pixels of ``obs`` (a tile): ``{name: (mean (P, D), sd (P, D))}`` and
    ``flags`` (P,) (0 ok, 1 no observation: scene ``prior`` {name: (mean (D,), sd (D,))}
    used, 2 fewer than 4, 3 constant). Each pixel's series depends only on its own
    observations and the shared ``params``; ``dtype``: precision of the fast path. One-dimensional processes on cubes with one
    acquisition per day run the time-major scalar smoother
    (:func:`assimilation.observations.fusion.scalar.scalar_smoother`, equal to the general
    one to round-off); other cases the general :func:`~assimilation.observations.fusion.fuse_arrays`."""
    from assimilation.observations.fusion import fuse_arrays
    from assimilation.observations.fusion.methods import FLAG_NO_DATA
    from assimilation.observations.fusion.scalar import scalar_smoother
    out, flags = {}, None
    for n in names:
        process, sensors = params.get(n)
        fast = _daily_time_major(obs, n, days, dtype) if process.kind in ("damped", "random_walk") else None
        if fast is not None:
            y, mask, f, c = fast
            bad = f == FLAG_NO_DATA
            clim = np.broadcast_to(c[None, :], (len(days), y.shape[2]))
            if bad.all():
                m = s = None
            else:
                mt, st = scalar_smoother(y, mask, clim, process, sensors)
                m, s = np.asarray(mt).T, np.asarray(st).T
        else:
            y, mask = _daily(obs, n, days)
            bad = ~mask.any(axis=(1, 2))
            if bad.all():
                m = s = None
                f = np.full(y.shape[0], FLAG_NO_DATA, np.int8)
            else:
                res = fuse_arrays(y, mask, "kalman", process=process, sensors=sensors, chunk=max(y.shape[0], 1))
                m, s, f = np.asarray(res.mean), np.asarray(res.sd), np.asarray(res.flags, np.int8)
        P = len(f)
        if m is None:
            if prior is None:
                raise DataValidationError("no pixel of the tile has a clear observation and no scene prior "
                                          "was given.", source="satellite", variable=n,
                                          fix="pass prior= (daily_pivot computes it over the scene).")
            m, s = (np.broadcast_to(np.asarray(a, float), (P, len(days))).copy() for a in prior[n])
        elif bad.any():
            pm, ps = prior[n] if prior is not None else _scene_prior(m, s, bad)
            m = np.where(bad[:, None], pm, m)
            s = np.where(bad[:, None], ps, s)
        out[n] = (m, s)
        flags = f.astype(np.int8) if flags is None else np.maximum(flags, f.astype(np.int8))
    return out, flags


def scene_prior(obs: xr.Dataset, names, days, params: FusionParameters, sample_pixels: int = 256):
    """Scene prior per variable from a strided pixel sample: ``{name: (mean (D,), sd (D,))}``."""
    n_pix = obs.sizes["y"] * obs.sizes["x"]
    step = max(1, int(np.sqrt(n_pix / sample_pixels)))
    sample = obs.isel(y=slice(None, None, step), x=slice(None, None, step))
    res, flags = pivot_arrays(sample, names, days, params, prior={n: (0.0, 1.0) for n in names})
    bad = flags == FLAG_PRIOR
    return {n: _scene_prior(m, s, bad) for n, (m, s) in res.items()}


def daily_pivot(obs: xr.Dataset, names=("evi", "lswi"), days=None, *, params: FusionParameters | None = None,
                fit_pixels: int = 256, fit_steps: int = 150, seed: int = 0) -> xr.Dataset:
    """The physical pivot of a whole observation cube (time, y, x) as a Dataset in the
    pivot format, with ``pixel_flag`` (y, x). ``days``: default the observation span."""
    if days is None:
        t = pd.DatetimeIndex(obs["time"].values)
        days = pd.date_range(t[0].floor("D"), t[-1].floor("D"), freq="D").as_unit("ns")
    params = params or fit_fusion(obs, names, days, fit_pixels=fit_pixels, fit_steps=fit_steps, seed=seed)
    prior = scene_prior(obs, names, days, params)
    res, flags = pivot_arrays(obs, names, days, params, prior)
    ny, nx = obs.sizes["y"], obs.sizes["x"]
    coords = {"time": days, "y": obs["y"], "x": obs["x"]}
    data = {}
    for n, (m, s) in res.items():
        u = PIVOT_VARIABLES[n]
        data[n] = (("time", "y", "x"), m.T.reshape(len(days), ny, nx), {"units": u, "long_name": f"daily {n}"})
        data[f"{n}_sd"] = (("time", "y", "x"), s.T.reshape(len(days), ny, nx),
                           {"units": u, "long_name": f"standard deviation of daily {n}"})
    ds = xr.Dataset(data, coords=coords)
    ds["pixel_flag"] = (("y", "x"), flags.reshape(ny, nx),
                        {"units": "1", "flag_values": "0 1 2 3",
                         "flag_meanings": "ok no_clear_observation_scene_prior few_observations constant"})
    ds.attrs.update(crs=obs.attrs["crs"], pivot_method="kalman",
                    history="ecoflux assimilation.maps.daily_pivot (Kalman/RTS smoother, pooled MLE)")
    return validate_pivot(ds)
