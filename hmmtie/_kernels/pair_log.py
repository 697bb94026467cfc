"""Log-space forward, posterior and expected counts of a pair HMM: the
fallback for the pairs that the scaled kernels of :mod:`pair_fb` cannot
compute.

The scaled kernels carry one exponent per lattice row.  A pair whose
probable paths need more than the float range within one row, under every
column tilt of the ladder (``pair_fb._LADDER``), fails their checks: a local
DNA pair whose second sequence is the two ends of the first (6000 x 3011,
a 3000-residue insertion), or a few fuzzed custom models with a strong
insert state.  Here every (cell, state) value is a log, so nothing leaves
the float range: the results are exact to rounding (the counts still
check their identities), for any model the scaled kernels take (any state
graph, zeros, a band), at 3-10 million cells per second for the forward
(posteriors 2-3x and counts 3-5x slower) instead of hundreds.

Each value is read from its source cell's linear form (the cell's largest
value m and exp(v_s - m) per state): ``e + m + log sum_s w_s t(s, r)``,
one log per state and S exps per cell; see :func:`_fwd_row`.  Posteriors
and counts keep the forward rows' log values at checkpoints every
``ceil(sqrt(N + 1))`` rows and recompute each block of rows from its
checkpoint while the backward pass walks back through it (as the scaled
general kernel does): O(sqrt(N) M S) memory, M the second sequence's
length (the callers in :mod:`pair_fb` put the shorter one there).  No
tilt.
"""
import math

import numba
import numpy as np

from ._arrays import copy2 as _copy2
from ._band import band_limits

_NEG = -np.inf
# a linear-form sum at least this large lost nothing that matters to terms
# that underflowed (each below S * 2.2e-308): below it, term by term
_SAFE = 1e-280
# the identities of the expected counts hold to this (as pair_fb's)
_COUNTS_AGREE = 1e-9


@numba.njit(cache=True)
def _log_tables(start, trans, end, match_odds, ins_odds):
    """Natural logs of the five tables (-inf for exact zeros)."""
    return (np.log(start), np.log(trans), np.log(end), np.log(match_odds),
            np.log(ins_odds))


@numba.njit(cache=True, inline="always")
def _source(i, c, r, kind, etab, mo, io, x, y, p, q):
    """Where state r at cell (i, c) comes from: (whether the cell can hold
    it, the source row's slot (``p``: row i - 1, ``q``: row i), the source
    column, r's emission there from the tables ``mo``, ``io`` (odds or
    logs), whether it is r's first cell, entered from Begin)."""
    k = kind[r]
    if k == 0:
        if i < 1 or c < 1:
            return False, p, 0, 0.0, False
        return True, p, c - 1, mo[etab[r], x[i - 1], y[c - 1]], i == 1 and c == 1
    if k == 1:
        if i < 1:
            return False, p, 0, 0.0, False
        return True, p, c, io[etab[r], x[i - 1]], i == 1 and c == 0
    if c < 1:
        return False, q, 0, 0.0, False
    return True, q, c - 1, io[etab[r], y[c - 1]], i == 0 and c == 1


@numba.njit(cache=True)
def _fwd_row(i, kind, etab, ls, lt, T, lmo, lio, x, y, band, F, Wl, Mx, p,
             q):
    """Log forward row i into ``F[q]``, with each cell's linear form
    (``Mx[q]`` its largest value, ``Wl[q]`` exp(value - largest)), from row
    i - 1 in ``F[p]`` (unused for i = 0).  A state's value is read from
    its source cell's linear form, ``Mx + log(sum_s Wl[s] t(s, r))``, with
    one log and no exp; a sum below ``_SAFE`` (the source's largest state
    cannot reach r, and the others lie far below it) is recomputed term by
    term.  (Rows are picked by index, not bound to array variables: numba
    counts references on every such binding, which cost more than the
    arithmetic here.)"""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    for s in range(S):
        for c in range(M + 1):
            F[q, s, c] = _NEG
            Wl[q, s, c] = 0.0
    for c in range(M + 1):
        Mx[q, c] = _NEG
    lo, hi = band_limits(i, N, M, band)
    for c in range(lo, hi + 1):
        for r in range(S):
            here, w, sc, e, first = _source(i, c, r, kind, etab, lmo, lio, x,
                                            y, p, q)
            if not here or e == _NEG:
                continue
            if first:
                v = ls[r]  # from Begin: the source cell (0, 0) holds nothing
            else:
                m = Mx[w, sc]
                if m == _NEG:
                    continue
                acc = 0.0
                for s in range(S):
                    acc += Wl[w, s, sc] * T[s, r]
                if acc >= _SAFE:
                    v = m + math.log(acc)
                else:
                    m = _NEG
                    for s in range(S):
                        m = max(m, F[w, s, sc] + lt[s, r])
                    if m == _NEG:
                        continue
                    acc = 0.0
                    for s in range(S):
                        acc += math.exp(F[w, s, sc] + lt[s, r] - m)
                    v = m + math.log(acc)
            F[q, r, c] = e + v
        m = _NEG
        for s in range(S):
            m = max(m, F[q, s, c])
        Mx[q, c] = m
        if m > _NEG:
            for s in range(S):
                Wl[q, s, c] = math.exp(F[q, s, c] - m)


