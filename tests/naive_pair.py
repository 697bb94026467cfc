"""Brute-force oracles for pair HMMs (plain Python, log space).

Model arguments follow ``hmmtie._kernels.pair_fb``: ``kind`` (0 match,
1 insert-x, 2 insert-y), ``etab``, ``start``, ``trans``, ``end``,
``match_odds``, ``ins_odds``; x and y are code sequences.  Every function here
enumerates every alignment and every state path, so keep lengths <= 4-5.
"""

import math

import numba
import numpy as np

NEG_INF = -math.inf


def _log(v):
    return math.log(v) if v > 0.0 else NEG_INF


def logsumexp(vals):
    vals = [v for v in vals if v != NEG_INF]
    if not vals:
        return NEG_INF
    m = max(vals)
    return m + math.log(sum(math.exp(v - m) for v in vals))


def in_band(i, j, n, m, band):
    """The band of ``pair_fb``'s docstring, written out independently."""
    if band < 0:
        return True
    return abs(i * m - j * n) < (band + 1) * max(n, m)


def enumerate_paths(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                    band=-1):
    """Every state path with non-zero probability.

    Returns a list of (states, ops, cells, logw): states visited, the
    alignment column of each (0 = x_i:y_j, 1 = x_i:-, 2 = -:y_j), the lattice
    cell (i, j) after each emission, and the log-odds weight of the path.
    """
    n, m = len(x), len(y)
    n_states = len(kind)
    out = []

    def emit(s, i, j):
        k = kind[s]
        if k == 0:
            return match_odds[etab[s], x[i - 1], y[j - 1]]
        if k == 1:
            return ins_odds[etab[s], x[i - 1]]
        return ins_odds[etab[s], y[j - 1]]

    def rec(prev, i, j, states, cells, logw):
        if i == n and j == m and states:
            w = logw + _log(end[prev])
            if w != NEG_INF:
                out.append((tuple(states), tuple(int(kind[s]) for s in states),
                            tuple(cells), w))
        for s in range(n_states):
            k = kind[s]
            ni = i + (1 if k in (0, 1) else 0)
            nj = j + (1 if k in (0, 2) else 0)
            if ni > n or nj > m or not in_band(ni, nj, n, m, band):
                continue
            t = start[s] if prev < 0 else trans[prev, s]
            w = logw + _log(t) + _log(emit(s, ni, nj))
            if w == NEG_INF:
                continue
            rec(s, ni, nj, states + [s], cells + [(ni, nj)], w)

    rec(-1, 0, 0, [], [], 0.0)
    return out


def total(paths):
    """Log-odds likelihood: log of the sum over all paths."""
    return logsumexp([p[3] for p in paths])


def posterior(paths, kind, n, m):
    """P[i, j]: probability that x_i is aligned to y_j (any match state)."""
    z = total(paths)
    post = np.zeros((n, m))
    for states, _ops, cells, w in paths:
        p = math.exp(w - z)
        for s, (i, j) in zip(states, cells):
            if kind[s] == 0:
                post[i - 1, j - 1] += p
    return post


def expected_counts(paths, kind, etab, x, y, n_states, match_shape, ins_shape):
    """Expected start/transition/end/emission counts, summed path by path."""
    z = total(paths)
    n_start = np.zeros(n_states)
    n_trans = np.zeros((n_states, n_states))
    n_end = np.zeros(n_states)
    n_match = np.zeros(match_shape)
    n_ins = np.zeros(ins_shape)
    for states, _ops, cells, w in paths:
        p = math.exp(w - z)
        n_start[states[0]] += p
        n_end[states[-1]] += p
        for a, b in zip(states[:-1], states[1:]):
            n_trans[a, b] += p
        for s, (i, j) in zip(states, cells):
            k = kind[s]
            if k == 0:
                n_match[etab[s], x[i - 1], y[j - 1]] += p
            elif k == 1:
                n_ins[etab[s], x[i - 1]] += p
            else:
                n_ins[etab[s], y[j - 1]] += p
    return n_start, n_trans, n_end, n_match, n_ins


def by_alignment(paths):
    """Dict: ops tuple -> log-sum of the weights of the state paths on it."""
    groups = {}
    for _states, ops, _cells, w in paths:
        groups.setdefault(ops, []).append(w)
    return {ops: logsumexp(ws) for ops, ws in groups.items()}


def all_alignments(n, m):
    """Every alignment (ops tuple) of lengths n and m."""
    out = []

    def rec(i, j, ops):
        if i == n and j == m:
            out.append(tuple(ops))
            return
        if i < n and j < m:
            rec(i + 1, j + 1, ops + [0])
        if i < n:
            rec(i + 1, j, ops + [1])
        if j < m:
            rec(i, j + 1, ops + [2])

    rec(0, 0, [])
    return out


