"""Tests for hmmtie.pair (PairHMM) and hmmtie.compare_pairs, at the model level.

The references here are written from the model's full probability arrays in
plain Python (letters, not odds; no kernels), so they check the whole chain:
tie maps -> tables -> odds -> kernels -> background terms.
"""
import json
import math
import os
import warnings

import numpy as np
import pytest

import hmmtie
from Bio.Align import Alignment
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord
from hmmtie import PairHMM, compare_pairs
from hmmtie.pair import alignment_to_ops
from naive_pair import all_alignments


def _randomize(model, rng, concentration=2.0):
    """Random parameters that respect the model's ties (an M-step of random counts)."""
    model._atoms = {
        "trans": model._trans.random_atoms(rng, concentration),
        "match": model._match.random_atoms(rng, concentration),
        "insert": model._insert.random_atoms(rng, concentration),
    }
    model._refresh()
    return model


def _all_ops(n, m):
    """Every global alignment of lengths n and m as column ops (0 pair, 1 x only, 2 y only)."""
    return all_alignments(n, m)


def _brute_alignment_prob(model, x, y, ops):
    """P(x, y, alignment) summed over consistent state paths, from full arrays."""
    L = model._alph.letters
    xi = [L.index(c) for c in x]
    yi = [L.index(c) for c in y]
    kinds = [s.kind for s in model.states]
    etab = model._etab
    want = {0: "match", 1: "insert_x", 2: "insert_y"}
    S = model.n_states

    def emit(s, i, j, op):
        t = etab[s]
        if op == 0:
            return model.match_emissionprob_[t][xi[i], yi[j]]
        if op == 1:
            return model.insert_emissionprob_[t][xi[i]]
        return model.insert_emissionprob_[t][yi[j]]

    f = np.zeros(S)
    i = j = 0
    for k, op in enumerate(ops):
        new = np.zeros(S)
        for s in range(S):
            if kinds[s] != want[op]:
                continue
            inflow = model.startprob_[s] if k == 0 else float(f @ model.transmat_[:, s])
            new[s] = inflow * emit(s, i, j, op)
        f = new
        i += op != 2
        j += op != 1
    return float(f @ model.endprob_)


@pytest.fixture(params=[("3state", True, True), ("3state", False, False), ("5state", True, True), ("5state", False, True)])
def small_model(request):
    name, sg, sm = request.param
    m = PairHMM.preset(name, alphabet="dna", symmetric_gaps=sg, symmetric_match=sm, defaults=False)
    return _randomize(m, np.random.default_rng(hash(request.param) % 2**32))


@pytest.mark.parametrize("x, y", [("A", "C"), ("ACG", "AG"), ("GATC", "TAC"), ("ACGTA", "CGTAT")])
def test_score_is_sum_over_alignments(small_model, x, y):
    m = small_model
    total = 0.0
    for ops in _all_ops(len(x), len(y)):
        p = _brute_alignment_prob(m, x, y, ops)
        total += p
        if p > 0:
            gx, gy = _gapped(x, y, ops)
            assert m.score_alignment(x, y, (gx, gy)) == pytest.approx(math.log(p), abs=1e-10)
    assert m.score(x, y) == pytest.approx(math.log(total), abs=1e-10)
    # log-odds = log P - background terms
    q = m.background_
    L = m._alph.letters
    bg = sum(math.log(q[L.index(c)]) for c in x + y)
    assert m.log_odds(x, y) == pytest.approx(math.log(total) - bg, abs=1e-10)


def _gapped(x, y, ops):
    gx, gy, i, j = [], [], 0, 0
    for op in ops:
        gx.append(x[i] if op != 2 else "-")
        gy.append(y[j] if op != 1 else "-")
        i += op != 2
        j += op != 1
    return "".join(gx), "".join(gy)


def test_posterior_equals_brute_force_marginals(small_model):
    m = small_model
    x, y = "ACGTA", "CGTT"
    P = np.zeros((len(x), len(y)))
    total = 0.0
    for ops in _all_ops(len(x), len(y)):
        p = _brute_alignment_prob(m, x, y, ops)
        total += p
        i = j = 0
        for op in ops:
            if op == 0:
                P[i, j] += p
            i += op != 2
            j += op != 1
    P /= total
    post = m.posterior(x, y)
    assert np.allclose(post, P, atol=1e-10)
    assert post.min() >= 0 and post.max() <= 1
    assert np.all(post.sum(axis=1) <= 1 + 1e-12)


def test_viterbi_is_best_alignment_for_3state():
    m = _randomize(PairHMM.preset("3state", alphabet="dna", defaults=False), np.random.default_rng(4))
    x, y = "ACGGT", "AGTT"
    best = max(_all_ops(len(x), len(y)), key=lambda ops: _brute_alignment_prob(m, x, y, ops))
    logp, aln = m.viterbi(x, y)
    assert logp == pytest.approx(math.log(_brute_alignment_prob(m, x, y, best)), abs=1e-10)
    assert tuple(alignment_to_ops(aln, len(x), len(y))) == best


def test_mea_alignment_maximises_expected_accuracy():
    m = _randomize(PairHMM.preset("5state", alphabet="dna", defaults=False), np.random.default_rng(8))
    x, y = "ACGGTA", "AGTTA"
    P = m.posterior(x, y)

    def acc(ops):
        i = j = s = 0
        for op in ops:
            if op == 0:
                s += P[i, j]
            i += op != 2
            j += op != 1
        return s

    best = max(acc(ops) for ops in _all_ops(len(x), len(y)))
    aln = m.align(x, y, method="mea")
    assert aln.score == pytest.approx(best, abs=1e-12)
    assert acc(alignment_to_ops(aln, len(x), len(y))) == pytest.approx(best, abs=1e-12)
    assert 0 <= aln.mean_confidence <= 1


