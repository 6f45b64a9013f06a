"""The study notebooks (experiments/notebooks/<study>.py, jupytext percent format, paired with
<study>.ipynb): every study has one, the pair is in sync, and each executes in quick mode.

Executing a notebook runs its study's ``main(["--quick", "--out", ...])``, so this test is
also the study's golden test: after execution the run's ``metrics.json`` must meet the
study's ``EXPECTED_QUICK``. The execution tests carry the ``notebook`` marker: they are
not in the default suite (``make test``, which checks the pairs) but run by
``make notebooks``, which CI runs after the tests.
"""
import importlib
import json
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from experiments.report import failed_expectations  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "experiments" / "notebooks"
STUDIES = ("vprm_first_study", "coupled_study", "bmi_coupling_study", "flux_processing_study", "fusion_study",
           "calibration_vprm", "calibration_coupled", "emulator_study", "da_lorenz",
           "da_twin_coupled", "da_coupled_real", "map_study", "pivot_study",
           "upscaling_study", "nox_study")
CELL_TIMEOUT_S = 1800


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_study_has_a_notebook_and_nothing_else():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == sorted(STUDIES)
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(STUDIES)


@pytest.mark.parametrize("study", STUDIES)
def test_pair_in_sync(study):
    """The committed .ipynb has the cells of the .py (re-pair with
    ``jupytext --sync experiments/notebooks/*.py``)."""
    py = jupytext.read(NOTEBOOKS / f"{study}.py")
    ipynb = jupytext.read(NOTEBOOKS / f"{study}.ipynb")
    assert _cells(ipynb) == _cells(py)
    assert py.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert all(not c.get("outputs") for c in ipynb.cells if c.cell_type == "code"), \
        "commit the .ipynb without outputs"


@pytest.mark.notebook
@pytest.mark.parametrize("study", STUDIES)
def test_notebook_executes_in_quick_mode(study, tmp_path, monkeypatch):
    monkeypatch.setenv("ECOFLUX_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("ECOFLUX_NOTEBOOK_MODE", "quick")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = jupytext.read(NOTEBOOKS / f"{study}.py")
    nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    out = tmp_path / study
    assert (out / "REPORT.md").stat().st_size > 0
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == len(list(out.glob("*.png"))) > 0, "every figure shown inline"
    module = importlib.import_module(f"experiments.{study}")
    expected = module.EXPECTED_QUICK
    metrics = json.loads((out / "metrics.json").read_text())
    assert failed_expectations(expected, metrics) == []


def test_notebook_helpers_on_a_minimal_study(tmp_path, monkeypatch):
    """notebook_run runs Settings.quick() through main(--quick --out), show_* display the
    figures, report and numbers (with the expected-results check)."""
    import dataclasses
    import types

    from experiments.notebook import notebook_run, show_figures, show_numbers, show_report
    from experiments.report import Expected, write_metrics, write_report

    @dataclasses.dataclass(frozen=True)
    class Settings:
        out: str = "x"
        n: int = 10

        @classmethod
        def quick(cls):
            return cls(n=2)

    calls = []

    def main(argv):
        calls.append(argv)
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        import matplotlib.pyplot as plt
        fig = plt.figure()
        fig.savefig(out / "a.png")
        plt.close(fig)
        write_metrics(out, {"n": 2})
        write_report(out, "T", ["text"], ["a.png"], study.EXPECTED_QUICK, {"n": 2})
        return {"n": 2}

    study = types.ModuleType("experiments.fake_study")
    study.Settings, study.main = Settings, main
    study.EXPECTED_QUICK = (Expected("n", 2, 0, "n"),)
    shown = []
    monkeypatch.setattr("experiments.notebook._display", lambda *o: shown.extend(o))
    monkeypatch.setenv("ECOFLUX_NOTEBOOK_OUT", str(tmp_path))
    run = notebook_run(study)
    assert calls == [["--quick", "--out", str(tmp_path / "fake_study")]]
    assert run.quick and run.settings.n == 2 and run.metrics == {"n": 2}
    assert [p.name for p in show_figures(run)] == ["a.png"]
    show_report(run)
    table = show_numbers(run)
    assert float(table.loc["n", "value"]) == 2 and bool(shown[-1]["ok"].all())
    full = notebook_run(study, mode="full", out=tmp_path / "f")
    assert not full.quick and full.settings.n == 10 and calls[-1] == ["--out", str(tmp_path / "f" / "fake_study")]
