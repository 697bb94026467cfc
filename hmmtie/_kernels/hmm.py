"""Numba kernels for plain hidden Markov models.

Every kernel works on a batch of sequences laid end to end: ``offsets`` (int64,
shape (S + 1,)) delimits sequence ``s`` as rows ``offsets[s]:offsets[s + 1]``.
Emissions reach the kernels as a *table* and an *index*: the emission
likelihood of position ``p`` in state ``k`` is ``table[index[p], k]``. A generic
emission family passes its (T, K) ``frameprob`` with ``index = arange(T)``; a
categorical model passes ``emissionprob.T`` (M, K) with ``index = symbols``, so
no T x K likelihood array is ever built. Summing posteriors onto table rows then
gives the posteriors themselves (generic) or the emission counts (categorical):
one kernel serves both.

Two loop layouts are used, picked by ``_use_lanes``:

* *lanes* (few states, several sequences): a chunk of sequences is stepped
  together, state-major with the sequence ("lane") index innermost, so the inner
  loops run contiguously across sequences and vectorise even for K = 2..8.
  Sequences in a chunk are sorted by decreasing length, so the sequences still
  running at step t are always a prefix of the lanes; unequal lengths are exact.
* *per sequence* (many states or few sequences): each sequence on its own with
  the state index innermost (transition rows, or rows of the transposed
  transition matrix, read contiguously).

Numerics: forward/backward in probability space with per-step scaling by the
row sum (the scaled forward variables sum to one). The log of the scale
factors is accumulated through a running product that is flushed to a log only
every few hundred steps, so there is no ``log`` in the inner loop. A step whose
scale factor is below the smallest normal double (2.2e-308), in particular 0,
marks the sequence as having probability zero: its log-likelihood is ``-inf``,
its posteriors are all zero and it adds nothing to the expected counts.
Viterbi runs in log space, with the same operation order as hmmlearn
(``max_i(delta[i] + log_transmat[i, j]) + log_frameprob[j]``); ties are broken
toward the lowest state index, both for the predecessor and for the final state.

Determinism: sequences are split into chunks by a rule that does not depend on
the thread count; each chunk accumulates its own partial statistics, and the
partials are reduced in chunk order. Results are identical for any number of
threads.
"""

import math

import numba
import numpy as np

# Scale factors below this (the smallest normal double) count as probability 0:
# their reciprocal would overflow.
_TINY = 2.2250738585072014e-308
# Running products of scale factors stay within [1e-200, 1e200]; factors outside
# [1e-100, 1e100] are logged directly, so the product can neither under- nor
# overflow.
_FLUSH = 1e200
_DIRECT = 1e100

# Lanes layout when K is at most this and there are at least _LANE_MIN_SEQS
# sequences; chunks hold at most _LANE_WIDTH sequences.
_LANE_MAX_STATES = 32
_LANE_MIN_SEQS = 4
_LANE_WIDTH = 32
# Per-sequence layout: at most this many chunks (partial statistics).
_SEQ_MAX_CHUNKS = 64

_jit = numba.njit(cache=True, nogil=True)
_pjit = numba.njit(cache=True, nogil=True, parallel=True)


# ---------------------------------------------------------------- helpers


@_jit
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


# ------------------------------------------------------- lanes layout


