"""Maximum likelihood recovers planted sensor parameters (seeded twin experiment)."""
import numpy as np
import pandas as pd
import pytest

from assimilation.observations.fusion import daily_observations, fit_mle, harmonic_climatology
from assimilation.observations.fusion.fit import default_initial
from assimilation.observations.synthetic import SensorSpec, phenology_truth, sensor_datasets, synthetic_satellite

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"

S2 = SensorSpec("s2", revisit_days=2, noise_sd=0.02, cloud_fraction=0.4, cloud_days=5.0)
S3 = SensorSpec("s3", revisit_days=1, noise_sd=0.05, bias=0.04, gain=0.8, cloud_fraction=0.4, cloud_days=5.0)


@pytest.mark.standard_promotion(_ADAM)
def test_mle_recovers_planted_bias_gain_noise():
    truth = phenology_truth(pd.date_range("2022-01-01", "2022-12-31"), n_pixels=12, seed=3)
    sat = synthetic_satellite(truth, sensors=(S2, S3), seed=4)
    y, mask, _, _ = daily_observations(sensor_datasets(sat), "evi")
    clim = harmonic_climatology(y, mask, n_harmonics=0)
    fit = fit_mle(y, mask, clim, kind="damped", steps=300)
    s = fit.sensors
    # tolerances: ~1300 S3 and ~1000 S2 observations; SE of the bias/gain ~ 0.005 / 0.015
    assert abs(float(s.bias[1]) - 0.04) < 0.015
    assert abs(float(s.gain[1]) - 0.8) < 0.04
    assert abs(float(s.noise_sd[1]) - 0.05) < 0.005
    # the reference sensor's noise is confounded with day-scale process noise: looser
    assert 0.01 < float(s.noise_sd[0]) < 0.03
    hist = np.asarray(fit.loss_history)
    assert np.isfinite(hist).all() and hist[-1] < hist[0]


@pytest.mark.standard_promotion(_ADAM)
def test_mle_per_pixel_vmapped_equals_pooled_on_one_pixel():
    truth = phenology_truth(pd.date_range("2022-04-01", "2022-06-30"), n_pixels=2, seed=5)
    sat = synthetic_satellite(truth, sensors=(S2, S3), seed=6)
    y, mask, _, _ = daily_observations(sensor_datasets(sat), "evi")
    clim = harmonic_climatology(y, mask, n_harmonics=0)
    p0, s0 = default_initial(y, mask, "random_walk")
    per = fit_mle(y, mask, clim, kind="random_walk", process=p0, sensors=s0, steps=15, pooled=False)
    one = fit_mle(y[1:], mask[1:], clim[1:], kind="random_walk", process=p0, sensors=s0, steps=15, pooled=True)
    np.testing.assert_allclose(per.sensors.bias[1], one.sensors.bias, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(per.log_likelihood[1], one.log_likelihood, rtol=1e-8)
