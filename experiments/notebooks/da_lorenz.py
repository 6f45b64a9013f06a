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
# # Ensemble data assimilation on Lorenz-63 and Lorenz-96
#
# Twin experiments that reproduce published filter benchmarks with `assimilation.ensemble`:
# Lorenz-63 (Lorenz 1963, J. Atmos. Sci. 20, 130) in the set-up of Sakov, Oliver & Bertino
# (2012, Mon. Wea. Rev. 140, 1988) and Lorenz-96 (Lorenz 1996) in the set-up of Sakov & Oke
# (2008, Tellus A 60, 361), as implemented in DAPPER.
#
# What it shows: analysis RMSE and ensemble spread of the ETKF, EnKF, DEnKF, LETKF and the
# regularised particle filter against the literature values.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/da_lorenz` (default
# `experiments/output/notebooks/da_lorenz` in the repository). The same run from a shell:
# `python -m experiments.da_lorenz --quick --out <folder>`.

# %%
from experiments import da_lorenz as study
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
