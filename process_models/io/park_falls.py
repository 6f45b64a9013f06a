"""Reader for the US-PFa (Park Falls, Wisconsin) VPRM test data of the R package
VPRMLandSfcModel (``Park_Falls.RData``, ``VPRM_parameters.RData``).

Time convention of the tower record (decided from the data)
----------------------------------------------------------
The R ``chron`` dates (days since 1970-01-01, floats; rounded to the minute) carry no
time zone and the package does not say whether they label the start, middle or end
of the hour. Comparing hourly PAR with the clear-sky solar geometry of the site
(45.95 N, 90.27 W; local solar noon ~12:01 UTC-6):

* the PAR-weighted centroid of the daily cycle is 0.405 h **before** solar noon in
  UTC-6 clock time (expected: 0.5 h before for start labels, 0 for middle labels,
  0.5 h after for end labels); in UTC it would be 6.4 h before noon, so the clock is
  not UTC;
* the correlation of PAR with the hour-mean cosine of the solar zenith angle over
  ``[label + d, label + d + 1 h)`` (label read as UTC-6) peaks at d = -0.1 h (r =
  0.887; d = -0.5 h, the middle convention, gives 0.880; d = -1 h, the end convention,
  0.855); the best d is -0.1...0 h in **every month**, so there is no daylight-saving
  jump;
* on 21 June 2005 (sunrise ~04:15, sunset ~19:50 LST) PAR is 0 at 04:00, 153 at 05:00,
  10 at 19:00 and 0 at 20:00, which rules out end labels (the 05:00 record would be
  the dim first hour).

Hence ``time`` is the **start** of the hour in **local standard time UTC-6** (US
Central Standard Time, no DST): ``utc_offset_hours = -6``. The labels are used as
they are (no shift).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..units import CANONICAL, DataValidationError, check_range, check_time_axis
from ._common import canonical_variable, data_path

__all__ = ["read_park_falls", "read_vprm_parameter_tables", "SITE"]

SITE = {"site_id": "US-PFa", "site_name": "Park Falls/WLEF, Wisconsin, USA",
        "latitude": 45.9459, "longitude": -90.2723}

_DATASET = "us-pfa_park-falls_vprm"

CITATION_TOWER = (
    "US-PFa AmeriFlux Level 2, 2005 (Berger, B. W. et al. 2001, J. Atmos. Oceanic Technol. "
    "18, 529-542; AmeriFlux US-PFa, CC BY 4.0), as packaged in the R package "
    "VPRMLandSfcModel (T. W. Hilton, GPL-3) data/Park_Falls.RData.")
CITATION_MODIS = (
    "ORNL DAAC MODIS ASCII subsets for AmeriFlux sites: MOD13Q1 (EVI), MCD43A4 (NBAR "
    "reflectance), MOD12Q2 (phenology); as packaged in VPRMLandSfcModel.")
CITATION_VPRM = (
    "Mahadevan, P. et al. (2008) Global Biogeochem. Cycles 22, GB2005 (VPRM); parameter "
    "tables from the R package VPRMLandSfcModel (T. W. Hilton, GPL-3) data/VPRM_parameters.RData.")

TIME_CONVENTION = ("time = start of the hourly interval, local standard time UTC-6 (no DST); "
                   "decided from PAR vs solar geometry (see process_models.io.park_falls).")


def _read_rdata(path: Path) -> dict:
    import pyreadr

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    try:
        objs = pyreadr.read_r(str(path))
    except Exception as err:  # pyreadr.custom_errors.PyreadrError, LibrdataError, ...
        raise DataValidationError(
            f"could not read the RData file ({type(err).__name__}: {err}).", source=str(path),
            fix="re-copy the file; compare its sha256 with PROVENANCE.md.") from err
    # R's NA is a NaN with a payload (1954) that NumPy's fast nanmin/nanmax mishandle;
    # replace it with the plain NaN so downstream reductions behave.
    for df in objs.values():
        for col in df.columns:
            if df[col].dtype.kind == "f":
                v = df[col].to_numpy(dtype=float, copy=True)
                v[np.isnan(v)] = np.nan
                df[col] = v
    return objs


def _need(objs: dict, name: str, columns: list[str], path: Path) -> pd.DataFrame:
    if name not in objs:
        raise DataValidationError(
            f"object {name!r} is missing (present: {', '.join(objs)}).", source=str(path),
            variable=name, fix="use the Park_Falls.RData shipped with VPRMLandSfcModel.")
    df = objs[name]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"object {name!r} lacks columns {missing} (has {list(df.columns)}).",
            source=str(path), variable=name, fix="use the original VPRMLandSfcModel data.")
    return df


def _chron_to_time(days, path: Path, name: str) -> np.ndarray:
    d = np.asarray(days, dtype=float)
    if not np.all(np.isfinite(d)):
        raise DataValidationError("missing dates.", source=str(path), variable=f"{name}.date",
                                  fix="drop the records without a date.")
    t = (pd.Timestamp("1970-01-01") + pd.to_timedelta(d, unit="D")).round("min")
    return np.asarray(t, dtype="datetime64[ns]")


def read_park_falls(path: str | os.PathLike | None = None) -> dict:
    """Read the US-PFa (Park Falls) VPRM test data.

    Parameters
    ----------
    path : path, optional
        ``Park_Falls.RData`` (R workspace, read with pyreadr). Default: the shipped
        copy, ``data_path("us-pfa_park-falls_vprm", "Park_Falls.RData")``.

    Returns
    -------
    dict
        ``"tower"`` : xarray.Dataset, dim ``time`` (hourly, 8756 records,
            2005-01-02 04:00 ... 2006-01-01 23:00) with ``air_temperature`` (degC,
            from TA), ``ppfd_in`` (umol m-2 s-1, from PAR), ``nee`` (umol m-2 s-1, from
            FC, the eddy CO2 flux without storage; positive = source, NaN where
            missing, ~48 %). ``time`` is the interval **start** in local standard time
            UTC-6 (``utc_offset_hours = -6``); see the module docstring for the
            evidence.
        ``"evi"`` : xarray.Dataset, dim ``time`` (MOD13Q1 16-day composites,
            2000-02-18 ... 2013-09-30, 304 records) with ``evi`` (units "1"); time is
            the composite date as stored (00:00, start of the compositing period).
        ``"reflectance"`` : xarray.Dataset, dim ``time`` (MCD43A4 8-day, 614 records)
            with ``red``, ``nir``, ``blue``, ``swir`` (units "1", NaN where missing).
        ``"phenology"`` : pandas.DataFrame with ``date`` (datetime64, minute-rounded;
            the fractional days of the source have no sub-day meaning) and ``phen``
            (one of ginc/gmax/gdec/gmin, MOD12Q2 transition dates).

    Raises
    ------
    DataValidationError
        Unreadable/corrupt RData, missing objects or columns, values outside the
        plausible ranges, duplicated or unsorted dates.

    Notes
    -----
    Citation: US-PFa AmeriFlux (Berger et al. 2001, J. Atmos. Oceanic Technol. 18,
    529-542); MODIS MOD13Q1/MCD43A4/MOD12Q2 subsets (ORNL DAAC); VPRMLandSfcModel
    (T. W. Hilton, GPL-3). Dates are R chron values (days since 1970-01-01).
    """
    path = Path(path) if path is not None else data_path(_DATASET, "Park_Falls.RData")
    objs = _read_rdata(path)
    src = str(path)

    tow = _need(objs, "PFa_tower_obs", ["date", "TA", "FC", "PAR"], path)
    t = _chron_to_time(tow["date"], path, "PFa_tower_obs")
    check_time_axis(t, source=src, expected_step=np.timedelta64(1, "h"), allow_gaps=False)
    tower = xr.Dataset(
        {
            "air_temperature": canonical_variable(tow["TA"].to_numpy(), "air_temperature", "degC",
                                                  source=src, column="TA"),
            "ppfd_in": canonical_variable(tow["PAR"].to_numpy(), "ppfd_in", "umol m-2 s-1",
                                          source=src, column="PAR"),
            "nee": canonical_variable(tow["FC"].to_numpy(), "nee", "umol m-2 s-1", source=src,
                                      column="FC", extra_attrs={
                                          "comment": "FC: turbulent CO2 flux, no storage term; "
                                                     "positive = source to the atmosphere."}),
        },
        coords={"time": ("time", t, {"long_name": "start of the hourly interval (UTC-6)"})},
        attrs={**SITE, "citation": CITATION_TOWER, "utc_offset_hours": -6.0,
               "time_zone": "local standard time, UTC-6 (US Central Standard Time, no DST)",
               "time_step_seconds": 3600, "time_convention": TIME_CONVENTION,
               "source_file": path.name, "source_object": "PFa_tower_obs"},
    )

    evi_df = _need(objs, "PFa_evi", ["date", "evi"], path)
    te = _chron_to_time(evi_df["date"], path, "PFa_evi")
    check_time_axis(te, source=src)
    ev = evi_df["evi"].to_numpy(dtype=float)
    check_range(ev, "evi", source=src, column="evi")
    spec = CANONICAL["evi"]
    evi = xr.Dataset(
        {"evi": ("time", ev, {"units": spec.units, "long_name": spec.long_name,
                              "source_name": "evi", "product": "MOD13Q1 (Terra, 250 m, 16-day)"})},
        coords={"time": ("time", te, {"long_name": "composite date (UTC, 00:00)"})},
        attrs={**SITE, "citation": CITATION_MODIS, "utc_offset_hours": 0.0,
               "time_step_seconds": 16 * 86400, "source_file": path.name,
               "source_object": "PFa_evi"},
    )

    ref_df = _need(objs, "PFa_refl", ["date", "red", "nir", "blue", "swir"], path)
    tr = _chron_to_time(ref_df["date"], path, "PFa_refl")
    check_time_axis(tr, source=src)
    rvars = {}
    for c in ("red", "nir", "blue", "swir"):
        v = ref_df[c].to_numpy(dtype=float)
        check_range(v, "reflectance", source=src, column=c)
        rvars[c] = ("time", v, {"units": "1", "long_name": f"{c} surface reflectance (NBAR)",
                                "source_name": c, "product": "MCD43A4 (500 m, 8-day)"})
    reflectance = xr.Dataset(
        rvars, coords={"time": ("time", tr, {"long_name": "composite date (UTC, 00:00)"})},
        attrs={**SITE, "citation": CITATION_MODIS, "utc_offset_hours": 0.0,
               "time_step_seconds": 8 * 86400, "source_file": path.name,
               "source_object": "PFa_refl"},
    )

    phen_df = _need(objs, "PFa_phen", ["date", "phen"], path)
    phen = pd.DataFrame({
        "date": pd.to_datetime(_chron_to_time(phen_df["date"], path, "PFa_phen")),
        "phen": phen_df["phen"].astype(str).to_numpy(),
    })
    phen.attrs = {"citation": CITATION_MODIS, "product": "MOD12Q2",
                  "phen": "ginc = greenup onset, gmax = maturity, gdec = senescence, "
                          "gmin = dormancy"}
    return {"tower": tower, "evi": evi, "reflectance": reflectance, "phenology": phen}


PARAMETER_UNITS = {
    "lambda": "umol CO2 umol-1 photons (i.e. '1'): light-use efficiency",
    "alpha": "umol m-2 s-1 degC-1: slope of respiration vs air temperature",
    "beta": "umol m-2 s-1: respiration intercept",
    "par0": "umol m-2 s-1: half-saturation PAR",
}


def read_vprm_parameter_tables(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the published VPRM parameter sets of VPRMLandSfcModel.

    Parameters
    ----------
    path : path, optional
        ``VPRM_parameters.RData`` (R workspace, pyreadr). Default: the shipped copy.

    Returns
    -------
    pandas.DataFrame
        Index ``pft``: ``"all"`` (the all-site fit, object ``all_all_VPRM_parameters``)
        then the PFTs of ``pft_all_VPRM_parameters`` (ENF, GRA, WET, CRO, DBF, MF, CS,
        OS, WS). Columns (float):

        * ``lambda`` (umol CO2 per umol PAR photons, dimensionless): light-use
          efficiency;
        * ``alpha`` (umol m-2 s-1 degC-1) and ``beta`` (umol m-2 s-1): respiration
          R = alpha * T + beta;
        * ``par0`` (umol m-2 s-1; source column ``PAR_0``): half-saturation PAR.

        ``df.attrs["units"]`` maps columns to units; ``df.attrs["citation"]``.

    Raises
    ------
    DataValidationError
        Unreadable RData, missing objects or columns.

    Notes
    -----
    Citation: Mahadevan, P. et al. (2008) Global Biogeochem. Cycles 22, GB2005;
    VPRMLandSfcModel (T. W. Hilton, GPL-3).
    """
    path = Path(path) if path is not None else data_path(_DATASET, "VPRM_parameters.RData")
    objs = _read_rdata(path)
    cols = ["lambda", "alpha", "beta", "PAR_0"]
    allp = _need(objs, "all_all_VPRM_parameters", cols, path)
    pft = _need(objs, "pft_all_VPRM_parameters", ["PFT"] + cols, path)
    a = allp[cols].copy()
    a.index = ["all"] * len(a)
    p = pft[cols].copy()
    p.index = pft["PFT"].astype(str).to_numpy()
    df = pd.concat([a, p]).astype(float).rename(columns={"PAR_0": "par0"})
    df.index.name = "pft"
    if not np.all(np.isfinite(df.to_numpy())):
        raise DataValidationError("non-finite parameter values.", source=str(path),
                                  fix="use the original VPRM_parameters.RData.")
    if (df["par0"] <= 0).any() or (df["lambda"] < 0).any():
        raise DataValidationError("par0 must be > 0 and lambda >= 0.", source=str(path),
                                  variable="par0/lambda", fix="check the parameter table.")
    df.attrs = {"units": {"lambda": "1", "alpha": "umol m-2 s-1 degC-1",
                          "beta": "umol m-2 s-1", "par0": "umol m-2 s-1"},
                "description": PARAMETER_UNITS, "citation": CITATION_VPRM,
                "source_file": path.name}
    return df
