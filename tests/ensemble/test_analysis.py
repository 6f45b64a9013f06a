"""Analysis steps: exact Kalman equivalences (ETKF, EnSRF, DEnKF mean), large-ensemble
convergence (EnKF), masks, nonlinear operators, pytree members, failed members."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.ensemble import (DEnKF, EnKF, EnSRF, ETKF, analyse, ensemble_log_likelihood,
                                   random_rotation)

from ._linear import exact_moments_ensemble, kf_update, random_spd

RNG = np.random.default_rng(42)
NX, NY = 5, 3
MEAN = RNG.standard_normal(NX)
COV = random_spd(RNG, NX)
H = RNG.standard_normal((NY, NX))
R_DIAG = np.array([0.5, 1.0, 2.0])
Y = H @ MEAN + RNG.standard_normal(NY)
MA, PA = kf_update(MEAN, COV, H, np.diag(R_DIAG), Y)


def lin_h(x):
    return jnp.asarray(H) @ x


def _moments(E):
    E = np.asarray(E)
    return E.mean(0), np.cov(E.T, ddof=1)


@pytest.mark.parametrize("method", [ETKF(), ETKF(rotate=True), EnSRF()], ids=["etkf", "etkf-rot", "ensrf"])
def test_square_root_filters_equal_kalman_exactly(method):
    """Exact first two moments in -> exact KF mean and covariance out (any N > Nx)."""
    E = exact_moments_ensemble(np.random.default_rng(1), MEAN, COV, 12)
    res = analyse(method, jnp.asarray(E), Y, R_DIAG, lin_h, key=jax.random.key(3))
    m, P = _moments(res.ensemble)
    np.testing.assert_allclose(m, MA, atol=1e-10)
    np.testing.assert_allclose(P, PA, atol=1e-10)


def test_etkf_full_R_equals_kalman():
    R = random_spd(np.random.default_rng(5), NY)
    E = exact_moments_ensemble(np.random.default_rng(1), MEAN, COV, 10)
    res = analyse(ETKF(), jnp.asarray(E), Y, R, lin_h)
    m, P = _moments(res.ensemble)
    ma, pa = kf_update(MEAN, COV, H, R, Y)
    np.testing.assert_allclose(m, ma, atol=1e-10)
    np.testing.assert_allclose(P, pa, atol=1e-10)


def test_denkf_mean_exact_and_covariance_approximate():
    """DEnKF: KF mean exactly; covariance P - KHP + 1/4 KHPH^TK^T (>= KF covariance)."""
    E = exact_moments_ensemble(np.random.default_rng(1), MEAN, COV, 12)
    res = analyse(DEnKF(), jnp.asarray(E), Y, R_DIAG, lin_h)
    m, P = _moments(res.ensemble)
    np.testing.assert_allclose(m, MA, atol=1e-10)
    K = COV @ H.T @ np.linalg.inv(H @ COV @ H.T + np.diag(R_DIAG))
    expected = PA + 0.25 * K @ H @ COV @ H.T @ K.T
    np.testing.assert_allclose(P, expected, atol=1e-10)


def test_stochastic_enkf_converges_to_kalman():
    """Large N: sampling error ~ 1/sqrt(N); tolerances 5 standard errors."""
    E = exact_moments_ensemble(np.random.default_rng(2), MEAN, COV, 4000)
    res = analyse(EnKF(), jnp.asarray(E), Y, R_DIAG, lin_h, key=jax.random.key(0))
    m, P = _moments(res.ensemble)
    se = np.sqrt(np.diag(PA) / 4000)
    assert np.all(np.abs(m - MA) < 5 * se + 1e-12)
    np.testing.assert_allclose(P, PA, atol=0.05 * np.abs(PA).max())


def test_rotation_is_orthogonal_and_mean_preserving():
    Q = np.asarray(random_rotation(jax.random.key(0), 7, jnp.float64))
    np.testing.assert_allclose(Q @ Q.T, np.eye(7), atol=1e-12)
    np.testing.assert_allclose(Q @ np.ones(7), np.ones(7), atol=1e-12)


@pytest.mark.parametrize("method", [ETKF(), EnKF(), DEnKF(), EnSRF()], ids=["etkf", "enkf", "denkf", "ensrf"])
def test_masked_observations_change_nothing(method):
    """A masked (or NaN) observation, even with a NaN prediction, gives exactly the
    analysis without that observation; nothing becomes NaN."""
    E = jnp.asarray(exact_moments_ensemble(np.random.default_rng(1), MEAN, COV, 8))
    key = jax.random.key(7)
    h_nan = lambda x: jnp.concatenate([lin_h(x)[:2], jnp.array([jnp.nan])])  # noqa: E731
    y_nan = np.array([Y[0], Y[1], 1e30])
    masked = analyse(method, E, y_nan, R_DIAG, h_nan, mask=np.array([1, 1, 0]), key=key)
    y_nan2 = np.array([Y[0], Y[1], np.nan])
    masked2 = analyse(method, E, y_nan2, R_DIAG, lin_h, key=key)
    ref = analyse(method, E, Y[:2], R_DIAG[:2], lambda x: lin_h(x)[:2], key=key)
    if isinstance(method, EnKF):   # perturbations are drawn for Ny = 3 vs 2: compare means only
        # loose: different random perturbations, 8 members
        assert np.all(np.isfinite(masked.ensemble))
        np.testing.assert_allclose(masked.ensemble, masked2.ensemble, atol=1e-12)
        return
    np.testing.assert_allclose(masked.ensemble, ref.ensemble, atol=1e-10)
    np.testing.assert_allclose(masked2.ensemble, ref.ensemble, atol=1e-10)
    np.testing.assert_allclose(masked.log_likelihood, ref.log_likelihood, atol=1e-10)
    assert float(masked.n_obs) == 2.0


def test_all_masked_is_identity():
    E = jnp.asarray(exact_moments_ensemble(np.random.default_rng(1), MEAN, COV, 8))
    res = analyse(ETKF(), E, Y, R_DIAG, lin_h, mask=np.zeros(NY))
    np.testing.assert_allclose(res.ensemble, E, atol=1e-12)
    assert float(res.log_likelihood) == 0.0


def test_failed_member_replaced_and_finite():
    E = np.array(exact_moments_ensemble(np.random.default_rng(1), MEAN, COV, 10))
    E[3, 2] = np.nan
    E[6, 0] = np.inf
    res = analyse(ETKF(), jnp.asarray(E), Y, R_DIAG, lin_h, key=jax.random.key(0))
    assert int(res.n_failed) == 2
    assert np.all(np.isfinite(res.ensemble))
    # failed members became copies of healthy ones: the analysis equals the analysis of
    # the resampled healthy ensemble, so its members all lie in the healthy span
    healthy = np.delete(E, [3, 6], 0)
    assert np.linalg.matrix_rank(np.asarray(res.ensemble) - np.asarray(res.ensemble).mean(0)) <= len(healthy) - 1


def test_pytree_members_and_nonlinear_operator():
    """Pytree member {a: (2,), b: ()} and h(x) = exp(a0) + b: same as the flat array."""
    E = exact_moments_ensemble(np.random.default_rng(4), np.array([0.1, -0.2, 0.3]),
                               0.05 * np.eye(3), 9)
    tree = {"a": jnp.asarray(E[:, :2]), "b": jnp.asarray(E[:, 2])}
    h_tree = lambda m: jnp.array([jnp.exp(m["a"][0]) + m["b"], m["a"][1] ** 2])  # noqa: E731
    h_flat = lambda x: jnp.array([jnp.exp(x[0]) + x[2], x[1] ** 2])  # noqa: E731
    y = np.array([1.3, 0.1])
    rt = analyse(ETKF(), tree, y, np.array([0.1, 0.1]), h_tree)
    rf = analyse(ETKF(), jnp.asarray(E), y, np.array([0.1, 0.1]), h_flat)
    np.testing.assert_allclose(rt.ensemble["a"], rf.ensemble[:, :2], atol=1e-12)
    np.testing.assert_allclose(rt.ensemble["b"], rf.ensemble[:, 2], atol=1e-12)


def test_ensemble_log_likelihood_matches_gaussian_density():
    E = exact_moments_ensemble(np.random.default_rng(1), MEAN, COV, 12)
    Yp = jnp.asarray(E) @ jnp.asarray(H).T
    S = H @ COV @ H.T + np.diag(R_DIAG)
    r = Y - H @ MEAN
    exact = -0.5 * (NY * np.log(2 * np.pi) + np.linalg.slogdet(S)[1] + r @ np.linalg.solve(S, r))
    np.testing.assert_allclose(ensemble_log_likelihood(Yp, Y, R_DIAG), exact, atol=1e-10)


def test_float32_runs_and_is_finite():
    E = jnp.asarray(exact_moments_ensemble(np.random.default_rng(1), MEAN, COV, 12), jnp.float32)
    res = analyse(ETKF(), E, jnp.asarray(Y, jnp.float32), jnp.asarray(R_DIAG, jnp.float32),
                  lambda x: jnp.asarray(H, jnp.float32) @ x)
    assert res.ensemble.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(res.ensemble).mean(0), MA, atol=1e-4)
