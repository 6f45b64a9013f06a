"""The pivots as the map engine's input: the exporter's format, the index uncertainty, and
run_map on a learned / multires pivot against the engine's own Kalman pivot."""
import numpy as np
import pandas as pd
import pytest

from assimilation.maps.pivot import validate_pivot
from assimilation.observations.pivot.mapinput import band_index, band_index_sd, observation_flags, to_map_pivot
from process_models.units import DataValidationError

ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"


def _arrays(P=6, T=5):
    rng = np.random.default_rng(0)
    means = {"evi2": 0.5 + 0.01 * rng.standard_normal((P, T)), "lswi": 0.3 + 0.01 * rng.standard_normal((P, T))}
    sds = {k: np.full((P, T), 0.02) for k in means}
    return means, sds, pd.date_range("2019-01-01", periods=T), [0.0, 20.0, 40.0], [10.0, -10.0]


def test_exporter_output_passes_the_engine_check_and_keeps_pixels_in_place():
    means, sds, days, x, y = _arrays()
    mask = np.zeros((6, 9), bool)
    mask[1, :2] = True
    mask[2:, :] = True
    ds = to_map_pivot(means, sds, days, x, y, method="learned", crs="EPSG:3035", flags=observation_flags(mask))
    assert validate_pivot(ds) is ds
    assert ds["evi2"].dims == ("time", "y", "x") and ds.sizes == {"time": 5, "y": 2, "x": 3}
    # pixel p = row-major (y, x)
    np.testing.assert_array_equal(ds["lswi"].values[:, 1, 2], means["lswi"][5])
    assert ds["pixel_flag"].values.tolist() == [[1, 2, 0], [0, 0, 0]]
    assert ds.attrs["pivot_method"] == "learned" and ds["lswi_sd"].attrs["units"] == "1"


def test_exporter_refuses_a_pivot_vprm_cannot_use():
    means, sds, days, x, y = _arrays()
    with pytest.raises(DataValidationError, match="lswi") as e:
        to_map_pivot({"evi2": means["evi2"]}, {"evi2": sds["evi2"]}, days, x, y, method="learned", crs="EPSG:3035")
    assert e.value.variable == "lswi"
    bad = dict(means, lswi=np.where(np.arange(5) == 2, np.nan, means["lswi"]))
    with pytest.raises(DataValidationError, match="NaN"):
        to_map_pivot(bad, sds, days, x, y, method="learned", crs="EPSG:3035")


def test_index_sd_is_the_first_order_propagation_of_the_reflectance_error():
    n, s = np.array([0.30, 0.25]), np.array([0.15, 0.20])
    sd_n, sd_s = 0.005 + 0.05 * n, 0.005 + 0.05 * s
    # LSWI = (n - s) / (n + s): d/dn = 2 s / (n + s)^2, d/ds = -2 n / (n + s)^2
    expect = np.sqrt((2 * s / (n + s) ** 2 * sd_n) ** 2 + (2 * n / (n + s) ** 2 * sd_s) ** 2)
    got = np.asarray(band_index_sd("lswi", {"nir08": n, "swir16": s}))
    np.testing.assert_allclose(got, expect, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(band_index("lswi", {"nir08": n, "swir16": s})), (n - s) / (n + s), rtol=1e-6)
    # EVI2 does not depend on blue; EVI does
    b = {"nir": np.array([0.3]), "red": np.array([0.04]), "blue": np.array([0.02])}
    assert float(band_index("evi", b)[0]) != float(band_index("evi2", b)[0])


def _config(store, **over):
    from tests.maps.conftest import small_config
    kw = dict(run__start="2019-07-01", run__end="2019-07-02", run__window=(0, 4, 0, 4), run__tile=(4, 4),
              run__fit_steps=15, run__fit_pixels=16)
    kw.update(over)
    return small_config(store, **kw)


def _compare(phys, given):
    """NEE totals of two runs: mean difference / mean GPP total, and the share of pixels
    where the difference lies within 1.645 x the combined NEE-total sd."""
    from assimilation.maps import open_map
    a, b = open_map(phys.store).load(), open_map(given.store).load()
    assert np.isfinite(b["nee"]).all() and float(b["gpp"].min()) >= 0
    np.testing.assert_allclose(b["nee"], b["reco"] - b["gpp"], atol=2e-5)
    d = b["nee_total"].values - a["nee_total"].values
    both = np.sqrt(a["nee_total_sd"].values ** 2 + b["nee_total_sd"].values ** 2)
    return abs(d.mean()) / float(a["gpp_total"].mean()), float(np.mean(np.abs(d) <= 1.645 * both)), a, b


