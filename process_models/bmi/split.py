"""The coupled model as two BMI 2.0 components, coupled through their BMI faces only.

STEMMUS-SCOPE couples a soil model (STEMMUS: soil water and heat) and a canopy model
(SCOPE: radiative transfer, photosynthesis, energy balance); pymt-style frameworks couple
such components by exchanging variables through BMI calls between ``update()`` calls. Here
the coupled model's step (:func:`process_models.coupled.step`) is split the same way:

* :class:`BmiCoupledSurface` (canopy and surface): acclimation, root-zone water stress,
  two-big-leaf photosynthesis and stomata, interception, snow, root water uptake and soil
  evaporation (:func:`process_models.coupled.model.surface_step`). Inputs from the soil:
  soil water per layer and the leaf carbon pool (for LAI = SLA x C_leaf) at the start of
  the step. Outputs to the soil: water reaching the soil surface, the sink per layer
  (uptake + top-layer evaporation), GPP and leaf respiration.
* :class:`BmiCoupledSoil` (soil column and carbon): Richards soil water, the soil
  temperature proxy and the CASA-like carbon pools
  (:func:`process_models.coupled.model.soil_step`).

Per time step the driver (:func:`run_split`) does, with BMI calls only::

    surface.set_value("soil_water__volume_fraction", soil.get_value(...))
    surface.set_value("land_vegetation_leaf_carbon__mass-per-area", soil.get_value(...))
    surface.update()
    for name in EXCHANGE_TO_SOIL: soil.set_value(name, surface.get_value(name))
    soil.update()

Run this way the pair equals the single coupled model (:class:`process_models.bmi.BmiCoupled`)
to round-off (the exchanged water fluxes pass through mm s-1: one multiplication and one
division by the time step). Both components read the coupled model's TOML config (see
:mod:`process_models.bmi.coupled`); each exposes its own forcing, state and outputs.

A pymt-style coupler uses them like any BMI component: ``initialize`` each with the
config, then in its time loop move the variables of :data:`EXCHANGE_TO_SURFACE` and
:data:`EXCHANGE_TO_SOIL` with ``get_value``/``set_value`` (units match, same grids:
``"points"`` for the site, ``"rectilinear"`` for the soil layers) and call ``update``;
exchange inputs are BMI inputs of kind forcing (they apply to the next update only).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import struct

from ..coupled.model import (SoilState, SurfaceState, soil_step, split_state, surface_step)
from ..coupled.params import CoupledForcing
from ._base import BmiVariable, JaxModelBmi, ModelSetup
from .coupled import COUPLED_VARIABLES, SCALAR, SITE, SOIL, BmiCoupled

__all__ = ["BmiCoupledSurface", "BmiCoupledSoil", "EXCHANGE_TO_SURFACE", "EXCHANGE_TO_SOIL",
           "run_split"]

SWC = "soil_water__volume_fraction"
LEAF_C = "land_vegetation_leaf_carbon__mass-per-area"
WATER_IN = "soil_surface_water__infiltration-and-runoff_volume_flux"
SINKS = "soil_water__root-uptake-and-evaporation_volume_flux"
GPP = "land_vegetation__gross_primary_productivity"
RLEAF = "land_vegetation_leaf__respiration_carbon-dioxide_flux"

EXCHANGE_TO_SURFACE = (SWC, LEAF_C)
"""Soil -> surface, before each surface update (state at the start of the step)."""
EXCHANGE_TO_SOIL = (WATER_IN, SINKS, GPP, RLEAF)
"""Surface -> soil, after each surface update."""


@struct.dataclass
class SurfaceInputs(CoupledForcing):
    """Forcing of the surface component: the coupled model's meteorology (time-major) plus
    the soil component's state at the start of the step."""

    soil_water_content: Optional[jax.Array] = None
    """From the soil component. Units: m3 m-3, shape (n_layers,)."""
    leaf_carbon: Optional[jax.Array] = None
    """From the soil component. Units: g C m-2."""


@struct.dataclass
class SoilInputs:
    """Forcing of the soil component: air temperature (time-major) plus the surface's fluxes."""

    air_temperature: jax.Array
    water_in: jax.Array
    """Units: mm per step."""
    sinks: jax.Array
    """Units: mm per step, shape (n_layers,)."""
    gpp: jax.Array
    """Units: umol m-2 s-1."""
    leaf_respiration: jax.Array
    """Units: umol m-2 s-1."""
    dt_seconds: float = struct.field(pytree_node=False, default=1800.0)


