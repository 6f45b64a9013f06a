"""Daily mode of the map engine: daily models (ML upscaling, the daily emulator of the coupled
model) on the daily pivot, tile by tile, into the same CF/Zarr store with a daily time axis.

Switched on by ``[model] name = "upscaling"`` or ``"coupled_daily"`` (options in ``[daily]``,
:class:`.config.DailyConfig`). Per tile (one task, in process or on dask) the chain is:

1. the tile's daily pivot (mean, sd) of the greenness (EVI, or EVI2 without a blue band)
   and LSWI, exactly as in the hourly engine (:func:`.engine.tile_inputs`: Kalman/RTS
   smoother, parameters shared by all tiles, so tiling does not change a pixel);
2. the meteorology at the pixels (:func:`daily_meteorology`: the tower or ERA5 record on
   the map hours, gaps filled) aggregated to UTC days (:func:`aggregate_days`): mean,
   minimum, maximum and range of air temperature (degC, K), mean shortwave (W m-2) and its
   daily sum (MJ m-2 d-1), mean PPFD = SW x 1/0.505 (umol m-2 s-1; the engine's
   :data:`process_models.vprm.tables.SW_TO_PAR`), mean VPD (hPa), precipitation sum (mm d-1),
   and the 24 hourly temperatures and PPFDs of each day;
3. the land-cover fractions (VPRM classes, :func:`.sources.class_fractions`);
4. a daily map model (:class:`UpscalingMapModel`, :class:`CoupledDailyMapModel`) ->
   daily-mean GPP, Reco, NEE (umol m-2 s-1) and their sd for every pixel and day, in one
   vectorised call (no loop over pixels or days);
5. the store (:mod:`.store`, ``step = "daily"``): fluxes (time = days), period totals
   (g C m-2 = sum of the days x 86400 s x 12.011e-6 g C umol-1), the pivot, fractions,
   flags; then the tile's marker (resume).

**Uncertainty.** ``sd^2 = sd_model^2 + dF_g^2 + dF_l^2``: the model's own predictive sd
(the upscaling models' quantile/ensemble sd; 0 for the emulator) and the pivot's, by
central divided differences over +-1 sd of the greenness and LSWI (first-order
divided-difference filter, Norgaard, Poulsen & Ravn 2000, Automatica 36:1627):
dF_v = (F(v + sd_v) - F(v - sd_v)) / 2, as in the hourly engine. Period totals take all
three error terms as fully correlated in time (an upper bound, as in the hourly engine):
``sd_total = c sqrt((sum_t dF_g)^2 + (sum_t dF_l)^2 + (sum_t sd_model)^2)``.

Units: fluxes ``umol m-2 s-1`` (daily means), totals ``g C m-2``. Sign convention: GPP >= 0,
Reco >= 0, NEE = Reco - GPP (positive = source).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

from .config import MapConfig, ModelConfig, period_hours

__all__ = ["G_C_PER_UMOL_M2_S_DAY", "DailyInputs", "UpscalingMapModel", "CoupledDailyMapModel", "CLASS_TO_UPSCALING",
           "CLASS_TO_PFT", "LAI_FROM_EVI", "daily_meteorology", "aggregate_days", "daily_tile_inputs",
           "compute_daily_tile", "process_daily_tile", "prepare_daily", "build_daily_model", "annual_budgets",
           "upscaling_features", "balance_fluxes", "daily_fluxes"]

G_C_PER_UMOL_M2_S_DAY = 86400.0 * 12.011e-6
"""g C m-2 per day of a flux of 1 umol CO2 m-2 s-1 (86400 s x 12.011 g C mol-1 x 1e-6)."""

MET_VARIABLES = {"air_temperature": "degC", "shortwave_in": "W m-2", "vpd": "hPa", "precipitation": "mm",
                 "air_pressure": "kPa"}
"""Hourly meteorology of the daily mode (``precipitation``: mm per hour)."""


# --- meteorology -------------------------------------------------------------------------

def _fill_linear(da: xr.DataArray, zero: bool = False) -> tuple[xr.DataArray, float]:
    """Gaps filled (linear in time and nearest at the edges, or 0 for ``zero``); the share filled."""
    nan = da.isnull()
    share = float(nan.mean())
    if not share:
        return da, 0.0
    if zero:
        return da.fillna(0.0), share
    from .sources import _nearest_edges
    return _nearest_edges(da.interpolate_na("time")), share


def daily_meteorology(cfg: MapConfig, hours: pd.DatetimeIndex) -> xr.Dataset:
    """Hourly ``air_temperature`` (degC), ``shortwave_in`` (W m-2), ``vpd`` (hPa),
    ``precipitation`` (mm per hour) and ``air_pressure`` (kPa) on the map ``hours`` (plus a
    day at each end): a tower series (half-hourly means averaged, precipitation summed, to
    hours) or ERA5 (temperature and shortwave only: VPD, precipitation and pressure then
    absent, and attributes say so). Gaps: temperature and shortwave as in the hourly engine
    (``max_gap_hours``); VPD and pressure linear, precipitation 0; the filled share of each
    is in the attribute ``filled_share``."""
    from .sources import _to_hourly, check_meteorology, hourly_meteorology, read_tower_record
    m = cfg.meteorology
    if m.kind == "era5":
        met = hourly_meteorology(cfg, hours)
        met.attrs["missing"] = "vpd precipitation air_pressure (ERA5 single levels here: t2m, ssrd)"
        return met
    paths = [cfg.resolve(m.folder, p) for p in m.paths]
    raw = read_tower_record(m.reader, paths[0])
    for v, u in MET_VARIABLES.items():
        if v in raw and raw[v].attrs.get("units") not in (u, None):
            raise DataValidationError(f"units {raw[v].attrs.get('units')!r}, expected {u!r}.", source=str(paths[0]),
                                      variable=v, fix="convert (the process_models.io readers normalise units).")
    names = [v for v in MET_VARIABLES if v in raw]
    raw = raw[names].sel(time=slice(hours[0] - pd.Timedelta("2D"), hours[-1] + pd.Timedelta("2D")))
    prec = raw["precipitation"] if "precipitation" in raw else None
    met = _to_hourly(raw, str(paths[0]))
    if prec is not None:                        # _to_hourly averages: an amount is summed
        met["precipitation"] = met["precipitation"] * (2.0 if pd.Timedelta(raw.time.values[1] - raw.time.values[0])
                                                       == pd.Timedelta("30min") else 1.0)
    met = check_meteorology(met, hours, max_gap_hours=m.max_gap_hours, source=str(paths[0]))
    filled = {}
    for v in ("vpd", "precipitation", "air_pressure"):
        if v in met:
            met[v], filled[v] = _fill_linear(met[v], zero=v == "precipitation")
            met[v].attrs["units"] = MET_VARIABLES[v]
    if "vpd" in met:
        met["vpd"] = met["vpd"].clip(min=0.0)
    met.attrs.update(kind=m.kind, source=str(paths[0]), filled_share=repr(filled),
                     missing=" ".join(v for v in MET_VARIABLES if v not in met))
    return met


def _met_at_pixels(met: xr.Dataset, lon: np.ndarray, lat: np.ndarray) -> dict:
    """(hours, pixels) arrays of every variable of ``met`` at the pixels (tower: uniform)."""
    names = [v for v in MET_VARIABLES if v in met]
    if "lat" not in met.dims:
        return {v: np.broadcast_to(met[v].values[:, None], (met.sizes["time"], lon.size)) for v in names}
    from process_models.io.era5 import interpolate_to_grid
    g = interpolate_to_grid(met[names], lat.reshape(1, -1), lon.reshape(1, -1))
    out = {v: g[v].values.reshape(-1, lon.size) for v in names}
    out["shortwave_in"] = np.clip(out["shortwave_in"], 0.0, None)
    return out


def aggregate_days(hourly: dict, n_days: int) -> dict:
    """Daily statistics (D, P) of hourly (24 D, P) meteorology (UTC days):
    ``air_temperature`` (mean, degC), ``air_temperature_min``/``_max`` (degC),
    ``air_temperature_range`` (max - min, K), ``shortwave_in`` (mean, W m-2),
    ``shortwave_sum`` (MJ m-2 d-1 = mean x 86400 s / 1e6), ``ppfd_in`` (mean, umol m-2 s-1,
    SW x 1/0.505), ``par_sum`` (mol m-2 d-1), ``vpd`` (mean, hPa), ``precipitation``
    (sum, mm d-1), and ``air_temperature_hourly`` / ``ppfd_in_hourly`` (D, P, 24)."""
    from process_models.vprm.tables import SW_TO_PAR
    day = lambda a: np.asarray(a, float)[:24 * n_days].reshape(n_days, 24, -1)       # noqa: E731
    t, sw = day(hourly["air_temperature"]), day(hourly["shortwave_in"])
    ppfd = sw * SW_TO_PAR
    out = {"air_temperature": t.mean(1), "air_temperature_min": t.min(1), "air_temperature_max": t.max(1),
           "shortwave_in": sw.mean(1), "shortwave_sum": sw.mean(1) * 86400.0 / 1e6, "ppfd_in": ppfd.mean(1),
           "par_sum": ppfd.mean(1) * 86400.0 / 1e6,
           "air_temperature_hourly": np.moveaxis(t, 1, 2), "ppfd_in_hourly": np.moveaxis(ppfd, 1, 2)}
    out["air_temperature_range"] = out["air_temperature_max"] - out["air_temperature_min"]
    if "vpd" in hourly:
        out["vpd"] = day(hourly["vpd"]).mean(1)
    if "precipitation" in hourly:
        out["precipitation"] = day(hourly["precipitation"]).sum(1)
    return out


# --- tile inputs -------------------------------------------------------------------------

class DailyInputs(NamedTuple):
    """A tile's inputs of a daily map model (P pixels of the padded tile, D map days)."""
    days: pd.DatetimeIndex
    greenness: np.ndarray          # (D, P) daily pivot mean of EVI (or EVI2), 1
    greenness_sd: np.ndarray       # (D, P)
    lswi: np.ndarray               # (D, P) 1
    lswi_sd: np.ndarray
    met: dict                      # daily statistics (D, P) (aggregate_days)
    hourly: dict                   # hourly meteorology (24 D, P) (daily_meteorology)
    fractions: np.ndarray          # (P, C) VPRM class fractions
    class_ids: tuple
    lat: np.ndarray                # (P,) degrees_north
    lon: np.ndarray                # (P,) degrees_east


