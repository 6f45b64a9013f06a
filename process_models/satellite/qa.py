"""Quality masks, snow handling and reflectance scaling for MODIS and Sentinel-2.

Follows pyVPRM 6.0.1 (``sat_managers/modis.py``, ``sentinel2.py``,
``lib/functions.py: replace_inf_runs_ignore_nans``), with
the bit meanings of the MODIS surface reflectance user guide (Vermote et al., MOD09
User's Guide, Collection 6/6.1, table "500 m State QA", ``sur_refl_state_500m``):

===== ============================ ============================================
bits  field                        values
===== ============================ ============================================
0-1   cloud state                  0 clear, 1 cloudy, 2 mixed, 3 not set (assumed clear)
2     cloud shadow                 1 = yes
3-5   land/water flag              0 shallow ocean, 1 land, 2 ocean coastline / lake
                                   shore, 3 shallow inland water, 4 ephemeral water,
                                   5 deep inland water, 6 continental/moderate ocean,
                                   7 deep ocean
6-7   aerosol quantity             0 climatology, 1 low, 2 average, 3 high
8-9   cirrus detected              0 none, 1 small, 2 average, 3 high
10    internal cloud algorithm     1 = cloud
11    internal fire algorithm      1 = fire
12    MOD35 snow/ice flag          1 = yes
13    pixel adjacent to cloud      1 = yes
14    salt pan (MOD09A1 500 m);    1 = yes
      BRDF correction (MOD09GA 1 km)
15    internal snow mask           1 = snow
===== ============================ ============================================

pyVPRM's rules (reproduced by default): cloud state != 0 masked (so state 3, "assumed
clear", is masked too: conservative), shadow bit 2, any cirrus (bits 8-9 != 0), adjacent
cloud bit 13, land/water != 1 (land) masked; snow = bit 12 OR bit 15, set to +inf and
resolved by :func:`apply_snow_rule`.

Sentinel-2 L2A scene classification (SCL): 0 no data, 1 saturated/defective, 2 dark area
/ topographic shadow, 3 cloud shadow, 4 vegetation, 5 not vegetated, 6 water,
7 unclassified, 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus,
11 snow/ice.
"""
from __future__ import annotations

import re
from functools import partial

import jax
import jax.numpy as jnp

__all__ = [
    "modis_state_mask", "modis_snow", "modis_band_quality_mask", "sentinel2_scl_mask",
    "sentinel2_snow", "sentinel2_scale", "apply_snow_rule", "snow_run_length",
    "S2_SCL_BAD", "S2_SCL_CLOUD", "S2_SCL_WATER", "S2_SCL_NON_VEGETATED", "S2_SCL_SNOW",
]

STATE_MISSING = 65535
"""MOD09A1 ``sur_refl_state_500m`` fill value."""
QC_MISSING = 787410671
"""MOD09A1 ``sur_refl_qc_500m`` fill value."""
S2_SCL_BAD = (0, 1, 2, 3, 7)
S2_SCL_CLOUD = (8, 9, 10)
S2_SCL_WATER = (6,)
S2_SCL_NON_VEGETATED = (5,)
S2_SCL_SNOW = (11,)


def _as_bits(qa, missing=None):
    """Integer bit field and a "present" mask from an int or float (NaN = missing) array;
    ``missing`` is the fill code (MODIS state 65535, qc 787410671) -> not present."""
    qa = jnp.asarray(qa)
    if jnp.issubdtype(qa.dtype, jnp.floating):
        present = jnp.isfinite(qa)
        bits = jnp.where(present, qa, 0).astype(jnp.uint32)
    else:
        present = jnp.ones(qa.shape, dtype=bool)
        bits = qa.astype(jnp.uint32)
    if missing is not None:
        present = present & (bits != missing)
    return bits, present


def _field(bits, start, width):
    return (bits >> start) & ((1 << width) - 1)


def modis_state_mask(state_qa, *, mask_cloud=True, mask_shadow=True, mask_cirrus=True,
                     mask_adjacent=True, mask_water=True, assumed_clear_is_clear=False,
                     mask_internal_cloud=False, missing_value=STATE_MISSING):
    """Usable-pixel mask from MODIS ``sur_refl_state_500m`` (True = clear/usable).

    Parameters
    ----------
    state_qa : array_like
        State QA bit field, any shape; uint16 or float (float NaN = missing -> False).
    mask_cloud : bool
        Mask cloud state (bits 0-1) != 0 (pyVPRM).
    mask_shadow : bool
        Mask cloud shadow (bit 2).
    mask_cirrus : bool
        Mask any cirrus (bits 8-9 != 0: small, average or high).
    mask_adjacent : bool
        Mask pixels adjacent to cloud (bit 13).
    mask_water : bool
        Mask land/water flag (bits 3-5) != 1 (land), i.e. all water and coast classes.
    assumed_clear_is_clear : bool
        Treat cloud state 3 ("not set, assumed clear") as clear (MOD09 guide). Default
        False, as pyVPRM.
    mask_internal_cloud : bool
        Also mask the internal cloud algorithm flag (bit 10). Not in pyVPRM.
    missing_value : int or None
        Fill code of the QA layer (65535 in MOD09A1) -> False.

    Returns
    -------
    jax.Array of bool
        Same shape as ``state_qa``. Snow is *not* masked here; see :func:`modis_snow`.
    """
    bits, ok = _as_bits(state_qa, missing_value)
    if mask_cloud:
        cloud = _field(bits, 0, 2)
        bad = (cloud != 0) & (cloud != 3) if assumed_clear_is_clear else cloud != 0
        ok = ok & ~bad
    if mask_shadow:
        ok = ok & (_field(bits, 2, 1) == 0)
    if mask_water:
        ok = ok & (_field(bits, 3, 3) == 1)
    if mask_cirrus:
        ok = ok & (_field(bits, 8, 2) == 0)
    if mask_internal_cloud:
        ok = ok & (_field(bits, 10, 1) == 0)
    if mask_adjacent:
        ok = ok & (_field(bits, 13, 1) == 0)
    return ok


