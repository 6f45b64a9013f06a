"""Training tables: the GSI proxy and photoperiod against their definitions, daily
aggregation conserving the hourly drivers, units on every variable, weights."""
import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from emulator.upscaling.tables import (FEATURES, add_derived_features, daily_table,
                                       growing_season_index, photoperiod, training_table)
from process_models.units import DataValidationError

# the tower error model fits sigma(F) of Richardson et al. (2006) with optax Adam
_ADAM = ("optax.adam (assimilation.observations.flux.fit_flux_magnitude_model) raises a Python "
         "float to its int32 step count")


def test_photoperiod_equinox_and_equator():
    # equator: 12 h every day; at the equinoxes (declination ~0) 12 h at any latitude
    assert np.allclose(photoperiod(0.0, np.arange(1, 366)), 12.0, atol=1e-9)
    assert abs(photoperiod(60.0, 81) - 12.0) < 0.1          # 22 March: delta ~ 0
    assert photoperiod(80.0, 172) == 24.0 and photoperiod(80.0, 355) == 0.0   # polar day / night
    assert 15.0 < photoperiod(47.0, 172) < 16.5             # mid-latitude midsummer


def test_growing_season_index_ramps():
    """Jolly et al. (2005): 0 at Tmin <= -2 degC, 1 at Tmin >= 5 degC with low VPD and day
    length >= 11 h, linear in between; the running mean of a constant is that constant."""
    n = 50
    assert np.allclose(growing_season_index(np.full(n, -5.0), np.zeros(n), np.full(n, 14.0)), 0.0)
    assert np.allclose(growing_season_index(np.full(n, 8.0), np.zeros(n), np.full(n, 14.0)), 1.0)
    assert np.allclose(growing_season_index(np.full(n, 1.5), np.zeros(n), np.full(n, 14.0)), 0.5)
    # VPD 2500 Pa = 25 hPa: i_VPD = 1 - (2500 - 900)/3200 = 0.5; day length 10.5 h: 0.5
    assert np.allclose(growing_season_index(np.full(n, 8.0), np.full(n, 25.0), np.full(n, 10.5)), 0.25)
    step = np.r_[np.zeros(25), np.ones(25)] * 10.0 - 2.0     # Tmin -2 -> 8 degC
    g = growing_season_index(step, np.zeros(n), np.full(n, 14.0))
    assert g[0] == 0.0 and g[-1] == 1.0 and np.all(np.diff(g) >= 0)
    assert np.isclose(g[24], 10 / 21) and np.isclose(g[25], 11 / 21)   # centred 21-day mean


def test_missing_driver_named():
    ds = xr.Dataset({"air_temperature": ("time", np.zeros(3))},
                    coords={"time": pd.date_range("2020-01-01", periods=3)})
    with pytest.raises(DataValidationError, match="ppfd_in"):
        add_derived_features(ds, vprm_class=1, latitude=45.0)
    ds["ppfd_in"] = ("time", np.ones(3))
    with pytest.raises(DataValidationError, match="vprm_class"):
        add_derived_features(ds, latitude=45.0)


@pytest.fixture(scope="module")
def at_neu():
    with jax.numpy_dtype_promotion("standard"):     # _ADAM
        return daily_table("AT-Neu")


def test_daily_table_at_neu(at_neu):
    d = at_neu
    assert d.sizes["time"] == 31 and d.sizes["hour"] == 24
    assert all("units" in d[v].attrs for v in d.data_vars)
    assert d["nee"].attrs["units"] == "umol m-2 s-1"
    # the hourly drivers average back to the daily means (complete days: conservation)
    assert np.allclose(d["ppfd_in_hourly"].mean("hour"), d["ppfd_in"], rtol=1e-12, atol=1e-9)
    assert np.allclose(d["air_temperature_hourly"].mean("hour"), d["air_temperature"], atol=1e-9)
    # FLUXNET night-time partitioning: NEE = Reco - GPP per half-hour, so per day
    assert np.allclose(d["nee"], d["reco"] - d["gpp"], atol=0.05)
    # satellite at the tower: real EVI and fAPAR, no proxy
    assert (d["has_evi"] == 1).all() and (d["has_fapar"] == 1).all() and (d["greenness_is_proxy"] == 0).all()
    assert np.allclose(d["greenness"], d["evi"]) and float(d["evi"].mean()) > 0.3   # July grassland
    assert ((d["qc_fraction"] >= 0) & (d["qc_fraction"] <= 1)).all() and (d["nee_sd"] > 0).all()
    assert int(d["class_7"].sum()) == 31 and int(d["class_1"].sum()) == 0


@pytest.mark.standard_promotion(_ADAM)
def test_training_table_weights(at_neu):
    t = training_table(["AT-Neu", "BE-Vie"])
    assert set(np.unique(t["site"].values)) == {"AT-Neu", "BE-Vie"}
    assert all(np.isfinite(t[f].values).all() for f in FEATURES)
    has = np.isfinite(t["nee"].values) | np.isfinite(t["gpp"].values)
    assert np.isclose(t["weight"].values[has].mean(), 1.0)
    # BE-Vie: GPP only and fAPAR from the tower file, GSI greenness proxy
    b = t.isel(sample=np.flatnonzero(t["site"].values == "BE-Vie"))
    assert np.isnan(b["nee"].values).all() and np.isfinite(b["gpp"].values).all()
    assert (b["has_fapar"] == 1).all() and (b["greenness_is_proxy"] == 1).all()
    assert np.allclose(b["greenness"], 0.1 + 0.35 * b["gsi"])


@pytest.mark.standard_promotion(_ADAM)
def test_hourly_table_averages_to_daily(at_neu):
    from emulator.upscaling.tables import hourly_table
    h = hourly_table("AT-Neu")
    assert h.sizes["time"] == 31 * 24 and h["nee"].attrs["units"] == "umol m-2 s-1"
    daily = h["nee"].resample(time="1D").mean()
    assert np.allclose(daily.values, at_neu["nee"].values, atol=1e-9)          # same records
    # two half-hours per hour: the hourly error is sqrt(mean variance / 2)
    assert float(h["nee_sd"].mean()) < float(load_half_hour_sd())
    assert np.allclose(h["greenness"].values.reshape(31, 24), at_neu["greenness"].values[:, None])


def load_half_hour_sd():
    from emulator.upscaling.tables import load_tower
    return np.nanmean(load_tower("AT-Neu")[0]["nee_sd"].values)
