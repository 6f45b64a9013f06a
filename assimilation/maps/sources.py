"""Inputs of a map run, read and checked at the edge: satellite cube -> per-date indices with
a cloud mask, hourly meteorology, land cover -> VPRM class fractions.

* **Sentinel-2 L2A** (:func:`read_sentinel2_l2a`): bands as on disk (B2 blue, B3 green, B4
  red, B8 NIR 842 nm, B8A NIR 865 nm, B11 SWIR 1610 nm) times ``scale_factor`` = surface
  reflectance (unit 1; L2A DN / 10000 before processing baseline 04.00). Files at half the
  resolution of the first (10 m beside 20 m) are aggregated 2 x 2 by the mean onto its grid.
  Pixels are kept where the Sen2Cor scene classification (SCL) is vegetation, not-vegetated
  or water-free (SCL 4, 5; :func:`process_models.satellite.sentinel2_scl_mask` with snow
  masked) and every band is in (0, 1.2].
* **MOD09A1** (:func:`process_models.io.read_mod09a1`): state-QA mask
  (:func:`process_models.satellite.modis_state_mask`), each pixel on its acquisition day.
* Indices (:mod:`process_models.satellite.indices`): EVI (Huete et al. 2002) from NIR (B8),
  red, blue; EVI2 (Jiang et al. 2008) without blue; NDVI (Tucker 1979); NIRv (Badgley et
  al. 2017); LSWI (Xiao et al. 2004) from NIR 865 nm (B8A; MODIS band 2) and SWIR 1.6 um
  (B11; MODIS band 6). A cube without B8 (the France series) uses B8A as its NIR.

Checks (each a :class:`~process_models.units.DataValidationError` naming the variable and
the fix): a band an index needs is missing; reflectance out of range for the given
``scale_factor`` (DN read as reflectance or reflectance scaled twice); a CRS different from
the one configured or from the land-cover raster's; land cover on another grid;
meteorology that does not cover the map period, or has gaps longer than
``max_gap_hours``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

from .config import LandCoverConfig, MapConfig, MeteorologyConfig, SatelliteConfig

__all__ = ["read_sentinel2_l2a", "satellite_observations", "hourly_meteorology", "class_fractions",
           "pixel_lonlat", "read_geotiff", "point_observations",
           "check_meteorology", "check_observations"]

S2_BANDS = {"B2": "blue", "B3": "green", "B4": "red", "B8": "nir", "B8A": "nir08", "B11": "swir16"}
INDEX_BANDS = {"evi": ("nir", "red", "blue"), "evi2": ("nir", "red"), "ndvi": ("nir", "red"), "nirv": ("nir", "red"),
               "lswi": ("nir08", "swir16")}
REFLECTANCE_MAX = 1.2
"""Largest surface reflectance kept (bright cloud edges and snow exceed it)."""


def _open_nc(path: Path) -> xr.Dataset:
    from process_models.io._common import open_netcdf
    nc = open_netcdf(path, what="Sentinel-2 netCDF")
    try:
        return xr.open_dataset(xr.backends.NetCDF4DataStore(nc)).load()
    finally:
        nc.close()


def _crs_of(ds: xr.Dataset, source: str) -> str:
    if "spatial_ref" in ds and "spatial_ref" in ds["spatial_ref"].attrs:
        return ds["spatial_ref"].attrs["spatial_ref"]
    if "spatial_ref" in ds and "crs_wkt" in ds["spatial_ref"].attrs:
        return ds["spatial_ref"].attrs["crs_wkt"]
    if "crs_wkt" in ds.attrs:
        return ds.attrs["crs_wkt"]
    raise DataValidationError("the cube has no CRS (no spatial_ref variable, no crs_wkt attribute).",
                              source=source, variable="spatial_ref",
                              fix="write the CRS as WKT in a spatial_ref variable (rioxarray convention).")


def _same_crs(a: str, b: str) -> bool:
    """Operational CRS equality: equal definitions, or coordinates that map onto themselves
    (to 0.5 m) between the two at probe points across Europe and the globe (WKT variants of
    one CRS, e.g. with and without a zero TOWGS84, compare unequal as definitions)."""
    from pyproj import CRS, Transformer
    ca, cb = CRS.from_user_input(a), CRS.from_user_input(b)
    if ca.equals(cb, ignore_axis_order=True):
        return True
    if ca.is_geographic != cb.is_geographic:
        return False
    lon = np.array([-10.0, 0.0, 10.0, 22.15, 30.0, -90.0, 120.0])
    lat = np.array([40.0, 50.0, 60.0, 45.2, 35.0, 45.9, -30.0])
    to_a = Transformer.from_crs(CRS.from_epsg(4326), ca, always_xy=True)
    a_to_b = Transformer.from_crs(ca, cb, always_xy=True)
    xa, ya = to_a.transform(lon, lat)
    xb, yb = a_to_b.transform(xa, ya)
    ok = np.isfinite(xa) & np.isfinite(xb)
    return bool(ok.any()) and bool(np.all(np.hypot(xb - xa, yb - ya)[ok] < 0.5))


def _check_scale(refl: xr.DataArray, clear: xr.DataArray, band: str, scale: float, source: str):
    med = float(refl.where(clear).median())
    if not np.isfinite(med):
        return
    if med > 2.0:
        raise DataValidationError(
            f"clear-sky median reflectance of {band} is {med:.4g} after scaling by {scale:g}: the values "
            "look like digital numbers.", source=source, variable=band,
            fix=f"set satellite.scale_factor = {scale * 1e-4:g} (L2A DN / 10000).")
    if med < 2e-3:
        raise DataValidationError(
            f"clear-sky median reflectance of {band} is {med:.3g} after scaling by {scale:g}: the values "
            "look already scaled to reflectance.", source=source, variable=band,
            fix="set satellite.scale_factor = 1.")


def read_sentinel2_l2a(paths, scale_factor: float = 1e-4, *, crs: str | None = None,
                       needed=("blue", "red", "nir", "nir08", "swir16")) -> xr.Dataset:
    """Sentinel-2 L2A cube(s) -> reflectance (unit 1) on the first file's grid, ``clear``
    mask and ``crs`` attribute (WKT). See the module docs for masks and checks."""
    paths = [Path(p) for p in paths]
    first = _open_nc(paths[0])
    src = str(paths[0])
    wkt = _crs_of(first, src)
    if crs is not None and not _same_crs(crs, wkt):
        raise DataValidationError(f"the cube's CRS is not the configured {crs!r}.", source=src,
                                  variable="spatial_ref", fix="reproject the cube or fix satellite.crs.")
    if "SCL" not in first:
        raise DataValidationError("no SCL (scene classification) band.", source=src, variable="SCL",
                                  fix="export the L2A SCL band with the reflectances.")
    bands = {}
    for p in paths:
        ds = first if p == paths[0] else _open_nc(p)
        if p != paths[0]:
            if not _same_crs(_crs_of(ds, str(p)), wkt):
                raise DataValidationError("CRS differs from the first cube's.", source=str(p),
                                          variable="spatial_ref", fix="reproject to one CRS first.")
            if not np.array_equal(ds["time"].values, first["time"].values):
                raise DataValidationError("acquisition dates differ from the first cube's.", source=str(p),
                                          variable="time", fix="select the common dates.")
            if ds.sizes["x"] == 2 * first.sizes["x"] and ds.sizes["y"] == 2 * first.sizes["y"]:
                ds = ds.coarsen(x=2, y=2).mean()
            if not (np.allclose(ds["x"], first["x"], atol=1.0, rtol=0.0) and np.allclose(ds["y"], first["y"], atol=1.0, rtol=0.0)):
                raise DataValidationError("pixel centres do not nest in the first cube's grid.", source=str(p),
                                          variable="x", fix="resample the cube onto the first cube's grid.")
            ds = ds.assign_coords(x=first["x"], y=first["y"])
        for b, name in S2_BANDS.items():
            if b in ds and name not in bands:
                bands[name] = ds[b].astype(np.float64) * float(scale_factor)
    if "nir" not in bands and "nir08" in bands:
        bands["nir"] = bands["nir08"]      # B8A (865 nm) stands in for B8 (842 nm) in cubes without B8
    missing = [b for b in needed if b not in bands]
    if missing:
        have = {S2_BANDS_INV[n]: n for n in bands}
        raise DataValidationError(
            f"band(s) {[S2_BANDS_INV[m] for m in missing]} ({missing}) missing; the cube has {sorted(have)}.",
            source=src, variable=S2_BANDS_INV[missing[0]],
            fix="add the band, or drop the index that needs it from satellite.indices.")
    from process_models.satellite import sentinel2_scl_mask
    scl = first["SCL"]
    clear = xr.DataArray(np.asarray(sentinel2_scl_mask(scl.values, mask_snow=True)), dims=scl.dims,
                         coords=scl.coords)
    for name, da in bands.items():
        _check_scale(da, clear, S2_BANDS_INV[name], scale_factor, src)
    for da in bands.values():
        clear = clear & (da > 0) & (da <= REFLECTANCE_MAX)
    out = xr.Dataset({k: v.assign_attrs(units="1") for k, v in bands.items()})
    out["clear"] = clear
    out.attrs.update(crs=wkt, sensor="Sentinel-2 L2A", source_files="; ".join(p.name for p in paths))
    return out


S2_BANDS_INV = {v: k for k, v in S2_BANDS.items()}


def _indices(refl: xr.Dataset, names, valid: xr.DataArray) -> xr.Dataset:
    from process_models.satellite import indices as ix
    fn = {"evi": lambda r: ix.evi(r["nir"], r["red"], r["blue"]),
          "evi2": lambda r: ix.evi2(r["nir"], r["red"]),
          "ndvi": lambda r: ix.ndvi(r["nir"], r["red"]),
          "nirv": lambda r: ix.nirv(r["nir"], r["red"]),
          "lswi": lambda r: ix.lswi(r["nir08"], r["swir16"])}
    out = {}
    for n in names:
        v = xr.DataArray(np.asarray(fn[n]({b: refl[b].values for b in INDEX_BANDS[n]})),
                         dims=refl["red"].dims, coords=refl["red"].coords)
        ok = valid & np.isfinite(v)
        if n in ("evi", "evi2"):
            ok = ok & (v >= -0.2) & (v <= 1.0)   # pyVPRM's EVI filter, widened below 0 for bare soil
        out[n] = v.where(ok).assign_attrs(units="1")
    return xr.Dataset(out)


def satellite_observations(cfg: MapConfig) -> xr.Dataset:
    """The per-date pivot indices (time, y, x) of the configured cube, NaN where masked, with
    ``obs_time`` (MODIS: the day each pixel was seen), ``lat``/``lon`` and attribute ``crs``."""
    s: SatelliteConfig = cfg.satellite
    paths = [cfg.resolve(s.folder, p) for p in s.paths]
    if s.kind == "sentinel2_l2a":
        need = sorted({b for n in s.indices for b in INDEX_BANDS[n]})
        refl = read_sentinel2_l2a(paths, s.scale_factor, crs=s.crs, needed=need)
        obs = _indices(refl, s.indices, refl["clear"])
        obs.attrs.update(refl.attrs)
    elif s.kind == "mod09a1":
        from process_models.io import read_mod09a1
        from process_models.satellite import modis_state_mask
        m = read_mod09a1(paths[0] if len(paths) == 1 else paths)
        if s.crs is not None and not _same_crs(s.crs, m.attrs["crs_wkt"]):
            raise DataValidationError(f"the cube's CRS is not the configured {s.crs!r}.", source=str(paths[0]),
                                      variable="crs_wkt", fix="fix satellite.crs.")
        valid = xr.DataArray(np.asarray(modis_state_mask(m.state_qa.values)), dims=m.state_qa.dims,
                             coords={k: m.state_qa.coords[k] for k in m.state_qa.dims})
        refl = m.rename({"swir16": "swir16"}).assign(nir08=m["nir"])
        obs = _indices(refl, s.indices, valid)
        obs["obs_time"] = m["obs_time"]
        obs = obs.assign_coords(lat=m["lat"], lon=m["lon"])
        obs.attrs.update(crs=m.attrs["crs_wkt"], sensor="MODIS MOD09A1")
    else:   # indices: a netCDF of per-date indices (NaN = masked)
        obs = xr.open_dataset(paths[0]).load()
        missing = [n for n in s.indices if n not in obs]
        if missing:
            raise DataValidationError(f"indices {missing} missing.", source=str(paths[0]), variable=missing[0],
                                      fix="compute them or drop them from satellite.indices.")
        obs.attrs.setdefault("crs", _crs_of(obs, str(paths[0])))
    return check_observations(obs, s.indices, str(paths[0]))


def point_observations(series: dict, *, lat: float, lon: float) -> xr.Dataset:
    """A one-pixel observation cube (time, y=1, x=1) from per-index series (DataArrays on
    their own ``time``, NaN = masked), e.g. a tower's MODIS composites: the union of their
    dates, NaN where an index was not observed, ``lat``/``lon`` coordinates, CRS EPSG:4326."""
    times = sorted(set(np.concatenate([np.asarray(da["time"].values) for da in series.values()])))
    data = {}
    for name, da in series.items():
        da = da.groupby("time").mean() if not pd.DatetimeIndex(da["time"].values).is_unique else da
        v = da.reindex(time=times).values.astype(float)
        data[name] = (("time", "y", "x"), v[:, None, None], {"units": "1"})
    obs = xr.Dataset(data, coords={"time": np.asarray(times), "y": [float(lat)], "x": [float(lon)],
                                   "lat": (("y", "x"), [[float(lat)]]), "lon": (("y", "x"), [[float(lon)]])})
    obs.attrs["crs"] = "EPSG:4326"
    return check_observations(obs, list(series), "point observations")


def check_observations(obs: xr.Dataset, names, source: str) -> xr.Dataset:
    """Dims, sorted unique dates, ranges and the CRS attribute of an observation Dataset."""
    for n in names:
        if n not in obs:
            raise DataValidationError(f"index {n!r} missing.", source=source, variable=n,
                                      fix="add it or drop it from satellite.indices.")
        if tuple(obs[n].dims) != ("time", "y", "x"):
            raise DataValidationError(f"dims {obs[n].dims}, expected ('time', 'y', 'x').", source=source,
                                      variable=n, fix="transpose the cube to (time, y, x).")
        v = obs[n].values
        if np.any(np.abs(v[np.isfinite(v)]) > 1.5):
            raise DataValidationError("index values beyond +-1.5.", source=source, variable=n,
                                      fix="indices are ratios in [-1, 1]: check the reflectance scale.")
    t = pd.DatetimeIndex(obs["time"].values)
    if not (t.is_monotonic_increasing and t.is_unique):
        raise DataValidationError("acquisition times are not sorted and unique.", source=source,
                                  variable="time", fix="sort by time and drop duplicate dates.")
    if "crs" not in obs.attrs:
        raise DataValidationError("no CRS attribute.", source=source, variable="crs",
                                  fix="set obs.attrs['crs'] (WKT or 'EPSG:xxxx').")
    return obs


def pixel_lonlat(obs: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Longitude, latitude (degrees, (y, x)) of the pixel centres: the cube's ``lon``/``lat``
    coordinates, else its x/y transformed from its CRS with pyproj."""
    if "lat" in obs.coords and "lon" in obs.coords:
        return np.asarray(obs["lon"].values, float), np.asarray(obs["lat"].values, float)
    from pyproj import CRS, Transformer
    tr = Transformer.from_crs(CRS.from_user_input(obs.attrs["crs"]), CRS.from_epsg(4326), always_xy=True)
    xx, yy = np.meshgrid(obs["x"].values, obs["y"].values)
    lon, lat = tr.transform(xx, yy)
    return np.asarray(lon), np.asarray(lat)


