"""Synthetic twin of the upscaling maps: the coupled model as truth over the pixels of a
shipped Sentinel-2 cube, a few "tower" pixels as training sites, the upscaling models
predicting every pixel, and the spatial skill where the truth is known (issue 13, item 5).

Truth
-----
The coupled soil-moisture / photosynthesis model (:class:`process_models.coupled.CoupledModel`
through its public ``default_params`` / ``set_parameters`` / ``simulate``; FvCB + Medlyn
stomata, Richards soil water, CASA-like pools) runs hourly at every pixel of the cube
(optionally every ``stride``-th pixel), forced by

* **meteorology**: the CH-Dav tower record (``ch-dav_2013-2022_diive``: air temperature,
  VPD, global radiation, precipitation, pressure; gaps filled with
  :func:`process_models.io.fill_gaps`, Falge et al. 2001), uniform over the domain and with
  CH-Dav's solar geometry: as in ``experiments/configs/romania_s2.toml``, no weather record
  of the Romanian site is shipped, so a real (Alpine) record stands in;
* **leaf area** from the pixel's daily pivot EVI (:func:`assimilation.maps.pivot.daily_pivot`,
  Kalman/RTS smoother of the cloud-screened S2 acquisitions): LAI = 3.618 EVI - 0.118
  (Boegh et al. 2002, Remote Sens. Environ. 81, 179-193), clipped to [0.1, 7] m2 m-2;
* **land cover**: the cube's tree-cover-density raster (HRL 2018, percent) through
  :func:`assimilation.maps.sources.class_fractions`; each pixel is two tiles, a ``forest_pft``
  column (default DBF) and an ``open_pft`` column (default GRA), whose fluxes are weighted
  by the tree-cover fraction (CLM-style sub-grid tiling, Oleson et al. 2013, CLM4.5 tech.
  note ch. 1.2);
* **spatially varying parameters**: soil texture (terciles of a smooth Gaussian random
  field -> ``textures``), Vcmax25 x exp(``vcmax_log_sd`` z) with z a second smooth field (the
  table's LogNormal prior has log-sd 0.3; Kattge et al. 2009), and the initial-steady-state
  LAI ``carbon.initial_lai`` = the pixel's 90th-percentile LAI (pool sizes, hence Rh and
  Ra, scale with the pixel's productivity). The fields are white noise smoothed with a
  Gaussian kernel of ``length_px`` pixels (FFT, periodic) and standardised.

Each column starts at field capacity with the analytic steady-state pools (the model's
``initial_state``). The hourly outputs are reduced to daily means inside the jitted
simulation (``lax.map`` over batches of columns, ``vmap`` inside a batch): GPP, Reco,
NEE (umol m-2 s-1; NEE = Reco - GPP holds per tile and hence for the weighted sum) and
the top-layer soil water content (m3 m-3).

Twin experiment
---------------
:func:`tower_pixels` draws ``n`` training pixels stratified by dominant class; their daily
truth (noise-free, weight 1) and features form a training table in the layout of
:func:`emulator.upscaling.tables.training_table`. The models are trained with their usual
``fit`` and predict every pixel through the public ``predict_dataset`` (the map engine's
call). Features at a pixel: the shared daily meteorology (+ 24 hourly temperatures and
PPFDs, PPFD = 2.285 x global radiation as the coupled model's own conversion), the pivot
EVI and LSWI, the pixel's soil water (top-layer truth normalised to its own 2-98 % range,
as at the towers; a stand-in for a soil-moisture product) and the dominant VPRM class
(2 forest / 7 open).

:func:`spatial_skill` scores the held-out pixels: per-pixel period-mean fluxes
(umol m-2 s-1) and period totals (g C m-2) -> R2 across pixels, Pearson r, bias, RMSE;
daily pooled R2; 90 % coverage of the daily values and of the period totals (period sd
with daily errors fully correlated, an upper bound, and independent, a lower bound).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

from .tables import UMOL_TO_GC_DAY, add_derived_features

__all__ = ["TwinConfig", "lai_from_evi", "smooth_field", "twin_meteorology", "twin_surface",
           "pixel_parameters", "simulate_daily", "build_twin", "feature_dataset", "tower_pixels",
           "training_rows", "spatial_skill", "explainable_r2", "run_twin", "TWIN_CLASSES"]

TWIN_CLASSES = {"forest": 2, "open": 7}
"""Dominant VPRM class given to the models: 2 (deciduous forest) where tree cover >= 50 %,
else 7 (grassland) - the classes of the Romania map config."""
_CH_DAV = ("ch-dav_2013-2022_diive",
           "exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet")
_CH_DAV_LATLON = (46.8153, 9.8559)
_MET = ("air_temperature", "vpd", "shortwave_in", "precipitation", "air_pressure", "wind_speed")


@dataclass(frozen=True)
class TwinConfig:
    """Settings of the twin (see the module docstring)."""

    map_config: str = "experiments/configs/romania_s2.toml"
    """The map TOML of the cube (a relative path is taken from the working directory; the
    study passes an absolute one)."""
    start: str = "2019-01-01"
    end: str = "2020-01-01"
    """Period [start, end), whole days."""
    stride: int = 2
    """Every ``stride``-th pixel in y and x of the cube (1 = all)."""
    forest_pft: str = "DBF"
    open_pft: str = "GRA"
    textures: tuple = ("sandy_loam", "loam", "clay_loam")
    vcmax_log_sd: float = 0.3
    length_px: float = 4.0
    """Correlation length of the parameter fields, in (strided) pixels."""
    batch: int = 64
    """Columns per vectorised batch of the truth simulation."""
    fit_pixels: int = 64
    fit_steps: int = 60
    seed: int = 0


def lai_from_evi(evi):
    """LAI (m2 m-2) = 3.618 EVI - 0.118 (Boegh et al. 2002, Remote Sens. Environ. 81,
    179-193; Sentinel-2-era validation e.g. Kang et al. 2016), clipped to [0.1, 7]."""
    return np.clip(3.618 * np.asarray(evi, float) - 0.118, 0.1, 7.0)


def smooth_field(shape, length: float, rng: np.random.Generator) -> np.ndarray:
    """Standardised Gaussian random field (unit 1): white noise convolved with a Gaussian
    kernel of sd ``length`` pixels (periodic, by FFT)."""
    ny, nx = shape
    ky, kx = np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :]
    kernel = np.exp(-2.0 * (np.pi * length) ** 2 * (ky ** 2 + kx ** 2))
    f = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * kernel))
    return (f - f.mean()) / max(f.std(), 1e-12)


def twin_meteorology(start: str, end: str) -> xr.Dataset:
    """Hourly CH-Dav meteorology on [start, end) (see the module docstring): the
    half-hours gap-filled, averaged to hours (precipitation summed, mm per hour)."""
    from process_models.io import data_path, fill_gaps, read_diive_parquet
    raw = read_diive_parquet(data_path(*_CH_DAV))
    ds = raw.sel(time=slice(start, pd.Timestamp(end) - pd.Timedelta("1s")))
    if ds.sizes["time"] < 48:
        raise DataValidationError(f"the CH-Dav record has no data in [{start}, {end}).", source="twin meteorology",
                                  variable="time", fix="choose a period within 2013-2022.")
    names = [v for v in _MET if v in ds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds, _ = fill_gaps(ds[names], names)
    h = ds.resample(time="1h").mean()
    if "precipitation" in ds:
        h["precipitation"] = ds["precipitation"].resample(time="1h").sum()
    for v in h.data_vars:
        h[v].attrs.update(ds[v].attrs)
    h.attrs.update(ds.attrs)
    h.attrs["time_step_seconds"] = 3600.0
    n = h.sizes["time"] // 24 * 24
    return h.isel(time=slice(0, n))


def twin_surface(cfg: TwinConfig) -> xr.Dataset:
    """Daily pivot EVI/LSWI (time, y, x) and tree cover (y, x) of the configured cube over
    the twin period, every ``stride``-th pixel."""
    from assimilation.maps import load_config
    from assimilation.maps.pivot import daily_pivot
    from assimilation.maps.sources import class_fractions, satellite_observations
    mc = load_config(cfg.map_config)
    obs = satellite_observations(mc)
    frac = class_fractions(mc, obs, (mc.land_cover.forest_class, mc.land_cover.open_class))
    sl = {"y": slice(0, None, cfg.stride), "x": slice(0, None, cfg.stride)}
    obs, frac = obs.isel(sl), frac.isel(sl)
    days = pd.date_range(cfg.start, pd.Timestamp(cfg.end) - pd.Timedelta("1D"), freq="D").as_unit("ns")
    piv = daily_pivot(obs, ("evi", "lswi"), days, fit_pixels=cfg.fit_pixels, fit_steps=cfg.fit_steps, seed=cfg.seed)
    piv["tree_cover"] = frac.isel(vprm_class=0).drop_vars("vprm_class").assign_attrs(units="1")
    return piv


def pixel_parameters(cfg: TwinConfig, tree_cover: np.ndarray, lai_p90: np.ndarray):
    """Stacked CoupledParams of the 2P columns (P forest tiles, then P open tiles) and the
    per-pixel fields: dict texture (index), vcmax_factor (1)."""
    from process_models.coupled import CoupledModel
    rng = np.random.default_rng([cfg.seed, 131])
    shape = tree_cover.shape
    z_tex = smooth_field(shape, cfg.length_px, rng).ravel()
    z_vc = smooth_field(shape, cfg.length_px, rng).ravel()
    tex = np.digitize(z_tex, np.quantile(z_tex, np.linspace(0, 1, len(cfg.textures) + 1)[1:-1]))
    vfac = np.exp(cfg.vcmax_log_sd * z_vc)
    tiles = []
    for pft in (cfg.forest_pft, cfg.open_pft):
        m = CoupledModel(pft)
        base = [CoupledModel(pft, t).default_params().replace(pft="twin", soil_texture="twin")   # static labels
                for t in cfg.textures]
        p = jax.tree.map(lambda *a: jnp.stack([jnp.asarray(x) for x in a])[tex], *base)      # (P, ...) by texture
        tiles.append(m.set_parameters(p, {"leaf.vcmax25": m.get_parameter(p, "leaf.vcmax25") * vfac,
                                          "carbon.initial_lai": np.asarray(lai_p90, float)}))
    stacked = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), *tiles)
    return stacked, {"texture": tex, "vcmax_factor": vfac}


@partial(jax.jit, static_argnames=("batch",))
def _daily_columns(params, forcing, lai, batch: int):
    from process_models.coupled import CoupledModel
    model = CoupledModel(checkpoint_every=0)

    def one(args):
        p, l = args
        out = model.simulate(p, forcing.replace(lai=l))
        day = lambda v: v.reshape(-1, 24).mean(-1)
        return (day(out.gpp), day(out.reco), day(out.nee), day(out.soil_water_content[:, 0]))

    return jax.lax.map(one, (params, lai), batch_size=batch)


def simulate_daily(params, forcing, lai: np.ndarray, batch: int = 64):
    """Daily means (columns, days) of GPP, Reco, NEE (umol m-2 s-1) and top-layer soil water
    (m3 m-3) of the stacked columns ``params`` under the shared hourly ``forcing`` and
    per-column hourly ``lai`` (columns, hours)."""
    res = _daily_columns(params, forcing, jnp.asarray(lai), batch=min(batch, lai.shape[0]))
    return [np.asarray(r, float) for r in res]


def build_twin(cfg: TwinConfig = TwinConfig(), surface: xr.Dataset | None = None) -> xr.Dataset:
    """The twin on (time, pixel): truth ``nee``, ``gpp``, ``reco`` (umol m-2 s-1),
    ``soil_water_content`` (m3 m-3), ``lai``, and the model features; pixel coordinates
    ``y``, ``x``, ``iy``, ``ix``; shared hourly ``air_temperature_hourly`` /
    ``ppfd_in_hourly`` on (time, hour)."""
    from process_models.coupled import forcing_from_dataset
    from process_models.coupled.xarray_api import PPFD_PER_SHORTWAVE
    met = twin_meteorology(cfg.start, cfg.end)
    surf = twin_surface(cfg) if surface is None else surface
    days = pd.DatetimeIndex(surf["time"].values)
    nd = met.sizes["time"] // 24
    if nd != days.size:
        raise DataValidationError(f"{nd} meteorology days vs {days.size} pivot days.", source="twin",
                                  variable="time", fix="give the pivot on the days of [start, end).")
    ny, nx = surf.sizes["y"], surf.sizes["x"]
    evi = surf["evi"].transpose("time", "y", "x").values.reshape(days.size, -1).astype(float)
    lai_d = lai_from_evi(evi)                                            # (D, P)
    tc = surf["tree_cover"].transpose("y", "x").values.astype(float)
    params, fields = pixel_parameters(cfg, tc, np.percentile(lai_d, 90, axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        forcing = forcing_from_dataset(met, *_CH_DAV_LATLON, lai=np.full(met.sizes["time"], 1.0),
                                       dtype=jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    # hourly LAI: linear between day centres (the pivot is daily)
    pos = np.clip((np.arange(met.sizes["time"]) + 0.5) / 24.0 - 0.5, 0.0, days.size - 1.0)   # in day centres
    i0 = np.minimum(np.floor(pos).astype(int), days.size - 2) if days.size > 1 else np.zeros(pos.size, int)
    w = (pos - i0)[:, None] if days.size > 1 else np.zeros((pos.size, 1))
    lai_h = (lai_d[i0] * (1 - w) + lai_d[np.minimum(i0 + 1, days.size - 1)] * w).T      # (P, hours)
    gpp, reco, nee, swc = simulate_daily(params, forcing, np.concatenate([lai_h, lai_h]), cfg.batch)
    f = tc.ravel()[:, None]
    mix = lambda v: (f * v[: f.size] + (1 - f) * v[f.size:]).T        # (D, P)
    d = met.resample(time="1D").mean()
    tmin = met["air_temperature"].resample(time="1D").min().values
    tmax = met["air_temperature"].resample(time="1D").max().values
    iy, ix = np.divmod(np.arange(ny * nx), nx)
    sw = mix(swc)
    lo, hi = np.percentile(sw, 2, axis=0), np.percentile(sw, 98, axis=0)
    p_dims, t_dims = ("time", "pixel"), ("time",)
    out = xr.Dataset({
        "nee": (p_dims, mix(nee), {"units": "umol m-2 s-1"}),
        "gpp": (p_dims, mix(gpp), {"units": "umol m-2 s-1"}),
        "reco": (p_dims, mix(reco), {"units": "umol m-2 s-1"}),
        "soil_water_content": (p_dims, sw, {"units": "m3 m-3"}),
        "soil_water_relative": (p_dims, np.clip((sw - lo) / np.maximum(hi - lo, 1e-3), -0.2, 1.2), {"units": "1"}),
        "lai": (p_dims, lai_d, {"units": "m2 m-2"}),
        "evi": (p_dims, evi, {"units": "1"}),
        "lswi": (p_dims, surf["lswi"].transpose("time", "y", "x").values.reshape(days.size, -1).astype(float),
                 {"units": "1"}),
        "tree_cover": ("pixel", tc.ravel(), {"units": "1"}),
        "vprm_class": ("pixel", np.where(tc.ravel() >= 0.5, TWIN_CLASSES["forest"], TWIN_CLASSES["open"])),
        "texture": ("pixel", np.asarray(cfg.textures)[fields["texture"]]),
        "vcmax_factor": ("pixel", fields["vcmax_factor"], {"units": "1"}),
        "air_temperature": (t_dims, d["air_temperature"].values, {"units": "degC"}),
        "air_temperature_min": (t_dims, tmin, {"units": "degC"}),
        "air_temperature_range": (t_dims, tmax - tmin, {"units": "K"}),
        "ppfd_in": (t_dims, d["shortwave_in"].values * PPFD_PER_SHORTWAVE, {"units": "umol m-2 s-1"}),
        "vpd": (t_dims, d["vpd"].values, {"units": "hPa"}),
        "air_temperature_hourly": (("time", "hour"), met["air_temperature"].values.reshape(-1, 24), {"units": "degC"}),
        "ppfd_in_hourly": (("time", "hour"), np.clip(met["shortwave_in"].values.reshape(-1, 24), 0, None)
                           * PPFD_PER_SHORTWAVE, {"units": "umol m-2 s-1"}),
    }, coords={"time": days.values, "hour": np.arange(24), "pixel": np.arange(ny * nx),
               "y": ("pixel", surf["y"].values[iy]), "x": ("pixel", surf["x"].values[ix]),
               "iy": ("pixel", iy), "ix": ("pixel", ix)})
    out.attrs.update(latitude=_CH_DAV_LATLON[0], ny=ny, nx=nx, crs=surf.attrs.get("crs", ""),
                     meteorology="CH-Dav tower (stand-in, uniform over the domain)",
                     truth="process_models.coupled (two tiles per pixel weighted by tree cover)")
    return out


def feature_dataset(twin: xr.Dataset, pixels=None) -> xr.Dataset:
    """The ``predict_dataset`` input on (time, pixel) for ``pixels`` (default all): shared
    meteorology broadcast to the pixels, pivot EVI/LSWI, soil water, class, hourly drivers."""
    t = twin if pixels is None else twin.isel(pixel=np.asarray(pixels))
    shared = ["air_temperature", "air_temperature_min", "air_temperature_range", "ppfd_in", "vpd"]
    ds = xr.Dataset({v: t[v] for v in ("evi", "lswi", "soil_water_relative", "vprm_class")})
    ones = xr.ones_like(t["evi"])
    for v in shared:
        ds[v] = (t[v] * ones).transpose("time", "pixel").assign_attrs(t[v].attrs)
    for v in ("air_temperature_hourly", "ppfd_in_hourly"):
        ds[v] = (t[v] * ones).transpose("time", "pixel", "hour").assign_attrs(t[v].attrs)
    ds.attrs["latitude"] = twin.attrs["latitude"]
    return ds


def tower_pixels(twin: xr.Dataset, n: int, seed: int = 0) -> np.ndarray:
    """``n`` training pixels, stratified by dominant class (in proportion, >= 1 each where
    both occur), drawn at random (seeded)."""
    rng = np.random.default_rng([seed, 7])
    cls = np.asarray(twin["vprm_class"].values)
    kinds = np.unique(cls)
    share = np.array([(cls == k).mean() for k in kinds])
    take = np.maximum(1, np.round(n * share).astype(int))
    while take.sum() > n:
        take[np.argmax(take)] -= 1
    pick = [rng.choice(np.flatnonzero(cls == k), min(m, (cls == k).sum()), replace=False) for k, m in zip(kinds, take)]
    return np.sort(np.concatenate(pick))


def training_rows(twin: xr.Dataset, pixels) -> xr.Dataset:
    """Training table (rows on ``sample`` with ``site`` = ``px<i>``, ``time``, weight 1)
    of the twin's truth and features at ``pixels``."""
    ds = add_derived_features(feature_dataset(twin, pixels))
    t = twin.isel(pixel=np.asarray(pixels))
    for k in ("nee", "gpp", "reco"):
        ds[k] = t[k]
    st = ds.drop_vars([c for c in ("y", "x", "iy", "ix") if c in ds.coords]).stack(sample=("pixel", "time"))
    site = np.array([f"px{int(p)}" for p in st["pixel"].values])
    time = st["time"].values
    st = st.drop_vars(["sample", "pixel", "time"]).transpose("sample", "hour")
    st = st.assign_coords(site=("sample", site), time=("sample", time))
    st["weight"] = ("sample", np.ones(st.sizes["sample"]), {"units": "1"})
    return st


