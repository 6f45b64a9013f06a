"""TROPOMI-like observation operator for the 2-D NOx column model.

From the model NOx column ``c`` (kg m-2, NOx as NO2) on the model grid to a satellite
tropospheric NO2 column on pixels::

    x      = r c / M_NO2                                     NO2 column, mol m-2
    y_true = a * x                                           boundary-layer averaging kernel
    y_p    = mean of y_true over the model cells of pixel p  footprint (block average)
    y      = y_p + eps,  eps ~ N(0, s^2), s = max(noise_std, NO2_std)
    y      = NaN where the pixel fails qa_value > 0.75 or has cloud fraction > 0.3

The averaging-kernel factor ``a`` is the tropospheric column averaging kernel
``A_trop = AK * M / M_trop`` (Eskes & Boersma 2003, ACP 3:1285, eq. 5; van Geffen et
al. 2022, AMT 15:2037) averaged over the boundary-layer layers, i.e. the sensitivity of
the retrieval to NO2 confined to the boundary layer (where the 2-D model puts it). The
ddeq crop ships the total-column ``AK`` and ``M_trop`` but not the total AMF ``M`` nor the
TM5 a-priori profile, so ``A_trop`` cannot be formed from it; by construction
``A_trop`` averages to 1 over a profile shaped like the a priori, which near a source is
confined to the boundary layer, so the default is ``a = 1`` with a scene-to-scene spread
``kernel_sd`` (5 %, the order of the AMF structural uncertainty of Lorente et al. 2017,
AMT 10:759) that the truth draws and the inversions treat as an error.

Everything here is pure ``jnp`` (jit/vmap/grad); the masks are inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from process_models.transport import M_NO2

__all__ = ["ObservationConfig", "footprint_average", "upsample", "observe", "real_masks"]


@dataclass(frozen=True)
class ObservationConfig:
    """Settings of the TROPOMI-like operator."""

    pixel_cells: int = 2
    """Model cells per pixel side (2 x 2 km cells -> 4 x 4 km pixels, the area of a
    TROPOMI 3.5 x 5.5 km pixel within 20 %)."""
    noise_std: float = 1.0e-5
    """Single-pixel precision. Units: mol m-2 (TROPOMI L2: ~1e-5, van Geffen et al. 2022)."""
    kernel: float = 1.0
    """Boundary-layer averaging-kernel factor a assumed by the inversions. Units: 1."""
    kernel_sd: float = 0.05
    """Relative scene-to-scene spread of the true kernel factor (AMF error). Units: 1."""


def footprint_average(field, pixel_cells: int):
    """Block mean over ``pixel_cells x pixel_cells`` cells: (..., ny, nx) -> (..., ny/k, nx/k)."""
    k = pixel_cells
    *lead, ny, nx = field.shape
    if ny % k or nx % k:
        raise ValueError(f"grid ({ny}, {nx}) is not a multiple of pixel_cells={k}.")
    return field.reshape(*lead, ny // k, k, nx // k, k).mean(axis=(-3, -1))


def upsample(pixels, pixel_cells: int):
    """Nearest-neighbour inverse of :func:`footprint_average` (each pixel to its cells)."""
    return jnp.repeat(jnp.repeat(pixels, pixel_cells, axis=-2), pixel_cells, axis=-1)


def observe(nox_column, no2_nox_ratio, config: ObservationConfig, *, kernel=None, key=None,
            valid=None, no2_std=None):
    """Noise-free (``key=None``) or noisy pixel columns (mol m-2), NaN where ``valid == 0``.

    nox_column : (..., ny, nx) kg m-2. valid : pixel mask (1 = usable), (..., ny/k, nx/k).
    no2_std : per-pixel reported precision (mol m-2), a floor for the noise.
    """
    a = config.kernel if kernel is None else kernel
    x = a * no2_nox_ratio * nox_column / M_NO2
    y = footprint_average(x, config.pixel_cells)
    if key is not None:
        s = jnp.asarray(config.noise_std, y.dtype)
        if no2_std is not None:
            s = jnp.maximum(s, no2_std)
        y = y + s * jax.random.normal(key, y.shape, y.dtype)
    if valid is not None:
        y = jnp.where(valid > 0, y, jnp.nan)
    return y


def real_masks(l2, shape, n: int, seed: int, min_valid: float = 0.6) -> np.ndarray:
    """``n`` pixel masks of ``shape`` cut at random from the real qa/cloud ``valid`` field of
    a TROPOMI crop, keeping windows with at least ``min_valid`` usable pixels. (n, *shape)."""
    v = np.asarray(l2["valid"].values) > 0
    rng = np.random.default_rng(seed)
    H, W = v.shape
    h, w = shape
    if h > H or w > W:
        raise ValueError(f"mask window {shape} larger than the crop {v.shape}.")
    out, tries = [], 0
    while len(out) < n:
        i, j = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        m = v[i:i + h, j:j + w]
        tries += 1
        if m.mean() >= min_valid or tries > 200 * n:
            out.append(m)
    return np.asarray(out, float)
