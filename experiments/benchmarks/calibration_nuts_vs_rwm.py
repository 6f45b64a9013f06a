"""Benchmark: NUTS (NumPyro kernel, gradients) vs adaptive random-walk Metropolis (NumPy) on
the same VPRM posteriors at US-PFa Park Falls 2005, hourly NEE (4548 measured hours).

Two posteriors (Mahadevan 2008 class-3 priors, Gaussian likelihood with per-record
flux-magnitude sigma):

* ``vprm4``: lam, PAR0, alpha, beta (the 4 tabulated VPRM parameters), white errors;
* ``full``: those 4, plus Topt ~ TN(20, 5; 5, 35) degC and Tlow ~ TN(2, 3; -5, 10) degC
  (the temperature parameters of the class, fixed in the table), plus the error model:
  AR(1) model-error rho ~ U(0, 1) and sigma inflation ~ LogNormal(0, 0.5) (8 dimensions,
  correlated: rho and inflation trade off, alpha/beta/Tlow trade off).

Both samplers work on NumPyro's unconstrained potential (jitted) and start from the same
points: the MAP (L-BFGS, not timed) plus one draw of the Laplace approximation per chain.
The random-walk Metropolis gets the same tuning on both problems: proposal covariance
starts at the Laplace approximation (inverse Hessian at the MAP), is adapted during
burn-in (Haario et al. 2001, Bernoulli 7, 223) and scaled by 2.38^2/d (Roberts &
Rosenthal 2001); each step calls the jitted density from a NumPy loop (no gradient).

NUTS (Hoffman & Gelman 2014) uses NumPyro's ``hmc(potential_fn, algo="NUTS")`` kernel with
its windowed step-size/mass-matrix adaptation, driven by a ``lax.scan`` that is compiled
ahead of time (``jit(...).lower(...).compile()``), so **compile time is reported
separately** from warm-up and sampling. Variants: diagonal or dense mass matrix; chains
vectorised (``vmap``, one program) or sequential (one compiled chain run twice);
float64 or float32 (``jax_enable_x64`` off, problem rebuilt).

ESS: ArviZ rank-normalised bulk ESS (min over parameters) and split R-hat (max), over 2
chains, the same estimator for both samplers. "time to ESS 400" = compile + warm-up +
sampling time x 400 / ESS (linear extrapolation of the measured run; RWM: burn-in +
sampling x 400 / ESS), shown only where R-hat < 1.01.

Target: bulk ESS >= 400 for every parameter with R-hat < 1.01 in < 60 s on the
2-core CPU, and >= 20x the ESS per second of the gradient-free sampler.

Run: ``python -m experiments.benchmarks.calibration_nuts_vs_rwm [--quick]``.

End-to-end time to ESS 400 (``--time-to-ess CONFIG``): one NUTS configuration in a fresh
process, every phase timed on the wall clock (data and problem set-up, MAP + Laplace
Hessian, NUTS init + compile, warm-up, sampling) with an actual run (no extrapolation):
``--chains`` chains of ``--warmup`` warm-up + ``--draws`` draws, then ArviZ bulk ESS and
R-hat. ``--cache-dir DIR`` switches on JAX's persistent compilation cache
(``assimilation.calibration.inference.enable_compilation_cache``): run twice, the first
time on an empty folder ("cold") and again ("warm": compiled programs read from disk).
``--laplace-mass`` starts the mass matrix at the Laplace covariance (diagonal or dense)
instead of the identity. The module imports (jax, numpyro, arviz) are reported separately.
"""
from __future__ import annotations

import argparse
import os
import time

_T_START = time.perf_counter()

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

jax.config.update("jax_enable_x64", True)
_T_IMPORTED = time.perf_counter()   # after the heavy imports above (jax, arviz, pandas)

