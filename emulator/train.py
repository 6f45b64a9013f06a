"""Training loop for the emulators: Optax AdamW with linear warm-up and cosine decay,
minibatches streamed chunk by chunk from a dataset folder, early stopping on a
validation split, Orbax checkpoints with exact resume, a CSV metrics log, a progress
bar, and data parallelism over devices with :mod:`jax.sharding` when more than one is
present (a single CPU device needs nothing).

Exact resume
------------
Everything a step depends on is either in the checkpoint (weights, optimiser state,
best weights, early-stopping counters, the running training-loss sum) or a pure
function of ``(seed, step)`` (the minibatch: :class:`ChunkStream` and
:class:`WindowStream` draw batch ``s`` from ``numpy.random.default_rng([seed, ...])``
without carrying a generator). A run killed after its checkpoint at step ``k`` and
restarted with the same settings restores step ``k`` and repeats exactly the steps an
uninterrupted run would have made: the final weights are bit-identical
(``tests/emulator/test_train.py``). Rows of the metrics CSV after step ``k`` are dropped
on resume so the log has no duplicates.

Losses
------
* pointwise: mean squared error of GPP, Reco and NEE, each divided by its training
  variance (NEE adds weight on the balance of the two).
* step emulator: multi-step rollout loss. From the true state at the window start the
  emulator runs ``K`` steps on its own predictions (``lax.scan``); the loss averages the
  squared normalised errors of states and fluxes over the window, plus
  ``water_balance_weight`` x the squared water-balance residual of each emulated step
  (e.g. change of soil-water storage - (precipitation - ET - drainage), mm, divided by
  ``water_balance_scale``).
"""
from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from tqdm.auto import tqdm


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule, early-stopping and checkpoint settings."""

    steps: int = 2000
    batch_size: int = 512
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    end_learning_rate_fraction: float = 0.01
    weight_decay: float = 1e-5
    gradient_clip: float = 1.0
    eval_every: int = 100
    patience: int = 10
    """Evaluations without improvement of the validation loss before stopping."""
    checkpoint_every: int = 200
    max_to_keep: int = 2
    seed: int = 0
    progress: bool = True


@dataclass
class TrainResult:
    model: nnx.Module
    """The model with the best validation weights."""
    history: list
    """Rows of the metrics log (dicts)."""
    best_step: int
    best_val_loss: float
    steps_done: int
    stopped_early: bool
    resumed_from: Optional[int]


def optimizer(config: TrainConfig):
    """AdamW (Loshchilov & Hutter 2019) with linear warm-up and cosine decay, after
    global-norm gradient clipping."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, max(config.warmup_steps, 1), max(config.steps, config.warmup_steps + 1),
        end_value=config.learning_rate * config.end_learning_rate_fraction)
    return optax.chain(optax.clip_by_global_norm(config.gradient_clip),
                       optax.adamw(schedule, weight_decay=config.weight_decay)), schedule


# ------------------------------------------------------------------ minibatch streams
def _visit(step: int, n_chunks: int, per_chunk: int, seed: int):
    """(chunk, position within the chunk visit, pass) of global step ``step``."""
    visit, pos = divmod(step, per_chunk)
    p, j = divmod(visit, n_chunks)
    order = np.random.default_rng([seed, p]).permutation(n_chunks)
    return int(order[j]), pos, p


