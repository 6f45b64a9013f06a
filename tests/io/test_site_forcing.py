"""The VPRM site-forcing builder on the real tower + MODIS pairs (US-PFa 2005, AT-Neu 2010)."""
import numpy as np
import pytest

from process_models.io import (data_path, park_falls_vprm_forcing, read_bigleaf_month,
                               read_modis_sites_mod13a1, read_park_falls, vprm_site_forcing)
from process_models.satellite import interpolate_to_times, lswi, yearly_statistics
from process_models.units import DataValidationError


def _inline(tower, t_evi, evi, t_lswi, lsw, year):
    """The construction the studies wrote out before the builder existed."""
    days = lambda t: (np.asarray(t, "datetime64[ns]") - np.datetime64(f"{year}-01-01")) / np.timedelta64(1, "D")
    hours = days(tower.time.values)
    e = interpolate_to_times(evi[:, None], days(t_evi), hours).values[:, 0]
    w = interpolate_to_times(lsw[:, None], days(t_lswi), hours).values[:, 0]
    grid = np.arange(0, 365, 8.0)
    stats = yearly_statistics(interpolate_to_times(evi[:, None], days(t_evi), grid).values,
                              interpolate_to_times(lsw[:, None], days(t_lswi), grid).values)
    return np.asarray(e), np.asarray(w), {k: float(v[0]) for k, v in stats.items()}


def test_park_falls_forcing_equals_inline_construction():
    d = read_park_falls()
    tower = d["tower"]
    sat = d["evi"]["evi"].to_series()
    refl = d["reflectance"].to_dataframe()
    lsw = np.asarray(lswi(refl["nir"].values, refl["swir"].values))
    e, w, stats = _inline(tower, sat.index.values, sat.values, refl.index.values, lsw, 2005)
    f, s = park_falls_vprm_forcing(with_statistics=True)
    assert s == stats
    np.testing.assert_array_equal(np.asarray(f.evi), e)
    np.testing.assert_array_equal(np.asarray(f.lswi), w)
    np.testing.assert_array_equal(np.asarray(f.temperature), tower.air_temperature.values)
    np.testing.assert_array_equal(np.asarray(f.par), tower.ppfd_in.values)
    n = tower.sizes["time"]
    assert f.class_fractions.shape == (n, 1) and f.fapar is None
    np.testing.assert_array_equal(np.asarray(f.evi_threshold), np.full(n, stats["evi_threshold"]))
    np.testing.assert_array_equal(np.asarray(f.lswi_max), np.full(n, stats["lswi_max"]))
    # hand check of one hour: linear between the bracketing composites
    ok = sat.dropna()
    days = lambda t: (np.asarray(t, "datetime64[ns]") - np.datetime64("2005-01-01")) / np.timedelta64(1, "D")
    i = 24 * 200
    assert float(f.evi[i]) == pytest.approx(np.interp(days(tower.time.values[i]), days(ok.index), ok.values),
                                            rel=1e-12)
    assert ok["2005"].min() < stats["evi_threshold"] < ok["2005"].max()


def test_at_neu_forcing_masked_dates_equal_dropped_dates():
    """QA-flagged composites set to NaN give the forcing of the series without them."""
    tw = read_bigleaf_month(data_path("fluxnet2015_month-subsets_bigleaf", "AT_Neu_Jul_2010.csv.gz"))
    m = read_modis_sites_mod13a1(site="AT-Neu").sel(time=slice("2009-12-01", "2011-01-31"))
    ok = np.asarray(m["valid"].values, bool)
    assert not ok.all()          # the test is only meaningful with masked dates
    lsw = np.asarray(lswi(m["nir"].values[ok], m["swir21"].values[ok]))
    e, w, stats = _inline(tw, m.time.values[ok], m["evi"].values[ok], m.time.values[ok], lsw, 2010)
    f, s = vprm_site_forcing(tw, m.where(m["valid"]), swir="swir21", with_statistics=True)
    np.testing.assert_allclose(np.asarray(f.evi), e, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(f.lswi), w, rtol=1e-12)
    assert s == pytest.approx(stats, rel=1e-12)


def test_indices_from_reflectances_and_fapar():
    d = read_park_falls()
    refl = d["reflectance"]
    f = vprm_site_forcing(d["tower"], refl, year=2005, fapar=np.full(d["tower"].sizes["time"], 0.7))
    assert np.all(np.isfinite(np.asarray(f.evi)))
    np.testing.assert_array_equal(np.asarray(f.fapar), 0.7)
    # given indices take precedence over the bands
    f2 = vprm_site_forcing(d["tower"], refl.assign(evi=refl["nir"] * 0 + 0.5), year=2005)
    np.testing.assert_array_equal(np.asarray(f2.evi), 0.5)


def test_bad_inputs_raise_named_errors():
    d = read_park_falls()
    with pytest.raises(DataValidationError, match="ppfd_in"):
        vprm_site_forcing(d["tower"].drop_vars("ppfd_in"), d["evi"], lswi_satellite=d["reflectance"])
    with pytest.raises(DataValidationError, match="swir"):
        vprm_site_forcing(d["tower"], d["evi"], lswi_satellite=d["reflectance"].drop_vars("swir"))
    with pytest.raises(DataValidationError, match="valid value"):
        vprm_site_forcing(d["tower"], d["evi"] * np.nan, lswi_satellite=d["reflectance"])
    with pytest.raises(DataValidationError, match="time"):
        vprm_site_forcing(d["tower"], d["evi"].isel(time=0), lswi_satellite=d["reflectance"])
