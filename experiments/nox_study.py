"""NOx study: emissions from TROPOMI-like NO2 by flux divergence, cross-sectional flux, a
variational inversion through the differentiable transport model, a U-Net deep ensemble and
a conditional VAE, all scored on the same held-out synthetic scenes and on real cases.

Synthetic truth: :mod:`assimilation.inversion.generator` (2-D column transport,
:mod:`process_models.transport`, real SMARTCARB winds, TROPOMI Matimba qa/cloud masks,
random area fields and two point sources per scene, random lifetime 3-5 h, kernel
factor and NO2/NOx ratio). No inverse crime: the methods get an imperfect wind
(:class:`~assimilation.inversion.generator.WindError`: the truth smoothed by 15 km,
turned by N(0, 10 deg), scaled by exp(N(0, 0.1)) per scene) and the 4D-Var a diffusivity
of 300 m2 s-1 (truth 100), a 10 % model-error term and the lifetime as a control; the
4D-Var with the truth's own transport is reported beside it (``variational_inverse_crime``).
Methods: :func:`assimilation.inversion.methods.estimate` (Beirle et al. 2019 flux
divergence; cross-sectional flux; Gauss-Newton 4D-Var), :mod:`assimilation.inversion.unet`
(SmaAT-UNet-like, Trebing et al. 2021) and :mod:`assimilation.inversion.vae` (conditional
VAE, Sohn et al. 2015). Real cases: TROPOMI over Matimba/Medupi 2021-07-25 against the
CoCO2 catalogue (Guevara et al. 2023); SMARTCARB Berlin and Jänschwalde (2015-04-23 11 UTC)
against the shipped true emissions; OMI L3 Romania (2015-2019 May-September mean columns)
by a steady-state mass balance with a prescribed lifetime, Oltenia power plants against
CoCO2 and Bucharest (no comparable inventory value shipped).
Data: the ``ddeq==1.1`` wheel (``process_models/transport/PROVENANCE.md``) and
``../shared/data/omi-no2_l3_romania``.

Goals (issue 14): point-source MAPE <= 15 %, domain-total bias <= 5 %, 90 % coverage
>= 85 %; SMARTCARB within 10 %; Matimba within 20 %.

Measured run (``--unet-steps 600 --unet-members 1 --vae-steps 600``, 1536 training / 48
test scenes = 96 sources; 565 s on 2 cores at load 8-17, a lower bound; the rows below are
from its rerun with the final 4D-Var settings, which resumed the trained networks from their
checkpoints, 367 s)::

    method (imperfect wind)     point MAPE (median)  total bias  90 % coverage (point / total)
    flux_divergence              20.1 % (11.5 %)       -0.8 %        90 % / 94 %
    cross_sectional_flux         21.4 % (11.1 %)         -           94 % (51 % of sources estimable)
    variational (4D-Var)         26.7 % (14.3 %)      +12.5 %        84 % / 92 %
    unet (1 member, 600 steps)   34.7 % (25.1 %)       -2.5 %        81 % / 75 %
    vae (600 steps)              48.1 % (33.9 %)       -8.4 %        84 % / 73 %
    variational_inverse_crime     5.1 % (4.2 %)        -0.3 %        92 % / 90 %

    real case (kg s-1)         reference  FD     CSF    4D-Var  U-Net  VAE   mass balance
    Matimba TROPOMI              0.962    1.43   1.22   0.70    1.36   1.37
    Jaenschwalde SMARTCARB       1.084    1.62   1.51   0.85    1.62   1.59
    Berlin SMARTCARB             0.797    1.27   0.84   0.76    1.79   1.81
    Oltenia OMI L3 (CoCO2)       0.662                                        0.70 +- 0.37
    Bucharest OMI L3             (none)                                       0.62 +- 0.32

Quick run: 58 s (study runtime; 60 CPU-s, the same as the former quick run's) at load 3-4.

Run: ``python -m experiments.nox_study [--quick] [--out DIR]`` (quick: 96 training and 6
test scenes, 40 U-Net and VAE steps, Matimba and the OMI cases; full: 1536 / 48 scenes,
3 U-Net members and 1500 steps each, also Jänschwalde and Berlin).
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from experiments.report import (Expected, enable_float64, markdown_table, parse_settings,
                                save_figure, write_metrics, write_report)

GOALS = {"point_mape": 0.15, "total_bias": 0.05, "coverage90": 0.85, "smartcarb": 0.10, "matimba": 0.20}


@dataclass(frozen=True)
class Settings:
    out: str = "experiments/output/nox_study"
    n_train: int = 1536
    n_test: int = 48
    seed: int = 0
    test_seed: int = 1000
    unet_steps: int = 1500
    unet_members: int = 3
    unet_batch: int = 16
    vae_steps: int = 1500
    vae_latent: int = 4
    vae_samples: int = 16
    wind_error: bool = True
    """The methods get an imperfect wind (:class:`assimilation.inversion.generator.WindError`:
    smoothed to a reanalysis scale, turned and scaled per scene), not the truth's."""
    model_diffusivity: float = 300.0
    """Diffusivity of the variational inversion's transport (truth: 100). Units: m2 s-1."""
    model_error_rel: float = 0.1
    """Model error of the variational inversion relative to the plume scale
    (:attr:`assimilation.inversion.methods.Scene.model_error_rel`), with the imperfect wind
    and on the real cases. Units: 1."""
    inverse_crime_reference: bool = True
    """Also run the variational inversion with the truth's own transport (true wind and
    diffusivity): the inverse-crime number, reported beside the honest one."""
    assumed_lifetime_h: float = 4.0
    lifetime_rel_sd: float = 0.15
    """Spread of the generator's lifetimes (uniform 3-5 h) relative to 4 h (1/sqrt(12) x 2/4)."""
    real_cases: str = "matimba,janschwalde,berlin"
    """Comma-separated real cases ('' for none)."""
    omi_cases: str = "oltenia,bucharest"
    """OMI L3 Romania mass-balance cases ('' for none)."""
    checkpoints: bool = True
    progress: bool = True

    @classmethod
    def quick(cls) -> "Settings":
        return cls(n_train=96, n_test=6, unet_steps=40, unet_members=1, vae_steps=40, vae_samples=8,
                   real_cases="matimba", progress=False)

    RESULT_NEUTRAL = ("progress", "checkpoints")


