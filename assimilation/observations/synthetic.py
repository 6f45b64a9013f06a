"""Synthetic observations of a known truth for twin experiments.

Satellite (:func:`synthetic_satellite`): a smooth phenology truth (double logistic,
:func:`double_logistic`, Beck et al. 2006, Remote Sens. Environ. 100, 321; Zhang et al.
2003) observed by sensors that differ in revisit, cloud masking, noise, bias and gain
(the observation operator of :mod:`.fusion.sensors`: ``y = a + b x + v``). Cloudiness is
temporally correlated: a latent AR(1) Gaussian per pixel (e-folding time
``cloud_days``, partly shared between pixels) thresholded at the cloud fraction; cloudy
acquisitions get Sentinel-2 SCL-like classes (8/9/10 cloud, 3 shadow; 4 clear
vegetation, 0 no acquisition), and a share ``undetected_cloud`` of cloudy scenes is
labelled clear with a cloud-depressed value (the Sen2Cor scene classification misses part
of the thin clouds; Baetens et al. 2019, Remote Sens. 11, 433, compare it with MAJA and
Fmask).

Flux tower (:func:`synthetic_flux_nee`): half-hourly NEE with instrument outages (long
blocks), more night-time gaps (u* filtering) than day-time gaps (QC), and heteroscedastic
Laplace errors with ``sigma = a + b |NEE|`` per sign (Richardson et al. 2006, Agric. For.
Meteorol. 136, 1-18; Laplace scale ``sigma / sqrt(2)``). Default coefficients: Neustift
grassland, closed path (2.48 + 0.19 F for F > 0, 2.48 + 0.08 |F| for F < 0, umol m-2 s-1;
Haslwanter, Hammerle & Wohlfahrt 2009, Agric. For. Meteorol. 149, 291, Fig. 5). The forest coefficients
attributed to Richardson et al. (2006) in :data:`FLUX_ERROR_MODELS` are not verified
against the paper (see there).

Example::

    truth = phenology_truth(pd.date_range("2022-01-01", "2022-12-31"), n_pixels=4, seed=1)
    sat = synthetic_satellite(truth, sensors=(SENTINEL2, SENTINEL3), seed=2)
    fused = fuse(sensor_datasets(sat), method="kalman")          # fusion.xarray_api.fuse
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.signal
import scipy.special
import xarray as xr

__all__ = ["double_logistic", "phenology_truth", "SensorSpec", "SENTINEL2", "SENTINEL3", "MODIS",
           "synthetic_satellite", "sensor_datasets", "FLUX_ERROR_MODELS", "flux_random_error_sd",
           "synthetic_flux_nee", "synthetic_nee_truth"]


def double_logistic(t_days, vmin=0.15, vmax=0.6, sos=120.0, eos=280.0, rsp=8.0, rau=10.0):
    """``v(t) = vmin + (vmax - vmin) (1/(1+exp(-(t-sos)/rsp)) - 1/(1+exp(-(t-eos)/rau)))``:
    green-up at day-of-year ``sos`` (width ``rsp`` d), senescence at ``eos`` (width ``rau``
    d). Units: those of vmin/vmax (EVI: 1); t in days of year."""
    t = np.asarray(t_days, float)
    return vmin + (vmax - vmin) * (scipy.special.expit((t - sos) / rsp) - scipy.special.expit((t - eos) / rau))


def phenology_truth(days, n_pixels: int = 1, seed: int = 0, variable: str = "evi", **params) -> xr.DataArray:
    """Daily truth (time, pixel) from :func:`double_logistic` with per-pixel parameters
    jittered around ``params`` (sos/eos +- 10 d, vmax +- 0.05)."""
    days = pd.DatetimeIndex(days)
    rng = np.random.default_rng(seed)
    p = {"vmin": 0.15, "vmax": 0.6, "sos": 120.0, "eos": 280.0, "rsp": 8.0, "rau": 10.0, **params}
    doy = days.day_of_year.values.astype(float)
    jit = lambda k, s: p[k] + s * rng.standard_normal(n_pixels)
    v = double_logistic(doy[:, None], p["vmin"], jit("vmax", 0.05), jit("sos", 10.0), jit("eos", 10.0),
                        p["rsp"], p["rau"])
    return xr.DataArray(v, dims=("time", "pixel"), coords={"time": days, "pixel": np.arange(n_pixels)},
                        name=variable, attrs={"units": "1", "long_name": f"true {variable} (double logistic)"})


@dataclass(frozen=True)
class SensorSpec:
    """One sensor's sampling and observation operator ``y = bias + gain x + N(0, noise_sd^2)``."""

    name: str
    revisit_days: int = 5
    """Days between acquisitions."""
    noise_sd: float = 0.015
    """Observation-error sd (unit of the index)."""
    bias: float = 0.0
    """Additive bias a (unit of the index)."""
    gain: float = 1.0
    """Multiplicative gain b (1)."""
    cloud_fraction: float = 0.5
    """Share of acquisitions under cloud (1)."""
    cloud_days: float = 8.0
    """e-folding time of the latent cloudiness (d)."""
    phase_days: int = 0
    """Day of the first acquisition."""
    undetected_cloud: float = 0.0
    """Share of cloudy acquisitions labelled clear (value depressed by 0.05-0.25 x truth)."""


