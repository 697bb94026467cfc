"""Reverse-complement weight sharing for one-hot DNA (channels A, C, G, T).

The reverse complement of a one-hot sequence ``x`` of shape (n, length, 4)
is ``x[:, ::-1, ::-1]`` (complement of channel ``c`` is ``3 - c``).  All
symmetries here are tie maps on ordinary :class:`~hmmtie.neural.layers.Conv1D`
/ :class:`~hmmtie.neural.layers.Dense` weights:

- :class:`RCConv1D` -- each free filter ``w`` is paired with its twin
  ``w[::-1, ::-1]`` (output channels ``f`` and ``F + f``); the twins are
  *cells tied to the same atoms*, and the convolution runs once over all
  ``2F`` channels (no second pass that could be added twice).
- :class:`RCPool` / :class:`RCDense` -- strand-invariant pooling and head.
- :class:`PalindromicConv1D` -- ``w[i] = w[K-1-i]``.
- :class:`RCPalindromicConv1D` -- each filter equals its own reverse complement.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .layers import Conv1D, Dense, GlobalPool, Layer, check_size, palindromic_tie

__all__ = [
    "ALPHABET", "one_hot", "reverse_complement", "check_one_hot", "RCConv1D", "RCPool",
    "RCDense", "PalindromicConv1D", "RCPalindromicConv1D", "rc_pair_tie",
    "rc_palindromic_tie",
]

ALPHABET = "ACGT"


def one_hot(seqs, dtype=np.float64) -> NDArray:
    """One-hot encode DNA strings of equal length: shape (n, length, 4)."""
    if isinstance(seqs, (str, bytes)):
        raise ValueError("one_hot: expected a list of DNA strings, got a single string")
    seqs = list(seqs)
    if not seqs:
        raise ValueError("one_hot: no sequences")
    for r, s in enumerate(seqs):
        if not isinstance(s, str):
            raise ValueError(f"one_hot: record {r} is a {type(s).__name__}, expected a str")
        if len(s) != len(seqs[0]):
            raise ValueError(f"one_hot: record {r} has length {len(s)}, record 0 has {len(seqs[0])}; "
                             "sequences must have equal lengths")
        if not s.isascii():
            bad = next(p for p, ch in enumerate(s) if not ch.isascii())
            raise ValueError(f"one_hot: record {r} position {bad} holds {s[bad]!r}; expected one of {ALPHABET}")
    lut = np.full(256, 255, dtype=np.uint8)
    for i, ch in enumerate(ALPHABET):
        lut[ord(ch)] = i
        lut[ord(ch.lower())] = i
    codes = np.array([lut[np.frombuffer(s.encode(), dtype=np.uint8)] for s in seqs])
    if (codes == 255).any():
        r, p = np.argwhere(codes == 255)[0]
        raise ValueError(f"one_hot: record {r} position {p} holds {seqs[r][p]!r}; "
                         f"expected one of {ALPHABET}")
    return np.eye(4, dtype=dtype)[codes]


def reverse_complement(x: NDArray) -> NDArray:
    """Reverse complement of one-hot DNA, shape (n, length, 4) -> same."""
    return x[:, ::-1, ::-1]


def check_one_hot(layer: str, x: NDArray) -> None:
    """Raise a one-line ValueError unless ``x`` is one-hot DNA of shape (n, length, 4)."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != 4:
        raise ValueError(f"{layer}: expected one-hot DNA of shape (n, length, 4), got {x.shape}")
    if not (np.all((x == 0) | (x == 1)) and np.all(x.sum(2) == 1)):
        bad = np.argwhere(~np.isclose(x.sum(2), 1) | ~np.all((x == 0) | (x == 1), axis=2))
        where = f" (first at sample {bad[0][0]}, position {bad[0][1]})" if bad.size else ""
        raise ValueError(f"{layer}: input of shape {x.shape} is not one-hot{where}; "
                         f"reverse-complement sharing needs exactly one 1 per position")


def rc_pair_tie(kernel_size: int, n_filters: int) -> tuple[dict, int]:
    """Tie maps of a filter bank of ``n_filters`` free filters plus their RC twins.

    Returns
    -------
    ties : {"W": (K, 4, 2F), "b": (2F,)}
    n_atoms : int
        ``K * 4 * F + F``.
    """
    K, F = kernel_size, n_filters
    free = np.arange(K * 4 * F).reshape(K, 4, F)
    W = np.concatenate([free, free[::-1, ::-1, :]], axis=2)
    bf = K * 4 * F + np.arange(F)
    return {"W": W, "b": np.concatenate([bf, bf])}, K * 4 * F + F


def rc_palindromic_tie(kernel_size: int, out_channels: int) -> tuple[NDArray, int]:
    """Tie map (K, 4, out) with ``w[k, c] = w[K-1-k, 3-c]``: 2K atoms per filter."""
    K = kernel_size
    lin = np.arange(K * 4).reshape(K, 4)
    canon = np.minimum(lin, lin[::-1, ::-1])
    _, inv = np.unique(canon, return_inverse=True)
    inv = inv.reshape(K, 4)
    n_per = 2 * K
    tie = inv[:, :, None] * out_channels + np.arange(out_channels)[None, None, :]
    return tie.astype(np.int64), n_per * out_channels


