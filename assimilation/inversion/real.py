"""The real cases as :class:`.methods.Scene`: TROPOMI over Matimba/Medupi (2021-07-25) with
ERA5 boundary-layer winds, and the SMARTCARB Berlin and Jänschwalde NO2 tracer fields with
COSMO winds, each regridded onto a local square grid around the source.

Local grid: an equirectangular projection about the source (x = R cos(lat0) dlon,
y = R dlat, R = 6371 km), cells of ``dx`` m, pixels of ``pixel_cells`` cells; the source
sits at the centre cell. Irregular L2 pixels / rotated-grid cells are interpolated
linearly (``scipy.interpolate.griddata``) onto the model cells and block-averaged onto the
pixels; a pixel is usable if a valid input value lies within one pixel size of its
centre. References (the published values compared with) are returned alongside.
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import LinearNDInterpolator, griddata
from scipy.ndimage import median_filter
from scipy.spatial import Delaunay, cKDTree

from .methods import Scene
from .operator import footprint_average

__all__ = ["local_xy", "to_local_grid", "matimba_scene", "smartcarb_scene", "estimate_noise"]

EARTH_RADIUS = 6.371e6
"""Units: m."""


def local_xy(lon, lat, lon0, lat0):
    """Equirectangular coordinates (m) about (lon0, lat0)."""
    x = EARTH_RADIUS * np.cos(np.deg2rad(lat0)) * np.deg2rad(np.asarray(lon) - lon0)
    y = EARTH_RADIUS * np.deg2rad(np.asarray(lat) - lat0)
    return x, y


def to_local_grid(x, y, values, n, dx, ok=None):
    """Linear interpolation of scattered ``values`` at (x, y) (m) onto the n x n cell centres
    of a grid centred on the origin; NaN outside the data. ``values`` may be a list of
    arrays (one triangulation for all). Returns (n, n) or a list of them."""
    c = (np.arange(n) - n / 2 + 0.5) * dx
    X, Y = np.meshgrid(c, c)
    many = isinstance(values, (list, tuple))
    vals = [np.ravel(v) for v in (values if many else [values])]
    x, y = np.ravel(x), np.ravel(y)
    keep = np.all([np.isfinite(v) for v in vals], axis=0)
    if ok is not None:
        keep &= np.ravel(ok)
    tri = Delaunay(np.c_[x[keep], y[keep]])
    out = [LinearNDInterpolator(tri, v[keep])(X, Y) for v in vals]
    return out if many else out[0]


def _pixel_valid(x, y, ok, n, dx, k):
    P = n // k
    c = (np.arange(P) - P / 2 + 0.5) * dx * k
    X, Y = np.meshgrid(c, c)
    tree = cKDTree(np.c_[np.ravel(x)[np.ravel(ok)], np.ravel(y)[np.ravel(ok)]])
    d, _ = tree.query(np.c_[X.ravel(), Y.ravel()])
    return (d <= dx * k).reshape(P, P)


def estimate_noise(obs, valid) -> float:
    """Robust pixel noise: 1.4826 MAD of (obs - 3x3 median) over usable pixels, scaled by
    sqrt(9/8) for the median's own noise. Units: those of ``obs``."""
    filled = np.where(valid > 0, obs, np.nanmedian(obs[valid > 0]))
    r = (filled - median_filter(filled, 3))[valid > 0]
    return float(1.4826 * np.median(np.abs(r - np.median(r))) * np.sqrt(9 / 8))


def _background(obs, valid, k, dx, exclude_m=30e3):
    P = obs.shape[0]
    c = (np.arange(P) - P / 2 + 0.5) * dx * k
    X, Y = np.meshgrid(c, c)
    far = (np.hypot(X, Y) > exclude_m) & (valid > 0)
    return float(np.nanmedian(obs[far])) if far.any() else 0.0


