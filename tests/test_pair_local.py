"""Local pair HMMs: flank states around a global core (PairHMM.preset(..., local=True))."""
import numpy as np
import pytest

import naive_pair as nv
from hmmtie import PairHMM
from hmmtie._kernels import pair_fb as pf
from hmmtie.pair import FLANKS, alignment_to_ops
from test_pair import _randomize  # random parameters that respect the ties


def _codes(model, s):
    return np.array([model._alph.letters.index(c) for c in s], dtype=np.uint8)


def test_local_structure_and_ties():
    m = PairHMM.preset("3state", alphabet="protein", local=True)
    assert m.local and [s.name for s in m.states][-4:] == list(FLANKS)
    t = m.trans_
    names = ["Begin"] + m._names
    row = {n: k for k, n in enumerate(names)}
    col = {n: k for k, n in enumerate(m._names + ["End"])}
    # the core starts and ends with a match
    for a in ("Begin", "RX1", "RY1"):
        assert t[row[a], col["X"]] == 0 and t[row[a], col["Y"]] == 0
    for a in ("X", "Y"):
        assert t[row[a], col["End"]] == 0 and t[row[a], col["RX2"]] == 0 and t[row[a], col["RY2"]] == 0
    # one flank loop value; flank cells mirror-tied
    loops = [t[row[f], col[f]] for f in FLANKS]
    assert np.allclose(loops, loops[0])
    assert t[row["RX1"], col["RY1"]] == t[row["RY1"], col["RX1"]]
    assert t[row["M"], col["RX2"]] == t[row["M"], col["RY2"]]
    # flanks add transition parameters only (no emission table)
    g = PairHMM.preset("3state", alphabet="protein")
    assert m._match.n_free == g._match.n_free and m._insert.n_free == g._insert.n_free
    assert np.allclose(m._ins_odds[-1], 1.0)  # background emissions: odds 1
    # asymmetric gaps free the core's inserts, not the flanks
    u = PairHMM.preset("3state", alphabet="protein", local=True, symmetric_gaps=False)
    ug = PairHMM.preset("3state", alphabet="protein", symmetric_gaps=False)
    assert u._trans.n_free - m._trans.n_free == ug._trans.n_free - g._trans.n_free > 0
    # the core's parameters are the global preset's
    assert np.allclose(m.match_emissionprob_, g.match_emissionprob_)
    assert t[row["M"], col["M"]] == pytest.approx(g.transmat_[0, 0])


def test_local_flank_states_need_pairs_and_no_emission_groups():
    with pytest.raises(ValueError, match="flank_x and flank_y"):
        PairHMM([("M", "match"), ("X", "insert_x"), ("Y", "insert_y"), ("F", "flank_x")], symmetric_gaps=False)
    with pytest.raises(ValueError, match="no emission table"):
        PairHMM([("M", "match"), ("F", "flank_x"), ("G", "flank_y")], symmetric_gaps=False,
                tying={"emission_groups": {"f": ["F", "G"]}})


@pytest.mark.parametrize("name, sg, seed", [("3state", True, 0), ("3state", False, 1), ("5state", True, 2)])
@pytest.mark.parametrize("x, y", [("A", "C"), ("ACG", "AG"), ("GAT", "TAC")])
def test_local_matches_brute_force(name, sg, seed, x, y):
    m = _randomize(PairHMM.preset(name, alphabet="dna", symmetric_gaps=sg, local=True, defaults=False),
                   np.random.default_rng(seed))
    xc, yc = _codes(m, x), _codes(m, y)
    args = m._kargs()
    paths = nv.enumerate_paths(*args, xc, yc)
    assert m.log_odds(x, y) == pytest.approx(nv.total(paths), abs=1e-10)
    assert np.allclose(m.posterior(x, y), nv.posterior(paths, args[0], len(x), len(y)), atol=1e-10)
    best, _ = nv.viterbi_brute(paths)
    lp, _ = m.viterbi(x, y)
    assert lp - m._bg(xc, yc) == pytest.approx(best, abs=1e-10)
    S = m.n_states
    acc = [np.zeros(S), np.zeros((S, S)), np.zeros(S), np.zeros(args[5].shape), np.zeros(args[6].shape)]
    pf.expected_counts(*args, xc, yc, *acc, -1)
    want = nv.expected_counts(paths, args[0], args[1], xc, yc, S, args[5].shape, args[6].shape)
    for got, exp in zip(acc, want):
        assert np.allclose(got, exp, atol=1e-10)


