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
# # Multi-sensor Kalman fusion of MODIS index series
#
# Daily gap-filled vegetation-index series with uncertainty from several sensors: a Kalman /
# Rauch-Tung-Striebel smoother with a per-sensor observation operator `y = a + b x + v` and
# maximum-likelihood parameters (the design of Sedano et al. 2014, Remote Sens. 6, 12381),
# against linear interpolation, Whittaker smoothing (Eilers 2003, Anal. Chem. 75, 3631),
# Savitzky-Golay and pyVPRM's random-walk smoother.
#
# What it shows: RMSE and 90 % interval coverage on withheld observations (25 %, at random
# and in 30-60-day blocks) for MOD13Q1 + MCD43A4 EVI at Park Falls and MOD09A1 pixels over
# Munich, and the fitted sensor bias and gain.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/fusion_study` (default
# `experiments/output/notebooks/fusion_study` in the repository). The same run from a shell:
# `python -m experiments.fusion_study --quick --out <folder>`.

# %%
from experiments import fusion_study as study
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
