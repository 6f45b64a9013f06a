"""Withheld dates and the pivot Dataset."""
import numpy as np
import pandas as pd
import pytest

from assimilation.observations.pivot import to_pivot, validate_pivot, withhold_dates
from process_models.units import DataValidationError


@pytest.mark.parametrize("mode", ["random", "block"])
def test_withheld_dates_are_whole_dates_and_interior(mode):
    rng = np.random.default_rng(1)
    mask = rng.random((30, 700)) < 0.08
    train, test = withhold_dates(mask, 0.25, mode, seed=2)
    assert not (train & test).any() and ((train | test) == mask).all()
    hidden = test.any(0)
    assert (mask[:, hidden] == test[:, hidden]).all()           # a withheld date is withheld for every pixel
    d = np.flatnonzero(mask.any(0))
    assert not hidden[d[0]] and not hidden[d[-1]]
    share = hidden[d].mean()
    assert 0.12 < share < 0.4, share


def _pivot(**kw):
    days = pd.date_range("2020-01-01", periods=5)
    m = np.full((6, 5), 0.7)
    return to_pivot({"ndvi": m}, {"ndvi": np.full((6, 5), 0.02)}, days, [0.0, 10.0, 20.0], [5.0, -5.0],
                    method="multires_kalman", **kw)


def test_pivot_dataset_format():
    ds = _pivot()
    assert ds.ndvi.dims == ("time", "y", "x") and ds.sizes == {"time": 5, "y": 2, "x": 3}
    assert set(ds.data_vars) == {"ndvi", "ndvi_sd", "lai", "lai_sd", "fapar", "fapar_sd"}
    assert ds.lai.attrs["units"] == "m2 m-2" and ds.attrs["crs"] == "EPSG:3035"
    assert ds.time.dtype == np.dtype("datetime64[ns]")


def test_validate_pivot_rejects_bad_input():
    ds = _pivot()
    bad = ds.copy()
    bad["ndvi"] = bad.ndvi.where(bad.x > 0)
    with pytest.raises(DataValidationError, match="NaN"):
        validate_pivot(bad)
    with pytest.raises(DataValidationError, match="ndvi_sd"):
        validate_pivot(ds.drop_vars("ndvi_sd"))
    with pytest.raises(DataValidationError, match="contiguous"):
        validate_pivot(ds.isel(time=[0, 2, 3]))