def daily_tile_inputs(ctx, ysl: slice, xsl: slice):
    """``(DailyInputs, piv, flags, frac, timing)`` of one tile (padded to the tile shape)."""
    from .engine import _source_index, greenness, tile_inputs
    _, piv, flags, frac, timing = tile_inputs(ctx, ysl, xsl)
    ty, tx = ctx.config.run.tile
    _, iy = _source_index(ysl, ctx.obs.sizes["y"], ty)
    _, ix = _source_index(xsl, ctx.obs.sizes["x"], tx)
    lon, lat = ctx.lon[np.ix_(iy, ix)].ravel(), ctx.lat[np.ix_(iy, ix)].ravel()
    hourly = _met_at_pixels(ctx.met, lon, lat)
    pd_idx = ctx.period_days
    days = ctx.days[pd_idx]
    g = greenness(ctx.pivot_names)
    sel = lambda a: np.asarray(a, float)[:, pd_idx].T                                # noqa: E731
    inp = DailyInputs(days=days, greenness=sel(piv[g][0]), greenness_sd=sel(piv[g][1]), lswi=sel(piv["lswi"][0]),
                      lswi_sd=sel(piv["lswi"][1]), met=aggregate_days(hourly, len(days)), hourly=hourly,
                      fractions=np.asarray(frac, float), class_ids=tuple(ctx.class_ids), lat=lat, lon=lon)
    return inp, piv, flags, frac, timing


