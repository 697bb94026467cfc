"""Layers with exact hand-written gradients, every weight held by a tie map.

A layer declares its weight arrays through local tie maps (``ties()``) over
``n_atoms`` atoms of its own; a :class:`~hmmtie.neural.params.Registry`
places them in the model's free vector.  ``forward`` takes the *full*
arrays (``{"W": ..., "b": ...}``) and ``backward`` returns the gradient of
every full array cell by cell (the untied gradient); the registry reduces
it onto atoms.  So a convolution is a locally connected layer whose tie map
repeats across positions, and its parameter count is the number of atoms in
that map -- never a formula.

Sequence inputs are channels-last: shape (n_samples, length, channels).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from .._validation import check_count
from ..tying import FIXED

__all__ = [
    "Layer", "Dense", "LocallyConnected1D", "Conv1D", "Flatten", "ReLU", "Tanh",
    "GlobalPool", "conv_output_length", "toeplitz_tie", "palindromic_tie",
]


def check_size(owner: str, name: str, value, low: int = 1) -> int:
    """An integer >= low (a float, a bool or a string is an error, never truncated)."""
    return check_count(f"{owner}: {name}", value, low)


def _check_tie_shapes(layer: str, given: dict | None, default: dict) -> dict:
    if given is None:
        return default
    unknown = sorted(set(given) - set(default))
    if unknown:
        raise ValueError(f"{layer}: unknown tie map(s) {unknown}; this layer has {sorted(default)}")
    out = {}
    for k, t in default.items():
        g = np.asarray(given.get(k, t))
        if g.shape != t.shape:
            raise ValueError(f"{layer}: tie map {k!r} has shape {g.shape}, expected {t.shape}")
        if g.dtype.kind not in "iu":
            raise ValueError(f"{layer}: tie map {k!r} must hold integers, got {g.dtype}")
        out[k] = g.astype(np.int64)
    return out


class Layer:
    """Base class: no parameters, identity shape."""

    n_atoms: int = 0

    def ties(self) -> dict[str, NDArray[np.int64]]:
        """Local tie maps ``{name: tie}`` over atoms ``0..n_atoms-1``."""
        return {}

    def fixed(self) -> dict[str, float | NDArray]:
        return {}

    def init_atoms(self, rng: np.random.Generator) -> NDArray[np.float64]:
        return np.zeros(self.n_atoms)

    def forward(self, P: dict, x: NDArray):
        raise NotImplementedError

    def backward(self, P: dict, cache, dy: NDArray, need_dx: bool = True):
        raise NotImplementedError

    def config(self) -> dict:
        return {}

    def config_arrays(self) -> dict[str, NDArray]:
        """Arrays that ``config()`` refers to as ``{"@array": key}`` (a custom
        tie map and its fixed values), saved beside the config."""
        return {}


def _custom_tie(layer, tie, n_atoms, fixed=None):
    """Record a custom tie (``n_atoms`` required with it) for config()."""
    layer._custom = tie is not None or bool(fixed)
    if tie is None:
        return None
    if n_atoms is None:
        raise ValueError(f"{type(layer).__name__}: a custom tie needs n_atoms (the number of atoms "
                         "its maps use)")
    return check_size(type(layer).__name__, "n_atoms", n_atoms)


def _custom_config(layer, cfg: dict) -> dict:
    if getattr(layer, "_custom", False):
        cfg["n_atoms"] = layer.n_atoms
        cfg["tie"] = {k: {"@array": f"tie.{k}"} for k in layer._tie}
        fixed = getattr(layer, "_fixed", {})
        if fixed:
            cfg["fixed"] = {k: {"@array": f"fixed.{k}"} for k in fixed}
    return cfg


def _custom_arrays(layer) -> dict:
    if not getattr(layer, "_custom", False):
        return {}
    out = {f"tie.{k}": np.asarray(t) for k, t in layer._tie.items()}
    out.update({f"fixed.{k}": np.asarray(v, dtype=float) for k, v in getattr(layer, "_fixed", {}).items()})
    return out


def _fan_in_init(rng, n, fan_in, n_weights):
    a = np.zeros(n)
    a[:n_weights] = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), n_weights)
    return a


class Dense(Layer):
    """Fully connected layer ``y = x W + b``.

    Parameters
    ----------
    in_features, out_features : int
    tie : dict, optional
        Custom local tie maps ``{"W": (in, out), "b": (out,)}`` (e.g. a
        Toeplitz map from :func:`toeplitz_tie`); ``n_atoms`` must then be given.
    n_atoms : int, optional
    fixed : dict, optional
        Values of fixed cells (default 0).
    """

    def __init__(self, in_features: int, out_features: int, tie: dict | None = None,
                 n_atoms: int | None = None, fixed: dict | None = None) -> None:
        self.in_features = check_size("Dense", "in_features", in_features)
        self.out_features = check_size("Dense", "out_features", out_features)
        nw = self.in_features * self.out_features
        default = {"W": np.arange(nw).reshape(self.in_features, self.out_features),
                   "b": nw + np.arange(self.out_features)}
        self._tie = _check_tie_shapes("Dense", tie, default)
        n_custom = _custom_tie(self, tie, n_atoms, fixed)
        self.n_atoms = nw + self.out_features if tie is None else n_custom
        self._fixed = dict(fixed or {})
        unknown = sorted(set(self._fixed) - set(default))
        if unknown:
            raise ValueError(f"Dense: fixed values for unknown array(s) {unknown}; the layer has ['W', 'b']")

    def ties(self):
        return self._tie

    def fixed(self):
        return self._fixed

    def init_atoms(self, rng):
        return _fan_in_init(rng, self.n_atoms, self.in_features,
                            min(self.n_atoms, self.in_features * self.out_features))

    def forward(self, P, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Dense: expected input of shape (n, {self.in_features}), "
                             f"got {x.shape}")
        return x @ P["W"] + P["b"], x

    def backward(self, P, x, dy, need_dx=True):
        g = {"W": x.T @ dy, "b": dy.sum(0)}
        return (dy @ P["W"].T if need_dx else None), g

    def config(self):
        return _custom_config(self, {"in_features": self.in_features, "out_features": self.out_features})

    def config_arrays(self):
        return _custom_arrays(self)


def _resolve_padding(padding, kernel_size, dilation):
    span = dilation * (kernel_size - 1)
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            return span // 2, span - span // 2
        if padding == "full":
            return span, span
    elif isinstance(padding, (int, np.integer)) and not isinstance(padding, (bool, np.bool_)):
        if padding >= 0:
            return int(padding), int(padding)
    elif isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 0 for v in padding):
        return int(padding[0]), int(padding[1])
    raise ValueError(f"padding must be 'valid', 'same', 'full', an integer >= 0 or a pair (left, right) of "
                     f"them, got {padding!r}")


def conv_output_length(length: int, kernel_size: int, stride: int = 1,
                       padding="valid", dilation: int = 1) -> int:
    """Number of output positions of a 1-D convolution."""
    left, right = _resolve_padding(padding, kernel_size, dilation)
    return (length + left + right - dilation * (kernel_size - 1) - 1) // stride + 1


class _Window:
    """Shared im2col machinery of Conv1D and LocallyConnected1D."""

    def _setup(self, name, in_channels, kernel_size, stride, padding, dilation):
        self._name = name
        self.in_channels = check_size(name, "in_channels", in_channels)
        self.kernel_size = check_size(name, "kernel_size", kernel_size)
        self.stride = check_size(name, "stride", stride)
        self.dilation = check_size(name, "dilation", dilation)
        self.padding = padding
        try:
            self._pad = _resolve_padding(padding, self.kernel_size, self.dilation)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    def _patches(self, x):
        if x.ndim != 3 or x.shape[2] != self.in_channels:
            raise ValueError(f"{self._name}: expected input of shape (n, length, "
                             f"{self.in_channels}), got {x.shape}")
        left, right = self._pad
        xp = np.pad(x, ((0, 0), (left, right), (0, 0))) if left or right else x
        P = (xp.shape[1] - self.dilation * (self.kernel_size - 1) - 1) // self.stride + 1
        if P < 1:
            raise ValueError(f"{self._name}: input of shape {x.shape} is shorter than "
                             f"the kernel span {self.dilation * (self.kernel_size - 1) + 1}")
        span = self.dilation * (self.kernel_size - 1) + 1
        # a strided view copied once: much faster than fancy indexing
        win = sliding_window_view(xp, span, axis=1)[:, ::self.stride, :, ::self.dilation]
        return np.ascontiguousarray(win[:, :P].transpose(0, 1, 3, 2)), xp.shape[1]  # (n,P,K,C)

    def _unpatch(self, dpatches, padded_len, length):
        n, P, K, C = dpatches.shape
        dxp = np.zeros((n, padded_len, C))
        s, d = self.stride, self.dilation
        for k in range(K):
            dxp[:, k * d: k * d + s * (P - 1) + 1: s, :] += dpatches[:, :, k, :]
        left = self._pad[0]
        return dxp[:, left: left + length, :]


class Conv1D(_Window, Layer):
    """1-D convolution with padding, stride and dilation.

    ``y[n, p, o] = sum_{k, c} x_pad[n, p*stride + k*dilation, c] W[k, c, o] + b[o]``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
    stride, dilation : int
    padding : {"valid", "same", "full"} or int or (left, right)
    tie : dict, optional
        Custom local tie maps ``{"W": (K, in, out), "b": (out,)}``; give
        ``n_atoms`` with it.
    n_atoms : int, optional
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding="valid", dilation: int = 1,
                 tie: dict | None = None, n_atoms: int | None = None) -> None:
        self._setup(type(self).__name__, in_channels, kernel_size, stride, padding, dilation)
        self.out_channels = check_size(self._name, "out_channels", out_channels)
        default, n_default = self._default_ties()
        self._tie = _check_tie_shapes(self._name, tie, default)
        n_custom = _custom_tie(self, tie, n_atoms)
        self.n_atoms = n_default if tie is None else n_custom

    def _default_ties(self):
        K, C, O = self.kernel_size, self.in_channels, self.out_channels
        nw = K * C * O
        return {"W": np.arange(nw).reshape(K, C, O), "b": nw + np.arange(O)}, nw + O

    def ties(self):
        return self._tie

    def init_atoms(self, rng):
        n_w = int(self._tie["W"].max()) + 1 if self._tie["W"].size else 0
        return _fan_in_init(rng, self.n_atoms, self.kernel_size * self.in_channels, n_w)

    def forward(self, P, x):
        patches, plen = self._patches(x)
        n, Pn, K, C = patches.shape
        W = P["W"]
        y = patches.reshape(n * Pn, K * C) @ W.reshape(K * C, -1)
        y = y.reshape(n, Pn, -1) + P["b"]
        return y, (patches, plen, x.shape[1])

    def backward(self, P, cache, dy, need_dx=True):
        patches, plen, length = cache
        n, Pn, K, C = patches.shape
        W = P["W"]
        dy2 = dy.reshape(n * Pn, -1)
        g = {"W": (patches.reshape(n * Pn, K * C).T @ dy2).reshape(W.shape),
             "b": dy2.sum(0)}
        if not need_dx:
            return None, g
        # one small product per kernel offset, added at its shift: avoids
        # materialising the (n, P, K, C) patch gradient
        dxp = np.zeros((n, plen, C))
        s, d = self.stride, self.dilation
        for k in range(K):
            dxp[:, k * d: k * d + s * (Pn - 1) + 1: s, :] += (dy2 @ W[k].T).reshape(n, Pn, C)
        left = self._pad[0]
        return dxp[:, left: left + length, :], g

    def config(self):
        return _custom_config(self, {"in_channels": self.in_channels, "out_channels": self.out_channels,
                                     "kernel_size": self.kernel_size, "stride": self.stride,
                                     "padding": self.padding, "dilation": self.dilation})

    def config_arrays(self):
        return _custom_arrays(self)


