"""Tests for hmmtie.hmm: CategoricalHMM and GaussianHMM under tie specs."""
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import hmmtie
from hmmtie import CategoricalHMM, GaussianHMM

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")


def _random_rows(rng, shape):
    a = rng.gamma(2.0, 1.0, size=shape) + 0.05
    return a / a.sum(axis=-1, keepdims=True)


def _set(model, rng, k, m):
    model.startprob_ = _random_rows(rng, (k,))
    model.transmat_ = _random_rows(rng, (k, k))
    model.emissionprob_ = _random_rows(rng, (k, m))
    return model


def _hl_categorical(ours, n_iter=10, tol=0.01):
    # hmmlearn builds its convergence monitor in __init__: pass n_iter/tol there
    ref = hmmlearn_hmm.CategoricalHMM(n_components=ours.n_components, n_features=ours.emissionprob_.shape[1],
                                      implementation="scaling", init_params="", params="ste",
                                      n_iter=n_iter, tol=tol)
    ref.startprob_ = ours.startprob_.copy()
    ref.transmat_ = ours.transmat_.copy()
    ref.emissionprob_ = ours.emissionprob_.copy()
    return ref


def test_against_hmmlearn_score_posteriors_viterbi():
    rng = np.random.default_rng(1)
    k, m = 4, 5
    ours = _set(CategoricalHMM(k, n_symbols=m), rng, k, m)
    lengths = [30, 1, 57, 12]
    X = rng.integers(0, m, size=(sum(lengths), 1))
    ref = _hl_categorical(ours)
    assert ours.score(X, lengths) == pytest.approx(ref.score(X, lengths), abs=1e-8)
    lp, post = ours.score_samples(X, lengths)
    lp_ref, post_ref = ref.score_samples(X, lengths)
    assert lp == pytest.approx(lp_ref, abs=1e-8)
    assert np.allclose(post, post_ref, atol=1e-8)
    v, path = ours.decode(X, lengths)
    v_ref, path_ref = ref.decode(X, lengths)
    assert v == pytest.approx(v_ref, abs=1e-8)
    assert np.array_equal(path, path_ref)
    # list-of-sequences input gives the same answer
    seqs = np.split(X[:, 0], np.cumsum(lengths)[:-1])
    assert ours.score(seqs) == pytest.approx(lp, abs=1e-10)


def test_one_em_step_and_untied_fit_match_hmmlearn():
    rng = np.random.default_rng(2)
    k, m = 3, 4
    ours = _set(CategoricalHMM(k, n_symbols=m, n_iter=1, init_params="", tol=-1.0), rng, k, m)
    ours.tol = 0.0
    X = rng.integers(0, m, size=(400, 1))
    lengths = [100, 150, 150]
    ref = _hl_categorical(ours, n_iter=1, tol=0.0)
    ours.n_iter = 1  # one iteration = one E-step and one M-step, as in hmmlearn
    ours.fit(X, lengths)
    ref.fit(X, lengths)
    assert np.allclose(ours.startprob_, ref.startprob_, atol=1e-8)
    assert np.allclose(ours.transmat_, ref.transmat_, atol=1e-8)
    assert np.allclose(ours.emissionprob_, ref.emissionprob_, atol=1e-8)
    # an untied fit from the same start follows hmmlearn's iterates
    rng = np.random.default_rng(3)
    ours = _set(CategoricalHMM(k, n_symbols=m, n_iter=30, init_params="", tol=0.0), rng, k, m)
    ref = _hl_categorical(ours, n_iter=30, tol=0.0)
    ours.fit(X, lengths)
    ref.fit(X, lengths)
    assert np.allclose(ours.transmat_, ref.transmat_, atol=1e-7)
    assert np.allclose(ours.emissionprob_, ref.emissionprob_, atol=1e-7)


