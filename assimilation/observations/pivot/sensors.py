"""Observation operators of every sensor of the pivot, in one module.

Each sensor is an *operator* from the pivot's common variables (daily, per 10 m pixel) to
what the sensor records, with its noise and bias; the inverse direction (data -> pivot) is
the fusion (:mod:`.multires`, :mod:`.learned`).

Sentinel-2 L2A (real data; Romania cube of the PyPI package ``nrt`` 0.2.1)
    Reflectance = DN / 1e4 (pre-2022 baselines, no offset). Usable = SCL in {4 vegetation,
    5 not vegetated} (the nrt examples' choice minus 7 "unclassified"). Indices: NDVI
    (Rouse et al. 1974), EVI (Huete et al. 2002, bands B8, B4, B2), NIRv (Badgley et al.
    2017). Per-observation index sd by first-order error propagation (Jacobian, exact for
    the linearised index) of the surface-reflectance uncertainty
    ``sd(rho) = 0.005 + 0.05 rho`` (Vermote & Kotchenova 2008, J. Geophys. Res. 113,
    D23S90: the MODIS/Landsat atmospheric-correction specification, used for S2 L2A too).

Coarse 300 m Sentinel-3-like proxy (SYNTHETIC, aggregated from S2)
    ``y_c,t = a + b mean_{i in c} x_i,t + s cos(2 pi (doy_t - d0) / 365.25) + v``,
    ``v ~ N(0, sd^2)``: block mean over 30 x 30 fine pixels (OLCI's 300 m; the block
    average is the area-weighted footprint of a sensor with a box point-spread function),
    a linear gain/bias (S3 OLCI vs S2 MSI inter-calibration differences of a few per cent,
    e.g. Hagolle et al. 2015, Remote Sens. 7, 12242 for S2 vs Landsat/MODIS), a seasonal
    bias term ``s`` (sun-geometry / BRDF differences that a linear operator cannot
    capture; it is what the learned residual correction of :mod:`.hybrid` has to find), and
    its own clouds: cloudy where the S2 scene is cloudy on an S2 date (the same clouds), and
    otherwise with probability ``cloud_fraction`` per day. The daily "surface" it sees is
    the S2 record itself interpolated linearly in time between clear S2 dates, so on a
    withheld S2 date the proxy carries that date's coarse-scale information, as a real
    300 m sensor would: a synthetic twin, documented as such.

Sentinel-1-like C-band VV backscatter (SYNTHETIC, water-cloud model)
    Attema & Ulaby (1978, Radio Sci. 13, 357), with LAI as the vegetation descriptor::

        sigma0 = A LAI cos(theta) (1 - tau2) + tau2 sigma0_soil,
        tau2 = exp(-2 B LAI / cos(theta)),   sigma0_soil[dB] = C + D theta_soil

    (linear power units; ``theta`` incidence angle; ``theta_soil`` top-soil water content,
    m3 m-3). The drivers are the coupled model's top-soil water and an LAI series (the
    study uses the coupled model run at a tower with the pivot LAI as its forcing). Speckle
    after multi-looking as a Gaussian noise in dB; no clouds; one acquisition every
    ``revisit_days``. Nothing here is a real S1 measurement.

MODIS (real data; MOD13A1 at towers, MOD13Q1 + MCD43A4 at Park Falls)
    The existing readers (:func:`process_models.io.read_modis_sites_mod13a1`,
    :func:`assimilation.observations.fusion.park_falls_evi_observations`); the operator is
    the fusion's ``y = a_s + b_s x + v`` with fitted sensor gain and bias.

Derived biophysical pivot variables (no red-edge bands in the cubes, so no SL2P)
    ``lai = -ln((NDVI_inf - NDVI) / (NDVI_inf - NDVI_soil)) / k`` with ``NDVI_inf = 0.95``,
    ``NDVI_soil = 0.15``, ``k = 0.5`` (the semi-empirical Beer's-law relation of Baret &
    Guyot 1991, Remote Sens. Environ. 35, 161; clipped to 0-8 m2 m-2) and
    ``fapar = 1.24 NDVI - 0.168`` (Myneni & Williams 1994, Remote Sens. Environ. 49, 200;
    clipped to 0-1); their sd by the delta method.
"""
from __future__ import annotations

