"""The map engine: satellite cube -> daily pivot -> hourly NEE/GPP/Reco with uncertainty,
tile by tile, in process or on a dask.distributed cluster, into a resumable Zarr store.

Per tile (``run.tile`` pixels; one task) the chain is: the tile's observations -> daily
pivot (:func:`.pivot.pivot_arrays`, Kalman parameters shared by all tiles) -> VPRM
statistics of the statistics year (pyVPRM's EVImin + 0.55 (EVImax - EVImin) threshold and
growing-season LSWI range, :func:`process_models.satellite.yearly_statistics`, from the
pivot) -> hourly indices (linear between day centres) -> the model's ``simulate`` through
the model interface (:class:`process_models.vprm.VPRMModel` or any model taking
:class:`process_models.vprm.VPRMForcing`, e.g. an emulator) -> write (:mod:`.store`).

**Uncertainty** from the pivot sd:

* ``linear`` (default): first order by central divided differences over +-1 sd (the
  first-order divided-difference filter of Norgaard, Poulsen & Ravn 2000, Automatica
  36:1627): dF_v(t) = (F(v + sd_v) - F(v - sd_v)) / 2, sd_F(t) = sqrt(sum_v dF_v(t)^2)
  over the pivot variables v (EVI, LSWI; errors independent between variables); four
  extra forward runs per tile. Unlike the tangent (``jax.jvp``), the divided difference
  stays bounded where VPRM's scalars saturate or are steep (a pixel whose growing-season
  LSWI range is ~0 has dWscale/dLSWI ~ 1/range). For the period totals the pivot errors are
  taken as fully correlated in time (the smoother's errors are correlated over weeks):
  sd_total = sqrt(sum_v (sum_t dF_v(t) dt)^2), an upper bound.
* ``ensemble``: ``members`` draws of z_v ~ N(0, 1) per pixel and variable, v + z_v sd_v
  (fully correlated in time, as above), scanned over members (memory of one member); the
  central estimate is the run at the pivot mean.

The VPRM statistics are held at their pivot-mean values in both. Model-parameter
uncertainty is not propagated here (use an ensemble of calibrated parameter sets).

**Scale**: one jitted call per tile, tiles padded to one shape, so each worker compiles
once per configuration. ``run.scheduler = "local"`` starts a
``distributed.LocalCluster(n_workers=run.workers, threads_per_worker=1)``; an address
("tcp://host:8786") uses that cluster; ``"inprocess"`` runs the same tasks in this process.
The per-pixel results do not depend on where a tile runs: a LocalCluster run is
bit-identical to an in-process one (``tests/maps/test_engine.py``). A worker that dies is
replaced and its tile re-run by dask; an interrupted run resumes from the tile markers.

Units: fluxes ``umol m-2 s-1`` (hourly means), totals ``g C m-2`` (12.011 g C per mol CO2),
indices "1". Sign convention: GPP >= 0, Reco >= 0, NEE = Reco - GPP.
"""
from __future__ import annotations

import hashlib
import resource
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

from .config import MapConfig, load_config, period_hours
from .pivot import FusionParameters, fit_fusion, pivot_arrays, pivot_days, scene_prior
from .sources import (check_meteorology, class_fractions, hourly_meteorology, met_at_pixels, pixel_lonlat,
                      satellite_observations)
from .store import create_store, done_tiles, mark_done, write_tile

__all__ = ["MapContext", "MapRun", "prepare", "plan_tiles", "tile_inputs", "tile_params", "compute_tile", "process_tile", "run_map",
           "G_C_PER_UMOL_M2_S_HOUR"]

G_C_PER_UMOL_M2_S_HOUR = 3600.0 * 12.011e-6
"""g C m-2 per hour of a flux of 1 umol CO2 m-2 s-1 (3600 s x 12.011 g C mol-1 x 1e-6)."""


@dataclass
class MapContext:
    """Everything a tile task needs (sent once to each worker)."""
    config: MapConfig
    model: Any
    params: Any
    obs: xr.Dataset
    met: xr.Dataset
    fractions: np.ndarray          # (ny_src, nx_src, C)
    class_ids: tuple
    lon: np.ndarray                # (ny, nx) of the map grid
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    hours: pd.DatetimeIndex
    days: pd.DatetimeIndex         # pivot days (statistics year + period, padded)
    fusion: FusionParameters
    prior: dict
    statistics_year: int
    x64: bool
    fingerprint: str = ""
    pivot_names: tuple = ("evi", "lswi")
    pivot_given: bool = False
    """``obs`` is a daily pivot Dataset (used as is) rather than per-date observations."""

    @property
    def period_days(self) -> np.ndarray:
        first, last = self.hours[0].floor("D"), self.hours[-1].floor("D")
        return np.flatnonzero((self.days >= first) & (self.days <= last))

    @property
    def dtype(self):
        return np.float64 if self.config.run.precision == "float64" else np.float32


