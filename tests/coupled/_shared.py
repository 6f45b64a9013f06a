"""Forcing and runs shared by the coupled-model tests (cached per process, so the jitted
``simulate`` compiles once for the hourly CH-Dav year and is reused across test files)."""
from __future__ import annotations

import warnings
from functools import lru_cache

import jax
import numpy as np
import xarray as xr

from process_models.coupled import (forcing_from_dataset, initial_state, load_parameters,
                                    simulate, step)
from process_models.io import data_path, read_diive_parquet
from tests._files import DAV

CH_DAV = {"latitude": 46.8153, "longitude": 9.8559}
"""CH-Dav tower coordinates (ICOS station page), degrees."""


@lru_cache(maxsize=None)
def ch_dav(year: str = "2019"):
    """One year of CH-Dav half-hourly data (diive reader)."""
    return read_diive_parquet(data_path(*DAV)).sel(time=year)


def to_hourly(ds):
    """Half-hourly reader Dataset (regular, starting on the hour) -> hourly: means of the
    state variables, sums of precipitation (NumPy reshape; xarray resample is slow here)."""
    n = ds.sizes["time"] // 2 * 2
    pairs = lambda v: np.asarray(ds[v].values[:n], float).reshape(-1, 2)
    data = {v: ("time", pairs(v).mean(axis=1), dict(ds[v].attrs))
            for v in ("air_temperature", "vpd", "shortwave_in", "air_pressure")}
    p = pairs("precipitation")
    data["precipitation"] = ("time", np.where(np.isnan(p).all(axis=1), np.nan, np.nansum(p, axis=1)),
                             dict(ds["precipitation"].attrs))
    out = xr.Dataset(data, coords={"time": ds["time"].values[:n:2]})
    out.attrs = dict(ds.attrs, time_step_seconds=3600.0)
    return out


@lru_cache(maxsize=None)
def hourly_year():
    """CH-Dav 2019 hourly forcing (8760 steps) as CoupledForcing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return forcing_from_dataset(to_hourly(ch_dav()), **CH_DAV)


@lru_cache(maxsize=None)
def enf_params():
    return load_parameters("ENF", soil_texture="loam")


def run_year(forcing=None, params=None):
    """(outputs, final_state, initial_state) of a run with the shared compiled simulate."""
    forcing = hourly_year() if forcing is None else forcing
    params = enf_params() if params is None else params
    out, final = simulate(params, forcing, return_state=True)
    return out, final, initial_state(params, forcing)


@lru_cache(maxsize=None)
def year_run():
    return run_year()


def heavy_rain_forcing(seed: int = 0):
    """The CH-Dav year with synthetic storms: every 10 days a 6-hour 50 mm h-1 storm on top
    of the measured rain (same shapes -> same compiled simulate)."""
    f = hourly_year()
    p = np.asarray(f.precipitation).copy()
    rng = np.random.default_rng(seed)
    for start in range(100, p.size - 10, 240):
        s = start + int(rng.integers(0, 48))
        p[s:s + 6] += 50.0
    return f.replace(precipitation=np.asarray(p, dtype=p.dtype))


batched_step = jax.jit(jax.vmap(step, in_axes=(0, None, None)))
"""``step`` vmapped over a batch of states (one forcing step, one parameter set), jitted once."""