def surface_bmi_step(state: SurfaceState, f: SurfaceInputs, params):
    return surface_step(state, f, params, f.soil_water_content, f.leaf_carbon)


def soil_bmi_step(state: SoilState, f: SoilInputs, params):
    return soil_step(state, f.air_temperature, params, f.water_in, f.sinks, f.gpp,
                     f.leaf_respiration, f.dt_seconds)


class _SplitBase(JaxModelBmi):
    def _coupled_setup(self, config, base) -> ModelSetup:
        return BmiCoupled()._setup(config, base)


class BmiCoupledSurface(_SplitBase):
    """The surface (canopy) half of the coupled model behind BMI 2.0 (module docstring)."""

    def _setup(self, config: dict, base: Path) -> ModelSetup:
        s = self._coupled_setup(config, base)
        f, p, dt = s.forcing, s.params, s.dt_seconds
        st0 = s.initial_state(p, f)
        inputs = SurfaceInputs(**{k.name: getattr(f, k.name) for k in dataclasses.fields(f)},
                               soil_water_content=st0.soil_water_content,
                               leaf_carbon=st0.carbon.leaf)
        met_t = {k: getattr(f, k)[0] for k in s.time_fields}
        _, template = jax.eval_shape(surface_bmi_step, split_state(st0)[0],
                                     inputs.replace(**met_t), p)
        t = {v[0]: v for v in COUPLED_VARIABLES}
        variables = [BmiVariable(nm, u, g, kind, key, desc, scale=(1.0 / dt) if per_s else 1.0,
                                 standard=std)
                     for nm, u, kind, key, g, per_s, std, desc in COUPLED_VARIABLES
                     if kind == "forcing"
                     or key in ("snow_water_equivalent", "canopy_water", "acclimation_temperature")
                     or key in ("gpp", "transpiration", "soil_evaporation", "interception_evaporation",
                                "et", "le", "water_stress", "sif")]
        variables += [
            BmiVariable(SWC, "m3 m-3", SOIL, "forcing", "soil_water_content",
                        "soil water per layer at the start of the step (from the soil component)",
                        standard=t[SWC][6]),
            BmiVariable(LEAF_C, "g m-2", SITE, "forcing", "leaf_carbon",
                        "leaf carbon pool at the start of the step (from the soil component)"),
            BmiVariable(WATER_IN, "mm s-1", SITE, "output", "water_in",
                        "throughfall, drip and snowmelt reaching the soil surface", scale=1.0 / dt),
            BmiVariable(SINKS, "mm s-1", SOIL, "output", "sinks",
                        "root water uptake per layer plus soil evaporation in the top layer",
                        scale=1.0 / dt),
            BmiVariable(RLEAF, "umol m-2 s-1", SITE, "output", "leaf_respiration",
                        "leaf (dark) respiration of the canopy"),
            BmiVariable("land_vegetation__leaf-area_index", "m2 m-2", SITE, "output", "lai",
                        "leaf area index used in the step")]
        return ModelSetup(params=p, forcing=inputs, time_fields=s.time_fields, times=s.times,
                          dt_seconds=dt, step=surface_bmi_step,
                          initial_state=lambda pp, ff: split_state(s.initial_state(pp, f))[0],
                          variables=variables, grids=s.grids, output_template=template,
                          component_name="ecoflux coupled model: surface (canopy) component",
                          info=s.info)


