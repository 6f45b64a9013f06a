"""Training-run generation: parameter designs x real forcing windows (+ weather
perturbations) -> process-model runs in vmapped batches -> chunked NetCDF datasets.

Datasets are folders of ``chunk_00000.nc``, ``chunk_00001.nc``, ...: each chunk is
written atomically (temporary file, then rename), so a killed generation resumes by
skipping the chunks already on disk; only one chunk is in memory at a time. Every chunk
carries the metadata (model, options, parameter ranges as JSON, seed, chunk index,
number of chunks, creation time) as NetCDF global attributes.

Two generators:

* :func:`generate_vprm` (pointwise, stateless VPRM): per parameter set a contiguous
  window of ``points_per_set`` hours drawn from a pool of real forcing (e.g. Park Falls
  2005 tower + MODIS), with one weather perturbation per window (temperature offset,
  multiplicative PAR factor, EVI/LSWI offsets, perturbed index statistics) and a
  fraction of windows drawn uniformly from a wide input box (out-of-sample coverage).
  Class rules are drawn from the five rule combinations of pyVPRM's classes.
* :func:`generate_trajectories` (any stateful model with ``initial_state`` /
  ``step``, described by a :class:`StatefulSpec`): runs ``lax.scan`` of ``step`` over
  forcing windows, vmapped over trajectories, and stores states (T + 1), forcing,
  parameters and fluxes.
"""
from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from process_models.interface import output, output_names

from .design import ParameterSpace, sample
from .networks import VPRM_FORCING_INPUTS, VPRM_INPUTS, VPRM_PARAM_INPUTS, VPRM_RULE_INPUTS

# (pscale_always_one, pscale_always_lswi, xeric) of pyVPRM classes: evergreen (1);
# deciduous/mixed/cropland/wetland (2, 3, 6, 9); shrubland (4); savanna (5); grassland (7).
VPRM_RULE_COMBINATIONS = ((1.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0),
                          (0.0, 1.0, 1.0))
# Wide input box for the uniform fraction of windows (units of VPRMForcing).
VPRM_INPUT_BOX = {"temperature": (-25.0, 42.0), "par": (0.0, 2300.0), "evi": (-0.1, 1.0),
                  "lswi": (-0.6, 0.8), "evi_threshold": (0.1, 0.7), "lswi_min": (-0.4, 0.3),
                  "lswi_max": (0.05, 0.7)}


@dataclass(frozen=True)
class WeatherPerturbation:
    """One perturbation per forcing window (out-of-sample weather).

    temperature_sd : sd of an additive temperature offset, degC.
    par_log_sd : sd of the log of a multiplicative PAR factor, 1.
    index_sd : sd of additive EVI and LSWI offsets (and of the statistics), 1.
    """

    temperature_sd: float = 3.0
    par_log_sd: float = 0.2
    index_sd: float = 0.05


def vprm_forcing_pool(forcing) -> np.ndarray:
    """Flatten a :class:`process_models.vprm.VPRMForcing` (any leading shape, time axis
    first) into a pool (n_points, 7) in the column order of
    :data:`emulator.networks.VPRM_FORCING_INPUTS`; points keep their time order so
    windows are contiguous in time."""
    shape = np.broadcast_shapes(*[np.shape(getattr(forcing, k)) for k in VPRM_FORCING_INPUTS])
    cols = [np.broadcast_to(np.asarray(getattr(forcing, k), float), shape) for k in VPRM_FORCING_INPUTS]
    pool = np.stack(cols, axis=-1)
    if pool.ndim > 2:    # (time, y, x, 7) -> (y, x, time, 7): each pixel's series contiguous
        pool = np.moveaxis(pool, 0, -2)
    pool = pool.reshape(-1, 7)
    if not np.all(np.isfinite(pool)):
        from process_models.units import DataValidationError
        raise DataValidationError("forcing pool has non-finite values", source="vprm_forcing_pool",
                                  variable="VPRMForcing", fix="fill or drop gaps before building the pool")
    return pool