CONFIGS = {  # name -> (dense_mass, chain_method, x64)
    "diag, vectorized, f64": (False, "vectorized", True),
    "dense, vectorized, f64": (True, "vectorized", True),
    "diag, sequential, f64": (False, "sequential", True),
    "dense, sequential, f64": (True, "sequential", True),
    "diag, vectorized, f32": (False, "vectorized", False),
    "dense, vectorized, f32": (True, "vectorized", False),
}


def build_problem(kind: str, quick: bool):
    """(potential, MAP in unconstrained coordinates, parameter names, records, Laplace cov)."""
    from numpyro.infer.util import unconstrain_fn
    from jax.flatten_util import ravel_pytree
    from assimilation.calibration import (ErrorModel, ParamPrior, build_model, find_map,
                                          unconstrained_potential)
    from assimilation.calibration.vprm_sites import build_vprm_site, site_priors, site_problem
    site = build_vprm_site("US-PFa")
    months = [7] if quick else None
    pri = site_priors(site)
    if kind == "vprm4":
        fn, obs, _, _ = site_problem(site, months=months, ar1=False)
        em = ErrorModel(sigma_from="record")
    elif kind == "full":
        fn, obs, em, _ = site_problem(site, months=months, ar1=True)     # AR(1) + inflation
        pri = dict(pri)
        pri["topt"] = ParamPrior("topt", "identity", 20.0, 5.0, lower=5.0, upper=35.0, units="degC",
                                 citation="Mahadevan et al. (2008) value 20 degC, wide")
        pri["tlow"] = ParamPrior("tlow", "identity", 2.0, 3.0, lower=-5.0, upper=10.0, units="degC",
                                 citation="Mahadevan et al. (2008) value 2 degC, wide")
    else:
        raise ValueError(f"unknown problem {kind!r}")
    model = build_model(fn, pri, obs, em)
    key = jax.random.key(0)
    mp = find_map(model, key)
    potential, x0, unravel, _ = unconstrained_potential(model, key)
    uc = unconstrain_fn(model, (), {}, {k: jnp.asarray(mp.values[k]) for k in unravel(x0)})
    xm, _ = ravel_pytree(uc)
    names = [f"{k}[{i}]" if np.size(v) > 1 else k for k, v in unravel(x0).items()
             for i in range(max(1, np.size(v)))]
    hess = np.asarray(jax.hessian(potential)(xm), np.float64)
    cov0 = np.linalg.inv(0.5 * (hess + hess.T))
    return jax.jit(potential), np.asarray(xm, np.float64), names, int(obs.n_used), cov0


def start_points(xm, cov0, n_chains, seed):
    rng = np.random.default_rng(seed)
    return [xm + rng.multivariate_normal(np.zeros(xm.size), cov0) for _ in range(n_chains)]


