"""Array copies and sums as loops, for compiled kernels (and the split
scale factor the posterior kernels share).

numba compiles an array-to-array slice assignment (``out[k] = a``) with a
shape check whose error message is built by string formatting; compiling
that costs 3-5 s of cold start per call site.  These loops do the same copy
without it (the shapes are the caller's to get right).
"""
import math

import numba
import numpy as np

# the largest exponent one scale factor may carry (exp(709.78) overflows)
MAX_EXP = 700.0


@numba.njit(cache=True, inline="always")
def split_exp(e):
    """(f1, f2): exp(e) as two factors of at most exp(MAX_EXP) each; f2 is
    NaN when e exceeds 2 MAX_EXP (the caller reports the pair as lost)."""
    a = min(e, MAX_EXP)
    b = e - a
    return math.exp(a), (math.exp(b) if b <= MAX_EXP else np.nan)


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def vsum(v):
    """Sum of a 1-D array (reassociated so that it vectorises; inf and NaN
    keep their meaning)."""
    t = 0.0
    for l in range(v.shape[0]):
        t += v[l]
    return t


@numba.njit(cache=True)
def vcopy(a, out):
    """out[:] = a[:out.shape[0]] (1-D)."""
    for l in range(out.shape[0]):
        out[l] = a[l]


@numba.njit(cache=True)
def copy2(a, out):
    """out[:, :] = a (2-D, equal shapes)."""
    for r in range(out.shape[0]):
        vcopy(a[r], out[r])


# square tiles of this many rows and columns keep both sides of a transpose
# in cache and few pages per tile (numpy's strided copy of a large
# transpose walks a page per element: 4-5x slower on a fresh 1000 x 1000)
_TILE = 32


@numba.njit(cache=True)
def transpose_sums(a, out, sums):
    """out[j, i] = a[i, j] (out (m, n) for a (n, m)) and sums[j] = the sum of
    out[j], in tiles (the sums accumulate tile by tile in a fixed order)."""
    n, m = a.shape
    for j in range(m):
        sums[j] = 0.0
    for i0 in range(0, n, _TILE):
        i1 = min(i0 + _TILE, n)
        for j0 in range(0, m, _TILE):
            for j in range(j0, min(j0 + _TILE, m)):
                o = out[j]
                s = 0.0
                for i in range(i0, i1):
                    v = a[i, j]
                    o[i] = v
                    s += v
                sums[j] += s
