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
# # BMI couplings, pymt-style
#
# Components that exchange variables through Basic Model Interface calls only (BMI 2.0,
# Hutton et al. 2020): (1) the coupled soil-moisture / photosynthesis model feeds its
# root-zone soil water to VPRM's water stress every half-hour at AT-Neu (July 2010), both
# scored against the tower; (2) the coupled model split into a surface (canopy) component
# and a soil (water and carbon) component, the way STEMMUS-SCOPE couples STEMMUS and SCOPE,
# checked against the single model (they agree to round-off).
#
# What it shows: GPP and NEE skill of both models at AT-Neu, mean diurnal and daily GPP with
# the exchanged soil water, and the split components' NEE and soil water on top of the
# single model's, with the largest differences.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about 30 s on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/bmi_coupling_study` (default
# `experiments/output/notebooks/bmi_coupling_study` in the repository). The same run from a shell:
# `python -m experiments.bmi_coupling_study --quick --out <folder>`.

# %%
from experiments import bmi_coupling_study as study
from experiments.notebook import notebook_run, show_figures, show_numbers, show_report

run = notebook_run(study)

# %% [markdown]
# ## Figures

# %%
show_figures(run);

# %% [markdown]
# ## Report
#
# `REPORT.md` of the run (its figures are shown above); it ends with the study's table of
# expected results: the numbers the quick configuration is expected to give, within the
# stated tolerances.

# %%
show_report(run)

# %% [markdown]
# ## Numbers
#
# `metrics.json` as a table (one row per number; nested keys joined by `/`), and the
# expected-results check of the quick configuration. `run.metrics` holds the same numbers
# for further exploration; the library functions the study calls are named in its report.

# %%
show_numbers(run);
