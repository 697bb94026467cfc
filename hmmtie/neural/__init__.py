"""Tied neural sequence models in NumPy.

Every weight array is held through a tie map over one free vector, exactly as
the HMM parameters are (:mod:`hmmtie.tying`); a shared weight's gradient is
the scatter-add (:func:`hmmtie.tying.reduce`) of the gradients of all the
places that use it -- the reduction that sums expected counts in EM.
"""
from .params import Registry, tie_matrix, shift_tie
from .layers import (Layer, Dense, LocallyConnected1D, Conv1D, Flatten, ReLU, Tanh,
                     GlobalPool, conv_output_length, toeplitz_tie, palindromic_tie)
from .rc import (ALPHABET, one_hot, reverse_complement, check_one_hot, RCConv1D, RCPool,
                 RCDense, PalindromicConv1D, RCPalindromicConv1D, rc_pair_tie,
                 rc_palindromic_tie)
from .models import TiedModel, Sequential, bce_with_logits, mse
from .train import SGD, Adam, fit, save, load
from .gradcheck import finite_difference_error, tied_vs_untied_error
from .motifs import CTCF_MA0139_1_COUNTS, ctcf_pwm
from .experiments import (planted_motif_data, build_classifier, auroc, sample_efficiency,
                          parameter_table)
from .rnn import ElmanRNN, GRU, soft_tying_path, step_spread
from .siamese import SiameseModel, pair_forward
from .depth import TiedDepthModel, ODEModel
from .graph import GPRGNN, appnp_coefficients, normalized_adjacency
from .unet import TiedAutoencoder

__all__ = [
    # parameters and gradient checks
    "Registry", "tie_matrix", "shift_tie", "finite_difference_error", "tied_vs_untied_error",
    # layers
    "Layer", "Dense", "LocallyConnected1D", "Conv1D", "Flatten", "ReLU", "Tanh", "GlobalPool",
    "conv_output_length", "toeplitz_tie", "palindromic_tie",
    # reverse-complement sharing
    "ALPHABET", "one_hot", "reverse_complement", "check_one_hot", "RCConv1D", "RCPool",
    "RCDense", "PalindromicConv1D", "RCPalindromicConv1D", "rc_pair_tie", "rc_palindromic_tie",
    # models
    "TiedModel", "Sequential", "bce_with_logits", "mse", "ElmanRNN", "GRU", "soft_tying_path",
    "step_spread", "SiameseModel", "pair_forward", "TiedDepthModel", "ODEModel", "GPRGNN",
    "appnp_coefficients", "normalized_adjacency", "TiedAutoencoder",
    # training and files
    "SGD", "Adam", "fit", "save", "load",
    # experiment
    "CTCF_MA0139_1_COUNTS", "ctcf_pwm", "planted_motif_data", "build_classifier", "auroc",
    "sample_efficiency", "parameter_table", "layer_class", "model_class",
]

_LAYERS = {c.__name__: c for c in (Dense, LocallyConnected1D, Conv1D, Flatten, ReLU, Tanh,
                                   GlobalPool, RCConv1D, RCPool, RCDense, PalindromicConv1D,
                                   RCPalindromicConv1D)}
_MODELS = {c.__name__: c for c in (Sequential, ElmanRNN, GRU, SiameseModel, TiedDepthModel,
                                   ODEModel, GPRGNN, TiedAutoencoder)}


def layer_class(name: str):
    """Layer class by name (used when loading a saved model)."""
    if name not in _LAYERS:
        raise ValueError(f"unknown layer {name!r}; known: {sorted(_LAYERS)}")
    return _LAYERS[name]


def model_class(name: str):
    """Model class by name (used when loading a saved model)."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(_MODELS)}")
    return _MODELS[name]
