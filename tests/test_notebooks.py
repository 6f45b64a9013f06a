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
           "da_twin_coupled", "da_coupled_real")
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