@dataclass
class MapRun:
    """Result of :func:`run_map`: the store, the budget table, per-tile infos and timings."""
    store: Path
    budgets: pd.DataFrame
    tiles: dict
    seconds: float
    resumed: bool
    info: dict = field(default_factory=dict)

    def open(self) -> xr.Dataset:
        from .store import open_map
        return open_map(self.store)


def plan_tiles(ny: int, nx: int, tile) -> list[tuple[str, slice, slice]]:
    """Tiles (id, y slice, x slice) covering the grid, row-major."""
    ty, tx = tile
    return [(f"{i // ty:04d}_{j // tx:04d}", slice(i, min(i + ty, ny)), slice(j, min(j + tx, nx)))
            for i in range(0, ny, ty) for j in range(0, nx, tx)]


# --- the jitted kernel -------------------------------------------------------------------

def _block(model, uncertainty, params, dm_t, ds_t, stats, frac, tb, pb, posb, vb, z):
    """One block of hours: fluxes and sd (3, block, P) and the block's sums for the period
    totals. dm_t/ds_t: (2, D, P) time-major EVI/LSWI pivot mean/sd; tb/pb/posb/vb: the
    block's temperature, PAR, fractional day position and validity (padded hours False);
    z: (members, 2, 1, P) ensemble draws (``ensemble`` only)."""
    import jax
    import jax.numpy as jnp
    from process_models.vprm import VPRMForcing

    D = dm_t.shape[1]
    dt = dm_t.dtype
    i0 = jnp.clip(jnp.floor(posb).astype(jnp.int32), 0, D - 2)
    w = (posb - i0.astype(posb.dtype))[:, None]
    m = vb[None, :, None].astype(dt)

    def fluxes(dm):
        interp = lambda d: d[i0] * (1 - w) + d[i0 + 1] * w          # (D, P) -> (block, P)
        f = VPRMForcing(temperature=tb, par=pb, evi=jnp.clip(interp(dm[0]), 0.0, 1.0),
                        lswi=jnp.clip(interp(dm[1]), -1.0, 1.0), evi_threshold=stats[0],
                        lswi_min=stats[1], lswi_max=stats[2], class_fractions=frac)
        o = model.simulate(params, f)
        return jnp.stack([o.gpp, o.reco, o.nee])    # (3, block, P)

    y = fluxes(dm_t)
    if uncertainty == "linear":
        zero = jnp.zeros_like(dm_t)
        d_evi, d_lswi = zero.at[0].set(ds_t[0]), zero.at[1].set(ds_t[1])
        t_e = 0.5 * (fluxes(dm_t + d_evi) - fluxes(dm_t - d_evi))
        t_l = 0.5 * (fluxes(dm_t + d_lswi) - fluxes(dm_t - d_lswi))
        return (y, _safe_sqrt(t_e ** 2 + t_l ** 2)), ((y * m).sum(1), (t_e * m).sum(1), (t_l * m).sum(1))
    n = float(z.shape[0])

    def member(a, zm):
        f = fluxes(dm_t + zm * ds_t)
        return (a[0] + f, a[1] + f * f), (f * m).sum(1)
    (s1, s2), tots = jax.lax.scan(member, (jnp.zeros_like(y), jnp.zeros_like(y)), z)
    sd = _safe_sqrt(jnp.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1))
    return (y, sd), ((y * m).sum(1), tots)


def _totals(uncertainty, sums):
    """Period totals (g C m-2) and their sd from the summed block sums."""
    import jax.numpy as jnp
    c = G_C_PER_UMOL_M2_S_HOUR
    if uncertainty == "linear":
        s_y, s_e, s_l = sums
        return c * s_y, c * _safe_sqrt(s_e ** 2 + s_l ** 2)
    s_y, s_m = sums
    n = s_m.shape[0]
    return c * s_y, c * _safe_sqrt(jnp.sum((s_m - s_m.mean(0)) ** 2, axis=0) / (n - 1))


def _draws(key, members, P, dt):
    import jax
    return jax.random.normal(key, (members, 2, 1, P), dt)


