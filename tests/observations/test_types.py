"""The common Observations type and its xarray edge, on the real CH-Dav tower file."""
import numpy as np
import pytest
import xarray as xr

from assimilation.observations import Observations, to_observations
from process_models.io import data_path, read_diive_parquet
from process_models.units import DataValidationError
from tests._files import DAV


def test_from_arrays_masks_nan_and_fill_values_without_nan_in_values():
    o = Observations.from_arrays([1.0, np.nan, -9999.0, 3.0], [0.1, 0.1, 0.1, 0.2],
                                 names=("nee",), units=("umol m-2 s-1",))
    np.testing.assert_array_equal(np.asarray(o.mask[:, 0]), [True, False, False, True])
    assert np.all(np.isfinite(np.asarray(o.values))) and np.all(np.asarray(o.variance) > 0)
    np.testing.assert_allclose(np.asarray(o.variance[[0, 3], 0]), [0.1, 0.2])
    assert np.isnan(np.asarray(o.with_nan())[1, 0])
    with pytest.raises(DataValidationError, match="variance"):
        Observations.from_arrays([1.0, 2.0], [0.1, 0.0], names=("nee",), units=("1",))


def test_to_observations_on_real_tower_data():
    ds = read_diive_parquet(data_path(*DAV)).sel(time="2019-06")
    nee = [v for v in ds.data_vars if v.lower().startswith("nee")][0]
    o = to_observations(ds, {"nee": nee}, sd={"nee": lambda v: 0.6 + 0.2 * np.abs(v)},
                        units={"nee": ds[nee].attrs["units"]})
    v = ds[nee].values
    assert o.values.shape == (ds.sizes["time"], 1) and o.names == ("nee",)
    np.testing.assert_array_equal(np.asarray(o.mask[:, 0]), np.isfinite(v) & (v != -9999))
    used = np.asarray(o.mask[:, 0])
    np.testing.assert_allclose(np.asarray(o.variance[used, 0]), (0.6 + 0.2 * np.abs(v[used])) ** 2)
    with pytest.raises(DataValidationError, match="units"):
        to_observations(ds, {"nee": nee}, sd={"nee": 1.0}, units={"nee": "mg m-2 s-1"})
    with pytest.raises(DataValidationError, match="error sd"):
        to_observations(ds, [nee])
    with pytest.raises(DataValidationError, match="not in the dataset"):
        to_observations(ds, ["no_such_flux"], sd={"no_such_flux": 1.0})
