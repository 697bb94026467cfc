"""Sharing across depth: a weight-tied residual block and its ODE limit.

:class:`TiedDepthModel` unrolls ``h_{l+1} = h_l + (1/L) tanh(h_l W_l + b_l)``
for ``l = 0..L-1``; its full arrays ``W`` (L, H, H), ``b`` (L, H) are tied
across depth (``tied=True``) or not.  Tied, it is the explicit Euler scheme
for ``dh/dt = tanh(h W + b)`` on ``[0, 1]``, so it converges to
:class:`ODEModel` at rate O(1/L).

:class:`ODEModel` integrates that ODE with Euler or RK4 and differentiates
either by backpropagation through the solver or by the adjoint method
(the augmented state ``[h, a, dL/dW, dL/db]`` integrated backwards with the
same scheme).  Loss: half the mean squared error of ``h(1)`` against targets.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .models import TiedModel, mse
from .layers import check_size
from .params import Registry

__all__ = ["TiedDepthModel", "ODEModel"]


def _f(h, W, b):
    return np.tanh(h @ W + b)


def _vjp(h, W, b, a):
    """Vector-Jacobian products of f(h) = tanh(hW + b) with cotangent ``a``."""
    y = np.tanh(h @ W + b)
    du = a * (1 - y * y)
    return du @ W.T, h.T @ du, du.sum(0)


def _check_X(name, X, dim):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != dim:
        raise ValueError(f"{name}: expected input of shape (n, {dim}), got {X.shape}")
    return X


class TiedDepthModel(TiedModel):
    """Residual block ``h + tanh(h W + b) / L`` unrolled ``n_layers`` times.

    Parameters
    ----------
    dim : int
    n_layers : int
    tied : bool
        Share ``W`` and ``b`` across depth (through the tie map).
    random_state : int
    """

    def __init__(self, dim: int, n_layers: int, tied: bool = True, random_state: int = 0) -> None:
        check_size("TiedDepthModel", "n_layers", n_layers)
        check_size("TiedDepthModel", "dim", dim)
        self.dim, self.n_layers, self.tied = int(dim), int(n_layers), bool(tied)
        H, L = self.dim, self.n_layers
        rng = np.random.default_rng(random_state)
        w0, b0 = rng.normal(0, 1 / np.sqrt(H), H * H), rng.normal(0, 0.1, H)
        self.registry = reg = Registry()
        if tied:
            reg.new("W", np.broadcast_to(np.arange(H * H).reshape(H, H), (L, H, H)).copy(),
                    H * H, w0)
            reg.new("b", np.broadcast_to(np.arange(H), (L, H)).copy(), H, b0)
        else:
            reg.new("W", np.arange(L * H * H).reshape(L, H, H), L * H * H, np.tile(w0, L))
            reg.new("b", np.arange(L * H).reshape(L, H), L * H, np.tile(b0, L))
        self.theta_ = reg.init_theta()
        self._config = {"dim": dim, "n_layers": n_layers, "tied": tied,
                        "random_state": random_state}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def transform(self, X: NDArray, theta: NDArray | None = None) -> NDArray:
        """Output ``h_L``, shape (n, dim)."""
        P = self.registry.expand(self._theta(theta))
        h = _check_X("TiedDepthModel", X, self.dim)
        for l in range(self.n_layers):
            h = h + _f(h, P["W"][l], P["b"][l]) / self.n_layers
        return h

    def _loss_cells(self, P, X, Y):
        h = _check_X("TiedDepthModel", X, self.dim)
        L = self.n_layers
        hs = [h]
        for l in range(L):
            hs.append(hs[-1] + _f(hs[-1], P["W"][l], P["b"][l]) / L)
        loss, a = mse(hs[-1], np.asarray(Y, dtype=float))
        dW, db = np.zeros_like(P["W"]), np.zeros_like(P["b"])
        for l in range(L - 1, -1, -1):
            dh, dW[l], db[l] = _vjp(hs[l], P["W"][l], P["b"][l], a / L)
            a = a + dh
        return loss, {"W": dW, "b": db}


class ODEModel(TiedModel):
    """Neural ODE ``dh/dt = tanh(h W + b)`` on [0, 1].

    Parameters
    ----------
    dim : int
    n_steps : int
        Fixed solver steps.
    method : {"euler", "rk4"}
    gradient : {"backprop", "adjoint"}
        "backprop" is the exact gradient of the computed (discretised) loss.
        "adjoint" integrates the continuous adjoint equation backwards with
        the same solver: it is the gradient of the continuous-time loss and
        matches the discrete gradient only as the step shrinks -- to about
        1e-8 with rk4 at 20 steps, but only to O(1/n_steps) with euler
        (about 1% relative error at 20 steps).
    random_state : int
        Same initial atoms as :class:`TiedDepthModel` with the same seed.
    """

    def __init__(self, dim: int, n_steps: int = 20, method: str = "rk4",
                 gradient: str = "backprop", random_state: int = 0) -> None:
        check_size("ODEModel", "dim", dim)
        check_size("ODEModel", "n_steps", n_steps)
        if method not in ("euler", "rk4"):
            raise ValueError(f"ODEModel: method must be 'euler' or 'rk4', got {method!r}")
        if gradient not in ("backprop", "adjoint"):
            raise ValueError(f"ODEModel: gradient must be 'backprop' or 'adjoint', "
                             f"got {gradient!r}")
        if n_steps < 1:
            raise ValueError(f"ODEModel: n_steps must be >= 1, got {n_steps}")
        self.dim, self.n_steps, self.method, self.gradient = int(dim), int(n_steps), method, gradient
        H = self.dim
        rng = np.random.default_rng(random_state)
        w0, b0 = rng.normal(0, 1 / np.sqrt(H), H * H), rng.normal(0, 0.1, H)
        self.registry = reg = Registry()
        reg.new("W", np.arange(H * H).reshape(H, H), H * H, w0)
        reg.new("b", np.arange(H), H, b0)
        self.theta_ = reg.init_theta()
        self._config = {"dim": dim, "n_steps": n_steps, "method": method,
                        "gradient": gradient, "random_state": random_state}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _step(self, h, W, b, dt):
        if self.method == "euler":
            return h + dt * _f(h, W, b), None
        k1 = _f(h, W, b)
        k2 = _f(h + 0.5 * dt * k1, W, b)
        k3 = _f(h + 0.5 * dt * k2, W, b)
        k4 = _f(h + dt * k3, W, b)
        return h + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4), (k1, k2, k3)

    def _step_back(self, h, ks, W, b, dt, a):
        """Backprop of one solver step: cotangent of h_{n+1} -> of h_n, W, b."""
        if self.method == "euler":
            dh, dW, db = _vjp(h, W, b, dt * a)
            return a + dh, dW, db
        k1, k2, k3 = ks
        ins = [h, h + 0.5 * dt * k1, h + 0.5 * dt * k2, h + dt * k3]
        wts = [dt / 6, dt / 3, dt / 3, dt / 6]
        coef = [None, 0.5 * dt, 0.5 * dt, dt]   # stage i's input uses coef[i] * k_{i-1}
        gk = [w * a for w in wts]               # cotangents of k1..k4
        dh_tot, dW, db = a.copy(), 0.0, 0.0
        for i in (3, 2, 1, 0):
            dh_i, dW_i, db_i = _vjp(ins[i], W, b, gk[i])
            dW, db = dW + dW_i, db + db_i
            dh_tot = dh_tot + dh_i
            if i > 0:
                gk[i - 1] = gk[i - 1] + coef[i] * dh_i
        return dh_tot, dW, db

    def transform(self, X: NDArray, theta: NDArray | None = None) -> NDArray:
        """``h(1)``, shape (n, dim)."""
        P = self.registry.expand(self._theta(theta))
        h = _check_X("ODEModel", X, self.dim)
        dt = 1.0 / self.n_steps
        for _ in range(self.n_steps):
            h = self._step(h, P["W"], P["b"], dt)[0]
        return h

    def _loss_cells(self, P, X, Y):
        W, b = P["W"], P["b"]
        h = _check_X("ODEModel", X, self.dim)
        dt = 1.0 / self.n_steps
        hs, kss = [h], []
        for _ in range(self.n_steps):
            h, ks = self._step(h, W, b, dt)
            hs.append(h)
            kss.append(ks)
        loss, a = mse(h, np.asarray(Y, dtype=float))
        if self.gradient == "adjoint":
            dW, db = self._adjoint(h, a, W, b, dt)
            return loss, {"W": dW, "b": db}
        dW, db = np.zeros_like(W), np.zeros_like(b)
        for n in range(self.n_steps - 1, -1, -1):
            a, gW, gb = self._step_back(hs[n], kss[n], W, b, dt, a)
            dW += gW
            db += gb
        return loss, {"W": dW, "b": db}

    def _adjoint(self, h1, a1, W, b, dt):
        """Integrate ``[h, a, gW, gb]`` from t=1 back to 0 (h recomputed backwards)."""
        H = self.dim

        def rhs(z):
            h, a = z[0], z[1]
            dh, dW, db = _vjp(h, W, b, a)
            # d/dt h = f(h); d/dt a = -a df/dh; d/dt gW = -a df/dW (reverse time: negate)
            return [-_f(h, W, b), dh, dW, db]

        z = [h1, a1, np.zeros((H, H)), np.zeros(H)]
        for _ in range(self.n_steps):
            if self.method == "euler":
                k = rhs(z)
                z = [zi + dt * ki for zi, ki in zip(z, k)]
            else:
                k1 = rhs(z)
                k2 = rhs([zi + 0.5 * dt * ki for zi, ki in zip(z, k1)])
                k3 = rhs([zi + 0.5 * dt * ki for zi, ki in zip(z, k2)])
                k4 = rhs([zi + dt * ki for zi, ki in zip(z, k3)])
                z = [zi + dt / 6 * (a + 2 * b_ + 2 * c + d)
                     for zi, a, b_, c, d in zip(z, k1, k2, k3, k4)]
        return z[2], z[3]
