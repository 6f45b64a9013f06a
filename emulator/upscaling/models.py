"""Upscaling models behind one fit/predict API: LightGBM trees, a Flax NNX MLP deep
ensemble and the hybrid (network -> VPRM parameters -> differentiable VPRM).

Every model answers::

    model = Model(config).fit(table, checkpoint_dir=None)   # table: tables.training_table
    pred = model.predict(table)        # Dataset on "sample": nee, gpp, reco, *_sd (umol m-2 s-1)
    maps = model.predict_dataset(ds)   # any (time, y, x) / (time, site) feature Dataset

``predict_dataset`` takes daily feature Datasets as the regional map engine gives them:
``air_temperature`` (degC), ``air_temperature_range`` (K, optional), ``ppfd_in``
(umol m-2 s-1), optional ``vpd`` (hPa), ``soil_water_relative`` (1), ``evi``, ``lswi``,
``fapar`` (1), ``latitude`` (degrees_north; variable or attribute), ``vprm_class`` (pyVPRM
class id; variable or attribute), optionally ``air_temperature_hourly`` /
``ppfd_in_hourly`` on a trailing ``hour`` axis (else a diurnal cycle is synthesised from
the daily values: sinusoidal temperature, clear-sky cos(zenith)-shaped PPFD). It stacks
every non-time dimension into rows, predicts in one vectorised call and returns
``nee``, ``gpp``, ``reco`` and ``nee_sd``, ``gpp_sd``, ``reco_sd`` on the input dims with
``units`` = umol m-2 s-1 (the sd is the predictive sd of the daily mean; 90 % interval
= mean +- 1.645 sd).

Models
------
* :class:`TreeModel` (FLUXCOM-X baseline; Nelson et al. 2024, BG 21, 5079; Jung et al.
  2020): gradient-boosted trees (LightGBM, Ke et al. 2017), one mean model (L2) per flux
  and two quantile models (5 %, 95 %) giving the 90 % interval; NEE predicted directly.
* :class:`MLPModel`: deep ensemble (Lakshminarayanan et al. 2017) of M MLPs with a member
  axis (one vectorised network), heteroscedastic Gaussian heads; GPP = s softplus(z1),
  Reco = s softplus(z2) >= 0, NEE = Reco - GPP.
* :class:`HybridModel` (differentiable parameter learning; Tsai et al. 2021, Nat. Commun.
  12, 5988; Reichstein et al. 2019): the ensemble network maps features (satellite
  indices, soil moisture, meteorology, land cover) to the VPRM parameters of each day
  (lam, PAR0, alpha, beta; starting at the pyVPRM table values), which
  :class:`process_models.vprm.VPRMModel` (smooth mode) runs at the 24 hourly temperatures
  and PPFDs; the daily means are the fluxes (Mahadevan et al. 2008 eq. 1 and 5):
  GPP = lam Tscale EVI PAR/(1 + PAR/PAR0), Reco = max(alpha max(T, Tlow) + beta, 0).
  Wscale and Pscale are neutral (LSWI is missing at most towers): water stress and
  phenology beyond the greenness input act through the learned lam. Trained end to end
  (Optax AdamW through VPRM) on NEE and, where partitioned, GPP and Reco.

Training of the networks goes through :func:`emulator.train.fit` (Orbax checkpoints
with exact resume, early stopping on held-out 30-day blocks).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import nnx

from process_models.units import DataValidationError

from .tables import CLASSES, FEATURES, _diurnal, add_derived_features

__all__ = ["site_bags", "oob_sd_factor", "weighted_quantile", "STATE_FEATURES", "TARGETS", "TreeConfig", "TreeModel", "NetConfig", "MLPModel", "HybridModel",
           "EnsembleMLP", "feature_matrix", "make_model"]

TARGETS = ("nee", "gpp", "reco")
STATE_FEATURES = ("air_temperature", "air_temperature_range", "ppfd_in", "vpd", "soil_water_relative",
                  "has_soil_water", "gsi", "greenness", "class_1", "class_2", "class_3", "class_7")
"""Features that describe the state of the ecosystem and weather only (no calendar, no
data-availability flags): the study's network input, so parameters respond to the
environment rather than to the date or to which sensor a tower happens to have."""
Z90 = 1.6448536269514722
"""Standard-normal 95 % quantile: the 90 % central interval is mean +- Z90 sd."""
FLUX_UNITS = "umol m-2 s-1"


def feature_matrix(table: xr.Dataset, features=FEATURES) -> np.ndarray:
    """(N, F) float64 matrix of ``features`` (default :data:`FEATURES`) from rows on ``sample``."""
    missing = [f for f in features if f not in table]
    if missing:
        raise DataValidationError(f"has no feature columns {missing}.", source="upscaling table",
                                  variable=missing[0], fix="build it with emulator.upscaling.tables or "
                                  "add_derived_features.")
    x = np.stack([np.asarray(table[f].values, float) for f in features], -1)
    if not np.all(np.isfinite(x)):
        bad = [f for i, f in enumerate(features) if not np.all(np.isfinite(x[:, i]))]
        raise DataValidationError("non-finite feature values.", source="upscaling table", variable=bad[0],
                                  fix="fill gaps in the drivers (process_models.io.fill_gaps) before predicting.")
    return x


def _prediction(sample, mean: dict, sd: dict) -> xr.Dataset:
    ds = xr.Dataset({k: ("sample", np.asarray(mean[k], float)) for k in TARGETS}, coords={"sample": sample})
    for k in TARGETS:
        ds[f"{k}_sd"] = ("sample", np.asarray(sd[k], float))
    for v in ds.data_vars:
        ds[v].attrs["units"] = FLUX_UNITS
    return ds


class _Base:
    """``predict_dataset`` on top of ``predict`` (rows on ``sample``)."""

    def predict_dataset(self, ds: xr.Dataset, chunk: int = 200_000) -> xr.Dataset:
        """Fluxes for a daily feature Dataset with dims (time, y, x) or (time, site) (any
        dims with ``time``); see the module docstring for the variables."""
        if "time" not in ds.dims:
            raise DataValidationError("has no 'time' dimension.", source="predict_dataset", variable="time",
                                      fix="pass daily features on (time, y, x) or (time, site).")
        ds = add_derived_features(ds)
        space = [d for d in ds["air_temperature"].dims if d != "time"]
        ref = ds["air_temperature"].transpose("time", *space)
        if "air_temperature_hourly" not in ds:
            import pandas as pd
            lat = ds["latitude"] if "latitude" in ds else ds.attrs["latitude"]
            flat = lambda v: v.transpose("time", *space).values.reshape(-1)
            days = np.repeat(ds["time"].values, int(np.prod([ds.sizes[d] for d in space], dtype=int)))
            th, ph = _diurnal_rows(pd.DatetimeIndex(days), flat(ref), flat(ds["air_temperature_range"]),
                                   flat(ds["ppfd_in"]), flat(xr.zeros_like(ref) + lat))
        else:
            th = ds["air_temperature_hourly"].transpose("time", *space, "hour").values.reshape(-1, 24)
            ph = ds["ppfd_in_hourly"].transpose("time", *space, "hour").values.reshape(-1, 24)
        n = th.shape[0]
        cols = {f: ds[f].transpose("time", *space).values.reshape(-1) for f in FEATURES}
        outs = []
        for a in range(0, n, chunk):
            sl = slice(a, min(a + chunk, n))
            rows = xr.Dataset({f: ("sample", np.asarray(c[sl], float)) for f, c in cols.items()})
            rows["air_temperature_hourly"] = (("sample", "hour"), th[sl])
            rows["ppfd_in_hourly"] = (("sample", "hour"), ph[sl])
            outs.append(self.predict(rows))
        p = xr.concat(outs, "sample") if len(outs) > 1 else outs[0]
        shape = (ds.sizes["time"],) + tuple(ds.sizes[d] for d in space)
        coords = {d: ds[d] for d in ("time", *space) if d in ds.coords}
        res = xr.Dataset({v: (("time", *space), p[v].values.reshape(shape), {"units": FLUX_UNITS})
                          for v in p.data_vars}, coords=coords)
        res.attrs["model"] = type(self).__name__
        return res


def _diurnal_rows(days, t, rng, ppfd, lat):
    from process_models.solar import solar_declination
    hours = np.arange(24) + 0.5
    dec = np.asarray(solar_declination(days.day_of_year.values[:, None]))
    phi = np.deg2rad(lat)[:, None]
    cz = np.clip(np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(np.pi * (hours - 12.0) / 12.0), 0, None)
    par = ppfd[:, None] * cz / np.maximum(cz.mean(1, keepdims=True), 1e-6)
    return t[:, None] + 0.5 * rng[:, None] * np.cos(np.pi * (hours - 15.0) / 10.0), par


# ------------------------------------------------------------------------------ trees
@dataclass(frozen=True)
class TreeConfig:
    """LightGBM settings (FLUXCOM-X-like: shallow-ish trees, shrinkage, subsampling)."""

    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    num_threads: int = 1
    features: tuple = FEATURES
    bags: int = 5
    """Mean models, each on a bootstrap of sites (site bagging; 1 = one model on all)."""
    site_keep: float = 0.7
    """Probability that a site is in a bag."""
    calibrate: bool = True
    """Scale the predictive sd by the out-of-bag (out-of-site) factor of :func:`oob_sd_factor`."""
    seed: int = 0


def weighted_quantile(values, weights, q: float) -> float:
    """The ``q`` quantile of ``values`` with non-negative ``weights`` (step CDF)."""
    v, w = np.asarray(values, float), np.asarray(weights, float)
    o = np.argsort(v)
    c = np.cumsum(w[o])
    return float(v[o][np.searchsorted(c, q * c[-1])])


def oob_sd_factor(y, mean_oob, sd, sid, has_oob, level: float = 0.9, bounds=(0.5, 20.0)) -> float:
    """Out-of-site calibration factor c of the predictive sd: the ``level`` quantile of
    |y - mean_oob| / sd over the training rows, each site weighted equally, divided by the
    normal quantile, so that mean +- Z90 c sd covers ``level`` of the out-of-bag residuals.
    ``mean_oob`` is the prediction of the members/bags that did not see the row's site
    (jackknife+-after-bootstrap idea, Kim, Xu & Barber 2020, NeurIPS 33; split-conformal
    scaling, Lei et al. 2018, JASA 113, 1094). 1.0 when fewer than 2 sites have
    out-of-bag rows. Unit 1."""
    ok = np.asarray(has_oob, bool) & np.isfinite(y) & np.isfinite(mean_oob) & (np.asarray(sd) > 0)
    if np.unique(np.asarray(sid)[ok]).size < 2:
        return 1.0
    sid = np.asarray(sid)[ok]
    _, inv, cnt = np.unique(sid, return_inverse=True, return_counts=True)
    r = np.abs(np.asarray(y)[ok] - np.asarray(mean_oob)[ok]) / np.asarray(sd)[ok]
    z = 0.5 * (1.0 + level)
    from scipy.stats import norm
    return float(np.clip(weighted_quantile(r, 1.0 / cnt[inv], level) / norm.ppf(z), *bounds))


def site_bags(sites, n_bags: int, keep: float, seed: int) -> np.ndarray:
    """(n_bags, n_sites) 0/1: site j is in bag i (Bernoulli ``keep``; every bag has at
    least min(2, n_sites) sites). ``n_bags = 1`` or ``keep >= 1``: all ones."""
    n = len(sites)
    if n_bags == 1 or keep >= 1.0:
        return np.ones((n_bags, n))
    rng = np.random.default_rng([seed, 29])
    out = np.zeros((n_bags, n))
    for i in range(n_bags):
        while out[i].sum() < min(2, n):
            out[i] = rng.random(n) < keep
    return out


class TreeModel(_Base):
    """Gradient-boosted trees (LightGBM): per flux ``bags`` weighted L2 mean models, each
    on a bootstrap of the training sites (their mean is the prediction, their spread the
    between-site epistemic part), and 5 %/95 % quantile models on all rows (aleatoric part):
    ``sd^2 = ((q95 - q05) / (2 Z90))^2 + var_bags``, times the out-of-bag calibration
    factor of :func:`oob_sd_factor` (``config.calibrate``; the bags that did not see a
    training site predict it, which is the out-of-site error the interval must cover)."""

    def __init__(self, config: TreeConfig = TreeConfig()):
        self.config = config
        self.models: dict = {}

    def _train(self, x, y, w, objective: str, alpha: float = 0.5):
        import lightgbm as lgb
        c = self.config
        params = {"objective": objective, "alpha": alpha, "learning_rate": c.learning_rate,
                  "num_leaves": c.num_leaves, "min_data_in_leaf": c.min_child_samples,
                  "bagging_fraction": c.subsample, "bagging_freq": 1,
                  "feature_fraction": c.colsample_bytree, "num_threads": c.num_threads,
                  "seed": c.seed, "verbosity": -1, "deterministic": True}
        return lgb.train(params, lgb.Dataset(x, y, weight=w), num_boost_round=c.n_estimators)

    def fit(self, table: xr.Dataset, checkpoint_dir=None) -> "TreeModel":
        x = feature_matrix(table, self.config.features)
        w = np.asarray(table["weight"].values, float)
        site = np.asarray(table["site"].values) if "site" in table.coords else np.zeros(x.shape[0])
        names, sid = np.unique(site, return_inverse=True)
        c = self.config
        bags = site_bags(names, c.bags, c.site_keep, c.seed)
        for k in TARGETS:
            y = np.asarray(table[k].values, float)
            ok = np.isfinite(y)
            if ok.sum() < 10:
                raise DataValidationError(f"has only {ok.sum()} rows with {k}.", source="TreeModel.fit",
                                          variable=k, fix="add towers with this flux to the table.")
            means, seen = [], []
            for b in bags:
                use = ok & (b[sid] > 0)
                fallback = use.sum() < 10    # this bag's sites lack the flux: use all sites
                use = ok if fallback else use
                means.append(self._train(x[use], y[use], w[use], "regression"))
                seen.append(np.ones(ok.size, bool) if fallback else b[sid] > 0)
            self.models[k] = {"mean": means, "factor": 1.0,
                              "q05": self._train(x[ok], y[ok], w[ok], "quantile", 0.05),
                              "q95": self._train(x[ok], y[ok], w[ok], "quantile", 0.95)}
            if c.calibrate:
                seen = np.stack(seen)                                   # (bags, N)
                mean, sd, bag = self._moments(k, x[ok])
                oob = ~seen[:, ok]
                m_oob = np.sum(bag * oob, 0) / np.maximum(oob.sum(0), 1)
                self.models[k]["factor"] = oob_sd_factor(y[ok], m_oob, sd, sid[ok], oob.any(0))
        return self

    def _moments(self, k, x):
        m = self.models[k]
        bag = np.stack([b.predict(x) for b in m["mean"]])
        lo, hi = m["q05"].predict(x), m["q95"].predict(x)
        sd = np.sqrt((np.maximum(hi - lo, 1e-3) / (2 * Z90)) ** 2 + bag.var(0))
        return bag.mean(0), sd, bag

    def predict(self, table: xr.Dataset) -> xr.Dataset:
        x = feature_matrix(table, self.config.features)
        mean, sd = {}, {}
        for k in TARGETS:
            mean[k], s, _ = self._moments(k, x)
            sd[k] = s * self.models[k].get("factor", 1.0)
        return _prediction(np.arange(x.shape[0]), mean, sd)


# --------------------------------------------------------------------------- networks
class EnsembleMLP(nnx.Module):
    """M independent MLPs (SiLU) with the member axis leading in every weight:
    ``x (N, F) -> (M, N, n_out)``; one einsum per layer, no loop over members. The last
    layer starts at 0.01x variance so the heads start at their neutral values."""

    def __init__(self, members: int, n_in: int, hidden, n_out: int, *, rngs: nnx.Rngs,
                 dtype=jnp.float32):
        sizes = (n_in,) + tuple(hidden) + (n_out,)
        ws, bs = [], []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            scale = (0.01 if i == len(sizes) - 2 else 1.0) / a
            ws.append(nnx.Param(jnp.sqrt(scale).astype(dtype) * jax.random.normal(rngs.params(), (members, a, b), dtype)))
            bs.append(nnx.Param(jnp.zeros((members, 1, b), dtype)))
        self.w, self.b = nnx.List(ws), nnx.List(bs)

    def __call__(self, x):
        h = jnp.broadcast_to(x, (self.w[0].shape[0],) + x.shape)
        for i in range(len(self.w)):
            h = jnp.einsum("mnf,mfg->mng", h, self.w[i][...]) + self.b[i][...]
            if i < len(self.w) - 1:
                h = jax.nn.silu(h)
        return h


@dataclass(frozen=True)
class NetConfig:
    """Network and training settings of :class:`MLPModel` / :class:`HybridModel`."""

    members: int = 5
    hidden: tuple = (64, 64)
    steps: int = 1500
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    eval_every: int = 100
    patience: int = 6
    checkpoint_every: int = 250
    validation_blocks: int = 10
    """One 30-day block in ``validation_blocks`` per site is held out for early stopping."""
    sd_floor: float = 0.05
    """Minimum predicted sd, umol m-2 s-1."""
    features: tuple = FEATURES
    site_keep: float = 0.7
    """Each member trains on the sites of its own Bernoulli(site_keep) draw (site bagging:
    members disagree where the sites disagree, which widens the out-of-site interval);
    1.0 = every member on every site (plain deep ensemble)."""
    calibrate: bool = False
    """Scale the predictive sd by the out-of-bag factor of :func:`oob_sd_factor` (the
    members that did not see a training site predict it); needs ``site_keep < 1``. Off by
    default: with 8 members a site is out of bag for ~2 of them, whose mean errs more and
    whose mixture spread is narrower than the full ensemble's, so the factor overshoots
    (measured in the 7-tower leave-one-site-out: coverage 0.89/0.91 -> 0.95/0.98 for
    MLP/hybrid NEE, 0.98-1.0 for GPP); the site-bagged mixture is already near 0.9."""
    seed: int = 0
    progress: bool = False


def _softplus_inv(y):
    return float(np.log(np.expm1(y)))


class _NetModel(_Base):
    n_heads = 5

    def __init__(self, config: NetConfig = NetConfig()):
        self.config = config
        self.net = None

    # -- data ---------------------------------------------------------------------
    def _arrays(self, table: xr.Dataset) -> dict:
        # standardised with the training moments, clipped to +-5 sd: a feature that was
        # constant in training (sd < 1e-3, e.g. a flag) is centred only, so an unseen
        # value cannot blow up an extrapolating network
        x = np.clip((feature_matrix(table, self.config.features) - self.mu) / self.sigma, -5.0, 5.0)
        g = np.asarray(table["greenness"].values, float)
        cls = np.stack([np.asarray(table[f"class_{c}"].values, float) for c in CLASSES], -1)
        out = {"x": x, "t_h": np.asarray(table["air_temperature_hourly"].values, float),
               "par_h": np.asarray(table["ppfd_in_hourly"].values, float), "green": g, "cls": cls}
        return {k: v.astype(np.float32) for k, v in out.items()}

    def _targets(self, table):
        y = np.stack([np.asarray(table[k].values, float) for k in TARGETS], -1)
        mask = np.isfinite(y)
        w = np.asarray(table["weight"].values, float)[:, None] * mask
        return {"y": np.nan_to_num(y).astype(np.float32), "w": w.astype(np.float32)}

    # -- model ----------------------------------------------------------------------
    def _heads(self, net, a):
        """(M, N) gpp, reco, and (M, N, 3) sd of (nee, gpp, reco)."""
        raise NotImplementedError

    def _loss(self, net, b):
        gpp, reco, sd = self._heads(net, b)
        mean = jnp.stack([reco - gpp, gpp, reco], -1)                  # (M, N, 3)
        z = (b["y"][None] - mean) / sd
        nll = 0.5 * z ** 2 + jnp.log(sd)
        w = b["w"][None]
        if "sid" in b:                                                  # site bagging
            w = w * jnp.asarray(self.keep, w.dtype)[:, b["sid"]][..., None]
        return jnp.sum(w * nll) / jnp.maximum(jnp.sum(w), 1.0) * 3.0

    def fit(self, table: xr.Dataset, checkpoint_dir=None, metrics_path=None, stop_after=None):
        """Train the ensemble on the rows of ``table`` (:func:`emulator.train.fit`;
        resumes from the latest checkpoint in ``checkpoint_dir``; ``stop_after``: stop
        after that step as if killed, for tests)."""
        from emulator.train import TrainConfig, fit

        c = self.config
        x = feature_matrix(table, self.config.features)
        sd = x.std(0)
        self.mu, self.sigma = x.mean(0), np.where(sd < 1e-3, 1.0, sd)
        self.scale = {k: float(np.nanstd(table[k].values)) if np.isfinite(table[k].values).any() else 1.0
                      for k in TARGETS}
        data = {**self._arrays(table), **self._targets(table)}
        if not np.any(data["w"] > 0):
            raise DataValidationError("no row has a flux target.", source=f"{type(self).__name__}.fit",
                                      variable="nee", fix="pass a table with nee/gpp/reco values.")
        # hold out one 30-day block in `validation_blocks` per site (early stopping)
        sites = np.asarray(table["site"].values) if "site" in table.coords else np.zeros(x.shape[0])
        names, sid = np.unique(sites, return_inverse=True)
        self.keep = site_bags(names, c.members, c.site_keep, c.seed).astype(np.float32)
        data["sid"] = sid.astype(np.int32)
        t = np.asarray(table["time"].values, "datetime64[D]").astype(np.int64)
        block = t // 30
        rng = np.random.default_rng([c.seed, 17])
        val = np.zeros(x.shape[0], bool)
        for s in np.unique(sites):
            blocks = np.unique(block[sites == s])
            if blocks.size >= 3:
                pick = rng.choice(blocks, max(1, blocks.size // c.validation_blocks), replace=False)
                val |= (sites == s) & np.isin(block, pick)
        train_idx = np.flatnonzero(~val & (data["w"].sum(1) > 0))
        val_idx = np.flatnonzero(val & (data["w"].sum(1) > 0))
        if val_idx.size == 0:
            val_idx = train_idx
        net = self._init_net(x.shape[1])
        seed = c.seed

        def batch_fn(step):
            idx = train_idx[np.random.default_rng([seed, step]).integers(0, train_idx.size, c.batch_size)]
            return {k: v[idx] for k, v in data.items()}

        val_batch = {k: v[val_idx] for k, v in data.items()}
        cfg = TrainConfig(steps=c.steps, batch_size=c.batch_size, learning_rate=c.learning_rate,
                          warmup_steps=min(100, c.steps // 10), weight_decay=c.weight_decay,
                          eval_every=c.eval_every, patience=c.patience, checkpoint_every=c.checkpoint_every,
                          seed=c.seed, progress=c.progress)
        res = fit(net, self._loss, batch_fn, val_batch, cfg, checkpoint_dir=checkpoint_dir,
                  metrics_path=metrics_path, stop_after=stop_after)
        self.net, self.train_result = res.model, res
        self.sd_factor = {k: 1.0 for k in TARGETS}
        if c.calibrate and self.keep.min() < 1:
            self.sd_factor = self._oob_factors(table, data["sid"])
        return self

    def _oob_factors(self, table, sid) -> dict:
        """Per flux :func:`oob_sd_factor` of the mixture of the members that did not train
        on each row's site."""
        a = {k: jnp.asarray(v) for k, v in self._arrays(table).items()}
        gpp, reco, sd = (np.asarray(v, float) for v in self._jit_heads(a))
        oob = self.keep[:, sid] == 0                                        # (M, N)
        n = np.maximum(oob.sum(0), 1)
        out = {}
        for i, (k, mk) in enumerate(zip(TARGETS, (reco - gpp, gpp, reco))):
            mu = np.sum(mk * oob, 0) / n
            var = np.sum((sd[..., i] ** 2 + mk ** 2) * oob, 0) / n - mu ** 2
            out[k] = oob_sd_factor(np.asarray(table[k].values, float), mu, np.sqrt(np.maximum(var, 1e-12)), sid,
                                   oob.any(0))
        return out

    def _init_net(self, n_in):
        c = self.config
        return EnsembleMLP(c.members, n_in, c.hidden, self.n_heads, rngs=nnx.Rngs(c.seed))

    def predict(self, table: xr.Dataset) -> xr.Dataset:
        if self.net is None:
            raise RuntimeError(f"{type(self).__name__}.predict before fit.")
        a = {k: jnp.asarray(v) for k, v in self._arrays(table).items()}
        gpp, reco, sd = self._jit_heads(a)
        gpp, reco, sd = (np.asarray(v, float) for v in (gpp, reco, sd))
        mean_m = {"nee": reco - gpp, "gpp": gpp, "reco": reco}
        mean, out_sd = {}, {}
        for i, k in enumerate(TARGETS):                     # deep-ensemble mixture moments
            mu = mean_m[k].mean(0)
            var = (sd[..., i] ** 2 + mean_m[k] ** 2).mean(0) - mu ** 2
            mean[k] = mu
            out_sd[k] = np.sqrt(np.maximum(var, 0.0)) * getattr(self, "sd_factor", {}).get(k, 1.0)
        return _prediction(np.arange(gpp.shape[1]), mean, out_sd)

    def _jit_heads(self, a):
        graphdef, state = nnx.split(self.net)
        f = jax.jit(lambda s, b: self._heads(nnx.merge(graphdef, s), b))
        return f(state, a)

    def _sd(self, z):
        floor = self.config.sd_floor
        s = jnp.asarray([self.scale[k] for k in TARGETS], jnp.float32)
        return floor + s * jax.nn.softplus(z + _softplus_inv(0.5))


