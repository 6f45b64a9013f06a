"""Reader for ERA5 hourly single-level fields (2 m temperature, surface solar
radiation downwards) in netCDF, and bilinear interpolation onto a 2-D pixel grid.

Time convention
---------------
ERA5 accumulations (``ssrd``) at valid time *t* are sums over the hour **ending** at
*t*. The toolkit labels records by the interval **start**, so ``time = valid_time - 1 h``
and ``shortwave_in[time]`` is the mean flux over ``[time, time + 1 h)``. ``t2m`` is an
instantaneous value at its valid time; by default ``air_temperature[time]`` is the
mean of the two instantaneous values at the ends of the interval, ``t2m(time)`` and
``t2m(time + 1 h)`` (the trapezoidal interval mean). All times are UTC.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from ..units import CANONICAL, DataValidationError, check_range, check_time_axis, convert
from ._common import open_netcdf

__all__ = ["read_era5_single_levels", "interpolate_to_grid"]

CITATION = ("Hersbach, H. et al. (2020) The ERA5 global reanalysis. Q. J. R. Meteorol. Soc. "
            "146, 1999-2049; ERA5 hourly data on single levels, Copernicus Climate Change "
            "Service (C3S) Climate Data Store, doi:10.24381/cds.adbb2d47. Contains modified "
            "Copernicus Climate Change Service information 2022.")

TIME_CONVENTION = ("time = start of the hourly interval (UTC) = ERA5 valid_time - 1 h; "
                   "shortwave_in is the mean over [time, time + 1 h) (ERA5 accumulations "
                   "end at the valid time); air_temperature is the mean of the instantaneous "
                   "t2m at time and time + 1 h.")

_RENAME = {"valid_time": "time", "latitude": "lat", "longitude": "lon"}
_KELVIN = {"K", "k", "kelvin", "Kelvin", "degK", "degrees_K"}
_CELSIUS = {"degC", "C", "deg C", "celsius", "Celsius", "degrees_C", "degree_Celsius",
            "degrees_Celsius", "°C"}
_JOULE = {"J m**-2", "J m-2", "J/m2", "J m^-2", "J/m^2"}
_WATT = {"W m**-2", "W m-2", "W/m2", "W m^-2", "W/m^2"}
SSRD_NEGATIVE_TOLERANCE = -3600.0
"""Most negative ssrd (J m-2 per hour, i.e. -1 W m-2) accepted as packing noise."""


def _open(path: Path) -> xr.Dataset:
    nc = open_netcdf(path)
    try:
        ds = xr.open_dataset(xr.backends.NetCDF4DataStore(nc)).load()
    except Exception as err:  # decoding errors (bad time units, ...)
        raise DataValidationError(
            f"the netCDF file could not be decoded ({err}).", source=str(path),
            fix="re-download the file from the CDS in netCDF format.") from err
    finally:
        nc.close()
    ds = ds.rename({k: v for k, v in _RENAME.items() if k in ds.variables or k in ds.dims})
    for name in ("time", "lat", "lon"):
        if name not in ds.dims:
            raise DataValidationError(
                f"dimension {name!r} is missing (dims: {dict(ds.sizes)}).", source=str(path),
                variable=name, fix="download hourly single-level data on a lat/lon grid.")
    for name in ("t2m", "ssrd"):
        if name not in ds.variables:
            raise DataValidationError(
                f"variable {name!r} is missing (present: {', '.join(sorted(ds.data_vars))}).",
                source=str(path), variable=name,
                fix="request '2m_temperature' (t2m) and 'surface_solar_radiation_downwards' "
                    "(ssrd) from the CDS.")
    extra = [d for d in ds["t2m"].dims if d not in ("time", "lat", "lon")]
    if extra:
        raise DataValidationError(
            f"unexpected dimensions {extra} (e.g. ensemble member or expver).", source=str(path),
            variable="t2m", fix="select one member / combine expver before reading.")
    return ds[["t2m", "ssrd"]].transpose("time", "lat", "lon")


def _temperature(t2m: xr.DataArray, src: str) -> tuple[np.ndarray, str]:
    units = str(t2m.attrs.get("units", "")).strip()
    v = t2m.values.astype(float)
    fin = v[np.isfinite(v)]
    med = float(np.median(fin)) if fin.size else np.nan
    if units in _KELVIN:
        from_units = "K"
    elif units in _CELSIUS:
        from_units = "degC"
    elif units == "":
        if med > 150.0:
            from_units = "K"  # ERA5 stores t2m in K; no other unit gives values > 150
        else:
            raise DataValidationError(
                f"t2m has no units attribute and its values (median {med:.4g}) do not look like "
                "kelvin (ERA5's unit); they may already be degC.",
                source=src, variable="t2m",
                fix="set t2m.attrs['units'] = 'degC' (or 'K') in the file to say which it is.")
    else:
        raise DataValidationError(f"unknown t2m units {units!r}.", source=src, variable="t2m",
                                  fix="give t2m in 'K' or 'degC'.")
    out = convert(v, from_units, "degC", source=src, variable="t2m")
    check_range(out, "air_temperature", source=src, column="t2m")
    return out, from_units


def _shortwave(ssrd: xr.DataArray, src: str) -> tuple[np.ndarray, str]:
    units = str(ssrd.attrs.get("units", "")).strip()
    v = ssrd.values.astype(float)
    fin = v[np.isfinite(v)]
    vmax = float(fin.max()) if fin.size else 0.0
    if units in _WATT:
        out, from_units = v.copy(), "W m-2"
        tol = SSRD_NEGATIVE_TOLERANCE / 3600.0
    elif units in _JOULE or units == "":
        if units == "" and 0.0 < vmax < 2000.0:
            raise DataValidationError(
                f"ssrd has no units attribute and its maximum ({vmax:.4g}) is far below an hourly "
                "accumulation in J m-2 (sunlit hours give 1e5-3.6e6); it may already be W m-2.",
                source=src, variable="ssrd",
                fix="set ssrd.attrs['units'] = 'W m-2' (or 'J m**-2') in the file.")
        out, from_units = v / 3600.0, "J m-2 h-1"
        tol = SSRD_NEGATIVE_TOLERANCE
    else:
        raise DataValidationError(f"unknown ssrd units {units!r}.", source=src, variable="ssrd",
                                  fix="give ssrd as hourly accumulation in 'J m**-2'.")
    vmin = float(fin.min()) if fin.size else 0.0
    if vmin < tol:
        raise DataValidationError(
            f"ssrd has negative values down to {vmin:.4g} {units or 'J m-2'} (tolerance {tol:g}).",
            source=src, variable="ssrd",
            fix="ssrd must be the hourly accumulation; if the file holds accumulations since "
                "the forecast start (ERA5 raw/MARS data), difference consecutive steps first.")
    out = np.where(out < 0.0, 0.0, out)  # packing noise
    check_range(out, "shortwave_in", source=src, column="ssrd")
    return out, from_units


def read_era5_single_levels(path: str | os.PathLike | Sequence[str | os.PathLike], *,
                            temperature: str = "interval_mean") -> xr.Dataset:
    """Read ERA5 hourly 2 m temperature and solar radiation (netCDF, plain or gzip).

    Parameters
    ----------
    path : path or sequence of paths
        ERA5 single-level netCDF file(s) with ``t2m`` (K) and ``ssrd`` (hourly
        accumulation, J m-2) on ``(time|valid_time, lat|latitude, lon|longitude)``.
        ``.gz`` files are decompressed in memory. Several files (e.g. consecutive
        months) are concatenated along time before the conversion, so that the
        interval averaging is exact across file boundaries.
    temperature : {"interval_mean", "end"}
        ``"interval_mean"`` (default): ``air_temperature[time]`` =
        (t2m(time) + t2m(time + 1 h)) / 2; for the first record, whose start value is
        not in the file, the end value t2m(time + 1 h) is used. ``"end"``: the
        instantaneous t2m at the end of the interval (the valid time shared with ssrd).

    Returns
    -------
    xarray.Dataset
        Dims ``(time, lat, lon)``; ``lat`` ascending (ERA5 stores it north to south;
        the reader flips it), ``lon`` ascending, both in degrees.

        * ``air_temperature`` (degC) from t2m. The shipped files have **no units
          attributes**: t2m without a units attribute is taken as kelvin (ERA5's unit)
          when its median exceeds 150; otherwise the reader raises, because degC data
          cannot be told from K safely without a declaration.
        * ``shortwave_in`` (W m-2) = ssrd / 3600: mean downwelling shortwave over the
          hour. Negative values down to -3600 J m-2 (packing noise) are set to 0.
        * ``time``: interval start, UTC (= valid_time - 1 h); 1-hour regular axis.
        * attrs: ``utc_offset_hours`` = 0, ``time_step_seconds`` = 3600,
          ``time_convention``, ``citation``, ``source_files``.
        PAR is not computed here.

    Raises
    ------
    DataValidationError
        Corrupt/truncated file, missing ``t2m``/``ssrd``, t2m not in K without a units
        attribute, ssrd ambiguously in W m-2, negative ssrd beyond tolerance, values out
        of the plausible range, duplicated, unsorted or non-hourly times.

    Notes
    -----
    Citation: Hersbach, H. et al. (2020) Q. J. R. Meteorol. Soc. 146, 1999-2049;
    doi:10.24381/cds.adbb2d47. "Contains modified Copernicus Climate Change Service
    information 2022."
    """
    if temperature not in ("interval_mean", "end"):
        raise ValueError("temperature must be 'interval_mean' or 'end'.")
    paths = [Path(path)] if isinstance(path, (str, os.PathLike)) else [Path(p) for p in path]
    parts = [_open(p) for p in paths]
    src = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
    for p, part in zip(paths, parts):
        check_time_axis(part["time"].values, source=str(p), expected_step=np.timedelta64(1, "h"),
                        allow_gaps=False)
    ds = parts[0] if len(parts) == 1 else xr.concat(parts, dim="time")
    check_time_axis(ds["time"].values, source=src, expected_step=np.timedelta64(1, "h"),
                    allow_gaps=False)
    ds = ds.sortby("lat").sortby("lon")
    for name in ("lat", "lon"):
        if np.unique(ds[name].values).size != ds[name].size:
            raise DataValidationError(f"duplicated {name} values.", source=src, variable=name,
                                      fix="download a regular lat/lon grid.")

    temp, t_units = _temperature(ds["t2m"], src)
    sw, sw_units = _shortwave(ds["ssrd"], src)
    if temperature == "interval_mean":
        prev = np.concatenate([temp[:1], temp[:-1]], axis=0)  # t2m at the interval start
        temp = 0.5 * (prev + temp)
        t_note = ("mean of instantaneous t2m at the interval start and end; the first record "
                  "uses the end value only")
    else:
        t_note = "instantaneous t2m at the interval end (ERA5 valid time)"

    n_missing_t = int(np.isnan(temp).sum())
    n_missing_sw = int(np.isnan(sw).sum())
    valid = ds["time"].values
    time = valid - np.timedelta64(1, "h")
    dims = ("time", "lat", "lon")
    ta = CANONICAL["air_temperature"]
    sws = CANONICAL["shortwave_in"]
    out = xr.Dataset(
        {
            "air_temperature": (dims, temp, {
                "units": ta.units, "long_name": ta.long_name, "standard_name": ta.standard_name,
                "source_name": "t2m", "source_units": t_units, "cell_methods": t_note,
                "missing_count": n_missing_t}),
            "shortwave_in": (dims, sw, {
                "units": sws.units, "long_name": sws.long_name,
                "standard_name": sws.standard_name, "source_name": "ssrd",
                "source_units": "J m-2 (hourly accumulation)" if sw_units != "W m-2" else "W m-2",
                "cell_methods": "time: mean (interval [time, time + 1 h))",
                "missing_count": n_missing_sw}),
        },
        coords={
            "time": ("time", time, {"long_name": "start of the hourly interval (UTC)"}),
            "valid_time": ("time", valid, {"long_name": "ERA5 valid time (interval end, UTC)"}),
            "lat": ("lat", ds["lat"].values, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", ds["lon"].values, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={
            "title": "ERA5 hourly single levels: 2 m temperature and solar radiation",
            "citation": CITATION,
            "utc_offset_hours": 0,
            "time_zone": "UTC",
            "time_step_seconds": 3600,
            "time_convention": TIME_CONVENTION,
            "lat_order": "ascending (flipped from ERA5's north-to-south order)",
            "source_files": "; ".join(p.name for p in paths),
        },
    )
    return out


def interpolate_to_grid(met: xr.Dataset, lat2d, lon2d) -> xr.Dataset:
    """Bilinear interpolation of gridded meteorology onto 2-D pixel coordinates.

    Parameters
    ----------
    met : xarray.Dataset
        Output of :func:`read_era5_single_levels` (dims ``time, lat, lon`` or any
        variables with ``lat``/``lon`` dims on a rectilinear grid).
    lat2d, lon2d : xarray.DataArray or array_like, shape (ny, nx)
        Latitude/longitude (degrees) of the target pixels, e.g. ``modis.lat`` and
        ``modis.lon`` from :func:`process_models.io.modis.read_mod09a1`. Plain arrays are
        given dims ``(y, x)``.

    Returns
    -------
    xarray.Dataset
        Every variable of ``met`` with a ``lat``/``lon`` dimension, interpolated
        bilinearly in lat/lon to dims ``(time, y, x)``, with the 2-D ``lat``/``lon``
        (and ``y``/``x`` when the inputs carry them) as coordinates; variable and
        dataset attributes (units, time convention) are kept.

    Raises
    ------
    DataValidationError
        If any target pixel lies outside the met grid (extrapolation is refused).

    Notes
    -----
    pyVPRM regrids ERA5 bilinearly with ESMF; this uses ``xarray.Dataset.interp``
    with vectorised (pointwise) indexing, which is the same bilinear scheme on a
    rectilinear lat/lon grid (values at grid nodes are reproduced exactly).
    """
    if not isinstance(lat2d, xr.DataArray):
        lat2d = xr.DataArray(np.asarray(lat2d, dtype=float), dims=("y", "x"))
    if not isinstance(lon2d, xr.DataArray):
        lon2d = xr.DataArray(np.asarray(lon2d, dtype=float), dims=("y", "x"), coords=lat2d.coords)
    if lat2d.dims != lon2d.dims or lat2d.shape != lon2d.shape:
        raise ValueError(f"lat2d {lat2d.dims}{lat2d.shape} and lon2d {lon2d.dims}{lon2d.shape} "
                         "must have the same dims and shape.")
    lat_min, lat_max = float(met["lat"].min()), float(met["lat"].max())
    lon_min, lon_max = float(met["lon"].min()), float(met["lon"].max())
    la, lo = lat2d.values, lon2d.values
    outside = (la < lat_min) | (la > lat_max) | (lo < lon_min) | (lo > lon_max)
    if np.any(outside):
        raise DataValidationError(
            f"{int(outside.sum())} target pixels (lat {np.nanmin(la):.3f}...{np.nanmax(la):.3f}, "
            f"lon {np.nanmin(lo):.3f}...{np.nanmax(lo):.3f}) lie outside the met grid "
            f"(lat {lat_min:.3f}...{lat_max:.3f}, lon {lon_min:.3f}...{lon_max:.3f}).",
            source=met.attrs.get("source_files", "<memory>"), variable="lat/lon",
            fix="download ERA5 for an area that encloses the target grid with a margin.")
    fields = met[[v for v in met.data_vars if {"lat", "lon"} <= set(met[v].dims)]]
    lat_t = lat2d.reset_coords(drop=True).rename("lat_target")
    lon_t = lon2d.reset_coords(drop=True).rename("lon_target")
    out = fields.interp(lat=lat_t, lon=lon_t, method="linear")
    out = out.drop_vars([c for c in ("lat", "lon") if c in out.coords])
    extra = {k: v for k, v in lat2d.coords.items() if k not in ("lat", "lon")}
    out = out.assign_coords(extra)
    out = out.assign_coords(lat=(lat2d.dims, la, {"units": "degrees_north", "standard_name": "latitude"}),
                            lon=(lon2d.dims, lo, {"units": "degrees_east", "standard_name": "longitude"}))
    order = [d for d in ("time",) if d in out.dims] + list(lat2d.dims)
    order += [d for d in out.dims if d not in order]
    out = out.transpose(*order)
    for v in out.data_vars:
        out[v].attrs = dict(met[v].attrs)
    out.attrs = dict(met.attrs)
    out.attrs["regridding"] = "bilinear in lat/lon (xarray.interp, pointwise)"
    return out
