"""Loading the shipped VPRM parameter tables into :class:`VPRMParams` pytrees.

The tables (``tables/*.csv``, sources and citations in ``tables/README.md``) are stored
as published; shortwave-based tables (WRF-Chem, MPI-BGC EU2007) are converted to PAR
units here: PAR0 = RAD0 / 0.505 and lam_PAR = |lam_SW| * 0.505 (the shortwave-to-PAR
factor of pyVPRM's ERA5 ingestion, PAR = SW / 0.505; pyVPRM issue #27; tables of WRF-Chem
``chem/chemics_init.F``, ``VPRM_par_initialize``).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .params import CLASS_NAMES, ClassRules, GourdjiParams, VPRMParams

_DIR = Path(__file__).parent / "tables"
SW_TO_PAR = 1.0 / 0.505
"""PAR (umol m-2 s-1) per unit shortwave (W m-2), pyVPRM and emiproc convention."""

PARAMETER_UNITS = {
    "lam": "umol umol-1", "par0": "umol m-2 s-1", "alpha": "umol m-2 s-1 degC-1",
    "beta": "umol m-2 s-1", "tmin": "degC", "topt": "degC", "tmax": "degC", "tlow": "degC",
    "theta_wilt": "m3 m-3", "theta_crit": "m3 m-3",
}
# Box used for priors, calibration bounds and the gradient tests.
PARAMETER_BOUNDS = {
    "lam": (0.01, 0.6), "par0": (50.0, 5000.0), "alpha": (0.0, 1.0), "beta": (-5.0, 10.0),
}


@lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(_DIR / name)


@lru_cache(maxsize=None)
def _citations() -> dict:
    """table name -> citation, parsed from the table of ``tables/README.md``."""
    cites = {}
    for line in (_DIR / "README.md").read_text().splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            for name in re.findall(r"`([a-z0-9_]+)`", cells[0]):
                cites[name] = cells[2]
    return cites


def available_tables() -> list[str]:
    """Names of the shipped (lam, par0, alpha, beta) tables."""
    return sorted(_read("vprm_parameters.csv")["table"].unique())


def _table_rows(table: str) -> pd.DataFrame:
    df = _read("vprm_parameters.csv")
    rows = df[df["table"] == table].set_index("class_id").sort_index()
    if rows.empty:
        raise KeyError(f"unknown VPRM parameter table {table!r}; available: {available_tables()}")
    rows = rows.copy()
    sw = rows["original_light"] == "SW"
    for col in ("lam", "lam_se"):
        rows.loc[sw, col] = rows.loc[sw, col].abs() * 0.505
    for col in ("par0", "par0_se"):
        rows.loc[sw, col] = rows.loc[sw, col] * SW_TO_PAR
    return rows


def load_parameters(table: str = "pyvprm_modis", *, temperatures: str = "copernicus",
                    classes=None, dtype=None, no_flux=(0, 8),
                    theta_wilt: float | None = None, theta_crit: float | None = None,
                    gourdji: str | None = None) -> VPRMParams:
    """Parameters of one shipped table as a :class:`VPRMParams` pytree.

    Parameters
    ----------
    table : name of the (lam, par0, alpha, beta) table, see :func:`available_tables`.
    temperatures : temperature-constant scheme: "copernicus" (pyVPRM), "mahadevan2008", "wrf".
    classes : class numbers to include, in this order (default: the table's classes).
        Classes without parameters in the table get zeros and ``has_flux = 0`` (pyVPRM
        gives them no flux).
    theta_wilt, theta_crit : optional soil-moisture stress thresholds (m3 m-3).
    gourdji : optional name of a Gourdji respiration table (``gourdji_parameters.csv``).
    dtype : array dtype; default float64 when ``jax_enable_x64`` is on, else float32.
    """
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    rows = _table_rows(table)
    ids = tuple(int(c) for c in (rows.index if classes is None else classes))
    temps = _read("temperature_constants.csv")
    temps = temps[temps["scheme"] == temperatures].set_index("class_id")
    if temps.empty:
        raise KeyError(f"unknown temperature scheme {temperatures!r}")

    def col(frame, name, default=0.0):
        return jnp.asarray([float(frame.loc[c, name]) if c in frame.index else default
                            for c in ids], dtype=dtype)

    missing = tuple(c for c in ids if c not in rows.index)
    rules = ClassRules.pyvprm(ids, no_flux=tuple(no_flux) + missing, dtype=dtype)
    extra = {}
    if theta_wilt is not None:
        extra["theta_wilt"] = jnp.full(len(ids), theta_wilt, dtype=dtype)
        extra["theta_crit"] = jnp.full(len(ids), theta_crit, dtype=dtype)
    if gourdji is not None:
        g = _read("gourdji_parameters.csv")
        g = g[g["table"] == gourdji].set_index("class_id")
        extra["gourdji"] = GourdjiParams(**{k: col(g, k) for k in
                                            ("beta", "a1", "a2", "gamma", "th1", "th2", "th3",
                                             "tcrit", "tmult")})
    return VPRMParams(lam=col(rows, "lam"), par0=col(rows, "par0", 1.0), alpha=col(rows, "alpha"),
                      beta=col(rows, "beta"), tmin=col(temps, "tmin"), topt=col(temps, "topt"),
                      tmax=col(temps, "tmax"), tlow=col(temps, "tlow", -1000.0), rules=rules,
                      **extra)


def parameter_table(table: str = "pyvprm_modis", *, model_error_inflation: float = 3.0) -> pd.DataFrame:
    """Long table (one row per class and parameter) with units, default, bounds, prior
    and citation, for calibration and documentation.

    Priors: log-normal for the positive parameters (lam, par0, alpha) and normal for beta
    (often negative). Where the table has standard errors (EU2007) the prior width is the
    standard error inflated by ``model_error_inflation`` (least-squares errors ignore
    autocorrelated model error) with a floor; elsewhere wide defaults: log-sd 0.5 for lam
    and alpha, 1.0 for par0 (lam and par0 trade off and the literature spans 176-15476),
    sd 1 umol m-2 s-1 for beta.
    """
    rows = _table_rows(table)
    cite = _citations().get(table, "")
    out = []
    floors = {"lam": 0.5, "par0": 1.0, "alpha": 0.5}
    for cid, r in rows.iterrows():
        for name in ("lam", "par0", "alpha", "beta"):
            v = float(r[name])
            se = r.get(f"{name}_se", np.nan)
            if name == "beta":
                sd = max(model_error_inflation * se, 0.5) if np.isfinite(se) else 1.0
                prior = f"Normal({v:.6g}, {sd:.3g})"
            else:
                log_sd = (max(model_error_inflation * se / v, 0.1) if np.isfinite(se)
                          else floors[name])
                prior = f"LogNormal({np.log(max(v, 1e-6)):.6g}, {log_sd:.3g})"
            lo, hi = PARAMETER_BOUNDS[name]
            out.append({"class_id": int(cid), "class_name": CLASS_NAMES.get(int(cid), "?"),
                        "name": name, "units": PARAMETER_UNITS[name], "value": v,
                        "standard_error": float(se) if np.isfinite(se) else np.nan,
                        "lower": lo, "upper": hi, "prior": prior, "table": table,
                        "citation": cite})
    return pd.DataFrame(out)


def describe_tables() -> str:
    """A plain-text listing of the packaged parameter tables with their citations."""
    names = available_tables()
    w = max(len(n) for n in names)
    lines = ["VPRM parameter tables (use 'ecoflux tables NAME' for values and priors):"]
    lines += [f"  {n.ljust(w)}  {parameter_table(n)['citation'].iloc[0] or '-'}" for n in names]
    lines.append("temperature constants (--temperatures): copernicus, mahadevan2008, wrf")
    return "\n".join(lines)


def format_table(name: str) -> str:
    """The values and priors of the packaged table ``name`` as aligned plain text
    (class, class name, parameter, units, value, prior). Raises ``KeyError`` for an unknown
    table."""
    if name not in available_tables():
        raise KeyError(f"unknown VPRM parameter table {name!r}; available: "
                       f"{', '.join(available_tables())}.")
    df = parameter_table(name)
    header = ("class", "class_name", "name", "units", "value", "prior")
    rows = [(str(r.class_id), str(r.class_name), str(r.name), str(r.units), f"{r.value:.6g}",
             str(r.prior)) for r in df.itertuples(index=False)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def fmt(r):
        return "  ".join((c.rjust(w) if i in (0, 4) else c.ljust(w))
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    lines = [f"table {name}: {df['citation'].iloc[0]}", fmt(header), "  ".join("-" * w for w in widths)]
    return "\n".join(lines + [fmt(r) for r in rows])


def copernicus_lc100_to_vprm() -> dict[int, int]:
    """Copernicus Global Land Cover LC100 discrete code -> VPRM class id (pyVPRM numbering).

    The table ``tables/copernicus_lc100_to_vprm.csv`` is pyVPRM 6.0.1's
    ``vprm_configs/copernicus_land_cover.yaml`` (Glauch et al. 2025, MIT), written out per
    code with the LC100 class names of Buchhorn et al. (2020), doi:10.5281/zenodo.3939050:
    evergreen forests (111, 112, 121, 122) -> 1, deciduous forests (113, 114, 123, 124) -> 2,
    mixed/unknown forests (115, 116, 125, 126) -> 3, shrubs (20) -> 4, cropland (40) -> 6,
    herbaceous (30) and moss/lichen (100) -> 7, urban, bare, snow, water and sea (50, 60,
    70, 80, 200) -> 8 (no flux), herbaceous wetland (90) -> 9. pyVPRM's savanna class 5 has
    no LC100 code. ``tests/vprm/test_tables.py`` checks it against the installed pyVPRM file.
    """
    t = _read("copernicus_lc100_to_vprm.csv")
    return {int(c): int(v) for c, v in zip(t["code"], t["vprm_class"])}
