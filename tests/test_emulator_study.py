"""Golden test of the emulator study (quick configuration: tiny VPRM, toy and daily coupled
emulators on the shipped Park Falls, Munich, CH-Dav and FR-Hes data)."""
import json

import pandas as pd

import pytest

from experiments import emulator_study
from experiments.report import failed_expectations

_ADAM = "optax.adam's bias correction raises a Python float to its int32 step count"


@pytest.mark.standard_promotion(_ADAM)
def test_emulator_study_quick_gives_the_expected_results(tmp_path):
    metrics = emulator_study.main(["--quick", "--out", str(tmp_path)])
    assert failed_expectations(emulator_study.EXPECTED_QUICK, metrics) == []
    for f in ("REPORT.md", "metrics.json", "results.csv", "vprm_training.csv", "vprm_heldout_params.png",
              "vprm_munich.png", "vprm_gradients.png", "toy_rollout.png", "vprm_surrogate/config.json",
              "vprm_surrogate/weights.npz", "toy_step_surrogate/weights.npz", "coupled_daily_rollout.png",
              "coupled_daily_surrogate/config.json", "coupled_daily_surrogate/weights.npz"):
        assert (tmp_path / f).stat().st_size > 0, f
    table = pd.read_csv(tmp_path / "results.csv")
    assert {"gpp", "reco", "nee", "soil_water_content", "et"} <= set(table["output"])
    assert table["r2"].notna().all()                      # every comparison produced finite pairs
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved["vprm"]["speed"]) == {"batch_1", "batch_1024"} and "coupled" not in saved
    assert saved["vprm"]["munich"]["pixels"] == 24 * 24
    # the toy step emulator's soil water stays in its bounds, so its water balance holds
    # to the accuracy of its flux heads (mm per day)
    assert saved["toy"]["max_water_balance_residual"] < 100.0
    # the daily emulator is scored on held-out years and the held-out site; its soil water
    # stays in bounds and its balances close (float32 evaluation in quick mode)
    assert set(saved["coupled_daily"]["r2"]) == {"CH-Dav 2020", "FR-Hes 2016"}
    assert saved["coupled_daily"]["residuals"]["water_mm"] < 1e-3
    report = (tmp_path / "REPORT.md").read_text()
    assert report.rstrip().endswith("| True |") and "## Targets" in report
