"""Regional VPRM forcing on a MODIS grid from MOD09A1 reflectances and ERA5 meteorology.

The pyVPRM 6.0.1 chain (Glauch et al. 2025; VPRM of Mahadevan et al. 2008): MOD09A1 8-day
reflectances masked by the state QA (cloud, shadow, cirrus, snow) -> EVI (Huete et al. 2002)
and LSWI (Xiao et al. 2004) -> per-pixel yearly statistics (Pscale threshold EVImin + 0.55
(EVImax - EVImin), growing-season LSWImin/LSWImax) -> linear interpolation of the indices
to the hours; ERA5 2 m temperature and surface solar radiation bilinearly interpolated to
the pixel centres. EVI is clipped to [0, 1] and LSWI to [-1, 1] as in pyVPRM's examples.
Pixels never clear in the year (no statistics) are given the no-flux class 8.

Land cover: pyVPRM's example uses the Copernicus LC100 map, which is not shipped;
:func:`phenology_land_cover` is a documented stand-in from each pixel's EVI phenology.

Usage::

    from process_models.io import munich_vprm_forcing
    ds, land_cover, info = munich_vprm_forcing()              # July 2022, 132 x 90 pixels
    ds, land_cover, info = munich_vprm_forcing(pixels=24, hours=168)   # a corner, one week
    fluxes = process_models.vprm.run(ds.chunk(time=168), params)
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..units import DataValidationError

__all__ = ["phenology_land_cover", "vprm_grid_forcing", "munich_vprm_forcing", "NO_FLUX_CLASS"]

NO_FLUX_CLASS = 8
"""VPRM class "other (no flux)" of pyVPRM's class list (built-up, water, bare)."""


def phenology_land_cover(evi: xr.DataArray) -> xr.DataArray:
    """Stand-in land cover (pyVPRM classes, int16) from one year of EVI (unit 1) per pixel.

    The rules (a documented stand-in, not a validated classification): other/no flux (8)
    if the summer (Jun-Aug) median EVI < 0.25 (built-up, water, bare); evergreen forest (1)
    if the winter (Nov-Mar) median EVI >= 0.6 x the summer median and the summer median
    >= 0.35; cropland (6) if the monthly-median EVI peaks before July and July EVI has
    dropped below 0.75 x the peak (harvest); grassland (7) otherwise. Deciduous and mixed
    forests are not separated from grassland by these rules.
    """
    month = evi["time"].dt.month
    summer = evi.where(month.isin([6, 7, 8])).median("time")
    winter = evi.where(month.isin([11, 12, 1, 2, 3])).median("time")
    monthly = evi.groupby("time.month").median()
    peak = monthly.max("month")
    peak_month = monthly.fillna(-1).argmax("month") + 1
    july = monthly.sel(month=7)
    cls = xr.full_like(summer, 7, dtype=np.int16)
    cls = xr.where((peak_month < 7) & (july < 0.75 * peak), 6, cls)
    cls = xr.where((winter >= 0.6 * summer) & (summer >= 0.35), 1, cls)
    cls = xr.where(~(summer >= 0.25), NO_FLUX_CLASS, cls)
    return cls.astype(np.int16).rename("vprm_class_map")