@pytest.mark.parametrize("local", [False, True])
def test_align_of_a_pair_computed_transposed_uses_the_matrix_as_computed(local):
    """A pair whose second sequence is the longer is computed transposed;
    ``align`` runs MEA on that matrix (``pair_decode.mea(..., swapped)``)
    instead of copying it back: the same alignment, score and column
    confidences as MEA on ``posterior()``'s matrix, also banded and with
    the ties of a long gap-only stretch (a repeat in the longer sequence)."""
    from hmmtie._kernels import pair_decode as kd
    from hmmtie.pair import _pair_index, column_confidence
    rng = np.random.default_rng(31)
    for alphabet, name in (("dna", "3state"), ("protein", "5state")):
        m = PairHMM.preset(name, alphabet=alphabet, local=local)
        letters = list(m._alph.letters)
        for k in range(4):
            a = "".join(rng.choice(letters, size=int(rng.integers(60, 140))))
            b = list(a)
            for q in rng.choice(len(b), len(b) // 3, replace=False):
                b[q] = rng.choice(letters)
            b = "".join(b)
            b = b[:40] + b[:40] + b[40:] + "".join(rng.choice(letters, size=25))
            m.band = 60 if k == 3 else None
            aln = m.align(a, b, method="mea")
            P = m.posterior(a, b)
            band = -1 if m.band is None else m.band
            if local:
                gx = 1.0 - P.sum(axis=1)
                gy = 1.0 - P.sum(axis=0)
                _, ops = kd.mea(np.ascontiguousarray(2.0 * P - gx[:, None] - gy[None, :]), band)
                score = float(P[_pair_index(ops)].sum())
            else:
                score, ops = kd.mea(P, band)
            got = alignment_to_ops(aln, len(a), len(b), local=local)
            assert np.array_equal(got, ops), (alphabet, k)
            assert aln.score == pytest.approx(score, rel=1e-12, abs=1e-12)
            conf = column_confidence(P, ops)
            if local:
                from hmmtie.pair import core_span
                first, stop = core_span(ops)
                conf = conf[first:stop]
            np.testing.assert_allclose(aln.column_confidence, conf, rtol=0, atol=1e-12)
    # the glue: ops of the transposed matrix come back in the pair's terms,
    # ties between the two gaps included (at (2, 2) both are worth 1)
    from hmmtie.pair import _mea_ops
    P = np.array([[0.0, 1.0], [1.0, 0.0]])
    plain = kd.mea(P.T.copy(), -1)[1]  # without the flag: the other tie
    assert not np.array_equal(np.where(plain == 0, 0, 3 - plain), kd.mea(P, -1)[1])
    for band in (-1, 1):
        assert np.array_equal(_mea_ops(np.ascontiguousarray(P.T), band, True)[1],
                              kd.mea(P, band)[1])


def test_column_confidence_follows_its_definition():
    """``column_confidence`` (which sums only the rows and columns of
    unaligned residues) against the definition, summed in numpy: random
    matrices and paths, the matrix as given, as a transposed view (what
    ``align`` passes for a pair computed transposed) and as a strided
    slice; paths with no gaps, only gaps, and empty sides."""
    from hmmtie.pair import column_confidence

    def reference(P, ops):
        gap_x = 1.0 - P.sum(axis=1)
        gap_y = 1.0 - P.sum(axis=0)
        out, i, j = [], 0, 0
        for op in ops:
            if op == 0:
                out.append(P[i, j])
            elif op == 1:
                out.append(gap_x[i])
            else:
                out.append(gap_y[j])
            i += op != 2
            j += op != 1
        return np.clip(out, 0.0, 1.0)

    rng = np.random.default_rng(8)
    for t in range(300):
        n, m = (int(v) for v in rng.integers(0, 12, 2))
        k = int(rng.integers(0, min(n, m) + 1))
        ops = np.array([0] * k + [1] * (n - k) + [2] * (m - k), np.uint8)
        rng.shuffle(ops)
        P = rng.random((n, m)) / max(1, n, m) * rng.choice([0.5, 2.0])
        for A in (P, np.ascontiguousarray(P.T).T, np.repeat(P, 2, axis=1)[:, ::2]):
            got = column_confidence(A, ops)
            np.testing.assert_allclose(got, reference(P, ops), rtol=0, atol=1e-14)


def test_ops_to_coordinates_follows_its_definition():
    """The Biopython coordinates of column ops (vectorised) against a walk
    over the columns that records the residue counts where the op
    changes: random paths with long runs, single columns and no columns."""
    from hmmtie.pair import ops_to_coordinates

    def reference(ops):
        i = j = 0
        coords = [(0, 0)]
        for k, op in enumerate(ops):
            if k and op != ops[k - 1]:
                coords.append((i, j))
            i += op != 2
            j += op != 1
        if len(ops):
            coords.append((i, j))
        return np.array(coords, dtype=np.int64).T

    rng = np.random.default_rng(9)
    for t in range(500):
        ops = rng.integers(0, 3, int(rng.integers(0, 15))).astype(np.uint8)
        if t % 2:
            ops = np.repeat(ops, rng.integers(1, 5, len(ops)))
        got = ops_to_coordinates(ops)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, reference(ops))


