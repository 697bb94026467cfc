"""Pair-HMM decoding kernels: Viterbi (best state path) and MEA alignment.

Model convention (shared with ``pair_fb``): ``S`` emitting states between a
silent Begin and End.  ``kind[s]`` is 0 (match: consumes x_i and y_j),
1 (insert-x: x_i against a gap) or 2 (insert-y: a gap against y_j).
``etab[s]`` indexes ``log_match_odds`` (n_m, A, A) for match states and
``log_ins_odds`` (n_i, A) for insert states.  Scores are log-odds against the
independent-residue background.  Alignment ops, in order: 0 = column
(x_i, y_j), 1 = (x_i, -), 2 = (-, y_j).  ``band`` is -1 (no band) or the
half-width passed to :func:`band_limits`.

Viterbi traceback scheme (memory: one byte per band cell for the presets)
------------------------------------------------------------------------
Each state ``s`` can only be entered from the states ``t`` with
``log_trans[t, s] > -inf`` (its predecessor list, ascending state index), plus
Begin.  Begin needs no bit: a state is entered from Begin exactly when its
predecessor cell is (0, 0), which no emitting state occupies.  So the choice at
(s, i, j) is an index into the predecessor list and needs
``ceil(log2(n_pred[s]))`` bits.  General path: the fields of all states are
packed into the fewest bytes per cell such that no field straddles a byte
(first fit).  The five-state preset (short and long gap pairs, inserts
entered from match or themselves) needs 3 + 4 * 1 = 7 bits: one byte per
cell; a fully connected model with S states needs
``ceil(S / floor(8 / b))`` bytes with ``b = ceil(log2 S)``.  Fused
three-state path (states ordered match, insert-x, insert-y; any transitions,
X<->Y included): one byte per cell holding the predecessor *state* of match
(bits 0-1), insert-x (bits 2-3) and insert-y (bits 4-5).  Only band cells are
stored (each row with its own width): ``n_bytes * band_area`` bytes, plus
O(S * M) rows.

Tie-breaking (deterministic, the same for 1 or many threads and for the
fused and general paths): at End the lowest state index wins; between the
predecessors of a state the lowest state index wins.  Traced back from End,
the result is the optimal path whose *reversed* state sequence is
lexicographically smallest.  In MEA, ties are resolved at each cell of the
traceback from (N, M): column (x_i, y_j), then (x_i, -), then (-, y_j).

Scores on a grid.  :func:`viterbi` and :func:`batch_viterbi` round every
score table to multiples of ``1 / GRID`` (2**-30) before any kernel runs
(a coarser power of 2 when a path's scores could reach 2**23 in magnitude).
Sums of such numbers are exact, so every kernel here computes the same
values and makes the same choices whatever the order of its additions, and
the fused, general, banded and striped kernels agree bit for bit.  The path returned is optimal for the rounded
scores; its score is summed along it from the tables as given.

Performance notes.  Rows are computed in passes written in select form (no
conditional stores, int64 choice rows) so that they vectorise: match and
insert-x states read only the previous row; the insert-y entry from match /
insert-x is written for column j + 1 inside the same loop.  The insert-y
self-loop recurrence is a serial chain along the row; it is cut into eight
segments evaluated interleaved (eight independent dependency chains in
flight), segments 1..7 started from -inf and then repaired from the true carry
at their start.  Max-plus recurrences are monotone in the carry, so the repair
walks only while the carried gap still changes a cell.  Insert-y states with
insert-y predecessors other than themselves (custom models) take a serial
per-cell loop.  The three-state path without a band, on rows of at least
``pair_stripe.STRIPE_MIN`` columns, runs in the striped layout of
:mod:`pair_stripe` instead (one vectorised pass per row for every state and
the traceback byte, then the 16 lane carries in closed form, exact on the
grid: 1.15-1.5x faster than the serial lane repair it replaced, itself up
to 1.4x faster than the row kernel).
"""
import numpy as np
from numba import njit, prange

from . import pair_stripe as ps
from ._band import band_limits  # the one definition of the band

NEG_INF = -np.inf


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
def _band_rows(N, M, band):
    """Band of each row (inclusive) and offsets of the stored rows."""
    if N == 0 or M == 0:  # the path is forced; band_limits needs N, M >= 1
        band = -1
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
    return lo, hi, row_off


