"""hmmtie: probabilistic sequence models with tied parameters."""
__version__ = "0.1.0"
