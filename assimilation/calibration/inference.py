"""Inference engines: NUTS (vectorised chains, progress bar, checkpoint/resume), SVI
(AutoNormal / AutoMultivariateNormal / AutoLowRankMultivariateNormal with an Optax
optimiser) and MAP by L-BFGS (``optax.lbfgs``).

NUTS: Hoffman & Gelman (2014) JMLR 15, 1593, with NumPyro's windowed adaptation of step
size and (diagonal or dense) mass matrix (Phan et al. 2019, arXiv:1912.11554).
SVI: Kingma & Welling (2014); Ranganath et al. (2014); automatic guides of NumPyro.
L-BFGS: Nocedal (1980), Liu & Nocedal (1989), with a zoom line search (optax).
"""
from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import (AutoLowRankMultivariateNormal, AutoMultivariateNormal,
                                     AutoNormal)
from numpyro.infer.initialization import init_to_median, init_to_value
from numpyro.infer.util import initialize_model
from tqdm.auto import tqdm

GUIDES = {"normal": AutoNormal, "mvn": AutoMultivariateNormal,
          "lowrank": AutoLowRankMultivariateNormal}


@dataclass
class NUTSResult:
    """Posterior draws of a NUTS run.

    ``samples``: site -> array (chains, draws, ...); ``diverging``: (chains, draws) bool;
    ``num_steps``: leapfrog steps per draw; ``wall_time``: seconds (all blocks of this
    call, compilation included); ``warmup_time``: seconds of the first block (compile +
    warm-up + its draws).
    """

    samples: dict
    diverging: np.ndarray
    num_steps: np.ndarray
    wall_time: float
    warmup_time: float = float("nan")
    blocks_done: int = 0
    mcmc: Optional[MCMC] = field(default=None, repr=False)


class _KeyData(NamedTuple):
    """A typed PRNG key (``jax.random.key``) as its raw key data and implementation name,
    so sampler states pickle."""
    data: np.ndarray
    impl: str


def enable_compilation_cache(path: str | Path | None = None) -> Path:
    """Switch on JAX's persistent compilation cache (XLA executables on disk, reused by
    later processes: NUTS' compile, the MAP solver, the potential) and return its folder.

    ``path`` default: ``$ECOFLUX_JAX_CACHE``, else ``~/.cache/ecoflux/jax``. Every
    program is cached (minimum compile time 0 s, any size), so a repeated calibration of
    the same problem shape skips compilation. Call before the first jitted call."""
    path = Path(path or os.environ.get("ECOFLUX_JAX_CACHE")
                or Path.home() / ".cache" / "ecoflux" / "jax")
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_numpy(tree):
    return jax.tree_util.tree_map(
        lambda x: _KeyData(np.asarray(jax.random.key_data(x)), str(jax.random.key_impl(x)))
        if _is_key(x) else np.asarray(x), tree)


def _from_numpy(tree):
    return jax.tree_util.tree_map(
        lambda x: jax.random.wrap_key_data(jnp.asarray(x.data), impl=x.impl)
        if isinstance(x, _KeyData) else jnp.asarray(x), tree,
        is_leaf=lambda x: isinstance(x, _KeyData))


def _save_checkpoint(path: Path, state, samples, diverging, num_steps, blocks_done):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump({"state": _to_numpy(state), "samples": samples, "diverging": diverging,
                     "num_steps": num_steps, "blocks_done": blocks_done}, f)
    tmp.replace(path)


