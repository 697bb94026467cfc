"""The diagonal band of a pair lattice: one definition for every kernel."""
import numba


@numba.njit(cache=True)
def band_limits(i, N, M, band):
    """Column range ``(jlo, jhi)`` (inclusive) of row ``i`` of the band."""
    if band < 0:
        return 0, M
    mx = N if N > M else M
    d = (band + 1) * mx - 1
    lo = -((d - i * M) // N)  # ceil((i*M - d) / N)
    hi = (i * M + d) // N
    if lo < 0:
        lo = 0
    if hi > M:
        hi = M
    return lo, hi
