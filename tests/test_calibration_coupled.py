"""Golden test of experiments.calibration_coupled --quick (CH-Dav, one month calibration,
one month validation, MAP only) on the shipped CH-Dav data."""
import numpy as np
import pandas as pd

from experiments import calibration_coupled as cc
from experiments.report import failed_expectations


def test_quick_runs_and_map_improves_posterior(tmp_path):
    res = cc.main(["--quick", "--out", str(tmp_path), "--fresh"])
    for name in ("REPORT.md", "metrics.csv", "chdav_daily_nee.png", "chdav_marginals.png",
                 "checkpoint_CH-Dav.npz"):
        assert (tmp_path / name).exists(), name
    assert failed_expectations(cc.EXPECTED_QUICK, res["metrics"]) == []
    assert (tmp_path / "REPORT.md").read_text().rstrip().endswith("| True |")
    r = res["results"][0]
    # L-BFGS decreased -log posterior below its starting value
    assert min(r["hist"]) < r["hist"][0] - 1.0
    # MAP parameters inside the table bounds
    theta = np.asarray(r["sub"].to_physical(r["x_map"][:r["sub"].size]))
    assert np.all(theta >= r["sub"].lower) and np.all(theta <= r["sub"].upper)
    m = pd.read_csv(tmp_path / "metrics.csv")
    assert {"default", "posterior (MAP)"} <= set(m["parameters"])
    nee = m[(m.variable == "NEE") & (m.resolution == "hourly")]
    assert len(nee) == 4 and np.all(np.isfinite(nee["rmse"]))
