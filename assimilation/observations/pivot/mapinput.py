"""The multi-resolution and learned pivots as the regional map engine's satellite input.

VPRM (Mahadevan et al. 2008) needs a greenness index (EVI, or EVI2 for a cube without a
blue band, Jiang et al. 2008) and LSWI (Xiao et al. 2004, NIR 865 nm and SWIR 1.6 um: B8A
and B11). The shipped Romania cubes carry B2, B3, B4, B8 at 10 m and B3, B4, B8A, B11 at
20 m on the same footprint and dates; the France series carries B3, B4, B8A, B11 only (no
blue: EVI2, B8A as NIR). The engine reads them on the 20 m grid (the 10 m bands averaged
2 x 2, :func:`assimilation.maps.sources.read_sentinel2_l2a`), the only grid where LSWI
exists without resampling B11 and where the land-cover raster lies; the pivots here are
built on that grid from the same reflectances (:func:`map_observations`), so a learned
or multires pivot and the engine's own Kalman pivot differ only in the fusion.

* :func:`map_observations`: the configured cube (window, pivot days = the statistics year
  and the map period padded by 90 days, as :func:`assimilation.maps.pivot.pivot_days`) as
  :class:`.sensors.S2Observations` of the greenness index, LSWI (and NDVI), each with its
  per-observation sd from the reflectance error ``0.005 + 0.05 rho`` (Vermote & Kotchenova
  2008) by first-order propagation (:func:`band_index_sd`).
* :func:`multires_map_pivot`: :func:`.multires.multires_fuse` of each index with its
  synthetic 300 m coarse proxy (15 x 15 px of 20 m).
* :func:`learned_map_pivot`: the masked autoencoder (:mod:`.learned`, S2 + proxy tokens),
  initialised from and regularised by the multires pivot (:mod:`.hybrid`), its sd
  calibrated by a conformal scale on calibration dates hidden from its training
  (:func:`.learned.train_calibrated`). Its sd is the predictive sd of a clear S2
  observation (it includes the observation error, so it bounds the state's sd from above).
* :func:`to_map_pivot`: the Dataset in the engine's format (``evi``/``evi2``, ``lswi`` and
  their ``_sd``, ``pixel_flag`` 0 ok / 1 no clear observation / 2 fewer than 4), checked by
  :func:`assimilation.maps.pivot.validate_pivot`; ``run_map(config, pivot=ds)`` maps it.
"""
from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from process_models.satellite import evi as _evi
from process_models.satellite import evi2 as _evi2
from process_models.satellite import lswi as _lswi
from process_models.satellite import ndvi as _ndvi
from process_models.satellite import nirv as _nirv
from process_models.units import DataValidationError

from .sensors import REFL_SD_ABS, REFL_SD_REL, S2Observations, coarse_proxy, daily_grid

__all__ = ["BAND_INDICES", "band_index", "band_index_sd", "map_observations", "observation_flags",
           "to_map_pivot", "pixel_series", "multires_map_pivot", "calibration_split", "learned_map_pivot"]

BAND_INDICES = {"evi": ("nir", "red", "blue"), "evi2": ("nir", "red"), "ndvi": ("nir", "red"),
                "nirv": ("nir", "red"), "lswi": ("nir08", "swir16")}
"""Bands of each index (names of :data:`assimilation.maps.sources.S2_BANDS`: nir = B8 or,
without B8, B8A; nir08 = B8A; swir16 = B11)."""

_FLAG_ATTRS = {"units": "1", "flag_values": "0 1 2",
               "flag_meanings": "ok no_clear_observation few_observations"}


def band_index(name: str, bands: dict):
    """Index ``name`` of reflectances ``bands`` (unit 1), element-wise: EVI (Huete et al.
    2002), EVI2 (Jiang et al. 2008), NDVI (Rouse et al. 1974), NIRv (Badgley et al. 2017),
    LSWI (Xiao et al. 2004)."""
    b = bands
    fn = {"evi": lambda: _evi(b["nir"], b["red"], b["blue"]), "evi2": lambda: _evi2(b["nir"], b["red"]),
          "ndvi": lambda: _ndvi(b["nir"], b["red"]), "nirv": lambda: _nirv(b["nir"], b["red"]),
          "lswi": lambda: _lswi(b["nir08"], b["swir16"])}
    if name not in fn:
        raise ValueError(f"index {name!r} is not one of {sorted(fn)}")
    return fn[name]()


