"""Golden test of the map study (--quick): Romania S2 on a LocalCluster, a Munich MODIS +
ERA5 corner, the Park Falls tower pixel against the tower."""
import json

import pytest
import xarray as xr

from experiments import map_study
from experiments.report import failed_expectations

_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"


@pytest.mark.standard_promotion(_ADAM)   # the pivot's pooled Kalman MLE (Adam)
def test_map_study_quick_reproduces_expected_results(tmp_path):
    metrics = map_study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.json", "romania_maps.png", "romania_nee_series.png", "munich_maps.png",
                 "park_falls_pixel.png", "france_maps.png", "romania_s2.zarr.budgets.csv", "munich_modis.zarr.budgets.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(map_study.EXPECTED_QUICK, metrics) == []
    ds = xr.open_zarr(tmp_path / "romania_s2.zarr", consolidated=False)
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.sizes["time"] == 168
    assert json.loads((tmp_path / "metrics.json").read_text())["romania"]["workers"] == 2
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Park Falls" in report and report.rstrip().endswith("| True |")
