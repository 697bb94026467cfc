"""hmmtie: probabilistic sequence models with tied parameters.

One idea runs through the package: a tie is an index map (``full =
atoms[tie]``), and learning sums statistics onto atoms — expected counts in
EM, gradients in neural training (:mod:`hmmtie.tying`).
"""
__version__ = "0.1.0"

from .hmm import CategoricalHMM, GaussianHMM
from .modelio import load
from .stats import LRTResult, lrt
from . import tying

__all__ = ["CategoricalHMM", "GaussianHMM", "LRTResult", "load", "lrt", "tying", "__version__"]
