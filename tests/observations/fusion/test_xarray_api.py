"""xarray edge: fuse() on synthetic sensor Datasets, eager vs dask, obs_time placement, evaluation."""
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from assimilation.observations.fusion import Z90, daily_observations, fuse, score, withhold
from assimilation.observations.synthetic import SENTINEL2, SENTINEL3, phenology_truth, sensor_datasets, synthetic_satellite

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"


@pytest.fixture(scope="module")
def sat():
    truth = phenology_truth(pd.date_range("2022-01-01", "2022-12-31"), n_pixels=6, seed=1)
    return synthetic_satellite(truth, sensors=(SENTINEL2, SENTINEL3), seed=2)


@pytest.mark.standard_promotion(_ADAM)
def test_fuse_kalman_beats_linear_and_has_units(sat):
    sensors = sensor_datasets(sat)
    k = fuse(sensors, "kalman", fit_steps=150)
    lin = fuse(sensors, "linear")
    assert set(k.data_vars) == {"evi_mean", "evi_sd", "evi_flag"}
    assert k["evi_mean"].attrs["units"] == "1" and k.sizes["time"] == 365
    truth = sat["truth"].values
    rmse = lambda d: float(np.sqrt(np.mean((d["evi_mean"].values - truth) ** 2)))
    assert rmse(k) < 0.8 * rmse(lin)          # the biased daily sensor is calibrated, not averaged in
    z = (k["evi_mean"].values - truth) / k["evi_sd"].values
    assert 0.8 < np.mean(np.abs(z) < Z90) <= 1.0     # smoother bands cover the truth ~90 %
    assert abs(k.attrs["evi_sentinel3_bias"] - 0.03) < 0.02


def test_dask_path_equals_eager(sat):
    sensors = sensor_datasets(sat)
    eager = fuse(sensors, "whittaker", lambdas=(10.0, 1e3))
    lazy = fuse({n: d.chunk(pixel=3) for n, d in sensors.items()}, "whittaker", lambdas=(10.0, 1e3))
    assert lazy["evi_mean"].chunks is not None
    xr.testing.assert_allclose(eager["evi_mean"], lazy["evi_mean"].compute().transpose(*eager["evi_mean"].dims))


def test_obs_time_places_observation_on_acquisition_day():
    t = pd.date_range("2022-01-01", periods=3, freq="8D")
    ds = xr.Dataset({"evi": (("time", "x"), np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])),
                     "obs_time": (("time", "x"), np.array([t + pd.Timedelta("2D"), t + pd.Timedelta("6D")]).T)},
                    coords={"time": t})
    y, mask, days, _ = daily_observations(ds, "evi")
    assert mask[0, 2, 0] and mask[1, 6, 0] and not mask[0, 0, 0]
    assert y[1, 6, 0] == 0.2 and mask.sum() == 6


def test_withhold_and_score():
    mask = np.ones((4, 400, 2), bool)
    train, test = withhold(mask, 0.25, "random", seed=1)
    assert abs(test.mean() - 0.25) < 0.02 and not (train & test).any()
    train, test = withhold(mask, 0.25, "block", (30, 60), seed=1)
    assert 0.15 < test.mean() < 0.35
    d = np.diff(np.concatenate([np.zeros((4, 1)), test[..., 0].astype(int), np.zeros((4, 1))], 1), axis=1)
    runs = np.flatnonzero(d.ravel() == -1) - np.flatnonzero(d.ravel() == 1)
    assert runs.min() >= 15          # blocks (clipped at the series start) are long
    rng = np.random.default_rng(0)
    y = rng.standard_normal((1, 20000, 1))
    s = score(y, np.ones_like(y, bool), np.zeros_like(y), np.ones_like(y))
    assert abs(s["coverage90"] - 0.9) < 0.01 and abs(s["rmse"] - 1) < 0.02