def run_nuts(potential, starts, n, *, dense=False, method="vectorized", seed=1, mass=None,
             n_draws=None):
    """NUTS, ``n`` warm-up + ``n_draws`` (default ``n``) draws per chain, mass matrix
    started at ``mass`` (Laplace covariance, or None: identity). Returns timings and draws
    (chains, n, d)."""
    from numpyro.infer.hmc import hmc
    init_kernel, sample_kernel = hmc(potential_fn=potential, algo="NUTS")
    dt = jnp.result_type(float)
    keys = jax.random.split(jax.random.key(seed), len(starts))
    inv_mass = None if mass is None else jnp.asarray(mass if dense else np.diag(mass), dt)
    n_draws = n if n_draws is None else n_draws
    t0 = time.perf_counter()
    states = [init_kernel(jnp.asarray(x, dt), n, dense_mass=dense, rng_key=k,
                          inverse_mass_matrix=inv_mass) for x, k in zip(starts, keys)]
    jax.block_until_ready(states)
    t_init = time.perf_counter() - t0

    def chain(state, length):
        def body(s, _):
            s = sample_kernel(s)
            return s, (s.z, s.diverging, s.num_steps)
        return jax.lax.scan(body, state, None, length=length)

    t0 = time.perf_counter()
    lengths = sorted({n, n_draws})
    if method == "vectorized":
        st = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *states)
        comps = {m: jax.jit(jax.vmap(lambda s, m=m: chain(s, m))).lower(st).compile() for m in lengths}
    else:
        comps = {m: jax.jit(lambda s, m=m: chain(s, m)).lower(states[0]).compile() for m in lengths}
    t_compile = time.perf_counter() - t0 + t_init

    def go(st, m):
        comp = comps[m]
        if method == "vectorized":
            return jax.block_until_ready(comp(st))
        res = [jax.block_until_ready(comp(s)) for s in st]
        return (jax.tree_util.tree_map(lambda *x: jnp.stack(x), *[r[0] for r in res]),
                jax.tree_util.tree_map(lambda *x: jnp.stack(x), *[r[1] for r in res]))

    st = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *states) if method == "vectorized" else states
    t0 = time.perf_counter()
    st, _ = go(st, n)                                              # warm-up (adaptation)
    t_warm = time.perf_counter() - t0
    if method != "vectorized":
        st = [jax.tree_util.tree_map(lambda x: x[i], st) for i in range(len(starts))]
    t0 = time.perf_counter()
    _, (z, div, steps) = go(st, n_draws)                           # sampling
    t_samp = time.perf_counter() - t0
    return dict(compile_s=t_compile, warmup_s=t_warm, sampling_s=t_samp, draws=np.asarray(z, np.float64),
                divergences=int(np.asarray(div).sum()), steps=float(np.asarray(steps).mean()))


