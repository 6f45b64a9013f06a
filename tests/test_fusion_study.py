"""Golden test of the fusion study (--quick) on the real MODIS data, and the fused
satellite option of the VPRM first study."""
import json

import numpy as np
import pandas as pd
import pytest

from experiments import fusion_study
from experiments.report import failed_expectations

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"


@pytest.mark.standard_promotion(_ADAM)   # Kalman-fusion MLE (Adam)
def test_fusion_study_quick_reproduces_expected_results(tmp_path):
    metrics = fusion_study.main(["--quick", "--out", str(tmp_path)])
    for name in ("REPORT.md", "metrics.json", "metrics.csv", "mle_parameters.csv", "rmse_coverage.png",
                 "pfa_fused_series.png", "munich_evi_fused_series.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert failed_expectations(fusion_study.EXPECTED_QUICK, metrics) == []
    assert json.loads((tmp_path / "metrics.json").read_text())["scores"].keys() == {"pfa_evi", "munich_evi"}
    t = pd.read_csv(tmp_path / "metrics.csv")
    allr = t[t.sensor == "all"]
    assert set(allr.method) == {"kalman", "linear", "whittaker", "savgol", "pyvprm"}
    assert np.isfinite(allr.rmse).all() and (allr.n > 10).all()
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Target" in report and report.rstrip().endswith("| True |")


@pytest.mark.slow   # ~60 s on 2 loaded cores: fits two Kalman fusions over 3 years
@pytest.mark.standard_promotion(_ADAM)   # Kalman-fusion MLE (Adam)
def test_vprm_park_falls_inputs_fused_option():
    """The fused Park Falls indices as VPRM forcing (the first study's --satellite fused)
    against the linearly interpolated composites."""
    from assimilation.observations.fusion import park_falls_fused_indices
    from process_models.io import read_park_falls, vprm_site_forcing
    d = read_park_falls()
    tower = d["tower"]
    lin, stats_l = vprm_site_forcing(tower, d["evi"], lswi_satellite=d["reflectance"], year=2005,
                                     with_statistics=True)
    fus, stats_f = vprm_site_forcing(tower, park_falls_fused_indices(d), year=2005, with_statistics=True)
    evi_l, lswi_l, evi_f, lswi_f = (np.asarray(x) for x in (lin.evi, lin.lswi, fus.evi, fus.lswi))
    assert evi_f.shape == evi_l.shape and np.isfinite(evi_f).all() and np.isfinite(lswi_f).all()
    # the fused EVI follows the interpolated composites; LSWI agrees in summer (winter
    # LSWI is snow-affected and the smoother damps its spikes: whole-year r is only ~0.6)
    assert np.corrcoef(evi_f, evi_l)[0, 1] > 0.9
    summer = tower.time.dt.month.isin([6, 7, 8]).values
    assert np.corrcoef(lswi_f[summer], lswi_l[summer])[0, 1] > 0.95
    assert np.abs(lswi_f - lswi_l)[summer].mean() < 0.02
    assert abs(stats_f["evi_max"] - stats_l["evi_max"]) < 0.15
