"""Numba kernels for plain hidden Markov models.

Every kernel works on a batch of sequences laid end to end: ``offsets`` (int64,
shape (S + 1,)) delimits sequence ``s`` as rows ``offsets[s]:offsets[s + 1]``.
Emissions reach the kernels as a *table* and an *index*: the emission
likelihood of position ``p`` in state ``k`` is ``table[index[p], k]``. A generic
emission family passes its (T, K) ``frameprob`` with ``index = arange(T)``; a
categorical model passes ``emissionprob.T`` (M, K) with ``index = symbols``, so
no T x K likelihood array is ever built (not even for the categorical
posteriors). Emission counts are posteriors summed onto table rows.

Every operation goes through one driver, `_run`, with an operation code: its
chunks run on ``numba.get_num_threads()`` Python threads (`_threads`; the
chunk kernels release the GIL) through one chunk kernel, compiled once for
every layout -- `_run_chunk` for the forward-backward operations,
`_run_chunk_viterbi` for Viterbi, so that fitting never compiles the
Viterbi kernels nor decoding the others. Only what
the operation needs is computed and allocated: no transition counts for
posteriors; the posteriors are written over the stored forward variables
(per-sequence layout), so posteriors need a single T x K array.

Two loop layouts are used, picked by ``_use_lanes``:

* *lanes* (K <= 16, or K <= 12 for Viterbi, and several sequences): a chunk of sequences is stepped
  together, state-major with the sequence ("lane") index innermost, so the inner
  loops run contiguously across sequences and vectorise even for K = 2..8.
  Sequences in a chunk are sorted by decreasing length, so the sequences still
  running at step t are always a prefix of the lanes; unequal lengths are exact.
  The forward variables of a chunk are stored packed per step in the same
  layout, so forward and backward passes stream through them contiguously.
* *per sequence* (many states or few sequences): each sequence on its own with
  the state index innermost (transition rows, or rows of the transposed
  transition matrix, read contiguously).
* *split* (the per-sequence layout with fewer than ``_SPLIT_BELOW_SEQS``
  sequences, each at least ``_SPLIT_MIN_LENGTH`` long): two tasks per
  sequence, so two threads have work even for a single sequence.
  Phase 0: one task runs the forward pass over the first half, the other the
  backward pass (its own scaling) over the second half down to the last
  position of the first half; log P = log(alpha . beta) there. Phase 1
  (posteriors, counts): each task turns back over its own half from the other
  half's vector -- backward over the first half, forward over the second --
  computing the posteriors of its positions and the expected transitions into
  them. Two K^2 passes per task and one T x K array, as in the per-sequence
  layout. Viterbi: the Viterbi sweep over the first half and a backward
  max-product sweep over the second meet at the last position of the first
  half, whose best state (lowest index on ties) is traced back through the
  first half and forward through the second.

Numerics: forward/backward in probability space with per-step scaling by the
row sum (the scaled forward variables sum to one). The log of the scale
factors is accumulated through a running product that is flushed to a log only
every few hundred steps, so there is no ``log`` in the inner loop. A step whose
scale factor is below the smallest normal double (2.2e-308), in particular 0,
marks the sequence as having probability zero: its log-likelihood is ``-inf``,
its posteriors are all zero and it adds nothing to the expected counts.
Viterbi runs in log space, with the same operation order as hmmlearn
(``max_i(delta[i] + log_transmat[i, j]) + log_frameprob[j]``); ties are broken
toward the lowest state index, both for the predecessor and for the final state
(split layout: for the midpoint state and each successor after it).
The sweep computes maxima only (plain vector max, see `_max_plus1`) and stores
the T x K score lattice; the backtrack re-derives each predecessor from the
same sums (contiguous rows of the transposed log_transmat), K operations per
position. (Tracking argmax indices in the sweep instead would add a compare
and a blend to each of its K^2 terms per position.) Sums of products in the inner loops
(`_lin_comb`) combine four terms per pass but keep the order of a plain loop.
The lanes layout's K x K step goes in 4 x 4 blocks (`_mat_comb`,
`_mat_max_plus`: four input rows update four output rows per pass), with
the same values as the row-by-row calls.

Determinism: sequences are split into chunks by a rule that does not depend on
the thread count; each chunk accumulates its own partial statistics, and the
partials are reduced in chunk order. Results are identical for any number of
threads.
"""

import math

import numba
import numpy as np

from ._threads import run_chunks

# Scale factors below this (the smallest normal double) count as probability 0:
# their reciprocal would overflow.
_TINY = 2.2250738585072014e-308
# Running products of scale factors stay within [1e-200, 1e200]; factors outside
# [1e-100, 1e100] are logged directly, so the product can neither under- nor
# overflow.
_FLUSH = 1e200
_DIRECT = 1e100

# Lanes layout when K is at most this (_LANE_MAX_STATES_VITERBI for Viterbi)
# and there are at least _LANE_MIN_SEQS sequences; chunks hold at most
# _LANE_WIDTH sequences. (Measured: beyond these K the per-sequence layout,
# whose inner loops run over K contiguous states, is as fast or faster.)
_LANE_MAX_STATES = 16
_LANE_MAX_STATES_VITERBI = 12
# Lanes layout, expected transitions: per-lane partial sums below this K.
_XACC_PER_LANE_BELOW = 8
_LANE_MIN_SEQS = 4
_LANE_WIDTH = 32
# The K x K products of the lanes layout run over a multiple of this many
# lanes: LLVM vectorises those loops 16 lanes per iteration (4 x 4 doubles)
# and leaves the rest to a scalar tail, so 25 lanes took about twice as long
# per lane as 32 (measured at K = 16). The extra lanes are padding or
# sequences that have ended; their values stay finite and are never read.
_LANE_BLOCK = 16
# Per-sequence layout: at most this many chunks (partial statistics).
_SEQ_MAX_CHUNKS = 64
# Split layout (when the per-sequence layout is used): fewer sequences than this,
# each at least this long (measured: two tasks per sequence cost ~5% at one
# thread and balance two threads for one to a few sequences).
_SPLIT_BELOW_SEQS = 8
_SPLIT_MIN_LENGTH = 64

_jit = numba.njit(cache=True, nogil=True)
# Small helpers called in inner loops: inlined at the Numba IR level (numba
# does not inline separately compiled functions, and a call costs more than a
# short loop).
_ijit = numba.njit(cache=True, nogil=True, inline="always")


# ---------------------------------------------------------------- helpers


@_ijit
def _scale_step(c, prod, acc):
    """Return (reciprocal, prod, acc) after folding scale factor ``c`` in."""
    if c < _TINY:
        return 0.0, 1.0, -np.inf
    if c > 1.0 / _DIRECT and c < _DIRECT:
        prod *= c
        if prod < 1.0 / _FLUSH or prod > _FLUSH:
            acc += math.log(prod)
            prod = 1.0
    else:
        acc += math.log(c)
    return 1.0 / c, prod, acc


@_ijit
def _rescale(v, prod, acc):
    """Divide v by its sum, folding the sum in (`_scale_step`); returns
    (reciprocal, prod, acc)."""
    c = 0.0
    for k in range(v.shape[0]):
        c += v[k]
    r, prod, acc = _scale_step(c, prod, acc)
    for k in range(v.shape[0]):
        v[k] *= r
    return r, prod, acc


