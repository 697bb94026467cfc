"""Parameter registry: many tie maps, one free vector.

Every neural weight array is held through a tie map (:mod:`hmmtie.tying`):
``full = theta[tie]``.  A :class:`Registry` gives each named array a tie map
over one shared free vector ``theta``; a layer's own atoms get a fresh block
of indices, and a map may also point into atoms that another array already
owns (a decoder tied to its encoder, a twin filter).  The gradient of every
array is reduced onto ``theta`` in one call to :func:`hmmtie.tying.reduce`
over the concatenated maps -- the same reduction that sums expected counts
in EM.  Nothing else in :mod:`hmmtie.neural` ties weights.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import NDArray

from ..tying import FIXED, expand, reduce

__all__ = ["Registry", "tie_matrix", "shift_tie"]


def shift_tie(tie: NDArray, offset: int) -> NDArray[np.int64]:
    """Add ``offset`` to every non-fixed cell of a tie map."""
    tie = np.asarray(tie, dtype=np.int64)
    return np.where(tie == FIXED, FIXED, tie + offset)


def tie_matrix(tie: NDArray, n_atoms: int) -> NDArray[np.float64]:
    """Dense 0/1 matrix ``T`` with ``full.ravel() = T @ atoms`` (fixed rows zero).

    Parameters
    ----------
    tie : integer array of any shape
    n_atoms : int

    Returns
    -------
    T : array of shape (tie.size, n_atoms)
        ``T.T @ g`` is the tied gradient of an untied gradient ``g``.
    """
    flat = np.asarray(tie, dtype=np.int64).ravel()
    T = np.zeros((flat.size, n_atoms))
    keep = flat != FIXED
    T[np.nonzero(keep)[0], flat[keep]] = 1.0
    return T


def _check_all_used(name: str, used: list, n_atoms: int) -> None:
    """Every atom of a block is held by some cell: an atom no cell holds
    would be counted as a free parameter that nothing can learn."""
    held = np.unique(np.concatenate([np.ravel(u) for u in used])) if used else np.zeros(0, np.int64)
    if held.size != n_atoms:
        free = np.setdiff1d(np.arange(n_atoms), held)
        raise ValueError(f"Registry: {name!r} declares {n_atoms} atoms but its tie maps hold {held.size}; "
                         f"atom(s) {free[:5].tolist()}{' ...' if free.size > 5 else ''} are held by no cell")


class Registry:
    """Named tie maps over one free-parameter vector.

    Attributes
    ----------
    ties : dict of str to integer array
        Global tie map of every named array (atom indices into ``theta``).
    fixed : dict of str to float or array
        Values of the fixed cells of each array.
    n_atoms : int
        Length of the free vector (the parameter count).
    """

    def __init__(self) -> None:
        self.ties: dict[str, NDArray[np.int64]] = {}
        self.fixed: dict[str, NDArray | float] = {}
        self._init: list[NDArray] = []
        self.n_atoms = 0

    # -- building -------------------------------------------------------
    def new(self, name: str, tie: NDArray, n_atoms: int,
            init: NDArray | Callable[[], NDArray] | None = None,
            fixed: NDArray | float = 0.0) -> NDArray[np.int64]:
        """Register ``name`` with a local tie map over ``n_atoms`` fresh atoms.

        Parameters
        ----------
        name : str
        tie : integer array
            Local atom indices in ``[0, n_atoms)`` or ``FIXED``.
        n_atoms : int
        init : array of shape (n_atoms,), optional
            Initial atom values (zeros if omitted).
        fixed : float or array broadcastable to ``tie.shape``

        Returns
        -------
        tie : integer array
            The global tie map.
        """
        tie = np.asarray(tie)
        if tie.dtype.kind not in "iu":
            raise ValueError(f"Registry: tie map of {name!r} must hold integers, got {tie.dtype}")
        used = tie[tie != FIXED]
        if used.size and (used.min() < 0 or used.max() >= n_atoms):
            raise ValueError(
                f"Registry: tie map of {name!r} (shape {tie.shape}) uses atoms outside "
                f"[0, {n_atoms})")
        _check_all_used(name, [used], n_atoms)
        init_arr = np.zeros(n_atoms) if init is None else np.asarray(
            init() if callable(init) else init, dtype=float).ravel()
        if init_arr.shape != (n_atoms,):
            raise ValueError(f"Registry: init of {name!r} has shape {init_arr.shape}, "
                             f"expected ({n_atoms},)")
        glob = shift_tie(tie, self.n_atoms)
        self._add(name, glob, fixed)
        self._init.append(init_arr)
        self.n_atoms += n_atoms
        return glob

    def add_block(self, prefix: str, ties: dict, n_atoms: int, init: NDArray | None = None,
                  fixed: dict | None = None) -> int:
        """Register several arrays that share one block of ``n_atoms`` fresh atoms.

        Each ``ties[k]`` is a local map over the block; it is registered as
        ``f"{prefix}.{k}"``.  Returns the offset of the block in ``theta``.
        """
        init_arr = np.zeros(n_atoms) if init is None else np.asarray(init, dtype=float).ravel()
        if init_arr.shape != (n_atoms,):
            raise ValueError(f"Registry: init of {prefix!r} has shape {init_arr.shape}, "
                             f"expected ({n_atoms},)")
        fixed = fixed or {}
        offset = self.n_atoms
        checked, all_used = {}, []
        for k, t in ties.items():
            t = np.asarray(t)
            if t.dtype.kind not in "iu":
                raise ValueError(f"Registry: tie map {prefix}.{k} must hold integers, got {t.dtype}")
            used = t[t != FIXED]
            if used.size and (used.min() < 0 or used.max() >= n_atoms):
                raise ValueError(f"Registry: tie map {prefix}.{k} (shape {t.shape}) uses atoms "
                                 f"outside [0, {n_atoms})")
            checked[k] = t
            all_used.append(used)
        _check_all_used(prefix, all_used, n_atoms)
        for k, t in checked.items():
            self._add(f"{prefix}.{k}", shift_tie(t, offset), fixed.get(k, 0.0))
        self._init.append(init_arr)
        self.n_atoms += n_atoms
        return offset

    def alias(self, name: str, tie: NDArray, fixed: NDArray | float = 0.0) -> NDArray[np.int64]:
        """Register ``name`` with a global tie map into atoms that already exist."""
        tie = np.asarray(tie)
        if tie.dtype.kind not in "iu":
            raise ValueError(f"Registry: alias {name!r} must hold integers, got {tie.dtype}")
        tie = tie.astype(np.int64)
        used = tie[tie != FIXED]
        if used.size and (used.min() < 0 or used.max() >= self.n_atoms):
            raise ValueError(f"Registry: alias {name!r} (shape {tie.shape}) points outside "
                             f"the {self.n_atoms} registered atoms")
        self._add(name, tie, fixed)
        return tie

    def _add(self, name: str, tie: NDArray, fixed) -> None:
        if name in self.ties:
            raise ValueError(f"Registry: {name!r} is already registered")
        fixed_arr = np.asarray(fixed, dtype=float)
        try:
            np.broadcast_to(fixed_arr, tie.shape)
        except ValueError:
            raise ValueError(f"Registry: fixed values of {name!r} have shape {fixed_arr.shape}, "
                             f"tie map has shape {tie.shape}") from None
        self.ties[name] = tie
        self.fixed[name] = fixed_arr

    def init_theta(self) -> NDArray[np.float64]:
        """Initial free vector, shape (n_atoms,)."""
        if not self._init:
            return np.zeros(0)
        return np.concatenate(self._init).astype(float)

    # -- the two directions --------------------------------------------
    def expand(self, theta: NDArray) -> dict[str, NDArray]:
        """Full arrays from the free vector: ``{name: theta[tie]}``."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.n_atoms,):
            raise ValueError(f"Registry: theta has shape {theta.shape}, expected ({self.n_atoms},)")
        return {k: expand(theta, t, self.fixed[k]) for k, t in self.ties.items()}

    def tie_vector(self, names=None) -> NDArray[np.int64]:
        """All tie maps raveled and concatenated (the one map of the model)."""
        names = list(self.ties) if names is None else names
        if not names:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.ties[k].ravel() for k in names])

    def flat_grad(self, cell_grads: dict[str, NDArray]) -> NDArray[np.float64]:
        """Per-cell (untied) gradients concatenated in registry order.

        Arrays missing from ``cell_grads`` contribute zeros.
        """
        parts = []
        for k, t in self.ties.items():
            g = cell_grads.get(k)
            if g is None:
                parts.append(np.zeros(t.size))
                continue
            g = np.asarray(g, dtype=float)
            if g.shape != t.shape:
                raise ValueError(f"Registry: gradient of {k!r} has shape {g.shape}, "
                                 f"tie map has shape {t.shape}")
            parts.append(g.ravel())
        return np.concatenate(parts) if parts else np.zeros(0)

    def reduce(self, cell_grads: dict[str, NDArray]) -> NDArray[np.float64]:
        """Tied gradient: scatter-add every per-cell gradient onto its atom."""
        return reduce(self.flat_grad(cell_grads), self.tie_vector(), self.n_atoms)

    def project(self, full: dict[str, NDArray]) -> NDArray[np.float64]:
        """Free vector nearest (least squares) to given full arrays: cell mean per atom.

        For arrays that already respect the ties this inverts :meth:`expand`;
        it moves a tied model's values into a less tied one, too.
        """
        flat = self.flat_grad(full)
        tv = self.tie_vector()
        n = np.bincount(tv[tv != FIXED], minlength=self.n_atoms)
        return reduce(flat, tv, self.n_atoms) / np.maximum(n, 1)

    def matrix(self) -> NDArray[np.float64]:
        """Dense tie matrix ``T`` of the whole model, shape (n_cells, n_atoms)."""
        return tie_matrix(self.tie_vector(), self.n_atoms)

    def state(self) -> dict[str, NDArray]:
        """Tie maps and fixed values as plain arrays (for saving)."""
        out = {}
        for k in self.ties:
            out[f"tie:{k}"] = self.ties[k]
            out[f"fixed:{k}"] = np.broadcast_to(self.fixed[k], self.ties[k].shape).copy()
        return out
