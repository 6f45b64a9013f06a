"""xarray edge of the coupled model: reader Dataset -> :class:`CoupledForcing`, and
:class:`CoupledOutputs` -> Dataset with units.

Forcing variables (canonical names and units of :mod:`process_models.units`):

============== ============ ========== =====================================================
variable       units        required   if missing / gaps
============== ============ ========== =====================================================
air_temperature degC        yes        gaps -> DataValidationError
vpd            hPa          yes        gaps -> DataValidationError; kPa-like values raise
shortwave_in   W m-2        yes*       *or ppfd_in (SW = PPFD / 2.285, McCree 1972; noted)
precipitation  mm per step  yes**      **or ``precipitation=`` argument; gaps <= 5 % -> 0 (noted)
                                       (other optional drivers: gaps <= 20-50 % interpolated)
air_pressure   kPa          no         101.325 kPa (noted) or ``air_pressure=``; gaps interpolated
wind_speed     m s-1        no         2 m s-1 (FAO-56 default, noted) or ``wind_speed=``
co2            umol mol-1   no         400 umol mol-1 (noted) or ``co2=``
lai            m2 m-2       no         None -> LAI from the leaf carbon pool
============== ============ ========== =====================================================

"Noted" defaults and fills raise a ``UserWarning`` and are listed in the ``forcing_notes``
attribute of the Dataset returned by :func:`run`. Time stamps are interval starts in
local standard time (``ds.attrs["utc_offset_hours"]``); the cosine of the solar zenith
angle is computed at the middle of each interval in UTC.
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from ..solar import cos_solar_zenith_at
from ..units import DataValidationError, check_range, check_time_axis, convert
from .model import simulate
from .params import OUTPUT_UNITS, CoupledForcing, CoupledOutputs, CoupledParams
from .soil_water import layer_geometry

PPFD_PER_SHORTWAVE = 2.285
"""umol m-2 s-1 of PPFD per W m-2 of global shortwave (PAR fraction 0.5 x 4.57 umol J-1)."""
DEFAULTS = {"air_pressure": 101.325, "wind_speed": 2.0, "co2": 400.0}
"""Documented defaults for optional drivers (kPa, m s-1 (Allen et al. 1998), umol mol-1)."""

MAX_FILL_FRACTION = {"precipitation": 0.05, "air_pressure": 0.5, "wind_speed": 0.2, "co2": 0.5}
"""Largest fraction of gaps filled in an optional driver (precipitation gaps -> 0, the
slowly varying others interpolated linearly in time); more gaps raise."""


def _fail(problem, src, var, fix):
    raise DataValidationError(problem, source=src, variable=var, fix=fix)


def _canonical(ds, name, units, src):
    da = ds[name]
    given = da.attrs.get("units")
    if given is None:
        _fail("has no 'units' attribute.", src, name,
              f"set ds[{name!r}].attrs['units'] = {units!r} after checking the values.")
    if given != units:
        da = convert(da, given, units, source=src, variable=name)
    return np.asarray(da.values, dtype=float)


def _no_gaps(values, name, src, time):
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        _fail(f"{int(bad.sum())} missing values (NaN), first at {time[i]}.", src, name,
              "gap-fill the driver (e.g. MDS, or the reader's *_filled variable) or select a "
              "period without gaps.")


def _fill(values, name, src, time, notes, how):
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    frac = bad.mean()
    if frac > MAX_FILL_FRACTION[name]:
        _fail(f"{frac:.1%} of the values are missing (more than {MAX_FILL_FRACTION[name]:.0%}).", src,
              name, f"gap-fill {name} before building the forcing, or pass {name}=... explicitly.")
    if how == "zero":
        out = np.where(bad, 0.0, values)
    else:
        idx = np.arange(values.size)
        out = np.interp(idx, idx[~bad], values[~bad])
    notes.append(f"{name}: {int(bad.sum())} gaps ({frac:.2%}) filled "
                 f"({'with 0' if how == 'zero' else 'by linear interpolation'}).")
    return out


def _vpd_unit_check(vpd, t_air, sw, src):
    """VPD stored in kPa but labelled hPa: warm sunny hours (T > 20 degC, SW > 300 W m-2,
    where VPD is typically 8-40 hPa, i.e. 0.8-4 kPa) then have a median below 3."""
    warm = (t_air > 20.0) & (sw > 300.0)
    if warm.sum() >= 20 and np.median(vpd[warm]) < 3.0:
        _fail(f"median VPD {np.median(vpd[warm]):.3g} hPa in warm sunny hours (T > 20 degC, "
              "SW > 300 W m-2) is implausibly low.", src, "vpd",
              "the values look like kPa: multiply by 10 or set attrs['units'] = 'kPa'.")


def _optional(ds, name, units, override, n, src, time, notes):
    if override is not None:
        v = np.broadcast_to(np.asarray(override, dtype=float), (n,)).copy()
        if v.shape != (n,):
            _fail(f"override has shape {np.shape(override)}, expected ({n},).", src, name,
                  "pass a scalar or one value per time step.")
        return v
    if name in ds:
        v = _canonical(ds, name, units, src)
        v = _fill(v, name, src, time, notes, "zero" if name == "precipitation" else "interp")
        return v
    if name == "precipitation":
        _fail("required driver is missing.", src, name,
              "add precipitation (mm per step) to the Dataset or pass precipitation=<mm per step> "
              "(e.g. from ERA5); precipitation=0 runs a rain-free experiment.")
    notes.append(f"{name}: missing, default {DEFAULTS[name]} {units} used.")
    return np.full(n, DEFAULTS[name])


def forcing_from_dataset(ds: xr.Dataset, latitude: float, longitude: float, lai=None, *,
                         precipitation=None, air_pressure=None, wind_speed=None, co2=None,
                         utc_offset_hours: float | None = None, dtype=None,
                         return_notes: bool = False):
    """Build a time-major :class:`CoupledForcing` from a canonical reader Dataset.

    Parameters
    ----------
    ds : Dataset with a regular ``time`` axis (interval starts, local standard time) and
        canonical variables (see the module table); e.g. from ``read_diive_parquet``,
        ``read_europe_fluxdata`` or ``read_pyrealm_merged``.
    latitude, longitude : site coordinates, degrees (north, east).
    lai : None -> ``ds["lai"]`` when present, else LAI from the leaf carbon pool; ``False``
        -> always from the leaf pool; a DataArray with a ``time`` axis (e.g. MODIS 8-day)
        -> linearly interpolated to ``ds.time``; an array -> one value per step (m2 m-2).
    precipitation, air_pressure, wind_speed, co2 : scalar or per-step overrides in
        canonical units (mm per step, kPa, m s-1, umol mol-1).
    utc_offset_hours : overrides ``ds.attrs["utc_offset_hours"]``.
    dtype : float dtype (default float64 with x64 on, else float32).
    return_notes : also return the list of defaults/fills applied.

    Raises
    ------
    DataValidationError for a missing or gappy required driver, a missing unit, an
    implausible range (K for degC), kPa-like VPD, an irregular time axis, an unknown UTC
    offset, or an LAI series of the wrong length.
    """
    src = ds.attrs.get("source_file", "forcing dataset")
    notes: list[str] = []
    if "time" not in ds.dims:
        _fail("has no 'time' dimension.", src, "time", "give a Dataset with a time axis.")
    time = pd.DatetimeIndex(ds["time"].values)
    n = time.size
    if n < 2:
        _fail(f"only {n} time step(s).", src, "time", "give at least two time steps.")
    dt = float(ds.attrs.get("time_step_seconds", np.nan))
    if not np.isfinite(dt):
        dt = float(np.median(np.diff(time.asi8)) / 1e9)
    check_time_axis(time.values, source=src, expected_step=np.timedelta64(int(dt), "s"),
                    allow_gaps=False)
    offset = utc_offset_hours if utc_offset_hours is not None else ds.attrs.get("utc_offset_hours")
    if offset is None or not np.isfinite(float(offset)):
        _fail("the UTC offset of the time axis is unknown.", src, "time",
              "pass utc_offset_hours= (local standard time minus UTC, e.g. 1 for CET).")

    def required(name, units):
        if name not in ds:
            _fail("required driver is missing.", src, name,
                  f"add {name!r} in {units!r} (see process_models.coupled.xarray_api).")
        v = _canonical(ds, name, units, src)
        _no_gaps(v, name, src, time)
        check_range(v, name, source=src, column=name)
        return v

    t_air = required("air_temperature", "degC")
    vpd = required("vpd", "hPa")
    if "shortwave_in" in ds:
        sw = required("shortwave_in", "W m-2")
    elif "ppfd_in" in ds:
        sw = required("ppfd_in", "umol m-2 s-1") / PPFD_PER_SHORTWAVE
        notes.append(f"shortwave_in: missing, derived from ppfd_in / {PPFD_PER_SHORTWAVE}.")
    else:
        _fail("required driver is missing (neither shortwave_in nor ppfd_in).", src,
              "shortwave_in", "add global radiation in W m-2.")
    _vpd_unit_check(vpd, t_air, sw, src)
    prec = _optional(ds, "precipitation", "mm", precipitation, n, src, time, notes)
    if np.any(prec < 0):
        _fail(f"{int((prec < 0).sum())} negative values.", src, "precipitation",
              "precipitation must be >= 0 mm per step.")
    pres = _optional(ds, "air_pressure", "kPa", air_pressure, n, src, time, notes)
    check_range(pres, "air_pressure", source=src)
    wind = _optional(ds, "wind_speed", "m s-1", wind_speed, n, src, time, notes)
    co2v = _optional(ds, "co2", "umol mol-1", co2, n, src, time, notes)

    # solar geometry at the middle of each interval, UTC
    cosz = cos_solar_zenith_at(time.values, latitude, longitude, utc_offset_hours=float(offset),
                               step_seconds=dt)

    lai_v = None
    if lai is None and "lai" in ds:
        lai_v = required("lai", "m2 m-2")
    elif isinstance(lai, xr.DataArray):
        if "time" in lai.dims and lai.sizes["time"] != n or not np.array_equal(
                lai["time"].values, ds["time"].values):
            lai = lai.dropna("time").interp(time=ds["time"], kwargs={"fill_value": "extrapolate"})
        lai_v = np.asarray(lai.values, float)
        notes.append("lai: from the given series (interpolated to the forcing time axis).")
    elif lai is not None and lai is not False:
        lai_v = np.asarray(lai, float)
    if lai_v is not None:
        if lai_v.shape != (n,):
            _fail(f"LAI has shape {lai_v.shape}, expected ({n},).", src, "lai",
                  "give one LAI value per forcing time step (or a DataArray with a time axis).")
        _no_gaps(lai_v, "lai", src, time)
        check_range(lai_v, "lai", source=src)

    for note in notes:
        warnings.warn(f"{src}: {note}", UserWarning, stacklevel=2)
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    a = lambda v: jnp.asarray(v, dtype)
    forcing = CoupledForcing(
        air_temperature=a(t_air), shortwave_in=a(np.maximum(sw, 0.0)), vpd=a(np.maximum(vpd, 0.0)),
        precipitation=a(prec), air_pressure=a(pres), co2=a(co2v), wind_speed=a(np.maximum(wind, 0.0)),
        cos_zenith=a(cosz), lai=None if lai_v is None else a(lai_v), dt_seconds=dt)
    return (forcing, notes) if return_notes else forcing


def outputs_to_dataset(outputs: CoupledOutputs, time=None, params: CoupledParams | None = None,
                       attrs: dict | None = None) -> xr.Dataset:
    """:class:`CoupledOutputs` (time-major, optional leading member axes) -> Dataset with
    ``units`` attributes; the layer axis gets the layer-centre depth as coordinate."""
    base = np.asarray(outputs.gpp).ndim
    lead = [f"member{'' if i == 0 else i}" for i in range(base - 1)]
    data = {}
    for name in outputs.__dataclass_fields__:
        if getattr(outputs, name) is None:
            continue
        v = np.asarray(getattr(outputs, name))
        dims = lead + ["time"] + (["layer"] if v.ndim > base else [])
        data[name] = xr.DataArray(v, dims=dims, attrs={"units": OUTPUT_UNITS[name]})
    ds = xr.Dataset(data)
    if time is not None:
        ds = ds.assign_coords(time=np.asarray(time))
    if params is not None:
        _, top, centre, _ = layer_geometry(params.layer_thickness)
        ds = ds.assign_coords(depth=("layer", np.asarray(centre)))
        ds["depth"].attrs.update(units="m", long_name="depth of the layer centre")
    ds.attrs.update({"model": "ecoflux coupled soil-moisture / photosynthesis model (JAX)",
                     "sign_convention": "NEE = Reco - GPP (positive = source)",
                     "water_flux_units": "mm per model step"})
    ds.attrs.update(attrs or {})
    return ds


FILLED_DRIVERS = ("air_temperature", "vpd", "shortwave_in", "precipitation", "air_pressure",
                  "wind_speed", "co2", "lai")
"""Drivers :func:`run` gap-fills when asked to."""


def run(ds: xr.Dataset, params: CoupledParams, *, latitude: float, longitude: float, lai=None,
        initial_state=None, checkpoint_every=None, fill_gaps: bool = False,
        return_state: bool = False, **forcing_kwargs):
    """Build the forcing from ``ds``, simulate, and return the outputs as a Dataset on
    ``ds.time`` with units; defaults and fills of the forcing are listed in
    ``attrs["forcing_notes"]``. ``fill_gaps``: first fill driver gaps with
    :func:`process_models.io.fill_gaps` (linear over <= 2 h, else the 15-day mean diurnal
    cycle; Falge et al. 2001). ``return_state``: also return the final state."""
    notes = []
    if fill_gaps:
        from ..io import fill_gaps as _fill
        ds, notes = _fill(ds, [v for v in FILLED_DRIVERS if v in ds])
    forcing, more = forcing_from_dataset(ds, latitude, longitude, lai, return_notes=True,
                                         dtype=jnp.result_type(params.soil.b), **forcing_kwargs)
    notes = list(notes) + list(more)
    out, state = simulate(params, forcing, initial_state=initial_state,
                          checkpoint_every=checkpoint_every, return_state=True)
    attrs = {"forcing_notes": "; ".join(notes) if notes else "none", "pft": params.pft,
             "soil_texture": params.soil_texture, "latitude": float(latitude),
             "longitude": float(longitude), "time_step_seconds": forcing.dt_seconds,
             "site_id": ds.attrs.get("site_id", "")}
    res = outputs_to_dataset(out, ds["time"].values, params, attrs)
    return (res, state) if return_state else res
