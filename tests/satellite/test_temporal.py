"""Interpolation to model times and per-pixel VPRM index statistics."""
import numpy as np
import pandas as pd
import xarray as xr

from process_models.satellite import (causal_statistics, causal_statistics_dataset,
                                      climatological_statistics, interpolate_dataset,
                                      interpolate_to_times, yearly_statistics,
                                      yearly_statistics_dataset)


def _gappy(rng, n_time=30, pixels=(4, 5), frac_nan=0.3):
    v = rng.uniform(0.0, 0.8, (n_time, *pixels))
    v[rng.uniform(size=v.shape) < frac_nan] = np.nan
    return v


def test_linear_exact_on_linear_data_and_nan_skipped(rng):
    t_obs = np.sort(rng.uniform(0, 100, 25))
    slope, icpt = rng.normal(size=(2, 3))
    v = icpt + slope * t_obs[:, None]
    v[[3, 10, 11]] = np.nan                         # gaps are skipped, not propagated
    target = np.linspace(t_obs[0], t_obs[-1], 200)
    res = interpolate_to_times(v, t_obs, target, "linear")
    np.testing.assert_allclose(res.values, icpt + slope * target[:, None], rtol=1e-12)
    assert not np.asarray(res.extrapolated).any()


def test_no_extrapolation_hold_and_flag():
    v = np.array([np.nan, 1.0, 3.0, np.nan])
    res = interpolate_to_times(v[:, None], np.array([0.0, 1, 2, 3]), np.array([-5.0, 0.5, 1.5, 2.5, 9]))
    np.testing.assert_allclose(np.asarray(res.values)[:, 0], [1, 1, 2, 3, 3])
    np.testing.assert_array_equal(np.asarray(res.extrapolated)[:, 0], [1, 1, 0, 1, 1])
    np.testing.assert_allclose(np.asarray(res.gap)[:, 0], [6, 0.5, 0.5, 0.5, 7])
    empty = interpolate_to_times(np.full((3, 1), np.nan), np.arange(3.0), np.array([1.0]))
    assert np.isnan(empty.values).all() and np.asarray(empty.extrapolated).all()


def _brute_nearest(v, t, x):
    out = np.full((len(x), v.shape[1]), np.nan)
    for p in range(v.shape[1]):
        ok = np.isfinite(v[:, p])
        order = np.argsort(t[ok], kind="stable")
        tv, vv = t[ok][order], v[ok, p][order]
        for i, xi in enumerate(x):
            out[i, p] = vv[np.argmin(np.abs(tv - xi))]       # pyVPRM: argmin |Δday|
    return out


def _brute_previous(v, t, x):
    out = np.full((len(x), v.shape[1]), np.nan)
    for p in range(v.shape[1]):
        ok = np.isfinite(v[:, p])
        tv, vv = t[ok], v[ok, p]
        for i, xi in enumerate(x):
            before = tv <= xi
            out[i, p] = vv[before][np.argmax(tv[before])] if before.any() else vv[np.argmin(tv)]
    return out


def test_nearest_and_previous_match_brute_force(rng):
    v = _gappy(rng, 30, (6,))
    t = np.arange(30) * 8.0 + 4.0                      # 8-day composites
    x = np.arange(-10.0, 260.0, 0.25)                 # includes ties at mid-points
    np.testing.assert_array_equal(interpolate_to_times(v, t, x, "nearest").values,
                                  _brute_nearest(v, t, x))
    np.testing.assert_array_equal(interpolate_to_times(v, t, x, "previous").values,
                                  _brute_previous(v, t, x))


def test_per_pixel_times_unsorted_and_vmap_matches_loop(rng):
    v = _gappy(rng, 12, (2, 3))
    t = np.arange(12.0)[:, None, None] * 8 + rng.integers(0, 8, v.shape)   # MODIS DOY
    perm = rng.permutation(12)
    x = np.linspace(-3, 100, 50)
    res = interpolate_to_times(v[perm], t[perm], x).values
    for i in range(2):
        for j in range(3):
            one = interpolate_to_times(v[:, i, j][:, None], t[:, i, j], x).values[:, 0]
            np.testing.assert_allclose(res[:, i, j], one, rtol=1e-14)
            ok = np.isfinite(v[:, i, j])
            inside = (x >= t[ok, i, j].min()) & (x <= t[ok, i, j].max())
            np.testing.assert_allclose(one[inside], np.interp(x[inside], t[ok, i, j], v[ok, i, j]),
                                       rtol=1e-12)


def _brute_stats(evi, lswi):
    out = {k: np.full(evi.shape[1:], np.nan) for k in
           ("evi_min", "evi_max", "evi_threshold", "lswi_min", "lswi_max")}
    for idx in np.ndindex(*evi.shape[1:]):
        e, l_ = evi[(slice(None),) + idx], lswi[(slice(None),) + idx]
        ok = np.isfinite(e)
        if not ok.any():
            continue
        mn, mx = e[ok].min(), e[ok].max()
        th = mn + 0.55 * (mx - mn)
        gs = ok & (e > th) & np.isfinite(l_)
        out["evi_min"][idx], out["evi_max"][idx], out["evi_threshold"][idx] = mn, mx, th
        if gs.any():
            out["lswi_min"][idx], out["lswi_max"][idx] = l_[gs].min(), l_[gs].max()
    return out