# 'reassoc' lets this lane reduction vectorise (partial sums); it keeps
# inf/NaN semantics, and the summation order depends only on n, never on the
# thread count.
@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _dot_prefix(x, y, n):
    s = 0.0
    for i in range(n):
        s += x[i] * y[i]
    return s


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
                   logprob, alpha_store, rc_store, store):
    """Scaled forward pass over one chunk (lanes sorted by decreasing length).

    Writes logprob[seq] (without log_offset); if ``store``, the scaled forward
    variables and reciprocal scale factors per position.
    """
    n_states = startprob.shape[0]
    n_lanes = seqs.shape[0]
    base, lens = _lanes_setup(offsets, seqs)
    alpha = np.empty((n_states, n_lanes))
    nxt = np.empty((n_states, n_lanes))
    recip = np.empty(n_lanes)
    prod = np.ones(n_lanes)
    acc = np.zeros(n_lanes)
    rows = np.empty(n_lanes, np.int64)

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
                pos = base[lane] + t
                rc_store[pos] = recip[lane]
                for k in range(n_states):
                    alpha_store[pos, k] = alpha[k, lane]
        t += 1
        while n > 0 and lens[n - 1] <= t:
            n -= 1
        if n == 0:
            break
        for j in range(n_states):
            for lane in range(n):
                nxt[j, lane] = 0.0
        for i in range(n_states):
            for j in range(n_states):
                a_ij = transmat[i, j]
                for lane in range(n):
                    nxt[j, lane] += alpha[i, lane] * a_ij
        for lane in range(n):
            rows[lane] = index[base[lane] + t]
        for j in range(n_states):
            for lane in range(n):
                nxt[j, lane] *= table[rows[lane], j]
        alpha, nxt = nxt, alpha

    for lane in range(n_lanes):
        logprob[seqs[lane]] = acc[lane] + math.log(prod[lane])


@_jit
def _lanes_backward(transmat, table, index, offsets, seqs, alpha_store,
                    rc_store, n_table, n_start, n_trans):
    """Backward pass over one chunk; adds posteriors onto ``n_table`` rows,
    the t = 0 posteriors onto ``n_start`` and expected transitions onto
    ``n_trans`` (all for this chunk only)."""
    n_states = transmat.shape[0]
    n_lanes = seqs.shape[0]
    base, lens = _lanes_setup(offsets, seqs)
    beta = np.empty((n_states, n_lanes))
    w = np.empty((n_states, n_lanes))
    abuf = np.empty((n_states, n_lanes))
    norm = np.empty(n_lanes)
    rows = np.empty(n_lanes, np.int64)
    xacc = np.zeros((n_states, n_states))

    t = lens[0] - 1
    n_prev = 0  # lanes running at t + 1
    n = 0
    while n < n_lanes and lens[n] > t:
        n += 1
    while True:
        # w = frame(t+1) * beta(t+1) / c(t+1) for lanes running at t + 1
        if n_prev > 0:
            for lane in range(n_prev):
                rows[lane] = index[base[lane] + t + 1]
                norm[lane] = rc_store[base[lane] + t + 1]
            for j in range(n_states):
                for lane in range(n_prev):
                    w[j, lane] = table[rows[lane], j] * beta[j, lane] * norm[lane]
            for i in range(n_states):
                for lane in range(n_prev):
                    beta[i, lane] = 0.0
            for i in range(n_states):
                for j in range(n_states):
                    a_ij = transmat[i, j]
                    for lane in range(n_prev):
                        beta[i, lane] += a_ij * w[j, lane]
        for k in range(n_states):
            for lane in range(n_prev, n):
                beta[k, lane] = 1.0
        for lane in range(n):
            pos = base[lane] + t
            for k in range(n_states):
                abuf[k, lane] = alpha_store[pos, k]
        if n_prev > 0:
            for i in range(n_states):
                for j in range(n_states):
                    xacc[i, j] += _dot_prefix(abuf[i], w[j], n_prev)
        # posteriors
        for lane in range(n):
            norm[lane] = 0.0
        for k in range(n_states):
            for lane in range(n):
                abuf[k, lane] *= beta[k, lane]
                norm[lane] += abuf[k, lane]
        for lane in range(n):
            s = norm[lane]
            norm[lane] = 1.0 / s if s > 0.0 else 0.0
        for lane in range(n):
            row = index[base[lane] + t]
            r = norm[lane]
            for k in range(n_states):
                n_table[row, k] += abuf[k, lane] * r
        if t == 0:
            break
        t -= 1
        n_prev = n
        while n < n_lanes and lens[n] > t:
            n += 1

    for lane in range(n_lanes):
        r = norm[lane]
        for k in range(n_states):
            n_start[k] += abuf[k, lane] * r
    for i in range(n_states):
        for j in range(n_states):
            n_trans[i, j] += xacc[i, j] * transmat[i, j]


