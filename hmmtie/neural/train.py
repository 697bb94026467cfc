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

from .._validation import check_count
from .models import TiedModel

__all__ = ["SGD", "Adam", "fit", "save", "load"]

FORMAT_VERSION = 1


def _real(owner, name, value):
    """A real number (a string, None or a bool is an error; the ranges are
    the optimizers' own checks)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    return float(value)


class SGD:
    """Stochastic gradient descent with optional momentum on the free vector."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0) -> None:
        lr, momentum = _real("SGD", "lr", lr), _real("SGD", "momentum", momentum)
        if not lr > 0 or not np.isfinite(lr) or not 0 <= momentum < 1:
            raise ValueError(f"SGD: need a finite lr > 0 and 0 <= momentum < 1, got lr={lr}, "
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
        lr, eps = _real("Adam", "lr", lr), _real("Adam", "eps", eps)
        beta1, beta2 = _real("Adam", "beta1", beta1), _real("Adam", "beta2", beta2)
        if not (lr > 0 and np.isfinite(lr)) or not (0 <= beta1 < 1 and 0 <= beta2 < 1) or not eps > 0:
            raise ValueError(f"Adam: need a finite lr > 0, betas in [0, 1) and eps > 0, got lr={lr}, "
                             f"betas=({beta1}, {beta2}), eps={eps}")
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


def _take(X, idx):
    """Rows ``idx`` of an array, or items of a list (ragged data: pairs of sequences)."""
    return X[idx] if isinstance(X, np.ndarray) else [X[i] for i in idx]


def _as_data(name: str, X):
    """An array (numeric data checked finite), or a list kept as it is when its
    items differ in shape (the pairs of a SiameseModel)."""
    if X is None:
        return None
    if isinstance(X, list):
        if any(isinstance(v, str) for v in X):
            raise ValueError(f"fit: {name} holds strings; encode sequences first (hmmtie.neural.one_hot)")
        try:
            X = np.asarray(X, dtype=float)
        except ValueError:
            return X
    X = np.asarray(X)
    if X.dtype.kind in "US":
        raise ValueError(f"fit: {name} must hold numbers, got an array of dtype {X.dtype} (encode sequences "
                         "first: hmmtie.neural.one_hot)")
    if X.ndim == 0:
        raise ValueError(f"fit: {name} must be an array of samples, got a scalar")
    if X.dtype.kind in "fc" and not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"fit: {name} holds a NaN or infinite value (first at index {tuple(int(i) for i in bad)})")
    return X


def _positive(name, value, low=1):
    return check_count(f"fit: {name}", value, low)