@pytest.mark.slow
@pytest.mark.standard_promotion(ADAM)
def test_multires_pivot_runs_the_map_engine_and_agrees_with_its_kalman_pivot(tmp_path):
    """About 20 s of CPU (two maximum-likelihood fits compiled: multires and the engine's
    Kalman); the quick pivot study runs the engine on a learned pivot in the default suite.
    Tolerance: the window-mean NEE totals differ by at most 10 % of the GPP total, and
    the pixel differences lie within the two runs' combined 90 % interval on >= 90 % of the
    pixels (the pivots fuse the same reflectances; multires adds the 300 m proxy)."""
    from assimilation.maps import run_map
    from assimilation.observations.pivot.mapinput import map_observations, multires_map_pivot
    cfg = _config(tmp_path / "phys.zarr")
    obs, info = map_observations(cfg)
    assert info["greenness"] == "evi" and obs.shape == (4, 4)
    assert obs.days[0] <= pd.Timestamp("2019-01-01") and obs.days[-1] >= pd.Timestamp("2019-12-31")
    ds, _, _ = multires_map_pivot(obs, info, fit_steps=15)
    assert validate_pivot(ds) is ds
    phys = run_map(cfg, progress=False)
    given = run_map(cfg.replace(run__window=(), output__store=str(tmp_path / "mr.zarr")), pivot=ds, progress=False)
    rel, within, _, b = _compare(phys, given)
    assert rel <= 0.10 and within >= 0.9, (rel, within)
    assert "multires_kalman" in b.attrs["source"]


@pytest.mark.slow
@pytest.mark.standard_promotion(ADAM)
def test_learned_pivot_runs_the_map_engine_and_agrees_with_its_kalman_pivot(tmp_path):
    """As the multires test, for the learned pivot (a short training: 60 steps after 15
    pretraining steps on the multires pivot; about 30 s of CPU). Tolerance: mean NEE totals
    within 10 % of the GPP total, pixel differences within the combined 90 % interval on
    >= 90 % of the pixels; the calibrated sd scales are finite and positive."""
    from assimilation.maps import run_map
    from assimilation.observations.pivot import LearnedConfig
    from assimilation.observations.pivot.mapinput import learned_map_pivot, map_observations
    from emulator.train import TrainConfig
    cfg = _config(tmp_path / "phys.zarr")
    obs, info = map_observations(cfg)
    tc = TrainConfig(steps=60, warmup_steps=6, eval_every=30, patience=100, checkpoint_every=1000, progress=False)
    ds, li = learned_map_pivot(obs, info, train_config=tc, fit_steps=15,
                               learned_config=LearnedConfig(batch_pixels=8, pretrain_steps=15))
    assert validate_pivot(ds) is ds and ds.attrs["pivot_method"] == "learned"
    assert all(np.isfinite(v) and v > 0 for v in li["scales"].values())
    phys = run_map(cfg, progress=False)
    given = run_map(cfg.replace(run__window=(), output__store=str(tmp_path / "lp.zarr")), pivot=ds, progress=False)
    rel, within, _, _ = _compare(phys, given)
    assert rel <= 0.10 and within >= 0.9, (rel, within)


def test_france_cube_without_blue_band_gives_an_evi2_pivot(tmp_path):
    from assimilation.maps import load_config
    from assimilation.observations.pivot.mapinput import map_observations
    from tests.maps.conftest import ROOT
    cfg = load_config(ROOT / "experiments" / "configs" / "france_s2.toml", run__start="2018-07-01",
                      run__end="2018-07-02", run__window=(0, 3, 0, 3), output__store=str(tmp_path / "f.zarr"))
    obs, info = map_observations(cfg)
    assert info["greenness"] == "evi2" and set(obs.values) == {"evi2", "lswi", "ndvi"}
    seen = obs.mask
    assert seen.any() and (obs.sd["lswi"][seen] > 0).all() and (obs.sd["lswi"][seen] < 0.1).all()
    # France median LSWI on clear dates is about 0.34 (PROVENANCE.md)
    assert 0.2 < float(np.median(obs.values["lswi"][seen])) < 0.5