@_ijit
def _add_transitions(n_trans, xacc, transmat):
    """n_trans += xacc * transmat (expected transitions from the summed
    alpha_t[i] * w_{t+1}[j] products)."""
    for i in range(transmat.shape[0]):
        for j in range(transmat.shape[1]):
            n_trans[i, j] += xacc[i, j] * transmat[i, j]


# Inner kernels over a row of n values (lanes, or states in the per-sequence
# layout). Four terms per pass, so that each pass over y does four
# multiply-adds (or max-adds) per load/store of y; terms are still combined in
# order of the row index, as a plain loop would.


@_ijit
def _lin_comb(y, x, coef, n, add):
    """y[:n] = sum_r x[r, :n] * coef[r] (+ y[:n] if ``add``), summed in order
    of r (after y)."""
    m = coef.shape[0]
    if not add:
        for l in range(n):
            y[l] = 0.0
    r = 0
    while r + 4 <= m:
        c0 = coef[r]
        c1 = coef[r + 1]
        c2 = coef[r + 2]
        c3 = coef[r + 3]
        x0 = x[r]
        x1 = x[r + 1]
        x2 = x[r + 2]
        x3 = x[r + 3]
        for l in range(n):
            y[l] = y[l] + x0[l] * c0 + x1[l] * c1 + x2[l] * c2 + x3[l] * c3
        r += 4
    while r < m:
        c0 = coef[r]
        x0 = x[r]
        for l in range(n):
            y[l] = y[l] + x0[l] * c0
        r += 1


@_ijit
def _block4(coef, r, j):
    """The 4 x 4 block coef[r:r+4, j:j+4] as a flat tuple (row-major), so
    the block kernels keep it in registers."""
    return (coef[r, j], coef[r, j + 1], coef[r, j + 2], coef[r, j + 3],
            coef[r + 1, j], coef[r + 1, j + 1], coef[r + 1, j + 2],
            coef[r + 1, j + 3],
            coef[r + 2, j], coef[r + 2, j + 1], coef[r + 2, j + 2],
            coef[r + 2, j + 3],
            coef[r + 3, j], coef[r + 3, j + 1], coef[r + 3, j + 2],
            coef[r + 3, j + 3])


@_ijit
def _lin_comb4x4(y0, y1, y2, y3, x0, x1, x2, x3, coef, r, j, n):
    """y_k[:n] += sum_{q<4} x_q[:n] * coef[r + q, j + k] for k < 4, each
    output summed in order of q, as `_lin_comb` does."""
    c = _block4(coef, r, j)
    for l in range(n):
        a0 = x0[l]
        a1 = x1[l]
        a2 = x2[l]
        a3 = x3[l]
        v0 = y0[l] + a0 * c[0] + a1 * c[4] + a2 * c[8] + a3 * c[12]
        v1 = y1[l] + a0 * c[1] + a1 * c[5] + a2 * c[9] + a3 * c[13]
        v2 = y2[l] + a0 * c[2] + a1 * c[6] + a2 * c[10] + a3 * c[14]
        v3 = y3[l] + a0 * c[3] + a1 * c[7] + a2 * c[11] + a3 * c[15]
        y0[l] = v0
        y1[l] = v1
        y2[l] = v2
        y3[l] = v3


@_ijit
def _mat_comb(y, x, coef, n):
    """y[j, :n] = sum_r x[r, :n] * coef[r, j] for every j, each summed in
    order of r (the same values as `_lin_comb` per output row).

    Outputs and inputs go in 4 x 4 blocks: each pass loads four input rows
    and updates four output rows, half the loads and stores per
    multiply-add of four separate `_lin_comb` calls (measured: lanes forward
    at K = 16 about 1.2x faster). Rows left over (K not a multiple of 4) take
    `_lin_comb`.
    """
    m = coef.shape[0]
    k_out = coef.shape[1]
    m4 = m - m % 4
    j4 = k_out - k_out % 4
    for j in range(0, j4, 4):
        y0 = y[j]
        y1 = y[j + 1]
        y2 = y[j + 2]
        y3 = y[j + 3]
        for l in range(n):
            y0[l] = 0.0
            y1[l] = 0.0
            y2[l] = 0.0
            y3[l] = 0.0
        for r in range(0, m4, 4):
            _lin_comb4x4(y0, y1, y2, y3, x[r], x[r + 1], x[r + 2], x[r + 3],
                         coef, r, j, n)
        for r in range(m4, m):
            xr = x[r]
            d0 = coef[r, j]
            d1 = coef[r, j + 1]
            d2 = coef[r, j + 2]
            d3 = coef[r, j + 3]
            for l in range(n):
                a = xr[l]
                y0[l] = y0[l] + a * d0
                y1[l] = y1[l] + a * d1
                y2[l] = y2[l] + a * d2
                y3[l] = y3[l] + a * d3
    for j in range(j4, k_out):
        _lin_comb(y[j], x, coef[:, j], n, False)


@_ijit
def _max_plus1(dst, src, x, c, n):
    """dst[:n] = max(src[:n], x[:n] + c), src kept on ties.

    Reading one buffer and writing another lets this compile to a plain
    vector max; updating a single buffer in place lets LLVM turn the select
    into a conditional store, which vectorises as a masked store (vmaskmovpd),
    several times slower on some x86 cores.
    """
    for l in range(n):
        v = x[l] + c
        cur = src[l]
        dst[l] = v if v > cur else cur


@_ijit
def _max_plus(y, buf_a, buf_b, x, coef, n):
    """y[:n] = max_r (x[r, :n] + coef[r]) (buf_a, buf_b: scratch)."""
    m = coef.shape[0]
    c0 = coef[0]
    x0 = x[0]
    for l in range(n):
        buf_a[l] = x0[l] + c0
    r = 1
    while r + 1 < m:
        _max_plus1(buf_b, buf_a, x[r], coef[r], n)
        _max_plus1(buf_a, buf_b, x[r + 1], coef[r + 1], n)
        r += 2
    if r < m:
        _max_plus1(buf_b, buf_a, x[r], coef[r], n)
        for l in range(n):
            y[l] = buf_b[l]
    else:
        for l in range(n):
            y[l] = buf_a[l]


@_ijit
def _mx(a, b):
    return a if a > b else b


@_ijit
def _max4(a0, a1, a2, a3, c0, c1, c2, c3):
    return _mx(_mx(a0 + c0, a1 + c1), _mx(a2 + c2, a3 + c3))


@_ijit
def _max_plus4x4(y0, y1, y2, y3, x0, x1, x2, x3, coef, r, j, n, first):
    """y_k[:n] = max(y_k[:n], max_{q<4} x_q[:n] + coef[r + q, j + k]) for
    k < 4 (``first``: without the old y_k). Each output is stored once per
    pass, unconditionally, so the maxima compile to vector max
    instructions; the test of ``first`` stays outside the loops (inside, it
    kept them from vectorising: 2x slower at K = 16)."""
    c = _block4(coef, r, j)
    if first:
        for l in range(n):
            a0 = x0[l]
            a1 = x1[l]
            a2 = x2[l]
            a3 = x3[l]
            y0[l] = _max4(a0, a1, a2, a3, c[0], c[4], c[8], c[12])
            y1[l] = _max4(a0, a1, a2, a3, c[1], c[5], c[9], c[13])
            y2[l] = _max4(a0, a1, a2, a3, c[2], c[6], c[10], c[14])
            y3[l] = _max4(a0, a1, a2, a3, c[3], c[7], c[11], c[15])
    else:
        for l in range(n):
            a0 = x0[l]
            a1 = x1[l]
            a2 = x2[l]
            a3 = x3[l]
            y0[l] = _mx(y0[l], _max4(a0, a1, a2, a3, c[0], c[4], c[8], c[12]))
            y1[l] = _mx(y1[l], _max4(a0, a1, a2, a3, c[1], c[5], c[9], c[13]))
            y2[l] = _mx(y2[l], _max4(a0, a1, a2, a3, c[2], c[6], c[10], c[14]))
            y3[l] = _mx(y3[l], _max4(a0, a1, a2, a3, c[3], c[7], c[11], c[15]))