@numba.njit(cache=True)
def _next_values(i, c, kind, etab, lmo, lio, x, y, nxt, cur, g):
    """g[r] = log emission odds of state r at its cell after (i, c) plus its
    log backward value there (match and insert-x: row i + 1 in ``nxt``;
    insert-y: row i in ``cur``); -inf outside the lattice.  Returns the
    largest."""
    N = x.shape[0]
    M = y.shape[0]
    mg = _NEG
    for r in range(kind.shape[0]):
        k = kind[r]
        v = _NEG
        if k == 0:
            if i < N and c < M:
                v = lmo[etab[r], x[i], y[c]] + nxt[r, c + 1]
        elif k == 1:
            if i < N:
                v = lio[etab[r], x[i]] + nxt[r, c]
        else:
            if c < M:
                v = lio[etab[r], y[c]] + cur[r, c + 1]
        g[r] = v
        if v > mg:
            mg = v
    return mg


@numba.njit(cache=True, inline="always")
def _linear(g, mg, wg):
    """wg = exp(g - mg)."""
    for r in range(g.shape[0]):
        wg[r] = math.exp(g[r] - mg)


@numba.njit(cache=True)
def _linear_row(F, Wl, Mx):
    """The linear form of a row of log values (see :func:`_fwd_row`)."""
    S = F.shape[0]
    for c in range(F.shape[1]):
        m = _NEG
        for s in range(S):
            m = max(m, F[s, c])
        Mx[c] = m
        for s in range(S):
            Wl[s, c] = math.exp(F[s, c] - m) if m > _NEG else 0.0


@numba.njit(cache=True)
def _bwd_row(i, kind, etab, le, lt, T, lmo, lio, x, y, band, nxt, cur, g,
             wg):
    """Log backward row i from row i + 1 (``nxt``; unused for i = N): the
    successors' values in linear form against their largest, as in
    :func:`_fwd_row`."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    cur[:, :] = _NEG
    lo, hi = band_limits(i, N, M, band)
    for c in range(hi, lo - 1, -1):
        if i == N and c == M:
            for s in range(S):
                cur[s, c] = le[s]  # to End; (N, M) has no successor
            continue
        mg = _next_values(i, c, kind, etab, lmo, lio, x, y, nxt, cur, g)
        if mg == _NEG:
            continue
        _linear(g, mg, wg)
        for s in range(S):
            acc = 0.0
            for r in range(S):
                acc += T[s, r] * wg[r]
            if acc >= _SAFE:
                cur[s, c] = mg + math.log(acc)
            else:
                m = _NEG
                for r in range(S):
                    v = lt[s, r] + g[r]
                    if v > m:
                        m = v
                if m > _NEG:
                    acc = 0.0
                    for r in range(S):
                        acc += math.exp(lt[s, r] + g[r] - m)
                    cur[s, c] = m + math.log(acc)


@numba.njit(cache=True)
def _end_value(kind, le, F, M):
    """log sum_s F[s, M] t(s, End)."""
    S = kind.shape[0]
    m = _NEG
    for s in range(S):
        v = F[s, M] + le[s]
        if v > m:
            m = v
    if m == _NEG:
        return _NEG
    acc = 0.0
    for s in range(S):
        acc += math.exp(F[s, M] + le[s] - m)
    return m + math.log(acc)


@numba.njit(cache=True, nogil=True)
def has_path(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
             band):
    """Whether the pair has a state path of non-zero probability: the
    forward on booleans (a cell's state is reachable when its emission is
    non-zero and some reachable source state moves to it), exact and about
    20x faster than :func:`log_forward`, so that a pair the scaled passes
    found no path for costs a log-space pass only when it has one."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    if N + M == 0:
        return False
    if N == 0 or M == 0:
        band = -1
    R = np.zeros((2, S, M + 1), np.uint8)
    for i in range(N + 1):
        q = i & 1
        p = q ^ 1
        for s in range(S):
            for c in range(M + 1):
                R[q, s, c] = 0
        lo, hi = band_limits(i, N, M, band)
        for c in range(lo, hi + 1):
            for r in range(S):
                here, w, sc, e, first = _source(i, c, r, kind, etab,
                                                match_odds, ins_odds, x, y,
                                                p, q)
                if not here or not e > 0.0:
                    continue
                v = first and start[r] > 0.0
                if not first:
                    for s in range(S):
                        if R[w, s, sc] and trans[s, r] > 0.0:
                            v = True
                            break
                R[q, r, c] = v
    for s in range(S):
        if R[N & 1, s, M] and end[s] > 0.0:
            return True
    return False


