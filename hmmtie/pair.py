"""Pair HMMs: align, score and train under tied (symmetric) or untied hypotheses.

A pair HMM has a silent Begin and End and emitting states of three kinds:
match (emits a residue of x and one of y from a joint table), insert-x and
insert-y (emit one residue from a single table).  Transitions and emissions
are held by the tying engine (:mod:`hmmtie.tying`), like every other model.

Parameter blocks (each a :class:`hmmtie.tying.ProbBlock`):

``trans``
    rows ``["Begin", *states]``, columns ``[*states, "End"]``; row ``Begin`` is
    the start distribution, the last column the end probabilities.
    ``Begin -> End`` is a structural zero (sequences are never empty).
``match``
    one row per match state, ``A * A`` columns: the joint table ``p(a, b)``
    flattened row-major (column label ``"a b"``).
``insert``
    one row per insert state, ``A`` columns.

Symmetric hypotheses are extra ties generated from the base structure:
``symmetric_gaps`` ties every transition cell to its mirror (insert-x states
swapped with their insert-y twins) and each insert-x emission row to its
twin's; ``symmetric_match`` ties ``p(a, b)`` to ``p(b, a)``.

Scores are natural-log likelihoods; ``log_odds`` is taken against the
independent-residue null model ``prod_i q(x_i) prod_j q(y_j)`` with the
model's background frequencies ``background_`` (no length term).
Emissions are handled internally as odds ratios against ``background_``,
and the kernels run their lattice rows along the longer sequence of a pair;
both keep the row-scaled recurrences far from underflow.
"""
from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from importlib import resources

import numba
import numpy as np
from numpy.typing import NDArray

from . import alphabet as _alph
from . import tying as _tying
from ._kernels import pair_decode as _kd
from ._kernels import pair_fb as _kf
from ._validation import check_bool, check_choice, check_int, check_number, check_random_state, numba_threads

__all__ = ["PairHMM", "PairState", "PRESETS"]

KIND_CODES = {"match": 0, "insert_x": 1, "insert_y": 2, "flank_x": 1, "flank_y": 2}
PRESETS = ("3state", "5state")
#: Flank states of a local model (Durbin et al. 1998, section 4.4: "random"
#: states before and after the aligned core; they emit with the background
#: frequencies, so they have no emission parameters).
FLANKS = ("RX1", "RY1", "RX2", "RY2")
#: Default flank loop probability of the local presets (mean flank 50 residues).
FLANK_LOOP = 0.98

#: Default memory guard for one pair's dynamic-programming tables (bytes).
DEFAULT_MEMORY_LIMIT = 4 * 2**30
#: Largest band accepted: any band at least the longer sequence's length is
#: no band, and the kernels multiply the band by that length in 64-bit
#: integers (2^31 x 2^31 cannot overflow).
_MAX_BAND = 2**31


@dataclass(frozen=True)
class PairState:
    """A pair-HMM state: a name and a kind (``match``, ``insert_x``,
    ``insert_y``, ``flank_x``, ``flank_y``).

    Flank states emit one residue of x (``flank_x``) or y (``flank_y``) with
    the background frequencies (odds 1, no emission parameters): the
    unaligned ends of a local model."""

    name: str
    kind: str


def _log(a):
    with np.errstate(divide="ignore"):
        return np.log(a)


# --------------------------------------------------------------------------
# sequences and alignments
# --------------------------------------------------------------------------

def _seq_text(seq, what):
    """(text, id) of a str, Bio.Seq.Seq or SeqRecord."""
    rec_id = None
    if hasattr(seq, "seq") and hasattr(seq, "id"):  # SeqRecord
        rec_id = seq.id
        seq = seq.seq
    from Bio.Seq import MutableSeq, Seq, UndefinedSequenceError

    if not isinstance(seq, (str, Seq, MutableSeq)):  # str(None) would read as the protein "NONE"
        raise TypeError(f"{what}: expected a str, Bio.Seq.Seq or SeqRecord, got {type(seq).__name__}")
    try:
        return str(seq), rec_id
    except UndefinedSequenceError:  # Seq(None, length): a length without letters
        raise ValueError(f"{what}: the sequence's content is undefined (a Bio.Seq.Seq of a length only)") from None


def ops_to_coordinates(ops: NDArray) -> NDArray:
    """Bio.Align coordinates (2, n_blocks + 1) from column ops (0 pair, 1 x-gap... see module):
    the residue counts before each run of equal ops, and at the end."""
    ops = np.asarray(ops, dtype=np.uint8)
    if not len(ops):
        return np.zeros((2, 1), np.int64)
    i = np.concatenate(([0], np.cumsum(ops != 2)))  # residues of a before each column
    j = np.concatenate(([0], np.cumsum(ops != 1)))
    starts = np.flatnonzero(np.diff(ops.astype(np.int8), prepend=-1, append=-1))  # run bounds
    return np.stack((i[starts], j[starts])).astype(np.int64)


def _check_residues(what, row, got, want, offset=0):
    """``got`` (the alignment's residues of one sequence, from residue
    ``offset`` on) must be that sequence (``want``), case-insensitively."""
    if want is None:
        return
    ref = want[offset:offset + len(got)]
    if got.upper() != ref.upper():
        k = next((k for k, (g, r) in enumerate(zip(got.upper(), ref.upper())) if g != r), min(len(got), len(ref)))
        have = repr(got[k]) if k < len(got) else "the end"
        wanted = repr(ref[k]) if k < len(ref) else "the end"
        raise ValueError(f"{what}: row {row} has {have} at residue {offset + k + 1}, "
                         f"but the sequence has {wanted} there (an alignment of other sequences?)")


def _gapped_pair(alignment) -> bool:
    """Whether ``alignment`` is a pair of gapped sequences (str, Seq or MutableSeq)."""
    from Bio.Seq import MutableSeq, Seq

    return (isinstance(alignment, (tuple, list)) and len(alignment) == 2
            and all(isinstance(s, (str, Seq, MutableSeq)) for s in alignment))


def alignment_to_ops(alignment, n: int, m: int, what: str = "alignment", local: bool = False,
                     x: str | None = None, y: str | None = None) -> NDArray:
    """Column ops from a ``Bio.Align.Alignment`` or a pair of gapped strings.

    With ``local``, an ``Alignment`` may cover a part of each sequence (as a
    local model's alignments do): the residues before and after it are added
    as unaligned columns (x first, then y).  Given the sequences ``x`` and
    ``y``, the alignment's residues must be theirs (case-insensitive; an
    ``Alignment`` whose sequences have undefined content is not checked).
    Gapped strings (``str`` or ``Bio.Seq``) use ``-`` or ``.`` for gaps; a
    column that is a gap in both (two rows of a multiple alignment) is
    skipped, as an ``Alignment``'s coordinates skip it."""
    if _gapped_pair(alignment):
        gx, gy = (_seq_text(g, f"{what}: row {row}")[0] for row, g in enumerate(alignment, start=1))
        if len(gx) != len(gy):
            raise ValueError(f"{what}: gapped strings differ in length ({len(gx)} vs {len(gy)})")
        for row, (g, seq) in enumerate(((gx, x), (gy, y)), start=1):
            _check_residues(what, row, g.replace("-", "").replace(".", ""), seq)
        ops = []
        for a, b in zip(gx, gy):
            ga, gb = a in "-.", b in "-."
            if not (ga and gb):  # a column of two gaps (two rows of a multiple alignment) aligns nothing
                ops.append(2 if ga else 1 if gb else 0)
        ops = np.array(ops, dtype=np.uint8)
    elif hasattr(alignment, "coordinates"):
        coords = np.asarray(alignment.coordinates)
        if coords.shape[0] != 2:
            raise ValueError(f"{what}: expected a pairwise alignment, got {coords.shape[0]} rows")
        if coords.dtype.kind not in "iu":
            raise ValueError(f"{what}: coordinates must be integers, got {coords.dtype}")
        if coords.min() < 0:
            raise ValueError(f"{what}: coordinates must not be negative")
        for row, seq in enumerate((x, y)):
            lo, hi = int(coords[row].min()), int(coords[row].max())
            try:
                s_row = getattr(alignment.sequences[row], "seq", alignment.sequences[row])
                got = str(s_row[lo:hi])
            except Exception:  # undefined sequence content (Bio.Seq): nothing to check
                continue
            _check_residues(what, row + 1, got, seq, offset=lo)
        ops = []
        for k in range(coords.shape[1] - 1):
            di = coords[0, k + 1] - coords[0, k]
            dj = coords[1, k + 1] - coords[1, k]
            if di < 0 or dj < 0:
                raise ValueError(f"{what}: reverse-strand alignments are not supported")
            if di and dj:
                if di != dj:
                    raise ValueError(f"{what}: block {k} has unequal lengths {di} and {dj}")
                ops += [0] * di
            elif di:
                ops += [1] * di
            elif dj:
                ops += [2] * dj
        ops = np.array(ops, dtype=np.uint8)
        if local:
            i0, j0 = int(coords[0, 0]), int(coords[1, 0])
            i1, j1 = int(coords[0, -1]), int(coords[1, -1])
            if min(i0, j0) < 0 or i1 > n or j1 > m:
                raise ValueError(f"{what}: coordinates run outside the sequences ({n} and {m} residues)")
            ops = np.concatenate([np.full(i0, 1, np.uint8), np.full(j0, 2, np.uint8), ops,
                                  np.full(n - i1, 1, np.uint8), np.full(m - j1, 2, np.uint8)])
        elif coords[0, 0] != 0 or coords[1, 0] != 0:
            raise ValueError(f"{what}: the alignment must start at the first residue of both sequences (global)")
    else:
        raise ValueError(f"{what}: expected a Bio.Align.Alignment or a pair of gapped strings (str or Bio.Seq.Seq), "
                         f"got {type(alignment).__name__}")
    ni = int(np.sum(ops != 2))
    nj = int(np.sum(ops != 1))
    if ni != n or nj != m:
        raise ValueError(f"{what}: covers {ni} and {nj} residues but the sequences have {n} and {m} (global alignment)")
    return ops


