"""Flux-tower processing: from raw half-hourly NEE to gap-filled, partitioned NEE with a
per-record observation error, ready to assimilate.

Pipeline (:func:`process_tower`, one call on a reader Dataset)::

    QC flags / -9999  ->  MAD despiking (Papale 2006)  ->  u* moving-point test with
    bootstrap (Papale 2006; Reichstein 2005)  ->  MDS gap filling (Reichstein 2005)  ->
    random error (similar conditions; flux-magnitude model, Richardson 2006/2008)  ->
    night-time partitioning (Lloyd-Taylor, Reichstein 2005)  ->  day-time partitioning
    (light response with VPD limitation, Lasslop 2010)

Units: NEE, GPP, Reco and errors in umol m-2 s-1 (NEE = Reco - GPP, positive = source);
Rg W m-2, Tair degC, VPD hPa, u* m s-1, E0 K. Settings are frozen dataclasses with the
REddyProc/ONEFlux defaults; each module's docstring gives its equations and papers.

Example::

    from process_models.io import data_path, read_reddyproc_text
    from assimilation.observations.flux import process_tower
    ds = read_reddyproc_text(data_path("de-tha_1996-1998", "Example_DETha98.txt"))
    out = process_tower(ds, n_bootstrap=20)
    out.nee_filled, out.nee_uncertainty, out.gpp_nt, out.ustar_threshold_p50

Window statistics and fits run for all gaps/windows at once in JAX (jitted gathers,
vmapped Levenberg-Marquardt); the discrete bookkeeping (cascade steps, class selection)
is NumPy.
"""
from .gapfill_mds import MDSResult, MDSSettings, mds_cascade, mds_gapfill
from .partition_daytime import (DayTimeResult, DayTimeSettings, fit_light_response,
                                light_response_nee, partition_daytime)
from .partition_nighttime import (NightTimeResult, NightTimeSettings, fit_lloyd_taylor,
                                  lloyd_taylor, partition_nighttime)
from .pipeline import process_tower
from .qc import despike_mad, is_night, select_valid
from .random_error import (FluxMagnitudeModel, fit_flux_magnitude_model, flux_magnitude_sigma,
                           nee_uncertainty, paired_differences, similar_conditions_sd)
from .ustar import (UstarResult, UstarSettings, estimate_ustar_threshold, mpt_threshold,
                    ustar_filter)
from .validation import agreement, daily_agreement, read_tharandt_reference

__all__ = [
    "process_tower",
    "select_valid", "is_night", "despike_mad",
    "UstarSettings", "UstarResult", "mpt_threshold", "estimate_ustar_threshold", "ustar_filter",
    "MDSSettings", "MDSResult", "mds_cascade", "mds_gapfill",
    "lloyd_taylor", "fit_lloyd_taylor", "NightTimeSettings", "NightTimeResult",
    "partition_nighttime",
    "light_response_nee", "fit_light_response", "DayTimeSettings", "DayTimeResult",
    "partition_daytime",
    "FluxMagnitudeModel", "flux_magnitude_sigma", "fit_flux_magnitude_model",
    "paired_differences", "similar_conditions_sd", "nee_uncertainty",
    "agreement", "daily_agreement", "read_tharandt_reference",
]