@numba.njit(cache=True, nogil=True)
def log_forward(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                band):
    """Log-odds likelihood of the pair (x, y) (as ``pair_fb.forward``);
    O(S M) memory."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    if N + M == 0:
        return _NEG
    if N == 0 or M == 0:
        band = -1  # the path is forced (band_limits needs N, M >= 1)
    ls, lt, le, lmo, lio = _log_tables(start, trans, end, match_odds,
                                       ins_odds)
    F = np.empty((2, S, M + 1))
    Wl = np.empty((2, S, M + 1))
    Mx = np.empty((2, M + 1))
    for i in range(N + 1):
        _fwd_row(i, kind, etab, ls, lt, trans, lmo, lio, x, y, band, F, Wl,
                 Mx, (i + 1) & 1, i & 1)
    return _end_value(kind, le, F[N & 1], M)


@numba.njit(cache=True, nogil=True)
def log_posterior_counts(kind, etab, start, trans, end, match_odds, ins_odds,
                         x, y, band, P, n_start, n_trans, n_end, n_match,
                         n_ins):
    """Forward-backward in log space.  Fills ``P`` (N, M) with the posterior
    match probabilities when ``P`` has N rows (pass a (0, 0) array to skip
    them) and adds the expected counts into ``n_*`` (shapes as
    ``pair_fb.expected_counts``) when ``n_start`` has S entries (pass an
    empty one to skip them).  Returns the log-odds; nothing is added when
    it is -inf, or NaN if the counts break their identities (the start
    counts sum to 1, each residue is emitted once; they hold to rounding
    here, the check is the same as the scaled kernels')."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    want_post = P.shape[0] == N and N > 0
    want_counts = n_start.shape[0] == S
    if N + M == 0:
        return _NEG
    if N == 0 or M == 0:
        band = -1
    ls, lt, le, lmo, lio = _log_tables(start, trans, end, match_odds,
                                       ins_odds)
    K = int(math.ceil(math.sqrt(N + 1.0)))
    nb = N // K + 1
    # checkpoint rows i = b K (log values only: the linear form of the
    # block's first row is rebuilt from them) and a block of K rows
    ckF = np.empty((nb, S, M + 1))
    # (the first pass uses two of the block's rows as a ring: N = 0 has K = 1)
    nr = max(K, 2)
    F = np.empty((nr, S, M + 1))
    Wl = np.empty((nr, S, M + 1))
    Mx = np.empty((nr, M + 1))
    for i in range(N + 1):
        q = i & 1
        _fwd_row(i, kind, etab, ls, lt, trans, lmo, lio, x, y, band, F, Wl,
                 Mx, (i + 1) & 1, q)
        if i % K == 0:
            _copy2(F[q], ckF[i // K])
    logz = _end_value(kind, le, F[N & 1], M)
    if not math.isfinite(logz):
        return logz
    c_start = np.zeros(S)
    c_trans = np.zeros((S, S))
    c_end = np.zeros(S)
    c_match = np.zeros(n_match.shape)
    c_ins = np.zeros(n_ins.shape)
    R = np.empty((2, S, M + 1))  # backward rows i + 1 and i
    g = np.empty(S)
    wg = np.empty(S)
    for b in range(nb - 1, -1, -1):
        i0 = b * K
        i1 = min(i0 + K - 1, N)
        _copy2(ckF[b], F[0])
        _linear_row(F[0], Wl[0], Mx[0])
        for i in range(i0 + 1, i1 + 1):
            _fwd_row(i, kind, etab, ls, lt, trans, lmo, lio, x, y, band, F,
                     Wl, Mx, i - 1 - i0, i - i0)
        for i in range(i1, i0 - 1, -1):
            nxt = R[(i + 1) & 1]
            cur = R[i & 1]
            _bwd_row(i, kind, etab, le, lt, trans, lmo, lio, x, y, band, nxt,
                     cur, g, wg)
            Fi = F[i - i0]
            lo, hi = band_limits(i, N, M, band)
            if want_post and i >= 1:
                for c in range(max(lo, 1), hi + 1):
                    v = 0.0
                    for s in range(S):
                        if kind[s] == 0:
                            v += math.exp(Fi[s, c] + cur[s, c] - logz)
                    P[i - 1, c - 1] = v
            if not want_counts:
                continue
            for c in range(lo, hi + 1):
                mg = _next_values(i, c, kind, etab, lmo, lio, x, y, nxt, cur,
                                  g)
                if mg > _NEG:
                    _linear(g, mg, wg)
                for s in range(S):
                    fv = Fi[s, c]
                    if fv == _NEG:
                        continue
                    k = kind[s]
                    gs = math.exp(fv + cur[s, c] - logz)
                    if k == 0:
                        c_match[etab[s], x[i - 1], y[c - 1]] += gs
                    elif k == 1:
                        c_ins[etab[s], x[i - 1]] += gs
                    else:
                        c_ins[etab[s], y[c - 1]] += gs
                    if i == N and c == M:
                        c_end[s] += math.exp(fv + le[s] - logz)
                    if mg == _NEG:
                        continue
                    # transitions: t(s, r) wg[r] exp(fv + mg - logz), or term
                    # by term where that factor would leave the float range
                    # or a successor's weight is below _SAFE (underflowed)
                    e = fv + mg - logz
                    fast = -700.0 < e < 700.0
                    f = math.exp(e) if fast else 0.0
                    for r in range(S):
                        if fast and (wg[r] >= _SAFE or g[r] == _NEG):
                            c_trans[s, r] += trans[s, r] * wg[r] * f
                        else:
                            v = fv + lt[s, r] + g[r]
                            if v > _NEG:
                                c_trans[s, r] += math.exp(v - logz)
            if i == 0:
                # Begin: to each state's first cell
                for r in range(S):
                    k = kind[r]
                    v = _NEG
                    if k == 0:
                        if N >= 1 and M >= 1:
                            v = lmo[etab[r], x[0], y[0]] + nxt[r, 1]
                    elif k == 1:
                        if N >= 1:
                            v = lio[etab[r], x[0]] + nxt[r, 0]
                    elif M >= 1:
                        v = lio[etab[r], y[0]] + cur[r, 1]
                    v += ls[r]
                    if v > _NEG:
                        c_start[r] += math.exp(v - logz)
    if want_counts:
        # log values of magnitude |logz| carry rounding of |logz| eps per
        # step: the identities hold to that along N + M steps, not to a
        # fixed 1e-9 (a 2000 x 2000 pair at log-odds -139,464 broke it)
        tol = _COUNTS_AGREE + 2.3e-16 * (N + M) * abs(logz)
        em = 2.0 * c_match.sum() + c_ins.sum()
        if not (abs(c_start.sum() - 1.0) <= tol
                and abs(em - (N + M)) <= tol * (N + M)):
            return np.nan
        n_start += c_start
        n_trans += c_trans
        n_end += c_end
        n_match += c_match
        n_ins += c_ins
    return logz
