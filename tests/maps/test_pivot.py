"""The daily pivot on the real Romania cube: format checks, tiling independence, all-cloud
pixels."""
import numpy as np
import pandas as pd
import pytest

from assimilation.maps import daily_pivot, pivot_arrays, validate_pivot
from assimilation.maps.pivot import FLAG_PRIOR
from process_models.units import DataValidationError


@pytest.fixture(scope="module")
def window(romania_context):
    return romania_context.obs.isel(y=slice(0, 4), x=slice(0, 4))


def test_pivot_is_complete_with_positive_sd(romania_context, window):
    ctx = romania_context
    pv = daily_pivot(window, ("evi", "lswi"), ctx.days, params=ctx.fusion)
    assert validate_pivot(pv) is pv
    assert pv["evi"].dims == ("time", "y", "x") and pv.sizes["time"] == len(ctx.days)
    # summer forest EVI of the pivot lies in the range of the clear observations around it
    july = pv["evi"].sel(time=slice("2019-07-01", "2019-07-31")).mean()
    obs = window["evi"].sel(time=slice("2019-06-01", "2019-08-31"))
    assert float(obs.min()) - 0.05 < float(july) < float(obs.max()) + 0.05
    # the sd shrinks at an observation and grows in the gaps
    sd = pv["evi_sd"].isel(y=0, x=0).to_series()
    seen = pd.DatetimeIndex(window["time"].values[np.isfinite(window["evi"].isel(y=0, x=0).values)])
    seen = seen[(seen >= pv.time.values[0]) & (seen <= pv.time.values[-1])]
    assert sd.loc[seen].mean() < sd.mean()


def test_pivot_of_a_pixel_does_not_depend_on_its_neighbours(romania_context, window):
    ctx = romania_context
    big, _ = pivot_arrays(window, ("evi",), ctx.days, ctx.fusion, ctx.prior)
    one, _ = pivot_arrays(window.isel(y=[2], x=[1]), ("evi",), ctx.days, ctx.fusion, ctx.prior)
    np.testing.assert_allclose(one["evi"][0][0], big["evi"][0][2 * 4 + 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(one["evi"][1][0], big["evi"][1][2 * 4 + 1], rtol=0, atol=1e-12)


def test_all_cloud_pixel_gets_the_scene_prior_and_a_flag(romania_context, window):
    ctx = romania_context
    cloudy = window.copy(deep=True)
    for v in ("evi", "lswi"):
        cloudy[v][:, 1, 1] = np.nan
    pv = daily_pivot(cloudy, ("evi", "lswi"), ctx.days, params=ctx.fusion)
    assert int(pv["pixel_flag"][1, 1]) == FLAG_PRIOR and int((pv["pixel_flag"] == FLAG_PRIOR).sum()) == 1
    assert np.isfinite(pv["evi"][:, 1, 1]).all()
    # the prior is less certain than a seen neighbour
    assert float(pv["evi_sd"][:, 1, 1].mean()) > float(pv["evi_sd"][:, 0, 0].mean())


def test_validate_pivot_errors(romania_context, window):
    ctx = romania_context
    pv = daily_pivot(window, ("evi", "lswi"), ctx.days, params=ctx.fusion)
    bad = pv.copy(deep=True)
    bad["evi"][3, 0, 0] = np.nan
    with pytest.raises(DataValidationError, match="NaN") as e:
        validate_pivot(bad)
    assert e.value.variable == "evi"
    with pytest.raises(DataValidationError, match="lswi_sd"):
        validate_pivot(pv.drop_vars("lswi_sd"))
    with pytest.raises(DataValidationError, match="daily"):
        validate_pivot(pv.isel(time=slice(0, None, 2)))
    with pytest.raises(DataValidationError, match="units"):
        validate_pivot(pv.assign(evi=pv["evi"].assign_attrs(units="%")))
