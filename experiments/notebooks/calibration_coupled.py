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
# # Bayesian calibration of the coupled model at CH-Dav and FR-Hes
#
# Six parameters of the coupled soil-moisture / photosynthesis model (Vcmax25, the Medlyn
# et al. 2011 slope g1, specific leaf area, growth and root maintenance respiration, the
# root closing potential) calibrated against daily means of measured NEE and LE, with the
# flux-magnitude random error (Richardson et al. 2006, Agric. For. Meteorol. 136, 1) plus a
# calibrated model discrepancy (Gaussian, close to maximum likelihood for these errors:
# Lasslop et al. 2008, Biogeosciences 5, 1311), and temporal cross-validation.
#
# What it shows: the parameter sensitivity used to choose the parameters, posterior
# estimates, and the skill before and after calibration on held-out periods.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a few minutes on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/calibration_coupled` (default
# `experiments/output/notebooks/calibration_coupled` in the repository). The same run from a shell:
# `python -m experiments.calibration_coupled --quick --out <folder>`.

# %%
from experiments import calibration_coupled as study
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
