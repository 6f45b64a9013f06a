"""Agreement with the shipped reference products (DE-Tha 1998 FLUXNET/REddyProc example,
hesseflux test_gapfill.csv, CH-Dav 2013-2022 ETH/REddyProc processing)."""
import numpy as np
import pytest

from assimilation.observations.flux import (agreement, daily_agreement, mds_gapfill,
                                            partition_nighttime, process_tower,
                                            read_tharandt_reference, select_valid)
from process_models.io import (data_path, read_diive_parquet, read_reddyproc_text)
from tests._files import DAV, THA, THA_GF

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"

THA_NC = ("de-tha_1996-1998", "Example_DE-Tha.1996.1998.hourly_selVars.nc")


@pytest.fixture(scope="module")
def tharandt():
    ds = read_reddyproc_text(data_path(*THA))
    nee, nee_f = read_tharandt_reference(data_path(*THA_NC))
    return ds, nee, nee_f


@pytest.fixture(scope="module")
def davos():
    return read_diive_parquet(data_path(*DAV))


def test_mds_matches_fluxnet_gapfilled_nee_at_tharandt(tharandt):
    """Fill the reference's own measured NEE; on the records the reference filled,
    R2 >= 0.95 (measured ~0.987) and |bias| < 0.2 umol m-2 s-1."""
    ds, nee, nee_f = tharandt
    r = mds_gapfill(nee, ds.shortwave_in.values, ds.air_temperature.values, ds.vpd.values)
    a = agreement(r.filled, nee_f, ~np.isfinite(nee))
    assert a["n"] > 6000
    assert a["r2"] >= 0.95 and abs(a["bias"]) < 0.2
    assert np.all(np.isfinite(r.filled))


def test_hesseflux_gapfill_file_with_flags(tharandt):
    """hesseflux's test_gapfill.csv through the flag path (qcNEE == 1 valid): on the
    records that are gaps in both it and the reference, R2 >= 0.95 vs the reference fill."""
    _, nee_ref, nee_f = tharandt
    gf = read_reddyproc_text(data_path(*THA_GF))
    valid = select_valid(gf.nee.values, gf.nee_qc.values, good_flags=(1,))
    assert valid.sum() == 11263                     # PROVENANCE: qcNEE 1 in 11263 rows
    r = mds_gapfill(np.where(valid, gf.nee.values, np.nan), gf.shortwave_in.values,
                    gf.air_temperature.values, gf.vpd.values)
    a = agreement(r.filled, nee_f, ~valid & ~np.isfinite(nee_ref))
    assert a["r2"] >= 0.95 and abs(a["bias"]) < 0.2


@pytest.mark.standard_promotion(_ADAM)
def test_pipeline_on_tharandt_text_file(tharandt):
    """Whole pipeline on the REddyProc example: u* threshold with bootstrap band,
    random error close to REddyProc's published NEE_uStar_fsd (quartiles 1.70/2.33/3.44,
    mean 2.74 umol m-2 s-1, aggUncertainty vignette), units on every variable."""
    ds, _, nee_f = tharandt
    out = process_tower(ds, n_bootstrap=10, seed=1)
    for v in out.data_vars:
        assert "units" in out[v].attrs, v
    thr = out.ustar_threshold.values[0]
    p05, p50, p95 = (out[f"ustar_threshold_p{p}"].values[0] for p in ("05", "50", "95"))
    assert 0.2 < thr < 0.7 and p05 <= p50 <= p95
    fsd = out.nee_fsd.values
    assert np.nanmedian(fsd) == pytest.approx(2.33, rel=0.15)
    assert np.nanmean(fsd) == pytest.approx(2.74, rel=0.15)
    assert np.all(np.isfinite(out.nee_filled)) and np.all(np.isfinite(out.nee_uncertainty))
    assert np.all(out.nee_uncertainty.values > 0)
    # GPP = Reco - NEE by construction; GPP_NT annual sum of a spruce forest is positive
    np.testing.assert_allclose(out.gpp_nt, out.reco_nt - out.nee_filled, atol=1e-9)
    assert np.nansum(out.gpp_nt) > 0 and np.nansum(out.gpp_dt) > 0


def test_davos_one_year_mds_and_nighttime_gpp(davos):
    """CH-Dav 2021: MDS of the ETH u*-filtered NEE vs their REddyProc fill (R2 >= 0.95 on
    filled records; measured 0.999) and night-time GPP daily sums vs theirs (R2 >= 0.95)."""
    s = davos.sel(time="2021")
    r = mds_gapfill(s.nee.values, s.shortwave_in.values, s.air_temperature.values, s.vpd.values)
    a = agreement(r.filled, s.nee_filled.values, ~np.isfinite(s.nee.values))
    assert a["r2"] >= 0.95 and abs(a["bias"]) < 0.1
    nt = partition_nighttime(s.nee.values, r.filled, s.air_temperature.values,
                             s.shortwave_in.values, s.time.values)
    g = daily_agreement(nt.gpp, s.gpp.values, s.time.values)
    assert g["n"] == 365 and g["r2"] >= 0.95 and abs(g["bias"]) < 0.5


@pytest.mark.slow
@pytest.mark.standard_promotion(_ADAM)
def test_davos_ten_years(davos):
    """All of CH-Dav 2013-2022 through the pipeline (input already u*-filtered)."""
    out = process_tower(davos, ustar_threshold=None, despike=False)
    a = agreement(out.nee_filled.values, davos.nee_filled.values, ~np.isfinite(davos.nee.values))
    assert a["r2"] >= 0.95
    g = daily_agreement(out.gpp_nt.values, davos.gpp.values, davos.time.values)
    assert g["r2"] >= 0.95