def vprm_grid_forcing(modis: xr.Dataset, met: xr.Dataset, *, year: int,
                      land_cover: xr.DataArray | None = None, max_met_gaps: int = 10):
    """VPRM forcing Dataset (time, y, x[, vprm_class]) on the MODIS grid.

    Parameters
    ----------
    modis : MOD09A1 cube from :func:`read_mod09a1` (reflectances, ``state_qa``, ``obs_time``,
        ``lat``/``lon`` of the pixels); it should cover ``year`` (and a composite on each side).
    met : ERA5 single levels from :func:`read_era5_single_levels` (``air_temperature`` degC,
        ``shortwave_in`` W m-2, hourly); its hours are the model steps.
    year : year of the EVI/LSWI statistics and of the land-cover stand-in.
    land_cover : class map (y, x) of VPRM classes 1..9; default :func:`phenology_land_cover`.
    max_met_gaps : most missing ERA5 values accepted (filled linearly in time); more raise.

    Returns
    -------
    (forcing, land_cover, info)
        ``forcing`` with ``air_temperature`` (degC), ``shortwave_in`` (W m-2, >= 0), ``evi``,
        ``lswi`` (hourly), ``evi_threshold``, ``lswi_min``, ``lswi_max`` (per pixel) and
        ``class_fractions`` (one-hot over ``vprm_class`` 1..9), all with ``units``; the
        class map actually used; ``info`` (pixels, hours, era5_gaps_filled,
        pixels_without_statistics, clear_fraction).
    """
    from ..satellite import (compute_indices, interpolate_dataset, modis_state_mask,
                             yearly_statistics_dataset)
    from .era5 import interpolate_to_grid

    valid = xr.DataArray(np.asarray(modis_state_mask(modis.state_qa.values)), dims=modis.state_qa.dims,
                         coords={k: modis.state_qa.coords[k] for k in modis.state_qa.dims})
    ix = compute_indices(modis, ("evi", "lswi"), valid=valid)
    ix["obs_time"] = modis["obs_time"]
    in_year = ix.time.dt.year == year
    if not bool(in_year.any()):
        raise DataValidationError(f"has no composite in {year}.", source="MOD09A1", variable="time",
                                  fix="pass the composites of the statistics year.")
    stats = yearly_statistics_dataset(ix.sel(time=in_year))
    cls_map = phenology_land_cover(ix["evi"].sel(time=in_year)) if land_cover is None else land_cover
    n_gap = int(met["shortwave_in"].isnull().sum() + met["air_temperature"].isnull().sum())
    if n_gap > max_met_gaps:
        raise DataValidationError(f"{n_gap} missing values in air_temperature/shortwave_in "
                                  f"(at most {max_met_gaps} are filled).", source="ERA5",
                                  variable="shortwave_in", fix="use a complete ERA5 request.")
    met = met.interpolate_na("time")
    grid = interpolate_to_grid(met, modis["lat"], modis["lon"])
    hourly = interpolate_dataset(ix, grid.time.values, "linear", variables=["evi", "lswi"])
    classes = list(range(1, 10))
    frac = (cls_map == xr.DataArray(classes, dims="vprm_class", coords={"vprm_class": classes}))
    one = {"units": "1"}
    ds = xr.Dataset({
        "air_temperature": grid["air_temperature"],
        "shortwave_in": grid["shortwave_in"].clip(min=0.0).assign_attrs(units="W m-2"),
        "evi": hourly["evi"].clip(0, 1),
        "lswi": hourly["lswi"].clip(-1, 1),
        "evi_threshold": stats["evi_threshold"],
        "lswi_min": stats["lswi_min"],
        "lswi_max": stats["lswi_max"],
    })
    no_stats = ds["evi_threshold"].isnull() | ds["lswi_min"].isnull() | ds["evi"].isnull().any("time")
    for v in ("evi_threshold", "lswi_min", "lswi_max", "evi", "lswi"):
        ds[v] = ds[v].fillna(0.0).assign_attrs(one)
    other = (frac["vprm_class"] == NO_FLUX_CLASS).astype(float)
    ds["class_fractions"] = xr.where(no_stats, other, frac.astype(float)).transpose(
        "y", "x", "vprm_class").assign_attrs(one)
    cls_map = xr.where(no_stats, NO_FLUX_CLASS, cls_map).astype(np.int16)
    info = {"pixels": int(ds.sizes["y"] * ds.sizes["x"]), "hours": int(ds.sizes["time"]),
            "era5_gaps_filled": n_gap, "pixels_without_statistics": int(no_stats.sum()),
            "clear_fraction": float(valid.mean())}
    return ds, cls_map, info


def munich_vprm_forcing(pixels: int | None = None, hours: int | None = None):
    """:func:`vprm_grid_forcing` for the shipped Munich July 2022 MOD09A1 crop and ERA5 file
    (statistics of 2022); ``pixels``: only the upper-left ``pixels x pixels`` corner,
    ``hours``: only the first hours of July."""
    from ._common import data_path
    from .era5 import read_era5_single_levels
    from .modis import read_mod09a1

    m = read_mod09a1(data_path("munich_2022_modis-era5_pyvprm", "modis"))
    if pixels is not None:
        m = m.isel(y=slice(0, pixels), x=slice(0, pixels))
    met = read_era5_single_levels(data_path("munich_2022_modis-era5_pyvprm", "era5", "2022_7.nc.gz"))
    if hours is not None:
        met = met.isel(time=slice(0, hours))
    return vprm_grid_forcing(m, met, year=2022)
