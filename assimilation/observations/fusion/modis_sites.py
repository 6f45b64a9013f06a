"""Daily observation arrays of the shipped MODIS data, ready for :func:`.methods.fuse_arrays`.

* :func:`park_falls_evi_observations`: two sensors of EVI at Park Falls (US-PFa), the
  MOD13Q1 16-day EVI (reference scale, sensor 0) and EVI computed from the MCD43A4 8-day
  NBAR reflectances (sensor 1) with the MODIS EVI formula (Huete et al. 2002, Remote Sens.
  Environ. 83, 195: EVI = 2.5 (NIR - red) / (NIR + 6 red - 7.5 blue + 1)).
* :func:`mod09a1_pixel_observations`: one index (EVI or LSWI) per pixel of the Munich 2022
  MOD09A1 crop, masked by the MOD09A1 state QA (cloud, shadow, cirrus, snow) and placed on
  each pixel's acquisition day (``obs_time``).

Both return ``(y, mask, days, sensor_names)`` with ``y`` and ``mask`` of shape
(pixels, days, sensors) (index units 1) from :func:`.xarray_api.daily_observations`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .xarray_api import daily_observations

__all__ = ["park_falls_evi_observations", "mod09a1_pixel_observations"]

EVI_VALID_RANGE = (-0.2, 1.0)
"""EVI outside this open interval (1) is treated as a retrieval failure."""


def park_falls_evi_observations(years: tuple[int, int] | None = None):
    """(1, T, 2) daily EVI at Park Falls: MOD13Q1 (sensor 0) and MCD43A4-derived EVI
    (sensor 1); ``years=(first, last)`` restricts the period (inclusive)."""
    from process_models.io import read_park_falls
    from process_models.satellite import evi

    d = read_park_falls()
    if years is not None:
        span = slice(f"{years[0]}-01-01", f"{years[1]}-12-31")
        d = {k: d[k].sel(time=span) for k in ("evi", "reflectance")}
    e16 = d["evi"][["evi"]].assign_attrs(sensor="MOD13Q1")
    r = d["reflectance"]
    e8 = xr.Dataset({"evi": (("time",), np.asarray(evi(r.nir.values, r.red.values, r.blue.values)))},
                    coords={"time": r.time}).assign_attrs(sensor="MCD43A4")
    lo, hi = EVI_VALID_RANGE
    e8["evi"] = e8["evi"].where((e8["evi"] > lo) & (e8["evi"] < hi))
    y, mask, days, _ = daily_observations([("MOD13Q1", e16), ("MCD43A4", e8)], "evi")
    return y, mask, days, ["MOD13Q1", "MCD43A4"]


def mod09a1_pixel_observations(variable: str = "evi", pixels: int | None = None, seed: int = 0,
                               folder=("munich_2022_modis-era5_pyvprm", "modis"), year: int = 2022):
    """(P, T, 1) daily ``variable`` ("evi", "lswi", "ndvi") of the MOD09A1 crop in
    ``folder`` (read with :func:`process_models.io.read_mod09a1`), state-QA masked
    (:func:`process_models.satellite.modis_state_mask`), on each pixel's acquisition day;
    ``pixels``: a seeded random subset of that many pixels (None: all)."""
    from process_models.io import data_path, read_mod09a1
    from process_models.satellite import compute_indices, modis_state_mask

    m = read_mod09a1(data_path(*folder))
    qa = m.state_qa
    valid = xr.DataArray(np.asarray(modis_state_mask(qa.values)), dims=qa.dims,
                         coords={k: qa.coords[k] for k in qa.dims})
    ix = compute_indices(m, (variable,), valid=valid)
    ix["obs_time"] = m["obs_time"]
    st = ix.stack(pixel=("y", "x"))
    if pixels is not None and pixels < st.sizes["pixel"]:
        pick = np.sort(np.random.default_rng(seed).choice(st.sizes["pixel"], pixels, replace=False))
        st = st.isel(pixel=pick)
    st = st.drop_vars(["pixel", "y", "x"]).assign_coords(pixel=np.arange(st.sizes["pixel"]))
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31")
    y, mask, days, _ = daily_observations(st[[variable, "obs_time"]], variable, days)
    return y, mask, days, ["MOD09A1"]


def park_falls_fused_indices(data: dict | None = None, start: str = "2004-01-01",
                             end: str = "2006-12-31", fit_steps: int = 150):
    """Daily Kalman-fused EVI and LSWI (1) at Park Falls, stamped at noon, for VPRM forcing.

    EVI: MOD13Q1 16-day EVI (the reference scale) fused with EVI from MCD43A4 8-day NBAR
    reflectances (Huete et al. 2002; EVI outside (-0.2, 1) masked); LSWI from MCD43A4 (NIR,
    SWIR 1.6 um; Xiao et al. 2004) alone. Damped anomaly around a 3-harmonic climatology,
    sensor and process parameters by maximum likelihood (``fit_steps`` Adam steps).
    ``data``: the dict of :func:`process_models.io.read_park_falls` (read when None).
    Returns an ``xarray.Dataset`` with ``evi`` and ``lswi`` on a daily ``time`` axis.
    """
    from process_models.io import read_park_falls
    from process_models.satellite import evi, lswi
    from .xarray_api import fuse
    d = read_park_falls() if data is None else data
    span = slice(start, end)
    r = d["reflectance"].sel(time=span)
    e8 = xr.Dataset({"evi": ("time", np.asarray(evi(r.nir.values, r.red.values, r.blue.values))),
                     "lswi": ("time", np.asarray(lswi(r.nir.values, r.swir.values)))},
                    coords={"time": r.time}).assign_attrs(sensor="MCD43A4")
    e8["evi"] = e8["evi"].where((e8["evi"] > -0.2) & (e8["evi"] < 1.0))
    days = pd.date_range(start, end)
    opts = dict(kind="damped", climatology="harmonic", n_harmonics=3, fit_steps=fit_steps)
    e16 = d["evi"][["evi"]].sel(time=span).assign_attrs(sensor="MOD13Q1")
    f_evi = fuse([e16, e8[["evi"]]], "kalman", "evi", days=days, **opts)["evi_mean"]
    f_lswi = fuse(e8[["lswi"]], "kalman", "lswi", days=days, **opts)["lswi_mean"]
    flat = lambda a: a.values[:, 0] if a.ndim > 1 else a.values  # noqa: E731
    return xr.Dataset({"evi": ("time", flat(f_evi)), "lswi": ("time", flat(f_lswi))},
                      coords={"time": days + pd.Timedelta("12h")},
                      attrs={"units_evi": "1", "units_lswi": "1"})
