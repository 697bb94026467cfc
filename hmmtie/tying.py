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


def _as_tie(tie, n_atoms: int | None = None) -> NDArray[np.int64]:
    """The map as int64; with ``n_atoms``, every entry must be an atom
    ``0 .. n_atoms-1`` or :data:`FIXED` (a -2 would silently read
    ``atoms[-2]``)."""
    tie = np.asarray(tie)
    if tie.dtype.kind not in "iu":
        raise ValueError(f"tie map must hold integers, got dtype {tie.dtype}")
    tie = tie.astype(np.int64, copy=False)
    if n_atoms is not None and tie.size:
        lo, hi = int(tie.min()), int(tie.max())
        if lo < FIXED or hi >= n_atoms:
            bad = lo if lo < FIXED else hi
            raise ValueError(f"tie map holds {bad}; entries must be atoms 0..{n_atoms - 1} or {FIXED} (fixed)")
    return tie


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
    tie = _as_tie(tie, atoms.shape[0] if atoms.ndim else None)
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
    tie = _as_tie(tie, n_atoms)
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


# ---------------------------------------------------------------------------
# Probability blocks: rows that sum to one, exact M-step
# ---------------------------------------------------------------------------

@dataclass
class _Component:
    """Rows and atoms coupled through shared atoms (one M-step unit)."""

    rows: NDArray[np.int64]          # rows (of the block) in this component
    atoms: NDArray[np.int64]         # atoms in this component
    m: NDArray[np.float64]           # (n_unique_rows, n_atoms_c) atom multiplicities
    c: NDArray[np.float64]           # (n_unique_rows,) free mass per unique row
    closed_form: bool                # every row identical: p = c n / (N m)


