"""Pair-HMM decoding kernels: Viterbi (best state path) and MEA alignment.

Model convention (shared with ``pair_fb``): ``S`` emitting states between a
silent Begin and End.  ``kind[s]`` is 0 (match: consumes x_i and y_j),
1 (insert-x: x_i against a gap) or 2 (insert-y: a gap against y_j).
``etab[s]`` indexes ``log_match_odds`` (n_m, A, A) for match states and
``log_ins_odds`` (n_i, A) for insert states.  Scores are log-odds against the
independent-residue background.  Alignment ops, in order: 0 = column
(x_i, y_j), 1 = (x_i, -), 2 = (-, y_j).  ``band`` is -1 (no band) or the
half-width passed to :func:`band_limits`.

Viterbi traceback scheme
------------------------
Each state ``s`` can only be entered from the states ``t`` with
``log_trans[t, s] > -inf`` (its predecessor list, ascending state index), plus
Begin.  Begin needs no bit: a state is entered from Begin exactly when its
predecessor cell is (0, 0), which no emitting state occupies.  So the choice at
(s, i, j) is an index into the predecessor list and needs
``ceil(log2(n_pred[s]))`` bits.  The fields of all states are packed into the
fewest bytes per cell such that no field straddles a byte (first fit).  The
three-state model needs 2 + 1 + 1 = 4 bits and the five-state model
(short and long gap pairs) 3 + 4 * 1 = 7 bits: **one byte per cell**.  A fully
connected model with S states needs S * ceil(log2 S) bits.  Only the cells of
the band are stored (rows are stored with their own width), so memory is
``n_bytes * band_area`` bytes.

Tie-breaking (deterministic, independent of the thread count and of the
vectorised/segmented evaluation order): between predecessors of a state the
lowest state index wins; at End the lowest state index wins.  In MEA the
diagonal (column) wins over (x_i, -), which wins over (-, y_j).

Performance notes.  Rows are computed in passes that vectorise: match and
insert-x states read only the previous row.  The insert-y recurrence is a
serial chain along the row; it is split into four segments evaluated
interleaved (four independent dependency chains in flight), each started from
-inf, and then repaired from the true carry at each segment start.  The repair
walks forward only while the carried gap still changes a cell, and it applies
the same comparisons as the serial recurrence, so the result is bit-identical
to serial evaluation (max-plus recurrences are monotone in the carry).
"""
import math

import numpy as np
from numba import njit, prange

NEG_INF = -np.inf


# ---------------------------------------------------------------------------
# band

@njit(cache=True)
def _band_limits_local(i, N, M, band):
    # temporary stand-in, replaced by pair_fb.band_limits when available
    if band < 0:
        return 0, M
    if N == 0:
        c = 0
    else:
        c = (i * M) // N
    lo = c - band
    hi = c + band
    if lo < 0:
        lo = 0
    if hi > M:
        hi = M
    return lo, hi


try:  # one definition in the end: pair_fb owns the band
    from .pair_fb import band_limits
except ImportError:  # pragma: no cover - only while pair_fb is being written
    band_limits = _band_limits_local


# ---------------------------------------------------------------------------
# predecessor tables and traceback field layout

@njit(cache=True)
def pred_tables(log_trans):
    """Predecessor lists and packed traceback layout.

    Returns ``n_pred (S,)``, ``preds (S, S)`` (row s lists the states t with
    ``log_trans[t, s] > -inf``, ascending), ``fbyte (S,)``, ``fshift (S,)``,
    ``fmask (S,)`` (where state s keeps its predecessor index in a cell) and
    ``n_bytes`` (bytes per cell, at least 1).
    """
    S = log_trans.shape[0]
    n_pred = np.zeros(S, np.int64)
    preds = np.zeros((S, S), np.int64)
    for s in range(S):
        for t in range(S):
            if log_trans[t, s] > NEG_INF:
                preds[s, n_pred[s]] = t
                n_pred[s] += 1
    fbyte = np.zeros(S, np.int64)
    fshift = np.zeros(S, np.int64)
    fmask = np.zeros(S, np.int64)
    used = np.zeros(S + 1, np.int64)  # bits used in each byte
    n_bytes = 1
    for s in range(S):
        nb = 0
        while (1 << nb) < n_pred[s]:
            nb += 1
        fmask[s] = (1 << nb) - 1
        if nb == 0:
            continue
        b = 0
        while used[b] + nb > 8:
            b += 1
        fbyte[s] = b
        fshift[s] = used[b]
        used[b] += nb
        if b + 1 > n_bytes:
            n_bytes = b + 1
    return n_pred, preds, fbyte, fshift, fmask, n_bytes


