"""Shared linear-Gaussian helpers for the ensemble tests (exact Kalman filter/RTS)."""
import numpy as np


def kf_update(m, P, H, R, y):
    """Exact Kalman analysis."""
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    return m + K @ (y - H @ m), (np.eye(len(m)) - K @ H) @ P


def exact_moments_ensemble(rng, mean, cov, n):
    """Ensemble (n, d) whose sample mean and covariance (ddof 1) equal mean, cov exactly."""
    d = len(mean)
    Z = rng.standard_normal((n, d))
    Z -= Z.mean(0)
    C = Z.T @ Z / (n - 1)
    Z = Z @ np.linalg.inv(np.linalg.cholesky(C)).T          # sample cov = I
    return mean + Z @ np.linalg.cholesky(cov).T


def random_spd(rng, d, scale=1.0):
    M = rng.standard_normal((d, d))
    return scale * (M @ M.T / d + np.eye(d) * 0.5)


def kalman_filter(m0, P0, M, Q, H, R, ys):
    """Forecast-then-analysis KF; returns filtered means/covs, predicted means/covs, loglik."""
    m, P = m0, P0
    out = dict(mf=[], Pf=[], ma=[], Pa=[], ll=[])
    for y in ys:
        m, P = M @ m, M @ P @ M.T + Q
        out["mf"].append(m)
        out["Pf"].append(P)
        S = H @ P @ H.T + R
        r = y - H @ m
        out["ll"].append(-0.5 * (len(y) * np.log(2 * np.pi) + np.linalg.slogdet(S)[1]
                                 + r @ np.linalg.solve(S, r)))
        m, P = kf_update(m, P, H, R, y)
        out["ma"].append(m)
        out["Pa"].append(P)
    return {k: np.array(v) for k, v in out.items()}


def rts_smoother(out, M):
    ms, Ps = [out["ma"][-1]], [out["Pa"][-1]]
    for k in range(len(out["ma"]) - 2, -1, -1):
        J = out["Pa"][k] @ M.T @ np.linalg.inv(out["Pf"][k + 1])
        ms.insert(0, out["ma"][k] + J @ (ms[0] - out["mf"][k + 1]))
        Ps.insert(0, out["Pa"][k] + J @ (Ps[0] - out["Pf"][k + 1]) @ J.T)
    return np.array(ms), np.array(Ps)
