"""4D-Var / MAP: analytic solution for a linear model (L-BFGS and Adam), Gauss-Newton
posterior covariance, masks, pytree controls, equivalence with the ensemble smoothers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.ensemble import esmda, iterative_ensemble_smoother
from assimilation.variational import fourdvar

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_LBFGS = "optax.lbfgs adds its int32 memory index to an int64 jnp.arange (x64)"

RNG = np.random.default_rng(0)
M = np.array([[0.95, 0.1, 0.0], [-0.1, 0.9, 0.05], [0.0, -0.05, 0.97]])
H = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
T = 6
XB = np.array([1.0, 0.5, -0.5])
B = np.array([[0.5, 0.1, 0.0], [0.1, 0.4, 0.05], [0.0, 0.05, 0.3]])
RV = 0.2
G = np.concatenate([H @ np.linalg.matrix_power(M, k + 1) for k in range(T)])
X_TRUE = RNG.multivariate_normal(XB, B)
Y = (G @ X_TRUE + np.sqrt(RV) * RNG.standard_normal(G.shape[0])).reshape(T, 2)


def forward(x0):
    def body(x, _):
        x = jnp.asarray(M) @ x
        return x, jnp.asarray(H) @ x
    return jax.lax.scan(body, x0, None, length=T)[1]


def analytic(mask=None):
    m = np.ones(G.shape[0]) if mask is None else mask.ravel()
    Gm, y = G[m > 0], Y.ravel()[m > 0]
    K = B @ Gm.T @ np.linalg.inv(Gm @ B @ Gm.T + RV * np.eye(len(y)))
    return XB + K @ (y - Gm @ XB), B - K @ Gm @ B


@pytest.mark.standard_promotion(_LBFGS)
def test_linear_4dvar_equals_analytic():
    xa, Pa = analytic()
    res = fourdvar(forward, jnp.asarray(XB), Y, RV, background_cov=B, posterior_cov=True)
    np.testing.assert_allclose(res.control, xa, atol=1e-8)
    np.testing.assert_allclose(res.posterior_cov, Pa, atol=1e-10)
    adam = fourdvar(forward, jnp.asarray(XB), Y, RV, background_cov=B, optimizer="adam",
                    learning_rate=0.05, max_iter=3000)
    np.testing.assert_allclose(adam.control, xa, atol=1e-4)   # first-order method: looser


@pytest.mark.standard_promotion(_LBFGS)
def test_masked_observations_and_pytree_control():
    mask = np.ones((T, 2))
    mask[1:4, 0] = 0
    xa, _ = analytic(mask)
    y_nan = Y.copy()
    y_nan[1:4, 0] = np.nan
    res = fourdvar(lambda c: forward(jnp.concatenate([c["a"], c["b"]])),
                   {"a": jnp.asarray(XB[:2]), "b": jnp.asarray(XB[2:])}, y_nan, RV,
                   background_cov=B)
    np.testing.assert_allclose(jnp.concatenate([res.control["a"], res.control["b"]]), xa, atol=1e-8)


def test_4dvar_vs_ensemble_smoothers_on_the_same_problem():
    """Linear strong-constraint window: IES (one Gauss-Newton step, exact-moment prior
    ensemble) equals 4D-Var to 1e-8; ES-MDA (N = 4000) agrees to sampling error."""
    xa, Pa = analytic()
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((20, 3))
    Z -= Z.mean(0)
    Z = Z @ np.linalg.inv(np.linalg.cholesky(Z.T @ Z / 19)).T
    E = XB + Z @ np.linalg.cholesky(B).T
    f = lambda x: forward(x).ravel()  # noqa: E731
    ies = iterative_ensemble_smoother(f, jnp.asarray(E), Y.ravel(), np.full(2 * T, RV), n_iter=2)
    np.testing.assert_allclose(ies.mean, xa, atol=1e-8)
    np.testing.assert_allclose(np.cov(np.asarray(ies.ensemble).T), Pa, atol=1e-8)
    X = jnp.asarray(rng.multivariate_normal(XB, B, 4000))
    es = np.asarray(esmda(jax.random.key(0), f, X, Y.ravel(), np.full(2 * T, RV), alphas=4).ensemble)
    np.testing.assert_allclose(es.mean(0), xa, atol=4 * np.sqrt(np.diag(Pa).max() / 4000) + 0.01)
    np.testing.assert_allclose(np.cov(es.T), Pa, atol=0.1 * np.abs(Pa).max())
