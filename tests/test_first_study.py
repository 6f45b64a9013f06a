"""Golden test of the first study (quick configuration) on the shipped real data."""
import json

from experiments import vprm_first_study
from experiments.report import failed_expectations


def test_first_study_quick_gives_the_expected_results(tmp_path):
    metrics = vprm_first_study.main(["--quick", "--out", str(tmp_path)])
    assert failed_expectations(vprm_first_study.EXPECTED_QUICK, metrics) == []
    for name in ("REPORT.md", "metrics.json", "munich_daily_fluxes.nc", "pfa_hourly_scatter.png",
                 "pfa_daily_series.png", "pfa_diurnal_by_month.png", "munich_flux_map.png", "munich_diurnal.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert set(metrics["park_falls"]) >= set(vprm_first_study.PARAMETER_SETS)
    assert json.loads((tmp_path / "metrics.json").read_text())["munich"]["pixels"] == 24 * 24
    report = (tmp_path / "REPORT.md").read_text()
    assert "stand-in" in report and report.rstrip().endswith("| True |")
    assert report.index("## Expected results") > report.index("## Munich")
