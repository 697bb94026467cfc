"""Pair-HMM forward, backward, posterior and expected-count kernels.

Model convention (shared with the pair Viterbi/MEA kernels)
-----------------------------------------------------------
Silent Begin and End; ``S`` emitting states.  ``kind`` int64 (S,):
0 = match (consumes x_i and y_j), 1 = insert-x (x_i only), 2 = insert-y
(y_j only).  ``etab`` int64 (S,) indexes ``match_odds`` (n_m, A, A) for a
match state and ``ins_odds`` (n_i, A) for an insert state.  Emissions are odds
ratios against the background (``p(a, b) / (q_a q_b)``, ``p(a) / q_a``), so
every likelihood returned here is the log-odds
``log P(x, y) - sum_i log q(x_i) - sum_j log q(y_j)`` (natural log).
``start`` (S,), ``trans`` (S, S), ``end`` (S,); exact zeros are allowed
anywhere.  Sequences are uint8 codes, ``N, M >= 1``.  A pair with no path gets
``-inf`` (posterior all zeros, no counts added), never NaN; -inf is
confirmed in log space (:mod:`pair_log`), which also answers for any pair
whose scaled values fail their checks under every tilt.

Lattice: cell ``(i, j)``, ``0 <= i <= N``, ``0 <= j <= M``, is the point
reached after ``x_1..x_i`` and ``y_1..y_j`` are emitted; Begin sits at (0, 0)
and End at (N, M).

Band
----
``band = -1`` means no band.  With ``band = W >= 0`` a cell ``(i, j)`` is
allowed iff ``|i*M - j*N| < (W + 1) * max(N, M)``.  For ``N == M`` this is
``|i - j| <= W``; in general ``W`` is the half-width in cells along the longer
sequence.  The band contains both corners, its rows are contiguous column
ranges whose ends never decrease with ``i``, and it contains a path from
(0, 0) to (N, M) for every ``W >= 0``.  A path is allowed iff every cell it
visits is allowed.  :func:`band_limits` gives the column range of one row and
is the single definition every pair kernel uses.

Numerics and memory
-------------------
Probability space with one scale per lattice row: each row is computed from
the previous one multiplied by ``1 / (sum of the previous row)``, and the logs
of those sums are accumulated.  Backward rows get their own scales, so a
posterior is ``F * B * exp(logF_i + logB_i - logZ)``.

Per-row scaling needs the values within one row that matter to lie within
the float range of the row's largest.  Odds against the real background keep
insert runs from growing (a model whose insert odds times extension stay far
above 1 over thousands of residues overflows and yields -inf).  Pairs of very
different lengths under short gap extensions, and long low-complexity pairs,
would put the alignment's cells hundreds of nats below the row's peak; pairs
with enough columns for that are computed with a column tilt that recentres
the rows (see "Column tilt" below: the answers are the same; pairs with few
columns run the untilted tables).  The insert-y chain fix-up falls back to a
serial pass for a row whose segment products leave the range.  The scaled
kernels run with subnormal results flushed to zero (x86, scoped to each
call and thread, see :mod:`_fpenv`): a row keeps what lies within ~708 nats
of its sum, the range the checks and ``_LOSS_FLOOR`` are built on, and
cells on their way to 0 no longer cost a microcode assist each (3-5x on
the Intel Xeon of the eleventh session's machine).

* ``forward``: two rows of every state over the shorter sequence (the pair is
  transposed internally when ``M > N``): O(S * min(N, M)).  On the fast
  path without a band, rows of at least ``pair_stripe.STRIPE_MIN`` columns
  are computed in the striped layout of :mod:`pair_stripe` (the insert-y
  chain vectorised across 16 lanes; 1.1-1.4x the row kernels here).  A
  pair with enough columns to lose mass is computed twice, the second time
  in reverse, and the two must agree (see :func:`forward`).
* ``posterior``: the output (N, M) holds the forward match lattice before it
  is overwritten in place by the posteriors (a pair with M > N is computed
  transposed, like every kernel here, and copied back: 2 N M floats then);
  plus O(S * M) rows, an (A, M) gathered match-emission table and O(N) row
  scales.  Models with several
  match states keep one extra (N, M) lattice per further match state.
  On the fast path without a band, rows of at least ``STRIPE_MIN`` columns
  take two striped passes (:func:`_striped_posterior`): the forward, then
  the forward of the reversed model over the reversed pair in place of the
  backward (its match values are the backward values times the match
  odds), 1.1-1.3x the row kernels from 300 x 300 up; the striped layout
  costs a reordering of every row into column order (about a third of a
  nanosecond per cell each way), which is most of what it saves.
* ``expected_counts``: forward rows (every state) checkpointed every
  ``K = ceil(sqrt(N+1))`` rows and recomputed block by block during the
  backward pass: O(S * M * 2 * sqrt(N)) memory for one extra forward pass.
  On the fast path a pair whose forward rows of all five slots fit in 4 MiB
  (a 300 x 300 protein pair) keeps every row instead and skips the
  recomputation.
* ``forward_constrained``: O(S).

Fast path: one match state, at most two insert-x and two insert-y states, and
every insert state moves only to itself, to the match state or to End (the
3-state and 5-state presets).  Its rows are vectorised; the serial insert-y
chain along a row is split into four segments run side by side and joined by
a vectorised carry fix-up.  Forward, posterior and expected counts share one
forward row routine and one backward row routine.  Expected counts on the
fast path are per-row vector products: transitions into the match and
insert-x cells of row r+1 are dot products of forward row r with backward
row r+1, transitions into insert-y cells dot products within row r, and the
emission posteriors are accumulated as vectors (match by (x_i, column),
insert-y by column) and scattered by residue once per pair.  Every other
model takes a per-cell general path.

Entry points and batches: ``forward``, ``posterior``, ``expected_counts``
and the two batch kernels are plain Python functions over a few compiled
kernels (compile time: see the note under "Public kernels"), so they cannot
be called from compiled code (compiled callers use the chunk kernels); the
general path is compiled only when a model needs it.  A batch is split into
64 fixed chunks of pairs run on ``numba.get_num_threads()`` Python threads
by the same chunk kernels that serve single pairs (they release the GIL; no
parallel=True driver to compile); per-chunk counts are summed in chunk
order, so results are identical for any thread count and the log-odds equal,
bit for bit, the single-pair results.
"""
import functools
import math

import numba
import numpy as np

from . import pair_stripe as ps
from . import pair_log as _pl
from ._band import band_limits
from ._arrays import copy2 as _copy2, vcopy as _vcopy
from ._arrays import MAX_EXP as _MAX_EXP, split_exp as _scale
from ._arrays import transpose_sums as _transpose_sums, vsum as _vsum
from ._fpenv import flush_subnormals
from ._threads import run_chunks as _run_chunks

# reassoc/contract let reductions vectorise; they keep inf/NaN semantics.
_FM = {"reassoc", "contract"}

_NF = 5  # fast-path row slots: 0 = match, 1, 2 = insert-x, 3, 4 = insert-y
# expected counts keep every forward row (no recomputation) when the rows of
# all five slots take at most this many float64 (4 MiB)
_FULL_STORE = 1 << 19


@numba.njit(cache=True)
def _fast_layout(kind, trans):
    """Slots of the fast path, or ``slots[0] == -1`` if the model needs the
    general path.  ``slots`` (5,): match, insx1, insx2, insy1, insy2 (-1 =
    unused slot, treated as an all-zero state)."""
    S = kind.shape[0]
    slots = np.full(_NF, -1, np.int64)
    nm = 0
    nx = 0
    ny = 0
    for s in range(S):
        k = kind[s]
        if k == 0:
            slots[0] = s
            nm += 1
        elif k == 1:
            if nx < 2:
                slots[1 + nx] = s
            nx += 1
        else:
            if ny < 2:
                slots[3 + ny] = s
            ny += 1
    ok = nm == 1 and nx <= 2 and ny <= 2
    if ok:
        m = slots[0]
        for s in range(S):
            if kind[s] != 0:
                for r in range(S):
                    if r != s and r != m and trans[s, r] != 0.0:
                        ok = False
    if not ok:
        slots[0] = -1
    return slots


@numba.njit(cache=True)
def _fast_coefs(slots, start, trans, end):
    """Dense 5-slot copies of start/trans/end (zeros for unused slots)."""
    st = np.zeros(_NF)
    tr = np.zeros((_NF, _NF))
    en = np.zeros(_NF)
    for a in range(_NF):
        sa = slots[a]
        if sa < 0:
            continue
        st[a] = start[sa]
        en[a] = end[sa]
        for b in range(_NF):
            sb = slots[b]
            if sb >= 0:
                tr[a, b] = trans[sa, sb]
    return st, tr, en


@numba.njit(cache=True)
def _fast_tables(slots, etab, match_odds, ins_odds, y, M):
    """Gathered emission rows: E[a, c] = match odds of (a, y_c) (c >= 1, E[:, 0] = 0
    and E[:, M+1] = 0) and ey[k, c] = insert-y odds of y_c for slots 3, 4."""
    A = match_odds.shape[1]
    E = np.zeros((A, M + 2))
    tm = etab[slots[0]]
    for a in range(A):
        row = match_odds[tm, a]
        for c in range(1, M + 1):
            E[a, c] = row[y[c - 1]]
    ey = np.zeros((2, M + 2))
    for k in range(2):
        s = slots[3 + k]
        if s >= 0:
            t = etab[s]
            for c in range(1, M + 1):
                ey[k, c] = ins_odds[t, y[c - 1]]
    return E, ey


@numba.njit(cache=True, fastmath=_FM)
def _fixup(Y, P, carry):
    """Y += carry * P (vectorised carry fix-up of a chain segment)."""
    if carry != 0.0:
        for l in range(Y.shape[0]):
            Y[l] += carry * P[l]


# A posterior or count is a stored forward value times a backward value
# (each scaled by its previous row's sum, so of order 1 at a row's peak)
# times exp(e), e = their rows' log scales minus the log-odds; e can exceed
# the ~709 of one factor when the two lie far below their rows' peaks.  It
# is applied as two factors (:func:`_arrays.split_exp`), forward value
# first, and a pair needing e > 1400 is reported as lost.


# Expected counts check two identities of their own sums: the start counts
# sum to 1 (the backward pass's likelihood over the forward's) and each
# residue is emitted once (match counts plus insert counts are N for x, M
# for y; twice the match counts plus the insert counts N + M on the general
# path, where insert tables can be shared).  Rounding leaves them up to
# 1e-11 relative off on the presets and 1.5e-10 on fuzzed custom models
# (measured by review); a pass that lost mass to the row scaling (DNA tandem
# repeats of 3000 x 2000 came out 0.1 nats low, their start counts 11% low)
# fails them by far more.
_COUNTS_AGREE = 1e-9


@numba.njit(cache=True, inline="always")
def _counts_hold(total, expect):
    """Whether a count total is ``expect`` to ``_COUNTS_AGREE`` (NaN: no)."""
    return abs(total - expect) <= _COUNTS_AGREE * max(1.0, expect)


@numba.njit(cache=True)
def _count_scale(F, e_hi, at_begin):
    """For expected counts, whose scale is exp(e) for e up to ``e_hi``:
    the part d of it beyond exp(700) moved into the forward row ``F``
    (F *= exp(d)), so that no product underflows before its
    scale; returns d, or NaN when even that cannot hold it (e_hi > 1400,
    or row 0, whose Begin terms take no F)."""
    d = e_hi - _MAX_EXP
    if d <= 0.0:
        return 0.0
    top = 0.0
    for s in range(F.shape[0]):
        for c in range(F.shape[1]):
            top = max(top, F[s, c])
    if top == 0.0:
        return d  # nothing to count in this row
    # a row's values can exceed 1 (they are scaled by the previous row's
    # sum): F exp(d) must stay finite too
    if d + math.log(top) > _MAX_EXP or at_begin:
        return np.nan
    f = math.exp(d)
    for s in range(F.shape[0]):
        for c in range(F.shape[1]):
            F[s, c] *= f
    return d


@numba.njit(cache=True)
def _vpost(P, b, f1, f2):
    """P = P * f1 * b * f2 (in that order: no fastmath); returns the sum."""
    for l in range(P.shape[0]):
        P[l] = P[l] * f1 * b[l] * f2
    return _vsum(P)


# Loops below run over views from index 0: numba then needs no negative-index
# wraparound and LLVM vectorises them.


@numba.njit(cache=True, fastmath=_FM)
def _segment_products(aa, PP, L, n):
    """PP[j] = product of aa over segment k up to j, for the segments k = 1,
    2, 3 of `_chain_fwd` ([kL, (k+1)L), the last running to n); returns their
    sum (to check the range)."""
    ps = 0.0
    for k in range(1, 4):
        ja = k * L
        jb = ja + L if k < 3 else n
        p = 1.0
        for j in range(ja, jb):
            p *= aa[j]
            PP[j] = p
            ps += p
    return ps


@numba.njit(cache=True, fastmath=_FM)
def _chain_fwd(b, u, a, Y, P, c0, c1, key):
    """Y[c] = b[c] * u[c-1] + a[c] * Y[c-1] for c in [c0, c1] (Y[c0-1] given);
    returns sum(Y[c0:c1+1]).  Split in four segments joined by a carry fix-up.

    The segment products P depend only on ``a`` (the same for every row)
    and on [c0, c1]: ``key`` (int64, 3) remembers the range P was computed
    for and whether its products stayed in range (key[2] = 1), so rows with
    the same range (every row without a band) skip recomputing them.
    (Measured: +4-10% on forward; eight segments instead of four gained
    nothing.)"""
    n = c1 - c0 + 1
    if n <= 0:
        return 0.0
    bb = b[c0:c1 + 1]
    uu = u[c0 - 1:c1]
    aa = a[c0:c1 + 1]
    YY = Y[c0:c1 + 1]
    PP = P[c0:c1 + 1]
    y0 = Y[c0 - 1]
    if n < 32:
        for l in range(n):
            y0 = bb[l] * uu[l] + aa[l] * y0
            YY[l] = y0
        return _vsum(YY)
    L = n // 4
    if not (key[0] == c0 and key[1] == c1):
        key[0] = c0
        key[1] = c1
        key[2] = 1 if _segment_products(aa, PP, L, n) < 1e300 else 0
    if key[2] != 1:
        # segment products out of range (insert odds > 1 over long runs):
        # the row serially
        for l in range(n):
            y0 = bb[l] * uu[l] + aa[l] * y0
            YY[l] = y0
        return _vsum(YY)
    y1 = 0.0
    y2 = 0.0
    y3 = 0.0
    # one view per segment so every index is a plain loop counter
    b1 = bb[L:2 * L]
    b2 = bb[2 * L:3 * L]
    b3 = bb[3 * L:4 * L]
    u1 = uu[L:2 * L]
    u2 = uu[2 * L:3 * L]
    u3 = uu[3 * L:4 * L]
    a1 = aa[L:2 * L]
    a2 = aa[2 * L:3 * L]
    a3 = aa[3 * L:4 * L]
    Y1 = YY[L:2 * L]
    Y2 = YY[2 * L:3 * L]
    Y3 = YY[3 * L:4 * L]
    for l in range(L):
        y0 = bb[l] * uu[l] + aa[l] * y0
        y1 = b1[l] * u1[l] + a1[l] * y1
        y2 = b2[l] * u2[l] + a2[l] * y2
        y3 = b3[l] * u3[l] + a3[l] * y3
        YY[l] = y0
        Y1[l] = y1
        Y2[l] = y2
        Y3[l] = y3
    for j3 in range(4 * L, n):
        y3 = bb[j3] * uu[j3] + aa[j3] * y3
        YY[j3] = y3
    _fixup(YY[L:2 * L], PP[L:2 * L], YY[L - 1])
    _fixup(YY[2 * L:3 * L], PP[2 * L:3 * L], YY[2 * L - 1])
    _fixup(YY[3 * L:n], PP[3 * L:n], YY[3 * L - 1])
    return _vsum(YY)


@numba.njit(cache=True, fastmath=_FM)
def _chain_bwd(b, u, a, Y, P, c0, c1):
    """Y[c] = b * u[c+1] + a[c+1] * Y[c+1] for c in [c0, c1] descending
    (Y[c1+1] given, b a scalar); returns sum(Y[c0:c1+1])."""
    n = c1 - c0 + 1
    if n <= 0:
        return 0.0
    uu = u[c0 + 1:c1 + 2]
    aa = a[c0 + 1:c1 + 2]
    YY = Y[c0:c1 + 1]
    PP = P[c0:c1 + 1]
    y0 = Y[c1 + 1]
    if n < 32:
        for l in range(n - 1, -1, -1):
            y0 = b * uu[l] + aa[l] * y0
            YY[l] = y0
        return _vsum(YY)
    # segments, top down: [n-L, n), [n-2L, n-L), [n-3L, n-2L), [0, n-3L)
    L = n // 4
    y1 = 0.0
    y2 = 0.0
    y3 = 0.0
    p1 = 1.0
    p2 = 1.0
    p3 = 1.0
    # segment k covers [n-(k+1)L, n-kL) (k = 0..2), walked top down; views
    # are reversed so the loop counter indexes them directly
    r0u = uu[n - L:n][::-1]
    r0a = aa[n - L:n][::-1]
    r0y = YY[n - L:n][::-1]
    r1u = uu[n - 2 * L:n - L][::-1]
    r1a = aa[n - 2 * L:n - L][::-1]
    r1y = YY[n - 2 * L:n - L][::-1]
    r1p = PP[n - 2 * L:n - L][::-1]
    r2u = uu[n - 3 * L:n - 2 * L][::-1]
    r2a = aa[n - 3 * L:n - 2 * L][::-1]
    r2y = YY[n - 3 * L:n - 2 * L][::-1]
    r2p = PP[n - 3 * L:n - 2 * L][::-1]
    r3u = uu[n - 4 * L:n - 3 * L][::-1]
    r3a = aa[n - 4 * L:n - 3 * L][::-1]
    r3y = YY[n - 4 * L:n - 3 * L][::-1]
    r3p = PP[n - 4 * L:n - 3 * L][::-1]
    ps = 0.0
    for l in range(L):
        y0 = b * r0u[l] + r0a[l] * y0
        y1 = b * r1u[l] + r1a[l] * y1
        y2 = b * r2u[l] + r2a[l] * y2
        y3 = b * r3u[l] + r3a[l] * y3
        p1 *= r1a[l]
        p2 *= r2a[l]
        p3 *= r3a[l]
        r0y[l] = y0
        r1y[l] = y1
        r2y[l] = y2
        r3y[l] = y3
        r1p[l] = p1
        r2p[l] = p2
        r3p[l] = p3
        ps += p1 + p2 + p3
    for j3 in range(n - 4 * L - 1, -1, -1):
        y3 = b * uu[j3] + aa[j3] * y3
        p3 *= aa[j3]
        YY[j3] = y3
        PP[j3] = p3
        ps += p3
    if not ps < 1e300:
        y0 = Y[c1 + 1]
        for l in range(n - 1, -1, -1):
            y0 = b * uu[l] + aa[l] * y0
            YY[l] = y0
        return _vsum(YY)
    e1 = n - L
    e2 = e1 - L
    e3 = e2 - L
    _fixup(YY[e2:e1], PP[e2:e1], YY[e1])
    _fixup(YY[e3:e2], PP[e3:e2], YY[e2])
    _fixup(YY[0:e3], PP[0:e3], YY[e3])
    return _vsum(YY)


