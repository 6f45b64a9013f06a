"""Analytic solutions of the 2-D column transport equation used as references.

Steady point source in a uniform wind ``u`` along x with isotropic eddy diffusivity ``K``
and first-order loss ``1/tau`` (a continuous point source in an infinite plane)::

    c(x, y) = Q / (2 pi K) exp(u x / (2K)) K_0( r sqrt(u^2 / (4 K^2) + 1 / (K tau)) )   (1)

with ``r = sqrt(x^2 + y^2)`` and the modified Bessel function ``K_0`` (Carslaw & Jaeger
1959, *Conduction of Heat in Solids*, sec. 10.4; Wilson 2010, *Concentration Fluctuations
and Averaging Time in Vapor Clouds*, eq. for the 2-D moving source). For ``u x >> K`` it
tends to the slender (Gaussian) plume::

    c(x, y) = Q / (u sqrt(4 pi K x / u)) exp(-y^2 u / (4 K x)) exp(-x / (u tau))     (2)

whose cross-wind integral, the line density, is ``Q/u exp(-x/(u tau))`` (the basis of
the cross-sectional flux method). Units: ``Q`` kg s-1, ``c`` kg m-2.
"""
from __future__ import annotations

import numpy as np
from scipy.special import k0e

__all__ = ["point_source_steady", "gaussian_plume", "line_density"]


def point_source_steady(x, y, rate, wind_speed, diffusivity, lifetime=np.inf):
    """Eq. (1): exact steady column (kg m-2) at ``(x, y)`` (m, source at the origin)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    r = np.hypot(x, y)
    kappa = np.sqrt(wind_speed**2 / (4 * diffusivity**2) + 1.0 / (diffusivity * lifetime))
    # exp(a) K0(z) = exp(a - z) k0e(z): no overflow far downwind
    z = kappa * r
    return rate / (2 * np.pi * diffusivity) * np.exp(wind_speed * x / (2 * diffusivity) - z) * k0e(z)


def gaussian_plume(x, y, rate, wind_speed, diffusivity, lifetime=np.inf):
    """Eq. (2): slender-plume column (kg m-2) for ``x > 0``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    var = 2 * diffusivity * x / wind_speed
    return (rate / (wind_speed * np.sqrt(2 * np.pi * var)) * np.exp(-y**2 / (2 * var))
            * np.exp(-x / (wind_speed * lifetime)))


def line_density(x, rate, wind_speed, lifetime=np.inf):
    """Cross-wind integral of eq. (2): ``Q/u exp(-x/(u tau))`` (kg m-1)."""
    return rate / wind_speed * np.exp(-np.asarray(x, float) / (wind_speed * lifetime))