# ---------------------------------------------------------------------------
# Viterbi

@njit(cache=True)
def _chain(vrow, best, arg, em, j0, j1, lss, ks):
    """Insert-y self-loop chain on one row, j in [j0, j1).

    On entry ``best``/``arg`` hold the best entry from the other predecessors
    (before emission).  On exit ``vrow[j] = max(best[j], vrow[j-1] + lss) +
    em[j]`` exactly as the serial recurrence computes it, and ``arg[j]`` is
    ``ks`` where the self loop won (ties: lower predecessor index).
    """
    n = j1 - j0
    if n <= 0:
        return
    if ks < 0:  # no self loop: no chain
        for j in range(j0, j1):
            vrow[j] = best[j] + em[j]
        return
    G = n // 4
    if G < 16:
        c = vrow[j0 - 1]
        for j in range(j0, j1):
            c = max(best[j], c + lss) + em[j]
            vrow[j] = c
    else:
        # four interleaved segments (independent dependency chains); segments
        # 1..3 start from -inf and are repaired below
        b0 = best[j0:j0 + G]
        b1 = best[j0 + G:j0 + 2 * G]
        b2 = best[j0 + 2 * G:j0 + 3 * G]
        b3 = best[j0 + 3 * G:j0 + 4 * G]
        e0 = em[j0:j0 + G]
        e1 = em[j0 + G:j0 + 2 * G]
        e2 = em[j0 + 2 * G:j0 + 3 * G]
        e3 = em[j0 + 3 * G:j0 + 4 * G]
        v0 = vrow[j0:j0 + G]
        v1 = vrow[j0 + G:j0 + 2 * G]
        v2 = vrow[j0 + 2 * G:j0 + 3 * G]
        v3 = vrow[j0 + 3 * G:j0 + 4 * G]
        c0 = vrow[j0 - 1]
        c1 = NEG_INF
        c2 = NEG_INF
        c3 = NEG_INF
        for q in range(G):
            c0 = max(b0[q], c0 + lss) + e0[q]
            v0[q] = c0
            c1 = max(b1[q], c1 + lss) + e1[q]
            v1[q] = c1
            c2 = max(b2[q], c2 + lss) + e2[q]
            v2[q] = c2
            c3 = max(b3[q], c3 + lss) + e3[q]
            v3[q] = c3
        for j in range(j0 + 4 * G, j1):
            c3 = max(best[j], c3 + lss) + em[j]
            vrow[j] = c3
        # repair: the true carry can only raise a cell (max-plus is
        # monotone); once a cell is unchanged the rest of the segment is too
        for k in range(1, 4):
            ja = j0 + k * G
            jb = ja + G if k < 3 else j1
            c = vrow[ja - 1]
            for j in range(ja, jb):
                c = max(best[j], c + lss) + em[j]
                if c == vrow[j]:
                    break
                vrow[j] = c
    # choices, vectorised: the self loop wins where it beats the entry
    bv = best[j0:j1]
    av = arg[j0:j1]
    pv = vrow[j0 - 1:j1 - 1]
    for q in range(n):
        c = pv[q] + lss
        b = bv[q]
        w = (c > b) | ((c == b) & (ks < av[q]))
        av[q] = ks if w else av[q]