def _r2(o, p):
    o, p = np.asarray(o, float), np.asarray(p, float)
    sst = np.sum((o - o.mean()) ** 2)
    return float(1 - np.sum((o - p) ** 2) / sst) if sst > 0 else float("nan")


def spatial_skill(twin: xr.Dataset, pred: xr.Dataset, pixels) -> dict:
    """Spatial skill of ``pred`` (``predict_dataset`` output on (time, pixel)) against the
    truth at ``pixels`` (see the module docstring); per flux a dict of metrics."""
    from .models import Z90
    px = np.asarray(pixels)
    nd = twin.sizes["time"]
    out = {}
    for k in ("nee", "gpp", "reco"):
        o = twin[k].values[:, px]
        m, sd = pred[k].values[:, px], pred[f"{k}_sd"].values[:, px]
        to, tm = o.sum(0) * UMOL_TO_GC_DAY, m.sum(0) * UMOL_TO_GC_DAY      # g C m-2 over the period
        s_corr, s_ind = sd.sum(0) * UMOL_TO_GC_DAY, np.sqrt((sd ** 2).sum(0)) * UMOL_TO_GC_DAY
        out[k] = {"pixels": int(px.size), "days": int(nd),
                  "truth_total_mean": float(to.mean()), "truth_total_sd": float(to.std()),
                  "pred_total_mean": float(tm.mean()), "pred_total_sd": float(tm.std()),
                  "spatial_r2": _r2(to, tm), "spatial_r": float(np.corrcoef(to, tm)[0, 1]) if min(tm.std(), to.std()) > 0 else float("nan"),
                  "total_bias": float(np.mean(tm - to)), "total_rmse": float(np.sqrt(np.mean((tm - to) ** 2))),
                  "daily_r2": _r2(o.ravel(), m.ravel()),
                  "daily_coverage90": float(np.mean(np.abs(o - m) <= Z90 * sd)),
                  "total_coverage90_correlated": float(np.mean(np.abs(tm - to) <= Z90 * s_corr)),
                  "total_coverage90_independent": float(np.mean(np.abs(tm - to) <= Z90 * s_ind))}
    return out