SPECS = [
    {"emission_groups": {"g": ["0", "1"]}},
    {"transitions": {"stay": [["0", "0"], ["1", "1"], ["2", "2"]]}},
    {"transitions": {"x": [["0", "1"], ["1", "2"], ["2", "0"]]}, "fixed": {"transmat": [["0", "2", 0.0]]}},
    {"start": {"s": ["0", "2"]}, "fixed": {"emissionprob": [["1", 0, 0.0], ["2", 3, 0.25]]}},
    {"emission_groups": {"g": ["1", "2"]}, "transitions": {"t": [["0", "0"], ["1", "2"]]},
     "fixed": {"transmat": [["2", "2", 0.5]]}},
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_index=st.integers(0, len(SPECS) - 1), seed=st.integers(0, 10_000))
def test_em_invariants(spec_index, seed):
    spec = SPECS[spec_index]
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 4, size=(120, 1))
    model = CategoricalHMM(3, n_symbols=4, tying=spec, n_iter=8, tol=0.0, random_state=seed)
    tie = model.tie_
    snapshots = []
    orig_mstep = model._mstep

    def spy(tie_, stats, atoms):
        new = orig_mstep(tie_, stats, atoms)
        snapshots.append((tie_.trans.expand(new["trans"]), tie_.emission.expand(new["emit"]),
                          tie_.start.expand(new["start"])[0]))
        return new

    model._mstep = spy
    model.fit(X, [60, 60])
    h = np.array(model.history_)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1])), "EM lowered the likelihood"
    for trans, emit, start in snapshots:
        for block, full in ((tie.trans, trans), (tie.emission, emit), (tie.start, start[None])):
            assert np.allclose(full.sum(axis=1), 1.0, atol=1e-10)
            fixed = block.tie == -1
            assert np.array_equal(full[fixed], block.fixed[fixed])
            for a in range(block.n_atoms):
                vals = full[block.tie == a]
                assert np.ptp(vals) == 0.0, "tied cells differ"


def test_history_and_convergence_flags():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(300, 1))
    m = CategoricalHMM(2, n_symbols=3, n_iter=500, tol=1e-3, random_state=0).fit(X)
    assert m.converged_ and m.n_iter_ < 500
    m = CategoricalHMM(2, n_symbols=3, n_iter=3, tol=0.0, random_state=0).fit(X)
    assert not m.converged_ and m.n_iter_ == 3 and len(m.history_) == 3


def _true_tied_model():
    m = CategoricalHMM(states=["A", "B", "C"], n_symbols=4,
                       tying={"emission_groups": {"AB": ["A", "B"]},
                              "transitions": {"stay": [["A", "A"], ["B", "B"], ["C", "C"]]}})
    m.startprob_ = np.array([0.6, 0.3, 0.1])
    m.transmat_ = np.array([[0.9, 0.08, 0.02], [0.02, 0.9, 0.08], [0.07, 0.03, 0.9]])
    m.emissionprob_ = np.array([[0.7, 0.2, 0.05, 0.05], [0.7, 0.2, 0.05, 0.05], [0.05, 0.05, 0.2, 0.7]])
    return m


def _cycle_model():
    """A -> B -> C -> A with a shared 'stay'; A and C share emissions but are
    identifiable by their place in the cycle (fixed zeros)."""
    zeros = [["A", "C", 0.0], ["B", "A", 0.0], ["C", "B", 0.0]]
    m = CategoricalHMM(states=["A", "B", "C"], n_symbols=4,
                       tying={"emission_groups": {"AC": ["A", "C"]},
                              "transitions": {"stay": [["A", "A"], ["B", "B"], ["C", "C"]]},
                              "fixed": {"transmat": zeros}})
    m.startprob_ = np.array([0.6, 0.3, 0.1])
    m.transmat_ = np.array([[0.85, 0.15, 0.0], [0.0, 0.85, 0.15], [0.15, 0.0, 0.85]])
    m.emissionprob_ = np.array([[0.6, 0.2, 0.1, 0.1], [0.05, 0.05, 0.3, 0.6], [0.6, 0.2, 0.1, 0.1]])
    return m


def test_recovery_of_tied_model():
    true = _cycle_model()
    X, _ = true.sample(50_000, random_state=7)
    fits = [CategoricalHMM(states=["A", "B", "C"], n_symbols=4, tying=true.tying, n_iter=200, tol=1e-6,
                           random_state=seed).fit(X) for seed in range(2)]
    best = max(fits, key=lambda f: f.history_[-1])
    # the likelihood is invariant to rotating the cycle's labels (A->B->C->A) only if
    # emissions rotate too, which the ties forbid; so compare directly
    assert np.abs(best.transmat_ - true.transmat_).max() < 0.02
    assert np.abs(best.emissionprob_ - true.emissionprob_).max() < 0.02
    assert best.n_free_parameters == 2 + 1 + 6


