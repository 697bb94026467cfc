"""Scale-out: partitioned E-steps and batch alignment, in process or on Dask.

The E-step of every model in hmmtie is a map over sequences (or pairs) that
returns sufficient statistics, followed by a sum — the same sum onto atoms as
everywhere else.  This module cuts the data into *partitions* whose bounds
depend on the data only (never on the number of workers or threads),
computes each partition's statistics with the model's own numba kernels, and
sums the partition results in partition order.  The in-process path
(``client=None``) and the Dask path (a ``dask.distributed.Client``) run the
same function on the same partitions and reduce in the same order, so they
give identical numbers (bit for bit, for any number of workers).  Input that
fits in one partition takes exactly the single-batch path it always took.

Dask is optional (``pip install 'hmmtie[dask]'``) and imported only when a
client or a scheduler is asked for.  Workers need hmmtie importable; on a
worker each task runs the kernels on ``n_threads`` numba threads (the
model's ``n_threads``, default 1 — with Dask the parallelism comes from the
worker slots, so size the cluster to the cores).

Fault tolerance: partitions are submitted as tasks whose specification holds
the data, so when a worker dies Dask recomputes what it held and reruns its
tasks elsewhere (up to ``distributed.scheduler.allowed-failures`` times);
after that the job fails with one line naming the step.
"""
from __future__ import annotations

import os
import uuid
from collections import deque

import numpy as np

from ._validation import numba_threads, with_message

__all__ = [
    "PAIRS_PER_PARTITION", "OBS_PER_PARTITION", "DEFAULT_CHUNK_SIZE", "DASK_MISSING",
    "DistributedError", "require_dask", "connect", "close", "check_client", "partition_bounds", "sequence_partition_bounds",
]

#: Pairs per E-step partition (pair HMMs).  Fixed, so results never depend on
#: the cluster; 1000 pairs of ~300 residues are a few seconds of work.
PAIRS_PER_PARTITION = 1000
#: Observations (symbols or frames) per E-step partition (HMMs); sequences are
#: never split.
OBS_PER_PARTITION = 250_000
#: Pairs per alignment chunk in :meth:`hmmtie.PairHMM.align_many`.
DEFAULT_CHUNK_SIZE = 256

DASK_MISSING = "Dask is not installed: pip install 'hmmtie[dask]'"


# --------------------------------------------------------------------------
# Dask plumbing
# --------------------------------------------------------------------------

def require_dask():
    """The ``distributed`` module, or ImportError with one line naming the extra."""
    try:
        import distributed  # noqa: F401
        import dask  # noqa: F401
    except ImportError:
        raise ImportError(DASK_MISSING) from None
    return distributed


def check_client(client):
    """``client`` must be a ``dask.distributed.Client`` (or None)."""
    if client is None:
        return None
    distributed = require_dask()
    if not isinstance(client, distributed.Client):
        raise ValueError(f"client must be a dask.distributed.Client or None, got {type(client).__name__}")
    if client.status not in ("running", "connecting"):
        raise ValueError(f"the Dask client is {client.status}; connect it before use")
    return client