@_jit
def _backtrack(log_transmat, lattice, start, stop, last, path):
    """Recover the path from the stored lattice, re-deriving each predecessor
    as the lowest-index argmax of lattice[t - 1, i] + log_transmat[i, next]
    (the same sums the forward sweep maximised)."""
    n_states = log_transmat.shape[0]
    k = last
    for pos in range(stop - 1, start, -1):
        path[pos] = k
        best = -np.inf
        kbest = 0
        for i in range(n_states):
            v = lattice[pos - 1, i] + log_transmat[i, k]
            if v > best:
                best = v
                kbest = i
        k = kbest
    path[start] = k


@_jit
def _lanes_viterbi(log_startprob, log_transmat, log_table, index, offsets,
                   seqs, logprob, path, lattice):
    n_states = log_startprob.shape[0]
    n_lanes = seqs.shape[0]
    base, lens = _lanes_setup(offsets, seqs)
    delta = np.empty((n_states, n_lanes))
    nxt = np.empty((n_states, n_lanes))
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
        # max only (no argmax): a plain select that vectorises over lanes
        for j in range(n_states):
            for lane in range(n):
                nxt[j, lane] = -np.inf
        for i in range(n_states):
            for j in range(n_states):
                la = log_transmat[i, j]
                for lane in range(n):
                    v = delta[i, lane] + la
                    cur = nxt[j, lane]
                    nxt[j, lane] = v if v > cur else cur
        for lane in range(n):
            rows[lane] = index[base[lane] + t]
        for j in range(n_states):
            for lane in range(n):
                nxt[j, lane] += log_table[rows[lane], j]
        delta, nxt = nxt, delta

    for lane in range(n_lanes):
        _backtrack(log_transmat, lattice, base[lane], base[lane] + lens[lane],
                   last[lane], path)


# ------------------------------------------------- per-sequence layout


@_jit
def _seq_forward(startprob, transmat, table, index, start, stop,
                 alpha_store, rc_store, store):
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
        c = 0.0
        for k in range(n_states):
            c += alpha[k]
        r, prod, acc = _scale_step(c, prod, acc)
        for k in range(n_states):
            alpha[k] *= r
        if store:
            rc_store[pos] = r
            for k in range(n_states):
                alpha_store[pos, k] = alpha[k]
        pos += 1
        if pos == stop:
            break
        for j in range(n_states):
            nxt[j] = 0.0
        for i in range(n_states):
            a_i = alpha[i]
            if a_i != 0.0:
                for j in range(n_states):
                    nxt[j] += a_i * transmat[i, j]
        row = index[pos]
        for j in range(n_states):
            nxt[j] *= table[row, j]
        alpha, nxt = nxt, alpha
    return acc + math.log(prod)


@_jit
def _seq_backward(transmat, transmat_t, table, index, start, stop,
                  alpha_store, rc_store, n_table, n_start, xacc):
    """Backward pass over one sequence; xacc[i, j] collects
    sum_t alpha_t[i] * w_{t+1}[j] (multiply by transmat afterwards)."""
    n_states = transmat.shape[0]
    beta = np.ones(n_states)
    w = np.empty(n_states)
    g = np.empty(n_states)
    pos = stop - 1
    while True:
        s = 0.0
        for k in range(n_states):
            g[k] = alpha_store[pos, k] * beta[k]
            s += g[k]
        r = 1.0 / s if s > 0.0 else 0.0
        row = index[pos]
        for k in range(n_states):
            n_table[row, k] += g[k] * r
        if pos == start:
            for k in range(n_states):
                n_start[k] += g[k] * r
            break
        rc = rc_store[pos]
        for j in range(n_states):
            w[j] = table[row, j] * beta[j] * rc
        pos -= 1
        for i in range(n_states):
            a_i = alpha_store[pos, i]
            if a_i != 0.0:
                for j in range(n_states):
                    xacc[i, j] += a_i * w[j]
        for i in range(n_states):
            beta[i] = 0.0
        for j in range(n_states):
            w_j = w[j]
            if w_j != 0.0:
                for i in range(n_states):
                    beta[i] += transmat_t[j, i] * w_j


