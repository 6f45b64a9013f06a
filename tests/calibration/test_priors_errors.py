"""Priors from parameter tables and the likelihoods of the error models."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from assimilation.calibration import (ErrorModel, FluxLikelihood, FluxObservations, expected_flux,
                                      fit_flux_error_model, parse_prior, priors_from_table)
from process_models.units import DataValidationError
from process_models.vprm import parameter_table

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_TRUNC = "numpyro's two-sided truncated distribution weights its log-cdfs by an integer array in logsumexp"


def test_priors_follow_table_and_floor_par0():
    tab = parameter_table("eu2007")
    pri = priors_from_table(tab, class_id=3)
    assert [p.transform for p in pri.values()] == ["log", "log", "log", "identity"]
    kind, mu, sd = parse_prior(tab.query("class_id == 3 and name == 'lam'")["prior"].item())
    assert pri["lam"].loc == pytest.approx(mu) and pri["lam"].scale == pytest.approx(sd)
    assert pri["par0"].scale >= 1.0          # wide: literature disagrees on PAR0
    d = pri["par0"].draw(np.random.default_rng(0), 5000)
    assert d.min() >= 50.0 and d.max() <= 5000.0   # truncated to the parameter box
    b = pri["beta"].draw(np.random.default_rng(1), 5000)
    assert -5.0 <= b.min() and b.max() <= 10.0


@pytest.mark.standard_promotion(_TRUNC)
def test_truncated_prior_density_matches_scipy():
    p = priors_from_table(parameter_table("eu2007"), class_id=3)["beta"]
    lo, hi = p.bounds_t
    z = jnp.asarray([-1.0, 0.0, 0.7])
    ref = stats.truncnorm.logpdf(np.asarray(z), (lo - p.loc) / p.scale, (hi - p.loc) / p.scale,
                                 loc=p.loc, scale=p.scale)
    np.testing.assert_allclose(p.base_distribution().log_prob(z), ref, rtol=1e-8)


@pytest.mark.parametrize("family,ref", [
    ("gaussian", lambda r, s: stats.norm.logpdf(r, scale=s)),
    ("laplace", lambda r, s: stats.laplace.logpdf(r, scale=s / np.sqrt(2))),
    ("student_t", lambda r, s: stats.t.logpdf(r, 5.0, scale=s * np.sqrt(3 / 5))),
])
def test_iid_likelihoods_match_scipy_and_respect_mask(family, ref):
    rng = np.random.default_rng(0)
    f, y = rng.normal(size=50), rng.normal(size=50) * 2
    y[[3, 10]] = np.nan                                       # gaps are masked
    obs = FluxObservations.from_arrays(y)
    em = ErrorModel(family=family, a=0.5, b_pos=0.3, b_neg=0.1, sigma_from="model", df=5.0)
    sig = np.asarray(em.sigma(jnp.asarray(f), obs))
    d = FluxLikelihood(f, sig, obs.mask, obs.prev_index, obs.lag, family=family, df=5.0)
    ok = np.isfinite(y)
    expected = ref(y[ok] - f[ok], sig[ok]).sum()
    np.testing.assert_allclose(float(d.log_prob(obs.values)), expected, rtol=1e-10)


def test_ar1_likelihood_equals_multivariate_normal_with_gaps():
    rng = np.random.default_rng(1)
    T, rho, s = 30, 0.7, 1.3
    idx = np.arange(T)
    cov = s * s * rho ** np.abs(idx[:, None] - idx[None, :])
    y = rng.multivariate_normal(np.zeros(T), cov)
    y[[5, 6, 7, 20]] = np.nan
    ok = np.isfinite(y)
    obs = FluxObservations.from_arrays(y)
    d = FluxLikelihood(jnp.zeros(T), jnp.full(T, s), obs.mask, obs.prev_index, obs.lag,
                       rho=rho, ar1=True)
    ref = stats.multivariate_normal(np.zeros(ok.sum()), cov[np.ix_(ok, ok)]).logpdf(y[ok])
    np.testing.assert_allclose(float(d.log_prob(obs.values)), ref, rtol=1e-10)
    # the time_index path (records = a subset of the model steps) gives the same density
    sub = FluxObservations.from_arrays(y[ok], time_index=idx[ok])
    d2 = FluxLikelihood(jnp.zeros(ok.sum()), jnp.full(ok.sum(), s), sub.mask, sub.prev_index,
                        sub.lag, rho=rho, ar1=True)
    np.testing.assert_allclose(float(d2.log_prob(sub.values)), ref, rtol=1e-10)


def test_ar1_sampler_has_the_stated_autocorrelation():
    d = FluxLikelihood(jnp.zeros(4000), jnp.ones(4000), jnp.ones(4000, bool),
                       jnp.arange(4000) - 1, jnp.ones(4000, int), rho=0.6, ar1=True)
    x = np.asarray(d.sample(jax.random.key(0)))
    r1 = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert abs(r1 - 0.6) < 0.05 and abs(x.std() - 1.0) < 0.08   # 4000 draws: se ~0.015


def test_paired_difference_fit_recovers_linear_error_model():
    rng = np.random.default_rng(2)
    days, k = 120, 24
    h = np.tile(np.arange(k), days)
    truth = np.where(h % 24 > 6, -10 * np.sin(np.pi * (h % 24 - 6) / 12).clip(0), 3.0)
    par = np.maximum(0, 1500 * np.sin(np.pi * (h % 24 - 6) / 12))
    temp = np.full(truth.size, 15.0)
    sigma = 0.8 + 0.4 * np.maximum(truth, 0) + 0.3 * np.maximum(-truth, 0)
    y = truth + rng.laplace(scale=sigma / np.sqrt(2))
    fit = fit_flux_error_model(y, par, temp, steps_per_day=k)
    # method bias from binning by noisy pair means: allow 0.15 on each coefficient
    assert fit["a"] == pytest.approx(0.8, abs=0.3)
    assert fit["b_neg"] == pytest.approx(0.3, abs=0.15)


def test_expected_flux_is_the_mean_diurnal_course():
    t = np.arange("2005-06-01", "2005-07-01", np.timedelta64(1, "h"), dtype="datetime64[h]")
    base = -np.sin(np.pi * (t.astype(int) % 24) / 24)
    y = base + np.random.default_rng(3).normal(scale=0.5, size=t.size)
    e = expected_flux(y, t.astype("datetime64[ns]"))
    assert np.abs(e - base).mean() < 0.15 < np.abs(y - base).mean()


def test_bad_observations_raise():
    with pytest.raises(DataValidationError):
        FluxObservations.from_arrays(np.full(5, np.nan))
    with pytest.raises(DataValidationError):
        FluxObservations.from_arrays(np.ones(5), sigma=[1, 1, 0, 1, 1])
    with pytest.raises(ValueError):
        ErrorModel(family="cauchy")