# --- meteorology -------------------------------------------------------------------------

def _nearest_edges(da: xr.DataArray) -> xr.DataArray:
    """Leading/trailing NaNs along time (axis 0) set to the nearest valid value."""
    a = da.values.reshape(da.shape[0], -1).copy()
    ok = np.isfinite(a)
    idx = np.where(ok, np.arange(a.shape[0])[:, None], 0)
    fwd = np.maximum.accumulate(idx, axis=0)                  # last valid at or before t
    first = np.argmax(ok, axis=0)
    fwd = np.where(np.arange(a.shape[0])[:, None] < first, first, fwd)   # before the first: the first
    out = np.take_along_axis(a, fwd, axis=0)
    return da.copy(data=out.reshape(da.shape))


def _fill_short_gaps(ds: xr.Dataset, max_gap: int, source: str) -> xr.Dataset:
    for v in ("air_temperature", "shortwave_in"):
        da = ds[v]
        if not bool(da.isnull().any()):
            continue
        nan = da.isnull().values.reshape(da.sizes["time"], -1).any(axis=1)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], nan.astype(np.int8), [0]])))
        longest = int((edges[1::2] - edges[::2]).max())
        if longest > max_gap:
            raise DataValidationError(f"a gap of {longest} h (more than {max_gap} h) in the map period.",
                                      source=source, variable=v,
                                      fix="use gap-filled meteorology or raise meteorology.max_gap_hours.")
        ds[v] = _nearest_edges(da.interpolate_na("time"))
    return ds


