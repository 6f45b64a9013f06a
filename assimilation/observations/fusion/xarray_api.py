"""xarray edge of the fusion: ``fuse(datasets, method=...) -> xarray.Dataset``.

Input: one Dataset (one sensor) or a list/dict of Datasets (one per sensor, the first is
the reference whose scale the fused series takes), each with the index ``variable``
(dims ``time`` plus any spatial dims, same spatial dims for all sensors) and optionally a
per-pixel acquisition time ``obs_time`` (MODIS composites: the day the pixel was seen).
Each observation goes to its (UTC) day on a daily grid; same-day values of one sensor
are averaged. Output: ``{variable}_mean``, ``{variable}_sd`` (daily, units of the input),
``{variable}_flag`` (per pixel: 0 ok, 1 no valid observation, 2 few, 3 constant) and the
fitted sensor/process parameters in the attributes.

Grids run through :func:`xarray.apply_ufunc` with ``dask="parallelized"``: chunk the
spatial dims (not time) and each chunk is one vmapped call. Kalman parameters are fitted
once (pooled over a strided sample of pixels) before the chunks run, so all chunks share
them; the ``"scene"`` climatology is pooled within a chunk.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

from .methods import FLAG_MEANINGS, METHODS, fuse_arrays

__all__ = ["fuse", "daily_observations"]


def _sensor_list(data):
    if isinstance(data, xr.Dataset):
        return [(data.attrs.get("sensor", "sensor0"), data)]
    if isinstance(data, dict):
        return list(data.items())
    return [d if isinstance(d, tuple) else (d.attrs.get("sensor", f"sensor{i}"), d) for i, d in enumerate(data)]


def _grid_days(values, day_index, T):
    """values, day_index: (P, N) -> daily mean (P, T) and mask."""
    P, N = values.shape
    ok = np.isfinite(values) & np.isfinite(day_index)
    d = np.where(ok, day_index, -1).astype(np.int64)
    ok &= (d >= 0) & (d < T)
    rows = np.repeat(np.arange(P), N).reshape(P, N)
    s = np.zeros((P, T))
    c = np.zeros((P, T))
    np.add.at(s, (rows[ok], d[ok]), values[ok])
    np.add.at(c, (rows[ok], d[ok]), 1.0)
    return np.where(c > 0, s / np.maximum(c, 1), 0.0), c > 0


def _day_index(ds, variable, obs_time, start):
    t = ds[obs_time] if obs_time in ds else ds["time"].broadcast_like(ds[variable])
    return ((t - np.datetime64(start, "ns")) / np.timedelta64(1, "D")).transpose(*ds[variable].dims)


def daily_observations(data, variable: str = "evi", days=None, obs_time: str = "obs_time"):
    """Daily (P, T, S) observations and mask from one or several sensor Datasets;
    returns (y, mask, days, spatial_template) where the template is a DataArray of the
    reference sensor's spatial dims (stack/unstack helper)."""
    sensors = _sensor_list(data)
    days = _days(sensors, variable, days)
    T = len(days)
    ys, ms = [], []
    space = None
    for name, ds in sensors:
        if variable not in ds:
            raise DataValidationError(f"variable {variable!r} missing from sensor {name!r}", variable=variable,
                                      fix="compute the index first (process_models.satellite.compute_indices)")
        da = ds[variable]
        sdims = [d for d in da.dims if d != "time"]
        if space is None:
            space = da.isel(time=0, drop=True)
        v = da.transpose("time", *sdims).values.reshape(da.sizes["time"], -1).T
        di = _day_index(ds, variable, obs_time, days[0]).transpose("time", *sdims).values
        di = np.floor(di.reshape(da.sizes["time"], -1).T)
        if v.shape[0] != int(np.prod(space.shape)) and v.shape[0] != 1:
            raise DataValidationError(f"sensor {name!r} has {v.shape[0]} pixels, the reference has "
                                      f"{int(np.prod(space.shape))}", variable=variable,
                                      fix="regrid all sensors to the reference grid first")
        if v.shape[0] == 1:
            v, di = np.broadcast_to(v, (int(np.prod(space.shape)), v.shape[1])), \
                np.broadcast_to(di, (int(np.prod(space.shape)), v.shape[1]))
        y, m = _grid_days(np.asarray(v, float), di, T)
        ys.append(y)
        ms.append(m)
    return np.stack(ys, -1), np.stack(ms, -1), days, space


