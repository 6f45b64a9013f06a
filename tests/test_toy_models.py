"""Toy models: equilibria, RK4 fourth-order convergence, L63 phase-space contraction,
L96 energy budget, float32, vmap over members."""
import jax
import jax.numpy as jnp
import numpy as np

from assimilation.toy_models import lorenz63, lorenz96


def test_equilibria_have_zero_tendency():
    for p in np.asarray(lorenz63.fixed_points()):
        np.testing.assert_allclose(lorenz63.tendency(jnp.asarray(p)), 0.0, atol=1e-12)
    np.testing.assert_allclose(lorenz96.tendency(jnp.full(40, 8.0)), 0.0, atol=1e-12)


def test_rk4_is_fourth_order():
    """Error at t = 0.5 vs a dt = 1e-4 reference, dt halved: ratio ~ 16 (order 4 +- 0.3)."""
    x0 = jnp.asarray(lorenz63.X0)
    ref = lorenz63.integrate(x0, 5000, 1e-4)
    errs = [float(jnp.linalg.norm(lorenz63.integrate(x0, int(0.5 / dt), dt) - ref))
            for dt in (0.01, 0.005)]
    order = np.log2(errs[0] / errs[1])
    assert 3.7 < order < 4.3, order


def test_lorenz63_divergence_is_constant():
    """Trace of the Jacobian = -(sigma + 1 + beta) everywhere (volume contraction)."""
    for x in (lorenz63.X0, (3.0, -2.0, 10.0)):
        J = jax.jacfwd(lorenz63.tendency)(jnp.asarray(x))
        np.testing.assert_allclose(jnp.trace(J), -(10.0 + 1.0 + 8.0 / 3.0), rtol=1e-12)


def test_lorenz96_energy_budget():
    """d/dt (1/2 |x|^2) = -|x|^2 + F sum(x): advection conserves energy."""
    x = jax.random.normal(jax.random.key(0), (40,)) * 3.0
    np.testing.assert_allclose(x @ lorenz96.tendency(x), -(x @ x) + 8.0 * x.sum(), rtol=1e-12)


def test_attractor_climatology_and_float32():
    """L96 F = 8 climatological mean ~ 2.3 and std ~ 3.6 (Lorenz & Emanuel 1998);
    float32 trajectories stay finite; vmap over members equals the loop-free batch."""
    x = lorenz96.integrate(lorenz96.initial_state(40, dtype=jnp.float32), 400)
    traj = lorenz96.integrate(x, 2000, trajectory=True)
    assert traj.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(traj)))
    assert 2.0 < float(traj.mean()) < 2.6 and 3.3 < float(traj.std()) < 3.9
    E = jnp.stack([x, x + 0.1])
    np.testing.assert_allclose(jax.vmap(lorenz96.step)(E), lorenz96.step(E), rtol=1e-6)
