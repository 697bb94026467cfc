"""Model base class and the sequential stack.

A :class:`TiedModel` owns a :class:`~hmmtie.neural.params.Registry` and a free
vector ``theta_``.  Subclasses implement ``_loss_cells(P, *data)``, the loss
and the gradient of every *full* array cell by cell; the base class turns it
into the tied gradient with one :func:`hmmtie.tying.reduce`.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .params import Registry

__all__ = ["TiedModel", "Sequential", "bce_with_logits", "mse"]


def check_finite(owner: str, name: str, X) -> None:
    """A numeric array must hold no NaN or infinity (lists of pairs pass)."""
    if isinstance(X, np.ndarray) and X.dtype.kind in "fc" and not np.all(np.isfinite(X)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"{owner}: {name} hold a NaN or infinite value (first at index {bad})")


def _check_targets(loss: str, out: NDArray, y: NDArray) -> None:
    if y.shape != out.shape:
        raise ValueError(f"{loss}: targets y have shape {y.shape}, but the model's output has shape "
                         f"{out.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{loss}: targets y hold NaN or infinite values")


def bce_with_logits(z: NDArray, y: NDArray) -> tuple[float, NDArray]:
    """Mean binary cross-entropy of logits ``z`` (n,) against labels ``y`` (n,), and dL/dz."""
    _check_targets("bce", z, y)
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    return float(loss), (0.5 * (1.0 + np.tanh(0.5 * z)) - y) / z.shape[0]


def mse(out: NDArray, y: NDArray) -> tuple[float, NDArray]:
    """Half the mean (over samples) squared error, and its gradient (``y``
    must have the output's shape: no broadcasting)."""
    _check_targets("mse", out, y)
    d = out - y
    n = out.shape[0]
    return float(0.5 * np.sum(d * d) / n), d / n


class TiedModel:
    """Base class: a registry of tie maps, a free vector ``theta_``, tied gradients.

    Attributes
    ----------
    registry : Registry
    theta_ : array of shape (n_params,)
    """

    registry: Registry
    theta_: NDArray

    @property
    def n_params(self) -> int:
        """Number of free parameters: the number of atoms of the tie maps."""
        return self.registry.n_atoms

    def _loss_cells(self, P: dict, *data) -> tuple[float, dict]:
        raise NotImplementedError

    def _theta(self, theta):
        return self.theta_ if theta is None else np.asarray(theta, dtype=float)

    def loss_cells(self, theta: NDArray | None, *data) -> tuple[float, dict]:
        """Loss and per-cell (untied) gradient of every full array."""
        for k, d in enumerate(data):
            check_finite(type(self).__name__, "inputs" if k == 0 else "targets", d)
        return self._loss_cells(self.registry.expand(self._theta(theta)), *data)

    def loss_grad(self, theta: NDArray | None, *data) -> tuple[float, NDArray]:
        """Loss and tied gradient, shape (n_params,)."""
        loss, cells = self.loss_cells(theta, *data)
        return loss, self.registry.reduce(cells)

    def loss(self, theta: NDArray | None, *data) -> float:
        return self.loss_cells(theta, *data)[0]

    def get_config(self) -> dict:
        return dict(self._config)

    def config_arrays(self) -> dict[str, NDArray]:
        """Arrays the config refers to as ``{"@array": key}`` (saved beside it)."""
        return {}


def _prefix_refs(cfg, prefix: str):
    """cfg with every ``{"@array": key}`` reference renamed ``prefix + key``."""
    if isinstance(cfg, dict):
        if set(cfg) == {"@array"}:
            return {"@array": prefix + cfg["@array"]}
        return {k: _prefix_refs(v, prefix) for k, v in cfg.items()}
    return cfg


class Sequential(TiedModel):
    """A stack of layers with a loss.

    Parameters
    ----------
    layers : list of Layer
    loss : {"bce", "mse"}
        "bce": binary cross-entropy on a single logit output (n, 1).
    random_state : int
        Seed of the initial atoms.
    """

    def __init__(self, layers: list, loss: str = "bce", random_state: int = 0) -> None:
        if loss not in ("bce", "mse"):
            raise ValueError(f"Sequential: loss must be 'bce' or 'mse', got {loss!r}")
        self.layers, self.loss_name, self.random_state = list(layers), loss, random_state
        from .layers import Layer  # layers imports this module
        seen = {}
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"Sequential: layer {i} is {layer!r}, not a layer (Dense(...), Conv1D(...), ...)")
            if id(layer) in seen:
                # a second registration would give the same object two untied copies
                raise ValueError(f"Sequential: layer {i} is the same object as layer {seen[id(layer)]}; "
                                 "give each position its own layer (to tie them, use a tie map)")
            seen[id(layer)] = i
        rng = np.random.default_rng(random_state)
        self.registry = Registry()
        for i, layer in enumerate(self.layers):
            self.registry.add_block(str(i), layer.ties(), layer.n_atoms,
                                    layer.init_atoms(rng), layer.fixed())
        self.theta_ = self.registry.init_theta()
        self._config = {"layers": [[type(l).__name__, _prefix_refs(l.config(), f"layer{i}.")]
                                   for i, l in enumerate(self.layers)],
                        "loss": loss, "random_state": random_state}

    def config_arrays(self):
        return {f"layer{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.config_arrays().items()}

    def _sub(self, P, i):
        pre = f"{i}."
        return {k[len(pre):]: v for k, v in P.items() if k.startswith(pre)}

    def _forward(self, P, X):
        caches, h = [], X
        for i, layer in enumerate(self.layers):
            h, c = layer.forward(self._sub(P, i), h)
            caches.append(c)
        return h, caches

    def _loss_cells(self, P, X, y):
        out, caches = self._forward(P, X)
        if self.loss_name == "bce":
            if out.ndim != 2 or out.shape[1] != 1:
                raise ValueError(f"Sequential: bce needs a (n, 1) logit output, got {out.shape}")
            loss, d = bce_with_logits(out[:, 0], np.asarray(y, dtype=float))
            d = d[:, None]
        else:
            loss, d = mse(out, np.asarray(y, dtype=float))
        cells = {}
        for i in range(len(self.layers) - 1, -1, -1):
            sub = self._sub(P, i)
            d, g = self.layers[i].backward(sub, caches[i], d, need_dx=i > 0)
            for k, v in g.items():
                cells[f"{i}.{k}"] = v
        return loss, cells

    def decision_function(self, X: NDArray, theta: NDArray | None = None,
                          batch_size: int = 512) -> NDArray:
        """Model output (logits for "bce"), shape (n,) or (n, out)."""
        X = np.asarray(X)
        check_finite("Sequential", "inputs", X)
        if len(X) == 0:
            raise ValueError("Sequential: no samples")
        P = self.registry.expand(self._theta(theta))
        outs = [self._forward(P, X[i:i + batch_size])[0] for i in range(0, len(X), batch_size)]
        out = np.concatenate(outs)
        return out[:, 0] if self.loss_name == "bce" else out

    def predict_proba(self, X: NDArray, theta: NDArray | None = None) -> NDArray:
        """Probability of class 1, shape (n,)."""
        return 0.5 * (1.0 + np.tanh(0.5 * self.decision_function(X, theta)))

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        from . import layer_class
        layers = [layer_class(name)(**cfg) for name, cfg in config["layers"]]
        return cls(layers, config["loss"], config["random_state"])
