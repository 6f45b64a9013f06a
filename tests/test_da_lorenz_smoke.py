"""Smoke test of experiments/da_lorenz.py --quick: outputs written, skill plausible."""
import csv

from experiments import da_lorenz


def test_quick_run_writes_outputs(tmp_path):
    rows = da_lorenz.main(["--quick", "--out", str(tmp_path)])
    for name in ("metrics.csv", "REPORT.md", "rmse_per_cycle.png", "l96_hovmoller.png"):
        assert (tmp_path / name).exists()
    with open(tmp_path / "metrics.csv") as f:
        got = list(csv.DictReader(f))
    assert len(got) == len(rows) == 2
    for r in rows:   # short runs: within a factor 1.6 of the literature rmse.a
        assert r["rmse_a"] < 1.6 * r["expected"], r