def _kernel(model, uncertainty, members, params, daily_m, daily_s, stats, frac, temp, par, pos, key,
            block: int = 168):
    """daily_m/s: (2, P, D) EVI and LSWI pivot mean/sd; stats (3, P); frac (P, C);
    temp/par (H, P); pos (H,) fractional day index of each hour's middle. The hours run in
    blocks of ``block`` (:func:`_block`) under ``lax.scan``; returns fluxes and sd (3, H, P),
    period totals and their sd (3, P). The engine streams the same blocks tile by tile
    (:func:`process_tile`) so that a tile never holds more than one block of hours."""
    import jax
    import jax.numpy as jnp

    dm_t, ds_t = jnp.swapaxes(daily_m, 1, 2), jnp.swapaxes(daily_s, 1, 2)     # (2, D, P)
    P = dm_t.shape[2]
    H = temp.shape[0]
    block = max(1, min(block, H))
    nb = -(-H // block)
    pad = nb * block - H

    def blocks(a):                                  # (H, ...) -> (nb, block, ...), edge-padded
        a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]) if pad else a
        return a.reshape((nb, block) + a.shape[1:])
    valid = jnp.arange(nb * block).reshape(nb, block) < H
    z = _draws(key, members, P, dm_t.dtype) if uncertainty == "ensemble" else None

    def step(acc, inp):
        out, sums = _block(model, uncertainty, params, dm_t, ds_t, stats, frac, *inp, z)
        return jax.tree.map(jnp.add, acc, sums), out
    _, sums0 = jax.eval_shape(lambda: _block(model, uncertainty, params, dm_t, ds_t, stats, frac,
                                             temp[:block], par[:block], pos[:block], valid[0], z))
    acc0 = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), sums0)
    sums, (y, sd) = jax.lax.scan(step, acc0, (blocks(temp), blocks(par), blocks(pos), valid))
    total, total_sd = _totals(uncertainty, sums)

    def unblock(a):                                 # (nb, 3, block, P) -> (3, H, P)
        return jnp.moveaxis(a, 0, 1).reshape(3, nb * block, P)[:, :H]
    return unblock(y), unblock(sd), total, total_sd


def _safe_sqrt(x):
    """sqrt with a finite gradient at 0 (the double-where trick): an sd of exactly 0, e.g.
    of a respiration that no index enters, must not give NaN gradients."""
    import jax.numpy as jnp
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


_KERNELS: dict = {}


def _jitted_block(model, uncertainty):
    import jax
    key = ("block", model, uncertainty)
    if key not in _KERNELS:
        _KERNELS[key] = jax.jit(partial(_block, model, uncertainty))
    return _KERNELS[key]


def _jitted(model, uncertainty, members):
    import jax
    key = (model, uncertainty, members)
    if key not in _KERNELS:
        _KERNELS[key] = jax.jit(partial(_kernel, model, uncertainty, members), static_argnames=("block",))
    return _KERNELS[key]


# --- one tile ----------------------------------------------------------------------------

def _source_index(sl: slice, n_src: int, n_tile: int):
    """Map-grid indices of a tile padded to ``n_tile`` (repeating its last row/column), and
    the source-cube indices they read (modulo the cube: ``run.replicate``)."""
    idx = np.arange(sl.start, sl.stop)
    idx = np.concatenate([idx, np.repeat(idx[-1:], n_tile - idx.size)])   # pad to the tile shape
    return idx % n_src, idx


def greenness(names) -> str:
    """VPRM's greenness index among the pivot variables: EVI, or EVI2 for a cube without a
    blue band (VPRM parameters are fitted for EVI; EVI2 tracks it, Jiang et al. 2008)."""
    return "evi" if "evi" in names else "evi2"