import gzip
import io
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from process_models.satellite import evi as _evi
from process_models.satellite import ndvi as _ndvi
from process_models.satellite import nirv as _nirv
from process_models.units import DataValidationError

__all__ = ["ROMANIA_FOLDER", "S2_CLEAR_CLASSES", "read_romania_cube", "s2_index", "s2_index_sd",
           "s2_observations", "S2Observations", "screen_s2", "daily_grid", "block_mean", "coarse_cell_index",
           "CoarseProxy", "coarse_proxy", "coarse_operator", "water_cloud_sigma0", "sentinel1_proxy",
           "lai_from_ndvi", "fapar_from_ndvi", "INDICES", "CRS"]

ROMANIA_FOLDER = "s2-l2a_cubes_nrt_romania-france"
ROMANIA_10M = "sentinel2_cube_subset_romania_10m.nc.gz"
S2_CLEAR_CLASSES = (4, 5)
"""SCL classes kept (4 vegetation, 5 not vegetated)."""
CRS = "EPSG:3035"
INDICES = ("ndvi", "evi", "nirv")
REFL_SD_ABS, REFL_SD_REL = 0.005, 0.05
"""Surface-reflectance uncertainty sd = 0.005 + 0.05 rho (unit 1; Vermote & Kotchenova 2008)."""


def read_romania_cube(start: str | None = None, end: str | None = None) -> xr.Dataset:
    """The Romania Sentinel-2 L2A 10 m cube (100 x 100 px, 140 dates 2015-08 .. 2021-01).

    Returns a Dataset (time, y, x) with reflectances ``B2, B3, B4, B8`` (unit 1), ``clear``
    (bool, SCL in :data:`S2_CLEAR_CLASSES` and all bands finite and <= 1) and attrs ``crs``.
    """
    from process_models.io import data_path
    path = data_path(ROMANIA_FOLDER, ROMANIA_10M)
    with gzip.open(path) as fh:
        raw = fh.read()
    ds = xr.open_dataset(io.BytesIO(raw), engine="h5netcdf").load()
    if start is not None or end is not None:
        ds = ds.sel(time=slice(start, end))
    if ds.sizes["time"] == 0:
        raise DataValidationError(f"no date between {start} and {end}", source=str(path), variable="time",
                                  fix="the cube covers 2015-08-01 .. 2021-01-01")
    out = xr.Dataset(coords={"time": ds.time, "y": ds.y, "x": ds.x})
    ok = ds.SCL.isin(list(S2_CLEAR_CLASSES))
    for b in ("B2", "B3", "B4", "B8"):
        r = (ds[b].astype(np.float64) / 1e4)
        out[b] = r.assign_attrs(units="1", long_name=f"Sentinel-2 L2A {b} surface reflectance")
        ok = ok & np.isfinite(r) & (r > 0) & (r <= 1.0)
    out["clear"] = ok.assign_attrs(long_name="usable (SCL 4/5, reflectances in (0, 1])")
    out.attrs.update(crs=CRS, source=f"{ROMANIA_FOLDER}/{ROMANIA_10M} (nrt 0.2.1, Copernicus Sentinel-2)",
                     citation="Contains modified Copernicus Sentinel data 2015-2021; Dutrieux & Viehweger, nrt")
    return out


def s2_index(name: str, blue, red, nir):
    """Index ``name`` (ndvi, evi, nirv) of reflectances (unit 1), element-wise."""
    if name == "ndvi":
        return _ndvi(nir, red)
    if name == "evi":
        return _evi(nir, red, blue)
    if name == "nirv":
        return _nirv(nir, red)
    raise ValueError(f"index {name!r} is not one of {INDICES}")


def s2_index_sd(name: str, blue, red, nir):
    """First-order sd of index ``name`` from independent reflectance errors
    ``sd(rho) = 0.005 + 0.05 rho`` (unit 1): ``sqrt(sum_b (d index / d rho_b)^2 sd_b^2)``."""
    def one(b, r, n):
        g = jax.grad(lambda v: s2_index(name, v[0], v[1], v[2]))(jnp.stack([b, r, n]))
        sd = REFL_SD_ABS + REFL_SD_REL * jnp.stack([b, r, n])
        return jnp.sqrt(jnp.sum((g * sd) ** 2))
    shape = jnp.broadcast_shapes(jnp.shape(blue), jnp.shape(red), jnp.shape(nir))
    b, r, n = (jnp.broadcast_to(jnp.asarray(a), shape).reshape(-1) for a in (blue, red, nir))
    return jax.vmap(one)(b, r, n).reshape(shape)