def test_gaussian_tied_variances_and_means():
    rng = np.random.default_rng(0)
    g = GaussianHMM(3, tying={"emission_groups": {"v": {"states": ["0", "1", "2"], "share": "covars"}}})
    g.startprob_ = np.array([1.0, 0, 0])
    g.transmat_ = np.array([[0.9, 0.1, 0], [0, 0.9, 0.1], [0.1, 0, 0.9]])
    g.means_ = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]])
    g.covars_ = np.full((3, 2), 0.5)
    X, _ = g.sample(5000, random_state=1)
    fit = GaussianHMM(3, tying=g.tying, random_state=0, n_iter=200).fit(X)
    assert np.ptp(fit.covars_, axis=0).max() == 0.0
    assert np.all(np.diff(fit.history_) >= -1e-9 * np.abs(np.array(fit.history_[:-1])))
    order = np.argsort(fit.means_[:, 0])
    assert np.allclose(fit.means_[order], g.means_[np.argsort(g.means_[:, 0])], atol=0.1)
    # means shared, variances free
    m2 = GaussianHMM(2, tying={"emission_groups": {"m": {"states": ["0", "1"], "share": "means"}}},
                     random_state=0, n_iter=100)
    Y = np.concatenate([rng.normal(1.0, 0.3, 500), rng.normal(1.0, 3.0, 500)])[:, None]
    m2.fit(Y)
    assert m2.means_[0, 0] == m2.means_[1, 0]
    assert np.all(np.diff(m2.history_) >= -1e-9 * np.abs(np.array(m2.history_[:-1])))
    assert m2.n_free_parameters == 1 + 2 + 1 + 2


def test_gaussian_long_sequence_is_finite():
    rng = np.random.default_rng(5)
    g = GaussianHMM(2)
    g.startprob_ = np.array([0.5, 0.5])
    g.transmat_ = np.array([[0.95, 0.05], [0.05, 0.95]])
    g.means_ = np.zeros((2, 20)) + np.array([[0.0], [1.0]])
    g.covars_ = np.full((2, 20), 0.2)
    X = rng.normal(size=(100_000, 20))
    ll = g.score(X)
    assert np.isfinite(ll)
    # log-space reference (tests/naive.py, independent of the scaled kernels)
    from naive import hmm_forward_log
    ref = hmm_forward_log(np.log(g.startprob_), np.log(g.transmat_), g._log_frameprob(X))
    assert ll == pytest.approx(ref, rel=1e-10)


def test_soft_tying_path_approaches_hard_tie():
    true = _true_tied_model()
    X, _ = true.sample(3000, random_state=3)
    rng = np.random.default_rng(0)
    start = {"startprob_": true.startprob_, "transmat_": true.transmat_,
             "emissionprob_": _random_rows(rng, (3, 4))}
    start["emissionprob_"][1] = start["emissionprob_"][0]

    def fit(spec):
        m = CategoricalHMM(states=["A", "B", "C"], n_symbols=4, tying=spec, n_iter=400, tol=1e-9,
                           init_params="")
        for k, v in start.items():
            setattr(m, k, v.copy())
        return m.fit(X)

    hard = fit({"emission_groups": {"AB": ["A", "B"]}})
    spreads, dists = [], []
    for lam in (0.0, 10.0, 1e3, 1e5):
        m = fit({"emission_groups": {"AB": {"states": ["A", "B"], "soft": lam}}})
        h = np.array(m.history_)
        assert np.all(np.diff(h) >= -1e-9 * np.abs(h[:-1]))
        spreads.append(np.abs(m.emissionprob_[0] - m.emissionprob_[1]).max())
        dists.append(np.abs(m.emissionprob_ - hard.emissionprob_).max())
    assert spreads[0] > 1e-3  # untied rows differ
    assert all(a > b for a, b in zip(spreads, spreads[1:]))
    assert dists[-1] < 1e-3


def test_free_parameter_counts_and_information_criteria():
    m = CategoricalHMM(4, n_symbols=4)
    assert m.n_free_parameters == 27
    m = CategoricalHMM(4, n_symbols=4, tying={"emission_groups": {"g": ["0", "1", "2", "3"]}})
    assert m.n_free_parameters == 3 + 12 + 3
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(200, 1))
    m = CategoricalHMM(4, n_symbols=4, random_state=0, n_iter=5).fit(X)
    ll = m.score(X)
    assert m.aic(X) == pytest.approx(-2 * ll + 2 * 27)
    assert m.bic(X) == pytest.approx(-2 * ll + 27 * np.log(200))


