"""Parameter, state, forcing and output pytrees of the coupled model.

Composition (see :mod:`process_models.coupled` for the equations)::

    CoupledParams
      leaf:   LeafParams     (leaf biochemistry, stomata; process_models.coupled.leaf)
      canopy: CanopyParams   (radiation, aerodynamics, SIF; process_models.coupled.canopy)
      soil:   SoilParams     (Campbell hydraulics, infiltration, soil evaporation, snow)
      roots:  RootParams     (root profile, CLM-style water stress)
      carbon: CarbonParams   (allocation, turnover, respiration, SLA)
      layer_thickness, pft, soil_texture, n_substeps, bottom_boundary   (static)

Layer axis
----------
Soil layers are the **last** axis of every per-layer array (layer 0 at the surface).
Layer thicknesses are a static tuple (metres), so changing them recompiles. The
default, :data:`DEFAULT_LAYERS`, has 8 layers to 2.0 m.
"""
from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import struct

DEFAULT_LAYERS = (0.05, 0.10, 0.15, 0.20, 0.25, 0.35, 0.40, 0.50)
"""Default soil layer thicknesses (m), surface to bottom; total 2.0 m."""

G_C_PER_UMOL_CO2 = 12.011e-6
"""Grams of carbon per micromole of CO2 (molar mass of C, 12.011 g mol-1)."""


@struct.dataclass
class SoilParams:
    """Campbell (1974) soil hydraulics with Clapp & Hornberger (1978) texture classes,
    infiltration, soil evaporation and a degree-day snow pack.

        psi(theta) = psi_sat (theta / theta_sat) ** (-b)          (Campbell 1974, eq. 2)
        K(theta)   = K_sat  (theta / theta_sat) ** (2 b + 3)      (Campbell 1974, eq. 11)

    Scalars (uniform profile) or arrays of shape ``(n_layers,)`` (layered soil).
    """

    b: jax.Array
    """Campbell pore-size exponent. Units: 1. Range (2, 15)."""
    psi_sat: jax.Array
    """Air-entry (saturated) matric head, negative. Units: m (of water). Range (-1, -0.03)."""
    k_sat: jax.Array
    """Saturated hydraulic conductivity. Units: m s-1. Range (1e-7, 3e-4)."""
    theta_sat: jax.Array
    """Saturated volumetric water content (porosity). Units: m3 m-3. Range (0.3, 0.6)."""
    theta_res: jax.Array
    """Residual (air-dry) water content, lower bound of every layer (Rawls et al. 1982).
    Units: m3 m-3. Range (0.005, 0.12)."""
    soil_resistance_scale: jax.Array = 1.0
    """Multiplier of the Sellers et al. (1992) soil surface resistance (1 = published form).
    Units: 1. Range (0.3, 5)."""
    snow_temperature: jax.Array = 0.0
    """Air temperature at which half of the precipitation falls as snow. Units: degC."""
    degree_day_factor: jax.Array = 3.0
    """Snow melt per degree above 0 degC (Hock 2003: 2.5-6 for snow). Units: mm degC-1 d-1."""


@struct.dataclass
class RootParams:
    """Root profile (Jackson et al. 1996) and CLM-style water stress (Oleson et al. 2013,
    Technical Description of CLM4.5, NCAR/TN-503+STR, sect. 8.4)."""

    root_beta: jax.Array
    """Jackson et al. (1996) beta: cumulative root fraction above depth d (cm) is
    1 - beta**d. Units: 1. Range (0.90, 0.99)."""
    psi_open: jax.Array
    """Soil matric head above which stomata are fully open (CLM smpso). Units: m. Negative."""
    psi_close: jax.Array
    """Soil matric head below which stomata are fully closed (CLM smpsc). Units: m. Negative."""


