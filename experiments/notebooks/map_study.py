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
# # Regional flux maps with uncertainty from satellite cubes
#
# The map engine (`assimilation.maps`): a satellite cube (Sentinel-2 L2A with its scene
# classification, or MODIS MOD09A1 with its state QA) is cloud-masked, turned into a daily
# pivot of vegetation indices with a standard deviation (a Kalman / Rauch-Tung-Striebel
# smoother, pooled maximum-likelihood parameters), run through VPRM (Mahadevan et al. 2008)
# pixel by pixel with hourly meteorology, and written tile by tile to a Zarr store with CF
# metadata, with per-class and per-region carbon budgets. Tiles run on a dask LocalCluster.
#
# What it shows: hourly NEE/GPP/Reco maps and their uncertainty over the Romania Sentinel-2
# forest cube (20 m), the France series (20 m, no blue band: EVI2) and the Munich MODIS crop
# with ERA5 (500 m), budget tables, and the map
# pixel at the Park Falls tower against the tower's NEE.
#
# The same maps from a shell: `ecoflux map experiments/configs/romania_s2.toml`.

# %% [markdown]
# ## Run the study
#
# The study runs in its quick configuration (about a minute or two on a laptop) unless the
# environment variable `ECOFLUX_NOTEBOOK_MODE` is `full`. Its outputs (`REPORT.md`,
# `metrics.json`, PNG figures, the Zarr stores) go to `$ECOFLUX_NOTEBOOK_OUT/map_study`
# (default `experiments/output/notebooks/map_study` in the repository). The same run from a
# shell: `python -m experiments.map_study --quick --out <folder>`.

# %%
from experiments import map_study as study
from experiments.notebook import notebook_run, show_figures, show_numbers, show_report

run = notebook_run(study)

# %% [markdown]
# ## Figures

# %%
show_figures(run);

# %% [markdown]
# ## The store
#
# The Romania store opened lazily with xarray (dask arrays): hourly fluxes and their sd,
# period totals, the daily pivot, land-cover fractions and the CF grid mapping.

# %%
import xarray as xr

xr.open_zarr(f"{run.out}/romania_s2.zarr", consolidated=False)

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
# expected-results check of the quick configuration.

# %%
show_numbers(run);
