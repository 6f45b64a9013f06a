"""VPRM site forcing from a tower + satellite pair (one builder for every study).

The VPRM inputs at a tower (Mahadevan et al. 2008, Global Biogeochem. Cycles 22,
GB2005, sections 2.2-2.3): air temperature (degC) and PAR (umol m-2 s-1) at the tower
steps, EVI and LSWI (unit 1) interpolated linearly in time from the satellite dates to
the tower steps, and the per-pixel statistics of the year: the Pscale threshold
``EVImin + 0.55 (EVImax - EVImin)`` and the growing-season ``LSWImin``/``LSWImax``,
computed from the indices on an 8-day grid over the year
(:func:`process_models.satellite.yearly_statistics`, as pyVPRM 6.0.1 computes them from
its 8-day composites; Glauch et al. 2025). Indices missing from the satellite Dataset are
computed from its reflectances: EVI from NIR, red and blue (Huete et al. 2002), LSWI from
NIR and SWIR (Xiao et al. 2004).

Usage::

    from process_models.io import (park_falls_vprm_forcing, read_park_falls,
                                   vprm_site_forcing)

    forcing = park_falls_vprm_forcing()            # US-PFa 2005, hourly, one class column

    d = read_park_falls()                          # the same, spelled out
    forcing = vprm_site_forcing(d["tower"], d["evi"], lswi_satellite=d["reflectance"])

    forcing, stats = vprm_site_forcing(tower, modis.where(modis["valid"]), swir="swir21",
                                       with_statistics=True)   # stats: evi_min, evi_max, ...
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..units import DataValidationError

__all__ = ["vprm_site_forcing", "park_falls_vprm_forcing", "satellite_index"]

STATISTICS_GRID_DAYS = 8.0   # d, spacing of the grid of the yearly statistics (8-day composites)


def _days(times, year: int) -> np.ndarray:
    """Days (float, d) since ``year``-01-01 00:00 of ``times``."""
    ref = np.datetime64(f"{year:04d}-01-01", "ns")
    return (np.asarray(times, "datetime64[ns]") - ref) / np.timedelta64(1, "D")


def satellite_index(satellite: xr.Dataset, name: str, *, swir: str = "swir",
                    source: str = "satellite") -> xr.DataArray:
    """Index ``name`` ("evi" or "lswi", unit 1) of a satellite Dataset along ``time``:
    the variable itself if present, else computed from the reflectances (``evi``:
    ``nir``, ``red``, ``blue``, Huete et al. 2002; ``lswi``: ``nir`` and ``swir``, Xiao
    et al. 2004). NaN where the composite is missing or masked."""
    from ..satellite import evi as evi_index
    from ..satellite import lswi as lswi_index

    if "time" not in satellite.dims:
        raise DataValidationError("has no 'time' dimension.", source=source, variable="time",
                                  fix="pass a Dataset with the satellite dates on 'time'.")
    if name in satellite:
        return satellite[name].astype(float)
    bands = {"evi": ("nir", "red", "blue"), "lswi": ("nir", swir)}[name]
    missing = [b for b in bands if b not in satellite]
    if missing:
        raise DataValidationError(
            f"has neither '{name}' nor the reflectances {missing} to compute it.", source=source,
            variable=name, fix=f"add '{name}' or the bands {list(bands)} (surface reflectance, unit 1).")
    fn = evi_index if name == "evi" else lswi_index
    values = np.asarray(fn(*(satellite[b].values for b in bands)), float)
    return xr.DataArray(values, dims=satellite[bands[0]].dims, coords=satellite[bands[0]].coords,
                        name=name, attrs={"units": "1"})


def vprm_site_forcing(tower: xr.Dataset, satellite: xr.Dataset, *,
                      lswi_satellite: xr.Dataset | None = None, year: int | None = None,
                      swir: str = "swir", fapar=None, temperature: str = "air_temperature",
                      par: str = "ppfd_in", with_statistics: bool = False):
    """:class:`process_models.vprm.VPRMForcing` at the tower steps (one site, one class column).

    Parameters
    ----------
    tower : xarray.Dataset
        Tower record on ``time`` with ``temperature`` (air temperature, degC) and ``par``
        (PPFD, umol m-2 s-1), e.g. from :func:`read_park_falls` or :func:`read_bigleaf_month`.
    satellite : xarray.Dataset
        Satellite series of the site pixel on ``time`` (composite dates) with ``evi`` and
        ``lswi`` (unit 1), or the reflectances to compute them (see :func:`satellite_index`).
        NaN marks a missing/masked composite: it is interpolated over
        (``satellite.where(satellite["valid"])`` drops QA-flagged dates).
    lswi_satellite : xarray.Dataset, optional
        Separate source of LSWI (its own dates), e.g. MCD43A4 reflectances next to the
        MOD13Q1 EVI product; default: ``satellite``.
    year : int, optional
        Year of the statistics and the time origin of the interpolation; default the year
        of the first tower step.
    swir : str
        Name of the SWIR band for LSWI (``"swir"``: 1.6 um band 6; ``"swir21"``: 2.1 um band 7).
    fapar : array_like, optional
        fAPAR (unit 1) at the tower steps for the ``light="fapar"`` VPRM variant.
    with_statistics : bool
        Also return the yearly statistics (dict of floats, unit 1: ``evi_min``,
        ``evi_max``, ``evi_threshold``, ``lswi_min``, ``lswi_max``).

    Returns
    -------
    VPRMForcing
        Time-major fields of length T (tower steps), ``class_fractions`` of shape (T, 1);
        ``(forcing, statistics)`` with ``with_statistics=True``. Interpolation holds the
        first/last valid composite constant outside the satellite period.
    """
    import jax.numpy as jnp

    from ..satellite import interpolate_to_times, yearly_statistics
    from ..vprm import VPRMForcing

    for name in (temperature, par):
        if name not in tower:
            raise DataValidationError("missing from the tower dataset.", source="tower", variable=name,
                                      fix=f"read the tower file with its reader or pass {name}=<its name>.")
    if "time" not in tower.dims or tower.sizes["time"] == 0:
        raise DataValidationError("has no time steps.", source="tower", variable="time",
                                  fix="pass the tower record on a non-empty 'time' dimension.")
    year = int(np.asarray(tower.time.values[0], "datetime64[Y]").astype(int) + 1970) if year is None else year
    sources = {"evi": satellite, "lswi": satellite if lswi_satellite is None else lswi_satellite}
    steps = _days(tower.time.values, year)
    grid = np.arange(0, 365, STATISTICS_GRID_DAYS)
    at_steps, on_grid = {}, {}
    for name, ds in sources.items():
        index = satellite_index(ds, name, swir=swir, source=f"satellite ({name})")
        values = np.asarray(index.values, float)
        if values.ndim != 1 or not np.any(np.isfinite(values)):
            raise DataValidationError(
                "must be one series on 'time' with at least one valid value.", source="satellite",
                variable=name, fix="select the site pixel (one value per date; NaN = missing).")
        t = _days(index.time.values, year)
        at_steps[name] = np.asarray(interpolate_to_times(values[:, None], t, steps).values[:, 0])
        on_grid[name] = interpolate_to_times(values[:, None], t, grid).values
    stats = {k: float(v[0]) for k, v in yearly_statistics(on_grid["evi"], on_grid["lswi"]).items()}
    n = tower.sizes["time"]
    forcing = VPRMForcing(temperature=jnp.asarray(tower[temperature].values),
                          par=jnp.asarray(tower[par].values), evi=jnp.asarray(at_steps["evi"]),
                          lswi=jnp.asarray(at_steps["lswi"]),
                          evi_threshold=jnp.full(n, stats["evi_threshold"]),
                          lswi_min=jnp.full(n, stats["lswi_min"]), lswi_max=jnp.full(n, stats["lswi_max"]),
                          class_fractions=jnp.ones((n, 1)),
                          fapar=None if fapar is None else jnp.asarray(fapar))
    return (forcing, stats) if with_statistics else forcing


def park_falls_vprm_forcing(path=None, *, with_statistics: bool = False):
    """US-PFa 2005 hourly VPRM forcing from :func:`read_park_falls`: tower air temperature
    and PPFD, MOD13Q1 EVI and MCD43A4 LSWI (NIR, SWIR 1.6 um; Xiao et al. 2004), statistics
    over 2005 (see :func:`vprm_site_forcing`)."""
    from .park_falls import read_park_falls

    d = read_park_falls(path)
    return vprm_site_forcing(d["tower"], d["evi"], lswi_satellite=d["reflectance"], year=2005,
                             with_statistics=with_statistics)