@_ijit
def _mat_max_plus(y, buf_a, buf_b, x, coef, coef_t, n):
    """y[j, :n] = max_r (x[r, :n] + coef[r, j]) for every j (``coef_t`` is
    ``coef.T``, for the rows `_max_plus` takes when K is not a multiple of
    4). A maximum is exact, so the values are those of `_max_plus`; 4 x 4
    blocks as in `_mat_comb`."""
    m = coef.shape[0]
    k_out = coef.shape[1]
    if m % 4 != 0:
        for j in range(k_out):
            _max_plus(y[j], buf_a, buf_b, x, coef_t[j], n)
        return
    j4 = k_out - k_out % 4
    for j in range(0, j4, 4):
        for r in range(0, m, 4):
            _max_plus4x4(y[j], y[j + 1], y[j + 2], y[j + 3], x[r], x[r + 1],
                         x[r + 2], x[r + 3], coef, r, j, n, r == 0)
    for j in range(j4, k_out):
        _max_plus(y[j], buf_a, buf_b, x, coef_t[j], n)


# ------------------------------------------------------- lanes layout


@_ijit
def _lanes_padded(n, cap):
    """n rounded up to a multiple of _LANE_BLOCK, at most cap."""
    m = (n + _LANE_BLOCK - 1) // _LANE_BLOCK * _LANE_BLOCK
    return m if m < cap else cap


@_jit
def _lanes_setup(offsets, seqs):
    n_lanes = seqs.shape[0]
    base = np.empty(n_lanes, np.int64)
    lens = np.empty(n_lanes, np.int64)
    for lane in range(n_lanes):
        s = seqs[lane]
        base[lane] = offsets[s]
        lens[lane] = offsets[s + 1] - offsets[s]
    return base, lens


@_jit
def _lanes_forward(startprob, transmat, table, index, offsets, seqs,
                   logprob, alpha_buf, rc_buf, store):
    """Scaled forward pass over one chunk (lanes sorted by decreasing length).

    Writes logprob[seq] (without log_offset); if ``store``, the scaled forward
    variables and reciprocal scale factors of each step, packed in the lanes
    layout: step t (n_t lanes running) appends an (n_states, n_t) block to
    ``alpha_buf`` and n_t values to ``rc_buf`` (each of size sum of lengths
    times n_states, resp. 1), so both passes stream through them
    contiguously.
    """
    n_states = startprob.shape[0]
    n_lanes = seqs.shape[0]
    base, lens = _lanes_setup(offsets, seqs)
    cap = _lanes_padded(n_lanes, n_lanes + _LANE_BLOCK)
    alpha = np.zeros((n_states, cap))
    nxt = np.zeros((n_states, cap))
    recip = np.empty(n_lanes)
    prod = np.ones(n_lanes)
    acc = np.zeros(n_lanes)
    rows = np.empty(n_lanes, np.int64)
    s_off = 0
    r_off = 0

    for lane in range(n_lanes):
        row = index[base[lane]]
        for k in range(n_states):
            alpha[k, lane] = startprob[k] * table[row, k]
    n = n_lanes
    t = 0
    while True:
        for lane in range(n):
            recip[lane] = 0.0
        for k in range(n_states):
            for lane in range(n):
                recip[lane] += alpha[k, lane]
        for lane in range(n):
            r, p, a = _scale_step(recip[lane], prod[lane], acc[lane])
            recip[lane] = r
            prod[lane] = p
            acc[lane] = a
        for k in range(n_states):
            for lane in range(n):
                alpha[k, lane] *= recip[lane]
        if store:
            for lane in range(n):
                rc_buf[r_off + lane] = recip[lane]
            for k in range(n_states):
                o = s_off + k * n
                for lane in range(n):
                    alpha_buf[o + lane] = alpha[k, lane]
            r_off += n
            s_off += n_states * n
        t += 1
        while n > 0 and lens[n - 1] <= t:
            n -= 1
        if n == 0:
            break
        _mat_comb(nxt, alpha, transmat, _lanes_padded(n, cap))
        for lane in range(n):
            rows[lane] = index[base[lane] + t]
        for j in range(n_states):
            for lane in range(n):
                nxt[j, lane] *= table[rows[lane], j]
        alpha, nxt = nxt, alpha

    for lane in range(n_lanes):
        logprob[seqs[lane]] = acc[lane] + math.log(prod[lane])


@_jit
def _lanes_backward(transmat, table, index, offsets, seqs, alpha_buf, rc_buf,
                    gamma, n_table, n_start, n_trans, want_trans, want_gamma,
                    want_emit):
    """Backward pass over one chunk, reading the forward variables that
    `_lanes_forward` packed into ``alpha_buf`` / ``rc_buf`` (overwritten).

    Adds the t = 0 posteriors onto ``n_start``; if ``want_trans``, the
    expected transitions onto ``n_trans``; if ``want_emit``, the posteriors
    onto ``n_table`` rows; if ``want_gamma``, writes the posteriors into the
    rows of ``gamma`` (n_samples, n_states).
    """
    n_states = transmat.shape[0]
    n_lanes = seqs.shape[0]
    base, lens = _lanes_setup(offsets, seqs)
    cap = _lanes_padded(n_lanes, n_lanes + _LANE_BLOCK)
    beta = np.zeros((n_states, cap))
    w = np.zeros((n_states, cap))
    norm = np.empty(n_lanes)
    rows = np.empty(n_lanes, np.int64)
    xacc = np.zeros((n_states, n_states))
    # expected transitions: with few states, per-lane sums (vectorised over
    # lanes, added up at the end); otherwise one matrix row per pass
    per_lane = n_states < _XACC_PER_LANE_BELOW
    x_lane = np.zeros((n_states * n_states if want_trans and per_lane else 0,
                       n_lanes))
    w_t = np.empty((n_lanes, n_states))
    s_off = 0
    r_off = 0
    for lane in range(n_lanes):
        s_off += lens[lane]
    r_off = s_off
    s_off *= n_states

    t = lens[0] - 1
    n_prev = 0  # lanes running at t + 1
    r_prev = 0  # their offset in rc_buf
    n = 0
    while n < n_lanes and lens[n] > t:
        n += 1
    while True:
        # w = frame(t+1) * beta(t+1) / c(t+1) for lanes running at t + 1
        if n_prev > 0:
            for lane in range(n_prev):
                rows[lane] = index[base[lane] + t + 1]
                norm[lane] = rc_buf[r_prev + lane]
            for j in range(n_states):
                for lane in range(n_prev):
                    w[j, lane] = table[rows[lane], j] * beta[j, lane] * norm[lane]
            _mat_comb(beta, w, transmat.T, _lanes_padded(n_prev, cap))
        for k in range(n_states):
            for lane in range(n_prev, n):
                beta[k, lane] = 1.0
        s_off -= n_states * n
        r_off -= n
        abuf = alpha_buf[s_off:s_off + n_states * n].reshape((n_states, n))
        if want_trans and n_prev > 0 and per_lane:
            for i in range(n_states):
                a_i = abuf[i]
                for j in range(n_states):
                    x_ij = x_lane[i * n_states + j]
                    w_j = w[j]
                    for lane in range(n_prev):
                        x_ij[lane] += a_i[lane] * w_j[lane]
        elif want_trans and n_prev > 0:
            # xacc += alpha(t) w(t+1)^T, lane by lane (contiguous rows)
            for lane in range(n_prev):
                for j in range(n_states):
                    w_t[lane, j] = w[j, lane]
            for i in range(n_states):
                _lin_comb(xacc[i], w_t[:n_prev], abuf[i, :n_prev], n_states,
                          True)
        # posteriors
        for lane in range(n):
            norm[lane] = 0.0
        for k in range(n_states):
            for lane in range(n):
                g = abuf[k, lane] * beta[k, lane]
                abuf[k, lane] = g
                norm[lane] += g
        for lane in range(n):
            s = norm[lane]
            norm[lane] = 1.0 / s if s > 0.0 else 0.0
        for k in range(n_states):
            for lane in range(n):
                abuf[k, lane] *= norm[lane]
        if want_gamma:
            for lane in range(n):
                pos = base[lane] + t
                for k in range(n_states):
                    gamma[pos, k] = abuf[k, lane]
        if want_emit:
            for lane in range(n):
                row = index[base[lane] + t]
                for k in range(n_states):
                    n_table[row, k] += abuf[k, lane]
        if t == 0:
            for k in range(n_states):
                for lane in range(n):
                    n_start[k] += abuf[k, lane]
            break
        t -= 1
        n_prev = n
        r_prev = r_off
        while n < n_lanes and lens[n] > t:
            n += 1

    if want_trans:
        if per_lane:
            for i in range(n_states):
                for j in range(n_states):
                    x_ij = x_lane[i * n_states + j]
                    acc = 0.0
                    for lane in range(n_lanes):
                        acc += x_ij[lane]
                    xacc[i, j] = acc
        _add_transitions(n_trans, xacc, transmat)