@_jit
def _seq_viterbi(log_startprob, log_transmat, log_table, index, start, stop,
                 path, lattice):
    n_states = log_startprob.shape[0]
    delta = np.empty(n_states)
    nxt = np.empty(n_states)
    row = index[start]
    for k in range(n_states):
        delta[k] = log_startprob[k] + log_table[row, k]
        lattice[start, k] = delta[k]
    for pos in range(start + 1, stop):
        for j in range(n_states):
            nxt[j] = -np.inf
        for i in range(n_states):
            d_i = delta[i]
            for j in range(n_states):
                v = d_i + log_transmat[i, j]
                cur = nxt[j]
                nxt[j] = v if v > cur else cur
        row = index[pos]
        for j in range(n_states):
            nxt[j] += log_table[row, j]
            lattice[pos, j] = nxt[j]
        delta, nxt = nxt, delta
    best = -np.inf
    k = 0
    for j in range(n_states):
        if delta[j] > best:
            best = delta[j]
            k = j
    _backtrack(log_transmat, lattice, start, stop, k, path)
    return best


# ------------------------------------------------------ batched drivers


@_pjit
def _forward_batch(startprob, transmat, table, index, offsets, chunk_ptr,
                   chunk_seqs, lanes):
    n_seqs = offsets.shape[0] - 1
    logprob = np.empty(n_seqs)
    dummy_a = np.empty((0, 0))
    dummy_r = np.empty(0)
    for c in numba.prange(chunk_ptr.shape[0] - 1):
        seqs = chunk_seqs[chunk_ptr[c]:chunk_ptr[c + 1]]
        if lanes:
            _lanes_forward(startprob, transmat, table, index, offsets, seqs,
                           logprob, dummy_a, dummy_r, False)
        else:
            for s in seqs:
                logprob[s] = _seq_forward(
                    startprob, transmat, table, index, offsets[s],
                    offsets[s + 1], dummy_a, dummy_r, False)
    return logprob


@_pjit
def _estep_batch(startprob, transmat, table, index, offsets, chunk_ptr,
                 chunk_seqs, lanes, n_table):
    """Forward-backward over all chunks.

    n_table has shape (n_parts, R, K); chunk c adds into part c % n_parts.
    One part is safe only when chunks touch disjoint rows (index a
    permutation, as for posteriors); otherwise give one part per chunk.
    """
    n_states = startprob.shape[0]
    n_seqs = offsets.shape[0] - 1
    n_chunks = chunk_ptr.shape[0] - 1
    n_pos = index.shape[0]
    logprob = np.empty(n_seqs)
    alpha_store = np.empty((n_pos, n_states))
    rc_store = np.empty(n_pos)
    n_start = np.zeros((n_chunks, n_states))
    n_trans = np.zeros((n_chunks, n_states, n_states))
    transmat_t = np.ascontiguousarray(transmat.T)
    for c in numba.prange(n_chunks):
        seqs = chunk_seqs[chunk_ptr[c]:chunk_ptr[c + 1]]
        part = c % n_table.shape[0]
        if lanes:
            _lanes_forward(startprob, transmat, table, index, offsets, seqs,
                           logprob, alpha_store, rc_store, True)
            _lanes_backward(transmat, table, index, offsets, seqs,
                            alpha_store, rc_store, n_table[part],
                            n_start[c], n_trans[c])
        else:
            xacc = np.zeros((n_states, n_states))
            for s in seqs:
                logprob[s] = _seq_forward(
                    startprob, transmat, table, index, offsets[s],
                    offsets[s + 1], alpha_store, rc_store, True)
                _seq_backward(transmat, transmat_t, table, index, offsets[s],
                              offsets[s + 1], alpha_store, rc_store,
                              n_table[part], n_start[c], xacc)
            for i in range(n_states):
                for j in range(n_states):
                    n_trans[c, i, j] = xacc[i, j] * transmat[i, j]
    return logprob, n_start, n_trans


