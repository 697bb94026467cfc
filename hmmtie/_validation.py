"""Input checks for the public layer (kernels trust their inputs)."""
from __future__ import annotations

import contextlib
import os
import stat

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before its parameters exist."""


def check_kwargs(owner: str, kwargs: dict, allowed) -> None:
    """Unknown keyword arguments are a one-line ValueError naming them."""
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise ValueError(
            f"{owner}: unknown keyword argument(s) {names}; allowed: {', '.join(sorted(allowed))}"
        )


def check_int(name, value, low=None, high=None, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return int(value)


def check_bool(name, value):
    """True or False (numpy bools too); anything else is an error, never
    coerced (the string "no" would be true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_random_state(name, value):
    """A numpy Generator from anything ``numpy.random.default_rng`` takes
    (None, an integer >= 0, a sequence of them, a SeedSequence, a bit
    generator, a Generator); anything else -- a bool among them -- is a
    one-line error naming ``name``."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be None, an integer >= 0 or a numpy seed or Generator, got {value!r}")
    try:
        return np.random.default_rng(value)
    except (TypeError, ValueError) as exc:
        why = " ".join(str(exc).split())
        raise ValueError(f"{name} must be None, an integer >= 0 or a numpy seed or Generator, "
                         f"got {value!r} ({why})") from None


def check_number(name, value, nonnegative: bool = True) -> float:
    """A finite number, >= 0 unless ``nonnegative`` is False (a string or a
    bool is an error, never coerced)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or (nonnegative and value < 0):
        raise ValueError(f"{name} must be a finite number{' >= 0' if nonnegative else ''}, got {value!r}")
    return float(value)


def check_count(name, value, low: int = 0) -> int:
    """An integer >= low (a float, a bool or a string is an error, never truncated)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _offsets_from_lengths(lengths, n_total):
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D sequence of integers, got shape {lengths.shape}")
    if lengths.dtype.kind not in "iu":
        if lengths.dtype.kind == "f" and np.all(np.isfinite(lengths)) and np.all(lengths == np.round(lengths)):
            lengths = lengths.astype(np.int64)
        else:
            raise ValueError(f"lengths must hold integers, got dtype {lengths.dtype}")
    if np.any(lengths <= 0):
        i = int(np.flatnonzero(lengths <= 0)[0])
        raise ValueError(f"lengths[{i}] = {lengths[i]}: empty sequences are not allowed (every length must be >= 1)")
    if np.any(lengths > n_total):  # before summing: a huge length would wrap the int64 sum
        i = int(np.flatnonzero(lengths > n_total)[0])
        raise ValueError(f"lengths[{i}] = {lengths[i]} is more than the {n_total} rows of X")
    lengths = lengths.astype(np.int64)
    if lengths.sum() != n_total:
        raise ValueError(f"lengths sum to {int(lengths.sum())} but X has {n_total} rows")
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _one_nested_sequence(X, ndim_item: int) -> bool:
    """Whether a list is one sequence written as nested lists of numbers (see
    :func:`split_input`); review 33: ``X.tolist()`` of a (50, 2) array was
    fitted as 50 sequences of one feature."""
    if any(isinstance(x, np.ndarray) for x in X):
        return False
    try:
        a = np.asarray(X)
    except ValueError:  # ragged
        return False
    return a.dtype.kind in "biuf" and a.ndim == 2 and (ndim_item == 2 or a.shape[1] == 1)


def split_input(X, lengths, *, ndim_item: int, name: str = "X"):
    """Accept hmmlearn-style (concatenated X + lengths) or a list of sequences.

    Returns the concatenated array and int64 offsets of shape (n_seq + 1,).
    ``ndim_item`` is 1 for symbols (each sequence 1-D), 2 for feature frames.
    A list (without ``lengths``) is a list of sequences, except a nested
    list of numbers that makes a regular 2-D array (``X.tolist()`` of an
    (n_samples, n_features) array; (n_samples, 1) for symbols): that is one
    sequence, as hmmlearn reads it.  A list of numpy arrays is always a
    list of sequences.
    """
    if (isinstance(X, (list, tuple)) and len(X) > 0 and not np.isscalar(X[0]) and lengths is None
            and not _one_nested_sequence(X, ndim_item)):
        seqs = [np.asarray(x) for x in X]
        for i, s in enumerate(seqs):
            if s.size == 0:
                raise ValueError(f"{name}[{i}] is an empty sequence; every sequence needs at least one observation")
            if ndim_item == 1 and s.ndim == 2 and s.shape[1] == 1:
                seqs[i] = s[:, 0]
            elif ndim_item == 2 and s.ndim == 1:
                seqs[i] = s[:, None]
            if seqs[i].ndim != ndim_item:
                raise ValueError(f"{name}[{i}] has shape {s.shape}; expected a {ndim_item}-D sequence")
        lengths = [len(s) for s in seqs]
        X = np.concatenate(seqs)
    else:
        try:
            X = np.asarray(X)
        except ValueError:  # ragged: a list of sequences (with lengths given)
            raise ValueError(f"{name} is a list of sequences of different lengths; give either the list "
                             "without lengths or the concatenated sequences with lengths") from None
        if X.size == 0:
            raise ValueError(f"{name} is empty; give at least one observation")
        if ndim_item == 1:
            if X.ndim == 2 and X.shape[1] == 1:
                X = X[:, 0]
            if X.ndim != 1:
                raise ValueError(f"{name} must have shape (n_samples, 1) or (n_samples,) for symbols, got {X.shape}")
        else:
            if X.ndim == 1:
                X = X[:, None]
            if X.ndim != 2:
                raise ValueError(f"{name} must have shape (n_samples, n_features), got {X.shape}")
    if lengths is None:
        lengths = [len(X)]
    offsets = _offsets_from_lengths(lengths, len(X))
    return X, offsets


def check_symbols(X, n_symbols, name="X"):
    X = np.asarray(X)
    if X.dtype.kind == "b" or X.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integer symbols, got dtype {X.dtype}")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X) | (X != np.round(X))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}[{i}] = {float(X[i])} is not an integer symbol")
    X = X.astype(np.int64)
    if n_symbols is not None:
        bad = (X < 0) | (X >= n_symbols)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}[{i}] = {X[i]} is outside [0, n_symbols={n_symbols})")
    elif X.min() < 0:
        i = int(np.argmin(X))
        raise ValueError(f"{name}[{i}] = {X[i]} is negative; symbols must be in [0, n_symbols)")
    return np.ascontiguousarray(X)


def check_features(X, n_features, name="X"):
    X = np.asarray(X)
    if X.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold numbers, got dtype {X.dtype}")
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{name}[{r}, {c}] = {float(X[r, c])}: features must be finite (no NaN or inf)")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features per frame, expected n_features={n_features}")
    return np.ascontiguousarray(X)


def check_prob_array(name, arr, shape, axis=-1, atol=1e-8):
    """Rows must be probabilities that sum to one; never renormalised."""
    arr = np.asarray(arr, dtype=float)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or inf")
    if np.any(arr < 0):
        idx = tuple(int(i) for i in np.argwhere(arr < 0)[0])
        raise ValueError(f"{name}{list(idx)} = {arr[idx]:.6g} is negative")
    sums = arr.sum(axis=axis)
    if not np.allclose(sums, 1.0, rtol=0, atol=atol):
        shown = np.array2string(np.atleast_1d(sums), precision=6, threshold=8)
        what = "rows" if arr.ndim > 1 else "entries"
        raise ValueError(f"{name} {what} must sum to 1 (got sums of {shown})")
    return np.ascontiguousarray(arr)


#: Below this much work (DP cells or T * K^2) a job runs on one thread by
#: default: thread start-up costs more than it saves, badly so on busy machines.
SMALL_WORK = 2_000_000


@contextlib.contextmanager
def numba_threads(n_threads, work=None):
    """Temporarily set numba's thread count.

    ``None`` keeps the current setting, except that a job smaller than
    :data:`SMALL_WORK` (when ``work`` is given) runs on one thread.
    """
    if n_threads is None:
        if work is None or work >= SMALL_WORK:
            yield
            return
        n_threads = 1
    import numba

    n = check_int("n_threads", n_threads, low=1)
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def with_message(exc: BaseException, text: str) -> BaseException:
    """An exception of the same type with a new message, keeping its
    attributes (such as a ``remedy`` in the command line's wording)."""
    new = type(exc)(text)
    new.__dict__.update(getattr(exc, "__dict__", {}))
    return new


def is_special_file(path) -> bool:
    """Whether output to ``path`` goes straight into it: a device such as
    /dev/null, a named pipe, or a symbolic link (/dev/stdout, a link to a
    file); a temporary file renamed over it would replace the device or the
    link itself with a regular file.  Such writes are not atomic."""
    if os.path.islink(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def atomic_write_text(path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename on success (a
    device or pipe is written directly)."""
    path = os.fspath(path)
    if is_special_file(path):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder; give a file name to write")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"{path}: cannot write, directory {directory} does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
