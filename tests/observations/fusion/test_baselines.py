"""Baselines: Whittaker (dense solve, GCV), pyVPRM smoother, linear, Savitzky-Golay, flags."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from assimilation.observations.fusion import (FLAG_CONSTANT, FLAG_NO_DATA, FLAG_OK, fuse_arrays, linear, pyvprm,
                                              savgol, whittaker, whittaker_gcv)
from process_models.units import DataValidationError

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"

T = 120


def _signal(seed=0, noise=0.03, frac=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    x = 0.3 + 0.2 * np.sin(2 * np.pi * t / 90.0)
    mask = rng.random(T) < frac
    return t, x, x + noise * rng.standard_normal(T), mask


def test_whittaker_equals_dense_solve_and_trace():
    _, _, y, mask = _signal()
    w = np.where(mask, np.random.default_rng(1).uniform(0.5, 2.0, T), 0.0)
    lam = 300.0
    D = np.diff(np.eye(T), 2, axis=0)
    A = np.diag(w) + lam * D.T @ D                     # Eilers (2003): (W + lam D'D) z = W y
    z = np.linalg.solve(A, w * y)
    res, gcv, trH = whittaker(jnp.asarray(y), jnp.asarray(mask), lam, weights=jnp.asarray(np.where(mask, w, 1.0)))
    np.testing.assert_allclose(res.mean, z, atol=1e-7)
    np.testing.assert_allclose(trH, np.trace(np.linalg.solve(A, np.diag(w))), rtol=1e-6)


def test_whittaker_gcv_picks_lambda_near_optimum():
    rmses, chosen = [], []
    lams = 10.0 ** np.arange(-1.0, 7.01, 0.25)
    gcv_fit = jax.jit(whittaker_gcv)
    all_means = jax.jit(jax.vmap(lambda y, m, l: whittaker(y, m, l)[0].mean, in_axes=(None, None, 0)))
    for seed in range(3):
        _, x, y, mask = _signal(seed)
        res, lam, gcv = gcv_fit(jnp.asarray(y), jnp.asarray(mask))
        errs = list(np.sqrt(np.mean((np.asarray(all_means(jnp.asarray(y), jnp.asarray(mask), lams)) - x) ** 2, axis=1)))
        best = min(errs)
        rmses.append(float(np.sqrt(np.mean((np.asarray(res.mean) - x) ** 2))) / best)
        chosen.append(abs(np.log10(float(lam)) - np.log10(lams[int(np.argmin(errs))])))
    # GCV's lambda is within one decade of the true-error optimum and costs < 25 % extra RMSE
    assert max(chosen) <= 1.0, chosen
    assert max(rmses) < 1.25, rmses


def _pykalman_smooth_reference(y, mask, q=0.01, r=0.05):
    """Independent NumPy random-walk filter + RTS smoother (pykalman semantics:
    x_0 ~ N(first valid y, 1), no transition before day 0)."""
    n = len(y)
    m_p, P_p = y[np.argmax(mask)], 1.0
    mf, Pf, mp, Pp = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for t in range(n):
        mp[t], Pp[t] = m_p, P_p
        if mask[t]:
            k = P_p / (P_p + r)
            mf[t], Pf[t] = m_p + k * (y[t] - m_p), (1 - k) * P_p
        else:
            mf[t], Pf[t] = m_p, P_p
        m_p, P_p = mf[t], Pf[t] + q
    ms, Ps = mf.copy(), Pf.copy()
    for t in range(n - 2, -1, -1):
        g = Pf[t] / Pp[t + 1]
        ms[t] = mf[t] + g * (ms[t + 1] - mp[t + 1])
        Ps[t] = Pf[t] + g * g * (Ps[t + 1] - Pp[t + 1])
    return ms, Ps


def test_pyvprm_smoother_equals_reference():
    _, _, y, mask = _signal(3)
    mask[:4] = False
    ms, Ps = _pykalman_smooth_reference(y, mask)
    res = pyvprm(jnp.asarray(y), jnp.asarray(mask))
    np.testing.assert_allclose(res.mean, ms, atol=1e-12)
    np.testing.assert_allclose(res.sd, np.sqrt(Ps), atol=1e-12)


def test_pyvprm_equals_pyvprm_package():
    pytest.importorskip("pykalman")
    from pyVPRM.lib.functions import do_kalman_smoothing
    _, _, y, mask = _signal(4)
    days = np.flatnonzero(mask)
    ref = do_kalman_smoothing(y[mask], days, day_range=(0, T - 1))
    np.testing.assert_allclose(pyvprm(jnp.asarray(y), jnp.asarray(mask)).mean, ref, atol=1e-8)


def test_linear_and_savgol_equal_numpy_scipy():
    t, _, y, mask = _signal(5)
    lin = np.interp(t, t[mask], y[mask])
    np.testing.assert_allclose(linear(jnp.asarray(y), jnp.asarray(mask)).mean, lin, atol=1e-12)
    sg = scipy.signal.savgol_filter(lin, 31, 2, mode="nearest")
    np.testing.assert_allclose(savgol(jnp.asarray(y), jnp.asarray(mask), 31, 2).mean, sg, atol=1e-10)


@pytest.mark.parametrize("method", ["linear", "whittaker", "pyvprm",
                                    pytest.param("kalman", marks=pytest.mark.standard_promotion(_ADAM))])
def test_flags_missing_and_constant_pixels(method):
    _, _, y, mask = _signal(6)
    ys = np.stack([y, np.full(T, 0.42), y])[..., None]
    ms = np.stack([mask, mask, np.zeros(T, bool)])[..., None]
    opts = {"fit_steps": 30} if method == "kalman" else {}
    res = fuse_arrays(ys, ms, method, **opts)
    assert list(res.flags) == [FLAG_OK, FLAG_CONSTANT, FLAG_NO_DATA]
    assert np.isnan(res.mean[2]).all() and np.isfinite(res.mean[:2]).all()
    np.testing.assert_allclose(res.mean[1], 0.42, atol=2e-3)     # a constant series stays constant
    with pytest.raises(DataValidationError, match="no pixel"):
        fuse_arrays(ys[2:], ms[2:], method)
