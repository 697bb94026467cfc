"""hmmtie: probabilistic sequence models with tied parameters.

One idea runs through the package: a tie is an index map (``full =
atoms[tie]``), and learning sums statistics onto atoms — expected counts in
EM, gradients in neural training (:mod:`hmmtie.tying`).

Public names are imported lazily, so ``import hmmtie`` (and ``hmmtie
--help``) stays fast; the numba kernels load on first use.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "CategoricalHMM": "hmm",
    "GaussianHMM": "hmm",
    "PairHMM": "pair",
    "PairState": "pair",
    "PRESETS": "pair",
    "load": "modelio",
    "LRTResult": "stats",
    "PairComparison": "stats",
    "compare_pairs": "stats",
    "lrt": "stats",
}
_SUBMODULES = {"tying", "neural", "alphabet", "stats", "hmm", "pair", "modelio", "seqio", "distributed"}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'hmmtie' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
