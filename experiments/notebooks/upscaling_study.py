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
# # Upscaling tower fluxes: trees, a deep ensemble and a hybrid network -> VPRM
#
# FLUXCOM-style cross-site models of daily NEE, GPP and Reco from meteorology, soil
# moisture, satellite indices (or the Jolly et al. 2005 growing-season index where a tower
# has none) and land cover: LightGBM trees (the FLUXCOM-X baseline; Nelson et al. 2024,
# BG 21, 5079), a deep-ensemble MLP (Lakshminarayanan et al. 2017) and a hybrid in which
# the network predicts VPRM parameters (Mahadevan et al. 2008) that the differentiable
# VPRM turns into fluxes at the hour, trained end to end (Tsai et al. 2021).
#
# What it shows: leave-one-site-out daily R2, RMSE, anomaly R2, annual NEE error and 90 %
# interval coverage for each model on the same folds, per tower and pooled, and the
# CH-Dav JJA anomalies of 2018 and 2022 predicted with those years withheld; and a
# synthetic twin (the coupled model as truth over the Romania Sentinel-2 cube, a few
# "tower" pixels for training) that scores the models' spatial skill where the truth is
# known (maps and scatter of the period totals).

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, `site_metrics.csv`, `drought.csv`, `twin_skill.csv`, PNG figures) go to
# `$ECOFLUX_NOTEBOOK_OUT/upscaling_study` (default
# `experiments/output/notebooks/upscaling_study` in the repository). The same run from a
# shell: `python -m experiments.upscaling_study --quick --out <folder>`.

# %%
from experiments import upscaling_study as study
from experiments.notebook import notebook_run, show_figures, show_numbers, show_report

run = notebook_run(study)

# %% [markdown]
# ## Figures

# %%
show_figures(run);

# %% [markdown]
# ## Report
#
# `REPORT.md` of the run (its figures are shown above): pooled and per-tower skill, the
# drought table and the goals; it ends with the study's table of expected results.

# %%
show_report(run)

# %% [markdown]
# ## Numbers
#
# `metrics.json` as a table (one row per number; nested keys joined by `/`), and the
# expected-results check of the quick configuration.

# %%
show_numbers(run);