def test_symmetry_with_both_ties():
    rng = np.random.default_rng(3)
    for name in ("3state", "5state"):
        m = _randomize(PairHMM.preset(name, alphabet="protein", defaults=False), rng)
        letters = m._alph.letters
        for _ in range(3):
            a = "".join(rng.choice(list(letters), size=rng.integers(20, 60)))
            b = "".join(rng.choice(list(letters), size=rng.integers(20, 60)))
            assert m.score(a, b) == pytest.approx(m.score(b, a), abs=1e-12 * abs(m.score(a, b)))
            _, ab = m.viterbi(a, b)
            _, ba = m.viterbi(b, a)
            ops_ab = alignment_to_ops(ab, len(a), len(b))
            ops_ba = alignment_to_ops(ba, len(b), len(a))
            mirrored = np.where(ops_ba == 1, 2, np.where(ops_ba == 2, 1, 0))
            assert np.array_equal(ops_ab, mirrored)
            assert np.allclose(m.posterior(a, b), m.posterior(b, a).T, atol=1e-12)


def test_short_against_long_pair_and_zero_probability():
    # a 60-nt piece against the 3,000-nt sequence it came from (the kernels
    # run their rows along the longer sequence; the other way round the pair
    # underflowed to probability 0 and the alignment was garbage)
    rng = np.random.default_rng(1)
    g = "".join(rng.choice(list("ACGT"), 3000))
    e = g[1500:1560]
    m = PairHMM.preset("3state", alphabet="dna")
    s = m.score(e, g)
    assert np.isfinite(s)
    aln = m.align(e, g)
    assert abs(aln.log_likelihood - s) < 1e-8 * abs(s)
    P = m.posterior(e, g)
    np.testing.assert_allclose(P, m.posterior(g, e).T, atol=1e-10)
    assert P.sum() > 55
    fitted = m.copy().fit([(e, g)], n_iter=2)
    assert np.isfinite(fitted.history_[-1])
    # a pair the model cannot produce (no insert-y state reachable): an
    # error naming the reason, never a matrix of zeros or a garbage alignment
    u = PairHMM.preset("3state", alphabet="dna", symmetric_gaps=False)
    tr = u.trans_.copy()
    tr[:, 0] += tr[:, 2]
    tr[:, 2] = 0.0
    u.set_params(startprob=tr[0, :3], transmat=tr[1:, :3], endprob=tr[1:, 3])
    assert u.score("ACG", "ACGTT") == -np.inf
    for call in (lambda: u.posterior("ACG", "ACGTT"), lambda: u.align("ACG", "ACGTT"),
                 lambda: u.align("ACG", "ACGTT", method="viterbi")):
        with pytest.raises(ValueError, match="non-zero probability"):
            call()


def test_parameter_attributes_are_checked():
    m = PairHMM.preset("3state", alphabet="protein")
    a, b = "MKVLAAGIVGLLLAHQEAGA", "MKVLSGIVGALLVHQEGA"
    s0 = m.score(a, b)
    with pytest.raises(ValueError, match="row 'M' sums to"):
        m.transmat_ = m.transmat_ * 2
    with pytest.raises(ValueError, match="read-only"):
        m.transmat_[0, 0] = np.nan
    with pytest.raises(ValueError, match="tied cells"):  # symmetric gaps: M->X = M->Y
        t = m.transmat_.copy()
        t[0] = [1 - 0.05 - m.endprob_[0], 0.04, 0.01]
        m.transmat_ = t
    assert m.score(a, b) == s0  # nothing changed by the refused assignments
    u = m.copy()
    u.match_emissionprob_ = np.full((1, 20, 20), 1 / 400)  # takes effect, as set_params does
    v = m.copy().set_params(match_emissionprob=np.full((1, 20, 20), 1 / 400))
    assert u.score(a, b) == v.score(a, b) != s0
    w = m.copy()
    w.trans_ = m.trans_
    assert w.score(a, b) == s0


def test_constructor_and_set_params_checks(tmp_path):
    for kw, msg in (({"band": 1.5}, "band must be an integer"), ({"band": -5}, "band must be >= 0"),
                    ({"n_threads": 0}, "n_threads must be >= 1"), ({"memory_limit": -1}, "memory_limit must be >= 1")):
        with pytest.raises(ValueError, match=msg):
            PairHMM.preset("3state", alphabet="dna", **kw)
    m = PairHMM.preset("3state", alphabet="dna", memory_limit=None)
    with pytest.raises(ValueError, match=r"transmat has shape \(2, 2\), expected \(3, 3\)"):
        m.set_params(transmat=np.eye(2))
    with pytest.raises(ValueError, match="nodir/m.json: cannot write, directory .* does not exist"):
        m.save(tmp_path / "nodir" / "m.json")


def test_viterbi_alignment_without_the_posterior_matrix():
    a, b = "ACGT" * 30, "ACGA" * 40
    m = PairHMM.preset("3state", alphabet="dna", memory_limit=100_000, band=5)
    with pytest.raises(MemoryError, match="align with method='viterbi' and a band"):
        m.align(a, b)
    aln = m.align(a, b, method="viterbi")  # the posterior would not fit: left out
    full = PairHMM.preset("3state", alphabet="dna", band=5).align(a, b, method="viterbi")
    assert np.array_equal(aln.coordinates, full.coordinates) and aln.score == full.score
    assert aln.log_likelihood == pytest.approx(full.log_likelihood, abs=1e-9)
    assert np.isnan(aln.mean_confidence) and np.isnan(aln.column_confidence).all()
    assert len(aln.column_confidence) == len(full.column_confidence)