# --- the daily kernel (uncertainty around any daily map model) ----------------------------

def _variants(inp: DailyInputs, uses_lswi: bool):
    """Greenness and LSWI of the central run and the +-1 sd runs: (K, D, P) each."""
    g, gs = np.clip(inp.greenness, 0.0, 1.0), inp.greenness_sd
    l, ls = np.clip(inp.lswi, -1.0, 1.0), inp.lswi_sd
    gv = [g, np.clip(g + gs, 0.0, 1.0), np.clip(g - gs, 0.0, 1.0)]
    lv = [l, l, l]
    if uses_lswi:
        gv += [g, g]
        lv += [np.clip(l + ls, -1.0, 1.0), np.clip(l - ls, -1.0, 1.0)]
    return np.stack(gv), np.stack(lv)


def daily_fluxes(model, inp: DailyInputs):
    """Daily fluxes and sd (3, D, P) (order gpp, reco, nee) and the period totals and their
    sd (3, P) in g C m-2 (module docstring: model sd + divided differences)."""
    gv, lv = _variants(inp, model.uses_lswi)
    mean, msd = model.evaluate(inp, gv, lv)          # (K, 3, D, P) each
    y = mean[0]
    d_g = 0.5 * (mean[1] - mean[2])
    d_l = 0.5 * (mean[3] - mean[4]) if model.uses_lswi else np.zeros_like(y)
    sd_m = msd[0]
    sd = np.sqrt(sd_m ** 2 + d_g ** 2 + d_l ** 2)
    c = G_C_PER_UMOL_M2_S_DAY
    total = c * y.sum(1)
    total_sd = c * np.sqrt(d_g.sum(1) ** 2 + d_l.sum(1) ** 2 + sd_m.sum(1) ** 2)
    return y, sd, total, total_sd


