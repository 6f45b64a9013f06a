"""Spectral vegetation and water indices from surface reflectance.

Implements the indices that VPRM (Mahadevan et al., 2008) and its successors use:

* EVI   -- Huete et al. (2002), Remote Sens. Environ. 83, 195-213, doi:10.1016/S0034-4257(02)00096-2
* EVI2  -- Jiang et al. (2008), Remote Sens. Environ. 112, 3833-3845, doi:10.1016/j.rse.2008.06.006
* NDVI  -- Rouse et al. (1974); Tucker (1979), Remote Sens. Environ. 8, 127-150
* LSWI  -- Xiao et al. (2004), Remote Sens. Environ. 89, 519-534, doi:10.1016/j.rse.2003.11.008
* NIRv  -- Badgley et al. (2017), Sci. Adv. 3, e1602244, doi:10.1126/sciadv.1602244
* kNDVI -- Camps-Valls et al. (2021), Sci. Adv. 7, eabc7447, doi:10.1126/sciadv.abc7447

All reflectances are **physical surface reflectance, unit "1" (0-1)**. EVI and EVI2 are
*not* scale invariant (the ``+1`` in the denominator), so digital numbers must be scaled
first (MODIS: ``scale_factor`` 1e-4; Sentinel-2 L2A: see
:func:`process_models.satellite.qa.sentinel2_scale`). All indices have unit ``"1"``.

The array functions are element-wise ``jax.numpy`` code: any (broadcastable) shape,
``jit``/``vmap``/``grad`` safe. A zero denominator gives NaN (as pyVPRM's ``safe_divide``)
but a *finite* (zero) gradient, by the "double-where" pattern.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..units import DataValidationError

__all__ = ["evi", "evi2", "ndvi", "lswi", "nirv", "kndvi", "compute_indices", "INDEX_ATTRS"]


def _safe_divide(numerator, denominator):
    """``numerator / denominator``, NaN where ``denominator == 0``, zero gradient there.

    Double-where: the division itself only ever sees a non-zero denominator, so no
    ``inf``/``nan`` enters the backward pass.
    """
    numerator = jnp.asarray(numerator)
    denominator = jnp.asarray(denominator)
    ok = denominator != 0
    safe_den = jnp.where(ok, denominator, jnp.ones_like(denominator))
    return jnp.where(ok, numerator / safe_den, jnp.nan)


@jax.jit
def evi(nir, red, blue):
    r"""Enhanced vegetation index (Huete et al., 2002).

    .. math:: \mathrm{EVI} = G\,\frac{\rho_{NIR}-\rho_{red}}
              {\rho_{NIR} + C_1\rho_{red} - C_2\rho_{blue} + L},
              \quad G=2.5,\ C_1=6,\ C_2=7.5,\ L=1

    Parameters
    ----------
    nir, red, blue : array_like
        Surface reflectance, unit "1" (MODIS b02, b01, b03; Sentinel-2 B8A/B8, B4, B2).
        Any broadcastable shapes.

    Returns
    -------
    jax.Array
        EVI, unit "1". NaN where the denominator is 0. No range filter is applied here;
        see :func:`compute_indices` for pyVPRM's [0, 1] filter.
    """
    nir, red, blue = jnp.asarray(nir), jnp.asarray(red), jnp.asarray(blue)
    return 2.5 * _safe_divide(nir - red, nir + 6.0 * red - 7.5 * blue + 1.0)


@jax.jit
def evi2(nir, red):
    r"""Two-band enhanced vegetation index (Jiang et al., 2008), for sensors without blue.

    .. math:: \mathrm{EVI2} = 2.5\,\frac{\rho_{NIR}-\rho_{red}}{\rho_{NIR} + 2.4\rho_{red} + 1}

    Parameters
    ----------
    nir, red : array_like
        Surface reflectance, unit "1".

    Returns
    -------
    jax.Array
        EVI2, unit "1".
    """
    nir, red = jnp.asarray(nir), jnp.asarray(red)
    return 2.5 * _safe_divide(nir - red, nir + 2.4 * red + 1.0)


@jax.jit
def ndvi(nir, red):
    r"""Normalised difference vegetation index (Rouse et al., 1974; Tucker, 1979).

    .. math:: \mathrm{NDVI} = \frac{\rho_{NIR}-\rho_{red}}{\rho_{NIR}+\rho_{red}}

    Parameters
    ----------
    nir, red : array_like
        Surface reflectance, unit "1".

    Returns
    -------
    jax.Array
        NDVI, unit "1", in [-1, 1] for non-negative reflectances.
    """
    nir, red = jnp.asarray(nir), jnp.asarray(red)
    return _safe_divide(nir - red, nir + red)


@jax.jit
def lswi(nir, swir):
    r"""Land surface water index (Xiao et al., 2004), as used by VPRM's water scalar.

    .. math:: \mathrm{LSWI} = \frac{\rho_{NIR}-\rho_{SWIR}}{\rho_{NIR}+\rho_{SWIR}}

    Parameters
    ----------
    nir, swir : array_like
        Surface reflectance, unit "1"; SWIR at 1.6 um (MODIS b06, Sentinel-2 B11).

    Returns
    -------
    jax.Array
        LSWI, unit "1".
    """
    nir, swir = jnp.asarray(nir), jnp.asarray(swir)
    return _safe_divide(nir - swir, nir + swir)


@jax.jit
def nirv(nir, red):
    r"""Near-infrared reflectance of vegetation (Badgley et al., 2017).

    .. math:: \mathrm{NIRv} = \mathrm{NDVI}\cdot\rho_{NIR}

    Parameters
    ----------
    nir, red : array_like
        Surface reflectance, unit "1".

    Returns
    -------
    jax.Array
        NIRv, unit "1" (a reflectance).
    """
    nir, red = jnp.asarray(nir), jnp.asarray(red)
    # written as one safe division so that the gradient stays finite at NIR + red = 0
    return _safe_divide((nir - red) * nir, nir + red)


@jax.jit
def kndvi(nir, red, sigma=None):
    r"""Kernel NDVI (Camps-Valls et al., 2021) with the RBF kernel.

    .. math:: \mathrm{kNDVI} = \tanh\!\left[\left(\frac{\rho_{NIR}-\rho_{red}}{2\sigma}\right)^2\right]

    With the paper's recommended per-pixel default
    :math:`\sigma = 0.5(\rho_{NIR}+\rho_{red})` this reduces to
    :math:`\tanh(\mathrm{NDVI}^2)`.

    Parameters
    ----------
    nir, red : array_like
        Surface reflectance, unit "1".
    sigma : array_like or None
        RBF length scale, unit "1" (a reflectance). ``None`` uses the per-pixel default.

    Returns
    -------
    jax.Array
        kNDVI, unit "1", in [0, 1).
    """
    nir, red = jnp.asarray(nir), jnp.asarray(red)
    if sigma is None:
        ratio = ndvi(nir, red)
    else:
        ratio = _safe_divide(nir - red, 2.0 * jnp.asarray(sigma))
    return jnp.tanh(ratio**2)


INDEX_ATTRS: dict[str, dict[str, str]] = {
    "evi": {"units": "1", "long_name": "enhanced vegetation index",
            "references": "Huete et al. (2002) doi:10.1016/S0034-4257(02)00096-2"},
    "evi2": {"units": "1", "long_name": "two-band enhanced vegetation index",
             "references": "Jiang et al. (2008) doi:10.1016/j.rse.2008.06.006"},
    "ndvi": {"units": "1", "long_name": "normalised difference vegetation index",
             "references": "Tucker (1979) doi:10.1016/0034-4257(79)90013-0"},
    "lswi": {"units": "1", "long_name": "land surface water index",
             "references": "Xiao et al. (2004) doi:10.1016/j.rse.2003.11.008"},
    "nirv": {"units": "1", "long_name": "near-infrared reflectance of vegetation",
             "references": "Badgley et al. (2017) doi:10.1126/sciadv.1602244"},
    "kndvi": {"units": "1", "long_name": "kernel NDVI (RBF, sigma = 0.5 (NIR + red))",
              "references": "Camps-Valls et al. (2021) doi:10.1126/sciadv.abc7447"},
}

_NEEDS = {"evi": ("nir", "red", "blue"), "evi2": ("nir", "red"), "ndvi": ("nir", "red"),
          "lswi": ("nir", "swir16"), "nirv": ("nir", "red"), "kndvi": ("nir", "red")}
_FUNCS = {"evi": evi, "evi2": evi2, "ndvi": ndvi, "lswi": lswi, "nirv": nirv, "kndvi": kndvi}


def _as_numpy(func):
    def wrapped(*arrays):
        return np.asarray(func(*arrays))
    return wrapped


def compute_indices(ds: xr.Dataset, indices: Sequence[str] = ("evi", "lswi", "ndvi", "nirv", "kndvi"),
                    evi_valid_range: tuple[float, float] = (0.0, 1.0), *,
                    pyvprm_evi_filter: bool = True, bands: Mapping[str, str] | None = None,
                    valid: xr.DataArray | None = None, snow: xr.DataArray | None = None,
                    ) -> xr.Dataset:
    """Spectral indices of a reflectance Dataset (xarray edge of this module).

    Parameters
    ----------
    ds : xr.Dataset
        Surface reflectance (unit "1") with the band names of the MODIS reader
        (:func:`process_models.io.modis.read_mod09a1`): ``red``, ``nir``, ``blue``,
        ``swir16``. Any dims (e.g. ``time, y, x``).
    indices : sequence of str
        Any of ``evi, evi2, ndvi, lswi, nirv, kndvi``.
    evi_valid_range : (float, float)
        Range of plausible EVI, used when ``pyvprm_evi_filter``.
    pyvprm_evi_filter : bool
        Set EVI (and EVI2) outside ``evi_valid_range`` to NaN at computation, as pyVPRM's
        ``add_evi`` does (default True, for parity).
    bands : mapping, optional
        Canonical band name -> variable name in ``ds``, e.g. ``{"nir": "nir08"}`` for a
        Sentinel-2 STAC Dataset.
    valid : xr.DataArray of bool, optional
        True = usable pixel (e.g. :func:`~process_models.satellite.qa.modis_state_mask`).
        Indices are set to NaN where False.
    snow : xr.DataArray of bool, optional
        Snow flag; indices are set to ``+inf`` where snow and ``valid`` (pyVPRM order:
        snow -> inf first, then water/cloud -> NaN wins). Resolve the infs with
        :func:`~process_models.satellite.qa.apply_snow_rule`.

    Returns
    -------
    xr.Dataset
        One variable per index, unit "1", with the coordinates of ``ds``.
    """
    names = dict(red="red", nir="nir", blue="blue", swir16="swir16")
    names.update(bands or {})
    lo, hi = evi_valid_range
    out = {}
    for name in indices:
        if name not in _FUNCS:
            raise DataValidationError(f"unknown index {name!r}.", variable=name,
                                      fix=f"choose from {sorted(_FUNCS)}.")
        args = []
        for band in _NEEDS[name]:
            var = names[band]
            if var not in ds:
                raise DataValidationError(
                    f"band {band!r} (variable {var!r}) needed for {name!r} is missing; "
                    f"the Dataset has {sorted(ds.data_vars)}.", variable=var,
                    fix="pass bands={...} to map band names, e.g. bands={'nir': 'nir08'}.")
            args.append(ds[var])
        da = xr.apply_ufunc(_as_numpy(_FUNCS[name]), *args, dask="parallelized",
                            output_dtypes=[np.result_type(*[a.dtype for a in args], np.float32)])
        if pyvprm_evi_filter and name in ("evi", "evi2"):
            da = da.where((da >= lo) & (da <= hi))
        if snow is not None:
            usable = snow.astype(bool) if valid is None else (snow.astype(bool) & valid.astype(bool))
            da = da.where(~usable, np.inf)
        if valid is not None:
            da = da.where(valid.astype(bool))
        da.attrs = dict(INDEX_ATTRS[name])
        if pyvprm_evi_filter and name in ("evi", "evi2"):
            da.attrs["valid_range_filter"] = f"values outside [{lo}, {hi}] set to NaN (pyVPRM)"
        out[name] = da
    return xr.Dataset(out, coords=ds.coords)
