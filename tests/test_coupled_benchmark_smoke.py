"""Smoke test of the coupled-model throughput benchmark
(experiments/benchmarks/coupled_throughput.py): tiny sizes, the eager-vs-jit agreement check
runs and the table has the expected rows and columns. No wall-clock assertions."""
from experiments.benchmarks import coupled_throughput as bench


def test_quick_run_prints_table(capsys):
    out = bench.main(["--quick", "--skip-gradient", "--steps", "48", "--members", "4",
                      "--batch", "2", "--eager-steps", "2"])
    rows = out["rows"]
    assert [r["case"].split(" ")[0] for r in rows] == ["forward", "python", "ensemble"]
    assert rows[2]["members"] == 4 and all(r["steps"] == 48 for r in rows)
    assert out["eager_max_abs_diff"] <= 1e-3
    assert all(r["run s"] > 0 and r["site-years/s"] > 0 for r in rows)
    header = out["table"].splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == bench.COLUMNS
    assert out["table"] in capsys.readouterr().out