@njit(cache=True)
def _emission_rows(log_match_odds, log_ins_odds, x, y):
    """Per-letter match rows gathered along y (only letters present in x)
    and insert rows along y; column 0 is -inf (no residue of y consumed)."""
    N = x.shape[0]
    M = y.shape[0]
    A = log_match_odds.shape[1]
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
    return prof, slot, yem


@njit(cache=True)
def _traceback(kind, tb, row_off, lo, n_bytes, fbyte, fshift, fmask, preds,
               N, M, s_end, states_out, ops_out):
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
        if pi == 0 and pj == 0:  # entered from Begin
            break
        code = (tb[(row_off[i] + j - lo[i]) * n_bytes + fbyte[s]]
                >> fshift[s]) & fmask[s]
        s = preds[s, code]
        i = pi
        j = pj
    ps.reverse_path(states_out, ops_out, L)
    return L


@njit(cache=True)
def _chain_values(vrow, best, em, j0, j1, lss):
    """Insert-y self-loop chain on one row, j in [j0, j1).

    Sets ``vrow[j] = max(best[j], vrow[j-1] + lss) + em[j]`` with the values
    the serial recurrence gives, ``best`` being the best entry from the other
    predecessors (before emission).  The row is cut into eight segments whose
    chains run interleaved (independent dependency chains in flight);
    segments 1..7 start from -inf and are repaired from the true carry.
    """
    n = j1 - j0
    if n <= 0:
        return
    G = n // 8
    if G < 8:
        c = vrow[j0 - 1]
        for j in range(j0, j1):
            c = max(best[j], c + lss) + em[j]
            vrow[j] = c
        return
    b0 = best[j0 + 0 * G:j0 + 1 * G]
    e0 = em[j0 + 0 * G:j0 + 1 * G]
    v0 = vrow[j0 + 0 * G:j0 + 1 * G]
    b1 = best[j0 + 1 * G:j0 + 2 * G]
    e1 = em[j0 + 1 * G:j0 + 2 * G]
    v1 = vrow[j0 + 1 * G:j0 + 2 * G]
    b2 = best[j0 + 2 * G:j0 + 3 * G]
    e2 = em[j0 + 2 * G:j0 + 3 * G]
    v2 = vrow[j0 + 2 * G:j0 + 3 * G]
    b3 = best[j0 + 3 * G:j0 + 4 * G]
    e3 = em[j0 + 3 * G:j0 + 4 * G]
    v3 = vrow[j0 + 3 * G:j0 + 4 * G]
    b4 = best[j0 + 4 * G:j0 + 5 * G]
    e4 = em[j0 + 4 * G:j0 + 5 * G]
    v4 = vrow[j0 + 4 * G:j0 + 5 * G]
    b5 = best[j0 + 5 * G:j0 + 6 * G]
    e5 = em[j0 + 5 * G:j0 + 6 * G]
    v5 = vrow[j0 + 5 * G:j0 + 6 * G]
    b6 = best[j0 + 6 * G:j0 + 7 * G]
    e6 = em[j0 + 6 * G:j0 + 7 * G]
    v6 = vrow[j0 + 6 * G:j0 + 7 * G]
    b7 = best[j0 + 7 * G:j0 + 8 * G]
    e7 = em[j0 + 7 * G:j0 + 8 * G]
    v7 = vrow[j0 + 7 * G:j0 + 8 * G]
    c0 = vrow[j0 - 1]
    c1 = NEG_INF
    c2 = NEG_INF
    c3 = NEG_INF
    c4 = NEG_INF
    c5 = NEG_INF
    c6 = NEG_INF
    c7 = NEG_INF
    for q in range(G):
        c0 = max(b0[q], c0 + lss) + e0[q]
        v0[q] = c0
        c1 = max(b1[q], c1 + lss) + e1[q]
        v1[q] = c1
        c2 = max(b2[q], c2 + lss) + e2[q]
        v2[q] = c2
        c3 = max(b3[q], c3 + lss) + e3[q]
        v3[q] = c3
        c4 = max(b4[q], c4 + lss) + e4[q]
        v4[q] = c4
        c5 = max(b5[q], c5 + lss) + e5[q]
        v5[q] = c5
        c6 = max(b6[q], c6 + lss) + e6[q]
        v6[q] = c6
        c7 = max(b7[q], c7 + lss) + e7[q]
        v7[q] = c7
    for j in range(j0 + 8 * G, j1):
        c7 = max(best[j], c7 + lss) + em[j]
        vrow[j] = c7
    # repair: the true carry can only raise a cell (max-plus is monotone);
    # once a cell is unchanged, the rest of its segment is too
    for k in range(1, 8):
        ja = j0 + k * G
        jb = ja + G if k < 7 else j1
        c = vrow[ja - 1]
        for j in range(ja, jb):
            c = max(best[j], c + lss) + em[j]
            if c == vrow[j]:
                break
            vrow[j] = c


