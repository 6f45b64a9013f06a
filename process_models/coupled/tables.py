"""Parameter tables of the coupled model and :func:`load_parameters`.

Two shipped tables (``tables/README.md``):

* ``tables/leaf_canopy.csv`` - leaf and canopy parameters per PFT (vegetation modules);
* ``tables/soil_carbon.csv`` - soil hydraulics per texture class (Clapp & Hornberger 1978,
  Rawls et al. 1982), root profile and water stress per PFT (Jackson et al. 1996; CLM4.5),
  carbon allocation/turnover/respiration per PFT (CASA/CENTURY, Ryan 1991, Lloyd & Taylor 1994).

Parameter names in :func:`parameter_table` are dotted paths into :class:`CoupledParams`
(``leaf.vcmax25``, ``soil.b``, ``carbon.tau_leaf`` ...); :func:`set_parameters` and
:func:`get_parameter` use the same names, so calibration code can go from a table row to
the pytree and back.
"""
from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import pandas as pd

from ..units import DataValidationError
from .canopy import default_canopy_params, default_leaf_params, leaf_canopy_table
from .params import (DEFAULT_LAYERS, CarbonParams, CoupledParams, RootParams, SoilParams)

_CSV = Path(__file__).parent / "tables" / "soil_carbon.csv"
_PFT_ALIASES = {"GRA_C4": "GRA", "CRO_C4": "CRO", "C4G": "GRA", "C4C": "CRO", "OSH": "SHR",
                "CSH": "SHR", "WSA": "SAV"}
COLUMNS = ["name", "unit", "default", "lower", "upper", "prior", "citation"]


@lru_cache(maxsize=1)
def _read() -> pd.DataFrame:
    return pd.read_csv(_CSV)


def soil_textures() -> list[str]:
    """Soil texture classes of ``soil_carbon.csv`` (Clapp & Hornberger 1978)."""
    df = _read()
    return list(dict.fromkeys(df.loc[df["group"] == "soil", "class"]))


def pfts() -> list[str]:
    """PFT codes with root and carbon parameters (C4 and shrub/savanna aliases resolve)."""
    df = _read()
    return list(dict.fromkeys(df.loc[df["group"] == "carbon", "class"]))


def _rows(group: str, key: str) -> pd.DataFrame:
    df = _read()
    if group == "soil":
        k = str(key).lower().replace(" ", "_").replace("-", "_")
        options = soil_textures()
    else:
        k = _PFT_ALIASES.get(str(key).upper(), str(key).upper())
        options = pfts()
    rows = df[(df["group"] == group) & (df["class"] == k)]
    if rows.empty:
        raise DataValidationError(
            f"unknown {'soil texture' if group == 'soil' else 'plant functional type'} {key!r}.",
            source=str(_CSV), variable="soil_texture" if group == "soil" else "pft",
            fix=f"use one of {options}.")
    return rows


def _build(cls, group, key, dtype):
    rows = _rows(group, key)
    v = dict(zip(rows["name"], rows["default"].astype(float)))
    return cls(**{f.name: jnp.asarray(v[f.name], dtype) for f in fields(cls) if f.name in v})


def load_parameters(pft: str = "ENF", soil_texture: str = "loam", *, dtype=None,
                    layer_thickness=DEFAULT_LAYERS, n_substeps: int = 2,
                    bottom_boundary: str = "free_drainage") -> CoupledParams:
    """Default :class:`CoupledParams` of a plant functional type and soil texture.

    Parameters
    ----------
    pft : ENF, EBF, DBF, MF, SHR, SAV, GRA, CRO, WET, GRA_C4, CRO_C4 (aliases OSH/CSH, WSA, C4G, C4C).
    soil_texture : one of :func:`soil_textures` (e.g. "loam", "sandy_loam", "clay").
    dtype : float dtype of every leaf (default float64 when ``jax_enable_x64`` is on, else float32).
    layer_thickness : static tuple of soil layer thicknesses (m), surface first.
    n_substeps : Richards sub-steps per model step (static).
    bottom_boundary : "free_drainage" or "no_flux" (static).
    """
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    cast = lambda tree: jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), tree)
    return CoupledParams(
        leaf=cast(default_leaf_params(pft)), canopy=cast(default_canopy_params(pft)),
        soil=_build(SoilParams, "soil", soil_texture, dtype),
        roots=_build(RootParams, "roots", pft, dtype),
        carbon=_build(CarbonParams, "carbon", pft, dtype),
        layer_thickness=tuple(float(x) for x in layer_thickness),
        pft=str(pft).upper(), soil_texture=str(soil_texture),
        n_substeps=int(n_substeps), bottom_boundary=bottom_boundary)


def parameter_table(pft: str = "ENF", soil_texture: str = "loam") -> pd.DataFrame:
    """All calibratable parameters of a PFT and texture: columns ``name`` (dotted path,
    e.g. ``soil.b``), ``unit``, ``default``, ``lower``, ``upper``, ``prior``, ``citation``
    and ``group`` (leaf, canopy, soil, roots, carbon)."""
    veg = leaf_canopy_table(pft)
    veg = veg[veg["name"] != "c4"].copy()
    params = load_parameters(pft, soil_texture)
    leaf_names = {f.name for f in fields(type(params.leaf))}
    veg["group"] = ["leaf" if n in leaf_names else "canopy" for n in veg["name"]]
    parts = [veg]
    for group, key in (("soil", soil_texture), ("roots", pft), ("carbon", pft)):
        parts.append(_rows(group, key).copy())
    out = pd.concat(parts, ignore_index=True)
    out["name"] = out["group"] + "." + out["name"]
    for c in ("default", "lower", "upper"):
        out[c] = out[c].astype(float)
    return out[COLUMNS + ["group"]].reset_index(drop=True)


def get_parameter(params: CoupledParams, name: str):
    """Value of a dotted parameter name (``"soil.b"``)."""
    group, field = name.split(".", 1)
    return getattr(getattr(params, group), field)


def set_parameters(params: CoupledParams, values: dict) -> CoupledParams:
    """A copy of ``params`` with dotted names replaced (``{"soil.b": 6.0, ...}``);
    values keep the dtype of the field they replace (arrays allowed, e.g. per member)."""
    groups = {}
    for name, value in values.items():
        group, field = name.split(".", 1)
        old = getattr(getattr(params, group), field)
        groups.setdefault(group, {})[field] = jnp.asarray(value, jnp.result_type(old))
    return params.replace(**{g: getattr(params, g).replace(**kv) for g, kv in groups.items()})