class ProbBlock:
    """A block of probability rows (each sums to one) held through a tie map.

    Parameters
    ----------
    name : str
        Name used in error messages (``"transmat"``, ``"emissionprob"`` ...).
    tie : integer array of shape (n_rows, n_cols)
        Atom index per cell, :data:`FIXED` for a fixed cell.  Atoms are
        numbered ``0 .. n_atoms-1`` and every number is used.
    fixed : array of shape (n_rows, n_cols)
        Values of the fixed cells (ignored elsewhere).
    row_labels, col_labels : sequence of str, optional
        Names for error messages.

    Notes
    -----
    The M-step maximises ``sum_a n_a log p_a`` subject to
    ``sum_a m[r, a] p_a = 1 - f_r`` for every row ``r`` with free cells,
    where ``m[r, a]`` counts the cells of row ``r`` holding atom ``a`` and
    ``f_r`` is the row's fixed mass.  Rows and atoms split into connected
    components; a component whose rows all carry the same constraint has
    the closed form ``p_a = c n_a / (N m_a)``; any other is solved through
    its convex dual ``min_lambda sum_r lambda_r c_r - sum_a n_a log(sum_r
    lambda_r m[r, a])`` by Newton's method, giving ``p_a = n_a / sum_r
    lambda_r m[r, a]``.  Both are exact, so EM never lowers the likelihood.
    """

    def __init__(self, name: str, tie, fixed=None, row_labels=None, col_labels=None):
        self.name = name
        self.tie = _as_tie(tie)
        if self.tie.ndim != 2:
            raise ValueError(f"{name}: tie map must be 2-D (rows, cols), got shape {self.tie.shape}")
        n_rows, n_cols = self.tie.shape
        self.row_labels = list(row_labels) if row_labels is not None else [str(r) for r in range(n_rows)]
        self.col_labels = list(col_labels) if col_labels is not None else [str(c) for c in range(n_cols)]
        if fixed is None:
            fixed = np.zeros(self.tie.shape)
        self.fixed = np.where(self.tie == FIXED, np.asarray(fixed, dtype=float), 0.0)
        used = self.tie[self.tie != FIXED]
        self.n_atoms = int(used.max()) + 1 if used.size else 0
        if used.size and np.unique(used).size != self.n_atoms:
            missing = sorted(set(range(self.n_atoms)) - set(np.unique(used).tolist()))
            raise ValueError(f"{name}: atoms {missing} are not used by any cell")
        self.forced_zero: list[str] = []
        self._check_fixed()
        self._build_components()
        forced = self._check_feasible()
        if forced:
            self._fix_forced_zeros(forced)
            self._check_fixed()
            self._build_components()
            self._check_feasible()

    # -- structure -----------------------------------------------------
    def _cell(self, r, c):
        return f"({self.row_labels[r]}, {self.col_labels[c]})"

    def _check_fixed(self):
        fx = self.fixed
        bad = (self.tie == FIXED) & ((fx < 0) | (fx > 1) | ~np.isfinite(fx))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(
                f"{self.name}: fixed cell {self._cell(r, c)} = {fx[r, c]!r} is not a probability in [0, 1]"
            )
        fixed_mass = fx.sum(axis=1)
        has_free = (self.tie != FIXED).any(axis=1)
        for r in range(self.tie.shape[0]):
            if fixed_mass[r] > 1 + 1e-12:
                raise ValueError(
                    f"{self.name}: fixed cells of row {self.row_labels[r]!r} sum to {fixed_mass[r]:.6g} > 1"
                )
            if not has_free[r] and abs(fixed_mass[r] - 1) > 1e-9:
                raise ValueError(
                    f"{self.name}: row {self.row_labels[r]!r} has no free cells and its fixed cells "
                    f"sum to {fixed_mass[r]:.6g}, not 1"
                )
        self.free_mass = np.clip(1.0 - fixed_mass, 0.0, 1.0)

    def _build_components(self):
        n_rows = self.tie.shape[0]
        m = np.zeros((n_rows, self.n_atoms))
        for r in range(n_rows):
            t = self.tie[r]
            np.add.at(m[r], t[t != FIXED], 1.0)
        self.m = m
        free_rows = np.flatnonzero(m.sum(axis=1) > 0)
        # Rows and atoms joined through shared atoms (union-find on the bipartite graph).
        uf = _UnionFind(n_rows + self.n_atoms)
        for r, a in zip(*np.nonzero(m)):
            uf.union(int(r), n_rows + int(a))
        label = np.array([uf.find(i) for i in range(n_rows + self.n_atoms)])
        comps: list[_Component] = []
        for lab in np.unique(label[n_rows:]):
            atoms = np.flatnonzero(label[n_rows:] == lab)
            rows = free_rows[label[free_rows] == lab]
            sub = np.column_stack([m[np.ix_(rows, atoms)], self.free_mass[rows]])
            uniq = np.unique(sub, axis=0)
            comps.append(
                _Component(rows=rows, atoms=atoms, m=uniq[:, :-1], c=uniq[:, -1], closed_form=uniq.shape[0] == 1)
            )
        self.components = comps
        # Free parameters: atoms minus independent row constraints.
        self.n_free = int(
            sum(
                comp.atoms.size - (1 if comp.closed_form else np.linalg.matrix_rank(np.atleast_2d(comp.m)))
                for comp in comps
            )
        )

    def _check_feasible(self) -> list:
        """Every coupled component must admit p >= 0 with M p = c.  Returns
        the atoms that the others force to 0 (no feasible point gives them
        mass: a row whose fixed cells already sum to 1, ties that use up a
        row's mass)."""
        forced = []
        for comp in self.components:
            if comp.closed_form:
                if comp.c[0] <= 0:
                    forced.extend(int(a) for a in comp.atoms)
                continue
            inner = _dual_newton(np.ones(comp.atoms.size), comp.m, comp.c)
            if inner is not None and inner.min() > 1e-6:
                continue  # an interior feasible point (every atom > 0) exists: the usual case
            from scipy.optimize import linprog  # decide boundary cases exactly

            res = linprog(
                np.zeros(comp.atoms.size),
                A_eq=comp.m,
                b_eq=comp.c,
                bounds=[(0, None)] * comp.atoms.size,
                method="highs",
            )
            if res.status != 0:
                r = comp.rows[0]
                raise ValueError(
                    f"{self.name}: tied rows {[self.row_labels[i] for i in comp.rows]} cannot all "
                    f"sum to 1 (infeasible row constraints, first row {self.row_labels[r]!r})"
                )
            for j, a in enumerate(comp.atoms):  # the largest value each atom can take
                goal = np.zeros(comp.atoms.size)
                goal[j] = -1.0
                best = linprog(goal, A_eq=comp.m, b_eq=comp.c, bounds=[(0, None)] * comp.atoms.size,
                               method="highs")
                if best.status == 0 and -best.fun <= 1e-12:
                    forced.append(int(a))
        return forced

    def _fix_forced_zeros(self, forced) -> None:
        """Cells that can only be 0 become fixed at 0 (atoms renumbered), so
        that they are not counted as free parameters (a test's df would be
        off by one per cell).  ``forced_zero`` names them."""
        mask = np.isin(self.tie, forced)
        self.forced_zero = [self._cell(r, c) for r, c in np.argwhere(mask)]
        tie = np.where(mask, FIXED, self.tie)
        used = np.unique(tie[tie != FIXED])
        remap = np.full(self.n_atoms, FIXED, dtype=np.int64)
        remap[used] = np.arange(used.size)
        self.tie = np.where(tie == FIXED, FIXED, remap[np.where(tie == FIXED, 0, tie)])
        self.fixed = np.where(mask, 0.0, self.fixed)
        self.n_atoms = int(used.size)

    # -- values ----------------------------------------------------------
    def expand(self, atoms: NDArray) -> NDArray:
        """Full (n_rows, n_cols) array from atom values."""
        return expand(atoms, self.tie, self.fixed)

    def atoms_from_full(self, full: NDArray, what: str | None = None, atol: float = 1e-10) -> NDArray:
        """Atom values read off a full array; errors if ties or fixed cells are violated.

        An atom takes the value of its first cell (row-major order); the first
        cell, in that order, that differs from its atom's value by more than
        ``atol`` (or from its fixed value) is named in the error.
        """
        what = what or self.name
        full = np.asarray(full, dtype=float)
        if full.shape != self.tie.shape:
            raise ValueError(f"{what} has shape {full.shape}, expected {self.tie.shape}")
        tie = self.tie.ravel()
        vals = full.ravel()
        atoms = np.zeros(self.n_atoms)
        free = np.flatnonzero(tie != FIXED)
        first = np.full(self.n_atoms, -1)
        ids, at = np.unique(tie[free], return_index=True)  # the first cell of each atom
        first[ids] = free[at]
        used = first >= 0
        atoms[used] = vals[first[used]]
        with np.errstate(invalid="ignore"):  # NaN compares false here, as it always did (checked elsewhere)
            fixed_bad = np.flatnonzero((tie == FIXED) & (np.abs(vals - self.fixed.ravel()) > atol))
            tied_bad = free[np.abs(vals[free] - atoms[tie[free]]) > atol]
        bad = np.concatenate([fixed_bad, tied_bad])
        if bad.size:
            k = int(bad.min())
            r, c = divmod(k, full.shape[1])
            if tie[k] == FIXED:
                raise ValueError(
                    f"{what}: cell {self._cell(r, c)} is fixed at {self.fixed[r, c]:.6g} but holds {vals[k]:.6g}"
                )
            r0, c0 = divmod(int(first[tie[k]]), full.shape[1])
            raise ValueError(
                f"{what}: tied cells {self._cell(r0, c0)} = {atoms[tie[k]]:.6g} and "
                f"{self._cell(r, c)} = {vals[k]:.6g} differ"
            )
        return atoms

    def mstep(self, counts: NDArray, old_atoms: NDArray | None = None) -> NDArray:
        """Exact M-step: atom values maximising the expected log-likelihood.

        Parameters
        ----------
        counts : array of shape (n_rows, n_cols)
            Expected counts per cell (pseudocounts already added).
        old_atoms : array of shape (n_atoms,), optional
            Values kept for components that received no counts at all.

        Returns
        -------
        atoms : array of shape (n_atoms,)
        """
        n = reduce(counts, self.tie, self.n_atoms)
        if np.any(n < 0) or not np.all(np.isfinite(n)):
            raise ValueError(f"{self.name}: expected counts must be finite and non-negative")
        atoms = np.zeros(self.n_atoms) if old_atoms is None else np.array(old_atoms, dtype=float)
        for comp in self.components:
            nc = n[comp.atoms]
            total = nc.sum()
            if total <= 0:
                if old_atoms is None:  # no information: spread mass evenly
                    atoms[comp.atoms] = _uniform_feasible(comp)
                continue
            if comp.closed_form:
                mult = comp.m[0]
                atoms[comp.atoms] = comp.c[0] * nc / (total * mult)
                continue
            sol, lam = _dual_newton(nc, comp.m, comp.c, want_lam=True)
            if np.any(nc == 0) and not _optimal_with_zeros(nc, comp.m, comp.c, sol, lam):
                # the dual pins atoms without counts at 0, but some must take
                # up mass the others leave (an unvisited state whose cells are
                # tied to a visited one's): compare it with the slack-row
                # solution and the solve with a vanishing count on every atom
                old_c = old_atoms[comp.atoms] if old_atoms is not None else None
                tiny = np.where(nc > 0, nc, 1e-9 * total / nc.size)
                sol = _best_feasible(nc, comp.m, comp.c, [
                    sol, _solve_with_slack_rows(nc, comp.m, comp.c, old_c),
                    _dual_newton(tiny, comp.m, comp.c)])
            if sol is None or (old_atoms is not None
                               and not _improves(nc, comp.m, comp.c, sol, old_atoms[comp.atoms])):
                # counts spanning many orders of magnitude (1e-76 beside 3)
                # leave the dual's Newton system singular: the solves with
                # every count raised to a floor (the best by the true
                # counts' objective, which the floor moves by about its own
                # size relative to the counts)
                sol = _best_feasible(nc, comp.m, comp.c, [sol] + [
                    _dual_newton(np.maximum(nc, f * total), comp.m, comp.c) for f in _COUNT_FLOORS])
            if sol is None:
                warnings.warn(
                    f"{self.name}: M-step for tied rows "
                    f"{[self.row_labels[i] for i in comp.rows]} has no interior solution "
                    "(too few counts); keeping previous values",
                    RuntimeWarning,
                    stacklevel=2,
                )
                if old_atoms is None:
                    atoms[comp.atoms] = _uniform_feasible(comp)
                continue
            if old_atoms is not None and not _improves(nc, comp.m, comp.c, sol, old_atoms[comp.atoms]):
                # counts spanning many orders of magnitude (1e-47 next to 14)
                # can make the numerical solve land on a worse point; an
                # M-step must never lower the expected log-likelihood
                warnings.warn(
                    f"{self.name}: M-step for tied rows "
                    f"{[self.row_labels[i] for i in comp.rows]} found no better values "
                    "(ill-conditioned counts); keeping previous values",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            atoms[comp.atoms] = sol
        return atoms

    def random_atoms(self, rng: np.random.Generator, concentration: float = 1.0) -> NDArray:
        """Random feasible atom values: the M-step of Dirichlet-like random counts."""
        counts = rng.gamma(concentration, 1.0, size=self.tie.shape) + 1e-3
        return self.mstep(np.where(self.tie == FIXED, 0.0, counts))

    def uniform_atoms(self) -> NDArray:
        """Atom values spreading each row's free mass evenly over its cells."""
        return self.mstep(np.where(self.tie == FIXED, 0.0, 1.0))


# relative floors of the counts for an M-step whose exact solve failed
_COUNT_FLOORS = (1e-14, 1e-12, 1e-10, 1e-8)


def _solve_with_slack_rows(n: NDArray, m: NDArray, c: NDArray, old: NDArray | None):
    """The M-step when some rows were never used (typically unvisited states).

    A row all of whose *own* atoms (held by no other row) have zero counts
    constrains nothing: its own atoms take up whatever mass the shared atoms
    leave (``c_r - sum m p``).  Such rows are dropped, the rest is solved
    exactly, and the slack is spread over the row's own atoms (in proportion
    to their previous values, else evenly).  Returns None when that does not
    apply or leaves a negative slack.
    """
    holders = (m > 0).sum(axis=0)
    own = (m > 0) & (holders == 1)[None, :]
    slack_rows = [r for r in range(m.shape[0]) if own[r].any() and np.all(n[own[r]] == 0)]
    if not slack_rows:
        return None
    keep = [r for r in range(m.shape[0]) if r not in slack_rows]
    p = np.zeros(n.size)
    if keep:
        atoms = np.flatnonzero((m[keep] > 0).any(axis=0))
        sub_m, sub_c, sub_n = m[np.ix_(keep, atoms)], c[keep], n[atoms]
        if sub_n.sum() <= 0:
            return None
        uniq = np.unique(np.column_stack([sub_m, sub_c]), axis=0)
        if uniq.shape[0] == 1:
            sub = uniq[0, -1] * sub_n / (sub_n.sum() * uniq[0, :-1])
        else:
            sub = _dual_newton(sub_n, uniq[:, :-1], uniq[:, -1])
            if sub is None:
                return None
        p[atoms] = sub
    for r in slack_rows:
        mine = np.flatnonzero(own[r])
        slack = c[r] - m[r] @ p
        if slack < -1e-12:
            return None
        weights = old[mine] if old is not None and old[mine].sum() > 0 else np.ones(mine.size)
        p[mine] = max(slack, 0.0) * weights / (weights * m[r, mine]).sum()
    if np.max(np.abs(m @ p - c)) > 1e-8:
        return None
    return p


def _feasible(m: NDArray, c: NDArray, p: NDArray) -> bool:
    return bool(np.all(np.isfinite(p)) and np.all(p >= 0) and np.max(np.abs(m @ p - c)) <= 1e-8)


def _best_feasible(n: NDArray, m: NDArray, c: NDArray, candidates) -> NDArray | None:
    """The feasible candidate with the highest expected log-likelihood (the
    first one on ties); None if none is feasible."""
    best, best_q = None, -np.inf
    for p in candidates:
        if p is None or not _feasible(m, c, p):
            continue
        q = _expected_loglik(n, p)
        # (a margin on a -inf best would be -inf + inf = NaN: review 33)
        margin = 1e-12 * max(1.0, abs(best_q)) if np.isfinite(best_q) else 0.0
        if best is None or q > best_q + margin:
            best, best_q = p, q
    return best


def _optimal_with_zeros(n: NDArray, m: NDArray, c: NDArray, p, lam) -> bool:
    """Whether the dual solution with the zero-count atoms pinned at 0 is
    optimal for the full problem: feasible, finite, and the KKT condition of
    each zero-count atom z holds (``lam . m_z >= 0``: giving z mass would
    not raise the objective)."""
    if p is None or lam is None or not _feasible(m, c, p) or not np.isfinite(_expected_loglik(n, p)):
        return False
    zero = n <= 0
    scale = max(float(np.max(np.abs(lam))), 1.0)
    return bool(np.all(lam @ m[:, zero] >= -1e-9 * scale))


def _expected_loglik(n: NDArray, p: NDArray) -> float:
    """sum n log p over the atoms with counts (-inf if one of them is 0)."""
    pos = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(n[pos] @ np.log(p[pos]))


def _improves(n: NDArray, m: NDArray, c: NDArray, new: NDArray, old: NDArray) -> bool:
    """Whether ``new`` is feasible (m p = c, p >= 0) and its expected
    log-likelihood is not below that of ``old`` (up to rounding)."""
    if not _feasible(m, c, new):
        return False
    q_new = _expected_loglik(n, new)
    q_old = _expected_loglik(n, old)
    return bool(q_new >= q_old - 1e-9 * max(1.0, abs(q_old))) or not np.isfinite(q_old)


def _uniform_feasible(comp: _Component) -> NDArray:
    ones = np.ones(comp.atoms.size)
    if comp.closed_form:
        return comp.c[0] * ones / (ones.sum() * comp.m[0])
    sol = _dual_newton(ones, comp.m, comp.c)
    return sol if sol is not None else np.full(comp.atoms.size, np.nan)


def _dual_newton(n: NDArray, m: NDArray, c: NDArray, tol: float = 1e-13, max_iter: int = 200,
                 want_lam: bool = False):
    """Solve max sum n log p s.t. m p = c, p >= 0 through the convex dual.

    Atoms with zero count get p = 0.  Returns None when the dual has no
    minimiser (constraints unsatisfiable with the support of ``n``); with
    ``want_lam``, (p, lambda) (None, None on failure).
    """
    p, lam = _dual_newton_lam(n, m, c, tol, max_iter)
    return (p, lam) if want_lam else p


def _dual_newton_lam(n, m, c, tol, max_iter):
    pos = n > 0
    npos = n[pos]
    mp = m[:, pos]
    rows_live = mp.sum(axis=1) > 0
    if not rows_live.all():
        return None, None  # a row all of whose atoms have zero counts
    n_rows = m.shape[0]
    total = npos.sum()
    lam = np.full(n_rows, total / max(c.sum(), 1e-300))

    def g(lam):
        s = lam @ mp
        if np.any(s <= 0):
            return np.inf, s
        return lam @ c - npos @ np.log(s), s

    val, s = g(lam)
    for _ in range(max_iter):
        w = npos / s
        grad = c - mp @ w
        if np.max(np.abs(grad)) <= tol * max(1.0, c.max()):
            break
        hess = (mp * (npos / s**2)) @ mp.T
        try:
            step = np.linalg.solve(hess + 1e-300 * np.eye(n_rows), -grad)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        dec = grad @ step
        if -dec <= 1e-14 * max(1.0, abs(val)):
            break  # the Newton decrement is below float resolution: converged
        while True:
            new_val, new_s = g(lam + t * step)
            if new_val <= val + 1e-4 * t * dec or t < 1e-12:
                break
            t *= 0.5
        if not np.isfinite(new_val) or t < 1e-12:
            break
        lam = lam + t * step
        val, s = new_val, new_s
    if not np.isfinite(val):
        return None, None
    p = np.zeros(n.size)
    p[pos] = npos / s
    # Polish onto the constraints: a primal Newton correction weighted by
    # the objective's curvature (p^2 / n), which keeps p where the data are.
    for _ in range(3):
        resid = c - m @ p
        if np.max(np.abs(resid)) <= 1e-15:
            break
        d = np.zeros(n.size)
        d[pos] = p[pos] ** 2 / npos
        a = (m * d) @ m.T
        corr = d * (m.T @ np.linalg.lstsq(a, resid, rcond=None)[0])
        if np.any(p + corr < 0):
            break
        p = p + corr
    if np.max(np.abs(m @ p - c)) > 1e-8:
        return None, None
    return p, lam


# ---------------------------------------------------------------------------
# Declarative specs
# ---------------------------------------------------------------------------

def _norm_label(label, known):
    """Let integers name default-named states ("0", "1", ...)."""
    if label not in known and isinstance(label, (int, np.integer)) and str(label) in known:
        return str(label)
    return label


class _UnionFind:
    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, a):
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def compile_block(
    name: str,
    row_labels,
    col_labels,
    *,
    cell_groups: dict | None = None,
    row_groups: dict | None = None,
    fixed: dict | None = None,
    structural_zeros=None,
) -> ProbBlock:
    """Compile named ties over the cells of a probability block into a :class:`ProbBlock`.

    Parameters
    ----------
    name : str
        Block name for messages.
    row_labels, col_labels : sequence of str
        Row and column names.
    cell_groups : dict of str to list of (row, col)
        Named tied parameters: every listed cell holds one atom.  Cells may
        come from different rows.
    row_groups : dict of str to list of row
        Rows tied as wholes: column ``j`` of every member holds one atom.
    fixed : dict of (row, col) to float
        Fixed cells and their values.
    structural_zeros : iterable of (row, col), optional
        Cells that are zero by the model's structure (fixed at 0; naming them
        in a tie is an error).

    Returns
    -------
    ProbBlock
    """
    rows = {lab: i for i, lab in enumerate(row_labels)}
    cols = {lab: j for j, lab in enumerate(col_labels)}
    n_rows, n_cols = len(rows), len(cols)
    fixed_val = np.zeros((n_rows, n_cols))
    is_fixed = np.zeros((n_rows, n_cols), dtype=bool)

    def cell(group, rc):
        # a 2-character string would unpack into a cell ("MX" -> (M, X))
        if not isinstance(rc, (list, tuple)) or len(rc) != 2:
            raise ValueError(f"{name} group {group!r}: {rc!r} is not a (row, column) pair")
        r, c = rc
        r = _norm_label(r, rows)
        c = _norm_label(c, cols)
        if r not in rows:
            raise ValueError(f"{name} group {group!r}: unknown state {r!r} (known: {', '.join(map(str, rows))})")
        if c not in cols:
            raise ValueError(
                f"{name} group {group!r}: unknown column {c!r} in cell ({r}, {c}) "
                f"(known: {', '.join(map(str, cols))})"
            )
        return rows[r], cols[c]

    for rc in structural_zeros or ():
        r, c = cell("structure", rc)
        is_fixed[r, c] = True
    for rc, v in (fixed or {}).items():
        r, c = cell("fixed", rc)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} fixed cell {rc}: value {v!r} is not a number")
        v = float(v)
        if is_fixed[r, c] and fixed_val[r, c] != v:
            raise ValueError(f"{name} fixed cell ({row_labels[r]}, {col_labels[c]}) is a structural zero")
        is_fixed[r, c] = True
        fixed_val[r, c] = v

    uf = _UnionFind(n_rows * n_cols)
    owner: dict[tuple[int, int], str] = {}
    for g, members in (row_groups or {}).items():
        idx = []
        for r in members:
            r = _norm_label(r, rows)
            if r not in rows:
                raise ValueError(f"{name} group {g!r}: unknown state {r!r} (known: {', '.join(map(str, rows))})")
            idx.append(rows[r])
        if len(set(idx)) != len(idx):
            raise ValueError(f"{name} group {g!r}: a state is listed twice")
        for r in idx:
            if (r, -1) in owner:
                raise ValueError(
                    f"{name}: state {row_labels[r]!r} is in two groups, {owner[(r, -1)]!r} and {g!r}"
                )
            owner[(r, -1)] = g
        for c in range(n_cols):
            fx = [(is_fixed[r, c], fixed_val[r, c]) for r in idx]
            if any(f for f, _ in fx):
                if not all(f for f, _ in fx) or len({v for _, v in fx}) > 1:
                    raise ValueError(
                        f"{name} group {g!r}: cell ({row_labels[idx[0]]}, {col_labels[c]}) is fixed "
                        "for some members but not all (or to different values); fix it for every member"
                    )
                continue
            for r in idx[1:]:
                uf.union(idx[0] * n_cols + c, r * n_cols + c)
    for g, members in (cell_groups or {}).items():
        if len(members) == 0:
            raise ValueError(f"{name} group {g!r} is empty")
        idx = [cell(g, rc) for rc in members]
        for r, c in idx:
            lab = f"({row_labels[r]}, {col_labels[c]})"
            if is_fixed[r, c]:
                raise ValueError(f"{name} group {g!r}: cell {lab} is fixed and cannot be tied")
            if (r, c) in owner:
                raise ValueError(f"{name}: cell {lab} is in two groups, {owner[(r, c)]!r} and {g!r}")
            owner[(r, c)] = g
        for r, c in idx[1:]:
            uf.union(idx[0][0] * n_cols + idx[0][1], r * n_cols + c)

    tie = np.full((n_rows, n_cols), FIXED, dtype=np.int64)
    atom_of_root: dict[int, int] = {}
    for r in range(n_rows):
        for c in range(n_cols):
            if is_fixed[r, c]:
                continue
            root = uf.find(r * n_cols + c)
            if root not in atom_of_root:
                atom_of_root[root] = len(atom_of_root)
            tie[r, c] = atom_of_root[root]
    return ProbBlock(name, tie, fixed_val, row_labels=row_labels, col_labels=col_labels)