class ChunkStream:
    """Minibatch ``step`` of rows drawn from the chunks ``chunks`` of a
    :class:`~emulator.generate.ChunkedDataset` (shuffled chunk order per pass, shuffled
    rows per chunk visit); a pure function of ``(seed, step)``."""

    def __init__(self, dataset, chunks, batch_size: int, seed: int = 0):
        self.ds, self.chunks, self.batch_size, self.seed = dataset, list(chunks), batch_size, seed
        rows = dataset.chunk(self.chunks[0])[0].shape[0]
        self.per_chunk = max(rows // batch_size, 1)

    def __call__(self, step: int) -> dict:
        j, pos, p = _visit(step, len(self.chunks), self.per_chunk, self.seed)
        c = self.chunks[j]
        x, y = self.ds.chunk(c)[:2]
        perm = np.random.default_rng([self.seed, p, c, 1]).permutation(x.shape[0])
        idx = perm[(pos * self.batch_size) % x.shape[0]:][:self.batch_size]
        if idx.size < self.batch_size:
            idx = np.concatenate([idx, perm[:self.batch_size - idx.size]])
        return {"x": x[idx], "y": y[idx]}


class WindowStream:
    """Rollout windows of length ``window`` from trajectory chunks (variables states,
    forcing, params, fluxes); batch ``step`` is a pure function of ``(seed, step)``."""

    def __init__(self, dataset, chunks, batch_size: int, window: int, seed: int = 0,
                 steps_per_chunk: int = 20):
        self.ds, self.chunks, self.batch_size, self.window, self.seed = dataset, list(chunks), batch_size, window, seed
        self.per_chunk = steps_per_chunk

    def __call__(self, step: int) -> dict:
        j, pos, p = _visit(step, len(self.chunks), self.per_chunk, self.seed)
        states, forcing, params, fluxes = self.ds.chunk(self.chunks[j])
        rng = np.random.default_rng([self.seed, step, 2])
        n, t = forcing.shape[:2]
        tr = rng.integers(0, n, self.batch_size)
        t0 = rng.integers(0, t - self.window + 1, self.batch_size)
        ti = t0[:, None] + np.arange(self.window)[None]
        return {"states": states[tr[:, None], np.concatenate([ti, ti[:, -1:] + 1], 1)],
                "forcing": forcing[tr[:, None], ti], "params": params[tr], "fluxes": fluxes[tr[:, None], ti]}


# ------------------------------------------------------------------------ losses
def pointwise_loss(target_sd):
    """Loss for :class:`~emulator.networks.PointwiseEmulator`: sum over GPP, Reco, NEE
    of MSE / variance (``target_sd`` = training sd of the three, umol m-2 s-1)."""
    sd = tuple(map(float, target_sd))

    def loss(model, batch):
        out = model(batch["x"])
        y = batch["y"]
        return sum(jnp.mean(((out[k] - y[:, i]) / sd[i]) ** 2) for i, k in enumerate(("gpp", "reco", "nee")))
    return loss


def rollout_loss(state_sd, flux_sd, flux_names, *, water_balance: Optional[Callable] = None,
                 water_balance_weight: float = 0.0, water_balance_scale: float = 1.0):
    """Multi-step rollout loss for :class:`~emulator.networks.StepEmulator` on batches of
    :class:`WindowStream`."""
    ssd, fsd, names = jnp.asarray(state_sd), jnp.asarray(flux_sd), tuple(flux_names)

    def loss(model, batch):
        s0 = batch["states"][:, 0]

        def body(s, k):
            f, target_s, target_f = batch["forcing"][:, k], batch["states"][:, k + 1], batch["fluxes"][:, k]
            s1, fl = model(s, f, batch["params"])
            fv = jnp.stack([fl[n] for n in names], -1)
            err = jnp.mean(((s1 - target_s) / ssd.astype(s.dtype)) ** 2) + jnp.mean(((fv - target_f) / fsd.astype(s.dtype)) ** 2)
            if water_balance is not None and water_balance_weight > 0:
                err = err + water_balance_weight * jnp.mean((water_balance(s, s1, f, fl) / water_balance_scale) ** 2)
            return s1, err

        _, errs = jax.lax.scan(body, s0, jnp.arange(batch["forcing"].shape[1]))
        return jnp.mean(errs)
    return loss


# --------------------------------------------------------------------- checkpoints
def _leaves_dict(tree):
    return {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}


def _from_leaves(tree, d):
    leaves, treedef = jax.tree.flatten(tree)
    return jax.tree.unflatten(treedef, [jnp.asarray(d[f"{i:05d}"], dtype=leaves[i].dtype)
                                        for i in range(len(leaves))])


def _manager(directory, config: TrainConfig):
    return ocp.CheckpointManager(Path(directory).absolute(), options=ocp.CheckpointManagerOptions(
        max_to_keep=config.max_to_keep, enable_async_checkpointing=False))


def _shardings():
    """(batch sharding, replicated sharding) over all devices, or (None, None) with one."""
    if jax.device_count() <= 1:
        return None, None
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
    P = jax.sharding.PartitionSpec
    return jax.sharding.NamedSharding(mesh, P("data")), jax.sharding.NamedSharding(mesh, P())


def fit(model: nnx.Module, loss_fn: Callable, batch_fn: Callable[[int], dict], val_batch: dict,
        config: TrainConfig, *, checkpoint_dir=None, metrics_path=None,
        stop_after: Optional[int] = None) -> TrainResult:
    """Train ``model`` (an NNX module) on ``loss_fn(model, batch)``.

    Parameters
    ----------
    batch_fn : ``step -> batch`` (dict of numpy arrays, leading axis = batch), a pure
        function of the step (exact resume depends on it).
    val_batch : validation data (dict of arrays), evaluated every ``eval_every`` steps.
    checkpoint_dir : Orbax checkpoints (every ``checkpoint_every`` steps and at the end);
        if it holds a checkpoint of this run, training resumes from the latest one.
    metrics_path : CSV log (step, learning_rate, train_loss, val_loss, best_val_loss, elapsed_s).
    stop_after : stop (without a final checkpoint) after this step, as if killed (tests).
    """
    graphdef, params = nnx.split(model)
    opt, schedule = optimizer(config)
    opt_state = opt.init(params)
    best = params
    counters = np.array([0, 0, 0], np.int64)         # step, best_step, evaluations without improvement
    floats = np.array([np.inf, 0.0, 0.0])             # best_val_loss, train-loss sum, count
    history: list = []
    batch_sharding, replicated = _shardings()
    if replicated is not None:
        params, opt_state = jax.device_put((params, opt_state), replicated)

    def loss_of(p, batch):
        return loss_fn(nnx.merge(graphdef, p), batch)

    @jax.jit
    def train_step(p, o, batch):
        loss, grads = jax.value_and_grad(loss_of)(p, batch)
        updates, o = opt.update(grads, o, p)
        return optax.apply_updates(p, updates), o, loss

    val_loss = jax.jit(loss_of)
    mngr, resumed_from = None, None
    if checkpoint_dir is not None:
        mngr = _manager(checkpoint_dir, config)
        latest = mngr.latest_step()
        if latest is not None:
            target = {"params": _leaves_dict(params), "opt": _leaves_dict(opt_state), "best": _leaves_dict(best),
                      "counters": counters, "floats": floats}
            abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), target)
            r = mngr.restore(latest, args=ocp.args.StandardRestore(abstract))
            params, opt_state, best = (_from_leaves(params, r["params"]), _from_leaves(opt_state, r["opt"]),
                                       _from_leaves(best, r["best"]))
            counters, floats = np.asarray(r["counters"]).copy(), np.asarray(r["floats"]).copy()
            resumed_from = int(counters[0])
    if metrics_path is not None:
        metrics_path = Path(metrics_path)
        if resumed_from is not None and metrics_path.exists():
            with open(metrics_path) as fh:
                history = [r for r in csv.DictReader(fh) if int(r["step"]) <= resumed_from]
        elif metrics_path.exists():
            metrics_path.unlink()

    def save(step):
        if mngr is None:
            return
        mngr.save(step, args=ocp.args.StandardSave({
            "params": _leaves_dict(params), "opt": _leaves_dict(opt_state), "best": _leaves_dict(best),
            "counters": counters, "floats": floats}), force=True)
        mngr.wait_until_finished()

    def put(batch):
        b = {k: jnp.asarray(v) for k, v in batch.items()}
        return b if batch_sharding is None else jax.device_put(b, batch_sharding)

    val = {k: jnp.asarray(v) for k, v in val_batch.items()}
    if replicated is not None:
        val = jax.device_put(val, replicated)
    t0 = time.perf_counter()
    stopped_early = bool(counters[2] >= config.patience)      # a resumed run that had stopped
    if stopped_early:
        counters[0] = config.steps
    start = int(counters[0])
    bar = tqdm(total=config.steps, initial=start, desc="training", disable=not config.progress)
    for step in range(start, config.steps):
        params, opt_state, loss = train_step(params, opt_state, put(batch_fn(step)))
        floats[1] += float(loss)
        floats[2] += 1
        counters[0] = step + 1
        bar.update()
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            v = float(val_loss(params, val))
            if v < floats[0]:
                floats[0], counters[1], counters[2], best = v, step + 1, 0, params
            else:
                counters[2] += 1
            row = {"step": step + 1, "learning_rate": float(schedule(step)),
                   "train_loss": floats[1] / max(floats[2], 1), "val_loss": v, "best_val_loss": floats[0],
                   "elapsed_s": time.perf_counter() - t0}
            floats[1] = floats[2] = 0.0
            history.append(row)
            bar.set_postfix(train=f"{row['train_loss']:.3g}", val=f"{v:.3g}")
            if metrics_path is not None:
                with open(metrics_path, "w", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=list(row))
                    w.writeheader()
                    w.writerows(history)
            if counters[2] >= config.patience:
                stopped_early = True
        if stop_after is not None and step + 1 >= stop_after:
            bar.close()
            return TrainResult(nnx.merge(graphdef, best), history, int(counters[1]), float(floats[0]),
                               step + 1, False, resumed_from)
        if (step + 1) % config.checkpoint_every == 0 or stopped_early:
            save(step + 1)
        if stopped_early:
            break
    bar.close()
    if int(counters[0]) % config.checkpoint_every != 0 and not stopped_early and resumed_from != int(counters[0]):
        save(int(counters[0]))
    if mngr is not None:
        mngr.close()
    return TrainResult(nnx.merge(graphdef, best), history, int(counters[1]), float(floats[0]),
                       int(counters[0]), stopped_early, resumed_from)