@struct.dataclass
class CarbonParams:
    """CASA-like carbon pools (Potter et al. 1993; Randerson et al. 1996): allocation,
    turnover, Lloyd & Taylor (1994) decomposition, maintenance + growth respiration
    (Ryan 1991), leaf area from the leaf pool via SLA."""

    alloc_leaf: jax.Array
    """Fraction of positive NPP allocated to leaves. Units: 1. Range (0.1, 0.5)."""
    alloc_wood: jax.Array
    """Fraction of positive NPP allocated to wood (roots get 1 - leaf - wood). Units: 1.
    Range (0, 0.5)."""
    tau_leaf: jax.Array
    """Leaf turnover time (leaf longevity). Units: yr."""
    tau_wood: jax.Array
    """Wood turnover time. Units: yr."""
    tau_root: jax.Array
    """Fine-root turnover time. Units: yr."""
    tau_litter: jax.Array
    """Litter turnover time at 10 degC and optimal moisture. Units: yr."""
    tau_soil_fast: jax.Array
    """Fast soil-carbon turnover time at 10 degC and optimal moisture. Units: yr."""
    tau_soil_slow: jax.Array
    """Slow soil-carbon turnover time at 10 degC and optimal moisture. Units: yr."""
    eff_litter: jax.Array
    """Fraction of decomposed litter carbon that becomes fast soil carbon (rest respired). Units: 1."""
    eff_fast: jax.Array
    """Fraction of decomposed fast soil carbon that becomes slow soil carbon. Units: 1."""
    e0: jax.Array
    """Lloyd & Taylor (1994) activation-energy parameter E0. Units: K (308.56)."""
    rm_wood: jax.Array
    """Wood maintenance respiration rate at 20 degC (live sapwood share folded in). Units: yr-1."""
    rm_root: jax.Array
    """Fine-root maintenance respiration rate at 20 degC. Units: yr-1."""
    q10_maintenance: jax.Array
    """Q10 of maintenance respiration (Ryan 1991). Units: 1."""
    growth_resp_frac: jax.Array
    """Growth respiration as a fraction of GPP - Rm when positive (Ryan 1991: 0.25). Units: 1."""
    sla: jax.Array
    """Specific leaf area per carbon. Units: m2 gC-1 (CLM4.5 slatop)."""
    initial_lai: jax.Array
    """Leaf area index of the analytic steady state used by :func:`initial_state`. Units: m2 m-2."""
    soil_temperature_tau: jax.Array = 5.0
    """E-folding time of the soil-temperature proxy (running mean of air temperature). Units: d."""


@struct.dataclass
class CoupledParams:
    """All parameters of the coupled model (a frozen pytree; static config in the
    non-pytree fields)."""

    leaf: Any
    """:class:`process_models.coupled.leaf.LeafParams`."""
    canopy: Any
    """:class:`process_models.coupled.canopy.CanopyParams`."""
    soil: SoilParams
    roots: RootParams
    carbon: CarbonParams
    layer_thickness: tuple = struct.field(pytree_node=False, default=DEFAULT_LAYERS)
    """Soil layer thicknesses, surface first. Units: m. Static."""
    pft: str = struct.field(pytree_node=False, default="ENF")
    """Plant functional type the defaults came from. Static (informative)."""
    soil_texture: str = struct.field(pytree_node=False, default="loam")
    """Soil texture class the defaults came from. Static (informative)."""
    n_substeps: int = struct.field(pytree_node=False, default=2)
    """Richards sub-steps per model step (each a linearised backward-Euler step). Static."""
    bottom_boundary: str = struct.field(pytree_node=False, default="free_drainage")
    """'free_drainage' (unit gradient, flux = K(theta_bottom)) or 'no_flux'. Static."""

    @property
    def n_layers(self) -> int:
        return len(self.layer_thickness)


@struct.dataclass
class CarbonPools:
    """Carbon pools. Units: g C m-2 (scalars per site/member)."""

    leaf: jax.Array
    wood: jax.Array
    root: jax.Array
    litter: jax.Array
    soil_fast: jax.Array
    soil_slow: jax.Array

    def total(self):
        return self.leaf + self.wood + self.root + self.litter + self.soil_fast + self.soil_slow


@struct.dataclass
class CoupledState:
    """Prognostic state carried by ``lax.scan``."""

    soil_water_content: jax.Array
    """Volumetric water content per layer, shape (n_layers,). Units: m3 m-3."""
    snow_water_equivalent: jax.Array
    """Snow pack. Units: mm (kg m-2)."""
    soil_temperature: jax.Array
    """Soil-temperature proxy: running mean of air temperature. Units: degC."""
    carbon: CarbonPools
    """Carbon pools. Units: g C m-2."""
    canopy_water: Optional[jax.Array] = None
    """Water held on leaves and stems (interception store). Units: mm. ``None`` (older
    callers) is read as 0 by :func:`process_models.coupled.model.step`."""
    acclimation_temperature: Optional[jax.Array] = None
    """Makela et al. (2004) delayed temperature S of the cold-season acclimation. Units: degC.
    ``None`` is read as ``soil_temperature`` (also a running mean of air temperature)."""