def _vprm_windows(pool, n_sets, points, rng, perturb: WeatherPerturbation, box_fraction):
    """Forcing windows (n_sets, points, 7) drawn from ``pool`` with perturbations."""
    n = pool.shape[0]
    starts = rng.integers(0, max(n - points, 1), n_sets)
    idx = (starts[:, None] + np.arange(points)[None, :]) % n
    w = pool[idx].copy()
    dT = rng.normal(0, perturb.temperature_sd, (n_sets, 1))
    fP = np.exp(rng.normal(0, perturb.par_log_sd, (n_sets, 1)))
    dE, dL = (rng.normal(0, perturb.index_sd, (n_sets, 1)) for _ in range(2))
    dS = rng.normal(0, perturb.index_sd, (n_sets, 1, 3))
    w[..., 0] += dT
    w[..., 1] = np.maximum(w[..., 1] * fP, 0.0)
    w[..., 2] = np.clip(w[..., 2] + dE, -0.1, 1.0)
    w[..., 3] = np.clip(w[..., 3] + dL, -1.0, 1.0)
    w[..., 4:7] += dS
    w[..., 6] = np.maximum(w[..., 6], w[..., 5] + 0.02)        # lswi_max > lswi_min
    box = rng.random(n_sets) < box_fraction
    if box.any():
        lo = np.array([VPRM_INPUT_BOX[k][0] for k in VPRM_FORCING_INPUTS])
        hi = np.array([VPRM_INPUT_BOX[k][1] for k in VPRM_FORCING_INPUTS])
        u = lo + rng.random((int(box.sum()), points, 7)) * (hi - lo)
        u[..., 4:7] = u[:, :1, 4:7]                            # statistics constant per window
        u[..., 6] = np.maximum(u[..., 6], u[..., 5] + 0.02)
        w[box] = u
    return w


def vprm_model(options=None):
    """The VPRM the pointwise training targets come from: one class (evergreen, id 1, of
    the pyVPRM MODIS table; its rule flags and parameters are overwritten per sample),
    ``VPRMOptions(mode="smooth")`` unless ``options`` is given."""
    from process_models.vprm import VPRMModel, VPRMOptions
    return VPRMModel(options=options or VPRMOptions(mode="smooth"), classes=(1,))


def vprm_class_params(model, rules, theta, params=None):
    """Parameters of ``model`` (one class) with the rule flags ``rules`` (..., 3:
    pscale_always_one, pscale_always_lswi, xeric) and the class parameters ``theta``
    (..., 8: :data:`~emulator.design.VPRM_PARAMETER_NAMES`) set by name (``"lam[1]"``,
    ``"rules.xeric[1]"``) through the model's ``set_parameters``; ``has_flux`` is 1."""
    params = model.default_params() if params is None else params
    cid = params.rules.class_ids[0]
    values = {f"rules.{k}[{cid}]": rules[..., i] for i, k in enumerate(VPRM_RULE_INPUTS)}
    values.update({f"{k}[{cid}]": theta[..., i] for i, k in enumerate(VPRM_PARAM_INPUTS)})
    return model.set_parameters(params, {**values, f"rules.has_flux[{cid}]": 1.0})


def vprm_forcing_from_dataset(ds):
    """:class:`process_models.vprm.VPRMForcing` arrays from a VPRM forcing Dataset of
    :func:`process_models.io.vprm_grid_forcing` (PAR = shortwave / 0.505, umol m-2 s-1)."""
    from process_models.vprm import VPRMForcing
    return VPRMForcing(temperature=ds["air_temperature"].values, par=ds["shortwave_in"].values / 0.505,
                       evi=ds["evi"].values, lswi=ds["lswi"].values, evi_threshold=ds["evi_threshold"].values,
                       lswi_min=ds["lswi_min"].values, lswi_max=ds["lswi_max"].values,
                       class_fractions=ds["class_fractions"].values)


def vprm_targets(x, model=None):
    """Targets for raw inputs ``x`` (n_sets, points, 18) from ``model.simulate`` of any
    model of the interface with VPRM parameters and forcing (default :func:`vprm_model`),
    one class with fraction 1, vmapped over parameter sets. Returns (gpp, reco) arrays
    (n_sets, points), umol m-2 s-1."""
    from process_models.vprm import VPRMForcing

    model = vprm_model() if model is None else model
    template = model.default_params()

    def one(xs):   # xs (points, 18): one parameter set
        params = vprm_class_params(model, xs[0, 7:10], xs[0, 10:], template)
        f = VPRMForcing(**{k: xs[:, i] for i, k in enumerate(VPRM_FORCING_INPUTS)},
                        class_fractions=jnp.ones((xs.shape[0], 1), xs.dtype))
        o = model.simulate(params, f)
        return output(o, "gpp"), output(o, "reco")

    return jax.jit(jax.vmap(one))(jnp.asarray(x))