def config_dict(config: TrainConfig) -> dict:
    return asdict(config)


# ------------------------------------------------------------------ VPRM emulator
def train_vprm(dataset_dir, *, hidden=(128, 128, 128), gpp_head: str = "light_use",
               config: TrainConfig = TrainConfig(), validation_fraction: float = 0.1,
               checkpoint_dir=None, metrics_path=None, stop_after: Optional[int] = None,
               dtype=jnp.float32):
    """Train a :class:`~emulator.surrogate.VPRMSurrogate` on a dataset of
    :func:`emulator.generate.generate_vprm`.

    The last ``validation_fraction`` of the chunks (whole parameter sets, since chunks
    partition the design) is the validation split for early stopping. Returns
    ``(surrogate, TrainResult)``.
    """
    from .generate import ChunkedDataset
    from .networks import PointwiseEmulator, vprm_features
    from .normalise import Normaliser
    from .surrogate import VPRMSurrogate

    ds = ChunkedDataset(dataset_dir)
    n_val = max(1, int(round(validation_fraction * ds.n_chunks))) if ds.n_chunks > 1 else 0
    train_chunks = list(range(ds.n_chunks - n_val)) or [0]
    val_chunks = list(range(ds.n_chunks - n_val, ds.n_chunks)) or [0]
    x0, y0 = ds.concat(train_chunks[:4])
    feat_norm = Normaliser.fit(np.asarray(vprm_features(jnp.asarray(x0))))
    target_sd = y0.std(0)
    model = PointwiseEmulator(tuple(hidden), feat_norm, gpp_scale=float(target_sd[0]),
                              reco_scale=float(target_sd[1]), gpp_head=gpp_head,
                              rngs=nnx.Rngs(config.seed))
    stream = ChunkStream(ds, train_chunks, config.batch_size, seed=config.seed)
    cast = lambda b: {k: v.astype(dtype) for k, v in b.items()}
    xv, yv = ds.concat(val_chunks)
    keep = np.random.default_rng(config.seed).permutation(xv.shape[0])[:20000]
    result = fit(model, pointwise_loss(target_sd), lambda s: cast(stream(s)),
                 cast({"x": xv[keep], "y": yv[keep]}), config, checkpoint_dir=checkpoint_dir,
                 metrics_path=metrics_path, stop_after=stop_after)
    cfg = {"kind": "vprm_pointwise", "hidden": list(hidden), "gpp_head": gpp_head,
           "gpp_scale": float(target_sd[0]), "reco_scale": float(target_sd[1]),
           "feature_normaliser": feat_norm.to_dict(), "options": ds.attrs.get("options"),
           "parameter_space": ds.attrs.get("parameter_space"), "dataset": str(dataset_dir),
           "train_chunks": train_chunks, "validation_chunks": val_chunks,
           "train_config": asdict(config), "best_step": result.best_step,
           "best_val_loss": result.best_val_loss}
    return VPRMSurrogate(result.model, cfg), result