@_pjit
def _viterbi_batch(log_startprob, log_transmat, log_table, index, offsets,
                   chunk_ptr, chunk_seqs, lanes):
    n_states = log_startprob.shape[0]
    n_seqs = offsets.shape[0] - 1
    logprob = np.empty(n_seqs)
    path = np.empty(index.shape[0], np.int64)
    lattice = np.empty((index.shape[0], n_states))
    for c in numba.prange(chunk_ptr.shape[0] - 1):
        seqs = chunk_seqs[chunk_ptr[c]:chunk_ptr[c + 1]]
        if lanes:
            _lanes_viterbi(log_startprob, log_transmat, log_table, index,
                           offsets, seqs, logprob, path, lattice)
        else:
            for s in seqs:
                logprob[s] = _seq_viterbi(
                    log_startprob, log_transmat, log_table, index,
                    offsets[s], offsets[s + 1], path, lattice)
    return logprob, path


@_pjit
def _sum_by_sequence(values, offsets):
    n_seqs = offsets.shape[0] - 1
    out = np.empty(n_seqs)
    for s in numba.prange(n_seqs):
        acc = 0.0
        for p in range(offsets[s], offsets[s + 1]):
            acc += values[p]
        out[s] = acc
    return out


@_jit
def _reduce_parts(parts):
    """Sum partial statistics over the first axis, in order."""
    out = np.zeros(parts.shape[1:])
    for c in range(parts.shape[0]):
        out += parts[c]
    return out


# ------------------------------------------------------------- chunking


def _use_lanes(n_states, n_seqs):
    return n_states <= _LANE_MAX_STATES and n_seqs >= _LANE_MIN_SEQS