def band_index_sd(name: str, bands: dict):
    """First-order sd (unit 1) of ``band_index(name, bands)`` from independent reflectance
    errors ``sd(rho) = 0.005 + 0.05 rho``: ``sqrt(sum_b (d index / d rho_b)^2 sd_b^2)``."""
    names = BAND_INDICES[name]

    def one(v):
        g = jax.grad(lambda u: band_index(name, dict(zip(names, u))))(v)
        return jnp.sqrt(jnp.sum((g * (REFL_SD_ABS + REFL_SD_REL * v)) ** 2))
    arrs = [jnp.asarray(bands[n]) for n in names]
    shape = jnp.broadcast_shapes(*(a.shape for a in arrs))
    v = jnp.stack([jnp.broadcast_to(a, shape).reshape(-1) for a in arrs], 1)
    return jax.vmap(one)(v).reshape(shape)


def map_observations(config, *, pad_days: int = 90, extra=("ndvi",)):
    """The map config's Sentinel-2 cube (its window) as :class:`.sensors.S2Observations` on
    the engine's pivot days, with the greenness index (``evi``, ``evi2`` without a blue
    band), ``lswi`` and ``extra`` indices and their per-observation sd.

    Mask: the engine's clear-sky rule (SCL, reflectance range) and every index finite,
    greenness in [-0.2, 1] (pyVPRM's EVI filter, widened for bare soil), LSWI in (-1, 1).
    Returns ``(obs, info)`` with ``info = {"crs": WKT, "greenness": name, "indices": ...}``."""
    from assimilation.maps import load_config
    from assimilation.maps.config import period_hours
    from assimilation.maps.pivot import pivot_days
    from assimilation.maps.sources import read_sentinel2_l2a
    cfg = load_config(config) if not hasattr(config, "satellite") else config
    s = cfg.satellite
    if s.kind != "sentinel2_l2a":
        raise DataValidationError(f"satellite.kind {s.kind!r}: the pivot builders read Sentinel-2 L2A cubes.",
                                  source="map config", variable="satellite.kind",
                                  fix="use a sentinel2_l2a configuration.")
    paths = [cfg.resolve(s.folder, p) for p in s.paths]
    refl = read_sentinel2_l2a(paths, s.scale_factor, crs=s.crs, needed=("red", "nir", "nir08", "swir16"))
    green = "evi" if "blue" in refl else "evi2"
    if cfg.run.window:
        y0, y1, x0, x1 = cfg.run.window
        refl = refl.isel(y=slice(y0, y1), x=slice(x0, x1))
    hours = period_hours(cfg.run)
    year = cfg.run.statistics_year or hours[0].year
    days = pivot_days(refl, hours, year, pad_days)
    di = daily_grid(refl.time.values, days)
    keep = di >= 0
    if not keep.any():
        raise DataValidationError(f"no acquisition between {days[0].date()} and {days[-1].date()}.",
                                  source=str(paths[0]), variable="time", fix="choose run.start inside the record.")
    ny, nx = refl.sizes["y"], refl.sizes["x"]
    P, T, n = ny * nx, len(days), int(keep.sum())
    flat = lambda da: da.transpose("time", "y", "x").values[keep].reshape(n, P).T  # noqa: E731
    clear = flat(refl["clear"]).astype(bool)
    bands = {b: np.where(clear, flat(refl[b]), 0.1) for b in refl.data_vars if b != "clear"}
    names = tuple(dict.fromkeys((green, "lswi") + tuple(extra)))
    raw = {k: np.asarray(band_index(k, bands)) for k in names}
    ok = clear.copy()
    for k, v in raw.items():
        ok &= np.isfinite(v)
    ok &= (raw[green] >= -0.2) & (raw[green] <= 1.0) & (np.abs(raw["lswi"]) < 1.0)
    vals, sds = {}, {}
    for k in names:
        sd = np.asarray(band_index_sd(k, bands))
        vv, ss = np.zeros((P, T)), np.ones((P, T))
        vv[:, di[keep]] = np.where(ok, raw[k], 0.0)
        ss[:, di[keep]] = np.where(ok, sd, 1.0)
        vals[k], sds[k] = vv, ss
    mask = np.zeros((P, T), bool)
    mask[:, di[keep]] = ok
    obs = S2Observations(vals, sds, mask, days, (ny, nx), refl.x.values, refl.y.values)
    return obs, {"crs": refl.attrs["crs"], "greenness": green, "indices": names}