# ------------------------------------------------------------------ step emulator
def train_step_emulator(dataset_dir, spec, *, hidden=(64, 64), window: int = 8,
                        config: TrainConfig = TrainConfig(), validation_fraction: float = 0.1,
                        water_balance_weight: float = 0.1, water_balance_scale: float = 1.0,
                        checkpoint_dir=None, metrics_path=None, stop_after: Optional[int] = None,
                        dtype=jnp.float32, steps_per_chunk: int = 20):
    """Train a :class:`~emulator.networks.StepEmulator` with the multi-step rollout loss on
    trajectories of :func:`emulator.generate.generate_trajectories`. Returns
    ``(StepSurrogate, TrainResult)``."""
    from .generate import ChunkedDataset
    from .networks import StepEmulator
    from .normalise import Normaliser
    from .surrogate import StepSurrogate

    ds = ChunkedDataset(dataset_dir, variables=("states", "forcing", "params", "fluxes"))
    n_val = max(1, int(round(validation_fraction * ds.n_chunks))) if ds.n_chunks > 1 else 0
    train_chunks = list(range(ds.n_chunks - n_val)) or [0]
    val_chunks = list(range(ds.n_chunks - n_val, ds.n_chunks)) or [0]
    states, forcing, params, fluxes = ds.chunk(train_chunks[0])
    n, t = forcing.shape[:2]
    x = np.concatenate([states[:, :-1].reshape(n * t, -1), forcing.reshape(n * t, -1),
                        np.repeat(params, t, 0)], -1)
    norm = Normaliser.fit(x)
    dstate = np.diff(states, axis=1).reshape(n * t, -1)
    state_sd = np.maximum(states.reshape(-1, states.shape[-1]).std(0), 1e-6)
    flux_sd = np.maximum(fluxes.reshape(-1, fluxes.shape[-1]).std(0), 1e-6)
    model = StepEmulator(states.shape[-1], forcing.shape[-1], params.shape[-1], tuple(hidden), norm,
                         state_lower=spec.state_lower, state_upper=spec.state_upper,
                         state_scale=tuple(np.maximum(dstate.std(0), 1e-6)), flux_names=spec.flux_names,
                         flux_scale=tuple(flux_sd), rngs=nnx.Rngs(config.seed))
    stream = WindowStream(ds, train_chunks, config.batch_size, window, seed=config.seed,
                          steps_per_chunk=steps_per_chunk)
    vstream = WindowStream(ds, val_chunks, 256, window, seed=config.seed + 1)
    cast = lambda b: {k: v.astype(dtype) for k, v in b.items()}
    loss = rollout_loss(state_sd, flux_sd, spec.flux_names, water_balance=spec.water_balance,
                        water_balance_weight=water_balance_weight, water_balance_scale=water_balance_scale)
    result = fit(model, loss, lambda s: cast(stream(s)), cast(vstream(0)), config,
                 checkpoint_dir=checkpoint_dir, metrics_path=metrics_path, stop_after=stop_after)
    cfg = {"kind": "step", "model": spec.name, "hidden": list(hidden), "window": window,
           "state_sd": state_sd.tolist(), "flux_sd": flux_sd.tolist(), "input_normaliser": norm.to_dict(),
           "water_balance_weight": water_balance_weight, "train_config": asdict(config),
           "best_step": result.best_step, "best_val_loss": result.best_val_loss}
    return StepSurrogate(result.model, spec, cfg), result
