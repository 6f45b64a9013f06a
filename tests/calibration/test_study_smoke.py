"""Smoke tests: the calibration study and the NUTS-vs-RWM benchmark run in --quick mode."""
import numpy as np
import pandas as pd


def test_calibration_study_quick(tmp_path):
    from experiments.calibration_vprm import main
    mt = main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "REPORT.md").exists() and (tmp_path / "metrics.csv").exists()
    assert (tmp_path / "posterior_US-PFa.nc").exists() and list(tmp_path.glob("*.png"))
    pfa = mt[(mt["site"] == "US-PFa") & (mt["target"] == "nee")].set_index("run")
    # calibration removes most of the prior's daily bias at Park Falls (prior: -3.1)
    assert abs(pfa.loc["posterior mean", "hourly_bias"]) < abs(pfa.loc["prior (Mahadevan 2008)", "hourly_bias"])
    assert pfa.loc["posterior mean", "daily_rmse"] < pfa.loc["prior (Mahadevan 2008)", "daily_rmse"]


def test_benchmark_quick():
    from experiments.benchmarks.calibration_nuts_vs_rwm import main
    df = main(["--quick"])
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert np.isfinite(df["ess_per_s"]).all() and (df["wall_s"] > 0).all()