def observation_flags(mask) -> np.ndarray:
    """(P,) int8 pixel flag of a (P, T) clear mask: 0 ok, 1 no clear observation, 2 fewer
    than 4 (the engine's codes)."""
    n = np.asarray(mask, bool).sum(1)
    return np.where(n == 0, 1, np.where(n < 4, 2, 0)).astype(np.int8)


def to_map_pivot(means: dict, sds: dict, days, x, y, *, method: str, crs: str, flags=None,
                 sd_floor: float = 1e-4) -> xr.Dataset:
    """The map engine's pivot Dataset from ``{name: (P, T)}`` means and sds (pixels
    row-major over (y, x)): ``name`` and ``name_sd`` (time, y, x), ``pixel_flag`` (y, x),
    attrs ``crs`` (give the cube's WKT: the engine writes it as the store's grid mapping)
    and ``pivot_method``. It must hold a greenness index (``evi`` or ``evi2``) and ``lswi``.
    Checked by :func:`assimilation.maps.pivot.validate_pivot`."""
    from assimilation.maps.pivot import validate_pivot

    from .evaluate import to_pivot
    if not (("evi" in means or "evi2" in means) and "lswi" in means):
        raise DataValidationError(f"the pivot has {sorted(means)}; VPRM needs evi (or evi2) and lswi.",
                                  source=f"{method} pivot", variable="lswi",
                                  fix="fuse LSWI (B8A, B11) and EVI (B2, B4, B8) or EVI2 (B4, B8A) too.")
    ds = to_pivot(means, sds, days, x, y, method=method, crs=crs, derive=False, sd_floor=sd_floor)
    ny, nx = len(y), len(x)
    f = np.zeros(ny * nx, np.int8) if flags is None else np.asarray(flags, np.int8)
    ds["pixel_flag"] = (("y", "x"), f.reshape(ny, nx), _FLAG_ATTRS)
    ds.attrs["history"] = f"ecoflux assimilation.observations.pivot ({method}) -> map engine input"
    return validate_pivot(ds, source=f"{method} pivot")


def pixel_series(obs: S2Observations, proxies: dict, indices, mask=None, pixels=None, s1=None):
    """:class:`.learned.PixelSeries` of the S2 ``indices`` (sensor 0, the targets), their
    coarse proxies (sensor 1) and optionally the S1 proxy (sensor 2, (values, mask) in dB,
    standardised about -10 dB) for ``pixels`` (default all); ``mask``: the S2 mask to use
    (default ``obs.mask``)."""
    from .learned import PixelSeries
    P = obs.mask.shape[0]
    pix = np.arange(P) if pixels is None else np.asarray(pixels)
    m = obs.mask if mask is None else np.asarray(mask, bool)
    vals = [obs.values[ix][pix] for ix in indices] + [proxies[ix].values[proxies[ix].cell[pix]] for ix in indices]
    msk = [m[pix] for _ in indices] + [proxies[ix].mask[proxies[ix].cell[pix]] for ix in indices]
    sensor_of = [0] * len(indices) + [1] * len(indices)
    if s1 is not None:
        vals.append((s1[0][pix] + 10.0) / 3.0)
        msk.append(s1[1][pix])
        sensor_of.append(2)
    return PixelSeries(np.stack(vals, -1), np.stack(msk, -1), tuple(sensor_of), tuple(range(len(indices))),
                       obs.days.day_of_year.to_numpy().astype(float))


def _proxies(obs, indices, factor, seed):
    return {ix: coarse_proxy(obs, ix, factor=factor, seed=seed) for ix in indices}


