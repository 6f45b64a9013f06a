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
# # Flux-tower processing: u*, gap filling, partitioning, random error
#
# From raw half-hourly NEE to gap-filled, partitioned NEE with an observation error:
# MAD despiking and the moving-point u* threshold (Papale et al. 2006, Biogeosciences 3,
# 571), marginal distribution sampling gap filling and night-time partitioning (Reichstein
# et al. 2005, Glob. Change Biol. 11, 1424), day-time partitioning (Lasslop et al. 2010,
# Glob. Change Biol. 16, 187) and the flux-magnitude random error from 24-h paired
# observations (Richardson et al. 2006, Agric. For. Meteorol. 136, 1).
#
# What it shows: agreement with the reference products -- FLUXNET `NEE_f` of DE-Tha 1998
# (shipped with REddyProc), hesseflux's test file, and ETH's REddyProc processing of CH-Dav
# (quick: 2021) -- as R2, bias and RMSE, with fingerprint plots of the filled series.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about 30 s on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/flux_processing_study` (default
# `experiments/output/notebooks/flux_processing_study` in the repository). The same run from a shell:
# `python -m experiments.flux_processing_study --quick --out <folder>`.

# %%
from experiments import flux_processing_study as study
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
