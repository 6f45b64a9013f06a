"""Solar geometry: declination, equation of time, cosine of the solar zenith angle, and the
top-of-atmosphere irradiance.

Fractional-year series of Spencer (1971, Search 2:172) for the declination and the
equation of time, in the form of the NOAA Global Monitoring Division "General Solar
Position Calculations" note::

    g   = 2 pi / 365 (doy - 1 + (hour_utc - 12) / 24)                                        [rad]
    eqt = 229.18 (0.000075 + 0.001868 cos g - 0.032077 sin g - 0.014615 cos 2g - 0.040849 sin 2g)  [min]
    dec = 0.006918 - 0.399912 cos g + 0.070257 sin g - 0.006758 cos 2g + 0.000907 sin 2g
          - 0.002697 cos 3g + 0.00148 sin 3g                                                   [rad]
    hour angle = (hour_utc * 60 + eqt + 4 lon) / 4 - 180                                      [deg]
    cos(zenith) = sin(lat) sin(dec) + cos(lat) cos(dec) cos(hour angle)                       [1]

Top of the atmosphere on a horizontal plane: S0 E0 max(cos z, 0) with S0 = 1361 W m-2
(Kopp & Lean 2011, Geophys. Res. Lett. 38:L01706) and the eccentricity factor
E0 = 1 + 0.033 cos(2 pi doy / 365) (Duffie & Beckman 2013, Solar Engineering of Thermal
Processes, eq. 1.4.1b).

The array functions are pure JAX (jit/vmap/grad-able). :func:`cos_solar_zenith_at` takes
datetimes (NumPy, at the data edge): ecoflux times are interval starts in local standard
time, so it evaluates the geometry at the middle of each interval, in UTC.

Usage::

    from process_models.solar import cos_solar_zenith, cos_solar_zenith_at
    cz = cos_solar_zenith(172.0, 12.0, 46.8, 9.9)                    # doy, hour UTC, lat, lon
    cz = cos_solar_zenith_at(ds.time.values, 46.8, 9.9, utc_offset_hours=1.0, step_seconds=1800)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SOLAR_CONSTANT", "solar_declination", "equation_of_time", "cos_solar_zenith",
           "extraterrestrial_shortwave", "day_of_year_and_hour_utc", "cos_solar_zenith_at"]

SOLAR_CONSTANT = 1361.0
"""Total solar irradiance at 1 AU. Units: W m-2 (Kopp & Lean 2011, GRL 38:L01706)."""


def _fractional_year(day_of_year, hour_utc):
    """Spencer's fractional year g. Units: rad."""
    return 2.0 * jnp.pi / 365.0 * (day_of_year - 1.0 + (hour_utc - 12.0) / 24.0)


def solar_declination(day_of_year, hour_utc=12.0):
    """Solar declination (Spencer 1971). ``day_of_year`` 1..366, ``hour_utc`` h. Units: rad."""
    g = _fractional_year(day_of_year, hour_utc)
    return (0.006918 - 0.399912 * jnp.cos(g) + 0.070257 * jnp.sin(g) - 0.006758 * jnp.cos(2 * g)
            + 0.000907 * jnp.sin(2 * g) - 0.002697 * jnp.cos(3 * g) + 0.00148 * jnp.sin(3 * g))


def equation_of_time(day_of_year, hour_utc=12.0):
    """Equation of time (Spencer 1971; NOAA): apparent minus mean solar time. Units: min."""
    g = _fractional_year(day_of_year, hour_utc)
    return 229.18 * (0.000075 + 0.001868 * jnp.cos(g) - 0.032077 * jnp.sin(g)
                     - 0.014615 * jnp.cos(2 * g) - 0.040849 * jnp.sin(2 * g))


def cos_solar_zenith(day_of_year, hour_utc, latitude, longitude):
    """Cosine of the solar zenith angle (negative at night). Units: 1.

    Parameters
    ----------
    day_of_year : 1..366 (1 = 1 January). hour_utc : decimal hour UTC (h, 0..24).
    latitude, longitude : degrees_north, degrees_east.
    For an averaging interval use its midpoint (times in ecoflux are interval starts).
    """
    eqt = equation_of_time(day_of_year, hour_utc)
    dec = solar_declination(day_of_year, hour_utc)
    hour_angle = jnp.deg2rad((hour_utc * 60.0 + eqt + 4.0 * longitude) / 4.0 - 180.0)
    lat = jnp.deg2rad(latitude)
    return jnp.sin(lat) * jnp.sin(dec) + jnp.cos(lat) * jnp.cos(dec) * jnp.cos(hour_angle)


def extraterrestrial_shortwave(cos_zenith, day_of_year=None):
    """Top-of-atmosphere irradiance on a horizontal plane, S0 E0 max(cos z, 0) (E0 = 1 when
    the day is not given). Units: W m-2."""
    e0 = 1.0 if day_of_year is None else 1.0 + 0.033 * jnp.cos(2.0 * jnp.pi * day_of_year / 365.0)
    return SOLAR_CONSTANT * e0 * jnp.maximum(cos_zenith, 0.0)


def day_of_year_and_hour_utc(time, utc_offset_hours: float = 0.0, step_seconds: float = 0.0):
    """``(day_of_year, hour_utc)`` (float arrays; 1..366 and h) of the middle of the intervals
    that start at ``time`` (datetime64, local standard time UTC + ``utc_offset_hours``) and
    last ``step_seconds`` s (0: the instants themselves)."""
    t = (np.asarray(time, dtype="datetime64[ns]") + np.timedelta64(int(round(step_seconds * 5e8)), "ns")
         - np.timedelta64(int(round(utc_offset_hours * 3.6e12)), "ns"))
    day = t.astype("datetime64[D]")
    day_of_year = (day - t.astype("datetime64[Y]").astype("datetime64[D]")).astype(float) + 1.0
    hour_utc = (t - day).astype("timedelta64[ns]").astype(float) / 3.6e12
    return day_of_year, hour_utc


_cos_zenith_jit = jax.jit(cos_solar_zenith)


def cos_solar_zenith_at(time, latitude: float, longitude: float, *, utc_offset_hours: float = 0.0,
                        step_seconds: float = 0.0) -> np.ndarray:
    """:func:`cos_solar_zenith` (1) at the middle of each interval starting at ``time``
    (datetime64, local standard time UTC + ``utc_offset_hours``; ``step_seconds`` s long).
    NumPy in, NumPy out (call it at the data edge, outside ``jit``)."""
    doy, hour = day_of_year_and_hour_utc(time, utc_offset_hours, step_seconds)
    return np.asarray(_cos_zenith_jit(doy, hour, float(latitude), float(longitude)))
