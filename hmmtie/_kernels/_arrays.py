"""Array copies as loops, for compiled kernels.

numba compiles an array-to-array slice assignment (``out[k] = a``) with a
shape check whose error message is built by string formatting; compiling
that costs 3-5 s of cold start per call site.  These loops do the same copy
without it (the shapes are the caller's to get right).
"""
import numba


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