@_jit
def _backtrack(log_transmat_t, lattice, start, stop, last, path):
    """Recover the path from the stored lattice, re-deriving each predecessor
    of state k as the lowest index i maximising lattice[t - 1, i] +
    log_transmat[i, k] (the same sums the forward sweep maximised; column k
    of log_transmat is row k of log_transmat_t)."""
    n_states = log_transmat_t.shape[0]
    k = last
    for pos in range(stop - 1, start, -1):
        path[pos] = k
        best = -np.inf
        kbest = 0
        for i in range(n_states):
            v = lattice[pos - 1, i] + log_transmat_t[k, i]
            if v > best:
                best = v
                kbest = i
        k = kbest
    path[start] = k


@_jit
def _lanes_viterbi(log_startprob, log_transmat, log_transmat_t, log_table,
                   index, offsets, seqs, logprob, path, lattice):
    n_states = log_startprob.shape[0]
    n_lanes = seqs.shape[0]
    base, lens = _lanes_setup(offsets, seqs)
    cap = _lanes_padded(n_lanes, n_lanes + _LANE_BLOCK)
    delta = np.zeros((n_states, cap))
    nxt = np.zeros((n_states, cap))
    buf_a = np.zeros(cap)
    buf_b = np.zeros(cap)
    rows = np.empty(n_lanes, np.int64)
    last = np.zeros(n_lanes, np.int64)

    for lane in range(n_lanes):
        row = index[base[lane]]
        for k in range(n_states):
            delta[k, lane] = log_startprob[k] + log_table[row, k]
    n = n_lanes
    t = 0
    while True:
        for lane in range(n):
            pos = base[lane] + t
            for k in range(n_states):
                lattice[pos, k] = delta[k, lane]
        t += 1
        n_old = n
        while n > 0 and lens[n - 1] <= t:
            n -= 1
        # lanes that just ended: best final state, lowest index on ties
        for lane in range(n, n_old):
            best = -np.inf
            kbest = 0
            for k in range(n_states):
                if delta[k, lane] > best:
                    best = delta[k, lane]
                    kbest = k
            logprob[seqs[lane]] = best
            last[lane] = kbest
        if n == 0:
            break
        for lane in range(n):
            rows[lane] = index[base[lane] + t]
        # max only (the argmax is re-derived when backtracking)
        _mat_max_plus(nxt, buf_a, buf_b, delta, log_transmat, log_transmat_t,
                      _lanes_padded(n, cap))
        for j in range(n_states):
            for lane in range(n):
                nxt[j, lane] += log_table[rows[lane], j]
        delta, nxt = nxt, delta

    for lane in range(n_lanes):
        _backtrack(log_transmat_t, lattice, base[lane],
                   base[lane] + lens[lane], last[lane], path)


# ------------------------------------------------- per-sequence layout


@_jit
def _seq_forward(startprob, transmat, table, index, start, stop,
                 alpha_store, rc_store, store, alpha_out):
    """Scaled forward pass over positions [start, stop); returns the
    log-likelihood. If ``store``, the scaled forward variables and reciprocal
    scale factors go to ``alpha_store`` / ``rc_store`` rows; if ``alpha_out``
    has n_states entries, it receives the last (scaled) forward vector."""
    n_states = startprob.shape[0]
    alpha = np.empty(n_states)
    nxt = np.empty(n_states)
    prod = 1.0
    acc = 0.0
    row = index[start]
    for k in range(n_states):
        alpha[k] = startprob[k] * table[row, k]
    pos = start
    while True:
        r, prod, acc = _rescale(alpha, prod, acc)
        if store:
            rc_store[pos] = r
            for k in range(n_states):
                alpha_store[pos, k] = alpha[k]
        pos += 1
        if pos == stop:
            break
        _lin_comb(nxt, transmat, alpha, n_states, False)
        row = index[pos]
        for j in range(n_states):
            nxt[j] *= table[row, j]
        alpha, nxt = nxt, alpha
    if alpha_out.shape[0] > 0:
        for k in range(n_states):
            alpha_out[k] = alpha[k]
    return acc + math.log(prod)


@_jit
def _seq_beta(transmat_t, table, index, stop, last, beta_store, store,
              beta_out):
    """Backward variables with their own scaling (each vector sums to one),
    from position stop - 1 down to ``last``: beta_{stop-1} = 1 and
    beta_{t-1} = transmat @ (frame(t) * beta_t). Stored in ``beta_store``
    rows above ``last`` if ``store``; the vector at ``last`` goes to
    ``beta_out``. Returns the log of the product of the scale sums (``-inf``
    when they hit zero), so that beta_last = beta_out * exp(result)."""
    n_states = transmat_t.shape[0]
    beta = np.empty(n_states)
    w = np.empty(n_states)
    prod = 1.0
    acc = 0.0
    for k in range(n_states):
        beta[k] = 1.0
    pos = stop - 1
    while True:
        _, prod, acc = _rescale(beta, prod, acc)
        if pos == last:
            break
        if store:
            for k in range(n_states):
                beta_store[pos, k] = beta[k]
        row = index[pos]
        for j in range(n_states):
            w[j] = table[row, j] * beta[j]
        _lin_comb(beta, transmat_t, w, n_states, False)
        pos -= 1
    for k in range(n_states):
        beta_out[k] = beta[k]
    return acc + math.log(prod)