def test_lrt_tied_vs_untied():
    true = _true_tied_model()
    X, _ = true.sample(3000, random_state=11)
    tied = CategoricalHMM(states=["A", "B", "C"], n_symbols=4, tying=true.tying, random_state=0, n_iter=100).fit(X)
    untied = CategoricalHMM(states=["A", "B", "C"], n_symbols=4, init_params="", n_iter=100,
                            tying={"transitions": true.tying["transitions"]})
    untied.startprob_, untied.transmat_, untied.emissionprob_ = tied.startprob_, tied.transmat_, tied.emissionprob_
    untied.fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hmmtie.lrt(tied, untied, X)
    assert res.df == 3
    assert res.statistic >= -1e-6
    assert 0 <= res.p_value <= 1


def test_save_load_roundtrip(tmp_path):
    m = _true_tied_model()
    path = tmp_path / "m.json"
    m.save(path)
    m2 = hmmtie.load(path)
    assert isinstance(m2, CategoricalHMM)
    assert m2.tying == m.tying
    assert np.array_equal(m2.transmat_, m.transmat_)
    X, _ = m.sample(100, random_state=0)
    assert m2.score(X) == m.score(X)
    doc = json.loads(path.read_text())
    doc["version"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="newer than this hmmtie"):
        hmmtie.load(path)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.score([[0], [5]]), r"X\[1\] = 5 is outside \[0, n_symbols=4\)"),
        (lambda m: m.score(np.array([[0.5], [1.0]])), r"X\[0\] = 0.5 is not an integer symbol"),
        (lambda m: m.score(np.zeros((5, 1), int), [2, 2]), "lengths sum to 4 but X has 5 rows"),
        (lambda m: m.score([np.zeros(3, int), np.zeros(4, int)], [3, 4]),
         "X is a list of sequences of different lengths"),
        (lambda m: m.score(np.zeros((5, 1), int), [5, 0]), "empty sequences are not allowed"),
        (lambda m: m.score([np.array([0, 1]), np.array([], int)]), r"X\[1\] is an empty sequence"),
    ],
)
def test_bad_input_messages(call, message):
    m = _true_tied_model()
    m.n_symbols = 4
    with pytest.raises(ValueError, match=message) as exc:
        call(m)
    assert "\n" not in str(exc.value)


def test_nested_lists_read_as_hmmlearn_reads_them():
    """Review 33: ``X.tolist()`` of an (n_samples, n_features) array was read
    as a list of one-frame sequences (a Gaussian fit of (50, 2) data came
    out with one feature).  A nested list of numbers forming such an array
    is one sequence; lists of numpy arrays and ragged lists stay lists of
    sequences."""
    m = _true_tied_model()
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, size=(40, 1))
    assert m.score(X.tolist()) == m.score(X)
    assert m.score([list(X[:25, 0]), list(X[25:, 0])]) == m.score(X, [25, 15])
    assert m.score([X[:20, 0], X[20:, 0]]) == m.score(X, [20, 20])
    assert m.score([[0, 1, 2], [2, 1, 0]]) == m.score(np.array([0, 1, 2, 2, 1, 0]), [3, 3])
    Xg = rng.normal(size=(50, 2))
    g = GaussianHMM(2, random_state=0, n_iter=3).fit(Xg.tolist())
    assert g.n_features == 2
    assert g.score(Xg.tolist()) == g.score(Xg)
    assert g.score([Xg[:30], Xg[30:]]) == g.score(Xg, [30, 20])


def test_bad_parameters_are_not_renormalised():
    m = _true_tied_model()
    m.transmat_ = m.transmat_ * 1.1
    with pytest.raises(ValueError, match=r"transmat_ rows must sum to 1 \(got sums of"):
        m.score([[0], [1]])
    with pytest.raises(ValueError, match="unknown keyword argument"):
        CategoricalHMM(2, n_symbol=3)
    g = GaussianHMM(1)
    g.startprob_, g.transmat_ = np.ones(1), np.ones((1, 1))
    g.means_, g.covars_ = np.zeros((1, 2)), np.ones((1, 2))
    with pytest.raises(ValueError, match=r"X\[1, 0\] = nan"):
        g.score(np.array([[0.0, 1.0], [np.nan, 0.0]]))
    with pytest.raises(hmmtie.hmm.NotFittedError, match="call fit first"):
        CategoricalHMM(2, n_symbols=2).score([[0]])