class LocallyConnected1D(_Window, Layer):
    """Like :class:`Conv1D`, but with its own filter at every output position.

    Weights ``W`` of shape (n_positions, K, in, out) and bias (n_positions, out).

    Parameters
    ----------
    length : int
        Input length (fixes the number of output positions).
    in_channels, out_channels, kernel_size, stride, padding, dilation
        As for :class:`Conv1D`.
    tie, n_atoms : optional
        Custom local tie maps; see :meth:`from_conv`.
    """

    def __init__(self, length: int, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding="valid", dilation: int = 1,
                 tie: dict | None = None, n_atoms: int | None = None) -> None:
        self._setup("LocallyConnected1D", in_channels, kernel_size, stride, padding, dilation)
        self.length = check_size("LocallyConnected1D", "length", length)
        self.out_channels = check_size("LocallyConnected1D", "out_channels", out_channels)
        self.n_positions = conv_output_length(self.length, self.kernel_size, self.stride,
                                              padding, self.dilation)
        if self.n_positions < 1:
            raise ValueError(f"LocallyConnected1D: input length {self.length} (padded {sum(self._pad)}) is "
                             f"shorter than the kernel span {self.dilation * (self.kernel_size - 1) + 1}")
        Pn, K, C, O = self.n_positions, self.kernel_size, self.in_channels, self.out_channels
        nw = Pn * K * C * O
        default = {"W": np.arange(nw).reshape(Pn, K, C, O),
                   "b": nw + np.arange(Pn * O).reshape(Pn, O)}
        self._tie = _check_tie_shapes("LocallyConnected1D", tie, default)
        n_custom = _custom_tie(self, tie, n_atoms)
        self.n_atoms = nw + Pn * O if tie is None else n_custom

    @classmethod
    def from_conv(cls, conv: Conv1D, length: int) -> "LocallyConnected1D":
        """The locally connected layer whose tie map repeats ``conv``'s at every position."""
        Pn = conv_output_length(length, conv.kernel_size, conv.stride, conv.padding,
                                conv.dilation)
        t = conv.ties()
        tie = {"W": np.broadcast_to(t["W"], (Pn,) + t["W"].shape).copy(),
               "b": np.broadcast_to(t["b"], (Pn,) + t["b"].shape).copy()}
        return cls(length, conv.in_channels, conv.out_channels, conv.kernel_size,
                   conv.stride, conv.padding, conv.dilation, tie=tie, n_atoms=conv.n_atoms)

    def ties(self):
        return self._tie

    def init_atoms(self, rng):
        n_w = int(self._tie["W"].max()) + 1
        return _fan_in_init(rng, self.n_atoms, self.kernel_size * self.in_channels, n_w)

    def forward(self, P, x):
        if x.ndim == 3 and x.shape[1] != self.length:
            raise ValueError(f"LocallyConnected1D: expected input of shape (n, {self.length}, "
                             f"{self.in_channels}), got {x.shape}")
        patches, plen = self._patches(x)
        n, Pn, K, C = patches.shape
        pt = patches.reshape(n, Pn, K * C).transpose(1, 0, 2)          # (P, n, KC)
        y = np.matmul(pt, P["W"].reshape(Pn, K * C, -1))                # (P, n, O)
        return y.transpose(1, 0, 2) + P["b"], (pt, plen, x.shape[1], (n, Pn, K, C))

    def backward(self, P, cache, dy, need_dx=True):
        pt, plen, length, (n, Pn, K, C) = cache
        dyt = dy.transpose(1, 0, 2)                                     # (P, n, O)
        g = {"W": np.matmul(pt.transpose(0, 2, 1), dyt).reshape(P["W"].shape),
             "b": dy.sum(0)}
        if not need_dx:
            return None, g
        dpt = np.matmul(dyt, P["W"].reshape(Pn, K * C, -1).transpose(0, 2, 1))
        dpatches = dpt.transpose(1, 0, 2).reshape(n, Pn, K, C)
        return self._unpatch(dpatches, plen, length), g

    def config(self):
        return _custom_config(self, {"length": self.length, "in_channels": self.in_channels,
                                     "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                                     "stride": self.stride, "padding": self.padding,
                                     "dilation": self.dilation})

    def config_arrays(self):
        return _custom_arrays(self)