def core_span(ops) -> tuple[int, int]:
    """Columns ``[first, last + 1)`` from the first to the last aligned pair
    (the whole alignment if it has no aligned pair)."""
    ops = np.asarray(ops)
    pairs = np.flatnonzero(ops == 0)
    if len(pairs) == 0:
        return 0, len(ops)
    return int(pairs[0]), int(pairs[-1]) + 1


def _lost_forward(n: int, m: int) -> str:
    # unreachable unless the log-space fallback fails too (kept as the last guard)
    return (f"the forward of this pair (lengths {n} x {m}) lost precision under every tilt "
            "tried and in log space; the Viterbi alignment (method 'viterbi') does not need it")


def _make_alignment(x: str, y: str, ops, ids=("x", "y"), local: bool = False):
    """A ``Bio.Align.Alignment`` of the column ops; with ``local`` only the
    columns of :func:`core_span`, its coordinates starting where they start."""
    from Bio.Align import Alignment
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    recs = [SeqRecord(Seq(x), id=ids[0] or "x", description=""), SeqRecord(Seq(y), id=ids[1] or "y", description="")]
    ops = np.asarray(ops, dtype=np.uint8)
    if not local:
        return Alignment(recs, ops_to_coordinates(ops))
    a, b = core_span(ops)
    head = ops[:a]
    offset = np.array([[np.sum(head != 2)], [np.sum(head != 1)]], dtype=np.int64)
    return Alignment(recs, ops_to_coordinates(ops[a:b]) + offset)


# --------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------

def _preset_structure(name: str):
    """States and base tie spec of a preset (the parts shared by both hypotheses)."""
    if name == "3state":
        states = [PairState("M", "match"), PairState("X", "insert_x"), PairState("Y", "insert_y")]
        spec = {
            "transitions": {
                "tau": [["M", "End"], ["X", "End"], ["Y", "End"]],
                "delta_x": [["Begin", "X"], ["M", "X"]],
                "delta_y": [["Begin", "Y"], ["M", "Y"]],
            },
            "fixed": {"transmat": [["X", "Y", 0.0], ["Y", "X", 0.0]]},
        }
        return states, spec
    if name == "5state":
        states = [
            PairState("M", "match"),
            PairState("X1", "insert_x"), PairState("Y1", "insert_y"),
            PairState("X2", "insert_x"), PairState("Y2", "insert_y"),
        ]
        inserts = ["X1", "Y1", "X2", "Y2"]
        zeros = [[a, b, 0.0] for a in inserts for b in inserts if a != b]
        spec = {
            "transitions": {
                "tau": [[s.name, "End"] for s in states],
                "delta1_x": [["Begin", "X1"], ["M", "X1"]],
                "delta1_y": [["Begin", "Y1"], ["M", "Y1"]],
                "delta2_x": [["Begin", "X2"], ["M", "X2"]],
                "delta2_y": [["Begin", "Y2"], ["M", "Y2"]],
            },
            "emission_groups": {"insert_x": ["X1", "X2"], "insert_y": ["Y1", "Y2"]},
            "fixed": {"transmat": zeros},
        }
        return states, spec
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def _localize(states: list[PairState], spec: dict):
    """The local version of a global structure: flank states ``RX1``, ``RY1``
    (before the aligned core) and ``RX2``, ``RY2`` (after it) around the
    core, as in Durbin et al. (1998), section 4.4.

    The core starts and ends with a match: Begin and the leading flanks
    enter match states only, and only match states leave the core (to End or
    to a trailing flank).  Within a flank pair x and y residues may come in
    any order (``RX1 <-> RY1``), so the flanks are symmetric under swapping
    the sequences; their cells are always tied to their mirror cells
    (whatever the gap hypothesis), and the four flank loops share one value
    (one flank-length parameter).  Every other cell is a structural zero.
    """
    core = [s.name for s in states]
    kinds = {s.name: s.kind for s in states}
    matches = [n for n in core if kinds[n] == "match"]
    fixed_core = {(a, b) for a, b, v in spec.get("fixed", {}).get("transmat", []) if float(v) == 0.0}
    allowed = set()
    for n in ("Begin", "RX1", "RY1"):
        allowed |= {(n, m) for m in matches}
    allowed |= {("Begin", "RX1"), ("Begin", "RY1"), ("RX1", "RX1"), ("RX1", "RY1"), ("RY1", "RY1"), ("RY1", "RX1"),
                ("RX2", "RX2"), ("RX2", "RY2"), ("RY2", "RY2"), ("RY2", "RX2"), ("RX2", "End"), ("RY2", "End")}
    for a in core:
        allowed |= {(a, b) for b in core if (a, b) not in fixed_core}
        if kinds[a] == "match":
            allowed |= {(a, "RX2"), (a, "RY2"), (a, "End")}
    flank_states = [PairState("RX1", "flank_x"), PairState("RY1", "flank_y"),
                    PairState("RX2", "flank_x"), PairState("RY2", "flank_y")]
    names = core + list(FLANKS)
    rows, cols = ["Begin"] + names, names + ["End"]
    zeros = [[r, c, 0.0] for r in rows for c in cols if (r, c) not in allowed and (r, c) != ("Begin", "End")]
    groups = {}
    for g, cells in spec.get("transitions", {}).items():
        kept = [list(c) for c in cells if tuple(c) in allowed]
        if kept:
            groups[g] = kept
    groups["flank_loop"] = [["RX1", "RX1"], ["RY1", "RY1"], ["RX2", "RX2"], ["RY2", "RY2"]]
    local = {k: v for k, v in spec.items() if k not in ("transitions", "fixed")}
    local["transitions"] = groups
    local["fixed"] = {"transmat": zeros}
    return states + flank_states, local


def _local_params(params: dict, states: list[PairState]) -> dict:
    """Local parameters from a global preset's: the core's transitions kept
    (insert rows renormalised without End), a match state's end probability
    split evenly over End and the two trailing flanks, flank loops
    :data:`FLANK_LOOP`, and Begin entering each leading flank or the core with
    probability 1/3."""
    S = len(states)
    g = np.asarray(params["trans"], dtype=float)
    t = np.zeros((S + 5, S + 5))  # rows Begin, core, 4 flanks; cols core, 4 flanks, End
    end = S + 4
    kinds = [s.kind for s in states]
    for r in range(S):
        t[1 + r, :S] = g[1 + r, :S]
        if kinds[r] == "match":
            t[1 + r, S + 2] = t[1 + r, S + 3] = t[1 + r, end] = g[1 + r, S] / 3.0
        else:
            t[1 + r, :S] /= t[1 + r, :S].sum()
    m = kinds.index("match")
    rx1, ry1, rx2, ry2 = S + 1, S + 2, S + 3, S + 4  # rows
    step = (1.0 - FLANK_LOOP) / 2.0
    t[0, m] = t[0, S] = t[0, S + 1] = 1.0 / 3.0
    t[rx1, S], t[rx1, S + 1], t[rx1, m] = FLANK_LOOP, step, step
    t[ry1, S + 1], t[ry1, S], t[ry1, m] = FLANK_LOOP, step, step
    t[rx2, S + 2], t[rx2, S + 3], t[rx2, end] = FLANK_LOOP, step, step
    t[ry2, S + 3], t[ry2, S + 2], t[ry2, end] = FLANK_LOOP, step, step
    return dict(params, trans=t.tolist())


def _twins(states: list[PairState]) -> dict[str, str]:
    """Mirror map: the k-th insert-x state <-> the k-th insert-y state."""
    xs = [s.name for s in states if s.kind == "insert_x"]
    ys = [s.name for s in states if s.kind == "insert_y"]
    mirror = {s.name: s.name for s in states if s.kind == "match"}
    if len(xs) != len(ys):
        return {}
    for a, b in zip(xs, ys):
        mirror[a] = b
        mirror[b] = a
    mirror["Begin"] = "Begin"
    mirror["End"] = "End"
    return mirror


def _flank_twins(states: list[PairState]) -> dict[str, str]:
    """Mirror map of the flank states (k-th flank_x <-> k-th flank_y), every
    other state mapped to itself; empty if there are no flanks."""
    xs = [s.name for s in states if s.kind == "flank_x"]
    ys = [s.name for s in states if s.kind == "flank_y"]
    if not xs and not ys:
        return {}
    if len(xs) != len(ys):
        raise ValueError("PairHMM states: flank_x and flank_y states must come in pairs")
    mirror = {s.name: s.name for s in states}
    for a, b in zip(xs, ys):
        mirror[a] = b
        mirror[b] = a
    return mirror


def _params_path(alphabet: str, preset: str):
    return resources.files("hmmtie").joinpath("params", f"{alphabet}_{preset}.json")


# --------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------

_NO_PATH = "no alignment of these sequences has non-zero probability under the model"


def _param_attr(name, key):
    """A parameter array of :class:`PairHMM`: read as a read-only view of the
    model's own array, assigned through ``set_params`` (``key``; None: the
    full transition table ``trans_``, split into its three parts)."""

    def get(self):
        v = self._params()[name].view()
        v.flags.writeable = False
        return v

    def set_(self, value):
        if key is not None:
            self.set_params(**{key: value})
            return
        value = np.asarray(value, dtype=float)
        S = self.n_states
        if value.shape != (S + 1, S + 1):
            raise ValueError(f"trans_ has shape {value.shape}, expected {(S + 1, S + 1)}")
        self.set_params(startprob=value[0, :S], transmat=value[1:, :S], endprob=value[1:, S])

    return property(get, set_, doc=f"``{name}`` (read-only view; assigning it calls set_params).")