def test_forward_that_loses_precision_is_an_error(monkeypatch):
    """A forward that comes back NaN from the kernels (every tilt and the
    log-space fallback failed: never seen, forced here): score, log_odds
    and score_pairs refuse it with one line naming the pair; the posterior's message says precision, not
    "probability 0"; Viterbi-only alignments keep a NaN log-odds."""
    from hmmtie._kernels import pair_fb as kf
    m = PairHMM.preset("3state", alphabet="dna")
    monkeypatch.setattr(kf, "forward", lambda *a, **k: math.nan)
    monkeypatch.setattr(kf, "batch_forward", lambda *a, **k: np.array([0.5, math.nan]))
    for f in (m.score, m.log_odds):
        with pytest.raises(ValueError, match=r"^the forward of this pair \(lengths 4 x 3\) lost precision"):
            f("ACGT", "ACG")
    with pytest.raises(ValueError, match=r"^pair 2 \(1-based\): the forward of this pair \(lengths 2 x 5\)"):
        m.score_pairs([("ACG", "AC"), ("AC", "ACGTT")])
    with pytest.raises(ValueError, match="lost precision"):
        m._check_posterior(math.nan, np.zeros(4, np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="no alignment of these sequences has non-zero probability"):
        m._check_posterior(-math.inf, np.zeros(4, np.uint8), np.zeros(3, np.uint8))
    aln = m._align_viterbi_only(np.zeros(4, np.uint8), "AAAA", "a", np.zeros(3, np.uint8), "AAA", "b")
    assert np.isnan(aln.log_odds) and len(aln.column_confidence) > 0


def test_untied_scores_are_asymmetric():
    m = PairHMM.preset("3state", alphabet="dna", symmetric_gaps=False, defaults=False)
    t = m.trans_.copy()
    # make insert-x gaps long and insert-y gaps short
    S = m.n_states
    t[2, 1], t[2, 0] = 0.9, 0.1 - t[2, S]  # row X: [X->M, X->X, X->Y, X->End]
    m._set_params_from_dict({"background": m.background_, "trans": t, "match": m.match_emissionprob_,
                             "insert": m.insert_emissionprob_})
    assert abs(m.score("ACGTACGTAA", "ACGA") - m.score("ACGA", "ACGTACGTAA")) > 0.1


def _em_spy(model):
    hist = []

    def cb(it, obj):
        hist.append(obj)
        # the tie maps hold: values read back through them without error
        model._trans.atoms_from_full(model.trans_)
        model._match.atoms_from_full(model.match_emissionprob_.reshape(len(model.match_emissionprob_), -1))
        model._insert.atoms_from_full(model.insert_emissionprob_)
    return hist, cb


@pytest.mark.parametrize("name, sg", [("3state", True), ("5state", False)])
def test_em_never_lowers_likelihood_and_keeps_ties(name, sg):
    rng = np.random.default_rng(0)
    true = _randomize(PairHMM.preset(name, alphabet="dna", defaults=False), rng, concentration=5.0)
    pairs = [(a, b) for a, b, _ in true.sample(15, random_state=1)]
    m = PairHMM.preset(name, alphabet="dna", symmetric_gaps=sg, defaults=False)
    hist, cb = _em_spy(m)
    m.fit(pairs, n_iter=12, tol=0.0, params="all", callback=cb)
    h = np.array(hist)
    assert len(h) == 13
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]))
    fixed = m._trans.tie == -1
    assert np.array_equal(m.trans_[fixed], m._trans.fixed[fixed])


def test_exact_zero_probabilities_work():
    """5state with its long-gap pair disabled behaves as a 3-state model."""
    spec = {
        "transitions": {"tau": [["M", "End"], ["X1", "End"], ["Y1", "End"], ["X2", "End"], ["Y2", "End"]],
                        "delta1_x": [["Begin", "X1"], ["M", "X1"]], "delta1_y": [["Begin", "Y1"], ["M", "Y1"]]},
        "emission_groups": {"insert_x": ["X1", "X2"], "insert_y": ["Y1", "Y2"]},
        "fixed": {"transmat": [[a, b, 0.0] for a in ("X1", "Y1", "X2", "Y2") for b in ("X1", "Y1", "X2", "Y2") if a != b]
                  + [["Begin", "X2", 0.0], ["Begin", "Y2", 0.0], ["M", "X2", 0.0], ["M", "Y2", 0.0]]},
    }
    states = [("M", "match"), ("X1", "insert_x"), ("Y1", "insert_y"), ("X2", "insert_x"), ("Y2", "insert_y")]
    m5 = PairHMM(states, alphabet="dna", tying=spec)
    m5._set_params_from_dict(PairHMM.preset("5state", alphabet="dna", defaults=False)._generic_params(), symmetrise=True)
    assert m5.trans_[0, 3] == 0.0 and m5.trans_[1, 4] == 0.0
    m3 = PairHMM.preset("3state", alphabet="dna", defaults=False)
    S5 = 5
    t3 = np.zeros((4, 4))
    t5 = m5.trans_
    idx = [0, 1, 2]  # M, X1, Y1 (+ End)
    for r, r5 in enumerate([0, 1, 2, 3]):
        t3[r, :3] = t5[r5, idx]
        t3[r, 3] = t5[r5, S5]
    m3._set_params_from_dict({"background": m5.background_, "trans": t3, "match": m5.match_emissionprob_,
                              "insert": m5.insert_emissionprob_[:2]})
    a, b = "ACGTTGCAAC", "ACGTGCCAAC"
    assert m5.score(a, b) == pytest.approx(m3.score(a, b), abs=1e-10)
    assert m5.viterbi(a, b)[0] == pytest.approx(m3.viterbi(a, b)[0], abs=1e-10)
    pairs = [(p[0], p[1]) for p in m3.sample(5, random_state=0)]
    before = m5.trans_.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the unused long-gap rows must not stall the M-step
        m5.fit(pairs, n_iter=3)
    assert m5.trans_[1, 3] == 0.0 and m5.trans_[0, 4] == 0.0
    assert abs(m5.trans_[1, 1] - before[1, 1]) > 1e-6  # transitions were learned