def tile_inputs(ctx: MapContext, ysl: slice, xsl: slice):
    """The kernel's array inputs for one tile (padded to the tile shape), the pivot, the
    pixel flags and the land-cover fractions: ``(args, piv, flags, frac, timing)``;
    ``args`` = (daily mean (2, P, D), daily sd, statistics (3, P), fractions (P, C),
    temperature (H, P) degC, PAR (H, P) umol m-2 s-1, day position (H,)) in ``ctx.dtype``."""
    import jax.numpy as jnp
    from process_models.satellite import yearly_statistics
    from process_models.vprm.tables import SW_TO_PAR

    t0 = time.perf_counter()
    ty, tx = ctx.config.run.tile
    ny_src, nx_src = ctx.obs.sizes["y"], ctx.obs.sizes["x"]
    iy_src, iy = _source_index(ysl, ny_src, ty)
    ix_src, ix = _source_index(xsl, nx_src, tx)
    obs = ctx.obs.isel(y=iy_src, x=ix_src)
    P = ty * tx
    lon = ctx.lon[np.ix_(iy, ix)].ravel()
    lat = ctx.lat[np.ix_(iy, ix)].ravel()
    temp, sw = met_at_pixels(ctx.met, lon, lat)
    frac = ctx.fractions[np.ix_(iy_src, ix_src)].reshape(P, -1)
    t1 = time.perf_counter()

    if ctx.pivot_given:
        tr = lambda da: da.transpose("time", "y", "x").values.reshape(len(ctx.days), -1).T
        piv = {n: (tr(obs[n]), tr(obs[f"{n}_sd"])) for n in ctx.pivot_names}
        flags = (obs["pixel_flag"].values.ravel().astype(np.int8) if "pixel_flag" in obs
                 else np.zeros(P, np.int8))
    else:
        piv, flags = pivot_arrays(obs, ctx.pivot_names, ctx.days, ctx.fusion, ctx.prior, dtype=ctx.dtype)
    in_year = np.asarray(ctx.days.year == ctx.statistics_year)
    g = greenness(ctx.pivot_names)
    stats = yearly_statistics(piv[g][0][:, in_year].T, piv["lswi"][0][:, in_year].T)
    st = np.stack([np.nan_to_num(np.asarray(stats[k]), nan=0.0) for k in ("evi_threshold", "lswi_min", "lswi_max")])
    t2 = time.perf_counter()
    dt = ctx.dtype
    pos = ((ctx.hours + pd.Timedelta("30min") - ctx.days[0]) / pd.Timedelta("1D")).to_numpy() - 0.5
    arr = lambda a: jnp.asarray(np.asarray(a), dt)
    args = (arr(np.stack([piv[g][0], piv["lswi"][0]])), arr(np.stack([piv[g][1], piv["lswi"][1]])),
            arr(st), arr(frac), arr(temp), arr(sw * SW_TO_PAR), arr(pos))
    return args, piv, flags, frac, {"read_s": t1 - t0, "pivot_s": t2 - t1}


def tile_params(ctx: MapContext):
    """The model parameters in the run's precision."""
    import jax
    import jax.numpy as jnp
    return jax.tree.map(lambda a: jnp.asarray(a, ctx.dtype) if np.issubdtype(np.asarray(a).dtype, np.floating)
                        else a, ctx.params)


def compute_tile(ctx: MapContext, ysl: slice, xsl: slice) -> tuple[dict, dict]:
    """The arrays of one tile (region of the map grid) and timings; pure given ``ctx``."""
    import jax

    args, piv, flags, frac, timing = tile_inputs(ctx, ysl, xsl)
    ty, tx = ctx.config.run.tile
    t2 = time.perf_counter()
    tile_key = int(hashlib.sha256(f"{ysl.start}-{xsl.start}".encode()).hexdigest()[:7], 16)
    key = jax.random.fold_in(jax.random.key(ctx.config.run.seed), tile_key)
    fn = _jitted(ctx.model, ctx.config.run.uncertainty, ctx.config.run.members)
    y, sd, tot, tot_sd = fn(tile_params(ctx), *args, key, block=int(ctx.config.run.time_chunk))
    y, sd, tot, tot_sd = (np.asarray(a, np.float32) for a in (y, sd, tot, tot_sd))
    t3 = time.perf_counter()

    ny_t, nx_t = ysl.stop - ysl.start, xsl.stop - xsl.start
    out = tile_outputs(ctx, ysl, xsl, (y, sd, tot, tot_sd), piv, flags, frac)
    timing.update(model_s=t3 - t2, pixels=int(ny_t * nx_t), hours=int(len(ctx.hours)))
    return out, timing


def tile_outputs(ctx: MapContext, ysl: slice, xsl: slice, fluxes, piv, flags, frac) -> dict:
    """The store variables of one tile from the kernel's padded arrays ``fluxes`` = (y, sd
    (3, T, P), period totals, their sd (3, P)) in the order GPP, Reco, NEE, cropped to the
    tile, plus the static per-pixel arrays (pivot statistics, flags, fractions). Shared by
    the hourly and the daily path (:mod:`.daily`)."""
    y, sd, tot, tot_sd = fluxes
    crop_h, crop_p = _crop(ctx, ysl, xsl)
    out = {}
    for k, name in enumerate(("gpp", "reco", "nee")):
        out[name] = (("time", "y", "x"), crop_h(y[k]))
        out[f"{name}_sd"] = (("time", "y", "x"), crop_h(sd[k]))
        out[f"{name}_total"] = (("y", "x"), crop_p(tot[k]))
        out[f"{name}_total_sd"] = (("y", "x"), crop_p(tot_sd[k]))
    out.update(_static_arrays(ctx, piv, flags, frac, crop_h, crop_p))
    return out


