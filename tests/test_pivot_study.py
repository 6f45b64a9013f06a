"""Golden test of the pivot study (--quick) on the Romania Sentinel-2 cube and the synthetic
coarse proxy: withheld-date scores, the calibrated learned sd, and the learned and multires
pivots as the map engine's input."""
import json

import numpy as np
import pandas as pd
import pytest

from experiments import pivot_study
from experiments.report import failed_expectations

_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"


@pytest.mark.standard_promotion(_ADAM)   # Kalman MLE, multires MLE, MAE training (Adam / AdamW)
def test_pivot_study_quick_reproduces_expected_results(tmp_path):
    metrics = pivot_study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.json", "metrics.csv", "pivot_maps.png", "series_block_ndvi.png",
                 "series_random_ndvi.png", "map_nee_total.png", "map_pivot.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(pivot_study.EXPECTED_QUICK, metrics) == []
    t = pd.read_csv(tmp_path / "metrics.csv")
    assert set(t.method) == {"linear", "whittaker", "kalman", "multires", "multires_resid", "learned",
                             "learned_phys"}
    assert np.isfinite(t.rmse).all() and (t.n > 100).all()
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert {"ndvi", "ndvi_sd", "lai", "lai_sd", "fapar", "fapar_sd"} == set(m["pivot"]["variables"])
    # the learned sd is calibrated on dates disjoint from the withheld ones: one scale per model and mode
    assert set(m["calibration"]) == {f"{mode}/{me}/ndvi" for mode in ("random", "block")
                                     for me in ("learned", "learned_phys")}
    assert all(np.isfinite(v["scale"]) and v["scale"] > 0 for v in m["calibration"].values())
    # the engine ran on both given pivots; every map finite
    assert all(m["map"][k]["finite"] for k in ("physical (engine Kalman)", "multires pivot", "learned pivot"))
    report = (tmp_path / "REPORT.md").read_text()
    assert "## The pivot as the map engine's input" in report and "## Calibration of the learned sd" in report
    assert "## Against the goals" in report and report.rstrip().endswith("| True |")
