"""Ensemble-filter likelihood: matches the exact KF log-likelihood (linear-Gaussian, large
N), is a smooth function of a static parameter with common random numbers (finite
gradient, maximum near the truth) and enters a NumPyro model as a factor."""
import jax
import jax.numpy as jnp
import numpy as np

from assimilation.ensemble import filter_log_likelihood, numpyro_factor

from ._linear import kalman_filter

A_TRUE, Q, RV, T = 0.7, 0.5, 0.3, 60


def _data():
    rng = np.random.default_rng(0)
    x, ys = 0.0, []
    for _ in range(T):
        x = A_TRUE * x + rng.normal(0, np.sqrt(Q))
        ys.append([x + rng.normal(0, np.sqrt(RV))])
    return np.array(ys)


YS = _data()
E0 = jnp.asarray(np.random.default_rng(1).standard_normal((400, 1)))


def _ll(a):
    return filter_log_likelihood(jax.random.key(0), lambda x, _: a * x, E0, jnp.asarray(YS),
                                 jnp.array([RV]), lambda x: x, model_noise=jnp.sqrt(Q))


def test_likelihood_close_to_kalman_filter():
    kf = kalman_filter(np.zeros(1), np.eye(1), np.array([[A_TRUE]]), np.array([[Q]]), np.eye(1),
                       np.array([[RV]]), YS)
    # N = 400: relative sampling error of a 60-step log-likelihood ~ 1 %
    np.testing.assert_allclose(float(_ll(A_TRUE)), kf["ll"].sum(), rtol=0.02)


def test_likelihood_profile_and_gradient():
    grid = jnp.array([0.4, 0.7, 0.95])
    lls = np.asarray(jax.vmap(_ll)(grid))
    assert lls[1] > lls[0] and lls[1] > lls[2]
    g = float(jax.grad(_ll)(A_TRUE))
    assert np.isfinite(g)
    # finite differences with common random numbers agree with the gradient
    h = 1e-4
    fd = (float(_ll(A_TRUE + h)) - float(_ll(A_TRUE - h))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-3, atol=1e-3)


def test_numpyro_factor_adds_the_filter_likelihood():
    numpyro = __import__("numpyro")
    dist = numpyro.distributions
    from numpyro.infer.util import log_density

    def model():
        a = numpyro.sample("a", dist.Normal(0.5, 0.3))
        numpyro_factor("enkf", jax.random.key(0), lambda x, _: a * x, E0, jnp.asarray(YS),
                       jnp.array([RV]), lambda x: x, model_noise=jnp.sqrt(Q))

    lp, _ = log_density(model, (), {}, {"a": A_TRUE})
    expected = float(_ll(A_TRUE)) + float(dist.Normal(0.5, 0.3).log_prob(A_TRUE))
    np.testing.assert_allclose(float(lp), expected, rtol=1e-10)
