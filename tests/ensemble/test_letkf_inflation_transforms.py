"""Gaspari-Cohn taper, LETKF (infinite radius = ETKF; localisation confines increments),
inflation formulas (multiplicative, RTPP, RTPS, adaptive), bounded transforms."""
import jax
import jax.numpy as jnp
import numpy as np

from assimilation.ensemble import (AdaptiveInflation, ETKF, adaptive_update, analyse,
                                   build_letkf, from_bounds, gaspari_cohn,
                                   half_width_from_loc_rad, multiplicative, obs_space, rtpp,
                                   rtps)


def test_gaspari_cohn_properties():
    c = 2.5
    r = np.linspace(0, 3 * c, 601)
    g = np.asarray(gaspari_cohn(r, c))
    assert g[0] == 1.0
    assert np.all(g[r >= 2 * c] == 0.0)                   # compact support 2c
    assert np.all(np.diff(g) <= 1e-12)                    # monotone non-increasing
    assert np.all((g >= 0) & (g <= 1))
    np.testing.assert_allclose(gaspari_cohn(c, c), 5.0 / 24.0, atol=1e-12)   # GC(r=1) = 5/24
    # continuity at r = 1 and r = 2
    for rr in (c, 2 * c):
        np.testing.assert_allclose(gaspari_cohn(rr - 1e-9, c), gaspari_cohn(rr + 1e-9, c), atol=1e-7)
    # symmetric in the sign of the distance
    np.testing.assert_allclose(gaspari_cohn(-1.3, c), gaspari_cohn(1.3, c))
    # DAPPER convention c = sqrt(10/3) loc_rad matches a Gaussian exp(-d^2/(2 loc_rad^2))
    # at the origin (same curvature), so GC(loc_rad) ~ exp(-1/2): 0.635 vs 0.607 (5 %)
    np.testing.assert_allclose(gaspari_cohn(4.0, half_width_from_loc_rad(4.0)), np.exp(-0.5), rtol=0.05)
    d = 1e-3
    np.testing.assert_allclose(gaspari_cohn(d, half_width_from_loc_rad(1.0)), np.exp(-0.5 * d * d), atol=1e-9)


def _l96_like(n=24, N=10, seed=0):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((N, n)).cumsum(1) * 0.3 + rng.standard_normal(n)
    y = E.mean(0) + rng.standard_normal(n)
    return jnp.asarray(E), jnp.asarray(y)


def test_letkf_infinite_radius_equals_etkf():
    E, y = _l96_like()
    n = E.shape[1]
    obs_idx = np.arange(0, n, 2)
    h = lambda x: x[obs_idx]  # noqa: E731
    r = np.full(len(obs_idx), 0.7)
    let = build_letkf(np.arange(n), obs_idx, np.inf)
    a = analyse(let, E, y[obs_idx], r, h)
    b = analyse(ETKF(), E, y[obs_idx], r, h)
    np.testing.assert_allclose(a.ensemble, b.ensemble, atol=1e-10)
    let3 = build_letkf(np.arange(n), obs_idx, np.inf, points_per_batch=5, batch_size=2)
    np.testing.assert_allclose(analyse(let3, E, y[obs_idx], r, h).ensemble, b.ensemble, atol=1e-10)


def test_letkf_increment_is_local():
    """One observation at grid point 5 of a periodic 24-point domain: points beyond the
    support 2c are unchanged; the observed point moves as in the global ETKF."""
    E, y = _l96_like()
    n = E.shape[1]
    c = 3.0
    h = lambda x: x[5:6]  # noqa: E731
    let = build_letkf(np.arange(n), np.array([5.0]), c, period=n)
    a = analyse(let, E, y[5:6], np.array([0.5]), h)
    g = analyse(ETKF(), E, y[5:6], np.array([0.5]), h)
    dist = np.abs((np.arange(n) - 5 + n / 2) % n - n / 2)
    far = dist >= 2 * c
    np.testing.assert_allclose(np.asarray(a.ensemble)[:, far], np.asarray(E)[:, far], atol=1e-12)
    np.testing.assert_allclose(np.asarray(a.ensemble)[:, 5], np.asarray(g.ensemble)[:, 5], atol=1e-10)
    near = dist < 2 * c - 1
    assert np.all(np.abs(np.asarray(a.ensemble - E))[:, near].sum(0) > 0)


