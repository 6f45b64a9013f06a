"""Readers for the NO2 / NOx data shipped in the ``ddeq`` wheel (PyPI ``ddeq==1.1``).

The files are read in place from the installed package (located with
``importlib.util.find_spec("ddeq")``; ``ddeq`` is never imported, so its heavy
dependencies are not needed). Provenance, licences, citations and the traps of each file
are in ``process_models/transport/PROVENANCE.md``.

=================================== ============================================ ==========
reader                              file(s)                                      units out
=================================== ============================================ ==========
read_tropomi_no2_l2                 Matimba_S5P_RPRO_L2__NO2____20210725T110715  mol m-2
read_era5_boundary_layer_winds      Matimba_ERA5-pl / -sl-20210725               m s-1, m
read_smartcarb_fields               cosmo_2d_2015042311 (COSMO-GHG columns)      mol m-2
read_smartcarb_winds                SMARTCARB_winds_2015042311                   m s-1
read_smartcarb_true_emissions       SMARTCARB-NO2-emissions.csv (hourly, 16 src) kg s-1
read_smartcarb_sources              sources-smartcarb.csv                        deg, kg s-1
read_point_source_catalogue         coco2_ps_catalogue_v1.1.csv (CoCO2, 2018)    kg s-1
=================================== ============================================ ==========

Traps handled here: COSMO files carry the fill value 9.969e36 as their ``time`` (opened
with ``decode_times=False``; the time comes from the file name); the SMARTCARB swath
files hold unflagged 9.97e36 fill values (replaced by NaN by :func:`unflag_fill`); NOx
emissions of SMARTCARB and CoCO2 are NOx as NO2 mass.
"""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..units import DataValidationError

__all__ = ["ddeq_data_dir", "ddeq_file", "read_tropomi_no2_l2", "read_era5_boundary_layer_winds",
           "read_smartcarb_fields", "read_smartcarb_winds", "read_smartcarb_true_emissions",
           "read_smartcarb_sources", "read_point_source_catalogue", "unflag_fill",
           "AVOGADRO", "SECONDS_PER_YEAR", "FILL_THRESHOLD"]

AVOGADRO = 6.02214076e23
"""Units: mol-1."""
SECONDS_PER_YEAR = 365.25 * 86400.0
"""Julian year (ddeq/ucat convention for ``Mt/yr``). Units: s."""
FILL_THRESHOLD = 1e36
"""Values above this are netCDF default fill values (9.969e36) left unflagged."""
MATIMBA_L2 = "Matimba_S5P_RPRO_L2__NO2____20210725T110715.nc"


def ddeq_data_dir() -> Path:
    """The ``data`` folder of the installed ``ddeq`` wheel (without importing ddeq)."""
    spec = importlib.util.find_spec("ddeq")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the ddeq package is not installed; install its data with "
                                "`.venv/bin/pip install --no-deps ddeq==1.1`.")
    d = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not d.is_dir():
        raise FileNotFoundError(f"{d} does not exist: the ddeq wheel is incomplete; reinstall "
                                "with `.venv/bin/pip install --force-reinstall --no-deps ddeq==1.1`.")
    return d


def ddeq_file(name: str) -> Path:
    p = ddeq_data_dir() / name
    if not p.exists():
        raise FileNotFoundError(f"{p} is not in the ddeq wheel; ddeq==1.1 ships it "
                                "(check the installed version).")
    return p


def unflag_fill(da: xr.DataArray) -> xr.DataArray:
    """Replace unflagged netCDF fill values (|x| > 1e36, e.g. 9.97e36) by NaN."""
    return da.where(~(np.abs(da) > FILL_THRESHOLD))


def _require(ds, names, src, fix):
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise DataValidationError(f"missing variables {missing}", source=src, fix=fix)