def _chunks(offsets, lanes):
    """Split sequences into chunks, independently of the thread count.

    Sequences are sorted by decreasing length (stable) and dealt round-robin
    onto the chunks, so chunks get similar work and each chunk is itself sorted
    by decreasing length (required by the lanes layout).
    """
    n_seqs = offsets.shape[0] - 1
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")
    if lanes:
        n_chunks = -(-n_seqs // _LANE_WIDTH)
        n_chunks = max(n_chunks, min(4, n_seqs // _LANE_MIN_SEQS), 1)
    else:
        n_chunks = max(1, min(n_seqs, _SEQ_MAX_CHUNKS))
    chunk_seqs = np.concatenate(
        [order[c::n_chunks] for c in range(n_chunks)]).astype(np.int64)
    sizes = [len(order[c::n_chunks]) for c in range(n_chunks)]
    chunk_ptr = np.zeros(n_chunks + 1, np.int64)
    chunk_ptr[1:] = np.cumsum(sizes)
    return chunk_ptr, chunk_seqs


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
    lanes = _use_lanes(startprob.shape[0], offsets.shape[0] - 1)
    chunk_ptr, chunk_seqs = _chunks(offsets, lanes)
    index = _arange_index(frameprob.shape[0])
    logprob = _forward_batch(startprob, transmat, frameprob, index, offsets,
                             chunk_ptr, chunk_seqs, lanes)
    return logprob + _sum_by_sequence(log_offset, offsets)


def forward_loglik_categorical(startprob, transmat, emissionprob, symbols,
                               offsets):
    """Log-likelihood of each sequence for categorical emissions.

    ``emissionprob`` has shape (n_states, n_symbols); ``symbols`` (int64, shape
    (n_samples,)) holds codes in ``range(n_symbols)``. See `forward_loglik`.
    """
    lanes = _use_lanes(startprob.shape[0], offsets.shape[0] - 1)
    chunk_ptr, chunk_seqs = _chunks(offsets, lanes)
    table = np.ascontiguousarray(emissionprob.T)
    return _forward_batch(startprob, transmat, table, symbols, offsets,
                          chunk_ptr, chunk_seqs, lanes)


def _posteriors_table(startprob, transmat, table, index, offsets):
    n_states = startprob.shape[0]
    lanes = _use_lanes(n_states, offsets.shape[0] - 1)
    chunk_ptr, chunk_seqs = _chunks(offsets, lanes)
    gamma = np.zeros((1, index.shape[0], n_states))
    logprob, n_start, n_trans = _estep_batch(
        startprob, transmat, table, index, offsets, chunk_ptr, chunk_seqs,
        lanes, gamma)
    return logprob, n_start, n_trans, gamma[0]


def posteriors(startprob, transmat, frameprob, log_offset, offsets):
    """Forward-backward posteriors.

    Returns
    -------
    logprob : array of shape (n_sequences,)
    gamma : array of shape (n_samples, n_states)
        State posteriors; rows sum to one (all zero for a sequence of
        probability zero).
    """
    index = _arange_index(frameprob.shape[0])
    logprob, _, _, gamma = _posteriors_table(startprob, transmat, frameprob,
                                             index, offsets)
    return logprob + _sum_by_sequence(log_offset, offsets), gamma


def posteriors_categorical(startprob, transmat, emissionprob, symbols,
                           offsets):
    """Forward-backward posteriors for categorical emissions.

    See `posteriors`.
    """
    frameprob = np.ascontiguousarray(emissionprob.T)[symbols]
    index = _arange_index(symbols.shape[0])
    logprob, _, _, gamma = _posteriors_table(startprob, transmat, frameprob,
                                             index, offsets)
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
    index = _arange_index(frameprob.shape[0])
    logprob, n_start, n_trans, gamma = _posteriors_table(
        startprob, transmat, frameprob, index, offsets)
    logprob = logprob + _sum_by_sequence(log_offset, offsets)
    return logprob, _reduce_parts(n_start), _reduce_parts(n_trans), gamma


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
    n_states, n_symbols = emissionprob.shape
    lanes = _use_lanes(n_states, offsets.shape[0] - 1)
    chunk_ptr, chunk_seqs = _chunks(offsets, lanes)
    n_chunks = chunk_ptr.shape[0] - 1
    table = np.ascontiguousarray(emissionprob.T)
    n_table = np.zeros((n_chunks, n_symbols, n_states))
    logprob, n_start, n_trans = _estep_batch(
        startprob, transmat, table, symbols, offsets, chunk_ptr, chunk_seqs,
        lanes, n_table)
    n_emit = np.ascontiguousarray(_reduce_parts(n_table).T)
    return logprob, _reduce_parts(n_start), _reduce_parts(n_trans), n_emit


def viterbi(log_startprob, log_transmat, log_frameprob, offsets):
    """Most likely state path of each sequence (log space).

    Ties are broken toward the lowest state index (for each predecessor choice
    and for the final state). A sequence without any valid path gets logprob
    ``-inf`` and an arbitrary in-range path.

    Returns
    -------
    logprob : array of shape (n_sequences,)
        Log-probability of the best path (log_frameprob's scale).
    path : int64 array of shape (n_samples,)
    """
    lanes = _use_lanes(log_startprob.shape[0], offsets.shape[0] - 1)
    chunk_ptr, chunk_seqs = _chunks(offsets, lanes)
    index = _arange_index(log_frameprob.shape[0])
    return _viterbi_batch(log_startprob, log_transmat, log_frameprob, index,
                          offsets, chunk_ptr, chunk_seqs, lanes)


def viterbi_categorical(log_startprob, log_transmat, log_emissionprob,
                        symbols, offsets):
    """Viterbi for categorical emissions; ``log_emissionprob`` has shape
    (n_states, n_symbols). See `viterbi`."""
    lanes = _use_lanes(log_startprob.shape[0], offsets.shape[0] - 1)
    chunk_ptr, chunk_seqs = _chunks(offsets, lanes)
    table = np.ascontiguousarray(log_emissionprob.T)
    return _viterbi_batch(log_startprob, log_transmat, table, symbols,
                          offsets, chunk_ptr, chunk_seqs, lanes)