@njit(cache=True)
def _chain(vrow, best, arg, em, j0, j1, lss, ks):
    """Chain values (see :func:`_chain_values`) and the choices: ``arg[j]``
    becomes ``ks`` where the self loop wins (ties: lower predecessor index).
    ``ks < 0``: no self loop."""
    n = j1 - j0
    if n <= 0:
        return
    if ks < 0:
        for j in range(j0, j1):
            vrow[j] = best[j] + em[j]
        return
    _chain_values(vrow, best, em, j0, j1, lss)
    bv = best[j0:j1]
    av = arg[j0:j1]
    pv = vrow[j0 - 1:j1 - 1]
    for q in range(n):
        c = pv[q] + lss
        b = bv[q]
        w = (c > b) | ((c == b) & (ks < av[q]))
        av[q] = ks if w else av[q]


@njit(cache=True)
def _viterbi3_core(etab, log_start, log_trans, log_end, log_match_odds,
                   log_ins_odds, x, y, band, states_out, ops_out):
    """Fused Viterbi for states (match, insert-x, insert-y) = (0, 1, 2).

    Any transitions (zeros included).  One traceback byte per cell: the best
    predecessor state of match in bits 0-1, of insert-x in bits 2-3, of
    insert-y in bits 4-5.
    """
    N = x.shape[0]
    M = y.shape[0]
    prof, slot, yem = _emission_rows(log_match_odds, log_ins_odds, x, y)
    if band < 0 and N >= 1 and M >= ps.STRIPE_MIN:
        return ps.viterbi3_striped(log_start, log_trans, log_end,
                                   prof[etab[0]], slot, yem[etab[2]],
                                   log_ins_odds[etab[1]], x, M, states_out,
                                   ops_out)
    lo, hi, row_off = _band_rows(N, M, band)
    tb = np.zeros(row_off[N + 1], np.uint8)
    ey = yem[etab[2]]
    t00 = log_trans[0, 0]
    t01 = log_trans[0, 1]
    t02 = log_trans[0, 2]
    t10 = log_trans[1, 0]
    t11 = log_trans[1, 1]
    t12 = log_trans[1, 2]
    t20 = log_trans[2, 0]
    t21 = log_trans[2, 1]
    t22 = log_trans[2, 2]
    V = np.full((2, 3, M + 1), NEG_INF)
    baseY = np.empty(M + 2, np.float64)
    argY = np.zeros(M + 2, np.int64)
    code = np.zeros(M + 1, np.int64)
    wlo = np.zeros(2, np.int64)
    whi = np.full(2, -1, np.int64)
    for i in range(N + 1):
        r = i & 1
        Vc = V[r]
        Vp = V[1 - r]
        jlo = lo[i]
        jhi = hi[i]
        for j in range(wlo[r], min(jlo, whi[r] + 1)):
            for s in range(3):
                Vc[s, j] = NEG_INF
        for j in range(max(jhi + 1, wlo[r]), whi[r] + 1):
            for s in range(3):
                Vc[s, j] = NEG_INF
        wlo[r] = jlo
        whi[r] = jhi
        if jhi < jlo:
            continue
        j0 = max(jlo, 1)
        n = jhi + 1 - j0
        cM = Vc[0]
        cX = Vc[1]
        cY = Vc[2]
        if i == 0:
            code[jlo] = 0
            for j in range(j0, jhi + 1):
                code[j] = 0
        else:
            xi = x[i - 1]
            ex = log_ins_odds[etab[1], xi]
            em = prof[etab[0], slot[xi]]
            pM = Vp[0]
            pX = Vp[1]
            pY = Vp[2]
            if jlo == 0:
                if i == 1:
                    cX[0] = log_start[1] + ex
                    code[0] = 0
                else:
                    a = pM[0] + t01
                    b = pX[0] + t11
                    c = pY[0] + t21
                    k = 0
                    if b > a:
                        a = b
                        k = 1
                    if c > a:
                        a = c
                        k = 2
                    cX[0] = a + ex
                    code[0] = k << 2
            # match and insert-x together; select form so that it vectorises
            dM = pM[j0 - 1:jhi]
            dX = pX[j0 - 1:jhi]
            dY = pY[j0 - 1:jhi]
            uM = pM[j0:jhi + 1]
            uX = pX[j0:jhi + 1]
            uY = pY[j0:jhi + 1]
            ev = em[j0:jhi + 1]
            oM = cM[j0:jhi + 1]
            oX = cX[j0:jhi + 1]
            cv = code[j0:jhi + 1]
            # insert-y entry for the next column (j + 1) from this column
            nb = baseY[j0 + 1:jhi + 2]
            na = argY[j0 + 1:jhi + 2]
            for q in range(n):
                a = dM[q] + t00
                b = dX[q] + t10
                c = dY[q] + t20
                w = b > a
                a = b if w else a
                k = 1 if w else 0
                w = c > a
                a = c if w else a
                k = 2 if w else k
                vm = a + ev[q]
                oM[q] = vm
                a = uM[q] + t01
                b = uX[q] + t11
                c = uY[q] + t21
                w = b > a
                a = b if w else a
                kx = 1 if w else 0
                w = c > a
                a = c if w else a
                kx = 2 if w else kx
                vx = a + ex
                oX[q] = vx
                cv[q] = k | (kx << 2)
                a = vm + t02
                b = vx + t12
                w = b > a
                nb[q] = b if w else a
                na[q] = 1 if w else 0
            if i == 1 and j0 == 1 and n > 0:  # Begin -> match at (1, 1)
                vm = log_start[0] + em[1]
                cM[1] = vm
                code[1] = (code[1] >> 2) << 2
                if n > 1:
                    a = vm + t02
                    b = cX[1] + t12
                    baseY[2] = b if b > a else a
                    argY[2] = 1 if b > a else 0
        if n > 0:
            # insert-y entry at the first column (the loop above did j + 1)
            a = cM[j0 - 1] + t02
            b = cX[j0 - 1] + t12
            baseY[j0] = b if b > a else a
            argY[j0] = 1 if b > a else 0
            if i == 0:
                for j in range(j0 + 1, jhi + 1):  # nothing enters but the chain
                    baseY[j] = NEG_INF
                    argY[j] = 0
                if j0 == 1:  # entered from Begin at (0, 1)
                    baseY[1] = log_start[2]
                    argY[1] = 0
            # insert-y self-loop chain (values only)
            _chain_values(cY, baseY, ey, j0, jhi + 1, t22)
        # one byte per cell; the chain's choice (ties: the entry) is taken here
        tr = tb[row_off[i]:row_off[i + 1]]
        if jlo == 0:
            tr[0] = np.uint8(code[0])
        tv = tr[j0 - jlo:]
        cv = code[j0:jhi + 1]
        av = argY[j0:jhi + 1]
        bv = baseY[j0:jhi + 1]
        pv = cY[j0 - 1:jhi]
        for q in range(n):
            ky = 2 if pv[q] + t22 > bv[q] else av[q]
            tv[q] = np.uint8(cv[q] | (ky << 4))
    Vc = V[N & 1]
    score = NEG_INF
    s_end = np.int64(-1)
    if lo[N] <= M and M <= hi[N]:
        for s in range(3):
            v = Vc[s, M] + log_end[s]
            if v > score:
                score = v
                s_end = s
    if s_end < 0:
        return NEG_INF, 0
    kind = np.arange(3)
    preds = np.empty((3, 3), np.int64)
    for a in range(3):
        for b in range(3):
            preds[a, b] = b
    fbyte = np.zeros(3, np.int64)
    fshift = np.array([0, 2, 4])
    fmask = np.full(3, 3, np.int64)
    L = _traceback(kind, tb, row_off, lo, np.int64(1), fbyte, fshift, fmask,
                   preds, N, M, s_end, states_out, ops_out)
    return score, L


