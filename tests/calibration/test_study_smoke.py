"""Smoke tests: the calibration study and the NUTS-vs-RWM benchmark run in --quick mode;
the benchmark's samplers and the study's report assembly checked on known answers."""
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"
_TRUNC = "numpyro's two-sided truncated distribution weights its log-cdfs by an integer array in logsumexp"
_NUTS = "numpyro's NUTS divides the float sum of accept probabilities by the integer number of proposals"


@pytest.mark.standard_promotion(_ADAM, _TRUNC)
def test_calibration_study_quick_reproduces_expected_results(tmp_path):
    """Golden test: the quick run (SVI at US-PFa) meets EXPECTED_QUICK, and calibration
    removes most of the prior's bias."""
    from experiments.calibration_vprm import EXPECTED_QUICK, main
    from experiments.report import failed_expectations
    metrics = main(["--quick", "--out", str(tmp_path)])
    assert failed_expectations(EXPECTED_QUICK, metrics) == []
    assert (tmp_path / "REPORT.md").exists() and (tmp_path / "metrics.csv").exists()
    assert (tmp_path / "posterior_US-PFa.nc").exists() and list(tmp_path.glob("*.png"))
    assert (tmp_path / "REPORT.md").read_text().rstrip().endswith("| True |")
    mt = pd.read_csv(tmp_path / "metrics.csv")
    pfa = mt[(mt["site"] == "US-PFa") & (mt["target"] == "nee")].set_index("run")
    # calibration removes most of the prior's daily bias at Park Falls (prior: -3.1)
    assert abs(pfa.loc["posterior mean", "hourly_bias"]) < abs(pfa.loc["prior (Mahadevan 2008)", "hourly_bias"])
    assert pfa.loc["posterior mean", "daily_rmse"] < pfa.loc["prior (Mahadevan 2008)", "daily_rmse"]


def test_report_assembled_from_stage_parts(tmp_path):
    """Stages run in separate processes; REPORT.md/metrics.csv hold every part present."""
    from experiments.calibration_vprm import assemble
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "single.md").write_text("## Single-site calibrations\nS\n")
    (parts / "hier.md").write_text("## Hierarchical\nH\n")
    pd.DataFrame({"site": ["A"], "run": ["posterior mean"]}).to_csv(parts / "single.csv", index=False)
    pd.DataFrame({"site": ["A", "B"], "run": ["hier", "hier"]}).to_csv(parts / "hier.csv", index=False)
    mt = assemble(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert text.index("Single-site") < text.index("stage 'cv' has not been run") < text.index("Hierarchical")
    assert len(mt) == 3 and len(pd.read_csv(tmp_path / "metrics.csv")) == 3


@pytest.mark.standard_promotion(_NUTS)
def test_benchmark_samplers_recover_a_correlated_gaussian():
    """Both benchmark samplers (compiled NUTS kernel, Haario RWM) on a 3-d Gaussian with
    correlation 0.9: means within 5 Monte-Carlo standard errors of 0, variances within 30 %."""
    from experiments.benchmarks.calibration_nuts_vs_rwm import ess_rhat, run_nuts, run_rwm, start_points
    cov = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 4.0]])
    prec = jnp.asarray(np.linalg.inv(cov))
    potential = jax.jit(lambda x: 0.5 * x @ prec @ x)
    starts = start_points(np.zeros(3), cov, 2, seed=0)
    names = ["a", "b", "c"]
    for r in (run_nuts(potential, starts, 300, dense=True),
              run_rwm(potential, starts, cov, 1000, 4000, seed=3)):
        d = r["draws"].reshape(-1, 3)
        ess, rhat = ess_rhat(r["draws"], names)
        assert r["compile_s"] >= 0 and r["sampling_s"] > 0 and rhat < 1.05
        assert np.all(np.abs(d.mean(0)) < 5 * np.sqrt(np.diag(cov) / ess))
        np.testing.assert_allclose(d.var(0), np.diag(cov), rtol=0.3)


@pytest.mark.slow
@pytest.mark.standard_promotion(_NUTS)
def test_benchmark_quick():
    from experiments.benchmarks.calibration_nuts_vs_rwm import main
    df = main(["--quick"])
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert np.isfinite(df["ess_per_s_sampling"]).all() and (df["sampling_s"] > 0).all()