_HMM_SPEC_KEYS = {"emission_groups", "transitions", "start", "fixed"}
_FIXED_KEYS = {"startprob", "transmat", "emissionprob"}
_SHARE = ("all", "means", "covars")


@dataclass
class EmissionGroup:
    """States sharing an emission distribution (or part of one)."""

    name: str
    states: list[int]
    share: str = "all"            # "all", "means" or "covars" (Gaussian only)
    soft: float | None = None     # penalty strength for soft tying; None = hard


@dataclass
class HMMTying:
    """A compiled HMM tie spec: probability blocks and emission groups.

    Built by :func:`compile_hmm_spec`; models hold one and never interpret
    the spec themselves.
    """

    spec: dict
    states: list[str]
    start: ProbBlock
    trans: ProbBlock
    emission_groups: list[EmissionGroup]
    emission: ProbBlock | None = None        # categorical emissions
    means_tie: NDArray | None = None         # Gaussian: (n_states,) atom per state
    covars_tie: NDArray | None = None
    n_means: int = 0
    n_covars: int = 0

    def soft_groups(self) -> list[EmissionGroup]:
        return [g for g in self.emission_groups if g.soft is not None]


def _pairs(obj, what):
    if not isinstance(obj, (list, tuple)):
        raise ValueError(f"{what} must be a list, got {type(obj).__name__}")
    return obj


