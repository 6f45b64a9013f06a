"""Per-PFT leaf and canopy parameters from ``tables/leaf_canopy.csv`` (see ``tables/README.md``).

The table is read here; the parameter classes are built from it in :mod:`.canopy`
(:func:`~.canopy.default_leaf_params`, :func:`~.canopy.default_canopy_params`), so this
module imports neither of them.

Columns: ``name, unit, pft, default, lower, upper, prior, citation`` (the
:func:`process_models.vprm.parameter_table` conventions). PFT codes (IGBP-like): ENF, EBF,
DBF, MF, SHR, SAV, GRA, CRO, WET (C3) and GRA_C4, CRO_C4 (C4). Aliases: ``C4G`` -> GRA_C4,
``C4C`` -> CRO_C4, ``OSH``/``CSH`` -> SHR, ``WSA`` -> SAV.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..units import DataValidationError

__all__ = ["PFTS", "leaf_canopy_table", "parameter_bounds", "pft_values"]

_CSV = Path(__file__).parent / "tables" / "leaf_canopy.csv"
_ALIASES = {"C4G": "GRA_C4", "C4C": "CRO_C4", "OSH": "SHR", "CSH": "SHR", "WSA": "SAV"}


@lru_cache(maxsize=1)
def _read() -> pd.DataFrame:
    return pd.read_csv(_CSV)


def _pfts() -> list[str]:
    return list(dict.fromkeys(_read()["pft"]))


PFTS = tuple(_pfts())
"""PFT codes in the table."""


def _resolve(pft: str) -> str:
    key = _ALIASES.get(str(pft).upper(), str(pft).upper())
    if key not in PFTS:
        raise DataValidationError(f"unknown plant functional type {pft!r}.", source=str(_CSV),
                                  variable="pft", fix=f"use one of {list(PFTS)} (aliases {_ALIASES}).")
    return key


def leaf_canopy_table(pft: str | None = None) -> pd.DataFrame:
    """The parameter table (one row per parameter and PFT), optionally for one PFT."""
    df = _read()
    if pft is None:
        return df.copy()
    return df[df["pft"] == _resolve(pft)].reset_index(drop=True)


def parameter_bounds(pft: str) -> dict[str, tuple[float, float]]:
    """{name: (lower, upper)} of the calibratable leaf and canopy parameters of a PFT."""
    t = leaf_canopy_table(pft)
    return {r["name"]: (float(r["lower"]), float(r["upper"])) for _, r in t.iterrows()
            if r["name"] != "c4"}


def pft_values(pft: str) -> dict[str, float]:
    """{name: default} of every leaf and canopy parameter of a PFT (units in the table's
    ``unit`` column; ``c4`` is 1.0 for C4 photosynthesis, else 0.0)."""
    t = leaf_canopy_table(pft)
    return dict(zip(t["name"], t["default"].astype(float)))
