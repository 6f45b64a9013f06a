"""Coupled soil-moisture / photosynthesis model in JAX (STEMMUS-SCOPE-like).

A differentiable land-surface column: two-big-leaf canopy photosynthesis and
transpiration on top of a multi-layer Richards-equation soil, with root water uptake,
water stress on Vcmax, a degree-day snow pack and CASA-like carbon pools. One
``step(state, forcing_t, params)`` is scanned over time (``lax.scan``, chunked
``jax.checkpoint`` for reverse mode); ensembles and sites are a ``vmap`` axis.

Processes and modules (equations and citations in each module)
-------------------------------------------------------------
=================== ===================================================================
leaf.py             FvCB C3 (Farquhar et al. 1980; Bernacchi et al. 2001 kinetics, peaked
                    Arrhenius Vcmax/Jmax), Collatz (1992) C4, smooth co-limitation, Medlyn
                    et al. (2011) stomata with the closed-form Ci, leaf respiration
canopy.py           sun/shade big leaves (de Pury & Farquhar 1997), Erbs direct/diffuse split,
                    Penman-Monteith transpiration demand (Monteith 1965; FAO-56), ground energy
radiation.py        solar geometry (Spencer 1971), PAR, longwave
evapotranspiration  Penman-Monteith, psychrometrics, aerodynamic conductance, potential soil
                    evaporation
sif.py              SIF = APAR x Phi_F x escape fraction
soil_water.py       Campbell (1974) psi(theta), K(theta) with Clapp & Hornberger (1978)
                    textures; Richards equation by linearised backward Euler + Thomas solve,
                    Hortonian + saturation-excess runoff, free drainage, soil evaporation by
                    Penman-Monteith with Sellers et al. (1992) surface resistance and a
                    Choudhury & Monteith (1988) within-canopy resistance; degree-day snow (Hock 2003)
roots.py            Jackson et al. (1996) root profile, CLM4.5 layer stress
                    w = clip((psi_c - psi)/(psi_c - psi_o), 0, 1), beta_t = sum r_i w_i
carbon.py           leaf/wood/root/litter/soil-fast/soil-slow pools (CASA-like), Ra = Rm + Rg
                    (Ryan 1991), Rh with Lloyd & Taylor (1994) x CENTURY moisture, LAI = SLA C_leaf
interception.py     canopy interception store (Rutter et al. 1971; CLM4.5 eqs. 7.2-7.11:
                    S = c (L + SAI), f_wet = (W/S)^(2/3), wet evaporation at zero canopy
                    resistance, dry-fraction transpiration) and the Makela et al. (2004)
                    cold-season acclimation f_S = clip((S - X0)/S_max, 0, 1) on Vcmax
model.py            step, initial_state, simulate
tables.py           load_parameters, parameter_table (tables/*.csv with citations)
xarray_api.py       forcing_from_dataset (reader Dataset -> CoupledForcing), run (-> Dataset)
=================== ===================================================================

Budgets (closed to round-off in float64, tested)::

    P = ET + runoff + drainage + d(soil water + snow + canopy water)  [mm]
    ET = transpiration + soil evaporation + interception evaporation
    sum (GPP - Ra - Rh) dt = d(leaf + wood + root + litter + fast + slow)   [g C m-2]
    NEE = Ra + Rh - GPP                                                [umol m-2 s-1, + = source]

Units: fluxes of CO2 in umol m-2 s-1; water fluxes in mm per model step; LE in W m-2;
soil water content in m3 m-3 per layer (8 layers to 2 m by default); LAI m2 m-2.

Usage::

    from process_models.io import read_diive_parquet, data_path
    from process_models.coupled import load_parameters, forcing_from_dataset, simulate
    ds = read_diive_parquet(data_path("ch-dav_2013-2022_diive", "...parquet")).sel(time="2019")
    params = load_parameters("ENF", soil_texture="loam")
    forcing = forcing_from_dataset(ds, latitude=46.815, longitude=9.856)
    out = simulate(params, forcing)            # CoupledOutputs, time-major
"""
from .canopy import CanopyFluxes, CanopyParams, canopy_fluxes
from .leaf import LeafParams
from .model import check_forcing, complete_state, initial_state, simulate, step
from .params import (DEFAULT_LAYERS, OUTPUT_UNITS, CarbonParams, CarbonPools, CoupledForcing,
                     CoupledOutputs, CoupledParams, CoupledState, RootParams, SoilParams)
from .tables import (get_parameter, load_parameters, parameter_table, pfts, set_parameters,
                     soil_textures)
from .xarray_api import forcing_from_dataset, outputs_to_dataset, run
from .interface import CoupledModel  # noqa: E402  (after .tables: no import circle)

__all__ = [
    "CanopyFluxes", "CanopyParams", "CoupledModel", "CarbonParams", "CarbonPools", "CoupledForcing",
    "CoupledOutputs", "CoupledParams", "CoupledState", "DEFAULT_LAYERS", "LeafParams",
    "OUTPUT_UNITS", "RootParams", "SoilParams", "canopy_fluxes", "check_forcing", "complete_state",
    "forcing_from_dataset", "get_parameter", "initial_state", "load_parameters",
    "outputs_to_dataset", "parameter_table", "pfts", "run", "set_parameters", "simulate",
    "soil_textures", "step",
]
