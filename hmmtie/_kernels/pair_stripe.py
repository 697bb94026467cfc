"""Striped rows for the pair-HMM fast path (no band).

The row kernels of :mod:`pair_fb` spend most of their time in the insert-y
recurrence ``Y[c] = bY[c] * M[c-1] + aY[c] * Y[c-1]``, a serial chain along
the row.  Here a row's columns ``1..M`` are laid out in ``W = 16`` lanes:
lane ``k`` holds the columns ``k*L + 1 .. k*L + L`` (``L = ceil(M / W)``),
and column ``k*L + l + 1`` sits at index ``l*W + k`` (stripe row ``l``).
Column ``c - 1`` of a cell is then the previous stripe row of the same lane,
``W`` places back, so every pass is a flat loop that vectorises, the chain
included: each lane runs its own segment of the chain (started from zero),
``W`` chains side by side.  The true value is the segment value plus the
carry from the lanes to the left, ``D(l, k) = D(0, k) * prod aY(1..l, k)``.
The carry is never added to the row: the lane starts ``D(0, k)`` are found
serially over the 16 lanes once the pass is done, and the next row's pass
reads each insert-y value as ``Y + D(s, k) * Pc`` with ``Pc`` the chain
product from the start of the cell's super-chunk (a run of stripe rows;
``D(s, k)`` the carry at its start), a table that depends on ``y`` only.
The row sum gains ``sum D(s, k) * sum(Pc)``; the lane heads and End read
the true values.  A super-chunk is the whole lane unless some product would
leave [1e-280, 1e280]; it is then shortened, so a large carry crosses a
lane whose product underflows super-chunk by super-chunk, and a pair for
which even ``_CH_ROWS`` stripe rows are too many takes the row kernels.
(A carry pass that added the carries to the row walked nearly every cell:
to the right of the alignment path the carry from the path dominates every
cell.  Reading them in the next pass made the forward 20-30% faster.)

Each row is stored with a head of ``W`` values before its data: the value at
column ``c - 1`` of stripe row 0 of each lane (the last column of the lane to
its left; column 0 for lane 0), so that reading "column c - 1" is reading
``W`` places back for every cell.  Columns past ``M`` (the padding: the end
of a lane and possibly whole lanes, up to ``W - 1`` columns) have zero
emissions and chain factors, so they stay zero and carry nothing.

Only the fast path without a band is striped; a pair whose rows are short
(``M < STRIPE_MIN``) takes the row kernels.  Posteriors run two striped
passes (modes 1 and 2 of :func:`striped_forward`); expected counts use the
row kernels, so their log-odds can differ from :func:`striped_forward`'s in
the last bits.
"""
import math

import numba
import numpy as np

from ._arrays import split_exp as _split_exp, vsum as _vsum

_FM = {"reassoc", "contract"}

W = 16
# rows shorter than this take the row kernels (per-row overheads dominate)
STRIPE_MIN = 64
# the pass loops run in chunks of _CH cells (whole stripe rows)
_CH = 16 * W
_CH_ROWS = _CH // W
# carry-table products must stay in [_TINY, _HUGE] (or be exactly 0)
_TINY = 1e-280
_HUGE = 1e280


@numba.njit(cache=True)
def stripe_geometry(M):
    """(L, n): stripe rows and striped length for a row of M columns."""
    L = (M + W - 1) // W
    return L, L * W


@numba.njit(cache=True)
def stripe_index(c, L):
    """Index (within the data part) of column c >= 1."""
    q = c - 1
    return (q % L) * W + q // L


@numba.njit(cache=True)
def to_stripes(v, M, L, out, fill=0.0):
    """out[l*W + k] = v[1 + k*L + l] for columns up to M, else ``fill``."""
    for k in range(W):
        for l in range(L):
            q = k * L + l
            out[l * W + k] = v[1 + q] if q < M else fill


@numba.njit(cache=True)
def _set_head(row, L, col0):
    """Head of a stored row: row[k] = value at column k*L (the last column of
    lane k-1), row[0] = col0 (column 0)."""
    last = W + (L - 1) * W
    for k in range(W - 1, 0, -1):
        row[k] = row[last + k - 1]
    row[0] = col0


