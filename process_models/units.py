"""Canonical variable names, units and the validation used at every data edge.

Every reader in :mod:`process_models.io` returns an :class:`xarray.Dataset` whose
variables use the names and UDUNITS unit strings of :data:`CANONICAL`. Files that
store a variable in another unit (VPD in Pa, SWC in %, pressure in hPa or Pa,
temperature in K) are converted on reading; the original column name and unit are
kept in the ``source_name`` / ``source_units`` attributes.

Time convention (all readers)
-----------------------------
* ``time`` is the **start** of the averaging interval (FLUXNET ``TIMESTAMP_START``);
  files that label the end (``TIMESTAMP_END``, REddyProc ``Hour``) or the middle
  (diive ``TIMESTAMP_MIDDLE``) are shifted on reading.
* Flux-tower clocks are **local standard time** (no daylight saving). The offset to
  UTC is stored as ``ds.attrs["utc_offset_hours"]`` when it is known (``nan`` when the
  file does not say), and ``ds.attrs["time_zone"]`` says it in words.
* Gridded products (ERA5, MODIS) are in UTC (``utc_offset_hours = 0``).
* ``ds.attrs["time_step_seconds"]`` holds the record length.

Sign convention (whole toolkit)
-------------------------------
GPP >= 0, Reco >= 0, NEE = Reco - GPP (positive = source to the atmosphere),
all in ``umol m-2 s-1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CANONICAL",
    "VariableSpec",
    "DataValidationError",
    "check_range",
    "check_time_axis",
    "convert",
    "FILL_VALUES",
]

FILL_VALUES = (-9999.0, -9999, -99999.0, -6999.0)
"""Sentinel codes that readers turn into NaN."""


class DataValidationError(ValueError):
    """Bad input at a data edge. The message names the file, the variable, the
    problem and the fix."""

    def __init__(self, problem: str, *, source: str = "<memory>", variable: str | None = None,
                 fix: str = ""):
        where = f"{source}" + (f", variable {variable!r}" if variable else "")
        msg = f"{where}: {problem}"
        if fix:
            msg += f" Fix: {fix}"
        super().__init__(msg)
        self.source = source
        self.variable = variable
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class VariableSpec:
    """Canonical definition of one variable.

    ``plausible`` is a (min, max) range for values in the canonical unit; data
    outside it are taken as a unit error (e.g. air temperature in K) and raise.
    """

    units: str
    long_name: str
    plausible: tuple[float, float]
    standard_name: str | None = None


CANONICAL: dict[str, VariableSpec] = {
    # meteorology
    "air_temperature": VariableSpec("degC", "air temperature", (-60.0, 60.0), "air_temperature"),
    "soil_temperature": VariableSpec("degC", "soil temperature", (-40.0, 60.0), "soil_temperature"),
    "vpd": VariableSpec("hPa", "vapour pressure deficit", (-1.0, 120.0),
                        "water_vapor_saturation_deficit_in_air"),
    "relative_humidity": VariableSpec("%", "relative humidity", (0.0, 110.0), "relative_humidity"),
    "shortwave_in": VariableSpec("W m-2", "incoming shortwave (global) radiation", (-50.0, 1500.0),
                                 "surface_downwelling_shortwave_flux_in_air"),
    "longwave_in": VariableSpec("W m-2", "incoming longwave radiation", (50.0, 700.0),
                                "surface_downwelling_longwave_flux_in_air"),
    "net_radiation": VariableSpec("W m-2", "net radiation", (-300.0, 1200.0),
                                  "surface_net_downward_radiative_flux"),
    "ppfd_in": VariableSpec("umol m-2 s-1", "incoming photosynthetic photon flux density",
                            (-50.0, 3000.0),
                            "surface_downwelling_photosynthetic_photon_flux_in_air"),
    "ppfd_diffuse": VariableSpec("umol m-2 s-1", "diffuse incoming PPFD", (-50.0, 3000.0)),
    "air_pressure": VariableSpec("kPa", "air pressure", (50.0, 110.0), "surface_air_pressure"),
    "precipitation": VariableSpec("mm", "precipitation accumulated over the record interval",
                                  (0.0, 200.0)),
    "wind_speed": VariableSpec("m s-1", "wind speed", (0.0, 75.0), "wind_speed"),
    "co2": VariableSpec("umol mol-1", "CO2 mole fraction in air", (250.0, 1000.0),
                        "mole_fraction_of_carbon_dioxide_in_air"),
    "soil_water_content": VariableSpec("m3 m-3", "volumetric soil water content", (0.0, 1.0),
                                       "volume_fraction_of_condensed_water_in_soil"),
    "ustar": VariableSpec("m s-1", "friction velocity", (0.0, 5.0)),
    # fluxes (sign: NEE = Reco - GPP, positive = source)
    "nee": VariableSpec("umol m-2 s-1", "net ecosystem exchange of CO2", (-100.0, 100.0)),
    "nee_filled": VariableSpec("umol m-2 s-1", "gap-filled net ecosystem exchange", (-100.0, 100.0)),
    "co2_flux": VariableSpec("umol m-2 s-1", "turbulent CO2 flux (without storage)", (-100.0, 100.0)),
    "co2_storage_flux": VariableSpec("umol m-2 s-1", "CO2 storage flux", (-100.0, 100.0)),
    "gpp": VariableSpec("umol m-2 s-1", "gross primary production", (-30.0, 100.0)),
    "reco": VariableSpec("umol m-2 s-1", "ecosystem respiration", (-30.0, 100.0)),
    "le": VariableSpec("W m-2", "latent heat flux", (-500.0, 1200.0)),
    "h": VariableSpec("W m-2", "sensible heat flux", (-500.0, 1200.0)),
    "ground_heat_flux": VariableSpec("W m-2", "ground heat flux", (-500.0, 700.0)),
    # vegetation / satellite
    "lai": VariableSpec("m2 m-2", "leaf area index", (0.0, 15.0), "leaf_area_index"),
    "fapar": VariableSpec("1", "fraction of absorbed PAR", (0.0, 1.0)),
    "evi": VariableSpec("1", "enhanced vegetation index", (-1.0, 1.0)),
    "ndvi": VariableSpec("1", "normalised difference vegetation index", (-1.0, 1.0)),
    "lswi": VariableSpec("1", "land surface water index", (-1.0, 1.0)),
    "reflectance": VariableSpec("1", "surface reflectance", (-0.2, 1.6)),
}

# Multiplicative/additive conversions to the canonical unit: (scale, offset):
# canonical = value * scale + offset.
_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("K", "degC"): (1.0, -273.15),
    ("Pa", "hPa"): (0.01, 0.0),
    ("kPa", "hPa"): (10.0, 0.0),
    ("Pa", "kPa"): (0.001, 0.0),
    ("hPa", "kPa"): (0.1, 0.0),
    ("%", "m3 m-3"): (0.01, 0.0),
    ("ppm", "umol mol-1"): (1.0, 0.0),
    ("umol/mol", "umol mol-1"): (1.0, 0.0),
    ("J m-2 h-1", "W m-2"): (1.0 / 3600.0, 0.0),
    ("%", "1"): (0.01, 0.0),
}


def convert(values, from_units: str, to_units: str, *, source: str = "<memory>",
            variable: str | None = None):
    """Convert ``values`` from ``from_units`` to ``to_units`` (identity if equal).

    Raises :class:`DataValidationError` for a conversion we do not know.
    """
    if from_units == to_units:
        return values
    try:
        scale, offset = _CONVERSIONS[(from_units, to_units)]
    except KeyError:
        raise DataValidationError(
            f"no conversion from {from_units!r} to {to_units!r}.",
            source=source, variable=variable,
            fix=f"give the data in {to_units!r} or add the conversion to process_models.units.",
        ) from None
    return values * scale + offset


def check_range(values, name: str, *, source: str = "<memory>", column: str | None = None,
                fraction: float = 0.001) -> None:
    """Raise if more than ``fraction`` of the finite values of canonical variable
    ``name`` lie outside its plausible range (a unit error, e.g. K vs degC).

    A small fraction of outliers is tolerated (spikes in real data are the QC's job,
    not the reader's).
    """
    spec = CANONICAL[name]
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return
    lo, hi = spec.plausible
    bad = (finite < lo) | (finite > hi)
    if bad.mean() > fraction:
        med = float(np.median(finite))
        hint = _unit_hint(name, med)
        raise DataValidationError(
            f"{bad.mean():.1%} of values lie outside the plausible range [{lo}, {hi}] "
            f"{spec.units} (median {med:.4g}, min {finite.min():.4g}, max {finite.max():.4g}).",
            source=source, variable=column or name,
            fix=hint or f"check that the column holds {spec.long_name} in {spec.units!r}.",
        )


def _unit_hint(name: str, median: float) -> str:
    if name in ("air_temperature", "soil_temperature") and median > 150:
        return "the values look like kelvin; subtract 273.15 (or declare the unit 'K')."
    if name == "vpd" and median > 120:
        return "the values look like Pa; divide by 100 to get hPa (or declare the unit 'Pa')."
    if name == "vpd" and median < 0.5:
        return "the values may be in kPa; multiply by 10 to get hPa (or declare the unit 'kPa')."
    if name == "soil_water_content" and median > 1:
        return "the values look like percent; divide by 100 to get m3 m-3 (or declare '%')."
    if name == "air_pressure" and median > 500:
        return "the values look like hPa or Pa; convert to kPa."
    return ""


def check_time_axis(times, *, source: str = "<memory>", expected_step: np.timedelta64 | None = None,
                    allow_gaps: bool = True) -> None:
    """Raise on duplicated or unsorted timestamps (and on gaps if ``allow_gaps`` is
    False). ``times`` is anything ``numpy.asarray`` turns into datetime64."""
    t = np.asarray(times).astype("datetime64[ns]")
    if t.size < 2:
        return
    dt = np.diff(t)
    if np.any(dt == np.timedelta64(0, "ns")):
        i = int(np.argmax(dt == np.timedelta64(0, "ns")))
        raise DataValidationError(
            f"duplicated timestamp {t[i + 1]} (rows {i} and {i + 1}).",
            source=source, variable="time",
            fix="remove the duplicated records (e.g. df[~df.index.duplicated()]) before reading.",
        )
    if np.any(dt < np.timedelta64(0, "ns")):
        i = int(np.argmax(dt < np.timedelta64(0, "ns")))
        raise DataValidationError(
            f"timestamps are not sorted: {t[i]} is followed by {t[i + 1]} (row {i + 1}).",
            source=source, variable="time",
            fix="sort the records by time before reading.",
        )
    if not allow_gaps and expected_step is not None:
        gaps = dt != expected_step
        if np.any(gaps):
            i = int(np.argmax(gaps))
            raise DataValidationError(
                f"time axis has a gap or irregular step after {t[i]} (step {dt[i]}, "
                f"expected {expected_step}).",
                source=source, variable="time",
                fix="reindex to a regular axis and fill or flag the missing records.",
            )
