"""Readers for MODIS time series extracted at flux-tower sites (point/pixel subsets).

* :func:`read_modis_sites_mod13a1` -- MOD13A1 (C6, 500 m, 16-day) EVI/NDVI, red/NIR/
  blue/SWIR2 reflectances, SummaryQA/DetailedQA and view/sun angles at flux sites, as
  exported from Google Earth Engine by phenofit (``MOD13A1_10sites_2000-2018.csv`` +
  ``MOD13A1_stations.csv``; Kong et al. 2022).
* :func:`read_modis_lai_fapar_ornl` -- MCD15A2H (8-day, 500 m) LAI/FPAR in the ORNL
  DAAC / MODISTools "long format" (one row per band x date x pixel, e.g. the 5 x 5 pixel
  block at AT-Neu shipped by FluxDataKit).

Time convention: ``time`` is the **first day** of the compositing window (00:00 UTC);
the window is ``[time, time + 16 d)`` (MOD13A1) or ``[time, time + 8 d)`` (MCD15A2H);
``utc_offset_hours = 0``.

Quality masks (``valid``, boolean)
---------------------------------
MOD13A1 (Didan et al. 2015, MOD13 C6 user guide, table 5): ``valid`` = SummaryQA in
{0 good, 1 marginal} and DetailedQA bits 0-1 (VI quality) in {00 produced good,
01 produced, check other QA} and bit 14 (possible snow/ice) = 0 and bit 15 (possible
shadow) = 0 and bit 10 (mixed clouds) = 0 and EVI finite.

MCD15A2H (Myneni et al. 2015, MOD15 C6 user guide, FparLai_QC): ``valid`` = value
not a fill code (248-255) and bit 0 (MODLAND) = 0 (good) and bits 5-7 (SCF_QC) in
{0 main RT method, 1 main RT with saturation} and bits 3-4 (cloud state) in {00 clear,
11 not set / assumed clear}.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..units import DataValidationError, check_range, check_time_axis
from ._common import data_path
from ._tower import numeric_column, read_table_text

__all__ = ["read_modis_sites_mod13a1", "read_modis_lai_fapar_ornl",
           "MOD13A1_FOLDER", "MCD15A2H_ORNL_FOLDER"]

MOD13A1_FOLDER = "modis-mod13a1_10-fluxsites_phenofit"
MOD13A1_FILE = "MOD13A1_10sites_2000-2018.csv"
MOD13A1_STATIONS = "MOD13A1_stations.csv"
MCD15A2H_ORNL_FOLDER = "at-neu_modis-mcd15a2h_fluxdatakit"
MCD15A2H_ORNL_FILE = "AT-Neu_MCD15A2H_5x5px_2002-2022.csv.gz"

_MOD13_CITATION = (
    "Didan, K. (2015) MOD13A1 MODIS/Terra Vegetation Indices 16-Day L3 Global 500m SIN Grid "
    "V006, NASA EOSDIS LP DAAC, doi:10.5067/MODIS/MOD13A1.006. Extracted with Google Earth "
    "Engine by phenofit: Kong, D. et al. (2022) Methods Ecol. Evol. 13, 1508-1527.")
_MCD15_CITATION = (
    "Myneni, R., Knyazikhin, Y. & Park, T. MCD15A2H MODIS/Terra+Aqua LAI/FPAR 8-day L4 Global "
    "500 m SIN Grid, NASA EOSDIS LP DAAC, doi:10.5067/MODIS/MCD15A2H.006 (or .061; the "
    "collection is not stated in the file). Subset by the ORNL DAAC MODIS web service "
    "(doi:10.3334/ORNLDAAC/1379); FluxDataKit (Hufkens & Stocker, doi:10.5281/zenodo.14808331).")

#: MOD13A1 column -> (output name, scale, canonical-like name or unit, long name)
_MOD13_VARS: dict[str, tuple[str, float, str, str]] = {
    "EVI": ("evi", 1e-4, "evi", "enhanced vegetation index (MOD13A1 EVI x 1e-4)"),
    "NDVI": ("ndvi", 1e-4, "ndvi", "normalised difference vegetation index (MOD13A1 NDVI x 1e-4)"),
    "sur_refl_b01": ("red", 1e-4, "reflectance", "surface reflectance band 1, red 620-670 nm"),
    "sur_refl_b02": ("nir", 1e-4, "reflectance", "surface reflectance band 2, NIR 841-876 nm"),
    "sur_refl_b03": ("blue", 1e-4, "reflectance", "surface reflectance band 3, blue 459-479 nm"),
    "sur_refl_b07": ("swir21", 1e-4, "reflectance",
                     "surface reflectance band 7, SWIR 2105-2155 nm"),
}
_MOD13_ANGLES = {"ViewZenith": "view_zenith", "SolarZenith": "solar_zenith",
                 "RelativeAzimuth": "relative_azimuth"}
#: MOD13 product fill values (raw): VI -3000, reflectance -1000, angles -10000.
_MOD13_FILL = {"EVI": -3000, "NDVI": -3000, "sur_refl_b01": -1000, "sur_refl_b02": -1000,
               "sur_refl_b03": -1000, "sur_refl_b07": -1000, "ViewZenith": -10000,
               "SolarZenith": -10000, "RelativeAzimuth": -4000}
_MOD13_REQUIRED = ("site", "date", "EVI", "NDVI", "SummaryQA", "DetailedQA")

_DETAILED_QA_DESC = (
    "MOD13 16-bit VI quality: bits 0-1 VI quality (00 good, 01 produced check other QA, "
    "10 probably cloudy, 11 not produced); 2-5 VI usefulness (0000 highest ... 1111 not "
    "useful); 6-7 aerosol quantity; 8 adjacent cloud; 9 atmosphere BRDF correction; 10 mixed "
    "clouds; 11-13 land/water; 14 possible snow/ice; 15 possible shadow. NaN = missing.")


def _bits(x: np.ndarray, start: int, width: int) -> np.ndarray:
    """Integer bit field ``[start, start + width)`` of a float array holding integer codes
    (NaN -> -1)."""
    fin = np.isfinite(x)
    xi = np.where(fin, x, 0).astype(np.int64)
    return np.where(fin, (xi >> start) & ((1 << width) - 1), -1)


def _resolve(path, folder: str, file: str) -> Path:
    if path is None:
        return data_path(folder, file)
    p = Path(path)
    return p / file if p.is_dir() else p


def _read_stations(path: Path) -> pd.DataFrame:
    src = str(path)
    df, _ = read_table_text(path, sep=",", header_rows=1, required=("site", "lat", "lon"))
    for c in ("lat", "lon"):
        v = numeric_column(df, c, source=src)
        lim = 90 if c == "lat" else 180
        if not np.all(np.isfinite(v)) or np.any(np.abs(v) > lim):
            raise DataValidationError(f"{c} must be finite degrees within +-{lim}.",
                                      source=src, variable=c, fix="fix the station table.")
        df[c] = v
    return df.set_index("site")


def read_modis_sites_mod13a1(path: str | os.PathLike | None = None, site: str | list | None = None,
                             *, stations: str | os.PathLike | None = None) -> xr.Dataset:
    """Read MOD13A1 16-day vegetation-index time series at flux-tower sites.

    Parameters
    ----------
    path : the ``MOD13A1_10sites_2000-2018.csv`` file or its folder (default: the shipped
        ``modis-mod13a1_10-fluxsites_phenofit`` copy).
    site : one site id (``"AT-Neu"``) -> dims ``(time,)``; a list or ``None`` (all sites)
        -> dims ``(site, time)``.
    stations : the station table (``site, lat, lon, IGBPname``); default
        ``MOD13A1_stations.csv`` beside ``path`` (optional: without it lat/lon are NaN).

    Returns
    -------
    Dataset with ``evi``, ``ndvi`` (1), ``red``, ``nir``, ``blue``, ``swir21`` surface
    reflectances (1; raw x 1e-4; band 6 is not in this product extract, so the VPRM LSWI
    needs the SWIR2 variant), ``summary_qa`` (0 good, 1 marginal, 2 snow/ice, 3 cloudy),
    ``detailed_qa`` (raw 16-bit field), ``vi_quality`` (bits 0-1), ``snow_ice``
    (bit 14), ``valid`` (bool, rule in the module docstring), ``obs_time`` (acquisition
    day from ``DayOfYear``), ``view_zenith``/``solar_zenith``/``relative_azimuth``
    (degree, raw x 0.01). Coordinates ``latitude``, ``longitude``, ``igbp`` per site.
    Missing composites (empty cells, and the product fill codes -3000/-1000) are NaN and
    ``valid`` is False there.

    Raises
    ------
    DataValidationError : truncated/corrupt file, missing column, non-numeric cells,
        duplicated (site, date) rows, unknown site, implausible scaled values (e.g. an
        already-scaled file scaled again), QA codes outside their ranges.
    """
    p = _resolve(path, MOD13A1_FOLDER, MOD13A1_FILE)
    src = str(p)
    df, (names,) = read_table_text(p, sep=",", header_rows=1, required=_MOD13_REQUIRED)
    dates = pd.to_datetime(df["date"], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        i = int(np.argmax(dates.isna().to_numpy()))
        raise DataValidationError(f"date {df['date'].iloc[i]!r} in data row {i + 1} is not "
                                  "YYYY-MM-DD.", source=src, variable="date",
                                  fix="every composite needs its start date.")
    df["date"] = dates
    if df.duplicated(["site", "date"]).any():
        i = int(np.argmax(df.duplicated(["site", "date"]).to_numpy()))
        raise DataValidationError(
            f"duplicated composite {df['site'].iloc[i]} {df['date'].iloc[i].date()} "
            f"(data row {i + 1}).", source=src, variable="date",
            fix="drop the duplicated rows before reading.")
    all_sites = list(dict.fromkeys(df["site"].astype(str)))
    if site is None:
        sites, squeeze = all_sites, False
    elif isinstance(site, str):
        sites, squeeze = [site], True
    else:
        sites, squeeze = list(site), False
    unknown = [s for s in sites if s not in all_sites]
    if unknown:
        raise DataValidationError(f"site(s) {unknown} not in the file (it has {all_sites}).",
                                  source=src, variable="site", fix="pick one of those sites.")
    df = df[df["site"].isin(sites)]
    times = np.array(sorted(df["date"].unique()), dtype="datetime64[ns]")
    check_time_axis(times, source=src)
    # (site, time) grid; a composite absent for one site is NaN there.
    grid = pd.MultiIndex.from_product([sites, pd.DatetimeIndex(times)], names=["site", "date"])
    df = df.set_index(["site", "date"]).reindex(grid)
    shape = (len(sites), len(times))

    def col(c):
        v = numeric_column(df, c, source=src)
        if c in _MOD13_FILL:
            v[v == _MOD13_FILL[c]] = np.nan
        return v.reshape(shape)

    dims = ("site", "time")
    data = {}
    for c, (name, scale, like, long_name) in _MOD13_VARS.items():
        if c not in names:
            continue
        v = col(c) * scale
        check_range(v, like, source=src, column=c)
        data[name] = (dims, v, {"units": "1", "long_name": long_name, "source_name": c,
                                "scale_factor_applied": scale})
    for c, name in _MOD13_ANGLES.items():
        if c in names:
            v = col(c) * 0.01
            if np.nanmax(np.abs(v), initial=0) > 360:
                raise DataValidationError("angles beyond 360 degree after the 0.01 scale.",
                                          source=src, variable=c,
                                          fix="check the column; it may already be scaled.")
            data[name] = (dims, v, {"units": "degree", "long_name": c, "source_name": c,
                                    "scale_factor_applied": 0.01})
    sq = col("SummaryQA")
    fin = sq[np.isfinite(sq)]
    if np.any((fin < 0) | (fin > 3) | (fin != np.round(fin))):
        raise DataValidationError("SummaryQA holds values other than 0, 1, 2, 3.", source=src,
                                  variable="SummaryQA", fix="check the column; the file may "
                                  "be corrupt or the columns shifted.")
    dq = col("DetailedQA")
    fin = dq[np.isfinite(dq)]
    if np.any((fin < 0) | (fin > 65535) | (fin != np.round(fin))):
        raise DataValidationError("DetailedQA holds values outside the 16-bit range.",
                                  source=src, variable="DetailedQA",
                                  fix="check the column; the file may be corrupt.")
    vi_q = _bits(dq, 0, 2)
    snow = _bits(dq, 14, 1)
    shadow = _bits(dq, 15, 1)
    mixed = _bits(dq, 10, 1)
    valid = ((sq == 0) | (sq == 1)) & ((vi_q == 0) | (vi_q == 1)) & (snow == 0) \
        & (shadow == 0) & (mixed == 0) & np.isfinite(data["evi"][1])
    data["summary_qa"] = (dims, sq, {"units": "1", "long_name": "MOD13 SummaryQA: 0 good, "
                                     "1 marginal, 2 snow/ice, 3 cloudy", "source_name": "SummaryQA"})
    data["detailed_qa"] = (dims, dq, {"units": "1", "long_name": _DETAILED_QA_DESC,
                                      "source_name": "DetailedQA"})
    data["vi_quality"] = (dims, vi_q, {"units": "1", "long_name": "DetailedQA bits 0-1 "
                                       "(0 good, 1 check other QA, 2 probably cloudy, "
                                       "3 not produced; -1 missing)"})
    data["snow_ice"] = (dims, snow == 1, {"long_name": "DetailedQA bit 14, possible snow/ice"})
    data["valid"] = (dims, valid, {"long_name": "usable composite: SummaryQA<=1, VI quality<=1, "
                                   "no snow/ice, no shadow, no mixed clouds, EVI finite"})
    if "DayOfYear" in names:
        doy = col("DayOfYear")
        t = pd.DatetimeIndex(times)
        year = np.broadcast_to(t.year.to_numpy(), shape)
        # the acquisition day can fall in the next calendar year for late composites
        start_doy = np.broadcast_to(t.day_of_year.to_numpy(), shape)
        year = np.where(np.isfinite(doy) & (doy < start_doy - 20), year + 1, year)
        base = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
        obs = np.where(np.isfinite(doy),
                       base + np.where(np.isfinite(doy), doy - 1, 0).astype("timedelta64[D]"),
                       np.datetime64("NaT"))
        data["obs_time"] = (dims, obs.astype("datetime64[ns]"),
                            {"long_name": "acquisition day of the selected observation "
                             "(from DayOfYear)", "source_name": "DayOfYear"})

    st_path = Path(stations) if stations is not None else p.parent / MOD13A1_STATIONS
    lat = np.full(len(sites), np.nan)
    lon = np.full(len(sites), np.nan)
    igbp = np.array([""] * len(sites), dtype=object)
    if st_path.exists():
        st = _read_stations(st_path)
        for k, s in enumerate(sites):
            if s in st.index:
                lat[k], lon[k] = st.loc[s, "lat"], st.loc[s, "lon"]
                igbp[k] = str(st.loc[s, "IGBPname"]) if "IGBPname" in st.columns else ""
    elif stations is not None:
        raise FileNotFoundError(f"{st_path}: no such station table.")
    coords = {
        "site": ("site", np.array(sites, dtype=object)),
        "time": ("time", times, {"long_name": "first day of the 16-day composite (00:00 UTC)",
                                 "standard_name": "time"}),
        "latitude": ("site", lat, {"units": "degree_north"}),
        "longitude": ("site", lon, {"units": "degree_east"}),
        "igbp": ("site", igbp.astype(str), {"long_name": "IGBP land-cover class"}),
    }
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({
        "product": "MOD13A1 C6 (500 m, 16-day)", "source_file": p.name, "source_path": src,
        "format": "phenofit MOD13A1 site CSV (Google Earth Engine export)",
        "time_convention": "interval start: first day of the 16-day composite window",
        "utc_offset_hours": 0.0, "time_step_seconds": 16 * 86400.0,
        "citation": _MOD13_CITATION, "licence": "NASA open data; phenofit package GPL-2",
        "qa_rule": "valid = SummaryQA in {0,1} & DetailedQA bits0-1 in {0,1} & bit14 == 0 & "
                   "bit15 == 0 & bit10 == 0 & EVI finite",
    })
    if squeeze:
        ds = ds.isel(site=0)
        ds.attrs["site_id"] = sites[0]
    return ds


# ----------------------------------------------------------------------------- ORNL LAI

_ORNL_REQUIRED = ("band", "calendar_date", "pixel", "value")
_ORNL_BANDS = {
    "Lai_500m": ("lai", 0.1, "m2 m-2", "leaf area index (MCD15A2H Lai_500m x 0.1)"),
    "Fpar_500m": ("fapar", 0.01, "1", "fraction of absorbed PAR (MCD15A2H Fpar_500m x 0.01)"),
    "LaiStdDev_500m": ("lai_std", 0.1, "m2 m-2", "LAI standard deviation (x 0.1)"),
    "FparStdDev_500m": ("fapar_std", 0.01, "1", "FPAR standard deviation (x 0.01)"),
}
_QC_DESC = ("MCD15A2H FparLai_QC: bit 0 MODLAND (0 good, 1 other), bit 1 sensor (0 Terra, "
            "1 Aqua), bit 2 dead detector, bits 3-4 cloud state (00 clear, 01 significant "
            "clouds, 10 mixed, 11 not set/assumed clear), bits 5-7 SCF_QC (0 main RT, 1 main "
            "RT with saturation, 2 back-up (geometry), 3 back-up (other), 4 fill).")


def read_modis_lai_fapar_ornl(path: str | os.PathLike | None = None, pixel: str | int = "centre"
                              ) -> xr.Dataset:
    """Read MCD15A2H LAI/FPAR from an ORNL DAAC / MODISTools long-format subset.

    Parameters
    ----------
    path : the ``*.csv`` or ``*.csv.gz`` file or its folder (default: the shipped AT-Neu
        5 x 5 pixel subset, 2002-07 -> 2022-03).
    pixel : ``"centre"`` (the middle pixel of the ``nrows x ncols`` block, number
        ``(n*n + 1) / 2`` in MODISTools' row-major numbering from the upper-left),
        ``"all"`` (dims ``(time, pixel)`` with ``row``/``col``/``x``/``y`` coordinates),
        or a pixel number (1-based).

    Returns
    -------
    Dataset on ``time`` (first day of the 8-day composite, UTC) with ``lai`` (m2 m-2),
    ``fapar`` (1), ``lai_std``, ``fapar_std``, ``qc`` (raw FparLai_QC), ``scf_qc``,
    ``cloud_state`` and ``valid`` (bool; rule in the module docstring). Fill codes
    248-255 of the value bands are NaN.

    Raises
    ------
    DataValidationError : truncated/corrupt file, missing columns, non-numeric values,
        duplicated (band, date, pixel) rows, a band missing, values outside 0-255, a pixel
        number outside the block, pixel sets that differ between dates.
    """
    p = _resolve(path, MCD15A2H_ORNL_FOLDER, MCD15A2H_ORNL_FILE)
    src = str(p)
    df, (names,) = read_table_text(p, sep=",", header_rows=1, required=_ORNL_REQUIRED)
    dates = pd.to_datetime(df["calendar_date"], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        i = int(np.argmax(dates.isna().to_numpy()))
        raise DataValidationError(f"calendar_date {df['calendar_date'].iloc[i]!r} in data row "
                                  f"{i + 1} is not YYYY-MM-DD.", source=src,
                                  variable="calendar_date", fix="every row needs a date.")
    df["calendar_date"] = dates
    value = numeric_column(df, "value", source=src)
    pix = numeric_column(df, "pixel", source=src)
    if not np.all(np.isfinite(pix)):
        raise DataValidationError("missing pixel number.", source=src, variable="pixel",
                                  fix="every row needs its pixel number.")
    fin = value[np.isfinite(value)]
    if np.any((fin < 0) | (fin > 255) | (fin != np.round(fin))):
        raise DataValidationError("raw values must be integers 0-255 (8-bit MCD15A2H layers).",
                                  source=src, variable="value",
                                  fix="pass the raw ORNL subset (unscaled integers).")
    df["value"] = value
    df["pixel"] = pix.astype(np.int64)
    if df.duplicated(["band", "calendar_date", "pixel"]).any():
        i = int(np.argmax(df.duplicated(["band", "calendar_date", "pixel"]).to_numpy()))
        raise DataValidationError(
            f"duplicated row band={df['band'].iloc[i]} date={df['calendar_date'].iloc[i].date()} "
            f"pixel={df['pixel'].iloc[i]} (data row {i + 1}).", source=src, variable="value",
            fix="drop duplicated rows (e.g. several processing dates) before reading.")
    bands = set(df["band"].astype(str))
    for b in ("Lai_500m", "Fpar_500m", "FparLai_QC"):
        if b not in bands:
            raise DataValidationError(f"band {b!r} missing (bands present: {sorted(bands)}).",
                                      source=src, variable=b,
                                      fix="download the MCD15A2H subset with all bands.")
    nrows = int(numeric_column(df, "nrows", source=src)[0]) if "nrows" in names else 5
    ncols = int(numeric_column(df, "ncols", source=src)[0]) if "ncols" in names else nrows
    npix = nrows * ncols
    if pixel == "centre" or pixel == "center":
        pixels = [(npix + 1) // 2]
    elif pixel == "all":
        pixels = list(range(1, npix + 1))
    elif isinstance(pixel, (int, np.integer)) and 1 <= int(pixel) <= npix:
        pixels = [int(pixel)]
    else:
        raise ValueError(f"pixel must be 'centre', 'all' or 1..{npix}, got {pixel!r}.")
    if df["pixel"].max() > npix or df["pixel"].min() < 1:
        raise DataValidationError(f"pixel numbers outside 1..{npix} for a {nrows}x{ncols} block.",
                                  source=src, variable="pixel", fix="check nrows/ncols.")
    df = df[df["pixel"].isin(pixels)]
    times = np.array(sorted(df["calendar_date"].unique()), dtype="datetime64[ns]")
    check_time_axis(times, source=src)
    grid = pd.MultiIndex.from_product([pd.DatetimeIndex(times), pixels],
                                      names=["calendar_date", "pixel"])
    wide = {}
    for band, sub in df.groupby("band"):
        s = sub.set_index(["calendar_date", "pixel"])["value"]
        if s.index.get_level_values(0).nunique() != len(times) and band != "FparLai_QC":
            pass  # a band missing on some dates -> NaN there
        wide[str(band)] = s.reindex(grid).to_numpy().reshape(len(times), len(pixels))
    dims = ("time", "pixel")
    data = {}
    for band, (name, scale, unit, long_name) in _ORNL_BANDS.items():
        if band not in wide:
            continue
        raw = wide[band]
        v = np.where(raw <= 100, raw * scale, np.nan)   # 248-255 fill / special codes
        if name in ("lai", "fapar"):
            check_range(v, name, source=src, column=band)
        data[name] = (dims, v, {"units": unit, "long_name": long_name, "source_name": band,
                                "scale_factor_applied": scale})
    qc = wide["FparLai_QC"]
    scf = _bits(qc, 5, 3)
    cloud = _bits(qc, 3, 2)
    modland = _bits(qc, 0, 1)
    valid = (np.isfinite(data["lai"][1]) & np.isfinite(data["fapar"][1]) & (modland == 0)
             & ((scf == 0) | (scf == 1)) & ((cloud == 0) | (cloud == 3)))
    data["qc"] = (dims, qc, {"units": "1", "long_name": _QC_DESC, "source_name": "FparLai_QC"})
    data["scf_qc"] = (dims, scf, {"units": "1", "long_name": "FparLai_QC bits 5-7 (algorithm "
                                  "path; 0/1 main RT method; -1 missing)"})
    data["cloud_state"] = (dims, cloud, {"units": "1", "long_name": "FparLai_QC bits 3-4 "
                                         "(0 clear, 1 cloudy, 2 mixed, 3 assumed clear)"})
    data["valid"] = (dims, valid, {"long_name": "usable retrieval: not fill, MODLAND good, main "
                                   "RT method (with or without saturation), clear or assumed clear"})
    coords = {"time": ("time", times, {"long_name": "first day of the 8-day composite (00:00 UTC)",
                                       "standard_name": "time"}),
              "pixel": ("pixel", np.array(pixels)),
              "row": ("pixel", (np.array(pixels) - 1) // ncols),
              "col": ("pixel", (np.array(pixels) - 1) % ncols)}
    if {"xllcorner", "yllcorner", "cellsize"} <= set(names):
        x0 = float(numeric_column(df.iloc[:1], "xllcorner", source=src)[0])
        y0 = float(numeric_column(df.iloc[:1], "yllcorner", source=src)[0])
        cs = float(numeric_column(df.iloc[:1], "cellsize", source=src)[0])
        coords["x"] = ("pixel", x0 + (coords["col"][1] + 0.5) * cs,
                       {"units": "m", "long_name": "MODIS sinusoidal x of the pixel centre"})
        coords["y"] = ("pixel", y0 + (nrows - coords["row"][1] - 0.5) * cs,
                       {"units": "m", "long_name": "MODIS sinusoidal y of the pixel centre"})
    ds = xr.Dataset(data, coords=coords)
    first = df.iloc[0]
    site = str(first["site"]) if "site" in names else "unknown"
    ds.attrs.update({
        "site_id": site, "product": str(first["product"]) if "product" in names else "MCD15A2H",
        "latitude": float(first["latitude"]) if "latitude" in names else float("nan"),
        "longitude": float(first["longitude"]) if "longitude" in names else float("nan"),
        "source_file": p.name, "source_path": src, "format": "ORNL DAAC / MODISTools long format",
        "time_convention": "interval start: first day of the 8-day composite window",
        "utc_offset_hours": 0.0, "time_step_seconds": 8 * 86400.0,
        "pixel_numbering": "1-based, row-major from the upper-left of the block (MODISTools; "
                           "assumed, not verified against the file)",
        "citation": _MCD15_CITATION, "licence": "NASA open data; FluxDataKit package AGPL-3",
    })
    if pixel != "all":
        ds = ds.isel(pixel=0)
    return ds