def matimba_scene(n: int = 40, dx: float = 2000.0, pixel_cells: int = 2, *, nox_no2_ratio: float = 1.32,
                  lifetime: float = 4 * 3600.0, subtract_background: bool = True):
    """TROPOMI Matimba/Medupi scene and its reference.

    Returns ``(scene, info)``; ``info["reference"]`` is the CoCO2 v1.1 catalogue NOx
    emission (kg s-1, NOx as NO2, annual mean 2018) of the 9 units within 10 km
    (Guevara et al. 2023), ``info["reference_source"]`` names it.
    """
    from process_models.io.tropomi import (read_era5_boundary_layer_winds, read_point_source_catalogue,
                                           read_tropomi_no2_l2)
    lon0, lat0 = 27.587, -23.687             # midway between Matimba and Medupi (6 km apart)
    l2 = read_tropomi_no2_l2()
    x, y = local_xy(l2["lon"].values, l2["lat"].values, lon0, lat0)
    ok = l2["valid"].values > 0
    field = to_local_grid(x, y, l2["no2"].values, n, dx, ok)
    valid = _pixel_valid(x, y, ok, n, dx, pixel_cells) & np.isfinite(footprint_average(field, pixel_cells))
    obs = np.where(valid, footprint_average(np.nan_to_num(field), pixel_cells), np.nan)
    noise = max(estimate_noise(obs, valid), float(np.nanmax(l2["no2_std"].values)))
    bg = _background(obs, valid, pixel_cells, dx) if subtract_background else 0.0
    w = read_era5_boundary_layer_winds(l2.attrs["time"])
    LON, LAT = np.meshgrid(w["longitude"].values, w["latitude"].values)
    wx, wy = local_xy(LON, LAT, lon0, lat0)
    c = (np.arange(n) - n / 2 + 0.5) * dx
    X, Y = np.meshgrid(c, c)
    u = griddata((wx.ravel(), wy.ravel()), w["u_bl"].values.ravel(), (X, Y), method="linear")
    v = griddata((wx.ravel(), wy.ravel()), w["v_bl"].values.ravel(), (X, Y), method="linear")
    cat = read_point_source_catalogue(lon0, lat0, radius_km=10.0)
    scene = Scene(obs=obs - bg, valid=valid.astype(float), noise_std=noise, u=u, v=v, dx=dx,
                  pixel_cells=pixel_cells, point_cells=np.asarray([[n // 2, n // 2]]),
                  source_radius=np.asarray([4e3]), lifetime=lifetime, ratio=1.0 / nox_no2_ratio)
    info = dict(reference=float(cat["nox_emission"].sum()), n_units=len(cat),
                reference_source="CoCO2 point-source catalogue v1.1 (Guevara et al. 2023, ESSD, "
                                 "doi:10.5194/essd-2023-95), Matimba + Medupi units within 10 km, 2018 annual mean",
                background=bg, noise=noise, time=l2.attrs["time"],
                wind=(float(np.mean(u)), float(np.mean(v))))
    return scene, info


SMARTCARB_TRACERS = {"Berlin": "NO2_BV", "Janschwalde": "NO2_JV"}


def smartcarb_scene(source: str, n: int = 40, dx: float = 2000.0, pixel_cells: int = 2, *,
                    noise_std: float = 1e-5, seed: int = 0, lifetime: float = 4 * 3600.0,
                    nox_no2_ratio: float = 1.32):
    """SMARTCARB scene of ``source`` (``"Berlin"`` or ``"Janschwalde"``): the source's own
    NO2 tracer (no other sources, no background) at 2015-04-23 11 UTC with TROPOMI-like
    footprint and seeded noise. Returns ``(scene, info)`` with the shipped true emission
    at 11 UTC (kg s-1) as ``info["reference"]``."""
    from process_models.io.tropomi import (read_smartcarb_fields, read_smartcarb_sources,
                                           read_smartcarb_true_emissions, read_smartcarb_winds)
    if source not in SMARTCARB_TRACERS:
        raise ValueError(f"source={source!r}; use one of {sorted(SMARTCARB_TRACERS)}.")
    src = read_smartcarb_sources().loc[source]
    lon0, lat0 = float(src["longitude"]), float(src["latitude"])
    tracer = SMARTCARB_TRACERS[source]
    f = read_smartcarb_fields(tracers=(tracer,))
    wnd = read_smartcarb_winds()
    x, y = local_xy(f["lon"].values, f["lat"].values, lon0, lat0)
    half = 0.75 * n * dx
    near = (np.abs(x) < half) & (np.abs(y) < half)
    field, u, v = to_local_grid(x[near], y[near], [f[tracer].values[near], wnd["u"].values[near],
                                                   wnd["v"].values[near]], n, dx)
    clean = footprint_average(field, pixel_cells)
    rng = np.random.default_rng(seed)
    obs = clean + noise_std * rng.standard_normal(clean.shape)
    valid = np.isfinite(obs)
    truth = float(read_smartcarb_true_emissions(source, f.attrs["time"]))
    scene = Scene(obs=np.where(valid, obs, np.nan), valid=valid.astype(float), noise_std=noise_std,
                  u=u, v=v, dx=dx, pixel_cells=pixel_cells, point_cells=np.asarray([[n // 2, n // 2]]),
                  source_radius=np.asarray([float(src["radius"])]), lifetime=lifetime,
                  ratio=1.0 / nox_no2_ratio)
    info = dict(reference=truth, reference_source=f"SMARTCARB true emission at {f.attrs['time']} UTC "
                "(SMARTCARB-NO2-emissions.csv, NOx as NO2)", tracer=tracer, time=f.attrs["time"],
                wind=(float(np.mean(u)), float(np.mean(v))))
    return scene, info
