"""Test-suite settings.

OpenBLAS's default thread pool made the neural tests' many small matrix
products several times slower on a busy 2-core machine; one thread is
faster and deterministic.  Set before numpy is imported.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
