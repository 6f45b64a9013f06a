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
# # NOx emissions from TROPOMI-like NO2: physics baselines, 4D-Var, a U-Net and a VAE
#
# Point-source and domain-total NOx emissions estimated from NO2 column images by the
# flux-divergence method (Beirle et al. 2019, Sci. Adv. 5:eaax9800), the cross-sectional flux
# method, a Gauss-Newton 4D-Var through the differentiable 2-D transport model
# (`process_models.transport`), a SmaAT-UNet-like network (Trebing et al. 2021) and a
# conditional VAE (Sohn et al. 2015) trained on synthetic scenes whose true emissions are known
# (real SMARTCARB winds, real TROPOMI qa/cloud masks, TROPOMI-like noise).
#
# What it shows: point-source MAPE, domain-total bias and 90 % interval coverage of each method
# on the same held-out synthetic scenes, where every method gets an imperfect
# (reanalysis-like) wind and the 4D-Var its own diffusivity (no inverse crime; the
# inverse-crime 4D-Var is reported beside it), and the estimates for the real TROPOMI
# Matimba/Medupi scene (against the CoCO2 catalogue), the SMARTCARB Jänschwalde and Berlin
# plumes (full run; against the shipped true emissions) and the OMI L3 Romania monthly
# columns (steady-state mass balance with a prescribed lifetime; Oltenia power plants
# against CoCO2, Bucharest without a comparable inventory value), with emission maps.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on two cores) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/nox_study` (default
# `experiments/output/notebooks/nox_study` in the repository). The same run from a shell:
# `python -m experiments.nox_study --quick --out <folder>`.

# %%
from experiments import nox_study as study
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
