"""Reader for MODIS MOD09A1 (8-day, 500 m surface reflectance) crops stored as
netCDF (optionally gzip-compressed), as used by pyVPRM's examples.

Time convention
---------------
``time`` is the **start** of the 8-day compositing window at 00:00 UTC, taken from
the ``AYYYYDDD`` field of the file name (the file's own scalar ``time`` is the middle
of the window, e.g. ``2022-07-15T23:59:59.5`` for A2022193). The window is
``[time, time + 8 days)``; the last composite of a year runs into January of the next
year, so it overlaps the first composite of that year (A2021361 covers
2021-12-27 ... 2022-01-03, A2022001 starts 2022-01-01): the time step is 8 days
except across new year (5 days here). ``obs_time`` is the calendar day (00:00 UTC) of the observation chosen for
each pixel, from ``sur_refl_day_of_year``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import xarray as xr

from ..units import DataValidationError, check_range, check_time_axis
from ._common import open_netcdf

__all__ = ["read_mod09a1", "BANDS", "sinusoidal_to_latlon", "MODIS_SPHERE_RADIUS"]

MODIS_SPHERE_RADIUS = 6371007.181
"""Radius (m) of the sphere of the MODIS sinusoidal grid."""

BANDS: dict[str, tuple[str, str]] = {
    "sur_refl_b01": ("red", "620-670 nm"),
    "sur_refl_b02": ("nir", "841-876 nm"),
    "sur_refl_b03": ("blue", "459-479 nm"),
    "sur_refl_b04": ("green", "545-565 nm"),
    "sur_refl_b05": ("nir_1240", "1230-1250 nm"),
    "sur_refl_b06": ("swir16", "1628-1652 nm"),
    "sur_refl_b07": ("swir21", "2105-2155 nm"),
}
"""MOD09A1 reflectance variable -> (output name, band width)."""

CITATION = ("Vermote, E. (2021) MOD09A1 MODIS/Terra Surface Reflectance 8-Day L3 Global "
            "500m SIN Grid V061, NASA EOSDIS LP DAAC, doi:10.5067/MODIS/MOD09A1.061 "
            "(collection 006 files: doi:10.5067/MODIS/MOD09A1.006).")

TIME_CONVENTION = ("time = start of the 8-day compositing window (00:00 UTC of day DDD in "
                   "the file name's AYYYYDDD); the window is [time, time + 8 days). The "
                   "file's own scalar time (window middle) is not used.")

_NAME_RE = re.compile(r"MOD09A1\.A(\d{4})(\d{3})\.(h\d\dv\d\d)\.(\d{3})\.(\d+)")

_STATE_FILL = 65535
_QC_FILL = 787410671  # MOD09A1 sur_refl_qc_500m _FillValue

_STATE_DESC = (
    "MOD09A1 500 m state QA bit field: bits 0-1 cloud state (00 clear, 01 cloudy, "
    "10 mixed, 11 not set/assumed clear); bit 2 cloud shadow; bits 3-5 land/water "
    "(000 shallow ocean, 001 land, 010 ocean coastlines and lake shorelines, 011 shallow "
    "inland water, 100 ephemeral water, 101 deep inland water, 110 continental/moderate "
    "ocean, 111 deep ocean); bits 6-7 aerosol quantity (00 climatology, 01 low, "
    "10 average, 11 high); bits 8-9 cirrus (00 none, 01 small, 10 average, 11 high); "
    "bit 10 internal cloud algorithm flag; bit 11 internal fire algorithm flag; bit 12 "
    "MOD35 snow/ice flag; bit 13 pixel adjacent to cloud; bit 14 BRDF correction "
    "performed; bit 15 internal snow mask. 65535 = missing.")
_QC_DESC = (
    "MOD09A1 500 m reflectance QC bit field: bits 0-1 MODLAND QA (00 corrected product "
    "produced at ideal quality all bands, 01 produced at less than ideal quality some or "
    "all bands, 10 not produced due to cloud effects all bands, 11 not produced for "
    "other reasons); bits 2-5, 6-9, 10-13, 14-17, 18-21, 22-25, 26-29 band 1..7 data "
    "quality (0000 highest quality ... 1111 not processed); bit 30 atmospheric correction "
    "performed; bit 31 adjacency correction performed. 787410671 = missing.")


def sinusoidal_to_latlon(x, y, radius: float = MODIS_SPHERE_RADIUS):
    """Inverse MODIS sinusoidal projection on the sphere.

    Parameters
    ----------
    x, y : array_like
        Projected easting and northing in metres (broadcast together).
    radius : float
        Sphere radius in metres (MODIS: 6371007.181).

    Returns
    -------
    lat, lon : numpy.ndarray
        Latitude and longitude in degrees (``lat = y / R``,
        ``lon = x / (R cos lat)``).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    lat = y / radius
    lon = x / (radius * np.cos(lat))
    return np.rad2deg(lat), np.rad2deg(lon)


