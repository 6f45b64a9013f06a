"""Golden test of the upscaling study (--quick): 4 real towers, leave-one-site-out for
CH-Dav, three models, the CH-Dav drought test, and the synthetic twin over 25 pixels of the
Romania Sentinel-2 cube."""
import json

import numpy as np
import pandas as pd
import pytest

from experiments import upscaling_study
from experiments.report import failed_expectations

_ADAM = ("optax.adam (emulator.train.fit, the tower error model's sigma fit) raises a Python "
         "float to its int32 step count")


@pytest.mark.standard_promotion(_ADAM)
def test_upscaling_study_quick_reproduces_expected_results(tmp_path):
    metrics = upscaling_study.main(["--quick", "--maps", "none", "--out", str(tmp_path)])   # maps: tests/maps
    for name in ("REPORT.md", "metrics.json", "site_metrics.csv", "drought.csv", "site_r2.png",
                 "series_CH-Dav.png", "drought_ch_dav.png", "twin_skill.csv", "twin_maps.png", "twin_scatter.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(upscaling_study.EXPECTED_QUICK, metrics) == []
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["skill"]) == {"trees", "mlp", "hybrid"}
    t = pd.read_csv(tmp_path / "site_metrics.csv")
    assert set(t.site) == {"all", "CH-Dav"}                  # the held-out fold
    assert np.isfinite(t[["nee_r2", "gpp_r2", "reco_r2"]].values).all()
    d = pd.read_csv(tmp_path / "drought.csv")
    assert set(d.year) == {2018, 2022} and set(d.flux) == {"nee", "gpp"} and len(d) == 12
    tw = pd.read_csv(tmp_path / "twin_skill.csv")
    assert set(tw.model) == {"trees", "mlp", "hybrid"} and set(tw.flux) == {"nee", "gpp", "reco"}
    assert (tw.pixels == m["twin"]["pixels"] - len(m["twin"]["towers"])).all()   # towers are not scored
    assert np.isfinite(tw[["spatial_r2", "daily_r2", "daily_coverage90"]].values).all()
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Drought" in report and "## Synthetic twin" in report and report.rstrip().endswith("| True |")