class S2Observations(NamedTuple):
    """Sentinel-2 index observations on the daily grid, pixels flattened (row-major y, x)."""

    values: dict
    """{index: (P, T)} (unit 1), 0 where not observed."""
    sd: dict
    """{index: (P, T)} per-observation sd (unit 1)."""
    mask: np.ndarray
    """(P, T) bool: a clear S2 observation on that day."""
    days: pd.DatetimeIndex
    """The T days (00:00)."""
    shape: tuple
    """(ny, nx) of the grid."""
    x: np.ndarray
    y: np.ndarray


def daily_grid(dates, days):
    """Day index of each acquisition ``dates`` in ``days`` (-1 outside)."""
    d = (pd.DatetimeIndex(dates).floor("D") - days[0]).days.to_numpy()
    return np.where((d >= 0) & (d < len(days)), d, -1)


def s2_observations(cube: xr.Dataset, indices=INDICES, days=None, valid_range=(-0.2, 1.0)) -> S2Observations:
    """Indices and their sd of a cube of :func:`read_romania_cube` on a daily grid.

    Values outside ``valid_range`` (open interval) count as not observed (residual clouds,
    snow). ``days``: the target days (default: every day of the cube's span)."""
    days = pd.date_range(pd.Timestamp(cube.time.values[0]).floor("D"),
                         pd.Timestamp(cube.time.values[-1]).floor("D")) if days is None else pd.DatetimeIndex(days)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    P, T = ny * nx, len(days)
    di = daily_grid(cube.time.values, days)
    keep = di >= 0
    bands = [cube[b].values[keep].reshape(int(keep.sum()), P).T for b in ("B2", "B4", "B8")]
    clear = cube["clear"].values[keep].reshape(int(keep.sum()), P).T
    mask = np.zeros((P, T), bool)
    vals, sds = {}, {}
    ok_all = clear.copy()
    raw = {}
    for name in indices:
        v = np.asarray(s2_index(name, *[jnp.asarray(np.where(clear, b, 0.1)) for b in bands]))
        ok_all &= np.isfinite(v) & (v > valid_range[0]) & (v < valid_range[1])
        raw[name] = v
    for name in indices:
        s = np.asarray(s2_index_sd(name, *[jnp.asarray(np.where(clear, b, 0.1)) for b in bands]))
        vv, ss = np.zeros((P, T)), np.ones((P, T))
        vv[:, di[keep]] = np.where(ok_all, raw[name], 0.0)
        ss[:, di[keep]] = np.where(ok_all, s, 1.0)
        vals[name], sds[name] = vv, ss
    mask[:, di[keep]] = ok_all
    return S2Observations(vals, sds, mask, days, (ny, nx), cube.x.values, cube.y.values)


def _neighbour(vals, ok, forward=True):
    """Value of the previous (next) valid entry along axis 1, NaN if none."""
    P, D = vals.shape
    idx = np.where(ok, np.arange(D)[None, :], -1 if forward else D)
    if forward:
        idx = np.maximum.accumulate(idx, axis=1)
        idx = np.concatenate([np.full((P, 1), -1), idx[:, :-1]], 1)
        bad = idx < 0
    else:
        idx = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]
        idx = np.concatenate([idx[:, 1:], np.full((P, 1), D)], 1)
        bad = idx >= D
    v = np.take_along_axis(vals, np.clip(idx, 0, D - 1), 1)
    return np.where(bad, np.nan, v)