def _list_files(paths_or_dir) -> list[Path]:
    if isinstance(paths_or_dir, (str, os.PathLike)):
        p = Path(paths_or_dir)
        if p.is_dir():
            files = sorted(q for q in p.iterdir()
                           if q.name.startswith("MOD09A1") and (q.name.endswith(".nc")
                                                                or q.name.endswith(".nc.gz")))
            if not files:
                raise FileNotFoundError(f"{p}: no MOD09A1*.nc or MOD09A1*.nc.gz files in this folder.")
            return files
        return [p]
    files = [Path(q) for q in paths_or_dir]
    if not files:
        raise ValueError("read_mod09a1: empty list of files.")
    return files


def _parse_name(path: Path, nc) -> tuple[np.datetime64, str, str]:
    """(window start, collection, tile) from the file name, checked against the
    RANGEBEGINNINGDATE / VERSIONID attributes when present."""
    m = _NAME_RE.search(path.name)
    attrs = nc.__dict__
    if m:
        year, doy, tile, coll = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
        start = np.datetime64(f"{year}-01-01") + np.timedelta64(doy - 1, "D")
    elif "RANGEBEGINNINGDATE" in attrs:
        start = np.datetime64(str(attrs["RANGEBEGINNINGDATE"]).strip()[:10])
        coll = f"{int(attrs.get('VERSIONID', 0)):03d}"
        tile = "h{:02d}v{:02d}".format(int(attrs.get("HORIZONTALTILENUMBER", -1)),
                                       int(attrs.get("VERTICALTILENUMBER", -1)))
    else:
        raise DataValidationError(
            "the file name does not follow MOD09A1.AYYYYDDD.hHHvVV.CCC.* and the file has no "
            "RANGEBEGINNINGDATE attribute, so the compositing window is unknown.",
            source=str(path), variable="time",
            fix="keep the original LP DAAC file name (e.g. MOD09A1.A2022193.h18v04.061.*.nc).")
    if "RANGEBEGINNINGDATE" in attrs:
        try:
            att_start = np.datetime64(str(attrs["RANGEBEGINNINGDATE"]).strip()[:10])
        except ValueError:
            att_start = None
        if att_start is not None and att_start != start:
            raise DataValidationError(
                f"file name says the window starts {start} but RANGEBEGINNINGDATE is {att_start}.",
                source=str(path), variable="time",
                fix="the file was renamed or mixed up; restore the original file name.")
    return start.astype("datetime64[D]"), coll, tile


def _read_float(nc, name: str, path: Path) -> np.ndarray:
    if name not in nc.variables:
        raise DataValidationError(
            f"variable {name!r} is missing (present: {', '.join(sorted(nc.variables))}).",
            source=str(path), variable=name,
            fix="download the full MOD09A1 product (all 7 sur_refl bands, state and QC layers).")
    v = nc.variables[name]
    v.set_auto_maskandscale(True)
    arr = v[:]
    if np.ma.isMaskedArray(arr):
        arr = arr.astype(np.float64).filled(np.nan)
    return np.asarray(arr, dtype=np.float64)


