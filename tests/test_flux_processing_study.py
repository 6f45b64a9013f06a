"""Golden test: the flux-processing study (--quick) reproduces its expected results and
meets the targets (gap-filled NEE and night-time GPP R2 >= 0.95)."""
import pandas as pd
import pytest

from experiments import flux_processing_study
from experiments.report import failed_expectations

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"


@pytest.mark.standard_promotion(_ADAM)   # random-error model fit (Adam)
def test_flux_processing_study_quick(tmp_path):
    metrics = flux_processing_study.main(["--quick", "--out", str(tmp_path)])
    for f in ("metrics.json", "metrics.csv", "REPORT.md", "fingerprint_de-tha.png", "fingerprint_ch-dav.png",
              "filled_vs_reference_de-tha.png", "filled_vs_reference_ch-dav.png", "gpp_daily_ch-dav.png"):
        assert (tmp_path / f).exists(), f
    assert failed_expectations(flux_processing_study.EXPECTED_QUICK, metrics) == []
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == len(metrics["r2"]) == 14
    assert metrics["targets"]["nee_r2_min"] >= 0.95 and metrics["targets"]["gpp_nt_daily_r2"] >= 0.95
