"""A generic Basic Model Interface (BMI 2.0, Hutton et al. 2020; Peckham et al. 2013) wrapper
over the ecoflux model interface.

Any model that offers ``initial_state(params, forcing)`` and ``step(state, forcing_t,
params) -> (state, outputs_t)`` with frozen pytrees (see ``/work/shared/ARCHITECTURE.md``)
becomes a ``bmipy.Bmi`` by subclassing :class:`JaxModelBmi` and implementing one method,
:meth:`JaxModelBmi._setup`, which reads the config and returns a :class:`ModelSetup`
(parameters, forcing, time axis, grids, and the table of exposed variables).

Semantics (BMI 2.0 specification, https://bmi.readthedocs.io)
------------------------------------------------------------
* Time: ``get_time_units() == "s"``; time is seconds since the first forcing record
  (``get_start_time() == 0``); the calendar date of time 0 is
  :meth:`JaxModelBmi.get_start_datetime` (an ecoflux extension). ``get_current_time()``
  is the start of the next record to be simulated; ``get_end_time()`` is
  ``n_records x time_step``. ``update()`` runs one record. ``update_until(t)`` runs whole
  records (one jitted ``lax.scan``) and raises ``ValueError`` for a ``t`` in the past,
  beyond the end, or not on the record grid.
* Values: every variable is a flattened 1-D NumPy array of ``get_grid_size(grid)``
  items. Inputs of kind *forcing* hold the record that the next ``update()`` uses;
  ``set_value`` on them overrides that one record only. Kind *state* (e.g. soil water)
  and *param* (parameters) are replaced in the model pytrees at once and persist.
  Kind *output* holds the fluxes of the last simulated record (NaN before the first
  ``update()``).
* ``get_value(name, dest)`` copies into the caller's ``dest`` and returns it.
* ``get_value_ptr(name)`` returns the wrapper's NumPy **mirror** of the variable. It is a
  live reference in one direction: the wrapper refreshes it **in place** after every
  ``update``/``update_until``/``set_value``, so a caller holding it sees new values.
  It is **read-only** (``flags.writeable = False``): JAX arrays are immutable, so writes
  through the pointer could not reach the model; use ``set_value``.
* Grids: ``"scalar"`` (rank 0, size 1; parameters and site scalars of a stateless
  model), ``"points"`` (the tower site: rank 2, node count 1, x = longitude, y =
  latitude), ``"vector"`` (per-class parameter arrays), ``"rectilinear"`` (the soil
  profile, rank 1, z = -depth of the layer centres, m) and ``"uniform_rectilinear"``
  (a regular y/x raster). Structured-quadrilateral/unstructured functions
  (edges/faces) raise ``NotImplementedError``, as the spec allows; spacing/origin exist
  only for uniform rectilinear grids.
"""
from __future__ import annotations

import tomllib
import weakref
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from bmipy import Bmi

__all__ = ["JaxModelBmi", "ModelSetup", "BmiVariable", "BmiGrid", "get_path", "replace_path",
           "load_config", "resolve_path"]


# ------------------------------------------------------------------------- descriptions

@dataclass(frozen=True)
class BmiGrid:
    """One BMI grid. ``shape`` is in BMI ("ij") order: slowest-varying dimension first."""

    type: str
    shape: tuple = ()
    x: Optional[np.ndarray] = None
    y: Optional[np.ndarray] = None
    z: Optional[np.ndarray] = None
    spacing: Optional[tuple] = None
    origin: Optional[tuple] = None
    rank: Optional[int] = None

    @property
    def size(self) -> int:
        if self.type == "points":
            return int(np.size(self.x))
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def grid_rank(self) -> int:
        if self.rank is not None:
            return self.rank
        return len(self.shape)


