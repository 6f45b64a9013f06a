"""Golden test of the pivot study (--quick) on the Romania Sentinel-2 cube, the synthetic
coarse and S1 proxies and the US-PFa downstream test."""
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
                 "series_random_ndvi.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(pivot_study.EXPECTED_QUICK, metrics) == []
    t = pd.read_csv(tmp_path / "metrics.csv")
    assert set(t.method) == {"linear", "whittaker", "kalman", "multires", "multires_resid", "learned",
                             "learned_phys"}
    assert np.isfinite(t.rmse).all() and (t.n > 100).all()
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert {"ndvi", "ndvi_sd", "lai", "lai_sd", "fapar", "fapar_sd"} == set(m["pivot"]["variables"])
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Against the goals" in report and report.rstrip().endswith("| True |")