class MLPModel(_NetModel):
    """Deep-ensemble MLP: heads (gpp, reco, 3 sd); GPP, Reco >= 0, NEE = Reco - GPP."""

    def _heads(self, net, a):
        z = net(a["x"])
        g0, r0 = self.scale["gpp"], self.scale["reco"]
        gpp = g0 * jax.nn.softplus(z[..., 0] + _softplus_inv(1.0))
        reco = r0 * jax.nn.softplus(z[..., 1] + _softplus_inv(1.0))
        return gpp, reco, self._sd(z[..., 2:5])


class HybridModel(_NetModel):
    """Network -> daily VPRM parameters (lam, PAR0, alpha, beta per row) -> hourly VPRM
    (:class:`process_models.vprm.VPRMModel`, smooth mode) -> daily means."""

    n_heads = 7

    def __init__(self, config: NetConfig = NetConfig(), table: str = "pyvprm_modis"):
        super().__init__(config)
        from process_models.vprm import VPRMModel, VPRMOptions
        self.vprm = VPRMModel(VPRMOptions(mode="smooth"), table=table, classes=CLASSES)
        self.defaults = self.vprm.default_params(dtype=jnp.float32)

    def vprm_parameters(self, net, a):
        """VPRMParams with per-row lam, par0, alpha, beta of shape (M, N, 1, C) (the
        network's value replicated over the class axis; the row's class fraction picks
        its column) and the table's temperature constants."""
        out = net(a["x"])                                                 # (M, N, 7)
        z = lambda i: out[..., i][..., None, None]                        # (M, N, 1, 1)
        p = self.defaults
        bound = lambda u: 3.0 * jnp.tanh(u / 3.0)
        lam = p.lam * jnp.exp(bound(z(0)))
        par0 = p.par0 * jnp.exp(bound(z(1)))
        alpha = p.alpha * jnp.exp(bound(z(2)))
        beta = p.beta + self.scale["reco"] * z(3)
        return p.replace(lam=lam, par0=par0, alpha=alpha, beta=beta), out[..., 4:7]

    def _heads(self, net, a):
        from process_models.vprm import VPRMForcing
        params, zsd = self.vprm_parameters(net, a)
        n = a["t_h"].shape[0]
        shape = (self.config.members,) + a["t_h"].shape                   # (M, N, 24)
        zero = jnp.zeros((n, 1), jnp.float32)
        forcing = VPRMForcing(temperature=jnp.broadcast_to(a["t_h"], shape), par=a["par_h"], evi=a["green"][:, None],
                              lswi=zero, evi_threshold=zero - 1.0, lswi_min=zero - 1.0, lswi_max=zero,
                              class_fractions=a["cls"][:, None, :])
        out = self.vprm.simulate(params, forcing)                          # (M, N, 24)
        return out.gpp.mean(-1), out.reco.mean(-1), self._sd(zsd)


def make_model(name: str, *, tree: TreeConfig = TreeConfig(), net: NetConfig = NetConfig()):
    """``"trees"``, ``"mlp"`` or ``"hybrid"``."""
    if name == "trees":
        return TreeModel(tree)
    if name == "mlp":
        return MLPModel(net)
    if name == "hybrid":
        return HybridModel(net)
    raise ValueError(f"unknown model {name!r}; choose trees, mlp or hybrid.")