def test_local_symmetry_with_both_ties():
    rng = np.random.default_rng(5)
    m = _randomize(PairHMM.preset("3state", alphabet="protein", local=True, defaults=False), rng)
    letters = list(m._alph.letters)
    for _ in range(3):
        a = "".join(rng.choice(letters, size=rng.integers(15, 40)))
        b = "".join(rng.choice(letters, size=rng.integers(15, 40)))
        assert m.score(a, b) == pytest.approx(m.score(b, a), abs=1e-12 * abs(m.score(a, b)))
        assert np.allclose(m.posterior(a, b), m.posterior(b, a).T, atol=1e-12)


def _embedded_pair(seed=0, core_len=60):
    """A 60-residue core (every tenth residue changed in b) inside unrelated
    flanks; residues drawn from the protein background, like real proteins."""
    rng = np.random.default_rng(seed)
    m = PairHMM.preset("3state")
    letters, q = list(m._alph.letters), m.background_

    def draw(n):
        return rng.choice(letters, n, p=q)

    core = draw(core_len)
    mutated = core.copy()
    mutated[::10] = draw(len(mutated[::10]))
    pre_a, post_a, pre_b, post_b = 70, 30, 12, 90
    a = "".join(draw(pre_a)) + "".join(core) + "".join(draw(post_a))
    b = "".join(draw(pre_b)) + "".join(mutated) + "".join(draw(post_b))
    true_pairs = {(pre_a + k, pre_b + k) for k in range(core_len)}
    return a, b, true_pairs


def _aligned_pairs(aln):
    out = set()
    c = aln.coordinates
    for k in range(c.shape[1] - 1):
        di, dj = c[0, k + 1] - c[0, k], c[1, k + 1] - c[1, k]
        if di and dj:
            out |= {(c[0, k] + t, c[1, k] + t) for t in range(di)}
    return out


@pytest.mark.parametrize("method", ["viterbi", "mea"])
def test_local_alignment_finds_the_embedded_core(method):
    a, b, truth = _embedded_pair()
    m = PairHMM.preset("3state", local=True)
    aln = m.align(a, b, method=method)
    got = _aligned_pairs(aln)
    assert len(got & truth) >= 0.95 * len(truth)
    # local coordinates: the alignment leaves the unrelated ends out, so it
    # pairs fewer flank residues than a global alignment (which must pair
    # 12 + 30 of them). Viterbi's single best path may extend into the flanks
    # where chance similarity outweighs a flank switch; MEA with its
    # expected-correct-columns objective stops at the core.
    g = PairHMM.preset("3state").align(a, b, method=method)
    assert int(g.coordinates[0, 0]) == 0 and int(g.coordinates[0, -1]) == len(a)
    n_global = len(_aligned_pairs(g) - truth)
    assert n_global >= 30
    assert int(aln.coordinates[0, 0]) > 40 and int(aln.coordinates[0, -1]) < len(a) - 10
    if method == "mea":
        assert abs(int(aln.coordinates[0, 0]) - 70) <= 3 and abs(int(aln.coordinates[1, 0]) - 12) <= 3
        assert len(got - truth) <= 15
    else:
        assert len(got - truth) <= 0.6 * n_global
    assert len(aln.column_confidence) == aln.length


def test_local_score_alignment_takes_local_coordinates():
    a, b, _ = _embedded_pair(seed=1, core_len=40)
    m = PairHMM.preset("3state", local=True)
    lp, aln = m.viterbi(a, b)
    assert int(aln.coordinates[0, 0]) > 0
    s = m.score_alignment(a, b, aln)
    # a sum over the paths consistent with the alignment: at least the best path, at most everything
    assert lp - 1e-9 <= s <= m.score(a, b) + 1e-9
    ops = alignment_to_ops(aln, len(a), len(b), local=True)
    assert len(ops) == int(np.sum(ops != 2)) + int(np.sum(ops == 2)) and int(np.sum(ops != 2)) == len(a)
    with pytest.raises(ValueError, match="global"):
        PairHMM.preset("3state").score_alignment(a, b, aln)


def test_local_em_and_roundtrip(tmp_path):
    true = _randomize(PairHMM.preset("3state", alphabet="dna", local=True, defaults=False),
                      np.random.default_rng(3), concentration=5.0)
    pairs = [(x, y) for x, y, _ in true.sample(20, random_state=2)]
    m = PairHMM.preset("3state", alphabet="dna", local=True)
    hist = []
    m.fit(pairs, n_iter=8, tol=0.0, params="transitions", callback=lambda it, obj: hist.append(obj))
    h = np.array(hist)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]))
    names = ["Begin"] + m._names
    loops = [m.trans_[names.index(f), m._names.index(f)] for f in FLANKS]
    assert np.allclose(loops, loops[0])
    path = tmp_path / "local.json"
    m.save(path)
    import hmmtie

    back = hmmtie.load(path)
    assert back.local and repr(back) == repr(m)
    a, b = pairs[0]
    assert back.score(a, b) == m.score(a, b)