def _days(sensors, variable, days):
    if days is not None:
        return pd.DatetimeIndex(days).floor("D")
    t0 = min(pd.Timestamp(ds["time"].values.min()) for _, ds in sensors)
    t1 = max(pd.Timestamp(ds["obs_time"].max().values) if "obs_time" in ds else pd.Timestamp(ds["time"].values.max())
             for _, ds in sensors)
    return pd.date_range(t0.floor("D"), t1.floor("D"), freq="D")


def _params_attrs(fit, names):
    if fit is None:
        return {}
    s, p = fit.sensors, fit.process
    out = {"process_kind": p.kind, "process_sd": float(np.asarray(p.process_sd).mean()),
           "process_phi": float(np.asarray(p.phi).mean())}
    for i, n in enumerate(names):
        out[f"{n}_bias"] = float(np.asarray(s.bias)[..., i].mean())
        out[f"{n}_gain"] = float(np.asarray(s.gain)[..., i].mean())
        out[f"{n}_noise_sd"] = float(np.asarray(s.noise_sd)[..., i].mean())
    return out


def fuse(data, method: str = "kalman", variable="evi", *, days=None, obs_time: str = "obs_time",
         **options) -> xr.Dataset:
    """Fuse one or several sensors' index series into a daily gap-filled Dataset.

    Parameters
    ----------
    data : xarray.Dataset, or list / dict {name: Dataset} of sensors (first = reference).
    method : one of ``"kalman"``, ``"linear"``, ``"whittaker"``, ``"savgol"``, ``"pyvprm"``.
    variable : name or list of names of the index (e.g. ``"evi"``, ``["evi", "lswi"]``).
    days : target days (default: the span of the data).
    options : passed to :func:`.methods.fuse_arrays` (``kind``, ``climatology``, ``process``,
        ``sensors``, ``fit_pixels``, ``fit_steps``, ``window_days`` ...).

    Returns
    -------
    xarray.Dataset with ``time`` (daily, interval start, UTC) and the spatial dims of the
    reference sensor: ``{v}_mean``, ``{v}_sd`` (NaN for methods without one), ``{v}_flag``.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    variables = [variable] if isinstance(variable, str) else list(variable)
    sensors = _sensor_list(data)
    names = [n for n, _ in sensors]
    out = {}
    attrs = {"method": method, "sensors": ", ".join(names),
             "time_convention": "time = start of the UTC day",
             "history": "ecoflux assimilation.observations.fusion.fuse"}
    dask_input = any(getattr(ds[v].data, "chunks", None) is not None for _, ds in sensors for v in variables
                     if v in ds)
    for v in variables:
        if dask_input:
            res_ds = _fuse_dask(sensors, v, method, days, obs_time, options)
            out.update(res_ds.data_vars)
            attrs.update({f"{v}_{k}": val for k, val in res_ds.attrs.items()})
            continue
        y, mask, tdays, space = daily_observations(sensors, v, days, obs_time)
        res = fuse_arrays(y, mask, method, **options)
        out.update(_to_vars(v, res.mean, res.sd, res.flags, tdays, space, sensors[0][1][v].attrs))
        attrs.update({f"{v}_{k}": val for k, val in _params_attrs(res.fit, names).items()})
    ds = xr.Dataset(out)
    ds.attrs.update(attrs)
    return ds


def _to_vars(v, mean, sd, flags, tdays, space, src_attrs):
    units = src_attrs.get("units", "1")
    sdims = list(space.dims)
    shape = (len(tdays),) + space.shape
    coords = {"time": tdays, **{k: c for k, c in space.coords.items()}}
    mk = lambda a: a.T.reshape(shape)
    long = src_attrs.get("long_name", v)
    return {
        f"{v}_mean": xr.DataArray(mk(mean), dims=["time", *sdims], coords=coords,
                                  attrs={"units": units, "long_name": f"fused daily {long}"}),
        f"{v}_sd": xr.DataArray(mk(sd), dims=["time", *sdims], coords=coords,
                                attrs={"units": units, "long_name": f"sd of fused daily {long}"}),
        f"{v}_flag": xr.DataArray(flags.reshape(space.shape), dims=sdims, coords=space.coords,
                                  attrs={"units": "1", "flag_values": "0 1 2 3", "flag_meanings": FLAG_MEANINGS}),
    }


def _fuse_dask(sensors, v, method, days, obs_time, options):
    """Chunk-parallel path: Kalman parameters from a strided pixel sample, then
    apply_ufunc over the spatial chunks."""
    tdays = _days(sensors, v, days)
    T = len(tdays)
    names = [n for n, _ in sensors]
    opts = dict(options)
    fit = None
    ref = sensors[0][1][v]
    sdims = [d for d in ref.dims if d != "time"]
    if method == "kalman" and opts.get("process") is None:
        n_pix = int(np.prod([ref.sizes[d] for d in sdims]))
        step = max(1, int(np.sqrt(n_pix / opts.get("fit_pixels", 256))))
        sample = [(n, ds.isel({d: slice(None, None, step) for d in sdims}).compute()) for n, ds in sensors]
        y, mask, _, _ = daily_observations(sample, v, tdays, obs_time)
        fit = fuse_arrays(y, mask, "kalman", **opts).fit
        opts.update(process=fit.process, sensors=fit.sensors)

    args, core = [], []
    for i, (_, ds) in enumerate(sensors):
        tn = f"_t{i}"
        vals = ds[v].rename(time=tn)
        di = _day_index(ds, v, obs_time, tdays[0]).rename(time=tn)
        args += [vals, di]
        core += [[tn], [tn]]

    def _core(*arrs):
        lead = arrs[0].shape[:-1]
        P = int(np.prod(lead))
        ys, ms = [], []
        for k in range(0, len(arrs), 2):
            val = np.broadcast_to(arrs[k], lead + arrs[k].shape[-1:]).reshape(P, -1)
            dd = np.floor(np.broadcast_to(arrs[k + 1], lead + arrs[k + 1].shape[-1:]).reshape(P, -1))
            y, m = _grid_days(np.asarray(val, float), dd, T)
            ys.append(y)
            ms.append(m)
        y, mask = np.stack(ys, -1), np.stack(ms, -1)
        if not mask.any():
            nan = np.full(lead + (T,), np.nan)
            return nan, nan, np.ones(lead, np.int8)
        r = fuse_arrays(y, mask, method, **opts)
        return r.mean.reshape(lead + (T,)), r.sd.reshape(lead + (T,)), r.flags.reshape(lead)

    mean, sd, flags = xr.apply_ufunc(
        _core, *args, input_core_dims=core, output_core_dims=[["time"], ["time"], []],
        dask="parallelized", output_dtypes=[float, float, np.int8],
        dask_gufunc_kwargs={"output_sizes": {"time": T}, "allow_rechunk": True})
    units = ref.attrs.get("units", "1")
    mean = mean.assign_coords(time=tdays).transpose("time", ...).assign_attrs(units=units, long_name=f"fused daily {v}")
    sd = sd.assign_coords(time=tdays).transpose("time", ...).assign_attrs(units=units, long_name=f"sd of fused daily {v}")
    flags = flags.assign_attrs(units="1", flag_values="0 1 2 3", flag_meanings=FLAG_MEANINGS)
    res = xr.Dataset({f"{v}_mean": mean, f"{v}_sd": sd, f"{v}_flag": flags})
    res.attrs.update(_params_attrs(fit, names))
    return res
