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
# # Neural emulators of VPRM and of the coupled model
#
# Physics-aware Flax emulators that answer the same `simulate(params, forcing)` call as the
# process models: an emulator of VPRM trained on runs driven by real Park Falls forcing over
# a Sobol design of parameters, a generic step emulator of a stateful toy model, and (full
# run) a hybrid emulator of the coupled model whose neural canopy sits inside the model's own
# step, so water and carbon close by construction. Reference: the STEMMUS-SCOPE emulator of
# Han et al. (2025, Earth Syst. Sci. Data 17, 7101), a random forest.
#
# What it shows: accuracy on held-out parameters and a held-out site (Munich 2022), gradient
# agreement with the process model, speed-up, and free rollouts on held-out years.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/emulator_study` (default
# `experiments/output/notebooks/emulator_study` in the repository). The same run from a shell:
# `python -m experiments.emulator_study --quick --out <folder>`.

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
from experiments import emulator_study as study  # noqa: E402

QUICK = os.environ.get("ECOFLUX_NOTEBOOK_MODE", "quick") != "full"
OUT = Path(os.environ.get("ECOFLUX_NOTEBOOK_OUT", ROOT / "experiments" / "output" / "notebooks")) / "emulator_study"
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
