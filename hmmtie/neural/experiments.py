"""Sample-efficiency experiment: planted CTCF motifs in random DNA.

Positives are uniform random DNA with one CTCF site (sampled from the
JASPAR MA0139.1 matrix) planted at a random position on a random strand;
negatives are uniform random DNA.  Four classifiers that differ only in how
their first layer's weights are tied -- dense, locally connected,
convolutional, reverse-complement convolutional -- are trained on N
sequences and scored by test AUROC.
"""
from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from .layers import Conv1D, Dense, Flatten, GlobalPool, LocallyConnected1D, ReLU, check_size
from .models import Sequential
from .motifs import ctcf_pwm
from .rc import RCConv1D, RCDense
from .train import Adam, fit

__all__ = ["planted_motif_data", "build_classifier", "auroc", "sample_efficiency",
           "parameter_table", "MODEL_KINDS", "format_table"]

MODEL_KINDS = ("dense", "lc", "conv", "rcconv")


def planted_motif_data(n: int, length: int = 100, pwm: NDArray | None = None,
                       random_state: int = 0) -> tuple[NDArray, NDArray]:
    """Random one-hot DNA, half of it with one planted motif site.

    Parameters
    ----------
    n : int
        Number of sequences (``n // 2`` positives, the rest negatives, shuffled).
    length : int
    pwm : array of shape (K, 4), default :func:`~hmmtie.neural.motifs.ctcf_pwm`
    random_state : int

    Returns
    -------
    X : array of shape (n, length, 4)
    y : array of shape (n,), 1.0 where a site was planted
    """
    n = check_size("planted_motif_data", "n", n, low=0)
    length = check_size("planted_motif_data", "length", length)
    pwm = ctcf_pwm() if pwm is None else np.asarray(pwm, dtype=float)
    if pwm.ndim != 2 or pwm.shape[1] != 4 or pwm.shape[0] > length:
        raise ValueError(f"planted_motif_data: pwm must have shape (K <= {length}, 4), "
                         f"got {pwm.shape}")
    K = pwm.shape[0]
    if not (np.all(np.isfinite(pwm)) and np.all(pwm >= 0) and np.allclose(pwm.sum(1), 1.0, atol=1e-8)):
        raise ValueError("planted_motif_data: every pwm row must be probabilities (>= 0) that sum to 1")
    rng = np.random.default_rng(random_state)
    codes = rng.integers(0, 4, size=(n, length))
    y = np.zeros(n)
    pos = rng.permutation(n)[: n // 2]
    y[pos] = 1.0
    cdf = np.cumsum(pwm, axis=1)
    for i in pos:
        site = (rng.random((K, 1)) > cdf).sum(1)
        site = np.minimum(site, 3)
        if rng.random() < 0.5:
            site = 3 - site[::-1]
        start = rng.integers(0, length - K + 1)
        codes[i, start:start + K] = site
    return np.eye(4)[codes], y


def build_classifier(kind: str, length: int = 100, kernel_size: int = 19,
                     n_channels: int = 8, hidden: int = 16,
                     random_state: int = 0) -> Sequential:
    """One of the four classifiers of the experiment.

    Parameters
    ----------
    kind : {"dense", "lc", "conv", "rcconv"}
        "dense": flatten, Dense(4L, hidden), ReLU, Dense(hidden, 1).
        "lc" / "conv": LocallyConnected1D / Conv1D (4 -> n_channels, kernel
        ``kernel_size``), ReLU, global max pool, Dense(n_channels, 1).
        "rcconv": RCConv1D (n_channels / 2 free filters and their RC twins),
        ReLU, global max pool, RCDense head (strand-invariant).
    """
    if kind == "dense":
        layers = [Flatten(), Dense(4 * length, hidden), ReLU(), Dense(hidden, 1)]
    elif kind == "lc":
        layers = [LocallyConnected1D(length, 4, n_channels, kernel_size), ReLU(),
                  GlobalPool("max"), Dense(n_channels, 1)]
    elif kind == "conv":
        layers = [Conv1D(4, n_channels, kernel_size), ReLU(), GlobalPool("max"),
                  Dense(n_channels, 1)]
    elif kind == "rcconv":
        if n_channels % 2:
            raise ValueError(f"build_classifier: rcconv needs an even n_channels, got {n_channels}")
        layers = [RCConv1D(n_channels // 2, kernel_size), ReLU(), GlobalPool("max"),
                  RCDense(n_channels, 1)]
    else:
        raise ValueError(f"build_classifier: kind must be one of {MODEL_KINDS}, got {kind!r}")
    return Sequential(layers, loss="bce", random_state=random_state)


def auroc(y_true: NDArray, score: NDArray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties counted half)."""
    y_true, score = np.asarray(y_true), np.asarray(score, dtype=float)
    if y_true.shape != score.shape or y_true.ndim != 1:
        raise ValueError(f"auroc: labels of shape {y_true.shape} and scores of shape {score.shape}; "
                         "expected two 1-D arrays of one length")
    if not np.all(np.isin(y_true, (0, 1))):
        raise ValueError("auroc: labels must be 0 or 1 (or booleans)")
    if not np.all(np.isfinite(score)):
        raise ValueError("auroc: scores hold NaN or infinite values")
    y_true = y_true.astype(bool)
    n1, n0 = y_true.sum(), (~y_true).sum()
    if n1 == 0 or n0 == 0:
        raise ValueError(f"auroc: need both classes, got {n1} positives and {n0} negatives")
    r = rankdata(score)
    return float((r[y_true].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def parameter_table(length: int = 100, kernel_size: int = 19, n_channels: int = 8,
                    hidden: int = 16) -> dict[str, int]:
    """Free-parameter count of each classifier (atoms of its tie maps)."""
    return {k: build_classifier(k, length, kernel_size, n_channels, hidden).n_params
            for k in MODEL_KINDS}


def _auto_batch(N: int) -> int:
    return int(np.clip(N // 16, 16, 128))


def sample_efficiency(sizes=(64, 256, 2048), kinds=MODEL_KINDS, length: int = 100,
                      n_test: int = 2000, n_epochs: int = 80, batch_size: int | None = None,
                      lr: float = 1e-2, patience: int = 20, n_restarts: int | None = None,
                      random_state: int = 0, verbose: bool = False) -> dict:
    """Train every classifier at every training size; report test AUROC.

    Each training set of size N is drawn with seed ``random_state + N``; the
    test set (``n_test`` sequences) with seed ``random_state + 10**6``.  20 %
    of each training set is held out: it drives early stopping (Adam,
    ``patience`` epochs) and picks the best of ``n_restarts`` initialisations
    (seeds ``random_state + 1000 * r``), which removes most of the
    initialisation luck at small N; by default 3 restarts for N <= 256 and
    1 above, where the data pin the fit and a restart costs most.  The
    default batch size is ``clip(N // 16, 16, 128)``.

    Returns
    -------
    dict with "auroc" ({kind: {N: value}}), "n_params" ({kind: int}) and
    "seconds" ({kind: {N: training time, all restarts}})
    """
    X_te, y_te = planted_motif_data(n_test, length, random_state=random_state + 10**6)
    res = {"auroc": {k: {} for k in kinds}, "seconds": {k: {} for k in kinds}, "n_params": {}}
    for N in sizes:
        X, y = planted_motif_data(N, length, random_state=random_state + N)
        bs = _auto_batch(N) if batch_size is None else batch_size
        restarts = (3 if N <= 256 else 1) if n_restarts is None else n_restarts
        for k in kinds:
            t0 = time.perf_counter()
            best = None
            for r in range(restarts):
                model = build_classifier(k, length, random_state=random_state + 1000 * r)
                hist = fit(model, X, y, Adam(lr), n_epochs=n_epochs, batch_size=bs,
                           random_state=random_state, val_fraction=0.2, patience=patience)
                if best is None or min(hist["val_loss"]) < best[0]:
                    best = (min(hist["val_loss"]), model)
            model = best[1]
            res["n_params"][k] = model.n_params
            res["seconds"][k][N] = time.perf_counter() - t0
            res["auroc"][k][N] = auroc(y_te, model.decision_function(X_te))
            if verbose:
                print(f"N={N:5d} {k:7s} AUROC={res['auroc'][k][N]:.3f} "
                      f"({res['seconds'][k][N]:.1f} s)")
    return res


def format_table(res: dict) -> str:
    """Plain-text table of a :func:`sample_efficiency` result."""
    kinds = list(res["auroc"])
    sizes = sorted(next(iter(res["auroc"].values())))
    lines = ["model    params  " + "  ".join(f"N={N:<5d}" for N in sizes)]
    for k in kinds:
        lines.append(f"{k:7s} {res['n_params'][k]:7d}  "
                     + "  ".join(f"{res['auroc'][k][N]:.3f}  " for N in sizes))
    return "\n".join(lines)
