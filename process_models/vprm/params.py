"""Parameter, rule, forcing and output pytrees of VPRM.

Class axis
----------
All per-class arrays have the vegetation-class axis **last** (shape ``(..., C)``), in
the order of :attr:`ClassRules.class_ids`. The class numbering is pyVPRM's
(Copernicus/ESA-WorldCover configs): 1 evergreen forest, 2 deciduous forest, 3 mixed
forest, 4 shrubland, 5 savanna, 6 cropland, 7 grassland, 8 other (no flux),
9 wetland.

Light convention (pyVPRM, Mahadevan et al. 2008): the light input is PAR in
``umol m-2 s-1`` (PAR = SW / 0.505 when only shortwave is known), ``lam > 0``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp
from flax import struct

CLASS_NAMES = {
    1: "evergreen forest", 2: "deciduous forest", 3: "mixed forest", 4: "shrubland",
    5: "savanna", 6: "cropland", 7: "grassland", 8: "other (no flux)", 9: "wetland",
}


@struct.dataclass
class ClassRules:
    """Class-specific switches of pyVPRM 6.0.1 ``vprm_base_model``, as 0/1 masks so
    that one compiled function serves every land-cover mix (no Python branching).
    """

    pscale_always_one: jax.Array
    """1 where Pscale = 1 at all times (evergreen, class 1). Units: 1. Shape (C,)."""
    pscale_always_lswi: jax.Array
    """1 where Pscale = (1 + LSWI)/2 at all times (savanna 5, grassland 7). Units: 1."""
    xeric: jax.Array
    """1 where Wscale uses the xeric form (LSWI - LSWImin)/(LSWImax - LSWImin)
    (shrubland 4, grassland 7). Units: 1."""
    has_flux: jax.Array
    """0 for classes that give no flux (0, 8, and classes without parameters). Units: 1."""
    class_ids: tuple = struct.field(pytree_node=False, default=())
    """Vegetation class numbers along the class axis (static)."""

    @classmethod
    def pyvprm(cls, class_ids, *, no_flux=(0, 8), dtype=jnp.float64):
        """The pyVPRM 6.0.1 rules for the given class numbers."""
        ids = tuple(int(c) for c in class_ids)
        m = lambda s: jnp.asarray([1.0 if c in s else 0.0 for c in ids], dtype=dtype)
        return cls(pscale_always_one=m({1}), pscale_always_lswi=m({5, 7}), xeric=m({4, 7}),
                   has_flux=1.0 - m(set(no_flux)), class_ids=ids)


@struct.dataclass
class VPRMParams:
    """VPRM parameters per vegetation class (arrays of shape ``(..., C)``).

    GPP_c = lam * Tscale * Wscale * Pscale * EVI * PAR / (1 + PAR / par0)   (Mahadevan 2008, eq. 1)
    Reco_c = alpha * max(T, tlow) + beta                                    (Mahadevan 2008, eq. 5)
    """

    lam: jax.Array
    """Light-use efficiency at low light (initial quantum yield). Units: umol umol-1
    (mol CO2 per mol PAR photons). Prior range (0.01, 0.6)."""
    par0: jax.Array
    """Half-saturation PAR of the light response. Units: umol m-2 s-1. Range (50, 5000)."""
    alpha: jax.Array
    """Temperature slope of ecosystem respiration. Units: umol m-2 s-1 degC-1. Range (0, 1)."""
    beta: jax.Array
    """Respiration at 0 degC (intercept). Units: umol m-2 s-1. Range (-5, 10)."""
    tmin: jax.Array
    """Minimum temperature for photosynthesis. Units: degC."""
    topt: jax.Array
    """Optimum temperature for photosynthesis. Units: degC."""
    tmax: jax.Array
    """Maximum temperature for photosynthesis. Units: degC."""
    tlow: jax.Array
    """Floor of the temperature used for respiration (winter soil respiration). Units: degC."""
    rules: ClassRules
    """Class switches (not calibrated)."""
    # --- optional: soil-moisture water stress (enhanced VPRM) ---
    theta_wilt: Optional[jax.Array] = None
    """Soil water content at which water stress is complete (Wscale_sm = 0). Units: m3 m-3."""
    theta_crit: Optional[jax.Array] = None
    """Soil water content above which there is no water stress (Wscale_sm = 1). Units: m3 m-3."""
    # --- optional: Gourdji et al. (2022) respiration ---
    gourdji: Optional["GourdjiParams"] = None

    @property
    def n_classes(self) -> int:
        return len(self.rules.class_ids)


@struct.dataclass
class GourdjiParams:
    """Coefficients of the Gourdji et al. (2022) respiration model per class (shape (C,)).

    Reco = beta + a1 T' + a2 T'^2 + gamma EVI + th1 W + th2 W T' + th3 W T'^2,
    T' = T for T >= tcrit, else tcrit - tmult (tcrit - T);  W = (LSWI - LSWImin)/(LSWImax - LSWImin).
    """

    beta: jax.Array
    """Intercept. Units: umol m-2 s-1."""
    a1: jax.Array
    """Linear temperature coefficient. Units: umol m-2 s-1 degC-1."""
    a2: jax.Array
    """Quadratic temperature coefficient. Units: umol m-2 s-1 degC-2."""
    gamma: jax.Array
    """Greenness (EVI) coefficient: foliage-dependent respiration. Units: umol m-2 s-1."""
    th1: jax.Array
    """Water-index coefficient. Units: umol m-2 s-1."""
    th2: jax.Array
    """Water x temperature coefficient. Units: umol m-2 s-1 degC-1."""
    th3: jax.Array
    """Water x temperature^2 coefficient. Units: umol m-2 s-1 degC-2."""
    tcrit: jax.Array
    """Temperature below which air temperature is damped. Units: degC."""
    tmult: jax.Array
    """Damping factor of cold temperatures, in [0, 1]. Units: 1."""


@struct.dataclass
class VPRMForcing:
    """Inputs of VPRM. Time-varying fields have any leading shape ``S`` (e.g. (time,),
    (time, y, x)); per-pixel statistics broadcast against ``S``; ``class_fractions``
    has shape ``S' + (C,)`` with ``S'`` broadcastable to ``S``.
    """

    temperature: jax.Array
    """2 m air temperature. Units: degC."""
    par: jax.Array
    """Photosynthetically active radiation (PPFD). Units: umol m-2 s-1 (PAR = SW/0.505)."""
    evi: jax.Array
    """Greenness index: EVI (default), or NIRv / kNDVI with parameters fitted for it. Units: 1."""
    lswi: jax.Array
    """Land surface water index. Units: 1."""
    evi_threshold: jax.Array
    """Pscale threshold EVImin + 0.55 (EVImax - EVImin) (per pixel). Units: 1."""
    lswi_min: jax.Array
    """Minimum LSWI over the growing season (EVI > threshold). Units: 1."""
    lswi_max: jax.Array
    """Maximum LSWI over the growing season (EVI > threshold). Units: 1."""
    class_fractions: jax.Array
    """Land-cover fraction of each class in the pixel. Units: 1. Shape S' + (C,)."""
    soil_water_content: Optional[jax.Array] = None
    """Root-zone volumetric soil water content (water_stress='soil_moisture'). Units: m3 m-3."""
    fapar: Optional[jax.Array] = None
    """Fraction of absorbed PAR (light='fapar' variant). Units: 1."""


