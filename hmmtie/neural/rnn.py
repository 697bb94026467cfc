"""Elman RNN and GRU with weights shared across time, hard or soft.

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
from .._validation import check_number
from .layers import check_size
from .params import Registry

__all__ = ["ElmanRNN", "GRU", "soft_tying_path", "step_spread"]

def _sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))


class _TiedRNN(TiedModel):
    """Shared machinery: per-step arrays behind a hard or per-step tie map, head, penalty."""

    _name = "RNN"

    def __init__(self, n_steps, n_inputs, n_hidden, n_outputs, tying, lam, random_state):
        name = type(self).__name__
        if tying not in ("hard", "none"):
            raise ValueError(f"{name}: tying must be 'hard' or 'none', got {tying!r}")
        check_number(f"{name}: lam", lam)
        for k, v in (("n_steps", n_steps), ("n_inputs", n_inputs), ("n_hidden", n_hidden),
                     ("n_outputs", n_outputs)):
            check_size(name, k, v)
        self.n_steps, self.n_inputs, self.n_hidden, self.n_outputs = (
            int(n_steps), int(n_inputs), int(n_hidden), int(n_outputs))
        self.tying, self.lam = tying, float(lam)
        T, D, H, O = self.n_steps, self.n_inputs, self.n_hidden, self.n_outputs
        rng = np.random.default_rng(random_state)
        self.registry = reg = Registry()
        for arr, (shp, scale) in self._step_shapes().items():
            n = int(np.prod(shp))
            step = np.arange(n).reshape(shp)
            init_one = rng.normal(0, scale, n)
            if tying == "hard":
                reg.new(arr, np.broadcast_to(step, (T,) + shp).copy(), n, init_one)
            else:
                reg.new(arr, np.arange(T * n).reshape((T,) + shp), T * n, np.tile(init_one, T))
        reg.new("V", np.arange(H * O).reshape(H, O), H * O, rng.normal(0, 1 / np.sqrt(H), H * O))
        reg.new("c", np.arange(O), O)
        self.theta_ = reg.init_theta()
        self._config = {"n_steps": T, "n_inputs": D, "n_hidden": H, "n_outputs": O,
                        "tying": tying, "lam": lam, "random_state": random_state}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def _step_arrays(self):
        return tuple(self._step_shapes())

    def _check(self, X):
        X = np.asarray(X, dtype=float)
        if X.ndim != 3 or X.shape[1:] != (self.n_steps, self.n_inputs):
            raise ValueError(f"{type(self).__name__}: expected input of shape (n, {self.n_steps}, "
                             f"{self.n_inputs}), got {X.shape}")
        return X

    def _forward(self, P, X):
        h = np.zeros((X.shape[0], self.n_hidden))
        caches = []
        for t in range(self.n_steps):
            h, c = self._cell(P, t, X[:, t], h)
            caches.append(c)
        return h @ P["V"] + P["c"], h, caches

    def predict(self, X: NDArray, theta: NDArray | None = None) -> NDArray:
        """Outputs, shape (n, n_outputs)."""
        return self._forward(self.registry.expand(self._theta(theta)), self._check(X))[0]

    def penalty(self, P: dict) -> float:
        """Soft-tying penalty ``lam * sum_t |theta_t - theta_{t+1}|^2``."""
        return self.lam * sum(float(np.sum(np.diff(P[k], axis=0) ** 2))
                              for k in self._step_arrays())

    def data_loss(self, theta: NDArray | None, X: NDArray, y: NDArray) -> float:
        """Loss without the penalty."""
        out = self.predict(X, theta)
        return mse(out, self._targets(y, out))[0]

    def _targets(self, y, out):
        """``y`` as (n, n_outputs); a vector for one output.  Its shape is
        checked, never reshaped (a transposed (n_outputs, n) would pass a
        reshape when n equals n_outputs)."""
        y = np.asarray(y, dtype=float)
        if y.ndim == 1 and out.shape[1] == 1:
            y = y[:, None]
        if y.shape != out.shape:
            raise ValueError(f"{type(self).__name__}: targets have shape {y.shape}, the outputs "
                             f"{out.shape} (samples, n_outputs)")
        return y

    def _loss_cells(self, P, X, y):
        X = self._check(X)
        out, hT, caches = self._forward(P, X)
        y = self._targets(y, out)
        loss, dout = mse(out, y)
        g = {"V": hT.T @ dout, "c": dout.sum(0)}
        for k in self._step_arrays():
            g[k] = np.zeros_like(P[k])
        dh = dout @ P["V"].T
        for t in range(self.n_steps - 1, -1, -1):
            dh, gt = self._cell_back(P, t, X[:, t], caches[t], dh)
            for k, v in gt.items():
                g[k][t] = v
        if self.lam > 0:
            for k in self._step_arrays():
                d = np.diff(P[k], axis=0)          # theta_{t+1} - theta_t
                pg = np.zeros_like(P[k])
                pg[:-1] -= 2 * self.lam * d
                pg[1:] += 2 * self.lam * d
                g[k] = g[k] + pg
            loss += self.penalty(P)
        return loss, g


class ElmanRNN(_TiedRNN):
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
        super().__init__(n_steps, n_inputs, n_hidden, n_outputs, tying, lam, random_state)

    def _step_shapes(self):
        D, H = self.n_inputs, self.n_hidden
        return {"Wx": ((D, H), 1 / np.sqrt(D)), "Wh": ((H, H), 0.5 / np.sqrt(H)),
                "b": ((H,), 0.1)}

    def _cell(self, P, t, x, h):
        hn = np.tanh(x @ P["Wx"][t] + h @ P["Wh"][t] + P["b"][t])
        return hn, (h, hn)

    def _cell_back(self, P, t, x, cache, dh):
        h, hn = cache
        du = dh * (1.0 - hn * hn)
        return du @ P["Wh"][t].T, {"Wx": x.T @ du, "Wh": h.T @ du, "b": du.sum(0)}


class GRU(_TiedRNN):
    """Gated recurrent unit with weights shared across time (hard) or per step (soft).

    ``z = s(x Wz + h Uz + bz)``, ``r = s(x Wr + h Ur + br)``,
    ``n = tanh(x Wn + (r h) Un + bn)``, ``h' = (1 - z) n + z h``; regression
    head on ``h_T``.  Parameters as :class:`ElmanRNN`.
    """

    def __init__(self, n_steps: int, n_inputs: int, n_hidden: int, n_outputs: int = 1,
                 tying: str = "hard", lam: float = 0.0, random_state: int = 0) -> None:
        super().__init__(n_steps, n_inputs, n_hidden, n_outputs, tying, lam, random_state)

    def _step_shapes(self):
        D, H = self.n_inputs, self.n_hidden
        out = {}
        for gate in "zrn":
            out[f"W{gate}"] = ((D, H), 1 / np.sqrt(D))
            out[f"U{gate}"] = ((H, H), 0.5 / np.sqrt(H))
            out[f"b{gate}"] = ((H,), 0.1)
        return out

    def _cell(self, P, t, x, h):
        z = _sigmoid(x @ P["Wz"][t] + h @ P["Uz"][t] + P["bz"][t])
        r = _sigmoid(x @ P["Wr"][t] + h @ P["Ur"][t] + P["br"][t])
        n = np.tanh(x @ P["Wn"][t] + (r * h) @ P["Un"][t] + P["bn"][t])
        return (1 - z) * n + z * h, (h, z, r, n)

    def _cell_back(self, P, t, x, cache, dh_new):
        h, z, r, n = cache
        dn_u = dh_new * (1 - z) * (1 - n * n)
        dz_u = dh_new * (h - n) * z * (1 - z)
        drh = dn_u @ P["Un"][t].T
        dr_u = drh * h * r * (1 - r)
        dh = dh_new * z + drh * r + dz_u @ P["Uz"][t].T + dr_u @ P["Ur"][t].T
        g = {"Wz": x.T @ dz_u, "Uz": h.T @ dz_u, "bz": dz_u.sum(0),
             "Wr": x.T @ dr_u, "Ur": h.T @ dr_u, "br": dr_u.sum(0),
             "Wn": x.T @ dn_u, "Un": (r * h).T @ dn_u, "bn": dn_u.sum(0)}
        return dh, g


def step_spread(model: _TiedRNN, theta: NDArray | None = None) -> float:
    """Root of ``sum_t |theta_t - theta_{t+1}|^2`` over the step arrays (0 when hard-tied)."""
    P = model.registry.expand(model._theta(theta))
    return float(np.sqrt(sum(np.sum(np.diff(P[k], axis=0) ** 2) for k in model._step_arrays())))


def _lbfgs(model, theta0, X, y, tol=1e-11, maxiter=3000):
    res = minimize(lambda t: model.loss_grad(t, X, y), theta0, jac=True, method="L-BFGS-B",
                   options={"gtol": tol, "ftol": 1e-15, "maxiter": maxiter, "maxcor": 30})
    return res.x


def soft_tying_path(X: NDArray, y: NDArray, lams, n_hidden: int = 1,
                    random_state: int = 0, n_starts: int = 1) -> dict:
    """Fit the hard-tied RNN, then the soft-tied one along a path of ``lam``.

    Each soft fit is warm-started from the hard-tied optimum (copied to every
    step with :meth:`~hmmtie.neural.params.Registry.project`), so the path
    follows that optimum's basin.  The hard fit is the best of ``n_starts``
    random starts (seeds ``random_state``, ``random_state + 1``, ...): with
    one start it can stop in a local optimum, and a soft fit at small
    ``lam`` may then leave that basin for a better one.

    Parameters
    ----------
    X : array of shape (n, T, D)
    y : array of shape (n,) or (n, 1)
    lams : sequence of float, each >= 0

    Returns
    -------
    dict with "lams", "spread" (step spread at each lam), "data_loss"
    (loss without penalty at each lam) and "tied_loss" (the hard-tied fit's)
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 3:
        raise ValueError(f"soft_tying_path: X must have shape (n, n_steps, n_inputs), got {X.shape}")
    lams = [check_number("soft_tying_path: each lam", l) for l in lams]
    check_size("soft_tying_path", "n_starts", n_starts)
    T, D = X.shape[1:]
    hard = None
    for seed in range(random_state, random_state + n_starts):
        cand = ElmanRNN(T, D, n_hidden, 1, "hard", random_state=seed)
        cand.theta_ = _lbfgs(cand, cand.theta_, X, y)
        if hard is None or cand.data_loss(None, X, y) < hard.data_loss(None, X, y):
            hard = cand
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
