"""Gradient checks for any :class:`~hmmtie.neural.models.TiedModel`.

Two checks, used by the test suite for every layer and model:

- :func:`finite_difference_error` -- central differences of the loss in
  every free parameter against the hand-written tied gradient;
- :func:`tied_vs_untied_error` -- the tied gradient against ``T.T @ g``,
  where ``g`` is the untied (per-cell) gradient and ``T`` the dense 0/1 tie
  matrix of the whole model.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["finite_difference_error", "tied_vs_untied_error", "numerical_grad"]


def numerical_grad(f, theta: NDArray, h: float = 1e-6) -> NDArray[np.float64]:
    """Central-difference gradient of a scalar function ``f`` at ``theta``."""
    theta = np.asarray(theta, dtype=float)
    g = np.zeros_like(theta)
    for i in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h
        tm[i] -= h
        g[i] = (f(tp) - f(tm)) / (2 * h)
    return g


def finite_difference_error(model, *data, theta: NDArray | None = None,
                            h: float = 1e-6) -> float:
    """Relative error ``|g - g_fd| / max(|g|, |g_fd|)`` of the tied gradient."""
    theta = model.theta_ if theta is None else theta
    _, g = model.loss_grad(theta, *data)
    g_fd = numerical_grad(lambda t: model.loss(t, *data), theta, h)
    scale = max(np.linalg.norm(g), np.linalg.norm(g_fd), 1e-300)
    return float(np.linalg.norm(g - g_fd) / scale)


def tied_vs_untied_error(model, *data, theta: NDArray | None = None) -> float:
    """Max abs difference between the tied gradient and ``T.T @ untied``, relative."""
    theta = model.theta_ if theta is None else theta
    _, cells = model.loss_cells(theta, *data)
    g_tied = model.registry.reduce(cells)
    T = model.registry.matrix()
    g_ref = T.T @ model.registry.flat_grad(cells)
    scale = max(np.abs(g_ref).max(initial=0.0), 1e-300)
    return float(np.abs(g_tied - g_ref).max(initial=0.0) / scale)
