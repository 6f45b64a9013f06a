"""BMI 2.0 face of the coupled soil-moisture / photosynthesis model
(:mod:`process_models.coupled`), in the spirit of STEMMUS-SCOPE's ``StemmusScopeBmi``
(EcoExtreML/STEMMUS_SCOPE_Processing, PyStemmusScope/bmi): soil moisture is both input and
output on a soil-profile grid, so a coupler (e.g. a data-assimilation loop or a groundwater
model) can overwrite it between steps. Unlike STEMMUS-SCOPE, ``get_value_ptr`` works
(a read-only NumPy mirror) and the grid spacing/origin functions are defined where they
make sense.

Config (TOML)::

    [model]
    pft = "DBF"                      # process_models.coupled.pfts()
    soil_texture = "loam"            # process_models.coupled.soil_textures()

    [forcing]
    reader = "europe_fluxdata"       # a format of process_models.io.FORMATS
    path = "fr-hes_2016_europe-fluxdata/FR-Hes_europe-fluxdata_2016.txt.gz"
    latitude = 48.6742
    longitude = 7.0656
    gap_fill = true                  # fill driver gaps (process_models.io.fill_gaps)
    lai = "dataset"                  # "dataset": ds["lai"] if present; "pool": leaf carbon pool

    [time]
    start = "2016-06-01T00:00"
    end = "2016-07-01T00:00"          # exclusive
    time_step = 1800

    [parameters]                     # dotted names of process_models.coupled.parameter_table
    "leaf.vcmax25" = 55.0

    [initial_state]                  # optional
    soil_water_content = 0.30        # m3 m-3, every layer (default: field capacity)
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..io import fill_gaps, read
from ..units import DataValidationError
from ._base import BmiGrid, BmiVariable, JaxModelBmi, ModelSetup, resolve_path
from .vprm import _select_time, regular_step

__all__ = ["BmiCoupled", "COUPLED_VARIABLES", "COUPLED_PARAMETERS"]

SITE, SOIL, SCALAR = 0, 1, 2

#: (CSDMS name, units, kind, key, grid, per-step -> per-second?, name source, description)
COUPLED_VARIABLES = [
    ("land_surface_air__temperature", "degC", "forcing", "air_temperature", SITE, False, "csdms",
     "air temperature"),
    ("land_surface_radiation~incoming~shortwave__energy_flux", "W m-2", "forcing",
     "shortwave_in", SITE, False, "csdms", "incoming shortwave radiation"),
    ("land_surface_air_water~vapor__pressure_deficit", "hPa", "forcing", "vpd", SITE, False,
     "constructed", "vapour pressure deficit"),
    ("atmosphere_water__precipitation_leq-volume_flux", "mm s-1", "forcing", "precipitation",
     SITE, True, "csdms", "precipitation rate (the model takes mm per step)"),
    ("land_surface_air__pressure", "kPa", "forcing", "air_pressure", SITE, False, "csdms",
     "air pressure"),
    ("land_surface_air_carbon~dioxide__mole_fraction", "umol mol-1", "forcing", "co2", SITE,
     False, "constructed", "CO2 mole fraction"),
    ("land_surface_wind__reference-height_speed", "m s-1", "forcing", "wind_speed", SITE, False,
     "csdms", "wind speed"),
    ("soil_water__volume_fraction", "m3 m-3", "state", "soil_water_content", SOIL, False,
     "csdms", "volumetric soil water content per layer"),
    ("snowpack__liquid-equivalent_depth", "mm", "state", "snow_water_equivalent", SITE, False,
     "csdms", "snow water equivalent"),
    ("soil__temperature", "degC", "state", "soil_temperature", SITE, False, "csdms",
     "soil-temperature proxy (running mean of air temperature)"),
    ("land_vegetation_canopy_water__depth", "mm", "state", "canopy_water", SITE, False,
     "constructed", "intercepted water held on the canopy (Rutter store)"),
    ("land_vegetation__acclimation_temperature", "degC", "state", "acclimation_temperature",
     SITE, False, "constructed", "Makela (2004) delayed temperature S of the cold-season limit"),
    ("land_vegetation_leaf_carbon__mass-per-area", "g m-2", "state", "carbon.leaf", SITE, False,
     "constructed", "leaf carbon pool (g C)"),
    ("land_vegetation_wood_carbon__mass-per-area", "g m-2", "state", "carbon.wood", SITE, False,
     "constructed", "wood carbon pool (g C)"),
    ("land_vegetation_root_carbon__mass-per-area", "g m-2", "state", "carbon.root", SITE, False,
     "constructed", "fine-root carbon pool (g C)"),
    ("land_litter_carbon__mass-per-area", "g m-2", "state", "carbon.litter", SITE, False,
     "constructed", "litter carbon pool (g C)"),
    ("soil_fast_carbon__mass-per-area", "g m-2", "state", "carbon.soil_fast", SITE, False,
     "constructed", "fast soil carbon pool (g C)"),
    ("soil_slow_carbon__mass-per-area", "g m-2", "state", "carbon.soil_slow", SITE, False,
     "constructed", "slow soil carbon pool (g C)"),
    ("land_vegetation__gross_primary_productivity", "umol m-2 s-1", "output", "gpp", SITE, False,
     "constructed", "GPP (>= 0)"),
    ("land_ecosystem__respiration_carbon-dioxide_flux", "umol m-2 s-1", "output", "reco", SITE,
     False, "constructed", "ecosystem respiration Ra + Rh"),
    ("land_ecosystem__net_carbon-dioxide_exchange_flux", "umol m-2 s-1", "output", "nee", SITE,
     False, "constructed", "NEE = Reco - GPP (positive = source)"),
    ("land_vegetation__autotrophic_respiration_carbon-dioxide_flux", "umol m-2 s-1", "output",
     "ra", SITE, False, "constructed", "autotrophic respiration"),
    ("soil__heterotrophic_respiration_carbon-dioxide_flux", "umol m-2 s-1", "output", "rh", SITE,
     False, "constructed", "heterotrophic respiration"),
    ("land_surface_water__evapotranspiration_volume_flux", "mm s-1", "output", "et", SITE, True,
     "constructed", "evapotranspiration"),
    ("land_vegetation_water__transpiration_volume_flux", "mm s-1", "output", "transpiration",
     SITE, True, "csdms", "transpiration (= root water uptake)"),
    ("soil_surface_water__evaporation_volume_flux", "mm s-1", "output", "soil_evaporation", SITE,
     True, "csdms", "soil evaporation"),
    ("land_surface_water__runoff_volume_flux", "mm s-1", "output", "runoff", SITE, True, "csdms",
     "surface runoff"),
    ("soil_water__domain_bottom_drainage_volume_flux", "mm s-1", "output", "drainage", SITE, True,
     "constructed", "drainage through the bottom of the profile"),
    ("land_vegetation_canopy_water__evaporation_volume_flux", "mm s-1", "output",
     "interception_evaporation", SITE, True, "constructed", "evaporation of intercepted water"),
    ("land_surface__latent_heat_energy_flux", "W m-2", "output", "le", SITE, False, "csdms",
     "latent heat flux"),
    ("land_vegetation__water_stress_factor", "1", "output", "water_stress", SITE, False,
     "constructed", "root-weighted water-stress factor on Vcmax (1 = no stress)"),
    ("land_vegetation__solar-induced_chlorophyll_fluorescence_radiance", "W m-2 sr-1 um-1",
     "output", "sif", SITE, False, "constructed", "solar-induced fluorescence"),
]
#: (CSDMS name, units, dotted parameter, description)
COUPLED_PARAMETERS = [
    ("land_vegetation_leaf__max_carboxylation_rate_at_25C", "umol m-2 s-1", "leaf.vcmax25",
     "Vcmax at 25 degC"),
    ("land_vegetation_leaf_stomata__medlyn_slope_parameter", "kPa^0.5", "leaf.g1",
     "Medlyn g1"),
    ("soil__saturated_hydraulic_conductivity", "m s-1", "soil.k_sat", "K_sat (Campbell)"),
    ("soil__porosity", "m3 m-3", "soil.theta_sat", "saturated water content"),
    ("soil_water__campbell_pore-size_exponent", "1", "soil.b", "Campbell b"),
]
_LAI_NAME = "land_vegetation__leaf-area_index"
_FORCING_DRIVERS = ("air_temperature", "vpd", "shortwave_in", "ppfd_in", "precipitation",
                    "air_pressure", "wind_speed", "co2", "lai")


class BmiCoupled(JaxModelBmi):
    """The coupled model behind BMI 2.0 (see the module docstring for the config)."""

    def _setup(self, config: dict, base: Path) -> ModelSetup:
        from .. import coupled

        mcfg, fcfg, tcfg = config.get("model", {}), config.get("forcing", {}), config.get("time", {})
        for k in ("reader", "path", "latitude", "longitude"):
            if k not in fcfg:
                raise ValueError(f"[forcing] needs {k!r} (reader, path, latitude, longitude).")
        p = resolve_path(fcfg["path"], base)
        src = str(p)
        ds = read(p, fcfg["reader"])
        if not isinstance(ds, xr.Dataset):
            raise ValueError(f"[forcing] reader = {fcfg['reader']!r} does not give one tower Dataset; "
                             "use a tower format of process_models.io.FORMATS.")
        ds = _select_time(ds, tcfg, src)
        dt = regular_step(ds.time.values, tcfg.get("time_step"), src)
        notes = []
        if fcfg.get("gap_fill", True):
            ds, notes = fill_gaps(ds, [v for v in _FORCING_DRIVERS if v in ds])
        lai_mode = fcfg.get("lai", "dataset")
        if lai_mode not in ("dataset", "pool"):
            raise ValueError(f"[forcing] lai = {lai_mode!r}; use 'dataset' or 'pool'.")
        kw = {}
        if "precipitation" not in ds:
            if "precipitation" not in fcfg:
                raise DataValidationError(
                    "no precipitation in the forcing.", source=src, variable="precipitation",
                    fix="add [forcing] precipitation = <mm per step> (0 = rain-free experiment).")
            kw["precipitation"] = float(fcfg["precipitation"])
            notes.append(f"precipitation: constant {kw['precipitation']} mm per step (config).")
        forcing = coupled.forcing_from_dataset(
            ds, float(fcfg["latitude"]), float(fcfg["longitude"]),
            lai=False if lai_mode == "pool" else None,
            utc_offset_hours=fcfg.get("utc_offset_hours"), **kw)
        params = coupled.load_parameters(mcfg.get("pft", "ENF"), mcfg.get("soil_texture", "loam"))
        if config.get("parameters"):
            params = coupled.set_parameters(params, dict(config["parameters"]))
        init_cfg = config.get("initial_state", {})
        theta0 = init_cfg.get("soil_water_content")

        def initial_state(pp, ff):
            theta = None if theta0 is None else jnp.broadcast_to(
                jnp.asarray(theta0, jnp.result_type(pp.soil.theta_sat)), (pp.n_layers,))
            return coupled.initial_state(pp, ff, theta=theta)

        _, _, centre, _ = coupled.soil_water.layer_geometry(params.layer_thickness)
        lat, lon = float(fcfg["latitude"]), float(fcfg["longitude"])
        xy = dict(x=np.array([lon]), y=np.array([lat]))
        grids = {SITE: BmiGrid("points", (), rank=2, **xy),
                 SOIL: BmiGrid("rectilinear", (params.n_layers,), z=-np.asarray(centre), **xy),
                 SCALAR: BmiGrid("scalar", ())}
        variables = [BmiVariable(nm, u, g, kind, key, desc, scale=(1.0 / dt) if per_s else 1.0,
                                 standard=std)
                     for nm, u, kind, key, g, per_s, std, desc in COUPLED_VARIABLES]
        if forcing.lai is not None:
            variables.append(BmiVariable(_LAI_NAME, "m2 m-2", SITE, "forcing", "lai",
                                         "leaf area index (forcing)", standard="constructed"))
        else:
            variables.append(BmiVariable(_LAI_NAME, "m2 m-2", SITE, "output", "lai",
                                         "leaf area index from the leaf pool",
                                         standard="constructed"))
        for nm, u, key, desc in COUPLED_PARAMETERS:
            g = SOIL if np.ndim(coupled.get_parameter(params, key)) == 1 else SCALAR
            variables.append(BmiVariable(nm, u, g, "param", key, desc))
        time_fields = tuple(f for f in ("air_temperature", "shortwave_in", "vpd", "precipitation",
                                        "air_pressure", "co2", "wind_speed", "cos_zenith", "lai")
                            if getattr(forcing, f) is not None)
        state0 = initial_state(params, forcing)
        f0 = forcing.replace(**{f: getattr(forcing, f)[0] for f in time_fields})
        _, template = jax.eval_shape(coupled.step, state0, f0, params)
        return ModelSetup(params=params, forcing=forcing, time_fields=time_fields,
                          times=ds.time.values, dt_seconds=dt, step=coupled.step,
                          initial_state=initial_state, variables=variables, grids=grids,
                          output_template=template,
                          component_name="ecoflux coupled soil-moisture/photosynthesis model",
                          info={"forcing_notes": notes, "site_id": ds.attrs.get("site_id", "")})
