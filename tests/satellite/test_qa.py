"""QA bits, SCL classes, Sentinel-2 scaling and pyVPRM's snow rule."""
import numpy as np
import pytest

from process_models.satellite import (apply_snow_rule, modis_band_quality_mask, modis_snow,
                                      modis_state_mask, sentinel2_scale, sentinel2_scl_mask,
                                      sentinel2_snow, snow_run_length)

LAND = 1 << 3  # land/water bits 3-5 = 001


def _mask(bits, **kw):
    bits = np.float32(bits) if isinstance(bits, float) else np.uint16(bits)
    return bool(np.asarray(modis_state_mask(bits, **kw)))


def test_clear_land_is_usable():
    assert _mask(LAND)
    assert _mask(float(LAND))                      # float32 bit fields as in the crops
    assert not _mask(np.nan)                       # missing QA


@pytest.mark.parametrize("cloud_state,usable", [(0, True), (1, False), (2, False), (3, False)])
def test_cloud_state_bits_0_1(cloud_state, usable):
    assert _mask(LAND | cloud_state) is usable
    assert _mask(LAND | cloud_state, mask_cloud=False)


def test_cloud_state_3_assumed_clear_option():
    assert _mask(LAND | 3, assumed_clear_is_clear=True)
    assert not _mask(LAND | 1, assumed_clear_is_clear=True)


@pytest.mark.parametrize("bit,flag", [(2, "mask_shadow"), (13, "mask_adjacent")])
def test_single_flag_bits(bit, flag):
    assert not _mask(LAND | (1 << bit))
    assert _mask(LAND | (1 << bit), **{flag: False})


@pytest.mark.parametrize("cirrus", [1, 2, 3])
def test_cirrus_bits_8_9(cirrus):
    assert not _mask(LAND | (cirrus << 8))
    assert _mask(LAND | (cirrus << 8), mask_cirrus=False)


@pytest.mark.parametrize("lw", range(8))
def test_land_water_bits_3_5(lw):
    assert _mask(lw << 3) is (lw == 1)
    assert _mask(lw << 3, mask_water=False)


@pytest.mark.parametrize("bit", [6, 7, 10, 11, 12, 14, 15])
def test_bits_that_do_not_mask(bit):
    # aerosol (6-7), internal cloud (10), fire (11), snow (12, 15), salt pan (14)
    assert _mask(LAND | (1 << bit))


def test_internal_cloud_option():
    assert not _mask(LAND | (1 << 10), mask_internal_cloud=True)


def test_snow_bits_12_and_15():
    snow = np.asarray(modis_snow(np.array([LAND, LAND | 1 << 12, LAND | 1 << 15,
                                           LAND | 1 << 12 | 1 << 15, 1 << 13], np.uint16)))
    np.testing.assert_array_equal(snow, [False, True, True, True, False])
    assert not np.asarray(modis_snow(np.float32(np.nan)))
    assert not np.asarray(modis_snow(np.uint16(65535)))             # fill value, not snow
    assert not _mask(65535, mask_cloud=False, mask_water=False, mask_shadow=False,
                     mask_cirrus=False, mask_adjacent=False)
    assert np.asarray(modis_snow(np.uint16(1 << 15), use_internal=False)) == np.False_


def test_band_quality_bits():
    # band 1 quality at bits 2-5, band 6 at 22-25; bits 30/31 are correction flags
    ok = np.asarray(modis_band_quality_mask(np.array(
        [0, 1 << 30 | 1 << 31, 1 << 2, 1 << 22, 1 << 14], np.uint32)))
    np.testing.assert_array_equal(ok, [True, True, False, False, True])  # 1<<14: band 4


def test_sentinel2_scl_classes():
    scl = np.arange(12)
    ok = np.asarray(sentinel2_scl_mask(scl))
    np.testing.assert_array_equal(np.flatnonzero(ok), [4, 5, 11])
    ok = np.asarray(sentinel2_scl_mask(scl, mask_non_vegetated=True, mask_snow=True))
    np.testing.assert_array_equal(np.flatnonzero(ok), [4])
    ok = np.asarray(sentinel2_scl_mask(scl, mask_water=False, mask_cloud=False))
    np.testing.assert_array_equal(np.flatnonzero(ok), [4, 5, 6, 8, 9, 10, 11])
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(sentinel2_snow(scl))), [11])


