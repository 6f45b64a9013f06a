r"""Sentinel-2 biophysical variables (LAI, FAPAR, FCOVER, LAI_Cab, LAI_Cw) with the SL2P
neural networks of the SNAP Sentinel-2 Toolbox (Weiss & Baret 2016).

Weiss, M. & Baret, F. (2016) *S2ToolBox Level 2 products: LAI, FAPAR, FCOVER*, version 1.1,
ESA / INRA EMMAH (the ATBD of the SNAP "Biophysical Processor"). One network per variable,
trained on PROSAIL simulations:

.. math::
    x'_i = 2\,\frac{x_i - x_{i,\min}}{x_{i,\max} - x_{i,\min}} - 1, \qquad
    h = \tanh(W_1 x' + b_1), \qquad
    y = \tfrac12\,(w_2 \cdot h + b_2 + 1)\,(y_{\max} - y_{\min}) + y_{\min}

with 11 inputs ``x`` = the surface reflectances (unit "1") of bands B3, B4, B5, B6, B7, B8A,
B11, B12 and cos(view zenith), cos(sun zenith), cos(sun azimuth - view azimuth); 5 tansig
(= tanh) hidden neurons and one linear output. The normalisation (``*_Normalisation``),
weights (``*_Weights_Layer{1,2}_{Neurons,Bias}``) and denormalisation (``*_Denormalisation``)
are read from the SNAP auxiliary data ``2_1`` as shipped by the PyPI package ``satellitetools``
2.1.6 (MIT; ``satellitetools/biophys/snap-auxdata/biophysical/2_1/<VAR>/``), located without
importing that package. The equations are those of SNAP's ``BiophysicalAlgo.initNN``
(senbox-org/s2tbx, ``s2tbx-biophysical``). satellitetools' own ``_denormalization`` drops the
``+ y_min`` term (a 3e-4 LAI offset); SNAP's form is used here.

Quality flags (bit field, SNAP ``BiophysicalFlag``):

===  ================================  ===========================================================
bit  name                              rule
===  ================================  ===========================================================
0    input_out_of_range                a band outside ``DefinitionDomain_MinMax``, or the band
                                       vector's grid cell ``floor(10 (x - min)/(max - min) + 1)``
                                       absent from ``DefinitionDomain_Grid`` (the approximated
                                       convex hull of the training spectra; ATBD "definition
                                       domain"; SNAP ``processInputOutOfRange``), or a non-finite
                                       input
1    output_thresholded_to_min_output  min - tol <= y < min: y := min
2    output_thresholded_to_max_output  max < y <= max + tol: y := max
3    output_too_low                    y < min - tol
4    output_too_high                   y > max + tol
===  ================================  ===========================================================

``tol, min, max`` are the three numbers of ``*_ExtremeCases``. The file stores the tolerance
as a negative number (LAI: -0.2, 0, 8); the ATBD rule is a band of width ``|tol|`` below the
minimum and above the maximum, which is what satellitetools' ``_output_ouf_of_range`` and the
shipped TestCases do (FAPAR test case: network -0.0067 -> 0). SNAP's Java
``processOutputOutOfRange`` subtracts the signed tolerance (``y < min - tol``), which with the
negative files flags every LAI below 0.2 as too low and never clamps; that sign slip is not
reproduced. ``|tol|`` is used throughout.

What a flagged pixel's value becomes is ``out_of_range``: ``"nan"`` (default; satellitetools:
flags 0, 3 and 4 -> NaN), ``"clip"`` (clamp to [min, max], keep the network value for flag 0)
or ``"keep"`` (SNAP's Java processor: the network value, only the flags say). Flags 1 and 2
always clamp.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import struct

from ..units import DataValidationError

__all__ = [
    "SL2P_BANDS", "SL2P_VARIABLES", "SL2P_UNITS", "SL2P_FLAGS", "SL2PNetwork", "sl2p_auxdata_dir",
    "load_sl2p", "load_sl2p_test_cases", "sl2p", "biophysical_variables",
]

SL2P_BANDS = ("B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12")
"""Sentinel-2 bands of the network input, in input order (ATBD; SNAP ``L2BInput``)."""
SL2P_VARIABLES = ("LAI", "FAPAR", "FCOVER", "LAI_Cab", "LAI_Cw")
SL2P_UNITS = {"LAI": "m2 m-2", "FAPAR": "1", "FCOVER": "1", "LAI_Cab": "ug cm-2", "LAI_Cw": "g cm-2"}
"""UDUNITS units. LAI_Cab = LAI x leaf chlorophyll (PROSAIL Cab in ug cm-2), LAI_Cw = LAI x leaf
water (PROSAIL Cw in g cm-2); SNAP's band metadata ("g/cm2", "g/m2") disagrees with the
ranges of the networks (0-600, 0-0.55), which follow from the PROSAIL units."""
SL2P_LONG_NAMES = {"LAI": "leaf area index", "FAPAR": "fraction of absorbed photosynthetically "
                   "active radiation", "FCOVER": "fraction of vegetation cover",
                   "LAI_Cab": "canopy chlorophyll content", "LAI_Cw": "canopy water content"}
SL2P_FLAGS = ("input_out_of_range", "output_thresholded_to_min_output",
              "output_thresholded_to_max_output", "output_too_low", "output_too_high")
"""Flag names; flag ``k`` is bit ``k`` (value ``2**k``) of the uint8 flag field."""
_PACKAGE_FIX = ("pip install --no-deps satellitetools==2.1.6 (the Makefile's venv target does "
                "this); it ships the SNAP biophysical networks.")
_GRID_BASE = 12   # grid indices are clipped to 0..11 (valid cells are 1..10), one digit each


def sl2p_auxdata_dir(version: str = "2_1") -> Path:
    """Folder of the SNAP biophysical auxiliary data inside the installed ``satellitetools``.

    Found with ``importlib.util.find_spec`` (the package itself is not imported: it needs
    rasterio and Earth Engine, which reading these files does not). Raises
    ``ModuleNotFoundError`` naming the fix when the package is not installed.
    """
    spec = importlib.util.find_spec("satellitetools")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the SL2P networks are read from the PyPI package 'satellitetools', which is not "
            f"installed. Fix: {_PACKAGE_FIX}")
    root = Path(list(spec.submodule_search_locations)[0]) / "biophys" / "snap-auxdata" / "biophysical"
    path = root / version
    if not path.is_dir():
        have = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise FileNotFoundError(f"{path}: no SNAP biophysical auxdata version {version!r} "
                                f"(found {have}). Fix: {_PACKAGE_FIX}")
    return path


def _canonical_variable(variable: str) -> str:
    for name in SL2P_VARIABLES:
        if variable.lower() == name.lower():
            return name
    raise ValueError(f"unknown SL2P variable {variable!r}; choose from {SL2P_VARIABLES}.")


def _read(folder: Path, variable: str, table: str, shape: tuple | None = None) -> np.ndarray:
    path = folder / f"{variable}_{table}"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing SNAP auxdata file. Fix: {_PACKAGE_FIX}")
    arr = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    if shape is not None and arr.shape != shape:
        raise DataValidationError(f"table has shape {arr.shape}, expected {shape}.",
                                  source=str(path), fix=_PACKAGE_FIX)
    return arr


def _grid_keys(cells):
    """One integer per 8-band grid cell (base-12 digits); cells are integer arrays (..., 8)."""
    powers = jnp.asarray([_GRID_BASE ** i for i in range(cells.shape[-1])], dtype=jnp.int32)
    return jnp.sum(cells.astype(jnp.int32) * powers, axis=-1, dtype=jnp.int32)


@struct.dataclass
class SL2PNetwork:
    """One SL2P network and its validity tables (frozen pytree; arrays are leaves).

    Shapes for the shipped networks: 11 inputs, 5 hidden neurons, 8 bands, about 11 000
    definition-domain cells.
    """

    layer1_weights: jax.Array
    """Hidden-layer weights, shape (5, 11). Units: 1 (inputs normalised to [-1, 1])."""
    layer1_bias: jax.Array
    """Hidden-layer biases, shape (5,)."""
    layer2_weights: jax.Array
    """Output weights, shape (5,)."""
    layer2_bias: jax.Array
    """Output bias, shape ()."""
    input_min: jax.Array
    """Normalisation minimum of the 11 inputs (reflectance "1", cosines "1"), shape (11,)."""
    input_max: jax.Array
    """Normalisation maximum of the 11 inputs, shape (11,)."""
    output_min: jax.Array
    """Denormalisation minimum, in the variable's unit, shape ()."""
    output_max: jax.Array
    """Denormalisation maximum, in the variable's unit, shape ()."""
    domain_min: jax.Array
    """Definition-domain minimum reflectance of the 8 bands, shape (8,)."""
    domain_max: jax.Array
    """Definition-domain maximum reflectance of the 8 bands, shape (8,)."""
    domain_cells: jax.Array
    """Sorted integer keys of the definition-domain grid cells (int32), shape (n_cells,)."""
    tolerance: jax.Array
    """Extreme-case tolerance, stored as its magnitude (file value is negative), shape ()."""
    valid_min: jax.Array
    """Extreme-case minimum of the output, shape ()."""
    valid_max: jax.Array
    """Extreme-case maximum of the output, shape ()."""
    variable: str = struct.field(pytree_node=False, default="LAI")
    """Variable name (one of :data:`SL2P_VARIABLES`; static)."""
    version: str = struct.field(pytree_node=False, default="2_1")
    """SNAP auxdata version (static)."""

    @property
    def units(self) -> str:
        return SL2P_UNITS[self.variable]


