"""Tests for hmmtie.stats: LRT, AIC, BIC and the boundary warning."""

import warnings

import numpy as np
import pytest
from scipy import stats as sps

from hmmtie import CategoricalHMM, GaussianHMM
from hmmtie.stats import BoundaryWarning, aic, bic, lrt, lrt_from_loglik


def test_lrt_from_loglik_values():
    res = lrt_from_loglik(-105.0, -100.0, 3, 5, n_obs=200)
    assert res.statistic == pytest.approx(10.0)
    assert res.df == 2
    assert res.p_value == pytest.approx(sps.chi2.sf(10.0, 2))
    assert res.aic_restricted == pytest.approx(aic(-105.0, 3)) == pytest.approx(216.0)
    assert res.bic_full == pytest.approx(bic(-100.0, 5, 200)) == pytest.approx(200 + 5 * np.log(200))
    assert "reject the tied hypothesis" in res.verdict(0.05)
    assert "no evidence" in res.verdict(0.001)


def test_lrt_needs_nested_counts_and_warns_on_negative_statistic():
    with pytest.raises(ValueError, match="more free parameters"):
        lrt_from_loglik(-1.0, -1.0, 5, 5, 10)
    with pytest.warns(RuntimeWarning, match="negative"):
        res = lrt_from_loglik(-100.0, -101.0, 3, 5, 10)
    assert res.p_value == 1.0


def test_bic_needs_observations():
    with pytest.raises(ValueError, match="n_obs"):
        bic(-1.0, 2, 0)


def test_boundary_warning_on_zero_free_probability():
    # symbol 2 never occurs: the untied fit puts emissionprob at exactly 0
    X = np.array([[0], [1], [0], [0], [1], [1], [0], [1]] * 10)
    restricted = CategoricalHMM(2, n_symbols=3, random_state=0, n_iter=20,
                                tying={"emission_groups": {"g": ["0", "1"]}}).fit(X)
    full = CategoricalHMM(2, n_symbols=3, random_state=0, n_iter=20).fit(X)
    with pytest.warns(BoundaryWarning, match="emissionprob_"):
        res = lrt(restricted, full, X)
    assert res.df == 2
    assert res.n_obs == len(X)


# --------------------------------------------------------------------------
# Found by review (fresh eyes, tying engine and statistics)

def _boundary_data():
    truth = CategoricalHMM(states=["a", "b"], n_symbols=3, init_params="")
    truth.startprob_ = np.array([0.5, 0.5])
    truth.transmat_ = np.array([[0.9, 0.1], [0.0, 1.0]])  # b -> a absent
    truth.emissionprob_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    X = np.concatenate([truth.sample(50, random_state=s)[0] for s in range(20)])
    return truth, X, [50] * 20


def test_lrt_warns_when_the_null_fixes_a_free_cell_at_zero():
    """A null that fixes b -> a = 0 sits on the boundary of the full model;
    EM's full fit ends near 1e-11, never exactly 0, so the old exact-zero
    test never warned."""
    truth, X, L = _boundary_data()
    restricted = CategoricalHMM(states=["a", "b"], n_symbols=3, n_iter=300, tol=1e-9, init_params="",
                                tying={"fixed": {"transmat": [["b", "a", 0.0]]}})
    restricted.startprob_, restricted.transmat_, restricted.emissionprob_ = (
        truth.startprob_, truth.transmat_, truth.emissionprob_)
    restricted.fit(X, L)
    full = CategoricalHMM(states=["a", "b"], n_symbols=3, n_iter=300, tol=1e-9, init_params="")
    full.startprob_, full.transmat_, full.emissionprob_ = (
        restricted.startprob_, restricted.transmat_ * 0.98 + 0.01, restricted.emissionprob_)
    full.fit(X, L)
    assert 0 < full.transmat_[1, 0] < 1e-8
    with pytest.warns(BoundaryWarning) as rec:
        res = lrt(restricted, full, X, L)
    messages = " | ".join(str(w.message) for w in rec)
    assert "transmat_[b, a]" in messages and "fixes on the boundary" in messages
    assert res.df == 1


def test_lrt_refuses_models_that_cannot_be_nested():
    _, X, L = _boundary_data()
    two = CategoricalHMM(n_states=2, n_symbols=3, n_iter=5, random_state=0).fit(X, L)
    three = CategoricalHMM(n_states=3, n_symbols=3, n_iter=5, random_state=0).fit(X, L)
    with pytest.raises(ValueError, match="the same number of states"):
        lrt(two, three, X, L)