def test_user_parameters_must_respect_the_ties():
    # a tied model scored with untied values would count its free
    # parameters (AIC, BIC, LRT df) wrongly: an error naming the cells
    m = _true_tied_model()
    e = m.emissionprob_.copy()
    e[1] = [0.25, 0.25, 0.25, 0.25]
    m.emissionprob_ = e
    with pytest.raises(ValueError, match=r"emissionprob_: tied cells \(A, 0\) = 0.7 and \(B, 0\) = 0.25 differ"):
        m.score([[0], [1]])
    m = _true_tied_model()
    t = m.transmat_.copy()
    t[2] = [0.05, 0.1, 0.85]
    m.transmat_ = t
    with pytest.raises(ValueError, match=r"transmat_: tied cells .* differ"):
        m.decode([[0], [1]])


def test_tie_check_follows_the_current_spec():
    X = np.random.default_rng(0).integers(0, 4, 300)[:, None]
    m = CategoricalHMM(n_states=2, random_state=0, n_iter=3).fit(X, [100] * 3)
    m.n_symbols = 6  # a wider alphabet set by hand after fitting
    m.emissionprob_ = np.full((2, 6), 1 / 6)
    assert np.isfinite(m.score(X, [100] * 3))
    m.tying = {"emission_groups": {"g": ["0", "1"]}}  # a new tie spec is the one checked
    e = np.full((2, 6), 1 / 6)
    e[0] = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]
    m.emissionprob_ = e
    with pytest.raises(ValueError, match="tied cells"):
        m.score(X, [100] * 3)


def test_decode_map_and_sample_shapes():
    m = _true_tied_model()
    X, Z = m.sample(500, random_state=2)
    assert X.shape == (500, 1) and Z.shape == (500,)
    lp, states = m.decode(X, algorithm="map")
    post = m.predict_proba(X)
    assert np.array_equal(states, post.argmax(axis=1))
    assert lp == pytest.approx(np.log(post.max(axis=1)).sum())
    with pytest.raises(ValueError, match="algorithm must be one of"):
        m.decode(X, algorithm="best")