def load_sl2p(variable: str, version: str = "2_1", *, dtype=None) -> SL2PNetwork:
    """Read one SL2P network from the installed ``satellitetools`` package.

    Parameters
    ----------
    variable : str
        ``LAI``, ``FAPAR``, ``FCOVER``, ``LAI_Cab`` or ``LAI_Cw`` (case-insensitive).
    version : str
        SNAP auxdata version folder (``2_1``, the one shipped).
    dtype : dtype, optional
        Float dtype of the arrays; default float64 when x64 is enabled, else float32.

    Returns
    -------
    SL2PNetwork
    """
    variable = _canonical_variable(variable)
    folder = sl2p_auxdata_dir(version) / variable
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)
    w1 = _read(folder, variable, "Weights_Layer1_Neurons")
    n_hidden, n_inputs = w1.shape
    n_bands = len(SL2P_BANDS)
    b1 = _read(folder, variable, "Weights_Layer1_Bias", (1, n_hidden))
    w2 = _read(folder, variable, "Weights_Layer2_Neurons", (1, n_hidden))
    b2 = _read(folder, variable, "Weights_Layer2_Bias", (1, 1))
    norm = _read(folder, variable, "Normalisation", (n_inputs, 2))
    denorm = _read(folder, variable, "Denormalisation", (1, 2))
    extreme = _read(folder, variable, "ExtremeCases", (1, 3))
    minmax = _read(folder, variable, "DefinitionDomain_MinMax", (2, n_bands))
    grid = _read(folder, variable, "DefinitionDomain_Grid")
    if grid.shape[1] != n_bands:
        raise DataValidationError(f"grid has {grid.shape[1]} columns, expected {n_bands}.",
                                  source=str(folder), fix=_PACKAGE_FIX)
    cells = np.unique(np.asarray(_grid_keys(jnp.asarray(np.rint(grid).astype(np.int32)))))
    f = lambda a: jnp.asarray(a, dtype=dtype)
    return SL2PNetwork(
        layer1_weights=f(w1), layer1_bias=f(b1[0]), layer2_weights=f(w2[0]),
        layer2_bias=f(b2[0, 0]), input_min=f(norm[:, 0]), input_max=f(norm[:, 1]),
        output_min=f(denorm[0, 0]), output_max=f(denorm[0, 1]), domain_min=f(minmax[0]),
        domain_max=f(minmax[1]), domain_cells=jnp.asarray(cells, dtype=jnp.int32),
        tolerance=f(abs(extreme[0, 0])), valid_min=f(extreme[0, 1]), valid_max=f(extreme[0, 2]),
        variable=variable, version=version)


