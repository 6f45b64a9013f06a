"""ES-MDA (Gauss-linear analytic posterior; multi-step = single step), iterative ensemble
smoother (one step exact for linear g; bundle Gauss-Newton converges to the MAP on a
weakly nonlinear problem), and the comparison with 4D-Var on the same problem."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.ensemble import esmda, iterative_ensemble_smoother, normalise_alphas
from assimilation.variational import fourdvar

from ._linear import exact_moments_ensemble, kf_update, random_spd

_LBFGS = "optax.lbfgs adds its int32 memory index to an int64 jnp.arange (x64)"


def test_esmda_1d_gauss_linear():
    """Equinor template: x ~ N(mu, S), y = a x + b + e; N_e = 1000; tolerances as theirs."""
    mu, S, a, b, cd, y = 1.0, 2.0, 1.5, 0.3, 0.5, 2.0
    var = 1.0 / (1.0 / S + a * a / cd)
    mean = var * (a * (y - b) / cd + mu / S)
    X = mu + np.sqrt(S) * np.random.default_rng(0).standard_normal((1000, 1))
    for alphas in (1, 4, [9.333, 7.0, 4.0, 2.0]):
        res = esmda(jax.random.key(1), lambda x: a * x + b, jnp.asarray(X), jnp.array([y]),
                    jnp.array([cd]), alphas=alphas)
        post = np.asarray(res.ensemble)[:, 0]
        assert abs(post.mean() - mean) <= 0.2 + 0.1 * abs(mean)
        assert abs(post.var(ddof=1) - var) <= 0.1 + 0.1 * var


def test_esmda_multivariate_full_cd_and_alpha_normalisation():
    """5 parameters, 4 outputs, random SPD C_M and C_D, N_e = 4000: relative L2 error of
    the posterior mean < 0.05, single-step and 4-step agree (rtol 0.05 mean, 0.15 var)."""
    rng = np.random.default_rng(0)
    CM, CD = random_spd(rng, 5), random_spd(rng, 4, 0.5)
    G = rng.standard_normal((4, 5))
    mu = rng.standard_normal(5)
    y = G @ rng.multivariate_normal(mu, CM) + rng.multivariate_normal(np.zeros(4), CD)
    m_post, P_post = kf_update(mu, CM, G, CD, y)
    X = jnp.asarray(rng.multivariate_normal(mu, CM, 4000))
    g = lambda x: jnp.asarray(G) @ x  # noqa: E731
    r1 = np.asarray(esmda(jax.random.key(0), g, X, y, CD, alphas=1).ensemble)
    r4 = np.asarray(esmda(jax.random.key(1), g, X, y, CD, alphas=4).ensemble)
    for r in (r1, r4):
        assert np.linalg.norm(r.mean(0) - m_post) / np.linalg.norm(m_post) < 0.05
    np.testing.assert_allclose(r1.var(0), r4.var(0), rtol=0.15)
    np.testing.assert_allclose(r4.var(0), np.diag(P_post), rtol=0.15)
    np.testing.assert_allclose(np.sum(1.0 / normalise_alphas(jnp.array([3.0, 2.0, 1.0]))), 1.0)


def test_ies_linear_one_step_equals_kalman():
    rng = np.random.default_rng(2)
    CM, CD = random_spd(rng, 3), np.diag([0.3, 0.6])
    G = rng.standard_normal((2, 3))
    mu = np.zeros(3)
    y = np.array([1.0, -0.5])
    E = exact_moments_ensemble(rng, mu, CM, 8)
    res = iterative_ensemble_smoother(lambda x: jnp.asarray(G) @ x, jnp.asarray(E), y,
                                      np.diag(CD), n_iter=3)
    m, P = kf_update(mu, CM, G, CD, y)
    post = np.asarray(res.ensemble)
    np.testing.assert_allclose(post.mean(0), m, atol=1e-10)
    np.testing.assert_allclose(np.cov(post.T), P, atol=1e-10)


def _weakly_nonlinear():
    rng = np.random.default_rng(5)
    mu = np.array([0.5, -0.3])
    B = np.array([[0.2, 0.05], [0.05, 0.1]])
    g = lambda x: jnp.array([x[0] + 0.2 * x[1] ** 2, jnp.sin(x[1]) + 0.1 * x[0] ** 3, x[0] * x[1]])  # noqa: E731
    y = np.array([0.9, -0.1, -0.3])
    r = np.array([0.05, 0.05, 0.05])
    E = exact_moments_ensemble(rng, mu, B, 10)
    return mu, B, g, y, r, E


@pytest.mark.standard_promotion(_LBFGS)
def test_ies_bundle_converges_to_map_and_matches_4dvar():
    """Weakly nonlinear g: the bundle iEnKS/IES mean is the MAP of the Gaussian-prior
    posterior; 4D-Var (L-BFGS, exact adjoint) finds the same point (tolerance 1e-5)."""
    mu, B, g, y, r, E = _weakly_nonlinear()
    ies = iterative_ensemble_smoother(g, jnp.asarray(E), y, r, n_iter=30, bundle=1e-5, tol=1e-12)
    var = fourdvar(g, jnp.asarray(mu), y, r, background_cov=B, max_iter=100, gtol=1e-12)
    np.testing.assert_allclose(np.asarray(ies.mean), np.asarray(var.control), atol=1e-5)
    # cost decreases and the gradient at the optimum vanishes
    assert float(ies.cost[-1]) < float(ies.cost[0])
    assert float(var.grad_norm) < 1e-6
    # transform variant: close to the MAP (ensemble-averaged sensitivities; loose)
    tr = iterative_ensemble_smoother(g, jnp.asarray(E), y, r, n_iter=30)
    np.testing.assert_allclose(np.asarray(tr.mean), np.asarray(var.control), atol=0.05)


@pytest.mark.standard_promotion(_LBFGS)
def test_esmda_close_to_map_on_weakly_nonlinear_problem():
    """ES-MDA (N = 2000, 8 steps) posterior mean near the MAP (not identical: ES-MDA
    samples the posterior, whose mean differs from the mode at O(nonlinearity))."""
    mu, B, g, y, r, _ = _weakly_nonlinear()
    X = jnp.asarray(np.random.default_rng(0).multivariate_normal(mu, B, 2000))
    res = esmda(jax.random.key(0), g, X, y, r, alphas=8)
    var = fourdvar(g, jnp.asarray(mu), y, r, background_cov=B, max_iter=100)
    np.testing.assert_allclose(np.asarray(res.ensemble).mean(0), np.asarray(var.control), atol=0.05)
