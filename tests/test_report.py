"""The shared study helpers (experiments.report): settings parsing, expected-results checks,
metrics and report writing."""
import json
from dataclasses import dataclass

import numpy as np
import pytest

from experiments.report import (Expected, expected_table, failed_expectations, parse_settings,
                                write_metrics, write_report)


@dataclass(frozen=True)
class S:
    out: str = "x"
    n: int = 10
    rate: float = 0.5
    name: str = "a"
    fresh: bool = False

    @classmethod
    def quick(cls):
        return cls(n=2)


def test_parse_settings_quick_overrides_and_bools():
    assert parse_settings(S, []) == S()
    assert parse_settings(S, ["--quick"]) == S(n=2)
    assert parse_settings(S, ["--quick", "--n", "5", "--out", "d"]) == S(n=5, out="d")
    assert parse_settings(S, ["--fresh"]).fresh is True
    assert parse_settings(S, ["--fresh", "false"]).fresh is False
    assert parse_settings(S, ["--rate", "1e-3", "--name", "b"]) == S(rate=1e-3, name="b")
    with pytest.raises(SystemExit):
        parse_settings(S, ["--n", "many"])
    with pytest.raises(SystemExit):
        parse_settings(S, ["--unknown", "1"])


def test_expected_results_and_report(tmp_path):
    metrics = {"a": {"b": 1.0}, "c": float("nan"), "d": np.float32(2.5)}
    exp = (Expected("a/b", 1.05, 0.1, "ab"), Expected("a/b", 1.2, 0.1, "too far"),
           Expected("c", 0.0, 1.0, "nan"), Expected("missing", 0.0, 1.0, "absent"),
           Expected("d", 2.5, 0.0, "numpy scalar"))
    t = expected_table(exp, metrics)
    assert t["ok"].tolist() == [True, False, False, False, True]
    assert len(failed_expectations(exp, metrics)) == 3
    path = write_metrics(tmp_path, metrics)
    assert json.loads(path.read_text()) == {"a": {"b": 1.0}, "c": None, "d": 2.5}
    rep = write_report(tmp_path, "T", ["## S\ntext"], ["f.png"], exp[:1], metrics).read_text()
    assert rep.startswith("# T") and "![f](f.png)" in rep
    assert rep.index("## S") < rep.index("## Figures") < rep.index("## Expected results")
    assert rep.rstrip().endswith("| True |")


def test_expected_table_only_for_the_quick_configuration(tmp_path):
    from experiments.report import is_quick
    exp = (Expected("n", 2, 0, "n"),)
    assert is_quick(S(n=2, out="elsewhere")) and not is_quick(S()) and not is_quick(S(n=2, rate=1.0))
    quick = write_report(tmp_path / "q", "T", [], (), exp, {"n": 2}, settings=S(n=2)).read_text()
    assert quick.rstrip().endswith("| True |")
    full = write_report(tmp_path / "f", "T", [], (), exp, {"n": 7}, settings=S()).read_text()
    assert "| False |" not in full and "do not apply" in full
