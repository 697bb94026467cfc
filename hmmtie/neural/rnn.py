"""Elman RNN with weights shared across time, hard or soft.

The full weight arrays are per step -- ``Wx`` (T, D, H), ``Wh`` (T, H, H),
``b`` (T, H) -- and the tie map decides the sharing:

- ``tying="hard"``: every step holds the same atoms (the ordinary RNN); the
  tied gradient is the sum over steps of the per-step gradients, computed by
  :func:`hmmtie.tying.reduce` like any other tie.
- ``tying="none"``: each step has its own atoms (a time-varying RNN).  With
  ``lam > 0`` the loss gains ``lam * sum_t |theta_t - theta_{t+1}|^2`` over
  ``Wx``, ``Wh``, ``b`` (soft tying); as ``lam`` grows the steps merge into
  the hard-tied model.

The output head reads the last hidden state: ``out = h_T V + c``; the loss
is half the mean squared error.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from .models import TiedModel, mse
from .params import Registry

__all__ = ["ElmanRNN", "soft_tying_path", "step_spread"]

_STEP_ARRAYS = ("Wx", "Wh", "b")


class ElmanRNN(TiedModel):
    """Elman RNN ``h_t = tanh(x_t Wx_t + h_{t-1} Wh_t + b_t)``, regression head on ``h_T``.

    Parameters
    ----------
    n_steps, n_inputs, n_hidden, n_outputs : int
    tying : {"hard", "none"}
    lam : float
        Soft-tying strength (>= 0); only meaningful with ``tying="none"``.
    random_state : int
    """

    def __init__(self, n_steps: int, n_inputs: int, n_hidden: int, n_outputs: int = 1,
                 tying: str = "hard", lam: float = 0.0, random_state: int = 0) -> None:
        if tying not in ("hard", "none"):
            raise ValueError(f"ElmanRNN: tying must be 'hard' or 'none', got {tying!r}")
        if not lam >= 0:
            raise ValueError(f"ElmanRNN: lam must be >= 0, got {lam}")
        self.n_steps, self.n_inputs, self.n_hidden, self.n_outputs = (
            int(n_steps), int(n_inputs), int(n_hidden), int(n_outputs))
        self.tying, self.lam = tying, float(lam)
        T, D, H, O = self.n_steps, self.n_inputs, self.n_hidden, self.n_outputs
        rng = np.random.default_rng(random_state)
        self.registry = reg = Registry()
        shapes = {"Wx": (D, H), "Wh": (H, H), "b": (H,)}
        scale = {"Wx": 1 / np.sqrt(D), "Wh": 0.5 / np.sqrt(H), "b": 0.1}
        for name, shp in shapes.items():
            n = int(np.prod(shp))
            step = np.arange(n).reshape(shp)
            init_one = rng.normal(0, scale[name], n)
            if tying == "hard":
                reg.new(name, np.broadcast_to(step, (T,) + shp).copy(), n, init_one)
            else:
                tie = np.arange(T * n).reshape((T,) + shp)
                reg.new(name, tie, T * n, np.tile(init_one, T))
        reg.new("V", np.arange(H * O).reshape(H, O), H * O, rng.normal(0, 1 / np.sqrt(H), H * O))
        reg.new("c", np.arange(O), O)
        self.theta_ = reg.init_theta()
        self._config = {"n_steps": T, "n_inputs": D, "n_hidden": H, "n_outputs": O,
                        "tying": tying, "lam": lam, "random_state": random_state}

    @classmethod
    def from_config(cls, config: dict) -> "ElmanRNN":
        return cls(**config)

    def _check(self, X):
        X = np.asarray(X, dtype=float)
        if X.ndim != 3 or X.shape[1:] != (self.n_steps, self.n_inputs):
            raise ValueError(f"ElmanRNN: expected input of shape (n, {self.n_steps}, "
                             f"{self.n_inputs}), got {X.shape}")
        return X

    def _forward(self, P, X):
        n = X.shape[0]
        hs = [np.zeros((n, self.n_hidden))]
        for t in range(self.n_steps):
            hs.append(np.tanh(X[:, t] @ P["Wx"][t] + hs[-1] @ P["Wh"][t] + P["b"][t]))
        return hs[-1] @ P["V"] + P["c"], hs

    def predict(self, X: NDArray, theta: NDArray | None = None) -> NDArray:
        """Outputs, shape (n, n_outputs)."""
        return self._forward(self.registry.expand(self._theta(theta)), self._check(X))[0]

    def penalty(self, P: dict) -> float:
        """Soft-tying penalty ``lam * sum_t |theta_t - theta_{t+1}|^2``."""
        return self.lam * sum(float(np.sum(np.diff(P[k], axis=0) ** 2)) for k in _STEP_ARRAYS)

    def data_loss(self, theta: NDArray | None, X: NDArray, y: NDArray) -> float:
        """Loss without the penalty."""
        out = self.predict(X, theta)
        return mse(out, np.asarray(y, dtype=float).reshape(out.shape))[0]

    def _loss_cells(self, P, X, y):
        X = self._check(X)
        out, hs = self._forward(P, X)
        y = np.asarray(y, dtype=float).reshape(out.shape)
        loss, dout = mse(out, y)
        g = {"V": hs[-1].T @ dout, "c": dout.sum(0)}
        dWx, dWh, db = (np.zeros_like(P[k]) for k in _STEP_ARRAYS)
        dh = dout @ P["V"].T
        for t in range(self.n_steps - 1, -1, -1):
            du = dh * (1.0 - hs[t + 1] ** 2)
            dWx[t] = X[:, t].T @ du
            dWh[t] = hs[t].T @ du
            db[t] = du.sum(0)
            dh = du @ P["Wh"][t].T
        g.update(Wx=dWx, Wh=dWh, b=db)
        if self.lam > 0:
            for k in _STEP_ARRAYS:
                d = np.diff(P[k], axis=0)          # theta_{t+1} - theta_t
                pg = np.zeros_like(P[k])
                pg[:-1] -= 2 * self.lam * d
                pg[1:] += 2 * self.lam * d
                g[k] = g[k] + pg
            loss += self.penalty(P)
        return loss, g


def step_spread(model: ElmanRNN, theta: NDArray | None = None) -> float:
    """Root of ``sum_t |theta_t - theta_{t+1}|^2`` over the step arrays (0 when hard-tied)."""
    P = model.registry.expand(model._theta(theta))
    return float(np.sqrt(sum(np.sum(np.diff(P[k], axis=0) ** 2) for k in _STEP_ARRAYS)))


def _lbfgs(model, theta0, X, y, tol=1e-12, maxiter=5000):
    res = minimize(lambda t: model.loss_grad(t, X, y), theta0, jac=True, method="L-BFGS-B",
                   options={"gtol": tol, "ftol": 1e-15, "maxiter": maxiter, "maxcor": 30})
    return res.x


def soft_tying_path(X: NDArray, y: NDArray, lams, n_hidden: int = 3,
                    random_state: int = 0) -> dict:
    """Fit the hard-tied RNN, then the soft-tied one along a path of ``lam``.

    Each soft fit is warm-started from the hard-tied optimum (copied to every
    step with :meth:`~hmmtie.neural.params.Registry.project`), so the path
    follows that optimum's basin.

    Parameters
    ----------
    X : array of shape (n, T, D)
    y : array of shape (n,) or (n, 1)
    lams : sequence of float, each >= 0

    Returns
    -------
    dict with "lams", "spread" (step spread at each lam), "data_loss"
    (loss without penalty at each lam), "tied_loss", "untied_loss" (lam = 0)
    """
    X = np.asarray(X, dtype=float)
    lams = [float(l) for l in lams]
    if any(not l >= 0 for l in lams):
        raise ValueError(f"soft_tying_path: every lam must be >= 0, got {lams}")
    T, D = X.shape[1:]
    hard = ElmanRNN(T, D, n_hidden, 1, "hard", random_state=random_state)
    hard.theta_ = _lbfgs(hard, hard.theta_, X, y)
    full = hard.registry.expand(hard.theta_)
    out = {"lams": np.array(lams), "spread": [], "data_loss": [],
           "tied_loss": hard.data_loss(None, X, y)}
    for lam in lams:
        soft = ElmanRNN(T, D, n_hidden, 1, "none", lam=lam, random_state=random_state)
        soft.theta_ = _lbfgs(soft, soft.registry.project(full), X, y)
        out["spread"].append(step_spread(soft))
        out["data_loss"].append(soft.data_loss(None, X, y))
    out["spread"], out["data_loss"] = np.array(out["spread"]), np.array(out["data_loss"])
    return out