def _tile_key(ysl, xsl) -> int:
    return int(hashlib.sha256(f"{ysl.start}-{xsl.start}".encode()).hexdigest()[:7], 16)


def compute_daily_tile(ctx, ysl: slice, xsl: slice) -> tuple[dict, dict]:
    """The arrays of one tile (as written to the store) and timings; pure given ``ctx``."""
    from .engine import tile_outputs
    inp, piv, flags, frac, timing = daily_tile_inputs(ctx, ysl, xsl)
    t0 = time.perf_counter()
    y, sd, tot, tot_sd = (np.asarray(a, np.float32) for a in daily_fluxes(ctx.model, inp))
    timing["model_s"] = time.perf_counter() - t0
    out = tile_outputs(ctx, ysl, xsl, (y, sd, tot, tot_sd), piv, flags, frac)
    ny_t, nx_t = ysl.stop - ysl.start, xsl.stop - xsl.start
    timing.update(pixels=int(ny_t * nx_t), days=int(len(inp.days)), hours=24 * int(len(inp.days)))
    return out, timing


def process_daily_tile(ctx, tile) -> dict:
    """Compute one tile of a daily map, write it (fluxes over the days, totals, pivot,
    fractions, flags: whole Zarr chunks) and then its marker. Returns its info."""
    import jax
    from .store import mark_done, write_tile
    if jax.config.jax_enable_x64 != ctx.x64:
        jax.config.update("jax_enable_x64", ctx.x64)
    tile_id, ysl, xsl = tile
    arrays, info = compute_daily_tile(ctx, ysl, xsl)
    t0 = time.perf_counter()
    store = ctx.config.output.store
    timed = {k: v for k, v in arrays.items() if v[0][0] == "time"}
    write_tile(store, ysl, xsl, timed, tsl=slice(0, info["days"]))
    write_tile(store, ysl, xsl, {k: v for k, v in arrays.items() if k not in timed})
    info.update(write_s=time.perf_counter() - t0, tile=tile_id, pid=os.getpid())
    mark_done(store, tile_id, info)
    return info


# --- map models --------------------------------------------------------------------------

CLASS_TO_UPSCALING = {1: 1, 2: 2, 3: 3, 4: 7, 5: 7, 6: 7, 7: 7, 9: 7}
"""VPRM class -> the upscaling models' classes (:data:`emulator.upscaling.CLASSES`: the towers
are evergreen 1, deciduous 2, mixed forest 3, grassland 7): shrubland, savanna, cropland and
wetland take the herbaceous grassland class (no tower of theirs is shipped). Class 8
(other, no flux) gets 0 fluxes and 0 sd."""


def upscaling_features(inp: DailyInputs, greenness: np.ndarray, lswi: np.ndarray, vprm_class: int) -> xr.Dataset:
    """The daily feature Dataset (dims time, pixel) that
    :meth:`emulator.upscaling.models.TreeModel.predict_dataset` (and the other upscaling
    models) take, for one upscaling class: daily mean ``air_temperature`` (degC),
    ``air_temperature_min`` (degC), ``air_temperature_range`` (K), ``ppfd_in``
    (umol m-2 s-1), ``vpd`` (hPa), ``evi`` = the pivot greenness, ``lswi`` (1), the 24
    hourly temperatures and PPFDs (``hour`` axis), ``latitude`` (degrees_north) and
    ``vprm_class``. No soil-moisture map and no fAPAR exist for the cubes:
    ``soil_water_relative`` and ``fapar`` are absent, so ``has_soil_water = has_fapar = 0``
    (:func:`emulator.upscaling.add_derived_features`, as at towers without them).
    ``greenness``/``lswi``: (D, N) (N = pixels, or variants x pixels)."""
    D, N = greenness.shape
    rep = N // inp.greenness.shape[1]
    tile = lambda a: np.tile(np.asarray(a, float), (1, rep))                        # noqa: E731
    tile_h = lambda a: np.tile(np.asarray(a, float), (1, rep, 1))                  # noqa: E731
    m = inp.met
    data = {"air_temperature": (("time", "pixel"), tile(m["air_temperature"]), {"units": "degC"}),
            "air_temperature_min": (("time", "pixel"), tile(m["air_temperature_min"]), {"units": "degC"}),
            "air_temperature_range": (("time", "pixel"), tile(m["air_temperature_range"]), {"units": "K"}),
            "ppfd_in": (("time", "pixel"), tile(m["ppfd_in"]), {"units": "umol m-2 s-1"}),
            "evi": (("time", "pixel"), np.asarray(greenness, float), {"units": "1"}),
            "lswi": (("time", "pixel"), np.asarray(lswi, float), {"units": "1"}),
            "air_temperature_hourly": (("time", "pixel", "hour"), tile_h(m["air_temperature_hourly"]), {"units": "degC"}),
            "ppfd_in_hourly": (("time", "pixel", "hour"), tile_h(m["ppfd_in_hourly"]), {"units": "umol m-2 s-1"}),
            "latitude": (("pixel",), np.tile(inp.lat, rep), {"units": "degrees_north"}),
            "vprm_class": (("pixel",), np.full(N, int(vprm_class)), {"units": "1"})}
    if "vpd" in m:
        data["vpd"] = (("time", "pixel"), tile(m["vpd"]), {"units": "hPa"})
    return xr.Dataset(data, coords={"time": inp.days.as_unit("ns")})