SENTINEL2 = SensorSpec("sentinel2", revisit_days=5, noise_sd=0.015, cloud_fraction=0.55, cloud_days=8.0)
"""Sentinel-2-like: 10 m, 5-day revisit, SCL cloud mask, low noise, reference scale."""
SENTINEL3 = SensorSpec("sentinel3", revisit_days=1, noise_sd=0.04, bias=0.03, gain=0.85, cloud_fraction=0.55,
                       cloud_days=8.0)
"""Sentinel-3-OLCI-like: 300 m, daily, noisier, biased (mixed pixels), gain != 1."""
MODIS = SensorSpec("modis", revisit_days=1, noise_sd=0.035, bias=-0.02, gain=0.9, cloud_fraction=0.55,
                   cloud_days=8.0)
"""MODIS-like: 250-500 m, daily, noisier, biased."""


def _cloud_latent(n_days, n_pixels, corr_days, independence, rng):
    """Stationary AR(1) N(0, 1) series per pixel, correlation exp(-1/corr_days) at lag 1 d;
    innovations shared between pixels with weight 1 - independence."""
    rho = np.exp(-1.0 / max(corr_days, 1e-6))
    e = np.sqrt(1 - independence) * rng.standard_normal((n_days, 1)) + \
        np.sqrt(independence) * rng.standard_normal((n_days, n_pixels))
    c = np.sqrt(1 - rho**2)
    return scipy.signal.lfilter([c], [1.0, -rho], e, axis=0, zi=((1 - c) * e[:1]))[0]