def screen_s2(obs: S2Observations, *, index: str = "ndvi", min_scene_share: float = 0.25,
              dip: float = 0.1, iterations: int = 2) -> tuple[S2Observations, dict]:
    """Residual-cloud screening of the S2 observations (SCL misses thin cloud and haze).

    1. Scene rule: a date is dropped where less than ``min_scene_share`` of the cube is
       clear (SCL); the clear pixels of mostly cloudy scenes carry cloud edges and shadows.
    2. Dip rule per pixel (BISE, Viovy, Arino & Belward 1992, Int. J. Remote Sens. 13,
       1585): an observation of ``index`` lower than both its previous and next valid
       observations by more than ``dip`` is a cloud or haze dip, dropped (``iterations``
       passes). Applies to every index of the observation (one mask).
    Returns the screened observations and counts of what each rule removed."""
    mask = obs.mask.copy()
    d = np.flatnonzero(mask.any(0))
    share = mask[:, d].mean(0)
    n0 = int(mask.sum())
    mask[:, d[share < min_scene_share]] = False
    n1 = int(mask.sum())
    for _ in range(iterations):
        v, ok = obs.values[index][:, d], mask[:, d]
        vv = np.where(ok, v, np.nan)
        prev, nxt = _neighbour(vv, ok, True), _neighbour(vv, ok, False)
        drop = ok & (vv < prev - dip) & (vv < nxt - dip)
        mask[:, d] &= ~drop
    counts = {"observations": n0, "scene_rule_removed": n0 - n1, "dip_rule_removed": n1 - int(mask.sum()),
              "dates_removed_scene_rule": int((share < min_scene_share).sum()), "dates": int(len(d))}
    return obs._replace(mask=mask), counts


# ----------------------------------------------------------------------------- coarse proxy
def coarse_cell_index(shape, factor: int = 30):
    """(P,) coarse-cell number of each fine pixel (row-major), and the coarse grid shape;
    edge cells hold the remaining < ``factor`` rows/columns."""
    ny, nx = shape
    cy, cx = np.arange(ny) // factor, np.arange(nx) // factor
    ncy, ncx = int(cy.max()) + 1, int(cx.max()) + 1
    return (cy[:, None] * ncx + cx[None, :]).reshape(-1), (ncy, ncx)


def block_mean(values, mask, cell, n_cells):
    """Mean over the fine pixels of each coarse cell: values, mask (P, T) -> (C, T) mean,
    count. Pixels without a valid value are left out."""
    w = np.asarray(mask, float)
    s = np.zeros((n_cells, values.shape[1]))
    c = np.zeros((n_cells, values.shape[1]))
    np.add.at(s, cell, np.where(mask, values, 0.0))
    np.add.at(c, cell, w)
    return np.where(c > 0, s / np.maximum(c, 1), 0.0), c


def coarse_operator(fine_mean, doy, bias, gain, seasonal):
    """Noise-free coarse observation ``a + b x + s cos(2 pi (doy - 200) / 365.25)`` of a
    coarse-cell mean ``x`` (unit 1)."""
    return bias + gain * fine_mean + seasonal * jnp.cos(2 * jnp.pi * (doy - 200.0) / 365.25)


class CoarseProxy(NamedTuple):
    values: np.ndarray
    """(C, T) coarse observations (unit 1), 0 where cloudy."""
    mask: np.ndarray
    """(C, T) bool: a clear coarse observation."""
    truth: np.ndarray
    """(C, T) noise-free operator output (what the sensor would record without noise)."""
    cell: np.ndarray
    """(P,) coarse cell of each fine pixel."""
    grid: tuple
    """(ncy, ncx) coarse grid."""
    noise_sd: float
    bias: float
    gain: float
    seasonal: float


def coarse_proxy(obs: S2Observations, index: str = "ndvi", *, factor: int = 30, bias: float = 0.02,
                 gain: float = 0.95, seasonal: float = 0.02, noise_sd: float = 0.015,
                 cloud_fraction: float = 0.4, scene_cloud_limit: float = 0.5, seed: int = 0) -> CoarseProxy:
    """Synthetic 300 m daily sensor from the S2 record (see the module docstring).

    The coarse-cell "surface" is the mean of the clear fine pixels on S2 dates with at
    least half the cell clear, linearly interpolated in time between them; the sensor is
    cloudy on S2 dates where less than ``scene_cloud_limit`` of the cell is clear, and
    otherwise with probability ``cloud_fraction``."""
    cell, grid = coarse_cell_index(obs.shape, factor)
    C = grid[0] * grid[1]
    P, T = obs.mask.shape
    m, cnt = block_mean(obs.values[index], obs.mask, cell, C)
    npix = np.bincount(cell, minlength=C)[:, None]
    s2_day = obs.mask.any(0)
    good = cnt >= 0.5 * npix
    t = np.arange(T)
    surface = np.stack([np.interp(t, t[g], m[c, g]) if g.any() else np.full(T, np.nan)
                        for c, g in enumerate(good)])
    doy = obs.days.day_of_year.to_numpy().astype(float)
    truth = np.asarray(coarse_operator(jnp.asarray(surface), jnp.asarray(doy), bias, gain, seasonal))
    rng = np.random.default_rng(seed)
    cloudy = rng.random((C, T)) < cloud_fraction
    cloudy |= s2_day[None, :] & ~((cnt >= scene_cloud_limit * npix))
    mask = ~cloudy & np.isfinite(truth)
    vals = np.where(mask, truth + noise_sd * rng.standard_normal((C, T)), 0.0)
    return CoarseProxy(vals, mask, np.nan_to_num(truth), cell, grid, noise_sd, bias, gain, seasonal)


