"""Daily forcing statistics and daily training runs of the coupled model.

The emulator of :mod:`emulator.daily_emulator` steps one day at a time; the process model
(:class:`process_models.coupled.CoupledModel`) steps half-hourly. This module gives

* :class:`DailyForcing`: the day's meteorology as statistics of the sub-daily forcing
  (means, extremes, radiation-weighted daytime temperature and VPD, precipitation-weighted
  temperature, mean positive degrees), so the network sees the diurnal cycle it must
  integrate; :func:`daily_forcing` computes it from a :class:`CoupledForcing` (pure, jit-able);
* :func:`daily_process_run`: the process model's own ``step`` scanned over each day
  (``lax.scan`` of days of ``lax.scan`` of steps), returning the state at every day
  boundary and the day's mean carbon fluxes and summed water fluxes (the training and
  evaluation targets);
* :func:`site_forcing`: gap-filled half-hourly forcing of the shipped towers (CH-Dav
  2013-2022 diive, FR-Hes 2016 European Fluxes Database) through ``process_models.io``;
* :func:`perturb_forcing`: seeded weather perturbations of training windows (warming with
  VPD at constant relative humidity, Clausius-Clapeyron ~6 % K-1; precipitation factor;
  CO2 offset, air-pressure and wind factors).
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from process_models.coupled.params import CoupledForcing

DAILY_FIELDS = ("air_temperature", "air_temperature_min", "air_temperature_max", "air_temperature_daytime",
                "precipitation_temperature", "positive_degrees", "shortwave_in", "vpd", "vpd_daytime",
                "precipitation", "air_pressure", "co2", "wind_speed", "cos_zenith", "daylight_fraction")
"""Fields of :class:`DailyForcing` in vector order."""
STATE_FIELDS = ("soil_water_content", "snow_water_equivalent", "soil_temperature", "acclimation_temperature",
                "leaf", "wood", "root", "litter", "soil_fast", "soil_slow")
"""Daily state as a flat vector: 8 soil layers (m3 m-3), SWE (mm), soil and acclimation
temperature (degC), six carbon pools (g C m-2)."""
WATER_FLUXES = ("et", "transpiration", "soil_evaporation", "interception_evaporation", "runoff", "drainage")
CARBON_FLUXES = ("gpp", "reco", "nee", "ra", "rh")
SITE_FILES = {
    "CH-Dav": ("diive", "ch-dav_2013-2022_diive",
               "exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet", 46.8153, 9.8559),
    "FR-Hes": ("efd", "fr-hes_2016_europe-fluxdata", "FR-Hes_europe-fluxdata_2016.txt.gz", 48.6742, 7.0656),
}
"""Reader, data folder, file, latitude, longitude of the towers of :func:`site_forcing`
(as in ``experiments/sites.py``; the emulator package does not import ``experiments``)."""


@struct.dataclass
class DailyForcing:
    """One day's meteorology (time-major arrays, leading axis = days)."""

    air_temperature: jax.Array
    """Daily mean. Units: degC."""
    air_temperature_min: jax.Array
    """Units: degC."""
    air_temperature_max: jax.Array
    """Units: degC."""
    air_temperature_daytime: jax.Array
    """Shortwave-weighted mean air temperature (daytime). Units: degC."""
    precipitation_temperature: jax.Array
    """Precipitation-weighted mean air temperature (the daily mean on dry days). Units: degC."""
    positive_degrees: jax.Array
    """Mean of softplus(T_air / 1 degC) (degree-day melt driver). Units: degC."""
    shortwave_in: jax.Array
    """Daily mean incoming shortwave. Units: W m-2."""
    vpd: jax.Array
    """Daily mean vapour pressure deficit. Units: hPa."""
    vpd_daytime: jax.Array
    """Shortwave-weighted mean VPD. Units: hPa."""
    precipitation: jax.Array
    """Daily sum. Units: mm (per day)."""
    air_pressure: jax.Array
    """Units: kPa."""
    co2: jax.Array
    """Units: umol mol-1."""
    wind_speed: jax.Array
    """Units: m s-1."""
    cos_zenith: jax.Array
    """Daily mean of max(cos(solar zenith), 0). Units: 1."""
    daylight_fraction: jax.Array
    """Fraction of the day's steps with the sun above the horizon. Units: 1."""
    dt_seconds: float = struct.field(pytree_node=False, default=86400.0)
    """Step length (one day). Units: s. Static."""

    @property
    def n_steps(self) -> int:
        return int(jnp.shape(self.air_temperature)[0])

    def to_matrix(self):
        """(days, 15) in :data:`DAILY_FIELDS` order."""
        return jnp.stack([getattr(self, k) for k in DAILY_FIELDS], -1)

    @classmethod
    def from_matrix(cls, m):
        return cls(**{k: m[..., i] for i, k in enumerate(DAILY_FIELDS)})