class BmiCoupledSoil(_SplitBase):
    """The soil-column and carbon half of the coupled model behind BMI 2.0 (module docstring)."""

    def _setup(self, config: dict, base: Path) -> ModelSetup:
        s = self._coupled_setup(config, base)
        f, p, dt = s.forcing, s.params, s.dt_seconds
        st0 = s.initial_state(p, f)
        z = jnp.zeros((), st0.soil_water_content.dtype)
        inputs = SoilInputs(air_temperature=f.air_temperature, water_in=z,
                            sinks=jnp.zeros_like(st0.soil_water_content), gpp=z,
                            leaf_respiration=z, dt_seconds=dt)
        _, template = jax.eval_shape(soil_bmi_step, split_state(st0)[1],
                                     inputs.replace(air_temperature=f.air_temperature[0]), p)
        keep_state = ("soil_water_content", "soil_temperature", "carbon.leaf", "carbon.wood",
                      "carbon.root", "carbon.litter", "carbon.soil_fast", "carbon.soil_slow")
        variables = [BmiVariable(nm, u, g, kind, key, desc, scale=(1.0 / dt) if per_s else 1.0,
                                 standard=std)
                     for nm, u, kind, key, g, per_s, std, desc in COUPLED_VARIABLES
                     if (kind == "forcing" and key == "air_temperature")
                     or (kind == "state" and key in keep_state)
                     or key in ("runoff", "drainage", "ra", "rh")]
        variables += [
            BmiVariable(WATER_IN, "mm s-1", SITE, "forcing", "water_in",
                        "water reaching the soil surface (from the surface component)",
                        scale=1.0 / dt),
            BmiVariable(SINKS, "mm s-1", SOIL, "forcing", "sinks",
                        "water sink per layer (from the surface component)", scale=1.0 / dt),
            BmiVariable(GPP, "umol m-2 s-1", SITE, "forcing", "gpp",
                        "GPP allocated to the carbon pools (from the surface component)"),
            BmiVariable(RLEAF, "umol m-2 s-1", SITE, "forcing", "leaf_respiration",
                        "leaf respiration (from the surface component)")]
        grids = {k: v for k, v in s.grids.items() if k in (SITE, SOIL, SCALAR)}
        return ModelSetup(params=p, forcing=inputs, time_fields=("air_temperature",),
                          times=s.times, dt_seconds=dt, step=soil_bmi_step,
                          initial_state=lambda pp, ff: split_state(s.initial_state(pp, f))[1],
                          variables=variables, grids=grids, output_template=template,
                          component_name="ecoflux coupled model: soil column and carbon component",
                          info=s.info)


def _value(bmi, name):
    return bmi.get_value(name, np.empty(bmi.get_grid_size(bmi.get_var_grid(name)),
                                        dtype=bmi.get_var_type(name)))


OUTPUTS = {"gpp": (GPP, "surface"), "le": ("land_surface__latent_heat_energy_flux", "surface"),
           "et": ("land_surface_water__evapotranspiration_volume_flux", "surface"),
           "ra": ("land_vegetation__autotrophic_respiration_carbon-dioxide_flux", "soil"),
           "rh": ("soil__heterotrophic_respiration_carbon-dioxide_flux", "soil"),
           "runoff": ("land_surface_water__runoff_volume_flux", "soil"),
           "drainage": ("soil_water__domain_bottom_drainage_volume_flux", "soil"),
           "soil_water_content": (SWC, "soil")}


def run_split(config_file, n_steps: int | None = None) -> xr.Dataset:
    """Run the two components on ``config_file`` (the coupled model's TOML), exchanging
    the variables through BMI calls only; return the fluxes per step as a Dataset
    (gpp, reco, nee, ra, rh in umol m-2 s-1; et, runoff, drainage in mm s-1; le in W m-2;
    soil_water_content in m3 m-3 per layer at the end of each step)."""
    surface, soil = BmiCoupledSurface(), BmiCoupledSoil()
    surface.initialize(str(config_file))
    soil.initialize(str(config_file))
    n = int(round(soil.get_end_time() / soil.get_time_step())) if n_steps is None else n_steps
    rec = {k: [] for k in OUTPUTS}
    for _ in range(n):
        for name in EXCHANGE_TO_SURFACE:
            surface.set_value(name, _value(soil, name))
        surface.update()
        for name in EXCHANGE_TO_SOIL:
            soil.set_value(name, _value(surface, name))
        soil.update()
        for k, (name, comp) in OUTPUTS.items():
            rec[k].append(_value(surface if comp == "surface" else soil, name).copy())
    dt = np.timedelta64(int(round(soil.get_time_step() * 1e9)), "ns")
    times = np.datetime64(soil.get_start_datetime(), "ns") + dt * np.arange(n)
    units = {k: (surface if c == "surface" else soil).get_var_units(nm) for k, (nm, c) in OUTPUTS.items()}
    data = {k: (("time", "layer") if k == "soil_water_content" else ("time",),
                np.stack(v) if k == "soil_water_content" else np.concatenate(v), {"units": units[k]})
            for k, v in rec.items()}
    ds = xr.Dataset(data, coords={"time": times})
    ds["reco"] = (ds.ra + ds.rh).assign_attrs(units="umol m-2 s-1")
    ds["nee"] = (ds.reco - ds.gpp).assign_attrs(units="umol m-2 s-1",
                                                 long_name="NEE = Reco - GPP (positive = source)")
    surface.finalize()
    soil.finalize()
    return ds