def load_sl2p_test_cases(variable: str, version: str = "2_1") -> tuple[np.ndarray, np.ndarray]:
    """The shipped ``<VAR>_TestCases``: ``inputs`` (n, 11) = 8 reflectances, cos(view zenith),
    cos(sun zenith), cos(relative azimuth); ``expected`` (n,) (NaN where the reference
    implementation flagged the case). Printed to 5 significant digits. LAI, FAPAR and
    LAI_Cab have test cases; FCOVER and LAI_Cw do not (FileNotFoundError)."""
    variable = _canonical_variable(variable)
    path = sl2p_auxdata_dir(version) / variable / f"{variable}_TestCases"
    if not path.exists():
        raise FileNotFoundError(f"{path}: SNAP ships no test cases for {variable}.")
    table = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    return table[:, :-1], table[:, -1]


def _in_domain(network: SL2PNetwork, bands):
    """True where the 8 reflectances lie in the definition domain (min/max and grid)."""
    lo, hi = network.domain_min, network.domain_max
    finite = jnp.all(jnp.isfinite(bands), axis=-1)
    inside = jnp.all((bands >= lo) & (bands <= hi), axis=-1) & finite
    scaled = jnp.where(jnp.isfinite(bands), 10.0 * (bands - lo) / (hi - lo) + 1.0, 0.0)
    cells = jnp.clip(jnp.floor(scaled), 0, _GRID_BASE - 1)
    keys = _grid_keys(cells)
    table = network.domain_cells
    pos = jnp.clip(jnp.searchsorted(table, keys), 0, table.shape[0] - 1)
    return inside & (table[pos] == keys)