@njit(cache=True)
def _is_three_state(kind):
    """States (match, insert-x, insert-y) in this order: the fused kernel."""
    return kind.shape[0] == 3 and kind[0] == 0 and kind[1] == 1 and kind[2] == 2


@njit(cache=True)
def _viterbi_core(kind, etab, log_start, log_trans, log_end, log_match_odds,
                  log_ins_odds, x, y, band, n_pred, preds, fbyte, fshift,
                  fmask, n_bytes, states_out, ops_out):
    """Viterbi for one pair; path written to states_out/ops_out[:L].

    Returns (score, L).  Buffers must have length >= N + M.
    """
    if x.shape[0] + y.shape[0] == 0:
        return NEG_INF, 0
    if _is_three_state(kind):
        return _viterbi3_core(etab, log_start, log_trans, log_end,
                              log_match_odds, log_ins_odds, x, y, band,
                              states_out, ops_out)
    return _viterbi_general(kind, etab, log_start, log_trans, log_end,
                            log_match_odds, log_ins_odds, x, y, band, n_pred,
                            preds, fbyte, fshift, fmask, n_bytes, states_out,
                            ops_out)


@njit(cache=True)
def _viterbi_general(kind, etab, log_start, log_trans, log_end,
                     log_match_odds, log_ins_odds, x, y, band, n_pred, preds,
                     fbyte, fshift, fmask, n_bytes, states_out, ops_out):
    """Viterbi of any state graph, N + M >= 1 (see :func:`_viterbi_core`)."""
    S = kind.shape[0]
    N = x.shape[0]
    M = y.shape[0]
    lo, hi, row_off = _band_rows(N, M, band)
    tb = np.zeros(row_off[N + 1] * n_bytes, np.uint8)

    prof, slot, yem = _emission_rows(log_match_odds, log_ins_odds, x, y)

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
    s_end = np.int64(-1)
    if lo[N] <= M and M <= hi[N]:
        for s in range(S):
            v = Vc[s, M] + log_end[s]
            if v > score:
                score = v
                s_end = s
    if s_end < 0:
        return NEG_INF, 0

    L = _traceback(kind, tb, row_off, lo, n_bytes, fbyte, fshift, fmask,
                   preds, N, M, s_end, states_out, ops_out)
    return score, L


