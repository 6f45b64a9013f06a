"""Leaf biochemistry: FvCB C3 / Collatz C4 photosynthesis coupled to Medlyn stomata.

C3 (Farquhar, von Caemmerer & Berry 1980)::

    A_c = Vcmax (Ci - G*) / (Ci + Km),        Km = Kc (1 + O/Ko)       Rubisco-limited
    A_j = J/4 (Ci - G*) / (Ci + 2 G*)                                   electron-transport-limited
    J   = [a Q + Jmax - sqrt((a Q + Jmax)^2 - 4 theta a Q Jmax)] / (2 theta)   (non-rectangular hyperbola)
    A   = smaller root of theta_a A^2 - (A_c + A_j) A + A_c A_j = 0      (smooth co-limitation)
    A_n = A - Rd

Kinetic constants and their temperature responses are Bernacchi et al. (2001, Plant Cell
Environ. 24:253) in the partial-pressure form used by pyrealm 2.0 (Kc25 = 39.97 Pa,
Ko25 = 27 480 Pa, G*25 = 4.332 Pa at 101.325 kPa; activation energies 79.43, 36.38,
37.83 kJ mol-1); they are converted to mole fractions (umol mol-1) at the actual air
pressure. Vcmax and Jmax follow the peaked Arrhenius function (Medlyn et al. 2002, Plant
Cell Environ. 25:1167) with the Kattge & Knorr (2007, Plant Cell Environ. 30:1176)
activation/deactivation energies and entropy terms (at a growth temperature of 25 degC
by default). Rd = rd_ratio * Vcmax25 with an Arrhenius response (Ha = 46.39 kJ mol-1,
Bernacchi et al. 2001).

C4 (Collatz, Ribas-Carbo & Berry 1992, Aust. J. Plant Physiol. 19:519), as in SCOPE
``biochemical.m`` and the CLM5 technical note::

    A_c = Vcmax(T),   A_j = alpha4 Q,   A_p = kp Ci,  kp = 20000 Vcmax25 Q10^((T-25)/10) (Ci in mol mol-1)
    Vcmax(T) = Vcmax25 Q10^((T-25)/10) / ([1 + e^{0.3 (T - 40)}] [1 + e^{0.2 (15 - T)}])
    A_i = smaller root of 0.8 A^2 - (A_c + A_j) A + A_c A_j;  A = smaller root of 0.95 A^2 - (A_i + A_p) A + A_i A_p

Stomata (Medlyn et al. 2011, Glob. Change Biol. 17:2134)::

    gs = g0 + 1.6 (1 + g1/sqrt(D)) A_n / Ca        (mol H2O m-2 s-1, D in kPa)

Closed-form Ci (C3). Eliminating gs between the Medlyn model, the supply equation
A_n = gs/1.6 (Ca - Ci) and the demand A_n = a (Ci - G*)/(Ci + b) - Rd (a = Vcmax, b = Km
for Rubisco; a = J/4, b = 2 G* for electron transport) gives the quadratic of
plantecophys ``Photosyn`` (Duursma 2015, PLoS ONE 10:e0143346, R/photosyn.R)::

    q(Ci) = (m P + g0c) Ci^2 + (P k - Qc m - g0c (Ca - b)) Ci - (Qc k + g0c Ca b) = 0
    with P = a - Rd, Qc = a G* + Rd b, m = (1 + g1/sqrt(D))/Ca, k = 1 - m Ca, g0c = g0/1.6.

On Ci in (Ca g1/(g1 + sqrt D), Ca) q goes from negative to positive, so the physical root is
always the one with q'(Ci) = +sqrt(disc): Ci = (-B + sqrt(disc)) / (2 A2), evaluated in the
cancellation-free form 2C / (-B - sqrt(disc)) when B > 0. When the demand at Ci = Ca is
negative (dark) there is no root in the interval and Ci is clipped to Ca, which makes
gs = g0 continuously. With g0 = 0 the root is exactly Ci/Ca = g1/(g1 + sqrt D). Each
limitation is solved for its own Ci and the gross rates are co-limited afterwards, as in
plantecophys. For C4 the g0 = 0 ratio Ci/Ca = g1/(g1 + sqrt D) is used (A_p is linear in
Ci; g0 only matters for A_n near zero).

Water stress (``water_stress`` = beta in [0, 1], from the soil/root module) multiplies
Vcmax (CLM4.5 and SCOPE ``stressfactor`` convention, coupled.md section 3.1.3); Jmax and Rd are
not stressed. Because the big-leaf rates are homogeneous of degree one in (Vcmax, Jmax,
Rd, Q, g0), the same function is used for a leaf (per leaf area) and for a sun/shade big
leaf (per ground area, with ``capacity`` = integrated N-profile leaf area and
``leaf_area`` = leaf area of the big leaf).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

__all__ = [
    "LeafParams", "LeafFluxes", "leaf_photosynthesis", "gamma_star", "michaelis_menten",
    "arrhenius", "peaked_arrhenius", "electron_transport", "smooth_min",
    "R_GAS", "T_REF", "P_STANDARD", "O2_MOLE_FRACTION",
]

R_GAS = 8.314462618
"""Universal gas constant. Units: J mol-1 K-1 (CODATA 2018)."""
T_REF = 298.15
"""Reference temperature of the 25 degC rates. Units: K."""
ZERO_C = 273.15
P_STANDARD = 101325.0
"""Standard atmospheric pressure. Units: Pa."""
O2_MOLE_FRACTION = 0.209476
"""O2 mole fraction of dry air. Units: mol mol-1 (pyrealm ``k_co``)."""
# Bernacchi et al. (2001) kinetics, partial-pressure form (pyrealm 2.0 PModelConst).
KC25_PA = 39.97
"""Michaelis constant for CO2 at 25 degC. Units: Pa (= 404.9 umol mol-1 at 101.325 kPa)."""
KO25_PA = 27480.0
"""Michaelis constant for O2 at 25 degC. Units: Pa (= 278.4 mmol mol-1)."""
GAMMA_STAR25_PA = 4.332
"""CO2 compensation point without Rd at 25 degC and 101.325 kPa. Units: Pa (= 42.75 umol mol-1)."""
HA_KC = 79430.0
"""Activation energy of Kc. Units: J mol-1 (Bernacchi et al. 2001)."""
HA_KO = 36380.0
"""Activation energy of Ko. Units: J mol-1 (Bernacchi et al. 2001)."""
HA_GAMMA_STAR = 37830.0
"""Activation energy of Gamma*. Units: J mol-1 (Bernacchi et al. 2001)."""
HA_RD = 46390.0
"""Activation energy of leaf dark respiration. Units: J mol-1 (Bernacchi et al. 2001)."""
THETA_C4_I = 0.8
"""C4 co-limitation curvature between A_c and A_j (Collatz et al. 1992; SCOPE)."""
THETA_C4_P = 0.95
"""C4 co-limitation curvature against the PEP-carboxylase rate A_p (Collatz et al. 1992)."""
KP_SCALE_C4 = 20000.0
"""C4 initial slope kp25 / Vcmax25. Units: mol-1 mol (SCOPE ``Ke25 = 20000 Vcmax25``)."""
VPD_FLOOR = 0.05
"""Smooth lower bound of D in the Medlyn model, D_eff = D + 0.05 exp(-D/0.05) (avoids 1/sqrt(0)). Units: kPa."""
_TINY = 1e-12


@struct.dataclass
class LeafParams:
    """Leaf photosynthesis and stomatal parameters (one plant functional type).

    Every field is a scalar (or an array broadcastable with the forcing). Defaults per PFT:
    :func:`process_models.coupled.canopy.default_leaf_params` / ``tables/leaf_canopy.csv``.
    """

    vcmax25: jax.Array
    """Maximum carboxylation rate at 25 degC, top-of-canopy leaf. Units: umol m-2 s-1 (leaf).
    Range (10, 150); CLM5 / Kattge et al. (2009)."""
    jmax_ratio: jax.Array
    """Jmax25 / Vcmax25. Units: 1. Range (1.2, 2.6); Medlyn et al. (2002), Kattge & Knorr (2007)."""
    rd_ratio: jax.Array
    """Rd25 / Vcmax25. Units: 1. 0.015 (C3), 0.025 (C4); Collatz et al. (1991, 1992), CLM5."""
    theta_j: jax.Array
    """Curvature of the light response of J. Units: 1. 0.7 (CLM5); range (0.5, 0.95)."""
    quantum_yield: jax.Array
    """Electron-transport yield per absorbed photon (C3), or C4 alpha4 (mol CO2 per mol
    absorbed photons). Units: mol mol-1. C3 0.36 (CLM5: 0.5 x 0.85 x 0.85), C4 0.05."""
    theta_a: jax.Array
    """Curvature of the A_c / A_j co-limitation (C3). Units: 1. 0.98 (SCOPE); range (0.8, 0.999)."""
    g1: jax.Array
    """Medlyn slope. Units: kPa^0.5. Per PFT from Lin et al. (2015) / CLM5 ``medlynslope``."""
    g0: jax.Array
    """Residual (minimum) stomatal conductance to H2O. Units: mol m-2 s-1 (leaf). CLM5 1e-4..0.01."""
    vcmax_ha: jax.Array
    """Activation energy of Vcmax. Units: J mol-1. 71513 (Kattge & Knorr 2007)."""
    vcmax_hd: jax.Array
    """Deactivation energy of Vcmax. Units: J mol-1. 200000 (Kattge & Knorr 2007)."""
    vcmax_ds: jax.Array
    """Entropy term of Vcmax. Units: J mol-1 K-1. 668.39 - 1.07 T_growth (Kattge & Knorr 2007)."""
    jmax_ha: jax.Array
    """Activation energy of Jmax. Units: J mol-1. 49884 (Kattge & Knorr 2007)."""
    jmax_hd: jax.Array
    """Deactivation energy of Jmax. Units: J mol-1. 200000 (Kattge & Knorr 2007)."""
    jmax_ds: jax.Array
    """Entropy term of Jmax. Units: J mol-1 K-1. 659.70 - 0.75 T_growth (Kattge & Knorr 2007)."""
    q10_c4: jax.Array
    """Q10 of C4 Vcmax, kp and Rd (Collatz et al. 1992). Units: 1. 2.0."""
    c4: bool = struct.field(pytree_node=False, default=False)
    """Photosynthetic pathway: False = C3 (FvCB), True = C4 (Collatz). Static."""


@struct.dataclass
class LeafFluxes:
    """Output of :func:`leaf_photosynthesis` (per leaf or per big leaf, see ``capacity``)."""

    gross_assimilation: jax.Array
    """Gross CO2 assimilation (GPP contribution, >= 0). Units: umol m-2 s-1."""
    net_assimilation: jax.Array
    """Net assimilation A_n = gross - Rd. Units: umol m-2 s-1."""
    respiration: jax.Array
    """Leaf (dark) respiration Rd. Units: umol m-2 s-1."""
    stomatal_conductance: jax.Array
    """Stomatal conductance to water vapour. Units: mol m-2 s-1."""
    ci: jax.Array
    """Intercellular CO2 mole fraction. Units: umol mol-1."""
    rubisco_limited: jax.Array
    """A_c (C3) or Vcmax(T) (C4), gross. Units: umol m-2 s-1."""
    light_limited: jax.Array
    """A_j (C3) or alpha4 Q (C4), gross. Units: umol m-2 s-1."""


# ----------------------------------------------------------------------------- kinetics
def arrhenius(temperature_k, ha, t_ref=T_REF):
    """Arrhenius factor exp(Ha (T - Tref) / (Tref R T)) (= 1 at Tref). T in K, Ha in J mol-1."""
    return jnp.exp(ha * (temperature_k - t_ref) / (t_ref * R_GAS * temperature_k))


def peaked_arrhenius(temperature_k, ha, hd, ds, t_ref=T_REF):
    """Peaked Arrhenius factor (Medlyn et al. 2002 eq. 18; Kattge & Knorr 2007), = 1 at Tref::

        f(T) = arr(T) [1 + exp((Tref dS - Hd)/(R Tref))] / [1 + exp((T dS - Hd)/(R T))]
    """
    num = 1.0 + jnp.exp((t_ref * ds - hd) / (R_GAS * t_ref))
    den = 1.0 + jnp.exp((temperature_k * ds - hd) / (R_GAS * temperature_k))
    return arrhenius(temperature_k, ha, t_ref) * num / den


def gamma_star(temperature_c, air_pressure_pa=P_STANDARD):
    """CO2 compensation point without Rd (Bernacchi et al. 2001). Returns Pa.

    G* = 4.332 Pa (P / 101325 Pa) exp(37830 (T - 298.15)/(298.15 R T)); in mole fraction
    (umol mol-1) divide by P and multiply by 1e6 (42.75 umol mol-1 at 25 degC).
    """
    tk = temperature_c + ZERO_C
    return GAMMA_STAR25_PA * air_pressure_pa / P_STANDARD * arrhenius(tk, HA_GAMMA_STAR)


def michaelis_menten(temperature_c, air_pressure_pa=P_STANDARD):
    """Effective Michaelis constant Km = Kc (1 + pO2/Ko) of Rubisco (Bernacchi et al. 2001). Pa."""
    tk = temperature_c + ZERO_C
    kc = KC25_PA * arrhenius(tk, HA_KC)
    ko = KO25_PA * arrhenius(tk, HA_KO)
    return kc * (1.0 + O2_MOLE_FRACTION * air_pressure_pa / ko)


def _safe_sqrt(x):
    return jnp.sqrt(jnp.maximum(x, _TINY))


def smooth_min(a, b, theta):
    """Smaller root of theta x^2 - (a + b) x + a b = 0 (hyperbolic minimum; -> min(a, b) as
    theta -> 1; Collatz et al. 1991). Differentiable for a, b >= 0."""
    s = a + b
    return (s - _safe_sqrt(s * s - 4.0 * theta * a * b)) / (2.0 * theta)


def electron_transport(absorbed_par, jmax, quantum_yield, theta):
    """Non-rectangular hyperbola J(Q) (Farquhar & Wong 1984; von Caemmerer 2000 eq. 2.14).
    Units follow Q (umol m-2 s-1 absorbed photons) and Jmax."""
    aq = quantum_yield * jnp.maximum(absorbed_par, 0.0)
    s = aq + jmax
    return (s - _safe_sqrt(s * s - 4.0 * theta * aq * jmax)) / (2.0 * theta)


def _medlyn_ci(a, b, gstar, rd, ca, m, g0c):
    """Physical root of the plantecophys Medlyn-FvCB quadratic (module docstring)."""
    p = a - rd
    qc = a * gstar + rd * b
    k = 1.0 - m * ca
    a2 = m * p + g0c
    b2 = p * k - qc * m - g0c * (ca - b)
    c2 = -(qc * k + g0c * ca * b)
    s = _safe_sqrt(b2 * b2 - 4.0 * a2 * c2)
    pos = b2 > 0
    den_pos = jnp.where(pos, -b2 - s, -1.0)
    a2_safe = jnp.where(jnp.abs(a2) > _TINY, a2, _TINY)
    ci = jnp.where(pos, 2.0 * c2 / den_pos, (-b2 + s) / (2.0 * a2_safe))
    ci_low = ca * (1.0 - 1.0 / (m * ca))        # = Ca g1/(g1 + sqrt D), asymptote of supply
    return jnp.clip(ci, jnp.maximum(ci_low, gstar), ca)


# ----------------------------------------------------------------------------- leaf model
def leaf_photosynthesis(leaf: LeafParams, *, absorbed_par, leaf_temperature, vpd, co2,
                        air_pressure, water_stress=1.0, capacity=1.0, leaf_area=1.0) -> LeafFluxes:
    """Coupled photosynthesis and stomatal conductance of a leaf or big leaf.

    Parameters
    ----------
    leaf : LeafParams
    absorbed_par : absorbed PAR. Units: umol m-2 s-1 (photons, per area of the output).
    leaf_temperature : degC.
    vpd : leaf-to-air vapour pressure deficit. Units: hPa (canonical), converted to kPa.
    co2 : ambient CO2 mole fraction Ca. Units: umol mol-1.
    air_pressure : kPa.
    water_stress : beta in [0, 1], multiplies Vcmax. Units: 1.
    capacity : multiplier of Vcmax25, Jmax25 and Rd25 (1 for a leaf; the N-profile-weighted
        leaf area for a big leaf). Units: m2 m-2.
    leaf_area : multiplier of g0 (leaf area of the big leaf). Units: m2 m-2.

    Returns
    -------
    LeafFluxes, rates per area of ``absorbed_par`` (umol m-2 s-1, mol m-2 s-1).
    """
    tc = leaf_temperature
    tk = tc + ZERO_C
    p_pa = air_pressure * 1000.0
    ca = co2
    d_kpa = vpd / 10.0
    d_pos = jnp.maximum(d_kpa, 0.0)
    d_eff = d_pos + VPD_FLOOR * jnp.exp(-d_pos / VPD_FLOOR)      # smooth floor, = D for D >> 0.05 kPa
    m = (1.0 + leaf.g1 / jnp.sqrt(d_eff)) / ca
    g0c = leaf.g0 * leaf_area / 1.6
    beta = jnp.clip(water_stress, 0.0, 1.0)

    if leaf.c4:
        q10 = leaf.q10_c4 ** ((tc - 25.0) / 10.0)
        hi = 1.0 + jnp.exp(0.3 * (tc - 40.0))
        lo = 1.0 + jnp.exp(0.2 * (15.0 - tc))
        vcmax = capacity * leaf.vcmax25 * q10 / (hi * lo) * beta
        rd = capacity * leaf.rd_ratio * leaf.vcmax25 * q10 / (1.0 + jnp.exp(1.3 * (tc - 55.0)))
        ci = ca * leaf.g1 / (leaf.g1 + jnp.sqrt(d_eff))
        kp = KP_SCALE_C4 * capacity * leaf.vcmax25 * q10 * beta
        a_c = vcmax
        a_j = leaf.quantum_yield * jnp.maximum(absorbed_par, 0.0)
        a_p = kp * ci * 1e-6
        a_i = smooth_min(a_c, a_j, THETA_C4_I)
        gross = smooth_min(a_i, a_p, THETA_C4_P)
    else:
        gstar = gamma_star(tc, p_pa) / p_pa * 1e6          # umol mol-1
        km = michaelis_menten(tc, p_pa) / p_pa * 1e6
        vcmax = (capacity * leaf.vcmax25 * beta
                 * peaked_arrhenius(tk, leaf.vcmax_ha, leaf.vcmax_hd, leaf.vcmax_ds))
        jmax = (capacity * leaf.jmax_ratio * leaf.vcmax25
                * peaked_arrhenius(tk, leaf.jmax_ha, leaf.jmax_hd, leaf.jmax_ds))
        rd = capacity * leaf.rd_ratio * leaf.vcmax25 * arrhenius(tk, HA_RD)
        j = electron_transport(absorbed_par, jmax, leaf.quantum_yield, leaf.theta_j)
        # both limitations in one stacked solve (halves the traced graph)
        vc_b, j4_b, km_b, g2_b = jnp.broadcast_arrays(vcmax, j / 4.0, km, 2.0 * gstar)
        ci_c, ci_j = _medlyn_ci(jnp.stack([vc_b, j4_b]), jnp.stack([km_b, g2_b]), gstar, rd, ca, m, g0c)
        a_c = jnp.maximum(vcmax * (ci_c - gstar) / (ci_c + km), 0.0)
        a_j = jnp.maximum(j / 4.0 * (ci_j - gstar) / (ci_j + 2.0 * gstar), 0.0)
        gross = smooth_min(a_c, a_j, leaf.theta_a)

    gross = jnp.maximum(gross, 0.0)
    a_net = gross - rd
    gs = leaf.g0 * leaf_area + 1.6 * (m * jnp.maximum(a_net, 0.0))
    gc = jnp.maximum(gs / 1.6, _TINY)
    ci_out = jnp.where(a_net > 0, ca - jnp.maximum(a_net, 0.0) / gc, ca)
    return LeafFluxes(gross_assimilation=gross, net_assimilation=a_net, respiration=rd,
                      stomatal_conductance=gs, ci=ci_out, rubisco_limited=a_c, light_limited=a_j)