def _e(key, value, tol, what):
    return Expected(key, value, tol, what)


# Measured with the quick settings (6 test scenes, 12 sources; 2026-12-04). The physics
# methods, the variational inversions and the OMI mass balance are deterministic (tolerance:
# float round-off across platforms, 2e-3 of a score); coverage tolerances are one source
# (1/12 = 0.083). The U-Net and the VAE are trained in float32 on 96 scenes for 40 steps
# (undertrained: the quick run is a pipeline check, their skill is in the full run), so their
# tolerances are wide (weights differ across platforms and BLAS threading).
EXPECTED_QUICK = (
    _e("synthetic/flux_divergence/point_mape", 0.1474, 0.002, "FD point-source MAPE, imperfect wind (1)"),
    _e("synthetic/flux_divergence/total_bias", -0.0971, 0.002, "FD domain-total bias (1)"),
    _e("synthetic/flux_divergence/point_coverage90", 1.0, 0.09, "FD 90 % coverage (1 source = 0.083)"),
    _e("synthetic/cross_sectional_flux/point_mape", 0.0965, 0.002, "CSF point-source MAPE (1)"),
    _e("synthetic/cross_sectional_flux/available", 0.4167, 0.001, "CSF share of sources with an estimate"),
    _e("synthetic/variational/point_mape", 0.1662, 0.002, "4D-Var point MAPE, imperfect model (1)"),
    _e("synthetic/variational/total_bias", 0.0739, 0.002, "4D-Var domain-total bias, imperfect model (1)"),
    _e("synthetic/variational/point_coverage90", 0.8333, 0.09, "4D-Var 90 % coverage, imperfect model"),
    _e("synthetic/variational_inverse_crime/point_mape", 0.0331, 0.002, "4D-Var point MAPE, truth's transport (1)"),
    _e("synthetic/variational_inverse_crime/total_bias", -0.0060, 0.002, "4D-Var total bias, truth's transport (1)"),
    _e("synthetic/unet/point_mape", 1.4, 1.0, "U-Net point MAPE, quick = undertrained (1)"),
    _e("synthetic/vae/point_mape", 0.8, 0.7, "VAE point MAPE, quick = undertrained (1)"),
    _e("real/matimba/flux_divergence/estimate", 1.4268, 0.005, "Matimba FD estimate (kg s-1)"),
    _e("real/matimba/variational/estimate", 0.6983, 0.005, "Matimba 4D-Var with model error (kg s-1)"),
    _e("real/matimba/flux_divergence/reference", 0.9619, 1e-4, "CoCO2 Matimba+Medupi (kg s-1)"),
    _e("real/oltenia/mass_balance/estimate", 0.7010, 0.002, "Oltenia OMI mass balance (kg s-1)"),
    _e("real/oltenia/mass_balance/reference", 0.6617, 1e-4, "CoCO2 Oltenia units within 100 km (kg s-1)"),
    _e("real/bucharest/mass_balance/estimate", 0.6190, 0.002, "Bucharest OMI mass balance (kg s-1)"),
)