def test_yearly_statistics_match_brute_force(rng):
    evi, lswi = _gappy(rng, 46, (5, 6)), _gappy(rng, 46, (5, 6)) - 0.3
    evi[:, 0, 0] = np.nan
    got = yearly_statistics(evi, lswi)
    ref = _brute_stats(evi, lswi)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-14, err_msg=k)
    moved = yearly_statistics(np.moveaxis(evi, 0, -1), np.moveaxis(lswi, 0, -1), time_axis=-1)
    for k in ref:
        np.testing.assert_allclose(moved[k], ref[k], rtol=1e-14)


def test_causal_last_step_equals_yearly_and_each_step_equals_prefix(rng):
    evi, lswi = _gappy(rng, 46, (3, 4)), _gappy(rng, 46, (3, 4))
    t = np.arange(46) * 8.0
    c = causal_statistics(evi, lswi, t, window_days=400.0)
    y = yearly_statistics(evi, lswi)
    for k in y:
        np.testing.assert_allclose(c[k][-1], y[k], rtol=1e-14)
    for k_t in (5, 20):                                       # expanding prefix
        pre = _brute_stats(evi[:k_t + 1], lswi[:k_t + 1])
        for k in pre:
            np.testing.assert_allclose(c[k][k_t], pre[k], rtol=1e-14)
    # trailing window: at step 40 only obs with t > t_40 - 100
    w = causal_statistics(evi, lswi, t, window_days=100.0)
    sel = (t > t[40] - 100) & (t <= t[40])
    ref = _brute_stats(evi[sel], lswi[sel])
    for k in ref:
        np.testing.assert_allclose(w[k][40], ref[k], rtol=1e-14)
    np.testing.assert_array_equal(w["n_obs"][40], np.isfinite(evi[sel]).sum(0))


def test_causal_is_independent_of_future(rng):
    evi, lswi = _gappy(rng, 30, (4,)), _gappy(rng, 30, (4,))
    t = np.arange(30) * 8.0
    base = causal_statistics(evi, lswi, t)
    evi2, lswi2 = evi.copy(), lswi.copy()
    evi2[16:] = rng.uniform(-1, 2, evi2[16:].shape)
    lswi2[16:] = rng.uniform(-1, 2, lswi2[16:].shape)
    pert = causal_statistics(evi2, lswi2, t)
    for k in base:
        np.testing.assert_array_equal(base[k][:16], pert[k][:16])
    assert not np.allclose(base["evi_max"][16:], pert["evi_max"][16:], equal_nan=True)


def test_causal_min_obs_and_fallback(rng):
    evi, lswi = _gappy(rng, 10, (3,), 0.0), _gappy(rng, 10, (3,), 0.0)
    t = np.arange(10) * 8.0
    fb = {k: np.full(3, -7.0) for k in ("evi_min", "evi_max", "evi_threshold", "lswi_min", "lswi_max")}
    c = causal_statistics(evi, lswi, t, min_obs=4, fallback=fb)
    np.testing.assert_array_equal(c["evi_max"][:3], -7.0)
    assert np.all(np.asarray(c["evi_max"][3:]) >= 0)
    assert np.isnan(causal_statistics(evi, lswi, t, min_obs=4)["evi_min"][:3]).all()


def test_climatological_statistics_is_mean_of_previous_years(rng):
    times = pd.date_range("2020-01-01", "2022-12-31", freq="16D").values
    evi, lswi = _gappy(rng, len(times), (2, 3), 0.1), _gappy(rng, len(times), (2, 3), 0.1)
    years = times.astype("datetime64[Y]").astype(int) + 1970
    clim = climatological_statistics(evi, lswi, times, before_year=2022)
    per = [yearly_statistics(evi[years == y], lswi[years == y]) for y in (2020, 2021)]
    for k in per[0]:
        np.testing.assert_allclose(clim[k], np.mean([p[k] for p in per], axis=0), rtol=1e-13)
    np.testing.assert_array_equal(clim["n_years"], 2)
    # 2022 data do not matter
    evi2 = evi.copy()
    evi2[years == 2022] = 0.99
    clim2 = climatological_statistics(evi2, lswi, times, before_year=2022)
    np.testing.assert_array_equal(clim2["evi_max"], clim["evi_max"])


def test_xarray_wrappers(rng):
    times = pd.date_range("2022-01-01", periods=46, freq="8D")
    dims = ("time", "y", "x")
    ds = xr.Dataset({"evi": (dims, _gappy(rng, 46, (2, 3))), "lswi": (dims, _gappy(rng, 46, (2, 3)))},
                    coords={"time": times, "y": [1.0, 2.0], "x": [0.0, 1.0, 2.0]})
    ys = yearly_statistics_dataset(ds)
    assert ys.evi_threshold.dims == ("y", "x") and ys.evi_threshold.attrs["units"] == "1"
    cs = causal_statistics_dataset(ds)
    assert cs.evi_max.dims == dims
    np.testing.assert_allclose(cs.evi_max.isel(time=-1), ys.evi_max)
    hourly = pd.date_range("2022-03-01", "2022-03-10", freq="h")
    it = interpolate_dataset(ds, hourly, "linear")
    assert it.evi.sizes["time"] == len(hourly) and "evi_extrapolated" in it
    direct = interpolate_to_times(ds.evi.values, (times - hourly[0]) / pd.Timedelta("1D"),
                                  (hourly - hourly[0]) / pd.Timedelta("1D"))
    np.testing.assert_allclose(it.evi.values, direct.values, rtol=1e-12)
