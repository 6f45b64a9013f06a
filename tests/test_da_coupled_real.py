"""Golden test of the real-data DA study (``experiments/da_coupled_real.py --quick``): CH-Dav
June 2018, 16 members, daily ETKF of NEE + SWC with parameter augmentation through the
model interface."""
import json

import numpy as np
import pandas as pd

from experiments import da_coupled_real as study
from experiments.report import failed_expectations


def test_quick_run(tmp_path):
    metrics = study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.json", "parameters.csv", "parameter_trajectories.png",
                 "daily_series.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(study.EXPECTED_QUICK, metrics) == []
    assert json.loads((tmp_path / "metrics.json").read_text())["members"] == 16
    assert metrics["days"] == 28 and metrics["failed_members_replaced"] == 0
    assert metrics["assimilated_nee"] > 5 and metrics["assimilated_swc"] > 5
    sk = metrics["skill"]
    # assimilating NEE improves the one-day-ahead NEE forecast over the free ensemble
    assert sk["etkf"]["nee"]["assimilated"]["rmse"] < 0.5 * sk["free"]["nee"]["assimilated"]["rmse"]
    # never-assimilated LE improves too (through Vcmax25 and g1)
    assert sk["etkf"]["le"]["all"]["rmse"] < sk["default"]["le"]["all"]["rmse"]
    p = pd.read_csv(tmp_path / "parameters.csv")
    # parameter spread: never above the prior (up to 16-member sampling noise), shrinks
    # clearly for at least one parameter (vcmax25 in June), does not collapse (RTPS)
    ratio = p.final_log_sd.values / study.PRIOR_SD
    assert (ratio < 1.2).all() and ratio.min() < 0.5 and (p.final_log_sd > 0.01).all()
    assert (tmp_path / "REPORT.md").read_text().rstrip().endswith("| True |")
