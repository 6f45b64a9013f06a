"""Readers for the real data formats the toolkit ships with.

Every reader returns an :class:`xarray.Dataset` with canonical variable names and a
``units`` attribute on every variable (see :mod:`process_models.units` for the names,
units and the time convention: ``time`` = interval start, local standard time for towers
with ``attrs["utc_offset_hours"]``, UTC for gridded products). Bad input raises
:class:`process_models.units.DataValidationError` naming the file, variable and fix.

=========================== =================================== ==========================
reader                      format                              shipped example
=========================== =================================== ==========================
read_fluxnet2015            FLUXNET2015 / ICOS FULLSET CSV      CH-Cha fixture
read_europe_fluxdata        European Fluxes Database text       FR-Hes 2016
read_reddyproc_text         REddyProc / hesseflux text          DE-Tha 1998
read_diive_parquet          diive (ETH) parquet                 CH-Dav 2013-2022
read_pyrealm_merged         pyrealm merged site CSV             BE-Vie 2014
read_park_falls             VPRMLandSfcModel RData              US-PFa 2005
read_mod09a1                MODIS MOD09A1 netCDF crops          Munich 2022
read_era5_single_levels     ERA5 hourly single-level netCDF     Munich July 2022
read_modis_sites_mod13a1    MOD13A1 site CSV (phenofit/GEE)     10 flux sites 2000-2018
read_modis_lai_fapar_ornl   MCD15A2H ORNL long-format subset    AT-Neu 5x5 px 2002-2022
read_ismn_stm               ISMN CEOP separate files (.stm)     FR-Aqui fraye 2013-2020
read_bigleaf_month          bigleaf FLUXNET2015 month CSV       AT-Neu Jul 2010 (+2)
=========================== =================================== ==========================

The names of the formats (``--format`` of ``ecoflux read``, ``[forcing] reader`` of the BMI
configs) are those of the readers without ``read_``; :data:`FORMATS` holds them with the
detection rules (:func:`detect_format`, :func:`read`; see :mod:`process_models.io.registry`).

The atmospheric readers of the NOx inversion (TROPOMI NO2 L2, ERA5 boundary-layer winds,
SMARTCARB fields and emissions, the CoCO2 point-source catalogue; read in place from the
installed ``ddeq`` wheel) are in :mod:`process_models.io.tropomi`, outside this registry of
land-flux formats. The OMI/Aura L3 NO2 reader of the Romania crops (:func:`read_omi_no2_l3`)
is in :mod:`process_models.io.omi`, also outside this registry.

Also here: forcing builders (:func:`vprm_site_forcing`: VPRM forcing at a tower from a
tower + satellite pair; :func:`park_falls_vprm_forcing`: US-PFa 2005;
:func:`vprm_grid_forcing`: regional VPRM forcing from MOD09A1 + ERA5;
:func:`munich_vprm_forcing`: Munich July 2022), driver gap filling
(:func:`fill_gaps`), summaries and netCDF output (:func:`summarize`, :func:`write_netcdf`,
:func:`netcdf_safe`) and the delimited-text helpers of the tower readers
(:func:`read_table_text`, :func:`numeric_column`, :func:`parse_yyyymmddhhmm`).
"""
from ._common import data_path
from ._bigleaf import read_bigleaf_month
from ._ismn import read_ismn_static_variables, read_ismn_stm
from ._modis_sites import read_modis_lai_fapar_ornl, read_modis_sites_mod13a1
from ._tower import numeric_column, parse_yyyymmddhhmm, read_table_text
from .diive import read_diive_parquet
from .efd import read_europe_fluxdata, europe_fluxdata_soil_water_profiles
from .era5 import interpolate_to_grid, read_era5_single_levels
from .fluxnet import read_fluxnet2015
from .gap_filling import fill_gaps
from .grid_forcing import munich_vprm_forcing, phenology_land_cover, vprm_grid_forcing
from .modis import read_mod09a1
from .park_falls import read_park_falls, read_vprm_parameter_tables
from .pyrealm import read_pyrealm_merged
from .reddyproc import read_reddyproc_text
from .registry import FORMATS, ReaderFormat, detect_format, format_names, read, reader
from .site_forcing import park_falls_vprm_forcing, satellite_index, vprm_site_forcing
from .summary import dataframe_to_dataset, netcdf_safe, summarize, summarize_dataset, write_netcdf

__all__ = [
    # readers
    "read_diive_parquet", "read_europe_fluxdata", "europe_fluxdata_soil_water_profiles", "read_era5_single_levels", "read_fluxnet2015",
    "read_mod09a1", "read_park_falls", "read_vprm_parameter_tables", "read_pyrealm_merged",
    "read_reddyproc_text", "read_bigleaf_month", "read_ismn_stm", "read_ismn_static_variables",
    "read_modis_sites_mod13a1", "read_modis_lai_fapar_ornl",
    # registry
    "FORMATS", "ReaderFormat", "detect_format", "format_names", "read", "reader",
    # data, forcing, gridding
    "data_path", "interpolate_to_grid", "fill_gaps", "vprm_site_forcing", "park_falls_vprm_forcing",
    "satellite_index", "vprm_grid_forcing", "munich_vprm_forcing", "phenology_land_cover",
    # summaries and output
    "summarize", "summarize_dataset", "netcdf_safe", "dataframe_to_dataset", "write_netcdf",
    # delimited-text helpers
    "read_table_text", "numeric_column", "parse_yyyymmddhhmm",
]