def vprm_inputs(pool, rules, theta, idx):
    """Raw emulator inputs (n_sets, points, 18): forcing rows ``pool[idx]`` (``idx``
    (n_sets, points)), rule flags ``rules`` (n_sets, 3) and parameters ``theta`` (n_sets,
    8) of each set broadcast over its points (:data:`~emulator.networks.VPRM_INPUTS`)."""
    idx = np.asarray(idx)
    return np.concatenate([np.asarray(pool)[idx], np.broadcast_to(np.asarray(rules)[:, None], idx.shape + (3,)),
                           np.broadcast_to(np.asarray(theta)[:, None], idx.shape + (theta.shape[-1],))], -1)


def _check_existing(out: Path, meta: dict, keys):
    """Resuming into a folder written with other settings would mix two datasets: refuse."""
    first = out / "chunk_00000.nc"
    if not first.exists():
        return
    with xr.open_dataset(first) as ds:
        old = dict(ds.attrs)
    diff = [k for k in keys if k in old and str(old[k]) != str(meta[k])]
    if diff:
        from process_models.units import DataValidationError
        raise DataValidationError(f"existing chunks were generated with other settings ({', '.join(diff)})",
                                  source=str(out), variable=diff[0],
                                  fix="use a new output folder or delete the old chunks")


def _write_chunk(path: Path, ds: xr.Dataset):
    tmp = path.with_suffix(".tmp")
    ds.to_netcdf(tmp, engine="netcdf4", encoding={v: {"zlib": True, "complevel": 1} for v in ds.data_vars})
    os.replace(tmp, path)