def sl2p(network: SL2PNetwork, bands, cos_view_zenith, cos_sun_zenith, cos_relative_azimuth,
         *, out_of_range: str = "nan", check_grid: bool = True):
    """SL2P biophysical variable and SNAP quality flags (pure; jit-, vmap- and grad-able).

    Parameters
    ----------
    network : SL2PNetwork
        From :func:`load_sl2p`.
    bands : array_like, shape (..., 8)
        Surface reflectance (unit "1", not DN) of B3, B4, B5, B6, B7, B8A, B11, B12.
    cos_view_zenith, cos_sun_zenith, cos_relative_azimuth : array_like
        Cosines (unit "1") of the view zenith, the sun zenith and sun azimuth - view azimuth,
        broadcastable to ``bands.shape[:-1]``.
    out_of_range : {"nan", "clip", "keep"}
        Value of pixels with flags 0, 3 or 4 (module docstring). Static.
    check_grid : bool
        Also test the definition-domain grid (SNAP does; satellitetools does not). Static.

    Returns
    -------
    value : jax.Array, shape ``bands.shape[:-1]``
        The variable in :data:`SL2P_UNITS`, in the network's dtype (inputs are cast to it).
    flags : jax.Array of uint8, same shape
        Bit field of :data:`SL2P_FLAGS`.
    """
    if out_of_range not in ("nan", "clip", "keep"):
        raise ValueError(f"out_of_range must be 'nan', 'clip' or 'keep', got {out_of_range!r}.")
    dtype = network.layer1_weights.dtype
    bands = jnp.asarray(bands, dtype=dtype)
    if bands.shape[-1:] != (len(SL2P_BANDS),):
        raise ValueError(f"bands must have a last axis of {len(SL2P_BANDS)} ({SL2P_BANDS}), "
                         f"got shape {bands.shape}.")
    angles = jnp.broadcast_arrays(*[jnp.asarray(a, dtype=dtype) for a in
                                    (cos_view_zenith, cos_sun_zenith, cos_relative_azimuth)])
    shape = jnp.broadcast_shapes(bands.shape[:-1], angles[0].shape)
    x = jnp.concatenate([jnp.broadcast_to(bands, shape + bands.shape[-1:]),
                         jnp.stack([jnp.broadcast_to(a, shape) for a in angles], axis=-1)], axis=-1)

    x_norm = 2.0 * (x - network.input_min) / (network.input_max - network.input_min) - 1.0
    hidden = jnp.tanh(x_norm @ network.layer1_weights.T + network.layer1_bias)
    y_norm = hidden @ network.layer2_weights + network.layer2_bias
    raw = 0.5 * (y_norm + 1.0) * (network.output_max - network.output_min) + network.output_min

    band_values = x[..., :len(SL2P_BANDS)]
    if check_grid:
        in_domain = _in_domain(network, band_values)
    else:
        in_domain = jnp.all((band_values >= network.domain_min)
                            & (band_values <= network.domain_max), axis=-1)
        in_domain = in_domain & jnp.all(jnp.isfinite(x), axis=-1)
    lo, hi, tol = network.valid_min, network.valid_max, network.tolerance
    too_low = raw < lo - tol
    to_min = (raw >= lo - tol) & (raw < lo)
    to_max = (raw > hi) & (raw <= hi + tol)
    too_high = raw > hi + tol
    bits = (~in_domain, to_min, to_max, too_low, too_high)
    flags = sum((b.astype(jnp.uint8) << jnp.uint8(k) for k, b in enumerate(bits)),
                jnp.zeros(shape, jnp.uint8))

    value = jnp.where(to_min, lo, jnp.where(to_max, hi, raw))
    if out_of_range == "nan":
        value = jnp.where(too_low | too_high | ~in_domain, jnp.asarray(jnp.nan, dtype), value)
    elif out_of_range == "clip":
        value = jnp.clip(value, lo, hi)
    return value, flags


