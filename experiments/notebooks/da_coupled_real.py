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
# # Real-data ensemble assimilation with the coupled model at CH-Dav
#
# Daily tower NEE and soil water at 0.15 m assimilated into the coupled model at CH-Dav in
# the 2018 drought year with the ETKF (Bishop et al. 2001; Hunt et al. 2007), jointly
# estimating four parameter multipliers by state augmentation (Anderson 2001) with
# relaxation to prior spread (Whitaker & Hamill 2012, Mon. Wea. Rev. 140, 3078); NEE errors
# from the flux-magnitude model (Richardson et al. 2006, Agric. For. Meteorol. 136, 1).
#
# What it shows: analysed vs free-run NEE, GPP and soil water against the tower, the
# parameter trajectories, and the skill on withheld observations.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures) go to `$ECOFLUX_NOTEBOOK_OUT/da_coupled_real` (default
# `experiments/output/notebooks/da_coupled_real` in the repository). The same run from a shell:
# `python -m experiments.da_coupled_real --quick --out <folder>`.

# %%
from experiments import da_coupled_real as study
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
