"""Helpers of the study notebooks (``experiments/notebooks``): run a study in the notebook's
mode and show its settings, figures, report and numbers inline.

Mode: quick unless ``ECOFLUX_NOTEBOOK_MODE=full``; outputs under
``$ECOFLUX_NOTEBOOK_OUT/<study>`` (default ``experiments/output/notebooks/<study>`` in the
repository). CI executes every notebook in quick mode (``make notebooks``).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd

__all__ = ["NotebookRun", "notebook_run", "show_figures", "show_numbers", "show_report"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class NotebookRun:
    """One study run from a notebook: the study module, its settings, output folder,
    ``metrics.json`` contents, whether it ran in quick mode, and what ``main`` returned."""

    study: ModuleType
    settings: object
    out: Path
    metrics: dict
    quick: bool
    result: object = None


def _display(*objs):
    from IPython.display import display
    display(*objs)


def notebook_run(study: ModuleType, *, mode: str | None = None, out: str | Path | None = None) -> NotebookRun:
    """Show the settings of ``study`` (quick or full), run ``study.main`` with them and
    return the run. ``mode``: "quick" or "full" (default from ``ECOFLUX_NOTEBOOK_MODE``)."""
    quick = (mode or os.environ.get("ECOFLUX_NOTEBOOK_MODE", "quick")) != "full"
    name = study.__name__.rsplit(".", 1)[-1]
    base = Path(out or os.environ.get("ECOFLUX_NOTEBOOK_OUT", ROOT / "experiments" / "output" / "notebooks"))
    folder = base / name
    settings = study.Settings.quick() if quick else study.Settings()
    settings = dataclasses.replace(settings, out=str(folder))
    _display(pd.Series(dataclasses.asdict(settings), name="value", dtype=object).to_frame())
    result = study.main((["--quick"] if quick else []) + ["--out", str(folder)])
    mfile = folder / "metrics.json"
    metrics = json.loads(mfile.read_text()) if mfile.exists() else {}
    return NotebookRun(study, settings, folder, metrics, quick, result)


def show_figures(run: NotebookRun) -> list[Path]:
    """Every PNG of the run, inline, with its name."""
    from IPython.display import Image, Markdown
    pngs = sorted(run.out.glob("*.png"))
    for png in pngs:
        _display(Markdown(f"**{png.stem}**"), Image(filename=str(png)))
    return pngs


def show_report(run: NotebookRun) -> None:
    """``REPORT.md`` of the run without its image links (the figures are shown inline); it
    ends with the study's expected-results table."""
    from IPython.display import Markdown
    text = (run.out / "REPORT.md").read_text()
    _display(Markdown("\n".join(line for line in text.splitlines() if not line.startswith("!["))))


def show_numbers(run: NotebookRun) -> pd.DataFrame:
    """``metrics.json`` as a table (nested keys joined by ``/``) and, in quick mode, the
    expected-results check. Returns the flat table."""
    from experiments.report import expected_table
    flat = pd.json_normalize(run.metrics, sep="/")
    table = flat.T.rename(columns={0: "value"}) if len(flat) else pd.DataFrame(columns=["value"])
    _display(table)
    if run.quick and hasattr(run.study, "EXPECTED_QUICK"):
        _display(expected_table(run.study.EXPECTED_QUICK, run.metrics))
    return table