def generate_vprm(out_dir, pool: np.ndarray, space: ParameterSpace, *, n_param_sets: int,
                  points_per_set: int = 64, sets_per_chunk: int = 256, seed: int = 0,
                  method: str = "sobol", model=None,
                  perturbation: WeatherPerturbation = WeatherPerturbation(),
                  box_fraction: float = 0.1, progress: bool = True) -> Path:
    """Write a pointwise VPRM training dataset (inputs (sample, 18), targets gpp/reco/nee)
    with the targets of ``model.simulate`` (:func:`vprm_targets`; default
    :func:`vprm_model`, smooth VPRM).

    Resumable: chunks already written are skipped (their random draws are re-made from
    the chunk's own seed, so the content does not depend on what was skipped).
    """
    model = vprm_model() if model is None else model
    options = getattr(model, "options", None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    design = sample(space, n_param_sets, method=method, seed=seed)
    n_chunks = int(np.ceil(n_param_sets / sets_per_chunk))
    meta = {"model": f"{type(model).__module__}.{type(model).__name__}", "options": repr(options),
            "parameter_space": space.to_json(), "seed": seed, "design": method,
            "n_param_sets": n_param_sets, "points_per_set": points_per_set,
            "perturbation": json.dumps(perturbation.__dict__), "box_fraction": box_fraction,
            "n_chunks": n_chunks, "inputs": json.dumps(list(VPRM_INPUTS)),
            "units": json.dumps({"temperature": "degC", "par": "umol m-2 s-1", "fluxes": "umol m-2 s-1"})}
    _check_existing(out, meta, ("parameter_space", "seed", "design", "n_param_sets", "points_per_set",
                                "options", "box_fraction"))
    for k in tqdm(range(n_chunks), desc="VPRM training runs", disable=not progress):
        path = out / f"chunk_{k:05d}.nc"
        if path.exists():
            continue
        rng = np.random.default_rng([seed, k])
        theta = design[k * sets_per_chunk:(k + 1) * sets_per_chunk]
        m = theta.shape[0]
        w = _vprm_windows(pool, m, points_per_set, rng, perturbation, box_fraction)
        rules = np.asarray(VPRM_RULE_COMBINATIONS)[rng.integers(0, len(VPRM_RULE_COMBINATIONS), m)]
        x = np.concatenate([w, np.broadcast_to(rules[:, None], (m, points_per_set, 3)),
                            np.broadcast_to(theta[:, None], (m, points_per_set, theta.shape[1]))], -1)
        gpp, reco = (np.asarray(a) for a in vprm_targets(x, model))
        x = x.reshape(-1, x.shape[-1])
        y = np.stack([gpp.ravel(), reco.ravel(), (reco - gpp).ravel()], -1)
        ds = xr.Dataset({"inputs": (("sample", "input"), x), "targets": (("sample", "output"), y),
                         "param_set": ("sample", np.repeat(np.arange(k * sets_per_chunk,
                                                                     k * sets_per_chunk + m), points_per_set))},
                        coords={"input": list(VPRM_INPUTS), "output": ["gpp", "reco", "nee"]},
                        attrs={**meta, "chunk": k, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        ds["targets"].attrs["units"] = "umol m-2 s-1"
        _write_chunk(path, ds)
    return out


class ChunkedDataset:
    """Read access to a chunked dataset folder: one chunk in memory at a time."""

    def __init__(self, path, *, variables=("inputs", "targets")):
        self.path = Path(path)
        self.files = sorted(self.path.glob("chunk_*.nc"))
        if not self.files:
            raise FileNotFoundError(f"no chunk_*.nc files in {self.path}")
        self.variables = tuple(variables)
        self._cache = (None, None)
        with xr.open_dataset(self.files[0]) as ds:
            self.attrs = dict(ds.attrs)
            self.coords = {c: list(ds[c].values) for c in ds.coords}

    @property
    def n_chunks(self) -> int:
        return len(self.files)

    def chunk(self, i: int) -> tuple:
        """Arrays of chunk ``i`` (numpy, in ``variables`` order)."""
        if self._cache[0] != i:
            with xr.open_dataset(self.files[i]) as ds:
                self._cache = (i, tuple(np.asarray(ds[v].values) for v in self.variables))
        return self._cache[1]

    def concat(self, chunks=None) -> tuple:
        """Arrays of several chunks concatenated along the first axis (small sets)."""
        chunks = range(self.n_chunks) if chunks is None else chunks
        parts = [self.chunk(i) for i in chunks]
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(len(self.variables)))


# ------------------------------------------------------------------ stateful models
@dataclass(frozen=True, eq=False)
class StatefulSpec:
    """A stateful model (:class:`process_models.interface.Model`) seen through flat vectors,
    for the trajectory generator, the step emulator and its surrogates. Build it with
    :func:`spec_from_model`.

    The model is driven only through its interface: ``initial_state``, ``step``,
    ``set_parameters`` / ``get_parameter`` (the vector holds the dotted names of
    ``param_space``, every other parameter stays at ``base_params``) and the outputs'
    named fields. The state vector is the model state's leaves in tree order
    (``state_template`` gives the layout), the forcing vector the fields ``forcing_names``.

    water_balance(state, next_state, forcing_t, fluxes) -> residual (flat vectors and a
        flux dict, physical units, e.g. mm) or None
    """

    model: Any
    """The emulated model (:class:`process_models.interface.Model`)."""
    base_params: Any
    """Parameter pytree the vector's names are set in (the model's defaults)."""
    param_space: ParameterSpace
    """Names (dotted parameter names of the model) and the box of the emulated parameters."""
    forcing_names: tuple
    forcing_from_matrix: Callable
    """f (..., F) -> the model's forcing pytree (f (F,) gives forcing_t)."""
    flux_names: tuple
    """Outputs of the model kept as fluxes (named fields of its outputs)."""
    state_template: Any
    """A state pytree of the model (tree structure and leaf shapes of the state vector)."""
    state_lower: tuple
    state_upper: tuple
    water_balance: Optional[Callable] = None
    name: str = ""
    metadata: dict = field(default_factory=dict)

    # --- the model's own interface
    def initial_state(self, params, forcing):
        return self.model.initial_state(params, forcing)

    def step(self, state, forcing_t, params):
        return self.model.step(state, forcing_t, params)

    # --- flat vectors
    @property
    def state_names(self) -> tuple:
        """Flat names of the state leaves (``carbon_leaf``, ``soil_water_content_3``...)."""
        return state_names(self.state_template)

    def params_from_vector(self, v):
        """(P,) in ``param_space.names`` order -> the model's parameter pytree."""
        return self.model.set_parameters(self.base_params, {n: v[..., i] for i, n in
                                                           enumerate(self.param_space.names)})

    def params_to_vector(self, params):
        return jnp.stack([jnp.asarray(self.model.get_parameter(params, n)) for n in self.param_space.names], -1)

    def forcing_to_vector(self, forcing_t):
        return jnp.stack([jnp.asarray(output(forcing_t, k)) for k in self.forcing_names], -1)

    def state_to_vector(self, state):
        return jnp.concatenate([jnp.reshape(x, (-1,)) for x in jax.tree_util.tree_leaves(state)])

    def state_from_vector(self, v):
        """Inverse of :meth:`state_to_vector` (keeps the vector's dtype)."""
        leaves, treedef = jax.tree_util.tree_flatten(self.state_template)
        shapes = [np.shape(x) for x in leaves]
        offsets = np.concatenate([[0], np.cumsum([int(np.prod(s)) for s in shapes])]).astype(int)
        parts = [jnp.reshape(v[offsets[i]:offsets[i + 1]], s) for i, s in enumerate(shapes)]
        return jax.tree_util.tree_unflatten(treedef, parts)

    def outputs_to_vector(self, outputs_t):
        return jnp.stack([output(outputs_t, k) for k in self.flux_names], -1)

    def outputs_from_fluxes(self, fluxes: dict, next_state=None):
        """The model's outputs pytree (same type and fields) from emulated ``fluxes``: a
        field of the outputs is the flux of that name, else the field of that name of
        ``next_state`` (e.g. soil water at the end of the step), else NaN."""
        shapes = self._output_shapes
        g = fluxes[self.flux_names[0]]

        def value(k, like):
            if like is None:
                return None
            if k in fluxes:
                return fluxes[k]
            if next_state is not None and hasattr(next_state, k):
                return getattr(next_state, k)
            return jnp.full(jnp.shape(g) + like.shape, jnp.nan, g.dtype)
        if isinstance(shapes, Mapping):
            return {k: value(k, v) for k, v in shapes.items()}
        return type(shapes)(**{k: value(k, getattr(shapes, k)) for k in output_names(shapes)})

    @functools.cached_property
    def _output_shapes(self):
        f = jax.ShapeDtypeStruct((len(self.forcing_names),), jnp.result_type(float))
        return jax.eval_shape(lambda s, ft: self.model.step(s, self.forcing_from_matrix(ft), self.base_params)[1],
                              self.state_template, f)


def state_names(state) -> tuple:
    """Flat names of a state pytree's leaves in tree order (``carbon_leaf``,
    ``soil_water_content_3``, ...)."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        name = "_".join(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k)))) for k in path)
        n = int(np.prod(np.shape(leaf)))
        out += [f"{name}_{i}" for i in range(n)] if np.ndim(leaf) else [name]
    return tuple(out)


def spec_from_model(model, space: ParameterSpace, *, forcing_names, forcing_from_matrix, flux_names,
                    state_template=None, state_bounds: Optional[dict] = None, base_params=None,
                    water_balance=None, name: str = "", metadata: Optional[dict] = None) -> StatefulSpec:
    """A :class:`StatefulSpec` of any stateful ``model`` of the model interface.

    ``state_template`` defaults to ``model.initial_state`` on a day of zero forcing;
    ``state_bounds`` maps a state field name to ``(lower, upper)`` of every component of
    that field (a step emulator keeps bounded components inside); ``base_params``
    defaults to ``model.default_params()``."""
    base = model.default_params() if base_params is None else base_params
    if state_template is None:
        state_template = model.initial_state(base, forcing_from_matrix(jnp.zeros((1, len(forcing_names)))))
    names = state_names(state_template)
    bounds = state_bounds or {}
    lower, upper = [], []
    for n in names:
        b = next((v for k, v in bounds.items() if n == k or n.startswith(k + "_")), (None, None))
        lower.append(b[0])
        upper.append(b[1])
    return StatefulSpec(model=model, base_params=base, param_space=space, forcing_names=tuple(forcing_names),
                        forcing_from_matrix=forcing_from_matrix, flux_names=tuple(flux_names),
                        state_template=state_template, state_lower=tuple(lower), state_upper=tuple(upper),
                        water_balance=water_balance, name=name or type(model).__name__,
                        metadata=dict(metadata or {}))


def simulate_vectors(spec: StatefulSpec, params, forcing):
    """Run the model of ``spec`` (its ``initial_state`` and ``step``) from flat arrays:
    ``params`` (N, P), ``forcing`` (N, T, F) -> states (N, T + 1, S), fluxes (N, T, K);
    vmapped over N, ``lax.scan`` over T."""

    def one(p, f):
        pt = spec.params_from_vector(p)
        s0 = spec.initial_state(pt, spec.forcing_from_matrix(f))

        def body(s, ft):
            s1, out = spec.step(s, spec.forcing_from_matrix(ft), pt)
            return s1, (spec.state_to_vector(s1), spec.outputs_to_vector(out))

        _, (states, fluxes) = jax.lax.scan(body, s0, f)
        return jnp.concatenate([spec.state_to_vector(s0)[None], states]), fluxes

    return jax.vmap(one)(params, forcing)


def window_design(space: ParameterSpace, forcing, n: int, length: int, end: int, *, seed: int = 0,
                  window_seed: Optional[int] = None):
    """``n`` Sobol parameter vectors of ``space`` (seed ``seed``) and ``n`` forcing windows
    (n, length, F) of the time-major ``forcing`` (T, F) starting at random steps before
    ``end - length`` (generator seed ``window_seed``, default ``seed``): the training design
    of :func:`generate_trajectories`."""
    params = sample(space, n, seed=seed)
    starts = np.random.default_rng(seed if window_seed is None else window_seed).integers(0, end - length, n)
    return params, np.stack([np.asarray(forcing)[a:a + length] for a in starts])


def generate_trajectories(out_dir, spec: StatefulSpec, params: np.ndarray, forcing: np.ndarray, *,
                          trajectories_per_chunk: int = 64, seed: int = 0, progress: bool = True,
                          extra_attrs: Optional[dict] = None) -> Path:
    """Write process-model trajectories of ``spec`` for parameter vectors (N, P) and
    forcing windows (N, T, F) in chunks (resumable, like :func:`generate_vprm`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = jax.jit(lambda p, f: simulate_vectors(spec, p, f))
    n = params.shape[0]
    n_chunks = int(np.ceil(n / trajectories_per_chunk))
    meta = {"model": spec.name, "parameter_space": spec.param_space.to_json(), "seed": seed,
            "n_chunks": n_chunks, "state_names": json.dumps(list(spec.state_names)),
            "forcing_names": json.dumps(list(spec.forcing_names)),
            "flux_names": json.dumps(list(spec.flux_names)), **(extra_attrs or {})}
    for k in tqdm(range(n_chunks), desc=f"{spec.name} trajectories", disable=not progress):
        path = out / f"chunk_{k:05d}.nc"
        if path.exists():
            continue
        sl = slice(k * trajectories_per_chunk, (k + 1) * trajectories_per_chunk)
        states, fluxes = (np.asarray(a) for a in run(jnp.asarray(params[sl]), jnp.asarray(forcing[sl])))
        if not (np.all(np.isfinite(states)) and np.all(np.isfinite(fluxes))):
            raise FloatingPointError(f"{spec.name}: non-finite states or fluxes in chunk {k}.")
        ds = xr.Dataset({"states": (("trajectory", "time1", "state"), states),
                         "forcing": (("trajectory", "time", "forcing_variable"), np.asarray(forcing[sl])),
                         "params": (("trajectory", "parameter"), np.asarray(params[sl])),
                         "fluxes": (("trajectory", "time", "flux"), fluxes)},
                        coords={"state": list(spec.state_names), "flux": list(spec.flux_names),
                                "forcing_variable": list(spec.forcing_names),
                                "parameter": list(spec.param_space.names)},
                        attrs={**meta, "chunk": k})
        _write_chunk(path, ds)
    return out