# ------------------------------------------------------------------ TROPOMI L2
def read_tropomi_no2_l2(path: str | os.PathLike | None = None, *, cloud_threshold: float = 0.3) -> xr.Dataset:
    """TROPOMI (S5P) tropospheric NO2 L2 crop as shipped by ddeq (Matimba, 2021-07-25).

    Returns dims ``(nrows, nobs[, corner, layer])`` with ``no2`` and ``no2_std`` (mol m-2),
    ``cloud_fraction`` (1), ``amf_troposphere`` (1), ``averaging_kernel`` (1, per TM5 layer),
    ``lat``, ``lon``, ``lat_corners``, ``lon_corners`` (degrees), ``psurf`` (Pa),
    ``valid`` (1 where the pixel passed the product's qa_value > 0.75 filter, applied by
    ddeq as NaN, and the cloud fraction is <= ``cloud_threshold``).
    """
    p = Path(path) if path is not None else ddeq_file(MATIMBA_L2)
    src = str(p)
    ds = xr.open_dataset(p)
    _require(ds, ["NO2", "NO2_std", "clouds", "air_mass_factor_troposphere", "averaging_kernel",
                  "lat", "lon", "latc", "lonc"], src, "use a ddeq-format S5P NO2 crop.")
    if ds["NO2"].attrs.get("units") != "mol m-2":
        raise DataValidationError(f"NO2 units {ds['NO2'].attrs.get('units')!r}, expected 'mol m-2'",
                                  source=src, variable="NO2", fix="convert to mol m-2 first.")
    no2 = ds["NO2"].astype(np.float64)
    std = ds["NO2_std"].astype(np.float64)
    ok = np.isfinite(no2)
    if bool((ok & ~(std > 0)).any()):
        raise DataValidationError("NO2_std is not positive where NO2 is valid", source=src,
                                  variable="NO2_std", fix="mask those pixels before use.")
    clouds = ds["clouds"].astype(np.float64)
    valid = ok & (clouds <= cloud_threshold)
    out = xr.Dataset(
        {"no2": no2.assign_attrs(units="mol m-2", long_name="tropospheric NO2 vertical column"),
         "no2_std": std.assign_attrs(units="mol m-2", long_name="precision of no2"),
         "cloud_fraction": clouds.assign_attrs(units="1"),
         "amf_troposphere": ds["air_mass_factor_troposphere"].astype(np.float64).assign_attrs(units="1"),
         "averaging_kernel": ds["averaging_kernel"].astype(np.float64).assign_attrs(units="1"),
         "psurf": ds["psurf"].astype(np.float64).assign_attrs(units="Pa"),
         "lat_corners": ds["latc"].astype(np.float64).assign_attrs(units="degrees_north"),
         "lon_corners": ds["lonc"].astype(np.float64).assign_attrs(units="degrees_east"),
         "valid": valid.astype(np.float64).assign_attrs(units="1"),
         },
        coords={"lat": ds["lat"].astype(np.float64).assign_attrs(units="degrees_north"),
                "lon": ds["lon"].astype(np.float64).assign_attrs(units="degrees_east")},
        attrs={"source": ds.attrs.get("source", ""), "file": p.name,
               "time": str(np.datetime_as_string(ds["time"].values, unit="s")),
               "orbit": int(ds["orbit"].values), "cloud_threshold": cloud_threshold,
               "qa_filter": ds.attrs.get("QA value filter", "")})
    ds.close()
    return out