def run_nuts(model: Callable, key, *, num_warmup: int = 500, num_samples: int = 500,
             num_chains: int = 2, chain_method: str = "vectorized", num_blocks: int = 1,
             checkpoint_dir: str | Path | None = None, target_accept_prob: float = 0.8,
             max_tree_depth: int = 10, dense_mass: bool = False, init_strategy=init_to_median,
             progress_bar: bool = True, model_kwargs: dict | None = None) -> NUTSResult:
    """Run NUTS, optionally in ``num_blocks`` blocks of ``num_samples`` draws each.

    After each block the sampler state (``mcmc.last_state``: position, step size,
    adapted mass matrix, RNG key) and all draws so far are written to
    ``checkpoint_dir/nuts_state.pkl``. Calling again with the same ``checkpoint_dir``
    resumes: warm-up is skipped (``mcmc.post_warmup_state``) and only the missing blocks
    run. Chains are vectorised (``chain_method="vectorized"``: one compiled program
    advances all chains, which is what a 2-core CPU or a GPU wants).
    """
    model_kwargs = model_kwargs or {}
    kernel = NUTS(model, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth,
                  dense_mass=dense_mass, init_strategy=init_strategy)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=progress_bar)
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / "nuts_state.pkl"
    samples, diverging, steps, done = [], [], [], 0
    if ckpt is not None and ckpt.exists():
        with open(ckpt, "rb") as f:
            saved = pickle.load(f)
        mcmc.post_warmup_state = _from_numpy(saved["state"])
        samples, diverging, steps = saved["samples"], saved["diverging"], saved["num_steps"]
        done = saved["blocks_done"]
    t0, t_first = time.perf_counter(), float("nan")
    blocks = range(done, num_blocks)
    for b in (tqdm(blocks, desc="NUTS blocks") if num_blocks > 1 and progress_bar else blocks):
        if mcmc.post_warmup_state is None:
            mcmc.run(key, extra_fields=("diverging", "num_steps"), **model_kwargs)
        else:
            mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("diverging", "num_steps"),
                     **model_kwargs)
        s = _to_numpy(mcmc.get_samples(group_by_chain=True))
        jax.block_until_ready(s)
        ex = mcmc.get_extra_fields(group_by_chain=True)
        samples.append(s)
        diverging.append(np.asarray(ex["diverging"]))
        steps.append(np.asarray(ex["num_steps"]))
        if b == done:
            t_first = time.perf_counter() - t0
        mcmc.post_warmup_state = mcmc.last_state
        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            _save_checkpoint(ckpt, mcmc.last_state, samples, diverging, steps, b + 1)
    wall = time.perf_counter() - t0
    if not samples:
        raise RuntimeError("no NUTS block ran (checkpoint already complete?) and none saved.")
    cat = {k: np.concatenate([s[k] for s in samples], axis=1) for k in samples[0]}
    return NUTSResult(samples=cat, diverging=np.concatenate(diverging, axis=1),
                      num_steps=np.concatenate(steps, axis=1), wall_time=wall,
                      warmup_time=t_first, blocks_done=max(num_blocks, done), mcmc=mcmc)


@dataclass
class SVIFit:
    """Result of :func:`run_svi`: guide, optimised variational parameters, ELBO loss
    trace and ``samples`` (site -> (num_samples, ...)) from the fitted guide."""

    guide: object
    params: dict
    losses: np.ndarray
    samples: dict
    wall_time: float


def run_svi(model: Callable, key, *, guide: str = "normal", num_steps: int = 2000,
            optimizer: optax.GradientTransformation | None = None, num_particles: int = 1,
            rank: int | None = None, num_samples: int = 1000, progress_bar: bool = True,
            init_strategy=init_to_median, model_kwargs: dict | None = None) -> SVIFit:
    """Stochastic variational inference with an automatic guide.

    ``guide``: "normal" (mean field), "mvn" (full covariance), "lowrank" (rank
    ``rank``, default ceil(sqrt(d))). ``optimizer``: any Optax transformation (default
    Adam, learning rate 1e-2, wrapped by ``numpyro.optim.optax_to_numpyro``).
    """
    model_kwargs = model_kwargs or {}
    cls = GUIDES[guide]
    kw = {"init_loc_fn": init_strategy}
    if guide == "lowrank" and rank is not None:
        kw["rank"] = rank
    g = cls(model, **kw)
    opt = numpyro.optim.optax_to_numpyro(optimizer or optax.adam(1e-2))
    svi = SVI(model, g, opt, Trace_ELBO(num_particles=num_particles))
    k1, k2 = jax.random.split(key)
    t0 = time.perf_counter()
    res = svi.run(k1, num_steps, progress_bar=progress_bar, **model_kwargs)
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace(**model_kwargs)
    sites = [k for k, v in tr.items() if (v["type"] == "sample" and not v["is_observed"])
             or v["type"] == "deterministic"]
    pred = Predictive(model, guide=g, params=res.params, num_samples=num_samples,
                      return_sites=sites)
    draws = {k: np.asarray(v) for k, v in pred(k2, **model_kwargs).items()}
    return SVIFit(guide=g, params=res.params, losses=np.asarray(res.losses), samples=draws,
                  wall_time=time.perf_counter() - t0)