@dataclass(frozen=True, eq=False)
class UpscalingMapModel:
    """A fitted upscaling model (:func:`emulator.upscaling.make_model`: ``trees``, ``mlp``,
    ``hybrid``) as a daily map model. A pixel's fluxes are the class-fraction-weighted mean
    of the model's predictions for each class present (:data:`CLASS_TO_UPSCALING`; the
    fractions of the VPRM classes pooled onto the model's classes); the sd likewise
    (errors of a pixel's classes fully correlated). One ``predict_dataset`` call per class
    present on all pixels and pivot variants at once (rows = days x variants x pixels)."""
    model: Any
    kind: str = "trees"
    uses_lswi: bool = True

    def __repr__(self):
        return f"UpscalingMapModel({type(self.model).__name__}, {self.kind})"

    def fingerprint(self) -> str:
        """Hash of the model's predictions on a fixed probe (two pixels x three days of
        synthetic features): stable across processes for the same fitted model, through
        the public ``predict_dataset`` only."""
        days = pd.date_range("2019-06-30", periods=3, freq="D")
        t = np.array([[12.0, 18.0], [15.0, 21.0], [9.0, 25.0]])
        probe = xr.Dataset({"air_temperature": (("time", "pixel"), t),
                            "air_temperature_range": (("time", "pixel"), np.full((3, 2), 9.0)),
                            "ppfd_in": (("time", "pixel"), 30.0 * t), "vpd": (("time", "pixel"), t / 2.0),
                            "evi": (("time", "pixel"), t / 40.0), "lswi": (("time", "pixel"), t / 80.0),
                            "latitude": ("pixel", [45.0, 47.0]), "vprm_class": ("pixel", [2, 7])},
                           coords={"time": days})
        p = self.model.predict_dataset(probe)
        h = hashlib.sha256(repr(self).encode())
        for v in sorted(p.data_vars):
            h.update(np.ascontiguousarray(np.round(np.asarray(p[v].values, float), 10)).tobytes())
        return h.hexdigest()[:16]

    def evaluate(self, inp: DailyInputs, gv: np.ndarray, lv: np.ndarray):
        K, D, P = gv.shape
        frac = np.zeros((P, 10))
        for j, c in enumerate(inp.class_ids):
            frac[:, CLASS_TO_UPSCALING.get(int(c), 0)] += inp.fractions[:, j]    # 0: no flux
        g2 = np.moveaxis(gv, 0, 1).reshape(D, K * P)        # (D, K P): variant-major columns
        l2 = np.moveaxis(lv, 0, 1).reshape(D, K * P)
        mean, sd = np.zeros((K, 3, D, P)), np.zeros((K, 3, D, P))
        for c in sorted({v for v in CLASS_TO_UPSCALING.values()}):
            w = frac[:, c]
            if not (w > 0).any():
                continue
            p = self.model.predict_dataset(upscaling_features(inp, g2, l2, c))
            get = lambda v: np.asarray(p[v].values, float).reshape(D, K, P).transpose(1, 0, 2)   # noqa: E731
            m, s = balance_fluxes(*(get(v) for v in ("gpp", "reco", "nee")),
                                  *(get(f"{v}_sd") for v in ("gpp", "reco", "nee")))
            mean += w * np.moveaxis(m, 0, 1)          # (3, K, D, P) -> (K, 3, D, P)
            sd += w * np.moveaxis(s, 0, 1)
        return mean, sd


