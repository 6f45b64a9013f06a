"""Adapter of the coupled soil-moisture / photosynthesis model
(:mod:`process_models.coupled`) to the step emulator: a
:class:`~emulator.generate.StatefulSpec` on flat vectors.

* parameters: a chosen subset of dotted names of
  :func:`process_models.coupled.parameter_table` (default :data:`COUPLED_EMULATED`),
  the others at the PFT/texture defaults; the box is the table's bounds shrunk to
  ``default x [1 - spread, 1 + spread]`` (clipped to the bounds);
* state (16 for the default 8 layers): soil water per layer (m3 m-3, bounded by
  ``theta_res`` and ``theta_sat``), snow water equivalent (mm), soil-temperature proxy
  (degC), six carbon pools (g C m-2);
* forcing_t (8): air temperature degC, shortwave W m-2, VPD hPa, precipitation mm per
  step, air pressure kPa, CO2 umol mol-1, wind m s-1, cos(solar zenith) (leaf area from
  the leaf pool);
* fluxes: GPP, Reco, NEE (umol m-2 s-1), ET, runoff, drainage (mm per step);
* water balance (mm per step): sum_layers 1000 dz (theta1 - theta) + (SWE1 - SWE)
  - (P - ET - runoff - drainage).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .design import ParameterSpace
from .generate import StatefulSpec

COUPLED_FORCING = ("air_temperature", "shortwave_in", "vpd", "precipitation", "air_pressure", "co2",
                   "wind_speed", "cos_zenith")
COUPLED_FLUXES = ("gpp", "reco", "nee", "et", "runoff", "drainage")
COUPLED_EMULATED = ("leaf.vcmax25", "leaf.g1", "soil.b", "roots.psi_close", "carbon.tau_soil_fast",
                    "carbon.rm_root")
POOLS = ("leaf", "wood", "root", "litter", "soil_fast", "soil_slow")


def coupled_spec(pft: str = "ENF", soil_texture: str = "loam", *, names=COUPLED_EMULATED,
                 spread: float = 0.4, dt_seconds: float = 1800.0) -> StatefulSpec:
    """The coupled model as a :class:`~emulator.generate.StatefulSpec`."""
    from process_models.coupled import (CoupledForcing, CoupledState, initial_state, load_parameters,
                                        parameter_table, set_parameters, step)
    from process_models.coupled.params import CarbonPools

    base = load_parameters(pft, soil_texture)
    tab = parameter_table(pft, soil_texture).set_index("name")
    lo, hi = [], []
    for n in names:
        d, a, b = (float(tab.loc[n, c]) for c in ("default", "lower", "upper"))
        lo.append(max(min(d * (1 - spread), d * (1 + spread)), a))
        hi.append(min(max(d * (1 - spread), d * (1 + spread)), b))
    space = ParameterSpace(tuple(names), tuple(lo), tuple(hi), (False,) * len(names),
                           tuple(str(tab.loc[n, "unit"]) for n in names))
    n_layers = base.n_layers
    dz_mm = 1000.0 * np.asarray(base.layer_thickness)
    theta_res = float(np.min(np.asarray(base.soil.theta_res)))
    theta_sat = float(np.max(np.asarray(base.soil.theta_sat)))

    def params_from_vector(v):
        return set_parameters(base, {n: v[i] for i, n in enumerate(names)})

    def params_to_vector(p):
        from process_models.coupled import get_parameter
        return jnp.stack([jnp.asarray(get_parameter(p, n)) for n in names])

    def forcing_from_matrix(m):
        return CoupledForcing(**{k: m[..., i] for i, k in enumerate(COUPLED_FORCING)}, dt_seconds=dt_seconds)

    def forcing_to_vector(f):
        return jnp.stack([jnp.asarray(getattr(f, k)) for k in COUPLED_FORCING], -1)

    def state_to_vector(s):
        return jnp.concatenate([s.soil_water_content, jnp.reshape(s.snow_water_equivalent, (1,)),
                                jnp.reshape(s.soil_temperature, (1,)),
                                jnp.stack([getattr(s.carbon, k) for k in POOLS])])

    def state_from_vector(v):
        return CoupledState(soil_water_content=v[:n_layers], snow_water_equivalent=v[n_layers],
                            soil_temperature=v[n_layers + 1],
                            carbon=CarbonPools(**{k: v[n_layers + 2 + i] for i, k in enumerate(POOLS)}))

    def outputs_to_vector(o):
        return jnp.stack([getattr(o, k) for k in COUPLED_FLUXES])

    def water_balance(state, next_state, forcing, fluxes):
        dz = jnp.asarray(dz_mm, state.dtype)
        storage = jnp.sum(dz * (next_state[..., :n_layers] - state[..., :n_layers]), -1) \
            + next_state[..., n_layers] - state[..., n_layers]
        return storage - (forcing[..., 3] - fluxes["et"] - fluxes["runoff"] - fluxes["drainage"])

    return StatefulSpec(
        name=f"process_models.coupled ({pft}, {soil_texture})", initial_state=initial_state, step=step,
        params_from_vector=params_from_vector, forcing_from_matrix=forcing_from_matrix,
        state_to_vector=state_to_vector, state_from_vector=state_from_vector,
        outputs_to_vector=outputs_to_vector,
        state_names=tuple(f"soil_water_content_{i}" for i in range(n_layers))
        + ("snow_water_equivalent", "soil_temperature") + tuple(f"carbon_{k}" for k in POOLS),
        forcing_names=COUPLED_FORCING, flux_names=COUPLED_FLUXES, param_space=space,
        state_lower=(theta_res,) * n_layers + (None,) * (2 + len(POOLS)),
        state_upper=(theta_sat,) * n_layers + (None,) * (2 + len(POOLS)),
        water_balance=water_balance, params_to_vector=params_to_vector,
        forcing_to_vector=forcing_to_vector,
        metadata={"pft": pft, "soil_texture": soil_texture, "dt_seconds": dt_seconds})


def forcing_matrix(forcing) -> np.ndarray:
    """A :class:`process_models.coupled.CoupledForcing` as a (T, 8) array."""
    return np.stack([np.asarray(getattr(forcing, k), float) for k in COUPLED_FORCING], -1)
