"""One observation type for filters and calibration, and its xarray edge.

:class:`Observations` holds ``T`` observation times of ``Ny`` observed quantities::

    values   (T, Ny)   observed values; 0 where masked (never NaN, so gradients stay finite)
    mask     (T, Ny)   True where the value is used (measured, QC passed)
    variance (T, Ny)   observation-error variance (diagonal R), in the squared unit

Ensemble filters (:func:`assimilation.ensemble.ensemble_filter`) read the three arrays
as they are; calibration likelihoods read one column as a data stream. Units are kept per
column (``units``), names say which model output or operator each column observes.

:func:`to_observations` is the only place an ``xarray.Dataset`` becomes observations:
NaN and fill values (-9999) are masked, the error sd comes from a ``<name>_sd`` variable,
a constant or a callable of the values, and units are checked against the model's.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from process_models.units import DataValidationError

__all__ = ["Observations", "to_observations"]

FILL_VALUES = (-9999.0, -9999.9, -999.0)
"""Fill values treated as missing (FLUXNET/ONEFlux -9999, older -999)."""


@struct.dataclass
class Observations:
    """Observed values, their use mask and error variances (see the module docstring)."""

    values: jax.Array
    """Observed values, 0 where masked. Shape (T, Ny). Units: ``units`` per column."""
    mask: jax.Array
    """True where the value is used. Shape (T, Ny)."""
    variance: jax.Array
    """Observation-error variance. Shape (T, Ny). Units: square of ``units`` per column."""
    names: tuple = struct.field(pytree_node=False, default=())
    """Name of each column (the model output or operator it observes)."""
    units: tuple = struct.field(pytree_node=False, default=())
    """UDUNITS unit of each column."""

    @classmethod
    def from_arrays(cls, values, variance, mask=None, *, names: Sequence[str] = (),
                    units: Sequence[str] = (), source: str = "<memory>") -> "Observations":
        """Build from arrays of shape (T,) or (T, Ny): NaN and fill values are masked;
        ``variance`` broadcasts to the values. Raises :class:`DataValidationError` on a
        non-positive or non-finite variance where a value is used."""
        v = np.asarray(values, float)
        v = v[:, None] if v.ndim == 1 else v
        if v.ndim != 2:
            raise DataValidationError(f"observations must be (T,) or (T, Ny), got {v.shape}.",
                                      source=source, variable=",".join(names) or "values",
                                      fix="stack the observed quantities as columns.")
        m = np.isfinite(v) & ~np.isin(v, FILL_VALUES)
        if mask is not None:
            mk = np.asarray(mask, bool)
            m &= mk[:, None] if mk.ndim == 1 else mk
        var = np.asarray(variance, float)
        if var.ndim == 1 and v.shape[1] == 1 and var.shape[0] == v.shape[0] > 1:
            var = var[:, None]          # (T,) variances of a single (T,) stream
        var = np.broadcast_to(var, v.shape)
        bad = m & ~(np.isfinite(var) & (var > 0))
        if bad.any():
            j = int(np.argwhere(bad)[0][1])
            raise DataValidationError(
                f"{int(bad.sum())} used values have a non-positive or non-finite error variance.",
                source=source, variable=names[j] if j < len(names) else f"column {j}",
                fix="give a positive error sd for every measured value (or mask it).")
        names = tuple(names) or tuple(f"y{j}" for j in range(v.shape[1]))
        units = tuple(units) or ("1",) * v.shape[1]
        if len(names) != v.shape[1] or len(units) != v.shape[1]:
            raise DataValidationError(f"{len(names)} names / {len(units)} units for "
                                      f"{v.shape[1]} columns.", source=source, variable="names",
                                      fix="give one name and one unit per column.")
        return cls(values=jnp.asarray(np.where(m, v, 0.0)), mask=jnp.asarray(m),
                   variance=jnp.asarray(np.where(m, var, 1.0)), names=names, units=units)

    @property
    def n_times(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_obs(self) -> int:
        return int(self.values.shape[1])

    def column(self, name: str) -> "Observations":
        """The single-column observations of ``name``."""
        if name not in self.names:
            raise KeyError(f"no observed quantity {name!r}; have {self.names}")
        j = self.names.index(name)
        return Observations(self.values[:, j:j + 1], self.mask[:, j:j + 1],
                            self.variance[:, j:j + 1], (name,), (self.units[j],))

    def with_nan(self) -> jax.Array:
        """Values with NaN where masked (for plots and filters that take NaN = missing)."""
        return jnp.where(self.mask, self.values, jnp.nan)


def to_observations(ds, variables: Sequence[str] | Mapping[str, str], *,
                    sd: Mapping[str, float | Callable] | None = None,
                    qc: Mapping[str, tuple[str, float]] | None = None,
                    units: Mapping[str, str] | None = None,
                    source: str | None = None) -> Observations:
    """Observations from variables of an ``xarray.Dataset`` with a ``time`` axis.

    Parameters
    ----------
    ds : Dataset; each variable carries a ``units`` attribute.
    variables : names of the observed variables in ``ds``, or ``{column name: ds name}``.
    sd : per column, the error sd as a constant, or a callable ``sd(values) -> sd`` (e.g. a
        flux random-error model); default: the variable ``<ds name>_sd`` of ``ds``.
    qc : per column, ``(qc variable, qc_max)``: values with ``qc > qc_max`` are masked.
    units : per column, the unit the model expects; a different ``units`` attribute is an
        error (no silent rescaling: convert at the reader).
    """
    src = source or ds.attrs.get("source", "<dataset>")
    mapping = dict(variables) if isinstance(variables, Mapping) else {v: v for v in variables}
    vals, sds, masks, us = [], [], [], []
    for col, name in mapping.items():
        if name not in ds:
            raise DataValidationError("not in the dataset.", source=src, variable=name,
                                      fix=f"observed variables available: {list(ds.data_vars)}")
        da = ds[name]
        if da.dims != ("time",):
            raise DataValidationError(f"has dims {da.dims}, expected ('time',).", source=src,
                                      variable=name, fix="select one site/pixel first.")
        unit = str(da.attrs.get("units", ""))
        if units and col in units and unit != units[col]:
            raise DataValidationError(f"has units {unit!r}, the model expects {units[col]!r}.",
                                      source=src, variable=name,
                                      fix="convert the variable at the reader.")
        v = np.asarray(da.values, float)
        s = None if sd is None else sd.get(col)
        if s is None:
            if f"{name}_sd" not in ds:
                raise DataValidationError("has no error sd.", source=src, variable=name,
                                          fix=f"add a '{name}_sd' variable or pass sd={{'{col}': ...}}.")
            s = np.asarray(ds[f"{name}_sd"].values, float)
        elif callable(s):
            s = np.asarray(s(v), float)
        m = np.ones(v.shape, bool)
        if qc and col in qc:
            qname, qmax = qc[col]
            m &= np.asarray(ds[qname].values) <= qmax
        vals.append(v)
        sds.append(np.broadcast_to(np.asarray(s, float), v.shape))
        masks.append(m)
        us.append(unit)
    return Observations.from_arrays(np.stack(vals, 1), np.stack(sds, 1) ** 2, np.stack(masks, 1),
                                    names=tuple(mapping), units=tuple(us), source=src)