@_jit
def _seq_forward_post(transmat, table, index, lo, hi, alpha_prev, store2d,
                      n_table, n_trans, want_trans, want_gamma, want_emit):
    """Forward pass over positions [lo, hi) from the scaled forward vector at
    lo - 1 (``alpha_prev``), reading the backward vectors (any scaling) from
    ``store2d`` rows [lo, hi) and writing the posteriors over them (if
    ``want_gamma``); adds emission counts and the expected transitions into
    every position of [lo, hi). The normaliser Z_t = sum_j a_t[j] beta_t[j]
    of the unscaled next forward vector a_t gives both gamma_t and the
    transitions t-1 -> t."""
    n_states = transmat.shape[0]
    a = np.empty(n_states)
    nxt = np.empty(n_states)
    w = np.empty(n_states)
    for k in range(n_states):
        a[k] = alpha_prev[k]
    xacc = np.zeros((n_states if want_trans else 0, n_states))
    n_hist = 0
    hist_a = np.empty((4 if want_trans else 0, n_states))
    hist_w = np.empty((4 if want_trans else 0, n_states))
    for pos in range(lo, hi):
        _lin_comb(nxt, transmat, a, n_states, False)
        row = index[pos]
        z = 0.0
        for j in range(n_states):
            nxt[j] *= table[row, j]
            z += nxt[j] * store2d[pos, j]
        r = 1.0 / z if z > 0.0 else 0.0
        if want_trans:
            for k in range(n_states):
                hist_a[n_hist, k] = a[k]
                hist_w[n_hist, k] = table[row, k] * store2d[pos, k] * r
            n_hist += 1
            if n_hist == 4:
                for i in range(n_states):
                    _lin_comb(xacc[i], hist_w, hist_a[:, i], n_states, True)
                n_hist = 0
        c = 0.0
        for k in range(n_states):
            g = nxt[k] * store2d[pos, k] * r
            w[k] = g
            c += nxt[k]
        if want_gamma:
            for k in range(n_states):
                store2d[pos, k] = w[k]
        if want_emit:
            for k in range(n_states):
                n_table[row, k] += w[k]
        rc = 1.0 / c if c > 0.0 else 0.0
        for k in range(n_states):
            nxt[k] *= rc
        a, nxt = nxt, a
    if want_trans:
        if n_hist > 0:
            for i in range(n_states):
                _lin_comb(xacc[i], hist_w[:n_hist], hist_a[:n_hist, i],
                          n_states, True)
        _add_transitions(n_trans, xacc, transmat)


@_jit
def _seq_backward(transmat_t, table, index, start, stop, alpha_store,
                  rc_store, n_table, n_start, xacc, want_trans, want_gamma,
                  want_emit, beta_init):
    """Backward pass over positions [start, stop) (flags as in
    `_lanes_backward`), from beta = 1 at stop - 1 or from ``beta_init`` (any
    scaling) if it has n_states entries; xacc[i, j] collects sum_t
    alpha_t[i] * w_{t+1}[j] (multiply by transmat afterwards), four steps at a
    time (same order as step by step). w_{t+1} = frame(t+1) * beta_{t+1} *
    rc_{t+1} / s_{t+1}, s_{t+1} = sum(alpha_{t+1} * beta_{t+1}) (1 up to
    rounding when beta is scaled by the forward scale factors)."""
    n_states = transmat_t.shape[0]
    beta = np.ones(n_states)
    if beta_init.shape[0] > 0:
        for k in range(n_states):
            beta[k] = beta_init[k]
    w = np.empty(n_states)
    g = np.empty(n_states)
    n_hist = 0
    hist_a = np.empty((4 if want_trans else 0, n_states))
    hist_w = np.empty((4 if want_trans else 0, n_states))
    pos = stop - 1
    while True:
        s = 0.0
        for k in range(n_states):
            g[k] = alpha_store[pos, k] * beta[k]
            s += g[k]
        r = 1.0 / s if s > 0.0 else 0.0
        for k in range(n_states):
            g[k] *= r
        if want_gamma:
            for k in range(n_states):
                alpha_store[pos, k] = g[k]
        row = index[pos]
        if want_emit:
            for k in range(n_states):
                n_table[row, k] += g[k]
        if pos == start:
            for k in range(n_states):
                n_start[k] += g[k]
            if n_hist > 0:
                for i in range(n_states):
                    _lin_comb(xacc[i], hist_w[:n_hist], hist_a[:n_hist, i],
                              n_states, True)
            break
        rc = rc_store[pos] * r
        for j in range(n_states):
            w[j] = table[row, j] * beta[j] * rc
        pos -= 1
        if want_trans:
            for k in range(n_states):
                hist_a[n_hist, k] = alpha_store[pos, k]
                hist_w[n_hist, k] = w[k]
            n_hist += 1
            if n_hist == 4:
                for i in range(n_states):
                    _lin_comb(xacc[i], hist_w, hist_a[:, i], n_states, True)
                n_hist = 0
        _lin_comb(beta, transmat_t, w, n_states, False)


@_jit
def _viterbi_sweep(log_startprob, log_transmat, log_table, index, start, stop,
                   lattice):
    """Viterbi scores delta_t of positions [start, stop) into lattice rows."""
    n_states = log_startprob.shape[0]
    delta = np.empty(n_states)
    nxt = np.empty(n_states)
    buf_a = np.empty(n_states)
    buf_b = np.empty(n_states)
    row = index[start]
    for k in range(n_states):
        delta[k] = log_startprob[k] + log_table[row, k]
        lattice[start, k] = delta[k]
    for pos in range(start + 1, stop):
        _max_plus(nxt, buf_a, buf_b, log_transmat, delta, n_states)
        row = index[pos]
        for j in range(n_states):
            d = nxt[j] + log_table[row, j]
            delta[j] = d
            lattice[pos, j] = d


@_jit
def _seq_viterbi(log_startprob, log_transmat, log_transmat_t, log_table, index,
                 start, stop, path, lattice):
    n_states = log_startprob.shape[0]
    _viterbi_sweep(log_startprob, log_transmat, log_table, index, start, stop,
                   lattice)
    best = -np.inf
    k = np.int64(0)
    for j in range(n_states):
        if lattice[stop - 1, j] > best:
            best = lattice[stop - 1, j]
            k = j
    _backtrack(log_transmat_t, lattice, start, stop, k, path)
    return best


@_jit
def _viterbi_psi(log_transmat_t, log_table, index, stop, last, lattice,
                 psi_out):
    """Backward Viterbi scores psi_t(i) = best log-probability of positions
    (t, stop) given state i at t: psi_{stop-1} = 0 and psi_{t-1}(i) =
    max_j (log_transmat[i, j] + log_table[row(t), j] + psi_t(j)), down to
    ``last``; rows above ``last`` go to ``lattice``, psi_last to
    ``psi_out``."""
    n_states = log_transmat_t.shape[0]
    psi = np.zeros(n_states)
    v = np.empty(n_states)
    buf_a = np.empty(n_states)
    buf_b = np.empty(n_states)
    pos = stop - 1
    while pos > last:
        row = index[pos]
        for j in range(n_states):
            lattice[pos, j] = psi[j]
            v[j] = log_table[row, j] + psi[j]
        _max_plus(psi, buf_a, buf_b, log_transmat_t, v, n_states)
        pos -= 1
    for k in range(n_states):
        psi_out[k] = psi[k]