def cast_floats(tree, dtype):
    """``tree`` with its floating-point leaves cast to ``dtype`` (other leaves unchanged)."""
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a, tree)


def steps_per_day(forcing: CoupledForcing) -> int:
    per_day = int(round(86400.0 / forcing.dt_seconds))
    if per_day < 1 or abs(per_day * forcing.dt_seconds - 86400.0) > 1e-6:
        raise ValueError(f"CoupledForcing.dt_seconds = {forcing.dt_seconds}: the daily emulator needs a step "
                         "that divides the day (e.g. 1800 or 3600 s).")
    return per_day


def _days(x, per_day):
    n = jnp.shape(x)[0] // per_day
    return jnp.reshape(x[:n * per_day], (n, per_day) + jnp.shape(x)[1:])


def daily_forcing(forcing: CoupledForcing) -> DailyForcing:
    """:class:`DailyForcing` of the whole days of a sub-daily :class:`CoupledForcing`
    (a trailing partial day is dropped). Pure and jit-able."""
    per_day = steps_per_day(forcing)
    d = {k: _days(jnp.asarray(getattr(forcing, k)), per_day) for k in
         ("air_temperature", "shortwave_in", "vpd", "precipitation", "air_pressure", "co2", "wind_speed",
          "cos_zenith")}
    t, sw, p = d["air_temperature"], d["shortwave_in"], d["precipitation"]
    mean = lambda x: jnp.mean(x, -1)                                    # noqa: E731
    wmean = lambda x, w: jnp.sum(x * w, -1) / jnp.maximum(jnp.sum(w, -1), 1e-9)   # noqa: E731
    dry = jnp.sum(p, -1) <= 0
    return DailyForcing(
        air_temperature=mean(t), air_temperature_min=jnp.min(t, -1), air_temperature_max=jnp.max(t, -1),
        air_temperature_daytime=jnp.where(jnp.sum(sw, -1) > 0, wmean(t, sw), mean(t)),
        precipitation_temperature=jnp.where(dry, mean(t), wmean(t, jnp.maximum(p, 0.0))),
        positive_degrees=mean(jax.nn.softplus(t)), shortwave_in=mean(sw), vpd=mean(d["vpd"]),
        vpd_daytime=jnp.where(jnp.sum(sw, -1) > 0, wmean(d["vpd"], sw), mean(d["vpd"])),
        precipitation=jnp.sum(p, -1), air_pressure=mean(d["air_pressure"]), co2=mean(d["co2"]),
        wind_speed=mean(d["wind_speed"]), cos_zenith=mean(jnp.maximum(d["cos_zenith"], 0.0)),
        daylight_fraction=mean((d["cos_zenith"] > 0).astype(t.dtype)))


def state_to_vector(state):
    """A :class:`CoupledState` as the (17,) vector of :data:`STATE_FIELDS`."""
    c = state.carbon
    acc = state.soil_temperature if state.acclimation_temperature is None else state.acclimation_temperature
    return jnp.concatenate([state.soil_water_content, jnp.stack(
        [state.snow_water_equivalent, state.soil_temperature, acc, c.leaf, c.wood, c.root, c.litter,
         c.soil_fast, c.soil_slow])])


def state_from_vector(v, n_layers: int = 8):
    """Inverse of :func:`state_to_vector` (canopy water 0: the daily emulator has no
    interception store, the day's intercepted water evaporates within the day)."""
    from process_models.coupled.params import CarbonPools, CoupledState
    s = v[n_layers:]
    return CoupledState(soil_water_content=v[:n_layers], snow_water_equivalent=s[0], soil_temperature=s[1],
                        carbon=CarbonPools(*(s[3 + i] for i in range(6))),
                        canopy_water=jnp.zeros_like(s[0]), acclimation_temperature=s[2])


