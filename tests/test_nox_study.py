"""Golden test of the NOx study (--quick): synthetic scores of the five methods (4D-Var with
an imperfect model, and with the truth's transport for reference), the real Matimba
(TROPOMI) case and the OMI L3 Romania mass balances, report, table and maps."""
import json

import pytest

from experiments import nox_study
from experiments.report import failed_expectations

pytest.importorskip("process_models.io.tropomi")


@pytest.mark.standard_promotion("optax.adamw (emulator.train.fit, U-Net and VAE training) mixes float32 "
                                "moments with its int32 step count")
def test_nox_study_quick_reproduces_expected_results(tmp_path):
    from process_models.io.tropomi import ddeq_data_dir
    try:
        ddeq_data_dir()
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("ddeq==1.1 not installed")
    metrics = nox_study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.json", "synthetic_scores.csv", "real_cases.csv",
                 "emission_maps_synthetic.png", "real_cases_no2.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(nox_study.EXPECTED_QUICK, metrics) == []
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["synthetic"]) == {"flux_divergence", "cross_sectional_flux", "variational", "unet", "vae",
                                   "variational_inverse_crime"}
    assert set(m["real"]) == {"matimba", "oltenia", "bucharest"}
    # the honest inversion (imperfect wind and diffusivity) is worse than the inverse crime
    assert m["synthetic"]["variational"]["point_mape"] > m["synthetic"]["variational_inverse_crime"]["point_mape"]
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Method comparison" in report and "## Real cases" in report
    assert report.rstrip().endswith("| True |")
