"""Reader for the OMI/Aura L3 NO2 crops over Romania (OMNO2d, 0.25 deg; shipped in
``../shared/data/omi-no2_l3_romania``, provenance and licence in its ``PROVENANCE.md``).

Two files, two layouts (both returned alike: ``no2_column`` in mol m-2 on ascending
``lat`` / ``lon``, a ``time`` axis and ``attrs["column"]`` saying which column it is):

* ``OMI-Aura_L3-OMNO2d_monthly.nc`` (netCDF-3): ``no2`` "Tropospheric Cloud Screened NO2",
  monthly means January-July 2020, latitude descending. Trap: its units attribute says
  ``10^15molec/cm2`` but the values (7.8e14 ... 9.5e15) are molec cm-2; the reader checks
  the value range and refuses values that fit neither reading.
* ``OMI-Aura_L3-OMNO2d_ymonmean_2015_2019.nc4``: ``ColumnAmountNO2CloudScreened``, the
  2015-2019 mean of each calendar month; the CDO time axis ``day as %Y%m%d.%f`` needs
  ``decode_times=False`` (months are taken from the values). Its HDF-EOS ``origname`` /
  ``Field`` attributes name ``ColumnAmountNO2`` (OMNO2d's *total* column; the tropospheric
  one is ``ColumnAmountNO2Trop``), and its minimum (1.85e15 molec cm-2, above a typical
  stratospheric column) agrees: it is read as a total column. For emissions the smooth
  stratospheric part cancels in a local background subtraction.

Unit conversion: 1 molec cm-2 = 1e4 / N_A mol m-2 (N_A = 6.02214076e23 mol-1, SI 2019).
Fill values (the file's ``_FillValue``, -3.4e38, and any negative or non-finite column) are
set to NaN.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..units import DataValidationError
from ._common import data_path

__all__ = ["read_omi_no2_l3", "OMI_FILES", "MOLEC_CM2_TO_MOL_M2"]

AVOGADRO = 6.02214076e23
"""Units: mol-1."""
MOLEC_CM2_TO_MOL_M2 = 1e4 / AVOGADRO
"""Units: mol m-2 per (molec cm-2)."""
OMI_FILES = {"monthly": "OMI-Aura_L3-OMNO2d_monthly.nc",
             "climatology": "OMI-Aura_L3-OMNO2d_ymonmean_2015_2019.nc4"}
_PLAUSIBLE = (1e13, 1e17)
"""Range of plausible NO2 columns. Units: molec cm-2."""


def _find(ds, names, path):
    for n in names:
        if n in ds.variables or n in ds.coords:
            return n
    raise DataValidationError(f"none of the variables {names} found (has {sorted(ds.variables)})",
                              source=str(path), fix="pass an OMNO2d L3 crop of the shipped layout.")


def read_omi_no2_l3(kind: str = "climatology", path: str | os.PathLike | None = None) -> xr.Dataset:
    """The OMI L3 NO2 crop ``kind`` ("monthly": Jan-Jul 2020 tropospheric; "climatology":
    2015-2019 calendar-month means, total column) as ``no2_column`` (mol m-2, NaN = fill) on
    ascending ``lat``/``lon`` (degrees) and ``time`` (month start for "monthly", the
    calendar month 1-12 as ``month`` for "climatology")."""
    if kind not in OMI_FILES:
        raise ValueError(f"kind={kind!r}; use one of {sorted(OMI_FILES)}.")
    p = Path(path) if path is not None else data_path("omi-no2_l3_romania", OMI_FILES[kind])
    if not p.exists():
        raise FileNotFoundError(f"{p} not found; the OMI crops ship in ../shared/data/omi-no2_l3_romania.")
    with xr.open_dataset(p, decode_times=(kind == "monthly")) as ds:
        ds = ds.load()
    name = _find(ds, ("no2", "ColumnAmountNO2CloudScreened", "ColumnAmountNO2TropCloudScreened"), p)
    da = ds[name]
    la = _find(ds, ("lat", "latitude"), p)
    lo = _find(ds, ("lon", "longitude"), p)
    da = da.rename({la: "lat", lo: "lon"})
    if set(da.dims) != {"time", "lat", "lon"}:
        raise DataValidationError(f"variable {name!r} has dims {da.dims}, expected (time, lat, lon)",
                                  source=str(p), fix="pass an OMNO2d L3 crop of the shipped layout.")
    da = da.transpose("time", "lat", "lon").sortby("lat").sortby("lon")
    x = np.asarray(da.values, float)
    fill = da.encoding.get("_FillValue", da.attrs.get("_FillValue"))
    bad = ~np.isfinite(x) | (x < 0)
    if fill is not None:
        bad |= np.isclose(x, float(fill), rtol=1e-6)
    x = np.where(bad, np.nan, x)
    if np.all(np.isnan(x)):
        raise DataValidationError(f"variable {name!r} holds only fill values", source=str(p),
                                  fix="check the file (a failed subset?).")
    units = str(da.attrs.get("units", "")).replace(" ", "")
    hi = float(np.nanmax(x))
    if units.startswith("10^15"):
        # the monthly file's trap: labelled 1e15 molec cm-2, stored in molec cm-2
        if _PLAUSIBLE[0] <= hi <= _PLAUSIBLE[1]:
            scale = 1.0
        elif _PLAUSIBLE[0] <= hi * 1e15 <= _PLAUSIBLE[1]:
            scale = 1e15
        else:
            raise DataValidationError(f"{name!r} maximum {hi:.3g} fits neither molec cm-2 nor 1e15 molec cm-2",
                                      source=str(p), fix="check the units of the file.")
    elif units in ("molec/cm2", "molec/cm^2", "molec cm-2", "molecules/cm2", "molec.cm-2", "molec/cm**2"):
        scale = 1.0
        if not _PLAUSIBLE[0] <= hi <= _PLAUSIBLE[1]:
            raise DataValidationError(f"{name!r} maximum {hi:.3g} molec cm-2 is implausible for NO2",
                                      source=str(p), fix="check the units of the file.")
    else:
        raise DataValidationError(f"{name!r} has units {da.attrs.get('units')!r}, expected molec cm-2",
                                  source=str(p), fix="convert the column to molec cm-2 first.")
    column = "tropospheric" if kind == "monthly" else "total"
    coords = {"lat": np.asarray(da["lat"].values, float), "lon": np.asarray(da["lon"].values, float)}
    if kind == "monthly":
        coords["time"] = da["time"].values
    else:
        t = np.asarray(da["time"].values, float)
        coords["time"] = np.arange(len(t))
        coords["month"] = ("time", ((t // 100) % 100).astype(int))
        if sorted(coords["month"][1]) != list(range(1, 13)):
            raise DataValidationError(f"climatology months {coords['month'][1]} are not 1..12", source=str(p),
                                      fix="pass the 12-month CDO ymonmean file.")
    out = xr.Dataset({"no2_column": (("time", "lat", "lon"), x * scale * MOLEC_CM2_TO_MOL_M2,
                                     {"units": "mol m-2", "long_name": f"OMI {column} NO2 column, cloud-screened"})},
                     coords=coords)
    out["lat"].attrs["units"] = "degrees_north"
    out["lon"].attrs["units"] = "degrees_east"
    out.attrs.update(source=str(p), column=column, product="OMI/Aura OMNO2d L3 0.25 deg V3 (Krotkov et al. 2019, "
                     "doi:10.5067/Aura/OMI/DATA3007)")
    return out
