"""Registry: many tie maps over one free vector, reduced with hmmtie.tying."""
import numpy as np
import pytest

from hmmtie.neural import Registry, tie_matrix
from hmmtie.tying import FIXED


def test_blocks_aliases_expand_and_reduce():
    reg = Registry()
    reg.add_block("a", {"W": np.array([[0, 1], [1, FIXED]]), "b": np.array([2])}, 3,
                  init=[1.0, 2.0, 3.0], fixed={"W": 9.0})
    reg.alias("c", np.array([2, 0, 0]))
    theta = reg.init_theta()
    P = reg.expand(theta)
    np.testing.assert_array_equal(P["a.W"], [[1, 2], [2, 9]])
    np.testing.assert_array_equal(P["c"], [3, 1, 1])
    g = reg.reduce({"a.W": np.ones((2, 2)), "a.b": np.array([5.0]), "c": np.array([1.0, 2, 3])})
    np.testing.assert_array_equal(g, [1 + 2 + 3, 2, 5 + 1])
    T = reg.matrix()
    assert T.shape == (8, 3)
    np.testing.assert_array_equal(T.T @ reg.flat_grad({"a.W": np.ones((2, 2)),
                                                       "a.b": np.array([5.0]),
                                                       "c": np.array([1.0, 2, 3])}), g)
    np.testing.assert_allclose(reg.project(P), theta)


def test_tie_matrix_fixed_rows_are_zero():
    T = tie_matrix(np.array([1, FIXED, 0]), 2)
    np.testing.assert_array_equal(T, [[0, 1], [0, 0], [1, 0]])


def test_registry_errors():
    reg = Registry()
    reg.new("w", np.arange(3), 3)
    with pytest.raises(ValueError, match="already registered"):
        reg.new("w", np.arange(3), 3)
    with pytest.raises(ValueError, match=r"Registry: tie map of 'v' \(shape \(2,\)\) uses atoms"):
        reg.new("v", np.array([0, 5]), 2)
    with pytest.raises(ValueError, match="points outside"):
        reg.alias("u", np.array([7]))
    with pytest.raises(ValueError, match=r"theta has shape \(2,\), expected \(3,\)"):
        reg.expand(np.zeros(2))
    with pytest.raises(ValueError, match=r"gradient of 'w' has shape \(2,\)"):
        reg.reduce({"w": np.zeros(2)})