# Every Viterbi kernel runs on scores rounded to multiples of 2**-30: sums
# of such numbers below 2**23 in magnitude are exact, so the kernels may add
# in any order (the striped kernel carries the insert-y runs across its
# lanes in closed form) and still agree with each other and with the serial
# recurrence bit for bit, ties included.  The path found is optimal for the
# rounded scores, each within 2**-31 of the true one; a path of L steps adds
# 2 L + 1 of them, so its true score is within (2 L + 1) * 2**-30 of the
# optimum (4e-5 nats at 10,000 x 10,000), and the score returned is the
# path's own, summed from the unrounded model.
GRID = 2.0 ** 30


@njit(cache=True)
def _max_finite(a, m):
    """max(m, |v|) over the finite entries v of a."""
    for v in a.ravel():
        if np.isfinite(v):
            m = max(m, abs(v))
    return m


@njit(cache=True)
def _on_grid(log_start, log_trans, log_end, log_match_odds, log_ins_odds,
             max_len):
    """The five score tables rounded to multiples of 1 / GRID (-inf kept).
    A path of at most ``max_len`` steps adds at most 2 max_len + 1 entries;
    when their magnitudes could reach 2**23 the grid is coarsened, to
    1 / 2**k with 2**(52 - k) above that bound, so the sums stay exact
    (scores beyond -8 million nats: pairs of hundreds of thousands of
    residues, or probabilities near 1e-300)."""
    m = _max_finite(log_start, 0.0)
    m = _max_finite(log_trans, m)
    m = _max_finite(log_end, m)
    m = _max_finite(log_match_odds, m)
    m = _max_finite(log_ins_odds, m)
    bound = (2.0 * max_len + 1.0) * m
    grid = GRID
    while bound * grid >= 2.0 ** 52 and grid > 1.0:
        grid *= 0.5
    return (np.round(log_start * grid) / grid,
            np.round(log_trans * grid) / grid,
            np.round(log_end * grid) / grid,
            np.round(log_match_odds * grid) / grid,
            np.round(log_ins_odds * grid) / grid)