@_jit
def _viterbi_forward_track(log_transmat, log_table, index, lo, stop, first,
                           lattice, path):
    """Path over positions [lo, stop) after state ``first`` at lo - 1: each
    step takes the successor j maximising log_transmat[k, j] +
    log_table[row, j] + psi(j) (psi from `_viterbi_psi` in the lattice rows),
    the lowest index on ties."""
    n_states = log_transmat.shape[0]
    k = first
    for pos in range(lo, stop):
        row = index[pos]
        best = -np.inf
        kbest = 0
        for j in range(n_states):
            v = log_transmat[k, j] + log_table[row, j] + lattice[pos, j]
            if v > best:
                best = v
                kbest = j
        path[pos] = kbest
        k = kbest


# ------------------------------------------------------ batched driver

# Operations of `_run`.
_OP_FORWARD = 0      # log-likelihoods only
_OP_POSTERIORS = 1   # + posteriors (returned in place of the forward store)
_OP_COUNTS = 2       # + posteriors, start and transition counts
_OP_COUNTS_EMIT = 3  # + start, transition and per-table-row emission counts
_OP_VITERBI = 4      # Viterbi (tables are logs); returns the path


@_jit
def _split_task(c, phase, op, startprob, transmat, transmat_t, table, index,
                offsets, chunk_seqs, logprob, store2d, rc_store, path, meet,
                meet_log, n_start, n_trans, n_table):
    """Task c of the split layout: half ``c % 2`` of sequence
    ``chunk_seqs[c]``, split at ``mid`` (see `_run`).

    Phase 0 (every operation): the first half runs the forward pass over
    [start, mid), the second half the backward pass from stop - 1 down to
    mid - 1; they meet at mid - 1 (meet[c], meet_log[c]: the scaled vector
    and the log of its scale). With ``store``, the forward variables of the
    first half and the backward variables of the second half go to the rows
    of ``store2d`` they belong to. Phase 1 (posteriors, counts): the first
    half runs the backward pass over its rows from the second half's vector
    at mid - 1, the second half the forward pass over its rows from the first
    half's; each computes the posteriors of its rows and the expected
    transitions into them. Two K^2 passes per task, as one task per
    sequence does in the per-sequence layout.

    Viterbi is `_split_viterbi` (tables are logs): phase 0 runs the Viterbi
    sweep over the first half and the backward max-product (`_viterbi_psi`)
    over the second, meeting at mid - 1; `_run` picks the best state there
    (lowest index on ties) and leaves it in meet_log[second half's task];
    phase 1 backtracks the first half from it and tracks the second half
    forward."""
    s = chunk_seqs[c]
    half = c % 2
    start = offsets[s]
    stop = offsets[s + 1]
    mid = start + (stop - start) // 2
    store = op != _OP_FORWARD
    if phase == 0:
        if half == 0:
            meet_log[c] = _seq_forward(startprob, transmat, table, index,
                                       start, mid, store2d, rc_store, store,
                                       meet[c])
        else:
            meet_log[c] = _seq_beta(transmat_t, table, index, stop, mid - 1,
                                    store2d, store, meet[c])
        return
    n_states = startprob.shape[0]
    want_gamma = op == _OP_POSTERIORS or op == _OP_COUNTS
    want_trans = op == _OP_COUNTS or op == _OP_COUNTS_EMIT
    want_emit = op == _OP_COUNTS_EMIT
    lo = start if half == 0 else mid
    hi = mid if half == 0 else stop
    if logprob[s] == -np.inf:
        if want_gamma:
            for pos in range(lo, hi):
                for k in range(n_states):
                    store2d[pos, k] = 0.0
        return
    if half == 0:
        xacc = np.zeros((n_states if want_trans else 0, n_states))
        _seq_backward(transmat_t, table, index, start, mid, store2d, rc_store,
                      n_table[c if want_emit else 0], n_start[c], xacc,
                      want_trans, want_gamma, want_emit, meet[c + 1])
        if want_trans:
            _add_transitions(n_trans[c], xacc, transmat)
    else:
        _seq_forward_post(transmat, table, index, mid, stop, meet[c - 1],
                          store2d, n_table[c if want_emit else 0],
                          n_trans[c if want_trans else 0], want_trans,
                          want_gamma, want_emit)


@_jit
def _split_viterbi(c, phase, startprob, transmat, transmat_t, table, index,
                   offsets, chunk_seqs, store2d, path, meet, meet_log):
    """The Viterbi task c of the split layout (see `_split_task`)."""
    s = chunk_seqs[c]
    half = c % 2
    start = offsets[s]
    stop = offsets[s + 1]
    mid = start + (stop - start) // 2
    if phase == 0 and half == 0:
        _viterbi_sweep(startprob, transmat, table, index, start, mid,
                       store2d)
        for k in range(startprob.shape[0]):
            meet[c, k] = store2d[mid - 1, k]
    elif phase == 0:
        _viterbi_psi(transmat_t, table, index, stop, mid - 1, store2d,
                     meet[c])
    elif half == 0:
        _backtrack(transmat_t, store2d, start, mid,
                   np.int64(meet_log[c + 1]), path)
    else:
        _viterbi_forward_track(transmat, table, index, mid, stop,
                               np.int64(meet_log[c]), store2d, path)


@_jit
def _run_chunk(c, op, lanes, startprob, transmat, transmat_t, table, index,
               offsets, chunk_ptr, chunk_seqs, logprob, store2d, rc_store,
               path, n_start, n_trans, n_table, phase, split, meet,
               meet_log):
    """Operation ``op`` (any but Viterbi: `_run_chunk_viterbi`) on chunk c
    (see `_run`).

    The chunk writes only its own sequences' entries of the per-position
    arrays and its own partial statistics (row c of n_start, n_trans,
    n_table). In the split layout chunk c is task c (`_split_task`).
    """
    if split:
        _split_task(c, phase, op, startprob, transmat, transmat_t, table,
                    index, offsets, chunk_seqs, logprob, store2d, rc_store,
                    path, meet, meet_log, n_start, n_trans, n_table)
        return
    n_states = startprob.shape[0]
    store = op != _OP_FORWARD
    want_gamma = op == _OP_POSTERIORS or op == _OP_COUNTS
    want_trans = op == _OP_COUNTS or op == _OP_COUNTS_EMIT
    want_emit = op == _OP_COUNTS_EMIT
    seqs = chunk_seqs[chunk_ptr[c]:chunk_ptr[c + 1]]
    c_trans = c if want_trans else 0
    c_emit = c if want_emit else 0
    if lanes:
        # forward variables packed per chunk (see `_lanes_forward`)
        n_steps = 0
        if store:
            for s in seqs:
                n_steps += offsets[s + 1] - offsets[s]
        alpha_buf = np.empty(n_steps * n_states)
        rc_buf = np.empty(n_steps)
        _lanes_forward(startprob, transmat, table, index, offsets, seqs,
                       logprob, alpha_buf, rc_buf, store)
        if store:
            _lanes_backward(transmat, table, index, offsets, seqs, alpha_buf,
                            rc_buf, store2d, n_table[c_emit], n_start[c],
                            n_trans[c_trans], want_trans, want_gamma,
                            want_emit)
    else:
        xacc = np.zeros((n_states if want_trans else 0, n_states))
        for s in seqs:
            logprob[s] = _seq_forward(
                startprob, transmat, table, index, offsets[s], offsets[s + 1],
                store2d, rc_store, store, np.empty(0))
            if store:
                _seq_backward(transmat_t, table, index, offsets[s],
                              offsets[s + 1], store2d, rc_store,
                              n_table[c_emit], n_start[c], xacc, want_trans,
                              want_gamma, want_emit, np.empty(0))
        if want_trans:
            _add_transitions(n_trans[c], xacc, transmat)


