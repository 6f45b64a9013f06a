"""Smoke test of the coupled study on the shipped real data (quick configuration: CH-Dav
May-August 2018)."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("process_models.coupled")
from experiments import coupled_study  # noqa: E402


def test_coupled_study_quick_runs_on_real_data(tmp_path):
    coupled_study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.csv", "chdav_daily_series.png", "seasonal_cycles.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    table = pd.read_csv(tmp_path / "metrics.csv")
    assert set(table.variable) >= {"GPP (NT, CUT_REF)", "LE (measured)", "SWC 0.15 m",
                                   "NEE (measured)"}
    assert np.isfinite(table[["r2", "rmse", "bias", "obs_mean", "model_mean"]].to_numpy()).all()
    hh = table[table.resolution == "half-hourly"].set_index("variable")
    # four summer months of half-hours; GPP and SWC follow the observations (diurnal/seasonal)
    assert hh.loc["GPP (NT, CUT_REF)", "n"] > 5000
    assert hh.loc["GPP (NT, CUT_REF)", "r2"] > 0.5
    assert hh.loc["SWC 0.15 m", "r2"] > 0.3
    # modelled SWC stays physical
    assert 0.05 < hh.loc["SWC 0.15 m", "model_mean"] < 0.6
    assert "CH-Dav" in (tmp_path / "REPORT.md").read_text()