def run_rwm(potential, starts, cov0, n_burn, n_keep, seed=2):
    """Adaptive (Haario) random-walk Metropolis, NumPy loop, chains one after another."""
    logp = lambda x: -float(potential(jnp.asarray(x, jnp.result_type(float))))
    logp(starts[0])                                                # compile outside the timing
    rng = np.random.default_rng(seed)
    d = starts[0].size
    chains, accs, t_burn, t_keep = [], [], 0.0, 0.0
    for x in starts:
        x = np.asarray(x, np.float64)
        lp = logp(x)
        cov, scale = cov0.copy(), 2.38 ** 2 / d
        hist, keep, acc = [], [], 0
        t0 = time.perf_counter()
        for i in range(n_burn + n_keep):
            if i == n_burn:
                t_burn += time.perf_counter() - t0
                t0 = time.perf_counter()
            prop = x + rng.multivariate_normal(np.zeros(d), scale * cov)
            lq = logp(prop)
            if np.log(rng.uniform()) < lq - lp:
                x, lp = prop, lq
                acc += i >= n_burn
            if i < n_burn:
                hist.append(x.copy())
                if i >= 500 and i % 250 == 0:                       # Haario adaptation, burn-in only
                    cov = np.cov(np.asarray(hist[len(hist) // 2:]).T) + 1e-10 * np.eye(d)
            else:
                keep.append(x.copy())
        t_keep += time.perf_counter() - t0
        chains.append(np.asarray(keep))
        accs.append(acc / n_keep)
    return dict(compile_s=0.0, warmup_s=t_burn, sampling_s=t_keep, draws=np.stack(chains),
                acceptance=float(np.mean(accs)))


def ess_rhat(draws: np.ndarray, names):
    idata = az.from_dict(posterior={n: draws[..., i] for i, n in enumerate(names)})
    s = az.summary(idata, kind="diagnostics")
    return float(s["ess_bulk"].min()), float(s["r_hat"].max())


def row(problem, sampler, r, names, draws_text):
    ess, rhat = ess_rhat(r["draws"], names)
    run = r["warmup_s"] + r["sampling_s"]
    t400 = r["compile_s"] + r["warmup_s"] + r["sampling_s"] * 400.0 / ess if rhat < 1.01 else float("nan")
    return {"problem": problem, "sampler": sampler, "draws": draws_text, "compile_s": r["compile_s"],
            "warmup_s": r["warmup_s"], "sampling_s": r["sampling_s"], "min_bulk_ess": ess, "max_rhat": rhat,
            "ess_per_s_sampling": ess / r["sampling_s"], "ess_per_s_total": ess / (run + r["compile_s"]),
            "time_to_ess400_s": t400,
            "notes": (f"{r['divergences']} div, {r['steps']:.1f} leapfrog/draw" if "steps" in r
                      else f"acceptance {r['acceptance']:.2f}")}


def time_to_ess(args, t_start):
    """The ``--time-to-ess`` mode (module docstring): one configuration, every phase timed."""
    from assimilation.calibration.inference import enable_compilation_cache
    cache = None if not args.cache_dir else str(enable_compilation_cache(args.cache_dir))
    name = list(CONFIGS)[args.time_to_ess]
    dense, method, x64 = CONFIGS[name]
    jax.config.update("jax_enable_x64", x64)
    times = {"imports_s": _T_IMPORTED - _T_START}
    t = time.perf_counter()
    potential, xm, pnames, n_rec, cov0 = build_problem(args.problem, False)
    times["problem_and_map_s"] = time.perf_counter() - t
    starts = start_points(xm, cov0, args.chains, seed=11)
    r = run_nuts(potential, starts, args.warmup or args.draws, dense=dense, method=method,
                 mass=cov0 if args.laplace_mass else None, n_draws=args.draws)
    ess, rhat = ess_rhat(r["draws"], pnames)
    times |= {"nuts_compile_s": r["compile_s"], "warmup_s": r["warmup_s"], "sampling_s": r["sampling_s"]}
    total = time.perf_counter() - t_start
    out = {"config": name, "problem": args.problem, "records": n_rec, "chains": args.chains,
           "warmup": args.warmup or args.draws, "draws": args.draws, "laplace_mass": args.laplace_mass,
           "cache": cache, **times, "total_after_imports_s": total, "min_bulk_ess": ess,
           "max_rhat": rhat, "divergences": r["divergences"], "leapfrog_per_draw": r["steps"],
           "reached": bool(ess >= 400 and rhat <= 1.01), "load_average": os.getloadavg()[0]}
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()),
          flush=True)
    if args.csv:
        pd.DataFrame([out]).to_csv(args.csv, mode="a", index=False,
                                   header=not os.path.exists(args.csv))
    return out


def main(argv=None):
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser(description="NUTS vs adaptive RWM on VPRM posteriors at Park Falls")
    ap.add_argument("--quick", action="store_true", help="July only, short chains, one config (smoke test)")
    ap.add_argument("--problems", default="vprm4,full")
    ap.add_argument("--configs", default=",".join(str(i) for i in range(len(CONFIGS))),
                    help="NUTS variants as indices into CONFIGS: " + "; ".join(
                        f"{i}: {c}" for i, c in enumerate(CONFIGS)))
    ap.add_argument("--draws", type=int, default=500, help="NUTS warm-up = draws per chain")
    ap.add_argument("--rwm", default="5000,20000", help="RWM burn-in,kept per chain")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--time-to-ess", type=int, default=None, metavar="CONFIG",
                    help="end-to-end time to ESS of one config (index into CONFIGS)")
    ap.add_argument("--problem", default="vprm4", help="problem of --time-to-ess")
    ap.add_argument("--chains", type=int, default=2, help="chains of --time-to-ess")
    ap.add_argument("--warmup", type=int, default=0, help="warm-up of --time-to-ess (0: = --draws)")
    ap.add_argument("--cache-dir", default="", help="persistent compilation cache folder")
    ap.add_argument("--laplace-mass", action="store_true", help="mass matrix starts at the Laplace cov")
    args = ap.parse_args(argv)
    if args.time_to_ess is not None:
        return time_to_ess(args, t_start)
    names_cfg = list(CONFIGS)
    if args.quick:
        problems, cfgs, n, (n_burn, n_keep) = ["vprm4"], [names_cfg[0]], 100, (600, 600)
    else:
        problems = [p for p in args.problems.split(",") if p]
        cfgs = [names_cfg[int(i)] for i in args.configs.split(",") if i.strip()]   # "" = RWM only
        n, (n_burn, n_keep) = args.draws, tuple(int(v) for v in args.rwm.split(","))
    load = os.getloadavg()[0]
    rows = []
    for x64 in (True, False):
        todo = [c for c in cfgs if CONFIGS[c][2] == x64]
        if not todo and not x64:            # the RWM reference always runs (in float64)
            continue
        jax.config.update("jax_enable_x64", x64)
        for prob in problems:
            potential, xm, pnames, n_rec, cov0 = build_problem(prob, args.quick)
            starts = start_points(xm, cov0, 2, seed=11)
            for c in todo:
                dense, method, _ = CONFIGS[c]
                r = run_nuts(potential, starts, n, dense=dense, method=method)
                rows.append(row(prob, f"NUTS ({c})", r, pnames, f"2 x ({n} + {n})"))
                print(f"  {prob:6s} NUTS {c}: {rows[-1]['min_bulk_ess']:.0f} ESS, "
                      f"R-hat {rows[-1]['max_rhat']:.3f}, "
                      f"{rows[-1]['compile_s']:.1f}+{rows[-1]['warmup_s']:.1f}+{rows[-1]['sampling_s']:.1f} s",
                      flush=True)
            if x64:
                r = run_rwm(potential, starts, cov0, n_burn, n_keep)
                rows.append(row(prob, "adaptive RWM (NumPy, f64)", r, pnames, f"2 x ({n_burn} + {n_keep})"))
                print(f"  {prob:6s} RWM: {rows[-1]['min_bulk_ess']:.0f} ESS, R-hat {rows[-1]['max_rhat']:.3f}, "
                      f"{rows[-1]['warmup_s']:.1f}+{rows[-1]['sampling_s']:.1f} s",
                      flush=True)
            print(f"{prob}: {n_rec} records, {len(pnames)} parameters ({', '.join(pnames)})", flush=True)
    jax.config.update("jax_enable_x64", True)
    df = pd.DataFrame(rows)
    for prob in problems:
        ref = df[(df.problem == prob) & df.sampler.str.startswith("adaptive RWM")]
        sel = df.problem == prob
        if len(ref):
            df.loc[sel, "ratio_ess_per_s_sampling"] = df.loc[sel, "ess_per_s_sampling"] / ref["ess_per_s_sampling"].iloc[0]
            df.loc[sel, "ratio_ess_per_s_total"] = df.loc[sel, "ess_per_s_total"] / ref["ess_per_s_total"].iloc[0]
    ff = lambda v: f"{v:.3g}"
    print(f"\nLoad average at start: {load:.1f} (2 cores shared); US-PFa 2005 hourly NEE")
    print("\nTable 1: ESS per second (ArviZ bulk ESS, min over parameters; ratio = NUTS / RWM)")
    cols1 = ["problem", "sampler", "draws", "compile_s", "warmup_s", "sampling_s", "min_bulk_ess", "max_rhat",
             "ess_per_s_sampling", "ess_per_s_total"] + [c for c in ("ratio_ess_per_s_sampling",
                                                                      "ratio_ess_per_s_total") if c in df]
    print(df[cols1].to_string(index=False, float_format=ff))
    print("\nTable 2: wall time to bulk ESS >= 400 with R-hat < 1.01 (NaN: R-hat >= 1.01)")
    print(df[["problem", "sampler", "time_to_ess400_s", "notes"]].to_string(index=False, float_format=ff))
    if args.csv:
        df.to_csv(args.csv, index=False)
    return df


if __name__ == "__main__":
    main()