@struct.dataclass
class VPRMOutputs:
    """Fluxes (sign convention: GPP >= 0, Reco >= 0, NEE = Reco - GPP). Units: umol m-2 s-1."""

    gpp: jax.Array
    reco: jax.Array
    nee: jax.Array


@dataclass(frozen=True)
class VPRMOptions:
    """Static settings of a VPRM run (hashable, so they are compile-time constants).

    Attributes
    ----------
    mode : "exact" or "smooth"
        ``exact``: the hard switches of pyVPRM. ``smooth``: softplus/sigmoid twins
        (width = base width / ``sharpness``), differentiable everywhere.
    sharpness : float
        Multiplies the inverse widths of the smooth switches; ``exact`` is the limit
        ``sharpness -> inf``. Base widths: 1 degC for temperature gates, 0.02 for index
        gates and clips, 0.05 umol m-2 s-1 for the respiration floor.
    pyvprm_compat : bool
        True reproduces pyVPRM 6.0.1 bit-for-bit, including its unclipped Wscale
        (negative GPP for xeric classes when LSWI < LSWImin) and no clamp on EVI.
        False (default) clips Wscale and Pscale to [0, 1] and EVI to >= 0.
    respiration : "linear" (Mahadevan 2008) or "gourdji" (Gourdji et al. 2022)
    water_stress : "lswi" (default), "soil_moisture", or "lswi_soil_moisture" (product)
    light : "evi" (Pscale * EVI, default) or "fapar" (fAPAR replaces Pscale * EVI)
    respiration_temperature_floor : "tlow" (pyVPRM grid path) or "tmin" (pyVPRM site path)
    """

    mode: str = "exact"
    sharpness: float = 1.0
    pyvprm_compat: bool = False
    respiration: str = "linear"
    water_stress: str = "lswi"
    light: str = "evi"
    respiration_temperature_floor: str = "tlow"

    def __post_init__(self):
        allowed = {"mode": ("exact", "smooth"), "respiration": ("linear", "gourdji"),
                   "water_stress": ("lswi", "soil_moisture", "lswi_soil_moisture"),
                   "light": ("evi", "fapar"), "respiration_temperature_floor": ("tlow", "tmin")}
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(f"VPRMOptions.{name}={getattr(self, name)!r}; choose one of {values}.")
        if not self.sharpness > 0:
            raise ValueError(f"VPRMOptions.sharpness must be > 0, got {self.sharpness}.")
        if self.pyvprm_compat and self.mode != "exact":
            raise ValueError("pyvprm_compat=True requires mode='exact'.")