def fit(model: TiedModel, X: NDArray, y: NDArray | None = None, optimizer=None, n_epochs: int = 20,
        batch_size: int = 32, random_state: int = 0, val_fraction: float = 0.0,
        patience: int | None = None, X_val: NDArray | None = None,
        y_val: NDArray | None = None) -> dict:
    """Mini-batch training of ``model.theta_`` (in place).

    Parameters
    ----------
    model : TiedModel
        Any model whose samples are the rows of ``X`` (and ``y``).  A
        :class:`~hmmtie.neural.unet.TiedAutoencoder` is trained on ``X``
        alone (``y`` omitted); a ``SiameseModel`` takes a list of pairs of
        sequences of any lengths as ``X``.  A ``GPRGNN`` is one graph, not
        rows: train it on the whole graph (batch_size >= the number of
        nodes, no validation split).
    X : array of shape (n_samples, ...), or a list of pairs
    y : array of shape (n_samples, ...), omitted for an autoencoder
    optimizer : SGD or Adam, default Adam(1e-3)
    n_epochs, batch_size : int >= 1
    random_state : int
        Seeds the validation split and the batch order.
    val_fraction : float
        Fraction held out for validation when ``X_val`` is not given.
    patience : int >= 1, optional
        Stop after this many epochs without a lower validation loss; the
        parameters of the best epoch are kept.  Needs validation data.

    Returns
    -------
    history : dict with "train_loss", "val_loss" (lists) and "best_epoch"

    A NaN or infinite value in the data, or a training or validation loss
    that becomes NaN or infinite (a learning rate too large), is an error;
    ``model.theta_`` then holds the parameters of the last finite epoch.
    """
    supervised = getattr(model, "supervised", True)
    if supervised and y is None:
        raise ValueError(f"fit: {type(model).__name__} needs targets y")
    if not supervised and (y is not None or y_val is not None):
        raise ValueError(f"fit: {type(model).__name__} is trained on X alone; call fit(model, X) without y")
    if (X_val is None) != (y_val is None) and supervised:
        raise ValueError("fit: give X_val and y_val together")
    X, y = _as_data("X", X), _as_data("y", y)
    X_val, y_val = _as_data("X_val", X_val), _as_data("y_val", y_val)
    if len(X) == 0:
        raise ValueError("fit: X holds no samples")
    if y is not None and len(X) != len(y):
        raise ValueError(f"fit: X has {len(X)} samples but y has {len(y)}")
    if X_val is not None and y_val is not None and len(X_val) != len(y_val):
        raise ValueError(f"fit: X_val has {len(X_val)} samples but y_val has {len(y_val)}")
    n_epochs = _positive("n_epochs", n_epochs, low=0)
    batch_size = _positive("batch_size", batch_size)
    if patience is not None:
        patience = _positive("patience", patience)
    if isinstance(val_fraction, (bool, np.bool_)) or not isinstance(val_fraction, (int, float, np.floating)) \
            or not 0 <= val_fraction < 1:
        raise ValueError(f"fit: val_fraction must be in [0, 1), got {val_fraction!r}")
    full_batch = getattr(model, "full_batch", False)
    if full_batch and (batch_size < len(X) or val_fraction > 0 or X_val is not None):
        raise ValueError(f"fit: {type(model).__name__} trains on the whole graph at once: use batch_size >= "
                         f"{len(X)} (the number of nodes) and no validation split")
    if patience is not None and X_val is None and val_fraction == 0:
        raise ValueError("fit: patience needs validation data (X_val and y_val, or val_fraction > 0)")
    opt = optimizer if optimizer is not None else Adam(1e-3)
    if not callable(getattr(opt, "step", None)):
        raise ValueError(f"fit: optimizer must be an optimizer object such as hmmtie.neural.SGD(...) or "
                         f"Adam(...) (anything with step(theta, grad)), got {optimizer!r}")
    rng = np.random.default_rng(random_state)
    if X_val is None and val_fraction > 0:
        perm = rng.permutation(len(X))
        n_val = max(1, int(round(val_fraction * len(X))))
        if n_val >= len(X):
            raise ValueError(f"fit: val_fraction {val_fraction} of {len(X)} samples leaves none to train on")
        X_val, X = _take(X, perm[:n_val]), _take(X, perm[n_val:])
        if y is not None:
            y_val, y = _take(y, perm[:n_val]), _take(y, perm[n_val:])
    val = () if X_val is None else ((X_val,) if y is None else (X_val, y_val))
    hist = {"train_loss": [], "val_loss": [], "best_epoch": None}
    best, best_theta, wait = np.inf, model.theta_.copy(), 0
    for epoch in range(n_epochs):
        last = model.theta_.copy()
        # a graph's rows are its nodes: never reordered
        order = np.arange(len(X)) if full_batch else rng.permutation(len(X))
        tot = 0.0
        for s in range(0, len(X), batch_size):
            b = order[s:s + batch_size]
            data = (_take(X, b),) if y is None else (_take(X, b), _take(y, b))
            loss, g = model.loss_grad(model.theta_, *data)
            if not np.isfinite(loss) or not np.all(np.isfinite(g)):
                model.theta_ = last
                raise ValueError(f"fit: the training loss became {loss} in epoch {epoch + 1} (learning rate "
                                 "too large?); theta_ holds the parameters before that epoch")
            model.theta_ = opt.step(model.theta_, g)
            tot += loss * len(b)
        hist["train_loss"].append(tot / len(X))
        if val:
            vl = model.loss(model.theta_, *val)
            if not np.isfinite(vl):
                model.theta_ = last
                raise ValueError(f"fit: the validation loss became {vl} in epoch {epoch + 1}; theta_ holds "
                                 "the parameters before that epoch")
            hist["val_loss"].append(vl)
            if vl < best:
                best, best_theta, wait = vl, model.theta_.copy(), 0
                hist["best_epoch"] = epoch
            else:
                wait += 1
                if patience is not None and wait >= patience:
                    break
    if val and hist["best_epoch"] is not None:
        model.theta_ = best_theta
    return hist