def _to_uint(arr: np.ndarray, dtype, fill: int, name: str, path: Path) -> np.ndarray:
    finite = np.isfinite(arr)
    vals = arr[finite]
    if vals.size and (np.any(vals != np.round(vals)) or vals.min() < 0
                      or vals.max() > np.iinfo(dtype).max):
        raise DataValidationError(
            f"bit-field values are not integers in [0, {np.iinfo(dtype).max}] "
            f"(min {vals.min():.6g}, max {vals.max():.6g}).",
            source=str(path), variable=name,
            fix="the layer was scaled or resampled; use the original integer QA layer.")
    out = np.full(arr.shape, fill, dtype=dtype)
    out[finite] = vals.astype(dtype)
    return out


def _read_one(path: Path) -> dict:
    nc = open_netcdf(path, what="netCDF/HDF5")
    try:
        start, coll, tile = _parse_name(path, nc)
        for dim in ("x", "y"):
            if dim not in nc.variables:
                raise DataValidationError(
                    f"coordinate {dim!r} is missing.", source=str(path), variable=dim,
                    fix="use crops that keep the sinusoidal x/y coordinates (metres).")
        x = np.asarray(nc.variables["x"][:], dtype=float)
        y = np.asarray(nc.variables["y"][:], dtype=float)
        out = {"start": start, "collection": coll, "tile": tile, "x": x, "y": y, "path": path}
        for src, (name, _) in BANDS.items():
            a = _read_float(nc, src, path)
            if a.shape != (y.size, x.size):
                raise DataValidationError(
                    f"shape {a.shape} does not match the (y, x) grid {(y.size, x.size)}.",
                    source=str(path), variable=src, fix="use an unmodified crop.")
            fin = a[np.isfinite(a)]
            if fin.size and (np.percentile(fin, 99) > 2.0 or fin.max() > 100.0):
                raise DataValidationError(
                    f"reflectance looks unscaled (99th percentile {np.percentile(fin, 99):.6g}, "
                    f"max {fin.max():.6g}; surface reflectance is ~0-1).",
                    source=str(path), variable=src,
                    fix="the values are raw digital numbers; multiply by 1e-4 (the MOD09A1 "
                        "scale_factor) or keep the scale_factor attribute in the file.")
            check_range(a, "reflectance", source=str(path), column=src, fraction=0.01)
            out[name] = a.astype(np.float32)
        out["state_qa"] = _to_uint(_read_float(nc, "sur_refl_state_500m", path), np.uint16,
                                   _STATE_FILL, "sur_refl_state_500m", path)
        out["qc_500m"] = _to_uint(_read_float(nc, "sur_refl_qc_500m", path), np.uint32,
                                  _QC_FILL, "sur_refl_qc_500m", path)
        doy = _read_float(nc, "sur_refl_day_of_year", path)
        out["obs_time"] = _obs_time(doy, start, path)
        crs = ""
        if "spatial_ref" in nc.variables:
            sr = nc.variables["spatial_ref"].__dict__
            crs = str(sr.get("crs_wkt", sr.get("spatial_ref", "")))
        out["crs_wkt"] = crs
    finally:
        nc.close()
    return out


def _obs_time(doy: np.ndarray, start: np.datetime64, path: Path) -> np.ndarray:
    """Per-pixel observation day from the day-of-year layer; composites that cross
    new year get the following year for DOYs smaller than the window's start DOY."""
    start_d = start.astype("datetime64[D]")
    year = start_d.astype("datetime64[Y]")
    start_doy = int((start_d - year).astype(int)) + 1
    valid = np.isfinite(doy) & (doy >= 1) & (doy <= 366)
    d = np.where(valid, doy, start_doy).astype(np.int64)
    next_year = (year + np.timedelta64(1, "Y")).astype("datetime64[D]")
    base = np.where(d < start_doy, next_year, year.astype("datetime64[D]"))
    obs = base + (d - 1).astype("timedelta64[D]")
    end = start_d + np.timedelta64(8, "D")
    outside = valid & ((obs < start_d) | (obs >= end))
    if np.any(outside):
        bad = obs[outside][0]
        raise DataValidationError(
            f"{int(outside.sum())} pixels have an observation day ({bad}) outside the "
            f"compositing window [{start_d}, {end}).",
            source=str(path), variable="sur_refl_day_of_year",
            fix="check that the file name's AYYYYDDD matches the file's contents.")
    obs = obs.astype("datetime64[ns]")
    obs[~valid] = np.datetime64("NaT")
    return obs


