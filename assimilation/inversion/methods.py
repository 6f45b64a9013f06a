"""NOx emission estimates from one NO2 scene, behind one API::

    est = estimate("flux_divergence" | "cross_sectional_flux" | "variational" | "unet" | "vae", scene)
    est.point, est.point_sd      # (S,) kg s-1 (NOx as NO2), 1-sigma
    est.total, est.total_sd      # domain total, kg s-1 (NaN where a method gives none)

A :class:`Scene` holds the pixel NO2 columns, their mask and precision, the winds on the
model grid, the known point-source cells (a catalogue, as in Beirle et al. 2021) and the
assumed chemistry (lifetime, NO2/NOx ratio, kernel factor) with their relative
uncertainties. All methods convert NO2 to NOx with ``M_NO2 / (a r)``.

Methods
-------
flux divergence (Beirle et al. 2019, Sci. Adv. 5:eaax9800, eq. 1-3; Beirle et al. 2021,
ESSD 13:2995)::

    E = div(V w) + V / tau,   V = NOx column (kg m-2), w = wind (m s-1)

integrated over a disk of radius ``R`` around each source minus the median ``E`` of the
surrounding annulus (the area-source background); the domain total is ``E`` summed over the
interior pixels plus, for the outer ring of pixels (no central difference there), the mean
``E`` of the interior pixels away from the sources. Gaps are filled by normalised
convolution first (Knutsson & Westin 1993) so the central differences are defined.

cross-sectional flux (e.g. Varon et al. 2018, AMT 11:5673; Kuhlmann et al. 2021/2024, ddeq)::

    Q = u_eff * exp(x / (u_eff tau)) * int (V(x, s) - V_bg) ds

on transects perpendicular to the wind at distances ``x`` downwind, averaged over transects.

variational: MAP estimate of point rates, area emissions on blocks and log lifetime through
the differentiable transport model with :func:`assimilation.variational.fourdvar`
(L-BFGS); the Gauss-Newton posterior gives the standard deviations.

Uncertainty: each method's random part (for the flux divergence the spread over 64 seeded
noisy replicates of the scene; transect scatter and noise for CSF; the posterior for
4D-Var) plus
the relative systematic parts in quadrature (kernel factor, NO2/NOx ratio, wind speed,
lifetime through the decay or sink term).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.ndimage import map_coordinates

from process_models.transport import M_NO2, Grid, TransportForcing, TransportModel

from .operator import ObservationConfig, footprint_average, observe, upsample

__all__ = ["Scene", "EmissionEstimate", "estimate", "METHODS", "scene_from_arrays",
           "flux_divergence", "cross_sectional_flux", "variational"]


@dataclass(frozen=True)
class Scene:
    """One NO2 scene and what an inversion may assume about it."""

    obs: np.ndarray
    """Pixel NO2 columns, NaN = unusable. Units: mol m-2. Shape (P, P)."""
    valid: np.ndarray
    """1 where usable. Units: 1. Shape (P, P)."""
    noise_std: float
    """Pixel precision. Units: mol m-2."""
    u: np.ndarray
    """Eastward wind on the model grid. Units: m s-1. Shape (N, N)."""
    v: np.ndarray
    """Northward wind on the model grid. Units: m s-1. Shape (N, N)."""
    dx: float
    """Model cell size. Units: m."""
    pixel_cells: int
    point_cells: np.ndarray
    """(S, 2) model (row, column) of the known point sources."""
    source_radius: np.ndarray = None
    """(S,) radius of each source (cities > 0). Units: m."""
    lifetime: float = 4 * 3600.0
    """Assumed NOx lifetime. Units: s."""
    ratio: float = 1 / 1.32
    """Assumed NO2/NOx ratio. Units: 1."""
    kernel: float = 1.0
    """Assumed averaging-kernel factor. Units: 1."""
    lifetime_rel_sd: float = 0.25
    ratio_rel_sd: float = 0.03
    kernel_rel_sd: float = 0.05
    wind_rel_sd: float = 0.10
    diffusivity: float = 100.0
    """For the variational method. Units: m2 s-1."""
    model_error_rel: float = 0.0
    """Model error of the variational method's forward model (wind, diffusion) relative to
    the scene's plume scale (99th percentile of the usable columns): the pixel error
    variance is ``noise_std^2 + (model_error_rel * q99(obs))^2`` (observation plus
    model error, uncorrelated, in the observation-error covariance; Rodgers 2000, Inverse
    Methods for Atmospheric Sounding, sect. 3.2 and 10.1). Units: 1."""
    hours: float = 6.0
    """Emission history assumed by the variational method. Units: h."""

    @property
    def pixel_size(self) -> float:
        return self.dx * self.pixel_cells

    @property
    def nox(self) -> np.ndarray:
        """Observed NOx column on the pixels (kg m-2)."""
        return self.obs * M_NO2 / (self.kernel * self.ratio)


class EmissionEstimate(NamedTuple):
    method: str
    point: np.ndarray
    """(S,) point-source rates. Units: kg s-1."""
    point_sd: np.ndarray
    total: float
    """Domain total. Units: kg s-1."""
    total_sd: float
    emission_map: Optional[np.ndarray] = None
    """Estimated emission flux density on the pixels or grid. Units: kg m-2 s-1."""


def scene_from_arrays(data: dict, i: int, **assumed) -> Scene:
    """Scene ``i`` of a :func:`.generator.load_dataset` dict; ``assumed`` overrides the
    assumptions (lifetime, ratio, kernel, ...)."""
    n = data["u"].shape[-1]
    P = data["obs"].shape[-1]
    return Scene(obs=data["obs"][i], valid=data["valid"][i], noise_std=float(data["noise_std"][i]),
                 u=data["u"][i], v=data["v"][i], dx=float(assumed.pop("dx", 2000.0)),
                 pixel_cells=n // P, point_cells=data["point_cells"][i],
                 source_radius=np.zeros(len(data["point_cells"][i])), **assumed)


# ----------------------------------------------------------------- helpers
def _gauss_kernel(sigma):
    r = int(np.ceil(3 * sigma))
    x = jnp.arange(-r, r + 1, dtype=jnp.float64)
    k = jnp.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _smooth(a, sigma):
    k = _gauss_kernel(sigma)
    pad = len(k) // 2
    a = jnp.pad(a, pad, mode="edge")
    a = jax.vmap(lambda r: jnp.convolve(r, k, mode="valid"))(a)
    return jax.vmap(lambda c: jnp.convolve(c, k, mode="valid"), in_axes=1, out_axes=1)(a)


def fill_gaps(y, valid, sigma=1.5):
    """Normalised convolution: missing pixels get the Gaussian-weighted mean of the valid ones."""
    m = jnp.asarray(valid > 0, y.dtype)
    y0 = jnp.where(m > 0, y, 0.0)
    num, den = _smooth(y0, sigma), _smooth(m, sigma)
    return jnp.where(m > 0, y0, num / jnp.maximum(den, 1e-12))


def _central_divergence(F, G, h):
    """(dF/dx + dG/dy) with central differences; NaN on the outer ring. (P, P)."""
    d = jnp.full(F.shape, jnp.nan, F.dtype)
    inner = (F[1:-1, 2:] - F[1:-1, :-2]) / (2 * h) + (G[2:, 1:-1] - G[:-2, 1:-1]) / (2 * h)
    return d.at[1:-1, 1:-1].set(inner)


def _rel_systematic(scene: Scene):
    return np.sqrt(scene.kernel_rel_sd**2 + scene.ratio_rel_sd**2 + scene.wind_rel_sd**2)


# ----------------------------------------------------------------- flux divergence
def _fd_map(y, valid, u, v, k, h, kernel, ratio, lifetime):
    """Emission map E = div(V w) + V/tau on the pixels (kg m-2 s-1) and the sink part."""
    V = fill_gaps(y, valid) * M_NO2 / (kernel * ratio)
    up = footprint_average(u, k)
    vp = footprint_average(v, k)
    div = _central_divergence(V * up, V * vp, h)
    sink = V / lifetime
    return div + sink, sink


@partial(jax.jit, static_argnames=("k", "n_replicates"))
def _fd_core(y, valid, u, v, masks, rings, interior, h, kernel, ratio, lifetime, noise_std, *, k,
             n_replicates=64):
    def estimator(y):
        E, sink = _fd_map(y, valid, u, v, k, h, kernel, ratio, lifetime)
        ok = jnp.isfinite(E)
        Ez = jnp.where(ok, E, 0.0)
        sinkz = jnp.where(ok, sink, 0.0)

        def disk(m, ring):
            bg = jnp.nanmedian(jnp.where(ring > 0, Ez, jnp.nan))
            return (jnp.sum(Ez * m) - bg * jnp.sum(m)) * h * h, jnp.sum(sinkz * m) * h * h

        point, point_sink = jax.vmap(disk)(masks, rings)
        # the outer ring of pixels has no central difference: give it the mean emission of the
        # interior pixels away from the sources (area-source density)
        away = interior * ok.astype(Ez.dtype) * (1.0 - jnp.max(masks, axis=0))
        density = jnp.sum(Ez * away) / jnp.maximum(jnp.sum(away), 1.0)
        edge = jnp.sum(1.0 - interior)
        total = (jnp.sum(Ez * interior) + density * edge) * h * h
        return point, total, point_sink, jnp.sum(sinkz * interior) * h * h, E

    out = estimator(y)
    # noise: spread of the estimator over seeded noisy replicates (the annulus median makes it
    # nonlinear, so linear propagation would overstate the background's noise)
    m = (valid > 0).astype(y.dtype)
    eps = jax.random.normal(jax.random.key(0), (n_replicates,) + y.shape, y.dtype) * m
    reps = jax.vmap(lambda e: estimator(y + noise_std * e)[:2])(eps)
    return out, jnp.std(reps[0], axis=0, ddof=1), jnp.std(reps[1], ddof=1)


def flux_divergence(scene: Scene, radius: float = 12e3, annulus: float = 2.0) -> EmissionEstimate:
    """Beirle et al. (2019) flux divergence; ``radius`` (m, plus the source radius) of the
    integration disk, background from the annulus out to ``annulus x radius``."""
    P = scene.obs.shape[0]
    h = scene.pixel_size
    yy, xx = np.mgrid[0:P, 0:P]
    k = scene.pixel_cells
    masks, rings = [], []
    for s, (r, c) in enumerate(np.asarray(scene.point_cells)):
        R = radius + (0.0 if scene.source_radius is None else float(scene.source_radius[s]))
        dist = np.hypot((yy + 0.5) * k - (r + 0.5), (xx + 0.5) * k - (c + 0.5)) * scene.dx
        masks.append(dist <= R)
        rings.append((dist > R) & (dist <= annulus * R))
    interior = np.zeros((P, P))
    interior[1:-1, 1:-1] = 1.0
    y = np.where(scene.valid > 0, scene.obs, 0.0)
    (point, total, psink, tsink, E), wp, wt = _fd_core(
        jnp.asarray(y), jnp.asarray(scene.valid, y.dtype), jnp.asarray(scene.u), jnp.asarray(scene.v),
        jnp.asarray(np.asarray(masks, float)), jnp.asarray(np.asarray(rings, float)), jnp.asarray(interior),
        jnp.asarray(h), jnp.asarray(scene.kernel), jnp.asarray(scene.ratio), jnp.asarray(scene.lifetime),
        jnp.asarray(scene.noise_std), k=k)
    point, psink, total, tsink = np.asarray(point), np.asarray(psink), float(total), float(tsink)
    rel = _rel_systematic(scene)
    # noise (replicates); kernel, ratio, wind scale everything; the lifetime the sink
    sd_p = np.sqrt(np.asarray(wp) ** 2 + (rel * point) ** 2 + (scene.lifetime_rel_sd * psink) ** 2)
    sd_t = float(np.sqrt(float(wt) ** 2 + (rel * total) ** 2 + (scene.lifetime_rel_sd * tsink) ** 2))
    return EmissionEstimate("flux_divergence", point, sd_p, total, sd_t, np.asarray(E))


# ----------------------------------------------------------------- cross-sectional flux
def cross_sectional_flux(scene: Scene, distances=None, half_width: float = 15e3,
                         spacing: float = 1e3, wind_radius: float = 10e3,
                         min_coverage: float = 0.8) -> EmissionEstimate:
    """Line densities on transects ``distances`` (m) downwind, each turned into a flux with
    the mean wind near the source and corrected for decay ``exp(x / (u tau))``.

    Transects that would also cut the plume of another known source (a source upwind of
    the transect within ``half_width`` across the wind) are skipped; if none is left the
    estimate is NaN (the method cannot separate the two plumes)."""
    k = scene.pixel_cells
    h = scene.pixel_size
    V = np.asarray(fill_gaps(jnp.asarray(np.where(scene.valid > 0, scene.obs, 0.0)), scene.valid)) \
        * M_NO2 / (scene.kernel * scene.ratio)
    valid = np.asarray(scene.valid, float)
    N = scene.u.shape[0]
    yy, xx = np.mgrid[0:N, 0:N]
    s_off = np.arange(-half_width, half_width + spacing / 2, spacing)
    edge = np.abs(s_off) >= half_width - 5e3
    points, sds = [], []
    for s, (r, c) in enumerate(np.asarray(scene.point_cells)):
        R = 0.0 if scene.source_radius is None else float(scene.source_radius[s])
        dist = np.hypot(yy - r, xx - c) * scene.dx
        near = dist <= wind_radius + R
        ue, ve = scene.u[near].mean(), scene.v[near].mean()
        speed = float(np.hypot(ue, ve))
        ex, ey = ue / speed, ve / speed                    # along-wind unit vector
        dists = np.arange(max(6e3, 1.5 * R), 30e3, 2e3) if distances is None else np.asarray(distances)
        others = [(o, rc) for o, rc in enumerate(np.asarray(scene.point_cells)) if o != s]
        fluxes, used = [], []
        for x in dists:
            crossed = False
            for o, (ro, co) in others:
                dxo, dyo = (co - c) * scene.dx, (ro - r) * scene.dx
                along, across = dxo * ex + dyo * ey, -dxo * ey + dyo * ex
                Ro = 0.0 if scene.source_radius is None else float(scene.source_radius[o])
                if along < x + Ro and abs(across) < half_width + Ro + 2 * h:
                    crossed = True
            if crossed:
                continue
            px = (c + 0.5) * scene.dx + x * ex - s_off * ey      # metres east
            py = (r + 0.5) * scene.dx + x * ey + s_off * ex      # metres north
            pi, pj = py / h - 0.5, px / h - 0.5                  # pixel coordinates
            inside = (pi >= 0) & (pi <= V.shape[0] - 1) & (pj >= 0) & (pj <= V.shape[1] - 1)
            if inside.mean() < 1.0:
                continue
            vals = map_coordinates(V, [pi, pj], order=1)
            cov = map_coordinates(valid, [np.round(pi), np.round(pj)], order=0)
            if cov.mean() < min_coverage:
                continue
            bg = np.median(vals[edge])
            line = np.sum(vals - bg) * spacing
            fluxes.append(line * speed * np.exp(x / (speed * scene.lifetime)))
            used.append(x)
        if not fluxes:
            points.append(np.nan)
            sds.append(np.nan)
            continue
        fl = np.asarray(fluxes)
        q = float(np.mean(fl))
        noise = scene.noise_std * M_NO2 / (scene.kernel * scene.ratio) * speed * spacing \
            * np.sqrt(len(s_off) * h / spacing) / np.sqrt(len(fl))
        spread = fl.std(ddof=1) / np.sqrt(len(fl)) if len(fl) > 1 else abs(q)
        tdecay = np.mean(used) / (speed * scene.lifetime)
        sd = np.sqrt(spread**2 + noise**2 + (_rel_systematic(scene) * q) ** 2
                     + (scene.lifetime_rel_sd * tdecay * q) ** 2)
        points.append(q)
        sds.append(float(sd))
    return EmissionEstimate("cross_sectional_flux", np.asarray(points), np.asarray(sds), np.nan, np.nan)


# ----------------------------------------------------------------- variational
@dataclass(frozen=True)
class VariationalConfig:
    """Prior and control of the variational inversion."""

    block_cells: int = 8
    """Area emissions are piecewise constant on blocks of ``block_cells`` cells."""
    point_prior: float = 1.0
    """Units: kg s-1."""
    point_prior_sd: float = 1.5
    """Units: kg s-1."""
    area_prior: float = 5e-11
    """Units: kg m-2 s-1."""
    area_prior_sd: float = 1e-10
    """Units: kg m-2 s-1."""
    log_lifetime_sd: float = 0.3
    log_lifetime_bound: float = 0.6
    """Gauss-Newton iterates keep ``|log(tau / tau_prior)| <= log_lifetime_bound`` (4 h prior:
    2.2-7.3 h, the 2-8 h range of TROPOMI lifetimes, Lange et al. 2022, ACP 22:2745)."""
    max_iter: int = 60
    """L-BFGS iterations (solver 'lbfgs')."""
    gn_iter: int = 2
    """Gauss-Newton outer loops (solver 'gauss_newton')."""
    dt: float = 600.0
    max_speed: float = 12.0


def _var_forward(scene_arrays, control, *, n, k, cfg: VariationalConfig, model: TransportModel, steps):
    u, v, rows, cols, diffusivity, ratio, kernel = scene_arrays
    B = n // cfg.block_cells
    area = jnp.repeat(jnp.repeat(control["area"].reshape(B, B), cfg.block_cells, 0), cfg.block_cells, 1)
    e = area.at[rows, cols].add(control["point"] / model.grid.cell_area)
    p = model.default_params().replace(area_emission=e, lifetime=jnp.exp(control["log_lifetime"]),
                                       no2_nox_ratio=ratio, diffusivity=diffusivity)
    f = TransportForcing(u=jnp.broadcast_to(u, (steps,) + u.shape), v=jnp.broadcast_to(v, (steps,) + v.shape))
    c, _ = model.run(p, f)
    return observe(c, ratio, ObservationConfig(pixel_cells=k), kernel=kernel)


def variational(scene: Scene, config: VariationalConfig = VariationalConfig(),
                solver: str = "gauss_newton", radius: float = 12e3) -> EmissionEstimate:
    """MAP point rates, block area emissions and log lifetime through the transport model.

    solver : ``"gauss_newton"`` (incremental 4D-Var: ``gn_iter`` outer loops, each solving
    the linearised problem exactly in the information form, Courtier et al. 1994, QJRMS
    120:1367; the model is linear in the emissions, so only the lifetime needs the outer
    loops) or ``"lbfgs"`` (:func:`assimilation.variational.fourdvar`). Both return the
    Gauss-Newton posterior covariance ``(B^-1 + G^T R^-1 G)^-1``.
    """
    n = scene.u.shape[0]
    S = len(scene.point_cells)
    B = n // config.block_cells
    steps = int(round(scene.hours * 3600.0 / config.dt))
    grid = Grid(nx=n, ny=n, dx=scene.dx, dy=scene.dx, boundary="open")
    umax = max(float(np.abs(scene.u).max()), float(np.abs(scene.v).max()), config.max_speed)
    model = TransportModel(grid=grid, dt=config.dt, substeps=int(np.ceil(umax * config.dt / scene.dx / 0.9)))
    background = {"point": jnp.full((S,), config.point_prior), "area": jnp.full((B * B,), config.area_prior),
                  "log_lifetime": jnp.asarray(np.log(scene.lifetime))}
    std = jnp.concatenate([jnp.full((B * B,), config.area_prior_sd),
                           jnp.asarray([config.log_lifetime_sd]),
                           jnp.full((S,), config.point_prior_sd)])      # ravel order: sorted keys
    pc = np.asarray(scene.point_cells)
    arrays = (jnp.asarray(scene.u), jnp.asarray(scene.v), jnp.asarray(pc[:, 0]), jnp.asarray(pc[:, 1]),
              jnp.asarray(float(scene.diffusivity)), jnp.asarray(float(scene.ratio)),
              jnp.asarray(float(scene.kernel)))
    obs = jnp.asarray(np.where(scene.valid > 0, scene.obs, np.nan))
    static = dict(n=n, k=scene.pixel_cells, cfg=config, model=model, steps=steps)
    if solver not in ("gauss_newton", "lbfgs"):
        raise ValueError(f"solver={solver!r}; use 'gauss_newton' or 'lbfgs'.")
    plume = float(np.nanpercentile(np.where(scene.valid > 0, scene.obs, np.nan), 99)) if scene.model_error_rel else 0.0
    obs_var = scene.noise_std**2 + (scene.model_error_rel * plume) ** 2
    ctrl, cov = _solver(solver, static)(arrays, background, std, obs, jnp.asarray(obs_var))
    cov = np.asarray(cov)
    nA = B * B
    xhat = np.concatenate([np.asarray(ctrl["area"]), [float(ctrl["log_lifetime"])], np.asarray(ctrl["point"])])
    # emission map (kg m-2 s-1) is linear in the control: e = M x (lifetime column 0)
    A = scene.dx**2
    M = np.zeros((n * n, xhat.size))
    blocks = (np.arange(n)[:, None] // config.block_cells) * B + np.arange(n)[None, :] // config.block_cells
    M[np.arange(n * n), blocks.ravel()] = 1.0
    for j, (r, c) in enumerate(pc):
        M[r * n + c, nA + 1 + j] = 1.0 / A
    # source estimate: emissions within R of the source minus the annulus mean (as for the
    # flux divergence), so that emissions the blocks near the source take up are counted
    yy, xx = np.mgrid[0:n, 0:n]
    W = []
    for j, (r, c) in enumerate(pc):
        R = radius + (0.0 if scene.source_radius is None else float(scene.source_radius[j]))
        d = np.hypot(yy - r, xx - c) * scene.dx
        disk, ring = (d <= R).ravel(), ((d > R) & (d <= 2 * R)).ravel()
        W.append(A * (disk - disk.sum() / max(ring.sum(), 1) * ring))
    L = np.asarray(W) @ M                                            # (S, Nc)
    for j in range(len(pc)):             # other known sources are their own controls: not counted
        others = [nA + 1 + o for o in range(len(pc)) if o != j]
        L[j, others] = 0.0
        L[j, nA + 1 + j] = 1.0
    point = L @ xhat
    wt = A * np.ones(n * n) @ M
    total = float(wt @ xhat)
    rel = np.sqrt(scene.kernel_rel_sd**2 + scene.ratio_rel_sd**2 + scene.wind_rel_sd**2)
    sd_p = np.sqrt(np.einsum("sc,cd,sd->s", L, cov, L) + (rel * point) ** 2)
    sd_t = float(np.sqrt(wt @ cov @ wt + (rel * total) ** 2))
    amap = (M @ xhat).reshape(n, n)
    return EmissionEstimate("variational", point, sd_p, total, sd_t, amap)


def _gauss_newton(forward, background, std, obs, obs_var, n_iter, bound=None):
    """Gauss-Newton outer loops; ``bound`` (ravelled like the control, inf = none) keeps each
    iterate within ``xb +- bound`` (a projected step: the lifetime is the one nonlinear
    control, and an unbounded linearised step in it can leave the range where the
    linearisation holds)."""
    xb, unravel = ravel_pytree(background)
    m = jnp.isfinite(obs).ravel()
    y = jnp.where(m, obs.ravel(), 0.0)
    rinv = jnp.where(m, 1.0 / jnp.broadcast_to(obs_var, obs.shape).ravel(), 0.0)
    binv = 1.0 / std**2
    g = lambda x: forward(unravel(x)).ravel()

    def outer(x, _):
        G = jax.jacfwd(g)(x)                                 # (Nobs, Nc)
        H = jnp.diag(binv) + G.T @ (rinv[:, None] * G)
        rhs = G.T @ (rinv * (y - g(x))) - binv * (x - xb)
        x = x + jnp.linalg.solve(H, rhs)
        if bound is not None:
            x = jnp.clip(x, xb - bound, xb + bound)
        return x, None

    x, _ = jax.lax.scan(outer, xb, None, length=n_iter)
    G = jax.jacfwd(g)(x)
    H = jnp.diag(binv) + G.T @ (rinv[:, None] * G)
    return unravel(x), jnp.linalg.inv(H)


def _solver(solver, static):
    key = (solver,) + tuple(sorted(static.items(), key=lambda kv: kv[0]))
    fn = _VAR_CACHE.get(key)
    if fn is None:
        cfg = static["cfg"]

        def solve(arrays, background, std, obs, obs_var):
            fwd = lambda ctrl: _var_forward(arrays, ctrl, **static)
            if solver == "gauss_newton":
                bound = jnp.full(std.shape, jnp.inf, std.dtype).at[background["area"].size].set(
                    cfg.log_lifetime_bound)
                return _gauss_newton(fwd, background, std, obs, obs_var, cfg.gn_iter, bound)
            from assimilation.variational import fourdvar
            r = fourdvar(fwd, background, obs, obs_var, background_std=std, max_iter=cfg.max_iter,
                         posterior_cov=True)
            return r.control, r.posterior_cov
        fn = _VAR_CACHE[key] = jax.jit(solve)
    return fn


_VAR_CACHE: dict = {}


# ----------------------------------------------------------------- one API
METHODS = {"flux_divergence": flux_divergence, "cross_sectional_flux": cross_sectional_flux,
           "variational": variational}


def estimate(method: str, scene: Scene, **options) -> EmissionEstimate:
    """Estimate the emissions of ``scene`` with ``method`` (a name of :data:`METHODS`;
    ``"unet"`` with ``ensemble=`` from :func:`.unet.train_unet_ensemble`, ``"vae"`` with
    ``model=`` from :func:`.vae.train_vae`)."""
    if method == "vae":
        from .vae import vae_estimate
        if "model" not in options:
            raise ValueError("method 'vae' needs model=<VAEModel from assimilation.inversion.vae.train_vae>.")
        return vae_estimate(scene, options["model"])
    if method == "unet":
        from .unet import unet_estimate
        if "ensemble" not in options:
            raise ValueError("method 'unet' needs ensemble=<UNetEnsemble from train_unet_ensemble>.")
        return unet_estimate(scene, options["ensemble"])
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {sorted(METHODS) + ['unet', 'vae']}.")
    return METHODS[method](scene, **options)
