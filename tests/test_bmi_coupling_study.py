"""Golden test of the BMI coupling study (quick): the AT-Neu coupled-model + VPRM coupling
through BMI reproduces its expected skill, and the split surface + soil components equal
the single coupled model to round-off."""
import json

import pytest

pytest.importorskip("process_models.coupled")
from experiments import bmi_coupling_study  # noqa: E402
from experiments.report import failed_expectations  # noqa: E402


def test_bmi_coupling_study_quick_reproduces_expected_results(tmp_path):
    metrics = bmi_coupling_study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.json", "metrics.csv", "atneu_bmi_coupling.png",
                 "frhes_split_components.png", "atneu_coupled.toml", "atneu_vprm.toml",
                 "atneu_vprm_forcing.nc", "frhes_split.toml"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(bmi_coupling_study.EXPECTED_QUICK, metrics) == []
    diff = json.loads((tmp_path / "metrics.json").read_text())["split"]["max_abs_difference"]
    assert set(diff) == {"gpp", "nee", "le", "et", "runoff", "drainage", "soil_water_content"}
    assert max(diff.values()) < 1e-9
    assert (tmp_path / "REPORT.md").read_text().rstrip().endswith("| True |")