def synthetic_satellite(truth: xr.DataArray, sensors=(SENTINEL2, SENTINEL3), seed: int = 0,
                        pixel_independence: float = 0.5) -> xr.Dataset:
    """Observe ``truth`` (time daily, [pixel]) with each sensor.

    Returns a Dataset with ``truth``; per sensor ``{name}`` (observed value, NaN where
    no acquisition or cloud-masked), ``{name}_scl`` (SCL-like class: 0 no acquisition,
    3 shadow, 4 clear, 8/9/10 cloud) and ``{name}_clear`` (bool); the sensor settings in
    ``attrs``. ``pixel_independence`` in [0, 1]: 0 = one cloud field for all pixels.
    """
    if "time" not in truth.dims:
        raise ValueError("truth needs a daily 'time' dimension")
    tr = truth if truth.ndim == 2 else truth.expand_dims(pixel=[0], axis=1)
    tr = tr.transpose("time", ...)
    T, P = tr.shape
    rng = np.random.default_rng(seed)
    out = {"truth": tr.assign_attrs(units=truth.attrs.get("units", "1"))}
    attrs = {}
    x = tr.values
    for spec in sensors:
        acq = (np.arange(T) - spec.phase_days) % spec.revisit_days == 0
        acq &= np.arange(T) >= spec.phase_days
        z = _cloud_latent(T, P, spec.cloud_days, pixel_independence, rng)
        cloudy = z > scipy.special.ndtri(1 - spec.cloud_fraction)
        scl = np.where(acq[:, None], 4, 0).astype(np.uint8)
        kind = rng.choice(np.array([3, 8, 9, 10], np.uint8), size=(T, P), p=[0.15, 0.3, 0.4, 0.15])
        scl = np.where(acq[:, None] & cloudy, kind, scl)
        y = spec.bias + spec.gain * x + spec.noise_sd * rng.standard_normal((T, P))
        missed = acq[:, None] & cloudy & (rng.random((T, P)) < spec.undetected_cloud)
        y = np.where(missed, y - rng.uniform(0.05, 0.25, (T, P)) * x, y)
        scl = np.where(missed, 4, scl)
        clear = scl == 4
        out[spec.name] = xr.DataArray(np.where(clear, y, np.nan), dims=tr.dims, coords=tr.coords,
                                      attrs={"units": truth.attrs.get("units", "1"),
                                             "long_name": f"{spec.name}-like observation of {truth.name}"})
        out[f"{spec.name}_scl"] = xr.DataArray(scl, dims=tr.dims, coords=tr.coords,
                                               attrs={"units": "1", "long_name": "SCL-like scene class",
                                                      "flag_values": "0 3 4 8 9 10",
                                                      "flag_meanings": "no_acquisition cloud_shadow vegetation "
                                                                       "cloud_medium cloud_high thin_cirrus"})
        out[f"{spec.name}_clear"] = xr.DataArray(clear, dims=tr.dims, coords=tr.coords, attrs={"units": "1"})
        for k in ("revisit_days", "noise_sd", "bias", "gain", "cloud_fraction", "cloud_days", "undetected_cloud"):
            attrs[f"{spec.name}_{k}"] = getattr(spec, k)
    ds = xr.Dataset(out)
    ds.attrs.update(attrs, sensors=", ".join(s.name for s in sensors), seed=seed, variable=str(truth.name))
    return ds


def sensor_datasets(sat: xr.Dataset, variable: str | None = None) -> dict:
    """Split :func:`synthetic_satellite` output into one Dataset per sensor (only its
    acquisition days), the input of :func:`..fusion.fuse`."""
    variable = variable or sat.attrs.get("variable", "evi")
    res = {}
    for name in sat.attrs["sensors"].split(", "):
        keep = (sat[f"{name}_scl"] != 0).any("pixel").values
        d = xr.Dataset({variable: sat[name].isel(time=keep)})
        d.attrs["sensor"] = name
        res[name] = d
    return res


