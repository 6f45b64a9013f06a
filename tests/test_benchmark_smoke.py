"""Smoke test of the VPRM throughput benchmark (experiments/benchmarks/vprm_throughput.py):
tiny sizes, the NumPy/JAX agreement check runs and the table has the expected columns.
No wall-clock assertions."""
import numpy as np

from experiments.benchmarks import vprm_throughput as bench


def test_quick_run_agrees_and_prints_table(capsys):
    out = bench.main(["--quick", "--sizes", "500", "2000", "--repeats", "1"])
    rows = out["rows"]
    assert len(rows) == 2
    for r in rows:
        assert r["agree"] is True            # main raises AssertionError on disagreement
        assert r["max_abs_diff"] <= 1e-3
        assert r["numpy_s"] > 0 and r["jax_s"] > 0 and r["floor_s"] > 0
        assert "fused_s" in r                 # the benchmark-only variant was checked too
    header = out["table"].splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == list(bench.COLUMNS)
    assert list(bench.COLUMNS) == ["size", "numpy s", "jax s", "pixel-hours/s numpy",
                                   "pixel-hours/s jax", "speed-up", "floor s",
                                   "fraction of floor"]
    assert len(out["table"].splitlines()) == 2 + len(rows)
    assert out["table"] in capsys.readouterr().out


def test_reference_catches_a_wrong_result():
    """The agreement check is not vacuous: a perturbed result fails it."""
    inputs = bench.make_inputs(30, 48)
    params = bench.params_float32(9)
    gpp, reco, nee = bench.numpy_reference(params, inputs)
    assert np.all(gpp >= 0) and np.all(reco >= 0) and gpp.max() > 1.0
    bench._check("gpp", gpp, gpp)
    try:
        bench._check("gpp", gpp * 1.01, gpp)
    except AssertionError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a 1 % error passed the agreement check")


def test_inputs_are_realistic_mixed_pixels():
    inputs = bench.make_inputs(400, 48, n_classes=9)
    assert all(v.dtype == np.float32 for v in inputs.values())
    f = inputs["class_fractions"]
    assert f.shape == (400, 9)
    np.testing.assert_allclose(f.sum(axis=1), 1.0, rtol=1e-5)
    nonzero = (f > 0).sum(axis=1)
    assert nonzero.min() >= 1 and nonzero.max() <= 4 and np.mean(nonzero <= 3) > 0.85
    assert inputs["temperature"].shape == inputs["par"].shape == (48, 400)
    assert inputs["par"].min() == 0.0 and inputs["par"].max() > 500.0
