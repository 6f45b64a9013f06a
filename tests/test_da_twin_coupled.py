"""Twin experiment with the coupled model (``experiments/da_twin_coupled.py --quick``):
CH-Dav June 2018, 16 members, daily ETKF of synthetic NEE + SWC + LAI with three hidden
parameter multipliers. Seeded checks: the truth lies within the posterior 90 % interval
(Gaussian in log space) of every parameter, the posterior spread of Vcmax25 shrinks
clearly (GPP/NEE inform it within a month; g1 and the Rh rate are only weakly identified
in 28 days -- a weaker property than recovery, stated as such), and the analysis beats the
prior-mean run for daily NEE and GPP."""
import json

import numpy as np
import pandas as pd

from experiments import da_twin_coupled as study


def test_quick_twin(tmp_path):
    info = study.main(["--quick", "--out", str(tmp_path), "--seed", "0"])
    for name in ("REPORT.md", "metrics.csv", "parameters.csv", "summary.json",
                 "parameter_recovery.png", "daily_series.png"):
        assert (tmp_path / name).exists(), name
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["members"] == 16 and info["days"] == 28 and s["n_failed"] == 0
    assert s["nee_days"] > 10 and s["swc_days"] > 10
    p = pd.read_csv(tmp_path / "parameters.csv")
    assert p.truth_in_90.all(), p
    ratio = p.posterior_log_sd.values / study.PRIOR_SD
    assert ratio[0] < 0.6 and (ratio < 1.2).all() and (p.posterior_log_sd > 0.01).all()
    # Vcmax25 moves from the prior mean towards the (higher) truth
    assert 0.0 < p.posterior_log_mean[0] <= study.TRUTH_LOG[0] + 0.1
    m = pd.read_csv(tmp_path / "metrics.csv").set_index("variable")
    for var in ("NEE", "GPP"):
        assert m.loc[var, "ETKF analysis"] < 0.8 * m.loc[var, "default (prior-mean params)"]
    assert np.isfinite(m.loc["SWC 0.15 m"].values.astype(float)).all()
