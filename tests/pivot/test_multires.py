"""Multi-resolution Kalman fusion: cell aggregation, vmap = loop, a seeded twin where the
coarse daily sensor must help, finite gradients of the likelihood."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.observations.fusion import fuse_arrays, rts_smoother
from assimilation.observations.pivot import multires as M

_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"


def _twin(seed=0, P=32, T=240, cells=4):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    cell = np.repeat(np.arange(cells), P // cells)
    season = 0.6 + 0.25 * np.sin(2 * np.pi * t / 365.25)
    X = season[None, :] + 0.05 * np.sin(2 * np.pi * t / 40.0 + np.arange(cells)[:, None])   # cell signal (fast)
    offs = 0.04 * rng.standard_normal(P)
    truth = X[cell] + offs[:, None]
    fm = np.zeros((P, T), bool)
    fm[:, ::12] = True
    fm &= rng.random((P, T)) > 0.1
    yf = np.where(fm, truth + 0.01 * rng.standard_normal((P, T)), 0.0)
    cm = rng.random((cells, T)) > 0.3
    yc = np.where(cm, 0.02 + 0.95 * X + 0.01 * rng.standard_normal((cells, T)), 0.0)
    return truth, yf, fm, np.full((P, T), 0.01), yc, cm, cell


def test_cell_observations_mean_and_share():
    yf = np.array([[0.2, 0.5], [0.4, 0.7], [0.9, 0.1]])
    mf = np.array([[True, True], [True, False], [True, True]])
    y, m = M.cell_observations(yf, mf, np.zeros((2, 2)), np.ones((2, 2), bool), np.array([0, 0, 1]), min_share=0.6)
    np.testing.assert_allclose(y[0, :, 0], [0.3, 0.0])
    assert m[:, :, 0].tolist() == [[True, False], [True, True]]


@pytest.mark.standard_promotion(_ADAM)
def test_coarse_daily_sensor_improves_the_fine_series():
    truth, yf, fm, sd, yc, cm, cell = _twin()
    r = M.multires_fuse(yf, fm, sd, yc, cm, cell, fit_steps=80, n_harmonics=1)
    single = fuse_arrays(yf[..., None], fm[..., None], "kalman", climatology="harmonic", n_harmonics=1, fit_steps=80)
    rmse_m = np.sqrt(np.mean((r.mean - truth) ** 2))
    rmse_s = np.sqrt(np.mean((single.mean - truth) ** 2))
    assert rmse_m < 0.6 * rmse_s, (rmse_m, rmse_s)
    cover = np.mean(np.abs(r.mean - truth) <= 1.645 * r.sd)
    assert 0.8 <= cover <= 1.0, cover
    assert np.isfinite(r.log_likelihood["total"]) and (r.sd > 0).all()
    # the coarse gain and bias are recovered (sensor 1 of the cell level)
    assert abs(float(r.cell_fit.sensors.gain[1]) - 0.95) < 0.08


def test_pixel_level_vmap_equals_loop_and_gradient_finite():
    truth, yf, fm, sd, yc, cm, cell = _twin(P=8, T=90, cells=2)
    p = M.PixelLevelParams(jnp.asarray(0.01), jnp.asarray(0.97), jnp.asarray(0.02), jnp.asarray(1.0))
    r, clim = yf - 0.6, np.full(yf.shape, -0.0)
    vc = np.full(yf.shape, 1e-4)
    mean, s, ll = M.smooth_pixel_level(p, np.where(fm, r, 0.0), fm, clim, sd**2, vc, chunk=3)
    for i in range(8):
        res = rts_smoother(M._pixel_model(p, jnp.asarray(clim[i]), jnp.asarray(sd[i] ** 2), jnp.asarray(vc[i])),
                           jnp.asarray(np.where(fm, r, 0.0)[i])[:, None], jnp.asarray(fm[i])[:, None])
        np.testing.assert_allclose(mean[i], res.smoothed_mean[:, 0] + clim[i], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ll[i], res.log_likelihood, rtol=1e-10)
    u = jnp.log(jnp.asarray([0.01, 0.97 / 0.03, 0.02, 1.0]))
    g = jax.grad(M._pixel_nll)(u, jnp.asarray(np.where(fm, r, 0.0)), jnp.asarray(fm), jnp.asarray(clim),
                               jnp.asarray(sd**2), jnp.asarray(vc))
    assert np.isfinite(np.asarray(g)).all()