# ------------------------------------------------------------------ ERA5
def read_era5_boundary_layer_winds(time, pressure_levels: str | os.PathLike | None = None,
                                   single_levels: str | os.PathLike | None = None) -> xr.Dataset:
    """ERA5 winds averaged over the boundary layer at ``time`` (linear in time).

    The boundary-layer mean wind is the pressure-weighted mean of the pressure-level winds
    between the surface pressure ``sp`` and the pressure at the boundary-layer top,
    ``p_top = sp exp(-g h / (R_d T_2m))`` (hypsometric equation, h = ``blh``), as in the
    effective-wind choice of Beirle et al. (2019). Returns ``u_bl``, ``v_bl``, ``u100``,
    ``v100`` (m s-1), ``blh`` (m), ``sp`` (Pa) on ``(latitude, longitude)``.
    """
    pl = xr.open_dataset(pressure_levels or ddeq_file("Matimba_ERA5-pl-20210725.nc"))
    sl = xr.open_dataset(single_levels or ddeq_file("Matimba_ERA5-sl-20210725.nc"))
    src = f"{pressure_levels or 'Matimba_ERA5-pl'} / {single_levels or 'Matimba_ERA5-sl'}"
    _require(pl, ["u", "v", "pressure_level"], src, "use ERA5 pressure-level u, v.")
    _require(sl, ["blh", "sp", "t2m", "u100", "v100"], src, "use ERA5 single-level blh, sp, t2m, u100, v100.")
    t = np.datetime64(pd.Timestamp(time).tz_localize(None) if pd.Timestamp(time).tzinfo else pd.Timestamp(time))
    tmin, tmax = pl["valid_time"].values.min(), pl["valid_time"].values.max()
    if not (tmin <= t <= tmax):
        raise DataValidationError(f"time {t} outside the ERA5 records [{tmin}, {tmax}]", source=src,
                                  fix="pick a time inside the file's day.")
    pl = pl.interp(valid_time=t)
    sl = sl.interp(valid_time=t)
    g, rd = 9.80665, 287.05
    p_top = sl["sp"] * np.exp(-g * sl["blh"] / (rd * sl["t2m"]))
    lev = pl["pressure_level"] * 100.0                       # hPa -> Pa
    inside = (lev <= sl["sp"]) & (lev >= p_top)
    # at least the level nearest the surface counts (thin boundary layers)
    nearest = np.abs(lev - sl["sp"]) == np.abs(lev - sl["sp"]).min("pressure_level")
    w = (inside | nearest).astype(np.float64)
    u_bl = (pl["u"] * w).sum("pressure_level") / w.sum("pressure_level")
    v_bl = (pl["v"] * w).sum("pressure_level") / w.sum("pressure_level")
    out = xr.Dataset({
        "u_bl": u_bl.astype(np.float64).assign_attrs(units="m s-1", long_name="boundary-layer mean eastward wind"),
        "v_bl": v_bl.astype(np.float64).assign_attrs(units="m s-1", long_name="boundary-layer mean northward wind"),
        "u100": sl["u100"].astype(np.float64).assign_attrs(units="m s-1"),
        "v100": sl["v100"].astype(np.float64).assign_attrs(units="m s-1"),
        "blh": sl["blh"].astype(np.float64).assign_attrs(units="m"),
        "sp": sl["sp"].astype(np.float64).assign_attrs(units="Pa")},
        attrs={"time": str(t), "source": "ERA5 (Copernicus C3S) via ddeq"})
    out = out.drop_vars([c for c in out.coords if c not in ("latitude", "longitude")])
    return out


# ------------------------------------------------------------------ SMARTCARB
_COSMO_NAME = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})")


def _time_from_name(p: Path, src: str) -> pd.Timestamp:
    m = _COSMO_NAME.search(p.name)
    if m is None:
        raise DataValidationError("no YYYYMMDDHH in the file name; the COSMO time variable is a fill "
                                  "value (9.969e36)", source=src, variable="time",
                                  fix="keep SMARTCARB's file names (cosmo_2d_YYYYMMDDHH.nc).")
    return pd.Timestamp(*map(int, m.groups()))


def read_smartcarb_fields(path: str | os.PathLike | None = None,
                          tracers=("NO2_BV", "NO2_JV", "NO2_TOT")) -> xr.Dataset:
    """SMARTCARB COSMO-GHG vertical columns (1.1 km rotated grid, 600 x 700).

    ``NO2_*`` tracers (molecules cm-2) are returned in mol m-2; ``lon``/``lat`` (degrees),
    ``CLCT`` (1). Opened with ``decode_times=False`` (the time variable holds the fill
    value 9.969e36); the time is taken from the file name. Values > 1e36 become NaN.
    """
    p = Path(path) if path is not None else ddeq_file("cosmo_2d_2015042311.nc")
    src = str(p)
    ds = xr.open_dataset(p, decode_times=False)
    _require(ds, list(tracers) + ["lon", "lat"], src, "pick tracers of the COSMO 2-D file.")
    time = _time_from_name(p, src)
    data = {}
    for name in tracers:
        da = unflag_fill(ds[name].isel(time=0).astype(np.float64))
        unit = ds[name].attrs.get("units")
        if unit == "molecules cm-2":
            da = da * 1e4 / AVOGADRO
            unit = "mol m-2"
        data[name] = da.assign_attrs(units=unit, long_name=ds[name].attrs.get("long_name", ""))
    if "CLCT" in ds:
        data["CLCT"] = unflag_fill(ds["CLCT"].isel(time=0).astype(np.float64)).assign_attrs(units="1")
    out = xr.Dataset(data, coords={"lon": ds["lon"].astype(np.float64).assign_attrs(units="degrees_east"),
                                   "lat": ds["lat"].astype(np.float64).assign_attrs(units="degrees_north"),
                                   "rlon": ds["rlon"], "rlat": ds["rlat"]},
                     attrs={"time": str(time), "file": p.name, "grid_spacing_deg": 0.01})
    ds.close()
    return out


