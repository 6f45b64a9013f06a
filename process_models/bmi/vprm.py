"""BMI 2.0 face of VPRM (Mahadevan et al. 2008; :mod:`process_models.vprm`).

VPRM is stateless: ``update()`` evaluates the fluxes of one forcing record. The
parameters ``lam``, ``par0``, ``alpha``, ``beta`` are exposed as settable inputs on a
``"vector"`` grid (one value per VPRM class of the run).

Config (TOML)::

    [model]
    table = "mahadevan2008"          # process_models.vprm.available_tables()
    temperatures = "mahadevan2008"   # copernicus | mahadevan2008 | wrf
    classes = [3]                    # VPRM class numbers
    # any VPRMOptions field: mode, sharpness, water_stress, light, respiration ...

    [forcing]
    builder = "park_falls"           # US-PFa 2005 tower + MODIS EVI/LSWI, or
    # file = "forcing.nc"            # NetCDF in process_models.vprm.prepare_forcing form
    # latitude = 45.95               # site position (points grid), default from the data

    [time]
    start = "2005-06-01T00:00"       # first record (inclusive), forcing clock
    end = "2005-07-01T00:00"         # exclusive
    time_step = 3600                 # seconds; must equal the forcing's record length

    [parameters]                     # optional overrides, one value per class
    lam = [0.1]
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from ..units import DataValidationError
from ..vprm import VPRMForcing, VPRMOptions, load_parameters, simulate
from ..vprm.xarray_api import prepare_forcing
from ._base import BmiGrid, BmiVariable, JaxModelBmi, ModelSetup, resolve_path

__all__ = ["BmiVPRM", "park_falls_forcing", "VPRM_VARIABLES"]

#: (CSDMS name, units, kind, internal key, source of the name, description)
VPRM_VARIABLES = [
    ("land_surface_air__temperature", "degC", "forcing", "temperature", "csdms",
     "2 m air temperature"),
    ("land_surface_radiation~incoming~photosynthetic__photon_flux", "umol m-2 s-1", "forcing",
     "par", "constructed", "incoming PAR (PPFD)"),
    ("land_vegetation__enhanced_vegetation_index", "1", "forcing", "evi", "constructed",
     "EVI at the record"),
    ("land_vegetation__land_surface_water_index", "1", "forcing", "lswi", "constructed",
     "LSWI at the record"),
    ("land_vegetation__gross_primary_productivity", "umol m-2 s-1", "output", "gpp",
     "constructed", "GPP (>= 0) of the record"),
    ("land_ecosystem__respiration_carbon-dioxide_flux", "umol m-2 s-1", "output", "reco",
     "constructed", "ecosystem respiration (>= 0)"),
    ("land_ecosystem__net_carbon-dioxide_exchange_flux", "umol m-2 s-1", "output", "nee",
     "constructed", "NEE = Reco - GPP (positive = source)"),
]
VPRM_PARAMETERS = [
    ("model_vprm__light_use_efficiency_lambda", "1", "lam", "maximum light-use efficiency "
     "lambda (umol CO2 per umol photon)"),
    ("model_vprm__half-saturation_par", "umol m-2 s-1", "par0", "half-saturation PAR"),
    ("model_vprm__respiration_temperature_slope_alpha", "umol m-2 s-1 K-1", "alpha",
     "respiration temperature slope"),
    ("model_vprm__respiration_intercept_beta", "umol m-2 s-1", "beta",
     "respiration at 0 degC"),
]
_OPTION_FIELDS = ("mode", "sharpness", "pyvprm_compat", "respiration", "water_stress", "light",
                  "respiration_temperature_floor")


@lru_cache(maxsize=1)
def park_falls_forcing() -> tuple[xr.Dataset, dict]:
    """US-PFa 2005 hourly VPRM forcing Dataset (tower temperature/PPFD, MOD13Q1 EVI and
    MCD43A4 LSWI interpolated linearly to the hours, pyVPRM whole-year statistics; built by
    :func:`process_models.io.park_falls_vprm_forcing`) and site info."""
    from ..io import read_park_falls, vprm_site_forcing

    d = read_park_falls()
    tower = d["tower"]
    f = vprm_site_forcing(tower, d["evi"], lswi_satellite=d["reflectance"], year=2005)
    one = {"units": "1"}
    ds = xr.Dataset({
        "air_temperature": tower.air_temperature,
        "par": tower.ppfd_in.assign_attrs(units="umol m-2 s-1"),
        "evi": ("time", np.asarray(f.evi), one), "lswi": ("time", np.asarray(f.lswi), one),
        "evi_threshold": ((), float(f.evi_threshold[0]), one),
        "lswi_min": ((), float(f.lswi_min[0]), one), "lswi_max": ((), float(f.lswi_max[0]), one),
        "class_fractions": (("vprm_class",), np.ones(1), one),
    }, coords={"time": tower.time, "vprm_class": [3]}, attrs=dict(tower.attrs))
    return ds, {"latitude": tower.attrs["latitude"], "longitude": tower.attrs["longitude"],
                "site_id": "US-PFa", "classes": [3]}


_BUILDERS = {"park_falls": park_falls_forcing}


def _select_time(ds: xr.Dataset, tcfg: dict, src: str) -> xr.Dataset:
    start, end = tcfg.get("start"), tcfg.get("end")
    t = ds.time.values
    lo = np.datetime64(pd.Timestamp(start)) if start else t[0]
    hi = np.datetime64(pd.Timestamp(end)) if end else t[-1] + (t[-1] - t[-2] if t.size > 1 else 0)
    sel = ds.isel(time=np.flatnonzero((t >= lo) & (t < hi)))
    if sel.sizes["time"] == 0:
        raise DataValidationError(f"no forcing records in [{start}, {end}) (the forcing covers "
                                  f"{t[0]} .. {t[-1]}).", source=src, variable="time",
                                  fix="choose [time] start/end inside the forcing period.")
    return sel


def regular_step(times, expected: float | None, src: str) -> float:
    """Record length in seconds of a regular time axis; raise on gaps or a mismatch with
    the configured ``time_step``."""
    t = np.asarray(times, dtype="datetime64[ns]")
    if t.size < 2:
        if expected is None:
            raise DataValidationError("a single record: give [time] time_step.", source=src,
                                      variable="time", fix="set time_step in seconds.")
        return float(expected)
    d = np.diff(t) / np.timedelta64(1, "s")
    if not np.all(d == d[0]):
        i = int(np.argmax(d != d[0]))
        raise DataValidationError(f"irregular time axis after {t[i]} (step {d[i]} s, expected "
                                  f"{d[0]} s); BMI needs a regular record grid.", source=src,
                                  variable="time", fix="reindex the forcing to a regular axis "
                                  "and gap-fill it.")
    if expected is not None and float(expected) != float(d[0]):
        raise DataValidationError(f"[time] time_step = {expected} s but the forcing records are "
                                  f"{d[0]} s long.", source=src, variable="time_step",
                                  fix="set time_step to the forcing's record length (or resample "
                                  "the forcing first).")
    return float(d[0])


def spatial_grid(ds: xr.Dataset, lat, lon) -> tuple[BmiGrid, tuple]:
    """Grid of the spatial part of a forcing Dataset: a ``points`` grid for a site, or a
    ``uniform_rectilinear`` (y, x) grid for a regular raster."""
    dims = [d for d in ds["air_temperature"].dims if d != "time"]
    if not dims:
        return BmiGrid("points", (), x=np.array([lon], float), y=np.array([lat], float),
                       rank=2), ()
    if dims != ["y", "x"]:
        raise DataValidationError(f"spatial dims {dims}; the BMI supports a site (no dims) or "
                                  "a (y, x) raster.", source="forcing", variable="air_temperature",
                                  fix="transpose the forcing to (time, y, x).")
    x, y = ds["x"].values.astype(float), ds["y"].values.astype(float)
    dx, dy = np.diff(x), np.diff(y)
    if (x.size > 1 and not np.allclose(dx, dx[0])) or (y.size > 1 and not np.allclose(dy, dy[0])):
        raise DataValidationError("x/y coordinates are not evenly spaced.", source="forcing",
                                  variable="x", fix="regrid to a uniform raster.")
    sp = (float(dy[0]) if y.size > 1 else 1.0, float(dx[0]) if x.size > 1 else 1.0)
    return BmiGrid("uniform_rectilinear", (y.size, x.size), x=x, y=y, spacing=sp,
                   origin=(float(y[0]), float(x[0]))), (y.size, x.size)


class BmiVPRM(JaxModelBmi):
    """VPRM behind BMI 2.0 (see the module docstring for the config)."""

    def _setup(self, config: dict, base: Path) -> ModelSetup:
        mcfg, fcfg, tcfg = config.get("model", {}), config.get("forcing", {}), config.get("time", {})
        opts = VPRMOptions(**{k: mcfg[k] for k in _OPTION_FIELDS if k in mcfg})
        info = {}
        if "builder" in fcfg:
            if fcfg["builder"] not in _BUILDERS:
                raise ValueError(f"unknown forcing builder {fcfg['builder']!r}; known: "
                                 f"{sorted(_BUILDERS)}.")
            ds, info = _BUILDERS[fcfg["builder"]]()
            ds, info = ds.copy(), dict(info)
            src = fcfg["builder"]
        elif "file" in fcfg:
            p = resolve_path(fcfg["file"], base)
            ds, src = xr.load_dataset(p), str(p)
        else:
            raise ValueError("[forcing] needs 'builder' or 'file'.")
        ds = _select_time(ds, tcfg, src)
        dt = regular_step(ds.time.values, tcfg.get("time_step"), src)
        ds = prepare_forcing(ds, opts)
        classes = [int(c) for c in mcfg.get("classes", info.get("classes", ds["class_fractions"]
                                                                 ["vprm_class"].values))]
        params = load_parameters(mcfg.get("table", "pyvprm_modis"),
                                 temperatures=mcfg.get("temperatures", "copernicus"),
                                 classes=classes)
        for name, val in config.get("parameters", {}).items():
            if not hasattr(params, name):
                raise ValueError(f"[parameters] {name!r} is not a VPRMParams field.")
            old = getattr(params, name)
            old = params.lam if old is None else old      # optional fields (theta_wilt ...)
            params = params.replace(**{name: jnp.asarray(np.broadcast_to(val, old.shape),
                                                         dtype=old.dtype)})
        lat = fcfg.get("latitude", info.get("latitude", ds.attrs.get("latitude", np.nan)))
        lon = fcfg.get("longitude", info.get("longitude", ds.attrs.get("longitude", np.nan)))
        space, shape = spatial_grid(ds, lat, lon)
        dtype = params.lam.dtype
        n = ds.sizes["time"]

        def arr(name, full_time):
            da = ds[name]
            if name == "class_fractions":
                da = da.transpose(*[d for d in da.dims if d != "vprm_class"], "vprm_class")
            v = jnp.asarray(da.values, dtype=dtype)
            if full_time and "time" not in da.dims:
                v = jnp.broadcast_to(v, (n,) + shape)
            return v

        tf = ["temperature", "par", "evi", "lswi"]
        fields = {"temperature": arr("air_temperature", True), "par": arr("par", True),
                  "evi": arr("evi", True), "lswi": arr("lswi", True),
                  "evi_threshold": arr("evi_threshold", False),
                  "lswi_min": arr("lswi_min", False), "lswi_max": arr("lswi_max", False),
                  "class_fractions": arr("class_fractions", False)}
        variables = [BmiVariable(nm, u, 0, kind, key, desc, standard=std)
                     for nm, u, kind, key, std, desc in VPRM_VARIABLES]
        if opts.water_stress != "lswi":
            fields["soil_water_content"] = arr("soil_water_content", True)
            tf.append("soil_water_content")
            variables.append(BmiVariable("soil_water__volume_fraction", "m3 m-3", 0, "forcing",
                                         "soil_water_content", "root-zone soil water",
                                         standard="csdms"))
        if opts.light == "fapar":
            fields["fapar"] = arr("fapar", True)
            tf.append("fapar")
            variables.append(BmiVariable(
                "land_vegetation__absorbed_photosynthetic_radiation_fraction", "1", 0,
                "forcing", "fapar", "fAPAR", standard="constructed"))
        forcing = VPRMForcing(**fields)
        grids = {0: space, 1: BmiGrid("vector", (len(classes),))}
        variables += [BmiVariable(nm, u, 1, "param", key, desc) for nm, u, key, desc in VPRM_PARAMETERS]

        step = _vprm_step(opts)
        template = jax.eval_shape(lambda p, f: simulate(p, f, opts), params,
                                  jax_tree_first(forcing, tf))
        return ModelSetup(params=params, forcing=forcing, time_fields=tuple(tf),
                          times=ds.time.values, dt_seconds=dt, step=step,
                          initial_state=lambda p, f: (), variables=variables, grids=grids,
                          output_template=template, component_name="ecoflux VPRM",
                          info={"site_id": info.get("site_id", ds.attrs.get("site_id", "")),
                                "classes": classes, "options": opts})


@lru_cache(maxsize=None)
def _vprm_step(options: VPRMOptions):
    """The ``step(state, forcing_t, params)`` of VPRM for ``options`` (one function object
    per options value, so compiled code is shared between BMI instances)."""
    def step(state, forcing_t, params):
        return state, simulate(params, forcing_t, options)
    return step


def jax_tree_first(forcing, time_fields):
    """The forcing of the first record (time fields indexed at 0)."""
    return forcing.replace(**{f: getattr(forcing, f)[0] for f in time_fields})
