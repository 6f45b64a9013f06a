"""Emulator-accelerated calibration of the coupled model on daily fluxes
(assimilation.calibration.emulated_daily): both daily models start from the process model's
state and give its day aggregates, the tower's daily streams, and NUTS + PSIS bookkeeping."""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from flax import nnx

from assimilation.calibration import ErrorModel, FluxObservations, priors_from_model
from assimilation.calibration.emulated_daily import (calibrate_daily_emulated, daily_model_fns,
                                                     daily_tower_observations, latent_sites)
from emulator.coupled import coupled_spec
from emulator.daily import daily_forcing, daily_process_run
from emulator.daily_emulator import N_INPUTS, DailyCoupledEmulator, DailyNetwork
from emulator.normalise import Normaliser
from process_models.coupled import CoupledModel
from process_models.units import DataValidationError
from tests.coupled._shared import hourly_year

_TRUNC = "numpyro's two-sided truncated distribution weights its log-cdfs by an integer array in logsumexp"
_NUTS = "numpyro's NUTS divides the float sum of accept probabilities by the integer number of proposals"
N_DAYS, START_DAY = 6, 150
LABELS = {"vcmax25": "leaf.vcmax25", "psi_close": "roots.psi_close"}


@lru_cache(maxsize=None)
def _problem():
    f = hourly_year()
    f = jax.tree_util.tree_map(lambda x: x[24 * START_DAY:24 * (START_DAY + N_DAYS)] if jnp.ndim(x) else x, f)
    spec = coupled_spec(dt_seconds=3600.0)
    x = np.random.default_rng(0).normal(size=(64, N_INPUTS + 6))
    net = DailyNetwork(6, (8,), Normaliser.fit(x), rngs=nnx.Rngs(0))
    emu = DailyCoupledEmulator(net, spec, {"hidden": [8], "input_normaliser": Normaliser.fit(x).to_dict()})
    return emu, spec.model, f


def test_both_daily_models_start_from_the_process_state_and_match_their_own_runs():
    emu, model, f = _problem()
    pri = priors_from_model(emu, LABELS)
    emu_fn, proc_fn = daily_model_fns(emu, model, pri, f)
    theta = {"vcmax25": 45.0, "psi_close": -200.0}
    p = model.set_parameters(model.default_params(), {"leaf.vcmax25": 45.0, "roots.psi_close": -200.0})
    _, daily = daily_process_run(model, p, f)
    got = proc_fn(theta)
    for k in ("nee", "gpp", "et"):
        np.testing.assert_allclose(got[k], daily[k], rtol=1e-10, atol=1e-12)
    out = emu.simulate(p, daily_forcing(f), model.initial_state(p, f))
    e = emu_fn(theta)
    np.testing.assert_allclose(e["nee"], out.nee, rtol=1e-10, atol=1e-12)
    assert e["et"].shape == (N_DAYS,)
    # the parameters act: another vcmax25 gives another process-model GPP
    assert float(jnp.sum(proc_fn({**theta, "vcmax25": 30.0})["gpp"])) < float(jnp.sum(got["gpp"]))
    with pytest.raises(KeyError, match="not emulated"):
        daily_model_fns(emu, model, {"sla": "carbon.sla"}, f)


def test_daily_tower_observations_convert_le_and_mask_by_measured_fraction():
    per_day, days = 48, 3
    t = pd.date_range("2020-06-01", periods=per_day * days + 5, freq="30min")     # trailing partial day dropped
    qc = np.zeros(t.size)
    qc[:30] = 1                             # acceptable quality counts as measured
    qc[per_day:per_day + 20] = 2            # day 2: 18 of 48 measured (< 50 %): 20 bad, 10 gap-filled
    qc[per_day + 20:per_day + 30] = np.nan
    ds = xr.Dataset({"nee_filled": ("time", np.full(t.size, -2.0)), "nee_qc": ("time", qc),
                     "le_filled": ("time", np.full(t.size, 100.0)), "air_temperature": ("time", np.full(t.size, 10.0))},
                    coords={"time": t}, attrs={"time_step_seconds": 1800.0})
    nee, et, d = daily_tower_observations(ds)
    assert len(d) == days and nee.variable == "nee" and et.variable == "et"
    np.testing.assert_array_equal(np.asarray(nee.mask), [True, False, True])
    lam = 2.501e6 - 2361.0 * 10.0
    np.testing.assert_allclose(np.asarray(et.values)[[0, 2]], 100.0 * 86400.0 / lam, rtol=1e-12)   # mm per day
    np.testing.assert_allclose(np.asarray(nee.values)[[0, 2]], -2.0)
    assert not np.asarray(daily_tower_observations(ds, qc_max=0)[0].mask)[0]       # day 1: 18 of 48 best-quality
    with pytest.raises(DataValidationError, match="le_filled"):
        daily_tower_observations(ds.drop_vars("le_filled"))


@pytest.mark.slow
@pytest.mark.standard_promotion(_TRUNC, _NUTS)
def test_nuts_on_the_emulator_then_psis_against_the_process_model():
    """Twin data from the process model; an untrained emulator: the bookkeeping of the
    result (weights, k-hat, ESS, leapfrog-step cost model) holds whatever the emulator.
    Slow (about 60 s quiet, 240 s on a loaded 2-core CPU: it compiles NUTS on the emulator,
    the vmapped process-model density and its reverse-mode gradient); the two tests above
    cover the wiring cheaply, tests/calibration/test_emulated.py the reweighting itself."""
    emu, model, f = _problem()
    pri = priors_from_model(emu, LABELS)
    _, proc_fn = daily_model_fns(emu, model, pri, f)
    truth = proc_fn({"vcmax25": 40.0, "psi_close": -250.0})
    rng = np.random.default_rng(1)
    obs = [FluxObservations.from_arrays(np.asarray(truth["nee"]) + rng.normal(0, 0.5, N_DAYS), variable="nee"),
           FluxObservations.from_arrays(np.asarray(truth["et"]) + rng.normal(0, 0.3, N_DAYS), variable="et")]
    ems = [ErrorModel(a=0.5, sigma_from="obs"), ErrorModel(a=0.3, sigma_from="obs", learn_inflation=True)]
    r = calibrate_daily_emulated(emu, model, pri, f, obs, ems, jax.random.key(0), num_warmup=40, num_samples=40,
                                 num_chains=1, gradient_repeats=1)
    w = r.reweight.weights
    assert w.shape == (40,) and np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-12
    assert 1.0 <= r.reweight.ess <= 40.0 + 1e-9 and np.isfinite(r.reweight.k_hat)
    tm = r.timings
    assert tm["leapfrog_steps"] == float(np.sum(r.nuts.num_steps)) >= 40
    np.testing.assert_allclose(tm["process_nuts_extrapolated"], tm["leapfrog_steps"] * tm["process_gradient"])
    np.testing.assert_allclose(tm["speedup"], tm["process_nuts_extrapolated"] / tm["emulator_total"])
    assert all(tm[k] > 0 for k in ("emulator_gradient", "process_gradient", "reweight", "emulator_nuts"))
    tab = r.table().set_index("parameter")
    assert list(tab.index) == list(LABELS) and np.all(np.isfinite(tab["bias_in_corrected_sd"]))
    lo, hi = pri["vcmax25"].lower, pri["vcmax25"].upper                 # the emulator's training box
    v = np.asarray(r.nuts.samples["vcmax25"])
    assert np.all((v >= lo) & (v <= hi))
    # the learned ET inflation is a latent site of both models, so it enters the weights
    assert "obs_et_inflation" in latent_sites(r.nuts.mcmc.sampler.model)