def local_workers() -> int:
    """Cores this process may use (the size of ``--scheduler local``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def connect(scheduler: str, *, timeout: float = 5.0, n_workers: int | None = None):
    """A Dask client for ``scheduler``: ``"local"`` or a scheduler address.

    ``"local"`` starts a ``LocalCluster`` of one single-threaded worker
    process per core (loopback only; its HTTP endpoint on a random loopback port); an address
    (``tcp://host:8786``, ``host:8786``) joins a running cluster and fails
    within ``timeout`` seconds when it cannot be reached.

    Returns
    -------
    (client, cluster)
        ``cluster`` is the LocalCluster started here (None for an address);
        close both when done (:func:`close`).

    Raises
    ------
    ImportError
        Dask is not installed (one line naming the extra).
    ValueError
        The address is malformed or unreachable (one line).
    """
    distributed = require_dask()
    import logging

    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError("scheduler must be 'local' or a Dask scheduler address such as tcp://host:8786")
    scheduler = scheduler.strip()
    if scheduler == "local":
        n = n_workers or local_workers()
        cluster = distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
        try:
            client = distributed.Client(cluster)
        except Exception:
            cluster.close()
            raise
        return client, cluster
    address = scheduler if "://" in scheduler else f"tcp://{scheduler}"
    protocol = address.split("://", 1)[0]
    if protocol not in ("tcp", "tls", "inproc", "ws", "wss"):
        raise ValueError(f"bad Dask scheduler address {scheduler!r}: protocol {protocol!r} is not supported here "
                         "(use tcp://host:port, tls://host:port or --scheduler local)")
    try:
        client = distributed.Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({why[:160]}); "
                         "check the address and that 'dask scheduler' is running there, "
                         "or use --scheduler local") from None
    except (ValueError, TypeError) as exc:  # a malformed port: int() of 'bar'
        raise ValueError(f"bad Dask scheduler address {scheduler!r}: {str(exc).splitlines()[0]}") from None
    return client, None


def close(client, cluster=None) -> None:
    """Close a client (and the LocalCluster :func:`connect` started)."""
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


class DistributedError(RuntimeError):
    """A Dask job failed for cluster reasons (workers kept dying, scheduler gone)."""


def _failure(step: str, exc: BaseException) -> Exception:
    """One-line error for a Dask job that failed for cluster reasons."""
    name = type(exc).__name__
    if name == "KilledWorker":
        return DistributedError(f"{step}: Dask workers died while running it, more often than "
                                "distributed.scheduler.allowed-failures permits; check worker memory and logs")
    if name in ("CancelledError", "FutureCancelledError", "CommClosedError", "TimeoutError", "OSError"):
        return DistributedError(f"{step}: the Dask job was cancelled or the scheduler went away ({name})")
    return exc


_MALLOC_TUNED = False


def _tune_malloc():
    """Let glibc reuse heap memory for big blocks in a Dask worker (once per process).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``,
    which also switches off glibc's dynamic mmap threshold: every
    multi-MiB dynamic-programming table then becomes a fresh ``mmap`` whose
    pages fault in again, and the pair kernels run about 2x slower
    (measured: a 200-pair E-step 0.87 s instead of 0.41 s).  Raising the
    mmap threshold to 32 MiB and the trim threshold to 64 MiB restores the
    speed; memory above 64 MiB at the top of the heap is still returned.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 * 2**20)  # M_TRIM_THRESHOLD
    except Exception:  # pragma: no cover - not glibc
        pass


def _on_worker(func, *args):
    """Run one hmmtie task on a worker."""
    _tune_malloc()
    return func(*args)


def _run_tasks(client, func, args_list, step: str):
    """Submit ``func(*args)`` for every args tuple; results in submission order."""
    tag = uuid.uuid4().hex[:12]
    futures = [client.submit(_on_worker, func, *args, key=f"hmmtie-{step.replace(' ', '-')}-{tag}-{k}", pure=False)
               for k, args in enumerate(args_list)]
    try:
        return client.gather(futures)
    except (ValueError, MemoryError, ArithmeticError):
        raise
    except Exception as exc:
        raise _failure(step, exc) from None
    finally:
        for f in futures:
            f.release()


def _hold(part):
    return part


class _Partitions:
    """Partition data for a whole fit: in memory, or held on Dask workers.

    On Dask each partition is a task whose specification holds the data, so
    a lost worker's partitions are recomputed from it.
    """

    def __init__(self, parts, client):
        self.parts = parts
        self.client = client
        self.futures = None
        if client is not None:
            tag = uuid.uuid4().hex[:12]
            self.futures = [client.submit(_hold, p, key=f"hmmtie-partition-{tag}-{k}", pure=False)
                            for k, p in enumerate(parts)]

    def map(self, func, extra, step):
        """``[func(part, *extra) for part in parts]`` in partition order."""
        if self.client is None:
            return [func(p, *extra) for p in self.parts]
        return _run_tasks(self.client, func, [(f, *extra) for f in self.futures], step)

    def release(self):
        if self.futures is not None:
            for f in self.futures:
                f.release()
            self.futures = None