def modis_snow(state_qa, *, use_mod35=True, use_internal=True, missing_value=STATE_MISSING):
    """Snow flag from MODIS state QA: MOD35 snow/ice (bit 12) OR internal snow mask (bit 15).

    pyVPRM combines both because they can disagree. Missing QA (NaN or ``missing_value``,
    65535, whose bits are all set) gives False.

    Returns
    -------
    jax.Array of bool
        Same shape as ``state_qa``, True = snow.
    """
    bits, present = _as_bits(state_qa, missing_value)
    snow = jnp.zeros(bits.shape, dtype=bool)
    if use_mod35:
        snow = snow | (_field(bits, 12, 1) == 1)
    if use_internal:
        snow = snow | (_field(bits, 15, 1) == 1)
    return snow & present


def modis_band_quality_mask(qc_500m, bands=(1, 2, 3, 6), *, missing_value=QC_MISSING):
    """Per-band quality from MODIS ``sur_refl_qc_500m`` (True = ideal quality in all ``bands``).

    Band ``b`` (1-7) has a 4-bit quality code at bits ``4(b-1)+2 ... 4b+1``; 0 = highest
    quality. pyVPRM's ``mask_bad_pixels`` masks any code != 0. Bits 0-1 (MODLAND QA),
    30 (atmospheric correction) and 31 (adjacency correction) are not used.

    Parameters
    ----------
    qc_500m : array_like
        32-bit QC field (uint32 or float; NaN = missing -> False).
    bands : sequence of int
        MODIS band numbers to require (default: the EVI/LSWI bands 1, 2, 3, 6).
    """
    bits, ok = _as_bits(qc_500m, missing_value)
    for b in bands:
        ok = ok & (_field(bits, 4 * (b - 1) + 2, 4) == 0)
    return ok


def _isin(values, classes):
    values = jnp.asarray(values)
    out = jnp.zeros(values.shape, dtype=bool)
    for c in classes:
        out = out | (values == c)
    return out


def sentinel2_scl_mask(scl, *, mask_bad=True, mask_cloud=True, mask_water=True,
                       mask_non_vegetated=False, mask_snow=False):
    """Usable-pixel mask from the Sentinel-2 L2A scene classification (True = usable).

    Parameters
    ----------
    scl : array_like
        SCL class codes 0-11, any shape (float NaN = missing -> False).
    mask_bad : bool
        Mask {0 no data, 1 saturated, 2 dark area, 3 cloud shadow, 7 unclassified}.
    mask_cloud : bool
        Mask {8, 9 cloud, 10 thin cirrus}.
    mask_water : bool
        Mask 6 (water).
    mask_non_vegetated : bool
        Mask 5 (bare soil, built-up); off by default, as in pyVPRM.
    mask_snow : bool
        Mask 11 (snow/ice). Off by default: snow goes to +inf via :func:`sentinel2_snow`
        and :func:`apply_snow_rule`, as in pyVPRM.
    """
    scl = jnp.asarray(scl)
    ok = jnp.isfinite(scl) if jnp.issubdtype(scl.dtype, jnp.floating) else jnp.ones(scl.shape, bool)
    for flag, classes in ((mask_bad, S2_SCL_BAD), (mask_cloud, S2_SCL_CLOUD),
                          (mask_water, S2_SCL_WATER), (mask_non_vegetated, S2_SCL_NON_VEGETATED),
                          (mask_snow, S2_SCL_SNOW)):
        if flag:
            ok = ok & ~_isin(scl, classes)
    return ok


def sentinel2_snow(scl):
    """Snow flag (SCL class 11) of a Sentinel-2 L2A scene classification."""
    return _isin(scl, S2_SCL_SNOW)


def _baseline_number(processing_baseline):
    if isinstance(processing_baseline, str):
        m = re.fullmatch(r"\s*N?(\d{2})\.?(\d{2})\s*", processing_baseline)
        if m is None:
            m2 = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*", processing_baseline)
            if m2 is None:
                raise ValueError(f"cannot parse Sentinel-2 processing baseline {processing_baseline!r}; "
                                 "use e.g. '04.00', 'N0400' or 4.0.")
            return float(m2.group(1))
        return int(m.group(1)) + int(m.group(2)) / 100.0
    return processing_baseline


