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
# # The coupled soil-moisture / photosynthesis model at European towers
#
# A differentiable land-surface column: FvCB photosynthesis (Farquhar et al. 1980) with
# Medlyn et al. (2011) stomata on sun/shade big leaves (de Pury & Farquhar 1997), a
# Richards-equation soil with Campbell (1974) / Clapp & Hornberger (1978) hydraulics, CLM4.5
# root water stress (Oleson et al. 2013) and CASA-like carbon pools, run with default
# parameters per plant functional type (no calibration).
#
# What it shows: skill (R2, RMSE, bias) for GPP, NEE, LE and soil water at CH-Dav (the quick
# run: May-August 2018, the drought summer); the full run adds the 2013-2022 drought
# response at CH-Dav, FR-Hes soil-water profiles, satellite vs prognostic LAI at BE-Vie, the
# FR-Aqui soil-moisture station (the BMI couplings are in the bmi_coupling_study notebook).

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about 20 s on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/coupled_study` (default
# `experiments/output/notebooks/coupled_study` in the repository). The same run from a shell:
# `python -m experiments.coupled_study --quick --out <folder>`.

# %%
from experiments import coupled_study as study
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