def _scene_list(data, st, *, truth_transport=False):
    """Test scenes as the methods see them: assumed lifetime and ratio, and (unless
    ``truth_transport`` or ``st.wind_error`` is off) the imperfect wind and the inversion's
    own diffusivity, with the wind error's size as the methods' relative wind uncertainty."""
    from assimilation.inversion.generator import WindError, perturbed_winds
    from assimilation.inversion.methods import scene_from_arrays
    out = []
    for i in range(len(data["obs"])):
        sc = scene_from_arrays(data, i, lifetime=st.assumed_lifetime_h * 3600.0,
                               lifetime_rel_sd=st.lifetime_rel_sd, wind_rel_sd=0.0,
                               ratio_rel_sd=0.02 / 0.758)
        if st.wind_error and not truth_transport:
            u, v = perturbed_winds(sc.u, sc.v, st.test_seed, i, WindError(), dx=sc.dx)
            sc = replace(sc, u=u, v=v, diffusivity=st.model_diffusivity, wind_rel_sd=WindError().wind_rel_sd,
                         model_error_rel=st.model_error_rel)
        out.append(sc)
    return out


def main(argv=None) -> dict:
    st = parse_settings(Settings, argv, __doc__.split("\n\n")[0])
    enable_float64()
    from assimilation.inversion import SceneConfig, generate_dataset, load_dataset
    from assimilation.inversion.methods import estimate
    from assimilation.inversion.scoring import score
    from assimilation.inversion.unet import UNetConfig, train_unet_ensemble
    from assimilation.inversion.vae import VAEConfig, train_vae
    t0 = time.perf_counter()
    out = Path(st.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = SceneConfig()
    timings = {}
    t = time.perf_counter()
    # one chunk shape for both data sets (each shape compiles the transport once); scenes do not
    # depend on the chunking
    chunk = math.gcd(st.n_train, st.n_test)
    chunk = chunk if chunk >= 6 else 64
    train = load_dataset(generate_dataset(out / "data" / "train", st.n_train, config=cfg, seed=st.seed,
                                          chunk_size=chunk, progress=st.progress))
    test = load_dataset(generate_dataset(out / "data" / "test", st.n_test, config=cfg, seed=st.test_seed,
                                         chunk_size=chunk, progress=st.progress))
    timings["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    ucfg = UNetConfig(steps=st.unet_steps, members=st.unet_members, batch_size=st.unet_batch, seed=st.seed)
    # checkpoints are keyed by everything the training depends on (a changed setting never resumes
    # from another run's weights)
    digest = hashlib.sha1(repr((ucfg, cfg, st.n_train, st.seed, "features-v2")).encode()).hexdigest()[:10]
    ens = train_unet_ensemble(train, ucfg, dx=cfg.dx, progress=st.progress,
                              checkpoint_dir=(out / "checkpoints" / digest).absolute() if st.checkpoints else None)
    timings["unet_train"] = time.perf_counter() - t
    t = time.perf_counter()
    vcfg = VAEConfig(steps=st.vae_steps, latent=st.vae_latent, samples=st.vae_samples, batch_size=st.unet_batch,
                     seed=st.seed)
    vdigest = hashlib.sha1(repr((vcfg, cfg, st.n_train, st.seed, "vae-v1")).encode()).hexdigest()[:10]
    vae = train_vae(train, vcfg, dx=cfg.dx, progress=st.progress,
                    checkpoint_dir=(out / "checkpoints" / f"vae_{vdigest}").absolute() if st.checkpoints else None)
    timings["vae_train"] = time.perf_counter() - t
    scenes = _scene_list(test, st)
    methods = ("flux_divergence", "cross_sectional_flux", "variational", "unet", "vae")
    options = {"unet": {"ensemble": ens}, "vae": {"model": vae}}
    runs = [(m, m, scenes) for m in methods]
    if st.inverse_crime_reference and st.wind_error:
        runs.append(("variational_inverse_crime", "variational", _scene_list(test, st, truth_transport=True)))
    est = {name: [] for name, _, _ in runs}
    for name, m, scs in runs:
        t = time.perf_counter()
        for sc in tqdm(scs, desc=name, disable=not st.progress):
            est[name].append(estimate(m, sc, **options.get(m, {})))
        timings[name] = time.perf_counter() - t
    rows, metrics = [], {"settings": asdict(st), "synthetic": {}, "real": {}, "timings_s": timings,
                         "unet": {"val_loss": list(ens.val_loss), "point_calibration": ens.point_calibration,
                                  "total_calibration": ens.total_calibration},
                         "vae": {"val_loss": vae.val_loss, "point_calibration": vae.point_calibration,
                                 "total_calibration": vae.total_calibration}}
    for m in est:
        e = est[m]
        s = score(np.stack([x.point for x in e]), np.stack([x.point_sd for x in e]), test["point_rates"],
                  np.asarray([x.total for x in e]), np.asarray([x.total_sd for x in e]), test["total_emission"])
        metrics["synthetic"][m] = s
        rows.append({"method": m, **{k: s[k] for k in ("point_mape", "point_median_ape", "point_bias",
                                                        "point_coverage90", "available", "total_bias",
                                                        "total_mape", "total_coverage90")}})
    real_rows = []
    if st.real_cases:
        t = time.perf_counter()
        real_rows, real_scenes = _real_cases(st.real_cases, est_fn=estimate, options=options, metrics=metrics,
                                             model_error_rel=st.model_error_rel)
        timings["real"] = time.perf_counter() - t
    if st.omi_cases:
        t = time.perf_counter()
        real_rows += _omi_cases(st.omi_cases, metrics)
        timings["omi"] = time.perf_counter() - t
    figs = []
    _fig_maps(out, figs, test, est, 0, cfg)
    if st.real_cases:
        _fig_real(out, figs, real_scenes)
    table = pd.DataFrame(rows)
    real_table = pd.DataFrame(real_rows)
    table.to_csv(out / "synthetic_scores.csv", index=False)
    if len(real_table):
        real_table.to_csv(out / "real_cases.csv", index=False)
    metrics["runtime_s"] = time.perf_counter() - t0
    lines = _verdict(metrics)
    sections = [
        f"Generated by `python -m experiments.nox_study` in {metrics['runtime_s']:.0f} s. Settings: `{asdict(st)}`.",
        f"Synthetic scenes: {st.n_train} training, {st.n_test} held-out test scenes (seeds {st.seed} / "
        f"{st.test_seed}), {cfg.n} x {cfg.n} cells of {cfg.dx / 1e3:.0f} km, 4-km pixels, {cfg.n_sources} point "
        "sources + a log-normal area field, real SMARTCARB winds, real TROPOMI qa/cloud masks, noise 1e-5 mol m-2, "
        "lifetime uniform 3-5 h (the methods assume 4 h), kernel factor and NO2/NOx ratio drawn per scene. "
        + ("The methods get an imperfect wind (the true one Gaussian-smoothed by 15 km, turned by N(0, 10 deg) and "
         "scaled by exp(N(0, 0.1)) per scene; they carry a 14 % relative wind uncertainty) and the variational "
         f"inversion a diffusivity of {st.model_diffusivity:g} m2 s-1 (truth 100) with the lifetime as a control: "
         "no inverse crime. `variational_inverse_crime` is the same inversion with the truth's own transport "
         "(true wind and diffusivity), for reference only." if st.wind_error else
         "The winds given to the methods are the true ones (no wind error)."),
        "## Method comparison (held-out synthetic scenes; real cases below)\n\n" + markdown_table(table, ".3g"),
    ]
    if len(real_table):
        sections.append("## Real cases\n\n" + markdown_table(real_table, ".3g") + "\n\n" + REAL_NOTES)
    sections.append("## Goals (issue 14)\n\n" + "\n".join(lines))
    write_metrics(out, metrics)
    write_report(out, "NOx emissions from TROPOMI-like NO2: flux divergence, cross-sectional flux, "
                 "4D-Var and a U-Net on synthetic truth and real cases", sections, figs,
                 EXPECTED_QUICK, metrics, settings=st)
    print("\n".join(lines))
    print(f"Report: {out}/REPORT.md ({metrics['runtime_s']:.0f} s)")
    return metrics


REAL_NOTES = (
    "Matimba: TROPOMI RPRO L2 2021-07-25 11:45 UTC, ERA5 boundary-layer wind, NOx/NO2 = 1.32 and a 4-h "
    "lifetime (Beirle et al. 2019); reference = CoCO2 catalogue v1.1 (Guevara et al. 2023, 2018 annual mean "
    "of the Matimba and Medupi units within 10 km), not an overpass-time emission. SMARTCARB: the source's "
    "own NO2 tracer (NO2_JV, NO2_BV) with 4-km footprint and seeded 1e-5 mol m-2 noise, GNFR-A-weighted COSMO "
    "winds, NOx/NO2 = 1.32 (ddeq's conversion), reference = the shipped true emission at 11 UTC. The U-Net "
    "and the VAE were trained on 80-km scenes; they are applied to the 80-km Matimba and Jänschwalde crops and "
    "the 128-km Berlin crop (fully convolutional). Real cases get the winds as shipped (ERA5, COSMO). "
    "OMI L3 Romania (no winds ship with it, so no flux divergence): steady-state mass balance E = L M_NO2 B / tau "
    "(Beirle et al. 2011) on the 2015-2019 May-September mean column within 100 km, background = median of the "
    "100-160 km annulus, tau = 4 h +- 40 % (Lange et al. 2022 range), NOx/NO2 = 1.32, outflow beyond 100 km "
    "corrected for an assumed 4 +- 2 m s-1 wind; reference for Oltenia = CoCO2 v1.1 units within 100 km "
    "(Turceni, Rovinari, Isalnita, Craiova II; 2018), which omits the city of Craiova; for Bucharest no "
    "comparable inventory value is shipped (CoCO2 lists only its power plants), so none is given.")


def _real_cases(names, est_fn, options, metrics, model_error_rel=0.0):
    from assimilation.inversion.real import matimba_scene, smartcarb_scene
    make = {"matimba": lambda: ("Matimba (TROPOMI)",) + matimba_scene(),
            "janschwalde": lambda: ("Janschwalde (SMARTCARB)",) + smartcarb_scene("Janschwalde", n=40),
            "berlin": lambda: ("Berlin (SMARTCARB)",) + smartcarb_scene("Berlin", n=64)}
    wanted = [c.strip().lower() for c in names.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in make]
    if unknown:
        raise ValueError(f"real_cases {unknown} unknown; use {sorted(make)}.")
    cases = [make[c]() for c in wanted]
    rows, scenes = [], {}
    for name, sc, info in cases:
        sc = replace(sc, model_error_rel=model_error_rel)
        scenes[name] = (sc, info)
        for m in ("flux_divergence", "cross_sectional_flux", "variational", "unet", "vae"):
            e = est_fn(m, sc, **options.get(m, {}))
            q, sd = float(e.point[0]), float(e.point_sd[0])
            rel = q / info["reference"] - 1
            rows.append({"case": name, "method": m, "estimate_kg_s": q, "sd_kg_s": sd,
                         "reference_kg_s": info["reference"], "relative_error": rel})
            metrics["real"].setdefault(name.split()[0].lower(), {})[m] = {
                "estimate": q, "sd": sd, "reference": info["reference"], "relative_error": rel}
    return rows, scenes


def _omi_cases(names, metrics):
    """OMI L3 Romania: steady-state mass balance with a prescribed lifetime on the 2015-2019
    May-September climatology (:func:`assimilation.inversion.real.omi_mass_balance`),
    against the CoCO2 v1.1 units within the 100-km disk."""
    from assimilation.inversion.real import OMI_CASES, omi_mass_balance
    wanted = [c.strip().lower() for c in names.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in OMI_CASES]
    if unknown:
        raise ValueError(f"omi_cases {unknown} unknown; use {sorted(OMI_CASES)}.")
    rows = []
    for c in wanted:
        name, lon, lat, comparable = OMI_CASES[c]
        r = omi_mass_balance(lon, lat)
        if not comparable:
            r["reference"] = float("nan")
        rel = r["estimate"] / r["reference"] - 1
        rows.append({"case": name, "method": "mass_balance", "estimate_kg_s": r["estimate"], "sd_kg_s": r["sd"],
                     "reference_kg_s": r["reference"], "relative_error": rel})
        metrics["real"].setdefault(c, {})["mass_balance"] = {
            "estimate": r["estimate"], "sd": r["sd"], "reference": r["reference"], "relative_error": rel,
            "monthly_estimates": r["monthly_estimates"], "reference_units": r["reference_units"]}
    return rows


def _fig_maps(out, figs, test, est, i, cfg):
    from assimilation.inversion.operator import upsample
    truth = test["area_emission"][i] * cfg.dx**2
    for (r, c), q in zip(test["point_cells"][i], test["point_rates"][i]):
        truth[r, c] += q
    fig, ax = plt.subplots(1, 6, figsize=(21, 3.6))
    ax[0].imshow(test["obs"][i] * 1e6, origin="lower", cmap="viridis")
    ax[0].set_title("observed NO2 (umol m-2)")
    panels = [("truth (kg s-1 per cell)", truth),
              ("flux divergence", upsample(est["flux_divergence"][i].emission_map, 2) * cfg.dx**2),
              ("variational (area blocks)", est["variational"][i].emission_map * cfg.dx**2),
              ("U-Net", est["unet"][i].emission_map), ("VAE (latent mean)", est["vae"][i].emission_map)]
    vmax = np.nanpercentile(truth, 99.5)
    for a, (title, m) in zip(ax[1:], panels):
        im = a.imshow(np.asarray(m), origin="lower", cmap="magma", vmin=0, vmax=vmax)
        a.set_title(title)
    for a in ax:
        a.plot(test["point_cells"][i][:, 1] / (2 if a is ax[0] else 1),
               test["point_cells"][i][:, 0] / (2 if a is ax[0] else 1), "c+", ms=8)
        a.set_xticks([]), a.set_yticks([])
    fig.colorbar(im, ax=ax[1:], shrink=0.8)
    save_figure(fig, out, "emission_maps_synthetic.png", figs)


def _fig_real(out, figs, scenes):
    fig, ax = plt.subplots(1, len(scenes), figsize=(5 * len(scenes), 4))
    for a, (name, (sc, info)) in zip(np.atleast_1d(ax), scenes.items()):
        P = sc.obs.shape[0]
        h = sc.pixel_size / 1e3
        ext = [-P / 2 * h, P / 2 * h, -P / 2 * h, P / 2 * h]
        im = a.imshow(sc.obs * 1e6, origin="lower", extent=ext, cmap="viridis")
        u, v = info["wind"]
        a.arrow(0, 0, 3 * u, 3 * v, color="w", width=0.6)
        a.set_title(f"{name}: NO2 (umol m-2), wind arrow")
        a.set_xlabel("km east"), a.set_ylabel("km north")
        fig.colorbar(im, ax=a, shrink=0.8)
    save_figure(fig, out, "real_cases_no2.png", figs)


def _verdict(metrics) -> list:
    lines = []
    for m, s in metrics["synthetic"].items():
        lines.append(f"- {m}: point MAPE {s['point_mape']:.1%} (goal <= 15 %: "
                     f"{'met' if s['point_mape'] <= GOALS['point_mape'] else 'not met'}), "
                     f"total bias {s['total_bias']:+.1%} (goal |bias| <= 5 %: "
                     f"{'met' if abs(s['total_bias']) <= GOALS['total_bias'] else 'not met' if np.isfinite(s['total_bias']) else 'no total'}), "
                     f"90 % coverage {s['point_coverage90']:.0%} (goal >= 85 %: "
                     f"{'met' if s['point_coverage90'] >= GOALS['coverage90'] else 'not met'}), "
                     f"sources estimated {s['available']:.0%}")
    for case, res in metrics["real"].items():
        goal = GOALS["matimba"] if case == "matimba" else GOALS["smartcarb"]
        for m, r in res.items():
            if m == "mass_balance":
                ref = (f"vs CoCO2 {r['reference']:.3g} ({r['relative_error']:+.0%})" if np.isfinite(r["reference"])
                       else "no comparable published or inventory value shipped")
                lines.append(f"- {case} / OMI mass balance: {r['estimate']:.3g} +- {r['sd']:.2g} kg s-1 {ref} "
                             "(issue 14 sets no goal for OMI)")
                continue
            lines.append(f"- {case} / {m}: {r['estimate']:.3g} +- {r['sd']:.2g} kg s-1 vs {r['reference']:.3g} "
                         f"({r['relative_error']:+.0%}; goal within {goal:.0%}: "
                         f"{'met' if abs(r['relative_error']) <= goal else 'not met'})")
    return lines


if __name__ == "__main__":
    main()
