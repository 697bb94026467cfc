"""Elman RNN: hard ties across time, soft tying along a lambda path."""
import re

import numpy as np
import pytest

from hmmtie.neural import GRU, ElmanRNN, finite_difference_error, soft_tying_path, tied_vs_untied_error


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4, 1))
    y = np.tanh(X[:, :, 0] @ np.array([1.0, -0.5, 0.8, -1.0]))   # time-varying truth
    return X, y


@pytest.mark.parametrize("cls", [ElmanRNN, GRU])
@pytest.mark.parametrize("tying,lam", [("hard", 0.0), ("none", 0.0), ("none", 0.7)])
def test_rnn_gradients(data, cls, tying, lam):
    X, y = data
    m = cls(4, 1, 3, 1, tying, lam)
    assert finite_difference_error(m, X, y) < 1e-6
    assert tied_vs_untied_error(m, X, y) < 1e-12


@pytest.mark.parametrize("cls", [ElmanRNN, GRU])
def test_sum_over_steps_of_untied_gradient_is_tied_gradient(data, cls):
    X, y = data
    hard = cls(4, 1, 3, 1, "hard", random_state=1)
    free = cls(4, 1, 3, 1, "none", random_state=1)
    full = hard.registry.expand(hard.theta_)
    theta_free = free.registry.project(full)             # W_t = W at every step
    _, g_hard = hard.loss_cells(None, X, y)
    _, g_free = free.loss_cells(theta_free, X, y)
    np.testing.assert_allclose(free.predict(X, theta_free), hard.predict(X), atol=1e-14)
    tied = hard.loss_grad(None, X, y)[1]
    steps = hard._step_arrays()
    for k in steps:                     # the cell gradients are the same; summed over t ...
        np.testing.assert_allclose(g_hard[k], g_free[k], atol=1e-12)
    # ... which is what the tied gradient holds, atom by atom
    expect = np.concatenate([g_free[k].sum(0).ravel() for k in steps])
    np.testing.assert_allclose(tied[:expect.size], expect, atol=1e-12)
    n = sum(hard.registry.ties[k][0].size for k in steps)
    assert free.n_params - hard.n_params == 3 * n


def test_soft_tying_path_shrinks_like_one_over_lambda():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4, 1))
    y = 0.5 * np.tanh(X[:, :, 0] @ np.array([1.0, -0.5, 0.8, -1.0]))
    lams = np.array([10.0, 100.0, 1000.0])
    r = soft_tying_path(X, y, lams, n_hidden=1)
    ratio = r["spread"] * lams                       # constant if spread ~ c / lam
    assert r["spread"][0] > 1e-4
    assert ratio.max() / ratio.min() < 1.05
    gap = r["data_loss"] - r["tied_loss"]            # soft fit is better, by O(1/lam)
    assert np.all(gap < 0)
    assert np.all(np.abs(gap[1:] / gap[:-1] - 0.1) < 0.01)


def test_bad_input():
    with pytest.raises(ValueError, match=r"ElmanRNN: lam must be a finite number >= 0, got -1.0"):
        ElmanRNN(3, 1, 2, tying="none", lam=-1.0)
    for lam in ("0.5", None):  # review 30: a TypeError from a comparison before
        with pytest.raises(ValueError, match=r"ElmanRNN: lam must be a finite number >= 0, got "):
            ElmanRNN(3, 1, 2, lam=lam)
    with pytest.raises(ValueError, match=r"soft_tying_path: X must have shape \(n, n_steps, n_inputs\), got \(4, 3\)"):
        soft_tying_path(np.zeros((4, 3)), np.zeros(4), [0.1])
    m = ElmanRNN(3, 2, 2)
    with pytest.raises(ValueError, match=r"ElmanRNN: expected input of shape \(n, 3, 2\), got \(4, 3, 1\)"):
        m.loss_grad(None, np.zeros((4, 3, 1)), np.zeros(4))
    with pytest.raises(ValueError, match="soft_tying_path"):
        soft_tying_path(np.zeros((2, 3, 1)), np.zeros(2), [1.0, -2.0])


@pytest.mark.parametrize("cls", [ElmanRNN, GRU])
def test_targets_are_checked_not_reshaped(cls):
    """Review 30: targets were reshaped to the outputs' shape, so (n_outputs,
    n) targets passed whenever the sizes matched, scrambled."""
    rng = np.random.default_rng(0)
    m = cls(3, 2, 2, n_outputs=3)
    X, Y = rng.normal(size=(2, 3, 2)), rng.normal(size=(2, 3))
    assert np.isfinite(m.loss(None, X, Y))
    for bad in (Y.T, Y.ravel()):
        with pytest.raises(ValueError, match=re.escape(f"{cls.__name__}: targets have shape {bad.shape}")):
            m.loss(None, X, bad)
    one = cls(3, 2, 2)  # one output: a vector of targets is a column
    assert one.loss(None, X, Y[:, 0]) == one.loss(None, X, Y[:, :1])