class PairHMM:
    """A pair HMM with tied or untied insert states.

    Build one with :meth:`preset` (``"3state"``, ``"5state"``) or from a
    custom state list.

    Parameters
    ----------
    states : list of PairState or (name, kind) pairs
        Kinds: ``"match"``, ``"insert_x"``, ``"insert_y"``.
    alphabet : {"protein", "dna", "rna"}
    tying : dict, optional
        Base tie spec, the same vocabulary as the HMMs
        (:func:`hmmtie.tying.compile_hmm_spec`): ``"transitions"`` (named
        tied cells; rows may be ``"Begin"``, columns ``"End"``), ``"fixed"``
        (``{"transmat": [[from, to, value], ...]}``), ``"emission_groups"``
        (states sharing an emission table).
    symmetric_gaps : bool, default True
        Tie each insert-x state to its insert-y twin (transitions and
        emissions).
    symmetric_match : bool, default True
        Tie ``p(a, b)`` to ``p(b, a)``.
    band : int, optional
        Restrict dynamic programming to a diagonal band of this half-width
        (see :func:`hmmtie._kernels.pair_fb.band_limits`).
    memory_limit : int or None, default 4 GiB
        Refuse pairs whose dynamic-programming tables would need more bytes
        (None: no limit).
    n_threads : int, optional
        Numba threads for batched work.

    Attributes
    ----------
    startprob_ : array of shape (n_states,)
    transmat_ : array of shape (n_states, n_states)
    endprob_ : array of shape (n_states,)
    match_emissionprob_ : array of shape (n_match_states, A, A)
    insert_emissionprob_ : array of shape (n_insert_states, A)
    background_ : array of shape (A,)
        Background frequencies of the null model (not fitted).

    The parameter arrays are read-only views: assigning one of them (``m.transmat_ =
    T``) goes through :meth:`set_params`, which checks the values (rows sum
    to 1, no NaN, the ties hold) and rebuilds the kernels' tables; changing
    one in place is an error (``assignment destination is read-only``).
    """

    startprob_ = _param_attr("startprob_", "startprob")
    transmat_ = _param_attr("transmat_", "transmat")
    endprob_ = _param_attr("endprob_", "endprob")
    match_emissionprob_ = _param_attr("match_emissionprob_", "match_emissionprob")
    insert_emissionprob_ = _param_attr("insert_emissionprob_", "insert_emissionprob")
    background_ = _param_attr("background_", "background")
    trans_ = _param_attr("trans_", None)

    def __init__(
        self,
        states,
        *,
        alphabet: str = "protein",
        tying: dict | None = None,
        symmetric_gaps: bool = True,
        symmetric_match: bool = True,
        band: int | None = None,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        n_threads: int | None = None,
        preset_name: str | None = None,
    ):
        self.states = [s if isinstance(s, PairState) else PairState(*s) for s in states]
        self.alphabet = alphabet
        self.tying = tying
        self.symmetric_gaps = check_bool("symmetric_gaps", symmetric_gaps)
        self.symmetric_match = check_bool("symmetric_match", symmetric_match)
        self.band = band
        self.memory_limit = memory_limit
        self.n_threads = n_threads
        self.preset_name = preset_name
        self._alph = _alph.get_alphabet(alphabet)
        self._p = None  # parameters: set_params / presets / load
        self._compile()

    # Settings, validated whenever they are set (also after construction).
    @property
    def band(self) -> int | None:
        """Band half-width (None: no band)."""
        return self._band_value

    @band.setter
    def band(self, value):
        self._band_value = check_int("band", value, low=0, high=_MAX_BAND, allow_none=True)

    @property
    def memory_limit(self) -> int | None:
        """Memory guard for one pair's tables, in bytes (None: no guard)."""
        return self._memory_limit_value

    @memory_limit.setter
    def memory_limit(self, value):
        self._memory_limit_value = check_int("memory_limit", value, low=1, allow_none=True)

    @property
    def n_threads(self) -> int | None:
        """Threads for batches (None: numba's default)."""
        return self._n_threads_value

    @n_threads.setter
    def n_threads(self, value):
        self._n_threads_value = check_int("n_threads", value, low=1, allow_none=True)

    # ------------------------------------------------------------ structure
    @classmethod
    def preset(
        cls,
        name: str = "3state",
        alphabet: str = "protein",
        symmetric_gaps: bool = True,
        symmetric_match: bool = True,
        *,
        local: bool = False,
        defaults: bool = True,
        **kwargs,
    ) -> "PairHMM":
        """A preset model with the shipped default parameters.

        Parameters
        ----------
        name : {"3state", "5state"}
            ``3state``: match, insert-x, insert-y with gap open δ, extend ε
            and end τ (Durbin et al. 1998, ch. 4); τ is shared by all rows.
            ``5state``: a short-gap and a long-gap pair of insert states (as
            ProbCons); insert-x states share one emission table, so do
            insert-y states.
        alphabet : {"protein", "dna", "rna"}
        symmetric_gaps, symmetric_match : bool
        local : bool, default False
            Local alignment: add the flank states ``RX1``, ``RY1`` (before
            the aligned core) and ``RX2``, ``RY2`` (after it), which emit
            unaligned ends with the background frequencies (Durbin et al.
            1998, section 4.4; see :func:`_localize`).  The core starts and
            ends with a match; alignments returned by :meth:`align` and
            :meth:`viterbi` cover the core only (Biopython's convention for
            local alignments).  The core's parameters are the global
            preset's; the flanks start with loop probability 0.98 (mean
            flank 50 residues) -- ``fit(params="transitions")`` estimates
            them from the data.  A ``band`` follows the diagonal from (0, 0)
            to (N, M): with unequal flanks the core may lie outside it, so
            use a band with a local model only when the core is known to be
            near that diagonal.
        defaults : bool, default True
            Load the shipped default parameters (see ``data/README.md`` for
            their provenance); otherwise start from a generic initial guess.
        """
        check_choice("preset", name, PRESETS)
        states, spec = _preset_structure(name)
        model = cls(states, alphabet=alphabet, tying=spec, symmetric_gaps=symmetric_gaps,
                    symmetric_match=symmetric_match, preset_name=name, **kwargs)
        params = None
        if defaults:
            path = _params_path(model._alph.name if model._alph.name != "rna" else "dna", name)
            if path.is_file():
                params = json.loads(path.read_text())
        if params is None:
            params = model._generic_params()
        if local:
            states, spec = _localize(states, spec)
            model = cls(states, alphabet=alphabet, tying=spec, symmetric_gaps=symmetric_gaps,
                        symmetric_match=symmetric_match, preset_name=name, **kwargs)
            params = _local_params(params, states[: -len(FLANKS)])
        model._set_params_from_dict(params, symmetrise=True)
        return model

    def _compile(self):
        names = [s.name for s in self.states]
        if len(set(names)) != len(names):
            raise ValueError("PairHMM states: a name is used twice")
        for s in self.states:
            if s.kind not in KIND_CODES:
                raise ValueError(f"PairHMM state {s.name!r}: kind must be one of {list(KIND_CODES)}, got {s.kind!r}")
            if s.name in ("Begin", "End"):
                raise ValueError("PairHMM states: 'Begin' and 'End' are reserved names")
        if not any(s.kind == "match" for s in self.states):
            raise ValueError("PairHMM needs at least one match state")
        if self.tying is not None and not isinstance(self.tying, dict):
            raise ValueError(f"PairHMM tying must be a mapping (transitions, emission_groups, fixed), got "
                             f"{type(self.tying).__name__}")
        spec = dict(self.tying or {})
        for key in ("transitions", "fixed", "emission_groups"):
            if spec.get(key) is not None and not isinstance(spec[key], dict):
                raise ValueError(f"PairHMM tying[{key!r}] must be a mapping of names, got {type(spec[key]).__name__}")
        unknown = set(spec) - {"transitions", "fixed", "emission_groups"}
        if unknown:
            raise ValueError(f"PairHMM tying: unknown key(s) {sorted(unknown)}; allowed: emission_groups, fixed, transitions")
        fixed_spec = spec.get("fixed", {}) or {}
        bad = set(fixed_spec) - {"transmat"}
        if bad:
            raise ValueError(f"PairHMM tying['fixed']: unknown key(s) {sorted(bad)}; allowed: transmat")
        mirror = _twins(self.states)
        if self.symmetric_gaps and not mirror:
            raise ValueError("symmetric_gaps needs as many insert_x as insert_y states (each with a twin)")
        rows = ["Begin"] + names
        cols = names + ["End"]
        fixed = {}
        for item in fixed_spec.get("transmat", []):
            if not isinstance(item, (list, tuple)) or len(item) != 3:
                raise ValueError(f"PairHMM tying['fixed']['transmat']: entry {item!r} must be [from, to, value]")
            fixed[(item[0], item[1])] = item[2]
        groups = {}
        for g, cells in (spec.get("transitions", {}) or {}).items():
            if not isinstance(cells, (list, tuple)) or not all(
                    isinstance(c, (list, tuple)) and len(c) == 2 for c in cells):
                raise ValueError(f"PairHMM tying['transitions'][{g!r}] must be a list of [from, to] cells, "
                                 f"got {cells!r}")
            groups[g] = [tuple(c) for c in cells]
        flank_mirror = _flank_twins(self.states)
        if flank_mirror:  # flanks are symmetric under every hypothesis
            groups = self._mirror_groups(groups, fixed, flank_mirror, rows, cols)
        if self.symmetric_gaps:
            groups = self._mirror_groups(groups, fixed, mirror, rows, cols)
        self._trans = _tying.compile_block(
            "transmat", rows, cols, cell_groups=groups, fixed=fixed,
            structural_zeros=[("Begin", "End")],
        )
        kinds = {s.name: s.kind for s in self.states}
        em_groups = spec.get("emission_groups", {}) or {}
        match_names = [s.name for s in self.states if s.kind == "match"]
        ins_names = [s.name for s in self.states if s.kind in ("insert_x", "insert_y")]
        ins_groups, match_groups = {}, {}
        for g, members in em_groups.items():
            if not isinstance(members, (list, tuple)) or not all(isinstance(m, str) for m in members):
                raise ValueError(f"emission group {g!r} must be a list of state names, got {members!r}")
            if len(members) < 2:
                raise ValueError(f"emission group {g!r} needs at least two states, got {list(members)}")
            for s in members:
                if s not in kinds:
                    raise ValueError(f"emission group {g!r}: unknown state {s!r} (known: {', '.join(names)})")
            ks = {kinds[s] for s in members}
            if ks & {"flank_x", "flank_y"}:
                raise ValueError(f"emission group {g!r}: flank states emit the background and have no emission table")
            if ks == {"match"}:
                match_groups[g] = list(members)
            elif "match" not in ks:
                ins_groups[g] = list(members)
            else:
                raise ValueError(f"emission group {g!r}: cannot tie a match state to an insert state")
        if self.symmetric_gaps:
            ins_groups = _merge_row_groups(ins_groups, [(a, mirror[a]) for a in ins_names if kinds[a] == "insert_x"])
        letters = list(self._alph.letters)
        A = len(letters)
        cells = [f"{a} {b}" for a in letters for b in letters]
        match_cell_groups = {}
        if self.symmetric_match:
            for r in match_names:
                for i in range(A):
                    for j in range(i + 1, A):
                        match_cell_groups[f"{r}:{letters[i]}{letters[j]}"] = [(r, cells[i * A + j]), (r, cells[j * A + i])]
        if match_groups and self.symmetric_match:
            # rows tied as wholes *and* symmetric cells: merge through cell groups
            for g, members in match_groups.items():
                for c in cells:
                    match_cell_groups.setdefault(f"{g}:{c}", [])
            match_cell_groups = _merge_cell_groups(match_cell_groups, match_groups, cells)
            match_groups = {}
        self._match = _tying.compile_block("match", match_names, cells, cell_groups=match_cell_groups, row_groups=match_groups)
        self._insert = _tying.compile_block("insert", ins_names, letters, row_groups=ins_groups) if ins_names else None
        self._names = names
        self._kind = np.array([KIND_CODES[s.kind] for s in self.states], dtype=np.int64)
        etab = np.zeros(len(self.states), dtype=np.int64)
        for idx, s in enumerate(self.states):
            if s.kind == "match":
                etab[idx] = match_names.index(s.name)
            elif s.kind in ("flank_x", "flank_y"):
                etab[idx] = len(ins_names)  # the all-ones odds row appended by _tables
            else:
                etab[idx] = ins_names.index(s.name)
        self._etab = etab
        self._match_names, self._ins_names = match_names, ins_names
        self.local = bool(flank_mirror)

    @staticmethod
    def _mirror_groups(groups, fixed, mirror, rows, cols):
        """Add mirror ties (insert-x <-> insert-y) to the transition groups."""
        cell_group = {}
        for g, cells in groups.items():
            for c in cells:
                cell_group[tuple(c)] = g
        pairs = []
        for r in rows:
            for c in cols:
                mc = (mirror.get(r, r), mirror.get(c, c))
                if mc == (r, c) or mc < (r, c):
                    continue
                fr, fm = (r, c) in fixed, mc in fixed
                if fr or fm:
                    if fr and fm and float(fixed[(r, c)]) == float(fixed[mc]):
                        continue
                    if (r, c) == ("Begin", "End") or mc == ("Begin", "End"):
                        continue
                    raise ValueError(
                        f"symmetric_gaps: cell ({r}, {c}) and its mirror ({mc[0]}, {mc[1]}) must both be "
                        "fixed to the same value or both free"
                    )
                pairs.append(((r, c), mc))
        uf = {}

        def find(a):
            while uf.get(a, a) != a:
                a = uf[a]
            return a

        for g, cells in groups.items():
            for c in cells[1:]:
                uf[find(tuple(c))] = find(tuple(cells[0]))
        for a, b in pairs:
            ra, rb = find(a), find(b)
            if ra != rb:
                uf[rb] = ra
        members = {}
        for cell in {tuple(c) for cells in groups.values() for c in cells} | {p for ab in pairs for p in ab}:
            members.setdefault(find(cell), []).append(cell)
        out = {}
        for root, cells in members.items():
            names = sorted({cell_group[c] for c in cells if c in cell_group})
            name = "+".join(names) if names else f"{root[0]}->{root[1]}"
            out[name] = sorted(cells)
        return out

    # ----------------------------------------------------------- parameters
    @property
    def n_states(self) -> int:
        return len(self.states)

    def _generic_params(self) -> dict:
        """A generic starting point: substitution-matrix implied match table,
        background insert emissions, short gaps."""
        A = len(self._alph.letters)
        q = np.full(A, 1.0 / A)
        if self._alph.name == "protein":
            from Bio.Align import substitution_matrices

            m = substitution_matrices.load("BLOSUM62")
            letters = self._alph.letters
            s = np.array([[m[a][b] for b in letters] for a in letters], dtype=float)
            # BLOSUM62 is in half bits: p_ab ~ q_a q_b 2^(s/2) with roughly uniform q to start.
            p = np.outer(q, q) * 2.0 ** (s / 2.0)
        else:
            # Kimura-like: 0.7 identity mass, transitions twice transversions.
            letters = self._alph.letters
            p = np.full((A, A), 0.05)
            np.fill_diagonal(p, 0.7)
            purines = set("AG")
            for i, a in enumerate(letters):
                for j, b in enumerate(letters):
                    if i != j and ((a in purines) == (b in purines)):
                        p[i, j] = 0.1
        p = p / p.sum()
        params = {"background": q.tolist(), "match": [p.tolist() for _ in self._match_names],
                  "insert": [q.tolist() for _ in self._ins_names]}
        trans = np.zeros((self.n_states + 1, self.n_states + 1))
        kinds = [s.kind for s in self.states]
        n_ins = sum(k != "match" for k in kinds)
        for r in range(self.n_states + 1):
            for c in range(self.n_states + 1):
                if r == 0 and c == self.n_states:
                    continue
                src = "begin" if r == 0 else kinds[r - 1]
                dst = "end" if c == self.n_states else kinds[c]
                if dst == "end":
                    trans[r, c] = 0.001
                elif src in ("begin", "match"):
                    trans[r, c] = 0.9 if dst == "match" else 0.1 / max(n_ins, 1)
                elif dst == "match":
                    trans[r, c] = 0.3
                elif r - 1 == c:
                    trans[r, c] = 0.7 if n_ins <= 2 else (0.5 if self.states[c].name.endswith("1") else 0.9)
        params["trans"] = trans.tolist()
        return params

    def _set_params_from_dict(self, params: dict, symmetrise: bool = False):
        """Set parameters; with ``symmetrise`` project them onto the ties first
        (averaging tied cells, then an M-step) — used for presets only."""
        A = len(self._alph.letters)
        try:
            q = np.asarray(params["background"], dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"background must be {A} positive frequencies summing to 1, "
                             f"got {params['background']!r:.60}") from None
        if q.shape != (A,):
            raise ValueError(f"background must be {A} positive frequencies summing to 1, got shape {q.shape}")
        if not np.all(np.isfinite(q)) or np.any(q <= 0):
            k = int(np.flatnonzero(~(np.isfinite(q) & (q > 0)))[0])
            raise ValueError(f"background must be {A} positive frequencies summing to 1: "
                             f"letter {self._alph.letters[k]!r} has {q[k]:.6g}")
        if not np.isclose(q.sum(), 1.0, atol=1e-8):
            raise ValueError(f"background must be {A} positive frequencies summing to 1: they sum to {q.sum():.9g}")
        background = q / q.sum()
        trans = np.asarray(params["trans"], dtype=float)
        match = np.asarray(params["match"], dtype=float).reshape(len(self._match_names), A * A)
        ins = np.asarray(params["insert"], dtype=float).reshape(len(self._ins_names), A)
        if symmetrise:
            trans = self._trans.expand(self._trans.mstep(np.where(self._trans.tie == -1, 0, trans)))
            match = self._match.expand(self._match.mstep(match))
            if self._insert is not None:
                ins = self._insert.expand(self._insert.mstep(ins))
        self._atoms = {
            "trans": self._trans.atoms_from_full(trans, "transition probabilities"),
            "match": self._match.atoms_from_full(match, "match emissions"),
            "insert": self._insert.atoms_from_full(ins, "insert emissions") if self._insert is not None else np.zeros(0),
        }
        self._p = {"background_": background}
        self._refresh()

    def _refresh(self):
        """Full arrays and kernel tables from the atoms."""
        S = self.n_states
        A = len(self._alph.letters)
        trans = self._trans.expand(self._atoms["trans"])
        self._p.update(
            trans_=trans,
            startprob_=trans[0, :S].copy(),
            transmat_=trans[1:, :S].copy(),
            endprob_=trans[1:, S].copy(),
            match_emissionprob_=self._match.expand(self._atoms["match"]).reshape(-1, A, A),
            insert_emissionprob_=(self._insert.expand(self._atoms["insert"]) if self._insert is not None
                                  else np.zeros((0, A))),
        )
        self._tables()

    def _tables(self):
        E = _alph.expand_matrix(self._alph)  # (n_codes, A)
        q = self.background_
        qe = E @ q
        pm = np.einsum("ua,tab,vb->tuv", E, self.match_emissionprob_, E)
        self._match_ext = pm
        self._match_odds = np.ascontiguousarray(pm / np.outer(qe, qe)[None])
        pi = self.insert_emissionprob_ @ E.T
        if self.local:  # flank states: background emissions, odds 1
            pi = np.vstack([pi, qe[None]])
        self._ins_ext = pi
        self._ins_odds = np.ascontiguousarray(pi / qe[None]) if len(pi) else np.zeros((1, len(qe)))
        self._log_q_codes = _log(qe)

    def set_params(self, *, startprob=None, transmat=None, endprob=None, match_emissionprob=None,
                   insert_emissionprob=None, background=None) -> "PairHMM":
        """Set parameters (full arrays); they must respect the ties and sum to one.

        Nothing is renormalised: rows that do not sum to 1, or tied cells that
        differ, are errors naming the cell.
        """
        S = self.n_states
        if self._p is None:  # a new custom model: every table is needed
            given = dict(startprob=startprob, transmat=transmat, endprob=endprob,
                         match_emissionprob=match_emissionprob, background=background,
                         insert_emissionprob=insert_emissionprob if self._ins_names else 0)
            missing = [k for k, v in given.items() if v is None]
            if missing:
                raise ValueError(f"this PairHMM has no parameters yet: set_params needs {', '.join(missing)} too")
            trans = np.zeros((S + 1, S + 1))
            if not self._ins_names:
                insert_emissionprob = np.zeros((0, len(self._alph.letters)))
        else:
            trans = self.trans_.copy()
        for name, value, shape, where in (("startprob", startprob, (S,), (0, slice(0, S))),
                                          ("transmat", transmat, (S, S), (slice(1, None), slice(0, S))),
                                          ("endprob", endprob, (S,), (slice(1, None), S))):
            if value is None:
                continue
            value = np.asarray(value, dtype=float)
            if value.shape != shape:
                raise ValueError(f"{name} has shape {value.shape}, expected {shape}")
            trans[where] = value
        _check_rows("transition probabilities (rows Begin, states; columns states, End)", trans, ["Begin"] + self._names,
                    self._names + ["End"])
        match, ins = self._checked_emissions(
            self.match_emissionprob_ if match_emissionprob is None else match_emissionprob,
            self.insert_emissionprob_ if insert_emissionprob is None else insert_emissionprob)
        bg = self.background_ if background is None else background
        self._set_params_from_dict({"background": bg, "trans": trans, "match": match, "insert": ins})
        return self

    def _checked_emissions(self, match, ins):
        """Match (n_match, A, A) and insert (n_insert, A) emission tables as
        float arrays, or an error naming the table, row and column."""
        A = len(self._alph.letters)
        match = np.asarray(match, dtype=float)
        if match.shape != (len(self._match_names), A, A):
            raise ValueError(f"match_emissionprob has shape {match.shape}, expected {(len(self._match_names), A, A)}")
        letters = list(self._alph.letters)
        _check_rows("match_emissionprob", match.reshape(len(match), -1), self._match_names,
                    [f"{a}:{b}" for a in letters for b in letters])
        ins = np.asarray(ins, dtype=float)
        if not self._ins_names and ins.size == 0:  # no insert states ("insert": [] in a file)
            ins = np.zeros((0, A))
        if ins.shape != (len(self._ins_names), A):
            raise ValueError(f"insert_emissionprob has shape {ins.shape}, expected {(len(self._ins_names), A)}")
        _check_rows("insert_emissionprob", ins, self._ins_names, letters)
        return match, ins

    # -------------------------------------------------------------- encoding
    def _encode(self, seq, what):
        text, rec_id = _seq_text(seq, what)
        if len(text) == 0:
            raise ValueError(f"{what}{f' (record {rec_id!r})' if rec_id else ''} is empty; pair HMMs need non-empty sequences")
        codes = _alph.encode(text, self._alph, record=rec_id, what=what)
        return codes, text, rec_id

    def _memory_need(self, n, m, bytes_per_cell, what="posterior"):
        """(bytes of the tables, whether they fit ``memory_limit``); see `_check_memory`."""
        if what == "posterior" or self.band is None:
            cells = n * m
        else:
            cells = min(n * m, (2 * self.band + 3) * max(n, m))
        need = cells * bytes_per_cell
        return need, self.memory_limit is None or need <= self.memory_limit

    def _cell_bytes(self, what, n, m, method="mea"):
        """Peak bytes per lattice cell of the dense tables of one n x m
        computation: ``"posterior"`` (the (N, M) output, plus its transposed
        copy when m > n; the general kernels, which local and custom models
        take, keep one more (N, M) lattice per match state while computing
        it), ``"align"`` (the posterior as computed, never copied back,
        then MEA's traceback byte and a local model's MEA weights, or
        Viterbi's traceback, beside the posterior) or ``"traceback"`` (Viterbi: 1 byte, or the general
        kernel's predecessor fields)."""
        kind, trans = self._kind, self._params()["transmat_"]
        if what == "traceback":
            if _kd._is_three_state(kind):
                return 1
            return int(_kd.pred_tables(_log(trans))[5])
        general = _kf._fast_layout(kind, trans)[0] < 0
        post = 8 + (8 * int(np.sum(kind == 0)) if general else 0)
        if what == "posterior":
            return max(post, 16 if m > n else 8)
        after = 8 + (1 + (8 if self.local else 0) if method == "mea" else self._cell_bytes("traceback", n, m))
        return max(post, after)

    def _check_fit_memory(self, xo, yo, n_threads):
        """Refuse an E-step whose largest pair's forward checkpoints (rows of
        every state every ~sqrt(N) rows, along the shorter sequence, one
        pair per thread) would exceed ``memory_limit``."""
        if self.memory_limit is None:
            return
        n, m = np.diff(xo), np.diff(yo)
        short, long_ = np.minimum(n, m), np.maximum(n, m)
        need = 8.0 * max(self.n_states, 5) * (short + 2) * 2 * np.ceil(np.sqrt(long_ + 1))
        k = int(np.argmax(need))
        threads = min(int(n_threads or numba.get_num_threads()), numba.config.NUMBA_NUM_THREADS, len(need))
        total = need[k] * max(1, threads)
        if total > self.memory_limit:
            tail = f"above memory_limit={_fmt_bytes(self.memory_limit)}; fit on shorter pairs or raise memory_limit"
            both = f" ({_fmt_bytes(total)} for {threads} pairs at a time on {threads} threads)" if threads > 1 else ""
            err = MemoryError(f"pairs[{k}] of lengths {n[k]} x {m[k]} needs about {_fmt_bytes(need[k])} "
                              f"for the expected-count tables{both}, {tail}")
            err.remedy = (tail, f"above the {_fmt_bytes(self.memory_limit)} memory guard; use shorter pairs")
            raise err

    def _check_align_memory(self, n, m, method) -> str:
        """What :meth:`align` will do for an n x m pair: ``"posterior"``, or
        ``"viterbi only"`` (Viterbi whose posterior matrix would not fit);
        a MemoryError if it would refuse.  Depends on the lengths only, so
        callers can check every pair before any output."""
        if method == "viterbi" and not self._memory_need(n, m, self._cell_bytes("align", n, m, method))[1]:
            self._check_memory(n, m, self._cell_bytes("traceback", n, m), "traceback")
            return "viterbi only"
        self._check_memory(n, m, self._cell_bytes("align", n, m, method))
        return "posterior"

    def _check_memory(self, n, m, bytes_per_cell, what="posterior"):
        """Refuse pairs whose tables would exceed ``memory_limit`` (one line, with a way out).

        Posterior matrices are dense (n x m float64) whatever the band, two
        of them while :meth:`posterior` transposes a pair with m > n back
        (the kernels compute it with the rows along the longer sequence;
        :meth:`align` uses it as computed); a banded
        Viterbi traceback needs one byte per in-band cell.
        """
        need, fits = self._memory_need(n, m, bytes_per_cell, what)
        limit = self.memory_limit
        if not fits:
            fix = ("align with method='viterbi' and a band (e.g. band=200)" if what == "posterior"
                   else "use a band (e.g. band=200)") + " or raise memory_limit"
            tail = f"above memory_limit={_fmt_bytes(limit)}; {fix}"
            err = MemoryError(
                f"pair of lengths {n} x {m} needs about {_fmt_bytes(need)} for the {what} tables, {tail}")
            # the same remedy in command-line terms (the CLI shows this instead)
            err.remedy = (tail, f"above the {_fmt_bytes(limit)} memory guard; "
                          + ("use --method viterbi --band 200" if what == "posterior"
                             else "use a band (e.g. --band 200)"))
            raise err

    def _band(self):
        return -1 if self.band is None else self.band

    def _params(self) -> dict:
        """The parameter arrays, or an error if none were ever set."""
        if self._p is None:
            raise ValueError("this PairHMM has no parameters yet: call set_params(...) "
                             "(or build it with PairHMM.preset)")
        return self._p

    def _kargs(self):
        p = self._params()  # the writable arrays: the compiled kernels take writable arrays
        return (self._kind, self._etab, p["startprob_"], p["transmat_"], p["endprob_"],
                self._match_odds, self._ins_odds)

    def _log_kargs(self):
        return (self._kind, self._etab, _log(self.startprob_), _log(self.transmat_), _log(self.endprob_),
                _log(self._match_odds), _log(self._ins_odds))

    def _bg(self, x, y):
        return float(self._log_q_codes[x].sum() + self._log_q_codes[y].sum())

    # ------------------------------------------------------------- inference
    def log_odds(self, a, b) -> float:
        """``log P(a, b) - log P_null(a, b)`` (natural log) by the forward algorithm.

        Pairs long enough to lose precision to the per-row scaling are
        computed twice (the second time in reverse) and must agree; one
        that disagrees under every tilt tried is computed in log space
        (README, numerics).  A pair the model gives probability 0 gets
        ``-inf`` (as from :meth:`score` and :meth:`score_pairs`; the
        decoders and ``fit`` refuse it).
        """
        x, _, _ = self._encode(a, "sequence a")
        y, _, _ = self._encode(b, "sequence b")
        return self._forward(x, y)

    def score(self, a, b) -> float:
        """``log P(a, b)`` summed over all alignments (forward), natural log;
        checked as :meth:`log_odds` is; ``-inf`` for a pair of probability
        0."""
        x, _, _ = self._encode(a, "sequence a")
        y, _, _ = self._encode(b, "sequence b")
        return self._forward(x, y) + self._bg(x, y)

    def _forward(self, x, y) -> float:
        lo = float(_kf.forward(*self._kargs(), x, y, self._band()))
        if np.isnan(lo):
            raise ValueError(_lost_forward(len(x), len(y)))
        return lo

    def score_alignment(self, a, b, alignment) -> float:
        """``log P(a, b, alignment)``: summed over the state paths consistent with it.

        Parameters
        ----------
        alignment : Bio.Align.Alignment or (str, str)
            A global alignment of ``a`` and ``b``, or a pair of gapped
            strings (``-`` or ``.`` for gaps; ``Bio.Seq`` objects too; a
            column of two gaps, as two rows of a multiple alignment have, is
            skipped).  For a local model an ``Alignment`` may cover parts of
            the sequences (as :meth:`align` returns them); it is first made
            global by adding the residues before it as unaligned columns,
            those of ``a`` then those of ``b``, and likewise after it.  The
            sum runs over the state paths consistent with that one global
            alignment (flank or insert states for the added columns) -- not
            over the other orders in which the flank states could emit the
            same unaligned residues.  An alignment without any aligned pair
            has probability zero under a local model (its core starts with a
            match): ``-inf``.
        """
        x, x_text, _ = self._encode(a, "sequence a")
        y, y_text, _ = self._encode(b, "sequence b")
        ops = alignment_to_ops(alignment, len(x), len(y), local=self.local, x=x_text, y=y_text)
        return float(_kf.forward_constrained(*self._kargs(), x, y, ops, self._band())) + self._bg(x, y)

    def posterior(self, a, b) -> NDArray:
        """Match posteriors: array of shape (len(a), len(b)), ``P[i, j] = P(a_i ~ b_j | a, b)``."""
        x, _, _ = self._encode(a, "sequence a")
        y, _, _ = self._encode(b, "sequence b")
        self._check_memory(len(x), len(y), self._cell_bytes("posterior", len(x), len(y)))
        lo, P = _kf.posterior(*self._kargs(), x, y, self._band())
        self._check_posterior(lo, x, y)
        return P

    def _check_posterior(self, lo, x, y):
        """A posterior whose forward pass gave probability 0 (confirmed by
        the kernels: see ``pair_fb.posterior``): an error, never a matrix of
        zeros passed on as an answer; NaN only if the log-space fallback
        failed as well (never seen)."""
        if np.isfinite(lo):
            return
        if np.isnan(lo):
            raise ValueError(
                f"the posterior of this pair (lengths {len(x)} x {len(y)}) lost precision under "
                "every tilt tried and in log space; the Viterbi alignment (method 'viterbi') "
                "does not need it")
        raise ValueError(_NO_PATH)

    def _viterbi_ops(self, x, y):
        """(log P(x, y, best path), its column ops); the traceback's memory
        is checked first."""
        self._check_memory(len(x), len(y), self._cell_bytes("traceback", len(x), len(y)), "traceback")
        score, _, ops = _kd.viterbi(*self._log_kargs(), x, y, self._band())
        if not np.isfinite(score):
            raise ValueError(_NO_PATH)
        return float(score) + self._bg(x, y), ops

    def viterbi(self, a, b) -> tuple[float, "object"]:
        """Most probable state path.

        Returns
        -------
        logprob : float
            ``log P(a, b, path)`` of the best path (natural log).
        alignment : Bio.Align.Alignment
        """
        x, xt, xid = self._encode(a, "sequence a")
        y, yt, yid = self._encode(b, "sequence b")
        logprob, ops = self._viterbi_ops(x, y)
        aln = _make_alignment(xt, yt, ops, (xid or "a", yid or "b"), self.local)
        aln.score = logprob
        return logprob, aln

    def align(self, a, b, method: str = "mea"):
        """Align two sequences.

        Parameters
        ----------
        method : {"mea", "viterbi"}
            ``"mea"``: the maximum-expected-accuracy alignment from match
            posteriors (ProbCons-style: maximise the sum of posteriors of
            aligned pairs).  For a local model, the expected number of
            correct columns instead: an aligned pair counts ``2 P[i, j]``
            (one per residue) and a residue left unaligned the probability
            that it is unaligned (the AMA objective of AMAP, Schwartz and
            Pachter 2007, with gap factor 1) -- plain MEA pairs every residue
            with any posterior mass and would leave no end unaligned.
            ``"viterbi"``: the most probable state path.

        Returns
        -------
        Bio.Align.Alignment
            With ``.score`` (Viterbi: log P(a, b, path); MEA: expected number
            of correctly aligned pairs), ``.column_confidence``, an array of
            per-column posterior probabilities (a pair's match posterior, or
            the probability that a residue is unaligned for a gap column),
            ``.mean_confidence``, their mean, and ``.log_odds`` and
            ``.log_likelihood`` (as :meth:`log_odds` and :meth:`score`, from
            the posterior's forward pass: equal to theirs up to rounding,
            both checked; a pair whose scaled passes fail under every tilt
            is computed in log space).  A local model's alignment covers the
            columns from its first to its last aligned pair (unaligned ends
            left out, Biopython's convention for local alignments); when no
            pair is worth aligning (local MEA on unrelated sequences), it
            lists every residue as unaligned and ``.score`` is 0.  With
            ``method="viterbi"``, a pair whose dense posterior matrix would
            exceed ``memory_limit`` (or underflows) is aligned without it:
            the traceback needs one byte per cell of the band, and the
            column confidences are NaN.
        """
        check_choice("method", method, ("mea", "viterbi"))
        x, xt, xid = self._encode(a, "sequence a")
        y, yt, yid = self._encode(b, "sequence b")
        band = self._band()
        if self._check_align_memory(len(x), len(y), method) == "viterbi only":
            return self._align_viterbi_only(x, xt, xid, y, yt, yid)
        # MEA and per-column confidence; a pair whose second sequence is the
        # longer is computed transposed and left so (Q = P.T: no N x M copy)
        lo, Q, flip = _kf.posterior(*self._kargs(), x, y, band, frame=True)
        P = Q.T if flip else Q
        if method == "viterbi" and not np.isfinite(lo):
            return self._align_viterbi_only(x, xt, xid, y, yt, yid)
        self._check_posterior(lo, x, y)
        if method == "mea" and self.local:
            # expected correct columns: a pair counts for its two residues, an
            # unaligned residue for itself (plain MEA would leave no end unaligned)
            gx = 1.0 - P.sum(axis=1)
            gy = 1.0 - P.sum(axis=0)
            W = 2.0 * Q - (gx[None, :] if flip else gx[:, None]) - (gy[:, None] if flip else gy[None, :])
            _, ops = _mea_ops(W, band, flip)
            score = float(P[_pair_index(ops)].sum())
        elif method == "mea":
            ea, ops = _mea_ops(Q, band, flip)
            score = float(ea)
        else:
            score, ops = self._viterbi_ops(x, y)
        aln = _make_alignment(xt, yt, ops, (xid or "a", yid or "b"), self.local)
        aln.score = score
        conf = column_confidence(P, ops)
        if self.local:
            first, stop = core_span(ops)
            conf = conf[first:stop]
        aln.column_confidence = conf
        aln.mean_confidence = float(conf.mean()) if len(conf) else float("nan")
        aln.log_odds = float(lo)
        aln.log_likelihood = float(lo) + self._bg(x, y)
        return aln

    def _align_viterbi_only(self, x, xt, xid, y, yt, yid):
        """``align(method="viterbi")`` without posteriors: when their dense
        matrix would exceed ``memory_limit`` (the traceback needs one byte
        per band cell) or underflows.  Column confidences are NaN."""
        logprob, ops = self._viterbi_ops(x, y)
        aln = _make_alignment(xt, yt, ops, (xid or "a", yid or "b"), self.local)
        aln.score = logprob
        n_cols = len(ops)
        if self.local:
            first, stop = core_span(ops)
            n_cols = stop - first
        aln.column_confidence = np.full(n_cols, np.nan)
        aln.mean_confidence = float("nan")
        # (NaN only if even the log-space fallback failed: the alignment
        # stands without it)
        lo = float(_kf.forward(*self._kargs(), x, y, self._band()))
        aln.log_odds = lo
        aln.log_likelihood = lo + self._bg(x, y)
        return aln

    # ------------------------------------------------------------ batches
    def _encode_pairs(self, pairs):
        xs, ys = [], []
        for k, pair in enumerate(pairs):
            if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise ValueError(f"pairs[{k}] is not a pair of sequences (a, b), got {type(pair).__name__}"
                                 + (f" of length {len(pair)}" if hasattr(pair, "__len__") else ""))
            a, b = pair[0], pair[1]
            xs.append(self._encode(a, f"pairs[{k}][0]")[0])
            ys.append(self._encode(b, f"pairs[{k}][1]")[0])
        if not xs:
            raise ValueError("pairs is empty; give at least one pair of sequences")
        return _concat(xs), _concat(ys)

    def align_many(self, pairs, method: str = "mea", client=None, chunk_size: int | None = None):
        """Align many pairs; an iterator of ``Bio.Align.Alignment`` in input order.

        Streaming: ``pairs`` may be any iterable (a generator over FASTA
        files, :func:`hmmtie.seqio.iter_pairs`); it is consumed ``chunk_size``
        pairs at a time and results are yielded chunk by chunk, so memory is
        bounded by the chunk size, not by the input.

        Parameters
        ----------
        pairs : iterable of (a, b)
        method : {"mea", "viterbi"}
            As :meth:`align`; every alignment equals ``align(a, b, method)``.
        client : dask.distributed.Client, optional
            Align the chunks on the cluster's workers (a bounded number of
            chunks in flight); without one, in this process.
        chunk_size : int, optional
            Pairs per chunk (default :data:`hmmtie.distributed.DEFAULT_CHUNK_SIZE`).

        Raises
        ------
        ValueError, MemoryError
            For a bad pair, naming its number (1-based); the alignments of
            the pairs before it have already been yielded.
        """
        from . import distributed as _dist

        check_choice("method", method, ("mea", "viterbi"))
        _dist.check_client(client)
        size = _dist.DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
        return _dist.align_stream(self, pairs, method, client, size,
                                  _dist.worker_threads(self.n_threads, client))

    def score_pairs(self, pairs) -> NDArray:
        """``log P(a, b)`` for every pair, array of shape (n_pairs,), in parallel;
        checked as :meth:`score` is (a pair that fails every tilt is computed
        in log space)."""
        (xs, xo), (ys, yo) = self._encode_pairs(pairs)
        with numba_threads(self.n_threads, work=int(np.sum(np.diff(xo) * np.diff(yo)))):
            lo = _kf.batch_forward(*self._kargs(), xs, xo, ys, yo, self._band())
        if np.isnan(lo).any():
            bad = int(np.flatnonzero(np.isnan(lo))[0])
            raise ValueError(f"pair {bad + 1} (1-based): "
                             + _lost_forward(int(xo[bad + 1] - xo[bad]), int(yo[bad + 1] - yo[bad])))
        bg = _segment_sums(self._log_q_codes[xs], xo) + _segment_sums(self._log_q_codes[ys], yo)
        return lo + bg

    # ------------------------------------------------------------------ EM
    @property
    def n_free_parameters(self) -> int:
        """Free parameters from the tie maps, for the blocks ``fit`` estimates
        (``params_`` after a fit, otherwise all)."""
        what = getattr(self, "params_", "all")
        n = self._trans.n_free
        if what == "all":
            n += self._match.n_free + (self._insert.n_free if self._insert is not None else 0)
        return n

    def fit(self, pairs, n_iter: int = 50, tol: float = 1e-4, params: str = "all",
            transition_pseudocount: float = 0.0, emission_pseudocount: float = 0.0,
            verbose: bool = False, callback=None, client=None) -> "PairHMM":
        """Estimate parameters by EM over unaligned pairs.

        Parameters
        ----------
        pairs : sequence of (a, b)
            Sequences as str, Bio.Seq.Seq or SeqRecord.
        n_iter : int
        tol : float
            Stop when an iteration improves the objective by less than ``tol``.
        params : {"all", "transitions"}
            Estimate everything, or transitions only (emissions stay put —
            the sensible choice with few or short pairs: a protein match
            table alone has 209 free parameters when symmetric).
        transition_pseudocount, emission_pseudocount : float
            Dirichlet pseudocounts (``alpha - 1``) added to every free cell's
            expected count.
        callback : callable, optional
            Called as ``callback(iteration, objective)`` after each E-step.
        client : dask.distributed.Client, optional
            Run the E-step on the cluster's workers (partitions of
            :data:`hmmtie.distributed.PAIRS_PER_PARTITION` pairs; the M-step
            runs here).  The pairs are cut into the same partitions and
            summed in the same order without a client, so the results are
            identical either way.

        Returns
        -------
        self
            With ``history_`` (the objective after each E-step: the first at
            the starting parameters), ``n_iter_`` (the EM iterations run: the
            M-steps, ``len(history_) - 1``), ``converged_``, ``loglik_`` and
            ``params_``.
        """
        from . import distributed as _dist

        _dist.check_client(client)
        check_choice("params", params, ("all", "transitions"))
        n_iter = check_int("n_iter", n_iter, low=0)
        for name, v in (("tol", tol), ("transition_pseudocount", transition_pseudocount),
                        ("emission_pseudocount", emission_pseudocount)):
            check_number(name, v)
        (xs, xo), (ys, yo) = self._encode_pairs(pairs)
        n_threads = _dist.worker_threads(self.n_threads, client)
        self._check_fit_memory(xo, yo, n_threads)
        bg = float(self._log_q_codes[xs].sum() + self._log_q_codes[ys].sum())
        self.params_ = params
        self.history_ = []
        self.converged_ = False
        band = self._band()
        parts = _dist._Partitions(_dist.pair_partitions(xs, xo, ys, yo), client)
        with numba_threads(self.n_threads), _dist.releasing(parts):
            for it in range(n_iter + 1):
                lo, n_start, n_trans, n_end, n_match, n_ins = _dist.pair_estep(
                    parts, self._kargs(), band, n_threads)
                if not np.all(np.isfinite(lo)):
                    bad = int(np.flatnonzero(~np.isfinite(lo))[0])
                    if np.isnan(lo[bad]):
                        raise ValueError(f"pair {bad + 1} (1-based) lost precision in the E-step: its "
                                         "expected counts failed their checks under every tilt tried "
                                         "and in log space; cannot fit (leave the pair out)")
                    raise ValueError(f"pair {bad + 1} (1-based) has probability 0 under the current "
                                     "parameters; cannot fit")
                objective = float(lo.sum()) + bg + self._log_prior(transition_pseudocount, emission_pseudocount, params)
                self.history_.append(objective)
                if verbose:
                    print(f"EM iteration {it}: objective {objective:.6f}")
                if callback is not None:
                    callback(it, objective)
                if it > 0 and objective - self.history_[-2] < tol:
                    self.converged_ = True
                    break
                if it == n_iter:
                    break
                self._mstep(n_start, n_trans, n_end, n_match, n_ins, transition_pseudocount,
                            emission_pseudocount, params)
        self.n_iter_ = max(len(self.history_) - 1, 0)  # the M-steps
        self.loglik_ = self.history_[-1] - self._log_prior(transition_pseudocount, emission_pseudocount, params) \
            if self.history_ else float("nan")
        self.n_obs_ = int(len(xs) + len(ys))
        return self

    def _log_prior(self, tp, ep, params):
        lp = 0.0
        if tp > 0:
            full = self._trans.expand(self._atoms["trans"])
            free = self._trans.tie != -1
            with np.errstate(divide="ignore"):
                lp += tp * float(np.log(full[free]).sum())
        if ep > 0 and params == "all":
            for block, key in ((self._match, "match"), (self._insert, "insert")):
                if block is None:
                    continue
                full = block.expand(self._atoms[key])
                with np.errstate(divide="ignore"):
                    lp += ep * float(np.log(full[block.tie != -1]).sum())
        return lp

    def _mstep(self, n_start, n_trans, n_end, n_match, n_ins, tp, ep, params):
        S = self.n_states
        counts = np.zeros((S + 1, S + 1))
        counts[0, :S] = n_start
        counts[1:, :S] = n_trans
        counts[1:, S] = n_end
        counts = np.where(self._trans.tie == -1, 0.0, counts + tp)
        self._atoms["trans"] = self._trans.mstep(counts, self._atoms["trans"])
        if params == "all":
            E = _alph.expand_matrix(self._alph)
            A = E.shape[1]
            cm = np.zeros((len(self._match_names), A * A))
            for t in range(len(self._match_names)):
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(self._match_ext[t] > 0, n_match[t] / self._match_ext[t], 0.0)
                cm[t] = (self.match_emissionprob_[t] * (E.T @ ratio @ E)).ravel()
            self._atoms["match"] = self._match.mstep(cm + ep, self._atoms["match"])
            if self._insert is not None:
                ci = np.zeros((len(self._ins_names), A))
                for t in range(len(self._ins_names)):
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratio = np.where(self._ins_ext[t] > 0, n_ins[t] / self._ins_ext[t], 0.0)
                    ci[t] = self.insert_emissionprob_[t] * (E.T @ ratio)
                self._atoms["insert"] = self._insert.mstep(ci + ep, self._atoms["insert"])
        self._refresh()

    # -------------------------------------------------------------- sample
    def sample(self, n_pairs: int = 1, random_state=None) -> list:
        """Draw pairs with their true alignments.

        ``random_state``: None, an integer >= 0 or a ``numpy.random.Generator``.

        Returns
        -------
        list of (str, str, Bio.Align.Alignment)
            For a local model the true alignment covers the core (first to
            last aligned pair), as :meth:`align` returns alignments.  The
            alignments' records are named ``a1``/``b1``, ``a2``/``b2``, ...

        Each draw takes one ``rng.random()`` u and the first index whose
        cumulative probability exceeds u (what ``rng.choice(n, p=p)`` does,
        so the pairs are the ones earlier versions drew for the same seed,
        at ~15x the speed: the tables are built once per call).
        """
        n_pairs = check_int("n_pairs", n_pairs, low=1)
        rng = check_random_state("random_state", random_state)
        letters = self._alph.letters
        S = self.n_states
        A = len(letters)

        def cdf(p):
            c = np.cumsum(p)
            c /= c[-1]
            return c.tolist()

        # rows: Begin, then each state; emissions per state
        t_cdf = [cdf(row) for row in self.trans_]
        e_cdf = []
        for s in range(S):
            t = self._etab[s]
            if self._kind[s] == 0:
                e_cdf.append(cdf(self.match_emissionprob_[t].ravel()))
            else:
                e_cdf.append(cdf(self.insert_emissionprob_[t] if t < len(self._ins_names) else self.background_))
        draw = rng.random
        out = []
        k = 0
        while len(out) < n_pairs:
            k += 1
            if k > 1000 * n_pairs:
                raise ValueError("sampling keeps producing empty sequences; check the end probabilities")
            state = bisect_right(t_cdf[0], draw())
            xs, ys, ops = [], [], []
            while state != S:
                kind = self._kind[state]
                e = bisect_right(e_cdf[state], draw())
                if kind == 0:
                    xs.append(letters[e // A])
                    ys.append(letters[e % A])
                else:
                    (xs if kind == 1 else ys).append(letters[e])
                ops.append(kind)
                state = bisect_right(t_cdf[state + 1], draw())
            if not xs or not ys:
                continue
            x, y = "".join(xs), "".join(ys)
            n = len(out) + 1  # records a1/b1, a2/b2, ... (1-based, as pair numbers are everywhere)
            out.append((x, y, _make_alignment(x, y, np.array(ops, dtype=np.uint8), (f"a{n}", f"b{n}"),
                                              self.local)))
        return out

    # ------------------------------------------------------------ save/load
    @property
    def hypothesis(self) -> str:
        """Plain words for the tie hypotheses in force."""
        g = "symmetric gaps" if self.symmetric_gaps else "asymmetric gaps"
        m = "symmetric match" if self.symmetric_match else "asymmetric match"
        return f"{g}, {m}"

    def tie_summary(self) -> dict:
        """Tie groups and fixed cells of every block, for reports (``hmmtie info``)."""
        out = {}
        for name, block in (("transitions", self._trans), ("match", self._match), ("insert", self._insert)):
            if block is None:
                continue
            groups = {}
            for (r, c), a in np.ndenumerate(block.tie):
                if a >= 0:
                    groups.setdefault(int(a), []).append(f"{block.row_labels[r]}->{block.col_labels[c]}"
                                                          if name == "transitions" else f"{block.row_labels[r]}:{block.col_labels[c]}")
            fixed = [f"{block.row_labels[r]}->{block.col_labels[c]}={block.fixed[r, c]:g}"
                     for r, c in np.argwhere(block.tie == -1)]
            out[name] = {"n_atoms": block.n_atoms, "n_free": block.n_free,
                         "tied": [cells for cells in groups.values() if len(cells) > 1], "fixed": fixed}
        return out

    def to_dict(self) -> dict:
        return {
            "model": "PairHMM",
            "states": [[s.name, s.kind] for s in self.states],
            "alphabet": self._alph.name,
            "preset": self.preset_name,
            "tying": self.tying or {},
            "symmetric_gaps": self.symmetric_gaps,
            "symmetric_match": self.symmetric_match,
            "params": {
                "background": self.background_.tolist(),
                "trans": self.trans_.tolist(),
                "match": self.match_emissionprob_.tolist(),
                "insert": self.insert_emissionprob_.tolist(),
            },
            **({"fit": {"history": self.history_, "converged": self.converged_, "params": self.params_}}
               if getattr(self, "history_", None) else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PairHMM":
        model = cls(
            [tuple(s) for s in d["states"]], alphabet=d["alphabet"], tying=d.get("tying") or None,
            symmetric_gaps=d.get("symmetric_gaps", True), symmetric_match=d.get("symmetric_match", True),
            preset_name=d.get("preset"),
        )
        p = d["params"]
        S = model.n_states
        trans = np.asarray(p["trans"], dtype=float)
        if trans.shape != (S + 1, S + 1):
            raise ValueError(f"transition table has shape {trans.shape}, expected {(S + 1, S + 1)}")
        _check_rows("transition probabilities", trans, ["Begin"] + model._names, model._names + ["End"])
        match, ins = model._checked_emissions(p["match"], p["insert"])
        model._set_params_from_dict(dict(p, match=match, insert=ins))
        fit = d.get("fit")
        if fit is not None and not isinstance(fit, dict):
            raise ValueError(f"'fit' must be an object (history, converged, params), got {fit!r:.60}")
        if fit:
            history = fit.get("history", [])
            if not isinstance(history, list) or not all(
                    isinstance(h, (int, float)) and not isinstance(h, bool) for h in history):
                raise ValueError(f"fit history must be a list of numbers, got {history!r:.60}")
            model.history_ = [float(h) for h in history]
            model.converged_ = check_bool("fit converged", fit.get("converged", False))
            model.params_ = check_choice("fit params", fit.get("params", "all"), ("all", "transitions"))
        return model

    def save(self, path) -> None:
        """Write the model as versioned JSON (same format as the HMMs)."""
        from .modelio import save_model

        save_model(self, path)

    def copy(self) -> "PairHMM":
        new = PairHMM.from_dict(json.loads(json.dumps(self.to_dict())))
        new.band, new.memory_limit, new.n_threads = self.band, self.memory_limit, self.n_threads
        return new

    def with_hypothesis(self, symmetric_gaps: bool | None = None, symmetric_match: bool | None = None) -> "PairHMM":
        """The same model under other tie hypotheses, starting from these parameters.

        Going from tied to untied keeps the values exactly (an untied model
        can hold tied values); going the other way projects them onto the
        ties (an M-step on the current values).  A fitted model's
        ``params_`` (the blocks its fit estimated, which
        :attr:`n_free_parameters` counts) carries over.
        """
        sg = self.symmetric_gaps if symmetric_gaps is None else symmetric_gaps
        sm = self.symmetric_match if symmetric_match is None else symmetric_match
        new = PairHMM(self.states, alphabet=self._alph.name, tying=self.tying, symmetric_gaps=sg,
                      symmetric_match=sm, band=self.band, memory_limit=self.memory_limit,
                      n_threads=self.n_threads, preset_name=self.preset_name)
        new._set_params_from_dict(
            {"background": self.background_, "trans": self.trans_,
             "match": self.match_emissionprob_, "insert": self.insert_emissionprob_},
            symmetrise=True,
        )
        if hasattr(self, "params_"):  # what a fit estimated (n_free_parameters counts those blocks)
            new.params_ = self.params_
        return new

    def __repr__(self):
        name = self.preset_name or f"{self.n_states} states"
        if self.local:
            name += " local"
        return f"PairHMM({name}, alphabet={self._alph.name!r}, {self.hypothesis})"


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def _pair_index(ops) -> tuple[NDArray, NDArray]:
    """(i, j) index arrays of the aligned pairs of column ops."""
    ops = np.asarray(ops)
    i = np.cumsum(ops != 2) - 1
    j = np.cumsum(ops != 1) - 1
    keep = ops == 0
    return i[keep], j[keep]


def _mea_ops(Q, band, flip):
    """:func:`pair_decode.mea` of the pair's matrix ``P`` given ``Q`` = P, or
    ``Q`` = P.T where ``flip``: the same path either way (see its
    ``swapped``), its ops in the pair's own terms."""
    ea, ops = _kd.mea(Q, band, flip)
    if flip:
        ops = np.where(ops == 0, ops, 3 - ops).astype(np.uint8)
    return ea, ops


def _line_sums(P, idx, axis):
    """Sums of the rows (``axis`` 1) or columns (``axis`` 0) ``idx`` of P:
    only those lines are read, 256 at a time (no copy of more), or the
    whole matrix reduced once when they are over a quarter of it."""
    if len(idx) * 4 > P.shape[1 - axis]:
        return P.sum(axis=axis)[idx]
    out = np.empty(len(idx))
    for s in range(0, len(idx), 256):
        k = idx[s:s + 256]
        out[s:s + 256] = (P[k] if axis == 1 else P[:, k]).sum(axis=axis)
    return out


def column_confidence(P: NDArray, ops: NDArray) -> NDArray:
    """Per-column posterior confidence of an alignment given match posteriors ``P``.

    A pair column gets ``P[i, j]``; a column where ``a_i`` is unaligned gets
    ``1 - sum_j P[i, j]``; where ``b_j`` is unaligned, ``1 - sum_i P[i, j]``.
    """
    ops = np.asarray(ops, dtype=np.uint8)
    i = np.cumsum(ops != 2) - 1  # the residue of a at (or before) each column
    j = np.cumsum(ops != 1) - 1
    out = np.empty(len(ops))
    pair, gx, gy = ops == 0, ops == 1, ops == 2
    out[pair] = P[i[pair], j[pair]]
    out[gx] = 1.0 - _line_sums(P, i[gx], 1)
    out[gy] = 1.0 - _line_sums(P, j[gy], 0)
    return np.clip(out, 0.0, 1.0)


def _check_rows(what, arr, labels, columns=None):
    """Finite, non-negative rows summing to 1; ``columns`` names the columns
    in the message (else their index)."""
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: holds NaN or inf")
    if np.any(arr < 0):
        r, c = np.argwhere(arr < 0)[0]
        col = repr(columns[c]) if columns is not None else c
        raise ValueError(f"{what}: row {labels[r]!r}, column {col} is negative ({arr[r, c]:.6g})")
    sums = arr.sum(axis=1)
    bad = np.abs(sums - 1) > 1e-8
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what}: row {labels[r]!r} sums to {sums[r]:.9g}, not 1 (rows are never renormalised)")


def _concat(arrs):
    off = np.zeros(len(arrs) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(a) for a in arrs])
    return np.ascontiguousarray(np.concatenate(arrs).astype(np.uint8)), off


def _segment_sums(values, offsets):
    """Each segment's sum, as ``values[a:b].sum()`` (numpy's pairwise sum,
    as :meth:`PairHMM._bg` takes it), so that a pair's term in a batch is
    the single pair's bit for bit.  (Differences of one running sum carried
    the rounding of every earlier pair: 6.5e-9 nats at pair 6,001; review
    34.)"""
    return np.array([values[a:b].sum() for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())])


def _merge_row_groups(groups: dict, pairs) -> dict:
    """Union of row groups with extra row pairs (mirror twins)."""
    parent = {}

    def find(a):
        while parent.get(a, a) != a:
            a = parent[a]
        return a

    names = {}
    for g, members in groups.items():
        for s in members[1:]:
            parent[find(s)] = find(members[0])
        for s in members:
            names.setdefault(s, g)
    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    members = {}
    for s in set(parent) | set(names) | {p for ab in pairs for p in ab}:
        members.setdefault(find(s), []).append(s)
    out = {}
    for root, ms in members.items():
        if len(ms) < 2:
            continue
        label = "+".join(sorted({names[s] for s in ms if s in names})) or f"twins:{'/'.join(sorted(ms))}"
        out[label] = sorted(ms)
    return out


def _merge_cell_groups(cell_groups: dict, row_groups: dict, cells) -> dict:
    """Cell groups merged with rows tied as wholes (match rows shared and symmetric)."""
    parent = {}

    def find(a):
        while parent.get(a, a) != a:
            a = parent[a]
        return a

    for members in cell_groups.values():
        for c in members[1:]:
            parent[find(c)] = find(members[0])
    for rows in row_groups.values():
        for c in cells:
            for r in rows[1:]:
                parent[find((r, c))] = find((rows[0], c))
    everything = {c for ms in cell_groups.values() for c in ms} | {(r, c) for rows in row_groups.values() for r in rows for c in cells}
    out = {}
    for c in everything:
        out.setdefault(find(c), []).append(c)
    return {f"{root[0]}:{root[1]}": sorted(ms) for root, ms in out.items() if len(ms) > 1}