def test_bad_input_found_by_review():
    # lengths whose int64 sum wraps around to len(X) segfaulted the kernels
    m = CategoricalHMM(n_states=2, n_symbols=3, random_state=0)
    m.startprob_ = np.array([1.0, 0.0])
    m.transmat_ = np.array([[1.0, 0.0], [0.0, 1.0]])
    m.emissionprob_ = np.array([[0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
    X = np.zeros((50, 1), dtype=int)
    with pytest.raises(ValueError, match=r"lengths\[0\] = 4611686018427387904 is more than the 50 rows"):
        m.score(X, lengths=[2**62, 2**62, 2**62, 2**62 + 50])
    # a sequence of probability 0 has no posteriors or best path (zero rows
    # and an impossible path were returned)
    Z = np.array([[0], [1], [2], [0]])
    assert m.score(Z) == -np.inf
    for call, what in ((m.predict_proba, "state posteriors are undefined"),
                       (m.decode, "best state path is undefined"),
                       (lambda z: m.decode(z, algorithm="map"), "state posteriors are undefined")):
        with pytest.raises(ValueError, match=fr"sequence 1 \(1-based\) has probability 0 under the model: its {what}"):
            call(Z)
    assert np.allclose(m.predict_proba(Z[:2]).sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="random_state must be None, an integer >= 0"):
        CategoricalHMM(n_states=2, n_symbols=3, random_state="x", n_iter=1).fit(Z[:2])


def test_settings_and_nan_found_by_review():
    X = np.array([[0.0], [1.0], [0.5], [0.2]])
    with pytest.raises(ValueError, match="not the string 'ab'"):  # was read as states 'a' and 'b'
        CategoricalHMM(states="ab", n_iter=1)
    for model, message in ((CategoricalHMM(n_states=2, n_iter=1, tol="1e-3"), "tol must be a finite number"),
                           (GaussianHMM(n_states=2, n_iter=1, min_covar="x"), "min_covar must be a finite number")):
        with pytest.raises(ValueError, match=message):
            model.fit(X.astype(int) if isinstance(model, CategoricalHMM) else X)
    g = GaussianHMM(n_states=2, n_iter=5, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match=r"sequence 1 \(1-based\) has log-likelihood nan"):
            g.score(np.full((5, 1), 1e200))  # NaN was returned (printed 'nan', exit 0)


def test_model_file_fit_section_is_checked(tmp_path):
    rng = np.random.default_rng(0)
    m = CategoricalHMM(n_states=2, n_symbols=3, n_iter=3, random_state=0).fit(rng.integers(0, 3, (40, 1)))
    m.save(tmp_path / "m.json")
    d = json.loads((tmp_path / "m.json").read_text())
    for fit, message in (([1], "\"fit\" must be"), ({"history": [1.0], "converged": "no"}, "converged must be true or false")):
        (tmp_path / "bad.json").write_text(json.dumps(dict(d, fit=fit)))
        with pytest.raises(ValueError, match=message):
            hmmtie.load(tmp_path / "bad.json")


def test_prior_above_one_with_a_fixed_zero_keeps_the_objective_finite():
    """The Dirichlet prior covers the free cells only (like the M-step's
    pseudocounts): with a fixed zero the objective was -inf at every
    iteration and the fit never converged (found by review)."""
    X = np.random.default_rng(0).integers(0, 3, size=(300, 1))
    for kw in (dict(transmat_prior=2.0, tying={"fixed": {"transmat": [["a", "b", 0.0]]}}),
               dict(emissionprob_prior=2.0, tying={"fixed": {"emissionprob": [["a", 0, 0.0]]}})):
        m = CategoricalHMM(states=["a", "b"], n_symbols=3, n_iter=200, tol=1e-4, random_state=1, **kw).fit(X)
        assert np.all(np.isfinite(m.history_)) and m.converged_
        assert np.all(np.diff(m.history_) >= -1e-9)


def test_unvisited_state_tied_to_visited_ones_takes_the_slack():
    """State n is never visited (it emits only a symbol absent from the
    data) but shares the self-loop of a and b: the tied M-step must let n's
    own cells take the slack.  It kept the random start (a -> n = 0.74)
    with a warning at every iteration (found by review)."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.integers(0, 2, size=(60, 1)), np.repeat([[0], [1]], 30, axis=0)])
    fixed = {"emissionprob": [["n", 0, 0.0], ["n", 1, 0.0]]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = CategoricalHMM(states=["a", "b", "n"], n_symbols=3, n_iter=30, tol=0.0, random_state=1,
                           tying={"transitions": {"stay": [["a", "a"], ["b", "b"], ["n", "n"]]},
                                  "fixed": fixed}).fit(X)
    ab = CategoricalHMM(states=["a", "b", "n"], n_symbols=3, n_iter=30, tol=0.0, random_state=1,
                        tying={"transitions": {"stay": [["a", "a"], ["b", "b"]]}, "fixed": fixed}).fit(X)
    assert m.history_[-1] == pytest.approx(ab.history_[-1], abs=1e-6)
    assert m.transmat_[0, 2] < 1e-6 and m.transmat_[0, 0] == m.transmat_[2, 2]


@pytest.mark.parametrize("value", [None, True, "abc"])
def test_prior_that_is_not_a_number_names_the_parameter(value):
    with pytest.raises(ValueError, match="transmat_prior must be a number >= 1 or an array of them"):
        CategoricalHMM(n_states=2, n_symbols=2, transmat_prior=value, n_iter=1).fit(np.array([[0], [1]]))


@pytest.mark.parametrize("name", ["cat", "gauss"])
def test_posteriors_lost_to_underflow_are_refused(name):
    """Review28: transitions from 1 down to 1e-221 in one model; the scaled
    forward-backward lost every value of a frame and predict_proba returned
    NaN rows beside a finite log-likelihood.  Now one line naming the
    sequence and frame (the score itself agrees with hmmlearn's)."""
    from pathlib import Path

    from hmmlearn import hmm as hl

    d = np.load(Path(__file__).parent / "data" / f"review28_F6_hmm_{name}_nan.npz")
    S = len(d["sp"])
    if name == "gauss":
        m, h = GaussianHMM(S, init_params=""), hl.GaussianHMM(S, covariance_type="diag", init_params="")
        for o in (m, h):
            o.startprob_, o.transmat_, o.means_, o.covars_ = d["sp"], d["tm"], d["mu"], d["cv"]
    else:
        m = CategoricalHMM(S, n_symbols=d["em"].shape[1], init_params="")
        h = hl.CategoricalHMM(S, n_features=d["em"].shape[1], init_params="")
        for o in (m, h):
            o.startprob_, o.transmat_, o.emissionprob_ = d["sp"], d["tm"], d["em"]
    assert m.score(d["X"]) == pytest.approx(h.score(d["X"]), rel=1e-12)
    with pytest.raises(ValueError, match=r"^sequence 1 \(1-based\), frame \d+: state posteriors lost to underflow"):
        m.predict_proba(d["X"])