def _to_hourly(met: xr.Dataset, src: str) -> xr.Dataset:
    """Half-hourly interval-start means -> hourly means (interval start): the mean of the
    two half-hours of each hour (a reshape; xarray's resample is slow on long records)."""
    t = pd.DatetimeIndex(met["time"].values)
    step = t[1] - t[0]
    if step == pd.Timedelta("1h"):
        return met
    if step != pd.Timedelta("30min") or not np.all(np.diff(t.values) == np.timedelta64(30, "m")):
        raise DataValidationError(f"time step {step} (or irregular); hourly or half-hourly expected.",
                                  source=src, variable="time", fix="regularise the tower record first.")
    first = int(t[0].minute != 0)
    n = (len(t) - first) // 2
    sub = met.isel(time=slice(first, first + 2 * n))
    data = {v: (("time",), sub[v].values.reshape(n, 2).mean(axis=1), sub[v].attrs) for v in sub.data_vars}
    return xr.Dataset(data, coords={"time": t[first::2][:n]}, attrs=met.attrs)


def check_meteorology(met: xr.Dataset, hours: pd.DatetimeIndex, *, max_gap_hours: int = 6,
                      source: str = "meteorology") -> xr.Dataset:
    """Units, coverage of the map ``hours``, gaps (linear fill up to ``max_gap_hours``) and
    ranges of ``air_temperature`` (degC) and ``shortwave_in`` (W m-2); returns the record
    on ``hours`` with shortwave clipped at 0."""
    src = source
    units = {"air_temperature": "degC", "shortwave_in": "W m-2"}
    for v, u in units.items():
        if met[v].attrs.get("units") not in (u, None):
            raise DataValidationError(f"units {met[v].attrs.get('units')!r}, expected {u!r}.", source=src,
                                      variable=v, fix="convert (the readers normalise units).")
    t = pd.DatetimeIndex(met["time"].values)
    if t[0] > hours[0] or t[-1] < hours[-1]:
        raise DataValidationError(
            f"the record spans {t[0]} .. {t[-1]}, the map period {hours[0]} .. {hours[-1]}.",
            source=src, variable="time", fix="choose run.start/end inside the meteorology, or other files.")
    met = met.reindex(time=hours)
    met = _fill_short_gaps(met, max_gap_hours, src)
    t_air = met["air_temperature"]
    if float(t_air.max()) > 60 or float(t_air.min()) < -80:
        raise DataValidationError(f"air temperature {float(t_air.min()):.1f} .. {float(t_air.max()):.1f}: "
                                  "not degC.", source=src, variable="air_temperature",
                                  fix="convert K to degC (subtract 273.15).")
    met["shortwave_in"] = met["shortwave_in"].clip(min=0.0)
    for v, u in units.items():
        met[v].attrs["units"] = u
    return met