def balance_fluxes(gpp, reco, nee, gpp_sd, reco_sd, nee_sd):
    """Separately predicted GPP, Reco, NEE (e.g. three tree models) made consistent with
    NEE = Reco - GPP: the minimum-variance projection onto the constraint
    a.x = 0, a = (-1, 1, -1), x = (GPP, Reco, NEE) (Simon & Chia 2002, IEEE Trans.
    Aerosp. Electron. Syst. 38:128, equality-constrained estimation):
    x' = x - S a (a.x) / (a S a), S' = S - S a a' S / (a S a), S = diag(sd^2) (errors of the
    three predictions independent); then GPP, Reco >= 0 (clipped) and NEE = Reco - GPP.
    Predictions that already satisfy the constraint (MLP, hybrid) are unchanged.
    Returns (3, ...) means (gpp, reco, nee) and sd."""
    var = np.stack([gpp_sd, reco_sd, nee_sd]) ** 2 + 1e-12
    x = np.stack([gpp, reco, nee])
    a = np.array([-1.0, 1.0, -1.0]).reshape((3,) + (1,) * gpp.ndim)
    resid = (a * x).sum(0)
    asa = (a * a * var).sum(0)
    x = x - a * var * resid / asa
    var_post = np.maximum(var - (a * var) ** 2 / asa, 0.0)
    g, r = np.maximum(x[0], 0.0), np.maximum(x[1], 0.0)
    return np.stack([g, r, r - g]), np.sqrt(var_post)


CLASS_TO_PFT = {1: "ENF", 2: "DBF", 3: "MF", 4: "SHR", 5: "SAV", 6: "CRO", 7: "GRA", 9: "WET"}
"""VPRM class -> the coupled model's plant functional type (its leaf/canopy table, C3 types
only: the C4 variants need the C4 photosynthesis branch, a static switch of the model).
Soil: loam everywhere (no soil map is shipped for the cubes). Class 8 (other, no flux):
0 fluxes. A pixel takes the type of its largest class fraction."""

LAI_FROM_EVI = (3.618, -0.118)
"""LAI = 3.618 EVI - 0.118 (m2 m-2; Boegh et al. 2002, Remote Sens. Environ. 81:179, the
relation used for Sentinel-2/Landsat EVI), floored at 0.05."""


def _pft_params(emulator, pft: str):
    """The coupled model's parameters of ``pft`` (loam) on the emulator spec's pytree
    structure (its static metadata: layers, ENF/loam labels), the emulated parameters
    clipped to the emulator's training box."""
    import jax
    from process_models.coupled import CoupledModel
    base = emulator.default_params()
    p = CoupledModel(pft, "loam").default_params()
    params = jax.tree.unflatten(jax.tree.structure(base), jax.tree.leaves(p))
    space = emulator.spec.param_space
    vals = {n: float(np.clip(np.asarray(emulator.spec.model.get_parameter(params, n), float), lo, hi))
            for n, lo, hi in zip(space.names, space.lower, space.upper)}
    return emulator.spec.model.set_parameters(params, vals)


