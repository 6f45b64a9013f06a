"""forcing_from_dataset on the real readers (CH-Dav, FR-Hes, BE-Vie), solar geometry,
documented defaults, and bad input -> DataValidationError; run() -> Dataset with units."""
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from process_models.coupled import forcing_from_dataset, run, simulate
from process_models.io import data_path, read_europe_fluxdata, read_pyrealm_merged
from process_models.units import DataValidationError
from tests._files import HES, VIE

from ._shared import CH_DAV, ch_dav, enf_params, hourly_year, to_hourly


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def test_ch_dav_forcing_defaults_are_noted():
    ds = ch_dav().sel(time=slice("2019-06-01", "2019-06-30"))
    with pytest.warns(UserWarning, match="co2: missing, default 400"):
        f, notes = forcing_from_dataset(ds, **CH_DAV, return_notes=True)
    assert f.n_steps == ds.sizes["time"] and f.dt_seconds == 1800.0 and f.lai is None
    assert any(n.startswith("wind_speed: missing") for n in notes)
    np.testing.assert_allclose(f.air_temperature, ds["air_temperature"].values)
    np.testing.assert_allclose(f.co2, 400.0)


def test_cos_zenith_matches_solar_geometry_at_ch_dav():
    f = hourly_year()
    ds = to_hourly(ch_dav())
    cosz = np.asarray(f.cos_zenith)
    # summer solstice: noon elevation 90 - (46.82 - 23.44) deg -> cos z = 0.918
    day = np.asarray(ds["time"].dt.strftime("%m-%d") == "06-21")
    assert abs(cosz[day].max() - np.cos(np.deg2rad(46.8153 - 23.44))) < 0.01
    # solar noon at 9.86 E is ~11:20 UTC = 12:20 local standard time: the 12:00 interval
    hour = ds["time"].dt.hour.values[day]
    assert hour[np.argmax(cosz[day])] == 12
    assert np.corrcoef(cosz.clip(0), np.asarray(f.shortwave_in))[0, 1] > 0.8
    assert np.all(np.asarray(f.shortwave_in)[cosz < -0.1] < 5.0)            # dark at night


def test_fr_hes_uses_measured_co2_and_wind():
    ds = read_europe_fluxdata(data_path(*HES)).sel(time=slice("2016-07-01", "2016-07-10"))
    f, notes = _quiet(forcing_from_dataset, ds, 48.6742, 7.0647, return_notes=True)
    assert not any("default" in n for n in notes)
    assert 350 < float(jnp.median(f.co2)) < 500 and float(jnp.std(f.wind_speed)) > 0


def test_be_vie_needs_precipitation_and_uses_its_lai():
    ds = read_pyrealm_merged(data_path(*VIE)).sel(time=slice("2014-07-01", "2014-07-10"))
    with pytest.raises(DataValidationError, match="precipitation"):
        _quiet(forcing_from_dataset, ds, 50.305, 5.998)
    f, notes = _quiet(forcing_from_dataset, ds, 50.305, 5.998, precipitation=0.0, return_notes=True)
    assert f.lai is not None
    np.testing.assert_allclose(f.lai, ds["lai"].values)
    assert any("ppfd_in" in n for n in notes)                 # shortwave derived from PPFD
    f2 = _quiet(forcing_from_dataset, ds, 50.305, 5.998, lai=False, precipitation=0.0)
    assert f2.lai is None


def _small():
    return ch_dav().sel(time=slice("2019-07-01", "2019-07-05")).copy(deep=True)


def test_kelvin_temperature_raises_or_converts():
    ds = _small()
    ds["air_temperature"] = ds["air_temperature"] + 273.15            # still labelled degC
    with pytest.raises(DataValidationError, match="kelvin"):
        _quiet(forcing_from_dataset, ds, **CH_DAV)
    ds["air_temperature"].attrs["units"] = "K"                         # labelled: converted
    f = _quiet(forcing_from_dataset, ds, **CH_DAV)
    np.testing.assert_allclose(f.air_temperature, _small()["air_temperature"].values, atol=1e-9)


def test_vpd_in_kpa_labelled_hpa_raises():
    ds = _small()
    ds["vpd"] = ds["vpd"] / 10.0
    with pytest.raises(DataValidationError, match="kPa"):
        _quiet(forcing_from_dataset, ds, **CH_DAV)


def test_gap_in_required_driver_raises():
    ds = _small()
    ds["shortwave_in"][10] = np.nan
    with pytest.raises(DataValidationError, match="shortwave_in.*missing values"):
        _quiet(forcing_from_dataset, ds, **CH_DAV)


def test_missing_units_and_unknown_utc_offset_raise():
    ds = _small()
    ds["vpd"].attrs.pop("units")
    with pytest.raises(DataValidationError, match="units"):
        _quiet(forcing_from_dataset, ds, **CH_DAV)
    ds = _small()
    ds.attrs["utc_offset_hours"] = float("nan")
    with pytest.raises(DataValidationError, match="UTC offset"):
        _quiet(forcing_from_dataset, ds, **CH_DAV)


def test_mismatched_lengths_raise():
    ds = _small()
    with pytest.raises(DataValidationError, match="lai"):
        _quiet(forcing_from_dataset, ds, **CH_DAV, lai=np.ones(ds.sizes["time"] - 3))
    f = _quiet(forcing_from_dataset, ds, **CH_DAV)
    bad = f.replace(vpd=f.vpd[:-1])
    with pytest.raises(DataValidationError, match="different lengths"):
        simulate(enf_params(), bad)


def test_run_returns_dataset_with_units():
    out = _quiet(run, to_hourly(ch_dav()), enf_params(), **CH_DAV)
    assert out.sizes["time"] == 8760 and out["soil_water_content"].dims == ("time", "layer")
    assert out["gpp"].attrs["units"] == "umol m-2 s-1" and out["et"].attrs["units"] == "mm"
    assert "co2: missing" in out.attrs["forcing_notes"]
    np.testing.assert_allclose(out["depth"].values[0], 0.025)


def test_run_fills_gaps_and_returns_the_final_state():
    """With fill_gaps a forcing with driver gaps runs (without, it raises), the fills are in
    the notes, and the returned state is simulate's final state on the filled forcing."""
    from process_models.io import fill_gaps
    ds = _small().copy()
    ta = ds["air_temperature"].values.copy()
    ta[10:13] = np.nan
    ds["air_temperature"] = ds["air_temperature"].copy(data=ta)
    with pytest.raises(DataValidationError):
        _quiet(run, ds, enf_params(), **CH_DAV)
    out, state = _quiet(run, ds, enf_params(), **CH_DAV, fill_gaps=True, return_state=True)
    assert np.isfinite(out["gpp"].values).all() and "air_temperature: 3 missing" in out.attrs["forcing_notes"]
    filled, _ = fill_gaps(ds, ["air_temperature"])
    ref, ref_state = simulate(enf_params(), _quiet(forcing_from_dataset, filled, **CH_DAV),
                              return_state=True)
    np.testing.assert_allclose(out["gpp"].values, np.asarray(ref.gpp), rtol=1e-12)
    np.testing.assert_allclose(state.soil_water_content, ref_state.soil_water_content, rtol=1e-12)