@dataclass(frozen=True)
class BmiVariable:
    """One exposed variable.

    ``kind``: ``"forcing"`` (a field of the forcing pytree, record of the next step),
    ``"state"`` (a field path of the state pytree), ``"param"`` (a field path of the
    parameter pytree) or ``"output"`` (a field of the step's outputs). ``key`` is the
    field name or a dotted path (``"leaf.vcmax25"``). ``scale``: BMI value = internal x
    ``scale`` (e.g. ``1/dt`` for mm per step -> mm s-1).
    """

    name: str
    units: str
    grid: int
    kind: str
    key: str
    description: str = ""
    scale: float = 1.0
    location: str = "node"
    standard: str = "constructed"
    """``"csdms"`` if the name is in the CSDMS Standard Names list, else ``"constructed"``
    (built with the CSDMS object__quantity rules)."""

    @property
    def is_input(self) -> bool:
        return self.kind in ("forcing", "state", "param")

    @property
    def is_output(self) -> bool:
        return self.kind in ("state", "output", "param")


@dataclass
class ModelSetup:
    """What a subclass's :meth:`JaxModelBmi._setup` returns."""

    params: Any
    forcing: Any
    """Forcing pytree; the fields in ``time_fields`` have a leading time axis."""
    time_fields: tuple
    times: np.ndarray
    """datetime64 start of each record (regular)."""
    dt_seconds: float
    step: Callable
    """``step(state, forcing_t, params) -> (state, outputs_t)`` (pure; jitted here)."""
    initial_state: Callable
    """``initial_state(params, forcing) -> state``."""
    variables: list
    grids: dict
    output_template: Any = None
    """Outputs pytree of one record (shapes/dtypes) to fill with NaN before the first update."""
    component_name: str = "ecoflux model"
    info: dict = field(default_factory=dict)


# ------------------------------------------------------------------------- pytree paths

def get_path(tree, path: str):
    """``tree.a.b`` for ``path = "a.b"``."""
    for part in path.split("."):
        tree = getattr(tree, part)
    return tree


def replace_path(tree, path: str, value):
    """Copy of a (nested) flax-struct pytree with field ``path`` replaced."""
    head, _, rest = path.partition(".")
    if not rest:
        return tree.replace(**{head: value})
    return tree.replace(**{head: replace_path(getattr(tree, head), rest, value)})


# ------------------------------------------------------------------------------ config

def load_config(config_file) -> tuple[dict, Path]:
    """Read a TOML config; returns ``(config, folder of the file)``. A missing file or a
    TOML syntax error raises ``ValueError``/``FileNotFoundError`` naming the file."""
    p = Path(config_file)
    if not p.exists():
        raise FileNotFoundError(f"BMI config file {p} does not exist.")
    try:
        with open(p, "rb") as fh:
            cfg = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{p}: not valid TOML ({err}).") from err
    return cfg, p.resolve().parent


def resolve_path(name: str, base: Path) -> Path:
    """A path from a config: absolute, relative to the config file, or a shipped data file
    ``folder/file`` found by :func:`process_models.io.data_path`."""
    from ..io import data_path

    p = Path(name)
    if p.is_absolute():
        return p
    if (base / p).exists():
        return base / p
    return data_path(*p.parts)


# ----------------------------------------------------------------------------- compiled

_JITTED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _jitted(step):
    """One ``jax.jit`` wrapper per step function, shared by all instances (so a second
    BMI instance of the same model reuses the compiled step)."""
    if step not in _JITTED:
        _JITTED[step] = jax.jit(step)
    return _JITTED[step]


@partial(jax.jit, static_argnames=("step", "n", "time_fields"))
def _run_scan(state, forcing, params, k, first, *, step, n, time_fields):
    """``n`` records from record ``k`` in one ``lax.scan``; record 0 carries the
    ``set_value`` overrides in ``first``. Returns the final state and the last outputs."""
    seq = {f: jax.lax.dynamic_slice_in_dim(getattr(forcing, f), k, n, axis=0)
           for f in time_fields}
    for f, v in first.items():
        seq[f] = seq[f].at[0].set(v)

    def body(st, xs):
        return step(st, forcing.replace(**xs), params)

    st, outs = jax.lax.scan(body, state, seq)
    return st, jax.tree_util.tree_map(lambda x: x[-1], outs)