def read_tower_record(reader_name: str, path) -> xr.Dataset:
    """A tower record through the ``process_models.io`` reader ``reader_name``, with
    ``shortwave_in`` (W m-2) derived from ``ppfd_in`` where only PPFD is given; raises if
    air temperature or shortwave is missing."""
    from process_models.io import reader
    met = reader(reader_name)(path)
    if isinstance(met, dict):
        met = met["tower"]
    if "shortwave_in" not in met and "ppfd_in" in met:
        from process_models.vprm.tables import SW_TO_PAR
        met["shortwave_in"] = (met["ppfd_in"] / SW_TO_PAR).assign_attrs(units="W m-2")
    for v in ("air_temperature", "shortwave_in"):
        if v not in met:
            raise DataValidationError(f"tower record has no {v!r}.", source=str(path), variable=v,
                                      fix="use a reader that gives air_temperature and shortwave_in.")
    return met


def hourly_meteorology(cfg: MapConfig, hours: pd.DatetimeIndex) -> xr.Dataset:
    """``air_temperature`` (degC) and ``shortwave_in`` (W m-2, >= 0) on the map hours:
    (time,) for a tower, (time, lat, lon) for ERA5. Raises if the record does not cover the
    map period or has longer gaps than ``max_gap_hours``."""
    m: MeteorologyConfig = cfg.meteorology
    paths = [cfg.resolve(m.folder, p) for p in m.paths]
    src = str(paths[0])
    if m.kind == "era5":
        from process_models.io import read_era5_single_levels
        met = read_era5_single_levels(paths if len(paths) > 1 else paths[0])
    else:
        met = read_tower_record(m.reader, paths[0])[["air_temperature", "shortwave_in"]]
        met = _to_hourly(met, src)
    met = check_meteorology(met, hours, max_gap_hours=m.max_gap_hours, source=src)
    met.attrs.update(kind=m.kind, source=src)
    return met