@dataclass
class MAPFit:
    """Result of :func:`find_map`: constrained values of every latent and deterministic
    site at the optimum, the negative log density, the iterations and the gradient norm."""

    values: dict
    neg_log_density: float
    iterations: int
    grad_norm: float


def unconstrained_potential(model: Callable, key, *, model_kwargs: dict | None = None,
                            init_strategy=init_to_median):
    """``(potential(x), x0, unravel, postprocess)`` on a flat unconstrained vector.

    ``potential`` is NumPyro's potential energy (minus the log joint density in
    unconstrained coordinates, log-Jacobians included): the target every sampler of
    this package (NUTS, and the random-walk Metropolis of the benchmark) works on.
    """
    info = initialize_model(key, model, model_args=(), model_kwargs=model_kwargs or {},
                            init_strategy=init_strategy)
    x0, unravel = ravel_pytree(info.param_info.z)
    potential = lambda x: info.potential_fn(unravel(x))
    return potential, x0, unravel, info.postprocess_fn


def find_map(model: Callable, key, *, max_iter: int = 300, tol: float = 1e-6,
             model_kwargs: dict | None = None, init_strategy=init_to_median) -> MAPFit:
    """Maximum a posteriori point by L-BFGS (``optax.lbfgs`` with zoom line search) in
    the unconstrained coordinates NUTS uses (so it is a good NUTS start)."""
    potential, x0, unravel, post = unconstrained_potential(
        model, key, model_kwargs=model_kwargs, init_strategy=init_strategy)
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(potential)

    @jax.jit
    def solve(x):
        def step(carry):
            x, state, it, _ = carry
            v, g = vg(x, state=state)
            upd, state = opt.update(g, state, x, value=v, grad=g, value_fn=potential)
            return optax.apply_updates(x, upd), state, it + 1, jnp.linalg.norm(g)

        def cond(carry):
            _, _, it, gn = carry
            return (it < max_iter) & (gn > tol)

        init = (x, opt.init(x), jnp.asarray(0), jnp.asarray(jnp.inf, x.dtype))
        return jax.lax.while_loop(cond, step, init)

    x, _, it, gn = solve(x0)
    values = post(unravel(x))
    return MAPFit(values={k: np.asarray(v) for k, v in values.items()},
                  neg_log_density=float(potential(x)), iterations=int(it), grad_norm=float(gn))


def run_nuts_from_map(model: Callable, key, *, checkpoint_dir: str | Path | None = None,
                      map_kwargs: dict | None = None, **nuts_kwargs) -> NUTSResult:
    """:func:`run_nuts` started at the MAP (:func:`find_map`, L-BFGS in the unconstrained
    coordinates): warm-up starts in the bulk of the posterior instead of at the prior
    median. When ``checkpoint_dir`` holds a saved sampler state the run resumes from it
    (no MAP, no warm-up). ``nuts_kwargs`` go to :func:`run_nuts`."""
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    if ckpt is not None and (ckpt / "nuts_state.pkl").exists():
        init = init_to_value(values={})          # resumed: the saved state is the start
    else:
        init = init_to_value(values=find_map(model, key, **(map_kwargs or {})).values)
    return run_nuts(model, key, init_strategy=init, checkpoint_dir=ckpt, **nuts_kwargs)