@pytest.mark.parametrize("baseline,expected", [("04.00", 0.1), ("N0400", 0.1), (5.09, 0.1),
                                                ("03.01", 0.2), (2.08, 0.2)])
def test_sentinel2_scale(baseline, expected):
    np.testing.assert_allclose(sentinel2_scale(2000, baseline), expected, rtol=1e-12)
    assert np.isnan(sentinel2_scale(0, baseline))


def test_sentinel2_scale_per_scene_baseline_and_evi_bias():
    from process_models.satellite import evi
    dn = np.array([[5000, 1500, 1300], [5000, 1500, 1300]], float)  # nir, red, blue DN
    refl = np.asarray(sentinel2_scale(dn, np.array([[3.0], [4.0]])))
    np.testing.assert_allclose(refl[1], refl[0] - 0.1)
    # EVI is not scale invariant: forgetting the offset changes it
    correct = evi(*(np.array([4000, 500, 300]) * 1e-4))
    assert abs(evi(*refl[1]) - correct) < 1e-12 and abs(evi(*refl[0]) - correct) > 0.01


def test_snow_run_length():
    assert snow_run_length(21, 8) == 2 and snow_run_length(21, 5) == 4
    assert snow_run_length(21, 1) == 21


def test_snow_rule_long_run_to_percentile_isolated_to_nan():
    x = np.array([0.2, 0.3, 0.1, 0.25, 0.4, 0.5, 0.6, 0.35])
    snow = np.zeros(14, bool)
    series = np.full(14, np.nan)
    series[[0, 1, 2, 7, 9, 11, 12, 13]] = x
    snow[[3, 4, 6]] = True       # run of 3 snow (index 5 NaN does not break it)
    snow[8] = True               # isolated snow: block 8 alone (7 and 9 finite)
    snow[10] = True              # isolated
    out = np.asarray(apply_snow_rule(series, snow, spacing_days=8.0))  # N = 2
    p5 = np.percentile(x, 5)
    np.testing.assert_allclose(out[[3, 4, 6]], p5)
    assert np.isnan(out[[5, 8, 10]]).all()
    np.testing.assert_array_equal(out[[0, 1, 2, 7, 9, 11, 12, 13]], x)


def _snow_rule_loop(seq, n_min, pct=5.0):
    """Straightforward per-pixel loop of pyVPRM's rule (independent reference)."""
    out = seq.copy()
    finite = np.isfinite(seq)
    repl = np.percentile(seq[finite], pct) if finite.any() else np.nan
    t = 0
    while t < len(seq):
        if not finite[t]:
            s = t
            while t < len(seq) and not finite[t]:
                t += 1
            idx = s + np.flatnonzero(np.isinf(seq[s:t]))
            out[idx] = repl if (len(idx) >= n_min and finite.any()) else np.nan
        else:
            t += 1
    return out


def test_snow_rule_vectorised_matches_loop_and_time_axis(rng):
    vals = rng.uniform(-0.1, 0.8, (40, 6, 7))
    r = rng.uniform(size=vals.shape)
    vals[r < 0.15] = np.nan
    vals[(r > 0.6) & (np.arange(40)[:, None, None] < 15)] = np.inf   # winter snow
    vals[r > 0.95] = np.inf
    vals[:, 0, 0] = np.inf                                         # no finite value at all
    out = np.asarray(apply_snow_rule(vals, spacing_days=5.0))
    flat = vals.reshape(40, -1)
    ref = np.stack([_snow_rule_loop(flat[:, p], 4) for p in range(flat.shape[1])], 1)
    np.testing.assert_allclose(out.reshape(40, -1), ref, rtol=1e-12)
    assert not np.isinf(out).any()
    moved = np.asarray(apply_snow_rule(np.moveaxis(vals, 0, 2), time_axis=2, spacing_days=5.0))
    np.testing.assert_allclose(np.moveaxis(moved, 2, 0), out, rtol=1e-12)
