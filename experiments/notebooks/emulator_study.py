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
# step, so water and carbon close by construction, and a daily flux-form emulator of the
# coupled model (one network call per site-day instead of 48 half-hourly steps; the network
# predicts the day's fluxes, including the water fluxes between soil layers, and the state
# is advanced by exact bookkeeping, so water and carbon close by construction).
# Reference: the STEMMUS-SCOPE emulator of Han et al. (2025, Earth Syst. Sci. Data 17, 7101),
# a random forest.
#
# What it shows: accuracy on held-out parameters and a held-out site (Munich 2022), gradient
# agreement with the process model, speed-up, and free rollouts on held-out years (CH-Dav
# 2020-2022) and, for the daily emulator, a held-out site (FR-Hes 2016). The full run also
# calibrates the coupled model at CH-Dav with the daily emulator: NUTS on the emulator
# posterior, then Pareto-smoothed importance reweighting against the process model
# (`assimilation.calibration.emulated_daily`), with wall times, k-hat, ESS and the bias of the
# emulator posterior.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/emulator_study` (default
# `experiments/output/notebooks/emulator_study` in the repository). The same run from a shell:
# `python -m experiments.emulator_study --quick --out <folder>`.

# %%
from experiments import emulator_study as study
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