def _status_mb(key: str) -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _reset_peak_rss() -> float:
    """Reset the process's peak-RSS counter (Linux: write 5 to /proc/self/clear_refs) and
    return the current RSS (MB), so VmHWM after a tile is that tile's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    return _status_mb("VmRSS")


def _crop(ctx, ysl, xsl):
    ty, tx = ctx.config.run.tile
    ny_t, nx_t = ysl.stop - ysl.start, xsl.stop - xsl.start
    crop_h = lambda a: a.reshape(a.shape[0], ty, tx)[:, :ny_t, :nx_t]     # (H, P) -> (H, ny, nx)
    crop_p = lambda a: a.reshape(ty, tx)[:ny_t, :nx_t]                      # (P,) -> (ny, nx)
    return crop_h, crop_p


def process_tile(ctx: MapContext, tile) -> dict:
    """Compute one tile and write it into the store, streaming the hours in blocks of
    ``run.time_chunk`` (one Zarr chunk of time per jitted call, written as soon as it is
    computed, so a tile holds one block of hourly outputs at a time), then the period
    totals, the pivot and the marker. Returns its info (timings, memory, pid). The values
    are those of :func:`compute_tile` (same blocks, same draws)."""
    import os

    import jax
    import jax.numpy as jnp
    if jax.config.jax_enable_x64 != ctx.x64:
        jax.config.update("jax_enable_x64", ctx.x64)
    tile_id, ysl, xsl = tile
    rss0 = _reset_peak_rss()
    store = ctx.config.output.store
    run = ctx.config.run
    args, piv, flags, frac, info = tile_inputs(ctx, ysl, xsl)
    daily_m, daily_s, stats, frac_a, temp, par, pos = args
    dm_t, ds_t = jnp.swapaxes(daily_m, 1, 2), jnp.swapaxes(daily_s, 1, 2)
    P, H = dm_t.shape[2], temp.shape[0]
    block = max(1, min(int(run.time_chunk), H))
    tile_key = int(hashlib.sha256(f"{ysl.start}-{xsl.start}".encode()).hexdigest()[:7], 16)
    key = jax.random.fold_in(jax.random.key(run.seed), tile_key)
    z = _draws(key, run.members, P, dm_t.dtype) if run.uncertainty == "ensemble" else None
    fn = _jitted_block(ctx.model, run.uncertainty)
    params = tile_params(ctx)
    crop_h, crop_p = _crop(ctx, ysl, xsl)
    model_s = write_s = 0.0
    acc, nbytes = None, 0
    for b0 in range(0, H, block):                   # blocks of hours (Zarr time chunks), not single hours
        t0 = time.perf_counter()
        hb = min(block, H - b0)
        idx = jnp.minimum(jnp.arange(b0, b0 + block), H - 1)     # the last block edge-padded
        valid = jnp.arange(b0, b0 + block) < H
        (y, sd), sums = fn(params, dm_t, ds_t, stats, frac_a, temp[idx], par[idx], pos[idx], valid, z)
        acc = sums if acc is None else jax.tree.map(jnp.add, acc, sums)
        y, sd = np.asarray(y, np.float32)[:, :hb], np.asarray(sd, np.float32)[:, :hb]
        t1 = time.perf_counter()
        arrays = {}
        for k, name in enumerate(("gpp", "reco", "nee")):
            arrays[name] = (("time", "y", "x"), crop_h(y[k]))
            arrays[f"{name}_sd"] = (("time", "y", "x"), crop_h(sd[k]))
        write_tile(store, ysl, xsl, arrays, tsl=slice(b0, b0 + hb))
        nbytes += sum(a.nbytes for _, a in arrays.values())
        model_s += t1 - t0
        write_s += time.perf_counter() - t1
    t0 = time.perf_counter()
    tot, tot_sd = (np.asarray(a, np.float32) for a in _totals(run.uncertainty, acc))
    t1 = time.perf_counter()
    arrays = {}
    for k, name in enumerate(("gpp", "reco", "nee")):
        arrays[f"{name}_total"] = (("y", "x"), crop_p(tot[k]))
        arrays[f"{name}_total_sd"] = (("y", "x"), crop_p(tot_sd[k]))
    arrays.update(_static_arrays(ctx, piv, flags, frac, crop_h, crop_p))
    write_tile(store, ysl, xsl, arrays)
    nbytes += sum(a.nbytes for _, a in arrays.values())
    ny_t, nx_t = ysl.stop - ysl.start, xsl.stop - xsl.start
    info.update(model_s=model_s + (t1 - t0), write_s=write_s + time.perf_counter() - t1,
                pixels=int(ny_t * nx_t), hours=int(H), tile=tile_id, pid=os.getpid())
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    hwm = _status_mb("VmHWM")
    info["rss_before_mb"] = rss0
    info["tile_peak_mb"] = hwm - rss0 if rss0 == rss0 and hwm == hwm else float("nan")
    info["tile_mb"] = nbytes / 2**20
    info["block_mb"] = 6 * 4 * block * ny_t * nx_t / 2**20
    mark_done(store, tile_id, info)
    return info


def _static_arrays(ctx, piv, flags, frac, crop_h, crop_p):
    """The tile's pivot over the period, class fractions and flags."""
    ty, tx = ctx.config.run.tile
    out = {}
    pd_idx = ctx.period_days
    for n in ctx.pivot_names:
        m, s = piv[n]
        out[n] = (("day", "y", "x"), crop_h(np.asarray(m[:, pd_idx].T, np.float32)))
        out[f"{n}_sd"] = (("day", "y", "x"), crop_h(np.asarray(s[:, pd_idx].T, np.float32)))
    ny_t, nx_t = crop_p(np.zeros(ty * tx)).shape
    out["class_fraction"] = (("y", "x", "vprm_class"), frac.reshape(ty, tx, -1)[:ny_t, :nx_t].astype(np.float32))
    out["pixel_flag"] = (("y", "x"), crop_p(flags.astype(np.int8)))
    return out