def multires_map_pivot(obs: S2Observations, info: dict, *, factor: int = 15, fit_steps: int = 100,
                       seed: int = 0, mask=None, proxies=None, params_from=None):
    """The multi-resolution Kalman pivot (:func:`.multires.multires_fuse`, S2 + a synthetic
    300 m proxy of ``factor`` x ``factor`` pixels: 15 at 20 m) of the greenness index and
    LSWI as a map-engine pivot. ``mask``: the S2 observations to use (default all);
    ``params_from``: ``{index: MultiresResult}`` whose fitted parameters are reused (no
    maximum-likelihood fit). Returns ``(Dataset, {index: MultiresResult}, proxies)``."""
    from .multires import multires_fuse
    names = (info["greenness"], "lswi")
    proxies = proxies or _proxies(obs, names, factor, seed)
    m = obs.mask if mask is None else mask

    def fixed(ix):
        if params_from is None:
            return {}
        r = params_from[ix]
        return dict(cell_process=r.cell_fit.process, cell_sensors=r.cell_fit.sensors, pixel_params=r.pixel_params)
    res = {ix: multires_fuse(obs.values[ix], m, obs.sd[ix], proxies[ix].values, proxies[ix].mask, proxies[ix].cell,
                             fit_steps=fit_steps, seed=seed, **fixed(ix)) for ix in names}
    ds = to_map_pivot({k: r.mean for k, r in res.items()}, {k: r.sd for k, r in res.items()}, obs.days, obs.x,
                      obs.y, method="multires_kalman", crs=info["crs"], flags=observation_flags(obs.mask))
    return ds, res, proxies


def calibration_split(obs: S2Observations, fraction: float = 0.2, seed: int = 0):
    """(fit, calibration) masks: ``fraction`` of the clear S2 dates at random (seed + 1)."""
    from .evaluate import withhold_dates
    return withhold_dates(obs.mask, fraction, "random", seed=seed + 1)


def learned_map_pivot(obs: S2Observations, info: dict, *, learned_config=None, train_config=None,
                      factor: int = 15, fit_steps: int = 100, calibration_fraction: float = 0.2,
                      seed: int = 0, checkpoint_dir=None, proxies=None, phys=None):
    """The learned pivot (physics-regularised masked autoencoder) of the greenness index and
    LSWI as a map-engine pivot, its sd calibrated on ``calibration_fraction`` of the S2
    dates (random) hidden from its training, input and physical prior (the multires pivot
    of the other dates; ``phys``: that prior, ``{index: MultiresResult}`` fitted on
    :func:`calibration_split` ``[0]``, else computed). Prediction uses every observation.
    Returns ``(Dataset, info)`` with the conformal scales and the training result."""
    from emulator.train import TrainConfig

    from .hybrid import physics_informed_series
    from .learned import LearnedConfig, predict, train_calibrated
    names = (info["greenness"], "lswi")
    proxies = proxies or _proxies(obs, names, factor, seed)
    fit_mask, cal = calibration_split(obs, calibration_fraction, seed)
    if phys is None:
        _, phys, _ = multires_map_pivot(obs, info, factor=factor, fit_steps=fit_steps, seed=seed, mask=fit_mask,
                                        proxies=proxies)
    tc = train_config or TrainConfig(steps=300, warmup_steps=30, eval_every=75, patience=100,
                                     checkpoint_every=150, progress=False, seed=seed)
    cfg = learned_config or LearnedConfig(seed=seed)
    cfg = replace(cfg, phys_weight=max(cfg.phys_weight, 1.0),
                  pretrain_steps=cfg.pretrain_steps or max(tc.steps // 4, 1))
    series = pixel_series(obs, proxies, names)
    s_phys = physics_informed_series(series, np.stack([phys[k].mean for k in names], -1),
                                     np.stack([phys[k].sd for k in names], -1))
    res, scales = train_calibrated(s_phys, cfg, tc, cal, checkpoint_dir=checkpoint_dir,
                                   pretrain_checkpoint_dir=None if checkpoint_dir is None else f"{checkpoint_dir}_pre")
    _, mean, sd = predict(res.model, series)
    ds = to_map_pivot({k: mean[..., j].astype(float) for j, k in enumerate(names)},
                      {k: scales[j] * sd[..., j].astype(float) for j, k in enumerate(names)}, obs.days, obs.x,
                      obs.y, method="learned", crs=info["crs"], flags=observation_flags(obs.mask))
    ds.attrs["sd_calibration"] = "conformal scale per variable on withheld calibration dates: " + ", ".join(
        f"{k} {scales[j]:.3f}" for j, k in enumerate(names))
    return ds, {"scales": dict(zip(names, map(float, scales))), "train": res, "model": res.model,
                "calibration_dates": int(cal.any(0).sum())}