_sl2p_jit = jax.jit(sl2p, static_argnames=("out_of_range", "check_grid"))
_ANGLES = ("view_zenith", "sun_zenith", "view_azimuth", "sun_azimuth", "relative_azimuth")


def _angle(ds, angles, name):
    src = angles.get(name, name) if angles else name
    if isinstance(src, str):
        if src not in ds.variables:
            return None
        da = ds[src]
    else:
        da = xr.DataArray(src) if not isinstance(src, xr.DataArray) else src
    da = da.astype(np.float64)
    units = str(da.attrs.get("units", "degree")).lower()
    if units.startswith("rad"):
        da = np.degrees(da)
    elif not units.startswith("deg"):
        raise DataValidationError(f"angle units {units!r} not understood.", variable=name,
                                  fix="give angles in degrees (units 'degree') or radians ('rad').")
    if name.endswith("zenith"):
        vals = np.asarray(da)
        if np.any((vals[np.isfinite(vals)] < 0) | (vals[np.isfinite(vals)] > 90)):
            raise DataValidationError(
                f"zenith angle outside 0-90 degrees (range {np.nanmin(vals)}..{np.nanmax(vals)}).",
                variable=name, fix="give zenith angles in degrees, not cosines or radians.")
    return da


def biophysical_variables(ds: xr.Dataset, variables: Sequence[str] = ("lai", "fapar", "fcover"),
                          *, bands: Mapping[str, str] | None = None,
                          angles: Mapping[str, str | float | xr.DataArray] | None = None,
                          out_of_range: str = "nan", check_grid: bool = True,
                          version: str = "2_1") -> xr.Dataset:
    """SL2P variables of a Sentinel-2 L2A Dataset (xarray edge of this module).

    Parameters
    ----------
    ds : xr.Dataset
        Surface reflectance (unit "1") in variables ``B3, B4, B5, B6, B7, B8A, B11, B12`` (any
        common dims, e.g. ``time, y, x``; 20 m bands), and the geometry in degrees:
        ``view_zenith``, ``sun_zenith`` and either ``relative_azimuth`` (sun - view) or both
        ``view_azimuth`` and ``sun_azimuth``. Angles may be scalars, per time or per pixel
        (xarray broadcasting); an angle's ``units`` attribute may say ``rad``.
    variables : sequence of str
        Any of ``lai, fapar, fcover, lai_cab, lai_cw``.
    bands : mapping, optional
        Band -> variable name in ``ds``, e.g. ``{"B8A": "nir08"}``.
    angles : mapping, optional
        Angle name (above) -> variable name in ``ds`` or a value in degrees, e.g.
        ``{"view_zenith": 5.0, "sun_zenith": 40.0, "relative_azimuth": 100.0}``.
    out_of_range, check_grid, version
        As :func:`sl2p` / :func:`load_sl2p`.

    Returns
    -------
    xr.Dataset
        ``<var>`` (float, ``units`` from :data:`SL2P_UNITS`) and ``<var>_flags`` (uint8, CF
        ``flag_masks`` / ``flag_meanings`` of :data:`SL2P_FLAGS`) for each variable.

    Raises
    ------
    DataValidationError
        A band or angle is missing, reflectances look like digital numbers (any value > 1.5),
        or an angle is outside its range.
    """
    names = {b: b for b in SL2P_BANDS}
    names.update(bands or {})
    missing = [b for b in SL2P_BANDS if names[b] not in ds.variables]
    if missing:
        raise DataValidationError(
            f"Sentinel-2 band(s) {missing} needed by SL2P (B3, B4, B5, B6, B7, B8A, B11, B12) "
            f"are missing; the Dataset has {sorted(map(str, ds.data_vars))}.",
            variable=names[missing[0]],
            fix="add the 20 m bands, or map names with bands={'B8A': 'nir08', ...}.")
    band_arrays = []
    for b in SL2P_BANDS:
        da = ds[names[b]]
        vmax = float(da.max(skipna=True)) if da.size else np.nan
        if vmax > 1.5:
            raise DataValidationError(
                f"reflectance up to {vmax:g}: this looks like L2A digital numbers (x 10000), "
                "not reflectance.", variable=names[b],
                fix="divide by 10000, or use process_models.satellite.sentinel2_scale(dn, "
                    "processing_baseline), which also removes the -1000 offset of baseline >= 04.00.")
        band_arrays.append(da.astype(np.float64))
    geometry = {n: _angle(ds, angles, n) for n in _ANGLES}
    for n in ("view_zenith", "sun_zenith"):
        if geometry[n] is None:
            raise DataValidationError(f"angle {n!r} is missing.", variable=n,
                                      fix=f"add a {n!r} variable (degrees) or pass angles={{{n!r}: ...}}.")
    if geometry["relative_azimuth"] is None:
        if geometry["view_azimuth"] is None or geometry["sun_azimuth"] is None:
            raise DataValidationError(
                "the relative azimuth is missing: give 'relative_azimuth' or both 'sun_azimuth' "
                "and 'view_azimuth'.", variable="relative_azimuth",
                fix="add the angle variables (degrees) or pass angles={...}.")
        geometry["relative_azimuth"] = geometry["sun_azimuth"] - geometry["view_azimuth"]
    cosines = [np.cos(np.radians(geometry[n])) for n in ("view_zenith", "sun_zenith", "relative_azimuth")]
    stacked = xr.concat(band_arrays, dim="sl2p_band", coords="minimal", compat="override", join="exact")
    if stacked.chunks:
        stacked = stacked.chunk({"sl2p_band": -1})
    out = {}
    for requested in variables:
        network = load_sl2p(requested, version)
        def run(*arrays, network=network):
            outputs = _sl2p_jit(network, *arrays, out_of_range=out_of_range, check_grid=check_grid)
            return tuple(np.asarray(o) for o in outputs)

        value, flags = xr.apply_ufunc(
            run, stacked, *cosines,
            input_core_dims=[["sl2p_band"], [], [], []], output_core_dims=[[], []],
            dask="parallelized", output_dtypes=[network.layer1_weights.dtype, np.uint8])
        name = network.variable.lower()
        value.attrs = {"units": network.units, "long_name": SL2P_LONG_NAMES[network.variable],
                       "source": f"SNAP S2ToolBox SL2P network {version} (Weiss & Baret 2016)",
                       "out_of_range": out_of_range}
        flags.attrs = {"long_name": f"{name} quality flags (SNAP BiophysicalFlag)", "units": "1",
                       "flag_masks": np.asarray([1 << k for k in range(len(SL2P_FLAGS))], np.uint8),
                       "flag_meanings": " ".join(SL2P_FLAGS)}
        out[name] = value
        out[f"{name}_flags"] = flags
    return xr.Dataset(out)
