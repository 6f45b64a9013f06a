"""Seeded synthetic training and test scenes: known NOx emissions, real winds, the 2-D
transport model and the TROPOMI-like operator, written to disk chunk by chunk.

Each scene (Dumont Le Brazidec et al. 2025, GMD 18:3607, use the same idea with a full
CTM; here the differentiable column model :mod:`process_models.transport`):

1. wind: a window of the real SMARTCARB COSMO-GHG wind field (2015-04-23 11 UTC, GNFR-A
   profile weighting, 1.1 km) coarsened 2 x 2 to the model grid, turned by a random
   multiple of 90 degrees and mirrored (symmetries of the equations), kept if its mean
   speed is at least ``min_speed``;
2. emissions: a log-normal smooth area field (Gaussian-filtered white noise) scaled to a
   random domain total, plus ``n_sources`` point sources with log-normal rates at random
   cells of the inner domain, at least ``min_separation`` cells apart;
3. chemistry: a random NOx lifetime (uniform in ``lifetime_range``) and NO2/NOx ratio;
4. transport: ``hours`` of steady emission in the steady wind from clean air;
5. observation: :func:`.operator.observe` with a random kernel factor, noise and a qa/cloud
   mask cut from the real TROPOMI Matimba crop.

Scene ``i`` of a data set with seed ``s`` depends only on ``(s, i)`` (numpy
``default_rng([s, i])`` and ``jax.random.fold_in(key(s), i)``), so chunks can be made in
any order or in parallel and a data set is reproducible to the bit.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.ndimage import gaussian_filter
from tqdm.auto import tqdm

from process_models.transport import Grid, TransportForcing, TransportModel

from .operator import ObservationConfig, footprint_average, observe, real_masks

__all__ = ["SceneConfig", "wind_windows", "scene_inputs", "scene_keys", "simulate_scenes", "generate_dataset",
           "load_dataset", "SCENE_FIELDS", "WindError", "perturbed_winds"]

SCENE_FIELDS = ("obs", "valid", "clean", "u", "v", "area_emission", "point_rates", "point_cells",
                "lifetime", "ratio", "kernel", "noise_std", "total_emission")


@dataclass(frozen=True)
class SceneConfig:
    """Size and statistics of the synthetic scenes (defaults: the quick study)."""

    n: int = 40
    """Model cells per side."""
    dx: float = 2000.0
    """Cell size. Units: m."""
    hours: float = 6.0
    """Simulated hours of steady emission before the overpass. Units: h."""
    dt: float = 600.0
    """Interface step. Units: s."""
    n_sources: int = 2
    point_rate_median: float = 0.7
    """Median point-source rate. Units: kg s-1 (NOx as NO2)."""
    point_rate_log_sd: float = 0.7
    point_rate_bounds: tuple = (0.1, 4.0)
    """Units: kg s-1."""
    area_total_range: tuple = (0.1, 0.6)
    """Domain total of the area emissions. Units: kg s-1."""
    area_smoothing_cells: float = 4.0
    area_log_sd: float = 1.0
    inner: tuple = (0.3, 0.7)
    """Fraction of the domain side where point sources may sit."""
    min_separation: int = 8
    """Minimum distance between point sources. Units: cells."""
    lifetime_range: tuple = (3.0 * 3600.0, 5.0 * 3600.0)
    """Units: s."""
    ratio_mean: float = 1.0 / 1.32
    ratio_sd: float = 0.02
    diffusivity: float = 100.0
    """Units: m2 s-1."""
    min_speed: float = 2.0
    """Units: m s-1."""
    max_speed: float = 12.0
    """Windows with a faster cell are rejected (keeps the Courant number fixed). Units: m s-1."""
    observation: ObservationConfig = field(default_factory=ObservationConfig)

    @property
    def grid(self) -> Grid:
        return Grid(nx=self.n, ny=self.n, dx=self.dx, dy=self.dx, boundary="open")

    @property
    def steps(self) -> int:
        return int(round(self.hours * 3600.0 / self.dt))

    @property
    def substeps(self) -> int:
        return int(np.ceil(self.max_speed * self.dt / self.dx / 0.9))

    def model(self) -> TransportModel:
        return TransportModel(grid=self.grid, dt=self.dt, substeps=self.substeps)


def wind_windows(n: int, coarsen: int = 2, stride: int = 20, winds=None):
    """All ``n x n`` windows (after ``coarsen x coarsen`` averaging) of the SMARTCARB wind
    field on a ``stride``-cell lattice: arrays (W, n, n) of u and v (m s-1)."""
    if winds is None:
        from process_models.io.tropomi import read_smartcarb_winds
        winds = read_smartcarb_winds()
    u = np.asarray(winds["u"].values, float)
    v = np.asarray(winds["v"].values, float)
    H, W = (u.shape[0] // coarsen) * coarsen, (u.shape[1] // coarsen) * coarsen
    cu = u[:H, :W].reshape(H // coarsen, coarsen, W // coarsen, coarsen).mean(axis=(1, 3))
    cv = v[:H, :W].reshape(H // coarsen, coarsen, W // coarsen, coarsen).mean(axis=(1, 3))
    us, vs = [], []
    for i in range(0, cu.shape[0] - n + 1, stride):
        for j in range(0, cu.shape[1] - n + 1, stride):
            us.append(cu[i:i + n, j:j + n])
            vs.append(cv[i:i + n, j:j + n])
    return np.asarray(us), np.asarray(vs)


def _turn(u, v, k, mirror):
    """Rotate a wind field pattern and its vectors by k x 90 degrees, then mirror x -> -x if
    asked. With rows = y (south to north) and columns = x, ``np.rot90`` maps the point
    (x, y) to (y, -x) about the centre: a clockwise turn, so the vectors turn clockwise too,
    (u, v) -> (v, -u)."""
    for _ in range(k):
        u, v = np.rot90(v, 1), np.rot90(-u, 1)
    if mirror:
        u, v = -u[:, ::-1], v[:, ::-1]
    return np.ascontiguousarray(u), np.ascontiguousarray(v)


def scene_inputs(config: SceneConfig, seed: int, index: int, winds, masks) -> dict:
    """The random ingredients of scene ``index`` (numpy; depends only on seed, index)."""
    rng = np.random.default_rng([seed, index])
    n = config.n
    wu, wv = winds
    for _ in range(1000):
        w = rng.integers(len(wu))
        u, v = _turn(wu[w], wv[w], int(rng.integers(4)), bool(rng.integers(2)))
        speed = np.hypot(u, v)
        if speed.mean() >= config.min_speed and speed.max() <= config.max_speed:
            break
    else:
        raise ValueError("no wind window satisfies min_speed/max_speed; relax them.")
    noise = gaussian_filter(rng.standard_normal((n, n)), config.area_smoothing_cells, mode="wrap")
    area = np.exp(config.area_log_sd * noise / noise.std())
    total_area = rng.uniform(*config.area_total_range)
    area = area / (area.sum() * config.dx**2) * total_area                # kg m-2 s-1
    lo, hi = int(config.inner[0] * n), int(config.inner[1] * n)
    cells = []
    while len(cells) < config.n_sources:
        c = (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))
        if all(np.hypot(c[0] - a, c[1] - b) >= config.min_separation for a, b in cells):
            cells.append(c)
    rates = np.clip(config.point_rate_median * np.exp(config.point_rate_log_sd
                                                       * rng.standard_normal(config.n_sources)),
                    *config.point_rate_bounds)
    emission = area.copy()
    for (r, c), q in zip(cells, rates):
        emission[r, c] += q / config.dx**2
    oc = config.observation
    return dict(u=u, v=v, area_emission=area, emission=emission, point_rates=rates,
                point_cells=np.asarray(cells, np.int64),
                lifetime=rng.uniform(*config.lifetime_range),
                ratio=config.ratio_mean + config.ratio_sd * rng.standard_normal(),
                kernel=oc.kernel * (1.0 + oc.kernel_sd * rng.standard_normal()),
                valid=masks[int(rng.integers(len(masks)))],
                total_emission=total_area + rates.sum())


def scene_keys(seed: int, indices) -> jax.Array:
    """Noise keys of the scenes ``indices``: ``fold_in(key(seed), i)``."""
    base = jax.random.key(seed)
    return jnp.stack([jax.random.fold_in(base, int(i)) for i in indices])


def simulate_scenes(config: SceneConfig, inputs: list, keys) -> dict:
    """Run the transport model and the operator for a list of :func:`scene_inputs` (one
    vmapped, jitted call; ``keys`` from :func:`scene_keys`); returns stacked numpy arrays of
    :data:`SCENE_FIELDS`."""
    stack = {k: np.stack([np.asarray(s[k]) for s in inputs]) for k in inputs[0]}
    clean, obs = _run_batch(*(jnp.asarray(stack[k]) for k in
                              ("emission", "u", "v", "lifetime", "ratio", "kernel", "valid")), keys,
                            config=config)
    out = {k: stack[k] for k in SCENE_FIELDS if k in stack}
    out.update(clean=np.asarray(clean), obs=np.asarray(obs),
               noise_std=np.full(len(inputs), config.observation.noise_std))
    return out


@partial(jax.jit, static_argnames=("config",))
def _run_batch(emission, u, v, lifetime, ratio, kernel, valid, keys, *, config: SceneConfig):
    model = config.model()
    oc = config.observation

    def run(emission, u, v, lifetime, ratio, kernel, valid, k):
        p = model.default_params().replace(area_emission=emission, lifetime=lifetime,
                                           no2_nox_ratio=ratio,
                                           diffusivity=jnp.asarray(config.diffusivity))
        T = config.steps
        f = TransportForcing(u=jnp.broadcast_to(u, (T,) + u.shape), v=jnp.broadcast_to(v, (T,) + v.shape))
        c, _ = model.run(p, f)
        return (observe(c, ratio, oc, kernel=kernel),
                observe(c, ratio, oc, kernel=kernel, key=k, valid=valid))

    return jax.vmap(run)(emission, u, v, lifetime, ratio, kernel, valid, keys)


def generate_dataset(directory, n_scenes: int, *, config: SceneConfig = SceneConfig(), seed: int = 0,
                     chunk_size: int = 64, winds=None, l2=None, progress: bool = True) -> Path:
    """Write ``n_scenes`` scenes to ``directory/chunk_XXXX.npz`` plus ``manifest.json``.

    Existing complete chunks with the same manifest are kept (resumable)."""
    from process_models.io.tropomi import read_tropomi_no2_l2
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    winds = wind_windows(config.n) if winds is None else winds
    l2 = read_tropomi_no2_l2() if l2 is None else l2
    P = config.n // config.observation.pixel_cells
    masks = real_masks(l2, (P, P), 256, seed=seed)
    manifest = dict(n_scenes=n_scenes, chunk_size=chunk_size, seed=seed,
                    config=json.loads(json.dumps(asdict(config), default=str)))
    mpath = d / "manifest.json"
    if mpath.exists() and json.loads(mpath.read_text()) != manifest:
        for old in d.glob("chunk_*.npz"):
            old.unlink()
    mpath.write_text(json.dumps(manifest, indent=1))
    n_chunks = -(-n_scenes // chunk_size)
    for c in tqdm(range(n_chunks), desc="scenes", disable=not progress):
        path = d / f"chunk_{c:04d}.npz"
        if path.exists():
            continue
        idx = range(c * chunk_size, min(n_scenes, (c + 1) * chunk_size))
        inputs = [scene_inputs(config, seed, i, winds, masks) for i in idx]
        arrays = simulate_scenes(config, inputs, scene_keys(seed, idx))
        tmp = d / f".chunk_{c:04d}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.rename(path)
    return d


def load_dataset(directory, chunks=None) -> dict:
    """Concatenate the chunks (all, or the given indices) of a data set: dict of arrays."""
    d = Path(directory)
    files = sorted(d.glob("chunk_*.npz"))
    if not files:
        raise FileNotFoundError(f"no chunk_*.npz in {d}; run generate_dataset first.")
    if chunks is not None:
        files = [files[i] for i in chunks]
    parts = [dict(np.load(f)) for f in files]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclass(frozen=True)
class WindError:
    """An imperfect wind for the inversions (no inverse crime): what a reanalysis such as
    ERA5 (31-km grid) gives instead of the true km-scale wind. The true field is smoothed
    with a Gaussian of ``smoothing`` (the unresolved scales are lost, a representation
    error), its vectors are turned by an angle drawn from N(0, ``direction_sd``) and its
    speed scaled by ``exp(N(0, speed_log_sd))`` per scene. The magnitudes are assumptions of
    the study (the methods' stated relative wind uncertainty is 10 %), not a fitted ERA5
    error model."""

    smoothing: float = 15e3
    """Gaussian sd of the smoothing. Units: m."""
    direction_sd: float = 10.0
    """Units: degree."""
    speed_log_sd: float = 0.10
    """Units: 1."""

    @property
    def wind_rel_sd(self) -> float:
        """Relative wind uncertainty the inversions should carry: speed and cross-wind
        (direction) parts in quadrature. Units: 1."""
        return float(np.hypot(self.speed_log_sd, np.deg2rad(self.direction_sd)))


def perturbed_winds(u, v, seed: int, index: int, error: WindError = WindError(), dx: float = 2000.0):
    """The imperfect wind of scene ``index`` (numpy (N, N) u, v in m s-1; depends only on
    ``(seed, index)``): see :class:`WindError`."""
    u = np.asarray(u, float)
    v = np.asarray(v, float)
    if u.shape != v.shape or u.ndim != 2:
        raise ValueError(f"perturbed_winds: u {u.shape} and v {v.shape} must be equal 2-D grids.")
    rng = np.random.default_rng([seed, index, 7919])
    s = error.smoothing / dx
    us = gaussian_filter(u, s, mode="nearest") if s > 0 else u
    vs = gaussian_filter(v, s, mode="nearest") if s > 0 else v
    th = np.deg2rad(rng.normal(0.0, error.direction_sd))
    f = np.exp(rng.normal(0.0, error.speed_log_sd))
    return f * (np.cos(th) * us - np.sin(th) * vs), f * (np.sin(th) * us + np.cos(th) * vs)
