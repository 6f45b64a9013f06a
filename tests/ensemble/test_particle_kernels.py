"""Particle-filter kernels for static parameters (assimilation.ensemble.particle) and the
twin-experiment scores (assimilation.ensemble.scores): the Liu & West (2001) shrinkage keeps
the mean and covariance of static particles through repeated resampling where a plain
regularisation kernel inflates the variance by (1 + b^2) per resampling (seeded, explicit
Monte-Carlo tolerances); a per-variable kernel leaves the unjittered variables at resampled
copies of their values; ``postprocess`` is applied every cycle; non-finite particles get
zero weight without poisoning the moments; coverage of a calibrated Gaussian is nominal."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.ensemble.particle import particle_filter, regularisation_bandwidth
from assimilation.ensemble.scores import gaussian_quantile, twin_scores

N, T = 4000, 20
MU = np.array([1.0, -2.0])
SIGMA = np.array([[1.0, 0.6], [0.6, 2.0]])


def _static(x, _):
    return x


def _h(x):
    return x[:1]


def _run(reg, shrink, seed=0, **kw):
    X0 = jnp.asarray(np.random.default_rng(seed).multivariate_normal(MU, SIGMA, N))
    y = jnp.zeros((T, 1))
    # every observation masked: equal weights, every cycle resamples (threshold 1)
    return X0, particle_filter(jax.random.key(seed), _static, X0, y, jnp.ones(1), _h,
                               obs_mask=jnp.zeros((T, 1)), threshold=1.0,
                               regularisation=reg, shrinkage=shrink,
                               jitter_duplicates_only=False, **kw)


def test_liu_west_shrinkage_keeps_mean_and_covariance():
    X0, res = _run(1.0, True)
    X = np.asarray(res.particles)
    assert bool(res.resampled.all())
    C0, C = np.cov(np.asarray(X0).T), np.cov(X.T)
    # Monte-Carlo sd of a sample variance ~ sqrt(2/N) = 2.2 %; of the mean sd/sqrt(N)
    np.testing.assert_allclose(np.diag(C), np.diag(C0), rtol=0.1)
    np.testing.assert_allclose(C[0, 1], C0[0, 1], rtol=0.15)
    assert np.all(np.abs(X.mean(0) - np.asarray(X0).mean(0)) < 5 * np.sqrt(np.diag(C0) / N) * np.sqrt(T))


def test_plain_kernel_inflates_variance_as_predicted():
    X0, res = _run(1.0, False)
    b2 = regularisation_bandwidth(N, 2) ** 2
    growth = np.diag(np.cov(np.asarray(res.particles).T)) / np.diag(np.cov(np.asarray(X0).T))
    np.testing.assert_allclose(growth, (1.0 + b2) ** T, rtol=0.1)
    assert np.all(growth > 1.5)          # clearly distinguishable from the shrinkage case


def test_per_variable_kernel_and_postprocess():
    clip = lambda X: X.at[:, 0].set(jnp.clip(X[:, 0], -1.0, 3.0))   # noqa: E731
    X0, res = _run(jnp.array([1.0, 0.0]), True, postprocess=clip, store=True)
    X = np.asarray(res.particles)
    # the unjittered variable holds resampled copies of its initial values only
    assert np.isin(X[:, 1], np.asarray(X0)[:, 1]).all()
    assert not np.isin(X[:, 0], np.asarray(X0)[:, 0]).all()
    # postprocess after every cycle
    assert np.all(np.asarray(res.stored_particles)[:, :, 0] >= -1.0)
    assert np.all(np.asarray(res.stored_particles)[:, :, 0] <= 3.0)


def test_non_finite_particles_get_zero_weight():
    X0 = jnp.asarray(np.random.default_rng(3).normal(size=(50, 2))).at[7].set(jnp.nan)
    res = particle_filter(jax.random.key(1), _static, X0, jnp.zeros((3, 1)), jnp.ones(1), _h,
                          threshold=0.0)
    assert np.all(np.isfinite(np.asarray(res.mean))) and np.all(np.isfinite(np.asarray(res.sd)))
    np.testing.assert_allclose(res.ess[-1], 1.0 / np.sum(np.exp(2 * np.asarray(res.log_weights))))
    assert float(jnp.exp(res.log_weights[7])) == 0.0


def test_kernel_argument_errors():
    X0 = jnp.zeros((10, 2))
    with pytest.raises(ValueError, match="shrinkage=True needs"):
        particle_filter(jax.random.key(0), _static, X0, jnp.zeros((2, 1)), jnp.ones(1), _h,
                        shrinkage=True, jitter_duplicates_only=False)
    with pytest.raises(ValueError, match="jitter_duplicates_only=False"):
        particle_filter(jax.random.key(0), _static, X0, jnp.zeros((2, 1)), jnp.ones(1), _h,
                        regularisation=1.0, shrinkage=True)


def test_twin_scores():
    rng = np.random.default_rng(4)
    truth = rng.normal(size=20000)
    sd = np.full_like(truth, 0.5)
    mean = truth + sd * rng.normal(size=truth.size)       # calibrated: error ~ N(0, sd^2)
    sc = twin_scores(mean, sd, truth)
    assert abs(sc["coverage"] - 0.9) < 3 * np.sqrt(0.09 / truth.size) + 1e-3
    assert abs(sc["rmse"] - 0.5) < 0.01 and sc["spread"] == pytest.approx(0.5)
    np.testing.assert_allclose(gaussian_quantile(0.9), 1.6448536269514722, rtol=1e-12)
    m = np.array([1.0, np.nan, 3.0])
    sc = twin_scores(m, np.ones(3), np.array([0.0, 0.0, 3.0]))
    assert sc["n"] == 2 and sc["rmse"] == pytest.approx(np.sqrt(0.5)) and sc["coverage"] == 1.0
    with pytest.raises(ValueError, match="same shape"):
        twin_scores(np.ones(2), np.ones(3), np.ones(2))
