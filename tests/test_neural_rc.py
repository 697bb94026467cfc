"""Reverse-complement sharing: invariance, equivariance, unfused reference, ties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate

from hmmtie import tying
from hmmtie.neural import (Conv1D, Dense, GlobalPool, RCConv1D, RCDense, RCPalindromicConv1D, RCPool,
                           PalindromicConv1D, Sequential, Tanh, finite_difference_error,
                           one_hot, reverse_complement, tied_vs_untied_error)


def _random_dna(rng, n, L):
    return np.eye(4)[rng.integers(0, 4, size=(n, L))]


def _full(layer, rng):
    theta = rng.normal(size=layer.n_atoms)
    return {k: tying.expand(theta, t) for k, t in layer.ties().items()}


def test_reverse_complement_of_strings():
    x = one_hot(["AACGT", "GGTCA"])
    np.testing.assert_array_equal(reverse_complement(x), one_hot(["ACGTT", "TGACC"]))


@pytest.mark.parametrize("head", ["rcdense", "rcpool"])
def test_rc_model_is_strand_invariant(head):
    rng = np.random.default_rng(0)
    if head == "rcdense":
        layers = [RCConv1D(3, 5), Tanh(), GlobalPool("max"), RCDense(6, 1)]
    else:
        layers = [RCConv1D(3, 5, dilation=2), Tanh(), RCPool("mean"), Dense(3, 1)]
    m = Sequential(layers, random_state=3)
    x = _random_dna(rng, 20, 30)
    f, frc = m.decision_function(x), m.decision_function(reverse_complement(x))
    assert np.abs(f).max() > 1e-3
    np.testing.assert_allclose(f, frc, rtol=0, atol=1e-12)


def test_plain_conv_model_is_not_strand_invariant():
    rng = np.random.default_rng(0)
    m = Sequential([Conv1D(4, 6, 5), Tanh(), GlobalPool("max"),
                    Dense(6, 1)], random_state=3)
    x = _random_dna(rng, 20, 30)
    assert np.abs(m.decision_function(x) - m.decision_function(reverse_complement(x))).max() > 1e-3


@pytest.mark.parametrize("dilation,padding", [(1, "valid"), (2, "valid"), (1, 2)])
def test_rc_conv_profile_is_equivariant(dilation, padding):
    rng = np.random.default_rng(1)
    layer = RCConv1D(4, 6, padding=padding, dilation=dilation)
    P = _full(layer, rng)
    x = _random_dna(rng, 5, 25)
    y, _ = layer.forward(P, x)
    yrc, _ = layer.forward(P, reverse_complement(x))
    F = 4
    twin = np.r_[F:2 * F, 0:F]
    np.testing.assert_allclose(yrc, y[:, ::-1, twin], atol=1e-12)


def test_rc_conv_equals_unfused_reference():
    """Each output channel is ONE convolution: forward filters, then their RC twins.

    keras_genomics' RevCompConv1D added the convolution twice; this reference,
    computed filter by filter with scipy, catches any double counting.
    """
    rng = np.random.default_rng(2)
    layer = RCConv1D(3, 4)
    theta = rng.normal(size=layer.n_atoms)
    K, F = 4, 3
    W = theta[:K * 4 * F].reshape(K, 4, F)
    b = theta[K * 4 * F:]
    P = {k: tying.expand(theta, t) for k, t in layer.ties().items()}
    x = _random_dna(rng, 3, 15)
    y, _ = layer.forward(P, x)
    for n in range(3):
        for f in range(F):
            fwd = sum(correlate(x[n, :, c], W[:, c, f], mode="valid") for c in range(4)) + b[f]
            Wrc = W[::-1, ::-1, f]
            rev = sum(correlate(x[n, :, c], Wrc[:, c], mode="valid") for c in range(4)) + b[f]
            np.testing.assert_allclose(y[n, :, f], fwd, atol=1e-12)
            np.testing.assert_allclose(y[n, :, F + f], rev, atol=1e-12)


def test_rc_conv_holds_half_the_filters():
    layer = RCConv1D(5, 7)
    conv = Conv1D(4, 10, 7)
    assert layer.n_atoms == 5 * 7 * 4 + 5
    assert 2 * layer.n_atoms == conv.n_atoms


def test_palindromic_filters():
    rng = np.random.default_rng(3)
    for K in (5, 6):
        layer = PalindromicConv1D(2, 3, K)
        assert layer.n_atoms == -(-K // 2) * 2 * 3 + 3
        P = _full(layer, rng)
        np.testing.assert_array_equal(P["W"], P["W"][::-1])


def test_rc_palindromic_filters_make_profiles_rc_symmetric():
    rng = np.random.default_rng(4)
    K = 6
    layer = RCPalindromicConv1D(3, K)
    assert layer.n_atoms == 2 * K * 3 + 3
    P = _full(layer, rng)
    np.testing.assert_array_equal(P["W"], P["W"][::-1, ::-1])
    x = _random_dna(rng, 4, 20)
    y, _ = layer.forward(P, x)
    yrc, _ = layer.forward(P, reverse_complement(x))
    np.testing.assert_allclose(yrc, y[:, ::-1], atol=1e-12)


@pytest.mark.parametrize("layers", [
    [RCConv1D(2, 3), Tanh(), GlobalPool("max"), RCDense(4, 1)],
    [RCPalindromicConv1D(2, 4), Tanh(), GlobalPool("mean"),
     Dense(2, 1)],
    [RCConv1D(2, 3), Tanh(), RCPool("max"), Dense(2, 1)],
    [PalindromicConv1D(4, 2, 3), Tanh(), GlobalPool("mean"),
     Dense(2, 1)],
])
def test_rc_gradients(layers):
    rng = np.random.default_rng(5)
    x = _random_dna(rng, 6, 12)
    y = (rng.random(6) < 0.5).astype(float)
    m = Sequential(layers, random_state=2)
    assert finite_difference_error(m, x, y) < 1e-6
    assert tied_vs_untied_error(m, x, y) < 1e-12


@pytest.mark.parametrize("x", [
    np.full((2, 10, 4), 0.25),                       # a profile, not one-hot
    np.zeros((2, 10, 4)),                            # no letter
    np.ones((2, 10, 3)) / 3,                         # wrong alphabet size
])
def test_rc_layers_reject_non_one_hot(x):
    for layer in (RCConv1D(2, 3), RCPalindromicConv1D(2, 3)):
        P = {k: np.zeros(t.shape) for k, t in layer.ties().items()}
        with pytest.raises(ValueError, match=type(layer).__name__) as e:
            layer.forward(P, x)
        assert "\n" not in str(e.value) and str(x.shape) in str(e.value)


def test_one_hot_rejects_other_letters():
    with pytest.raises(ValueError, match="record 1 position 2"):
        one_hot(["ACGT", "ACXT"])


@settings(max_examples=25, deadline=None)
@given(L=st.integers(8, 30), K=st.integers(1, 6), F=st.integers(1, 3), d=st.integers(1, 2),
       seed=st.integers(0, 2**16))
def test_property_rc_model_invariant(L, K, F, d, seed):
    if d * (K - 1) + 1 > L:
        return
    rng = np.random.default_rng(seed)
    m = Sequential([RCConv1D(F, K, dilation=d), Tanh(), GlobalPool("max"), RCDense(2 * F, 1)],
                   random_state=seed)
    x = _random_dna(rng, 3, L)
    np.testing.assert_allclose(m.decision_function(reverse_complement(x)),
                               m.decision_function(x), rtol=0, atol=1e-12)


def test_rc_layers_refuse_asymmetric_padding():
    """'same' with an even kernel span pads (1, 2): y(RC x) was not the
    mirrored y(x) (off by up to 7.7; found by review)."""
    with pytest.raises(ValueError, match=r"pads 1 left and 2 right \(kernel span 4\)"):
        RCConv1D(2, 4, padding="same")
    with pytest.raises(ValueError, match="symmetric padding"):
        RCPalindromicConv1D(2, 3, padding=(0, 1))
    RCConv1D(2, 5, padding="same")  # odd span: symmetric


@pytest.mark.parametrize("seqs, message", [
    ("ACGT", "got a single string"), ([], "no sequences"), (["ACG", "AC"], "record 1 has length 2"),
    ([b"ACG"], "record 0 is a bytes"), (["ACGé"], "record 0 position 3"),
])
def test_one_hot_bad_input(seqs, message):
    with pytest.raises(ValueError, match=message):
        one_hot(seqs)