@njit(cache=True)
def _viterbi_core(kind, etab, log_start, log_trans, log_end, log_match_odds,
                  log_ins_odds, x, y, band, n_pred, preds, fbyte, fshift,
                  fmask, n_bytes, states_out, ops_out):
    """Viterbi for one pair; path written to states_out/ops_out[:L].

    Returns (score, L).  Buffers must have length >= N + M.
    """
    S = kind.shape[0]
    N = x.shape[0]
    M = y.shape[0]
    A = log_match_odds.shape[1]
    if N + M == 0:
        return NEG_INF, 0

    # band rows and traceback storage offsets
    lo = np.empty(N + 1, np.int64)
    hi = np.empty(N + 1, np.int64)
    row_off = np.empty(N + 2, np.int64)
    row_off[0] = 0
    for i in range(N + 1):
        a, b = band_limits(i, N, M, band)
        lo[i] = a
        hi[i] = b
        w = b - a + 1
        if w < 0:
            w = 0
        row_off[i + 1] = row_off[i] + w
    tb = np.zeros(row_off[N + 1] * n_bytes, np.uint8)

    # emission rows: match profile for the letters present in x, insert-y rows
    n_m = log_match_odds.shape[0]
    slot = np.full(A, -1, np.int64)
    n_slot = 0
    for i in range(N):
        if slot[x[i]] < 0:
            slot[x[i]] = n_slot
            n_slot += 1
    prof = np.empty((n_m, n_slot, M + 1), np.float64)
    for a in range(A):
        if slot[a] >= 0:
            for t in range(n_m):
                row = log_match_odds[t, a]
                dst = prof[t, slot[a]]
                dst[0] = NEG_INF
                for j in range(M):
                    dst[j + 1] = row[y[j]]
    n_i = log_ins_odds.shape[0]
    yem = np.empty((n_i, M + 1), np.float64)
    for t in range(n_i):
        yem[t, 0] = NEG_INF
        for j in range(M):
            yem[t, j + 1] = log_ins_odds[t, y[j]]

    # chain structure of insert-y states
    simple = True
    selfk = np.full(S, -1, np.int64)
    for s in range(S):
        if kind[s] == 2:
            for k in range(n_pred[s]):
                t = preds[s, k]
                if kind[t] == 2:
                    if t == s:
                        selfk[s] = k
                    else:
                        simple = False

    V = np.full((2, S, M + 1), NEG_INF)
    best = np.empty((S, M + 1), np.float64)
    arg = np.zeros((S, M + 1), np.int64)  # int64: uint8 blocks SIMD
    code = np.zeros(M + 1, np.int64)
    wlo = np.zeros(2, np.int64)
    whi = np.full(2, -1, np.int64)

    for i in range(N + 1):
        r = i & 1
        Vc = V[r]
        Vp = V[1 - r]
        jlo = lo[i]
        jhi = hi[i]
        # clear what row i-2 left outside this row's band
        for j in range(wlo[r], min(jlo, whi[r] + 1)):
            for s in range(S):
                Vc[s, j] = NEG_INF
        for j in range(max(jhi + 1, wlo[r]), whi[r] + 1):
            for s in range(S):
                Vc[s, j] = NEG_INF
        wlo[r] = jlo
        whi[r] = jhi
        if jhi < jlo:
            continue
        j0 = max(jlo, 1)  # first column for match and insert-y states
        xi = x[i - 1] if i > 0 else 0

        for s in range(S):
            ks = kind[s]
            if ks == 2:
                continue
            bs = best[s]
            ag = arg[s]
            vr = Vc[s]
            if ks == 0:
                if i == 0 or j0 > jhi:
                    continue
                ja = j0
                sh = 1
            else:
                if i == 0:
                    continue
                ja = jlo
                sh = 0
            n = jhi + 1 - ja
            bv = bs[ja:jhi + 1]
            av = ag[ja:jhi + 1]
            if n_pred[s] == 0:
                for q in range(n):
                    bv[q] = NEG_INF
                    av[q] = 0
            for k in range(n_pred[s]):
                t = preds[s, k]
                lt = log_trans[t, s]
                src = Vp[t, ja - sh:jhi + 1 - sh]
                if k == 0:
                    for q in range(n):
                        bv[q] = src[q] + lt
                        av[q] = 0
                else:
                    # select form (no conditional stores) so that it vectorises
                    for q in range(n):
                        v = src[q] + lt
                        b = bv[q]
                        w = v > b
                        av[q] = k if w else av[q]
                        bv[q] = v if w else b
            if i == 1 and ja == sh:  # entered from Begin at (1,1) / (1,0)
                bv[0] = log_start[s]
                av[0] = 0
            vv = vr[ja:jhi + 1]
            if ks == 0:
                em = prof[etab[s], slot[xi]]
                ev = em[ja:jhi + 1]
                for q in range(n):
                    vv[q] = bv[q] + ev[q]
            else:
                e = log_ins_odds[etab[s], xi]
                for q in range(n):
                    vv[q] = bv[q] + e

        # insert-y states: entry from the other kinds (vectorised) ...
        if j0 <= jhi:
            n = jhi + 1 - j0
            for s in range(S):
                if kind[s] != 2:
                    continue
                bv = best[s, j0:jhi + 1]
                av = arg[s, j0:jhi + 1]
                for q in range(n):
                    bv[q] = NEG_INF
                    av[q] = 0
                first = True
                for k in range(n_pred[s]):
                    t = preds[s, k]
                    if kind[t] == 2:
                        continue
                    lt = log_trans[t, s]
                    src = Vc[t, j0 - 1:jhi]
                    if first:
                        first = False
                        for q in range(n):
                            bv[q] = src[q] + lt
                            av[q] = k
                    else:
                        for q in range(n):
                            v = src[q] + lt
                            b = bv[q]
                            w = v > b
                            av[q] = k if w else av[q]
                            bv[q] = v if w else b
                if i == 0 and j0 == 1:  # entered from Begin at (0,1)
                    bv[0] = log_start[s]
                    av[0] = 0
            # ... then the serial chain along the row
            if simple:
                for s in range(S):
                    if kind[s] != 2:
                        continue
                    ks_ = selfk[s]
                    lss = log_trans[s, s] if ks_ >= 0 else 0.0
                    _chain(Vc[s], best[s], arg[s], yem[etab[s]], j0, jhi + 1,
                           lss, ks_)
            else:
                for j in range(j0, jhi + 1):
                    for s in range(S):
                        if kind[s] != 2:
                            continue
                        p = best[s, j]
                        a = arg[s, j]
                        for k in range(n_pred[s]):
                            t = preds[s, k]
                            if kind[t] != 2:
                                continue
                            c = Vc[t, j - 1] + log_trans[t, s]
                            if c > p or (c == p and k < a):
                                p = c
                                a = k
                        best[s, j] = p
                        arg[s, j] = a
                        Vc[s, j] = p + yem[etab[s], j]

        # pack the choices of this row: int64 code row, one narrowing store
        base = row_off[i] * n_bytes
        for byte in range(n_bytes):
            cv = code[jlo:jhi + 1]
            for q in range(jhi + 1 - jlo):
                cv[q] = 0
            for s in range(S):
                if fmask[s] == 0 or fbyte[s] != byte:
                    continue
                if kind[s] == 1:
                    if i == 0:
                        continue
                    ja = jlo
                else:
                    if kind[s] == 0 and i == 0:
                        continue
                    ja = j0
                sh = fshift[s]
                cv = code[ja:jhi + 1]
                av = arg[s, ja:jhi + 1]
                for q in range(jhi + 1 - ja):
                    cv[q] |= av[q] << sh
            cv = code[jlo:jhi + 1]
            if n_bytes == 1:
                tv = tb[base:base + jhi + 1 - jlo]
                for q in range(jhi + 1 - jlo):
                    tv[q] = np.uint8(cv[q])
            else:
                for q in range(jhi + 1 - jlo):
                    tb[base + q * n_bytes + byte] = np.uint8(cv[q])

    # End
    Vc = V[N & 1]
    score = NEG_INF
    s_end = -1
    if lo[N] <= M and M <= hi[N]:
        for s in range(S):
            v = Vc[s, M] + log_end[s]
            if v > score:
                score = v
                s_end = s
    if s_end < 0:
        return NEG_INF, 0

    # traceback
    i = N
    j = M
    s = s_end
    L = 0
    while True:
        states_out[L] = s
        ops_out[L] = kind[s]
        L += 1
        k = kind[s]
        pi = i - 1 if k != 2 else i
        pj = j - 1 if k != 1 else j
        if pi == 0 and pj == 0:
            break
        code = (tb[(row_off[i] + j - lo[i]) * n_bytes + fbyte[s]]
                >> fshift[s]) & fmask[s]
        s = preds[s, code]
        i = pi
        j = pj
    # reverse in place
    for q in range(L // 2):
        a = states_out[q]
        states_out[q] = states_out[L - 1 - q]
        states_out[L - 1 - q] = a
        o = ops_out[q]
        ops_out[q] = ops_out[L - 1 - q]
        ops_out[L - 1 - q] = o
    return score, L


@njit(cache=True)
def viterbi(kind, etab, log_start, log_trans, log_end, log_match_odds,
            log_ins_odds, x, y, band):
    """Best state path of a pair HMM.

    Returns ``(score, states, ops)``: the log-odds score of the best path
    (-inf when there is no valid path), its states (int64, length L) and its
    alignment ops (uint8, length L; empty when there is no valid path).
    """
    n_pred, preds, fbyte, fshift, fmask, n_bytes = pred_tables(log_trans)
    Lmax = x.shape[0] + y.shape[0]
    states = np.empty(Lmax, np.int64)
    ops = np.empty(Lmax, np.uint8)
    score, L = _viterbi_core(kind, etab, log_start, log_trans, log_end,
                             log_match_odds, log_ins_odds, x, y, band, n_pred,
                             preds, fbyte, fshift, fmask, n_bytes, states, ops)
    return score, states[:L].copy(), ops[:L].copy()


@njit(cache=True, parallel=True)
def batch_viterbi(kind, etab, log_start, log_trans, log_end, log_match_odds,
                  log_ins_odds, xs, x_off, ys, y_off, band):
    """Viterbi over P pairs, pair p = (xs[x_off[p]:x_off[p+1]], ys[...]).

    Returns ``(scores (P,), ops_concat uint8, ops_off int64 (P+1,))``; the ops
    of pair p are ``ops_concat[ops_off[p]:ops_off[p+1]]``.
    """
    P = x_off.shape[0] - 1
    n_pred, preds, fbyte, fshift, fmask, n_bytes = pred_tables(log_trans)
    scores = np.empty(P, np.float64)
    lens = np.zeros(P, np.int64)
    buf = np.empty(xs.shape[0] + ys.shape[0], np.uint8)
    for p in prange(P):
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        b0 = x_off[p] + y_off[p]
        Lmax = x.shape[0] + y.shape[0]
        st = np.empty(Lmax, np.int64)
        score, L = _viterbi_core(kind, etab, log_start, log_trans, log_end,
                                 log_match_odds, log_ins_odds, x, y, band,
                                 n_pred, preds, fbyte, fshift, fmask, n_bytes,
                                 st, buf[b0:b0 + Lmax])
        scores[p] = score
        lens[p] = L
    ops_off = np.zeros(P + 1, np.int64)
    for p in range(P):
        ops_off[p + 1] = ops_off[p] + lens[p]
    ops = np.empty(ops_off[P], np.uint8)
    for p in range(P):
        b0 = x_off[p] + y_off[p]
        ops[ops_off[p]:ops_off[p + 1]] = buf[b0:b0 + lens[p]]
    return scores, ops, ops_off


# ---------------------------------------------------------------------------
# MEA

@njit(cache=True)
def mea(P, band):
    """Maximum expected accuracy alignment (ProbCons style).

    Maximises the sum of match posteriors ``P[i, j]`` (shape (N, M)) over the
    aligned pairs; gaps score 0.  Returns ``(expected_accuracy, ops)`` where
    expected_accuracy is that sum (the expected number of correctly aligned
    pairs).  Ties: column, then (x_i, -), then (-, y_j).  Traceback is one
    byte per band cell.
    """
    N = P.shape[0]
    M = P.shape[1]
    lo = np.empty(N + 1, np.int64)
    hi = np.empty(N + 1, np.int64)
    row_off = np.empty(N + 2, np.int64)
    row_off[0] = 0
    for i in range(N + 1):
        a, b = band_limits(i, N, M, band)
        lo[i] = a
        hi[i] = b
        w = b - a + 1
        if w < 0:
            w = 0
        row_off[i + 1] = row_off[i] + w
    tb = np.empty(row_off[N + 1], np.uint8)
    D = np.full((2, M + 1), NEG_INF)
    Arow = np.empty(M + 1, np.float64)
    code = np.zeros(M + 1, np.int64)
    wlo = np.zeros(2, np.int64)
    whi = np.full(2, -1, np.int64)
    for i in range(N + 1):
        r = i & 1
        Dc = D[r]
        Dp = D[1 - r]
        jlo = lo[i]
        jhi = hi[i]
        for j in range(wlo[r], min(jlo, whi[r] + 1)):
            Dc[j] = NEG_INF
        for j in range(max(jhi + 1, wlo[r]), whi[r] + 1):
            Dc[j] = NEG_INF
        wlo[r] = jlo
        whi[r] = jhi
        if jhi < jlo:
            continue
        if i == 0:
            if jlo == 0:
                Dc[0] = 0.0
                tb[row_off[0]] = 0
            for j in range(max(jlo, 1), jhi + 1):
                Dc[j] = Dc[j - 1]
                tb[row_off[0] + j - jlo] = 2
            continue
        # best of column and (x_i, -), vectorised (select form, int64 codes)
        if jlo == 0:
            Arow[0] = Dp[0]
        j0 = max(jlo, 1)
        n = jhi + 1 - j0
        pr = P[i - 1, j0 - 1:jhi]
        dg = Dp[j0 - 1:jhi]
        up = Dp[j0:jhi + 1]
        av = Arow[j0:jhi + 1]
        cv = code[j0:jhi + 1]
        for q in range(n):
            d = dg[q] + pr[q]
            u = up[q]
            w = u > d
            av[q] = u if w else d
            cv[q] = 1 if w else 0
        # (-, y_j) is a running maximum along the row
        if jlo == 0:
            Dc[0] = Arow[0]
            code[0] = 1
        c = Dc[j0 - 1]
        for j in range(j0, jhi + 1):
            c = max(c, Arow[j])
            Dc[j] = c
        pv = Dc[j0 - 1:jhi]
        tr = tb[row_off[i] + j0 - jlo:row_off[i + 1]]
        for q in range(n):
            tr[q] = np.uint8(2 if pv[q] > av[q] else cv[q])
        if jlo == 0:
            tb[row_off[i]] = 1
    Dc = D[N & 1]
    if not (lo[N] <= M and M <= hi[N]) or Dc[M] == NEG_INF:
        return NEG_INF, np.empty(0, np.uint8)
    ops = np.empty(N + M, np.uint8)
    i = N
    j = M
    L = 0
    while i > 0 or j > 0:
        o = tb[row_off[i] + j - lo[i]]
        ops[L] = o
        L += 1
        if o == 0:
            i -= 1
            j -= 1
        elif o == 1:
            i -= 1
        else:
            j -= 1
    out = np.empty(L, np.uint8)
    for q in range(L):
        out[q] = ops[L - 1 - q]
    return Dc[M], out
