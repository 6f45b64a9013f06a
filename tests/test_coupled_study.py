"""Golden test of the coupled study on the shipped real data (quick configuration: CH-Dav
May-August 2018), and the daily soil-water reset it uses at BE-Vie."""
import json

import jax
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("process_models.coupled")
from experiments import coupled_study  # noqa: E402
from experiments.report import failed_expectations  # noqa: E402


def test_coupled_study_quick_reproduces_expected_results(tmp_path):
    metrics = coupled_study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.json", "metrics.csv", "chdav_daily_series.png", "seasonal_cycles.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(coupled_study.EXPECTED_QUICK, metrics) == []
    table = pd.read_csv(tmp_path / "metrics.csv")
    assert set(table.variable) == {"GPP (NT, CUT_REF)", "LE (measured)", "SWC 0.15 m", "NEE (measured)"}
    assert np.isfinite(table[["r2", "rmse", "bias", "obs_mean", "model_mean"]].to_numpy()).all()
    assert json.loads((tmp_path / "metrics.json").read_text())["skill"].keys() == {"CH-Dav"}
    assert (tmp_path / "REPORT.md").read_text().rstrip().endswith("| True |")


def test_daily_reset_restarts_every_day_from_the_inserted_soil_water():
    """Each day of simulate_with_daily_reset equals a plain simulate of that day from the
    carried state with the inserted soil water; the trailing partial day is dropped."""
    from process_models import coupled
    from process_models.coupled.insertion import root_zone_weights, simulate_with_daily_reset
    params = coupled.load_parameters("ENF", "loam")
    n = 48 * 2 + 5
    t = np.arange(n)
    forcing = coupled.CoupledForcing(
        air_temperature=jax.numpy.asarray(10 + 5 * np.sin(2 * np.pi * t / 48)),
        shortwave_in=jax.numpy.asarray(np.clip(600 * np.sin(2 * np.pi * (t - 12) / 48), 0, None)),
        vpd=jax.numpy.full(n, 8.0), precipitation=jax.numpy.zeros(n), air_pressure=jax.numpy.full(n, 95.0),
        co2=jax.numpy.full(n, 410.0), wind_speed=jax.numpy.full(n, 2.0),
        cos_zenith=jax.numpy.asarray(np.clip(np.sin(2 * np.pi * (t - 12) / 48), 0, None)), lai=None,
        dt_seconds=1800.0)
    theta = 0.2
    out, _ = simulate_with_daily_reset(params, forcing, theta)
    assert out.gpp.shape == (96,)
    state = coupled.initial_state(params, forcing)
    for d in range(2):
        day = jax.tree_util.tree_map(lambda x: x[48 * d:48 * (d + 1)], forcing)
        state = state.replace(soil_water_content=jax.numpy.full_like(state.soil_water_content, theta))
        ref, state = coupled.simulate(params, day, state, return_state=True)
        np.testing.assert_allclose(np.asarray(out.gpp[48 * d:48 * (d + 1)]), np.asarray(ref.gpp), rtol=1e-12)
    w = root_zone_weights([0.05, 0.10, 0.15, 0.20], 0.3)
    np.testing.assert_allclose(w, [0.05 / 0.3, 0.10 / 0.3, 0.15 / 0.3, 0.0])
    with pytest.raises(ValueError, match="less than one day"):
        simulate_with_daily_reset(params, jax.tree_util.tree_map(lambda x: x[:10], forcing), theta)
