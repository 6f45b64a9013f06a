"""Smoke test of experiments/benchmarks/da_analysis.py: tiny sizes; JAX and NumPy agree
(checked inside main) and the table has the expected columns. No wall-clock checks."""
import numpy as np

from experiments.benchmarks import da_analysis as bench


def test_quick_run_agrees_and_prints_table(capsys):
    out = bench.main(["--quick", "--repeats", "1"])
    assert len(out["rows"]) == 4
    for r in out["rows"]:
        assert r["diff"] < 1e-8 and r["numpy_s"] > 0 and r["jax_s"] > 0
    header = out["table"].splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == list(bench.COLUMNS)
    assert out["table"] in capsys.readouterr().out


def test_numpy_letkf_reference_equals_numpy_etkf_without_localisation():
    rng = np.random.default_rng(0)
    X, y, r = rng.standard_normal((6, 9)), rng.standard_normal(9), np.ones(9)
    idx = np.tile(np.arange(9), (9, 1))
    np.testing.assert_allclose(bench.numpy_letkf(X, y, r, idx, np.ones((9, 9))),
                               bench.numpy_etkf(X, y, r), atol=1e-12)