@numba.njit(cache=True)
def _lse_add(a, b):
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


@numba.njit(cache=True)
def _log_matrix(a):
    """Elementwise log with exact zeros (and negatives) at -inf."""
    out = np.full(a.shape, -np.inf)
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):
            if a[r, c] > 0.0:
                out[r, c] = math.log(a[r, c])
    return out


@numba.njit(cache=True)
def logspace_forward(kind, etab, start, trans, end, match_odds, ins_odds, x, y):
    """Unscaled log-space forward (no scaling, no band): an independent
    reference for long pairs.  General states; O(S * M) memory."""
    n = x.shape[0]
    m = y.shape[0]
    ns = kind.shape[0]
    lt = _log_matrix(trans)
    prev = np.full((ns, m + 1), -np.inf)
    cur = np.full((ns, m + 1), -np.inf)
    for i in range(n + 1):
        for j in range(m + 1):
            for s in range(ns):
                k = kind[s]
                v = -np.inf
                if k == 0 and i >= 1 and j >= 1:
                    e = match_odds[etab[s], x[i - 1], y[j - 1]]
                    if i == 1 and j == 1 and start[s] > 0.0:
                        v = math.log(start[s])
                    for r in range(ns):
                        if lt[r, s] > -np.inf:
                            v = _lse_add(v, prev[r, j - 1] + lt[r, s])
                    v = v + math.log(e) if e > 0.0 else -np.inf
                elif k == 1 and i >= 1:
                    e = ins_odds[etab[s], x[i - 1]]
                    if i == 1 and j == 0 and start[s] > 0.0:
                        v = math.log(start[s])
                    for r in range(ns):
                        if lt[r, s] > -np.inf:
                            v = _lse_add(v, prev[r, j] + lt[r, s])
                    v = v + math.log(e) if e > 0.0 else -np.inf
                elif k == 2 and j >= 1:
                    e = ins_odds[etab[s], y[j - 1]]
                    if i == 0 and j == 1 and start[s] > 0.0:
                        v = math.log(start[s])
                    for r in range(ns):
                        if lt[r, s] > -np.inf:
                            v = _lse_add(v, cur[r, j - 1] + lt[r, s])
                    v = v + math.log(e) if e > 0.0 else -np.inf
                cur[s, j] = v
        prev, cur = cur, prev
    z = -np.inf
    for s in range(ns):
        if end[s] > 0.0:
            z = _lse_add(z, prev[s, m] + math.log(end[s]))
    return z



@numba.njit(cache=True)
def _log_emit(kind, etab, match_odds, ins_odds, x, y, s, i, j):
    """log odds of state s emitting at lattice cell (i, j) (-inf if it
    cannot: outside the lattice or zero odds)."""
    k = kind[s]
    if (k != 2 and i < 1) or (k != 1 and j < 1):
        return -np.inf
    if k == 0:
        e = match_odds[etab[s], x[i - 1], y[j - 1]]
    elif k == 1:
        e = ins_odds[etab[s], x[i - 1]]
    else:
        e = ins_odds[etab[s], y[j - 1]]
    return math.log(e) if e > 0.0 else -np.inf


@numba.njit(cache=True)
def logspace_posterior(kind, etab, start, trans, end, match_odds, ins_odds,
                       x, y):
    """Unscaled log-space forward-backward over the whole lattice (no
    scaling, no band): (log-odds, P) with P (N, M) the posterior that x_i
    is aligned to y_j.  O(S * N * M) memory: a reference for long pairs."""
    n = x.shape[0]
    m = y.shape[0]
    ns = kind.shape[0]
    lt = _log_matrix(trans)
    di = np.array([1 if kind[s] != 2 else 0 for s in range(ns)])
    dj = np.array([1 if kind[s] != 1 else 0 for s in range(ns)])
    F = np.full((ns, n + 1, m + 1), -np.inf)
    for i in range(n + 1):
        for j in range(m + 1):
            for s in range(ns):
                pi = i - di[s]
                pj = j - dj[s]
                if pi < 0 or pj < 0:
                    continue
                v = -np.inf
                if pi == 0 and pj == 0 and start[s] > 0.0:
                    v = math.log(start[s])
                for r in range(ns):
                    if lt[r, s] > -np.inf:
                        v = _lse_add(v, F[r, pi, pj] + lt[r, s])
                F[s, i, j] = v + _log_emit(kind, etab, match_odds, ins_odds,
                                           x, y, s, i, j)
    B = np.full((ns, n + 1, m + 1), -np.inf)
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            for s in range(ns):
                v = -np.inf
                if i == n and j == m and end[s] > 0.0:
                    v = math.log(end[s])
                for r in range(ns):
                    ni = i + di[r]
                    nj = j + dj[r]
                    if ni > n or nj > m or lt[s, r] == -np.inf:
                        continue
                    v = _lse_add(v, lt[s, r] + _log_emit(
                        kind, etab, match_odds, ins_odds, x, y, r, ni, nj)
                        + B[r, ni, nj])
                B[s, i, j] = v
    z = -np.inf
    for s in range(ns):
        if end[s] > 0.0:
            z = _lse_add(z, F[s, n, m] + math.log(end[s]))
    P = np.zeros((n, m))
    for s in range(ns):
        if kind[s] == 0:
            for i in range(1, n + 1):
                for j in range(1, m + 1):
                    P[i - 1, j - 1] += math.exp(F[s, i, j] + B[s, i, j] - z)
    return z, P