@dataclass(frozen=True, eq=False)
class CoupledDailyMapModel:
    """The daily flux-form emulator of the coupled model
    (:class:`emulator.daily_emulator.DailyCoupledEmulator`) as a daily map model.

    Per pixel: parameters of the plant functional type of its dominant class
    (:data:`CLASS_TO_PFT`); forcing: the hourly meteorology at the pixel as a
    :class:`~process_models.coupled.CoupledForcing` (dt 3600 s; cos zenith at the hour's
    middle from the pixel's lat/lon, :func:`process_models.solar.cos_solar_zenith`; CO2
    400 umol mol-1 and wind 2 m s-1, the coupled model's defaults, where the record has
    none) reduced to :class:`~emulator.daily.DailyForcing` by
    :func:`emulator.daily.daily_forcing`; initial state: the process model's
    (:func:`process_models.coupled.initial_state`) with the leaf pool set from the pivot
    greenness of the first day, C_leaf = LAI / SLA (:data:`LAI_FROM_EVI`). The emulator
    then carries its own leaf pool (it has no LAI forcing), so the greenness enters through
    the initial leaf area (and its sd through the +-1 sd runs); LSWI does not enter.
    A ``lax.scan`` over days (the emulator's ``simulate``) vmapped over pixels, jitted once
    per tile shape. ``process=True``: the process model (:mod:`process_models.coupled`,
    hourly steps) on the same pixels, forcing and initial state (the benchmark reference)."""
    emulator: Any
    process: bool = False
    uses_lswi: bool = False

    def __repr__(self):
        return f"CoupledDailyMapModel({'process model' if self.process else 'daily emulator'})"

    def fingerprint(self) -> str:
        import jax
        from flax import nnx
        h = hashlib.sha256((repr(self) + repr(self.emulator.config)).encode())
        for leaf in jax.tree.leaves(nnx.state(self.emulator.network)):
            h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
        return h.hexdigest()[:16]

    def pixel_parameters(self, inp: DailyInputs):
        """Stacked per-pixel parameters (P, ...) and the per-pixel no-flux mask (class 8)."""
        import jax
        ids = np.asarray(inp.class_ids)
        dom = ids[np.argmax(inp.fractions, 1)]
        dom = np.where(inp.fractions.sum(1) > 0, dom, 8)
        pfts = sorted({CLASS_TO_PFT.get(int(c), "GRA") for c in np.unique(dom)})
        table = [_pft_params(self.emulator, p) for p in pfts]
        which = np.array([pfts.index(CLASS_TO_PFT.get(int(c), "GRA")) for c in dom])
        stacked = jax.tree.map(lambda *a: np.stack([np.asarray(x) for x in a]), *table)
        return jax.tree.map(lambda a: a[which], stacked), dom == 8

    def forcing(self, inp: DailyInputs, dtype):
        """Hourly CoupledForcing with a leading pixel axis (P, 24 D)."""
        import jax.numpy as jnp
        from process_models.coupled import CoupledForcing
        from process_models.solar import cos_solar_zenith
        H = 24 * len(inp.days)
        P = inp.lat.size
        hours = pd.date_range(inp.days[0], periods=H, freq="h")
        doy = np.asarray(hours.day_of_year, float)[:, None]
        hour = (np.asarray(hours.hour, float) + 0.5)[:, None]
        cz = np.asarray(cos_solar_zenith(doy, hour, inp.lat[None, :], inp.lon[None, :]))
        h = inp.hourly
        get = lambda v, default: (np.asarray(h[v], float)[:H] if v in h else np.full((H, P), default))  # noqa: E731
        f = {"air_temperature": get("air_temperature", np.nan), "shortwave_in": get("shortwave_in", np.nan),
             "vpd": get("vpd", 5.0), "precipitation": get("precipitation", 0.0),
             "air_pressure": get("air_pressure", 101.325), "co2": np.full((H, P), 400.0),
             "wind_speed": np.full((H, P), 2.0), "cos_zenith": cz}
        return CoupledForcing(**{k: jnp.asarray(v.T, dtype) for k, v in f.items()}, dt_seconds=3600.0)

    def evaluate(self, inp: DailyInputs, gv: np.ndarray, lv: np.ndarray):
        import jax
        import jax.numpy as jnp
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        K, D, P = gv.shape
        params, none = self.pixel_parameters(inp)
        params = jax.tree.map(lambda a: jnp.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else a, params)
        forcing = self.forcing(inp, dtype)
        lai0 = jnp.asarray(np.maximum(LAI_FROM_EVI[0] * gv[:, 0] + LAI_FROM_EVI[1], 0.05), dtype)   # (K, P)
        y = np.asarray(_run_pixels(self.emulator, self.process)(params, forcing, lai0), float)   # (K, P, 3, D)
        y = np.moveaxis(y, 1, 3)                                                                   # (K, 3, D, P)
        y = np.where(none[None, None, None, :], 0.0, y)
        return y, np.zeros_like(y)


_RUNNERS: dict = {}


def _run_pixels(emulator, process: bool):
    """jit(vmap over variants of vmap over pixels) of one pixel's daily run:
    (params, hourly forcing, initial LAI) -> (3, D) daily-mean gpp, reco, nee."""
    key = (id(emulator), process)
    if key in _RUNNERS:
        return _RUNNERS[key][1]
    import jax
    import jax.numpy as jnp
    from emulator.daily import daily_forcing
    from process_models.coupled import initial_state, simulate

    def one(params, forcing, lai0):
        s0 = initial_state(params, forcing)
        s0 = s0.replace(carbon=s0.carbon.replace(leaf=jnp.asarray(lai0 / params.carbon.sla, s0.carbon.leaf.dtype)))
        if process:
            out = simulate(params, forcing, s0)
            D = forcing.n_steps // 24
            day = lambda a: jnp.mean(a[:24 * D].reshape(D, 24), 1)          # noqa: E731
            return jnp.stack([day(out.gpp), day(out.reco), day(out.nee)])
        out = emulator.simulate(params, daily_forcing(forcing), s0)
        return jnp.stack([out.gpp, out.reco, out.nee])

    pixels = jax.vmap(one, in_axes=(0, 0, 0))
    fn = jax.jit(jax.vmap(pixels, in_axes=(None, None, 0)))
    _RUNNERS[key] = (emulator, fn)           # keep the emulator alive: its id stays unique
    return fn