def _require_symmetric(layer) -> None:
    """Strand symmetry needs as much padding on the left as on the right."""
    left, right = layer._pad
    if left != right:
        raise ValueError(f"{type(layer).__name__}: padding {layer.padding!r} pads {left} left and {right} right "
                         f"(kernel span {layer.dilation * (layer.kernel_size - 1) + 1}); reverse-complement "
                         "symmetry needs symmetric padding: an odd span with 'same', or 'valid', 'full', an "
                         "integer")


class RCConv1D(Conv1D):
    """Reverse-complement convolution: ``n_filters`` free filters, ``2 * n_filters`` outputs.

    Output channel ``F + f`` uses the reverse complement of filter ``f``, so
    ``y(RC(x)) = y(x)[:, ::-1, twin]`` (stride 1).  The padding must be
    symmetric (``"same"`` with an even kernel span is refused).

    Parameters
    ----------
    n_filters, kernel_size : int
    padding, dilation : as :class:`~hmmtie.neural.layers.Conv1D`
    """

    def __init__(self, n_filters: int, kernel_size: int, padding="valid",
                 dilation: int = 1) -> None:
        self.n_filters = check_size("RCConv1D", "n_filters", n_filters)
        super().__init__(4, 2 * self.n_filters, kernel_size, 1, padding, dilation)
        _require_symmetric(self)

    def _default_ties(self):
        return rc_pair_tie(self.kernel_size, self.n_filters)

    def forward(self, P, x):
        check_one_hot("RCConv1D", x)
        return super().forward(P, x)

    def config(self):
        return {"n_filters": self.n_filters, "kernel_size": self.kernel_size,
                "padding": self.padding, "dilation": self.dilation}


class PalindromicConv1D(Conv1D):
    """Convolution whose filters read the same forwards and backwards (``w[i] = w[K-1-i]``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 padding="valid", dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, 1, padding, dilation)

    def _default_ties(self):
        W, n = palindromic_tie(self.kernel_size, self.in_channels, self.out_channels)
        return {"W": W, "b": n + np.arange(self.out_channels)}, n + self.out_channels

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "padding": self.padding,
                "dilation": self.dilation}


class RCPalindromicConv1D(Conv1D):
    """Convolution over one-hot DNA whose every filter is its own reverse complement."""

    def __init__(self, out_channels: int, kernel_size: int, padding="valid",
                 dilation: int = 1) -> None:
        super().__init__(4, out_channels, kernel_size, 1, padding, dilation)
        _require_symmetric(self)

    def _default_ties(self):
        W, n = rc_palindromic_tie(self.kernel_size, self.out_channels)
        return {"W": W, "b": n + np.arange(self.out_channels)}, n + self.out_channels

    def forward(self, P, x):
        check_one_hot("RCPalindromicConv1D", x)
        return super().forward(P, x)

    def config(self):
        return {"out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "padding": self.padding, "dilation": self.dilation}


class RCPool(Layer):
    """Strand-invariant pooling: (n, length, 2F) -> (n, F).

    Channel ``f`` of the output pools channel ``f`` and its twin ``F + f``
    over all positions (``mode`` "max" or "mean"), so it is unchanged when
    the input strand is reversed.
    """

    def __init__(self, mode: str = "max") -> None:
        self._pool = GlobalPool(mode)
        self.mode = mode

    def forward(self, P, x):
        if x.ndim != 3 or x.shape[2] % 2:
            raise ValueError(f"RCPool: expected input of shape (n, length, 2F), got {x.shape}")
        F = x.shape[2] // 2
        both = np.concatenate([x[:, :, :F], x[:, :, F:]], axis=1)
        y, c = self._pool.forward(P, both)
        return y, (c, x.shape[1], F)

    def backward(self, P, cache, dy, need_dx=True):
        c, L, F = cache
        db, _ = self._pool.backward(P, c, dy)
        return np.concatenate([db[:, :L], db[:, L:]], axis=2), {}

    def config(self):
        return {"mode": self.mode}


class RCDense(Dense):
    """Dense head over (n, 2F) features whose twin inputs ``f``, ``F + f`` share a weight.

    After :class:`~hmmtie.neural.layers.GlobalPool` of an :class:`RCConv1D`
    output, reversing the strand only swaps twins, so the head is invariant.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        check_size("RCDense", "in_features", in_features)
        if in_features % 2:
            raise ValueError(f"RCDense: in_features must be even (2F), got {in_features}")
        F, O = in_features // 2, out_features
        half = np.arange(F * O).reshape(F, O)
        tie = {"W": np.concatenate([half, half]), "b": F * O + np.arange(O)}
        super().__init__(in_features, out_features, tie=tie, n_atoms=F * O + O)
        self._custom = False  # the twin tie is the layer's structure, rebuilt from its config

    def init_atoms(self, rng):
        a = np.zeros(self.n_atoms)
        nw = self.n_atoms - self.out_features
        a[:nw] = rng.normal(0, 1 / np.sqrt(self.in_features), nw)
        return a