def compile_hmm_spec(
    spec: dict | None,
    states: list[str],
    *,
    family: str,
    n_symbols: int | None = None,
) -> HMMTying:
    """Validate an HMM tie spec and compile it into index maps.

    Parameters
    ----------
    spec : dict or None
        A JSON-able dict with optional keys:

        ``"emission_groups"``
            ``{name: [state, ...]}`` — the states share one emission
            distribution; or ``{name: {"states": [...], "share": "all" |
            "means" | "covars", "soft": lam}}``.  ``share`` other than
            ``"all"`` applies to Gaussian emissions only.  With ``"soft"``
            the members keep their own parameters and a penalty of strength
            ``lam`` pulls them toward a common value (MAP-EM).
        ``"transitions"``
            ``{name: [[from, to], ...]}`` — every listed cell holds one
            probability; cells may lie in different rows.
        ``"start"``
            ``{name: [state, ...]}`` — tied start probabilities.
        ``"fixed"``
            ``{"startprob": [[state, value], ...], "transmat": [[from, to,
            value], ...], "emissionprob": [[state, symbol, value], ...]}`` —
            structural zeros (value 0) and frozen values.
    states : list of str
        State names.
    family : {"categorical", "gaussian"}
    n_symbols : int, optional
        Alphabet size (categorical).

    Returns
    -------
    HMMTying
    """
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise ValueError(f"tying must be a dict (or None), got {type(spec).__name__}")
    unknown = set(spec) - _HMM_SPEC_KEYS
    if unknown:
        raise ValueError(
            f"tying: unknown key(s) {sorted(unknown)}; allowed: {sorted(_HMM_SPEC_KEYS)}"
        )
    state_index = {s: i for i, s in enumerate(states)}

    def state(group, s):
        s = _norm_label(s, state_index)
        if s not in state_index:
            raise ValueError(f"group {group!r}: unknown state {s!r} (known: {', '.join(states)})")
        return state_index[s]

    fixed_spec = spec.get("fixed", {}) or {}
    if not isinstance(fixed_spec, dict):
        raise ValueError("tying['fixed'] must be a dict with keys startprob/transmat/emissionprob")
    bad = set(fixed_spec) - _FIXED_KEYS
    if bad:
        raise ValueError(f"tying['fixed']: unknown key(s) {sorted(bad)}; allowed: {sorted(_FIXED_KEYS)}")

    def fixed_cells(key, arity):
        out = {}
        for item in _pairs(fixed_spec.get(key, []), f"tying['fixed'][{key!r}]"):
            if not isinstance(item, (list, tuple)) or len(item) != arity:
                shape = "[state, value]" if arity == 2 else "[row, col, value]"
                raise ValueError(f"tying['fixed'][{key!r}]: entry {item!r} must be {shape}")
            cellkey = tuple(item[:-1]) if arity == 3 else ("start", item[0])
            if cellkey in out:
                raise ValueError(f"tying['fixed'][{key!r}]: cell {cellkey} is fixed twice")
            out[cellkey] = item[-1]
        return out

    for key in ("start", "transitions", "emission_groups"):
        if not isinstance(spec.get(key) or {}, dict):
            raise ValueError(f"tying[{key!r}] must be a mapping of group names to members, "
                             f"got {type(spec[key]).__name__}")

    # start block: one row
    start_groups = {}
    for g, members in (spec.get("start", {}) or {}).items():
        start_groups[g] = [("start", s) for s in _pairs(members, f"start group {g!r}")]
        for s in members:
            state(g, s)
    start = compile_block(
        "startprob", ["start"], states, cell_groups=start_groups, fixed=fixed_cells("startprob", 2)
    )
    trans_groups = {}
    for g, cells in (spec.get("transitions", {}) or {}).items():
        trans_groups[g] = [tuple(c) if isinstance(c, (list, tuple)) else c for c in _pairs(cells, f"transition group {g!r}")]
    trans = compile_block(
        "transmat", states, states, cell_groups=trans_groups, fixed=fixed_cells("transmat", 3)
    )

    groups: list[EmissionGroup] = []
    seen: dict[int, str] = {}
    for g, val in (spec.get("emission_groups", {}) or {}).items():
        if isinstance(val, dict):
            extra = set(val) - {"states", "share", "soft"}
            if extra:
                raise ValueError(f"emission group {g!r}: unknown key(s) {sorted(extra)}; allowed: states, share, soft")
            members, share, soft = val.get("states", []), val.get("share", "all"), val.get("soft")
        else:
            members, share, soft = val, "all", None
        members = [state(g, s) for s in _pairs(members, f"emission group {g!r}")]
        if len(members) < 2:
            raise ValueError(f"emission group {g!r} needs at least two states, got {len(members)}")
        if len(set(members)) != len(members):
            raise ValueError(f"emission group {g!r}: a state is listed twice")
        if share not in _SHARE:
            raise ValueError(f"emission group {g!r}: share must be one of {_SHARE}, got {share!r}")
        if family == "categorical" and share != "all":
            raise ValueError(
                f"emission group {g!r}: share={share!r} ties parts of a Gaussian, "
                "but this model's emissions are categorical (use share='all')"
            )
        if soft is not None:
            try:
                soft = float(soft)
            except (TypeError, ValueError):
                raise ValueError(f"emission group {g!r}: soft must be a number, got {soft!r}") from None
            if not (soft >= 0 and np.isfinite(soft)):
                raise ValueError(f"emission group {g!r}: soft must be a finite number >= 0, got {soft!r}")
        for s in members:
            if (s, share) in seen or (s, "all") in seen or (share == "all" and any((s, x) in seen for x in _SHARE)):
                other = seen.get((s, share)) or seen.get((s, "all")) or next(seen[(s, x)] for x in _SHARE if (s, x) in seen)
                raise ValueError(f"state {states[s]!r} is in two emission groups, {other!r} and {g!r}")
            seen[(s, share)] = g
        groups.append(EmissionGroup(g, members, share, soft))

    tying = HMMTying(spec=spec, states=list(states), start=start, trans=trans, emission_groups=groups)
    hard = [g for g in groups if g.soft is None]
    if family == "categorical":
        if n_symbols is None:
            raise ValueError("n_symbols is required to compile a categorical tie spec")
        em_fixed = {}
        for (s, sym), v in fixed_cells("emissionprob", 3).items():
            if not isinstance(sym, (int, np.integer)) or not 0 <= sym < n_symbols:
                raise ValueError(
                    f"tying['fixed']['emissionprob']: symbol {sym!r} of state {s!r} is not in [0, {n_symbols})"
                )
            em_fixed[(s, str(sym))] = v
        tying.emission = compile_block(
            "emissionprob",
            states,
            [str(m) for m in range(n_symbols)],
            row_groups={g.name: [states[s] for s in g.states] for g in hard},
            fixed=em_fixed,
        )
    elif family == "gaussian":
        if fixed_spec.get("emissionprob"):
            raise ValueError("tying['fixed']['emissionprob'] applies to categorical emissions; this model is Gaussian")
        n = len(states)
        for part in ("means", "covars"):
            tie = np.arange(n, dtype=np.int64)
            for g in hard:
                if g.share in ("all", part):
                    tie[g.states] = tie[g.states[0]]
            _, tie = np.unique(tie, return_inverse=True)
            setattr(tying, f"{part}_tie", tie.astype(np.int64))
            setattr(tying, f"n_{part}", int(tie.max()) + 1)
        for g in groups:
            if g.soft is not None and g.share == "covars":
                raise ValueError(f"emission group {g.name!r}: soft tying is available for means (share='means' or 'all'), not covars")
    else:
        raise ValueError(f"family must be 'categorical' or 'gaussian', got {family!r}")
    return tying