# --- preparation and budgets ---------------------------------------------------------------

def build_daily_model(cfg: MapConfig, model=None):
    """The daily map model of the configuration: ``model`` wrapped (a fitted upscaling
    model, a :class:`~emulator.daily_emulator.DailyCoupledEmulator`, or an adapter as is),
    else built: ``upscaling`` -> ``make_model(daily.upscaling)`` fitted on
    ``training_table(daily.towers)``; ``coupled_daily`` -> the emulator saved in
    ``daily.emulator_dir``."""
    d = cfg.daily
    if model is not None:
        if hasattr(model, "evaluate") and hasattr(model, "uses_lswi"):
            return model
        if hasattr(model, "predict_dataset"):
            return UpscalingMapModel(model, d.upscaling)
        if hasattr(model, "simulate_vectors"):
            return CoupledDailyMapModel(model)
        raise DataValidationError(f"{type(model).__name__} is not a daily map model.", source="map config",
                                  variable="model.name", fix="pass a fitted emulator.upscaling model or a "
                                  "DailyCoupledEmulator.")
    if cfg.model.name == "upscaling":
        from emulator.upscaling import TreeConfig, make_model, training_table
        cache = cfg.resolve("", d.table_cache) if d.table_cache else None
        table = training_table(list(d.towers), cache_dir=cache)
        fitted = make_model(d.upscaling, tree=TreeConfig(n_estimators=int(d.n_estimators))).fit(table)
        return UpscalingMapModel(fitted, d.upscaling)
    if not d.emulator_dir:
        raise DataValidationError("no emulator given for model 'coupled_daily'.", source="map config",
                                  variable="daily.emulator_dir", fix="give the folder of a saved "
                                  "DailyCoupledEmulator (emulator study) or pass model=.")
    from emulator.daily_emulator import DailyCoupledEmulator
    return CoupledDailyMapModel(DailyCoupledEmulator.load(cfg.resolve("", d.emulator_dir)))


def prepare_daily(cfg: MapConfig, *, model=None, observations=None, meteorology=None, fractions=None,
                  pivot=None):
    """A :class:`~.engine.MapContext` of a daily map: the hourly engine's preparation
    (pivot fit, land cover, grid) with the richer meteorology of :func:`daily_meteorology`
    and the daily map model (:func:`build_daily_model`)."""
    from .engine import _fingerprint, prepare
    adapter = build_daily_model(cfg, model)          # first: a missing model fails before any reading
    hours = period_hours(cfg.run)
    met = meteorology if meteorology is not None else daily_meteorology(cfg, hours)
    base = cfg.replace(model=ModelConfig(name="vprm", table=cfg.model.table, temperatures=cfg.model.temperatures))
    ctx = prepare(base, observations=observations, meteorology=met, fractions=fractions, pivot=pivot)
    ctx = dataclasses.replace(ctx, config=cfg, model=adapter)
    ctx.fingerprint = hashlib.sha256((_fingerprint(cfg, "daily", ctx.params) + adapter.fingerprint())
                                     .encode()).hexdigest()[:16]
    return ctx


def annual_budgets(budgets: pd.DataFrame, n_days: int) -> pd.DataFrame:
    """The budget table with annual rates added: ``<v>_g_c_m2_yr`` and ``<v>_t_c_yr``
    (period totals x 365.25 / ``n_days``; equal to the totals for a whole year). A linear
    scaling: a period shorter than a year gives that season's rate, not an annual budget."""
    out = budgets.copy()
    f = 365.25 / float(n_days)
    for v in ("nee", "gpp", "reco"):
        if f"{v}_g_c_m2" in out:
            out[f"{v}_g_c_m2_yr"] = out[f"{v}_g_c_m2"] * f
            out[f"{v}_t_c_yr"] = out[f"{v}_t_c"] * f
    out.attrs = dict(budgets.attrs, period_days=int(n_days))
    return out