def test_free_parameter_counts_from_tie_maps():
    m = PairHMM.preset("3state", alphabet="protein", defaults=False)
    # delta, epsilon, tau + symmetric 20x20 table (210 - 1) + one insert table (19)
    assert m.n_free_parameters == 3 + 209 + 19
    u = PairHMM.preset("3state", alphabet="protein", symmetric_gaps=False, symmetric_match=False, defaults=False)
    assert u.n_free_parameters == 5 + 399 + 38
    m5 = PairHMM.preset("5state", alphabet="dna", defaults=False)
    # delta1, delta2, eps1, eps2, tau; 10 - 1; 3
    assert m5.n_free_parameters == 5 + 9 + 3


def test_compare_pairs_structure():
    m = PairHMM.preset("3state", alphabet="dna")
    pairs = [(a, b) for a, b, _ in m.sample(20, random_state=5)]
    res = compare_pairs(pairs, model=m, n_iter=30)
    assert res.lrt.df == 2  # delta and epsilon split
    assert res.lrt.loglik_full >= res.lrt.loglik_restricted - 1e-8
    assert res.lrt.statistic >= -1e-8 and 0 <= res.lrt.p_value <= 1
    assert res.lrt.n_obs == sum(len(a) + len(b) for a, b in pairs)
    assert res.lrt.aic_restricted == pytest.approx(-2 * res.lrt.loglik_restricted + 2 * res.lrt.n_free_restricted)
    d = res.as_dict()
    assert d["tied"]["hypothesis"].startswith("symmetric gaps")
    assert "hypothesis" in res.verdict()


def test_compare_pairs_without_gaps_never_lowers_the_likelihood():
    # Regression: on pairs with no gaps the expected gap counts are ~1e-47
    # next to 14 match counts; the tied-rows M-step of the untied fit once
    # landed on M->End = 1 and dropped the log-likelihood from -32.7 to
    # -521.6, and the LRT statistic came out as -977.8.
    m = PairHMM.preset("3state", alphabet="dna")
    pairs = [("ACGTACGT", "ACGTACGT"), ("GGTTACCA", "GGTTACCA")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = compare_pairs(pairs, model=m)
    for fit in (res.tied, res.untied):
        h = np.asarray(fit.history_)
        assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]))
    assert res.lrt.statistic >= -1e-8


def _asymmetric_truth():
    m = PairHMM.preset("3state", alphabet="dna", symmetric_gaps=False)
    t = m.trans_.copy()
    S = m.n_states
    tau = 0.01
    dx, dy, ex, ey = 0.04, 0.02, 0.6, 0.6
    t[0, :S] = [1 - dx - dy, dx, dy]
    t[1, :] = [1 - dx - dy - tau, dx, dy, tau]
    t[2, :] = [1 - ex - tau, ex, 0.0, tau]
    t[3, :] = [1 - ey - tau, 0.0, ey, tau]
    m._set_params_from_dict({"background": m.background_, "trans": t, "match": m.match_emissionprob_,
                             "insert": m.insert_emissionprob_})
    return m, dx, dy


@pytest.mark.slow
def test_recovery_of_asymmetric_gap_opening():
    true, dx, dy = _asymmetric_truth()
    pairs = [(a, b) for a, b, _ in true.sample(2000, random_state=11)]
    fit = true.with_hypothesis(symmetric_gaps=True).with_hypothesis(symmetric_gaps=False)
    assert fit.trans_[1, 1] == fit.trans_[1, 2]  # symmetric start
    fit.fit(pairs, n_iter=200, tol=1e-6, params="transitions")
    assert fit.trans_[1, 1] == pytest.approx(dx, rel=0.10)
    assert fit.trans_[1, 2] == pytest.approx(dy, rel=0.10)


@pytest.mark.slow
def test_lrt_calibration_under_symmetric_null():
    """Rejection rate of the gap-symmetry LRT at alpha = 0.05 on 200 null datasets."""
    truth = PairHMM.preset("3state", alphabet="dna")
    t = truth.trans_.copy()
    S = truth.n_states
    tau = 0.02
    t[0, :S] = [0.9, 0.05, 0.05]
    t[1, :] = [0.9 - tau, 0.05, 0.05, tau]
    t[2, :] = [0.5 - tau, 0.5, 0.0, tau]
    t[3, :] = [0.5 - tau, 0.0, 0.5, tau]
    truth._set_params_from_dict({"background": truth.background_, "trans": t, "match": truth.match_emissionprob_,
                                 "insert": truth.insert_emissionprob_})
    rejections = 0
    n_sets = 200
    for k in range(n_sets):
        pairs = [(a, b) for a, b, _ in truth.sample(20, random_state=1000 + k)]
        res = compare_pairs(pairs, model=truth, n_iter=200, tol=1e-6)
        rejections += res.lrt.p_value < 0.05
    rate = rejections / n_sets
    assert 0.02 <= rate <= 0.09, rate