def toeplitz_tie(conv: Conv1D, length: int) -> dict[str, NDArray[np.int64]]:
    """Tie maps of the dense (block) Toeplitz matrix of ``conv`` at a given length.

    A :class:`Dense` layer with these maps (over ``conv.n_atoms`` atoms) maps
    a flattened input of shape (n, length * in) to the flattened output of
    ``conv``; cells outside the band are FIXED at zero.

    Returns
    -------
    dict with "W" of shape (length * in, n_positions * out) and "b" of shape
    (n_positions * out,)
    """
    left, _ = conv._pad
    K, C, O = conv.kernel_size, conv.in_channels, conv.out_channels
    Pn = conv_output_length(length, K, conv.stride, conv.padding, conv.dilation)
    W = np.full((length, C, Pn, O), FIXED, dtype=np.int64)
    tw = conv.ties()["W"]
    for p in range(Pn):
        for k in range(K):
            src = p * conv.stride + k * conv.dilation - left
            if 0 <= src < length:
                W[src, :, p, :] = tw[k]
    b = np.broadcast_to(conv.ties()["b"], (Pn, O)).ravel().copy()
    return {"W": W.reshape(length * C, Pn * O), "b": b}


def palindromic_tie(kernel_size: int, in_channels: int, out_channels: int) -> tuple[NDArray, int]:
    """Tie map (K, in, out) with ``w[i] = w[K-1-i]``: ceil(K/2) atoms per (in, out) pair."""
    half = (kernel_size + 1) // 2
    pos = np.minimum(np.arange(kernel_size), kernel_size - 1 - np.arange(kernel_size))
    tie = (pos[:, None, None] * in_channels * out_channels
           + np.arange(in_channels * out_channels).reshape(in_channels, out_channels)[None])
    return tie.astype(np.int64), half * in_channels * out_channels


