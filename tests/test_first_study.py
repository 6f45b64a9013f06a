"""Smoke test of the first study on the shipped real data (quick configuration)."""
import json

import numpy as np

from experiments import vprm_first_study


def test_first_study_quick_runs_on_real_data(tmp_path):
    res = vprm_first_study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.csv", "munich_daily_fluxes.nc", "pfa_hourly_scatter.png",
                 "pfa_daily_series.png", "pfa_diurnal_by_month.png", "munich_flux_map.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    table = res["park_falls"]
    assert len(table) == 5 and table["hourly_n"].min() > 4000
    # literature parameters capture the diurnal/seasonal cycle at Park Falls (hourly R2 ~0.5)
    assert table["hourly_r2"].min() > 0.35 and table["daily_r2"].min() > 0.5
    assert np.isfinite(table[["hourly_rmse", "hourly_bias"]].to_numpy()).all()
    munich = json.loads((tmp_path / "munich_summary.json").read_text())
    # July: net uptake over a vegetated domain, GPP and Reco positive
    assert munich["mean_gpp_gC_m2_d"] > 0 and munich["mean_reco_gC_m2_d"] > 0
    assert munich["mean_nee_gC_m2_d"] < 0
    report = (tmp_path / "REPORT.md").read_text()
    assert "Park Falls" in report and "stand-in" in report
