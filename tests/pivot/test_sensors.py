"""Observation operators of the pivot: index sd propagation, water-cloud limits, coarse
aggregation, cloud screening, derived LAI/FAPAR."""
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from assimilation.observations.pivot import sensors as S


def test_ndvi_sd_equals_analytic_propagation():
    b, r, n = jnp.array([0.03, 0.05]), jnp.array([0.04, 0.1]), jnp.array([0.3, 0.25])
    sd = S.s2_index_sd("ndvi", b, r, n)
    e = lambda x: S.REFL_SD_ABS + S.REFL_SD_REL * x  # noqa: E731
    expect = jnp.sqrt((2 * r / (n + r) ** 2 * e(n)) ** 2 + (2 * n / (n + r) ** 2 * e(r)) ** 2)
    np.testing.assert_allclose(sd, expect, rtol=1e-12)


def test_water_cloud_limits_and_gradient():
    sm = jnp.array([0.1, 0.3])
    # bare soil: sigma0 = C + D theta (dB) exactly
    np.testing.assert_allclose(S.water_cloud_sigma0(jnp.zeros(2), sm, C=-18.0, D=30.0), -18.0 + 30.0 * sm,
                               rtol=1e-12)
    # dense canopy: the soil is hidden, sigma0 -> A LAI cos(theta) (1 - tau2) -> 10 log10(A LAI cos theta)
    lai = jnp.asarray(60.0)
    np.testing.assert_allclose(S.water_cloud_sigma0(lai, 0.3, 30.0, A=0.1, B=0.5),
                               10 * np.log10(0.1 * 60.0 * np.cos(np.deg2rad(30.0))), rtol=1e-9)
    g = jax.grad(lambda l, m: S.water_cloud_sigma0(l, m), argnums=(0, 1))(jnp.asarray(3.0), jnp.asarray(0.25))
    assert all(np.isfinite(np.asarray(x)) for x in g)
    assert float(g[1]) > 0           # wetter soil backscatters more


def _obs(values, mask, shape):
    P, T = values.shape
    days = pd.date_range("2019-01-01", periods=T)
    return S.S2Observations({"ndvi": values}, {"ndvi": np.full((P, T), 0.02)}, mask, days, shape,
                            np.arange(shape[1]) * 10.0, np.arange(shape[0]) * 10.0)


def test_coarse_proxy_is_the_operator_of_the_block_mean_without_noise():
    rng = np.random.default_rng(0)
    shape, T = (4, 6), 20
    v = 0.5 + 0.3 * rng.random((24, T))
    mask = np.zeros((24, T), bool)
    mask[:, ::5] = True
    p = S.coarse_proxy(_obs(v, mask, shape), factor=2, noise_sd=0.0, cloud_fraction=0.0, bias=0.01, gain=0.9,
                       seasonal=0.0)
    assert p.grid == (2, 3) and np.bincount(p.cell).tolist() == [4] * 6
    c0 = p.cell == 0
    np.testing.assert_allclose(p.values[0, 0], 0.01 + 0.9 * v[c0, 0].mean(), rtol=1e-12)
    # between S2 dates the surface is linear in time
    np.testing.assert_allclose(p.values[0, 2], 0.01 + 0.9 * (0.6 * v[c0, 0].mean() + 0.4 * v[c0, 5].mean()),
                               rtol=1e-12)
    assert p.mask.all()


def test_screening_removes_a_dip_keeps_a_rise():
    T = 60
    t = np.arange(T)
    v = np.tile(0.3 + 0.5 * t / T, (3, 1))
    mask = np.zeros((3, T), bool)
    mask[:, ::5] = True
    v[1, 30] = 0.2                        # cloud dip at pixel 1
    obs, counts = S.screen_s2(_obs(v, mask, (1, 3)), min_scene_share=0.0)
    assert not obs.mask[1, 30] and obs.mask[0, 30] and obs.mask[2, 30]
    assert counts["dip_rule_removed"] == 1


def test_lai_inverse_and_fapar_range():
    lai = jnp.linspace(0.2, 5.0, 7)
    ndvi = S.NDVI_INF - (S.NDVI_INF - S.NDVI_SOIL) * jnp.exp(-S.K_EXT * lai)
    np.testing.assert_allclose(S.lai_from_ndvi(ndvi), lai, rtol=1e-9)
    f, s = S.fapar_from_ndvi(jnp.array([-0.1, 0.5, 1.0]), jnp.array([0.01, 0.01, 0.01]))
    assert float(f.min()) >= 0 and float(f.max()) <= 1 and np.allclose(s, 0.0124)
