"""Sharing across scales: GPR-GNN hop weights, APPNP as a fixed tie map."""
import numpy as np
import pytest

from hmmtie.neural import (GPRGNN, appnp_coefficients, finite_difference_error,
                           normalized_adjacency, tied_vs_untied_error)
from hmmtie.neural.graph import appnp_propagate


@pytest.fixture
def graph():
    rng = np.random.default_rng(0)
    A = np.triu((rng.random((7, 7)) < 0.4).astype(float), 1)
    return normalized_adjacency(A + A.T), rng.normal(size=(7, 3)), rng.normal(size=(7, 2))


@pytest.mark.parametrize("alpha,K", [(0.1, 5), (0.5, 3)])
def test_fixed_gamma_reproduces_appnp(graph, alpha, K):
    A_hat, X, _ = graph
    m = GPRGNN(A_hat, 3, 2, K, gamma=appnp_coefficients(alpha, K))
    P = m.registry.expand(m.theta_)
    H = X @ P["W"] + P["b"]
    np.testing.assert_allclose(m.transform(X), appnp_propagate(A_hat, H, alpha, K), atol=1e-12)
    assert m.n_params == 3 * 2 + 2                 # fixed hop weights are not parameters


@pytest.mark.parametrize("gamma", [None, appnp_coefficients(0.2, 4)])
def test_gpr_gradients(graph, gamma):
    m = GPRGNN(graph[0], 3, 2, 4, gamma=gamma)
    assert finite_difference_error(m, graph[1], graph[2]) < 1e-6
    assert tied_vs_untied_error(m, graph[1], graph[2]) < 1e-12


def test_bad_input(graph):
    with pytest.raises(ValueError, match=r"GPRGNN: gamma must have shape \(4,\), got \(3,\)"):
        GPRGNN(graph[0], 3, 2, 3, gamma=np.ones(3))
    with pytest.raises(ValueError, match=r"GPRGNN: expected features of shape \(7, 3\)"):
        GPRGNN(graph[0], 3, 2).transform(np.zeros((6, 3)))
