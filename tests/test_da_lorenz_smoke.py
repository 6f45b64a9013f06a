"""Golden test of experiments/da_lorenz.py --quick: outputs written, expected results met,
skill plausible against the literature."""
from experiments import da_lorenz
from experiments.report import failed_expectations


def test_quick_run_writes_outputs(tmp_path):
    metrics = da_lorenz.main(["--quick", "--out", str(tmp_path)])
    for name in ("metrics.json", "metrics.csv", "REPORT.md", "rmse_per_cycle.png", "l96_hovmoller.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(da_lorenz.EXPECTED_QUICK, metrics) == []
    assert set(metrics["cases"]) == {"l63_etkf", "l96_letkf", "l63_pf"}
    for r in metrics["cases"].values():   # short runs: within a factor 1.6 of the literature rmse.a
        assert r["rmse_a"] < 1.6 * r["expected"], r
        assert 0.5 < r["rmv_a"] / r["rmse_a"] < 2.0, r      # spread matches the error
