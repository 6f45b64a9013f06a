"""Smoke test of the real-data DA study (``experiments/da_coupled_real.py --quick``): CH-Dav
June 2018, 16 members, daily ETKF of NEE + SWC with parameter augmentation."""
import json

import numpy as np
import pandas as pd

from experiments import da_coupled_real as study


def test_richardson_sigma_branches():
    s = study.richardson_sigma(np.array([-10.0, 0.0, 5.0]))
    np.testing.assert_allclose(s, [1.42 + 1.9, 1.42, 0.62 + 3.15])


def test_quick_run(tmp_path):
    info = study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.csv", "parameters.csv", "nee_spread_skill.csv",
                 "parameter_trajectories.png", "daily_series.png", "nee_spread_skill.png"):
        assert (tmp_path / name).exists(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["members"] == 16 and info["days"] == 28
    assert summary["assimilated_nee"] > 5 and summary["assimilated_swc"] > 5
    assert summary["failed_members_replaced"] == 0
    m = pd.read_csv(tmp_path / "metrics.csv")
    main_rows = m[(m.days == "all days") & (m.variable != "LE")]
    assert len(main_rows) == 15 and np.isfinite(main_rows.rmse).all()
    nee = m[(m.variable == "NEE") & (m.days == "assimilated weeks")].set_index("run").rmse
    # assimilating NEE must improve the one-day-ahead NEE forecast over the free ensemble
    assert nee["ETKF analysis"] < nee["free ensemble"]
    p = pd.read_csv(tmp_path / "parameters.csv")
    # parameter spread: never above the prior (up to 16-member sampling noise), shrinks
    # clearly for at least one parameter (vcmax25 in June), does not collapse (RTPS)
    ratio = p.final_log_sd.values / study.PRIOR_SD
    assert (ratio < 1.2).all() and ratio.min() < 0.5 and (p.final_log_sd > 0.01).all()