@_jit
def _run_chunk_viterbi(c, lanes, startprob, transmat, transmat_t, table,
                       index, offsets, chunk_ptr, chunk_seqs, logprob,
                       store2d, path, phase, split, meet, meet_log):
    """Viterbi on chunk c (see `_run`)."""
    if split:
        _split_viterbi(c, phase, startprob, transmat, transmat_t, table,
                       index, offsets, chunk_seqs, store2d, path, meet,
                       meet_log)
        return
    seqs = chunk_seqs[chunk_ptr[c]:chunk_ptr[c + 1]]
    if lanes:
        _lanes_viterbi(startprob, transmat, transmat_t, table, index,
                       offsets, seqs, logprob, path, store2d)
    else:
        for s in seqs:
            logprob[s] = _seq_viterbi(
                startprob, transmat, transmat_t, table, index, offsets[s],
                offsets[s + 1], path, store2d)


# The chunks run on Python threads (`_threads.run_chunks`; the chunk kernels
# release the GIL), not in a compiled parallel loop, which would link the
# chunk kernel into its own module and optimise it again (about 40% of the
# cold compile).  Viterbi has its own chunk kernel so that fitting or
# scoring never compiles the Viterbi kernels, nor decoding the others.
def _drive(op, lanes, startprob, transmat, transmat_t, table, index, offsets,
           chunk_ptr, chunk_seqs, logprob, store2d, rc_store, path, n_start,
           n_trans, n_table, phase, split, meet, meet_log):
    """One parallel pass of `_run` over its chunks."""
    if op == _OP_VITERBI:
        def work(c):
            _run_chunk_viterbi(np.int64(c), lanes, startprob, transmat,
                               transmat_t, table, index, offsets, chunk_ptr,
                               chunk_seqs, logprob, store2d, path, phase,
                               split, meet, meet_log)
    else:
        def work(c):
            _run_chunk(np.int64(c), op, lanes, startprob, transmat,
                       transmat_t, table, index, offsets, chunk_ptr,
                       chunk_seqs, logprob, store2d, rc_store, path, n_start,
                       n_trans, n_table, phase, split, meet, meet_log)
    run_chunks(work, chunk_ptr.shape[0] - 1)


@_jit
def _sum_by_sequence(values, offsets):
    n_seqs = offsets.shape[0] - 1
    out = np.empty(n_seqs)
    for s in range(n_seqs):
        acc = 0.0
        for p in range(offsets[s], offsets[s + 1]):
            acc += values[p]
        out[s] = acc
    return out


# ------------------------------------------------------------- chunking


def _use_lanes(n_states, n_seqs, op):
    max_states = (_LANE_MAX_STATES_VITERBI if op == _OP_VITERBI
                  else _LANE_MAX_STATES)
    return n_states <= max_states and n_seqs >= _LANE_MIN_SEQS


def _use_split(offsets, op, lanes):
    """Split layout: few long sequences in the per-sequence layout -- two
    tasks per sequence, so that two threads have work even
    for one sequence. Depends on the data only, never on the thread count."""
    n_seqs = offsets.shape[0] - 1
    return (not lanes and 0 < n_seqs < _SPLIT_BELOW_SEQS
            and int(np.min(np.diff(offsets))) >= _SPLIT_MIN_LENGTH)


