"""Emulator-accelerated calibration: importance reweighting from a surrogate posterior."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.calibration import ErrorModel, FluxObservations, ParamPrior, build_model
from assimilation.calibration.emulated import calibrate_with_surrogate, importance_reweight

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_TRUNC = "numpyro's two-sided truncated distribution weights its log-cdfs by an integer array in logsumexp"
_NUTS = "numpyro's NUTS divides the float sum of accept probabilities by the integer number of proposals"


def _linear(slope_factor):
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 60)
    y = 0.5 + 2.0 * x + rng.normal(scale=0.3, size=x.size)
    pri = {"b0": ParamPrior("b0", "identity", 0.0, 3.0), "b1": ParamPrior("b1", "identity", 0.0, 3.0)}
    fn = lambda th: {"nee": th["b0"] + slope_factor * th["b1"] * jnp.asarray(x)}
    model = build_model(fn, pri, FluxObservations.from_arrays(y), ErrorModel(a=0.3, sigma_from="obs"))
    X = np.column_stack([np.ones_like(x), slope_factor * x])
    cov = np.linalg.inv(X.T @ X / 0.09 + np.eye(2) / 9)
    return model, cov @ (X.T @ y / 0.09), cov


def test_reweighting_exact_surrogate_draws_recovers_process_posterior():
    """Draws from the exact posterior of a biased surrogate (slope x 1.03), reweighted
    against the process model, give the process posterior mean (analytic)."""
    sur, m_s, c_s = _linear(1.03)
    proc, m_p, c_p = _linear(1.0)
    d = np.random.default_rng(1).multivariate_normal(m_s, c_s, size=4000)
    lat = {"z_b0": d[:, 0], "z_b1": d[:, 1]}
    r = importance_reweight(sur, proc, lat, {"b0": d[:, 0], "b1": d[:, 1]})
    got = r.table.set_index("parameter")["reweighted_mean"].to_numpy()
    se = np.sqrt(np.diag(c_p) / r.ess)
    assert r.reliable and r.ess > 400
    np.testing.assert_array_less(np.abs(got - m_p), 4 * se + 1e-3)
    assert np.any(np.abs(m_s - m_p) > 10 * se)          # the correction was needed
    same = importance_reweight(proc, proc, lat)
    np.testing.assert_allclose(same.weights, 1 / 4000, rtol=1e-8)


@pytest.mark.standard_promotion(_TRUNC, _NUTS)
def test_vprm_coarse_forcing_surrogate(vprm_problem, vprm_model):
    """Cheap surrogate: VPRM on 3-hour block-mean forcing (PAR and temperature). NUTS on
    it, then reweighting against hourly VPRM. Block-averaging PAR through the non-linear
    light response shifts the posterior by about 2 sd: PSIS flags the correction as
    unreliable (k-hat > 0.7), i.e. the method says when a final process-model run is
    needed; reweighting against the surrogate itself gives uniform weights."""
    from assimilation.calibration import model_fn_from
    fn, pri, base, forcing = vprm_problem
    block = lambda a: jnp.repeat(a.reshape(-1, 3).mean(1), 3)
    coarse = forcing.replace(temperature=block(forcing.temperature), par=block(forcing.par))
    fn_c = model_fn_from(vprm_model, pri, coarse)
    truth = {"lam": 0.15, "alpha": 0.2, "beta": 0.5}
    y = np.asarray(fn(truth).nee) + np.random.default_rng(5).normal(size=forcing.par.shape[0])
    obs = FluxObservations.from_arrays(y)
    em = ErrorModel(a=1.0, sigma_from="obs")
    proc, sur = build_model(fn, pri, obs, em), build_model(fn_c, pri, obs, em)
    res, rw = calibrate_with_surrogate(sur, proc, jax.random.key(0), num_warmup=250,
                                       num_samples=500, num_chains=1, progress_bar=False)
    assert list(rw.table["parameter"]) == ["lam", "alpha", "beta"]
    assert not rw.reliable and rw.table["shift_in_sd"].abs().max() > 1.0
    lat = {p.latent_name: res.samples[p.latent_name] for p in pri.values()}
    same = importance_reweight(sur, sur, lat, {n: res.samples[n] for n in pri})
    assert same.reliable and np.allclose(same.table["shift_in_sd"], 0.0, atol=1e-8)
