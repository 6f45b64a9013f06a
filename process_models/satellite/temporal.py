"""From irregular, gappy satellite index series to model time steps and VPRM statistics.

Two jobs:

1. **Interpolation** of an index series (8-day MODIS composites with per-pixel
   observation days, Sentinel-2 scenes with cloud gaps) onto the model time step.
   pyVPRM 6.0.1 (``vprm_base_model``) takes the nearest image (argmin of |Δday|) of a
   daily gap-filled series; ``method="nearest"`` reproduces that choice.
2. **Per-pixel index statistics** for VPRM's scalars (Mahadevan et al., 2008, GBC 22,
   GB2005): EVImin, EVImax, the phenology threshold
   ``th = EVImin + 0.55 (EVImax - EVImin)`` and LSWImin/LSWImax over the steps where
   ``EVI > th`` (pyVPRM 6.0.1 ``calc_min_max_evi_lswi``).

Which statistics to use
-----------------------
* :func:`yearly_statistics` -- pyVPRM's: the whole loaded period, **non-causal**. Right for
  reanalysis, calibration against a past year, and pyVPRM parity. Wrong for a filter:
  the state at time t would depend on observations after t.
* :func:`causal_statistics` -- at each time only observations up to and including it
  (trailing window, default 365 d). Right for a data-assimilation filter (EnKF) run over
  a past period, or a near-real-time run with at least a year of history. Early in a
  series (few observations, no growing season yet) the threshold is poorly defined:
  set ``min_obs`` and a ``fallback`` (e.g. the climatology).
* :func:`climatological_statistics` -- multi-year mean of the yearly statistics of
  *previous* years. Right for real-time/forecast runs and as fallback: stable, no
  future data, but blind to this year's anomalies (drought, land-use change).

Times in the array functions are floats in any one unit (days recommended; keep them
relative to a nearby epoch, since float32 has ~7 significant digits). The xarray wrappers
convert ``datetime64`` to days relative to the first target time.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

__all__ = [
    "Interpolated", "interpolate_to_times", "interpolate_dataset",
    "yearly_statistics", "causal_statistics", "climatological_statistics",
    "yearly_statistics_dataset", "causal_statistics_dataset",
    "climatological_statistics_dataset", "EVI_THRESHOLD_FRACTION", "STAT_KEYS",
]

EVI_THRESHOLD_FRACTION = 0.55
"""th = EVImin + 0.55 (EVImax - EVImin) (WRF-VPRM and pyVPRM)."""
STAT_KEYS = ("evi_min", "evi_max", "evi_threshold", "lswi_min", "lswi_max")
_METHODS = ("linear", "nearest", "previous")


class Interpolated(NamedTuple):
    """Result of :func:`interpolate_to_times`; arrays of shape ``(M, *pixel_shape)``."""

    values: jax.Array
    """Interpolated index, unit of the input. NaN where a pixel has no valid obs."""
    extrapolated: jax.Array
    """True where the target time is before the first or after the last valid obs of the
    pixel (the value is then held constant at that obs) or the pixel has no valid obs."""
    gap: jax.Array
    """Distance (time unit of the input) from the target time to the nearest valid obs."""


def _interp_pixel(v, t, x, method):
    valid = jnp.isfinite(v) & jnp.isfinite(t)
    key = jnp.where(valid, t, jnp.inf)
    order = jnp.argsort(key, stable=True)
    ts = key[order]
    vs = jnp.where(valid[order], v[order], 0.0)
    n = jnp.sum(valid, dtype=jnp.int32)
    last = jnp.maximum(n - 1, 0)
    t_first, t_last = ts[0], ts[last]
    idx = jnp.searchsorted(ts, x, side="right").astype(jnp.int32)          # number of valid obs <= x
    lo = jnp.clip(idx - 1, 0, last)
    hi = jnp.clip(idx, 0, last)
    t_lo, t_hi = ts[lo], ts[hi]
    d_lo, d_hi = jnp.abs(x - t_lo), jnp.abs(t_hi - x)
    if method == "linear":
        dt = t_hi - t_lo
        ok = dt > 0
        w = jnp.where(ok, (x - t_lo) / jnp.where(ok, dt, 1.0), 0.0)
        out = vs[lo] + w * (vs[hi] - vs[lo])
    elif method == "previous":
        out = vs[lo]
    else:  # nearest; ties -> earlier obs, as np.argmin over a time-sorted axis
        out = jnp.where(d_lo <= d_hi, vs[lo], vs[hi])
    before, after = x <= t_first, x >= t_last
    out = jnp.where(before, vs[0], jnp.where(after, vs[last], out))
    none = n == 0
    out = jnp.where(none, jnp.nan, out)
    extrapolated = none | (x < t_first) | (x > t_last)
    gap = jnp.where(none, jnp.inf, jnp.minimum(d_lo, d_hi))
    return out, extrapolated, gap


@partial(jax.jit, static_argnames=("method", "per_pixel_times"))
def _interp_flat(values, obs_times, target_times, method, per_pixel_times):
    f = jax.vmap(lambda v, t: _interp_pixel(v, t, target_times, method),
                 in_axes=(1, 1 if per_pixel_times else None), out_axes=1)
    return f(values, obs_times)


def interpolate_to_times(values, obs_times, target_times, method: str = "linear") -> Interpolated:
    """Per-pixel interpolation of a NaN-gapped index series onto target times.

    Parameters
    ----------
    values : array_like, shape (T, *pixel_shape)
        Index observations, time first; NaN (or inf) = no observation.
    obs_times : array_like, shape (T,) or (T, *pixel_shape)
        Observation times (float, e.g. days), common or per pixel (MODIS
        ``sur_refl_day_of_year``). Need not be sorted.
    target_times : array_like, shape (M,)
        Model times, same unit and epoch as ``obs_times``.
    method : {"linear", "nearest", "previous"}
        ``linear`` between the two bracketing valid obs; ``nearest`` the valid obs with
        the smallest |Δt| (ties -> the earlier one; pyVPRM's argmin choice);
        ``previous`` the last valid obs at or before the target time (causal).

    Returns
    -------
    Interpolated
        ``values`` (M, *pixel_shape). **No extrapolation**: before the first / after the
        last valid obs the value is held constant at that obs and ``extrapolated`` is
        True (``previous`` holds the first obs before it; flagged). Pixels without any
        valid obs give NaN.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    values = jnp.asarray(values)
    obs_times = jnp.asarray(obs_times, dtype=values.dtype)
    target_times = jnp.asarray(target_times, dtype=values.dtype)
    n_time, pixel_shape = values.shape[0], values.shape[1:]
    flat = values.reshape(n_time, -1)
    per_pixel = obs_times.ndim > 1
    t = jnp.broadcast_to(obs_times, values.shape).reshape(n_time, -1) if per_pixel else obs_times
    out, extrap, gap = _interp_flat(flat, t, target_times, method, per_pixel)
    shape = (target_times.shape[0], *pixel_shape)
    return Interpolated(out.reshape(shape), extrap.reshape(shape), gap.reshape(shape))


# ----------------------------------------------------------------------------- statistics
def _stats(evi, lswi, use):
    """Statistics over axis 0 restricted to the boolean ``use``; also the count."""
    e = jnp.where(use & jnp.isfinite(evi), evi, jnp.nan)
    evi_min, evi_max = jnp.nanmin(e, axis=0), jnp.nanmax(e, axis=0)
    th = evi_min + EVI_THRESHOLD_FRACTION * (evi_max - evi_min)
    growing = use & (evi > th[None])
    ls = jnp.where(growing & jnp.isfinite(lswi), lswi, jnp.nan)
    n_obs = jnp.sum(jnp.isfinite(e), axis=0)
    return dict(evi_min=evi_min, evi_max=evi_max, evi_threshold=th,
                lswi_min=jnp.nanmin(ls, axis=0), lswi_max=jnp.nanmax(ls, axis=0)), n_obs


def yearly_statistics(evi, lswi, *, time_axis: int = 0) -> dict:
    r"""pyVPRM's per-pixel statistics over the whole series (non-causal).

    .. math:: \mathrm{th} = \mathrm{EVI_{min}} + 0.55\,(\mathrm{EVI_{max}} - \mathrm{EVI_{min}}),
              \quad \mathrm{LSWI_{min,max}} = \min/\max\{\mathrm{LSWI}_t : \mathrm{EVI}_t > \mathrm{th}\}

    NaN-aware (NaN steps ignored). Resolve snow infs first (:func:`~.qa.apply_snow_rule`).

    Parameters
    ----------
    evi, lswi : array_like
        Index series (unit "1"), same shape, time on ``time_axis``.

    Returns
    -------
    dict
        ``evi_min, evi_max, evi_threshold, lswi_min, lswi_max``: arrays without the time
        axis, unit "1"; NaN for a pixel without valid EVI (or without LSWI in season).
    """
    evi = jnp.moveaxis(jnp.asarray(evi), time_axis, 0)
    lswi = jnp.moveaxis(jnp.asarray(lswi), time_axis, 0)
    return _yearly(evi, lswi)


@jax.jit
def _yearly(evi, lswi):
    return _stats(evi, lswi, jnp.ones(evi.shape, dtype=bool))[0]


@partial(jax.jit, static_argnames=("expanding",))
def _causal_flat(evi, lswi, t, window, expanding):
    def at(k):
        t_k = t[k]
        use = t <= t_k[None]
        if not expanding:
            use = use & (t > (t_k - window)[None])
        return _stats(evi, lswi, use)
    return jax.lax.map(at, jnp.arange(evi.shape[0]))


def causal_statistics(evi, lswi, times, *, window_days: float | None = 365.0, min_obs: int = 1,
                      fallback: dict | None = None, time_axis: int = 0) -> dict:
    """Statistics at each time from observations up to and including that time.

    At time :math:`t_k` the statistics of :func:`yearly_statistics` are computed over the
    observations with :math:`t_k - W < t_j \\le t_k` (trailing window ``W = window_days``;
    ``None`` = expanding window from the start). A filter at :math:`t_k` sees no future
    data. Implemented as a ``lax.map`` over time steps of masked reductions
    (O(T^2 P) work, O(T P) memory): use observation times (e.g. 46 composites per
    year), then interpolate the statistics to the model step.

    Parameters
    ----------
    evi, lswi : array_like
        Index series (unit "1"), same shape, time on ``time_axis``.
    times : array_like
        Observation times in days (float), shape (T,) or the shape of ``evi``.
    window_days : float or None
        Trailing window length, days.
    min_obs : int
        Minimum number of valid EVI observations in the window; otherwise the statistics
        are taken from ``fallback`` (or NaN).
    fallback : dict, optional
        Statistics broadcastable to the pixel shape (e.g. from
        :func:`climatological_statistics`) used where fewer than ``min_obs`` obs exist.

    Returns
    -------
    dict
        ``evi_min, evi_max, evi_threshold, lswi_min, lswi_max`` and ``n_obs``, each with
        the shape of ``evi`` (time on ``time_axis``).
    """
    evi = jnp.moveaxis(jnp.asarray(evi), time_axis, 0)
    lswi = jnp.moveaxis(jnp.asarray(lswi), time_axis, 0)
    times = jnp.asarray(times, dtype=evi.dtype)
    if times.ndim > 1:
        times = jnp.moveaxis(times, time_axis, 0)
    else:
        times = times.reshape((-1,) + (1,) * (evi.ndim - 1))
    times = jnp.broadcast_to(times, evi.shape)
    window = jnp.asarray(0.0 if window_days is None else window_days, dtype=evi.dtype)
    stats, n_obs = _causal_flat(evi, lswi, times, window, window_days is None)
    enough = n_obs >= min_obs
    out = {}
    for key in STAT_KEYS:
        alt = jnp.nan if fallback is None else jnp.asarray(fallback[key])
        out[key] = jnp.moveaxis(jnp.where(enough, stats[key], alt), 0, time_axis)
    out["n_obs"] = jnp.moveaxis(n_obs, 0, time_axis)
    return out


def _years_of(times) -> np.ndarray:
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[Y]").astype(int) + 1970
    if np.issubdtype(times.dtype, np.integer):
        return times
    raise TypeError("times must be datetime64 or integer calendar years, "
                    f"got dtype {times.dtype}.")


def climatological_statistics(evi, lswi, times, years=None, *, before_year: int | None = None,
                              time_axis: int = 0) -> dict:
    """Multi-year mean of the per-year :func:`yearly_statistics` (for real-time runs).

    Parameters
    ----------
    evi, lswi : array_like
        Index series (unit "1"), time on ``time_axis``.
    times : array_like, shape (T,)
        ``datetime64`` times or integer calendar years of the time steps.
    years : sequence of int, optional
        Calendar years to average; default: every year present (before ``before_year``).
    before_year : int, optional
        Use only years strictly before this one (the year being run in real time).

    Returns
    -------
    dict
        The five statistics (pixel shape; NaN-aware mean over years, unit "1") and
        ``n_years`` (number of years with a valid EVI max per pixel).
    """
    evi = np.moveaxis(np.asarray(evi), time_axis, 0)
    lswi = np.moveaxis(np.asarray(lswi), time_axis, 0)
    year_of_step = _years_of(times)
    chosen = sorted(set(year_of_step.tolist())) if years is None else list(years)
    if before_year is not None:
        chosen = [y for y in chosen if y < before_year]
    if not chosen:
        raise ValueError("no year left for the climatology; check `years`/`before_year`.")
    per_year = [yearly_statistics(evi[year_of_step == y], lswi[year_of_step == y])
                for y in chosen]
    out = {k: jnp.nanmean(jnp.stack([s[k] for s in per_year]), axis=0) for k in STAT_KEYS}
    out["n_years"] = jnp.sum(jnp.stack([jnp.isfinite(s["evi_max"]) for s in per_year]), axis=0)
    return out


# ------------------------------------------------------------------------ xarray wrappers
_STAT_ATTRS = {
    "evi_min": ("1", "minimum EVI"), "evi_max": ("1", "maximum EVI"),
    "evi_threshold": ("1", "EVI phenology threshold, EVImin + 0.55 (EVImax - EVImin)"),
    "lswi_min": ("1", "minimum LSWI over steps with EVI > threshold"),
    "lswi_max": ("1", "maximum LSWI over steps with EVI > threshold"),
    "n_obs": ("1", "number of valid EVI observations used"),
    "n_years": ("1", "number of years with valid EVI"),
}


def _days(times, reference) -> np.ndarray:
    return (np.asarray(times, dtype="datetime64[ns]") - np.datetime64(reference, "ns")) \
        / np.timedelta64(1, "D")


def _to_dataset(stats: dict, dims, coords, note: str) -> xr.Dataset:
    data = {}
    for k, v in stats.items():
        units, long_name = _STAT_ATTRS[k]
        data[k] = xr.DataArray(np.asarray(v), dims=dims,
                               attrs={"units": units, "long_name": long_name, "comment": note})
    return xr.Dataset(data, coords=coords)


def interpolate_dataset(ds: xr.Dataset, target_times, method: str = "linear", *,
                        dim: str = "time", obs_time: str | None = "obs_time",
                        variables=None) -> xr.Dataset:
    """xarray edge of :func:`interpolate_to_times`.

    ``ds`` has a ``dim`` (datetime64) axis; if ``obs_time`` names a datetime64 variable of
    ``ds`` on that axis (the MODIS reader's per-pixel acquisition time), it is used as the
    per-pixel observation time, else the ``dim`` coordinate. Every floating variable on
    ``dim`` (or ``variables``) is interpolated; ``{name}_extrapolated`` flags are added.
    """
    target = np.asarray(target_times, dtype="datetime64[ns]")
    ref = target[0]
    if variables is None:
        variables = [v for v in ds.data_vars if dim in ds[v].dims and v != obs_time
                     and np.issubdtype(ds[v].dtype, np.floating)]
    out = {}
    for name in variables:
        da = ds[name].transpose(dim, ...)
        if obs_time is not None and obs_time in ds and dim in ds[obs_time].dims:
            t = _days(ds[obs_time].broadcast_like(da).transpose(*da.dims).values, ref)
        else:
            t = _days(ds[dim].values, ref)
        res = interpolate_to_times(da.values, t, _days(target, ref), method)
        coords = {c: ds.coords[c] for c in da.coords if dim not in ds.coords[c].dims}
        coords[dim] = target
        out[name] = xr.DataArray(np.asarray(res.values), dims=da.dims, coords=coords,
                                 attrs={**da.attrs, "interpolation": method})
        out[f"{name}_extrapolated"] = xr.DataArray(
            np.asarray(res.extrapolated), dims=da.dims, coords=coords,
            attrs={"units": "1", "long_name": f"{name} held constant outside the valid obs"})
    return xr.Dataset(out)


def yearly_statistics_dataset(ds: xr.Dataset, *, evi: str = "evi", lswi: str = "lswi",
                              dim: str = "time") -> xr.Dataset:
    """xarray edge of :func:`yearly_statistics`: a Dataset without ``dim``, units "1"."""
    e, l_ = ds[evi].transpose(dim, ...), ds[lswi].transpose(dim, ...)
    stats = yearly_statistics(e.values, l_.values)
    coords = {c: ds.coords[c] for c in e.coords if dim not in ds.coords[c].dims}
    return _to_dataset(stats, e.dims[1:], coords, "non-causal: whole series (pyVPRM)")


def causal_statistics_dataset(ds: xr.Dataset, *, evi: str = "evi", lswi: str = "lswi",
                              dim: str = "time", window_days: float | None = 365.0,
                              min_obs: int = 1, fallback: xr.Dataset | None = None) -> xr.Dataset:
    """xarray edge of :func:`causal_statistics`: a Dataset on ``dim``, units "1"."""
    e, l_ = ds[evi].transpose(dim, ...), ds[lswi].transpose(dim, ...)
    t = _days(ds[dim].values, ds[dim].values[0])
    fb = None if fallback is None else {k: fallback[k].transpose(*e.dims[1:]).values
                                        for k in STAT_KEYS}
    stats = causal_statistics(e.values, l_.values, t, window_days=window_days,
                              min_obs=min_obs, fallback=fb)
    return _to_dataset(stats, e.dims, e.coords,
                       f"causal: obs in (t - {window_days} d, t]")


def climatological_statistics_dataset(ds: xr.Dataset, *, evi: str = "evi", lswi: str = "lswi",
                                      dim: str = "time", years=None,
                                      before_year: int | None = None) -> xr.Dataset:
    """xarray edge of :func:`climatological_statistics`: a Dataset without ``dim``."""
    e, l_ = ds[evi].transpose(dim, ...), ds[lswi].transpose(dim, ...)
    stats = climatological_statistics(e.values, l_.values, ds[dim].values, years,
                                      before_year=before_year)
    coords = {c: ds.coords[c] for c in e.coords if dim not in ds.coords[c].dims}
    return _to_dataset(stats, e.dims[1:], coords,
                       f"climatology: mean of yearly stats, years {years or 'all'}"
                       + (f" before {before_year}" if before_year else ""))
