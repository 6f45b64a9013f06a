"""Differentiable 2-D column transport of NOx with first-order loss (the model interface).

Governing equation for the NOx column mass density ``c`` (kg m-2, NOx counted as NO2
mass, the convention of emission inventories and of Beirle et al. 2019)::

    dc/dt + div(u c) = div(K grad c) + E - c / tau                                (1)

with column-mean (boundary-layer) wind ``u = (u, v)`` (m s-1), eddy diffusivity ``K``
(m2 s-1), emission flux density ``E`` (kg m-2 s-1: area field plus point sources of
rate ``Q`` (kg s-1) put into their cells as ``Q / (dx dy)``) and NOx lifetime ``tau`` (s).
The observable NO2 column is ``N = r c / M_NO2`` (mol m-2) with the NO2/NOx ratio ``r``
(Beirle et al. 2019, Sci. Adv. 5:eaax9800, eq. 1-2 use ``L = 1.32 = 1/r``).

Time stepping: each interface step of length ``dt`` takes ``substeps`` operator-split
sub-steps: flux-limited advection (:mod:`.numerics`), explicit diffusion, then source and
loss integrated exactly over the sub-step (integrating factor, constant ``E``)::

    c <- c exp(-h/tau) + E tau (1 - exp(-h/tau))                                  (2)

so pure decay is exact and without loss (``tau -> inf``) the source adds ``E h``.

Example::

    grid = Grid(nx=64, ny=48, dx=2000.0, dy=2000.0)
    model = TransportModel(grid=grid, dt=600.0, substeps=2, source_cells=((24, 10),))
    params = model.default_params()
    out = model.simulate(params, TransportForcing(u=u_t, v=v_t))   # u_t: (T, ny, nx)
    out.no2_column[-1]   # mol m-2
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import struct

from ..interface import check_parameter_table, get_path, scan_steps, set_paths
from .numerics import BOUNDARIES, advect, diffuse

__all__ = ["Grid", "TransportParams", "TransportForcing", "TransportOutputs", "TransportModel",
           "M_NO2", "emission_field"]

M_NO2 = 0.0460055
"""Molar mass of NO2. Units: kg mol-1."""


@dataclass(frozen=True)
class Grid:
    """Uniform horizontal grid. ``nx`` columns (west to east), ``ny`` rows (south to north),
    spacings ``dx``, ``dy`` in m; ``boundary`` one of ``periodic``, ``closed``, ``open``."""

    nx: int
    ny: int
    dx: float
    dy: float
    boundary: str = "open"

    def __post_init__(self):
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"Grid.boundary={self.boundary!r}; use one of {BOUNDARIES}.")
        if self.nx < 3 or self.ny < 3 or self.dx <= 0 or self.dy <= 0:
            raise ValueError("Grid needs nx, ny >= 3 and dx, dy > 0 (m).")

    @property
    def cell_area(self) -> float:
        """Units: m2."""
        return self.dx * self.dy

    def coordinates(self):
        """Cell-centre coordinates ``(x, y)`` in m, each (nx,) and (ny,), origin at the
        south-west corner."""
        return ((np.arange(self.nx) + 0.5) * self.dx, (np.arange(self.ny) + 0.5) * self.dy)


@struct.dataclass
class TransportParams:
    """Parameters of eq. (1). Emissions are parameters: the control of the inversions."""

    area_emission: jax.Array
    """Emission flux density on the grid. Units: kg m-2 s-1 (NOx as NO2). Shape (ny, nx)."""
    point_emission: jax.Array
    """Point-source rates, one per ``TransportModel.source_cells``. Units: kg s-1. Shape (S,)."""
    lifetime: jax.Array
    """NOx lifetime against first-order loss. Units: s. Range (3600, 86400) in daytime
    summer boundary layers (Beirle et al. 2019: about 2-6 h)."""
    no2_nox_ratio: jax.Array
    """NO2/NOx column ratio r (1/1.32 = 0.76 of Beirle et al. 2019). Units: 1."""
    diffusivity: jax.Array
    """Horizontal eddy diffusivity K. Units: m2 s-1."""


@struct.dataclass
class TransportForcing:
    """Time-major forcing: column-mean wind components on the cell centres."""

    u: jax.Array
    """Eastward wind. Units: m s-1. Shape (T, ny, nx)."""
    v: jax.Array
    """Northward wind. Units: m s-1. Shape (T, ny, nx)."""


@struct.dataclass
class TransportOutputs:
    """Fields at the end of each step."""

    nox_column: jax.Array
    """NOx column mass density (as NO2). Units: kg m-2. Shape (T, ny, nx)."""
    no2_column: jax.Array
    """NO2 vertical column density. Units: mol m-2. Shape (T, ny, nx)."""


def emission_field(params: TransportParams, grid: Grid, source_cells) -> jax.Array:
    """Total emission flux density ``E`` (kg m-2 s-1): area field plus each point source
    ``Q_s / (dx dy)`` in its cell ``source_cells[s] = (row, column)``."""
    e = jnp.asarray(params.area_emission)
    if len(source_cells):
        rows = jnp.asarray([rc[0] for rc in source_cells])
        cols = jnp.asarray([rc[1] for rc in source_cells])
        e = e.at[..., rows, cols].add(params.point_emission / grid.cell_area)
    return e


_TABLE = [
    ("lifetime", "s", 4.0 * 3600.0, 1800.0, 86400.0, "LogNormal(9.58, 0.4)",
     "Beirle et al. 2019 Sci. Adv. 5:eaax9800 (NOx lifetime 2-6 h)"),
    ("no2_nox_ratio", "1", 1.0 / 1.32, 0.5, 0.95, "Normal(0.76, 0.05)",
     "Beirle et al. 2019; Seinfeld & Pandis 2016 photostationary state"),
    ("diffusivity", "m2 s-1", 100.0, 1.0, 5000.0, "LogNormal(4.6, 0.7)",
     "Seinfeld & Pandis 2016 ch. 18 (horizontal eddy diffusivity, 2-km grids)"),
]


@dataclass(frozen=True)
class TransportModel:
    """Eq. (1) on a :class:`Grid` (hashable: a static ``jit`` argument).

    Attributes
    ----------
    grid : the grid and boundary condition.
    dt : length of one interface step (one forcing record). Units: s.
    substeps : sub-steps per step (choose so that ``|u| dt/substeps/dx <= 1`` per direction
        and ``K dt/substeps (1/dx^2 + 1/dy^2) <= 1/2``).
    source_cells : ``((row, column), ...)`` of the point sources.
    limiter : van Leer flux limiter (True) or first-order upwind (False).
    """

    grid: Grid
    dt: float = 600.0
    substeps: int = 1
    source_cells: tuple = ()
    limiter: bool = True

    output_units = {"nox_column": "kg m-2", "no2_column": "mol m-2"}

    def default_params(self, dtype=jnp.float64) -> TransportParams:
        """No emissions, the defaults of :meth:`parameter_table`."""
        d = {r[0]: r[2] for r in _TABLE}
        g = self.grid
        return TransportParams(
            area_emission=jnp.zeros((g.ny, g.nx), dtype),
            point_emission=jnp.zeros((len(self.source_cells),), dtype),
            lifetime=jnp.asarray(d["lifetime"], dtype), no2_nox_ratio=jnp.asarray(d["no2_nox_ratio"], dtype),
            diffusivity=jnp.asarray(d["diffusivity"], dtype))

    def parameter_table(self) -> pd.DataFrame:
        """Scalar parameters and one row per point source (``point_emission[k]``, kg s-1)."""
        rows = [dict(zip(("name", "unit", "default", "lower", "upper", "prior", "citation"), r))
                for r in _TABLE]
        rows += [dict(name=f"point_emission[{k}]", unit="kg s-1", default=0.0, lower=0.0, upper=1e3,
                      prior="Normal(0, 10)", citation="control variable (no prior source)")
                 for k in range(len(self.source_cells))]
        return check_parameter_table(pd.DataFrame(rows), "TransportModel")

    def get_parameter(self, params, name):
        return get_path(params, name)

    def set_parameters(self, params, values):
        return set_paths(params, values)

    def check_stability(self, params, forcing) -> None:
        """Raise ``ValueError`` if the Courant or diffusion number exceeds the stable limit
        (eager check; call it outside ``jit``)."""
        g, h = self.grid, self.dt / self.substeps
        cx = float(jnp.max(jnp.abs(forcing.u))) * h / g.dx
        cy = float(jnp.max(jnp.abs(forcing.v))) * h / g.dy
        dn = float(params.diffusivity) * h * (1 / g.dx**2 + 1 / g.dy**2)
        if cx > 1 or cy > 1 or dn > 0.5:
            raise ValueError(f"TransportModel unstable: Courant numbers ({cx:.2f}, {cy:.2f}) must "
                             f"be <= 1 and the diffusion number {dn:.2f} <= 0.5; increase "
                             f"substeps (now {self.substeps}) or coarsen the grid.")

    def initial_state(self, params, forcing):
        """Clean air: zero NOx column (ny, nx), kg m-2."""
        return jnp.zeros((self.grid.ny, self.grid.nx), jnp.asarray(params.lifetime).dtype)

    def step(self, state, forcing_t: TransportForcing, params: TransportParams):
        """``(c, forcing_t, params) -> (c, TransportOutputs)`` over one ``dt``."""
        g, h = self.grid, self.dt / self.substeps
        e = emission_field(params, g, self.source_cells)
        tau = jnp.asarray(params.lifetime)
        finite = jnp.isfinite(tau)
        safe_tau = jnp.where(finite, tau, 1.0)
        decay = jnp.where(finite, jnp.exp(-h / safe_tau), 1.0)
        # int_0^h exp(-(h-s)/tau) ds = -tau expm1(-h/tau); = h without loss (tau = inf)
        gain = jnp.where(finite, -safe_tau * jnp.expm1(-h / safe_tau), h)

        def sub(c, _):
            c = advect(c, forcing_t.u, forcing_t.v, h, g.dx, g.dy, g.boundary, self.limiter)
            c = diffuse(c, params.diffusivity, h, g.dx, g.dy, g.boundary)
            return c * decay + e * gain, None

        c, _ = jax.lax.scan(sub, state, None, length=self.substeps)
        return c, TransportOutputs(nox_column=c, no2_column=params.no2_nox_ratio * c / M_NO2)

    def simulate(self, params, forcing, initial_state=None):
        """Scan :meth:`step` over the leading (time) axis of the forcing."""
        s0 = self.initial_state(params, forcing) if initial_state is None else initial_state
        return scan_steps(self.step, s0, forcing, params)[1]

    def run(self, params, forcing, initial_state=None):
        """``(final NOx column, outputs)``."""
        s0 = self.initial_state(params, forcing) if initial_state is None else initial_state
        return scan_steps(self.step, s0, forcing, params)
