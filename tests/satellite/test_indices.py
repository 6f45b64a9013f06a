"""Spectral indices: hand-computed values, kNDVI identity, safe gradients, jit/vmap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from process_models.satellite import (compute_indices, evi, evi2, kndvi, lswi, ndvi, nirv,
                                      modis_state_mask, modis_snow)

NIR, RED, BLUE, SWIR = 0.40, 0.05, 0.03, 0.20


def test_analytic_values():
    # EVI = 2.5*0.35/(0.40 + 0.30 - 0.225 + 1) = 0.875/1.475
    np.testing.assert_allclose(evi(NIR, RED, BLUE), 0.875 / 1.475, rtol=1e-14)
    # EVI2 = 2.5*0.35/(0.40 + 0.12 + 1) = 0.875/1.52
    np.testing.assert_allclose(evi2(NIR, RED), 0.875 / 1.52, rtol=1e-14)
    np.testing.assert_allclose(ndvi(NIR, RED), 0.35 / 0.45, rtol=1e-14)
    np.testing.assert_allclose(lswi(NIR, SWIR), 0.20 / 0.60, rtol=1e-14)
    np.testing.assert_allclose(nirv(NIR, RED), 0.35 / 0.45 * 0.40, rtol=1e-14)
    np.testing.assert_allclose(kndvi(NIR, RED), np.tanh((0.35 / 0.45) ** 2), rtol=1e-14)


def test_kndvi_default_sigma_is_tanh_ndvi_squared(rng):
    nir, red = rng.uniform(0.01, 0.6, 100), rng.uniform(0.01, 0.3, 100)
    np.testing.assert_allclose(kndvi(nir, red), np.tanh(ndvi(nir, red) ** 2), rtol=1e-13)
    # explicit sigma equal to the default gives the same; RBF form (1-k)/(1+k)
    sigma = 0.5 * (nir + red)
    np.testing.assert_allclose(kndvi(nir, red, sigma), kndvi(nir, red), rtol=1e-13)
    k = np.exp(-((nir - red) ** 2) / (2 * 0.1**2))
    np.testing.assert_allclose(kndvi(nir, red, 0.1), (1 - k) / (1 + k), rtol=1e-12)


def test_zero_denominator_gives_nan_value_and_finite_gradient():
    # NIR + 6 Red - 7.5 Blue + 1 = 0 for nir=0, red=0, blue=2/15
    assert np.isnan(evi(0.0, 0.0, 2.0 / 15.0))
    assert np.isnan(ndvi(0.0, 0.0)) and np.isnan(lswi(0.0, 0.0))
    for f, args in ((evi, (0.0, 0.0, 2.0 / 15.0)), (ndvi, (0.0, 0.0)), (lswi, (0.0, 0.0)),
                    (nirv, (0.0, 0.0)), (kndvi, (0.0, 0.0)), (evi2, (-1.0, 0.0))):
        grads = jax.grad(lambda *a: jnp.nan_to_num(f(*a)), argnums=tuple(range(len(args))))(*args)
        assert all(np.isfinite(g) for g in grads), f.__name__


def test_gradient_matches_finite_difference():
    g = jax.grad(evi)(NIR, RED, BLUE)
    h = 1e-6
    fd = (evi(NIR + h, RED, BLUE) - evi(NIR - h, RED, BLUE)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-7)


@pytest.mark.parametrize("f,n", [(evi, 3), (evi2, 2), (ndvi, 2), (lswi, 2), (nirv, 2), (kndvi, 2)])
def test_jit_equals_eager_and_vmap_equals_loop(f, n, rng):
    bands = [rng.uniform(0.0, 0.5, (7, 5)) for _ in range(n)]
    eager = f(*bands)
    # XLA fuses the jitted graph; results agree to rounding (a few ulp), not bitwise
    np.testing.assert_allclose(jax.jit(f)(*bands), eager, rtol=1e-14, atol=1e-15)
    vm = jax.vmap(f)(*bands)
    loop = np.stack([f(*[b[i] for b in bands]) for i in range(7)])
    np.testing.assert_allclose(vm, loop, rtol=1e-15)
    assert eager.shape == (7, 5)


def _band_ds(rng, shape=(3, 4, 5)):
    dims = ("time", "y", "x")
    mk = lambda lo, hi: xr.DataArray(rng.uniform(lo, hi, shape), dims=dims)
    return xr.Dataset({"red": mk(0.01, 0.1), "nir": mk(0.1, 0.5), "blue": mk(0.0, 0.05),
                       "swir16": mk(0.05, 0.3)})


def test_compute_indices_dataset(rng):
    ds = _band_ds(rng)
    out = compute_indices(ds)
    assert set(out.data_vars) == {"evi", "lswi", "ndvi", "nirv", "kndvi"}
    assert all(out[v].attrs["units"] == "1" for v in out.data_vars)
    np.testing.assert_allclose(out.evi, evi(ds.nir.values, ds.red.values, ds.blue.values))
    assert out.evi.dims == ("time", "y", "x")


def test_pyvprm_evi_filter():
    ds = xr.Dataset({"red": ("p", [0.05, 0.30, 0.0]), "nir": ("p", [0.4, 0.05, 0.9]),
                     "blue": ("p", [0.03, 0.01, 0.2])})
    raw = evi(ds.nir.values, ds.red.values, ds.blue.values)
    assert raw[1] < 0 and raw[2] > 1
    filt = compute_indices(ds, indices=("evi",)).evi.values
    np.testing.assert_allclose(filt, [raw[0], np.nan, np.nan])
    keep = compute_indices(ds, indices=("evi",), pyvprm_evi_filter=False).evi.values
    np.testing.assert_allclose(keep, raw)


def test_compute_indices_masks_and_snow_and_band_mapping(rng):
    ds = _band_ds(rng).isel(time=0, y=0, x=slice(0, 4)).rename({"nir": "nir08", "x": "p"})
    state = xr.DataArray(np.array([8, 9, 8 | (1 << 12), 9 | (1 << 15)], np.uint16), dims="p")
    valid = xr.DataArray(np.asarray(modis_state_mask(state.values)), dims="p")
    snow = xr.DataArray(np.asarray(modis_snow(state.values)), dims="p")
    out = compute_indices(ds, ("ndvi",), bands={"nir": "nir08"}, valid=valid, snow=snow).ndvi.values
    assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isposinf(out[2]) and np.isnan(out[3])


def test_missing_band_raises():
    from process_models.units import DataValidationError
    with pytest.raises(DataValidationError, match="bands="):
        compute_indices(xr.Dataset({"red": ("p", [0.1])}), ("ndvi",))
