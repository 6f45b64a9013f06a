# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The coupled soil-moisture / photosynthesis model at European towers
#
# A differentiable land-surface column: FvCB photosynthesis (Farquhar et al. 1980) with
# Medlyn et al. (2011) stomata on sun/shade big leaves (de Pury & Farquhar 1997), a
# Richards-equation soil with Campbell (1974) / Clapp & Hornberger (1978) hydraulics, CLM4.5
# root water stress (Oleson et al. 2013) and CASA-like carbon pools, run with default
# parameters per plant functional type (no calibration).
#
# What it shows: skill (R2, RMSE, bias) for GPP, NEE, LE and soil water at CH-Dav (the quick
# run: May-August 2018, the drought summer); the full run adds the 2013-2022 drought
# response at CH-Dav, FR-Hes soil-water profiles, satellite vs prognostic LAI at BE-Vie, the
# FR-Aqui soil-moisture station (the BMI couplings are in the bmi_coupling_study notebook).

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about 20 s on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/coupled_study` (default
# `experiments/output/notebooks/coupled_study` in the repository). The same run from a shell:
# `python -m experiments.coupled_study --quick --out <folder>`.

# %%
import dataclasses
import json
import os
import sys
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "experiments" / "__init__.py").exists())
sys.path.insert(0, str(ROOT))
from experiments import coupled_study as study  # noqa: E402

QUICK = os.environ.get("ECOFLUX_NOTEBOOK_MODE", "quick") != "full"
OUT = Path(os.environ.get("ECOFLUX_NOTEBOOK_OUT", ROOT / "experiments" / "output" / "notebooks")) / "coupled_study"
argv = (["--quick"] if QUICK else []) + ["--out", str(OUT)]
settings_cls = getattr(study, "Settings", None)
if dataclasses.is_dataclass(settings_cls):
    quick = getattr(settings_cls, "quick", None)
    settings = quick() if QUICK and callable(quick) else settings_cls()
    display(pd.Series(dataclasses.asdict(settings), name="value", dtype=object).to_frame())

# %%
result = study.main(argv)
metrics = json.loads((OUT / "metrics.json").read_text()) if (OUT / "metrics.json").exists() else {}

# %% [markdown]
# ## Figures

# %%
for png in sorted(OUT.glob("*.png")):
    display(Markdown(f"**{png.stem}**"), Image(filename=str(png)))

# %% [markdown]
# ## Report
#
# `REPORT.md` of the run (its figures are shown above); it ends with the study's table of
# expected results: the numbers the quick configuration is expected to give, within the
# stated tolerances.

# %%
report = (OUT / "REPORT.md").read_text()
display(Markdown("\n".join(line for line in report.splitlines() if not line.startswith("!["))))

# %% [markdown]
# ## Numbers
#
# `metrics.json` as a table (one row per number; nested keys joined by `/`), and the
# expected-results check of the quick configuration.

# %%
flat = pd.json_normalize(metrics, sep="/")
display(flat.T.rename(columns={0: "value"}) if len(flat) else "no metrics.json")
if QUICK and hasattr(study, "EXPECTED_QUICK"):
    from experiments.report import expected_table
    display(expected_table(study.EXPECTED_QUICK, metrics))