def test_local_mea_maximises_expected_correct_columns():
    m = _randomize(PairHMM.preset("3state", alphabet="dna", local=True, defaults=False),
                   np.random.default_rng(7))
    x, y = "ACGTA", "CGTT"
    P = m.posterior(x, y)
    gx, gy = 1 - P.sum(axis=1), 1 - P.sum(axis=0)

    def objective(ops):
        i = j = 0
        total = 0.0
        for op in ops:
            if op == 0:
                total += 2 * P[i, j]
            elif op == 1:
                total += gx[i]
            else:
                total += gy[j]
            i += op != 2
            j += op != 1
        return total

    best = max(objective(ops) for ops in nv.all_alignments(len(x), len(y)))
    aln = m.align(x, y, method="mea")
    ops = alignment_to_ops(aln, len(x), len(y), local=True)
    assert objective(ops) == pytest.approx(best, abs=1e-12)
    # .score: the expected number of correctly aligned pairs
    pairs = [(i, j) for i, j in zip(np.cumsum(ops != 2) - 1, np.cumsum(ops != 1) - 1)][: len(ops)]
    want = sum(P[i, j] for (i, j), op in zip(pairs, ops) if op == 0)
    assert aln.score == pytest.approx(want, abs=1e-12)


def test_local_mea_may_align_nothing_and_says_so():
    # unrelated sequences: no pair is worth aligning under the expected-correct-columns objective
    m = PairHMM.preset("3state", local=True)
    rng = np.random.default_rng(11)
    letters, q = list(m._alph.letters), m.background_
    found = 0
    for _ in range(6):
        a = "".join(rng.choice(letters, 60, p=q))
        b = "".join(rng.choice(letters, 50, p=q))
        aln = m.align(a, b, method="mea")
        if len(_aligned_pairs(aln)) == 0:
            found += 1
            assert aln.score == 0.0
            assert aln.coordinates[0, 0] == 0 and aln.coordinates[0, -1] == len(a)
            assert aln.coordinates[1, -1] == len(b)
            assert m.score_alignment(a, b, aln) == -np.inf  # the core needs a match
    assert found >= 1


def test_local_sample_alignments_follow_the_local_convention():
    m = PairHMM.preset("3state", alphabet="dna", local=True)
    for x, y, aln in m.sample(10, random_state=4):
        ops = alignment_to_ops(aln, len(x), len(y), local=True)
        assert int(np.sum(ops != 2)) == len(x) and int(np.sum(ops != 1)) == len(y)
        # the alignment itself starts and ends with an aligned pair (the core)
        c = aln.coordinates
        assert c[0, 1] - c[0, 0] > 0 and c[1, 1] - c[1, 0] > 0
        assert c[0, -1] - c[0, -2] > 0 and c[1, -1] - c[1, -2] > 0


def test_local_hypotheses_roundtrip_and_full_em(tmp_path):
    import hmmtie

    m = PairHMM.preset("3state", alphabet="dna", local=True)
    u = m.with_hypothesis(symmetric_gaps=False)
    assert u.local and not u.symmetric_gaps
    # untying keeps the values exactly; the flanks stay mirror-tied under both hypotheses
    np.testing.assert_allclose(u.trans_, m.trans_, atol=1e-15)
    assert u._trans.n_free - m._trans.n_free == 2
    true = _randomize(PairHMM.preset("3state", alphabet="dna", local=True, symmetric_gaps=False, defaults=False),
                      np.random.default_rng(8), concentration=5.0)
    pairs = [(x, y) for x, y, _ in true.sample(15, random_state=7)]  # short pairs: the general kernels are slow
    hist = []
    u.fit(pairs, n_iter=5, tol=0.0, params="all", callback=lambda it, obj: hist.append(obj))
    h = np.array(hist)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]))
    assert np.allclose(u._ins_odds[-1], 1.0)  # the flanks still emit the background
    path = tmp_path / "asym_local.json"
    u.save(path)
    back = hmmtie.load(path)
    assert back.local and not back.symmetric_gaps and back.n_free_parameters == u.n_free_parameters
    a, b = pairs[0]
    assert back.score(a, b) == pytest.approx(u.score(a, b), abs=1e-10)
    assert back.score(a, b) != pytest.approx(back.score(b, a), abs=1e-9)  # asymmetric after the fit