# ----------------------------------------------------------------------------- Sentinel-1 proxy
def water_cloud_sigma0(lai, soil_moisture, incidence_deg=38.0, A=0.12, B=0.12, C=-18.0, D=30.0):
    """Water-cloud model (Attema & Ulaby 1978) C-band VV backscatter, dB.

    ``lai`` m2 m-2, ``soil_moisture`` m3 m-3, ``incidence_deg`` degrees; A (1, linear power
    per unit LAI), B (per unit LAI), C (dB), D (dB per m3 m-3): values of the magnitude
    fitted at C band (e.g. Baghdadi et al. 2017, Remote Sens. 9, 1) -- illustrative, the
    proxy is synthetic. Element-wise, differentiable."""
    cos_t = jnp.cos(jnp.deg2rad(incidence_deg))
    tau2 = jnp.exp(-2.0 * B * lai / cos_t)
    soil = 10.0 ** ((C + D * soil_moisture) / 10.0)
    s0 = A * lai * cos_t * (1.0 - tau2) + tau2 * soil
    return 10.0 * jnp.log10(s0)


def sentinel1_proxy(lai, soil_moisture, days, *, revisit_days: int = 6, noise_db: float = 0.7,
                    incidence_deg: float = 38.0, seed: int = 0):
    """Synthetic S1 VV series: (P, T) LAI and (T,) or (P, T) top-soil water -> values (dB),
    mask (an acquisition every ``revisit_days``) and the noise-free sigma0."""
    lai = np.asarray(lai, float)
    sm = np.broadcast_to(np.asarray(soil_moisture, float), lai.shape)
    clean = np.asarray(water_cloud_sigma0(jnp.asarray(lai), jnp.asarray(sm), incidence_deg))
    T = lai.shape[-1]
    mask = np.broadcast_to((np.arange(T) % revisit_days) == 0, lai.shape).copy()
    rng = np.random.default_rng(seed)
    vals = np.where(mask, clean + noise_db * rng.standard_normal(lai.shape), 0.0)
    return vals, mask, clean


# ----------------------------------------------------------------------------- derived variables
NDVI_INF, NDVI_SOIL, K_EXT = 0.95, 0.15, 0.5


def lai_from_ndvi(ndvi, ndvi_sd=None):
    """LAI (m2 m-2) and its delta-method sd (capped at 4 m2 m-2 near saturation) from NDVI
    (Baret & Guyot 1991 form)."""
    n = jnp.clip(ndvi, NDVI_SOIL + 1e-3, NDVI_INF - 0.01)
    lai = jnp.clip(-jnp.log((NDVI_INF - n) / (NDVI_INF - NDVI_SOIL)) / K_EXT, 0.0, 8.0)
    if ndvi_sd is None:
        return lai
    return lai, jnp.minimum(jnp.abs(1.0 / (K_EXT * (NDVI_INF - n))) * ndvi_sd, 4.0)


def fapar_from_ndvi(ndvi, ndvi_sd=None):
    """FAPAR (1) = 1.24 NDVI - 0.168 (Myneni & Williams 1994), clipped to [0, 1], and sd."""
    f = jnp.clip(1.24 * ndvi - 0.168, 0.0, 1.0)
    if ndvi_sd is None:
        return f
    return f, 1.24 * ndvi_sd