@pytest.mark.parametrize("preset, alphabet, local", [("3state", "dna", False), ("5state", "protein", True)])
def test_sample_draws_what_rng_choice_draws(preset, alphabet, local):
    """sample() draws each step as ``rng.choice(n, p=p)`` would (one
    ``rng.random()`` against the cumulative table), so a seed gives the
    pairs earlier versions gave: checked against a walk through the model
    made with ``rng.choice`` itself."""
    m = PairHMM.preset(preset, alphabet=alphabet, local=local)
    got = m.sample(25, random_state=11)
    rng = np.random.default_rng(11)
    letters, S, A = m._alph.letters, m.n_states, len(m._alph.letters)
    want = []
    while len(want) < 25:
        xs, ys, ops = [], [], []
        state = rng.choice(S + 1, p=m.trans_[0])
        while state != S:
            k, t = m._kind[state], m._etab[state]
            if k == 0:
                ab = rng.choice(A * A, p=m.match_emissionprob_[t].ravel())
                xs.append(letters[ab // A])
                ys.append(letters[ab % A])
            else:
                p = m.insert_emissionprob_[t] if t < len(m._ins_names) else m.background_
                (xs if k == 1 else ys).append(letters[rng.choice(A, p=p)])
            ops.append(k)
            state = rng.choice(S + 1, p=m.trans_[state + 1])
        if xs and ys:
            want.append(("".join(xs), "".join(ys), ops))
    for (a, b, aln), (wa, wb, ops) in zip(got, want):
        assert (a, b) == (wa, wb)
        full = alignment_to_ops(aln, len(a), len(b), local=local)
        if not local:
            assert list(full) == ops


def test_sample_returns_true_alignments():
    m = PairHMM.preset("5state", alphabet="protein")
    for a, b, aln in m.sample(3, random_state=2):
        ops = alignment_to_ops(aln, len(a), len(b))
        assert len(ops) >= max(len(a), len(b))
        assert np.isfinite(m.score_alignment(a, b, aln))
        assert m.score_alignment(a, b, aln) <= m.score(a, b) + 1e-9


def test_inputs_seq_and_seqrecord_and_ambiguity():
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    m = PairHMM.preset("3state", alphabet="dna")
    a, b = "ACGTTGCA", "acgtgca"
    s = m.score(a, b)
    assert m.score(Seq(a), SeqRecord(Seq(b), id="r2")) == s
    # N stands for any base: its emission is the marginal (sum), so P(N.., y) >= P(A.., y)
    assert m.score("NCGTTGCA", b) > m.score("ACGTTGCA", b)
    aln = m.align(SeqRecord(Seq(a), id="first"), SeqRecord(Seq(b), id="second"))
    assert aln.sequences[0].id == "first"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.score("", "ACGT"), "is empty"),
        (lambda m: m.score("ACGT", "ACXT"), "invalid character 'X' at position 3 of sequence b:"),
        (lambda m: m.score(SeqRecord(Seq("AC*T"), id="r1"), "ACG"), "position 3 of record 'r1' (sequence a)"),
        (lambda m: m.score_alignment("ACG", "AC", ("AC-", "A-C")), "covers 2 and 2 residues"),
        (lambda m: m.set_params(startprob=[0.5, 0.5, 0.5]), "sums to 1.5"),
        (lambda m: m.set_params(startprob=[np.nan, 0.5, 0.5]), "NaN"),
        (lambda m: m.set_params(startprob=[-0.1, 0.6, 0.5]), "negative"),
        (lambda m: m.set_params(background="abc"), "background must be 4 positive frequencies"),
        (lambda m: m.set_params(background=[0.5, 0.5, 0.0, 0.0]), "letter 'G' has 0"),
        (lambda m: m.set_params(background=[0.3] * 4), "they sum to 1.2"),
        (lambda m: m.align("ACGT", "ACGT", method="best"), "method must be one of"),
        # the alignment's residues must be the sequences' (found by review)
        (lambda m: m.score_alignment("ACGTACGT", "ACGTTACGT", ("TTTT-TTTT", "GGGGGGGGG")),
         "row 1 has 'T' at residue 1, but the sequence has 'A'"),
        (lambda m: m.score_alignment("ACGTACGT", "ACGTTACGT", ("ACGT-ACGT", "ACGTTACGA")),
         "row 2 has 'A' at residue 9"),
        (lambda m: m.score_alignment("ACGTACGT", "ACGTTACGT", Alignment(
            [Seq("ACGTACGT"), Seq("GGGGGGGGG")], np.array([[0, 4, 4, 8], [0, 4, 5, 9]]))),
         "row 2 has 'G' at residue 1"),
        (lambda m: m.score_alignment("ACGTACGT", "ACGTTACGT", Alignment(
            [Seq("ACGTACGT"), Seq("ACGTTACGT")], np.array([[-1, 4, 4, 8], [0, 4, 5, 9]]))),
         "must not be negative"),
        (lambda m: PairHMM.preset("3state", alphabet="dna", symmetric_gaps="no"), "True or False"),
        (lambda m: setattr(m, "band", 2**40), "band must be <= 2147483648"),
        (lambda m: setattr(m, "memory_limit", "x"), "memory_limit must be an integer"),
        (lambda m: PairHMM([("M", "match"), ("X", "insert_x"), ("Y", "insert_y")], alphabet="dna").score("AC", "A"),
         "no parameters yet"),
        (lambda m: compare_pairs([("ACGT", "ACG")], model="3state"), "model must be a PairHMM"),
        (lambda m: m.sample(2, random_state="abc"), "random_state must be None, an integer >= 0"),
        (lambda m: m.sample(2, random_state=True), "random_state must be None, an integer >= 0"),
        (lambda m: m.sample(2, random_state=-1), "random_state must be None, an integer >= 0"),
        (lambda m: m.save(os.getcwd()), "is a folder"),
        (lambda m: m.fit([("ACGT", "ACG")], tol=True), "tol must be a finite number >= 0, got True"),
        (lambda m: m.fit([("ACGT", "ACG")], emission_pseudocount="1"), "emission_pseudocount must be a finite"),
        # review 32: Biopython's own error came out of a Seq of a length only
        (lambda m: m.score("ACGT", Seq(None, length=3)), "sequence b: the sequence's content is undefined"),
        (lambda m: m.fit([("ACGT", "ACG"), ("ACGT", Seq(None, length=3))]), "content is undefined"),
        (lambda m: m.score_alignment("ACG", "AC", ("AC-", 5)),
         "a pair of gapped strings (str or Bio.Seq.Seq), got tuple"),
    ],
)
def test_bad_input_one_line_errors(call, message):
    m = PairHMM.preset("3state", alphabet="dna")
    with pytest.raises(ValueError) as exc:
        call(m)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_score_alignment_accepts_its_own_sequences_in_any_case():
    m = PairHMM.preset("3state", alphabet="dna")
    a, b = "ACGTACGT", "ACGTTACGT"
    s = m.score_alignment(a, b, ("ACGT-ACGT", "ACGTTACGT"))
    assert m.score_alignment(a, b, ("acgt-acgt", "ACGTTACGT")) == s
    coords = np.array([[0, 4, 4, 8], [0, 4, 5, 9]])
    assert m.score_alignment(a, b, Alignment([Seq(a), Seq(b)], coords)) == s
    # sequences of undefined content (Bio.Seq) cannot be compared: accepted
    assert m.score_alignment(a, b, Alignment([Seq(None, 8), Seq(None, 9)], coords)) == s


