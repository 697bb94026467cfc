"""Sharing across levels: a 1-D convolutional autoencoder with a tied decoder.

Encoder ``z = tanh(conv(x, W_enc) + b_enc)`` ("valid"); decoder
``x_hat = conv_full(z, W_dec) + b_dec``, the transposed convolution.  With
``tied=True`` the decoder's tie map is the encoder's, flipped in the kernel
axis and with its channel axes swapped (``W_dec[k, h, c] = W_enc[K-1-k, c, h]``):
the decoder holds no weights of its own, the weight count halves, and the
gradient of each shared atom is the sum of its encoder and decoder uses.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .layers import Conv1D
from .models import TiedModel, mse
from .params import Registry

__all__ = ["TiedAutoencoder"]


class TiedAutoencoder(TiedModel):
    """Conv1D autoencoder whose decoder filters are the encoder's, transposed.

    Parameters
    ----------
    in_channels, n_hidden, kernel_size : int
    tied : bool
    random_state : int
    """

    supervised = False  # fit(model, X): trained to reconstruct X

    def __init__(self, in_channels: int, n_hidden: int, kernel_size: int = 5,
                 tied: bool = True, random_state: int = 0) -> None:
        self.enc = Conv1D(in_channels, n_hidden, kernel_size, padding="valid")
        self.dec = Conv1D(n_hidden, in_channels, kernel_size, padding="full")
        self.tied = tied
        rng = np.random.default_rng(random_state)
        self.registry = reg = Registry()
        init = self.enc.init_atoms(rng)
        reg.add_block("enc", self.enc.ties(), self.enc.n_atoms, init)
        if tied:
            reg.alias("dec.W", reg.ties["enc.W"][::-1].transpose(0, 2, 1).copy())
        else:
            nw = self.enc.n_atoms - n_hidden
            w = init[:nw].reshape(kernel_size, in_channels, n_hidden)[::-1].transpose(0, 2, 1)
            reg.new("dec.W", self.dec.ties()["W"], nw, w.ravel())
        reg.new("dec.b", np.arange(in_channels), in_channels)
        self.theta_ = reg.init_theta()
        self._config = {"in_channels": in_channels, "n_hidden": n_hidden,
                        "kernel_size": kernel_size, "tied": tied, "random_state": random_state}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _run(self, P, X):
        X = np.asarray(X, dtype=float)
        Pe = {"W": P["enc.W"], "b": P["enc.b"]}
        Pd = {"W": P["dec.W"], "b": P["dec.b"]}
        u, ce = self.enc.forward(Pe, X)
        z = np.tanh(u)
        xh, cd = self.dec.forward(Pd, z)
        return X, Pe, Pd, ce, z, cd, xh

    def reconstruct(self, X: NDArray, theta: NDArray | None = None) -> NDArray:
        """Reconstruction, shape (n, length, in_channels)."""
        return self._run(self.registry.expand(self._theta(theta)), X)[-1]

    def _loss_cells(self, P, X):
        X, Pe, Pd, ce, z, cd, xh = self._run(P, X)
        loss, d = mse(xh, X)
        dz, gd = self.dec.backward(Pd, cd, d)
        _, ge = self.enc.backward(Pe, ce, dz * (1 - z * z), need_dx=False)
        return loss, {"enc.W": ge["W"], "enc.b": ge["b"], "dec.W": gd["W"], "dec.b": gd["b"]}