# ----------------------------------------------------------------------------- wrapper

class JaxModelBmi(Bmi):
    """BMI 2.0 for a JAX ``step``-shaped model (see the module docstring).

    Subclasses implement :meth:`_setup`.
    """

    def __init__(self):
        self._setup_done: Optional[ModelSetup] = None
        self._k = 0
        self._state = None
        self._params = None
        self._outputs = None
        self._overrides: dict = {}
        self._mirror: dict[str, np.ndarray] = {}
        self._vars: dict[str, BmiVariable] = {}

    # ------------------------------------------------------------------ subclass hook
    def _setup(self, config: dict, base: Path) -> ModelSetup:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------------ control
    def initialize(self, config_file: str) -> None:
        """Read the TOML ``config_file``, load the forcing and parameters, build the
        initial state and jit the step."""
        cfg, base = load_config(config_file)
        s = self._setup(cfg, base)
        times = np.asarray(s.times, dtype="datetime64[ns]")
        if times.size < 1:
            raise ValueError("the forcing has no records in the configured period.")
        self._setup_done = s
        self._times = times
        self._n = int(times.size)
        self._dt = float(s.dt_seconds)
        self._params = s.params
        self._forcing = s.forcing
        self._time_fields = tuple(s.time_fields)
        self._state = s.initial_state(s.params, s.forcing)
        self._step = _jitted(s.step)
        self._vars = {v.name: v for v in s.variables}
        self._grids = dict(s.grids)
        self._k = 0
        self._overrides = {}
        self._outputs = None
        if s.output_template is not None:
            self._outputs = jax.tree_util.tree_map(
                lambda x: jnp.full(x.shape, jnp.nan, dtype=x.dtype), s.output_template)
        self._mirror = {}
        for v in s.variables:
            val = self._internal_value(v)
            arr = np.array(np.asarray(val, dtype=self._dtype_of(val)).ravel(), copy=True)
            if arr.size != self._grids[v.grid].size:
                raise ValueError(f"variable {v.name!r} has {arr.size} values but grid {v.grid} "
                                 f"has {self._grids[v.grid].size} nodes.")
            arr.setflags(write=False)
            self._mirror[v.name] = arr

    def update(self) -> None:
        """Advance the model by one record (``get_time_step()`` seconds)."""
        self._check_init()
        if self._k >= self._n:
            raise RuntimeError(f"{self.get_component_name()}: already at the end time "
                               f"{self.get_end_time()} s; there is no forcing beyond it.")
        forcing_t = self._forcing_at(self._k)
        self._state, self._outputs = self._step(self._state, forcing_t, self._params)
        self._k += 1
        self._overrides = {}
        self._refresh()

    def update_until(self, time: float) -> None:
        """Advance to ``time`` (seconds since start) in whole records, in one jitted scan.

        Raises ``ValueError`` if ``time`` is before the current time, after the end
        time, or not a multiple of the time step.
        """
        self._check_init()
        t = float(time)
        cur = self.get_current_time()
        steps_f = (t - cur) / self._dt
        n = int(round(steps_f))
        if t < cur - 1e-9 * self._dt:
            raise ValueError(f"update_until({t}): time is in the past (current time {cur} s).")
        if abs(steps_f - n) > 1e-6:
            raise ValueError(f"update_until({t}): not on the model time grid (step "
                             f"{self._dt} s from {cur} s); the model runs whole records.")
        if self._k + n > self._n:
            raise ValueError(f"update_until({t}): beyond the end time {self.get_end_time()} s.")
        if n == 0:
            return
        if n == 1:
            return self.update()
        first = {f: jnp.asarray(v) for f, v in self._overrides.items()}
        self._state, self._outputs = _run_scan(
            self._state, self._forcing, self._params, jnp.asarray(self._k), first,
            step=self._setup_done.step, n=n, time_fields=self._time_fields)
        self._k += n
        self._overrides = {}
        self._refresh()

    def finalize(self) -> None:
        """Release the model (arrays, compiled functions). ``initialize`` may be called again."""
        self.__init__()

    # --------------------------------------------------------------------- internals
    def _check_init(self):
        if self._setup_done is None:
            raise RuntimeError("call initialize(config_file) first.")

    @staticmethod
    def _dtype_of(val):
        dt = np.asarray(val).dtype
        return dt if dt.kind in "fiub" else np.float64

    def _forcing_at(self, k: int):
        f = self._forcing
        upd = {name: getattr(f, name)[k] for name in self._time_fields
               if getattr(f, name) is not None}
        upd.update({name: jnp.asarray(v) for name, v in self._overrides.items()})
        return f.replace(**upd)

    def _internal_value(self, v: BmiVariable):
        if v.kind == "forcing":
            if v.key in self._overrides:
                x = self._overrides[v.key]
            else:
                x = getattr(self._forcing, v.key)
                if v.key in self._time_fields:
                    x = x[min(self._k, self._n - 1)]
        elif v.kind == "state":
            x = get_path(self._state, v.key)
        elif v.kind == "param":
            x = get_path(self._params, v.key)
        elif v.kind == "output":
            if self._outputs is None:
                return np.full(self._grids[v.grid].size, np.nan)
            x = get_path(self._outputs, v.key)
        else:  # pragma: no cover
            raise ValueError(v.kind)
        return np.asarray(x) * v.scale if v.scale != 1.0 else np.asarray(x)

    def _refresh(self, names=None):
        for name in (names or self._mirror):
            v = self._vars[name]
            m = self._mirror[name]
            m.setflags(write=True)
            m[...] = np.asarray(self._internal_value(v), dtype=m.dtype).ravel()
            m.setflags(write=False)

    def _var(self, name: str) -> BmiVariable:
        self._check_init()
        try:
            return self._vars[name]
        except KeyError:
            raise KeyError(f"{self.get_component_name()} has no variable {name!r}; see "
                           "get_input_var_names() / get_output_var_names().") from None

    def _grid(self, grid: int) -> BmiGrid:
        self._check_init()
        try:
            return self._grids[int(grid)]
        except KeyError:
            raise KeyError(f"no grid {grid}; grids are {sorted(self._grids)}.") from None

    # ------------------------------------------------------------------ model info
    def get_component_name(self) -> str:
        return self._setup_done.component_name if self._setup_done else type(self).__name__

    def get_input_item_count(self) -> int:
        return len(self.get_input_var_names())

    def get_output_item_count(self) -> int:
        return len(self.get_output_var_names())

    def get_input_var_names(self) -> tuple[str, ...]:
        self._check_init()
        return tuple(n for n, v in self._vars.items() if v.is_input)

    def get_output_var_names(self) -> tuple[str, ...]:
        self._check_init()
        return tuple(n for n, v in self._vars.items() if v.is_output)

    # --------------------------------------------------------------- variable info
    def get_var_grid(self, name: str) -> int:
        return self._var(name).grid

    def get_var_type(self, name: str) -> str:
        self._var(name)
        return str(self._mirror[name].dtype)

    def get_var_units(self, name: str) -> str:
        return self._var(name).units

    def get_var_itemsize(self, name: str) -> int:
        self._var(name)
        return int(self._mirror[name].itemsize)

    def get_var_nbytes(self, name: str) -> int:
        self._var(name)
        return int(self._mirror[name].nbytes)

    def get_var_location(self, name: str) -> str:
        return self._var(name).location

    # ------------------------------------------------------------------------ time
    def get_current_time(self) -> float:
        self._check_init()
        return self._k * self._dt

    def get_start_time(self) -> float:
        return 0.0

    def get_end_time(self) -> float:
        self._check_init()
        return self._n * self._dt

    def get_time_units(self) -> str:
        return "s"

    def get_time_step(self) -> float:
        self._check_init()
        return self._dt

    def get_start_datetime(self) -> np.datetime64:
        """Calendar date of time 0 (start of the first record; the forcing's clock:
        local standard time for towers, see the config's ``utc_offset_hours``)."""
        self._check_init()
        return self._times[0]

    def get_current_datetime(self) -> np.datetime64:
        """Calendar date of :meth:`get_current_time`."""
        self._check_init()
        return self._times[0] + np.timedelta64(int(round(self.get_current_time() * 1e9)), "ns")

    # ---------------------------------------------------------------------- values
    def get_value(self, name: str, dest: np.ndarray) -> np.ndarray:
        """Copy the values of ``name`` into ``dest`` (flattened, size = grid size) and
        return ``dest``."""
        src = self.get_value_ptr(name)
        dest[...] = src.reshape(np.shape(dest)) if np.ndim(dest) != 1 else src
        return dest

    def get_value_ptr(self, name: str) -> np.ndarray:
        """The read-only NumPy mirror of ``name``, refreshed in place after every
        update/set (see the module docstring)."""
        self._var(name)
        return self._mirror[name]

    def get_value_at_indices(self, name: str, dest: np.ndarray, inds: np.ndarray) -> np.ndarray:
        """Copy the values at flat indices ``inds`` into ``dest`` and return it."""
        src = self.get_value_ptr(name)
        dest[...] = src[np.asarray(inds, dtype=np.int64)]
        return dest

    def set_value(self, name: str, src: np.ndarray) -> None:
        """Set all values of input ``name`` from ``src`` (size = grid size).

        Forcing inputs: the override applies to the next record only. State and
        parameters: replaced at once, persistent.
        """
        v = self._var(name)
        if not v.is_input:
            raise ValueError(f"{name!r} is an output only; it cannot be set.")
        m = self._mirror[name]
        src = np.asarray(src, dtype=m.dtype).ravel()
        if src.size != m.size:
            raise ValueError(f"set_value({name!r}): {src.size} values given, the variable has "
                             f"{m.size}.")
        if not np.all(np.isfinite(src)):
            raise ValueError(f"set_value({name!r}): values must be finite.")
        self._assign(v, src)

    def set_value_at_indices(self, name: str, inds: np.ndarray, src: np.ndarray) -> None:
        """Set the values at flat indices ``inds`` of input ``name``."""
        v = self._var(name)
        if not v.is_input:
            raise ValueError(f"{name!r} is an output only; it cannot be set.")
        m = self._mirror[name]
        inds = np.asarray(inds, dtype=np.int64).ravel()
        if inds.size and (inds.min() < -m.size or inds.max() >= m.size):
            raise IndexError(f"set_value_at_indices({name!r}): index out of range 0..{m.size - 1}.")
        new = m.copy()
        new[inds] = np.asarray(src, dtype=m.dtype).ravel()
        if not np.all(np.isfinite(new)):
            raise ValueError(f"set_value_at_indices({name!r}): values must be finite.")
        self._assign(v, new)

    def _assign(self, v: BmiVariable, flat: np.ndarray) -> None:
        internal = flat / v.scale if v.scale != 1.0 else flat
        if v.kind == "forcing":
            ref = getattr(self._forcing, v.key)
            ref_t = ref[0] if v.key in self._time_fields else ref
            self._overrides[v.key] = jnp.asarray(internal.reshape(jnp.shape(ref_t)),
                                                 dtype=jnp.result_type(ref_t))
        elif v.kind == "state":
            ref = get_path(self._state, v.key)
            self._state = replace_path(self._state, v.key, jnp.asarray(
                internal.reshape(jnp.shape(ref)), dtype=jnp.result_type(ref)))
        elif v.kind == "param":
            ref = get_path(self._params, v.key)
            self._params = replace_path(self._params, v.key, jnp.asarray(
                internal.reshape(jnp.shape(ref)), dtype=jnp.result_type(ref)))
        self._refresh([v.name])

    # ------------------------------------------------------------------------ grids
    def get_grid_rank(self, grid: int) -> int:
        return self._grid(grid).grid_rank

    def get_grid_size(self, grid: int) -> int:
        return self._grid(grid).size

    def get_grid_type(self, grid: int) -> str:
        return self._grid(grid).type

    def get_grid_shape(self, grid: int, shape: np.ndarray) -> np.ndarray:
        g = self._grid(grid)
        if g.type in ("points", "unstructured"):
            raise NotImplementedError(f"grid {grid} is of type {g.type!r}, which has no shape.")
        shape[...] = np.asarray(g.shape, dtype=np.int64) if g.shape else np.zeros(0, np.int64)
        return shape

    def get_grid_spacing(self, grid: int, spacing: np.ndarray) -> np.ndarray:
        g = self._grid(grid)
        if g.type != "uniform_rectilinear":
            raise NotImplementedError(f"grid {grid} is {g.type!r}; spacing exists only for "
                                      "uniform rectilinear grids.")
        spacing[...] = np.asarray(g.spacing, dtype=float)
        return spacing

    def get_grid_origin(self, grid: int, origin: np.ndarray) -> np.ndarray:
        g = self._grid(grid)
        if g.type != "uniform_rectilinear":
            raise NotImplementedError(f"grid {grid} is {g.type!r}; origin exists only for "
                                      "uniform rectilinear grids.")
        origin[...] = np.asarray(g.origin, dtype=float)
        return origin

    def _coord(self, grid, dest, which):
        g = self._grid(grid)
        c = getattr(g, which)
        if c is None:
            raise NotImplementedError(f"grid {grid} ({g.type!r}) has no {which} coordinate.")
        dest[...] = np.asarray(c, dtype=float).ravel()
        return dest

    def get_grid_x(self, grid: int, x: np.ndarray) -> np.ndarray:
        return self._coord(grid, x, "x")

    def get_grid_y(self, grid: int, y: np.ndarray) -> np.ndarray:
        return self._coord(grid, y, "y")

    def get_grid_z(self, grid: int, z: np.ndarray) -> np.ndarray:
        return self._coord(grid, z, "z")

    def get_grid_node_count(self, grid: int) -> int:
        return self._grid(grid).size

    def get_grid_edge_count(self, grid: int) -> int:
        raise NotImplementedError("no unstructured grids: edges are not defined.")

    def get_grid_face_count(self, grid: int) -> int:
        raise NotImplementedError("no unstructured grids: faces are not defined.")

    def get_grid_edge_nodes(self, grid: int, edge_nodes: np.ndarray) -> np.ndarray:
        raise NotImplementedError("no unstructured grids: edges are not defined.")

    def get_grid_face_edges(self, grid: int, face_edges: np.ndarray) -> np.ndarray:
        raise NotImplementedError("no unstructured grids: faces are not defined.")

    def get_grid_face_nodes(self, grid: int, face_nodes: np.ndarray) -> np.ndarray:
        raise NotImplementedError("no unstructured grids: faces are not defined.")

    def get_grid_nodes_per_face(self, grid: int, nodes_per_face: np.ndarray) -> np.ndarray:
        raise NotImplementedError("no unstructured grids: faces are not defined.")

    # --------------------------------------------------------------- documentation
    def variable_table(self) -> str:
        """Markdown table of the exposed variables (name, role, units, grid, internal key)."""
        self._check_init()
        rows = ["| CSDMS standard name | role | units | grid | ecoflux field | name source |",
                "|---|---|---|---|---|---|"]
        for v in self._vars.values():
            role = {"forcing": "in", "output": "out", "state": "in/out", "param": "in/out (parameter)"}[v.kind]
            rows.append(f"| `{v.name}` | {role} | {v.units} | {v.grid} ({self._grids[v.grid].type}) "
                        f"| `{v.kind}.{v.key}` | {v.standard} |")
        return "\n".join(rows)
