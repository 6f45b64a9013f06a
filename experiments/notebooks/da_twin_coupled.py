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
# # Twin experiment: recover hidden coupled-model parameters with an ETKF
#
# Joint state-parameter estimation (state augmentation; Anderson 2001, Mon. Wea. Rev. 129,
# 2884) with the ensemble transform Kalman filter (Bishop et al. 2001, Mon. Wea. Rev. 129,
# 420; Hunt et al. 2007, Physica D 230, 112) and the coupled model at CH-Dav: synthetic NEE
# with the heteroscedastic Laplace random error of forest towers (Richardson et al. 2006),
# top-layer soil water and satellite-like LAI from a truth run with three hidden parameters.
#
# What it shows: whether the filter recovers Vcmax25, the Medlyn g1 and the heterotrophic
# respiration rate within its 90 % intervals, and the analysed fluxes and soil water; and a
# particle filter (bootstrap proposal, systematic resampling at N_eff <= N/2, Liu & West
# 2001 kernel shrinkage on the parameters) on the same truth and observations, scored like
# the ETKF (RMSE, spread, 90 % interval coverage) with its effective-sample-size history
# (figure `pf_vs_etkf.png`).

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/da_twin_coupled` (default
# `experiments/output/notebooks/da_twin_coupled` in the repository). The same run from a shell:
# `python -m experiments.da_twin_coupled --quick --out <folder>`.

# %%
from experiments import da_twin_coupled as study
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
