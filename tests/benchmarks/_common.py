"""Helpers shared by the benchmark scripts (run from the repository root)."""
import platform


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or what the platform says)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def aligner_for(letters, sub):
    """Biopython's global affine aligner with substitution scores ``sub``
    over ``letters``: gap open -11 for proteins, -10 otherwise, extend -1
    (its speed does not depend on the values)."""
    import numpy as np
    from Bio.Align import PairwiseAligner, substitution_matrices

    al = PairwiseAligner(mode="global")
    al.substitution_matrix = substitution_matrices.Array(
        alphabet=letters, dims=2, data=np.ascontiguousarray(sub))
    al.open_gap_score = -11.0 if len(letters) == 20 else -10.0
    al.extend_gap_score = -1.0
    return al


def _ceiling_kernel():
    """An ideal parallel loop: four independent compute-bound chunks (vector
    multiply-adds on two L1-resident arrays), no shared data, no memory
    traffic.  Its two-thread gain is what the machine can give at that
    moment (on a shared VM, CPU steal lowers it)."""
    import numba
    import numpy as np

    @numba.njit(parallel=True, cache=True)
    def spin(n_chunks, n_iter):
        out = np.zeros(n_chunks)
        for c in numba.prange(n_chunks):
            a = np.ones(256) * (1.0 + c * 1e-9)
            b = np.ones(256) * 0.999
            for _ in range(n_iter):
                for j in range(256):
                    a[j] = a[j] * b[j] + 1e-9
            out[c] = a.sum()
        return out

    spin(4, 10)
    return lambda: spin(4, 100_000)


def thread_gain(fn, n_threads, repeats):
    """Median times of ``fn`` at 1 and ``n_threads`` numba threads, and the
    machine ceiling: the same ratio for an ideal parallel loop timed in the
    same interleaved rounds (one round = fn@1, ceiling@1, fn@n, ceiling@n),
    so a moment of CPU steal hits both.  Returns (t1, tn, ceiling gain)."""
    import statistics
    import time

    import numba

    global _CEILING
    try:
        ceiling = _CEILING
    except NameError:
        ceiling = _CEILING = _ceiling_kernel()
    old = numba.get_num_threads()
    times = {("fn", 1): [], ("fn", n_threads): [],
             ("ceil", 1): [], ("ceil", n_threads): []}
    try:
        for _ in range(repeats):
            for nt in (1, n_threads):
                numba.set_num_threads(nt)
                for name, f in (("fn", fn), ("ceil", ceiling)):
                    t0 = time.perf_counter()
                    f()
                    times[(name, nt)].append(time.perf_counter() - t0)
    finally:
        numba.set_num_threads(old)
    med = {k: statistics.median(v) for k, v in times.items()}
    return (med[("fn", 1)], med[("fn", n_threads)],
            med[("ceil", 1)] / med[("ceil", n_threads)])
