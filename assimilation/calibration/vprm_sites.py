"""VPRM calibration problems at the shipped flux towers (the xarray edge of the VPRM calibration).

One :class:`VPRMSite` per tower holds the VPRM forcing at every model step, the observed
stream (NaN where not used), its random-error model and the partitioned references; 
:func:`site_problem` turns it into the model function, observations and error model that
:func:`~assimilation.calibration.build_model` takes.

* **US-PFa** Park Falls 2005 (mixed forest, VPRM class 3): hourly NEE (FC, no storage),
  MODIS EVI/LSWI (:func:`process_models.io.park_falls_vprm_forcing`); random error
  sigma = a + b+ F+ + b- F- fitted by the 24-h paired-difference method (Hollinger &
  Richardson 2005, Tree Physiol. 25, 873; Richardson et al. 2006, AFM 136, 1).
* **AT-Neu** July 2010 (grassland, class 7): QC-0 half-hourly NEE, MOD13A1 EVI, LSWI from
  SWIR2; error coefficients of the Neustift closed-path system (Haslwanter et al. 2009,
  AFM 149, 291, Fig. 5).
* **FR-Pue** May 2012 (evergreen broadleaf, class 1): QC-0 NEE with satellite fAPAR in
  place of EVI (light mode ``fapar``, Wscale = 1); forest coefficients attributed to
  Richardson et al. (2006) (not checked against the paper's table).
* **BE-Vie** 2014 (mixed forest, class 3): daytime (PPFD > 50 umol m-2 s-1) partitioned GPP
  as a soft target, fAPAR light mode, every second half-hour; sigma = 1 + 0.15 GPP umol m-2
  s-1 (an assumption for partitioning and representativeness error).

Priors: the Mahadevan et al. (2008, GBC 22, GB2005) class rows of
:meth:`process_models.vprm.VPRMModel.parameter_table`. Fluxes in umol m-2 s-1,
NEE = Reco - GPP.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["NAMES", "PRIOR_TABLE", "VPRM_SITES", "VPRMSite", "build_vprm_site", "site_priors",
           "site_problem", "predict"]

NAMES = ("lam", "par0", "alpha", "beta")
"""Calibrated VPRM parameters (per class): lambda (umol CO2 umol-1 photons), PAR0
(umol m-2 s-1), alpha (umol m-2 s-1 degC-1), beta (umol m-2 s-1)."""
PRIOR_TABLE = "mahadevan2008"
VPRM_SITES = ("US-PFa", "AT-Neu", "FR-Pue", "BE-Vie")


@dataclass
class VPRMSite:
    """One calibration site: forcing at every model step, observed stream, references."""
    name: str
    class_id: int
    forcing: object
    times: np.ndarray
    obs: np.ndarray                 # observed quantity (umol m-2 s-1), NaN where not used
    variable: str                   # "nee" or "gpp"
    light: str                      # VPRM light variant: "evi" or "fapar"
    sigma_coef: tuple               # (a, b_pos, b_neg), umol m-2 s-1 and 1
    sigma_source: str
    steps_per_day: int
    gpp_ref: np.ndarray | None = None
    reco_ref: np.ndarray | None = None
    note: str = ""

    @property
    def model(self):
        """The smooth VPRM of this site's class (:class:`process_models.vprm.VPRMModel`)."""
        from process_models.vprm import VPRMModel, VPRMOptions
        return VPRMModel(VPRMOptions(mode="smooth", light=self.light), PRIOR_TABLE, PRIOR_TABLE,
                         (self.class_id,))

    @property
    def names(self) -> dict:
        """Short name -> interface parameter name (``lam`` -> ``lam[3]``)."""
        return {n: f"{n}[{self.class_id}]" for n in NAMES}


def _fapar_forcing(tower, par, fapar):
    """fAPAR light mode without satellite LSWI: EVI := fAPAR, Wscale = 1 (LSWI = LSWImax)."""
    import jax.numpy as jnp
    from process_models.vprm import VPRMForcing
    n, f = len(par), jnp.asarray(fapar)
    return VPRMForcing(jnp.asarray(tower.air_temperature.values), jnp.asarray(par), f, jnp.full(n, 0.5),
                       jnp.zeros(n), jnp.zeros(n), jnp.full(n, 0.5), jnp.ones((n, 1)), fapar=f)


