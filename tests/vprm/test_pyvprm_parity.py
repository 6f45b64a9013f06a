"""Parity with pyVPRM 6.0.1 itself: its ``vprm_base_model.make_vprm_predictions`` (grid
path) and ``get_t_scale`` (site path) are driven with our inputs through minimal stand-ins
for its preprocessor and meteorology objects, and compared with ``simulate`` in
``pyvprm_compat`` mode to 1e-10 in float64.

pyVPRM is installed by the Makefile without its geo dependencies (``pip install --no-deps
pyVPRM==6.0.1``); its model module needs only ``loguru`` and imports ``pygrib``, which is
stubbed here because the model never calls it.
"""
import datetime as dt
import os
import sys
import types

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from process_models.vprm import VPRMForcing, VPRMOptions, load_parameters, simulate

sys.modules.setdefault("pygrib", types.ModuleType("pygrib"))
try:
    from pyVPRM.vprm_models.vprm_base_model import vprm_base_model
except ImportError:  # pragma: no cover
    if os.environ.get("CI"):
        raise  # in CI the Makefile installs pyVPRM: a silent skip would hide lost coverage
    pytest.skip("pyVPRM 6.0.1 not installed (make test installs it)", allow_module_level=True)

CLASSES = [1, 2, 3, 4, 5, 6, 7, 8, 9]
NY, NX, NDAYS, HOURS = 12, 10, 2, (0, 6, 9, 12, 15, 21)


class _Manager:
    def __init__(self, sat_img):
        self.sat_img = sat_img


class _Pre:
    """Stand-in for pyVPRM's vprm_preprocessor (only what the model reads)."""

    time_key = "time"
    n_cpus = 1
    empty_xr_lat_lon_grid = "grid"

    def __init__(self, evi, lswi, th, lmin, lmax, frac, temps, t0):
        dims = ("time", "y", "x")
        self.sat_imgs = _Manager(xr.Dataset({"evi": (dims, evi), "lswi": (dims, lswi)}))
        self.min_max_evi = _Manager(xr.Dataset({"th": (("y", "x"), th)}))
        self.max_lswi = _Manager(xr.Dataset({"max_lswi": (("y", "x"), lmax)}))
        self.min_lswi = _Manager(xr.Dataset({"min_lswi": (("y", "x"), lmin)}))
        self.land_cover_type = _Manager(xr.DataArray(
            np.moveaxis(frac, -1, 0), dims=("vprm_classes", "y", "x"),
            coords={"vprm_classes": CLASSES}))
        self.temp_coefficients = temps
        self.t0 = t0

    def _set_sat_img_counter(self, datetime_utc):
        self.counter = (datetime_utc - self.t0).days
        return True