@njit(cache=True)
def _path_score(kind, etab, log_start, log_trans, log_end, log_match_odds,
                log_ins_odds, x, y, states, L):
    """Log-odds of the state path ``states[:L]`` (summed along the path)."""
    i = 0
    j = 0
    w = 0.0
    prev = -1
    for t in range(L):
        s = states[t]
        w += log_start[s] if t == 0 else log_trans[prev, s]
        k = kind[s]
        if k == 0:
            i += 1
            j += 1
            w += log_match_odds[etab[s], x[i - 1], y[j - 1]]
        elif k == 1:
            i += 1
            w += log_ins_odds[etab[s], x[i - 1]]
        else:
            j += 1
            w += log_ins_odds[etab[s], y[j - 1]]
        prev = s
    return w + log_end[prev]


def viterbi(kind, etab, log_start, log_trans, log_end, log_match_odds,
            log_ins_odds, x, y, band):
    """Best state path of a pair HMM.

    Returns ``(score, states, ops)``: the log-odds score of the best path
    (-inf when there is no valid path), its states (int64, length L) and its
    alignment ops (uint8, length L; empty when there is no valid path).
    The path is the best one for the scores rounded to the grid of ``GRID``
    (see above); the score is the path's, from the scores as given.
    A plain Python function over two compiled kernels, so that a 3-state
    model compiles only the fused kernel (a cold first call 9 s shorter)
    and other models only the general one.
    """
    Lmax = x.shape[0] + y.shape[0]
    states = np.empty(Lmax, np.int64)
    ops = np.empty(Lmax, np.uint8)
    if Lmax == 0:
        return NEG_INF, states, ops
    gs, gt, ge, gm, gi = _on_grid(log_start, log_trans, log_end,
                                  log_match_odds, log_ins_odds, Lmax)
    if _is_three_state(kind):
        score, L = _viterbi3_core(etab, gs, gt, ge, gm, gi, x, y, band,
                                  states, ops)
    else:
        n_pred, preds, fbyte, fshift, fmask, n_bytes = pred_tables(gt)
        score, L = _viterbi_general(kind, etab, gs, gt, ge, gm, gi, x, y,
                                    band, n_pred, preds, fbyte, fshift, fmask,
                                    n_bytes, states, ops)
    if L > 0 and score > NEG_INF:
        score = _path_score(kind, etab, log_start, log_trans, log_end,
                            log_match_odds, log_ins_odds, x, y, states, L)
    return float(score), states[:L].copy(), ops[:L].copy()


@njit(cache=True, parallel=True)
def batch_viterbi(kind, etab, log_start, log_trans, log_end, log_match_odds,
                  log_ins_odds, xs, x_off, ys, y_off, band):
    """Viterbi over P pairs, pair p = (xs[x_off[p]:x_off[p+1]], ys[...]).

    Returns ``(scores (P,), ops_concat uint8, ops_off int64 (P+1,))``; the ops
    of pair p are ``ops_concat[ops_off[p]:ops_off[p+1]]``.
    """
    P = x_off.shape[0] - 1
    max_len = np.int64(0)
    for p in range(P):
        max_len = max(max_len, x_off[p + 1] - x_off[p] + y_off[p + 1]
                      - y_off[p])
    # one grid for the batch: a pair's result does not depend on which
    # batch it is in unless the batch needs a coarser grid (see _on_grid)
    gs, gt, ge, gm, gi = _on_grid(log_start, log_trans, log_end,
                                  log_match_odds, log_ins_odds, max_len)
    n_pred, preds, fbyte, fshift, fmask, n_bytes = pred_tables(gt)
    scores = np.empty(P, np.float64)
    lens = np.zeros(P, np.int64)
    buf = np.empty(xs.shape[0] + ys.shape[0], np.uint8)
    for p in prange(P):
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        b0 = x_off[p] + y_off[p]
        Lmax = x.shape[0] + y.shape[0]
        st = np.empty(Lmax, np.int64)
        score, L = _viterbi_core(kind, etab, gs, gt, ge, gm, gi, x, y, band,
                                 n_pred, preds, fbyte, fshift, fmask, n_bytes,
                                 st, buf[b0:b0 + Lmax])
        if L > 0 and score > NEG_INF:
            score = _path_score(kind, etab, log_start, log_trans, log_end,
                                log_match_odds, log_ins_odds, x, y, st, L)
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
def _running_max(A, D, j0, n):
    """D[j] = max(D[j0 - 1], A[j0..j]) for j in j0 .. j0 + n - 1.  One
    serial chain of maxima waits on each step's latency; this runs four
    quarters of the row as independent chains, side by side, then raises
    each quarter to the maximum of those before it (a vectorised pass), and
    finishes the remainder serially: the same maxima."""
    h = n // 4
    a0 = A[j0:j0 + h]
    a1 = A[j0 + h:j0 + 2 * h]
    a2 = A[j0 + 2 * h:j0 + 3 * h]
    a3 = A[j0 + 3 * h:j0 + 4 * h]
    d0 = D[j0:j0 + h]
    d1 = D[j0 + h:j0 + 2 * h]
    d2 = D[j0 + 2 * h:j0 + 3 * h]
    d3 = D[j0 + 3 * h:j0 + 4 * h]
    c0 = D[j0 - 1]
    c1 = NEG_INF
    c2 = NEG_INF
    c3 = NEG_INF
    for q in range(h):
        c0 = max(c0, a0[q])
        c1 = max(c1, a1[q])
        c2 = max(c2, a2[q])
        c3 = max(c3, a3[q])
        d0[q] = c0
        d1[q] = c1
        d2[q] = c2
        d3[q] = c3
    # the maxima before quarters 1, 2 and 3
    c1 = max(c0, c1)
    c2 = max(c1, c2)
    c3 = max(c2, c3)
    for q in range(h):
        d1[q] = max(d1[q], c0)
        d2[q] = max(d2[q], c1)
        d3[q] = max(d3[q], c2)
    c = D[j0 - 1] if h == 0 else c3
    for j in range(j0 + 4 * h, j0 + n):
        c = max(c, A[j])
        D[j] = c