def test_score_alignment_two_rows_of_a_multiple_alignment():
    """Review 32: columns that are gaps in both rows (two rows of a multiple
    alignment) were skipped in an ``Alignment`` but refused in gapped
    strings; both forms skip them now, and gapped ``Seq`` objects work."""
    import io

    from Bio import Align

    m = PairHMM.preset("3state", alphabet="dna")
    a, b = "ACGT", "ACAG"
    s = m.score_alignment(a, b, ("AC-GT", "ACAG-"))
    aln = Align.read(io.StringIO(">s1\nAC--GT-\n>s2\nAC-AG--\n"), "fasta")
    assert m.score_alignment(a, b, aln) == s
    assert m.score_alignment(a, b, ("AC--GT-", "AC-AG--")) == s
    assert m.score_alignment(a, b, (Seq("AC--GT-"), Seq("AC-AG--"))) == s
    assert m.score_alignment(a, b, ("AC..GT.", "AC.AG..")) == s
    assert s != m.score_alignment(a, b, ("ACG-T", "ACAG-"))


def test_n_iter_counts_the_m_steps():
    """A review: ``fit(n_iter=0)`` reported one EM iteration (``n_iter_`` was
    the number of E-steps); it is the number of M-steps."""
    pairs = [(x, y) for x, y, _ in PairHMM.preset("3state", alphabet="dna").sample(5, random_state=2)]
    m = PairHMM.preset("3state", alphabet="dna").fit(pairs, n_iter=0, params="transitions")
    assert m.n_iter_ == 0 and len(m.history_) == 1 and not m.converged_
    m = PairHMM.preset("3state", alphabet="dna").fit(pairs, n_iter=2, tol=0.0, params="transitions")
    assert m.n_iter_ == len(m.history_) - 1
    assert m.n_iter_ == 2 or m.converged_


@pytest.mark.parametrize("field, row, value, message", [
    ("match", None, "nan", "match_emissionprob: holds NaN"),
    ("match", None, "negative", "match_emissionprob: row 'M', column 'A:A' is negative"),
    ("trans", None, "negative", "row 'Begin', column 'M' is negative"),
    ("match", None, 1.5, "match_emissionprob: row 'M' sums to 1.5"),
    ("insert", 0, 2.0, "insert_emissionprob: row 'X' sums to 2"),
])
def test_model_file_emission_tables_are_checked(tmp_path, field, row, value, message):
    # Found by review: only the transition rows were checked on load, so a
    # file with NaN, negative or unnormalised emissions gave -inf, nan or
    # wrong scores without a word.
    p = tmp_path / "bad.json"
    PairHMM.preset("3state", alphabet="dna").save(p)
    d = json.loads(p.read_text())
    t = np.asarray(d["params"][field], dtype=float)
    if value == "nan":
        t.flat[0] = np.nan
    elif value == "negative":
        t.flat[0] = -t.flat[0]
    else:
        t = t * value
    d["params"][field] = t.tolist()
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError) as exc:
        hmmtie.load(p)
    assert message in str(exc.value) and "bad.json" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_model_file_fit_section_and_flags_are_checked(tmp_path):
    p = tmp_path / "bad.json"
    PairHMM.preset("3state", alphabet="dna").save(p)
    d = json.loads(p.read_text())
    for key, value, message in (("symmetric_gaps", "no", "True or False"),):
        bad = dict(d, **{key: value})
        p.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=message):
            hmmtie.load(p)
    for fit, message in (({"history": "abc"}, "history must be a list of numbers"),
                         ({"converged": "maybe"}, "converged must be True or False"),
                         ({"params": "bogus"}, "params must be one of")):
        p.write_text(json.dumps(dict(d, fit=fit)))
        with pytest.raises(ValueError, match=message):
            hmmtie.load(p)


def test_memory_guard_suggests_band():
    m = PairHMM.preset("3state", alphabet="dna", memory_limit=10_000)
    with pytest.raises(MemoryError, match="band") as exc:
        m.posterior("A" * 200, "A" * 200)
    assert "\n" not in str(exc.value)
    with pytest.raises(MemoryError, match="band"):
        m.viterbi("A" * 200, "A" * 200)
    m.band = 5  # a banded Viterbi traceback fits
    assert m.viterbi("A" * 200, "A" * 200)[1].length == 200