class _Met:
    """Stand-in for pyVPRM's ERA5 class: t2m in K, ssrd in J m-2 per hour."""

    def __init__(self, t2m, ssrd, t0):
        self.t2m, self.ssrd, self.t0 = t2m, ssrd, t0

    def change_date(self, year, month, day, hour):
        d = dt.datetime(year, month, day, hour)
        self.i = int((d - self.t0).total_seconds() // 3600)

    def regrid(self, **kwargs):
        pass

    def get_data(self, key):
        return xr.DataArray(getattr(self, key)[self.i], dims=("y", "x"))


def _inputs(seed):
    rng = np.random.default_rng(seed)
    evi = rng.uniform(0.0, 0.9, (NDAYS, NY, NX))
    lswi = rng.uniform(-0.3, 0.6, (NDAYS, NY, NX))
    th = rng.uniform(0.2, 0.6, (NY, NX))
    lmin = rng.uniform(-0.2, 0.25, (NY, NX))
    lmax = lmin + rng.uniform(0.05, 0.4, (NY, NX))
    # temperatures spanning every switch: below Tlow/Tmin, near Topt, above Tmax
    t_c = rng.uniform(-15.0, 52.0, (24 * NDAYS, NY, NX))
    sw = np.clip(rng.normal(400, 350, (24 * NDAYS, NY, NX)), 0, 1100)
    sw[:, 0, :] = 0.0                       # night row: PAR = 0
    frac = rng.dirichlet(np.full(len(CLASSES), 0.3), (NY, NX))
    frac[0, 0] = 0.0
    frac[0, 0, 3] = 1.0                     # pure shrub pixel (xeric Ws, may go negative)
    frac[1, 1] = 0.0
    frac[1, 1, 6] = 1.0                     # pure grassland pixel
    return evi, lswi, th, lmin, lmax, t_c, sw, frac


@pytest.mark.parametrize("table,temps,seed", [("pyvprm_modis", "copernicus", 0),
                                             ("eu2007", "copernicus", 1),
                                             ("wrf_europe", "mahadevan2008", 2)])
def test_grid_predictions_match_pyvprm(table, temps, seed):
    evi, lswi, th, lmin, lmax, t_c, sw, frac = _inputs(seed)
    params = load_parameters(table, temperatures=temps, classes=CLASSES)
    fit = {c: {"lamb": float(params.lam[i]), "par0": float(params.par0[i]),
               "alpha": float(params.alpha[i]), "beta": float(params.beta[i])}
           for i, c in enumerate(CLASSES) if params.rules.has_flux[i] > 0}
    tc = {c: [float(params.tmin[i]), float(params.topt[i]), float(params.tmax[i]),
              float(params.tlow[i])] for i, c in enumerate(CLASSES)}
    t0 = dt.datetime(2022, 7, 1)
    pre = _Pre(evi, lswi, th, lmin, lmax, frac, tc, t0)
    model = vprm_base_model(vprm_pre=pre, met=_Met(t_c + 273.15, sw * 3600.0, t0),
                            fit_params_dict=fit)
    steps = [(d, h) for d in range(NDAYS) for h in HOURS]
    ref_gpp, ref_nee = [], []
    for d, h in steps:
        res = model.make_vprm_predictions(date=t0 + dt.timedelta(days=d, hours=h))
        ref_gpp.append(res["gpp"].values)
        ref_nee.append(res["nee"].values)
    ref_gpp, ref_nee = np.array(ref_gpp), np.array(ref_nee)

    idx_t = np.array([24 * d + h for d, h in steps])
    idx_d = np.array([d for d, _ in steps])
    forcing = VPRMForcing(
        temperature=jnp.asarray(t_c[idx_t] + 273.15 - 273.15),   # same K -> degC path
        par=jnp.asarray(sw[idx_t] * 3600.0 / 0.505 / 3600.0),
        evi=jnp.asarray(evi[idx_d]), lswi=jnp.asarray(lswi[idx_d]),
        evi_threshold=jnp.asarray(th), lswi_min=jnp.asarray(lmin), lswi_max=jnp.asarray(lmax),
        class_fractions=jnp.asarray(frac))
    out = simulate(params, forcing, VPRMOptions(pyvprm_compat=True))
    scale = max(1.0, np.abs(ref_nee).max())
    np.testing.assert_allclose(out.gpp, ref_gpp, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(out.nee, ref_nee, rtol=0, atol=1e-10 * scale)
    # the inputs really exercise the switches
    assert (ref_gpp < 0).any(), "expected pyVPRM's negative xeric GPP somewhere"
    assert (ref_gpp == 0).any() and (ref_gpp > 0).any()


def test_default_mode_differs_from_pyvprm_only_by_documented_clips():
    """Without pyvprm_compat, GPP >= 0 everywhere (Wscale, Pscale clipped, EVI >= 0)."""
    evi, lswi, th, lmin, lmax, t_c, sw, frac = _inputs(3)
    params = load_parameters("pyvprm_modis", classes=CLASSES)
    forcing = VPRMForcing(temperature=jnp.asarray(t_c[:NDAYS]), par=jnp.asarray(sw[:NDAYS] / 0.505),
                          evi=jnp.asarray(evi - 0.1), lswi=jnp.asarray(lswi),
                          evi_threshold=jnp.asarray(th), lswi_min=jnp.asarray(lmin),
                          lswi_max=jnp.asarray(lmax), class_fractions=jnp.asarray(frac))
    ours = simulate(params, forcing)
    compat = simulate(params, forcing, VPRMOptions(pyvprm_compat=True))
    assert float(ours.gpp.min()) >= 0.0
    assert float(compat.gpp.min()) < 0.0
    np.testing.assert_allclose(ours.reco, compat.reco, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_site_path_tscale_and_tmin_clamp_match_pyvprm(cls):
    """pyVPRM's scalar (site/fitting) path clamps respiration temperature at Tmin."""
    params = load_parameters("pyvprm_modis", classes=CLASSES)
    i = CLASSES.index(cls)
    tc = {cls: [float(params.tmin[i]), float(params.topt[i]), float(params.tmax[i]),
                float(params.tlow[i])]}
    pre = types.SimpleNamespace(temp_coefficients=tc)
    model = vprm_base_model(vprm_pre=pre, fit_params_dict={})
    # offset grid: pyVPRM divides by zero exactly at the denominator root (54 degC, class 9)
    temps = np.linspace(-20.0, 55.0, 151) + 0.013
    ref = [model.get_t_scale(land_cover_type=cls, temperature=float(t)) for t in temps]
    ref_t, ref_ts = np.array([r[0] for r in ref], float), np.array([r[1] for r in ref], float)
    from process_models.vprm.respiration import respiration_temperature
    from process_models.vprm.scalars import tscale
    np.testing.assert_allclose(tscale(jnp.asarray(temps), params.tmin[i], params.topt[i],
                                      params.tmax[i], zero_above_tmax=False),
                               ref_ts, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(respiration_temperature(jnp.asarray(temps), params.tmin[i]),
                               ref_t, rtol=0, atol=1e-12)
