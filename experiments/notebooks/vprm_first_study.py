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
# # VPRM at Park Falls and over Munich with literature parameters
#
# The Vegetation Photosynthesis and Respiration Model (VPRM; Mahadevan et al. 2008, Global
# Biogeochem. Cycles 22, GB2005) computes GPP from light, temperature, EVI and LSWI and a
# linear respiration in temperature. This study runs it, without calibration, with published
# parameter sets (Mahadevan et al. 2008; the pyVPRM MODIS fit of Glauch et al. 2025; MPI-BGC
# EU2007) at the Park Falls tall tower (US-PFa, 2005; tower NEE with MODIS MOD13Q1 EVI and
# MCD43A4 LSWI) and over a Munich MODIS (MOD09A1) / ERA5 grid (July 2022).
#
# What it shows: modelled vs observed NEE at the tower (hourly scatter, daily series, mean
# diurnal cycle per month, R2/RMSE/bias per parameter set) and a regional flux map.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/vprm_first_study` (default
# `experiments/output/notebooks/vprm_first_study` in the repository). The same run from a shell:
# `python -m experiments.vprm_first_study --quick --out <folder>`.

# %%
from experiments import vprm_first_study as study
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
