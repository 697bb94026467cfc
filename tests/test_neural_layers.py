"""Dense, LocallyConnected1D, Conv1D: ties across positions, Toeplitz form, gradients."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate

from hmmtie import tying
from hmmtie.neural import (Conv1D, Dense, Flatten, GlobalPool, LocallyConnected1D, ReLU,
                           Sequential, Tanh, conv_output_length, finite_difference_error,
                           palindromic_tie, tied_vs_untied_error, toeplitz_tie)

CONFIGS = [  # (length, kernel, stride, padding, dilation)
    (12, 3, 1, "valid", 1), (12, 4, 2, "same", 1), (13, 3, 1, "same", 2),
    (10, 3, 3, (2, 1), 1), (9, 2, 1, "full", 2),
]


def _full(layer, rng):
    theta = rng.normal(size=layer.n_atoms)
    return {k: tying.expand(theta, t) for k, t in layer.ties().items()}, theta


@pytest.mark.parametrize("L,K,s,pad,d", CONFIGS)
def test_conv_equals_lc_tied_across_positions(L, K, s, pad, d):
    rng = np.random.default_rng(0)
    conv = Conv1D(3, 2, K, s, pad, d)
    lc = LocallyConnected1D.from_conv(conv, L)
    P, theta = _full(conv, rng)
    Plc = {k: tying.expand(theta, t) for k, t in lc.ties().items()}
    x = rng.normal(size=(4, L, 3))
    yc, cc = conv.forward(P, x)
    yl, cl = lc.forward(Plc, x)
    assert yc.shape == (4, conv_output_length(L, K, s, pad, d), 2)
    np.testing.assert_allclose(yc, yl, rtol=0, atol=1e-12)
    dy = rng.normal(size=yc.shape)
    dxc, gc = conv.backward(P, cc, dy)
    dxl, gl = lc.backward(Plc, cl, dy)
    np.testing.assert_allclose(dxc, dxl, atol=1e-12)
    # conv gradient = sum over positions of the LC gradients (the tie-map reduce)
    np.testing.assert_allclose(gc["W"], gl["W"].sum(0), atol=1e-12)
    np.testing.assert_allclose(gc["b"], gl["b"].sum(0), atol=1e-12)
    tied = tying.reduce(gl["W"], lc.ties()["W"], lc.n_atoms) + tying.reduce(
        gl["b"], lc.ties()["b"], lc.n_atoms)
    direct = tying.reduce(gc["W"], conv.ties()["W"], conv.n_atoms) + tying.reduce(
        gc["b"], conv.ties()["b"], conv.n_atoms)
    np.testing.assert_allclose(tied, direct, atol=1e-12)


@pytest.mark.parametrize("L,K,s,pad,d", CONFIGS)
def test_conv_equals_block_toeplitz(L, K, s, pad, d):
    rng = np.random.default_rng(1)
    conv = Conv1D(2, 3, K, s, pad, d)
    P, theta = _full(conv, rng)
    tt = toeplitz_tie(conv, L)
    dense = Dense(L * 2, tt["W"].shape[1], tie=tt, n_atoms=conv.n_atoms)
    Pd = {k: tying.expand(theta, t) for k, t in tt.items()}
    x = rng.normal(size=(3, L, 2))
    y, _ = conv.forward(P, x)
    yd, _ = dense.forward(Pd, x.reshape(3, -1))
    np.testing.assert_allclose(y.reshape(3, -1), yd, atol=1e-12)
    # the Toeplitz matrix has as many free parameters as the conv, plus structural zeros
    assert (tt["W"] == tying.FIXED).any()


def test_conv_matches_scipy_correlate():
    rng = np.random.default_rng(2)
    conv = Conv1D(3, 2, 5)
    P, _ = _full(conv, rng)
    x = rng.normal(size=(2, 20, 3))
    y, _ = conv.forward(P, x)
    for n in range(2):
        for o in range(2):
            r = sum(correlate(x[n, :, c], P["W"][:, c, o], mode="valid") for c in range(3))
            np.testing.assert_allclose(y[n, :, o], r + P["b"][o], atol=1e-12)


@pytest.mark.parametrize("L,K,s,pad,d", CONFIGS)
def test_lc_over_conv_parameter_ratio_is_number_of_positions(L, K, s, pad, d):
    conv = Conv1D(4, 5, K, s, pad, d)
    lc = LocallyConnected1D(L, 4, 5, K, s, pad, d)
    n_pos = conv_output_length(L, K, s, pad, d)
    assert lc.n_atoms == n_pos * conv.n_atoms           # exact, from the tie maps
    assert Sequential([lc]).n_params / Sequential([conv]).n_params == n_pos


def test_palindromic_tie_counts_and_symmetry():
    for K in (4, 5):
        tie, n = palindromic_tie(K, 2, 3)
        assert n == -(-K // 2) * 6
        assert len(np.unique(tie)) == n
        np.testing.assert_array_equal(tie, tie[::-1])


@pytest.mark.parametrize("layers,shape", [
    ([Dense(6, 4), Tanh(), Dense(4, 1)], (5, 6)),
    ([Conv1D(3, 4, 3, 2, "same", 1), Tanh(), GlobalPool("mean"), Dense(4, 1)], (4, 11, 3)),
    ([LocallyConnected1D(9, 3, 2, 3, 1, "valid", 2), Tanh(), GlobalPool("max"), Dense(2, 1)],
     (4, 9, 3)),
    ([Conv1D(3, 2, 3, 1, "valid", 2), ReLU(), Flatten(), Dense(10, 1)], (4, 9, 3)),
])
def test_layer_gradients(layers, shape):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape)
    y = (rng.random(shape[0]) < 0.5).astype(float)
    m = Sequential(layers, random_state=1)
    assert finite_difference_error(m, x, y) < 1e-6
    assert tied_vs_untied_error(m, x, y) < 1e-12


def test_tied_gradient_is_tie_matrix_transpose_times_untied():
    rng = np.random.default_rng(4)
    conv = Conv1D(2, 2, 3)
    lc = LocallyConnected1D.from_conv(conv, 8)
    m = Sequential([lc, Tanh(), GlobalPool("mean"), Dense(2, 1)])
    x, y = rng.normal(size=(3, 8, 2)), np.array([0.0, 1.0, 1.0])
    _, cells = m.loss_cells(None, x, y)
    T = m.registry.matrix()
    np.testing.assert_allclose(m.registry.reduce(cells), T.T @ m.registry.flat_grad(cells),
                               atol=1e-12)
    assert m.n_params == conv.n_atoms + 3


@pytest.mark.parametrize("make,x,msg", [
    (lambda: Conv1D(4, 2, 3), np.zeros((2, 10, 3)), "Conv1D"),
    (lambda: Conv1D(4, 2, 30), np.zeros((2, 10, 4)), "Conv1D"),
    (lambda: Dense(5, 2), np.zeros((2, 4)), "Dense"),
    (lambda: LocallyConnected1D(10, 4, 2, 3), np.zeros((2, 11, 4)), "LocallyConnected1D"),
])
def test_bad_shapes_raise_one_line(make, x, msg):
    layer = make()
    P = {k: np.zeros(t.shape) for k, t in layer.ties().items()}
    with pytest.raises(ValueError, match=msg) as e:
        layer.forward(P, x)
    assert "\n" not in str(e.value) and str(x.shape) in str(e.value)


def test_mismatched_tie_map_shape_raises():
    with pytest.raises(ValueError, match=r"Conv1D: tie map 'W' has shape \(3, 4\)"):
        Conv1D(4, 2, 3, tie={"W": np.zeros((3, 4), dtype=int), "b": np.arange(2)}, n_atoms=2)
    with pytest.raises(ValueError, match="Dense"):
        Dense(3, 2, tie={"W": np.zeros((2, 3), dtype=int)}, n_atoms=1)


@settings(max_examples=25, deadline=None)
@given(L=st.integers(6, 20), K=st.integers(1, 5), s=st.integers(1, 3), d=st.integers(1, 3),
       pad=st.sampled_from(["valid", "same", "full", 1, (0, 2)]), seed=st.integers(0, 2**16))
def test_property_conv_lc_toeplitz_agree(L, K, s, d, pad, seed):
    if conv_output_length(L, K, s, pad, d) < 1:
        return
    rng = np.random.default_rng(seed)
    conv = Conv1D(2, 3, K, s, pad, d)
    theta = rng.normal(size=conv.n_atoms)
    P = {k: tying.expand(theta, t) for k, t in conv.ties().items()}
    lc = LocallyConnected1D.from_conv(conv, L)
    tt = toeplitz_tie(conv, L)
    x = rng.normal(size=(2, L, 2))
    y, _ = conv.forward(P, x)
    ylc, _ = lc.forward({k: tying.expand(theta, t) for k, t in lc.ties().items()}, x)
    yd = x.reshape(2, -1) @ tying.expand(theta, tt["W"]) + tying.expand(theta, tt["b"])
    np.testing.assert_allclose(ylc, y, atol=1e-12)
    np.testing.assert_allclose(yd, y.reshape(2, -1), atol=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda: Dense(-1, 3), "Dense: in_features must be an integer >= 1, got -1"),
    (lambda: Conv1D(3, 2, 2.7), "Conv1D: kernel_size must be an integer >= 1, got 2.7"),
    (lambda: Conv1D(3, 2, 3, stride=1.5), "stride must be an integer >= 1"),
    (lambda: Conv1D(3, 2, 3, padding="Same"), "padding must be 'valid', 'same', 'full'"),
    (lambda: Conv1D(3, 2, 3, padding=(1, 2, 3)), "padding must be"),
    (lambda: Conv1D(3, 2, 3, padding=-1), "padding must be"),
    (lambda: LocallyConnected1D(2, 3, 2, 3), "input length 2 .* shorter than the kernel span 3"),
    (lambda: Dense(3, 2, tie={"w": np.zeros((3, 2), int)}, n_atoms=1), r"unknown tie map\(s\) \['w'\]"),
    (lambda: Dense(3, 2, tie={"W": np.zeros((3, 2), int), "b": np.zeros(2, int)}),
     "a custom tie needs n_atoms"),
    # an atom no cell holds was counted as a free parameter (found by review)
    (lambda: Sequential([Dense(3, 2, tie={"W": np.zeros((3, 2), int), "b": np.zeros(2, int)}, n_atoms=10)]),
     r"declares 10 atoms but its tie maps hold 1; atom\(s\) \[1, 2, 3, 4, 5\] ..."),
    (lambda: Sequential([Dense(2, 2)] * 2), "layer 1 is the same object as layer 0"),
])
def test_bad_layer_arguments_one_line(make, message):
    with pytest.raises(ValueError, match=message) as exc:
        make()
    assert "\n" not in str(exc.value)


def test_registry_refuses_float_tie_maps():
    from hmmtie.neural import Registry
    reg = Registry()
    with pytest.raises(ValueError, match="must hold integers"):
        reg.add_block("a", {"W": np.array([0.7, 1.2])}, 2)
    reg.add_block("a", {"W": np.array([0, 1])}, 2)
    with pytest.raises(ValueError, match="must hold integers"):
        reg.alias("b", np.array([0.7]))