def test_multiplicative_inflation_scales_anomalies():
    E = np.random.default_rng(0).standard_normal((8, 4))
    out = np.asarray(multiplicative(jnp.asarray(E), 1.1))
    np.testing.assert_allclose(out.mean(0), E.mean(0), atol=1e-12)
    np.testing.assert_allclose(np.cov(out.T), 1.21 * np.cov(E.T), rtol=1e-10)
    per = np.asarray(multiplicative(jnp.asarray(E), jnp.array([1.0, 2.0, 1.0, 1.0])))
    np.testing.assert_allclose(per[:, 1].std(ddof=1), 2 * E[:, 1].std(ddof=1), rtol=1e-12)
    np.testing.assert_allclose(per[:, 0], E[:, 0], atol=1e-12)


def test_rtpp_and_rtps_formulas():
    rng = np.random.default_rng(1)
    Xf = rng.standard_normal((10, 3)) * 2.0
    Xa = Xf.mean(0) + 0.3 + 0.5 * (Xf - Xf.mean(0)) @ np.diag([1.0, 0.2, 0.7])
    out = np.asarray(rtpp(jnp.asarray(Xf), jnp.asarray(Xa), 0.4))
    np.testing.assert_allclose(out - out.mean(0), 0.6 * (Xa - Xa.mean(0)) + 0.4 * (Xf - Xf.mean(0)), atol=1e-12)
    np.testing.assert_allclose(out.mean(0), Xa.mean(0), atol=1e-12)
    sf, sa = Xf.std(0, ddof=1), Xa.std(0, ddof=1)
    out = np.asarray(rtps(jnp.asarray(Xf), jnp.asarray(Xa), 0.5))
    np.testing.assert_allclose(out.std(0, ddof=1), 0.5 * sf + 0.5 * sa, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(rtps(jnp.asarray(Xf), jnp.asarray(Xa), 1.0)).std(0, ddof=1), sf, rtol=1e-10)
    np.testing.assert_allclose(rtps(jnp.asarray(Xf), jnp.asarray(Xa), 0.0), Xa, atol=1e-12)


def test_adaptive_inflation_recovers_underdispersion():
    """Forecast spread too small by a variance factor 2: repeated innovation statistics
    drive the estimate towards 2 (seeded; 400 obs per cycle, 30 cycles; tolerance 10 %)."""
    rng = np.random.default_rng(3)
    N, ny = 20, 400
    state = AdaptiveInflation(mean=1.0, prior_var=0.1 ** 2, maximum=5.0)
    for _ in range(30):
        truth_spread = np.sqrt(2.0)
        Y = rng.standard_normal((N, ny))                    # ensemble spread 1 (too small)
        y = truth_spread * rng.standard_normal(ny) + rng.standard_normal(ny)  # obs err 1
        os = obs_space(jnp.asarray(Y), jnp.asarray(y + Y.mean(0)), jnp.ones(ny))
        state = adaptive_update(state, os.S, os.d, os.mask)
    np.testing.assert_allclose(float(state.mean), 2.0, rtol=0.1)


def test_bounded_transform_round_trip_and_bounds():
    lo = np.array([-np.inf, 0.0, -np.inf, 0.0])
    hi = np.array([np.inf, np.inf, 5.0, 1.0])
    tr = from_bounds(lo, hi)
    x = jnp.array([-3.0, 2.0, 4.0, 0.3])
    np.testing.assert_allclose(tr.inverse(tr.forward(x)), x, rtol=1e-12)
    z = jnp.array([[-50.0, -50.0, 50.0, 50.0], [50.0, 50.0, -50.0, -50.0]])
    xz = np.asarray(jax.vmap(tr.inverse)(z))
    assert np.all(xz[:, 1] >= 0) and np.all(xz[:, 2] <= 5.0) and np.all((xz[:, 3] >= 0) & (xz[:, 3] <= 1))
    g = jax.grad(lambda v: tr.forward(v).sum())(x)
    assert np.all(np.isfinite(g))


def test_analysis_with_log_transform_keeps_positive():
    """A positive pool observed far below its forecast: plain ETKF goes negative, the
    log-transformed analysis stays positive."""
    rng = np.random.default_rng(0)
    E = jnp.asarray(np.exp(rng.normal(np.log(1.0), 0.5, (20, 1))))
    tr = from_bounds([0.0], [np.inf])
    h = lambda x: x  # noqa: E731
    plain = analyse(ETKF(), E, jnp.array([-0.5]), jnp.array([0.01]), h)
    logged = analyse(ETKF(), E, jnp.array([-0.5]), jnp.array([0.01]), h, transform=tr)
    assert np.any(np.asarray(plain.ensemble) < 0)
    assert np.all(np.asarray(logged.ensemble) > 0)
