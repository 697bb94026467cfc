"""Tying: one index map for every model.

A model keeps its learnable values in a short vector of *free* values, the
atoms.  A tie map is an integer array with the shape of a full parameter
array: ``full = atoms[tie]``.  Cells holding the same atom index are tied;
cells holding :data:`FIXED` (-1) are fixed and take their value from a
separate array of fixed values.

Learning goes the other way and is the same operation for every model:
statistics gathered per cell are summed onto atoms (:func:`reduce`).  In EM
the statistics are expected counts, in gradient training they are
gradients.  The HMMs, the pair HMM and the neural layers all use this module;
none has tying logic of its own.

The probability blocks of an HMM (start distribution, transition rows,
emission rows) are handled by :class:`ProbBlock`, which implements the exact
M-step for any valid tie map: a closed form where the ties respect rows and
a Newton solve of the row-multiplier dual where an atom is shared by rows
that are otherwise different.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FIXED",
    "expand",
    "reduce",
    "n_uses",
    "ProbBlock",
]

#: Tie-map value of a fixed cell (a structural zero or a frozen value).
FIXED = -1


def _as_tie(tie) -> NDArray[np.int64]:
    tie = np.asarray(tie)
    if tie.dtype.kind not in "iu":
        raise ValueError(f"tie map must hold integers, got dtype {tie.dtype}")
    return tie.astype(np.int64, copy=False)


def expand(atoms: NDArray, tie: NDArray, fixed: NDArray | float = 0.0) -> NDArray:
    """Full parameter array from atoms: ``full = atoms[tie]``.

    Parameters
    ----------
    atoms : array of shape (n_atoms,) or (n_atoms, ...)
        The free values.  A trailing shape is carried through, so a map over
        rows can expand whole vectors.
    tie : integer array of any shape
        Atom index per cell, or :data:`FIXED` for a fixed cell.
    fixed : float or array broadcastable to ``tie.shape + atoms.shape[1:]``
        Values of the fixed cells (ignored elsewhere).

    Returns
    -------
    full : array of shape ``tie.shape + atoms.shape[1:]``
    """
    atoms = np.asarray(atoms)
    tie = _as_tie(tie)
    if atoms.shape[0] == 0:
        safe = np.zeros_like(tie)
        full = np.zeros(tie.shape + atoms.shape[1:], dtype=np.result_type(atoms, float))
    else:
        safe = np.where(tie == FIXED, 0, tie)
        full = atoms[safe].astype(np.result_type(atoms, float), copy=True)
    fixed_mask = tie == FIXED
    if fixed_mask.any():
        fixed_full = np.broadcast_to(np.asarray(fixed, dtype=full.dtype), full.shape)
        full[fixed_mask] = fixed_full[fixed_mask]
    return full


def reduce(stat: NDArray, tie: NDArray, n_atoms: int) -> NDArray:
    """Sum per-cell statistics onto atoms (the transpose of :func:`expand`).

    Expected counts in EM and gradients in neural training are reduced the
    same way.  Fixed cells contribute nothing.

    Parameters
    ----------
    stat : array of shape ``tie.shape + trailing``
    tie : integer array
    n_atoms : int

    Returns
    -------
    array of shape ``(n_atoms,) + trailing``
    """
    tie = _as_tie(tie)
    stat = np.asarray(stat, dtype=float)
    if stat.shape[: tie.ndim] != tie.shape:
        raise ValueError(
            f"statistic of shape {stat.shape} does not match tie map of shape {tie.shape}"
        )
    trailing = stat.shape[tie.ndim:]
    flat_tie = tie.ravel()
    keep = flat_tie != FIXED
    idx = flat_tie[keep]
    if not trailing:
        return np.bincount(idx, weights=stat.ravel()[keep], minlength=n_atoms)
    flat = stat.reshape(flat_tie.size, -1)[keep]
    out = np.zeros((n_atoms, flat.shape[1]))
    np.add.at(out, idx, flat)
    return out.reshape((n_atoms,) + trailing)


def n_uses(tie: NDArray, n_atoms: int) -> NDArray[np.int64]:
    """Number of cells that hold each atom."""
    tie = _as_tie(tie).ravel()
    return np.bincount(tie[tie != FIXED], minlength=n_atoms).astype(np.int64)