# --- decoding oracles (Viterbi / MEA), used by test_kernels_pair_decode.py ---

def viterbi_brute(paths):
    """Best (log-odds, states) over enumerated paths; (-inf, ()) if none.

    Ties: the lexicographically smallest state sequence among the best."""
    best = NEG_INF
    arg = ()
    for states, _ops, _cells, w in paths:
        if w > best or (w == best and states < arg):
            best, arg = w, states
    return best, arg


def path_log_odds(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                  states):
    """Log-odds weight of one state path, recomputed from the model
    (-inf when it does not consume exactly x and y or has zero weight)."""
    i = j = 0
    w = 0.0
    prev = -1
    for s in states:
        w += _log(start[s] if prev < 0 else trans[prev, s])
        k = kind[s]
        if k == 0:
            if i >= len(x) or j >= len(y):
                return NEG_INF
            w += _log(match_odds[etab[s], x[i], y[j]])
            i += 1
            j += 1
        elif k == 1:
            if i >= len(x):
                return NEG_INF
            w += _log(ins_odds[etab[s], x[i]])
            i += 1
        else:
            if j >= len(y):
                return NEG_INF
            w += _log(ins_odds[etab[s], y[j]])
            j += 1
        prev = s
    if prev < 0 or i != len(x) or j != len(y):
        return NEG_INF
    return w + _log(end[prev])


def alignment_cells(ops):
    """Lattice cells (i, j) after each alignment column."""
    i = j = 0
    cells = []
    for o in ops:
        i += o != 2
        j += o != 1
        cells.append((i, j))
    return cells


def expected_accuracy(P, ops):
    """Sum of P[i, j] over the columns (x_i, y_j) of an alignment."""
    return sum(P[i - 1, j - 1] for (i, j), o in zip(alignment_cells(ops), ops)
               if o == 0)


def mea_brute(P, band=-1):
    """Best expected accuracy over every alignment inside the band."""
    n, m = P.shape
    best = NEG_INF
    for ops in all_alignments(n, m):
        if all(in_band(i, j, n, m, band) for i, j in alignment_cells(ops)):
            best = max(best, expected_accuracy(P, ops))
    return best


@numba.njit(cache=True)
def logspace_viterbi(kind, etab, start, trans, end, match_odds, ins_odds, x, y):
    """Plain per-cell log-space Viterbi score (no band, no traceback): an
    independent reference for long pairs.  General states."""
    n = x.shape[0]
    m = y.shape[0]
    ns = kind.shape[0]
    prev = np.full((ns, m + 1), -np.inf)
    cur = np.full((ns, m + 1), -np.inf)
    for i in range(n + 1):
        for j in range(m + 1):
            for s in range(ns):
                k = kind[s]
                v = -np.inf
                if k == 0 and i >= 1 and j >= 1:
                    e = match_odds[etab[s], x[i - 1], y[j - 1]]
                    src = prev
                    pj = j - 1
                    first = i == 1 and j == 1
                elif k == 1 and i >= 1:
                    e = ins_odds[etab[s], x[i - 1]]
                    src = prev
                    pj = j
                    first = i == 1 and j == 0
                elif k == 2 and j >= 1:
                    e = ins_odds[etab[s], y[j - 1]]
                    src = cur
                    pj = j - 1
                    first = i == 0 and j == 1
                else:
                    cur[s, j] = -np.inf
                    continue
                if first:
                    if start[s] > 0.0:
                        v = math.log(start[s])
                else:
                    for r in range(ns):
                        if trans[r, s] > 0.0:
                            v = max(v, src[r, pj] + math.log(trans[r, s]))
                cur[s, j] = v + math.log(e) if e > 0.0 else -np.inf
        prev, cur = cur, prev
    z = -np.inf
    for s in range(ns):
        if end[s] > 0.0:
            z = max(z, prev[s, m] + math.log(end[s]))
    return z
