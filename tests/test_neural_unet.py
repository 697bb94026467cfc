"""Sharing across levels: decoder filters tied to the encoder's, transposed."""
import numpy as np
import pytest

from hmmtie.neural import TiedAutoencoder, finite_difference_error, tied_vs_untied_error


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(3, 12, 2))


def test_tied_decoder_halves_the_weights():
    tied, free = TiedAutoencoder(2, 3, 4, True), TiedAutoencoder(2, 3, 4, False)
    n_w = 4 * 2 * 3
    assert tied.n_params == n_w + 3 + 2
    assert free.n_params - tied.n_params == n_w


def test_reconstruction_shape_and_decoder_is_transposed_encoder(X):
    m = TiedAutoencoder(2, 3, 4)
    assert m.reconstruct(X).shape == X.shape
    P = m.registry.expand(m.theta_)
    np.testing.assert_array_equal(P["dec.W"], P["enc.W"][::-1].transpose(0, 2, 1))


@pytest.mark.parametrize("tied", [True, False])
def test_autoencoder_gradients(X, tied):
    m = TiedAutoencoder(2, 3, 4, tied)
    assert finite_difference_error(m, X) < 1e-6
    assert tied_vs_untied_error(m, X) < 1e-12


def test_tied_gradient_is_sum_of_encoder_and_decoder_uses(X):
    tied, free = TiedAutoencoder(2, 3, 4, True), TiedAutoencoder(2, 3, 4, False)
    theta_free = free.registry.project(tied.registry.expand(tied.theta_))
    np.testing.assert_allclose(free.reconstruct(X, theta_free), tied.reconstruct(X), atol=1e-14)
    _, cells = free.loss_cells(theta_free, X)
    _, g = tied.loss_grad(None, X)
    from_dec = cells["dec.W"][::-1].transpose(0, 2, 1)        # back to encoder layout
    np.testing.assert_allclose(g[:24], (cells["enc.W"] + from_dec).ravel(), atol=1e-12)
    assert np.abs(cells["dec.W"]).max() > 1e-6 and np.abs(cells["enc.W"]).max() > 1e-6