# ----------------------------------------------------------------------------- flux tower
FLUX_ERROR_MODELS = {
    "neustift_closed_path": {"a_pos": 2.48, "b_pos": 0.19, "a_neg": 2.48, "b_neg": 0.08},
    "neustift_open_path": {"a_pos": 2.50, "b_pos": 0.20, "a_neg": 2.50, "b_neg": 0.05},
    "richardson2006_forest": {"a_pos": 0.62, "b_pos": 0.63, "a_neg": 1.42, "b_neg": 0.19},
}
"""sigma = a + b |F| per sign of F (umol m-2 s-1), F = NEE.

* ``neustift_closed_path`` / ``neustift_open_path``: the Neustift grassland fits of Haslwanter,
  Hammerle & Wohlfahrt (2009, Agric. For. Meteorol. 149, 291), Fig. 5 caption (CP: 0.19 F + 2.48 and
  -0.08 F + 2.48, r2 = 0.78; OP: 0.20 F + 2.50 and -0.05 F + 2.50, r2 = 0.86; method of
  Richardson & Hollinger 2005). Verified against the caption (PubMed Central PMC3898020).
* ``richardson2006_forest``: 0.62 + 0.63 F (F > 0), 1.42 + 0.19 |F| (F < 0), the forest
  regressions as they are commonly quoted for Richardson et al. (2006, Agric. For.
  Meteorol. 136, 1-18, Table 2: sigma(delta) = a + b|F| for the forest sites, positive and
  negative fluxes). NOT verified: neither the paper's table nor an implementation quoting
  these numbers could be consulted, so the four values, and whether they are sigma(delta)
  of the 24-h paired differences or the error sd sigma(eps) = sigma(delta) / sqrt(2) (for
  independent errors), are unconfirmed. Verified from the paper's abstract: the random
  error is closer to Laplace than Gaussian, is inferred from pairs 24 h apart under similar
  conditions, and grows linearly with the flux magnitude; Richardson et al. (2008, Agric.
  For. Meteorol. 148, 38) find the scaling for negative fluxes nearly identical to the
  forest relation. Check Table 2 before relying on these values; fit site values with
  :func:`assimilation.observations.flux.fit_flux_magnitude_model` where data allow.
"""


def flux_random_error_sd(nee, model="neustift_closed_path"):
    """Random-error sd of half-hourly NEE (umol m-2 s-1), heteroscedastic per sign."""
    c = FLUX_ERROR_MODELS[model] if isinstance(model, str) else model
    nee = np.asarray(nee, float)
    return np.where(nee >= 0, c["a_pos"] + c["b_pos"] * nee, c["a_neg"] + c["b_neg"] * np.abs(nee))


def synthetic_nee_truth(times, gpp_max: float = 20.0, reco_ref: float = 3.0, seed: int = 0) -> xr.Dataset:
    """A smooth NEE truth for tests: GPP = gpp_max x seasonal double logistic x daylight
    shape, Reco = reco_ref x Q10 = 2 of a seasonal temperature; NEE = Reco - GPP
    (umol m-2 s-1). Returns nee, gpp, reco, ppfd_in (umol m-2 s-1), air_temperature (degC)."""
    t = pd.DatetimeIndex(times)
    doy = t.day_of_year.values + (t.hour.values + t.minute.values / 60) / 24
    rng = np.random.default_rng(seed)
    hour = t.hour.values + t.minute.values / 60
    sun = np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None) * (0.6 + 0.4 * np.sin(np.pi * (doy - 80) / 365).clip(0))
    cloud = 1 - 0.5 * rng.random(len(t)) ** 3
    ppfd = 2000 * sun * cloud
    green = double_logistic(doy, 0.05, 1.0, 130, 280, 8, 12)
    gpp = gpp_max * green * ppfd / (ppfd + 500)
    temp = 8 - 12 * np.cos(2 * np.pi * (doy - 20) / 365) + 5 * np.sin(np.pi * (hour - 9) / 12)
    reco = reco_ref * 2.0 ** ((temp - 10) / 10)
    coords = {"time": t}
    mk = lambda v, u, n: xr.DataArray(v, dims="time", coords=coords, attrs={"units": u, "long_name": n})
    return xr.Dataset({"nee": mk(reco - gpp, "umol m-2 s-1", "true net ecosystem exchange"),
                       "gpp": mk(gpp, "umol m-2 s-1", "true gross primary production"),
                       "reco": mk(reco, "umol m-2 s-1", "true ecosystem respiration"),
                       "ppfd_in": mk(ppfd, "umol m-2 s-1", "incoming PPFD"),
                       "air_temperature": mk(temp, "degC", "air temperature")})


