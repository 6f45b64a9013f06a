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
# # Bayesian calibration of VPRM against flux towers
#
# VPRM (Mahadevan et al. 2008, Global Biogeochem. Cycles 22, GB2005) calibrated with NumPyro:
# NUTS (Hoffman & Gelman 2014, JMLR 15, 1593) single-site with temporal cross-validation,
# and a hierarchical multi-site model (Kuppel et al. 2012, Biogeosciences 9, 3757). The
# likelihood uses the flux-magnitude random error (Richardson et al. 2006, Agric. For.
# Meteorol. 136, 1) with an AR(1) model error (Schoups & Vrugt 2010, Water Resour. Res.
# 46, W10531).
#
# What it shows (quick: stochastic variational inference at US-PFa only): posterior
# parameters against the Mahadevan et al. (2008) priors, and the fit to tower NEE.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/calibration_vprm` (default
# `experiments/output/notebooks/calibration_vprm` in the repository). The same run from a shell:
# `python -m experiments.calibration_vprm --quick --out <folder>`.

# %%
from experiments import calibration_vprm as study
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