class Flatten(Layer):
    """(n, length, channels) -> (n, length * channels)."""

    def forward(self, P, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, P, shape, dy, need_dx=True):
        return dy.reshape(shape), {}


class ReLU(Layer):
    """Rectified linear unit."""

    def forward(self, P, x):
        m = x > 0
        return x * m, m

    def backward(self, P, m, dy, need_dx=True):
        return dy * m, {}


class Tanh(Layer):
    """Hyperbolic tangent (smooth: used where finite differences must be exact)."""

    def forward(self, P, x):
        y = np.tanh(x)
        return y, y

    def backward(self, P, y, dy, need_dx=True):
        return dy * (1.0 - y * y), {}


class GlobalPool(Layer):
    """Pool over positions: (n, length, channels) -> (n, channels).

    Parameters
    ----------
    mode : {"max", "mean"}
    """

    def __init__(self, mode: str = "max") -> None:
        if mode not in ("max", "mean"):
            raise ValueError(f"GlobalPool: mode must be 'max' or 'mean', got {mode!r}")
        self.mode = mode

    def forward(self, P, x):
        if x.ndim != 3:
            raise ValueError(f"GlobalPool: expected input of shape (n, length, channels), "
                             f"got {x.shape}")
        if self.mode == "mean":
            return x.mean(1), x.shape
        arg = x.argmax(1)
        return np.take_along_axis(x, arg[:, None, :], 1)[:, 0, :], (x.shape, arg)

    def backward(self, P, cache, dy, need_dx=True):
        if self.mode == "mean":
            shape = cache
            return np.broadcast_to(dy[:, None, :] / shape[1], shape).copy(), {}
        shape, arg = cache
        dx = np.zeros(shape)
        np.put_along_axis(dx, arg[:, None, :], dy[:, None, :], 1)
        return dx, {}

    def config(self):
        return {"mode": self.mode}
