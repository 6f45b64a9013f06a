"""Reverse-mode checkpointing of the coupled model (process_models.coupled.model.simulate):
the per-step ``jax.checkpoint`` (the default) gives forward outputs bit-identical to the
former default (one ``jax.checkpoint`` per daily chunk: the same scan of days); the three
schemes (per step, daily chunks, plain scan) give the same gradient (float64, 1e-10
relative; slow), and the default gradient agrees with central finite differences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from process_models.coupled import set_parameters, simulate

from ._shared import enf_params, hourly_year

SCHEMES = (None, 24, 0)        # per step (default), one-day chunks, plain scan


def _days(n=3):
    """n days of hourly CH-Dav summer forcing plus a 5-step remainder (chunks do not divide)."""
    return jax.tree_util.tree_map(lambda x: x[4000:4000 + 24 * n + 5], hourly_year())


def _loss(params, forcing, scheme):
    out = simulate(params, forcing, checkpoint_every=scheme)
    return jnp.mean(out.nee) + jnp.sum(out.et) + 1e-3 * jnp.sum(out.soil_water_content[-1])


def test_forward_bit_identical_to_former_default():
    f, p = _days(), enf_params()
    new, old = (jax.tree_util.tree_leaves(simulate(p, f, checkpoint_every=s, return_state=True))
                for s in SCHEMES[:2])
    for a, b in zip(new, old):
        assert np.array_equal(np.asarray(a), np.asarray(b))          # bit for bit


_grad = jax.jit(jax.grad(_loss), static_argnums=2)
_loss_jit = jax.jit(lambda p, f: _loss(p, f, None))


@pytest.mark.slow
def test_gradient_equal_across_schemes():
    """Three reverse-mode compilations (~1-2 min on 2 loaded cores): marked slow."""
    f, p = _days(), enf_params()
    grads = [_grad(p, f, s) for s in SCHEMES]
    ref = jax.tree_util.tree_leaves_with_path(grads[0])
    scale = max(float(jnp.max(jnp.abs(g))) for _, g in ref)
    for g in grads[1:]:
        for (k, a), b in zip(ref, jax.tree_util.tree_leaves(g)):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-10,
                                       atol=1e-10 * scale, err_msg=jax.tree_util.keystr(k))
    assert float(jnp.abs(grads[0].soil.b)) > 0 and float(jnp.abs(grads[0].leaf.vcmax25)) > 0


@pytest.mark.parametrize("name,step", [("leaf.vcmax25", 1e-4), ("soil.b", 1e-5),
                                       ("carbon.tau_litter", 1e-4)])
def test_gradient_matches_finite_differences(name, step):
    """Central differences with a relative step ``step`` (truncation error O(step^2),
    round-off O(1e-16 / step)): agreement to 1e-6 relative."""
    from process_models.coupled import get_parameter
    f, p = _days(), enf_params()
    g = _grad(p, f, None)
    v = float(get_parameter(p, name))
    h = step * abs(v)
    lp = float(_loss_jit(set_parameters(p, {name: v + h}), f))
    lm = float(_loss_jit(set_parameters(p, {name: v - h}), f))
    fd = (lp - lm) / (2 * h)
    ad = float(get_parameter(g, name))
    assert abs(fd) > 0
    np.testing.assert_allclose(ad, fd, rtol=1e-6)