def _chunks(offsets, lanes):
    """Split sequences into chunks, independently of the thread count.

    Sequences are sorted by decreasing length (stable) and dealt onto the
    chunks in rounds, alternately forward and backward (snake order), so each
    chunk is itself sorted by decreasing length (required by the lanes
    layout) and any run of consecutive chunks -- what a static parallel
    schedule hands one thread -- gets a similar share of the work. In the
    per-sequence layout every chunk holds the same number of sequences (+-1
    in the last round): ceil(S / ceil(S / 64)) chunks.
    """
    n_seqs = offsets.shape[0] - 1
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")
    if lanes:
        n_chunks = -(-n_seqs // _LANE_WIDTH)
        n_chunks = max(n_chunks, min(4, n_seqs // _LANE_MIN_SEQS), 1)
    else:
        per = -(-n_seqs // _SEQ_MAX_CHUNKS)
        n_chunks = max(1, -(-n_seqs // per))
    members = [[] for _ in range(n_chunks)]
    for r, first in enumerate(range(0, n_seqs, n_chunks)):
        block = order[first:first + n_chunks]
        slots = range(len(block)) if r % 2 == 0 else range(n_chunks - 1, n_chunks - 1 - len(block), -1)
        for c, seq in zip(slots, block):
            members[c].append(seq)
    chunk_seqs = np.array([seq for m in members for seq in m], dtype=np.int64)
    chunk_ptr = np.zeros(n_chunks + 1, np.int64)
    chunk_ptr[1:] = np.cumsum([len(m) for m in members])
    return chunk_ptr, chunk_seqs


def _f64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def _i64(a):
    return np.ascontiguousarray(a, dtype=np.int64)


def _run(op, startprob, transmat, table, index, offsets):
    """Run operation ``op`` (``_OP_*``) on all sequences.

    Canonical dtypes and layouts are enforced here, so that each kernel is
    compiled once. Chunk c writes only its own sequences' entries and its own
    partial statistics; the partials are summed in chunk order afterwards, so
    the result does not depend on the thread count.

    Returns (logprob, per-position (n_samples, n_states) array: posteriors or
    Viterbi lattice, path, n_start, n_trans, n_table).
    """
    offsets = _i64(offsets)
    startprob = _f64(startprob)
    transmat = _f64(transmat)
    table = _f64(table)
    index = _i64(index)
    n_states = startprob.shape[0]
    n_pos = index.shape[0]
    n_seqs = offsets.shape[0] - 1
    lanes = _use_lanes(n_states, n_seqs, op)
    split = _use_split(offsets, op, lanes)
    if split:  # task c: half c % 2 of sequence c // 2
        chunk_seqs = np.repeat(np.arange(n_seqs, dtype=np.int64), 2)
        chunk_ptr = np.arange(2 * n_seqs + 1, dtype=np.int64)
    else:
        chunk_ptr, chunk_seqs = _chunks(offsets, lanes)
    n_chunks = chunk_ptr.shape[0] - 1
    viterbi = op == _OP_VITERBI
    store = op != _OP_FORWARD
    want_gamma = op in (_OP_POSTERIORS, _OP_COUNTS)
    want_trans = op in (_OP_COUNTS, _OP_COUNTS_EMIT)
    want_emit = op == _OP_COUNTS_EMIT
    # per position: the Viterbi lattice; the forward variables, overwritten
    # by the posteriors, in the per-sequence layout; only the posteriors in
    # the lanes layout (whose forward variables are kept per chunk)
    big = viterbi or (store and not lanes) or (lanes and want_gamma)
    store2d = np.empty((n_pos if big else 0, n_states))
    rc_store = np.empty(n_pos if store and not viterbi and not lanes else 0)
    path = np.empty(n_pos if viterbi else 0, np.int64)
    logprob = np.empty(offsets.shape[0] - 1)
    n_start = np.zeros((n_chunks, n_states))
    n_trans = np.zeros((n_chunks if want_trans else 1, n_states, n_states))
    n_table = np.zeros((n_chunks if want_emit else 1,
                        table.shape[0] if want_emit else 0, n_states))
    transmat_t = np.ascontiguousarray(transmat.T)
    meet = np.zeros((n_chunks if split else 0, n_states))
    meet_log = np.zeros(n_chunks if split else 0)
    _drive(op, lanes, startprob, transmat, transmat_t, table, index,
                offsets, chunk_ptr, chunk_seqs, logprob, store2d, rc_store,
                path, n_start, n_trans, n_table, 0, split, meet, meet_log)
    if split and viterbi:
        # best state at mid - 1 of each sequence (lowest index on ties)
        total = meet[0::2] + meet[1::2]
        best = np.argmax(total, axis=1)
        logprob[:] = total[np.arange(total.shape[0]), best]
        logprob[~np.isfinite(logprob)] = -np.inf
        meet_log[1::2] = best
        _drive(op, lanes, startprob, transmat, transmat_t, table, index,
                    offsets, chunk_ptr, chunk_seqs, logprob, store2d, rc_store,
                    path, n_start, n_trans, n_table, 1, split, meet, meet_log)
    elif split:
        # log P = log(alpha_{mid-1} . beta_{mid-1}) from the two halves
        with np.errstate(divide="ignore"):
            joint = np.log(np.einsum("sk,sk->s", meet[0::2], meet[1::2]))
        logprob[:] = meet_log[0::2] + meet_log[1::2] + joint
        logprob[~np.isfinite(logprob)] = -np.inf
        if op != _OP_FORWARD:
            _drive(op, lanes, startprob, transmat, transmat_t, table,
                        index, offsets, chunk_ptr, chunk_seqs, logprob,
                        store2d, rc_store, path, n_start, n_trans, n_table, 1,
                        split, meet, meet_log)
    return (logprob, store2d, path, _sum_parts(n_start), _sum_parts(n_trans),
            _sum_parts(n_table))


def _sum_parts(parts):
    """Sum partial statistics over the first axis, in chunk order."""
    out = parts[0].copy()
    for c in range(1, parts.shape[0]):
        out += parts[c]
    return out


def _arange_index(n_pos):
    return np.arange(n_pos, dtype=np.int64)


# ---------------------------------------------------------- public API


def forward_loglik(startprob, transmat, frameprob, log_offset, offsets):
    """Log-likelihood of each sequence (scaled forward algorithm).

    Parameters
    ----------
    startprob : array of shape (n_states,)
    transmat : array of shape (n_states, n_states)
    frameprob : array of shape (n_samples, n_states)
        Emission likelihoods up to the factor ``exp(log_offset[t])``.
    log_offset : array of shape (n_samples,)
    offsets : int64 array of shape (n_sequences + 1,)

    Returns
    -------
    logprob : array of shape (n_sequences,)
        Natural-log likelihoods; ``-inf`` for a zero-probability sequence.
    """
    logprob = _run(_OP_FORWARD, startprob, transmat, frameprob,
                   _arange_index(frameprob.shape[0]), offsets)[0]
    return logprob + _sum_by_sequence(_f64(log_offset), _i64(offsets))


def forward_loglik_categorical(startprob, transmat, emissionprob, symbols,
                               offsets):
    """Log-likelihood of each sequence for categorical emissions.

    ``emissionprob`` has shape (n_states, n_symbols); ``symbols`` (int64, shape
    (n_samples,)) holds codes in ``range(n_symbols)``. See `forward_loglik`.
    """
    return _run(_OP_FORWARD, startprob, transmat, emissionprob.T, symbols,
                offsets)[0]


def posteriors(startprob, transmat, frameprob, log_offset, offsets):
    """Forward-backward posteriors.

    Returns
    -------
    logprob : array of shape (n_sequences,)
    gamma : array of shape (n_samples, n_states)
        State posteriors; rows sum to one (all zero for a sequence of
        probability zero).
    """
    logprob, gamma = _run(_OP_POSTERIORS, startprob, transmat, frameprob,
                          _arange_index(frameprob.shape[0]), offsets)[:2]
    return logprob + _sum_by_sequence(_f64(log_offset), _i64(offsets)), gamma


def posteriors_categorical(startprob, transmat, emissionprob, symbols,
                           offsets):
    """Forward-backward posteriors for categorical emissions (no
    n_samples x n_states likelihood array is built).

    See `posteriors`.
    """
    logprob, gamma = _run(_OP_POSTERIORS, startprob, transmat, emissionprob.T,
                          symbols, offsets)[:2]
    return logprob, gamma


def expected_counts(startprob, transmat, frameprob, log_offset, offsets):
    """E-step sufficient statistics.

    Returns
    -------
    logprob : array of shape (n_sequences,)
    n_start : array of shape (n_states,)
        Sum over sequences of the posteriors at t = 0.
    n_trans : array of shape (n_states, n_states)
        Expected number of i -> j transitions.
    gamma : array of shape (n_samples, n_states)
        State posteriors.

    Sequences of probability zero contribute nothing to the counts.
    """
    logprob, gamma, _, n_start, n_trans, _ = _run(
        _OP_COUNTS, startprob, transmat, frameprob,
        _arange_index(frameprob.shape[0]), offsets)
    logprob = logprob + _sum_by_sequence(_f64(log_offset), _i64(offsets))
    return logprob, n_start, n_trans, gamma


def expected_counts_categorical(startprob, transmat, emissionprob, symbols,
                                offsets):
    """E-step sufficient statistics for categorical emissions.

    Returns
    -------
    logprob : array of shape (n_sequences,)
    n_start : array of shape (n_states,)
    n_trans : array of shape (n_states, n_states)
    n_emit : array of shape (n_states, n_symbols)
        Expected number of times state k emits symbol m.
    """
    logprob, _, _, n_start, n_trans, n_table = _run(
        _OP_COUNTS_EMIT, startprob, transmat, emissionprob.T, symbols,
        offsets)
    return logprob, n_start, n_trans, np.ascontiguousarray(n_table.T)


def viterbi(log_startprob, log_transmat, log_frameprob, offsets):
    """Most likely state path of each sequence (log space).

    Ties are broken toward the lowest state index (for each predecessor choice
    and for the final state; in the split layout -- the per-sequence layout
    (more than 12 states, or fewer than 4 sequences) with fewer than eight
    sequences, each at least 64 long -- for the state at the midpoint and for
    each successor after it). So between exactly equally likely paths (common
    with tied parameters) the one returned can depend on the other sequences
    of the call; its probability cannot. A sequence without any valid path
    gets logprob ``-inf`` and an arbitrary in-range path.

    Returns
    -------
    logprob : array of shape (n_sequences,)
        Log-probability of the best path (log_frameprob's scale).
    path : int64 array of shape (n_samples,)
    """
    res = _run(_OP_VITERBI, log_startprob, log_transmat, log_frameprob,
               _arange_index(log_frameprob.shape[0]), offsets)
    return res[0], res[2]


def viterbi_categorical(log_startprob, log_transmat, log_emissionprob,
                        symbols, offsets):
    """Viterbi for categorical emissions; ``log_emissionprob`` has shape
    (n_states, n_symbols). See `viterbi`."""
    res = _run(_OP_VITERBI, log_startprob, log_transmat, log_emissionprob.T,
               symbols, offsets)
    return res[0], res[2]