def synthetic_flux_nee(nee_true, *, is_night=None, ppfd=None, error_model="neustift_closed_path",
                       outages_per_year: float = 6.0, outage_days=(1.0, 14.0), night_gap_fraction: float = 0.6,
                       day_gap_fraction: float = 0.15, seed: int = 0) -> xr.Dataset:
    """Observed half-hourly (or hourly) NEE from a true series.

    Parameters
    ----------
    nee_true : xarray.DataArray (time) in umol m-2 s-1 (or a Dataset with ``nee``).
    is_night : bool DataArray/array (time), or ``ppfd`` (umol m-2 s-1; night = PPFD < 20,
        about SW_IN < 10 W m-2); default: 18:00-06:00.
    error_model : name in :data:`FLUX_ERROR_MODELS` or a dict of a_pos, b_pos, a_neg, b_neg.
    outages_per_year, outage_days : Poisson number of instrument outages and their length
        range (d), all records lost.
    night_gap_fraction, day_gap_fraction : share of remaining night (u* filter) and day
        (QC, spikes, rain) records removed at random.

    Returns
    -------
    Dataset with ``nee`` (observed, NaN in gaps), ``nee_true``, ``nee_sigma`` (the random-
    error sd used, umol m-2 s-1), ``gap_reason`` (0 measured, 1 outage, 2 night u*, 3 day
    QC), ``is_night``.
    """
    if isinstance(nee_true, xr.Dataset):
        ppfd = nee_true["ppfd_in"] if ppfd is None and "ppfd_in" in nee_true else ppfd
        nee_true = nee_true["nee"]
    f = np.asarray(nee_true.values, float)
    t = pd.DatetimeIndex(nee_true["time"].values)
    n = len(t)
    rng = np.random.default_rng(seed)
    if is_night is not None:
        night = np.asarray(is_night, bool)
    elif ppfd is not None:
        night = np.asarray(ppfd, float) < 20.0
    else:
        night = (t.hour < 6) | (t.hour >= 18)
    step_days = float(np.median(np.diff(t.values)) / np.timedelta64(1, "D")) if n > 1 else 1.0
    span_years = n * step_days / 365.25
    k = rng.poisson(outages_per_year * span_years)
    outage = np.zeros(n, bool)
    starts = rng.integers(0, n, k)
    lens = (rng.uniform(*outage_days, k) / step_days).astype(int)
    idx = np.arange(n)
    for s, ln in zip(starts, lens):      # a handful of outages (not a loop over time steps)
        outage |= (idx >= s) & (idx < s + ln)
    ustar = ~outage & night & (rng.random(n) < night_gap_fraction)
    qc = ~outage & ~night & (rng.random(n) < day_gap_fraction)
    reason = np.select([outage, ustar, qc], [1, 2, 3], 0).astype(np.int8)
    sigma = flux_random_error_sd(f, error_model)
    obs = f + rng.laplace(0.0, sigma / np.sqrt(2.0))
    obs = np.where(reason == 0, obs, np.nan)
    coords = {"time": nee_true["time"]}
    u = "umol m-2 s-1"
    ds = xr.Dataset({
        "nee": xr.DataArray(obs, dims="time", coords=coords, attrs={"units": u, "long_name": "observed NEE (synthetic)"}),
        "nee_true": xr.DataArray(f, dims="time", coords=coords, attrs={"units": u, "long_name": "true NEE"}),
        "nee_sigma": xr.DataArray(sigma, dims="time", coords=coords,
                                  attrs={"units": u, "long_name": "random-error sd (Laplace scale x sqrt 2)"}),
        "gap_reason": xr.DataArray(reason, dims="time", coords=coords,
                                   attrs={"units": "1", "flag_values": "0 1 2 3",
                                          "flag_meanings": "measured instrument_outage night_ustar day_qc"}),
        "is_night": xr.DataArray(night, dims="time", coords=coords, attrs={"units": "1"}),
    })
    ds.attrs.update(error_model=error_model if isinstance(error_model, str) else "custom", seed=seed,
                    outages=int(k), time_convention="time = start of the averaging interval",
                    sign_convention="NEE = Reco - GPP, positive = source")
    return ds