def sentinel2_scale(dn, processing_baseline, *, nodata=0):
    r"""Sentinel-2 L2A digital numbers to surface reflectance (unit "1").

    .. math:: \rho = (DN + \mathrm{BOA\_ADD\_OFFSET}) / \mathrm{QUANTIFICATION\_VALUE},
              \quad \mathrm{offset} = -1000 \text{ if baseline} \ge 04.00 \text{ else } 0,
              \quad \mathrm{quantification} = 10000

    ESA introduced the offset with processing baseline 04.00 (25 January 2022) so that
    dark surfaces keep their noise instead of being clipped at 0. Without removing it
    EVI is biased (EVI is not scale invariant).

    Parameters
    ----------
    dn : array_like
        L2A BOA digital numbers, any shape.
    processing_baseline : str, float or array_like
        E.g. ``"04.00"``, ``"N0400"``, ``5.09``, or an array broadcastable to ``dn``
        (one baseline per scene along time).
    nodata : int or None
        DN value that means "no data" (0 in L2A), returned as NaN.

    Returns
    -------
    jax.Array
        Reflectance (float); may be slightly negative after the offset.
    """
    baseline = jnp.asarray(_baseline_number(processing_baseline))
    dn = jnp.asarray(dn)
    offset = jnp.where(baseline >= 4.0, -1000.0, 0.0)
    refl = (dn + offset) * 1e-4
    if nodata is not None:
        refl = jnp.where(dn == nodata, jnp.nan, refl)
    return refl


def snow_run_length(min_run_days=21.0, spacing_days=8.0):
    """pyVPRM's minimum run length N = int(min_run_days / mean image spacing)."""
    return max(int(min_run_days / spacing_days), 1)


def apply_snow_rule(values, snow_mask=None, time_axis=0, min_run_days=21.0, spacing_days=8.0,
                    percentile=5.0):
    """pyVPRM's snow rule: long snow runs -> pixel's low percentile, isolated snow -> NaN.

    Steps, per pixel along time (vectorised; no loop over pixels or times):

    1. where ``snow_mask`` (if given) the value is set to ``+inf``;
    2. the series is cut into blocks of consecutive *non-finite* values (inf or NaN;
       NaNs do not break a snow run: "runs ignoring NaNs");
    3. in a block holding >= N infs, N = ``int(min_run_days / spacing_days)``, the infs
       become the pixel's ``percentile``-th percentile of its finite values (linear
       interpolation, as ``np.nanpercentile``): winter snow cover -> low, dormant EVI;
    4. all other infs (short snow episodes, usually misclassified cloud) become NaN.

    Parameters
    ----------
    values : array_like
        Index series (e.g. EVI, LSWI), time on ``time_axis``, any other shape; ``+inf``
        already marks snow if ``snow_mask`` is None.
    snow_mask : array_like of bool, optional
        Same shape as ``values``; True = snow.
    time_axis : int
        Axis of time.
    min_run_days, spacing_days : float
        Minimum snow duration (21 d in pyVPRM) and mean image spacing (8 d for MOD09A1;
        pass the mean spacing of your valid scenes, as pyVPRM does).
    percentile : float
        Replacement percentile (5 in pyVPRM).

    Returns
    -------
    jax.Array
        Same shape as ``values``, no infs. A pixel with no finite value keeps NaN.
    """
    x = jnp.asarray(values)
    if snow_mask is not None:
        x = jnp.where(jnp.asarray(snow_mask, dtype=bool), jnp.inf, x)
    return _snow_rule(x, time_axis % x.ndim, snow_run_length(min_run_days, spacing_days),
                      float(percentile))


@partial(jax.jit, static_argnames=("time_axis", "n_min", "percentile"))
def _snow_rule(x, time_axis, n_min, percentile):
    x = jnp.moveaxis(x, time_axis, 0)
    finite = jnp.isfinite(x)
    is_inf = jnp.isinf(x)
    # count of infs inside each non-finite block: forward count since the last finite
    # value + backward count until the next finite value - self.
    fwd = _count_since_reset(is_inf, finite)
    bwd = jnp.flip(_count_since_reset(jnp.flip(is_inf, 0), jnp.flip(finite, 0)), 0)
    block_infs = fwd + bwd - is_inf.astype(fwd.dtype)
    repl = jnp.nanpercentile(jnp.where(finite, x, jnp.nan), percentile, axis=0)
    long_run = is_inf & (block_infs >= n_min)
    out = jnp.where(long_run, repl[None], x)
    out = jnp.where(is_inf & ~long_run, jnp.nan, out)
    return jnp.moveaxis(out, 0, time_axis)


def _count_since_reset(flag, reset):
    """Cumulative count of ``flag`` along axis 0, restarting after each ``reset``."""
    cum = jnp.cumsum(flag.astype(jnp.int32), axis=0)
    base = jax.lax.cummax(jnp.where(reset, cum, 0), axis=0)
    return cum - base
