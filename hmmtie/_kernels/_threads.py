"""Running fixed chunks of work on Python threads.

The compiled chunk kernels release the GIL (``nogil=True``), so plain
Python threads run them in parallel.  This replaces numba's
``parallel=True`` loops: a compiled parallel loop links its callee into its
own module and optimises it again, which took about 40% of the cold compile
of the HMM kernels.  The chunks are fixed by the caller (never by the thread
count) and each writes only its own outputs, so results do not depend on
the number of threads.
"""
from concurrent.futures import ThreadPoolExecutor

import numba


def run_chunks(work, nch):
    """Runs ``work(ch)`` for ``ch`` in ``range(nch)`` on
    ``numba.get_num_threads()`` threads (in order on one thread)."""
    nt = min(numba.get_num_threads(), nch)
    if nt <= 1:
        for ch in range(nch):
            work(ch)
        return
    with ThreadPoolExecutor(max_workers=nt) as ex:
        for _ in ex.map(work, range(nch)):
            pass
