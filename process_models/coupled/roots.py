"""Root profile, layer water stress, the canopy water-stress factor and root water uptake.

Root profile (Jackson et al. 1996, Oecologia 108, 389-411): the cumulative root fraction
above depth d (cm) is ``Y(d) = 1 - beta**d``; layer i between depths d_top and d_bot gets
``r_i = beta**d_top - beta**d_bot``, renormalised over the modelled profile.

Layer stress (CLM4.5, Oleson et al. 2013, eq. 8.23; the CLM "beta_t" soil-moisture stress
factor)::

    w_i = clip((psi_close - psi_i) / (psi_close - psi_open), 0, 1)

with psi_i the Campbell matric head of layer i. The canopy water-stress factor is
``beta_t = sum_i r_i w_i`` in [0, 1]; the canopy multiplies Vcmax by it
(``canopy_fluxes(..., water_stress=beta_t)``).

Root water uptake (transpiration) distributes the canopy's transpiration demand T
(already reduced through Vcmax -> gs) by root fraction x availability::

    S_i = T r_i w_i / sum_j r_j w_j,     then S_i <= water above theta_res (smooth cap)
"""
from __future__ import annotations

import jax.numpy as jnp

from .params import RootParams, SoilParams
from .soil_water import layer_geometry, matric_head

JACKSON_BETA = {
    "boreal_forest": 0.943, "crops": 0.961, "desert": 0.975, "sclerophyllous_shrubs": 0.964,
    "temperate_coniferous_forest": 0.976, "temperate_deciduous_forest": 0.966,
    "temperate_grassland": 0.943, "tropical_deciduous_forest": 0.961,
    "tropical_evergreen_forest": 0.962, "tropical_grassland_savanna": 0.972, "tundra": 0.914,
}
"""Jackson et al. (1996) Table 1 biome values of beta (depth in cm)."""


def root_fractions(roots: RootParams, layer_thickness):
    """Root fraction per layer (sums to 1), shape (n_layers,). Units: 1."""
    dz, top, _, _ = layer_geometry(layer_thickness)
    beta = jnp.asarray(roots.root_beta)
    d_top = 100.0 * top.astype(beta.dtype)
    d_bot = 100.0 * (top + dz).astype(beta.dtype)
    r = beta ** d_top - beta ** d_bot
    return r / jnp.sum(r, axis=-1, keepdims=True)


def layer_stress(theta, soil: SoilParams, roots: RootParams):
    """CLM4.5 layer wilting factor w_i in [0, 1] (1 = no stress), shape (n_layers,)."""
    psi = matric_head(theta, soil)
    return jnp.clip((roots.psi_close - psi) / (roots.psi_close - roots.psi_open), 0.0, 1.0)


def water_stress_factor(theta, soil: SoilParams, roots: RootParams, layer_thickness):
    """Root-weighted stress beta_t = sum r_i w_i and the per-layer weights r_i w_i."""
    weights = root_fractions(roots, layer_thickness) * layer_stress(theta, soil, roots)
    return jnp.sum(weights, axis=-1), weights


def uptake_demand(transpiration_demand, weights, eps: float = 1e-12):
    """Distribute a transpiration demand (mm per step) over layers by root fraction x
    availability ``weights`` (r_i w_i). With no available water anywhere (all weights 0)
    the demand goes by ``eps``-regularised weights and is then removed by the sink cap."""
    w = weights + eps
    return transpiration_demand * w / jnp.sum(w, axis=-1, keepdims=True)
