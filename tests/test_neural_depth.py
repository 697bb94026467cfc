"""Sharing across depth: unrolled tied block, its ODE limit, adjoint vs backprop."""
import numpy as np
import pytest

from hmmtie.neural import ODEModel, TiedDepthModel, finite_difference_error, tied_vs_untied_error


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, 3)), rng.normal(size=(5, 3))


def test_unrolled_converges_to_ode_at_rate_one_over_L(data):
    X, _ = data
    ref = ODEModel(3, 400, "rk4").transform(X)
    Ls = [4, 8, 16, 32]
    err = np.array([np.abs(TiedDepthModel(3, L).transform(X) - ref).max() for L in Ls])
    rate = err[:-1] / err[1:]
    assert np.all(np.abs(rate - 2) < 0.1)            # halving L halves the error: O(1/L)


def test_tied_unrolled_equals_euler(data):
    X, _ = data
    np.testing.assert_allclose(TiedDepthModel(3, 7).transform(X),
                               ODEModel(3, 7, "euler").transform(X), atol=1e-14)


@pytest.mark.parametrize("tied", [True, False])
def test_depth_gradients(data, tied):
    m = TiedDepthModel(3, 4, tied)
    assert finite_difference_error(m, *data) < 1e-6
    assert tied_vs_untied_error(m, *data) < 1e-12


def test_tied_gradient_is_sum_over_layers(data):
    tied, free = TiedDepthModel(3, 5, True), TiedDepthModel(3, 5, False)
    theta_free = free.registry.project(tied.registry.expand(tied.theta_))
    _, gf = free.loss_cells(theta_free, *data)
    _, gt = tied.loss_grad(None, *data)
    np.testing.assert_allclose(gt[:9], gf["W"].sum(0).ravel(), atol=1e-12)
    assert free.n_params == 5 * tied.n_params


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_ode_backprop_gradient(data, method):
    assert finite_difference_error(ODEModel(3, 8, method, "backprop"), *data) < 1e-6


def test_adjoint_equals_backprop(data):
    a, b = ODEModel(3, 40, "rk4", "adjoint"), ODEModel(3, 40, "rk4", "backprop")
    ga, gb = a.loss_grad(None, *data)[1], b.loss_grad(None, *data)[1]
    assert np.abs(ga - gb).max() / np.abs(gb).max() < 1e-6
    assert finite_difference_error(a, *data) < 1e-6


def test_bad_input(data):
    with pytest.raises(ValueError, match=r"ODEModel: expected input of shape \(n, 3\), got \(5, 2\)"):
        ODEModel(3).transform(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="method"):
        ODEModel(3, method="rk2")