@numba.njit(cache=True)
def _carry_tables(aYs, L, S, Pc, G, SP):
    """Fills the carry tables of one insert-y slot for super-chunks of S
    stripe rows: ``Pc`` (n,) the chain product along each lane from the
    start of its super-chunk (1 there), ``G`` (n_super, W) the product from
    one super-chunk start to the next, ``SP`` (n_super, W) the sum of ``Pc``
    over each super-chunk.  Returns False if a product leaves [_TINY, _HUGE]
    other than by an exact zero factor (then the carry would lose bits)."""
    for k in range(W):
        p = 1.0
        for r in range(L):
            a = aYs[r * W + k]
            q = p * a
            # (stripe row 0's factor enters no table: lane_carries uses it directly)
            if r > 0 and p > 0.0 and a > 0.0 and not (_TINY <= q < _HUGE):
                return False
            if r % S == 0:
                if r > 0:
                    G[r // S - 1, k] = q
                p = 1.0
            else:
                p = q
            Pc[r * W + k] = p
            SP[r // S, k] += p
    for s in range(SP.shape[0]):
        for k in range(W):
            if not SP[s, k] < _HUGE:
                return False
    return True


@numba.njit(cache=True)
def carry_setup(slots, aYs, L):
    """Carry tables of both insert-y slots (see :func:`_carry_tables`) for
    the longest super-chunk (a multiple of ``_CH_ROWS`` stripe rows, at most
    the lane) whose products stay in range; ``S = 0`` if none does (the
    caller then uses the row kernels).  Returns (S, Pc, G, SP)."""
    n = L * W
    S = (L + _CH_ROWS - 1) // _CH_ROWS * _CH_ROWS
    while S >= _CH_ROWS:
        ns = (L + S - 1) // S
        Pc = np.zeros((2, n))
        G = np.zeros((2, ns, W))
        SP = np.zeros((2, ns, W))
        ok = True
        for k in range(2):
            if slots[3 + k] >= 0 and ok:
                ok = _carry_tables(aYs[k], L, S, Pc[k], G[k], SP[k])
        if ok:
            return S, Pc, G, SP
        S = S // 2 // _CH_ROWS * _CH_ROWS
    z = np.zeros((2, 1, W))
    return 0, np.zeros((2, n)), z, z.copy()


@numba.njit(cache=True)
def _chunks(Dx, Dp, s, S, nl):
    """Fills Dx[q] = Dp[s, q % W] (the carries of super-chunk s, lane-periodic,
    for the chunked loops) and returns the cell range [c0, c1) of super-chunk
    s among the nl cells of a pass."""
    c0 = s * S * W
    c1 = min(c0 + S * W, nl)
    d = Dp[s]
    for q in range(min(_CH, c1 - c0)):
        Dx[q] = d[q % W]
    return c0, c1


@numba.njit(cache=True, fastmath=_FM)
def _fwd_pass3(Er, P, C, k0, kx, ky, a1, b1, eY, tMY, tYY, beg, n, Dp, Pc, Dx, S):
    """Fused forward pass of one row, one insert-x and one insert-y slot:
    match, insert-x and the insert-y segments (lanes started from zero).
    ``P``/``C``: previous / current row, slots (M, X1, X2, Y1, Y2), each
    with its head; the previous row's insert-y values are its segment
    values plus its carries ``Dp[s, k] * Pc`` (see :func:`lane_carries`).
    ``beg`` is added to the first match cell (Begin -> (1, 1)) before the
    chain reads it.  Returns the sum of the values."""
    pM = P[0]
    pX = P[1]
    pY = P[3]
    cM = C[0]
    cX = C[1]
    cY = C[3]
    t = 0.0
    for j in range(W):
        m = Er[j] * (k0 * pM[j] + kx * pX[j] + ky * pY[j])
        x = a1 * pM[W + j] + b1 * pX[W + j]
        cM[W + j] = m
        cX[W + j] = x
        cY[W + j] = 0.0
        t += m + x
    cM[W] += beg
    t += beg
    # chunks of _CH cells (whole stripe rows; a super-chunk is a whole number
    # of chunks) through views indexed from 0: no wraparound checks, and one
    # set of runtime alias checks per chunk
    nl = n - W
    for s in range(Dp.shape[0]):
        a, b = _chunks(Dx, Dp, s, S, nl)
        for c0 in range(a, b, _CH):
            c1 = min(c0 + _CH, b)
            er = Er[W + c0:W + c1]
            pm = pM[W + c0:2 * W + c1]
            px = pX[W + c0:2 * W + c1]
            py = pY[W + c0:W + c1]
            pc = Pc[c0:c1]
            ey = eY[W + c0:W + c1]
            cm = cM[W + c0:2 * W + c1]
            cx = cX[2 * W + c0:2 * W + c1]
            cy = cY[W + c0:2 * W + c1]
            for q in range(c1 - c0):
                m = er[q] * (k0 * pm[q] + kx * px[q]
                             + ky * (py[q] + Dx[q] * pc[q]))
                x = a1 * pm[W + q] + b1 * px[W + q]
                # insert-y odds times (t(M, Y) M + t(Y, Y) Y): one load fewer
                # than the chain rows bY, aY (0 in the padding, which stays 0)
                y = ey[q] * (tMY * cm[q] + tYY * cy[q])
                cm[W + q] = m
                cx[q] = x
                cy[W + q] = y
                t += m + x + y
    return t


@numba.njit(cache=True, fastmath=_FM)
def _m_loop5(Er, P, cM, k0, kx1, kx2, ky1, ky2, n, Dp1, Dp2, Pc1, Pc2, Dx1,
             Dx2, S):
    """Match values of a row with two slots of each insert kind, the
    previous row's insert-y values carried as in :func:`_fwd_pass3`."""
    t = 0.0
    for j in range(W):
        m = Er[j] * (k0 * P[0, j] + kx1 * P[1, j] + kx2 * P[2, j]
                     + ky1 * P[3, j] + ky2 * P[4, j])
        cM[W + j] = m
        t += m
    nl = n - W
    for s in range(Dp1.shape[0]):
        a, b = _chunks(Dx1, Dp1, s, S, nl)
        _chunks(Dx2, Dp2, s, S, nl)
        for c0 in range(a, b, _CH):
            c1 = min(c0 + _CH, b)
            er = Er[W + c0:W + c1]
            pm = P[0, W + c0:W + c1]
            px1 = P[1, W + c0:W + c1]
            px2 = P[2, W + c0:W + c1]
            py1 = P[3, W + c0:W + c1]
            py2 = P[4, W + c0:W + c1]
            pc1 = Pc1[c0:c1]
            pc2 = Pc2[c0:c1]
            cm = cM[2 * W + c0:2 * W + c1]
            for q in range(c1 - c0):
                m = er[q] * (k0 * pm[q] + kx1 * px1[q] + kx2 * px2[q]
                             + ky1 * (py1[q] + Dx1[q] * pc1[q])
                             + ky2 * (py2[q] + Dx2[q] * pc2[q]))
                cm[q] = m
                t += m
    return t


@numba.njit(cache=True, fastmath=_FM)
def _x_loop5(pM, pX1, pX2, cX1, cX2, a1, b1, a2, b2, n):
    t = 0.0
    for l in range(n):
        x1 = a1 * pM[W + l] + b1 * pX1[W + l]
        x2 = a2 * pM[W + l] + b2 * pX2[W + l]
        cX1[W + l] = x1
        cX2[W + l] = x2
        t += x1 + x2
    return t


@numba.njit(cache=True, fastmath=_FM)
def _y_seg(cM, cY, bY, aY, n):
    """Insert-y segments of one slot: Y(j) = bY(j) M(j - W) + aY(j) Y(j - W)
    for stripe rows >= 1, 0 on stripe row 0.  (Here the chain rows measured
    faster than the odds-times-transitions form of :func:`_fwd_pass3`.)"""
    t = 0.0
    for j in range(W):
        cY[W + j] = 0.0
    for l in range(n - W):
        y = bY[W + l] * cM[W + l] + aY[W + l] * cY[W + l]
        cY[2 * W + l] = y
        t += y
    return t


@numba.njit(cache=True)
def _fwd_pass5(Er, P, C, k0, kx1, kx2, ky1, ky2, a1, b1, a2, b2, bY1, aY1,
               bY2, aY2, beg, n, Dp1, Dp2, Pc1, Pc2, Dx1, Dx2, S):
    """As :func:`_fwd_pass3` with two insert-x and two insert-y slots, in
    separate loops (one fused loop needs more runtime alias checks than LLVM
    allows, and stays scalar)."""
    t = _m_loop5(Er, P, C[0], k0, kx1, kx2, ky1, ky2, n, Dp1, Dp2, Pc1, Pc2,
                 Dx1, Dx2, S)
    C[0, W] += beg
    t += beg
    t += _x_loop5(P[0], P[1], P[2], C[1], C[2], a1, b1, a2, b2, n)
    t += _y_seg(C[0], C[3], bY1, aY1, n)
    t += _y_seg(C[0], C[4], bY2, aY2, n)
    return t


@numba.njit(cache=True)
def lane_carries(D, Mrow, Y, bY, aY, Pc, G, SP, L):
    """The carries of one insert-y slot of a finished row: D[s, k] = the
    carry into the first stripe row of super-chunk s of lane k, such that
    the true value of a cell is its segment value plus ``D[s, k] * Pc``.
    Lane k's carry starts from column k*L, the last column of lane k - 1
    (segment value plus carry); that true value is also lane k's head.
    Returns the sum of the carries over the row."""
    last = W + (L - 1) * W
    q0 = (L - 1) * W
    ns = D.shape[0]
    for s in range(ns):
        D[s, 0] = 0.0
    dl = 0.0  # the carry into the last super-chunk of the lane to the left
    for k in range(1, W):
        yk = Y[last + k - 1] + dl * Pc[q0 + k - 1]
        Y[k] = yk
        d = bY[k] * Mrow[last + k - 1] + aY[k] * yk
        D[0, k] = d
        for s in range(1, ns):
            d *= G[s - 1, k]
            D[s, k] = d
        dl = d
    Y[0] = 0.0
    t = 0.0
    for s in range(ns):
        for k in range(W):
            t += D[s, k] * SP[s, k]
    return t


@numba.njit(cache=True)
def striped_setup(slots, E, ey, aY, bY, M):
    """Striped tables: match emissions Es (A, n), insert-y chain rows aYs,
    bYs (2, n), the first slot's insert-y odds eYs (1, n), and the carry tables (S, Pc, G, SP) of :func:`carry_setup`
    (``S == 0``: the caller uses the row kernels)."""
    L, n = stripe_geometry(M)
    A = E.shape[0]
    Es = np.zeros((A, n))
    for a in range(A):
        to_stripes(E[a], M, L, Es[a])
    aYs = np.zeros((2, n))
    bYs = np.zeros((2, n))
    eYs = np.zeros((1, n))  # the first insert-y slot's odds (the 3-state pass)
    for k in range(2):
        if slots[3 + k] >= 0:
            to_stripes(aY[k], M, L, aYs[k])
            to_stripes(bY[k], M, L, bYs[k])
    if slots[3] >= 0:
        to_stripes(ey[0], M, L, eYs[0])
    S, Pc, G, SP = carry_setup(slots, aYs, L)
    return Es, aYs, bYs, eYs, S, Pc, G, SP


@numba.njit(cache=True, fastmath=_FM)
def forward_row0_rows(cur, hi, st, ey, aY):
    """Forward row 0 in natural column order (the row kernels of
    ``pair_fb``; columns 1..hi): Begin (value 1, counted in the sum) and
    insert-y."""
    tot = 1.0
    if hi >= 1:
        for k in range(2):
            Yk = cur[3 + k]
            yv = st[3 + k] * ey[k, 1]
            Yk[1] = yv
            tot += yv
            for c in range(2, hi + 1):
                yv = aY[k, c] * yv
                Yk[c] = yv
                tot += yv
    return tot


@numba.njit(cache=True)
def forward_row0(R0, slots, st, ey, aY, M, L):
    """Row 0 into the striped row R0 (computed in column order by
    :func:`forward_row0_rows`, so its carries are 0); returns its sum
    (Begin counted as 1)."""
    tmp = np.zeros((5, M + 2))
    tot = forward_row0_rows(tmp, M, st, ey, aY)
    for k in range(2):
        if slots[3 + k] >= 0:
            to_stripes(tmp[3 + k], M, L, R0[3 + k, W:])
            _set_head(R0[3 + k], L, 0.0)
    return tot


@numba.njit(cache=True)
def _unstripe(row, out, M, L):
    """out[c - 1] = the value of column c of a striped row (its data part),
    for c = 1..M: each lane is a run of columns, read W apart, as column k
    of the row seen as an (L, W) matrix.  (Indexing ``row[l * W + k]``
    instead made the posterior's forward half 1.5x slower: 3.4 against
    1.3 ms over a 1000 x 1000 pair on the eleventh session's Xeon.)"""
    R2 = row[:L * W].reshape((L, W))
    for k in range(W):
        c0 = k * L
        if c0 >= M:
            break
        o = out[c0:min(c0 + L, M)]
        col = R2[:o.shape[0], k]
        for l in range(o.shape[0]):
            o[l] = col[l]


@numba.njit(cache=True)
def _post_row(R, Ei, f1, f2, P, Rp, M, L):
    """One row of posteriors in place: ``P`` holds the forward's match
    values of the row in column order, ``R`` the reversed pass's (striped;
    its column c' is column M + 1 - c) and ``Ei`` the inverses of its match
    odds (0 where the odds are 0).  ``P[c - 1] = P * f1 * R(c) Ei(c) * f2``
    (the scale exp(e) as two factors, see ``_arrays.split_exp``); returns
    the row's sum.  Each lane of R is a run of columns that P holds
    backwards.  No fastmath: ``P * f1`` is formed first so that no product
    of two small values underflows before the scale."""
    n = L * W
    for q in range(n):
        Rp[q] = R[q] * Ei[q]
    R2 = Rp[:n].reshape((L, W))  # lane k: column k (see _unstripe)
    for k in range(W):
        c0 = k * L
        if c0 >= M:
            break
        cnt = min(c0 + L, M) - c0
        o = P[M - c0 - cnt:M - c0]  # columns M - c0 - cnt + 1 .. M - c0
        col = R2[:cnt, k]
        for l in range(cnt):
            j = cnt - 1 - l
            o[j] = o[j] * f1 * col[l] * f2
    return _vsum(P)


@numba.njit(cache=True)
def striped_forward(slots, st, tr, en, E, ey, ex, aY, bY, x, M, mode, B, scl,
                    logz, rows):
    """Log-odds of the pair by the striped forward (no band); NaN if the
    carry tables leave the float range (use the row kernels then).

    ``mode`` 0: the log-odds only (``B``, ``scl``, ``rows`` unused).
    Mode 1, the forward half of a posterior: the match values of row i go
    to ``B[i-1]`` (B (N, M), column order) and the row's log scale to
    ``scl[i]``.  Mode 2, the second half: this pass runs the reversed model
    (start and end swapped, transitions transposed) over the reversed
    sequences, whose row i' and column c' hold the backward values of row
    N + 1 - i' and column M + 1 - c' of the forward times the match odds
    there; each of its rows turns the stored forward row into that row's
    posteriors in place (``logz``: the forward's log-odds), with their sum
    in ``rows`` (NaN where the scale of a row's posteriors exceeds e**1400).
    Mode 2 returns NaN for match odds with a value below 1e-300 (their
    inverses could overflow)."""
    N = x.shape[0]
    L, n = stripe_geometry(M)
    Es, aYs, bYs, eYs, S, Pc, G, SP = striped_setup(slots, E, ey, aY, bY, M)
    if S == 0:
        return np.nan
    Rp = np.empty(n if mode == 2 else 0)
    # mode 2: inverse match odds (0 for odds 0: the posterior is 0 there);
    # odds below 1e-300 (their inverse could overflow) send the pair to the
    # row kernels, which never divide
    Ei = np.zeros((Es.shape[0], n if mode == 2 else 0))
    for a in range(Ei.shape[0]):
        for q in range(Ei.shape[1]):
            if Es[a, q] > 0.0:
                if Es[a, q] < 1e-300:
                    return np.nan
                Ei[a, q] = 1.0 / Es[a, q]
    five = slots[2] >= 0 or slots[4] >= 0
    ns = G.shape[1]
    R = np.zeros((2, 5, n + W))
    # carries of the insert-y slots, previous and current row (row 0: none)
    Dp1 = np.zeros((ns, W))
    Dc1 = np.zeros((ns, W))
    Dp2 = np.zeros((ns, W))
    Dc2 = np.zeros((ns, W))
    Dx1 = np.empty(_CH)
    Dx2 = np.empty(_CH)
    Pc1, Pc2, G1, G2, SP1, SP2 = Pc[0], Pc[1], G[0], G[1], SP[0], SP[1]
    aY1, aY2, bY1, bY2, eY1 = aYs[0], aYs[1], bYs[0], bYs[1], eYs[0]
    t00, t10, t20, t30, t40 = tr[0, 0], tr[1, 0], tr[2, 0], tr[3, 0], tr[4, 0]
    x0a = 0.0  # insert-x values at column 0 of the previous row
    x0b = 0.0
    tot = forward_row0(R[0], slots, st, ey, aY, M, L)
    logscale = 0.0
    for i in range(1, N + 1):
        if tot == 0.0 or not math.isfinite(tot):
            return -np.inf
        logscale += math.log(tot)
        inv = 1.0 / tot
        prev = R[(i - 1) & 1]
        cur = R[i & 1]
        Dp1, Dc1 = Dc1, Dp1
        Dp2, Dc2 = Dc2, Dp2
        xi = x[i - 1]
        e1 = ex[0, xi] * inv
        e2 = ex[1, xi] * inv
        v1 = e1 * tr[1, 1] * x0a
        v2 = e2 * tr[2, 2] * x0b
        if i == 1:
            v1 += e1 * st[1]
            v2 += e2 * st[2]
        x0a = v1
        x0b = v2
        beg = Es[xi, 0] * st[0] * inv if i == 1 else 0.0
        tot = v1 + v2
        if five:
            tot += _fwd_pass5(Es[xi], prev, cur, t00 * inv, t10 * inv,
                              t20 * inv, t30 * inv, t40 * inv, e1 * tr[0, 1],
                              e1 * tr[1, 1], e2 * tr[0, 2], e2 * tr[2, 2],
                              bY1, aY1, bY2, aY2, beg, n, Dp1, Dp2, Pc1, Pc2,
                              Dx1, Dx2, S)
        else:
            tot += _fwd_pass3(Es[xi], prev, cur, t00 * inv, t10 * inv,
                              t30 * inv, e1 * tr[0, 1], e1 * tr[1, 1], eY1,
                              tr[0, 3], tr[3, 3], beg, n, Dp1, Pc1, Dx1, S)
        if slots[3] >= 0:
            tot += lane_carries(Dc1, cur[0], cur[3], bY1, aY1, Pc1, G1, SP1,
                                L)
        if slots[4] >= 0:
            tot += lane_carries(Dc2, cur[0], cur[4], bY2, aY2, Pc2, G2, SP2,
                                L)
        if mode == 1:
            scl[i] = logscale
            _unstripe(cur[0, W:], B[i - 1], M, L)
        elif mode == 2:
            r = N - i  # the forward's row r + 1
            f1, f2 = _split_exp(scl[r + 1] + logscale - logz)
            rows[r] = _post_row(cur[0, W:], Ei[xi], f1, f2, B[r], Rp, M, L)
        _set_head(cur[0], L, 0.0)
        _set_head(cur[1], L, v1)
        _set_head(cur[2], L, v2)
    cur = R[N & 1]
    q = stripe_index(M, L)
    s = q // W // S
    z = cur[0, W + q] * en[0] + cur[1, W + q] * en[1] + cur[2, W + q] * en[2]
    z += (cur[3, W + q] + Dc1[s, q % W] * Pc1[q]) * en[3]
    z += (cur[4, W + q] + Dc2[s, q % W] * Pc2[q]) * en[4]
    if z == 0.0 or not math.isfinite(z):
        return -np.inf
    return logscale + math.log(z)


# --------------------------------------------------------------------------
# Viterbi, three states (match, insert-x, insert-y), no band.
#
# Log space, the fused three-state recurrences of ``pair_decode`` (any
# transitions) in the striped layout.  One pass per row computes match,
# insert-x and the insert-y chain of every lane segment (the segment of a
# lane starts at -inf) and the traceback byte of each cell in the same
# format as ``pair_decode._viterbi3_core`` (predecessor state of match in
# bits 0-1, insert-x 2-3, insert-y 4-5), stored in striped order.  Then the
# first cell of each lane gets its true value ``v0`` from the last cell of
# the lane to its left (16 serial steps), and each lane's later cells
# become ``max(segment value, v0 + Q)``, ``Q`` the sum of t(Y, Y) and the
# insert-y scores along the lane from its first cell (a table of y alone).
# The carry wins on a prefix of the lane (once the segment's value is at
# least the carried one, it stays so), so the lanes are updated side by
# side, chunk by chunk of _VCH stripe rows, until a chunk where no carry
# wins; where one wins, the cell's insert-y choice becomes the self loop
# in its traceback byte.  This equals the serial recurrence because
# ``pair_decode.viterbi`` runs every kernel on scores rounded to multiples
# of 2**-30 (``GRID``): their sums are exact, so the order of the additions
# does not matter.  (The first repair recomputed each cell of the prefix
# with the serial recurrence, a dependent chain of additions and
# comparisons: 25-48% of the time.  A walk down each lane until its carry
# lost, 16 cells apart, then cost a quarter of the Viterbi over a 1000 x
# 1000 protein pair whose carries won 40% of the cells; the chunks, which
# vectorise, made the protein Viterbi 1.1x faster, DNA the same.)

_NEG = -np.inf
# stripe rows per chunk of the Viterbi's insert-y carries (2 and 4 ran
# slower than 8, 16 the same)
_VCH = 8


@numba.njit(cache=True)
def reverse_path(states_out, ops_out, L):
    """Reverse the first L entries of a traceback's states and ops in place
    (tracebacks run from End back to Begin)."""
    for q in range(L // 2):
        a = states_out[q]
        states_out[q] = states_out[L - 1 - q]
        states_out[L - 1 - q] = a
        o = ops_out[q]
        ops_out[q] = ops_out[L - 1 - q]
        ops_out[L - 1 - q] = o


@numba.njit(cache=True, inline="always")
def _best3(a, b, c, k1, k2):
    """max(a, b, c) with the lowest index winning ties, and the choice's
    code: 0.0, k1 (b) or k2 (c).  Select form (vectorises; the codes are
    doubles, converted once per cell: cheaper than packing integer masks)."""
    w = b > a
    a = b if w else a
    k = k1 if w else 0.0
    w = c > a
    return (c if w else a), (k2 if w else k)


@numba.njit(cache=True, inline="always")
def _best2(a, c, k2):
    """max(a, c) with a winning ties, and the choice's code: 0.0 or k2."""
    w = c > a
    return (c if w else a), (k2 if w else 0.0)


@numba.njit(cache=True)
def _vit_pass(em, ey, ex, pM, pX, pY, cM, cX, cY, tb, t00, t10, t20, t01,
              t11, t21, t02, t12, t22, beg, n):
    """One Viterbi row: match and insert-x of every cell, the insert-y
    segments and the traceback bytes (insert-y bits of stripe row 0 left for
    :func:`_vit_lanes`).  ``ey``: the striped insert-y log odds; ``ex``: the
    insert-x log odds of x_i.  ``beg``: on row 1 the value of the first
    match cell, entered from Begin (-inf otherwise, and when Begin cannot
    enter it, in which case the pass's own -inf stands)."""
    for j in range(W):
        vm, k = _best3(pM[j] + t00, pX[j] + t10, pY[j] + t20, 1.0, 2.0)
        vx, kx = _best3(pM[W + j] + t01, pX[W + j] + t11, pY[W + j] + t21,
                        4.0, 8.0)
        cM[W + j] = vm + em[j]
        cX[W + j] = vx + ex
        cY[W + j] = _NEG
        tb[j] = np.uint8(k + kx)
    if beg > _NEG:
        cM[W] = beg
        tb[0] = np.uint8(tb[0] & 0xFC)
    if t21 == _NEG and t12 == _NEG:
        # no insert-x <-> insert-y transitions (the presets): each insert
        # state has two candidates (a third at -inf never wins a strict >),
        # and the insert-x emission is added to its two transitions (grid
        # sums are exact, so the order of the additions does not matter)
        a1 = t01 + ex
        b1 = t11 + ex
        for l in range(n - W):
            vm, k = _best3(pM[W + l] + t00, pX[W + l] + t10,
                           pY[W + l] + t20, 1.0, 2.0)
            vm = vm + em[W + l]
            vx, kx = _best2(pM[2 * W + l] + a1, pX[2 * W + l] + b1, 4.0)
            base, ky = _best2(cM[W + l] + t02, cY[W + l] + t22, 32.0)
            cM[2 * W + l] = vm
            cX[2 * W + l] = vx
            cY[2 * W + l] = base + ey[W + l]
            tb[W + l] = np.uint8(k + kx + ky)
        return
    for l in range(n - W):
        vm, k = _best3(pM[W + l] + t00, pX[W + l] + t10, pY[W + l] + t20,
                       1.0, 2.0)
        vm = vm + em[W + l]
        vx, kx = _best3(pM[2 * W + l] + t01, pX[2 * W + l] + t11,
                        pY[2 * W + l] + t21, 4.0, 8.0)
        vx = vx + ex
        # insert-y: entry from match / insert-x one column back, self loop
        base, ky = _best3(cM[W + l] + t02, cX[W + l] + t12, cY[W + l] + t22,
                          16.0, 32.0)
        cM[2 * W + l] = vm
        cX[2 * W + l] = vx
        cY[2 * W + l] = base + ey[W + l]
        tb[W + l] = np.uint8(k + kx + ky)


@numba.njit(cache=True)
def _vit_lanes(cM, cX, cY, tb, ey, Q, v0, V, L, x0, t02, t12, t22):
    """The insert-y carries of one row (see the section comment): ``v0``
    (W,) gets the true value of each lane's first cell, lanes left to right
    (``x0``: insert-x at column 0; match is -inf there), and every later
    cell becomes ``max(segment, v0 + Q)``, its insert-y choice the self
    loop where the carry wins.  ``V`` (_VCH W,): scratch.  Exact on grid
    scores."""
    last = (L - 1) * W
    mp = _NEG
    xp = x0
    yp = _NEG
    for k in range(W):
        if k > 0:
            mp = cM[W + last + k - 1]
            xp = cX[W + last + k - 1]
            yp = max(cY[W + last + k - 1], v0[k - 1] + Q[last + k - 1])
        base, ky = _best3(mp + t02, xp + t12, yp + t22, 16.0, 32.0)
        v = base + ey[k]
        tb[k] = np.uint8((tb[k] & 0x0F) + int(ky))
        cY[W + k] = v
        v0[k] = v
    # the carry wins on a prefix of each lane (see the section comment):
    # chunks of _VCH stripe rows, all lanes side by side, until one where
    # no carry wins
    n = L * W
    for r in range(_VCH):
        for k in range(W):
            V[r * W + k] = v0[k]
    for a in range(W, n, _VCH * W):
        b = min(a + _VCH * W, n)
        c_y = cY[W + a:W + b]
        q = Q[a:b]
        t = tb[a:b]
        wins = 0
        for j in range(b - a):
            c = V[j] + q[j]
            w = c > c_y[j]
            c_y[j] = c if w else c_y[j]
            t[j] = ((t[j] & 0x0F) | 0x20) if w else t[j]
            wins += w
        if wins == 0:
            break


@numba.njit(cache=True)
def _lane_sums(eys, t22, L):
    """Q[l*W + k] = sum over stripe rows 1..l of lane k of t22 + ey (0 at
    stripe row 0): the carried insert-y run's score from a lane's first
    cell."""
    Q = np.empty(L * W)
    for k in range(W):
        Q[k] = 0.0
    for l in range(1, L):
        for k in range(W):
            Q[l * W + k] = Q[(l - 1) * W + k] + (t22 + eys[l * W + k])
    return Q


@numba.njit(cache=True)
def viterbi3_striped(log_start, log_trans, log_end, em_rows, slot, ey_row,
                     log_ins_x, x, M, states_out, ops_out):
    """Three-state Viterbi without a band on the striped layout; ``em_rows``
    (letters of x, M + 1) and ``ey_row`` (M + 1) as ``pair_decode`` gathers
    them (column 0 = -inf), ``log_ins_x`` the insert-x log odds by letter.
    Returns (score, path length) like ``pair_decode._viterbi3_core``."""
    N = x.shape[0]
    L, n = stripe_geometry(M)
    t00 = log_trans[0, 0]
    t01 = log_trans[0, 1]
    t02 = log_trans[0, 2]
    t10 = log_trans[1, 0]
    t11 = log_trans[1, 1]
    t12 = log_trans[1, 2]
    t20 = log_trans[2, 0]
    t21 = log_trans[2, 1]
    t22 = log_trans[2, 2]
    ns = em_rows.shape[0]
    ems = np.empty((ns, n))
    for a in range(ns):
        to_stripes(em_rows[a], M, L, ems[a], _NEG)
    eys = np.empty(n)
    to_stripes(ey_row, M, L, eys, _NEG)
    Q = _lane_sums(eys, t22, L)
    v0 = np.empty(W)
    vq = np.empty(_VCH * W)  # scratch of _vit_lanes
    width = n + 1  # column 0, then the striped columns
    # every byte the traceback reads is written (np.empty: no zeroing pass)
    tb = np.empty((N + 1) * width, np.uint8)
    tb[0] = 0
    V = np.full((2, 3, n + W), _NEG)
    # row 0: Begin, then insert-y along the row
    tmp = np.full(M + 1, _NEG)
    v = log_start[2] + ey_row[1]
    tmp[1] = v
    codes = np.zeros(M + 1, np.uint8)
    for c in range(2, M + 1):
        p = v + t22
        if p > _NEG:
            codes[c] = 2 << 4
        v = max(_NEG, p) + ey_row[c]
        tmp[c] = v
    to_stripes(tmp, M, L, V[0, 2, W:], _NEG)
    _set_head(V[0, 2], L, _NEG)
    row0 = tb[1:width]
    for c in range(1, M + 1):
        row0[stripe_index(c, L)] = codes[c]
    x0 = _NEG  # insert-x at column 0 of the previous row
    for i in range(1, N + 1):
        pv = V[(i - 1) & 1]
        cv = V[i & 1]
        xi = x[i - 1]
        ex = log_ins_x[xi]
        em = ems[slot[xi]]
        tr = tb[i * width:(i + 1) * width]
        # column 0: insert-x only
        if i == 1:
            nx0 = log_start[1] + ex
            tr[0] = 0
        else:
            a = _NEG + t01  # match at column 0: -inf
            b = x0 + t11
            c = _NEG + t21
            k = 0
            if b > a:
                a = b
                k = 1
            if c > a:
                a = c
                k = 2
            nx0 = a + ex
            tr[0] = np.uint8(k << 2)
        beg = log_start[0] + em[0] if i == 1 else _NEG
        _vit_pass(em, eys, ex, pv[0], pv[1], pv[2], cv[0], cv[1], cv[2],
                  tr[1:], t00, t10, t20, t01, t11, t21, t02, t12, t22, beg, n)
        _vit_lanes(cv[0], cv[1], cv[2], tr[1:], eys, Q, v0, vq, L, nx0, t02,
                   t12, t22)
        _set_head(cv[0], L, _NEG)
        _set_head(cv[1], L, nx0)
        _set_head(cv[2], L, _NEG)
        x0 = nx0
    idx = W + stripe_index(M, L)
    cv = V[N & 1]
    score = _NEG
    s_end = -1
    for s in range(3):
        v = cv[s, idx] + log_end[s]
        if v > score:
            score = v
            s_end = s
    if s_end < 0:
        return _NEG, 0
    # traceback (the predecessor state of s in bits 2s, 2s+1)
    i = N
    j = M
    s = s_end
    Lp = 0
    while True:
        states_out[Lp] = s
        ops_out[Lp] = s
        Lp += 1
        pi = i - 1 if s != 2 else i
        pj = j - 1 if s != 1 else j
        if pi == 0 and pj == 0:
            break
        pos = 0 if j == 0 else 1 + stripe_index(j, L)
        s = (tb[i * width + pos] >> (2 * s)) & 3
        i = pi
        j = pj
    reverse_path(states_out, ops_out, Lp)
    return score, Lp