def explainable_r2(twin: xr.Dataset, with_vcmax: bool = False) -> dict:
    """In-sample R2 across all pixels of an ordinary least-squares fit of each flux's
    period total on the pixel's period-mean EVI, LSWI, soil water and tree cover (the
    surface information the models get; ``with_vcmax``: plus log Vcmax factor, which no
    model sees): how much of the truth's spatial variance the inputs can explain linearly."""
    cols = [twin[v].mean("time").values for v in ("evi", "lswi", "soil_water_content")] + [twin["tree_cover"].values]
    if with_vcmax:
        cols.append(np.log(twin["vcmax_factor"].values))
    a = np.column_stack([np.ones(twin.sizes["pixel"]), *cols])
    out = {}
    for k in ("nee", "gpp", "reco"):
        y = twin[k].sum("time").values * UMOL_TO_GC_DAY
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        out[k] = _r2(y, a @ coef)
    return out


def run_twin(twin: xr.Dataset, factories: dict, towers, checkpoint_dir=None) -> tuple[dict, dict]:
    """Train each model (name -> factory) on the ``towers`` pixels and predict every pixel
    with ``predict_dataset``; returns (predictions, skill on the non-tower pixels)."""
    from pathlib import Path
    table = training_rows(twin, towers)
    test = np.setdiff1d(np.arange(twin.sizes["pixel"]), towers)
    feats = feature_dataset(twin)
    preds, skill = {}, {}
    for name, f in factories.items():
        ck = None if checkpoint_dir is None else Path(checkpoint_dir) / f"twin_{name}"
        model = f().fit(table, checkpoint_dir=ck)
        preds[name] = model.predict_dataset(feats)
        skill[name] = spatial_skill(twin, preds[name], test)
    return preds, skill
