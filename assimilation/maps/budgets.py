"""Carbon budgets from a map store: per land-cover class and per region, with uncertainty.

For each region (the whole ``domain`` and the configured boxes (xmin, xmax, ymin, ymax) in
the cube's CRS) and each VPRM class (a pixel counts for the class of its largest land-cover
fraction; ``all`` = every pixel) the table gives the area-mean period totals of NEE, GPP
and Reco (``g C m-2``) and the region totals (``t C``, pixel area |dx dy| of the grid,
exact for the equal-area grids of the shipped cubes: LAEA Europe, MODIS sinusoidal), each
with two standard deviations from the per-pixel ``<name>_total_sd``:

* ``sd_independent``: pixel errors independent: sqrt(sum a_i^2 sd_i^2) / sum a_i;
* ``sd_correlated``: pixel errors fully correlated: sum a_i sd_i / sum a_i (upper bound;
  the pivot errors of neighbouring pixels are correlated by shared clouds and sensors).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

__all__ = ["budget_table", "pixel_area"]

_CLASS_NAMES = {1: "evergreen forest", 2: "deciduous forest", 3: "mixed forest", 4: "shrubland",
                5: "savanna", 6: "cropland", 7: "grassland", 8: "other (no flux)", 9: "wetland"}


def pixel_area(ds: xr.Dataset) -> float:
    """Pixel area (m2) of a regular grid in a projected CRS."""
    x, y = ds["x"].values, ds["y"].values
    if x.size < 2 or y.size < 2:
        return float("nan")
    if "spatial_ref" in ds and ds["spatial_ref"].attrs.get("grid_mapping_name") == "latitude_longitude":
        raise DataValidationError("budgets need a projected (equal-area) grid.", source="map store",
                                  variable="spatial_ref", fix="reproject the cube to an equal-area CRS.")
    return abs(float(x[1] - x[0]) * float(y[1] - y[0]))


def budget_table(store, regions=()) -> pd.DataFrame:
    """The budget table (one row per region x class) of a finished map store."""
    ds = xr.open_zarr(store, consolidated=False)
    area = pixel_area(ds)
    frac = ds["class_fraction"].load()
    dominant = xr.where(frac.sum("vprm_class") > 0, frac["vprm_class"][frac.argmax("vprm_class")], 8)
    totals = {v: (ds[f"{v}_total"].load(), ds[f"{v}_total_sd"].load()) for v in ("nee", "gpp", "reco")}
    x, y = ds["x"], ds["y"]
    boxes = [("domain", (-np.inf, np.inf, -np.inf, np.inf))] + list(regions)
    rows = []
    for name, (x0, x1, y0, y1) in boxes:
        inside = ((x >= x0) & (x <= x1)) & ((y >= y0) & (y <= y1))
        for cls in ["all"] + sorted(int(c) for c in np.unique(dominant.values)):
            sel = inside & ((dominant == cls) if cls != "all" else True)
            n = int(sel.sum())
            if n == 0:
                continue
            row = {"region": name, "class": cls if cls == "all" else f"{cls} {_CLASS_NAMES.get(cls, '')}".strip(),
                   "pixels": n, "area_km2": n * area / 1e6}
            for v, (tot, sd) in totals.items():
                t, s = tot.where(sel).values, sd.where(sel).values
                ok = np.isfinite(t)
                row[f"{v}_g_c_m2"] = float(np.nanmean(t))
                row[f"{v}_sd_independent"] = float(np.sqrt(np.nansum(s[ok] ** 2)) / ok.sum())
                row[f"{v}_sd_correlated"] = float(np.nansum(s[ok]) / ok.sum())
                row[f"{v}_t_c"] = float(np.nansum(t) * area / 1e6)
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["units"] = {"*_g_c_m2": "g C m-2 (period total, area mean)", "*_t_c": "t C (region total)"}
    return out
