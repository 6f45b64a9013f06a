"""Kalman filter / RTS smoother / log-likelihood against the dense joint Gaussian."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from assimilation.observations.fusion import (ProcessParams, SensorParams, build_state_space, kalman_filter,
                                              log_likelihood, rts_smoother, smooth_pixels)
from assimilation.observations.fusion.fit import from_unconstrained, to_unconstrained


def _model(kind, T=10, seed=0):
    rng = np.random.default_rng(seed)
    process = ProcessParams(process_sd=jnp.asarray(0.05), phi=jnp.asarray(0.8), slope_sd=jnp.asarray(0.01),
                            initial_sd=jnp.asarray(0.7), kind=kind)
    sensors = SensorParams(bias=jnp.array([0.0, 0.1]), gain=jnp.array([1.0, 0.7]), noise_sd=jnp.array([0.03, 0.08]))
    clim = 0.3 + 0.1 * np.sin(np.arange(T) / 3.0)
    model = build_state_space(process, sensors, clim)
    y = rng.normal(0.3, 0.1, (T, 2))
    mask = rng.random((T, 2)) < 0.5
    mask[3] = False                 # a day without any observation
    mask[5] = True                  # a day with both sensors
    return model, jnp.asarray(y), jnp.asarray(mask)


def _dense(model, y, mask):
    """Joint Gaussian of (z_0..z_T-1, observed y) built explicitly, then conditioned."""
    F, Q, H = (np.asarray(a) for a in (model.transition, model.process_cov, model.observation))
    T, d = y.shape[0], F.shape[0]
    # z = A w with w = (z_0, w_1..w_T-1): z_t = F^t z_0 + sum_k F^(t-k) w_k
    A = np.zeros((T * d, T * d))
    for t in range(T):
        for k in range(t + 1):
            A[t * d:(t + 1) * d, k * d:(k + 1) * d] = np.linalg.matrix_power(F, t - k)
    Cw = np.zeros((T * d, T * d))
    Cw[:d, :d] = np.asarray(model.initial_cov)
    for k in range(1, T):
        Cw[k * d:(k + 1) * d, k * d:(k + 1) * d] = Q
    mw = np.zeros(T * d)
    mw[:d] = np.asarray(model.initial_mean)
    mz, Cz = A @ mw, A @ Cw @ A.T
    m = np.asarray(mask)
    rows, off, r = [], [], []
    r_all = np.broadcast_to(np.asarray(model.obs_var), m.shape)
    for t in range(T):
        for s in range(m.shape[1]):
            if m[t, s]:
                h = np.zeros(T * d)
                h[t * d:(t + 1) * d] = H[s]
                rows.append(h)
                off.append(np.asarray(model.offset)[t, s])
                r.append(r_all[t, s])
    Hb = np.array(rows)
    my = Hb @ mz + np.array(off)
    Cy = Hb @ Cz @ Hb.T + np.diag(r)
    yo = np.asarray(y)[m]
    K = Cz @ Hb.T @ np.linalg.inv(Cy)
    post_m = mz + K @ (yo - my)
    post_C = Cz - K @ Hb @ Cz
    ll = multivariate_normal(my, Cy).logpdf(yo)
    return post_m.reshape(T, d), post_C, ll


@pytest.mark.parametrize("kind", ["random_walk", "damped", "trend"])
def test_smoother_equals_dense_gaussian_posterior(kind):
    model, y, mask = _model(kind)
    res = rts_smoother(model, y, mask)
    mean, cov, ll = _dense(model, y, mask)
    T, d = mean.shape
    np.testing.assert_allclose(res.smoothed_mean, mean, atol=1e-10)
    for t in range(T):   # marginal covariances
        np.testing.assert_allclose(res.smoothed_cov[t], cov[t * d:(t + 1) * d, t * d:(t + 1) * d], atol=1e-10)
    np.testing.assert_allclose(res.log_likelihood, ll, rtol=1e-10)
    # the filtered estimate at the last day is the smoothed one
    f = kalman_filter(model, y, mask)
    np.testing.assert_allclose(f.filtered_mean[-1], mean[-1], atol=1e-10)


def test_vmap_equals_loop_and_missing_pixel():
    model, y, mask = _model("damped")
    ys = jnp.stack([y, y + 0.05, y])
    ms = jnp.stack([mask, mask, jnp.zeros_like(mask)])       # third pixel: no observation
    out = smooth_pixels(model, ys, ms)
    for p in range(3):
        one = rts_smoother(model, ys[p], ms[p])
        np.testing.assert_allclose(out.smoothed_mean[p], one.smoothed_mean, atol=1e-12)
    # no observation: prior mean (the climatology anomaly 0) and log-likelihood 0
    np.testing.assert_allclose(out.smoothed_mean[2], 0.0, atol=1e-12)
    assert float(out.log_likelihood[2]) == 0.0


@pytest.mark.parametrize("kind", ["damped", "trend"])
def test_log_likelihood_gradients_finite(kind):
    model, y, mask = _model(kind)
    process = ProcessParams(process_sd=jnp.asarray(0.05), phi=jnp.asarray(0.8), slope_sd=jnp.asarray(0.01),
                            initial_sd=jnp.asarray(0.7), kind=kind)
    sensors = SensorParams(bias=jnp.array([0.0, 0.1]), gain=jnp.array([1.0, 0.7]),
                           noise_sd=jnp.array([0.03, 0.08]))
    u = to_unconstrained(process, sensors)
    clim = jnp.zeros(y.shape[0])

    def f(u):
        p, s = from_unconstrained(u, kind, jnp.asarray(0.7))
        return log_likelihood(build_state_space(p, s, clim), y, mask)

    g = jax.grad(f)(u)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(g))
    assert float(jnp.abs(g["log_noise_sd"]).sum()) > 0


def test_float32_matches_float64():
    model, y, mask = _model("damped")
    r64 = rts_smoother(model, y, mask)
    m32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), model)
    r32 = rts_smoother(m32, jnp.asarray(y, jnp.float32), mask)
    assert r32.smoothed_mean.dtype == jnp.float32
    np.testing.assert_allclose(r32.smoothed_mean, r64.smoothed_mean, atol=1e-5)