def daily_process_run(model, params, forcing: CoupledForcing, initial_state=None):
    """The process model run over whole days: ``(states (D + 1, 17), daily dict)``.

    ``states[d]`` is the state (vector of :data:`STATE_FIELDS`) at the start of day ``d``
    (``states[D]`` the final state); ``daily`` holds the day means of GPP, Reco, NEE, Ra,
    Rh (umol m-2 s-1) and the day sums of ET and its parts, runoff and drainage (mm per
    day), and the day's change of canopy water (mm, the process model's interception
    store that the daily emulator does not carry). ``model`` is a
    :class:`~process_models.coupled.CoupledModel` (its ``step`` is scanned)."""
    per_day = steps_per_day(forcing)
    s0 = model.initial_state(params, forcing) if initial_state is None else initial_state
    from process_models.coupled.model import complete_state
    s0 = complete_state(s0)
    n_days = forcing.n_steps // per_day
    days = jax.tree_util.tree_map(lambda x: _days(x, per_day)[:n_days], forcing)

    def day(s, f):
        s1, out = jax.lax.scan(lambda a, b: model.step(a, b, params), s, f)
        agg = {k: jnp.mean(getattr(out, k)) for k in CARBON_FLUXES}
        agg.update({k: jnp.sum(getattr(out, k)) for k in WATER_FLUXES})
        agg["canopy_water_change"] = s1.canopy_water - s.canopy_water
        return s1, (state_to_vector(s1), agg)

    _, (states, daily) = jax.lax.scan(day, s0, days)
    return jnp.concatenate([state_to_vector(s0)[None], states]), daily


def site_forcing(site: str, dtype=None):
    """Gap-filled half-hourly :class:`CoupledForcing` of a shipped tower and its time
    stamps: ``"CH-Dav"`` (diive 2013-2022) or ``"FR-Hes"`` (European Fluxes Database
    2016). BE-Vie is not offered: its file has no precipitation."""
    files = SITE_FILES
    from process_models.coupled import forcing_from_dataset
    from process_models.coupled.xarray_api import FILLED_DRIVERS
    from process_models.io import data_path, fill_gaps, read_diive_parquet, read_europe_fluxdata
    if site not in files:
        raise KeyError(f"site {site!r}: the daily emulator's training sites are {sorted(files)} (BE-Vie has "
                       "no precipitation in the shipped file).")
    reader, folder, file, lat, lon = files[site]
    ds = {"diive": read_diive_parquet, "efd": read_europe_fluxdata}[reader](data_path(folder, file))
    ds, _ = fill_gaps(ds, [v for v in FILLED_DRIVERS if v in ds])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = forcing_from_dataset(ds, lat, lon, dtype=dtype)
    return f, np.asarray(ds.time.values)


def perturb_forcing(forcing: CoupledForcing, perturbation) -> CoupledForcing:
    """``forcing`` perturbed by ``perturbation`` = (warming degC, precipitation factor,
    CO2 offset umol mol-1, air-pressure factor, wind-speed factor): VPD scaled by
    exp(0.06 warming) (constant relative humidity, ~6 % K-1 Clausius-Clapeyron). The last
    three widen the training inputs beyond one tower (CH-Dav has constant default CO2 and
    wind and the pressure of 1639 m a.s.l.). Identity: (0, 1, 0, 1, 1)."""
    dt = forcing.air_temperature.dtype
    w, pf, dc, fp, fw = (jnp.asarray(perturbation[..., i], dt) for i in range(5))
    return forcing.replace(air_temperature=forcing.air_temperature + w, vpd=forcing.vpd * jnp.exp(0.06 * w),
                           precipitation=forcing.precipitation * pf, co2=forcing.co2 + dc,
                           air_pressure=forcing.air_pressure * fp, wind_speed=forcing.wind_speed * fw)


NO_PERTURBATION = (0.0, 1.0, 0.0, 1.0, 1.0)
