"""Smoke test: the flux-processing study runs in --quick mode and meets the targets."""
import pandas as pd

from experiments import flux_processing_study


def test_flux_processing_study_quick(tmp_path):
    df = flux_processing_study.main(["--quick", "--out", str(tmp_path)])
    for f in ("metrics.csv", "REPORT.md", "fingerprint_de-tha.png", "fingerprint_ch-dav.png",
              "filled_vs_reference_de-tha.png", "filled_vs_reference_ch-dav.png",
              "gpp_daily_ch-dav.png"):
        assert (tmp_path / f).exists(), f
    m = pd.read_csv(tmp_path / "metrics.csv")
    assert len(m) == len(df) >= 12
    nee = m[m.comparison.str.startswith("gap-filled NEE vs")].r2.iloc[0]
    gpp = m[m.comparison.str.contains("GPP night-time vs ETH, daily")].r2.iloc[0]
    assert nee >= 0.95 and gpp >= 0.95