@pytest.mark.parametrize("call, message", [
    (lambda: lrt_from_loglik(float("nan"), -10.0, 2, 3, 100), "loglik_restricted must be a finite number"),
    (lambda: lrt_from_loglik(-12.0, -10.0, 2, 5.9, 100), "n_free_full must be an integer"),
    (lambda: bic(-10.0, 3, float("nan")), "n_obs must be an integer >= 1"),
    (lambda: aic(-10.0, True), "n_free must be an integer"),
])
def test_statistics_refuse_nan_and_non_integers(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------
# Found by review (review 30): nesting was checked by class, states and
# alphabet only

def _cat(**kw):
    gen = CategoricalHMM(n_states=3, n_symbols=4, init_params="")
    gen.startprob_ = np.array([.5, .3, .2])
    gen.transmat_ = np.array([[.8, .1, .1], [.1, .8, .1], [.2, .2, .6]])
    gen.emissionprob_ = np.array([[.4, .3, .2, .1], [.4, .3, .2, .1], [.1, .2, .3, .4]])
    X, _ = gen.sample(300, random_state=1)
    return X, CategoricalHMM(n_states=3, n_symbols=4, n_iter=3, random_state=0, **kw)


@pytest.mark.parametrize("restricted, full, message", [
    # the reviewer's pair: neither space holds the other
    ({"tying": {"emission_groups": {"g": ["0", "1"]}}},
     {"tying": {"fixed": {"transmat": [["0", "1", 0.0]]}}},
     r"fixes transmat_\[0, 1\] at 0, the restricted model frees it"),
    # the right pair in the wrong order
    ({}, {"tying": {"emission_groups": {"g": ["0", "1"]}}},
     r"ties emissionprob_\[0, 0\] to emissionprob_\[1, 0\], the restricted model does not"),
    ({"tying": {"fixed": {"transmat": [["0", "1", 0.05]]}}},
     {"tying": {"fixed": {"transmat": [["0", "1", 0.1]]}}},
     r"fixes transmat_\[0, 1\] at 0.1, the restricted model at 0.05"),
    # a block the full model holds at its values
    ({}, {"params": "se"}, r"holds transmat_ at its values \('t' not in params\), the restricted model estimates it"),
])
def test_lrt_refuses_tie_maps_that_are_not_nested(restricted, full, message):
    X, r = _cat(**restricted)
    _, f = _cat(**full)
    r.fit(X)
    f.fit(X)
    with pytest.raises(ValueError, match="not nested in the full one: the full model " + message):
        lrt(r, f, X)


@pytest.mark.parametrize("restricted, full", [
    ({"tying": {"emission_groups": {"g": ["0", "1"]}}}, {}),
    ({"tying": {"fixed": {"transmat": [["0", "1", 0.1]]}}}, {}),
    ({"tying": {"emission_groups": {"g": ["0", "1", "2"]}}}, {"tying": {"emission_groups": {"g": ["0", "1"]}}}),
    ({"tying": {"fixed": {"transmat": [["0", "1", 0.1], ["1", "0", 0.2]]}}},
     {"tying": {"fixed": {"transmat": [["0", "1", 0.1]]}}}),
])
def test_lrt_accepts_nested_tie_maps(restricted, full):
    X, r = _cat(**restricted)
    _, f = _cat(**full)
    r.fit(X)
    f.fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lrt(r, f, X)
    assert res.df == f.n_free_parameters - r.n_free_parameters > 0


def test_lrt_refuses_gaussian_means_tied_only_in_the_full_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    tied = {"emission_groups": {"g": {"states": ["0", "1"], "share": "means"}}}
    r = GaussianHMM(n_states=2, n_iter=3, random_state=0).fit(X)
    f = GaussianHMM(n_states=2, n_iter=3, random_state=0, tying=tied).fit(X)
    with pytest.raises(ValueError, match="full model ties the means_ of states '0' and '1'"):
        lrt(r, f, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert lrt(f, r, X).df == 2


def test_lrt_refuses_pair_hmms_in_one_line():
    from hmmtie import PairHMM
    m = PairHMM.preset("3state", alphabet="dna")
    with pytest.raises(ValueError, match="takes two fitted HMMs .* got PairHMM; for pair HMMs use hmmtie.compare_pairs"):
        lrt(m, m, [("ACGT", "ACGT")])


def test_negative_statistic_warns_at_any_scale():
    """The tolerance was 1e-6 of the log-likelihood: at -5e6 a full fit
    2 nats worse (statistic -4) passed silently."""
    with pytest.warns(RuntimeWarning, match="negative"):
        res = lrt_from_loglik(-5e6, -5e6 - 2.0, 3, 5, 1000)
    assert res.p_value == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lrt_from_loglik(-5e6, -5e6 - 1e-4, 3, 5, 1000)  # rounding of the sums: no warning