@numba.njit(cache=True, fastmath=_FM)
def _fwd_pass(Er, pMa, pX1a, pX2a, pY1a, pY2a, pMb, pX1b, pX2b, cM, cX1, cX2,
              kMM, kX1M, kX2M, kY1M, kY2M, a1, b1, a2, b2, two):
    """Vectorised part of a fast forward row: match and insert-x values.
    Arrays ending in ``a`` are read at column c-1, ``b`` at column c.
    Separate loops keep LLVM's runtime alias checks few enough to vectorise."""
    n = cM.shape[0]
    tot = 0.0
    if two:
        for l in range(n):
            m = Er[l] * (kMM * pMa[l] + kX1M * pX1a[l] + kX2M * pX2a[l]
                         + kY1M * pY1a[l] + kY2M * pY2a[l])
            cM[l] = m
            tot += m
        for l in range(n):
            v = a2 * pMb[l] + b2 * pX2b[l]
            cX2[l] = v
            tot += v
    else:
        for l in range(n):
            m = Er[l] * (kMM * pMa[l] + kX1M * pX1a[l] + kY1M * pY1a[l])
            cM[l] = m
            tot += m
    for l in range(n):
        v = a1 * pMb[l] + b1 * pX1b[l]
        cX1[l] = v
        tot += v
    return tot


@numba.njit(cache=True, fastmath=_FM)
def _bwd_pass(Er, nMb, nX1a, nX2a, wY1b, Y1b, wY2b, Y2b, bMr, cM, cX1, cX2,
              kMM, kMX1, kMX2, kX1M, kX1X1, kX2M, kX2X2, two):
    """Vectorised part of a fast backward row.  ``b`` arrays are read at
    column c+1, ``a`` arrays at column c.  Writes b_M (bMr), g_M = e_M * b_M
    (cM) and b of the insert-x states (cX1, cX2); returns the b sum.  The
    insert-x emission of the next row is folded into the k coefficients and
    the insert-y emission into the w rows."""
    n = cM.shape[0]
    tot = 0.0
    if two:
        for l in range(n):
            bm = (kMM * nMb[l] + kMX1 * nX1a[l] + kMX2 * nX2a[l]
                  + wY1b[l] * Y1b[l] + wY2b[l] * Y2b[l])
            bMr[l] = bm
            tot += bm
        for l in range(n):
            bx = kX2M * nMb[l] + kX2X2 * nX2a[l]
            cX2[l] = bx
            tot += bx
    else:
        for l in range(n):
            bm = kMM * nMb[l] + kMX1 * nX1a[l] + wY1b[l] * Y1b[l]
            bMr[l] = bm
            tot += bm
    for l in range(n):
        cM[l] = Er[l] * bMr[l]
    for l in range(n):
        bx = kX1M * nMb[l] + kX1X1 * nX1a[l]
        cX1[l] = bx
        tot += bx
    return tot


# --------------------------------------------------------------------------
# Fast path
# --------------------------------------------------------------------------


@numba.njit(cache=True)
def _fast_setup(slots, etab, start, trans, end, match_odds, ins_odds, y):
    """Row-independent tables of the fast path: 5-slot coefficients, gathered
    match emissions E (A, M+2), insert-y odds ey (2, M+2), insert-x odds ex
    (2, A) and the insert-y chain rows aY = ey * t(Y, Y), bY = ey * t(M, Y)."""
    M = y.shape[0]
    st, tr, en = _fast_coefs(slots, start, trans, end)
    E, ey = _fast_tables(slots, etab, match_odds, ins_odds, y, M)
    ex = np.zeros((2, ins_odds.shape[1]))
    for k in range(2):
        s = slots[1 + k]
        if s >= 0:
            _vcopy(ins_odds[etab[s]], ex[k])
    aY = np.empty((2, M + 2))
    bY = np.empty((2, M + 2))
    for k in range(2):
        for c in range(M + 2):
            aY[k, c] = ey[k, c] * tr[3 + k, 3 + k]
            bY[k, c] = ey[k, c] * tr[0, 3 + k]
    return st, tr, en, E, ey, ex, aY, bY


@numba.njit(cache=True, fastmath=_FM)
def _ffwd_row(i, lo, hi, xi, prev, cur, inv, slots, st, tr, E, ex, aY, bY,
              ptmp, pkey):
    """Forward row i >= 1 over columns [lo, hi] from row ``prev`` scaled by
    ``inv``; every slot row of ``cur`` is written on [lo, hi] (the caller
    keeps the cells the next row reads outside that range at zero).
    Returns the row sum."""
    Er = E[xi]
    pM = prev[0]
    pX1 = prev[1]
    pX2 = prev[2]
    pY1 = prev[3]
    pY2 = prev[4]
    cM = cur[0]
    cX1 = cur[1]
    cX2 = cur[2]
    cY1 = cur[3]
    cY2 = cur[4]
    e1 = ex[0, xi] * inv
    e2 = ex[1, xi] * inv
    tot = 0.0
    if lo == 0:
        v1 = e1 * tr[1, 1] * pX1[0]
        v2 = e2 * tr[2, 2] * pX2[0]
        if i == 1:
            v1 += e1 * st[1]
            v2 += e2 * st[2]
        cM[0] = 0.0
        cX1[0] = v1
        cX2[0] = v2
        cY1[0] = 0.0
        cY2[0] = 0.0
        tot += v1 + v2
    c0 = lo if lo > 1 else 1
    if hi >= c0:
        tot += _fwd_pass(Er[c0:hi + 1], pM[c0 - 1:hi], pX1[c0 - 1:hi],
                         pX2[c0 - 1:hi], pY1[c0 - 1:hi], pY2[c0 - 1:hi],
                         pM[c0:hi + 1], pX1[c0:hi + 1], pX2[c0:hi + 1],
                         cM[c0:hi + 1], cX1[c0:hi + 1], cX2[c0:hi + 1],
                         tr[0, 0] * inv, tr[1, 0] * inv, tr[2, 0] * inv,
                         tr[3, 0] * inv, tr[4, 0] * inv, e1 * tr[0, 1],
                         e1 * tr[1, 1], e2 * tr[0, 2], e2 * tr[2, 2],
                         slots[2] >= 0 or slots[4] >= 0)
        if i == 1 and c0 == 1:
            v = Er[1] * st[0] * inv
            cM[1] += v
            tot += v
    for k in range(2):  # one call site: one inlined copy of the chain
        if slots[3 + k] >= 0:
            tot += _chain_fwd(bY[k], cM, aY[k], cur[3 + k], ptmp[k], c0, hi,
                              pkey[k])
    return tot


@numba.njit(cache=True, fastmath=_FM)
def _fbwd_row(i, N, M, lo, hi, xi, e1n, e2n, nxt, cur, bMr, inv, slots, tr,
              en, E, aY, bY, tmp):
    """Backward row i over [lo, hi] from row ``nxt`` (row i+1, scaled by
    ``inv``; all zeros for i == N).  Slot rows of ``cur``: 0 = g_M (match
    odds times b_M), 1, 2 = b of insert-x, 3, 4 = b of insert-y; ``bMr``
    gets b_M.  ``e1n``, ``e2n``: insert-x odds of x_{i+1}.  Row 0 has only
    its insert-y cells.  Returns the sum of the b values."""
    nM = nxt[0]
    cY1 = cur[3]
    cY2 = cur[4]
    tot = 0.0
    if i == N:
        cY1[M] = en[3]
        cY2[M] = en[4]
        tot += en[3] + en[4]
        top = M - 1
    else:
        top = hi
        cY1[hi + 1] = 0.0
        cY2[hi + 1] = 0.0
    for k in range(2):  # one call site: one inlined copy of the chain
        if slots[3 + k] >= 0:
            tot += _chain_bwd(tr[3 + k, 0] * inv, nM, aY[k], cur[3 + k], tmp,
                              lo, top)
    if i == 0:
        return tot
    nX1 = nxt[1]
    nX2 = nxt[2]
    cM = cur[0]
    cX1 = cur[1]
    cX2 = cur[2]
    Er = E[xi]
    tot += _bwd_pass(Er[lo:hi + 1], nM[lo + 1:hi + 2], nX1[lo:hi + 1],
                     nX2[lo:hi + 1], bY[0, lo + 1:hi + 2], cY1[lo + 1:hi + 2],
                     bY[1, lo + 1:hi + 2], cY2[lo + 1:hi + 2], bMr[lo:hi + 1],
                     cM[lo:hi + 1], cX1[lo:hi + 1], cX2[lo:hi + 1],
                     tr[0, 0] * inv, tr[0, 1] * inv * e1n,
                     tr[0, 2] * inv * e2n, tr[1, 0] * inv,
                     tr[1, 1] * inv * e1n, tr[2, 0] * inv,
                     tr[2, 2] * inv * e2n, slots[2] >= 0 or slots[4] >= 0)
    if i == N:
        # End follows (N, M); the next row is all zeros here
        bMr[M] += en[0]
        cM[M] = Er[M] * bMr[M]
        cX1[M] += en[1]
        cX2[M] += en[2]
        tot += en[0] + en[1] + en[2]
    return tot


