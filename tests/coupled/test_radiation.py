"""Solar geometry (process_models.solar), direct/diffuse split and PAR conversion."""
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from process_models import solar as S
from process_models.coupled import radiation as R


def test_solar_noon_zenith_equals_latitude_minus_declination():
    """At solar noon the zenith angle is |lat - dec|; at the June solstice dec = 23.44 deg."""
    hours = jnp.linspace(10.0, 14.0, 4801)                      # 3 s resolution
    lat, lon = 46.8153, 9.8559                                  # CH-Dav
    cz = S.cos_solar_zenith(172.0, hours - lon / 15.0, lat, lon)
    assert float(cz.max()) == pytest.approx(np.cos(np.deg2rad(lat - 23.44)), abs=1e-3)
    dec = np.rad2deg(float(S.solar_declination(172.0)))
    assert dec == pytest.approx(23.44, abs=0.05)
    assert float(S.solar_declination(81.0)) == pytest.approx(0.0, abs=np.deg2rad(0.5))   # equinox


@pytest.mark.parametrize("doy,eot_minutes", [(42, -14.2), (307, 16.4), (166, 0.0)])
def test_solar_noon_time_follows_equation_of_time(doy, eot_minutes):
    """Solar noon at Greenwich is 12:00 - EoT: about 12:14 UTC on 11 Feb, 11:44 on 3 Nov,
    ~12:00 mid-June (Spencer 1971 / NOAA; tolerance 0.5 min)."""
    hours = jnp.linspace(11.5, 12.5, 3601)                      # 1 s resolution
    cz = S.cos_solar_zenith(float(doy), hours, 30.0, 0.0)
    noon = float(hours[jnp.argmax(cz)])
    assert (12.0 - noon) * 60.0 == pytest.approx(eot_minutes, abs=0.5)
    assert float(S.equation_of_time(float(doy))) == pytest.approx(eot_minutes, abs=0.5)


def test_night_and_polar_night():
    assert float(S.cos_solar_zenith(172.0, 0.0, 46.8, 9.9)) < 0      # local midnight
    cz = S.cos_solar_zenith(355.0, jnp.linspace(0, 24, 97), 80.0, 0.0)
    assert float(cz.max()) < 0                                    # polar night


def test_direct_plus_diffuse_is_total_and_fractions_bounded():
    rng = np.random.default_rng(3)
    sw = rng.uniform(0, 1100, 500)
    cz = rng.uniform(-0.3, 1.0, 500)
    direct, diffuse = R.split_shortwave(sw, cz, day_of_year=rng.uniform(1, 365, 500))
    np.testing.assert_allclose(np.asarray(direct) + np.asarray(diffuse), sw, rtol=1e-12)
    assert np.all(np.asarray(direct) >= -1e-12) and np.all(np.asarray(diffuse) >= 0)
    night = cz <= 0
    np.testing.assert_allclose(np.asarray(direct)[night], 0.0, atol=1e-12)


def test_erbs_diffuse_fraction_continuous_and_decreasing():
    kt = jnp.linspace(0.0, 1.0, 2001)
    fd = np.asarray(R.diffuse_fraction_erbs(kt))
    assert np.all(np.abs(np.diff(fd)) < 2e-3)                    # continuous (joints within 1e-3)
    assert np.all(np.diff(fd) <= 1e-3)                            # non-increasing up to the joints
    assert fd[0] == pytest.approx(1.0) and fd[-1] == pytest.approx(0.165)
    # overcast -> mostly diffuse, clear sky -> mostly direct
    d_over, f_over = R.split_shortwave(100.0, 0.8)
    d_clear, f_clear = R.split_shortwave(850.0, 0.8)
    assert float(f_over) > 0.9 * 100 and float(d_clear) > 0.75 * 850


def test_par_conversion_and_longwave():
    assert float(R.par_from_shortwave(100.0)) == pytest.approx(100.0 * 0.46 * 4.57)
    assert float(R.par_from_shortwave(-5.0)) == 0.0
    eps = np.asarray(R.brutsaert_emissivity(jnp.array([0.0, 20.0]), jnp.array([1.0, 10.0])))
    assert np.all((eps > 0.65) & (eps < 0.9))
    lw = float(R.net_longwave(20.0, 10.0))
    assert 60.0 < lw < 130.0                                       # clear-sky net loss, W m-2


def test_gradients_finite():
    g = jax.grad(lambda lat: S.cos_solar_zenith(100.0, 11.0, lat, 5.0))(45.0)
    assert np.isfinite(float(g))
    gs = jax.grad(lambda sw: R.split_shortwave(sw, 0.6)[1])(400.0)
    assert np.isfinite(float(gs))


def test_cos_zenith_at_times_is_the_interval_midpoint_in_utc():
    """Half-hourly CET records of a year: the geometry at start + 15 min - 1 h, equal to the
    explicit day-of-year / hour computation (pandas) to round-off."""
    t = pd.date_range("2019-01-01", "2019-12-31 23:30", freq="30min")
    lat, lon = 46.8153, 9.8559
    got = S.cos_solar_zenith_at(t.values, lat, lon, utc_offset_hours=1.0, step_seconds=1800.0)
    mid = t - pd.Timedelta("1h") + pd.Timedelta("15min")
    hour = mid.hour + mid.minute / 60.0 + mid.second / 3600.0
    doy = np.asarray(mid.day_of_year, float)
    want = np.asarray(S.cos_solar_zenith(doy, np.asarray(hour, float), lat, lon))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # first record 2019-01-01 00:00 CET: middle at 23:15 UTC on 31 Dec 2018 (doy 365)
    d, h = S.day_of_year_and_hour_utc(t.values[:1], 1.0, 1800.0)
    assert (float(d[0]), float(h[0])) == (365.0, 23.25)
    # instants: no shift
    d, h = S.day_of_year_and_hour_utc(np.array(["2020-03-01T06:00"], "datetime64[s]"))
    assert (float(d[0]), float(h[0])) == (61.0, 6.0)            # leap year
    assert got.max() == pytest.approx(np.cos(np.deg2rad(lat - 23.44)), abs=2e-3)


def test_extraterrestrial_shortwave():
    assert float(S.extraterrestrial_shortwave(1.0)) == S.SOLAR_CONSTANT
    assert float(S.extraterrestrial_shortwave(-0.2, 10.0)) == 0.0
    assert float(S.extraterrestrial_shortwave(0.5, 3.0)) == pytest.approx(
        1361.0 * 0.5 * (1 + 0.033 * np.cos(2 * np.pi * 3 / 365)))