def build_vprm_site(name: str) -> VPRMSite:
    """The calibration site ``name`` (one of :data:`VPRM_SITES`) from the shipped data."""
    from process_models import io
    from .error_models import fit_flux_error_model
    bl = lambda f: io.read_bigleaf_month(io.data_path("fluxnet2015_month-subsets_bigleaf", f))  # noqa: E731
    qc0 = lambda tw: np.where(tw["nee_qc"].values == 0, tw["nee_filled"].values, np.nan)  # noqa: E731
    if name == "US-PFa":
        tower = io.read_park_falls()["tower"]
        fit = fit_flux_error_model(tower.nee.values, tower.ppfd_in.values, tower.air_temperature.values,
                                   steps_per_day=24)
        return VPRMSite(name, 3, io.park_falls_vprm_forcing(), tower.time.values, tower.nee.values, "nee",
                        "evi", (fit["a"], fit["b_pos"], fit["b_neg"]),
                        f"24-h paired differences ({fit['n_pairs']} pairs)", 24,
                        note="hourly FC (no storage term), 2005")
    if name == "AT-Neu":
        tw = bl("AT_Neu_Jul_2010.csv.gz")
        m = io.read_modis_sites_mod13a1(site="AT-Neu").sel(time=slice("2009-12-01", "2011-01-31"))
        return VPRMSite(name, 7, io.vprm_site_forcing(tw, m.where(m["valid"]), swir="swir21"), tw.time.values,
                        qc0(tw), "nee", "evi", (2.48, 0.19, 0.08),
                        "Neustift closed-path fit (Haslwanter et al. 2009, AFM 149, 291, Fig. 5)", 48,
                        tw["gpp"].values, tw["reco"].values, "July 2010, QC 0 half-hours; LSWI from SWIR2")
    if name == "FR-Pue":
        tw = bl("FR_Pue_May_2012.csv.gz")
        par = tw.ppfd_in.values
        par = np.where(np.isfinite(par) & (par > 20.0), par, 0.0)   # night-time sensor offset
        f = pd.read_csv(io.data_path("fr-pue_2007-2012_daily_rsofun", "p_model_drivers_forcing.csv"),
                        parse_dates=["date"])
        day = lambda t: (np.asarray(t, "datetime64[ns]") - np.datetime64("2007-01-01")) / np.timedelta64(1, "D")  # noqa: E731
        fap = np.interp(day(tw.time.values), day(f["date"].values + np.timedelta64(12, "h")), f["fapar"].values)
        return VPRMSite(name, 1, _fapar_forcing(tw, par, fap), tw.time.values, qc0(tw), "nee", "fapar",
                        (0.62, 0.63, 0.19),
                        "forest coefficients attributed to Richardson et al. 2006 (not checked against the paper)",
                        48, tw["gpp"].values, tw["reco"].values, "May 2012; fAPAR light mode; PPFD <= 20 set to 0")
    if name == "BE-Vie":
        ds = io.read_pyrealm_merged(io.data_path("be-vie_2014_pyrealm", "merged_BE-Vie_data.csv"))
        pick = lambda *c: ds[next(x for x in c if x in ds.data_vars)].values  # noqa: E731
        par, gpp = pick("ppfd_in", "ppfd"), pick("gpp", "gpp_fluxnet")
        ds = ds.assign(air_temperature=("time", pick("air_temperature", "tc")))
        obs = np.where((par > 50.0) & np.isfinite(gpp), gpp, np.nan)
        obs[1::2] = np.nan            # every second half-hour: halves the cost, keeps the coverage
        return VPRMSite(name, 3, _fapar_forcing(ds, par, ds["fapar"].values), ds.time.values, obs, "gpp",
                        "fapar", (1.0, 0.15, 0.0), "assumed: 1 + 0.15 GPP (partitioning and representativeness)",
                        48, gpp, note="2014 daytime GPP (PPFD > 50), every 2nd half-hour")
    raise KeyError(f"no VPRM calibration site {name!r}; available: {', '.join(VPRM_SITES)}")


def site_problem(site: VPRMSite, *, months=None, ar1: bool = True):
    """``(model_fn, FluxObservations, ErrorModel, used record index)`` of ``site`` on the used
    records (optionally only the calendar ``months``): Gaussian likelihood with the per-record
    sigma of the mean diurnal flux course, AR(1) model error (Schoups & Vrugt 2010, WRR 46,
    W10531) when ``ar1``, and a learned sigma inflation."""
    import jax
    from assimilation.observations import Observations
    from .builder import model_fn_from
    from .error_models import ErrorModel, FluxObservations, expected_flux, flux_sigma
    use = np.isfinite(site.obs)
    if months is not None:
        use &= np.isin(pd.DatetimeIndex(site.times).month, months)
    idx = np.flatnonzero(use)
    sig = flux_sigma(expected_flux(site.obs, site.times), *site.sigma_coef)
    obs = Observations.from_arrays(site.obs[idx], sig[idx] ** 2, names=(site.variable,),
                                   units=("umol m-2 s-1",), source=site.name)
    em = ErrorModel(family="gaussian", sigma_from="record", ar1=ar1, learn_inflation=True)
    fn = model_fn_from(site.model, site.names, jax.tree_util.tree_map(lambda x: x[idx], site.forcing))
    return fn, FluxObservations.from_observations(obs, time_index=idx, source=site.name), em, idx


def site_priors(site: VPRMSite):
    """Priors of :data:`NAMES` from the site model's parameter table."""
    from .priors import priors_from_model
    return priors_from_model(site.model, site.names)


def predict(site: VPRMSite, draws: dict) -> dict:
    """Model outputs (gpp, reco, nee; umol m-2 s-1) at every record for parameter ``draws``
    (arrays keyed by :data:`NAMES`, leading draw axes)."""
    from .builder import model_fn_from
    from .diagnostics import simulate_draws
    return simulate_draws(model_fn_from(site.model, site.names, site.forcing), draws, NAMES)
