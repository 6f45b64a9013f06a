"""BMI couplings, pymt-style: components exchange variables through BMI calls only.

1. **Coupled model + VPRM at AT-Neu, July 2010.** Both models run through their BMI only
   (``BmiCoupled``, ``BmiVPRM``; configs written next to this report): every half-hour the
   coupled model's root-zone soil water (0-0.3 m, thickness-weighted) goes to VPRM's
   soil-moisture water stress with ``set_value``, then both ``update()``
   (``process_models.bmi.coupling``). Tower: bigleaf FLUXNET2015 month subset (Knauer et
   al. 2018); VPRM (Mahadevan et al. 2008) greenness from MOD13A1 EVI and SWIR2-LSWI (valid
   composites at their centre dates, ``process_models.io.vprm_site_forcing``), pyVPRM
   MODIS grassland parameters; coupled model GRA on loam, LAI from the leaf pool.
2. **The coupled model as two components at FR-Hes** (the STEMMUS / SCOPE split):
   ``BmiCoupledSurface`` (canopy, interception, snow, root uptake, soil evaporation) and
   ``BmiCoupledSoil`` (Richards soil water, soil temperature, carbon pools) exchange soil
   water, leaf carbon, the water reaching the soil, the layer sinks, GPP and leaf
   respiration every step (``process_models.bmi.run_split``); scored against the single
   model (``coupled.simulate``), which they must equal to round-off.

Run: ``python -m experiments.bmi_coupling_study [--quick] [--out DIR]``; ``--quick`` runs
the split components over two weeks (full: June-August 2016).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments.metrics import skill_rows
from experiments.report import (Expected, enable_float64, markdown_table, parse_settings,
                                save_figure, write_metrics, write_report)
from experiments.sites import get_site


@dataclass(frozen=True)
class Settings:
    out: str = "experiments/output/bmi_coupling_study"
    split_start: str = "2016-06-01T00:00"
    split_end: str = "2016-09-01T00:00"

    @classmethod
    def quick(cls) -> "Settings":
        return cls(split_start="2016-06-20T00:00", split_end="2016-07-04T00:00")


def _k(label, var, res, stat):
    return f"skill/AT-Neu/2010-07 ({label})/{var}/{res}/{stat}"


C, V = "coupled model, BMI", "VPRM pyVPRM-MODIS grassland, BMI"
# Measured in the quick configuration (float64); the AT-Neu numbers equal those of the
# coupling when it was part of the coupled-model study. Tolerances: R2 0.01, RMSE 2 %
# (round-off across platforms only); the split components must equal the single model to
# 1e-9 in the units of each flux.
EXPECTED_QUICK = (
    Expected(_k(C, "GPP (NT, USTAR50)", "half-hourly", "r2"), 0.8051, 0.01, "AT-Neu coupled GPP R2"),
    Expected(_k(C, "GPP (NT, USTAR50)", "half-hourly", "rmse"), 6.741, 0.135, "AT-Neu coupled GPP RMSE (umol m-2 s-1)"),
    Expected(_k(C, "NEE (gap-filled)", "daily", "bias"), -7.098, 0.1, "AT-Neu coupled NEE bias (umol m-2 s-1)"),
    Expected(_k(V, "GPP (NT, USTAR50)", "half-hourly", "r2"), 0.6396, 0.01, "AT-Neu VPRM GPP R2"),
    Expected(_k(V, "NEE (gap-filled)", "half-hourly", "rmse"), 8.796, 0.176, "AT-Neu VPRM NEE RMSE (umol m-2 s-1)"),
    Expected("split/max_abs_difference/nee", 0.0, 1e-9, "split vs single model: max |NEE diff| (umol m-2 s-1)"),
    Expected("split/max_abs_difference/le", 0.0, 1e-9, "split vs single model: max |LE diff| (W m-2)"),
    Expected("split/max_abs_difference/soil_water_content", 0.0, 1e-9,
             "split vs single model: max |soil water diff| (m3 m-3)"),
)


def at_neu(out: Path, figs: list) -> tuple[list, str]:
    from process_models import coupled
    from process_models.bmi import BmiCoupled, BmiVPRM
    from process_models.bmi.coupling import couple_root_zone_soil_water, write_vprm_soil_moisture_setup
    from process_models.coupled.insertion import root_zone_weights
    from process_models.io import data_path, read_bigleaf_month, read_modis_sites_mod13a1, vprm_site_forcing
    s = get_site("AT-Neu")
    params = coupled.load_parameters(s.pft, s.soil_texture)
    tower = read_bigleaf_month(data_path(s.folder, s.file + ".gz"))
    sat = read_modis_sites_mod13a1(site="AT-Neu").sel(time="2010")
    sat = sat.where(sat.valid, drop=True)
    sat = sat.assign_coords(time=sat.time.values + np.timedelta64(8, "D"))   # composite centres
    f = vprm_site_forcing(tower, sat, swir="swir21", year=2010)
    theta = lambda psi: float(coupled.soil_water.theta_from_head(psi, params.soil))  # noqa: E731
    c_cfg, v_cfg = write_vprm_soil_moisture_setup(
        out, tower, f, site=s.name, latitude=s.latitude, longitude=s.longitude,
        vprm_class=s.vprm_class, theta_wilt=theta(params.roots.psi_close),
        theta_crit=theta(params.roots.psi_open),
        field_capacity=float(coupled.soil_water.field_capacity(params.soil)), pft=s.pft,
        soil_texture=s.soil_texture, tower_reader="bigleaf_month", tower_path=f"{s.folder}/{s.file}.gz")
    cm, vm = BmiCoupled(), BmiVPRM()
    cm.initialize(str(c_cfg))
    vm.initialize(str(v_cfg))
    rec = couple_root_zone_soil_water(cm, vm, root_zone_weights(params.layer_thickness, 0.3))
    cm.finalize()
    vm.finalize()
    t = pd.DatetimeIndex(tower.time.values)
    rows = []
    for m, label in (("coupled", C), ("vprm", V)):
        rows += skill_rows({"GPP (NT, USTAR50)": (rec[f"{m}_gpp"], tower.gpp.values),
                            "NEE (gap-filled)": (rec[f"{m}_nee"], tower.nee_filled.values)}, t,
                           site="AT-Neu", period=f"2010-07 ({label})")
    df = pd.DataFrame({"tower": tower.gpp.values, "coupled": rec["coupled_gpp"], "VPRM": rec["vprm_gpp"]},
                      index=t)
    fig, ax = plt.subplots(1, 2, figsize=(13, 4))
    df.groupby(t.hour + t.minute / 60).mean().plot(ax=ax[0], xlabel="hour (local standard time)",
                                                   ylabel="GPP (umol m-2 s-1)",
                                                   title="AT-Neu July 2010: mean diurnal GPP")
    df.resample("D").mean().plot(ax=ax[1], ylabel="daily GPP (umol m-2 s-1)")
    pd.Series(rec["swc"], index=t).resample("D").mean().plot(ax=ax[1].twinx(), style="k:",
                                                             ylabel="root-zone SWC 0-0.3 m (m3 m-3)")
    save_figure(fig, out, "atneu_bmi_coupling.png", figs)
    text = ("## 1. Coupled model + VPRM at AT-Neu (July 2010)\n\n"
            f"{len(t)} half-hourly steps; configs `{c_cfg.name}`, `{v_cfg.name}`. The July grass cut "
            "(MODIS LAI 6.4 -> 4.6) is represented by neither model.")
    return rows, text


SPLIT_OUTPUTS = {"gpp": "land_vegetation__gross_primary_productivity",
                 "nee": "land_ecosystem__net_carbon-dioxide_exchange_flux",
                 "le": "land_surface__latent_heat_energy_flux",
                 "et": "land_surface_water__evapotranspiration_volume_flux",
                 "runoff": "land_surface_water__runoff_volume_flux",
                 "drainage": "soil_water__domain_bottom_drainage_volume_flux",
                 "soil_water_content": "soil_water__volume_fraction"}


def fr_hes_split(st: Settings, out: Path, figs: list) -> tuple[dict, str]:
    from process_models.bmi import BmiCoupled, run_split
    s = get_site("FR-Hes")
    cfg = out / "frhes_split.toml"
    cfg.write_text(f'[model]\npft = "{s.pft}"\nsoil_texture = "{s.soil_texture}"\n[forcing]\n'
                   f'reader = "europe_fluxdata"\npath = "{s.folder}/{s.file}"\nlatitude = {s.latitude}\n'
                   f'longitude = {s.longitude}\nlai = "pool"\n[time]\nstart = "{st.split_start}"\n'
                   f'end = "{st.split_end}"\ntime_step = 1800\n')
    ds = run_split(cfg)
    one = BmiCoupled()                 # the single model, also through its BMI
    one.initialize(str(cfg))
    ref = {k: [] for k in SPLIT_OUTPUTS}
    for _ in range(ds.sizes["time"]):
        one.update()
        for k, name in SPLIT_OUTPUTS.items():
            ref[k].append(one.get_value(name, np.empty(one.get_grid_size(one.get_var_grid(name)))).copy())
    one.finalize()
    ref = {k: np.stack(v) if k == "soil_water_content" else np.concatenate(v) for k, v in ref.items()}
    diff = {k: float(np.max(np.abs(ds[k].values - ref[k]))) for k in SPLIT_OUTPUTS}
    t = pd.DatetimeIndex(ds.time.values)
    fig, ax = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    ax[0].plot(t, ref["nee"], lw=1.5, color="C7", label="single model")
    ax[0].plot(t, ds.nee.values, lw=0.6, color="C3", label="surface + soil components (BMI)")
    ax[0].set_ylabel("NEE (umol m-2 s-1)")
    ax[0].legend(fontsize=8)
    ax[1].plot(t, ds.soil_water_content.values[:, :4], lw=0.8)
    ax[1].set_ylabel("soil water, top 4 layers (m3 m-3)")
    ax[0].set_title(f"FR-Hes {t[0]:%Y-%m-%d}..{t[-1]:%m-%d}: coupled model split into two BMI components")
    save_figure(fig, out, "frhes_split_components.png", figs)
    table = pd.DataFrame({"output": list(diff), "max |split - single|": list(diff.values()),
                          "unit": [ds[k].attrs.get("units", "") for k in diff]})
    text = ("## 2. The coupled model as surface + soil components (FR-Hes)\n\n"
            f"{len(t)} half-hourly steps, six variables exchanged per step through `get_value` / "
            "`set_value`. Largest difference from the single model:\n\n" + markdown_table(table, ".2e"))
    return diff, text


def main(argv=None) -> dict:
    st = parse_settings(Settings, argv, __doc__.split("\n\n")[0])
    enable_float64()
    out = Path(st.out)
    out.mkdir(parents=True, exist_ok=True)
    figs = []
    rows, text_a = at_neu(out, figs)
    diff, text_b = fr_hes_split(st, out, figs)
    metrics = {"settings": asdict(st), "skill": {}, "split": {"max_abs_difference": diff}}
    for r in rows:
        metrics["skill"].setdefault(r["site"], {}).setdefault(r["period"], {}).setdefault(
            r["variable"], {})[r["resolution"]] = {k: r[k] for k in ("n", "r2", "rmse", "bias")}
    table = pd.DataFrame(rows)
    table.to_csv(out / "metrics.csv", index=False)
    cols = ["period", "variable", "resolution", "n", "r2", "rmse", "bias"]
    write_metrics(out, metrics)
    write_report(out, "BMI couplings (pymt-style)", [
        "R2 = squared Pearson r, RMSE and bias = model - obs (umol m-2 s-1); NEE = Reco - GPP.",
        text_a, markdown_table(table[cols]), text_b], figs, EXPECTED_QUICK, metrics, settings=st)
    return metrics


if __name__ == "__main__":
    main()