def mea(P, band, swapped=False):
    """Maximum expected accuracy alignment (ProbCons style).

    Maximises the sum of match posteriors ``P[i, j]`` (shape (N, M)) over the
    aligned pairs; gaps score 0.  Returns ``(expected_accuracy, ops)`` where
    expected_accuracy is that sum (the expected number of correctly aligned
    pairs).  Ties: column, then (x_i, -), then (-, y_j).  Traceback is one
    byte per band cell.

    ``swapped=True``: ``P`` is the transpose of the pair's matrix (as
    ``pair_fb.posterior(..., frame=True)`` computes a pair whose second
    sequence is the longer), and the ties between the two gaps go the
    other way: column, then (-, y_j), then (x_i, -) in ``P``'s own terms.
    Every value of the DP is the same as on the untransposed matrix (the
    same maxima of the same sums; the band is symmetric), so the path is
    the untransposed one's with ops 1 and 2 exchanged, bit for bit, without
    copying the matrix.
    """
    return _mea(P, band, bool(swapped))


@njit(cache=True)
def _mea(P, band, swapped):
    """:func:`mea` (one compiled signature: ``swapped`` always a bool)."""
    N = P.shape[0]
    M = P.shape[1]
    lo, hi, row_off = _band_rows(N, M, band)
    tb = np.empty(row_off[N + 1], np.uint8)
    D = np.full((2, M + 1), NEG_INF)
    Arow = np.empty(M + 1, np.float64)
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
        # best of column and (x_i, -), vectorised (select form)
        if jlo == 0:
            Arow[0] = Dp[0]
        j0 = max(jlo, 1)
        n = jhi + 1 - j0
        pr = P[i - 1, j0 - 1:jhi]
        dg = Dp[j0 - 1:jhi]
        up = Dp[j0:jhi + 1]
        av = Arow[j0:jhi + 1]
        # the choice between them goes straight into the traceback bytes
        # (an int64 code array read back later: 10-15% slower)
        tr = tb[row_off[i] + j0 - jlo:row_off[i + 1]]
        for q in range(n):
            d = dg[q] + pr[q]
            u = up[q]
            w = u > d
            av[q] = u if w else d
            tr[q] = np.uint8(1) if w else np.uint8(0)
        # (-, y_j) is a running maximum along the row
        if jlo == 0:
            Dc[0] = Arow[0]
        _running_max(Arow, Dc, j0, n)
        pv = Dc[j0 - 1:jhi]
        if swapped:
            # (-, y_j) before (x_i, -): the running maximum wins a tie with
            # the cell above (av is that cell, byte 1), not with the column
            for q in range(n):
                a = av[q]
                p = pv[q]
                c = tr[q]
                w = p >= a if c == 1 else p > a
                tr[q] = np.uint8(2) if w else c
        else:
            for q in range(n):
                tr[q] = np.uint8(2) if pv[q] > av[q] else tr[q]
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
