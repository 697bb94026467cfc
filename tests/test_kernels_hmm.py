"""Tests for hmmtie._kernels.hmm (plain-HMM kernels)."""

import warnings

import numba
import numpy as np
import pytest

from hmmtie._kernels import hmm as K
from tests import naive

TOL = 1e-10


def _random_model(rng, n_states, n_symbols, zeros=False):
    startprob = rng.dirichlet(np.ones(n_states))
    transmat = rng.dirichlet(np.ones(n_states), size=n_states)
    emissionprob = rng.dirichlet(np.ones(n_symbols), size=n_states)
    if zeros:
        # structural zeros, renormalised; every row keeps one nonzero cell
        for arr in (startprob[None, :], transmat, emissionprob):
            mask = rng.random(arr.shape) < 0.35
            for r in range(arr.shape[0]):
                mask[r, rng.integers(arr.shape[1])] = False
            arr[mask] = 0.0
            arr /= arr.sum(axis=1, keepdims=True)
    return startprob, transmat, emissionprob


def _offsets(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(x)


def _path_logprob(startprob, transmat, emissionprob, symbols, path):
    score = np.log(startprob[path[0]] * emissionprob[path[0], symbols[0]])
    for t in range(1, len(path)):
        score += np.log(transmat[path[t - 1], path[t]]
                        * emissionprob[path[t], symbols[t]])
    return score


def _check_all_against_brute(startprob, transmat, emissionprob, symbols,
                             lengths):
    offsets = _offsets(lengths)
    frameprob = np.ascontiguousarray(emissionprob.T[symbols])
    log_offset = np.zeros(len(symbols))
    lp_f = K.forward_loglik(startprob, transmat, frameprob, log_offset, offsets)
    lp_fc = K.forward_loglik_categorical(startprob, transmat, emissionprob,
                                         symbols, offsets)
    lp_p, gamma = K.posteriors(startprob, transmat, frameprob, log_offset,
                               offsets)
    lp_pc, gamma_c = K.posteriors_categorical(startprob, transmat,
                                              emissionprob, symbols, offsets)
    lp_e, n_start, n_trans, gamma_e = K.expected_counts(
        startprob, transmat, frameprob, log_offset, offsets)
    lp_ec, n_start_c, n_trans_c, n_emit_c = K.expected_counts_categorical(
        startprob, transmat, emissionprob, symbols, offsets)
    lp_v, path = K.viterbi(_log(startprob), _log(transmat), _log(frameprob),
                           offsets)
    lp_vc, path_c = K.viterbi_categorical(_log(startprob), _log(transmat),
                                          _log(emissionprob), symbols, offsets)
    ref_start = np.zeros_like(startprob)
    ref_trans = np.zeros_like(transmat)
    ref_emit = np.zeros_like(emissionprob)
    for s in range(len(lengths)):
        sl = slice(offsets[s], offsets[s + 1])
        ref = naive.hmm_brute_force(startprob, transmat, frameprob[sl])
        for lp in (lp_f, lp_fc, lp_p, lp_pc, lp_e, lp_ec):
            if np.isinf(ref["logprob"]):
                assert lp[s] == -np.inf
            else:
                assert abs(lp[s] - ref["logprob"]) < TOL
        for g in (gamma, gamma_c, gamma_e):
            np.testing.assert_allclose(g[sl], ref["gamma"], atol=TOL, rtol=0)
        if np.isfinite(ref["logprob"]):
            ref_start += ref["n_start"]
            ref_trans += ref["n_trans"]
            for t, sym in enumerate(symbols[sl]):
                ref_emit[:, sym] += ref["gamma"][t]
        for lp, pth in ((lp_v, path), (lp_vc, path_c)):
            assert np.all((pth[sl] >= 0) & (pth[sl] < len(startprob)))
            if np.isinf(ref["viterbi_logprob"]):
                assert lp[s] == -np.inf
                continue
            assert abs(lp[s] - ref["viterbi_logprob"]) < TOL
            # the returned path is optimal; if the optimum is unique it is it
            row = np.flatnonzero((ref["paths"] == pth[sl]).all(axis=1))[0]
            assert abs(ref["path_logprob"][row] - ref["viterbi_logprob"]) < TOL
            near = ref["path_logprob"] > ref["viterbi_logprob"] - 1e-9
            if near.sum() == 1:
                np.testing.assert_array_equal(pth[sl], ref["viterbi_paths"][0])
    for got in (n_start, n_start_c):
        np.testing.assert_allclose(got, ref_start, atol=TOL, rtol=0)
    for got in (n_trans, n_trans_c):
        np.testing.assert_allclose(got, ref_trans, atol=TOL, rtol=0)
    np.testing.assert_allclose(n_emit_c, ref_emit, atol=TOL, rtol=0)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("n_seqs", [1, 5])  # per-sequence and lanes layouts
def test_brute_force(seed, n_seqs):
    rng = np.random.default_rng(seed)
    n_states = 1 + seed % 3
    n_symbols = 3
    startprob, transmat, emissionprob = _random_model(
        rng, n_states, n_symbols, zeros=seed % 2 == 1)
    lengths = rng.integers(1, 7, size=n_seqs)
    symbols = rng.integers(n_symbols, size=lengths.sum()).astype(np.int64)
    _check_all_against_brute(startprob, transmat, emissionprob, symbols,
                             lengths)


def test_brute_force_ties():
    # uniform model: every path ties; the lowest-index rule gives all zeros
    n_states = 3
    startprob = np.full(n_states, 1 / 3)
    transmat = np.full((n_states, n_states), 1 / 3)
    emissionprob = np.full((n_states, 2), 0.5)
    lengths = np.array([4, 1, 6, 3, 2])
    symbols = np.random.default_rng(0).integers(2, size=16).astype(np.int64)
    _check_all_against_brute(startprob, transmat, emissionprob, symbols,
                             lengths)
    lp, path = K.viterbi_categorical(_log(startprob), _log(transmat),
                                     _log(emissionprob), symbols,
                                     _offsets(lengths))
    assert np.all(path == 0)


@pytest.mark.parametrize("n_seqs", [1, 6])
def test_zero_probability_sequence(n_seqs):
    # state 0 emits only symbol 0, state 1 only symbol 1, and 0 -> 1 is
    # forbidden while 1 -> 0 is allowed: "1 then 0" is possible, "0 then 1" not
    startprob = np.array([0.5, 0.5])
    transmat = np.array([[1.0, 0.0], [0.5, 0.5]])
    emissionprob = np.array([[1.0, 0.0], [0.0, 1.0]])
    seqs = [[0, 1], [1, 0], [0, 0, 1, 1], [1], [1, 1, 0], [0]][:n_seqs]
    symbols = np.concatenate(seqs).astype(np.int64)
    offsets = _offsets([len(s) for s in seqs])
    frameprob = np.ascontiguousarray(emissionprob.T[symbols])
    zero = np.zeros(len(symbols))
    results = [
        K.forward_loglik(startprob, transmat, frameprob, zero, offsets),
        K.forward_loglik_categorical(startprob, transmat, emissionprob,
                                     symbols, offsets),
    ]
    lp, gamma = K.posteriors(startprob, transmat, frameprob, zero, offsets)
    lp2, n_start, n_trans, n_emit = K.expected_counts_categorical(
        startprob, transmat, emissionprob, symbols, offsets)
    lpv, path = K.viterbi(_log(startprob), _log(transmat), _log(frameprob),
                          offsets)
    results += [lp, lp2, lpv]
    for r in results:
        assert r[0] == -np.inf
        assert not np.isnan(r).any()
        if n_seqs > 1:
            assert np.isfinite(r[1])
            assert r[2] == -np.inf
    assert np.all(gamma[offsets[0]:offsets[1]] == 0)
    for arr in (gamma, n_start, n_trans, n_emit):
        assert not np.isnan(arr).any()
    assert np.all((path >= 0) & (path < 2))
    _check_all_against_brute(startprob, transmat, emissionprob, symbols,
                             [len(s) for s in seqs])


# (12, 9): lanes layout with per-step transition sums (K >= 8) and lanes
# Viterbi; (14, 5): lanes forward-backward, per-sequence Viterbi. The lanes
# layout's 4 x 4 blocks (`_mat_comb`, `_mat_max_plus`): K = 8 and 12 are
# whole blocks, K = 5 and 14 leave rows and columns to the single-row path.
@pytest.mark.parametrize("n_states,n_seqs",
                         [(2, 7), (5, 12), (40, 6), (3, 2), (12, 9), (14, 5),
                          (8, 5)])
def test_against_hmmlearn(n_states, n_seqs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hmmlearn.hmm import CategoricalHMM
    rng = np.random.default_rng(n_states * 100 + n_seqs)
    n_symbols = 6
    startprob, transmat, emissionprob = _random_model(rng, n_states, n_symbols)
    lengths = rng.integers(1, 300, size=n_seqs)
    symbols = rng.integers(n_symbols, size=lengths.sum()).astype(np.int64)
    offsets = _offsets(lengths)
    ref = CategoricalHMM(n_components=n_states, implementation="scaling")
    ref.n_features = n_symbols
    ref.startprob_, ref.transmat_, ref.emissionprob_ = (
        startprob, transmat, emissionprob)
    X = symbols[:, None]
    ref_lp = np.array([ref.score(X[offsets[s]:offsets[s + 1]])
                       for s in range(n_seqs)])
    _, ref_gamma = ref.score_samples(X, lengths)
    ref_vlp = np.array([ref.decode(X[offsets[s]:offsets[s + 1]])[0]
                        for s in range(n_seqs)])
    _, ref_path = ref.decode(X, lengths)

    lp = K.forward_loglik_categorical(startprob, transmat, emissionprob,
                                      symbols, offsets)
    np.testing.assert_allclose(lp, ref_lp, rtol=0, atol=1e-8)
    lp, gamma = K.posteriors_categorical(startprob, transmat, emissionprob,
                                         symbols, offsets)
    np.testing.assert_allclose(lp, ref_lp, rtol=0, atol=1e-8)
    np.testing.assert_allclose(gamma, ref_gamma, rtol=0, atol=1e-8)
    vlp, path = K.viterbi_categorical(_log(startprob), _log(transmat),
                                      _log(emissionprob), symbols, offsets)
    np.testing.assert_allclose(vlp, ref_vlp, rtol=0, atol=1e-8)
    # hmmlearn breaks backtracking ties toward the highest predecessor index
    # (std::max on (score, index) pairs), hmmtie toward the lowest; exact
    # floating-point ties do occur, so where the paths differ both must be
    # optimal.
    for s in range(n_seqs):
        sl = slice(offsets[s], offsets[s + 1])
        if not np.array_equal(path[sl], ref_path[sl]):
            score = _path_logprob(startprob, transmat, emissionprob,
                                  symbols[sl], path[sl])
            assert abs(score - ref_vlp[s]) < 1e-8
    assert np.mean(path == ref_path) > 0.9
    # E-step statistics against hmmlearn's own accumulation
    stats, ref_total = ref._do_estep(X, lengths)
    lp, n_start, n_trans, n_emit = K.expected_counts_categorical(
        startprob, transmat, emissionprob, symbols, offsets)
    assert abs(lp.sum() - ref_total) < 1e-8
    np.testing.assert_allclose(n_start, stats["start"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(n_trans, stats["trans"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(n_emit, stats["obs"], rtol=1e-8, atol=1e-8)


def test_stability_long_categorical():
    # T = 1,000,000 in one sequence and split in 8; reference: log-space forward
    rng = np.random.default_rng(1)
    startprob, transmat, emissionprob = _random_model(rng, 4, 5)
    T = 1_000_000
    symbols = rng.integers(5, size=T).astype(np.int64)
    ref = naive.hmm_forward_log_categorical(
        np.log(startprob), np.log(transmat), np.log(emissionprob), symbols)
    assert np.isfinite(ref) and ref < -1e6
    lp = K.forward_loglik_categorical(startprob, transmat, emissionprob,
                                      symbols, _offsets([T]))
    assert np.isfinite(lp[0])
    assert abs(lp[0] - ref) <= 1e-12 * abs(ref)
    lengths = np.full(8, T // 8)
    offsets = _offsets(lengths)
    lp8 = K.forward_loglik_categorical(startprob, transmat, emissionprob,
                                       symbols, offsets)
    lp8e, *_ = K.expected_counts_categorical(startprob, transmat, emissionprob,
                                             symbols, offsets)
    for s in range(8):
        sl = slice(offsets[s], offsets[s + 1])
        r = naive.hmm_forward_log_categorical(
            np.log(startprob), np.log(transmat), np.log(emissionprob),
            symbols[sl])
        assert abs(lp8[s] - r) <= 1e-12 * abs(r)
        assert abs(lp8e[s] - r) <= 1e-12 * abs(r)


@pytest.mark.parametrize("n_seqs", [1, 5])
def test_stability_gaussian_like(n_seqs):
    # log-likelihoods around -50 per frame, passed as frameprob * exp(offset)
    rng = np.random.default_rng(2)
    n_states = 3
    startprob, transmat, _ = _random_model(rng, n_states, 2)
    T = 100_000
    log_lik = -50.0 + rng.normal(scale=5.0, size=(T, n_states))
    log_offset = log_lik.max(axis=1)
    frameprob = np.exp(log_lik - log_offset[:, None])
    offsets = _offsets(np.full(n_seqs, T // n_seqs))
    lp = K.forward_loglik(startprob, transmat, frameprob, log_offset, offsets)
    lp_p, gamma = K.posteriors(startprob, transmat, frameprob, log_offset,
                               offsets)
    for s in range(n_seqs):
        sl = slice(offsets[s], offsets[s + 1])
        ref = naive.hmm_forward_log(np.log(startprob), np.log(transmat),
                                    log_lik[sl])
        assert np.isfinite(lp[s])
        assert abs(lp[s] - ref) <= 1e-12 * abs(ref)
        assert abs(lp_p[s] - ref) <= 1e-12 * abs(ref)
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_states,n_seqs",
                         [(3, 30), (6, 9), (12, 40), (40, 7)])
def test_thread_count_invariance(n_states, n_seqs):
    rng = np.random.default_rng(3)
    startprob, transmat, emissionprob = _random_model(rng, n_states, 7,
                                                      zeros=True)
    lengths = rng.integers(1, 500, size=n_seqs)
    symbols = rng.integers(7, size=lengths.sum()).astype(np.int64)
    offsets = _offsets(lengths)
    frameprob = np.ascontiguousarray(emissionprob.T[symbols])
    log_offset = rng.normal(size=len(symbols))

    def run_all():
        out = []
        out += K.expected_counts_categorical(startprob, transmat, emissionprob,
                                             symbols, offsets)
        out += K.expected_counts(startprob, transmat, frameprob, log_offset,
                                 offsets)
        out.append(K.forward_loglik(startprob, transmat, frameprob,
                                    log_offset, offsets))
        out += K.viterbi_categorical(_log(startprob), _log(transmat),
                                     _log(emissionprob), symbols, offsets)
        return out

    before = numba.get_num_threads()
    try:
        results = []
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            results.append(run_all())
    finally:
        numba.set_num_threads(before)
    for a, b in zip(results[0], results[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# Split layout: few long sequences in the per-sequence layout run as two tasks
# each (forward over the first half and backward over the second, meeting in
# the middle). (3, 1): one sequence with few states; (24, 3): K > 16.
@pytest.mark.parametrize("n_states,n_seqs", [(3, 1), (24, 3)])
def test_split_layout_against_hmmlearn_and_plain(n_states, n_seqs, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hmmlearn.hmm import CategoricalHMM
    rng = np.random.default_rng(7 + n_states)
    n_symbols = 5
    startprob, transmat, emissionprob = _random_model(rng, n_states, n_symbols, zeros=True)
    lengths = rng.integers(K._SPLIT_MIN_LENGTH, 400, size=n_seqs)
    symbols = rng.integers(n_symbols, size=lengths.sum()).astype(np.int64)
    offsets = _offsets(lengths)
    assert K._use_split(offsets, K._OP_COUNTS, K._use_lanes(n_states, n_seqs, K._OP_COUNTS))

    def run_all():
        return (K.forward_loglik_categorical(startprob, transmat, emissionprob, symbols, offsets),
                *K.posteriors_categorical(startprob, transmat, emissionprob, symbols, offsets),
                *K.expected_counts_categorical(startprob, transmat, emissionprob, symbols, offsets),
                *K.viterbi_categorical(_log(startprob), _log(transmat), _log(emissionprob), symbols, offsets))

    split = run_all()
    ref = CategoricalHMM(n_components=n_states, implementation="scaling")
    ref.n_features = n_symbols
    ref.startprob_, ref.transmat_, ref.emissionprob_ = startprob, transmat, emissionprob
    X = symbols[:, None]
    ref_lp = np.array([ref.score(X[offsets[s]:offsets[s + 1]]) for s in range(n_seqs)])
    _, ref_gamma = ref.score_samples(X, lengths)
    stats, _ = ref._do_estep(X, lengths)
    np.testing.assert_allclose(split[0], ref_lp, rtol=0, atol=1e-8)
    np.testing.assert_allclose(split[1], ref_lp, rtol=0, atol=1e-8)
    np.testing.assert_allclose(split[2], ref_gamma, rtol=0, atol=1e-8)
    np.testing.assert_allclose(split[4], stats["start"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(split[5], stats["trans"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(split[6], stats["obs"], rtol=1e-8, atol=1e-8)
    ref_vlp = np.array([ref.decode(X[offsets[s]:offsets[s + 1]])[0] for s in range(n_seqs)])
    np.testing.assert_allclose(split[7], ref_vlp, rtol=0, atol=1e-8)
    for s in range(n_seqs):  # the path scores what Viterbi says
        sl = slice(offsets[s], offsets[s + 1])
        assert abs(_path_logprob(startprob, transmat, emissionprob, symbols[sl], split[8][sl])
                   - ref_vlp[s]) < 1e-8
    # the plain per-sequence layout gives the same numbers
    monkeypatch.setattr(K, "_SPLIT_BELOW_SEQS", 0)
    plain = run_all()
    for a, b in zip(split[:7], plain[:7]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(split[7], plain[7], rtol=1e-12, atol=0)
    for s in range(n_seqs):  # equally good paths (they may differ where two paths tie to rounding)
        sl = slice(offsets[s], offsets[s + 1])
        assert abs(_path_logprob(startprob, transmat, emissionprob, symbols[sl], split[8][sl])
                   - _path_logprob(startprob, transmat, emissionprob, symbols[sl], plain[8][sl])) < 1e-9


def test_split_viterbi_with_exact_ties():
    # states 1 and 2 are exact copies: every optimal path has twins, and the
    # split layout must still return an optimal one, the same for any thread count
    startprob = np.array([0.4, 0.3, 0.3])
    transmat = np.array([[0.6, 0.2, 0.2], [0.3, 0.35, 0.35], [0.3, 0.35, 0.35]])
    emissionprob = np.array([[0.8, 0.2], [0.1, 0.9], [0.1, 0.9]])
    rng = np.random.default_rng(0)
    symbols = rng.integers(2, size=300).astype(np.int64)
    offsets = _offsets([300])
    assert K._use_split(offsets, K._OP_VITERBI, False)
    args = (_log(startprob), _log(transmat), _log(emissionprob), symbols, offsets)
    before = numba.get_num_threads()
    outs = []
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            outs.append(K.viterbi_categorical(*args))
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(outs[0][1], outs[-1][1]) and outs[0][0][0] == outs[-1][0][0]
    lp, path = outs[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hmmlearn.hmm import CategoricalHMM
    ref = CategoricalHMM(n_components=3, implementation="scaling")
    ref.n_features = 2
    ref.startprob_, ref.transmat_, ref.emissionprob_ = startprob, transmat, emissionprob
    assert abs(lp[0] - ref.decode(symbols[:, None])[0]) < 1e-9
    assert abs(_path_logprob(startprob, transmat, emissionprob, symbols, path) - lp[0]) < 1e-9
    # ties broken toward the lowest index: state 2 (twin of 1) is never used
    assert not np.any(path == 2)


def test_split_layout_zero_probability_and_threads():
    # state 0 emits only symbol 0, state 1 only symbol 1; 0 -> 1 is forbidden
    startprob = np.array([0.5, 0.5])
    transmat = np.array([[1.0, 0.0], [0.5, 0.5]])
    emissionprob = np.array([[1.0, 0.0], [0.0, 1.0]])
    impossible = [1] * 50 + [0] * 30 + [1] + [0] * 40  # needs 0 -> 1
    possible = [1] * 70 + [0] * 60
    seqs = [possible, impossible, possible[::-1][::-1]]
    symbols = np.concatenate(seqs).astype(np.int64)
    offsets = _offsets([len(s) for s in seqs])
    assert K._use_split(offsets, K._OP_POSTERIORS, False)
    before = numba.get_num_threads()
    outs = []
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            outs.append((K.forward_loglik_categorical(startprob, transmat, emissionprob, symbols, offsets),
                         *K.posteriors_categorical(startprob, transmat, emissionprob, symbols, offsets),
                         *K.expected_counts_categorical(startprob, transmat, emissionprob, symbols, offsets),
                         *K.viterbi_categorical(_log(startprob), _log(transmat), _log(emissionprob),
                                                symbols, offsets)))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(outs[0], outs[-1]):
        assert np.array_equal(a, b)  # bit-identical for any thread count
    lp, lp2, gamma, lp3, n_start, n_trans, n_emit, vlp, path = outs[0]
    assert np.all((path >= 0) & (path < 2))
    assert np.array_equal(path[:offsets[1]], np.array(possible))  # the only path
    for r in (lp, lp2, lp3, vlp):
        assert r[1] == -np.inf and np.isfinite(r[0]) and np.isfinite(r[2])
    assert np.all(gamma[offsets[1]:offsets[2]] == 0)
    for arr in (gamma, n_start, n_trans, n_emit):
        assert not np.isnan(arr).any()
    np.testing.assert_allclose(gamma[:offsets[1]].sum(axis=1), 1.0, atol=1e-12)
    # the path of "possible" is forced: 70 ones then 60 zeros, one 1 -> 0 switch each
    assert n_trans[1, 0] == pytest.approx(2.0, abs=1e-9)
    assert n_trans[0, 1] == 0.0