@struct.dataclass
class CoupledForcing:
    """Meteorological forcing, time-major (leading axis = time steps of ``dt_seconds``).

    Canonical units (``process_models.units``). ``precipitation`` is the amount over the
    step, interval-start time stamps. ``lai`` is optional: ``None`` -> leaf area from the
    leaf carbon pool (LAI = SLA x C_leaf).
    """

    air_temperature: jax.Array
    """Units: degC."""
    shortwave_in: jax.Array
    """Incoming shortwave radiation. Units: W m-2."""
    vpd: jax.Array
    """Vapour pressure deficit. Units: hPa."""
    precipitation: jax.Array
    """Precipitation over the step. Units: mm (per step)."""
    air_pressure: jax.Array
    """Units: kPa."""
    co2: jax.Array
    """CO2 mole fraction. Units: umol mol-1."""
    wind_speed: jax.Array
    """Units: m s-1."""
    cos_zenith: jax.Array
    """Cosine of the solar zenith angle at the middle of the step. Units: 1."""
    lai: Optional[jax.Array] = None
    """Leaf area index (optional forcing). Units: m2 m-2."""
    dt_seconds: float = struct.field(pytree_node=False, default=1800.0)
    """Step length. Units: s. Static."""

    @property
    def n_steps(self) -> int:
        return int(jnp.shape(self.air_temperature)[0])


@struct.dataclass
class CoupledOutputs:
    """Diagnostics per time step (time-major). Sign convention: GPP >= 0, Reco >= 0,
    NEE = Reco - GPP (positive = source)."""

    gpp: jax.Array
    """Gross primary production. Units: umol m-2 s-1."""
    reco: jax.Array
    """Ecosystem respiration Ra + Rh. Units: umol m-2 s-1."""
    nee: jax.Array
    """Net ecosystem exchange Reco - GPP. Units: umol m-2 s-1."""
    ra: jax.Array
    """Autotrophic respiration. Units: umol m-2 s-1."""
    rh: jax.Array
    """Heterotrophic respiration. Units: umol m-2 s-1."""
    et: jax.Array
    """Evapotranspiration (transpiration + soil evaporation + interception evaporation).
    Units: mm per step."""
    transpiration: jax.Array
    """Root water uptake = transpiration. Units: mm per step."""
    soil_evaporation: jax.Array
    """Units: mm per step."""
    runoff: jax.Array
    """Surface runoff (infiltration excess + saturation excess). Units: mm per step."""
    drainage: jax.Array
    """Drainage through the bottom of the profile. Units: mm per step."""
    le: jax.Array
    """Latent heat flux lambda * ET. Units: W m-2."""
    soil_water_content: jax.Array
    """Volumetric water content per layer at the end of the step, shape (..., n_layers). Units: m3 m-3."""
    water_stress: jax.Array
    """Root-weighted water-stress factor applied to Vcmax. Units: 1."""
    lai: jax.Array
    """Leaf area index used in the step. Units: m2 m-2."""
    sif: jax.Array
    """Solar-induced fluorescence (unit as returned by the canopy model)."""
    snow_water_equivalent: jax.Array
    """Snow pack at the end of the step. Units: mm."""
    total_carbon: jax.Array
    """Sum of all carbon pools at the end of the step. Units: g C m-2."""
    interception_evaporation: Optional[jax.Array] = None
    """Evaporation of intercepted water from the wet canopy (part of ``et``). Units: mm per step."""
    canopy_water: Optional[jax.Array] = None
    """Canopy interception store at the end of the step. Units: mm."""
    acclimation_factor: Optional[jax.Array] = None
    """Cold-season capacity factor f_S (Makela et al. 2004) multiplying Vcmax. Units: 1."""


OUTPUT_UNITS = {
    "gpp": "umol m-2 s-1", "reco": "umol m-2 s-1", "nee": "umol m-2 s-1", "ra": "umol m-2 s-1",
    "rh": "umol m-2 s-1", "et": "mm", "transpiration": "mm", "soil_evaporation": "mm",
    "runoff": "mm", "drainage": "mm", "le": "W m-2", "soil_water_content": "m3 m-3",
    "water_stress": "1", "lai": "m2 m-2", "sif": "W m-2 sr-1 um-1", "snow_water_equivalent": "mm",
    "total_carbon": "g m-2", "interception_evaporation": "mm", "canopy_water": "mm",
    "acclimation_factor": "1",
}
"""UDUNITS strings of the :class:`CoupledOutputs` fields (water fluxes per model step)."""
