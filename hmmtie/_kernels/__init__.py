"""Numba kernels: pure functions on plain arrays (no classes, no validation).

Validation lives in the public layer; kernels trust their inputs.
"""
