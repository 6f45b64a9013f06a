"""The map store: a chunked Zarr store with CF-1.10 metadata, written tile by tile.

Layout (dims ``time`` hourly interval starts UTC, ``day`` the map period's days, ``y``,
``x`` the cube grid, ``vprm_class``):

* ``nee``, ``gpp``, ``reco`` (time, y, x), float32, ``umol m-2 s-1``, hourly means
  (``cell_methods = "time: mean"``); NEE = Reco - GPP, positive = source to the atmosphere;
  ``<name>_sd``: their standard deviations from the propagated pivot uncertainty;
* ``nee_total``, ``gpp_total``, ``reco_total`` (y, x), ``g C m-2`` over the period, with
  ``<name>_total_sd`` (pivot errors fully correlated in time: an upper bound);
* ``evi``, ``lswi``, ... (day, y, x) the daily pivot over the period and ``<name>_sd``;
* ``class_fraction`` (y, x, vprm_class), ``pixel_flag`` (y, x), ``lat``/``lon`` (y, x)
  auxiliary coordinates and the grid-mapping variable ``spatial_ref`` (``crs_wkt``).

Daily maps (``model.name`` a daily model, :mod:`.daily`): ``time`` is the day (start of
the UTC day, ``bounds = "time_bnds"``, 1-day cells), the fluxes are day means
(``cell_methods = "time: mean"`` over the cell of 1 day), the totals sum the days.

Writes are idempotent: the template (metadata, coordinates) is written once, then each tile
writes its own Zarr chunks (``region=``), then a marker file in ``<store>.tiles/``. A
resumed run skips tiles with a marker and rewrites the others, so an interrupted run ends
with the same bytes as an uninterrupted one. The store's ``config_fingerprint`` attribute
guards against resuming with another configuration.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

__all__ = ["FLUX_VARIABLES", "create_store", "write_tile", "mark_done", "done_tiles", "open_map", "markers_dir"]

FLUX_VARIABLES = {"gpp": "gross primary production (>= 0)", "reco": "ecosystem respiration (>= 0)",
                  "nee": "net ecosystem exchange, Reco - GPP (positive = source to the atmosphere)"}
FLUX_UNITS = "umol m-2 s-1"
TOTAL_UNITS = "g C m-2"


def markers_dir(store: str | Path) -> Path:
    return Path(str(store).rstrip("/") + ".tiles")


def _template(grid: dict, hours, days, pivot_names, class_ids, tile, time_chunk, crs_wkt, attrs,
              step: str = "hourly"):
    import dask.array as da
    ny, nx = len(grid["y"]), len(grid["x"])
    ty, tx = tile
    f4 = np.float32
    coords = {"time": ("time", hours.as_unit("ns"), {"standard_name": "time", "axis": "T",
                                                       "long_name": "start of the hourly interval (UTC)"}),
              "day": ("day", days.as_unit("ns"), {"long_name": "day of the daily pivot (UTC)"}),
              "y": ("y", grid["y"], {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
              "x": ("x", grid["x"], {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
              "vprm_class": ("vprm_class", np.asarray(class_ids, np.int16), {"long_name": "VPRM class id"}),
              "lat": (("y", "x"), grid["lat"], {"standard_name": "latitude", "units": "degrees_north"}),
              "lon": (("y", "x"), grid["lon"], {"standard_name": "longitude", "units": "degrees_east"})}
    if step == "daily":
        coords["time"] = ("time", hours.as_unit("ns"), {"standard_name": "time", "axis": "T", "bounds": "time_bnds",
                                                          "long_name": "start of the daily interval (UTC)"})
    common = {"grid_mapping": "spatial_ref", "coordinates": "lat lon"}
    data = {}
    hourly = da.zeros((len(hours), ny, nx), dtype=f4, chunks=(time_chunk, ty, tx))
    for v, long in FLUX_VARIABLES.items():
        data[v] = (("time", "y", "x"), hourly, {"units": FLUX_UNITS, "long_name": long,
                                                "cell_methods": "time: mean", **common})
        data[f"{v}_sd"] = (("time", "y", "x"), hourly, {"units": FLUX_UNITS, "cell_methods": "time: mean",
                                                        "long_name": f"standard deviation of {v}", **common})
        flat = da.zeros((ny, nx), dtype=f4, chunks=(ty, tx))
        data[f"{v}_total"] = (("y", "x"), flat, {"units": TOTAL_UNITS, "cell_methods": "time: sum",
                                                 "long_name": f"{v} summed over the map period", **common})
        data[f"{v}_total_sd"] = (("y", "x"), flat, {"units": TOTAL_UNITS, "long_name":
                                                    f"standard deviation of {v}_total (pivot errors fully "
                                                    "correlated in time)", **common})
    if step == "daily":
        for v in FLUX_VARIABLES:
            for k in (v, f"{v}_sd"):
                data[k][2]["long_name"] = data[k][2]["long_name"] + " (daily mean)"
        edges = np.stack([hours.as_unit("ns").values, (hours + pd.Timedelta("1D")).as_unit("ns").values], -1)
        coords["time_bnds"] = (("time", "nv"), edges, {"long_name": "bounds of the daily interval (UTC)"})
    daily = da.zeros((len(days), ny, nx), dtype=f4, chunks=(len(days), ty, tx))
    from .pivot import PIVOT_VARIABLES
    for n in pivot_names:
        data[n] = (("day", "y", "x"), daily, {"units": PIVOT_VARIABLES[n], "long_name": f"daily pivot {n}",
                                              **common})
        data[f"{n}_sd"] = (("day", "y", "x"), daily, {"units": PIVOT_VARIABLES[n],
                                                      "long_name": f"standard deviation of daily pivot {n}", **common})
    data["class_fraction"] = (("y", "x", "vprm_class"),
                              da.zeros((ny, nx, len(class_ids)), dtype=f4, chunks=(ty, tx, -1)),
                              {"units": "1", "long_name": "VPRM land-cover class fraction", **common})
    data["pixel_flag"] = (("y", "x"), da.zeros((ny, nx), dtype=np.int8, chunks=(ty, tx)),
                          {"units": "1", "flag_values": np.array([0, 1, 2, 3], np.int8),
                           "flag_meanings": "ok no_clear_observation_scene_prior few_observations constant",
                           **common})
    from pyproj import CRS
    cf = CRS.from_user_input(crs_wkt).to_cf()
    data["spatial_ref"] = ((), np.int32(0), {k: v for k, v in cf.items() if isinstance(v, (str, int, float))})
    ds = xr.Dataset(data, coords={k: v for k, v in coords.items()})
    ds.attrs.update({"Conventions": "CF-1.10", **attrs})
    return ds


def _encoding(ds, step: str = "hourly"):
    enc = {}
    for v in ds.data_vars:
        if v == "spatial_ref":
            continue
        chunks = ds[v].data.chunksize if hasattr(ds[v].data, "chunksize") else None
        e = {"chunks": chunks} if chunks else {}
        if ds[v].dtype == np.float32:
            e["_FillValue"] = np.float32(np.nan)
        enc[v] = e
    enc["time"] = {"units": "hours since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian",
                   "dtype": "int64"}
    enc["day"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}
    if step == "daily":
        enc["time"] = dict(enc["day"])
        enc["time_bnds"] = dict(enc["day"])
    return enc


def create_store(path, *, grid, hours, days, pivot_names, class_ids, tile, time_chunk, crs_wkt,
                 attrs: dict, fingerprint: str, overwrite: bool = False, step: str = "hourly") -> bool:
    """Create the store (template: metadata and coordinates) unless a store with the same
    ``fingerprint`` is there (returns False: resume). A store of another configuration
    raises unless ``overwrite``. ``step = "daily"``: ``hours`` are the map's days (daily
    time axis, see the module docstring)."""
    path = Path(path)
    if path.exists():
        try:
            old = xr.open_zarr(path, consolidated=False).attrs.get("config_fingerprint")
        except Exception:      # an unreadable store: only overwriting can fix it
            old = "<unreadable>"
        if old == fingerprint and not overwrite:
            return False
        if not overwrite:
            raise DataValidationError(
                f"a store written with another configuration (fingerprint {old}, now {fingerprint}) is there.",
                source=str(path), variable="config_fingerprint",
                fix="set output.overwrite = true to replace it, or choose another output.store.")
        shutil.rmtree(path)
    shutil.rmtree(markers_dir(path), ignore_errors=True)
    ds = _template(grid, hours, days, pivot_names, class_ids, tile, time_chunk, crs_wkt,
                   {**attrs, "config_fingerprint": fingerprint}, step=step)
    ds.to_zarr(path, mode="w", compute=False, encoding=_encoding(ds, step), consolidated=False, zarr_format=3)
    markers_dir(path).mkdir(parents=True, exist_ok=True)
    return True


def write_tile(path, ysl: slice, xsl: slice, arrays: dict, tsl: slice | None = None):
    """Write one tile's arrays (name -> (dims, array) over the tile's extent, and over the
    hours ``tsl`` for hourly variables) into their region of the store (whole Zarr chunks:
    tiles and hour blocks are chunk-aligned)."""
    region = {"y": ysl, "x": xsl} if tsl is None else {"time": tsl, "y": ysl, "x": xsl}
    xr.Dataset(dict(arrays)).to_zarr(path, region=region, consolidated=False, zarr_format=3)


def mark_done(path, tile_id: str, info: dict):
    """The tile's marker, written atomically (rename) after its data."""
    md = markers_dir(path)
    tmp = md / f".{tile_id}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, md / f"{tile_id}.json")


def done_tiles(path) -> dict:
    """Markers of the finished tiles: {tile id: info}."""
    md = markers_dir(path)
    if not md.exists():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in md.glob("*.json")}


def open_map(path) -> xr.Dataset:
    """The map store as a lazy Dataset (dask arrays)."""
    return xr.open_zarr(path, consolidated=False)