def _select(records: list[dict], prefer_collection: str) -> tuple[list[dict], list[str]]:
    by_start: dict[np.datetime64, list[dict]] = {}
    for r in records:
        by_start.setdefault(r["start"], []).append(r)
    keep, dropped = [], []
    for start in sorted(by_start):
        group = by_start[start]
        colls = [r["collection"] for r in group]
        if len(set(colls)) != len(colls):
            dup = [str(r["path"]) for r in group]
            raise DataValidationError(
                f"several files of the same collection for the composite starting {start}: "
                f"{', '.join(dup)}.", source=dup[0], variable="time",
                fix="keep one production version of each composite.")
        pref = [r for r in group if r["collection"] == prefer_collection]
        chosen = pref[0] if pref else max(group, key=lambda r: r["collection"])
        keep.append(chosen)
        dropped += [str(r["path"]) for r in group if r is not chosen]
    return keep, dropped


def read_mod09a1(paths_or_dir: str | os.PathLike | Iterable[str | os.PathLike], *,
                 prefer_collection: str = "061", chunks: dict | None = None) -> xr.Dataset:
    """Read MOD09A1 8-day 500 m surface-reflectance crops into one Dataset.

    Parameters
    ----------
    paths_or_dir : path, folder or iterable of paths
        ``MOD09A1.AYYYYDDD.hHHvVV.CCC.<production>*.nc`` files, plain or gzip-compressed
        (``.nc.gz``, decompressed in memory). A folder means every ``MOD09A1*.nc[.gz]``
        in it. Reflectances must already be scaled to reflectance (float, ~0-1) or carry
        a ``scale_factor`` attribute; missing values are NaN or ``_FillValue``.
    prefer_collection : str
        When a composite exists in several collections (e.g. A2022001 in 006 and 061),
        keep this one and drop the others; composites with only another collection
        (e.g. A2021361, 006 only) are kept.
    chunks : dict, optional
        If given, the returned Dataset is dask-backed with these chunks
        (e.g. ``{"time": 1}``).

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)``.

        * coords: ``time`` (datetime64, start of the 8-day window, 00:00 UTC),
          ``collection`` (time; e.g. "061"), ``x``, ``y`` (sinusoidal metres, pixel
          centres, from the file), ``lat``, ``lon`` (y, x; degrees, inverse sinusoidal
          projection on the sphere R = 6371007.181 m).
        * reflectances (float32, units "1"): ``red`` (b01), ``nir`` (b02), ``blue``
          (b03), ``green`` (b04), ``nir_1240`` (b05), ``swir16`` (b06), ``swir21`` (b07).
        * ``state_qa`` (uint16, from sur_refl_state_500m; 65535 = missing),
          ``qc_500m`` (uint32, from sur_refl_qc_500m; 787410671 = missing): bit fields,
          units "1", bit meanings in ``flag_meanings``.
        * ``obs_time`` (datetime64[ns]): day of the observation chosen for each pixel
          (00:00 UTC; the overpass time of day is not stored), from
          sur_refl_day_of_year, with the year wrap of composites that cross new year.
        * attrs: ``crs_wkt``, ``citation``, ``time_convention``,
          ``utc_offset_hours`` = 0, ``time_step_seconds`` (8 days), ``source_files``,
          ``dropped_files``.

    Raises
    ------
    DataValidationError
        Corrupt/truncated gzip or netCDF, a missing band, reflectance stored as raw
        digital numbers, inconsistent grids or CRS between files, observation days
        outside the window, duplicated composites within one collection.

    Notes
    -----
    Citation: Vermote, E. (2021) MOD09A1 MODIS/Terra Surface Reflectance 8-Day L3
    Global 500m SIN Grid V061, NASA EOSDIS LP DAAC, doi:10.5067/MODIS/MOD09A1.061.
    """
    files = _list_files(paths_or_dir)
    records = [_read_one(p) for p in files]
    ref = records[0]
    for r in records[1:]:
        for dim in ("x", "y"):
            if r[dim].shape != ref[dim].shape or not np.allclose(r[dim], ref[dim], atol=1.0,
                                                                    rtol=0.0):
                raise DataValidationError(
                    f"the {dim} grid ({r[dim].size} pixels, {r[dim][0]:.1f}...{r[dim][-1]:.1f} m) "
                    f"differs from that of {ref['path'].name} ({ref[dim].size} pixels, "
                    f"{ref[dim][0]:.1f}...{ref[dim][-1]:.1f} m).",
                    source=str(r["path"]), variable=dim,
                    fix="crop every file to the same extent (or read the groups separately).")
        if r["tile"] != ref["tile"]:
            raise DataValidationError(
                f"tile {r['tile']} differs from tile {ref['tile']} of {ref['path'].name}.",
                source=str(r["path"]), variable="tile", fix="read one tile at a time.")
        if r["crs_wkt"] and ref["crs_wkt"] and r["crs_wkt"] != ref["crs_wkt"]:
            raise DataValidationError(
                f"CRS differs from that of {ref['path'].name}.", source=str(r["path"]),
                variable="spatial_ref", fix="reproject the crops to the MODIS sinusoidal grid.")

    keep, dropped = _select(records, prefer_collection)
    times = np.array([r["start"] for r in keep]).astype("datetime64[ns]")
    check_time_axis(times, source=str(keep[0]["path"].parent))

    x, y = ref["x"], ref["y"]
    lat, lon = sinusoidal_to_latlon(*np.meshgrid(x, y))
    dims = ("time", "y", "x")
    data_vars = {}
    for src, (name, width) in BANDS.items():
        data_vars[name] = xr.Variable(dims, np.stack([r[name] for r in keep]), attrs={
            "units": "1", "long_name": f"surface reflectance, MODIS band {src[-2:]} ({width})",
            "source_name": src, "valid_range": "-0.01 to 1.6"})
    data_vars["state_qa"] = xr.Variable(dims, np.stack([r["state_qa"] for r in keep]), attrs={
        "units": "1", "long_name": "500 m state QA bit field", "source_name": "sur_refl_state_500m",
        "flag_meanings": _STATE_DESC, "fill_value": _STATE_FILL})
    data_vars["qc_500m"] = xr.Variable(dims, np.stack([r["qc_500m"] for r in keep]), attrs={
        "units": "1", "long_name": "500 m reflectance QC bit field", "source_name": "sur_refl_qc_500m",
        "flag_meanings": _QC_DESC, "fill_value": _QC_FILL})
    data_vars["obs_time"] = xr.Variable(dims, np.stack([r["obs_time"] for r in keep]), attrs={
        "long_name": "day of the observation chosen for the pixel (00:00 UTC)",
        "source_name": "sur_refl_day_of_year"})
    # datetime64 variables carry their unit in the dtype; xarray reserves "units" for
    # encoding of datetimes, so it is recorded under "units_description".
    data_vars["obs_time"].attrs["units_description"] = "datetime64[ns], UTC, day resolution"

    coords = {
        "time": ("time", times, {"long_name": "start of the 8-day compositing window",
                                 "time_convention": TIME_CONVENTION}),
        "collection": ("time", np.array([r["collection"] for r in keep]),
                       {"long_name": "MODIS collection of the composite", "units": "1"}),
        "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate",
                       "long_name": "sinusoidal northing (pixel centre)"}),
        "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate",
                       "long_name": "sinusoidal easting (pixel centre)"}),
        "lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs={
        "title": "MODIS MOD09A1 8-day 500 m surface reflectance",
        "crs_wkt": ref["crs_wkt"],
        "tile": ref["tile"],
        "citation": CITATION,
        "time_convention": TIME_CONVENTION,
        "utc_offset_hours": 0,
        "time_zone": "UTC",
        "time_step_seconds": 8 * 86400,
        "source_files": "; ".join(str(r["path"].name) for r in keep),
        "dropped_files": "; ".join(Path(p).name for p in dropped),
        "prefer_collection": prefer_collection,
    })
    if chunks is not None:
        ds = ds.chunk(chunks)
    return ds
