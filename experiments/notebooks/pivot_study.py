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
# # A daily 10 m pivot of multi-sensor satellite data: physical and learned
#
# One set of common variables (NDVI, EVI, LAI, FAPAR, each with an sd) per 10 m pixel and
# day, built two ways from the Romania Sentinel-2 L2A cube, a synthetic 300 m daily coarse
# proxy and a synthetic Sentinel-1 water-cloud backscatter: a two-level multi-resolution
# Kalman smoother (STARFM-like, with a likelihood) and a masked autoencoder in Flax NNX,
# each informing the other (the learned model regularised by the physical pivot; the
# coarse operator corrected by a learned residual).
#
# What it shows: RMSE and 90 % coverage on withheld S2 dates (25 %, at random and in
# 30-60-day blocks) for linear, Whittaker, Kalman, multi-resolution Kalman and learned
# pivots (the learned sd calibrated on validation dates disjoint from the withheld ones);
# maps of the pivot and its sd; whether the pivot improves a VPRM NEE fit at the US-PFa
# tower over raw MODIS EVI; and the learned and multires pivots of EVI and LSWI as the
# regional map engine's satellite input (`run_map(config, pivot=...)`), their NEE totals
# against the engine's own Kalman pivot.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (a few minutes on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/pivot_study` (default
# `experiments/output/notebooks/pivot_study` in the repository). The same run from a shell:
# `python -m experiments.pivot_study --quick --out <folder>`.

# %%
from experiments import pivot_study as study
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
