"""pymt-style couplings of the ecoflux BMI components (BMI calls only inside the time loop).

* :func:`couple_root_zone_soil_water`: the coupled model (:class:`~process_models.bmi.BmiCoupled`)
  feeds its root-zone soil water (thickness-weighted mean over the top ``depth`` metres)
  to VPRM's soil-moisture water stress (:class:`~process_models.bmi.BmiVPRM`,
  ``water_stress = "lswi_soil_moisture"``) every step, then both ``update()``.
* :func:`write_vprm_soil_moisture_setup`: the VPRM forcing file and the two TOML configs
  of that coupling at a tower, from a tower Dataset and a VPRM site forcing
  (:func:`process_models.io.vprm_site_forcing`).
* The coupled model's own surface and soil halves: :func:`process_models.bmi.split.run_split`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

__all__ = ["couple_root_zone_soil_water", "write_vprm_soil_moisture_setup"]

SWC = "soil_water__volume_fraction"
FLUXES = {"gpp": "land_vegetation__gross_primary_productivity",
          "nee": "land_ecosystem__net_carbon-dioxide_exchange_flux"}


def couple_root_zone_soil_water(coupled, vprm, weights, names: Mapping[str, str] = FLUXES) -> dict:
    """Run two initialised BMI components to the end of the coupled model's time axis,
    sending ``weights @ soil water`` (m3 m-3; ``weights`` over the soil layers, summing to 1)
    from ``coupled`` to ``vprm`` before every step. Returns ``{"swc": (T,), "coupled_<k>":
    (T,), "vprm_<k>": (T,)}`` for every output ``k`` of ``names`` (CSDMS names, units of the
    components: umol m-2 s-1 for the carbon fluxes)."""
    weights = np.asarray(weights, float)
    swc = np.empty(coupled.get_grid_size(coupled.get_var_grid(SWC)))
    val = np.empty(1)
    rec = {"swc": []} | {f"{m}_{k}": [] for m in ("coupled", "vprm") for k in names}
    n = int(round((coupled.get_end_time() - coupled.get_current_time()) / coupled.get_time_step()))
    for _ in range(n):
        rec["swc"].append(float(weights @ coupled.get_value(SWC, swc)))
        vprm.set_value(SWC, np.array(rec["swc"][-1:]))
        coupled.update()
        vprm.update()
        for m, model in (("coupled", coupled), ("vprm", vprm)):
            for k, name in names.items():
                rec[f"{m}_{k}"].append(model.get_value(name, val)[0])
    return {k: np.asarray(v) for k, v in rec.items()}


def write_vprm_soil_moisture_setup(out_dir, tower: xr.Dataset, forcing, *, site: str,
                                   latitude: float, longitude: float, vprm_class: int,
                                   theta_wilt: float, theta_crit: float, field_capacity: float,
                                   pft: str, soil_texture: str, tower_reader: str,
                                   tower_path: str, table: str = "pyvprm_modis") -> tuple[Path, Path]:
    """Write ``<site>_vprm_forcing.nc`` (tower air temperature and PPFD, the indices and
    statistics of ``forcing`` (a :class:`~process_models.vprm.VPRMForcing` of one class),
    soil water at ``field_capacity``, which :func:`couple_root_zone_soil_water` replaces
    with the coupled model's root-zone value before every step) and the
    TOML configs of :class:`~process_models.bmi.BmiVPRM` (soil-moisture water stress between
    ``theta_wilt`` and ``theta_crit``, m3 m-3) and :class:`~process_models.bmi.BmiCoupled`
    (``pft``, ``soil_texture``, the tower file ``tower_path`` read by ``tower_reader``, LAI
    from the leaf pool). Returns ``(coupled_config, vprm_config)``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tag = site.lower().replace("-", "")
    one = {"units": "1"}
    xr.Dataset({"air_temperature": tower.air_temperature, "par": tower.ppfd_in,
                **{k: ("time", np.asarray(getattr(forcing, k)), one) for k in ("evi", "lswi")},
                **{k: ((), float(np.ravel(getattr(forcing, k))[0]), one)
                   for k in ("evi_threshold", "lswi_min", "lswi_max")},
                "class_fractions": (("vprm_class",), [1.0], one),
                "soil_water_content": ("time", np.full(tower.sizes["time"], field_capacity),
                                       {"units": "m3 m-3"})},
               coords={"time": tower.time, "vprm_class": [vprm_class]},
               attrs={"site_id": site, "latitude": latitude, "longitude": longitude}
               ).to_netcdf(out / f"{tag}_vprm_forcing.nc")
    where = f"latitude = {latitude}\nlongitude = {longitude}"
    vprm_cfg, coupled_cfg = out / f"{tag}_vprm.toml", out / f"{tag}_coupled.toml"
    vprm_cfg.write_text(
        f'[model]\ntable = "{table}"\ntemperatures = "copernicus"\nclasses = [{vprm_class}]\n'
        f'water_stress = "lswi_soil_moisture"\n[forcing]\nfile = "{tag}_vprm_forcing.nc"\n{where}\n'
        f"[time]\ntime_step = 1800\n[parameters]\ntheta_wilt = [{theta_wilt}]\n"
        f"theta_crit = [{theta_crit}]\n")
    coupled_cfg.write_text(
        f'[model]\npft = "{pft}"\nsoil_texture = "{soil_texture}"\n[forcing]\nreader = "{tower_reader}"\n'
        f'path = "{tower_path}"\n{where}\nlai = "pool"\n[time]\ntime_step = 1800\n')
    return coupled_cfg, vprm_cfg
