"""Siamese comparison: one encoder, applied to both sequences.

The encoder -- ``E = tanh(Conv1D(x))``, "same" padding, shape (L, H) -- is
registered twice, as ``enc_a`` and ``enc_b``, with the *same* atoms: the
tie map, not object identity, makes the two branches one network, and its
gradient is the sum of both uses via :func:`hmmtie.tying.reduce`.

Heads (``score(a, b)``, symmetric in ``a`` and ``b``):

- ``"distance"``: ``-|mean_i E_a[i] - mean_j E_b[j]|^2``;
- ``"alignment"``: the pair-HMM forward log-score (states M, X, Y; gap
  open ``delta`` and extend ``eps`` shared by X and Y) over match scores
  ``s[i, j] = E_a[i] S E_b[j]`` with a symmetric substitution table ``S``
  (a symmetric tie map).  Its gradient in ``s`` is the posterior match
  probability -- the expected alignment from forward-backward.

Loss: half the mean squared error between scores and targets.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from .._validation import check_number
from .layers import Conv1D, check_size
from .models import TiedModel
from .params import Registry

__all__ = ["SiameseModel", "pair_forward", "pair_posterior"]


@numba.njit(cache=True)
def _lse2(a, b):
    m = max(a, b)
    if m == -np.inf:
        return -np.inf
    return m + math.log(math.exp(a - m) + math.exp(b - m))


@numba.njit(cache=True)
def _lse3(a, b, c):
    m = max(a, max(b, c))
    if m == -np.inf:
        return -np.inf
    return m + math.log(math.exp(a - m) + math.exp(b - m) + math.exp(c - m))


@numba.njit(cache=True)
def _pair_fb(s, lmm, lmx, lxm, lxx):
    La, Lb = s.shape
    ninf = -np.inf
    fM = np.full((La + 1, Lb + 1), ninf)
    fX = np.full((La + 1, Lb + 1), ninf)
    fY = np.full((La + 1, Lb + 1), ninf)
    fM[0, 0] = 0.0
    for i in range(La + 1):
        for j in range(Lb + 1):
            if i > 0 and j > 0:
                fM[i, j] = s[i - 1, j - 1] + _lse3(fM[i - 1, j - 1] + lmm,
                                                   fX[i - 1, j - 1] + lxm,
                                                   fY[i - 1, j - 1] + lxm)
            if i > 0:
                fX[i, j] = _lse2(fM[i - 1, j] + lmx, fX[i - 1, j] + lxx)
            if j > 0:
                fY[i, j] = _lse2(fM[i, j - 1] + lmx, fY[i, j - 1] + lxx)
    logz = _lse3(fM[La, Lb], fX[La, Lb], fY[La, Lb])
    bM = np.full((La + 1, Lb + 1), ninf)
    bX = np.full((La + 1, Lb + 1), ninf)
    bY = np.full((La + 1, Lb + 1), ninf)
    bM[La, Lb] = 0.0
    bX[La, Lb] = 0.0
    bY[La, Lb] = 0.0
    for i in range(La, -1, -1):
        for j in range(Lb, -1, -1):
            if i == La and j == Lb:
                continue
            m_next = ninf
            if i < La and j < Lb:
                m_next = s[i, j] + bM[i + 1, j + 1]
            x_next = bX[i + 1, j] if i < La else ninf
            y_next = bY[i, j + 1] if j < Lb else ninf
            bM[i, j] = _lse3(lmm + m_next, lmx + x_next, lmx + y_next)
            bX[i, j] = _lse2(lxm + m_next, lxx + x_next)
            bY[i, j] = _lse2(lxm + m_next, lxx + y_next)
    post = np.empty((La, Lb))
    for i in range(La):
        for j in range(Lb):
            post[i, j] = math.exp(fM[i + 1, j + 1] + bM[i + 1, j + 1] - logz)
    return logz, post


def _log_trans(delta, eps):
    delta = check_number("pair HMM: delta", delta)
    eps = check_number("pair HMM: eps", eps)
    if not (0 < delta < 0.5 and 0 < eps < 1):
        raise ValueError(f"pair HMM: need 0 < delta < 0.5 and 0 < eps < 1, got delta={delta}, "
                         f"eps={eps}")
    return np.log(1 - 2 * delta), np.log(delta), np.log(1 - eps), np.log(eps)


def pair_posterior(s: NDArray, delta: float = 0.1, eps: float = 0.4) -> tuple[float, NDArray]:
    """Pair-HMM forward log-score over match log-odds ``s`` and its gradient.

    Parameters
    ----------
    s : array of shape (La, Lb)
        Log-odds of matching ``a[i]`` with ``b[j]`` (inserts have odds 1).
    delta, eps : float
        Gap open and gap extend, the same for both insert states.

    Returns
    -------
    log_score : float
        Log of the sum over all global alignments.
    posterior : array of shape (La, Lb)
        ``d log_score / d s``: the posterior probability that ``a[i]`` is
        aligned to ``b[j]`` (the expected alignment).
    """
    s = np.ascontiguousarray(s, dtype=float)
    if s.ndim != 2 or 0 in s.shape:
        raise ValueError(f"pair_posterior: match scores must have shape (La, Lb) with "
                         f"La, Lb >= 1, got {s.shape}")
    return _pair_fb(s, *_log_trans(delta, eps))


def pair_forward(s: NDArray, delta: float = 0.1, eps: float = 0.4) -> float:
    """Pair-HMM forward log-score; see :func:`pair_posterior`."""
    return pair_posterior(s, delta, eps)[0]


class SiameseModel(TiedModel):
    """Shared convolutional encoder with a symmetric comparison head.

    Parameters
    ----------
    n_hidden : int
        Encoder channels H.
    kernel_size : int
    head : {"distance", "alignment"}
    in_channels : int
    delta, eps : float
        Pair-HMM gap open / extend (alignment head).
    shared : bool
        If False the two branches get separate atoms (the untied reference).
    random_state : int
    """

    def __init__(self, n_hidden: int = 4, kernel_size: int = 3, head: str = "alignment",
                 in_channels: int = 4, delta: float = 0.1, eps: float = 0.4,
                 shared: bool = True, random_state: int = 0) -> None:
        if head not in ("distance", "alignment"):
            raise ValueError(f"SiameseModel: head must be 'distance' or 'alignment', got {head!r}")
        for k, v in (("n_hidden", n_hidden), ("kernel_size", kernel_size), ("in_channels", in_channels)):
            check_size("SiameseModel", k, v)
        _log_trans(delta, eps)
        self.head, self.delta, self.eps, self.shared = head, delta, eps, shared
        self.encoder = Conv1D(in_channels, n_hidden, kernel_size, padding="same")
        rng = np.random.default_rng(random_state)
        self.registry = reg = Registry()
        init = self.encoder.init_atoms(rng)
        reg.add_block("enc_a", self.encoder.ties(), self.encoder.n_atoms, init)
        if shared:
            for k in self.encoder.ties():
                reg.alias(f"enc_b.{k}", reg.ties[f"enc_a.{k}"])
        else:
            reg.add_block("enc_b", self.encoder.ties(), self.encoder.n_atoms, init)
        if head == "alignment":
            H = n_hidden
            iu = np.triu_indices(H)
            tie = np.zeros((H, H), dtype=np.int64)
            tie[iu] = np.arange(len(iu[0]))
            tie.T[iu] = np.arange(len(iu[0]))          # S[i, j] = S[j, i]
            reg.new("S", tie, len(iu[0]), np.eye(H)[iu] * 1.0)
        self.theta_ = reg.init_theta()
        self._config = {"n_hidden": n_hidden, "kernel_size": kernel_size, "head": head,
                        "in_channels": in_channels, "delta": delta, "eps": eps,
                        "shared": shared, "random_state": random_state}

    @classmethod
    def from_config(cls, config: dict) -> "SiameseModel":
        return cls(**config)

    def _encode(self, P, pre, x):
        W = {"W": P[f"{pre}.W"], "b": P[f"{pre}.b"]}
        u, cache = self.encoder.forward(W, x[None])
        e = np.tanh(u[0])
        return e, (W, cache, e)

    def _encode_back(self, enc, de):
        W, cache, e = enc
        _, g = self.encoder.backward(W, cache, (de * (1 - e * e))[None], need_dx=False)
        return g

    def _pair(self, P, a, b, dscore=None):
        ea, ca = self._encode(P, "enc_a", a)
        eb, cb = self._encode(P, "enc_b", b)
        if self.head == "distance":
            d = ea.mean(0) - eb.mean(0)
            score = -float(d @ d)
            if dscore is None:
                return score, None
            dm = -2 * d * dscore
            dea = np.broadcast_to(dm / len(ea), ea.shape)
            deb = np.broadcast_to(-dm / len(eb), eb.shape)
            g = {}
        else:
            S = P["S"]
            s = ea @ S @ eb.T
            score, post = pair_posterior(s, self.delta, self.eps)
            if dscore is None:
                return score, None
            ds = post * dscore
            dea, deb = ds @ eb @ S.T, ds.T @ ea @ S
            g = {"S": ea.T @ ds @ eb}
        for pre, enc, de in (("enc_a", ca, dea), ("enc_b", cb, deb)):
            for k, v in self._encode_back(enc, de).items():
                g[f"{pre}.{k}"] = v
        return score, g

    def _check_pairs(self, pairs):
        C = self.encoder.in_channels
        for i, (a, b) in enumerate(pairs):
            for name, x in (("a", a), ("b", b)):
                if np.ndim(x) != 2 or np.shape(x)[1] != C:
                    raise ValueError(f"SiameseModel: pair {i} sequence {name} must have shape "
                                     f"(length, {C}), got {np.shape(x)}")

    def score(self, a: NDArray, b: NDArray, theta: NDArray | None = None) -> float:
        """Similarity score of two sequences of shapes (La, C) and (Lb, C)."""
        self._check_pairs([(a, b)])
        P = self.registry.expand(self._theta(theta))
        return self._pair(P, np.asarray(a, float), np.asarray(b, float))[0]

    def _loss_cells(self, P, pairs, targets):
        self._check_pairs(pairs)
        targets = np.asarray(targets, dtype=float)
        if targets.shape != (len(pairs),):
            raise ValueError(f"SiameseModel: targets must have shape ({len(pairs)},), "
                             f"got {targets.shape}")
        n = len(pairs)
        cells = {k: np.zeros(t.shape) for k, t in self.registry.ties.items()}
        loss = 0.0
        for (a, b), t in zip(pairs, targets):
            a, b = np.asarray(a, float), np.asarray(b, float)
            sc, _ = self._pair(P, a, b)
            r = sc - t
            loss += 0.5 * r * r / n
            _, g = self._pair(P, a, b, dscore=r / n)
            for k, v in g.items():
                cells[k] += v
        return loss, cells
