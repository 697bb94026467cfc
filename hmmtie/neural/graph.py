"""Sharing across scales: multi-hop graph propagation with one shared transform.

``Z = sum_{k=0}^{K} gamma_k A_hat^k f_theta(X)`` with ``f_theta(X) = X W + b``
(the GPR-GNN form, Chien et al. 2021): every hop reuses the same transform,
and each hop has one learned scalar ``gamma_k``.  Fixing the ``gamma`` tie
map to FIXED cells holding :func:`appnp_coefficients` gives APPNP
propagation (Klicpera et al. 2019) exactly.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..tying import FIXED
from .models import TiedModel, mse
from .layers import check_size
from .params import Registry

__all__ = ["GPRGNN", "appnp_coefficients", "appnp_propagate", "normalized_adjacency"]


def normalized_adjacency(A: NDArray) -> NDArray[np.float64]:
    """``D^{-1/2} (A + I) D^{-1/2}`` of a symmetric adjacency matrix (n, n)."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"normalized_adjacency: A must be square, got {A.shape}")
    if not np.all(np.isfinite(A)) or np.any(A < 0) or not np.allclose(A, A.T):
        raise ValueError("normalized_adjacency: A must be a symmetric adjacency matrix of finite weights >= 0")
    At = A + np.eye(len(A))
    d = 1 / np.sqrt(At.sum(1))
    return At * d[:, None] * d[None, :]


def appnp_coefficients(alpha: float, n_hops: int) -> NDArray[np.float64]:
    """Hop weights of ``n_hops`` APPNP steps: ``alpha (1-alpha)^k`` for k < K, ``(1-alpha)^K``."""
    if not 0 < alpha <= 1:
        raise ValueError(f"appnp_coefficients: alpha must be in (0, 1], got {alpha}")
    n_hops = check_size("appnp_coefficients", "n_hops", n_hops, low=0)
    g = alpha * (1 - alpha) ** np.arange(n_hops + 1)
    g[n_hops] = (1 - alpha) ** n_hops
    return g


def appnp_propagate(A_hat: NDArray, H: NDArray, alpha: float, n_hops: int) -> NDArray:
    """Reference APPNP iteration ``Z <- (1-alpha) A_hat Z + alpha H`` from ``Z = H``."""
    Z = H.copy()
    for _ in range(n_hops):
        Z = (1 - alpha) * A_hat @ Z + alpha * H
    return Z


class GPRGNN(TiedModel):
    """Generalized PageRank GNN: shared linear transform, learned hop weights.

    Parameters
    ----------
    A_hat : array of shape (n_nodes, n_nodes)
        Propagation matrix (e.g. :func:`normalized_adjacency`).
    n_features, n_outputs, n_hops : int
    gamma : array of shape (n_hops + 1,), optional
        Fixed hop weights (FIXED cells); learned atoms if omitted
        (initialised to the APPNP weights with ``alpha = 0.1``).
    random_state : int
    """

    full_batch = True  # one graph: fit uses every node in every step

    def __init__(self, A_hat: NDArray, n_features: int, n_outputs: int, n_hops: int = 3,
                 gamma: NDArray | None = None, random_state: int = 0) -> None:
        A_hat = np.asarray(A_hat, dtype=float)
        if A_hat.ndim != 2 or A_hat.shape[0] != A_hat.shape[1]:
            raise ValueError(f"GPRGNN: A_hat must be square, got {A_hat.shape}")
        if not np.all(np.isfinite(A_hat)):
            raise ValueError("GPRGNN: A_hat holds NaN or infinite values")
        check_size("GPRGNN", "n_features", n_features)
        check_size("GPRGNN", "n_outputs", n_outputs)
        check_size("GPRGNN", "n_hops", n_hops, low=0)
        self.A_hat, self.n_features, self.n_outputs, self.n_hops = (
            A_hat, int(n_features), int(n_outputs), int(n_hops))
        F, O, K = self.n_features, self.n_outputs, self.n_hops
        rng = np.random.default_rng(random_state)
        self.registry = reg = Registry()
        reg.new("W", np.arange(F * O).reshape(F, O), F * O, rng.normal(0, 1 / np.sqrt(F), F * O))
        reg.new("b", np.arange(O), O)
        if gamma is None:
            reg.new("gamma", np.arange(K + 1), K + 1, appnp_coefficients(0.1, K))
        else:
            gamma = np.asarray(gamma, dtype=float)
            if gamma.shape != (K + 1,):
                raise ValueError(f"GPRGNN: gamma must have shape ({K + 1},), got {gamma.shape}")
            reg.new("gamma", np.full(K + 1, FIXED), 0, fixed=gamma)
        self.theta_ = reg.init_theta()
        self._config = {"A_hat": A_hat.tolist(), "n_features": F, "n_outputs": O,
                        "n_hops": K, "gamma": None if gamma is None else gamma.tolist(),
                        "random_state": random_state}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _hops(self, P, X):
        X = np.asarray(X, dtype=float)
        if X.shape != (self.A_hat.shape[0], self.n_features):
            raise ValueError(f"GPRGNN: expected features of shape ({self.A_hat.shape[0]}, "
                             f"{self.n_features}), got {X.shape}")
        H = X @ P["W"] + P["b"]
        hops = [H]
        for _ in range(self.n_hops):
            hops.append(self.A_hat @ hops[-1])
        return X, hops

    def transform(self, X: NDArray, theta: NDArray | None = None) -> NDArray:
        """Node outputs ``Z``, shape (n_nodes, n_outputs)."""
        P = self.registry.expand(self._theta(theta))
        _, hops = self._hops(P, X)
        return sum(g * Hk for g, Hk in zip(P["gamma"], hops))

    def _loss_cells(self, P, X, Y):
        X, hops = self._hops(P, X)
        Z = sum(g * Hk for g, Hk in zip(P["gamma"], hops))
        loss, dZ = mse(Z, np.asarray(Y, dtype=float))
        dgamma = np.array([np.sum(dZ * Hk) for Hk in hops])
        # dL/dH = sum_k gamma_k (A^T)^k dZ, accumulated Horner-style
        dH = P["gamma"][self.n_hops] * dZ
        for k in range(self.n_hops - 1, -1, -1):
            dH = self.A_hat.T @ dH + P["gamma"][k] * dZ
        return loss, {"W": X.T @ dH, "b": dH.sum(0), "gamma": dgamma}
