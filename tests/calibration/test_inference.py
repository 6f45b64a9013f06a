"""NUTS / SVI / MAP against the analytic posterior of a conjugate linear-Gaussian
problem, checkpoint/resume, and a small VPRM twin experiment (coverage of the truth)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.calibration import (ErrorModel, FluxObservations, ParamPrior, build_model,
                                      convergence_summary, find_map, run_nuts, run_svi,
                                      to_inference_data)

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_LBFGS = "optax.lbfgs adds its int32 memory index to an int64 jnp.arange (x64)"
_NUTS = "numpyro's NUTS divides the float sum of accept probabilities by the integer number of proposals"
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"
_TRUNC = "numpyro's two-sided truncated distribution weights its log-cdfs by an integer array in logsumexp"


@pytest.fixture(scope="module")
def conjugate():
    """y = b0 + b1 x + e, e ~ N(0, 0.5^2); priors N(0, 2^2): posterior is Gaussian."""
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 40)
    y = 0.3 + 1.2 * x + rng.normal(scale=0.5, size=x.size)
    y[[4, 17]] = np.nan                              # masked records
    pri = {"b0": ParamPrior("b0", "identity", 0.0, 2.0), "b1": ParamPrior("b1", "identity", 0.0, 2.0)}
    fn = lambda th: {"nee": th["b0"] + th["b1"] * jnp.asarray(x)}
    obs = FluxObservations.from_arrays(y)
    model = build_model(fn, pri, obs, ErrorModel(a=0.5, sigma_from="obs"))
    ok = np.isfinite(y)
    X = np.column_stack([np.ones(ok.sum()), x[ok]])
    prec = X.T @ X / 0.25 + np.eye(2) / 4.0
    cov = np.linalg.inv(prec)
    mean = cov @ (X.T @ y[ok] / 0.25)
    return model, mean, cov


@pytest.mark.standard_promotion(_LBFGS)
def test_map_by_lbfgs_is_the_analytic_mode(conjugate):
    model, mean, _ = conjugate
    m = find_map(model, jax.random.key(0))
    np.testing.assert_allclose([m.values["b0"], m.values["b1"]], mean, atol=1e-5)


@pytest.mark.standard_promotion(_NUTS)
def test_nuts_matches_analytic_posterior_and_resumes(conjugate, tmp_path):
    model, mean, cov = conjugate
    res = run_nuts(model, jax.random.key(1), num_warmup=300, num_samples=300, num_chains=2,
                   num_blocks=1, checkpoint_dir=tmp_path, progress_bar=False)
    assert (tmp_path / "nuts_state.pkl").exists()
    # resume: warm-up is skipped, a second block is appended
    res2 = run_nuts(model, jax.random.key(1), num_warmup=300, num_samples=300, num_chains=2,
                    num_blocks=2, checkpoint_dir=tmp_path, progress_bar=False)
    assert res2.samples["b0"].shape == (2, 600)
    np.testing.assert_array_equal(res2.samples["b0"][:, :300], res.samples["b0"])
    draws = np.stack([res2.samples["b0"].ravel(), res2.samples["b1"].ravel()])
    se = np.sqrt(np.diag(cov) / 300)                # ESS >= 300 of 1200 draws (conservative)
    np.testing.assert_array_less(np.abs(draws.mean(1) - mean), 4 * se)
    np.testing.assert_allclose(draws.std(1), np.sqrt(np.diag(cov)), rtol=0.15)
    s = convergence_summary(to_inference_data(res2.samples, diverging=res2.diverging,
                                              names=["b0", "b1"]))
    assert (s["r_hat"] < 1.02).all() and (s["divergences"] == 0).all()


@pytest.mark.parametrize("guide", ["normal", "mvn", "lowrank"])
@pytest.mark.standard_promotion(_ADAM)
def test_svi_guides_recover_the_posterior_mean(conjugate, guide):
    import optax
    model, mean, cov = conjugate
    fit = run_svi(model, jax.random.key(2), guide=guide, num_steps=1500,
                  optimizer=optax.adam(2e-2), num_samples=2000, progress_bar=False)
    got = np.array([fit.samples["b0"].mean(), fit.samples["b1"].mean()])
    np.testing.assert_allclose(got, mean, atol=4 * np.sqrt(np.diag(cov)).max() / 5 + 0.02)
    assert fit.losses[-100:].mean() < fit.losses[:100].mean()


@pytest.mark.standard_promotion(_TRUNC, _NUTS)
def test_vprm_twin_experiment_covers_truth(vprm_problem):
    """Data simulated from VPRM with known parameters: the 90 % posterior intervals of
    NUTS cover every true value (3 parameters; fixed seed)."""
    fn, pri, base, forcing = vprm_problem
    truth = {"lam": 0.15, "alpha": 0.2, "beta": 0.5}
    f = np.asarray(fn(truth).nee)
    y = f + np.random.default_rng(4).normal(scale=1.0, size=f.size)
    model = build_model(fn, pri, FluxObservations.from_arrays(y), ErrorModel(a=1.0, sigma_from="obs"))
    res = run_nuts(model, jax.random.key(3), num_warmup=300, num_samples=300, num_chains=1,
                   progress_bar=False)
    for k, v in truth.items():
        lo, hi = np.quantile(res.samples[k], [0.05, 0.95])
        assert lo < v < hi, (k, lo, v, hi)
