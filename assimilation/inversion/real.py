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

__all__ = ["local_xy", "to_local_grid", "matimba_scene", "smartcarb_scene", "estimate_noise", "omi_mass_balance",
           "OMI_CASES"]

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


OMI_CASES = {"oltenia": ("Oltenia power plants (OMI L3)", 23.5, 44.6, True),
             "bucharest": ("Bucharest (OMI L3)", 26.1, 44.43, False)}
"""Name, centre longitude and latitude (degrees) of the OMI Romania cases and whether the
CoCO2 power-plant catalogue is a comparable reference: the Turceni, Rovinari, Isalnita and
Craiova II plants (yes; the city of Craiova adds unlisted emissions) and the city of
Bucharest (no: its traffic and residential NOx are in no shipped inventory)."""


def omi_mass_balance(lon0: float, lat0: float, *, kind: str = "climatology", months=(5, 6, 7, 8, 9),
                     radius_km: float = 100.0, ring_km: float = 160.0, lifetime: float = 4 * 3600.0,
                     lifetime_rel_sd: float = 0.4, nox_no2_ratio: float = 1.32, ratio_rel_sd: float = 0.1,
                     column_rel_sd: float = 0.25, wind_speed: float = 4.0, wind_speed_sd: float = 2.0,
                     data=None) -> dict:
    """NOx emission (kg s-1, NOx as NO2) within ``radius_km`` of (lon0, lat0) from OMI L3
    monthly-mean NO2 columns by a steady-state mass balance with a prescribed lifetime (no
    winds ship with the OMI crop, so the flux divergence cannot be formed)::

        B = sum_i (V_i - V_bg) A_i                (NO2 burden above background, mol)
        E = L M_NO2 B / tau / f_in,   f_in = 1 - exp(-R / (w tau))

    ``E = B / tau`` is the steady-state balance of Beirle et al. (2011, Science 333:1737),
    who fit ``B`` and ``tau`` with an exponentially-modified Gaussian along the wind; here
    ``tau`` is prescribed (4 h, the middle of the 2-8 h TROPOMI range of Lange et al. 2022,
    ACP 22:2745, for mid-latitudes; relative sd 0.4). ``V_bg`` is the median of the annulus
    R < r <= ``ring_km`` (it removes the stratospheric and free-tropospheric column: the
    climatology file is a total column). ``f_in`` is the share of the burden inside R for
    a source whose NOx flows out radially at speed w and decays with tau (burden density
    per unit radius ~ exp(-r / (w tau))), with an assumed climatological boundary-layer
    wind w = 4 +- 2 m s-1. ``L`` = NOx/NO2 = 1.32 (as for Matimba). Cells count if their
    centre lies within R (equirectangular distance).

    Uncertainty (1 sigma, quadrature): the month-to-month spread of the monthly estimates
    / sqrt(months), the lifetime, ratio and OMI column (``column_rel_sd``, assumed 25 %)
    relative terms and the wind speed through ``f_in``.
    """
    from process_models.io.omi import read_omi_no2_l3
    from process_models.io.tropomi import read_point_source_catalogue
    from process_models.transport import M_NO2
    ds = read_omi_no2_l3(kind) if data is None else data
    V = np.asarray(ds["no2_column"].values, float)
    if kind == "climatology" or "month" in ds.coords:
        mon = np.asarray(ds["month"].values)
    else:
        mon = np.asarray(ds["time"].dt.month.values)
    sel = np.isin(mon, np.asarray(months))
    if not sel.any():
        raise ValueError(f"omi_mass_balance: none of months {months} in the {kind} file (has {sorted(set(mon))}).")
    lat, lon = np.asarray(ds["lat"].values), np.asarray(ds["lon"].values)
    LON, LAT = np.meshgrid(lon, lat)
    x, y = local_xy(LON, LAT, lon0, lat0)
    d = np.hypot(x, y)
    R, Rr = radius_km * 1e3, ring_km * 1e3
    if Rr <= R:
        raise ValueError(f"ring_km={ring_km} must exceed radius_km={radius_km}.")
    dlat, dlon = np.deg2rad(abs(lat[1] - lat[0])), np.deg2rad(abs(lon[1] - lon[0]))
    area = EARTH_RADIUS**2 * dlat * dlon * np.cos(np.deg2rad(LAT))              # m2
    disk, ring = d <= R, (d > R) & (d <= Rr)
    if d.max() < Rr:
        raise ValueError(f"the OMI crop does not reach {ring_km} km around ({lon0}, {lat0}).")

    def one(Vm):
        bg = np.nanmedian(Vm[ring])
        B = np.nansum((Vm[disk] - bg) * area[disk])                                 # mol
        return B, bg

    per_month = np.asarray([one(V[t])[0] for t in np.flatnonzero(sel)])
    B, bg = one(np.nanmean(V[sel], axis=0))
    f_in = 1.0 - np.exp(-R / (wind_speed * lifetime))
    E = nox_no2_ratio * M_NO2 * B / lifetime / f_in
    scale = nox_no2_ratio * M_NO2 / lifetime / f_in
    e_months = per_month * scale
    rand = float(np.std(e_months, ddof=1) / np.sqrt(len(e_months))) if len(e_months) > 1 else abs(E)
    # d ln f_in / d ln w
    L = wind_speed * lifetime
    dlnf = -(R / L) * np.exp(-R / L) / f_in
    rel = np.sqrt(lifetime_rel_sd**2 + ratio_rel_sd**2 + column_rel_sd**2 + (dlnf * wind_speed_sd / wind_speed) ** 2)
    sd = float(np.hypot(rand, rel * E))
    cat = read_point_source_catalogue(lon0, lat0, radius_km=radius_km)
    return {"estimate": float(E), "sd": sd, "monthly_estimates": e_months.tolist(), "background_mol_m2": float(bg),
            "burden_mol": float(B), "inside_fraction": float(f_in), "cells": int(disk.sum()),
            "reference": float(cat["nox_emission"].sum()), "reference_units": int(len(cat)),
            "kind": kind, "months": list(months), "column": ds.attrs.get("column", "")}
