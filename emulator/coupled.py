"""Adapter of the coupled soil-moisture / photosynthesis model
(:class:`process_models.coupled.CoupledModel`, driven through the model interface) to the
step emulator: a :class:`~emulator.generate.StatefulSpec` on flat vectors.

* parameters: a chosen subset of dotted names of
  :func:`process_models.coupled.parameter_table` (default :data:`COUPLED_EMULATED`),
  the others at the PFT/texture defaults; the box is the table's bounds shrunk to
  ``default x [1 - spread, 1 + spread]`` (clipped to the bounds);
* state: the leaves of the model's own ``CoupledState`` in tree order (derived from
  :func:`process_models.coupled.initial_state`, not hard-coded; 16 for the default 8
  layers: soil water per layer (m3 m-3, bounded by ``theta_res`` and ``theta_sat``),
  snow water equivalent (mm), soil-temperature proxy (degC), six carbon pools (g C m-2));
* forcing_t (8): air temperature degC, shortwave W m-2, VPD hPa, precipitation mm per
  step, air pressure kPa, CO2 umol mol-1, wind m s-1, cos(solar zenith) (leaf area from
  the leaf pool);
* fluxes: GPP, Reco, NEE (umol m-2 s-1), ET, runoff, drainage (mm per step);
* water balance (mm per step): sum_layers 1000 dz (theta1 - theta) + d(other water
  stores in mm: snow, interception when present) - (P - ET - runoff - drainage).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .design import ParameterSpace
from .generate import StatefulSpec, spec_from_model, state_names

COUPLED_FORCING = ("air_temperature", "shortwave_in", "vpd", "precipitation", "air_pressure", "co2",
                   "wind_speed", "cos_zenith")
COUPLED_FLUXES = ("gpp", "reco", "nee", "et", "runoff", "drainage")
COUPLED_EMULATED = ("leaf.vcmax25", "leaf.g1", "soil.b", "roots.psi_close", "carbon.tau_soil_fast",
                    "carbon.rm_root")
POOLS = ("leaf", "wood", "root", "litter", "soil_fast", "soil_slow")


def coupled_spec(pft: str = "ENF", soil_texture: str = "loam", *, names=COUPLED_EMULATED,
                 spread: float = 0.4, dt_seconds: float = 1800.0) -> StatefulSpec:
    """:class:`process_models.coupled.CoupledModel` as a :class:`~emulator.generate.StatefulSpec`."""
    from process_models.coupled import CoupledForcing, CoupledModel

    model = CoupledModel(pft, soil_texture)
    base = model.default_params()
    tab = model.parameter_table().set_index("name")
    lo, hi = [], []
    for n in names:
        d, a, b = (float(tab.loc[n, c]) for c in ("default", "lower", "upper"))
        lo.append(max(min(d * (1 - spread), d * (1 + spread)), a))
        hi.append(min(max(d * (1 - spread), d * (1 + spread)), b))
    space = ParameterSpace(tuple(names), tuple(lo), tuple(hi), (False,) * len(names),
                           tuple(str(tab.loc[n, "unit"]) for n in names))
    dz_mm = 1000.0 * np.asarray(base.layer_thickness)
    theta_res = float(np.min(np.asarray(base.soil.theta_res)))
    theta_sat = float(np.max(np.asarray(base.soil.theta_sat)))
    # the state layout is derived from the model's own CoupledState (so added states,
    # e.g. canopy interception or a cold-season state, are picked up automatically)
    template = state_template(base, dt_seconds)
    names_ = state_names(template)
    soil_idx = [i for i, n in enumerate(names_) if n.startswith("soil_water_content")]
    # other water stores (mm) entering the water balance: snow, interception, ...
    store_idx = [i for i, n in enumerate(names_)
                 if any(k in n for k in ("snow_water_equivalent", "interception", "canopy_water"))]

    def forcing_from_matrix(m):
        return CoupledForcing(**{k: m[..., i] for i, k in enumerate(COUPLED_FORCING)}, dt_seconds=dt_seconds)

    def water_balance(state, next_state, forcing, fluxes):
        dz = jnp.asarray(dz_mm, state.dtype)
        si, wi = jnp.asarray(soil_idx), jnp.asarray(store_idx, int)
        storage = jnp.sum(dz * (next_state[..., si] - state[..., si]), -1) \
            + jnp.sum(next_state[..., wi] - state[..., wi], -1)
        return storage - (forcing[..., 3] - fluxes["et"] - fluxes["runoff"] - fluxes["drainage"])

    return spec_from_model(model, space, forcing_names=COUPLED_FORCING, forcing_from_matrix=forcing_from_matrix,
                           flux_names=COUPLED_FLUXES, state_template=template, base_params=base,
                           state_bounds={"soil_water_content": (theta_res, theta_sat)},
                           water_balance=water_balance, name=f"process_models.coupled ({pft}, {soil_texture})",
                           metadata={"pft": pft, "soil_texture": soil_texture, "dt_seconds": dt_seconds})


def state_template(params, dt_seconds: float = 1800.0):
    """An initial :class:`process_models.coupled.CoupledState` of ``params`` (its tree
    structure and leaf shapes define the emulator's state vector)."""
    from process_models.coupled import CoupledForcing, initial_state
    per_day = max(1, int(round(86400.0 / dt_seconds)))
    z = np.zeros(per_day)
    f = CoupledForcing(air_temperature=z + 10.0, shortwave_in=z, vpd=z + 5.0, precipitation=z,
                       air_pressure=z + 90.0, co2=z + 410.0, wind_speed=z + 2.0, cos_zenith=z,
                       dt_seconds=dt_seconds)
    return initial_state(params, f)


def forcing_matrix(forcing) -> np.ndarray:
    """A :class:`process_models.coupled.CoupledForcing` as a (T, 8) array."""
    return np.stack([np.asarray(getattr(forcing, k), float) for k in COUPLED_FORCING], -1)