def test_memory_guard_counts_the_general_kernels_tables_and_fit():
    # Found by review: local models (general kernels) used 2-2.7x the
    # guard's estimate, and fit ignored memory_limit altogether.
    glob = PairHMM.preset("3state", alphabet="dna", memory_limit=60 * 2**20)
    loc = PairHMM.preset("3state", alphabet="dna", local=True, memory_limit=60 * 2**20)
    # peak bytes per cell: (N, M) output (+ its transposed copy when M > N),
    # the general kernels' match lattice, then MEA's byte (+ local weights)
    assert glob._cell_bytes("align", 2000, 2000) == 9 and glob._cell_bytes("traceback", 2000, 2000) == 1
    assert glob._cell_bytes("posterior", 1000, 2000) == 16
    assert loc._cell_bytes("posterior", 2000, 2000) == 16 and loc._cell_bytes("align", 2000, 2000) == 17
    a = "ACGT" * 500  # 2000 x 2000: 36 MB for the global MEA, 68 MB local
    assert glob._memory_need(2000, 2000, glob._cell_bytes("align", 2000, 2000))[1]
    with pytest.raises(MemoryError, match="2000 x 2000 needs about"):
        loc.align(a, a)
    big = "ACGT" * 5000  # 20000 x 20000: ~230 MB of E-step checkpoints
    before = glob.to_dict()
    with pytest.raises(MemoryError, match=r"pairs\[1\] of lengths 20000 x 20000 .*expected-count tables"):
        glob.fit([("ACGT", "ACG"), (big, big)], n_iter=1)
    assert glob.to_dict() == before  # nothing changed by the refused fit


def test_huge_band_is_no_band_and_match_only_models_roundtrip(tmp_path):
    # Found by the second review: a band near 2^62 overflowed the kernels'
    # (band + 1) * length (segfault or wrong scores); the cap is now 2^31.
    ref = PairHMM.preset("3state", alphabet="dna")
    a, b = "ACGTACGT", "ACGTTACGT"
    assert PairHMM.preset("3state", alphabet="dna", band=2**31).score(a, b) == ref.score(a, b)
    # a model without insert states ("insert": [] in its file) loads and copies
    m = PairHMM([("M", "match")], alphabet="dna")
    m.set_params(startprob=[1.0], transmat=[[0.9]], endprob=[0.1],
                 match_emissionprob=ref.match_emissionprob_, background=ref.background_)
    m.save(tmp_path / "m.json")
    s = m.score("ACGT", "ACGA")
    assert hmmtie.load(tmp_path / "m.json").score("ACGT", "ACGA") == s == m.copy().score("ACGT", "ACGA")
    # copy keeps the settings
    ref.band, ref.memory_limit, ref.n_threads = 3, 10**9, 1
    c = ref.copy()
    assert (c.band, c.memory_limit, c.n_threads) == (3, 10**9, 1)


def test_save_load_roundtrip_and_alphabet_mismatch(tmp_path):
    m = PairHMM.preset("5state", alphabet="protein", symmetric_gaps=False)
    p = tmp_path / "m.json"
    m.save(p)
    m2 = hmmtie.load(p)
    assert m2.symmetric_gaps is False and m2.n_free_parameters == m.n_free_parameters
    assert m2.score("ACDEFG", "ACEFG") == m.score("ACDEFG", "ACEFG")
    d = PairHMM.preset("3state", alphabet="dna")
    with pytest.raises(ValueError, match="invalid character 'E'"):
        d.score("ACDEFG", "ACEFG")
    doc = json.loads(p.read_text())
    doc["version"] = 7
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="newer"):
        hmmtie.load(p)


def test_alignment_log_odds_agree_with_log_odds_on_long_pairs():
    """align() takes its log-odds from the posterior's forward pass,
    log_odds() from the forward (both striped once the shorter sequence has
    64 residues or more, the row kernels below): the same value up to
    rounding."""
    m = PairHMM.preset("3state", alphabet="dna")
    rng = np.random.default_rng(0)
    for n in (40, 64, 200, 1000):
        a = "".join(rng.choice(list("ACGT"), n))
        b = list(a)
        for k in rng.choice(n, n // 6, replace=False):
            b[k] = "ACGT"[rng.integers(4)]
        b = "".join(b)
        lo = m.log_odds(a, b)
        for method in ("mea", "viterbi"):
            aln = m.align(a, b, method=method)
            assert abs(aln.log_odds - lo) <= 1e-12 * abs(lo)
            ll = m.score(a, b)
            assert abs(aln.log_likelihood - ll) <= 1e-12 * abs(ll)


def test_score_pairs_equals_score_bit_for_bit_anywhere_in_the_batch():
    """Review 34: the null-model term of a batch came from differences of
    one running sum over all pairs, so a pair's score_pairs value moved
    with its neighbours (6.5e-9 nats at pair 6,001) and never equalled
    score.  Now each pair's sum is its own."""
    m = PairHMM.preset("3state", alphabet="dna")
    pairs = [(x[:100], y[:100]) for x, y, _ in m.sample(200, random_state=1)]
    p = pairs[5]
    want = m.score(*p)
    assert m.score_pairs([p])[0] == want
    batch = m.score_pairs(pairs * 10 + [p])
    assert batch[-1] == want and batch[5] == want
    assert all(batch[k] == m.score(*pairs[k]) for k in range(0, 200, 37))
