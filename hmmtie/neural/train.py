"""Training over the free-parameter vector, and save/load of tie maps.

Optimisers step ``theta`` -- one entry per atom -- so a shared weight is
stepped exactly once however many places use it.  Files store ``theta``
and the tie maps (not expanded copies); loading rebuilds the model, checks
that its tie maps equal the stored ones and sets ``theta``.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np
from numpy.typing import NDArray

from .models import TiedModel

__all__ = ["SGD", "Adam", "fit", "save", "load"]

FORMAT_VERSION = 1


class SGD:
    """Stochastic gradient descent with optional momentum on the free vector."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0) -> None:
        if lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"SGD: need lr > 0 and 0 <= momentum < 1, got lr={lr}, "
                             f"momentum={momentum}")
        self.lr, self.momentum = lr, momentum
        self._v = None

    def step(self, theta: NDArray, grad: NDArray) -> NDArray:
        if self._v is None:
            self._v = np.zeros_like(theta)
        self._v = self.momentum * self._v + grad
        return theta - self.lr * self._v


class Adam:
    """Adam (Kingma & Ba 2015) on the free vector."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        if lr <= 0 or not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Adam: need lr > 0 and betas in [0, 1), got lr={lr}, "
                             f"betas=({beta1}, {beta2})")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self._m = self._v = None
        self._t = 0

    def step(self, theta: NDArray, grad: NDArray) -> NDArray:
        if self._m is None:
            self._m, self._v = np.zeros_like(theta), np.zeros_like(theta)
        self._t += 1
        self._m = self.beta1 * self._m + (1 - self.beta1) * grad
        self._v = self.beta2 * self._v + (1 - self.beta2) * grad * grad
        mh = self._m / (1 - self.beta1 ** self._t)
        vh = self._v / (1 - self.beta2 ** self._t)
        return theta - self.lr * mh / (np.sqrt(vh) + self.eps)


def fit(model: TiedModel, X: NDArray, y: NDArray, optimizer=None, n_epochs: int = 20,
        batch_size: int = 32, random_state: int = 0, val_fraction: float = 0.0,
        patience: int | None = None, X_val: NDArray | None = None,
        y_val: NDArray | None = None) -> dict:
    """Mini-batch training of ``model.theta_`` (in place).

    Parameters
    ----------
    model : TiedModel
    X : array of shape (n_samples, ...)
    y : array of shape (n_samples, ...)
    optimizer : SGD or Adam, default Adam(1e-3)
    n_epochs, batch_size : int
    random_state : int
        Seeds the validation split and the batch order.
    val_fraction : float
        Fraction held out for validation when ``X_val`` is not given.
    patience : int, optional
        Stop after this many epochs without a lower validation loss; the
        parameters of the best epoch are kept.

    Returns
    -------
    history : dict with "train_loss", "val_loss" (lists) and "best_epoch"
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"fit: X has {len(X)} samples but y has {len(y)}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"fit: val_fraction must be in [0, 1), got {val_fraction}")
    opt = optimizer if optimizer is not None else Adam(1e-3)
    rng = np.random.default_rng(random_state)
    if X_val is None and val_fraction > 0:
        perm = rng.permutation(len(X))
        n_val = max(1, int(round(val_fraction * len(X))))
        X_val, y_val = X[perm[:n_val]], y[perm[:n_val]]
        X, y = X[perm[n_val:]], y[perm[n_val:]]
    hist = {"train_loss": [], "val_loss": [], "best_epoch": None}
    best, best_theta, wait = np.inf, model.theta_.copy(), 0
    for epoch in range(n_epochs):
        order = rng.permutation(len(X))
        tot = 0.0
        for s in range(0, len(X), batch_size):
            b = order[s:s + batch_size]
            loss, g = model.loss_grad(model.theta_, X[b], y[b])
            model.theta_ = opt.step(model.theta_, g)
            tot += loss * len(b)
        hist["train_loss"].append(tot / len(X))
        if X_val is not None:
            vl = model.loss(model.theta_, X_val, y_val)
            hist["val_loss"].append(vl)
            if vl < best:
                best, best_theta, wait = vl, model.theta_.copy(), 0
                hist["best_epoch"] = epoch
            else:
                wait += 1
                if patience is not None and wait >= patience:
                    break
    if X_val is not None:
        model.theta_ = best_theta
    return hist


def save(model: TiedModel, path: str | os.PathLike) -> None:
    """Save ``theta_``, the tie maps, fixed values and the model config (``.npz``).

    Written to a temporary file and renamed on success.
    """
    arrays = {"theta": model.theta_, **model.registry.state()}
    meta = {"format_version": FORMAT_VERSION, "class": type(model).__name__,
            "config": model.get_config()}
    arrays["meta"] = np.array(json.dumps(meta))
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=d)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str | os.PathLike) -> TiedModel:
    """Load a model saved by :func:`save`; its tie maps must match the stored ones."""
    from . import model_class
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        model = model_class(meta["class"]).from_config(meta["config"])
        for k, t in model.registry.ties.items():
            key = f"tie:{k}"
            if key not in f or f[key].shape != t.shape or not np.array_equal(f[key], t):
                stored = f[key].shape if key in f else None
                raise ValueError(f"load: tie map {k!r} in {os.fspath(path)} (shape {stored}) "
                                 f"does not match the rebuilt model's (shape {t.shape})")
        theta = f["theta"]
    if theta.shape != (model.n_params,):
        raise ValueError(f"load: theta has shape {theta.shape}, model has {model.n_params} atoms")
    model.theta_ = theta.astype(float)
    return model