@numba.njit(cache=True, fastmath=_FM)
def _fast_forward(slots, etab, start, trans, end, match_odds, ins_odds, x, y,
                  band, L, tots, ck, K):
    """Fast-path forward; returns the log-odds.  Optional outputs (skipped
    when empty): L (N, M) gets the scaled match values of row i in L[i-1]
    (in-band cells), tots (N+1,) the row sums (row i is scaled by
    1 / tots[i-1], so its log scale is sum(log(tots[:i]))), ck (nb, 5, M+2)
    every row i = b*K (whole rows, zero outside the band; with K == 1 the
    rows are computed in place in ck, which must then be all zeros)."""
    N = x.shape[0]
    M = y.shape[0]
    st, tr, en, E, ey, ex, aY, bY = _fast_setup(slots, etab, start, trans,
                                                end, match_odds, ins_odds, y)
    store = L.shape[0] > 0
    keep = tots.shape[0] > 0
    nck = ck.shape[0]
    inplace = nck > 0 and K == 1
    R = ck if inplace else np.zeros((2, _NF, M + 2))
    ptmp = np.empty((2, M + 2))  # insert-y chain segment products, per slot
    pkey = np.full((2, 3), -1, np.int64)
    lo, hi = band_limits(np.int64(0), N, M, band)
    tot = ps.forward_row0_rows(R[0], hi, st, ey, aY)
    if keep:
        tots[0] = tot
    if nck > 0 and not inplace:
        _copy2(R[0], ck[0])
    logscale = 0.0
    lo_pp = 0
    lo_p = lo
    for i in range(1, N + 1):
        if tot == 0.0 or not math.isfinite(tot):
            return -np.inf
        inv = 1.0 / tot
        logscale += math.log(tot)
        lo, hi = band_limits(i, N, M, band)
        if inplace:
            cur = R[i]
            prev = R[i - 1]
        else:
            cur = R[i & 1]
            prev = R[(i - 1) & 1]
            for c in range(lo_pp, lo):
                for s in range(_NF):
                    cur[s, c] = 0.0
        tot = _ffwd_row(i, lo, hi, x[i - 1], prev, cur, inv, slots, st, tr,
                        E, ex, aY, bY, ptmp, pkey)
        if keep:
            tots[i] = tot
        if store:
            c0 = lo if lo > 1 else 1
            if hi >= c0:
                _vcopy(cur[0, c0:hi + 1], L[i - 1, c0 - 1:hi])
        if nck > 0 and not inplace and i % K == 0:
            _copy2(cur, ck[i // K])
        lo_pp = lo_p
        lo_p = lo
    cur = R[N] if inplace else R[N & 1]
    z = 0.0
    for s in range(_NF):
        z += cur[s, M] * en[s]
    if z == 0.0 or not math.isfinite(z):
        return -np.inf
    return logscale + math.log(z)


@numba.njit(cache=True)
def _fast_striped(slots, etab, start, trans, end, match_odds, ins_odds, x, y,
                  mode, B, scl, logz, rows):
    """:func:`pair_stripe.striped_forward` of the model (its ``mode`` and
    outputs); NaN when the carry tables leave the float range."""
    st, tr, en, E, ey, ex, aY, bY = _fast_setup(slots, etab, start, trans,
                                                end, match_odds, ins_odds, y)
    return ps.striped_forward(slots, st, tr, en, E, ey, ex, aY, bY, x,
                              y.shape[0], mode, B, scl, logz, rows)


@numba.njit(cache=True)
def _fast_score(slots, etab, start, trans, end, match_odds, ins_odds, x, y,
                band):
    """Fast-path log-odds: the striped forward of :mod:`pair_stripe` when
    there is no band and the rows are long enough, else the row kernels.
    (Kept apart from :func:`_fast_forward`, which posteriors and counts
    compile, so that they do not compile the striped kernels.)"""
    M = y.shape[0]
    if band < 0 and M >= ps.STRIPE_MIN:
        e = np.empty(0)
        z = _fast_striped(slots, etab, start, trans, end, match_odds,
                          ins_odds, x, y, np.int64(0), np.empty((0, 0)), e,
                          0.0, e)
        if not math.isnan(z):
            return z
    return _fast_forward(slots, etab, start, trans, end, match_odds, ins_odds,
                         x, y, band, np.zeros((0, 1)), np.zeros(0),
                         np.zeros((0, _NF, 1)), np.int64(1))


@numba.njit(cache=True)
def _log_scales(tots):
    """logf[i] = sum(log(tots[:i])), accumulated as the forward does."""
    n = tots.shape[0]
    logf = np.zeros(n)
    s = 0.0
    for i in range(1, n):
        s += math.log(tots[i - 1])
        logf[i] = s
    return logf


@numba.njit(cache=True)
def _fast_posterior(slots, etab, start, trans, end, match_odds, ins_odds, x,
                    y, band, P, rows):
    """Fast-path posterior into P (N, M) and its row sums into rows (N,);
    returns (log-odds, the backward pass's own log-odds at Begin: see
    :func:`_post_any`).  P holds the scaled forward match lattice until the
    backward pass overwrites it."""
    N = x.shape[0]
    M = y.shape[0]
    tots = np.empty(N + 1)
    logz = _fast_forward(slots, etab, start, trans, end, match_odds, ins_odds,
                         x, y, band, P, tots, np.zeros((0, _NF, 1)),
                         np.int64(1))
    if not math.isfinite(logz):
        P[:, :] = 0.0
        return logz, logz
    logf = _log_scales(tots)
    st, tr, en, E, ey, ex, aY, bY = _fast_setup(slots, etab, start, trans,
                                                end, match_odds, ins_odds, y)
    G = np.zeros((2, _NF, M + 2))
    tmp = np.empty(M + 2)
    bMr = np.zeros(M + 2)
    logb = 0.0
    tot = 1.0
    hi_pp = M
    hi_p = M
    for i in range(N, 0, -1):
        if tot == 0.0 or not math.isfinite(tot):
            # the backward rows lost the pair (the check then fails)
            P[:i, :] = 0.0
            return logz, -np.inf
        inv = 1.0 / tot
        e1n = 0.0
        e2n = 0.0
        if i < N:
            logb += math.log(tot)
            e1n = ex[0, x[i]]
            e2n = ex[1, x[i]]
        cur = G[i & 1]
        lo, hi = band_limits(i, N, M, band)
        for c in range(hi + 1, hi_pp + 1):
            for s in range(_NF):
                cur[s, c] = 0.0
        tot = _fbwd_row(i, N, M, lo, hi, np.int64(x[i - 1]), e1n, e2n,
                        G[(i + 1) & 1], cur, bMr, inv, slots, tr, en, E, aY,
                        bY, tmp)
        f1, f2 = _scale(logf[i] + logb - logz)
        c0 = lo if lo > 1 else 1
        rows[i - 1] = 0.0
        if hi >= c0:
            rows[i - 1] = _vpost(P[i - 1, c0 - 1:hi], bMr[c0:hi + 1], f1, f2)
        hi_pp = hi_p
        hi_p = hi
    return logz, _fast_begin(N, M, band, x, y, G, tot, logb, hi_pp, slots, st,
                             tr, en, E, ey, ex, aY, bY, bMr, tmp)


@numba.njit(cache=True)
def _fast_begin(N, M, band, x, y, G, tot, logb, hi_pp, slots, st, tr, en, E,
                ey, ex, aY, bY, bMr, tmp):
    """The backward pass's log-odds at Begin, once row 1 is in ``G[1]``
    (scaled by exp(``logb``), its sum ``tot``): row 0 (its insert-y
    cells) is computed into ``G[0]``, and Begin sums the first cells,
    match at (1, 1), insert-x at (1, 0), insert-y at (0, 1), times their
    start transitions and emissions."""
    if tot == 0.0 or not math.isfinite(tot):
        return -np.inf
    r1 = G[1]
    cur = G[0]
    lo1, hi1 = band_limits(np.int64(1), N, M, band)
    lo, hi = band_limits(np.int64(0), N, M, band)
    for c in range(hi + 1, hi_pp + 1):
        for q in range(_NF):
            cur[q, c] = 0.0
    inv = 1.0 / tot
    tot0 = _fbwd_row(np.int64(0), N, M, lo, hi, np.int64(0), ex[0, x[0]],
                     ex[1, x[0]], r1, cur, bMr, inv, slots, tr, en, E, aY, bY,
                     tmp)
    if not math.isfinite(tot0):
        return -np.inf
    z1 = 0.0  # row 1's terms, in row 1's scale
    if lo1 <= 1 and hi1 >= 1:
        z1 += st[0] * r1[0, 1]
    if lo1 == 0:
        for k in range(2):
            z1 += st[1 + k] * ex[k, x[0]] * r1[1 + k, 0]
    z0 = 0.0  # row 0's, in row 0's scale (row 1's divided by tot)
    if hi >= 1:
        for k in range(2):
            z0 += st[3 + k] * ey[k, 1] * cur[3 + k, 1]
    z = z1 + z0 * tot
    if not z > 0.0:
        return -np.inf
    return logb + math.log(z)


@numba.njit(cache=True, fastmath=_FM)
def _cnt_into_m(g, f0, f1, f2, f3, f4, two):
    """Sums of f_s[l] * g[l]: transitions into the match cells of a row."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    if two:
        for l in range(g.shape[0]):
            gl = g[l]
            s0 += f0[l] * gl
            s1 += f1[l] * gl
            s2 += f2[l] * gl
            s3 += f3[l] * gl
            s4 += f4[l] * gl
    else:
        for l in range(g.shape[0]):
            gl = g[l]
            s0 += f0[l] * gl
            s1 += f1[l] * gl
            s3 += f3[l] * gl
    return s0, s1, s2, s3, s4


@numba.njit(cache=True, fastmath=_FM)
def _dot(a, b):
    t = 0.0
    for l in range(b.shape[0]):
        t += a[l] * b[l]
    return t


@numba.njit(cache=True, fastmath=_FM)
def _cnt_pair(fa, fb, b):
    """sum(fa * b), sum(fb * b)."""
    s0 = 0.0
    s1 = 0.0
    for l in range(b.shape[0]):
        s0 += fa[l] * b[l]
        s1 += fb[l] * b[l]
    return s0, s1


@numba.njit(cache=True, fastmath=_FM)
def _cnt_y(fM, fY, wM, wY, b):
    """sum(fM * wM * b), sum(fY * wY * b): match -> insert-y and
    insert-y -> insert-y along a row."""
    s0 = 0.0
    s1 = 0.0
    for l in range(b.shape[0]):
        s0 += fM[l] * wM[l] * b[l]
        s1 += fY[l] * wY[l] * b[l]
    return s0, s1


@numba.njit(cache=True)
def _axpy3(acc, f, a, b):
    """acc += f * (a * b), in that order (no fastmath: an elementwise loop
    vectorises without it).  For counts ``a`` is a forward row that may
    hold part of the scale (see :func:`_count_scale`) and ``f`` the rest,
    up to e**700: ``f * a`` first overflowed where ``b`` was 0 or tiny
    (inf * 0 = NaN counts beside a finite log-odds; found on DNA tandem
    repeats)."""
    for l in range(acc.shape[0]):
        acc[l] += f * (a[l] * b[l])


@numba.njit(cache=True, fastmath=_FM)
def _fast_counts(slots, etab, start, trans, end, match_odds, ins_odds, x, y,
                 band, n_start, n_trans, n_end, n_match, n_ins, full_store):
    """Fast-path expected counts (see :func:`expected_counts`).

    Forward rows (all five slots) are checkpointed every K = ceil(sqrt(N+1))
    rows and recomputed block by block (with the same row routine, so bit for
    bit) while the backward pass runs down the rows: O(5 * M * 2 * sqrt(N))
    memory.  When all rows take at most ``full_store`` float64 (4 MiB from
    the public kernels; a 300 x 300 pair takes 3.6 MiB) every row is kept
    instead (K = 1) and nothing is recomputed.

    At row r the transitions within row r (into insert-y) and the emissions
    of row r use F(r) and B(r); the transitions into row r+1 (into match and
    insert-x) use F(r) and B(r+1), the previous backward row.  Match
    emissions go to an (A, M+2) table by (x_r, column), insert-y emissions
    to a per-column vector; both are scattered by y at the end."""
    N = x.shape[0]
    M = y.shape[0]
    if _NF * (N + 1) * (M + 2) <= full_store:
        K = 1  # small pair: keep every forward row, nothing recomputed
    else:
        K = int(math.ceil(math.sqrt(N + 1.0)))
    nb = N // K + 1
    ck = np.zeros((nb, _NF, M + 2))
    tots = np.empty(N + 1)
    logz = _fast_forward(slots, etab, start, trans, end, match_odds, ins_odds,
                         x, y, band, np.zeros((0, 1)), tots, ck, K)
    if not math.isfinite(logz):
        return logz
    logf = _log_scales(tots)
    st, tr, en, E, ey, ex, aY, bY = _fast_setup(slots, etab, start, trans,
                                                end, match_odds, ins_odds, y)
    two = slots[2] >= 0 or slots[4] >= 0
    A = E.shape[0]
    blk = np.zeros((K if K > 1 else 0, _NF, M + 2))
    G = np.zeros((2, _NF, M + 2))
    bMr = np.zeros(M + 2)
    tmp = np.empty(M + 2)
    ptmp = np.empty((2, M + 2))  # forward chains' segment products (own cache)
    pkey = np.full((2, 3), -1, np.int64)
    accM = np.zeros((A, M + 2))  # match posteriors by (x_r, column)
    accY = np.zeros((2, M + 2))  # insert-y posteriors by column
    accX = np.zeros((2, A))      # insert-x posteriors by residue
    cs = np.zeros(_NF)
    ct = np.zeros((_NF, _NF))
    ce = np.zeros(_NF)
    logb = 0.0
    lb_next = 0.0
    tot = 1.0
    hi_pp = M
    hi_p = M
    for b in range(nb - 1, -1, -1):
        i0 = b * K
        i1 = min(i0 + K - 1, N)
        if K > 1:
            _copy2(ck[b], blk[0])
        for i in range(i0 + 1, i1 + 1):
            lo, hi = band_limits(i, N, M, band)
            hn = M
            if i < N:
                hn = band_limits(i + 1, N, M, band)[1]
            row = blk[i - i0]
            # the cells read outside [lo, hi] by this row's consumers
            for s in range(_NF):
                for c in range(max(lo - 1, 0), hn + 1):
                    row[s, c] = 0.0
            _ffwd_row(i, lo, hi, x[i - 1], blk[i - 1 - i0], row,
                      1.0 / tots[i - 1], slots, st, tr, E, ex, aY, bY, ptmp,
                      pkey)
        for r in range(i1, i0 - 1, -1):
            if tot == 0.0 or not math.isfinite(tot):
                return np.nan  # a backward row lost everything
            e1n = 0.0
            e2n = 0.0
            if r < N:
                lb_next = logb
                logb += math.log(tot)
                e1n = ex[0, x[r]]
                e2n = ex[1, x[r]]
            inv = 1.0 / tot
            nxt = G[(r + 1) & 1]
            cur = G[r & 1]
            lo, hi = band_limits(r, N, M, band)
            for c in range(hi + 1, hi_pp + 1):
                for s in range(_NF):
                    cur[s, c] = 0.0
            xr = x[r - 1] if r > 0 else 0
            tot = _fbwd_row(r, N, M, lo, hi, xr, e1n, e2n, nxt, cur, bMr, inv,
                            slots, tr, en, E, aY, bY, tmp)
            F = ck[r] if K == 1 else blk[r - i0]  # used at this step only
            d = _count_scale(F, max(logf[r] + logb, logf[r] + lb_next)
                             - logz, r == 0)
            if not d == d:
                return np.nan  # lost (nothing added)
            sb = math.exp(logf[r] + logb - logz - d)
            c0 = lo if lo > 1 else 1
            if hi >= c0:
                # within row r: match / insert-y -> insert-y, and the
                # emissions of row r
                for k in range(2):
                    if slots[3 + k] >= 0:
                        d0, d1 = _cnt_y(F[0, c0 - 1:hi], F[3 + k, c0 - 1:hi],
                                        bY[k, c0:hi + 1], aY[k, c0:hi + 1],
                                        cur[3 + k, c0:hi + 1])
                        ct[0, 3 + k] += sb * d0
                        ct[3 + k, 3 + k] += sb * d1
                        _axpy3(accY[k, c0:hi + 1], sb, F[3 + k, c0:hi + 1],
                               cur[3 + k, c0:hi + 1])
                if r > 0:
                    _axpy3(accM[xr, c0:hi + 1], sb, F[0, c0:hi + 1],
                           bMr[c0:hi + 1])
            if r > 0:
                for k in range(2):
                    if slots[1 + k] >= 0:
                        accX[k, xr] += sb * _dot(F[1 + k, lo:hi + 1],
                                                 cur[1 + k, lo:hi + 1])
            if r < N:
                # into row r+1: -> match at (r+1, c) from (r, c-1), and
                # -> insert-x at (r+1, c) from (r, c)
                sa = math.exp(logf[r] + lb_next - logz - d)
                lo1, hi1 = band_limits(r + 1, N, M, band)
                d1 = lo1 if lo1 > 1 else 1
                if hi1 >= d1:
                    q0, q1, q2, q3, q4 = _cnt_into_m(
                        nxt[0, d1:hi1 + 1], F[0, d1 - 1:hi1],
                        F[1, d1 - 1:hi1], F[2, d1 - 1:hi1], F[3, d1 - 1:hi1],
                        F[4, d1 - 1:hi1], two)
                    ct[0, 0] += sa * tr[0, 0] * q0
                    ct[1, 0] += sa * tr[1, 0] * q1
                    ct[2, 0] += sa * tr[2, 0] * q2
                    ct[3, 0] += sa * tr[3, 0] * q3
                    ct[4, 0] += sa * tr[4, 0] * q4
                for k in range(2):
                    if slots[1 + k] >= 0:
                        q0, q1 = _cnt_pair(F[0, lo1:hi1 + 1],
                                           F[1 + k, lo1:hi1 + 1],
                                           nxt[1 + k, lo1:hi1 + 1])
                        e = ex[k, x[r]] * sa
                        ct[0, 1 + k] += e * tr[0, 1 + k] * q0
                        ct[1 + k, 1 + k] += e * tr[1 + k, 1 + k] * q1
                if r == 0:
                    # Begin -> match at (1, 1), -> insert-x at (1, 0)
                    if lo1 <= 1 and hi1 >= 1:
                        cs[0] += sa * st[0] * nxt[0, 1]
                    if lo1 == 0:
                        for k in range(2):
                            cs[1 + k] += (sa * st[1 + k] * ex[k, x[0]]
                                          * nxt[1 + k, 0])
            if r == 0 and hi >= 1:
                # Begin -> insert-y at (0, 1)
                for k in range(2):
                    cs[3 + k] += sb * st[3 + k] * ey[k, 1] * cur[3 + k, 1]
            if r == N:
                for s in range(_NF):
                    ce[s] += sb * F[s, M] * en[s]
            hi_pp = hi_p
            hi_p = hi
    # each residue is emitted once and the path starts once: a pair whose
    # row scaling lost mass adds nothing (see _COUNTS_AGREE)
    n_m = _vsum(accM.ravel())
    if not (_counts_hold(_vsum(cs), 1.0)
            and _counts_hold(n_m + _vsum(accX.ravel()), N)
            and _counts_hold(n_m + _vsum(accY.ravel()), M)):
        return np.nan
    # scatter into the caller's (state-indexed) accumulators
    for a in range(_NF):
        sa_ = slots[a]
        if sa_ < 0:
            continue
        n_start[sa_] += cs[a]
        n_end[sa_] += ce[a]
        for c in range(_NF):
            sc = slots[c]
            if sc >= 0:
                n_trans[sa_, sc] += ct[a, c]
    tm = etab[slots[0]]
    for a in range(A):
        for c in range(1, M + 1):
            n_match[tm, a, y[c - 1]] += accM[a, c]
    for k in range(2):
        s = slots[1 + k]
        if s >= 0:
            for a in range(A):
                n_ins[etab[s], a] += accX[k, a]
        s = slots[3 + k]
        if s >= 0:
            for c in range(1, M + 1):
                n_ins[etab[s], y[c - 1]] += accY[k, c]
    return logz


# --------------------------------------------------------------------------
# General path (any states, any transitions)
# --------------------------------------------------------------------------


@numba.njit(cache=True)
def _gen_links(trans):
    """Predecessor lists ``pred[s, :npred[s]]`` (states r with trans[r, s] >
    0) and successor lists ``succ[s, :nsucc[s]]``, ascending: the general
    path sums only over nonzero transitions (in the same order as a full
    loop, so the sums are unchanged)."""
    S = trans.shape[0]
    npred = np.zeros(S, np.int64)
    pred = np.zeros((S, S), np.int64)
    nsucc = np.zeros(S, np.int64)
    succ = np.zeros((S, S), np.int64)
    for s in range(S):
        for r in range(S):
            if trans[r, s] != 0.0:
                pred[s, npred[s]] = r
                npred[s] += 1
            if trans[s, r] != 0.0:
                succ[s, nsucc[s]] = r
                nsucc[s] += 1
    return npred, pred, nsucc, succ


@numba.njit(cache=True)
def _gen_fwd_row(i, kind, etab, start, trans, match_odds, ins_odds, x, y,
                 prev, cur, inv, band, npred, pred):
    """Forward row i (scaled by ``inv`` relative to ``prev``); returns its sum
    (including Begin, value 1, in row 0)."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    cur[:, :] = 0.0
    lo, hi = band_limits(i, N, M, band)
    tot = 1.0 if i == 0 else 0.0
    for c in range(lo, hi + 1):
        for s in range(S):
            k = kind[s]
            v = 0.0
            if k == 0:
                if i >= 1 and c >= 1:
                    acc = 0.0
                    for q in range(npred[s]):
                        r = pred[s, q]
                        acc += prev[r, c - 1] * trans[r, s]
                    if i == 1 and c == 1:
                        acc += start[s]
                    v = acc * inv * match_odds[etab[s], x[i - 1], y[c - 1]]
            elif k == 1:
                if i >= 1:
                    acc = 0.0
                    for q in range(npred[s]):
                        r = pred[s, q]
                        acc += prev[r, c] * trans[r, s]
                    if i == 1 and c == 0:
                        acc += start[s]
                    v = acc * inv * ins_odds[etab[s], x[i - 1]]
            else:
                if c >= 1:
                    acc = 0.0
                    for q in range(npred[s]):
                        r = pred[s, q]
                        acc += cur[r, c - 1] * trans[r, s]
                    if i == 0 and c == 1:
                        acc += start[s]
                    v = acc * ins_odds[etab[s], y[c - 1]]
            cur[s, c] = v
            tot += v
    return tot


@numba.njit(cache=True)
def _gen_next_values(i, c, kind, etab, match_odds, ins_odds, x, y, nxt, cur,
                     f_next, f_same, g):
    """g[r] = emission odds of state r at its cell after (i, c) times its
    backward value there, times ``f_next`` (match and insert-x: row i + 1)
    or ``f_same`` (insert-y: row i); 0 outside the lattice."""
    N = x.shape[0]
    M = y.shape[0]
    for r in range(kind.shape[0]):
        k = kind[r]
        v = 0.0
        if k == 0:
            if i < N and c < M:
                v = match_odds[etab[r], x[i], y[c]] * nxt[r, c + 1] * f_next
        elif k == 1:
            if i < N:
                v = ins_odds[etab[r], x[i]] * nxt[r, c] * f_next
        else:
            if c < M:
                v = ins_odds[etab[r], y[c]] * cur[r, c + 1] * f_same
        g[r] = v


@numba.njit(cache=True)
def _gen_bwd_row(i, kind, etab, end, trans, match_odds, ins_odds, x, y,
                 nxt, cur, inv, band, nsucc, succ):
    """Backward row i (row i+1 terms scaled by ``inv``); returns its sum."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    cur[:, :] = 0.0
    lo, hi = band_limits(i, N, M, band)
    g = np.empty(S)
    tot = 0.0
    for c in range(hi, lo - 1, -1):
        _gen_next_values(i, c, kind, etab, match_odds, ins_odds, x, y, nxt,
                         cur, inv, 1.0, g)
        for s in range(S):
            v = 0.0
            for q in range(nsucc[s]):
                r = succ[s, q]
                v += trans[s, r] * g[r]
            if i == N and c == M:
                v += end[s]
            cur[s, c] = v
            tot += v
    return tot


@numba.njit(cache=True)
def _gen_forward(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                 band, mslot, Lm, logf, tots, K, ck):
    """General forward.  Optional outputs (skipped when their first dimension
    is 0): Lm (n_match_states, N, M) scaled match lattices (``mslot[s]`` =
    lattice of state s or -1), logf (N+1,) row log scales, tots (N+1,) row
    sums, ck checkpoint rows i = b*K.  Returns log-odds."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    R = np.zeros((2, S, M + 1))
    npred, pred, _, _ = _gen_links(trans)
    tot = _gen_fwd_row(np.int64(0), kind, etab, start, trans, match_odds,
                       ins_odds, x, y, R[1], R[0], 1.0, band, npred, pred)
    store = Lm.shape[0] > 0
    if tots.shape[0] > 0:
        tots[0] = tot
        logf[0] = 0.0
    if ck.shape[0] > 0:
        _copy2(R[0], ck[0])
    logscale = 0.0
    for i in range(1, N + 1):
        if tot == 0.0 or not math.isfinite(tot):
            return -np.inf
        logscale += math.log(tot)
        prev = R[(i - 1) & 1]
        cur = R[i & 1]
        tot = _gen_fwd_row(i, kind, etab, start, trans, match_odds, ins_odds,
                           x, y, prev, cur, 1.0 / tot, band, npred, pred)
        if tots.shape[0] > 0:
            tots[i] = tot
            logf[i] = logscale
        if ck.shape[0] > 0 and i % K == 0:
            _copy2(cur, ck[i // K])
        if store:
            for s in range(S):
                ms = mslot[s]
                if ms >= 0:
                    for c in range(1, M + 1):
                        Lm[ms, i - 1, c - 1] = cur[s, c]
    cur = R[N & 1]
    z = 0.0
    for s in range(S):
        z += cur[s, M] * end[s]
    if z == 0.0 or not math.isfinite(z):
        return -np.inf
    return logscale + math.log(z)


@numba.njit(cache=True)
def _gen_posterior(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                   band, P, rows):
    """General posterior into P (N, M), zero on entry, and its row sums
    into rows (N,); returns (log-odds, the backward pass's own log-odds at
    Begin: see :func:`_post_any`)."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    mslot = np.full(S, -1, np.int64)
    nms = 0
    for s in range(S):
        if kind[s] == 0:
            mslot[s] = nms
            nms += 1
    Lm = np.zeros((nms, N, M))
    logf = np.zeros(N + 1)
    tots = np.zeros(N + 1)
    ck = np.zeros((0, S, M + 1))
    logz = _gen_forward(kind, etab, start, trans, end, match_odds, ins_odds,
                        x, y, band, mslot, Lm, logf, tots, np.int64(1), ck)
    if nms == 0 or not math.isfinite(logz):
        return logz, logz
    R = np.zeros((2, S, M + 1))
    _, _, nsucc, succ = _gen_links(trans)
    logb = 0.0
    tot = 1.0
    for i in range(N, 0, -1):
        if i < N:
            if tot == 0.0 or not math.isfinite(tot):
                P[:, :] = 0.0
                return logz, -np.inf  # the backward rows lost the pair
            logb += math.log(tot)
        nxt = R[(i + 1) & 1]
        cur = R[i & 1]
        tot = _gen_bwd_row(i, kind, etab, end, trans, match_odds, ins_odds, x,
                           y, nxt, cur, 1.0 / tot, band, nsucc, succ)
        f1, f2 = _scale(logf[i] + logb - logz)
        for s in range(S):
            ms = mslot[s]
            if ms >= 0:
                for c in range(1, M + 1):
                    P[i - 1, c - 1] += Lm[ms, i - 1, c - 1] * f1 * cur[s, c] * f2
        rows[i - 1] = _vsum(P[i - 1])
    # the backward pass's own log-odds at Begin (see _post_any): row 0, then
    # Begin's first cells, in row 1's scale
    if tot == 0.0 or not math.isfinite(tot):
        return logz, -np.inf
    _gen_bwd_row(np.int64(0), kind, etab, end, trans, match_odds, ins_odds, x,
                 y, R[1], R[0], 1.0 / tot, band, nsucc, succ)
    g = np.empty(S)
    _gen_next_values(np.int64(0), np.int64(0), kind, etab, match_odds,
                     ins_odds, x, y, R[1], R[0], 1.0, tot, g)
    zb = 0.0
    for s in range(S):
        zb += start[s] * g[s]
    return logz, (logb + math.log(zb) if zb > 0.0 else -np.inf)


@numba.njit(cache=True)
def _gen_counts(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                n_start, n_trans, n_end, n_match, n_ins, band):
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    K = int(math.ceil(math.sqrt(N + 1.0)))
    nb = N // K + 1
    ck = np.zeros((nb, S, M + 1))
    logf = np.zeros(N + 1)
    tots = np.zeros(N + 1)
    Lm = np.zeros((0, 1, 1))
    mslot = np.full(S, -1, np.int64)
    logz = _gen_forward(kind, etab, start, trans, end, match_odds, ins_odds,
                        x, y, band, mslot, Lm, logf, tots, K, ck)
    if not math.isfinite(logz):
        return logz
    # local accumulators, added to the caller's at the end
    c_start = np.zeros(S)
    c_trans = np.zeros((S, S))
    c_end = np.zeros(S)
    c_match = np.zeros(n_match.shape)
    c_ins = np.zeros(n_ins.shape)
    blk = np.zeros((K, S, M + 1))
    R = np.zeros((2, S, M + 1))
    npred, pred, nsucc, succ = _gen_links(trans)
    g = np.empty(S)
    logb = 0.0
    lb_next = 0.0
    tot = 1.0
    for b in range(nb - 1, -1, -1):
        i0 = b * K
        i1 = min(i0 + K - 1, N)
        _copy2(ck[b], blk[0])
        for i in range(i0 + 1, i1 + 1):
            _gen_fwd_row(i, kind, etab, start, trans, match_odds, ins_odds,
                         x, y, blk[i - 1 - i0], blk[i - i0], 1.0 / tots[i - 1],
                         band, npred, pred)
        for i in range(i1, i0 - 1, -1):
            if i < N:
                if tot == 0.0 or not math.isfinite(tot):
                    return np.nan  # a backward row lost everything
                lb_next = logb
                logb += math.log(tot)
            nxt = R[(i + 1) & 1]
            cur = R[i & 1]
            tot = _gen_bwd_row(i, kind, etab, end, trans, match_odds, ins_odds,
                               x, y, nxt, cur, 1.0 / tot, band, nsucc, succ)
            F = blk[i - i0]  # used at this step only
            d = _count_scale(F, max(logf[i] + logb, logf[i] + lb_next)
                             - logz, i == 0)
            if not d == d:
                return np.nan  # lost (nothing added)
            f_same = math.exp(logf[i] + logb - logz - d)
            f_next = math.exp(logf[i] + lb_next - logz - d)
            lo, hi = band_limits(i, N, M, band)
            for c in range(lo, hi + 1):
                _gen_next_values(i, c, kind, etab, match_odds, ins_odds, x, y,
                                 nxt, cur, f_next, f_same, g)
                for s in range(S):
                    fv = F[s, c]
                    if fv == 0.0:
                        continue
                    k = kind[s]
                    gs = fv * cur[s, c] * f_same
                    if k == 0:
                        c_match[etab[s], x[i - 1], y[c - 1]] += gs
                    elif k == 1:
                        c_ins[etab[s], x[i - 1]] += gs
                    else:
                        c_ins[etab[s], y[c - 1]] += gs
                    for q in range(nsucc[s]):
                        r = succ[s, q]
                        c_trans[s, r] += fv * trans[s, r] * g[r]
                    if i == N and c == M:
                        c_end[s] += fv * end[s] * f_same
            if i == 0:
                # Begin (value 1 at (0, 0), row-0 scale 0)
                f0 = math.exp(min(logb - logz, _MAX_EXP))
                f1 = math.exp(min(lb_next - logz, _MAX_EXP))
                for r in range(S):
                    kr = kind[r]
                    if kr == 0:
                        v = start[r] * f1 * nxt[r, 1] * match_odds[etab[r], x[0], y[0]]
                    elif kr == 1:
                        v = start[r] * f1 * nxt[r, 0] * ins_odds[etab[r], x[0]]
                    else:
                        v = start[r] * f0 * cur[r, 1] * ins_odds[etab[r], y[0]]
                    c_start[r] += v
    # each residue is emitted once (twice per match) and the path starts
    # once: a pair whose row scaling lost mass adds nothing
    if not (_counts_hold(c_start.sum(), 1.0)
            and _counts_hold(2.0 * c_match.sum() + c_ins.sum(), N + M)):
        return np.nan
    n_start += c_start
    n_trans += c_trans
    n_end += c_end
    n_match += c_match
    n_ins += c_ins
    return logz


# --------------------------------------------------------------------------
# Public kernels
# --------------------------------------------------------------------------
#
# The compiled bodies that hold a whole pair computation are few on purpose:
# numba links every callee into each compiled caller and optimises and emits
# it again there, so a thin compiled wrapper costs as much compile time as
# what it wraps.  ``forward``, ``posterior``, ``expected_counts`` and the two
# batch kernels are therefore plain Python functions that pick the fast or
# the general path and call one compiled chunk kernel (shared by the
# single-pair and the batch entry points); the general path is compiled
# only when a model needs it.  They take the same arguments as before but
# cannot be called from inside other compiled code; compiled callers use
# the ``_*_chunk_*`` kernels or ``_fast_posterior`` / ``_gen_posterior``.
# Array-to-array copies go through the loops of ``_arrays`` rather than
# slice assignment, whose shape-check error message alone took 3-5 s of
# cold compile per call site (a cold ``score`` went from 40 to 27 s).


@numba.njit(cache=True)
def _transpose_model(kind, match_odds):
    """Swap the roles of x and y: insert-x <-> insert-y, match tables
    transposed."""
    kt = kind.copy()
    for s in range(kind.shape[0]):
        if kind[s] == 1:
            kt[s] = 2
        elif kind[s] == 2:
            kt[s] = 1
    nm, A, _ = match_odds.shape
    mt = np.empty((nm, A, A))
    for t in range(nm):
        for a in range(A):
            for b in range(A):
                mt[t, a, b] = match_odds[t, b, a]
    return kt, mt


# Column tilt.  Per-row scaling keeps each row's largest values near 1 and
# loses what lies more than ~708 nats below them.  Within row i the forward
# mass peaks near column s0 * i, s0 the slope of the model's typical paths
# (1 for a symmetric model), while the alignment's cells lie elsewhere: near
# column i * M / N for unrelated sequence, at column 0 through an unaligned
# prefix of the longer sequence.  For pairs of very different lengths under
# a short gap extension that distance reaches hundreds of nats (3000 x 1500
# DNA, extension 0.05: the forward came out 142 nats low; 5000 x 2500 at
# extension 0.5: 400 nats; posteriors off by up to 1e8).  Multiplying every
# emission that consumes a column (match and insert-y) by g multiplies
# every complete path by g**M, which the log-odds take back, and moves the
# peak: the row growth rate R(u) of paths weighted by exp(u) per column is
# convex, its slope d log R / du is the peak's columns per row, and
# g = exp(u*) with slope M / N at u* centres the rows on the pair.  R(u)
# comes from the transition matrix weighted by mean emission odds: 1 / R is
# the z at which the spectral radius of K[r, s] = trans[r, s] * w[s] *
# exp(u * cols[s]) * z**rows[s] reaches 1.  w is 1 for a pair of background
# composition (one cached table per model, see :func:`tilt_model`); a
# low-complexity pair (some state's mean odds off 1 by > 10%) gets its own
# weights, the match weight raised to its best in-phase diagonal (short
# repeats), and a tilt that keeps an insert-y run from outgrowing its row
# when the pair's insert odds exceed 1 / t(Y, Y).  Tilts are capped where an
# insert-y run with the largest insert odds would grow without bound, and a
# tilted pair that still comes out -inf (its rows overflowed, or lost the
# pair) is recomputed halfway (sqrt(g)), then untilted.  A pair with few
# columns (M c <= _LOSS_FLOOR, c a bound on one column's effect) is never
# tilted; any other pair is tilted when its estimated loss (:func:`_loss`)
# exceeds ``_TILT_NATS`` (1 nat: the centred tilt did no harm anywhere it
# was measured, and estimates missed repeats embedded in other sequence).
# Measured against log-space references (tests and two reviews): random,
# homologous and local pairs up to 5000 x 4000 (gap extension 0.005-0.5),
# poly-A, A-rich and tandem repeats of periods 1-10, pure or embedded in
# random sequence, DNA and protein 3-state, agree to 2e-9 nats where the
# untilted forward was up to 3000 nats off.  No estimate is trusted
# alone: ``posterior`` checks its sums (and, striped, that its two passes
# agree), expected counts check theirs (see _COUNTS_AGREE), and the
# forward of a pair that could lose mass is checked against its reversed
# pass; each retries stronger tilts on failure (one forward pass was 185
# nats low on a 449 x 1123 pair whose insert state leaves its loop for
# match with probability 1e-9, exact at g**8; DNA tandem repeats of 3000 x
# 2000 0.1 nats, exact at g**2-g**4), and a pair that fails every retry is
# computed in log space by :mod:`pair_log` (exact, 60-100x slower than one
# scaled pass).
_TILT_NATS = 1.0
# a pair of M columns with M * c <= _LOSS_FLOOR (c: see _tilt_info) cannot
# lose the ~708 nats that matter: no tilt, no solve
_LOSS_FLOOR = 600.0
# pairs of at least this many cells solve their tilt exactly; smaller ones
# interpolate it from the model's table (its error is far inside the range
# of tilts that work at those sizes)
_EXACT_CELLS = 1e6
# a pair whose mean odds for some state differ from 1 by more than this
# gets its own growth rate (weighted by those odds) instead of the model's
_COMPOSITION_TOL = 0.1


@numba.njit(cache=True)
def _log_rate(trans, cols, rows, w, u, A):
    """log R(u): minus the log z at which the spectral radius of
    K[r, s] = trans[r, s] * w[s] * exp(u)**cols[s] * z**rows[s] reaches 1,
    to ~1e-9; +inf when it is above 1 even as z -> 0 (rows diverge),
    -inf when it stays below 1 for every z (no row is ever completed).  The
    radius is below 1 exactly when I - K is a nonsingular M-matrix, which
    Gaussian elimination without pivoting shows by positive pivots
    (``A``: (S, S) scratch)."""
    S = trans.shape[0]
    cu = math.exp(u)
    lo = -60.0
    hi = 60.0
    for it in range(40):
        if it == 0:
            v = lo
        elif it == 1:
            v = hi
        else:
            v = 0.5 * (lo + hi)
        zv = math.exp(v)
        for r in range(S):
            for s in range(S):
                x = trans[r, s] * w[s]
                if cols[s]:
                    x *= cu
                if rows[s]:
                    x *= zv
                A[r, s] = (1.0 if r == s else 0.0) - x
        below = True
        for k in range(S):
            p = A[k, k]
            if not p > 0.0:
                below = False
                break
            for r in range(k + 1, S):
                f = A[r, k] / p
                if f != 0.0:
                    for s in range(k + 1, S):
                        A[r, s] -= f * A[k, s]
        if it == 0:
            if not below:
                return np.inf
        elif it == 1:
            if below:
                return -np.inf
        elif below:
            lo = v
        else:
            hi = v
    return -0.5 * (lo + hi)


@numba.njit(cache=True)
def _top(trans, cols, rows, wtop, A):
    """The largest u (at most 30) at which rows converge with the insert
    odds at their largest (``wtop``): a tilt beyond it could make an
    insert-y run grow without bound within a row."""
    hi = 30.0
    if math.isfinite(_log_rate(trans, cols, rows, wtop, hi, A)):
        return hi
    lo = -30.0
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        if math.isfinite(_log_rate(trans, cols, rows, wtop, mid, A)):
            lo = mid
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def _slope(trans, cols, rows, w, u, top, A):
    """d log R / du at u (a central difference, one-sided below ``top``)."""
    h = 1e-3
    b = min(u + h, top)
    return (_log_rate(trans, cols, rows, w, b, A)
            - _log_rate(trans, cols, rows, w, b - 2.0 * h, A)) / (2.0 * h)


@numba.njit(cache=True)
def _centred_tilt(trans, cols, rows, w, slope, top, A):
    """u in [-30, top] with d log R / du = slope (bisection to ~2e-4; log R
    is convex, so its derivative increases with u)."""
    lo = -30.0
    hi = top
    for _ in range(18):
        mid = 0.5 * (lo + hi)
        if _slope(trans, cols, rows, w, mid, top, A) < slope:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@numba.njit(cache=True)
def _phi(trans, cols, rows, w, s, top, A):
    """(u*, phi): the centred tilt for slope s and the rate of the paths of
    that slope, phi(s) = log R(u*) - u* s (the Legendre transform)."""
    u = _centred_tilt(trans, cols, rows, w, s, top, A)
    return u, _log_rate(trans, cols, rows, w, u, A) - u * s


_N_GRID = 40  # slopes of the per-model table: 1e-3 .. 1, geometric


@numba.njit(cache=True)
def _rate_table(trans, cols, rows, w, top, A):
    """[log R(0), s0, phi(0), top, then per slope of the grid: s, u*, phi]
    (see :func:`_loss`).  phi(0) is taken as log R(-30)."""
    out = np.zeros(4 + 3 * _N_GRID)
    r0 = _log_rate(trans, cols, rows, w, 0.0, A)
    out[0] = r0
    out[3] = top
    if not math.isfinite(r0):
        return out
    out[1] = _slope(trans, cols, rows, w, 0.0, top, A)
    out[2] = _log_rate(trans, cols, rows, w, -30.0, A)
    for k in range(_N_GRID):
        s = 10.0 ** (-3.0 + 3.0 * k / (_N_GRID - 1))
        u, p = _phi(trans, cols, rows, w, s, top, A)
        out[4 + k] = s
        out[4 + _N_GRID + k] = u
        out[4 + 2 * _N_GRID + k] = p
    return out


@numba.njit(cache=True)
def _interp(tab, s, which):
    """u* (which 1) or phi (which 2) at slope s from a :func:`_rate_table`
    (linear between grid slopes, clamped at the ends)."""
    G = _N_GRID
    base = 4 + which * G
    if s <= tab[4]:
        return tab[base]
    for k in range(1, G):
        if s <= tab[4 + k]:
            f = (s - tab[3 + k]) / (tab[4 + k] - tab[3 + k])
            return tab[base + k - 1] + f * (tab[base + k] - tab[base + k - 1])
    return tab[base + G - 1]


@numba.njit(cache=True)
def _loss(r0, s0, phi0, phi_s, phi_q, N, M):
    """Estimated loss (nats) of the untilted lattice of an oriented pair
    (N >= M, slope s = M / N).  Row i peaks near column s0 i, where the log
    value is i log R(0); the cells of slope c / i lie i (log R(0) -
    phi(c / i)) below.  Two paths bound what the alignment can need: the
    straight one (phi_s = phi(s); a peak right of it, s < s0, reaches
    column M at row M / s0 and the loss shrinks after it) and the one whose
    N - M insert-x steps come first (phi_q = phi(min(s0, M / (N - M))),
    measured from phi(0); the mirror image for the backward pass)."""
    s = M / N
    span = min(float(N), M / s0) if (s < s0 and s0 > 0.0) else float(N)
    loss = span * (r0 - phi_s)
    if N > M:
        loss = max(loss, (N - M) * (phi_q - phi0))
    return loss


@numba.njit(cache=True)
def _max_odds(kind, etab, ins_odds):
    """Per state: the largest insert odds of an insert-y state, else 1."""
    wtop = np.ones(kind.shape[0])
    for s in range(kind.shape[0]):
        if kind[s] == 2:
            m = 0.0
            for a in range(ins_odds.shape[1]):
                m = max(m, ins_odds[etab[s], a])
            wtop[s] = max(m, 1.0)
    return wtop


@numba.njit(cache=True)
def tilt_model(kind, etab, trans, ins_odds):
    """The model's :func:`_rate_table` for pairs of background composition
    (mean odds 1 per state), its tilts capped by the largest insert odds
    (:func:`_top`)."""
    cols = kind != 1
    rows = kind != 2
    S = trans.shape[0]
    A = np.empty((S, S))
    top = _top(trans, cols, rows, _max_odds(kind, etab, ins_odds), A)
    return _rate_table(trans, cols, rows, np.ones(S), top, A)


@numba.njit(cache=True)
def _mean_odds(kind, etab, match_odds, ins_odds, x, y):
    """Per state, the mean odds of its emissions over the pair's letters
    (x's and y's letter frequencies; 1 at background composition)."""
    A = ins_odds.shape[1]
    fx = np.zeros(A)
    fy = np.zeros(A)
    for c in x:
        fx[c] += 1.0 / x.shape[0]
    for c in y:
        fy[c] += 1.0 / y.shape[0]
    w = np.ones(kind.shape[0])
    for s in range(kind.shape[0]):
        t = etab[s]
        v = 0.0
        if kind[s] == 0:
            for a in range(A):
                if fx[a] > 0.0:
                    for b in range(A):
                        v += fx[a] * fy[b] * match_odds[t, a, b]
        else:
            f = fx if kind[s] == 1 else fy
            for a in range(A):
                v += f[a] * ins_odds[t, a]
        w[s] = v
    return w


@numba.njit(cache=True)
def _phase_odds(kind, etab, match_odds, x, y, w):
    """Raise each match state's weight in ``w`` to the largest mean odds of
    the diagonals x_i : y_(i+d), |d| < 8 (repeats of period up to 7 align
    in phase along one of them)."""
    N = x.shape[0]
    M = y.shape[0]
    for s in range(kind.shape[0]):
        if kind[s] != 0:
            continue
        t = etab[s]
        for d in range(-7, 8):
            i0 = max(0, -d)
            i1 = min(N, M - d)
            if i1 - i0 < 8:
                continue
            v = 0.0
            for i in range(i0, i1):
                v += match_odds[t, x[i], y[i + d]]
            w[s] = max(w[s], v / (i1 - i0))


@numba.njit(cache=True)
def _pair_tilt(kind, etab, trans, match_odds, ins_odds, x, y, tinfo):
    """(g, etab, match odds, insert odds) for an oriented pair (N >= M) of a
    model whose states have kinds ``kind``: g = 1.0 and the tables as they
    are when the pair's estimated loss (:func:`_loss`) is below the last
    entry of ``tinfo`` (``tinfo``: :func:`tilt_model` of the oriented
    model, the bound ``c`` of :func:`_tilt_info`, then that threshold; a
    pair with ``M c <= _LOSS_FLOOR`` is never tilted unless the threshold
    is 0); else the
    tilt and tables whose column-consuming emissions are times g (every
    match table, and for the insert-y states rows n_i.. of a doubled insert
    table, ``etab`` remapped: their counts must be folded back onto rows
    0..n_i-1 by :func:`_fold_ins`).  A pair whose letter composition moves
    some state's mean odds away from 1 (low-complexity sequence) gets its
    growth rate weighted by those odds."""
    N = x.shape[0]
    M = y.shape[0]
    g = 1.0
    own = False
    top = tinfo[3]
    thr = tinfo[tinfo.shape[0] - 1]
    c = tinfo[tinfo.shape[0] - 2]
    if (M > 0 and N > 0 and math.isfinite(tinfo[0]) and thr < np.inf
            and (M * c > _LOSS_FLOOR or thr == 0.0)):
        cols = kind != 1
        rows = kind != 2
        S = trans.shape[0]
        A = np.empty((S, S))
        s = M / N
        q = min(tinfo[1], M / (N - M)) if N > M else tinfo[1]
        w = _mean_odds(kind, etab, match_odds, ins_odds, x, y)
        for k in range(S):
            own = own or abs(w[k] - 1.0) > _COMPOSITION_TOL
        if own:
            # low-complexity sequence: a periodic pair's in-phase diagonals
            # carry far more than the mean match odds
            _phase_odds(kind, etab, match_odds, x, y, w)
            r0 = _log_rate(trans, cols, rows, w, 0.0, A)
            if r0 == np.inf:
                # insert-y odds above 1 / t(Y, Y) on average: untilted, a
                # row would grow along its columns beyond what it can hold
                g = math.exp(_centred_tilt(trans, cols, rows, w, s, top, A))
            elif math.isfinite(r0):
                s0 = _slope(trans, cols, rows, w, 0.0, top, A)
                phi0 = _log_rate(trans, cols, rows, w, -30.0, A)
                u, phi_s = _phi(trans, cols, rows, w, s, top, A)
                phi_q = _phi(trans, cols, rows, w, q, top, A)[1]
                if _loss(r0, s0, phi0, phi_s, phi_q, N, M) > thr:
                    g = math.exp(u)
        elif _loss(tinfo[0], tinfo[1], tinfo[2], _interp(tinfo, s, 2),
                   _interp(tinfo, q, 2), N, M) > thr:
            # the table decides; on long pairs, where the range of tilts
            # that work narrows, the tilt is solved for this slope
            if N * M >= _EXACT_CELLS:
                g = math.exp(_centred_tilt(trans, cols, rows, np.ones(S), s,
                                           top, A))
            else:
                g = math.exp(_interp(tinfo, s, 1))
    if g == 1.0:
        return g, etab, match_odds, ins_odds
    et, mo, ins = _tilted(kind, etab, match_odds, ins_odds, g)
    return g, et, mo, ins


@numba.njit(cache=True)
def _tilted(kind, etab, match_odds, ins_odds, g):
    """(etab, match odds, insert odds) with the column-consuming emissions
    times g (see :func:`_pair_tilt`)."""
    mo = match_odds * g
    n_i = ins_odds.shape[0]
    ins = np.empty((2 * n_i, ins_odds.shape[1]))
    for t in range(n_i):
        for a in range(ins_odds.shape[1]):
            ins[t, a] = ins_odds[t, a]
            ins[n_i + t, a] = ins_odds[t, a] * g
    et = etab.copy()
    for s in range(etab.shape[0]):
        if kind[s] == 2:
            et[s] = etab[s] + n_i
    return et, mo, ins


@numba.njit(cache=True, inline="always")
def _retilt(attempt, g, kind, etab, match_odds, ins_odds):
    """The tilt and tables to try after a tilted pair came out -inf (its
    rows overflowed or underflowed): halfway to untilted (sqrt(g)) after
    the first attempt, then untilted.  (A protein low-complexity pair under
    the 5-state preset got g = 0.21, whose rows lost the pair's random
    flank, while 0.5-0.8 were exact and g = 1 was 0.45 nats low.)"""
    if attempt == 0:
        g = math.sqrt(g)
        et, mo, io = _tilted(kind, etab, match_odds, ins_odds, g)
        return g, et, mo, io
    return 1.0, etab, match_odds, ins_odds


# The tilt ladder of checked forwards and expected counts, tried in order,
# each tilt once: the pair's own tilt g0, halfway to untilted (sqrt(g0)),
# the tilt forced (computed even where the estimated loss is small), that
# tilt to the powers 2, 4, 8 and 16 (further from 1: a DNA tandem repeat of
# 3000 x 2000 failed at its solved g = 0.815 and was exact at g <= 0.7),
# then untilted.  A pass that fails its check (NaN), or comes out -inf after
# some pass of the pair came out finite, moves to the next tilt; -inf while
# nothing was finite (no path, or every row lost) goes from g0 to sqrt(g0)
# to untilted, where it is final.  (A fixed sequence: an earlier version
# retried -inf inside each rung and recomputed the untilted pass six times
# on a failing pair, and never tried sqrt(g0) after a failed check, where
# two fuzzed custom models verified.)
_LADDER = 8


@numba.njit(cache=True, inline="always")
def _ladder(step, g0, gf, kind, etab, trans, match_odds, ins_odds, x, y, t):
    """(tilt of ladder step ``step``, forced tilt): see ``_LADDER``; the
    forced tilt is solved at step 2 and passed back in ``gf``."""
    if step == 0:
        return g0, gf
    if step == 1:
        return math.sqrt(g0), gf
    if step == _LADDER - 1:
        return 1.0, gf
    if step == 2:
        tf = t.copy()
        tf[tf.shape[0] - 1] = 0.0
        gf = _pair_tilt(kind, etab, trans, match_odds, ins_odds, x, y, tf)[0]
    return gf ** (1 << (step - 2)), gf


@numba.njit(cache=True, inline="always")
def _ladder_next(lz, ok, g, step, fin, M):
    """After a pass at tilt g (step already advanced) that returned lz
    (``ok``: finite and checked): (done, next step, whether some pass of the
    pair was finite, the result when done)."""
    if ok:
        return True, step, True, (lz - M * math.log(g) if g != 1.0 else lz)
    if lz == -np.inf and not fin:
        if g == 1.0:
            return True, step, fin, lz  # untilted and nothing finite: no path
        if step >= 2:
            step = _LADDER - 1  # after g0 and sqrt(g0): untilted
        return False, step, fin, np.nan
    return False, step, True, np.nan


@numba.njit(cache=True, inline="always")
def _two_passes(zf, zr, two):
    """(log-odds or NaN, whether checked) from a forward ``zf`` and, when
    ``two``, its reversed pass ``zr`` at one tilt (not yet taken back).
    Where exactly one of them is finite (the other lost every row) the tilt
    fails: the log-space fallback answers if no other tilt checks."""
    if not two:
        return zf, math.isfinite(zf)
    if math.isfinite(zf) and math.isfinite(zr):
        if abs(zr - zf) <= _PASSES_AGREE * max(1.0, abs(zf)):
            return zf, True
        return np.nan, False  # one of the passes lost mass
    if math.isfinite(zf) or math.isfinite(zr):
        return np.nan, False
    return zf, False  # both -inf


@numba.njit(cache=True, inline="always")
def _ladder_tilt(step, g0, gf, tried, kind, etab, trans, match_odds,
                 ins_odds, x, y, t):
    """(next step, tilt, forced tilt): the first tilt of the ladder from
    ``step`` on that is not in ``tried`` (NaN where untried), recorded
    there; the tilt is NaN when the ladder is done."""
    while step < _LADDER:
        g, gf = _ladder(step, g0, gf, kind, etab, trans, match_odds,
                        ins_odds, x, y, t)
        step += 1
        new = True
        for q in range(_LADDER):
            if tried[q] == g:
                new = False
        if new:
            tried[step - 1] = g
            return step, g, gf
    return step, np.nan, gf


@numba.njit(cache=True, inline="always")
def _tilted_or_not(g, kind, etab, match_odds, ins_odds):
    """The tables at tilt g (as given for g = 1)."""
    if g == 1.0:
        return etab, match_odds, ins_odds
    return _tilted(kind, etab, match_odds, ins_odds, g)


# Chunk kernels: pairs p0..p1-1 of (xs[x_off[p]:x_off[p+1]], ys[...]).  One
# per path, so that a model on the fast path never compiles the general one.
# Every kernel transposes a pair with M > N (``*_t``: the transposed model),
# so the lattice rows run along the longer sequence: forward for O(min(N, M))
# memory; posterior and counts because per-row scaling needs the values of
# one row within the float range, which fails for a row of a short sequence
# against a much longer one (a 60-residue DNA exon against its 3,000-residue
# gene: the cells the path must reach at the end of a row sit ~1e-1000 below
# the row's largest, and the pair came out as probability 0).  ``kd`` and
# ``kd_t`` are the state kinds of both orientations and ``ti``, ``ti_t``
# their tilt information (see "Column tilt"); each kernel calls its pair
# routine from one call site (a second one doubled the compile time).


@numba.njit(cache=True, nogil=True)
def _fwd_chunk_fast(slots, slots_t, kd, kd_t, etab, start, trans, end,
                    match_odds, match_t, ins_odds, xs, x_off, ys, y_off, band,
                    p0, p1, out, ti, ti_t, check):
    trans_r = np.ascontiguousarray(trans.T)  # the reversed model's
    for p in range(p0, p1):
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        sl, k, mo, t = slots, kd, match_odds, ti
        if y.shape[0] > x.shape[0]:
            sl, k, mo, t = slots_t, kd_t, match_t, ti_t
            x, y = y, x
        M = y.shape[0]
        # a second, reversed pass checks pairs with enough columns to lose
        # mass (see _LOSS_FLOOR)
        two = check and M * t[t.shape[0] - 2] > _LOSS_FLOOR
        xr = x[::-1].copy() if two else x[:0].copy()
        yr = y[::-1].copy() if two else y[:0].copy()
        g0 = _pair_tilt(k, etab, trans, mo, ins_odds, x, y, t)[0]
        tried = np.full(_LADDER, np.nan)
        gf = 1.0
        fin = False
        res = np.nan
        step = 0
        while True:
            step, g, gf = _ladder_tilt(step, g0, gf, tried, k, etab, trans,
                                       mo, ins_odds, x, y, t)
            if g != g:
                break  # every tilt tried
            et, mt, io = _tilted_or_not(g, k, etab, mo, ins_odds)
            zf = np.nan
            zr = np.nan
            for d in range(2 if two else 1):
                s0, t0, e0, u, v = start, trans, end, x, y
                if d == 1:
                    s0, t0, e0, u, v = end, trans_r, start, xr, yr
                z = _fast_score(sl, et, s0, t0, e0, mt, io, u, v, band)
                if d == 0:
                    zf = z
                else:
                    zr = z
            lz, ok = _two_passes(zf, zr, two)
            done, step, fin, res = _ladder_next(lz, ok, g, step, fin, M)
            if done:
                break
        out[p] = res


@numba.njit(cache=True, nogil=True)
def _fwd_chunk_gen(kind, kind_t, kd, kd_t, etab, start, trans, end,
                   match_odds, match_t, ins_odds, xs, x_off, ys, y_off, band,
                   p0, p1, out, ti, ti_t, check):
    trans_r = np.ascontiguousarray(trans.T)  # the reversed model's
    S = kind.shape[0]
    for p in range(p0, p1):
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        k, mo, t = kind, match_odds, ti
        if y.shape[0] > x.shape[0]:
            k, mo, t = kind_t, match_t, ti_t
            x, y = y, x
        M = y.shape[0]
        # a second, reversed pass checks pairs with enough columns to lose
        # mass (see _LOSS_FLOOR)
        two = check and M * t[t.shape[0] - 2] > _LOSS_FLOOR
        xr = x[::-1].copy() if two else x[:0].copy()
        yr = y[::-1].copy() if two else y[:0].copy()
        g0 = _pair_tilt(k, etab, trans, mo, ins_odds, x, y, t)[0]
        tried = np.full(_LADDER, np.nan)
        gf = 1.0
        fin = False
        res = np.nan
        step = 0
        while True:
            step, g, gf = _ladder_tilt(step, g0, gf, tried, k, etab, trans,
                                       mo, ins_odds, x, y, t)
            if g != g:
                break  # every tilt tried
            et, mt, io = _tilted_or_not(g, k, etab, mo, ins_odds)
            zf = np.nan
            zr = np.nan
            for d in range(2 if two else 1):
                s0, t0, e0, u, v = start, trans, end, x, y
                if d == 1:
                    s0, t0, e0, u, v = end, trans_r, start, xr, yr
                z = _gen_forward(k, et, s0, t0, e0, mt, io, u, v, band,
                                 np.full(S, -1, np.int64),
                                 np.zeros((0, 1, 1)), np.zeros(0),
                                 np.zeros(0), np.int64(1),
                                 np.zeros((0, S, 1)))
                if d == 0:
                    zf = z
                else:
                    zr = z
            lz, ok = _two_passes(zf, zr, two)
            done, step, fin, res = _ladder_next(lz, ok, g, step, fin, M)
            if done:
                break
        out[p] = res


@numba.njit(cache=True, nogil=True)
def _add_transposed(acc, tmp):
    """acc[t, a, b] += tmp[t, b, a]: match counts of a transposed pair."""
    for t in range(acc.shape[0]):
        for a in range(acc.shape[1]):
            for b in range(acc.shape[2]):
                acc[t, a, b] += tmp[t, b, a]


@numba.njit(cache=True, nogil=True)
def _fold_ins(n_ins, tmp):
    """n_ins += rows 0..n_i-1 of tmp plus rows n_i..2n_i-1 (tilted states)."""
    n_i = n_ins.shape[0]
    for t in range(n_i):
        for a in range(n_ins.shape[1]):
            n_ins[t, a] += tmp[t, a] + tmp[n_i + t, a]


@numba.njit(cache=True, nogil=True)
def _ec_chunk_fast(slots, slots_t, kd, kd_t, etab, start, trans, end,
                   match_odds, match_t, ins_odds, xs, x_off, ys, y_off, band,
                   p0, p1, out, n_start, n_trans, n_end, n_match, n_ins, ti,
                   ti_t):
    tmp = np.zeros_like(n_match)
    for p in range(p0, p1):
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        sl, k, mo, t, nm = slots, kd, match_odds, ti, n_match
        flip = y.shape[0] > x.shape[0]
        if flip:
            sl, k, mo, t, nm = slots_t, kd_t, match_t, ti_t, tmp
            x, y = y, x
            tmp[:] = 0.0
        M = y.shape[0]
        g0 = _pair_tilt(k, etab, trans, mo, ins_odds, x, y, t)[0]
        tried = np.full(_LADDER, np.nan)
        gf = 1.0
        fin = False
        res = np.nan
        step = 0
        while True:
            step, g, gf = _ladder_tilt(step, g0, gf, tried, k, etab, trans,
                                       mo, ins_odds, x, y, t)
            if g != g:
                break  # every tilt tried
            et, mt, io = _tilted_or_not(g, k, etab, mo, ins_odds)
            # a tilted pass counts its insert-y states in a doubled table
            ni = n_ins if g == 1.0 else np.zeros(io.shape)
            # nothing is added for a pair that comes out -inf or NaN (its
            # forward was finite, but the counts failed their checks)
            lz = _fast_counts(sl, et, start, trans, end, mt, io, x, y, band,
                              n_start, n_trans, n_end, nm, ni,
                              np.int64(_FULL_STORE))
            ok = math.isfinite(lz)
            if ok and g != 1.0:
                _fold_ins(n_ins, ni)
            done, step, fin, res = _ladder_next(lz, ok, g, step, fin, M)
            if done:
                break
        if flip:
            _add_transposed(n_match, tmp)
        out[p] = res


@numba.njit(cache=True, nogil=True)
def _ec_chunk_gen(kind, kind_t, kd, kd_t, etab, start, trans, end,
                  match_odds, match_t, ins_odds, xs, x_off, ys, y_off, band,
                  p0, p1, out, n_start, n_trans, n_end, n_match, n_ins, ti,
                  ti_t):
    tmp = np.zeros_like(n_match)
    for p in range(p0, p1):
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        k, mo, t, nm = kind, match_odds, ti, n_match
        flip = y.shape[0] > x.shape[0]
        if flip:
            k, mo, t, nm = kind_t, match_t, ti_t, tmp
            x, y = y, x
            tmp[:] = 0.0
        M = y.shape[0]
        g0 = _pair_tilt(k, etab, trans, mo, ins_odds, x, y, t)[0]
        tried = np.full(_LADDER, np.nan)
        gf = 1.0
        fin = False
        res = np.nan
        step = 0
        while True:
            step, g, gf = _ladder_tilt(step, g0, gf, tried, k, etab, trans,
                                       mo, ins_odds, x, y, t)
            if g != g:
                break  # every tilt tried
            et, mt, io = _tilted_or_not(g, k, etab, mo, ins_odds)
            # a tilted pass counts its insert-y states in a doubled table
            ni = n_ins if g == 1.0 else np.zeros(io.shape)
            # nothing is added for a pair that comes out -inf or NaN (its
            # forward was finite, but the counts failed their checks)
            lz = _gen_counts(k, et, start, trans, end, mt, io, x, y,
                             n_start, n_trans, n_end, nm, ni, band)
            ok = math.isfinite(lz)
            if ok and g != 1.0:
                _fold_ins(n_ins, ni)
            done, step, fin, res = _ladder_next(lz, ok, g, step, fin, M)
            if done:
                break
        if flip:
            _add_transposed(n_match, tmp)
        out[p] = res


def _reaching(trans, seed):
    """The states that can reach a state of ``seed`` (bool mask, seed
    included) through positive transitions."""
    seen = seed.copy()
    while True:
        more = seen | ((trans[:, seen] > 0.0).any(axis=1) if seen.any()
                       else seen)
        if (more == seen).all():
            return seen
        seen = more


def _path_costs(trans):
    """D[r, s]: the cost (sum of -log transitions, in nats) of the cheapest
    path of one step or more from state r to state s; inf where none."""
    D = np.where(trans > 0.0, -np.log(np.where(trans > 0.0, trans, 1.0)),
                 np.inf)
    for k in range(trans.shape[0]):
        D = np.minimum(D, D[:, k:k + 1] + D[k:k + 1, :])
    return D


def _cyclic_groups(D, used):
    """The number of strongly connected groups of ``used`` states that hold
    a cycle (``D`` from :func:`_path_costs`)."""
    R = np.isfinite(D)
    both = R & R.T
    return len({tuple(both[s]) for s in range(D.shape[0])
                if used[s] and R[s, s]})


# the most one state may pay to feed another (its cheapest path, in nats)
# before _one_way counts them as cut off from each other: review23 built a
# single group whose insert states switch only through links of 1e-140
# (a switch of ~640 nats) that lost 1298 nats in one unchecked pass; links
# of 1e-14 and up were exact over 16,000 fuzzed pairs
_FEED_NATS = 100.0


def _feed_cost(D, used):
    """The largest cost of the cheapest path from one ``used`` state to
    another it can reach (0 if none; ``D`` from :func:`_path_costs`)."""
    sub = D[np.ix_(used, used)]
    return float(np.max(sub[np.isfinite(sub)], initial=0.0))


# beyond this feeding cost (see _feed_cost) even the checked passes can
# lose the same lineage and agree: review23's links of 1e-140 to 1e-250
# left forward 435-1180 nats low with every pair checked; such a model's
# forward runs in log space (at links of 1e-135, 620 nats a switch, one
# unchecked pass was still exact)
_LOG_FEED_NATS = 300.0


@functools.lru_cache(maxsize=16)
def _log_only_cached(trans_bytes, S):
    trans = np.frombuffer(trans_bytes, np.float64).reshape(S, S)
    return (_feed_cost(_path_costs(trans), (trans > 0.0).any(axis=0))
            > _LOG_FEED_NATS)


def _log_only(trans):
    """Whether the model's forward, posteriors and expected counts run in
    log space for every pair: some state feeds another only at a cost
    above ``_LOG_FEED_NATS`` (review23: there the posterior and counts
    lost the lineage too, their sums intact)."""
    trans = np.ascontiguousarray(trans, np.float64)
    return _log_only_cached(trans.tobytes(), trans.shape[0])


@numba.njit(cache=True)
def _state_costs(kind, etab, match_odds, ins_odds, rows, cols, flip):
    """What each state pays to emit on the worst row (-log odds, at least
    0; inf where it cannot emit there), for a pair whose row letters are
    ``rows`` and column letters ``cols`` (bool masks over the alphabet),
    oriented as the kernels orient it (``flip``: the pair is transposed,
    insert-x and insert-y exchanged, the match tables read (b, a)): a match
    state its best odds against the columns' letters on the worst row
    letter; an insert-x state its odds of the worst row letter; an insert-y
    state its best odds over the columns' letters."""
    S = kind.shape[0]
    A = ins_odds.shape[1]
    w = np.zeros(S)
    for s in range(S):
        k = kind[s]
        if flip and k != 0:
            k = 3 - k
        e = etab[s]
        worst = 0.0
        if k == 0:
            for a in range(A):
                if not rows[a]:
                    continue
                pick = 0.0
                for b in range(A):
                    if cols[b]:
                        o = match_odds[e, b, a] if flip else match_odds[e, a, b]
                        pick = max(pick, o)
                worst = max(worst, -math.log(pick) if pick > 0.0 else np.inf)
        elif k == 1:
            for a in range(A):
                if rows[a]:
                    o = ins_odds[e, a]
                    worst = max(worst, -math.log(o) if o > 0.0 else np.inf)
        else:
            pick = 0.0
            for b in range(A):
                if cols[b]:
                    pick = max(pick, ins_odds[e, b])
            worst = max(worst, -math.log(pick) if pick > 0.0 else np.inf)
        w[s] = worst
    return w


@numba.njit(cache=True)
def _emitting_feed(trans, w):
    """:func:`_feed_cost` with every state a path passes through charged
    ``w`` as well: the largest cost of the cheapest such path from one
    used state to another it reaches by transitions (inf where every path
    crosses a state that cannot emit)."""
    S = trans.shape[0]
    T = np.full((S, S), np.inf)
    for r in range(S):
        for s in range(S):
            if trans[r, s] > 0.0:
                T[r, s] = -math.log(trans[r, s])
    D = T.copy()
    for k in range(S):
        for r in range(S):
            for s in range(S):
                T[r, s] = min(T[r, s], T[r, k] + T[k, s])
                D[r, s] = min(D[r, s], D[r, k] + w[k] + D[k, s])
    used = np.zeros(S, np.bool_)
    for r in range(S):
        for s in range(S):
            if trans[r, s] > 0.0:
                used[s] = True
    feed = 0.0
    for r in range(S):
        for s in range(S):
            if used[r] and used[s] and T[r, s] < np.inf:
                feed = max(feed, D[r, s])
    return feed


@numba.njit(cache=True)
def _letter_cuts(kind, etab, trans, match_odds, ins_odds, xs, x_off, ys,
                 y_off, limit):
    """Per pair: whether :func:`_emitting_feed` with the pair's letters
    (:func:`_state_costs`) exceeds ``limit``."""
    n = x_off.shape[0] - 1
    A = ins_odds.shape[1]
    out = np.zeros(n, np.bool_)
    for p in range(n):
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        flip = y.shape[0] > x.shape[0]
        u, v = (y, x) if flip else (x, y)
        rows = np.zeros(A, np.bool_)
        cols = np.zeros(A, np.bool_)
        for c in u:
            rows[c] = True
        for c in v:
            cols[c] = True
        w = _state_costs(kind, etab, match_odds, ins_odds, rows, cols, flip)
        out[p] = _emitting_feed(trans, w) > limit
    return out


def _cut_limit(kind, etab, trans, mo, io):
    """The feeding limit of :func:`_cut_pairs`'s first rule, or inf where no
    pair of any letters can reach it."""
    S = trans.shape[0]
    limit = (_LOG_FEED_NATS
             if _feed_cost(_path_costs(trans), (trans > 0.0).any(axis=0))
             > _FEED_NATS else _FEED_NATS)
    # over every pair of letters, each state's worst emission is the
    # smallest entry of its table (a bound on what _state_costs gives for
    # any pair, in either orientation)
    low = np.array([float(np.min(mo[etab[s]] if kind[s] == 0 else io[etab[s]]))
                    for s in range(S)])
    w = np.full(S, np.inf)
    w[low > 0.0] = np.maximum(0.0, -np.log(low[low > 0.0]))
    # (the Python version of the kernel: a model that cannot cut any pair,
    # the presets among them, loads no kernel for this; under
    # NUMBA_DISABLE_JIT it is Python already)
    bound = getattr(_emitting_feed, "py_func", _emitting_feed)(trans, w)
    return limit if bound > limit else math.inf


def _column_free_groups(kind, trans):
    """(the live insert-x states (as oriented), their transitions among
    themselves, the cheapest-path costs of those, the groups): a group is a
    set of insert-x states that reach each other through insert-x ->
    insert-x transitions (a self-loop counts), as tuples of indices into
    the first array."""
    xs = np.flatnonzero((kind == 1) & (trans > 0.0).any(axis=0))
    T = trans[np.ix_(xs, xs)]
    D = _path_costs(T)
    R = np.isfinite(D)
    both = R & R.T
    groups = sorted({tuple(np.flatnonzero(both[i])) for i in range(xs.size)
                     if R[i, i]})
    return xs, T, D, groups


def _insert_groups(kind, etab, trans, ins_odds):
    """Letter drifts between insert-x groups that only a column can link,
    for ``kind`` as oriented: an (n, A) array, one row per ordered pair of
    groups (w, l) whose per-row growth order reverses from letter to
    letter.  A group is a set of insert-x states that reach each other
    through insert-x -> insert-x transitions (a self-loop counts); its
    growth on a row of letter a is the spectral radius of its transitions
    times the odds of a.  Cells of one column feed each other only through
    insert-x transitions (anything else takes a column), so where w cannot
    feed l that way within ``_FEED_NATS``, a block of rows on which w grows
    faster can leave l's lineage flushed at that column, with nothing there
    to bring it back before a block on which it would win; row d[a] is
    log rate(w, a) - log rate(l, a)."""
    A = ins_odds.shape[1]
    xs, T, D, groups = _column_free_groups(kind, trans)
    if xs.size < 2:
        return np.zeros((0, A))
    rates = np.empty((len(groups), A))
    for g, mem in enumerate(groups):
        mem = list(mem)
        Tg = T[np.ix_(mem, mem)]
        for a in range(A):
            odds = ins_odds[etab[xs[mem]], a]
            rho = float(np.max(np.abs(np.linalg.eigvals(Tg * odds[None, :]))))
            rates[g, a] = math.log(rho) if rho > 0.0 else -745.0
    out = []
    for w, l in _column_only_pairs(D, groups):
        d = np.clip(rates[w] - rates[l], -745.0, 745.0)
        if d.max() > 1e-12 and d.min() < -1e-12:
            out.append(d)
    return np.array(out).reshape(-1, A)


def _column_only_pairs(D, groups):
    """The ordered pairs (w, l) of distinct groups of
    :func:`_column_free_groups` where w cannot feed l through insert-x
    transitions within ``_FEED_NATS`` (only a column links them)."""
    return [(w, l) for w in range(len(groups)) for l in range(len(groups))
            if w != l and np.min(D[np.ix_(groups[w], groups[l])]) > _FEED_NATS]


@numba.njit(cache=True)
def _drift_peak(d, u):
    """:func:`_rise_fall` of the running sum of ``d`` over the letters
    ``u``."""
    n = u.shape[0]
    S = np.zeros(n + 1)
    for i in range(n):
        S[i + 1] = S[i] + d[u[i]]
    return _rise_fall(S)


@numba.njit(cache=True)
def _rise_fall(S):
    """The largest amount by which the series S rises and then falls back
    (max over k of the lesser of S_k minus the lowest S before it and S_k
    minus the lowest after it), or falls and then rises back (the same for
    -S): how far one lineage falls behind another and then would catch up
    again, for S the running log ratio of their growth."""
    n = S.shape[0] - 1
    lo_after = np.empty(n + 1)
    hi_after = np.empty(n + 1)
    lo_after[n] = S[n]
    hi_after[n] = S[n]
    for k in range(n - 1, -1, -1):
        lo_after[k] = min(S[k], lo_after[k + 1])
        hi_after[k] = max(S[k], hi_after[k + 1])
    best = 0.0
    lo = S[0]
    hi = S[0]
    for k in range(n + 1):
        lo = min(lo, S[k])
        hi = max(hi, S[k])
        best = max(best, min(S[k] - lo, S[k] - lo_after[k]),
                   min(hi - S[k], hi_after[k] - S[k]))
    return best


def _group_tables(kind, etab, trans, ins_odds):
    """The insert-x groups of :func:`_insert_groups` as padded tables for
    :func:`_group_cuts`, with the ordered pairs (w, l) that only a column
    can link and of which at least one group has more than one state:
    (T (G, g, g), odds (G, g, A), sizes (G,), pairs (P, 2)).  Such a
    group's growth on mixed letters is not the product of its per-letter
    spectral radii (review27: members that switch at 1e-5 grew 3.5 nats a
    row slower on alternating letters than those radii say; a 3737 x 1
    pair ran 151 nats low with both checked passes agreeing)."""
    A = ins_odds.shape[1]
    empty = (np.zeros((0, 1, 1)), np.zeros((0, 1, A)), np.zeros(0, np.int64),
             np.zeros((0, 2), np.int64))
    xs, T, D, groups = _column_free_groups(kind, trans)
    if xs.size < 2:
        return empty
    pairs = [(w, l) for w, l in _column_only_pairs(D, groups)
             if max(len(groups[w]), len(groups[l])) > 1]
    if not pairs:
        return empty
    g = max(len(m) for m in groups)
    Tg = np.zeros((len(groups), g, g))
    Og = np.zeros((len(groups), g, A))
    sizes = np.array([len(m) for m in groups], np.int64)
    for k, mem in enumerate(groups):
        mem = list(mem)
        Tg[k, :len(mem), :len(mem)] = T[np.ix_(mem, mem)]
        Og[k, :len(mem)] = ins_odds[etab[xs[mem]]]
    return Tg, Og, sizes, np.array(pairs, np.int64)


@numba.njit(cache=True)
def _group_growth(T, odds, size, u):
    """S[i]: the log growth of a group over rows 1..i of letters ``u``
    (its state vector, uniform at first, times its transitions and the
    row's odds, renormalised each row)."""
    n = u.shape[0]
    S = np.zeros(n + 1)
    v = np.full(size, 1.0 / size)
    w = np.empty(size)
    for i in range(n):
        a = u[i]
        s = 0.0
        for c in range(size):
            acc = 0.0
            for r in range(size):
                acc += v[r] * T[r, c]
            w[c] = acc * odds[c, a]
            s += w[c]
        if not s > 0.0:
            for k in range(i + 1, n + 1):
                S[k] = S[i] - 745.0 * (k - i)
            return S
        S[i + 1] = S[i] + math.log(s)
        for c in range(size):
            v[c] = w[c] / s
    return S


@numba.njit(cache=True)
def _group_cuts(tabs, tabs_t, xs, x_off, ys, y_off, limit, out):
    """Marks in ``out`` the pairs whose row letters drive some pair of the
    groups of :func:`_group_tables` (``tabs_t`` for pairs computed
    transposed) apart and back by more than ``limit`` nats."""
    for p in range(x_off.shape[0] - 1):
        if out[p]:
            continue
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        Tg, Og, sizes, pairs = tabs_t if y.shape[0] > x.shape[0] else tabs
        u = y if y.shape[0] > x.shape[0] else x
        if pairs.shape[0] == 0:
            continue
        grow = np.empty((sizes.shape[0], u.shape[0] + 1))
        for k in range(sizes.shape[0]):
            grow[k] = _group_growth(Tg[k], Og[k], sizes[k], u)
        for q in range(pairs.shape[0]):
            if _rise_fall(grow[pairs[q, 0]] - grow[pairs[q, 1]]) > limit:
                out[p] = True
                break


@numba.njit(cache=True)
def _palindromes(xs, x_off, ys, y_off):
    """Per pair: whether both sequences read the same backwards (then the
    reversed pass of a model that is its own reverse sums the same cells
    in the same order as the forward one, and their agreement checks
    nothing)."""
    n = x_off.shape[0] - 1
    out = np.zeros(n, np.bool_)
    for p in range(n):
        same = True
        for s, off in ((xs, x_off), (ys, y_off)):
            a = off[p]
            b = off[p + 1] - 1
            while same and a < b:
                same = s[a] == s[b]
                a += 1
                b -= 1
        out[p] = same
    return out


@numba.njit(cache=True)
def _drift_cuts(tab, tab_t, xs, x_off, ys, y_off, limit, out):
    """Marks in ``out`` the pairs whose row letters drive some pair of
    insert-x groups (:func:`_insert_groups`; ``tab_t`` for pairs computed
    transposed) apart and back by more than ``limit`` nats."""
    for p in range(x_off.shape[0] - 1):
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        t, u = (tab_t, y) if y.shape[0] > x.shape[0] else (tab, x)
        for q in range(t.shape[0]):
            if _drift_peak(t[q], u) > limit:
                out[p] = True
                break


# the tilt a pair may need is found in [-_TILT_RANGE, ...] nats a column
# (_top, _centred_tilt); review26: a model whose insert-x lineage pays
# (run + 1) loop costs a column beyond it (loops of 1.9e-12 and 1.7e-33)
# got the edge tilt, at which the two passes of a palindromic or
# homopolymer pair agreed 2.5 and 90 nats low
_TILT_RANGE = 30.0


@functools.lru_cache(maxsize=16)
def _log_rules_cached(kind_bytes, etab_bytes, trans_bytes, match_bytes,
                      ins_bytes, S, A):
    """The model's per-pair log-space rules (see :func:`_cut_pairs`): the
    feeding limit (inf: no pair can reach it), the insert-group drift
    tables as oriented and transposed, and, per orientation, the column
    bound c if the insert-x loops need a tilt beyond ``_TILT_RANGE`` (else
    inf)."""
    kind = np.frombuffer(kind_bytes, np.int64)
    etab = np.frombuffer(etab_bytes, np.int64)
    trans = np.frombuffer(trans_bytes, np.float64).reshape(S, S)
    mo = np.frombuffer(match_bytes, np.float64).reshape(-1, A, A)
    io = np.frombuffer(ins_bytes, np.float64).reshape(-1, A)
    limit = _cut_limit(kind, etab, trans, mo, io)
    tabs = []
    groups = []
    steep = []
    for flip in (False, True):
        k, m = _transpose_model(kind.copy(), mo) if flip else (kind, mo)
        tabs.append(np.ascontiguousarray(_insert_groups(k, etab, trans, io)))
        groups.append(_group_tables(k, etab, trans, io))
        loops = np.diag(trans)[(k == 1) & (np.diag(trans) > 0.0)]
        run = _insert_run(k, trans)
        need = ((run + 1) * float(np.max(-np.log(loops), initial=0.0))
                if run >= 0 else math.inf)
        steep.append(_oriented_bound(k, etab, trans, m, io)
                     if need > _TILT_RANGE else math.inf)
    return (limit, tabs[0], tabs[1], steep[0], steep[1], groups[0],
            groups[1])


def _oriented_bound(kind, etab, trans, match_odds, ins_odds):
    """:func:`_column_bound` of the model as oriented by ``kind``."""
    return _column_bound(
        np.ascontiguousarray(kind, np.int64).tobytes(),
        np.ascontiguousarray(etab, np.int64).tobytes(),
        np.ascontiguousarray(trans, np.float64).tobytes(),
        np.ascontiguousarray(match_odds, np.float64).tobytes(),
        np.ascontiguousarray(ins_odds, np.float64).tobytes(),
        trans.shape[0], ins_odds.shape[1])


def _cut_pairs(kind, etab, trans, match_odds, ins_odds, xs, x_off, ys,
               y_off, ends=None):
    """Which pairs of a batch run in log space for rules that read the
    pair's letters (None: no pair of this model can; the global presets
    and the DNA local presets, whose insert odds are the same everywhere
    and whose odds are far from 0, pay nothing per pair).  Three rules,
    each from a review that found scaled results far off with no check
    failing:

    - feeding across letters: a state can feed another only through the
      states between them, and those must emit: a match state whose odds
      against every letter of y are 0 (or tiny) for a letter of x cuts the
      path through it on that letter's rows (review24: one group whose
      A-rich and C-rich insert-x states switch only through match, under a
      match table with no A/C : G/T pairs, ran G A^160 C^400 A^160 G
      against TT 366 nats low in every entry point; with those odds at
      1e-280, 373 low).  The cost is :func:`_feed_cost`'s with each state
      on the way charged its emission on the pair's worst row
      (:func:`_state_costs`); beyond ``_FEED_NATS`` (``_LOG_FEED_NATS``
      for a model already checked on every pair for its transitions) the
      pair runs in log space.  The letters of the whole pair are read, not
      those of each row's band;
    - insert groups that drift apart and back (:func:`_insert_groups`,
      :func:`_drift_peak`): more than ``_FEED_NATS`` (review26: the protein
      local preset ran W^600, 600 A/L/G residues, their reverse, W^600
      against MKVVKM 52 nats low, both checked passes losing the same
      lineage; a one-group DNA model with A-rich and C-rich insert states
      370 nats);
    - insert-x loops too costly for the tilt range (``_TILT_RANGE``): a pair
      with M c above ``_LOSS_FLOOR`` under such a model;
    - groups of several insert-x states, whose growth on mixed letters is
      not their per-letter rates' (:func:`_group_tables`,
      :func:`_group_growth`), driven apart and back by more than
      ``_FEED_NATS``;
    - with ``ends`` = (start, end) given: a checked pair (M c above
      ``_LOSS_FLOOR``) of two palindromes under a model that is its own
      reverse (:func:`_own_reverse`).
    """
    A = ins_odds.shape[1]
    kind = np.ascontiguousarray(kind, np.int64)
    etab = np.ascontiguousarray(etab, np.int64)
    trans = np.ascontiguousarray(trans, np.float64)
    mo = np.ascontiguousarray(match_odds, np.float64)
    io = np.ascontiguousarray(ins_odds, np.float64)
    limit, tab, tab_t, c, c_t, grp, grp_t = _log_rules_cached(
        kind.tobytes(), etab.tobytes(), trans.tobytes(), mo.tobytes(),
        io.tobytes(), trans.shape[0], A)
    mirror = ends is not None and _own_reverse(trans, *ends)
    if (limit == math.inf and tab.shape[0] == 0 and tab_t.shape[0] == 0
            and c == math.inf and c_t == math.inf and grp[3].shape[0] == 0
            and grp_t[3].shape[0] == 0 and not mirror):
        return None
    n = x_off.shape[0] - 1
    if limit < math.inf:
        out = _letter_cuts(kind, etab, trans, mo, io, xs, x_off, ys, y_off,
                           limit)
    else:
        out = np.zeros(n, np.bool_)
    if tab.shape[0] or tab_t.shape[0]:
        _drift_cuts(tab, tab_t, xs, x_off, ys, y_off, _FEED_NATS, out)
    if grp[3].shape[0] or grp_t[3].shape[0]:
        _group_cuts(grp, grp_t, xs, x_off, ys, y_off, _FEED_NATS, out)
    nx, ny = np.diff(x_off), np.diff(y_off)
    if c < math.inf or c_t < math.inf:
        out |= _columns_times(nx, ny, c, c_t) > _LOSS_FLOOR
    if mirror:
        # a checked pair whose check checks nothing
        kt, mt = _transpose_model(kind, mo)
        bound = _oriented_bound(kind, etab, trans, mo, io)
        bound_t = _oriented_bound(kt, etab, trans, mt, io)
        out |= ((_columns_times(nx, ny, bound, bound_t) > _LOSS_FLOOR)
                & _palindromes(xs, x_off, ys, y_off))
    return out


def _columns_times(nx, ny, per, per_t):
    """Per pair: its columns (the shorter side) times ``per``, or ``per_t``
    where it is computed transposed; 0 for an empty pair (not 0 * inf)."""
    cols = np.minimum(nx, ny)
    rate = np.where(ny > nx, per_t, per)
    out = np.zeros(cols.shape)
    has = cols > 0
    out[has] = cols[has] * rate[has]
    return out


def _own_reverse(trans, start, end):
    """Whether the model is its own reverse (transitions symmetric, End
    proportional to Begin): its reversed pass over a palindromic pair then
    repeats the forward pass (review27: such pairs lost 0.003-0.05 nats
    with both passes agreeing)."""
    if not np.array_equal(trans, trans.T):
        return False
    k = float(np.sum(end)) / float(np.sum(start)) if np.sum(start) > 0 else 0.0
    return bool(np.allclose(end, k * start, rtol=1e-12, atol=0.0))


def _pair_cut(kind, etab, trans, match_odds, ins_odds, x, y, ends=None):
    """:func:`_cut_pairs` of one pair."""
    xo, yo, _ = _one_pair(x, y)
    cut = _cut_pairs(kind, etab, trans, match_odds, ins_odds, x, xo, y, yo,
                     ends)
    return cut is not None and bool(cut[0])


def _one_way(kind, etab, trans, ins_odds):
    """Whether rows of this model can drift apart by an amount per row that
    no column count bounds (then every pair is checked, see
    :func:`_column_bound`); ``kind`` as oriented (insert-x, kind 1,
    consumes rows), states without an incoming transition (cut by
    :func:`_live`) left out:

    - an insert-x state that cannot reach a state consuming a column
      (match or insert-y): its cells hold no path except on the last
      column, yet they sit in every row's sum and can outgrow the live
      cells by a fixed amount per row.  A review's constructed DNA model
      whose insert-x state could only loop (0.999, an A-rich emission at
      odds 3.9) or end ran a 460 x 20 pair of 200 A then 260 C, M c = 92,
      in one unchecked pass 362 nats low: through the A block those cells
      gained 4.6 nats a row on the live ones, which were flushed near row
      155;
    - states in more than one strongly connected group with a cycle (a
      local model's flanks and core) and insert-x states whose emission
      odds differ (then the order of two groups' rates per row can reverse
      from letter to letter: a flank that falls behind on one block of x
      is flushed and nothing feeds it back before the block where it
      wins; review22: two groups each at loop times odds 0.97, a 700 x 20
      pair of A, C, then A blocks, 845 nats low), or an insert-x cycle
      that can grow along its run (the spectral radius of the insert-x
      transitions, each weighted by its target's largest emission odds,
      above 1).  The protein local preset (core insert-x loop 0.86, odds up
      to 4.9) ran a 3000 x 100 pair of C, then A/L/G, then C residues 205
      nats low; a local DNA model fitted on A/T-rich inserts (loop 0.67,
      odds 1.95) 246 nats low (review21).  With the same odds everywhere
      (the DNA local presets: odds 1) two groups' rates per row keep their
      order, so the one behind never catches up but by matches, which a
      column count bounds.  A model of one group (the global presets)
      feeds every state from every other: the drift is bounded by the
      transitions between them, unless feeding costs more than
      ``_FEED_NATS`` (:func:`_feed_cost`: a state reaches another only
      through tiny transitions).  NaN or infinite parameters: True."""
    if not (np.isfinite(trans).all() and np.isfinite(ins_odds).all()):
        return True
    used = (trans > 0.0).any(axis=0)
    D = _path_costs(trans)
    if _feed_cost(D, used) > _FEED_NATS:
        return True
    cols = _reaching(trans, kind != 1)
    if np.any((kind == 1) & used & ~cols):
        return True
    xs = np.flatnonzero((kind == 1) & used)
    if xs.size == 0 or _cyclic_groups(D, used) < 2:
        return False
    rows = ins_odds[etab[xs]]
    if (rows != rows[0]).any():
        return True  # their order can reverse from letter to letter
    top = np.array([float(np.max(r)) for r in rows])
    K = trans[np.ix_(xs, xs)] * top[None, :]
    return float(np.max(np.abs(np.linalg.eigvals(K)))) > 1.0


@functools.lru_cache(maxsize=16)
def _column_bound(kind_bytes, etab_bytes, trans_bytes, match_bytes,
                  ins_bytes, S, A):
    """The bound ``c`` on how much one column can change a cell's log value
    relative to another's: the largest log self-loop probability in
    magnitude, plus the largest log odds, plus the smallest insert log odds
    in magnitude where it is below 1 (a review: an insert emission at odds
    0.2 left out of c let a 580 x 290 poly-A pair run unchecked and lose
    mass, up to 8 nats at 860 x 430), plus the largest insert-x loop cost
    once more for each insert-x state a row can pass through between two
    column steps (:func:`_insert_run`; infinite where they cycle without
    a self-loop) -- a pair of M columns with M c <=
    _LOSS_FLOOR is not tilted and its forward is one unchecked pass;
    infinite (every pair checked) for a model whose rows can drift apart
    per row (:func:`_one_way`); cached
    by model (numpy's reductions on small arrays took 60 us a call)."""
    kind = np.frombuffer(kind_bytes, np.int64)
    etab = np.frombuffer(etab_bytes, np.int64)
    trans = np.frombuffer(trans_bytes, np.float64).reshape(S, S)
    match_odds = np.frombuffer(match_bytes, np.float64)
    ins_odds = np.frombuffer(ins_bytes, np.float64)
    if _one_way(kind, etab, trans, ins_odds.reshape(-1, A)):
        return math.inf
    run = _insert_run(kind, trans)
    if run < 0:
        return math.inf
    loops = np.diag(trans)
    xl = loops[(kind == 1) & (loops > 0.0)]
    loops = loops[loops > 0.0]
    top = max(float(np.max(match_odds, initial=1.0)),
              float(np.max(ins_odds, initial=1.0)))
    low = float(np.min(ins_odds[ins_odds > 0.0], initial=1.0))
    return ((float(np.max(-np.log(loops))) if loops.size else 0.0)
            + run * (float(np.max(-np.log(xl))) if xl.size else 0.0)
            + math.log(top) - math.log(min(low, 1.0)))


def _insert_run(kind, trans):
    """The most insert-x states (as oriented) a path can pass through in a
    row without a self-loop (the longest chain of insert-x -> insert-x
    transitions between distinct states, in states); -1 if they can cycle
    without a self-loop.  A lineage that takes such a run between two
    column steps goes ``run + 1`` rows per column, so a cell that waits
    near column 0 on insert-x self-loops falls behind the row's peak by up
    to ``run + 1`` loop costs per column of the peak: :func:`_column_bound`
    counts the largest insert-x loop cost ``run`` more times (review24: a
    3-state DNA model, insert-x loop 1e-8 and insert-x -> match -> insert-x
    near 1, ran a 330 x 29 pair with M c = 573 unchecked, 9.4 nats low;
    random models with M c between 388 and 587 lost 0.13-11 nats)."""
    xs = np.flatnonzero((kind == 1) & (trans > 0.0).any(axis=0))
    if xs.size == 0:
        return 0
    G = trans[np.ix_(xs, xs)] > 0.0
    np.fill_diagonal(G, False)
    longest = np.ones(xs.size, np.int64)  # the chain ending at each state
    for _ in range(xs.size):
        nxt = np.maximum(longest, np.max(np.where(G, longest[:, None] + 1, 1),
                                         axis=0))
        if (nxt == longest).all():
            return int(longest.max())
        longest = nxt
    return -1  # still growing after every state: a cycle


@functools.lru_cache(maxsize=16)
def _tilt_info_cached(kind_bytes, etab_bytes, trans_bytes, match_bytes,
                      ins_bytes, S, A, tilt_nats, table):
    kind = np.frombuffer(kind_bytes, np.int64)
    etab = np.frombuffer(etab_bytes, np.int64)
    trans = np.frombuffer(trans_bytes, np.float64).reshape(S, S)
    match_odds = np.frombuffer(match_bytes, np.float64)
    ins = np.frombuffer(ins_bytes, np.float64).reshape(-1, A)
    if table:
        t = tilt_model(kind, etab, trans, ins)
    else:
        t = np.full(4 + 3 * _N_GRID, np.nan)  # read by no pair: never tilted
    c = _column_bound(kind_bytes, etab_bytes, trans_bytes, match_bytes,
                      ins_bytes, S, A)
    return np.concatenate([t, [c, tilt_nats]])


def _tilt_info(kind, etab, trans, match_odds, ins_odds, tilt_nats,
               m_max=None):
    """:func:`tilt_model` of the model oriented by ``kind``, then the bound
    ``c`` of :func:`_column_bound`, then the threshold; cached by model (a
    few milliseconds to build).  ``m_max``: the longest shorter side of the
    pairs it serves (None: unknown); when even that many columns cannot
    lose enough to tilt (``m_max c <= _LOSS_FLOOR``, threshold above 0),
    the table is left NaN, not computed (an EM iteration over short pairs
    spent half its time building it): no pair's first pass reads it, and
    the ladder's forced tilt then comes out 1, so a short pair whose
    untilted pass fails (never seen) goes straight to log space."""
    kind = np.ascontiguousarray(kind, np.int64)
    etab = np.ascontiguousarray(etab, np.int64)
    trans = np.ascontiguousarray(trans, np.float64)
    match_odds = np.ascontiguousarray(match_odds, np.float64)
    ins = np.ascontiguousarray(ins_odds, np.float64)
    tb, mb, ib = trans.tobytes(), match_odds.tobytes(), ins.tobytes()
    S = trans.shape[0]
    table = (m_max is None or tilt_nats <= 0.0
             or m_max * _column_bound(kind.tobytes(), etab.tobytes(), tb,
                                      mb, ib, S, ins.shape[1])
             > _LOSS_FLOOR)
    return _tilt_info_cached(kind.tobytes(), etab.tobytes(), tb, mb, ib, S,
                             ins.shape[1], float(tilt_nats),
                             bool(table)).copy()


def _plan(kind, etab, trans, match_odds, ins_odds, transposed, tilt_nats,
          m_max=None):
    """The arguments that lead every chunk kernel: (path, its two model
    arguments, the kinds of both orientations, transposed match odds, tilt
    information of both orientations) with path "fast" or "gen"; the
    transposed model is built only if some pair needs it.  ``m_max``: the
    longest shorter side of the pairs (see :func:`_tilt_info`)."""
    kind = np.ascontiguousarray(kind, np.int64)
    slots = _fast_layout(kind, trans)
    if transposed:
        kt, mt = _transpose_model(kind, match_odds)
    else:
        kt, mt = kind, match_odds
    ti = _tilt_info(kind, etab, trans, match_odds, ins_odds, tilt_nats, m_max)
    ti_t = (_tilt_info(kt, etab, trans, mt, ins_odds, tilt_nats, m_max)
            if transposed else ti)
    if slots[0] >= 0:
        st = _fast_layout(kt, trans) if transposed else slots
        return "fast", slots, st, kind, kt, mt, ti, ti_t
    return "gen", kind, kt, kind, kt, mt, ti, ti_t


def _longest_short_side(x_off, y_off):
    """The largest min(N, M) over the pairs of a batch (0 if none)."""
    return int(np.minimum(np.diff(x_off), np.diff(y_off)).max(initial=0))


_FWD_CHUNK = {"fast": _fwd_chunk_fast, "gen": _fwd_chunk_gen}
_EC_CHUNK = {"fast": _ec_chunk_fast, "gen": _ec_chunk_gen}


def _lead(lead, etab, start, trans, end, match_odds):
    """The leading arguments of a chunk kernel from :func:`_plan`'s."""
    a, a_t, kd, kd_t, mt = lead[:5]
    return a, a_t, kd, kd_t, etab, start, trans, end, match_odds, mt


def _one_pair(x, y):
    return (np.array([0, x.shape[0]], np.int64),
            np.array([0, y.shape[0]], np.int64), np.empty(1))


def _emitting_paths(kind, start, trans, end):
    """Bool mask of the states on some Begin -> End path that emits at
    least one residue of each sequence (a match state, or an insert-x
    state and an insert-y state, somewhere along it).  Walks (state,
    emitted-so-far) pairs, the second a 2-bit set (1: x, 2: y): forward
    from Begin with what the path emitted up to and including the state,
    backward from End with what it emits after the state."""
    S = kind.shape[0]
    bits = np.where(kind == 0, 3, np.where(kind == 1, 1, 2))
    step = trans > 0.0
    fwd = np.zeros((S, 4), bool)
    for s in np.flatnonzero(start > 0.0):
        fwd[s, bits[s]] = True
    bwd = np.zeros((S, 4), bool)
    bwd[end > 0.0, 0] = True
    while True:
        nf = fwd.copy()
        nb = bwd.copy()
        for r, t in zip(*np.nonzero(step)):
            for f in range(4):
                if fwd[r, f]:
                    nf[t, f | bits[t]] = True
                if bwd[t, f]:
                    nb[r, f | bits[t]] = True
        if (nf == fwd).all() and (nb == bwd).all():
            break
        fwd = nf
        bwd = nb
    return np.array([any(fwd[s, f] and bwd[s, g] and (f | g) == 3
                         for f in range(4) for g in range(4))
                     for s in range(S)], bool)


@functools.lru_cache(maxsize=16)
def _live_cached(start_bytes, trans_bytes, end_bytes, kind_bytes, S, both):
    start = np.frombuffer(start_bytes, np.float64)
    trans = np.frombuffer(trans_bytes, np.float64).reshape(S, S)
    end = np.frombuffer(end_bytes, np.float64)
    if both:
        live = _emitting_paths(np.frombuffer(kind_bytes, np.int64), start,
                               trans, end)
    else:
        reach = _reaching(trans.T, start > 0.0)  # from Begin
        coreach = _reaching(trans, end > 0.0)  # to End
        live = reach & coreach
    if live.all():
        return None
    w = live.astype(np.float64)
    return start * w, trans * np.outer(w, w), end * w


def _live(start, trans, end, kind=None, both=False):
    """(start, trans, end) with the states that carry no path cut off
    (their transitions and start/end zeroed): states that Begin cannot
    reach or that cannot reach End, and, when ``both`` (every pair has
    residues on both sides), the states on no path that emits a residue
    of each sequence (``kind`` needed then).  Such a state carries no path,
    but its cells can hold mass: a 5-state model with its long-gap pair
    disabled (match -> X2, Y2 and Begin -> X2, Y2 zero, their self loops
    and End kept) has, in the backward direction, cells that loop in X2 /
    Y2 for ever, which grow to dominate each backward row of a 3000 x 64
    pair and pushed the live cells below the float range (posteriors
    summing to 32 instead of 64; found by review); an insert-x state
    entered from Begin that only loops to End did the same in the forward
    direction (review 28: forward and both checked passes 0.04 nats low,
    posteriors 0.01-2.2 nats low, on alternating or homopolymer pairs).
    Cutting them changes no probability.  The arrays are returned as given
    when every state is live."""
    start = np.ascontiguousarray(start, np.float64)
    trans = np.ascontiguousarray(trans, np.float64)
    end = np.ascontiguousarray(end, np.float64)
    kb = b""
    if both:
        kb = np.ascontiguousarray(kind, np.int64).tobytes()
    r = _live_cached(start.tobytes(), trans.tobytes(), end.tobytes(), kb,
                     trans.shape[0], bool(both))
    return (start, trans, end) if r is None else r


def _all_nonempty(x_off, y_off):
    """Whether every pair of a batch has residues on both sides."""
    return bool((np.diff(x_off) > 0).all() and (np.diff(y_off) > 0).all())


def _mixed_empty(x_off, y_off):
    """(pairs with residues on both sides, the others) of a batch that has
    both kinds, else None: such a batch runs as two, so that its ordinary
    pairs get :func:`_live`'s cut for pairs with residues on both sides
    (one empty pair in a batch had taken it from them: review 29)."""
    full = (np.diff(x_off) > 0) & (np.diff(y_off) > 0)
    if full.all() or not full.any():
        return None
    return np.flatnonzero(full), np.flatnonzero(~full)


def forward(kind, etab, start, trans, end, match_odds, ins_odds, x, y, band,
            tilt_nats=_TILT_NATS, check=True):
    """Log-odds likelihood of the pair (x, y); O(S * min(N, M)) memory.
    ``tilt_nats``: the estimated within-row gap above which the pair is
    computed with a column tilt (see ``_TILT_NATS``; inf: never).

    ``check``: a pair with enough columns to lose mass to the row scaling
    (``M c > _LOSS_FLOOR``, see :func:`_tilt_info`) is computed twice, the
    second time as the forward of the reversed model (start and end
    swapped, transitions transposed) over the reversed pair, which sums the
    same paths; where the two differ by more than ``_PASSES_AGREE``, one of
    them lost mass, and the pair is retried on the ladder of ``_LADDER``.
    A pair that fails every tilt, or that no pass found a path for (-inf:
    no path, or -- on a few fuzzed custom models -- every tilt lost every
    row), is computed in log space (:func:`pair_log.log_forward`, exact,
    60-100x slower than one scaled pass), which has the last word; so is
    every pair of a model whose states feed each other only through tiny
    transitions (:func:`_log_only`).
    ``check=False``: one scaled pass, as fast as the kernel goes,
    unchecked (a DNA tandem repeat of 3000 x 2000 came out 0.09 nats low,
    a protein period-5 repeat 0.8), with no fallback."""
    start, trans, end = _live(start, trans, end, kind,
                              x.shape[0] > 0 and y.shape[0] > 0)
    if check and (_log_only(trans) or _pair_cut(kind, etab, trans, match_odds,
                                                ins_odds, x, y, (start, end))):
        return _log_forward(kind, etab, start, trans, end, match_odds,
                            ins_odds, x, y, band)
    path, *lead = _plan(kind, etab, trans, match_odds, ins_odds,
                        y.shape[0] > x.shape[0], tilt_nats,
                        min(x.shape[0], y.shape[0]))
    xo, yo, out = _one_pair(x, y)
    with flush_subnormals():
        _FWD_CHUNK[path](*_lead(lead, etab, start, trans, end, match_odds),
                         ins_odds, x, xo, y, yo, band, 0, 1, out, *lead[-2:],
                         bool(check))
    lz = float(out[0])
    if check and _needs_log(lz, kind, etab, start, trans, end, match_odds,
                            ins_odds, x, y, band):
        lz = _log_forward(kind, etab, start, trans, end, match_odds, ins_odds,
                          x, y, band)
    return lz


# The log-space fallback (see pair_log): pairs oriented as the scaled
# kernels orient them (the longer sequence along the rows), so that its
# O(sqrt(N) M) memory is that of the shorter side; the lost pairs of a
# batch run on threads, their counts added in pair order.

def _oriented(kind, match_odds, x, y):
    """(kind, match odds, x, y, transposed) with x the longer sequence."""
    if y.shape[0] > x.shape[0]:
        kt, mt = _transpose_model(np.ascontiguousarray(kind, np.int64),
                                  match_odds)
        return kt, mt, y, x, True
    return kind, match_odds, x, y, False


def _log_forward(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                 band):
    k, mo, u, v, _ = _oriented(kind, match_odds, x, y)
    return float(_pl.log_forward(k, etab, start, trans, end, mo, ins_odds, u,
                                 v, band))


def _log_counts(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                band, n_start, n_trans, n_end, n_match, n_ins):
    """The log-space expected counts, added into ``n_*``; the log-odds."""
    k, mo, u, v, flip = _oriented(kind, match_odds, x, y)
    nm = np.zeros(n_match.shape) if flip else n_match
    lz = _pl.log_posterior_counts(k, etab, start, trans, end, mo, ins_odds, u,
                                  v, band, np.zeros((0, 0)), n_start, n_trans,
                                  n_end, nm, n_ins)
    if flip and math.isfinite(lz):
        _add_transposed(n_match, nm)
    return float(lz)


def _log_posterior(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                   band, frame=False):
    """(log-odds, P) in log space; with ``frame``, (log-odds, P as computed,
    whether it is transposed) as :func:`posterior` returns it."""
    k, mo, u, v, flip = _oriented(kind, match_odds, x, y)
    P = np.zeros((u.shape[0], v.shape[0]))
    lz = _pl.log_posterior_counts(k, etab, start, trans, end, mo, ins_odds, u,
                                  v, band, P, np.zeros(0), np.zeros((0, 0)),
                                  np.zeros(0), np.zeros((0, 0, 0)),
                                  np.zeros((0, 0)))
    if frame:
        return float(lz), P, bool(flip)
    if flip:
        Pt = np.empty((x.shape[0], y.shape[0]))
        _transpose_sums(P, Pt, np.empty(y.shape[0]))
        P = Pt
    return float(lz), P


def _needs_log(lz, kind, etab, start, trans, end, match_odds, ins_odds, x, y,
               band):
    """Whether a scaled result goes to log space: NaN (every tilt failed),
    or -inf for a pair that has a path after all (-inf without one is
    final: :func:`pair_log.has_path` decides, at a fraction of a log-space
    pass)."""
    if lz == -math.inf:
        return bool(_pl.has_path(kind, etab, start, trans, end, match_odds,
                                 ins_odds, x, y, band))
    return not math.isfinite(lz)


def posterior(kind, etab, start, trans, end, match_odds, ins_odds, x, y, band,
              tilt_nats=_TILT_NATS, frame=False):
    """Returns (log-odds, P) with P (N, M) the posterior probability that x_i
    is aligned to y_j (summed over match states).  A pair with M > N is
    computed transposed (see the chunk kernels) and P transposed back in
    32 x 32 tiles: a second N x M array while it is copied.  (numpy's
    ``ascontiguousarray(P.T)`` took as long as the posterior itself on a
    fresh 1000 x 1005 pair: a page per element.)  ``frame=True`` skips
    that copy: it returns (log-odds, Q, transposed) with ``Q`` the matrix
    as computed, ``P = Q.T`` where ``transposed``, else ``Q``, C-contiguous
    either way (the MEA of ``PairHMM.align`` runs on it directly, see
    :func:`pair_decode.mea`); its column sums are then checked as well.

    Each residue is aligned at most once, so no row or column of P may sum
    above 1.  A pair whose row scaling lost the alignment's cells makes
    some sum exceed 1 whenever the lost mass lowered the likelihood (the
    tilt's estimate missed it: long repeats embedded in other sequence,
    say); a posterior also fails the check when its two passes disagree
    (striped: the forward and the reversed forward; row kernels: the
    forward and the backward summed at Begin, which catches backward rows
    that lost the alignment's cells, leaving P near zero), and where its
    scale leaves the float range (NaN).  (The sums checked are those the
    kernels produce on the way: the rows of the computed orientation, and
    for a transposed pair the columns as well.)  A pair that fails is
    recomputed with the tilt forced, then with that tilt to the powers 2, 4,
    8 and 16 (further from 1: a DNA tandem repeat of 3000 x 2000 failed at
    its solved g = 0.815 and was exact at g <= 0.7), then untilted, skipping a
    tilt already tried.  A pair that still fails, or whose forward found no
    path (-inf) or left the float range (NaN), is computed in log space
    (:func:`pair_log.log_posterior_counts`: exact, far slower; -inf
    with P all zeros when there is no path)."""
    start, trans, end = _live(start, trans, end, kind,
                              x.shape[0] > 0 and y.shape[0] > 0)
    if _log_only(trans) or _pair_cut(kind, etab, trans, match_odds, ins_odds,
                                     x, y, (start, end)):
        return _log_posterior(kind, etab, start, trans, end, match_odds,
                              ins_odds, x, y, band, frame)
    # the rungs after a failed check; one whose tilt was tried is skipped
    rungs = ((tilt_nats, 1), (0.0, 1), (0.0, 2), (0.0, 4), (0.0, 8),
             (0.0, 16), (math.inf, 1))
    tried = []
    hold = []  # the last matrix computed (released before the next one)
    for tn, power in rungs:
        r = _posterior(kind, etab, start, trans, end, match_odds, ins_odds, x,
                       y, band, tn, power, tried, hold, frame)
        if r is None:
            continue
        logz, ok, g0 = r
        if ok and math.isfinite(logz):
            if frame:
                return logz, hold[0], y.shape[0] > x.shape[0]
            return logz, hold[0]
        if not math.isfinite(logz):
            break  # -inf or NaN: no tilt will do better than log space
        tried.append(g0)
    hold.clear()
    if logz == -math.inf and not _needs_log(logz, kind, etab, start, trans,
                                            end, match_odds, ins_odds, x, y,
                                            band):
        P = np.zeros((x.shape[0], y.shape[0]))  # no path
        return (logz, P, False) if frame else (logz, P)
    return _log_posterior(kind, etab, start, trans, end, match_odds, ins_odds,
                          x, y, band, frame)


def _posterior(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
               band, tilt_nats, power, skip, hold, frame=False):
    """(log-odds, whether P passed the checks, the tilt tried) with P put
    in ``hold`` (emptied first, so that the previous matrix is released
    before this one is allocated); the tilt solved for the pair is raised
    to ``power``; None, computing nothing, if that tilt is in ``skip``.
    ``frame``: a transposed pair's P is left as computed (see
    :func:`posterior`)."""
    transposed = y.shape[0] > x.shape[0]
    path, a, a_t, kd, kd_t, mt, ti, ti_t = _plan(
        kind, etab, trans, match_odds, ins_odds, transposed, tilt_nats,
        min(x.shape[0], y.shape[0]))
    if transposed:
        a, kd, x, y, ti = a_t, kd_t, y, x, ti_t
    else:
        mt = match_odds
    g, et, mg, io = _pair_tilt(kd, etab, trans, mt, ins_odds, x, y, ti)
    if power != 1 and g != 1.0:
        g = g ** power
        et, mg, io = _tilted(kd, etab, mt, ins_odds, g)
    if g in skip:
        return None
    g0 = g
    hold.clear()
    P = None
    for attempt in range(3):
        P = None
        with flush_subnormals():
            logz, P, rows, agree = _post_any(path, a, et, start, trans, end,
                                             mg, io, x, y, band)
        if g == 1.0 or math.isfinite(logz):
            break
        g, et, mg, io = _retilt(attempt, g, kd, etab, mt, ins_odds)
    if g != 1.0:
        logz -= y.shape[0] * math.log(g)
    top = float(np.max(rows, initial=0.0))
    if transposed and frame:
        top = max(top, float(np.max(P.sum(axis=0), initial=0.0)))
    elif transposed:
        Pt = np.empty((y.shape[0], x.shape[0]))
        cols = np.empty(y.shape[0])
        _transpose_sums(P, Pt, cols)
        P = Pt
        top = max(top, float(np.max(cols, initial=0.0)))
    # NaN-safe: a NaN sum fails
    ok = agree and (top <= 1 + 1e-9 or not math.isfinite(logz))
    hold.append(P)
    return logz, ok, g0


# the two passes of a striped posterior agree to rounding (1e-13 relative
# measured); beyond this one of them lost mass
_PASSES_AGREE = 1e-9


def _post_any(path, a, etab, start, trans, end, match_odds, ins_odds, x, y,
              band):
    """(log-odds, P, row sums of P, whether the passes agree) of an
    oriented pair (N >= M): by :func:`_striped_posterior` where it applies,
    else the row kernels (whose backward pass, summed at Begin, must find
    the forward's log-odds: :func:`_passes_agree`)."""
    if path == "fast" and band < 0 and y.shape[0] >= ps.STRIPE_MIN:
        r = _striped_posterior(a, etab, start, trans, end, match_odds,
                               ins_odds, x, y)
        if r is not None:
            return r
    P = np.zeros((x.shape[0], y.shape[0]))
    rows = np.zeros(x.shape[0])
    post = _fast_posterior if path == "fast" else _gen_posterior
    logz, logzb = post(a, etab, start, trans, end, match_odds, ins_odds, x, y,
                       band, P, rows)
    return logz, P, rows, _passes_agree(logz, logzb)


def _passes_agree(logz, logzb):
    """Whether a row-kernel posterior's backward pass, summed at Begin,
    found the forward's log-odds (always, for a pair without a path).  The
    backward rows are scaled on their own: where they lost the cells of
    the alignment, its posteriors came out near zero with the forward's
    log-odds exact (review 28: a pair under a strongly tilted model, 87
    rows of P at 1e-60 instead of 1; a local model's 38 x 2311 pair, P
    summing to 1e-254), and its Begin value is low."""
    if not math.isfinite(logz):
        return True
    return abs(logzb - logz) <= _PASSES_AGREE * max(1.0, abs(logz))


def _striped_posterior(slots, etab, start, trans, end, match_odds, ins_odds,
                       x, y):
    """Fast-path posterior without a band from two striped forward passes
    (see :func:`pair_stripe.striped_forward`, modes 1 and 2): the forward,
    keeping its match rows, then the forward of the reversed model over
    the reversed sequences, whose match values are the backward values
    times the match odds.  Returns (log-odds, P, row sums), or None where a
    pass cannot run striped or the reversed pass comes out without mass
    (the row kernels then compute the pair).  Both passes sum the same
    paths: where their log-odds differ by more than rounding, one of them
    lost mass to the row scaling, and the last value returned (whether they
    agree) is False (the check in :func:`posterior` then fails, as for rows
    summing above 1)."""
    N = x.shape[0]
    M = y.shape[0]
    B = np.empty((N, M))
    scl = np.empty(N + 1)
    rows = np.zeros(N)
    logz = _fast_striped(slots, etab, start, trans, end, match_odds, ins_odds,
                         x, y, 1, B, scl, 0.0, rows)
    if math.isnan(logz):
        return None
    if not math.isfinite(logz):
        B[:, :] = 0.0
        return logz, B, rows, True
    z = _fast_striped(slots, etab, end, np.ascontiguousarray(trans.T), start,
                      match_odds, ins_odds, x[::-1].copy(), y[::-1].copy(), 2,
                      B, scl, logz, rows)
    if not math.isfinite(z):
        return None
    return logz, B, rows, abs(z - logz) <= _PASSES_AGREE * max(1.0, abs(logz))


def expected_counts(kind, etab, start, trans, end, match_odds, ins_odds, x, y,
                    n_start, n_trans, n_end, n_match, n_ins, band,
                    tilt_nats=_TILT_NATS):
    """E-step: adds the expected counts given (x, y) into n_start (S,),
    n_trans (S, S), n_end (S,), n_match (n_m, A, A), n_ins (n_i, A); returns
    the log-odds (nothing is added when it is -inf).  A pair whose counts
    fail their checks (see ``_COUNTS_AGREE``: the start counts sum to 1,
    each residue is emitted once) or would need a scale beyond exp(1400)
    between a forward and a backward value under every tilt tried, or
    that no pass found a path for, is computed in log space
    (:func:`pair_log.log_posterior_counts`; NaN, nothing added, only if
    even those counts broke their identities)."""
    start, trans, end = _live(start, trans, end, kind,
                              x.shape[0] > 0 and y.shape[0] > 0)
    if _log_only(trans) or _pair_cut(kind, etab, trans, match_odds, ins_odds,
                                     x, y, (start, end)):
        return float(_log_counts(kind, etab, start, trans, end, match_odds,
                                 ins_odds, x, y, band, n_start, n_trans,
                                 n_end, n_match, n_ins))
    path, *lead = _plan(kind, etab, trans, match_odds, ins_odds,
                        y.shape[0] > x.shape[0], tilt_nats,
                        min(x.shape[0], y.shape[0]))
    xo, yo, out = _one_pair(x, y)
    with flush_subnormals():
        _EC_CHUNK[path](*_lead(lead, etab, start, trans, end, match_odds),
                        ins_odds, x, xo, y, yo, band, 0, 1, out, n_start,
                        n_trans, n_end, n_match, n_ins, *lead[-2:])
    lz = float(out[0])
    if _needs_log(lz, kind, etab, start, trans, end, match_odds, ins_odds, x,
                  y, band):
        lz = float(_log_counts(kind, etab, start, trans, end, match_odds,
                               ins_odds, x, y, band, n_start, n_trans, n_end,
                               n_match, n_ins))
    return lz



@numba.njit(cache=True)
def forward_constrained(kind, etab, start, trans, end, match_odds, ins_odds,
                        x, y, ops, band):
    """Log-odds of P(x, y, alignment): the sum over the state paths that
    follow ``ops`` (uint8 (L,): 0 = x_i:y_j, 1 = x_i:-, 2 = -:y_j).  -inf if
    no state path follows it or it does not consume exactly x and y."""
    N = x.shape[0]
    M = y.shape[0]
    S = kind.shape[0]
    a = start.copy()
    b = np.zeros(S)
    i = 0
    j = 0
    logscale = 0.0
    for l in range(ops.shape[0]):
        op = ops[l]
        if op == 0 or op == 1:
            i += 1
        if op == 0 or op == 2:
            j += 1
        if i > N or j > M:
            return -np.inf
        lo, hi = band_limits(i, N, M, band)
        if j < lo or j > hi:
            return -np.inf
        tot = 0.0
        for s in range(S):
            v = 0.0
            if kind[s] == op:
                if l == 0:
                    acc = start[s]
                else:
                    acc = 0.0
                    for r in range(S):
                        acc += a[r] * trans[r, s]
                if op == 0:
                    v = acc * match_odds[etab[s], x[i - 1], y[j - 1]]
                elif op == 1:
                    v = acc * ins_odds[etab[s], x[i - 1]]
                else:
                    v = acc * ins_odds[etab[s], y[j - 1]]
            b[s] = v
            tot += v
        if tot == 0.0 or not math.isfinite(tot):
            return -np.inf
        logscale += math.log(tot)
        for s in range(S):
            a[s] = b[s] / tot
    if i != N or j != M or ops.shape[0] == 0:
        return -np.inf
    z = 0.0
    for s in range(S):
        z += a[s] * end[s]
    if z == 0.0:
        return -np.inf
    return logscale + math.log(z)


_CHUNKS = 64  # fixed chunks of pairs: results do not depend on threads
# ... of at least about this many forward cells each (a counts cell costs
# about 5x one): a chunk is one call into compiled code and one task for
# the thread pool (the E-step of 20 pairs of 37 x 37 on two threads: 7.4
# ms in 20 chunks, 1.3 ms in one), but too few chunks lose the threads (a
# review: two 420 x 420 pairs' counts in one chunk, 1.7x slower)
_CHUNK_CELLS = 200_000


def _n_chunks(x_off, y_off, cost=1):
    """The number of chunks of a batch whose cells cost ``cost`` forward
    cells each: fixed by the pairs alone, never by the thread count, so
    that results do not depend on it."""
    n = x_off.shape[0] - 1
    cells = cost * float(np.dot(np.diff(x_off) + 1.0, np.diff(y_off) + 1.0))
    return max(1, min(n, _CHUNKS, int(cells // _CHUNK_CELLS)))


def batch_forward(kind, etab, start, trans, end, match_odds, ins_odds, xs,
                  x_off, ys, y_off, band, tilt_nats=_TILT_NATS, check=True):
    """Log-odds (P,) of pairs p = (xs[x_off[p]:x_off[p+1]], ys[...]), on
    ``numba.get_num_threads()`` threads; ``check`` as for :func:`forward`
    (a pair that fails every tilt, or comes out -inf while
    :func:`pair_log.has_path` finds a path, is computed in log space after
    the others, those pairs again on the threads)."""
    split = _mixed_empty(x_off, y_off)
    if split is not None:
        out = np.empty(x_off.shape[0] - 1)
        for part in split:
            out[part] = batch_forward(kind, etab, start, trans, end,
                                      match_odds, ins_odds,
                                      *_subset(xs, x_off, part),
                                      *_subset(ys, y_off, part), band,
                                      tilt_nats, check)
        return out
    start, trans, end = _live(start, trans, end, kind,
                              _all_nonempty(x_off, y_off))
    n = x_off.shape[0] - 1
    nch = _n_chunks(x_off, y_off)
    out = np.full(n, -np.inf)

    path, *lead = _plan(kind, etab, trans, match_odds, ins_odds,
                        bool(np.any(np.diff(y_off) > np.diff(x_off))),
                        tilt_nats, _longest_short_side(x_off, y_off))
    args = _lead(lead, etab, start, trans, end, match_odds)

    @flush_subnormals()  # on the worker's own thread
    def work(ch):
        _FWD_CHUNK[path](*args, ins_odds, xs, x_off, ys, y_off, band,
                         (n * ch) // nch, (n * (ch + 1)) // nch, out,
                         *lead[-2:], bool(check))

    cut = (_cut_pairs(kind, etab, trans, match_odds, ins_odds, xs, x_off, ys,
                      y_off, (start, end)) if check else None)
    if check and _log_only(trans):
        out[:] = np.nan  # every pair in log space (see _log_only)
    elif cut is not None and cut.any():
        # the others scaled, these in log space (see _cut_pairs)
        keep = np.flatnonzero(~cut)
        out[keep] = batch_forward(kind, etab, start, trans, end, match_odds,
                                  ins_odds, *_subset(xs, x_off, keep),
                                  *_subset(ys, y_off, keep), band, tilt_nats,
                                  check)
        out[cut] = np.nan
    else:
        _run_chunks(work, nch)
    if check:
        model = (kind, etab, start, trans, end, match_odds, ins_odds)

        def redo(p, x, y):
            out[p] = _log_forward(*model, x, y, band)

        _relog(out, xs, x_off, ys, y_off, band, model, redo)
    return out


def _subset(xs, off, keep):
    """(sequences, offsets) of the pairs ``keep`` of a batch."""
    parts = [xs[off[p]:off[p + 1]] for p in keep]
    new = np.zeros(len(keep) + 1, np.int64)
    new[1:] = np.cumsum([len(s) for s in parts], dtype=np.int64)
    return (np.concatenate(parts) if parts else xs[:0].copy()), new


def _relog(out, xs, x_off, ys, y_off, band, model, fn):
    """Runs ``fn(p, x, y)`` on the threads for each pair p of a batch whose
    scaled result ``out[p]`` goes to log space (see :func:`_needs_log`)."""
    bad = np.flatnonzero(~np.isfinite(out))

    def one(k):
        p = bad[k]
        x = xs[x_off[p]:x_off[p + 1]]
        y = ys[y_off[p]:y_off[p + 1]]
        if _needs_log(out[p], *model, x, y, band):
            fn(p, x, y)

    _run_chunks(one, len(bad))


def batch_expected_counts(kind, etab, start, trans, end, match_odds, ins_odds,
                          xs, x_off, ys, y_off, band, tilt_nats=_TILT_NATS):
    """Returns (logodds (P,), n_start, n_trans, n_end, n_match, n_ins): the
    counts summed over pairs with finite log-odds, reduced in a fixed order
    (identical for any thread count).  Runs on ``numba.get_num_threads()``
    threads."""
    split = _mixed_empty(x_off, y_off)
    if split is not None:
        full, rest = (batch_expected_counts(kind, etab, start, trans, end,
                                            match_odds, ins_odds,
                                            *_subset(xs, x_off, part),
                                            *_subset(ys, y_off, part), band,
                                            tilt_nats)
                      for part in split)
        out = np.empty(x_off.shape[0] - 1)
        out[split[0]] = full[0]
        out[split[1]] = rest[0]
        return (out,) + tuple(u + v for u, v in zip(full[1:], rest[1:]))
    start, trans, end = _live(start, trans, end, kind,
                              _all_nonempty(x_off, y_off))
    n = x_off.shape[0] - 1
    S = kind.shape[0]
    nch = _n_chunks(x_off, y_off, cost=5)
    out = np.full(n, -np.inf)
    ps = np.zeros((nch, S))
    pt = np.zeros((nch, S, S))
    pe = np.zeros((nch, S))
    pm = np.zeros((nch,) + match_odds.shape)
    pi = np.zeros((nch,) + ins_odds.shape)

    path, *lead = _plan(kind, etab, trans, match_odds, ins_odds,
                        bool(np.any(np.diff(y_off) > np.diff(x_off))),
                        tilt_nats, _longest_short_side(x_off, y_off))
    args = _lead(lead, etab, start, trans, end, match_odds)

    @flush_subnormals()  # on the worker's own thread
    def work(ch):
        _EC_CHUNK[path](*args, ins_odds, xs, x_off, ys, y_off, band,
                        (n * ch) // nch, (n * (ch + 1)) // nch, out, ps[ch],
                        pt[ch], pe[ch], pm[ch], pi[ch], *lead[-2:])

    cut = _cut_pairs(kind, etab, trans, match_odds, ins_odds, xs, x_off, ys,
                     y_off, (start, end))
    n_start = np.zeros(S)
    n_trans = np.zeros((S, S))
    n_end = np.zeros(S)
    n_match = np.zeros(match_odds.shape)
    n_ins = np.zeros(ins_odds.shape)
    if _log_only(trans):
        out[:] = np.nan  # every pair in log space (see _log_only)
    elif cut is not None and cut.any():
        # the others scaled, these in log space (see _cut_pairs)
        keep = np.flatnonzero(~cut)
        sub = batch_expected_counts(kind, etab, start, trans, end, match_odds,
                                    ins_odds, *_subset(xs, x_off, keep),
                                    *_subset(ys, y_off, keep), band,
                                    tilt_nats)
        out[keep] = sub[0]
        out[cut] = np.nan
        for total, part in zip((n_start, n_trans, n_end, n_match, n_ins),
                               sub[1:]):
            total += part
    else:
        _run_chunks(work, nch)
    for ch in range(nch):
        n_start += ps[ch]
        n_trans += pt[ch]
        n_end += pe[ch]
        n_match += pm[ch]
        n_ins += pi[ch]
    # pairs every tilt lost (or no pass found a path for): log space, after
    # the others, in pair order (the same sums on any thread count)
    model = (kind, etab, start, trans, end, match_odds, ins_odds)
    parts = {}

    def redo(p, x, y):
        acc = (np.zeros(S), np.zeros((S, S)), np.zeros(S),
               np.zeros(match_odds.shape), np.zeros(ins_odds.shape))
        out[p] = _log_counts(*model, x, y, band, *acc)
        parts[p] = acc

    _relog(out, xs, x_off, ys, y_off, band, model, redo)
    for p in sorted(parts):
        for total, part in zip((n_start, n_trans, n_end, n_match, n_ins),
                               parts[p]):
            total += part
    return out, n_start, n_trans, n_end, n_match, n_ins