def met_at_pixels(met: xr.Dataset, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hours, pixels) temperature (degC) and shortwave (W m-2) for pixels at lon/lat (P,)."""
    if "lat" not in met.dims:
        t = met["air_temperature"].values[:, None]
        s = met["shortwave_in"].values[:, None]
        return np.broadcast_to(t, (t.shape[0], lon.size)), np.broadcast_to(s, (s.shape[0], lon.size))
    from process_models.io.era5 import interpolate_to_grid
    g = interpolate_to_grid(met, lat.reshape(1, -1), lon.reshape(1, -1))
    return (g["air_temperature"].values.reshape(-1, lon.size),
            np.clip(g["shortwave_in"].values.reshape(-1, lon.size), 0.0, None))


# --- land cover --------------------------------------------------------------------------

def _geokeys(tags) -> dict:
    keys = tags.get(34735, ())
    doubles = tags.get(34736, ())
    out = {}
    for k in range(4, len(keys) - 3, 4):
        key, loc, _count, val = keys[k:k + 4]
        out[int(key)] = doubles[val] if loc == 34736 else (val if loc == 0 else None)
    return out


def _geotiff_crs(geo: dict) -> str | None:
    """CRS of the GeoKeys: 'EPSG:<code>' for a registered projected/geographic CRS, a PROJ
    string for a user-defined Lambert azimuthal equal-area (ProjCoordTrans 10, the EEA/HRL
    rasters), else None (GeoTIFF 1.1, OGC 19-008r4, key ids 3072, 2048, 3075, 3082-3089)."""
    for key in (3072, 2048):
        code = geo.get(key)
        if code is not None and code != 32767:
            return f"EPSG:{int(code)}"
    if geo.get(3075) == 10 and all(k in geo for k in (3088, 3089, 3082, 3083)):
        a = geo.get(2057, 6378137.0)
        rf = geo.get(2059, 298.257222101)
        return (f"+proj=laea +lat_0={geo[3089]} +lon_0={geo[3088]} +x_0={geo[3082]} +y_0={geo[3083]} "
                f"+a={a} +rf={rf} +units=m +no_defs")
    return None


def read_geotiff(path: Path):
    """A single-band north-up GeoTIFF -> (values (y, x), x centres, y centres, CRS string or
    None) from its ModelPixelScale, ModelTiepoint and GeoKeyDirectory tags (Pillow reads
    the pixels)."""
    from PIL import Image
    try:
        im = Image.open(path)
        values = np.array(im)
        tags = im.tag_v2
    except (OSError, ValueError) as err:
        raise DataValidationError(f"not a readable GeoTIFF ({err}).", source=str(path),
                                  fix="re-copy the file.") from err
    if 33550 not in tags or 33922 not in tags:
        raise DataValidationError("no georeferencing (ModelPixelScale/ModelTiepoint tags).", source=str(path),
                                  fix="write a GeoTIFF with its grid.")
    sx, sy = tags[33550][:2]
    i, j, _, x0, y0, _ = tags[33922][:6]
    geo = _geokeys(tags)
    off = 0.0 if geo.get(1025) == 2 else 0.5      # RasterPixelIsPoint vs PixelIsArea
    x = x0 + (np.arange(values.shape[1]) - i + off) * sx
    y = y0 - (np.arange(values.shape[0]) - j + off) * sy
    return values, x, y, _geotiff_crs(geo)


def class_fractions(cfg: MapConfig, obs: xr.Dataset, class_ids) -> xr.DataArray:
    """VPRM class fractions (y, x, vprm_class) on the cube grid for the model's classes
    ``class_ids`` (a pixel of a class outside them, e.g. 8 "no flux", has zero fractions)."""
    lc: LandCoverConfig = cfg.land_cover
    ny, nx = obs.sizes["y"], obs.sizes["x"]
    ids = np.asarray(class_ids)
    coords = {"y": obs["y"], "x": obs["x"], "vprm_class": ids}

    def one_hot(cls_map):
        return (cls_map[..., None] == ids).astype(float)

    if lc.kind == "constant":
        frac = one_hot(np.full((ny, nx), lc.vprm_class))
    elif lc.kind == "phenology":
        from process_models.io import phenology_land_cover
        year = cfg.run.statistics_year or pd.Timestamp(cfg.run.start).year
        evi = obs["evi" if "evi" in obs else "evi2"].sel(time=obs["time"].dt.year == year)
        if evi.sizes["time"] == 0:
            raise DataValidationError(f"no acquisition in {year} for the phenology land cover.",
                                      source="land_cover", variable="evi", fix="set run.statistics_year.")
        frac = one_hot(phenology_land_cover(evi).values)
    else:
        path = cfg.resolve(lc.folder, lc.path)
        values, x, y, crs = read_geotiff(path)
        if crs is not None and not _same_crs(crs, obs.attrs["crs"]):
            raise DataValidationError(f"raster CRS {crs!r} differs from the cube's.", source=str(path),
                                      variable="crs", fix="reproject the land cover onto the cube grid.")
        j0, i0 = int(np.argmin(np.abs(x - float(obs["x"][0])))), int(np.argmin(np.abs(y - float(obs["y"][0]))))
        values, x, y = values[i0:i0 + ny, j0:j0 + nx], x[j0:j0 + nx], y[i0:i0 + ny]   # the cube's window
        if values.shape != (ny, nx) or not (np.allclose(x, obs["x"], atol=1.0, rtol=0.0) and np.allclose(y, obs["y"], atol=1.0, rtol=0.0)):
            raise DataValidationError(f"raster grid {values.shape} does not match the cube grid {(ny, nx)}.",
                                      source=str(path), variable="x",
                                      fix="resample the land cover onto the cube's pixel centres.")
        if lc.kind == "tree_cover_density":
            if np.any(values > 100):
                raise DataValidationError(f"{int((values > 100).sum())} nodata (255) or out-of-range pixels.",
                                          source=str(path), variable="tree_cover_density",
                                          fix="fill the raster (percent 0-100) over the map domain.")
            f_forest = values.astype(float) / 100.0
            frac = f_forest[..., None] * (ids == lc.forest_class) + (1 - f_forest)[..., None] * (ids == lc.open_class)
        else:
            from process_models.vprm.tables import copernicus_lc100_to_vprm
            table = copernicus_lc100_to_vprm()
            unknown = sorted(set(np.unique(values).tolist()) - set(table))
            if unknown:
                raise DataValidationError(f"codes {unknown} are not LC100 discrete classes.", source=str(path),
                                          variable="land_cover", fix="use the LC100 discrete classification map.")
            frac = one_hot(np.vectorize(table.get)(values))
    return xr.DataArray(frac, dims=("y", "x", "vprm_class"), coords=coords,
                        attrs={"units": "1", "long_name": "VPRM land-cover class fraction",
                               "land_cover": lc.kind})

