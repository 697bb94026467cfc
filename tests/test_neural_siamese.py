"""Siamese comparison: one encoder through one tie map, symmetric heads, pair HMM."""
import itertools

import numpy as np
import pytest

from hmmtie.neural import (SiameseModel, finite_difference_error, one_hot, pair_forward,
                           tied_vs_untied_error)
from hmmtie.neural.siamese import pair_posterior


def _seqs():
    return one_hot(["ACGTTAC"]) [0], one_hot(["AGGTA"])[0], one_hot(["TTACGG"])[0]


def _brute_force(s, delta, eps):
    """Sum over every global alignment path (oracle for small La, Lb)."""
    La, Lb = s.shape
    lt = {("M", "M"): np.log(1 - 2 * delta), ("M", "X"): np.log(delta), ("M", "Y"): np.log(delta),
          ("X", "X"): np.log(eps), ("X", "M"): np.log(1 - eps), ("Y", "Y"): np.log(eps),
          ("Y", "M"): np.log(1 - eps)}
    total = []

    def rec(i, j, state, acc):
        if i == La and j == Lb:
            total.append(acc)
            return
        if i < La and j < Lb:
            rec(i + 1, j + 1, "M", acc + lt[(state, "M")] + s[i, j])
        if i < La and (state, "X") in lt:
            rec(i + 1, j, "X", acc + lt[(state, "X")])
        if j < Lb and (state, "Y") in lt:
            rec(i, j + 1, "Y", acc + lt[(state, "Y")])

    rec(0, 0, "M", 0.0)
    return np.logaddexp.reduce(total)


def test_pair_forward_against_brute_force_and_posterior_against_fd():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 4))
    assert abs(pair_forward(s, 0.1, 0.4) - _brute_force(s, 0.1, 0.4)) < 1e-12
    _, post = pair_posterior(s, 0.1, 0.4)
    h = 1e-6
    fd = np.zeros_like(s)
    for i, j in itertools.product(range(3), range(4)):
        e = np.zeros_like(s)
        e[i, j] = h
        fd[i, j] = (pair_forward(s + e) - pair_forward(s - e)) / (2 * h)
    np.testing.assert_allclose(post, fd, atol=1e-8)
    assert np.all(post.sum(1) <= 1 + 1e-12)


@pytest.mark.parametrize("head", ["distance", "alignment"])
def test_score_is_symmetric(head):
    a, b, c = _seqs()
    m = SiameseModel(3, 3, head, random_state=1)
    m.theta_ = m.theta_ + np.random.default_rng(1).normal(0, 0.3, m.n_params)
    for x, y in ((a, b), (a, c), (b, c)):
        assert abs(m.score(x, y) - m.score(y, x)) < 1e-12
    assert abs(m.score(a, b) - m.score(a, c)) > 1e-6


@pytest.mark.parametrize("head", ["distance", "alignment"])
def test_siamese_gradients(head):
    a, b, c = _seqs()
    m = SiameseModel(3, 3, head, random_state=2)
    m.theta_ = m.theta_ + np.random.default_rng(2).normal(0, 0.3, m.n_params)
    pairs, t = [(a, b), (c, a)], np.array([1.0, -3.0])
    assert finite_difference_error(m, pairs, t) < 1e-6
    assert tied_vs_untied_error(m, pairs, t) < 1e-12


def test_shared_encoder_gradient_is_sum_of_both_branches():
    a, b, _ = _seqs()
    tied = SiameseModel(3, 3, "alignment", shared=True, random_state=3)
    free = SiameseModel(3, 3, "alignment", shared=False, random_state=3)
    assert free.n_params - tied.n_params == tied.encoder.n_atoms
    theta_free = free.registry.project(tied.registry.expand(tied.theta_))
    _, g_free = free.loss_grad(theta_free, [(a, b)], [0.5])
    _, g_tied = tied.loss_grad(None, [(a, b)], [0.5])
    n = tied.encoder.n_atoms
    np.testing.assert_allclose(g_tied[:n], g_free[:n] + g_free[n:2 * n], atol=1e-12)
    np.testing.assert_allclose(g_tied[n:], g_free[2 * n:], atol=1e-12)


def test_bad_input():
    m = SiameseModel(2, 3)
    a, b, _ = _seqs()
    with pytest.raises(ValueError, match=r"SiameseModel: pair 0 sequence b must have shape \(length, 4\), got \(5, 3\)"):
        m.score(a, b[:, :3])
    with pytest.raises(ValueError, match="delta"):
        SiameseModel(2, 3, delta=0.7)