# --- the driver --------------------------------------------------------------------------

def _fingerprint(cfg: MapConfig, model, params) -> str:
    import jax
    h = hashlib.sha256(cfg.fingerprint().encode())
    h.update(repr(model).encode())
    for leaf in jax.tree.leaves(params):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def prepare(config: MapConfig | str | Path, *, model=None, params=None, observations: xr.Dataset | None = None,
            meteorology: xr.Dataset | None = None, fractions: xr.DataArray | None = None,
            pivot: xr.Dataset | None = None) -> MapContext:
    """Read and check the inputs and fit the shared pivot parameters: a :class:`MapContext`.
    ``observations``/``meteorology``/``fractions`` replace the configured sources (e.g. a
    tower pixel built from a reader). ``pivot``: a daily pivot Dataset
    (:func:`.pivot.validate_pivot`; e.g. a multi-resolution or learned pivot of
    :mod:`assimilation.observations.pivot`) used as the satellite input instead of fusing the
    cube: it must cover the statistics year and the map period, and hold ``lswi`` and ``evi``
    (or ``evi2``) with their sd."""
    import jax
    cfg = config if isinstance(config, MapConfig) else load_config(config)
    if cfg.step == "daily":                       # daily models: assimilation/maps/daily.py
        from .daily import prepare_daily
        return prepare_daily(cfg, model=model, observations=observations, meteorology=meteorology,
                             fractions=fractions, pivot=pivot)
    run = cfg.run
    if model is None:
        from process_models.vprm import VPRMModel
        if cfg.model.name != "vprm":
            raise DataValidationError(f"model {cfg.model.name!r}: the configured engine model is 'vprm'.",
                                      source="map config", variable="model.name",
                                      fix="pass another model object (e.g. an emulator) as model=.")
        model = VPRMModel(table=cfg.model.table, temperatures=cfg.model.temperatures)
    params = model.default_params() if params is None else params
    class_ids = tuple(params.rules.class_ids)
    hours = period_hours(run)
    if pivot is not None:
        from .pivot import validate_pivot
        obs = validate_pivot(pivot, source="pivot input")
    else:
        obs = observations if observations is not None else satellite_observations(cfg)
    if run.window:
        y0, y1, x0, x1 = run.window
        if y1 > obs.sizes["y"] or x1 > obs.sizes["x"]:
            raise DataValidationError(f"window {run.window} exceeds the cube ({obs.sizes['y']} x {obs.sizes['x']}).",
                                      source="map config", variable="run.window", fix="shrink the window.")
        obs = obs.isel(y=slice(y0, y1), x=slice(x0, x1))
        if fractions is not None:
            fractions = fractions.isel(y=slice(y0, y1), x=slice(x0, x1))
    names = tuple(cfg.satellite.indices)
    if pivot is not None:
        names = tuple(n for n in ("evi", "evi2", "ndvi", "lswi", "nirv", "lai", "fapar") if n in obs.data_vars)
        if not (("evi" in names or "evi2" in names) and "lswi" in names):
            raise DataValidationError(f"the pivot has {list(names)}; VPRM needs evi (or evi2) and lswi.",
                                      source="pivot input", variable="lswi", fix="add them with their sd.")
    year = run.statistics_year or hours[0].year
    t = pd.DatetimeIndex(obs["time"].values)
    if not ((t.year == year).any()):
        raise DataValidationError(f"no acquisition in the statistics year {year} (record {t[0].date()} .. "
                                  f"{t[-1].date()}).", source="satellite", variable="time",
                                  fix="choose run.start (or run.statistics_year) inside the satellite record.")
    days = pivot_days(obs, hours, year)
    if pivot is not None:
        pt = pd.DatetimeIndex(obs["time"].values)
        need0, need1 = min(pd.Timestamp(f"{year}-01-01"), hours[0].floor("D")), max(
            pd.Timestamp(f"{year}-12-31"), hours[-1].floor("D"))
        if pt[0] > need0 or pt[-1] < need1:
            raise DataValidationError(f"the pivot spans {pt[0].date()} .. {pt[-1].date()}, the statistics year and "
                                      f"period need {need0.date()} .. {need1.date()}.", source="pivot input",
                                      variable="time", fix="extend the pivot or change run.start/end.")
        days = pt
    met = (check_meteorology(meteorology, hours, max_gap_hours=cfg.meteorology.max_gap_hours)
           if meteorology is not None else hourly_meteorology(cfg, hours))
    if pivot is None:
        fusion = fit_fusion(obs, names, days, fit_pixels=run.fit_pixels, fit_steps=run.fit_steps, seed=run.seed)
        # numpy leaves: a worker unpickles the context before it can switch float64 on, and a
        # jax array unpickled under float32 defaults would lose precision
        fusion = FusionParameters(tuple((n, jax.tree.map(np.asarray, ps)) for n, ps in fusion.by_variable))
        prior = scene_prior(obs, names, days, fusion)
    else:
        fusion, prior = FusionParameters(()), {}
    frac = fractions if fractions is not None else class_fractions(cfg, obs, class_ids)
    ry, rx = run.replicate
    ny, nx = obs.sizes["y"], obs.sizes["x"]
    lon, lat = pixel_lonlat(obs)
    xs, ys = obs["x"].values, obs["y"].values
    dx = float(xs[1] - xs[0]) if nx > 1 else 1.0
    dy = float(ys[1] - ys[0]) if ny > 1 else -1.0
    x = np.concatenate([xs + k * nx * dx for k in range(rx)])
    y = np.concatenate([ys + k * ny * dy for k in range(ry)])
    ctx = MapContext(config=cfg, model=model, params=jax.tree.map(np.asarray, params), obs=obs, met=met,
                     fractions=np.asarray(frac.transpose("y", "x", "vprm_class").values, float),
                     class_ids=class_ids, lon=np.tile(lon, (ry, rx)), lat=np.tile(lat, (ry, rx)), x=x, y=y,
                     hours=hours, days=days, fusion=fusion, prior=prior, statistics_year=year,
                     x64=bool(jax.config.jax_enable_x64), pivot_names=names, pivot_given=pivot is not None)
    ctx.fingerprint = _fingerprint(cfg, model, params)
    return ctx