def save(model: TiedModel, path: str | os.PathLike) -> None:
    """Save ``theta_``, the tie maps, fixed values and the model config (``.npz``).

    Custom tie maps of layers (a Toeplitz ``Dense``, ``LocallyConnected1D.from_conv``)
    are saved too and rebuilt on load.  Written to a temporary file and renamed on success.
    """
    arrays = {"theta": model.theta_, **model.registry.state()}
    arrays.update({f"config:{k}": v for k, v in model.config_arrays().items()})
    meta = {"format_version": FORMAT_VERSION, "class": type(model).__name__,
            "config": model.get_config()}
    arrays["meta"] = np.array(json.dumps(meta))
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ValueError(f"save: {path}: folder {d} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"save: {path} is a folder")
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=d)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _resolve_refs(cfg, f, path):
    """cfg with every ``{"@array": key}`` replaced by the saved array."""
    if isinstance(cfg, dict):
        if set(cfg) == {"@array"}:
            key = f"config:{cfg['@array']}"
            if key not in f:
                raise ValueError(f"load: {path} lacks the array {cfg['@array']!r} its config refers to")
            return f[key]
        return {k: _resolve_refs(v, f, path) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [_resolve_refs(v, f, path) for v in cfg]
    return cfg


def load(path: str | os.PathLike) -> TiedModel:
    """Load a model saved by :func:`save`; its tie maps must match the stored ones."""
    from . import model_class
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"load: {path}: no such file")
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"load: {path} is not a model saved by hmmtie.neural.save ({str(exc).splitlines()[0]})") \
            from None
    with f:
        if not hasattr(f, "files") or "meta" not in f or "theta" not in f:
            raise ValueError(f"load: {path} is not a model saved by hmmtie.neural.save")
        try:
            meta = json.loads(str(f["meta"]))
        except json.JSONDecodeError as exc:
            raise ValueError(f"load: {path}: its metadata is not valid JSON ({exc})") from None
        missing = [k for k in ("format_version", "class", "config") if not isinstance(meta, dict) or k not in meta]
        if missing:
            raise ValueError(f"load: {path}: its metadata lacks {', '.join(missing)} (not a model saved by "
                             "hmmtie.neural.save)")
        version = meta["format_version"]
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise ValueError(f"load: {path} has format_version {version!r}; this hmmtie reads versions up to "
                             f"{FORMAT_VERSION} (a file written by a newer hmmtie?)")
        config = _resolve_refs(meta["config"], f, path)
        model = model_class(meta["class"]).from_config(config)
        for k, t in model.registry.ties.items():
            key = f"tie:{k}"
            if key not in f:
                raise ValueError(f"load: {path} has no tie map {k!r}, which the rebuilt model has")
            if f[key].shape != t.shape or not np.array_equal(f[key], t):
                what = (f"has shape {f[key].shape}, the rebuilt model's {t.shape}" if f[key].shape != t.shape
                        else "differs from the rebuilt model's (same shape, other atoms)")
                raise ValueError(f"load: tie map {k!r} in {path} {what}")
        theta = f["theta"]
    if theta.shape != (model.n_params,):
        raise ValueError(f"load: theta has shape {theta.shape}, model has {model.n_params} atoms")
    model.theta_ = theta.astype(float)
    return model