class releasing:
    """Context manager: release a fit's partitions (Dask futures) at the end."""

    def __init__(self, parts: _Partitions):
        self.parts = parts

    def __enter__(self):
        return self.parts

    def __exit__(self, *exc):
        self.parts.release()
        return False


# --------------------------------------------------------------------------
# partitions
# --------------------------------------------------------------------------

def partition_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` ranges of at most ``size`` items, as even as possible."""
    if n <= 0:
        return []
    k = -(-n // size)
    return [((n * i) // k, (n * (i + 1)) // k) for i in range(k)]


def sequence_partition_bounds(offsets, max_obs: int) -> list[tuple[int, int]]:
    """Sequence ranges ``[s0, s1)`` holding about ``max_obs`` observations each (never splitting one)."""
    offsets = np.asarray(offsets)
    n_seq = len(offsets) - 1
    out, s0 = [], 0
    while s0 < n_seq:
        s1 = int(np.searchsorted(offsets, offsets[s0] + max_obs, side="right")) - 1
        s1 = min(max(s1, s0 + 1), n_seq)
        out.append((s0, s1))
        s0 = s1
    return out


def _slice_concat(codes, off, s0, s1):
    a, b = off[s0], off[s1]
    return np.ascontiguousarray(codes[a:b]), np.ascontiguousarray(off[s0:s1 + 1] - a)


def pair_partitions(xs, xo, ys, yo, size: int | None = None):
    """Encoded pairs (concatenated codes + offsets) cut into partitions."""
    size = PAIRS_PER_PARTITION if size is None else size
    n = len(xo) - 1
    if n <= size:
        return [(xs, xo, ys, yo)]
    out = []
    for p0, p1 in partition_bounds(n, size):
        out.append(_slice_concat(xs, xo, p0, p1) + _slice_concat(ys, yo, p0, p1))
    return out


def hmm_partitions(data: dict, max_obs: int | None = None):
    """An HMM's prepared data (arrays by observation + ``offsets``) cut into partitions."""
    max_obs = OBS_PER_PARTITION if max_obs is None else max_obs
    off = data["offsets"]
    if off[-1] <= max_obs:
        return [data]
    parts = []
    for s0, s1 in sequence_partition_bounds(off, max_obs):
        a, b = off[s0], off[s1]
        part = {k: (np.ascontiguousarray(v[a:b]) if k != "offsets" else np.ascontiguousarray(off[s0:s1 + 1] - a))
                for k, v in data.items()}
        parts.append(part)
    return parts


# --------------------------------------------------------------------------
# E-steps (these run on workers)
# --------------------------------------------------------------------------

def pair_estep_partition(part, kargs, band, n_threads):
    """Expected counts of one partition of encoded pairs (the pair-HMM kernels)."""
    from ._kernels import pair_fb as _kf

    xs, xo, ys, yo = part
    with numba_threads(n_threads, work=int(np.sum(np.diff(xo) * np.diff(yo)))):
        return _kf.batch_expected_counts(*kargs, xs, xo, ys, yo, band)


def reduce_pair_stats(results):
    """Sum partition results in partition order; log-odds concatenated."""
    if len(results) == 1:
        return results[0]
    lo = np.concatenate([r[0] for r in results])
    sums = [np.array(a, copy=True) for a in results[0][1:]]
    for r in results[1:]:
        for acc, a in zip(sums, r[1:]):
            acc += a
    return (lo, *sums)


def pair_estep(parts: _Partitions, kargs, band, n_threads):
    return reduce_pair_stats(parts.map(pair_estep_partition, (kargs, band, n_threads), "pair E-step"))


def hmm_estep_partition(part, model, n_threads):
    """``model._estep`` on one partition of an HMM's prepared data."""
    with numba_threads(n_threads, work=int(part["offsets"][-1]) * model.n_components ** 2):
        return model._estep(part)


def reduce_hmm_stats(results):
    """Sum (logprob, stats dict) partition results in partition order."""
    if len(results) == 1:
        return results[0]
    logprob = np.concatenate([np.atleast_1d(r[0]) for r in results])
    stats = {k: np.array(v, copy=True) for k, v in results[0][1].items()}
    for _, st in results[1:]:
        for k in stats:
            stats[k] += st[k]
    return logprob, stats


def hmm_estep(parts: _Partitions, model, n_threads):
    return reduce_hmm_stats(parts.map(hmm_estep_partition, (model, n_threads), "HMM E-step"))


def worker_threads(n_threads, client):
    """Numba threads for one task: the model's setting; on Dask 1 unless set."""
    if n_threads is not None:
        return n_threads
    return 1 if client is not None else None


# --------------------------------------------------------------------------
# alignment
# --------------------------------------------------------------------------

def align_chunk(model, chunk, method, n_threads):
    """Align a list of (a, b) pairs with ``model`` (runs on a worker or in process).

    Returns a list of ``Bio.Align.Alignment`` (or the ``(k, exception)``
    of the first pair that failed, so the caller can name it).
    """
    out = []
    with numba_threads(n_threads):
        for k, (a, b) in enumerate(chunk):
            try:
                aln = model.align(a, b, method=method)  # sets .log_odds and .log_likelihood
            except (ValueError, MemoryError) as exc:
                return out, (k, exc)
            out.append(aln)
    return out, None


def _chunks(pairs, size):
    """Yield (chunk, error): lists of up to ``size`` pairs; when reading the
    input fails, the pairs read before the failure come with the error (the
    last chunk), so they are still aligned before it is raised."""
    buf = []
    it = iter(pairs)
    while True:
        try:
            p = next(it)
        except StopIteration:
            break
        except Exception as exc:  # a bad record in the input: finish what came before it
            yield buf, exc
            return
        buf.append(p)
        if len(buf) >= size:
            yield buf, None
            buf = []
    if buf:
        yield buf, None


def align_stream(model, pairs, method, client, chunk_size, n_threads, max_in_flight=None):
    """Yield alignments of ``pairs`` (any iterable) in input order, chunk by chunk.

    At most ``max_in_flight`` chunks are pending at once (Dask: twice the
    worker threads plus one), so memory is bounded by the chunk size.
    """
    from ._validation import check_int

    chunk_size = check_int("chunk_size", chunk_size, low=1)
    start = 0
    if client is None:
        for chunk, read_error in _chunks(pairs, chunk_size):
            alns, err = align_chunk(model, chunk, method, n_threads) if chunk else ([], None)
            yield from alns
            if err is not None:
                _raise_pair(err, start)
            if read_error is not None:
                raise read_error
            start += len(chunk)
        return
    if max_in_flight is None:
        n = sum(client.nthreads().values()) or 1
        max_in_flight = 2 * n + 1
    tag = uuid.uuid4().hex[:12]
    pending = deque()
    it = iter(_chunks(pairs, chunk_size))
    k = 0
    stopped = False
    try:
        while True:
            while len(pending) < max_in_flight and not stopped:
                item = next(it, None)
                if item is None:
                    break
                chunk, read_error = item
                stopped = read_error is not None
                # the model (tens of KiB) travels with each chunk: a lost worker loses nothing
                fut = client.submit(_on_worker, align_chunk, model, chunk, method, n_threads,
                                    key=f"hmmtie-align-{tag}-{k}", pure=False) if chunk else None
                pending.append((fut, len(chunk), read_error))
                k += 1
            if not pending:
                break
            fut, n, read_error = pending.popleft()
            alns, err = [], None
            if fut is not None:
                try:
                    alns, err = fut.result()
                except (ValueError, MemoryError):
                    raise
                except Exception as exc:
                    raise _failure(f"aligning pairs {start + 1}-{start + n}", exc) from None
                finally:
                    fut.release()
            yield from alns
            if err is not None:
                _raise_pair(err, start)
            if read_error is not None:
                raise read_error
            start += n
    finally:
        for fut, _, _ in pending:
            if fut is not None:
                fut.cancel()


def _raise_pair(err, start):
    k, exc = err
    raise with_message(exc, f"pair {start + k + 1}: {exc}") from None