def _client(run):
    from distributed import Client, LocalCluster
    if run.scheduler == "local":
        cluster = LocalCluster(n_workers=run.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit="4GiB", silence_logs=40)
        return Client(cluster), cluster
    return Client(run.scheduler), None


def run_map(config: MapConfig | str | Path, *, model=None, params=None, observations=None, meteorology=None,
            fractions=None, pivot=None, client=None, progress: bool = True, stop_after: int | None = None,
            context: MapContext | None = None) -> MapRun:
    """Run the configured map and return a :class:`MapRun`.

    ``client``: an existing ``distributed.Client`` (else one from ``run.scheduler``);
    ``pivot``: a daily pivot Dataset as the satellite input (see :func:`prepare`);
    ``stop_after``: process only that many tiles (an interruption, for tests); a second call
    resumes. ``context``: a prepared :class:`MapContext` (skips :func:`prepare`).
    """
    from tqdm.auto import tqdm

    from .budgets import budget_table
    t_start = time.perf_counter()
    ctx = context or prepare(config, model=model, params=params, observations=observations,
                             meteorology=meteorology, fractions=fractions, pivot=pivot)
    cfg, run = ctx.config, ctx.config.run
    t_prep = time.perf_counter() - t_start
    store = Path(cfg.output.store)
    store.parent.mkdir(parents=True, exist_ok=True)
    grid = {"x": ctx.x, "y": ctx.y, "lon": ctx.lon, "lat": ctx.lat}
    daily = cfg.step == "daily"
    times = ctx.days[ctx.period_days] if daily else ctx.hours
    attrs = {"title": f"ecoflux {cfg.step} CO2 flux maps: {cfg.name}", "institution": "ecoflux",
             "source": f"{ctx.model!r}; pivot: "
                       + (f"given ({ctx.obs.attrs.get('pivot_method', '?')}) " if ctx.pivot_given else
                          f"Kalman/RTS smoother ") + f"of {', '.join(ctx.pivot_names)}; "
                       f"satellite {cfg.satellite.kind}, meteorology {ctx.met.attrs.get('kind', 'given')}",
             "history": f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%dT%H:%M}Z ecoflux assimilation.maps.run_map",
             "references": ("Mahadevan et al. 2008, doi:10.1029/2006GB002735 (VPRM)" if not daily else
                            "ecoflux assimilation.maps.daily (see its docstring for the model's papers)"),
             "sign_convention": "NEE = Reco - GPP; positive = source to the atmosphere",
             "uncertainty": run.uncertainty, "statistics_year": int(ctx.statistics_year)}
    created = create_store(store, grid=grid, hours=times, days=ctx.days[ctx.period_days],
                           pivot_names=ctx.pivot_names, class_ids=ctx.class_ids, tile=run.tile,
                           time_chunk=len(times) if daily else min(run.time_chunk, len(ctx.hours)),
                           crs_wkt=ctx.obs.attrs["crs"], attrs=attrs, fingerprint=ctx.fingerprint,
                           overwrite=cfg.output.overwrite, step=cfg.step)
    tile_fn = process_tile
    if daily:
        from .daily import process_daily_tile as tile_fn
    tiles = plan_tiles(len(ctx.y), len(ctx.x), run.tile)
    done = done_tiles(store)
    todo = [t for t in tiles if t[0] not in done]
    if stop_after is not None:
        todo = todo[:stop_after]
    infos = {}
    bar = tqdm(total=len(todo), desc=f"map {cfg.name}", unit="tile", disable=not progress)
    t_run = time.perf_counter()
    if run.scheduler == "inprocess" and client is None:
        for t in todo:
            infos[t[0]] = tile_fn(ctx, t)
            bar.update()
    elif todo:
        from distributed import as_completed
        own = client is None
        cl, cluster = _client(run) if own else (client, None)
        try:
            ctx_f = cl.scatter(ctx, broadcast=True)
            futures = cl.map(tile_fn, [ctx_f] * len(todo), todo, pure=False, retries=2)
            for fut in as_completed(futures):
                info = fut.result()
                infos[info["tile"]] = info
                bar.update()
        finally:
            if own:
                cl.close()
                if cluster is not None:
                    cluster.close()
    bar.close()
    seconds_run = time.perf_counter() - t_run
    all_done = done_tiles(store)
    complete = len(all_done) == len(tiles)
    budgets = budget_table(store, cfg.regions) if complete else pd.DataFrame()
    if complete and daily:
        from .daily import annual_budgets
        budgets = annual_budgets(budgets, len(times))
    if complete:
        budgets.to_csv(str(store).rstrip("/") + ".budgets.csv", index=False)
    pixel_hours = sum(i["pixels"] * i["hours"] for i in infos.values())
    info = {"tiles": len(tiles), "tiles_run": len(infos), "tiles_skipped": len(tiles) - len(todo)
            if stop_after is None else len(done), "complete": complete, "prepare_s": t_prep,
            "run_s": seconds_run, "pixel_hours": pixel_hours,
            "pixel_hours_per_s": pixel_hours / seconds_run if seconds_run > 0 and pixel_hours else float("nan")}
    return MapRun(store=store, budgets=budgets, tiles=infos, seconds=time.perf_counter() - t_start,
                  resumed=not created, info=info)