def read_smartcarb_winds(path: str | os.PathLike | None = None) -> xr.Dataset:
    """SMARTCARB COSMO winds weighted with the GNFR-A (power plant) emission profile:
    ``u``, ``v`` (m s-1) on the same rotated grid as :func:`read_smartcarb_fields`."""
    p = Path(path) if path is not None else ddeq_file("SMARTCARB_winds_2015042311.nc")
    src = str(p)
    ds = xr.open_dataset(p, decode_times=False)
    _require(ds, ["U_GNFR_A", "V_GNFR_A"], src, "use SMARTCARB_winds_YYYYMMDDHH.nc.")
    u = unflag_fill(ds["U_GNFR_A"].isel(time=0).astype(np.float64))
    v = unflag_fill(ds["V_GNFR_A"].isel(time=0).astype(np.float64))
    if bool(np.isnan(u).any() | np.isnan(v).any()):
        raise DataValidationError("winds contain fill values", source=src, variable="U_GNFR_A",
                                  fix="crop to a region without gaps.")
    out = xr.Dataset({"u": u.assign_attrs(units="m s-1"), "v": v.assign_attrs(units="m s-1")},
                     coords={"lon": ds["lon"].astype(np.float64), "lat": ds["lat"].astype(np.float64),
                             "rlon": ds["rlon"], "rlat": ds["rlat"]},
                     attrs={"time": str(_time_from_name(p, src)), "file": p.name})
    ds.close()
    return out


def read_smartcarb_true_emissions(source: str, time=None, gas: str = "NOx",
                                  path: str | os.PathLike | None = None) -> xr.DataArray:
    """Hourly true emissions of a SMARTCARB source (kg s-1; NOx as NO2 mass), linearly
    interpolated to ``time`` when given. ``gas``: ``"NOx"`` or ``"CO2"``."""
    if gas not in ("NOx", "CO2"):
        raise ValueError(f"gas={gas!r}; use 'NOx' or 'CO2'.")
    p = Path(path) if path is not None else ddeq_file(f"SMARTCARB-{'NO2' if gas == 'NOx' else 'CO2'}-emissions.csv")
    table = pd.read_csv(p, sep="\t", index_col=0, parse_dates=True)
    col = f"{source} (Mt/yr)"
    if col not in table.columns:
        names = [c.replace(" (Mt/yr)", "") for c in table.columns]
        raise DataValidationError(f"no source {source!r}", source=str(p), fix=f"use one of {names}.")
    em = xr.DataArray(table[col].to_numpy(np.float64) * 1e9 / SECONDS_PER_YEAR, dims="time",
                      coords={"time": table.index.values}, name=f"true_{gas}_emissions",
                      attrs={"units": "kg s-1", "source": source})
    if time is not None:
        em = em.interp(time=np.datetime64(pd.Timestamp(time)))
    return em


def read_smartcarb_sources(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Cities and power plants of the SMARTCARB domain: ``longitude``, ``latitude`` (deg),
    ``radius`` (m), annual ``nox_emission`` (kg s-1, NOx as NO2) and its std."""
    p = Path(path) if path is not None else ddeq_file("sources-smartcarb.csv")
    t = pd.read_csv(p, comment="#")
    t = t.set_index("source")
    t["radius"] = 0.5 * t["diameter"]
    t["nox_emission"] = t["annual_nox_emissions_in_ktNO2"] * 1e6 / SECONDS_PER_YEAR
    return t


def read_point_source_catalogue(lon: float, lat: float, radius_km: float = 10.0,
                                path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Power-plant units of the CoCO2 point-source database v1.1 (Guevara et al. 2023,
    year 2018) within ``radius_km`` of ``(lon, lat)``: ``nox_emission`` and
    ``co2_emission`` in kg s-1 (catalogue: t yr-1, NOx as NO2)."""
    p = Path(path) if path is not None else ddeq_file("coco2_ps_database/coco2_ps_catalogue_v1.1.csv")
    t = pd.read_csv(p)
    for c in ("longitude", "latitude", "nox_emis_ty", "co2_emis_ty"):
        if c not in t.columns:
            raise DataValidationError(f"missing column {c!r}", source=str(p), fix="use the CoCO2 v1.1 CSV.")
    dx = (t["longitude"] - lon) * 111.32 * np.cos(np.deg2rad(lat))
    dy = (t["latitude"] - lat) * 110.57
    t = t[np.hypot(dx, dy) <= radius_km].copy()
    t["nox_emission"] = t["nox_emis_ty"] * 1e3 / SECONDS_PER_YEAR
    t["co2_emission"] = t["co2_emis_ty"] * 1e3 / SECONDS_PER_YEAR
    t.attrs["units"] = "kg s-1"
    return t
