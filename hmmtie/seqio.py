"""Sequence and result I/O: FASTA in, alignments and model files out.

The layer between files and the models.  Everything here reports bad input
as a one-line :class:`ValueError` that names the file, the record and the
position, so a command line (or a pipeline) can show it as it is.

Reading
    :func:`read_fasta` (through ``Bio.SeqIO``), :func:`resolve_alphabet`
    (guess or check the alphabet of several files at once),
    :func:`pair_records` (which record goes with which),
    :func:`read_hmm_data` (FASTA, whitespace-separated symbols or numeric
    frames for the plain HMMs), :func:`load_hmm` (a model file or an
    unfitted model spec).
Writing
    :func:`format_alignments` (every ``Bio.Align`` format that makes sense
    for pairs, plus a plain-text view), :func:`alignment_to_dict` (JSON),
    :func:`open_output` / :func:`write_text` (a temporary file renamed on
    success; ``"-"`` is standard output), :func:`save_model`,
    :func:`describe_model` (states, tie groups, fixed cells, free
    parameters).

Heavy imports (numpy, Biopython, the models) happen inside the functions
that need them, so importing this module is cheap.
"""
from __future__ import annotations

import contextlib
import errno
import io
import itertools
import json
import os
import sys
import warnings

from ._validation import is_special_file

__all__ = [
    "ALIGNMENT_FORMATS",
    "HMM_SPEC_KEYS",
    "alignment_identity",
    "alignment_to_dict",
    "describe_model",
    "format_alignments",
    "iter_fasta",
    "iter_pairs",
    "PairStream",
    "StreamError",
    "StreamOutput",
    "load_hmm",
    "open_output",
    "pair_records",
    "read_fasta",
    "read_hmm_data",
    "resolve_alphabet",
    "save_model",
    "write_fasta",
    "write_text",
]

#: Alignment output formats: ``Bio.Align`` writers that hold a pairwise
#: alignment, plus ``"text"`` (Biopython's readable view) and ``"json"``.
ALIGNMENT_FORMATS = (
    "text", "fasta", "clustal", "stockholm", "phylip", "nexus",
    "maf", "sam", "psl", "bed", "chain", "exonerate", "json",
)
#: Formats that hold a single alignment per file (concatenated Clustal
#: blocks are not a Clustal file: Biopython's readers reject them).
SINGLE_ALIGNMENT_FORMATS = ("clustal", "nexus")

#: Keys of an unfitted HMM spec document (see :func:`load_hmm`).
HMM_SPEC_KEYS = ("model", "states", "n_states", "n_symbols", "symbols", "n_features", "tying", "settings")

_OTHER_FORMATS = (
    ("@", "FASTQ"), ("LOCUS", "GenBank"), ("ID ", "EMBL/SwissProt"), ("# STOCKHOLM", "Stockholm"),
    ("CLUSTAL", "Clustal"), ("#NEXUS", "NEXUS"), ("##maf", "MAF"), ("{", "JSON"),
)


def _display(source) -> str:
    if source in (None, "-"):
        return "<stdin>"
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<input>")


def _read_text(source, what: str = "file") -> tuple[str, str]:
    """(text, display name) of a path, ``"-"`` (stdin) or an open text handle."""
    name = _display(source)
    if source in (None, "-"):
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            raise ValueError(f"{name}: is a directory, expected a {what}")
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise ValueError(f"{name}: {what} not found") from None
        except OSError as exc:
            raise ValueError(f"{name}: cannot read {what} ({exc.strerror or exc})") from None
    else:
        data = source.read()
    if isinstance(data, str) and data.startswith("\ufeff"):
        data = data[1:]
    if isinstance(data, bytes):
        if data[:2] == b"\x1f\x8b":
            raise ValueError(f"{name}: gzip-compressed; decompress it first (e.g. zcat {name} > plain.fa), "
                             f"expected a text {what}")
        if b"\x00" in data[:4096]:
            raise ValueError(f"{name}: binary data, expected a text {what}")
        try:
            data = data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is not text
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ValueError(f"{name}: line {line}: not UTF-8 text, expected a text {what}") from None
    if "\r" in data:  # Windows (CRLF) and old Mac (CR) line ends read as the streaming reader does
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    return data, name


# --------------------------------------------------------------------------
# FASTA
# --------------------------------------------------------------------------

def read_fasta(source, *, name: str | None = None) -> list:
    """Read every record of a FASTA file.

    Parameters
    ----------
    source : path, ``"-"`` (standard input) or an open text handle
    name : str, optional
        The name used in error messages (default: the path).

    Returns
    -------
    list of Bio.SeqRecord.SeqRecord
        In file order, at least one, none empty.

    Raises
    ------
    ValueError
        One line naming the file (and the record or line): a missing or
        unreadable file, an empty file, a file that is not FASTA, a file
        with no records, a record of length zero.
    """
    text, shown = _read_text(source, "FASTA file")
    shown = name or shown
    if not text.strip():
        raise ValueError(f"{shown}: file is empty; expected FASTA records ('>name' lines followed by sequence lines)")
    lines = text.splitlines()
    first = next(k for k, line in enumerate(lines) if line.strip())
    head = lines[first].lstrip()
    if not head.startswith(">"):
        for prefix, fmt in _OTHER_FORMATS:
            if head.startswith(prefix):
                raise ValueError(f"{shown}: looks like {fmt}, not FASTA; expected records starting with '>'")
        if ">" not in text:
            raise ValueError(f"{shown}: no FASTA records (no line starts with '>')")
        raise ValueError(
            f"{shown}: line {first + 1}: not FASTA; expected a '>name' header before any sequence, "
            f"got {lines[first].strip()[:30]!r}"
        )
    from Bio import SeqIO

    try:
        records = list(SeqIO.parse(io.StringIO(text), "fasta"))
    except ValueError as exc:  # pragma: no cover - Biopython's own checks
        raise ValueError(f"{shown}: not valid FASTA ({exc})") from None
    if not records:
        raise ValueError(f"{shown}: no FASTA records")
    for k, rec in enumerate(records):
        if len(rec.seq) == 0:
            raise ValueError(f"{shown}: record {k + 1} ({rec.id!r}) is empty (zero length)")
        raw = bytes(rec.seq)
        if not raw.isascii():
            raise ValueError(_non_ascii(shown, k + 1, rec.id, raw.decode("utf-8", "replace")))
        if not rec.id:
            rec.id = f"record{k + 1}"
    return records


def _non_ascii(shown, k, rid, seq: str) -> str:
    """The message for the first non-ASCII character of record k's sequence."""
    pos = next(i for i, ch in enumerate(seq) if not ch.isascii())
    ch = seq[pos]
    if "\udc80" <= ch <= "\udcff":  # a byte that was not UTF-8 (read with surrogateescape)
        return (f"{shown}: byte 0x{ord(ch) - 0xdc00:02x} at position {pos + 1} of record {k} ({rid!r}) is not "
                "UTF-8 text")
    return (f"{shown}: invalid character {ch!r} at position {pos + 1} of record {k} ({rid!r}): "
            "not an ASCII letter")


class StreamError(ValueError):
    """A bad record met while streaming (:func:`iter_fasta`, :class:`PairStream`).

    ``record`` is its 1-based number in its file, ``pairs_done`` how many
    pairs were complete before it (set by :class:`PairStream`).
    """

    def __init__(self, message, record=None, pairs_done=None):
        super().__init__(message)
        self.record = record
        self.pairs_done = pairs_done


def _open_lines(source, shown):
    """(line iterator, closer) of a path, ``"-"`` or a text handle; utf-8, lazy."""
    if source in (None, "-"):
        fh = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", errors="surrogateescape", newline=None) \
            if hasattr(sys.stdin, "buffer") else sys.stdin
        return fh, (lambda: None)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            raise ValueError(f"{shown}: is a directory, expected a FASTA file")
        try:
            # bytes that are not UTF-8 read as lone surrogates, so that the
            # record checks name the record and position (a decoding error
            # would surface one 8 KiB read-ahead early, at another record)
            fh = open(path, "r", encoding="utf-8-sig", errors="surrogateescape")
        except FileNotFoundError:
            raise ValueError(f"{shown}: FASTA file not found") from None
        except OSError as exc:
            raise ValueError(f"{shown}: cannot read FASTA file ({exc.strerror or exc})") from None
        return fh, fh.close
    return source, (lambda: None)


def _not_utf8(text: str) -> bool:
    """Whether text read with errors="surrogateescape" held bytes that are not UTF-8."""
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


def iter_fasta(source, *, name: str | None = None, alphabet=None):
    """Read FASTA records lazily, one at a time (``Bio.SeqIO``'s FASTA parser).

    Memory is one record, whatever the file size.  The same checks as
    :func:`read_fasta`, but a problem deep in the file surfaces only when
    the reader gets there: a :class:`StreamError` naming the file and the
    record number (records before it have been yielded).

    Parameters
    ----------
    source : path, ``"-"`` (standard input) or an open text handle
    name : str, optional
        Name used in messages.
    alphabet : str, optional
        Also check every record's letters against this alphabet.

    Yields
    ------
    Bio.SeqRecord.SeqRecord
    """
    from Bio.Seq import Seq
    from Bio.SeqIO.FastaIO import SimpleFastaParser
    from Bio.SeqRecord import SeqRecord

    shown = name or _display(source)
    alph = None
    if alphabet is not None:
        from . import alphabet as _alph

        alph = _alph.get_alphabet(alphabet)
    lines, close = _open_lines(source, shown)
    k = 0
    try:
        it = iter(lines)
        try:
            first = None
            n_line = 0
            for line in it:
                n_line += 1
                if line.strip():
                    first = line
                    break
        except UnicodeDecodeError:
            raise StreamError(f"{shown}: line {n_line + 1}: not UTF-8 text, expected a text FASTA file", 1) from None
        if first is None:
            raise StreamError(f"{shown}: file is empty; expected FASTA records ('>name' lines followed by "
                              "sequence lines)", 1)
        head = first.lstrip()
        if first.startswith("\x1f\udc8b"):
            raise StreamError(f"{shown}: gzip-compressed; decompress it first (e.g. zcat FILE | hmmtie align - B.fa)",
                              1)
        if _not_utf8(head):
            raise StreamError(f"{shown}: line {n_line}: not UTF-8 text, expected a text FASTA file", 1)
        if not head.startswith(">"):
            for prefix, fmt in _OTHER_FORMATS:
                if head.startswith(prefix):
                    raise StreamError(f"{shown}: looks like {fmt}, not FASTA; expected records starting with '>'", 1)
            raise StreamError(f"{shown}: line {n_line}: no FASTA records here; expected a '>name' header "
                              f"before any sequence, got {first.strip()[:30]!r}", 1)
        parser = SimpleFastaParser(itertools.chain([head], it))
        while True:
            try:
                item = next(parser, None)
            except UnicodeDecodeError:
                raise StreamError(f"{shown}: record {k + 1}: not UTF-8 text (output stopped before it)", k + 1) from None
            except ValueError as exc:
                raise StreamError(f"{shown}: record {k + 1}: not valid FASTA ({exc})", k + 1) from None
            if item is None:
                break
            k += 1
            title, seq = item
            if "\t" in seq or "\v" in seq or "\f" in seq:
                # the parser drops spaces and line ends only; Bio.SeqIO (whole
                # files) drops every whitespace character: read both alike
                seq = "".join(seq.split())
            if _not_utf8(title):
                raise StreamError(f"{shown}: record {k}: the header line is not UTF-8 text", k)
            rid = title.split(None, 1)[0] if title.strip() else f"record{k}"
            if not seq:
                raise StreamError(f"{shown}: record {k} ({rid!r}) is empty (zero length)", k)
            if not seq.isascii():  # Bio.Seq holds ASCII only; name the place, not a codec error
                raise StreamError(_non_ascii(shown, k, rid, seq), k)
            if alph is not None:
                try:
                    _alph.encode(seq, alph, record=rid, source=shown)
                except ValueError as exc:
                    raise StreamError(f"record {k}: {exc}", k) from None
            yield SeqRecord(Seq(seq), id=rid, name=rid, description=title)
    finally:
        close()


def iter_pairs(a, b, *, all_vs_all: bool = False, alphabet: str | None = None, names=None,
               guess_records: int = 1000) -> "PairStream":
    """Pair the records of two FASTA files lazily, in order: a :class:`PairStream`."""
    return PairStream(a, b, all_vs_all=all_vs_all, alphabet=alphabet, names=names, guess_records=guess_records)


class PairStream:
    """Pair the records of two FASTA files lazily, in order (for streaming).

    The pairing rules of :func:`pair_records`: record ``i`` with record
    ``i``; a file with one record pairs with every record of the other;
    ``all_vs_all`` pairs everything (B is then held in memory, A streams).
    Only the first ``guess_records`` records of each file are read up front
    (to guess the alphabet when none is given and to see whether a file
    holds a single record); memory stays one record per file otherwise.

    Iterate to get ``(record_a, record_b)`` tuples.  A bad record deep in a
    file raises :class:`StreamError` naming the file and record number, with
    ``pairs_done`` the number of pairs yielded before it.

    Attributes
    ----------
    alphabet : str
        The alphabet (given, or guessed from the first records).
    n_pairs : int
        Pairs yielded so far.
    """

    def __init__(self, a, b, *, all_vs_all: bool = False, alphabet: str | None = None,
                 names=None, guess_records: int = 1000):
        from . import alphabet as _alph

        if a == "-" and b == "-":
            raise ValueError("only one of A and B can be standard input ('-')")
        self.names = tuple(names) if names else (_display(a), _display(b))
        self.all_vs_all = all_vs_all
        self.n_pairs = 0
        raw = [iter_fasta(src, name=nm) for src, nm in zip((a, b), self.names)]
        heads, self._head_errors, complete = [], [], []
        limit = max(2, guess_records)
        for it in raw:
            head, error = [], None
            try:
                for rec in itertools.islice(it, limit):
                    head.append(rec)
            except StreamError as exc:  # raised when the pairs reach it, unless nothing came before
                error = exc
            if error is not None and not head:
                for r in raw:
                    r.close()
                raise error
            heads.append(head)
            self._head_errors.append(error)
            complete.append(error is None and len(head) < limit)
        if all(complete) and not all_vs_all:  # both files read whole: check the pairing now
            try:
                pair_records(heads[0], heads[1], names=self.names)
            except ValueError:
                for r in raw:
                    r.close()
                raise
        elif not all_vs_all and any(complete):
            # one file ended within the peek, the other holds more: unless the
            # short one has a single record, the counts differ, so say it now
            # rather than after aligning every pair of the shorter file
            short = 0 if complete[0] else 1
            other = 1 - short
            if len(heads[short]) != 1 and len(heads[other]) == limit and self._head_errors[other] is None:
                for r in raw:
                    r.close()
                raise ValueError(
                    f"{self.names[short]} has {len(heads[short])} records but {self.names[other]} has at least "
                    f"{limit}; record i of one file pairs with record i of the other, so give files with "
                    "equal counts, one file with a single record, or --all-vs-all")
        if alphabet is None:
            guesses = []
            for nm, recs in zip(self.names, heads):
                try:
                    guesses.append((nm, _alph.guess_alphabet(recs).name))
                except ValueError as exc:
                    raise ValueError(f"{nm}: {exc}") from None
            if len({g for _, g in guesses}) > 1:
                shown = ", ".join(f"{n} looks like {g}" for n, g in guesses)
                raise ValueError(f"sequence files differ in alphabet ({shown}); give matching files or "
                                 "force one with --alphabet")
            alphabet = guesses[0][1]
        self.alphabet = _alph.get_alphabet(alphabet).name
        self._heads = heads
        self._raw = raw

    def _checked(self, side):
        """Records of one file: the peeked head, then the rest, all alphabet-checked."""
        from . import alphabet as _alph

        alph = _alph.get_alphabet(self.alphabet)
        nm = self.names[side]

        def records():
            yield from self._heads[side]
            if self._head_errors[side] is not None:
                raise self._head_errors[side]
            yield from self._raw[side]

        for k, rec in enumerate(records(), 1):
            try:
                _alph.encode(str(rec.seq), alph, record=rec.id, source=nm)
            except ValueError as exc:
                raise StreamError(f"record {k}: {exc}", k) from None
            yield rec

    def _pairs(self):
        ha, hb = self._heads
        if self.all_vs_all:
            b_all = list(self._checked(1))
            for x in self._checked(0):
                for y in b_all:
                    yield x, y
            return
        single_a = len(ha) == 1 and self._head_errors[0] is None
        single_b = len(hb) == 1 and self._head_errors[1] is None
        if single_a and not single_b:
            x = next(self._checked(0))
            for y in self._checked(1):
                yield x, y
            return
        if single_b and not single_a:
            y = next(self._checked(1))
            for x in self._checked(0):
                yield x, y
            return
        ia, ib = self._checked(0), self._checked(1)
        k = 0
        while True:
            x = next(ia, None)
            y = next(ib, None)
            if x is None and y is None:
                return
            k += 1
            if x is None or y is None:
                short, long_ = (0, 1) if x is None else (1, 0)
                n_long = k + sum(1 for _ in (ib if x is None else ia))  # count the rest (streamed)
                raise StreamError(
                    f"{self.names[short]} has {k - 1} records but {self.names[long_]} has {n_long}; "
                    "record i of one file pairs with record i of the other, so give files with equal counts, "
                    "one file with a single record, or --all-vs-all", k)
            yield x, y

    def __iter__(self):
        try:
            for pair in self._pairs():
                yield pair
                self.n_pairs += 1
        except StreamError as exc:
            exc.pairs_done = self.n_pairs
            raise
        finally:
            for it in self._raw:
                it.close()


def write_fasta(records, path) -> None:
    """Write SeqRecords (or ``(id, sequence)`` pairs) as FASTA, 60 letters a line, atomically."""
    chunks = []
    for rec in records:
        rid, seq = (rec.id, str(rec.seq)) if hasattr(rec, "seq") else (str(rec[0]), str(rec[1]))
        chunks.append(f">{rid}\n")
        chunks.extend(seq[k:k + 60] + "\n" for k in range(0, len(seq), 60))
    write_text(path, "".join(chunks))


def resolve_alphabet(sources, alphabet: str | None = None) -> str:
    """Guess (or check) one alphabet for several FASTA files and validate every record.

    Parameters
    ----------
    sources : list of (name, records)
        File names (for messages) with their records from :func:`read_fasta`.
    alphabet : {"dna", "rna", "protein"}, optional
        Force an alphabet; guessed per file otherwise.

    Returns
    -------
    str
        The alphabet name.

    Raises
    ------
    ValueError
        When the files look like different alphabets (protein against
        DNA), or a record holds a character the alphabet does not accept
        (naming the file, the record and the position).
    """
    from . import alphabet as _alph

    if alphabet is None:
        guesses = []
        for name, records in sources:
            try:
                guess = _alph.guess_alphabet(records).name
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            guesses.append((name, guess))
        kinds = {g for _, g in guesses}
        if len(kinds) > 1:
            shown = ", ".join(f"{n} looks like {g}" for n, g in guesses)
            raise ValueError(f"sequence files differ in alphabet ({shown}); give matching files or force one with --alphabet")
        alphabet = guesses[0][1]
    alph = _alph.get_alphabet(alphabet)
    for name, records in sources:
        for rec in records:
            _alph.encode(str(rec.seq), alph, record=rec.id, source=name)
    return alph.name


def pair_records(a: list, b: list, *, all_vs_all: bool = False, names=("A", "B")) -> list[tuple]:
    """Which record goes with which.

    Record ``i`` of ``a`` pairs with record ``i`` of ``b``; a file with one
    record pairs with every record of the other; ``all_vs_all`` pairs every
    record of ``a`` with every record of ``b``.

    Returns
    -------
    list of (record_a, record_b)

    Raises
    ------
    ValueError
        When the record counts differ (and neither file has one record).
    """
    if all_vs_all:
        return [(x, y) for x in a for y in b]
    if len(a) == len(b):
        return list(zip(a, b))
    if len(a) == 1:
        return [(a[0], y) for y in b]
    if len(b) == 1:
        return [(x, b[0]) for x in a]
    raise ValueError(
        f"{names[0]} has {len(a)} records but {names[1]} has {len(b)}; record i of one file pairs with "
        "record i of the other, so give files with equal counts, one file with a single record, or --all-vs-all"
    )


# --------------------------------------------------------------------------
# alignments out
# --------------------------------------------------------------------------

def _gapped(alignment) -> tuple[str, str]:
    return str(alignment[0]), str(alignment[1])


def alignment_identity(alignment, alphabet=None) -> dict:
    """Identity of a pairwise alignment.

    Parameters
    ----------
    alignment : Bio.Align.Alignment
    alphabet : str or Alphabet, optional
        The sequences' alphabet: its ambiguity codes that stand for more
        than one letter (N, R, Y, ... for nucleotides; X, B, Z, J for
        proteins; not U or O) never count as identities
        (``N`` against ``N`` is not an identical residue).  Without it,
        every equal pair of letters counts.

    Returns
    -------
    dict
        ``identities`` (identical aligned pairs, case-insensitive, ambiguity
        codes excluded), ``aligned_pairs``, ``columns``, ``identity``
        (identities / columns, the EMBOSS convention; 0 for an empty
        alignment).
    """
    vague = set()
    if alphabet is not None:
        from .alphabet import get_alphabet

        vague = {c for c, s in get_alphabet(alphabet).ambiguity.items() if len(s) > 1}
    gx, gy = _gapped(alignment)
    pairs = [(a.upper(), b.upper()) for a, b in zip(gx, gy) if a != "-" and b != "-"]
    ident = sum(a == b and a not in vague for a, b in pairs)
    cols = len(gx)
    return {"identities": ident, "aligned_pairs": len(pairs), "columns": cols,
            "identity": ident / cols if cols else 0.0}


def alignment_to_dict(alignment, *, confidence: bool = True) -> dict:
    """A pairwise ``Bio.Align.Alignment`` as plain JSON-able values.

    Keys: ``ids``, ``aligned`` (the two gapped strings), ``coordinates``,
    ``score``, and, when the alignment carries them (``PairHMM.align``),
    ``mean_confidence`` and ``column_confidence`` (one value per column).
    """
    import numpy as np

    out = {
        "ids": [alignment.sequences[0].id if hasattr(alignment.sequences[0], "id") else "a",
                alignment.sequences[1].id if hasattr(alignment.sequences[1], "id") else "b"],
        "aligned": list(_gapped(alignment)),
        "coordinates": np.asarray(alignment.coordinates).tolist(),
    }
    score = getattr(alignment, "score", None)
    if score is not None:
        out["score"] = float(score)
    if confidence and getattr(alignment, "column_confidence", None) is not None:
        out["mean_confidence"] = float(alignment.mean_confidence)
        out["column_confidence"] = [round(float(c), 6) for c in alignment.column_confidence]
    return out


def _prepared(alignment, molecule_type: str | None):
    """A copy-free tweak so every Biopython writer accepts a fresh alignment."""
    if not hasattr(alignment, "column_annotations"):
        alignment.column_annotations = {}
    if molecule_type:
        for rec in alignment.sequences:
            if hasattr(rec, "annotations"):
                rec.annotations.setdefault("molecule_type", molecule_type)
    return alignment


def check_alignment_count(fmt: str, n: int) -> None:
    """Refuse several alignments for a format that holds one per file."""
    if fmt in SINGLE_ALIGNMENT_FORMATS and n != 1:
        raise ValueError(f"format {fmt} holds one alignment per file, got {n} pairs; "
                         "use stockholm, maf or json for several pairs")


#: Formats whose readers need the rows of one alignment to have distinct
#: names (Biopython's Stockholm reader fails; PHYLIP, NEXUS and Clustal
#: key rows by name).
DISTINCT_NAME_FORMATS = ("stockholm", "phylip", "nexus", "clustal")


#: Formats made of aligned blocks: an alignment without an aligned pair
#: has no valid record in them (Biopython's PSL writer fails, its BED
#: record cannot be read back).
BLOCK_FORMATS = ("psl", "bed")


def aligned_pairs(alignment) -> int:
    """The number of columns that pair two residues."""
    gx, gy = _gapped(alignment)
    return sum(a != "-" and b != "-" for a, b in zip(gx, gy))


#: Formats whose writers cut names: (label, characters kept).
_NAME_LIMITS = {"phylip": ("PHYLIP", 10), "clustal": ("Clustal", 30)}


def check_distinct_names(fmt: str, name_a, name_b, k: int) -> None:
    """Pair ``k``'s two sequences must be named differently in
    :data:`DISTINCT_NAME_FORMATS`: an error, never a renamed row."""
    if fmt in DISTINCT_NAME_FORMATS and name_a is not None and name_a == name_b:
        raise ValueError(f"pair {k}: both sequences are named {name_a!r}, and {fmt} needs distinct row "
                         "names to be read back; rename the records or use another format "
                         "(fasta, json, text)")
    label, keep = _NAME_LIMITS.get(fmt, (None, 0))  # what the writer keeps of a name
    if keep and name_a is not None and name_b is not None and str(name_a)[:keep] == str(name_b)[:keep]:
        raise ValueError(f"pair {k}: {label} keeps {keep} characters of a name, and {name_a!r} and "
                         f"{name_b!r} would both be {str(name_a)[:keep]!r}; rename the records or use another "
                         "format (stockholm, fasta, json)")


#: Protein letters the NEXUS protein symbols lack (Biopython's reader
#: refuses them; B, Z and X are symbols).
NEXUS_NO_SYMBOL = frozenset("JOUjou")


def format_alignments(alignments, fmt: str, *, alphabet: str | None = None, first: int = 1) -> str:
    """Write pairwise alignments in one of :data:`ALIGNMENT_FORMATS` (not ``json``).

    ``"text"`` is Biopython's readable view (``str(alignment)``), one block
    per pair.  The other names are ``Bio.Align`` writers; formats that hold
    several alignments per file (stockholm, maf, sam, psl, bed, chain,
    exonerate) write them as one file; fasta and phylip write one block after
    another (PHYLIP's multiple data sets: ``Bio.AlignIO.parse(path,
    "phylip")`` reads them back); clustal and nexus hold exactly one.

    Parameters
    ----------
    alignments : list of Bio.Align.Alignment
    fmt : str
    alphabet : {"dna", "rna", "protein"}, optional
        Sets the molecule type some writers need (nexus).
    first : int
        The number of the first pair, for messages (a stream written pair by
        pair).
    """
    alignments = list(alignments)
    if fmt not in ALIGNMENT_FORMATS or fmt == "json":
        allowed = ", ".join(f for f in ALIGNMENT_FORMATS if f != "json")
        raise ValueError(f"alignment format must be one of {allowed}, got {fmt!r}")
    if fmt == "text":
        return "\n".join(str(a) for a in alignments)
    check_alignment_count(fmt, len(alignments))
    for k, a in enumerate(alignments, first):
        check_distinct_names(fmt, *(getattr(r, "id", None) for r in a.sequences), k)
        if fmt == "nexus" and alphabet == "protein":
            bad = sorted({c.upper() for r in a.sequences for c in set(str(r.seq)) & NEXUS_NO_SYMBOL})
            if bad:
                raise ValueError(f"pair {k}: NEXUS protein data has no symbol for {', '.join(bad)}; use another "
                                 "format (fasta, stockholm, json)")
        if fmt in BLOCK_FORMATS and not aligned_pairs(a):
            names = " vs ".join(str(getattr(r, "id", "?")) for r in a.sequences)
            raise ValueError(f"pair {k} ({names}): no residue is aligned (a local alignment of "
                             f"unrelated sequences), which format {fmt} cannot hold; use json, "
                             "stockholm, maf, sam or text")
    from Bio import Align

    moltype = {"dna": "DNA", "rna": "RNA", "protein": "protein"}.get(alphabet or "", None)
    handle = io.StringIO()
    Align.write([_prepared(a, moltype) for a in alignments], handle, fmt)
    return handle.getvalue()


# --------------------------------------------------------------------------
# writing files
# --------------------------------------------------------------------------

@contextlib.contextmanager
def open_output(path, *, binary: bool = False):
    """A handle for ``path`` written to a temporary file beside it and renamed on success.

    ``"-"`` or None is standard output (never closed).  If the block
    raises, the temporary file is removed and ``path`` is left untouched.
    """
    if path in (None, "-"):
        stream = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return
    path = os.fspath(path)
    if is_special_file(path):  # /dev/null, a pipe, a link: written directly, never replaced
        try:
            with open(path, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
                yield fh
        except OSError as exc:
            _raise_write_error(path, exc)
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"{path}: cannot write, directory {directory} does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        fh = open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        try:
            with fh:
                yield fh
        except OSError as exc:
            _raise_write_error(path, exc)
        try:
            os.replace(tmp, path)
        except OSError as exc:  # a folder at path, say: name it, not the temporary file
            raise ValueError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


#: errors of writing (a full disk or device, an I/O error, a file too
#: large, a quota): named with the output's path; any other OSError from
#: the block passes through as it is
_WRITE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _raise_write_error(path, exc):
    if exc.errno in _WRITE_ERRNOS and not exc.filename:
        raise ValueError(f"{path}: cannot write ({exc.strerror or exc})") from None
    raise exc


#: Integer symbol codes in HMM data files run below this: the model has a
#: symbol for every code up to the largest, so one stray huge code would
#: make an emission table of that many columns.
MAX_CODE = 2**20


#: Alignment formats whose files are the concatenation of one file per
#: alignment, so they can be written while alignments stream in.
STREAMABLE_FORMATS = ("text", "json", "fasta", "stockholm", "phylip", "sam", "bed", "chain")


class OutputError(ValueError):
    """Writing a result failed (a full disk...); the message names the path."""


class StreamOutput:
    """Output for streamed results: a temporary file renamed on success.

    Unlike :func:`open_output`, a failure after some results were written
    keeps them: the temporary file becomes ``PATH.partial`` (``path`` itself
    is left untouched), and :attr:`partial` names it.  ``"-"`` is standard
    output, written as results come.
    """

    def __init__(self, path):
        self.path = path
        self.partial = None
        self.wrote = False
        self._cm = None

    def __enter__(self):
        self._direct = self.path not in (None, "-") and is_special_file(self.path)
        self._cm = open_output(self.path)
        self.fh = self._cm.__enter__()
        self._size = 0  # bytes of whole results written (regular files)
        return self

    def write(self, text: str) -> None:
        """Write one whole result.  If the disk fills (or another write
        error), the file is cut back to the end of the previous result and
        an :class:`OutputError` names the path: a ``.partial`` never ends in
        half a result."""
        if not text:
            return
        if self.path in (None, "-") or self._direct:
            self.fh.write(text)  # standard output, a device or a pipe: a closed pipe is the caller's
            self.wrote = True
            return
        # a regular file: unbuffered writes, so that nothing half-written
        # waits in a buffer to be flushed at close
        raw = self.fh.buffer.raw
        encoded = text.encode("utf-8")
        data = memoryview(encoded)
        try:
            while data:
                n = raw.write(data)
                data = data[n:]
        except OSError as exc:
            try:
                os.ftruncate(raw.fileno(), self._size)
                raw.seek(self._size)
            except OSError:
                pass
            raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
        self._size += len(encoded)
        self.wrote = True

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.path not in (None, "-") and not self._direct:
            stale = os.fspath(self.path) + ".partial"
            if os.path.isfile(stale) and not os.path.islink(stale):
                # left by an earlier run that stopped: it would sit beside the
                # complete output and look like part of it
                os.remove(stale)
                warnings.warn(f"removed {stale}, left by an earlier run that stopped", RuntimeWarning,
                              stacklevel=2)
        if exc_type is None or self.path in (None, "-") or not self.wrote or self._direct:
            return self._cm.__exit__(exc_type, exc, tb)  # (a device or pipe: nothing to keep)
        # keep what was written beside the output, then let open_output clean up
        self.fh.flush()
        partial = os.fspath(self.path) + ".partial"
        tmp = self.fh.name
        self.fh.close()
        os.replace(tmp, partial)
        self.partial = partial
        return self._cm.__exit__(exc_type, exc, tb)


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``"-"``: standard output)."""
    with open_output(path) as fh:
        fh.write(text)


# --------------------------------------------------------------------------
# model files
# --------------------------------------------------------------------------

def save_model(model, path, *, symbols=None) -> None:
    """Write a model file (versioned JSON) atomically; ``"-"`` is standard output.

    ``symbols`` (the names of a categorical HMM's symbols, in code order)
    are stored beside the model so that FASTA or named-symbol input maps to
    the same codes when the file is used again.
    """
    from .modelio import model_to_json

    doc = json.loads(model_to_json(model))
    if symbols is not None:
        doc["symbols"] = list(symbols)
    write_text(path, json.dumps(doc, indent=1) + "\n")


def _symbol_list(value, where: str) -> list[str]:
    if isinstance(value, str):
        from . import alphabet as _alph

        if value in ("dna", "rna", "protein"):
            return list(_alph.get_alphabet(value).letters)
        value = list(value)
    if isinstance(value, list) and all(isinstance(s, (str, int)) for s in value):
        out = [str(s) for s in value]
        if len(set(out)) != len(out):
            raise ValueError(f"{where}: \"symbols\" lists a symbol twice")
        return out
    raise ValueError(f"{where}: \"symbols\" must be a string of letters, an alphabet name or a list of names")


def load_hmm(path, *, allow_pair: bool = False):
    """Load an HMM from a model file or an unfitted spec.

    A *model file* is what :func:`save_model` (or ``model.save``) writes.
    A *spec* is a small JSON document that names the structure only::

        {"model": "CategoricalHMM",            # or "GaussianHMM"
         "states": ["fair", "loaded"],          # or "n_states": 2
         "symbols": ["1", "2", "3", "4", "5", "6"],  # or "n_symbols": 6;
                                                # a string "ACGT" or "dna"/"protein" also works
         "n_features": 1,                       # GaussianHMM (optional)
         "tying": {...},                        # hmmtie.tying.compile_hmm_spec
         "settings": {"n_iter": 100, "tol": 1e-4, "random_state": 0}}

    With ``"symbols"``, the fixed emission cells of ``"tying"`` name their
    symbol (``["loaded", "6", 0.5]``); with ``"n_symbols"`` they give its
    code (0-based).  With ``allow_pair`` a pair-HMM model file is accepted too (for reports).

    Returns
    -------
    model : CategoricalHMM or GaussianHMM (or PairHMM with ``allow_pair``)
    symbols : list of str or None
        Symbol names in code order (categorical), when known.
    fitted : bool
        Whether the document carries parameters.
    """
    text, shown = _read_text(path, "model file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{shown}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{shown}: expected a JSON object (a model file or an HMM spec)")
    symbols = _symbol_list(doc["symbols"], shown) if doc.get("symbols") is not None else None
    if "format" in doc:
        from .modelio import model_from_dict

        model = model_from_dict(doc, source=shown)
        if type(model).__name__ not in ("CategoricalHMM", "GaussianHMM") and not allow_pair:
            raise ValueError(f"{shown}: holds a {type(model).__name__}; 'hmmtie hmm' works with CategoricalHMM "
                             "and GaussianHMM (use 'hmmtie align' for pair HMMs)")
        if symbols is not None:
            if type(model).__name__ != "CategoricalHMM":
                raise ValueError(f"{shown}: \"symbols\" belongs to CategoricalHMM model files")
            if len(symbols) != model.n_symbols:
                raise ValueError(f"{shown}: \"symbols\" lists {len(symbols)} symbols but the emission table "
                                 f"has {model.n_symbols} columns")
        return model, symbols, True
    unknown = sorted(set(doc) - set(HMM_SPEC_KEYS))
    if unknown:
        raise ValueError(f"{shown}: unknown key(s) {unknown} in HMM spec; allowed: {', '.join(HMM_SPEC_KEYS)}")
    kind = doc.get("model")
    if kind not in ("CategoricalHMM", "GaussianHMM"):
        raise ValueError(f"{shown}: \"model\" must be \"CategoricalHMM\" or \"GaussianHMM\", got {kind!r}")
    settings = doc.get("settings") or {}
    if not isinstance(settings, dict):
        raise ValueError(f"{shown}: \"settings\" must be an object")
    from . import CategoricalHMM, GaussianHMM

    kwargs = dict(settings)
    kwargs.update(states=doc.get("states"), tying=doc.get("tying"))
    n_states = doc.get("n_states")
    try:
        # the models check these when they fit; here the message can name the file
        from ._validation import check_int, check_number

        if "n_iter" in settings:
            check_int('"settings" n_iter', settings["n_iter"], low=0)
        if "tol" in settings:
            check_number('"settings" tol', settings["tol"])
        if kind == "CategoricalHMM":
            n_symbols = doc.get("n_symbols")
            if symbols is not None:
                if n_symbols is not None and n_symbols != len(symbols):
                    raise ValueError(f"\"n_symbols\" is {n_symbols} but \"symbols\" lists {len(symbols)}")
                n_symbols = len(symbols)
            if "n_features" in doc:
                raise ValueError("\"n_features\" belongs to GaussianHMM specs")
            if symbols is not None:
                kwargs["tying"] = _named_emission_cells(kwargs["tying"], symbols)
            model = CategoricalHMM(n_states, n_symbols=n_symbols, **kwargs)
        else:
            if symbols is not None or "n_symbols" in doc:
                raise ValueError("\"symbols\"/\"n_symbols\" belong to CategoricalHMM specs")
            model = GaussianHMM(n_states, n_features=doc.get("n_features"), **kwargs)
        _check_spec_settings(model, settings)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{shown}: {str(exc).splitlines()[0]}") from None
    return model, symbols, False


def _check_spec_settings(model, settings):
    """The settings that fit would check only once it runs, checked where the
    message can name the spec file (review 33); and a spec has no
    parameters, so ``init_params`` must initialise them all."""
    from ._validation import check_random_state
    from .hmm import _check_prior

    if "random_state" in settings:
        check_random_state('"settings" random_state', settings["random_state"])
    k = model.n_components
    for name, shape in (("startprob_prior", (k,)), ("transmat_prior", (k, k))):
        if name in settings:
            _check_prior(f'"settings" {name}', settings[name], shape)
    if "emissionprob_prior" in settings and getattr(model, "n_symbols", None) is not None:
        _check_prior('"settings" emissionprob_prior', settings["emissionprob_prior"], (k, model.n_symbols))
    ip = settings.get("init_params")
    if isinstance(ip, str) and set(model._param_letters) - set(ip):
        missing = "".join(c for c in model._param_letters if c not in ip)
        raise ValueError(f'"settings" init_params {ip!r} leaves {missing!r} uninitialised, but a spec has no '
                         f"parameters to keep (give {model._param_letters!r}, or fit from a model file)")


def _named_emission_cells(tying, symbols):
    """A spec's fixed emission cells ``[state, symbol, value]`` name their
    symbol from the spec's ``"symbols"``; here they become the codes the
    library takes.  An integer is refused (review 33: with symbols "1".."6",
    the code 1 fixed the symbol "2" without a word)."""
    fixed = tying.get("fixed") if isinstance(tying, dict) else None
    cells = fixed.get("emissionprob") if isinstance(fixed, dict) else None
    if not isinstance(cells, list):
        return tying  # the library checks the spec's shape
    code = {name: k for k, name in enumerate(symbols)}
    named = []
    for entry in cells:
        if isinstance(entry, list) and len(entry) == 3:
            sym = entry[1]
            if not isinstance(sym, str):
                raise ValueError(f"tying['fixed']['emissionprob']: symbol {sym!r} of state {entry[0]!r}: name it "
                                 "as \"symbols\" does (integer codes are for specs with \"n_symbols\")")
            if sym not in code:
                raise ValueError(f"tying['fixed']['emissionprob']: symbol {sym!r} of state {entry[0]!r} is not "
                                 f"one of \"symbols\" ({', '.join(symbols)})")
            entry = [entry[0], code[sym], entry[2]]
        named.append(entry)
    return {**tying, "fixed": {**fixed, "emissionprob": named}}


# --------------------------------------------------------------------------
# HMM data
# --------------------------------------------------------------------------

def read_hmm_data(source, *, kind: str = "categorical", symbols=None, input_format: str = "auto",
                  n_symbols=None):
    """Sequences for the plain HMMs.

    Three input forms:

    ``fasta``
        Categorical only; each letter is mapped to its index in
        ``symbols`` (so the model must know its symbols).
    ``symbols``
        Categorical: one sequence per line, symbols separated by
        whitespace: names from ``symbols`` when the model names its
        symbols, integer codes ``0 .. n_symbols-1`` otherwise.
    ``frames``
        Gaussian: one frame per line (``n_features`` numbers separated by
        whitespace); a blank line ends a sequence.

    Lines starting with ``#`` are comments.  ``auto`` picks ``fasta`` when
    the first line starts with ``>``, otherwise ``symbols`` or ``frames``
    by ``kind``.  ``n_symbols`` (the model's alphabet size, when it names no
    symbols) makes a code outside ``0 .. n_symbols-1`` an error naming its
    line and position.

    Returns
    -------
    sequences : list of arrays
        Integer arrays of shape (n,) (categorical) or float arrays of shape
        (n, n_features) (Gaussian).
    ids : list of str
        FASTA record ids, or ``seq1``, ``seq2``, ... (1-based line or block
        numbers).
    """
    import numpy as np

    if kind not in ("categorical", "gaussian"):
        raise ValueError(f"kind must be 'categorical' or 'gaussian', got {kind!r}")
    if input_format not in ("auto", "fasta", "symbols", "frames"):
        raise ValueError(f"input format must be auto, fasta, symbols or frames, got {input_format!r}")
    text, shown = _read_text(source, "sequence file")
    if not text.strip():
        raise ValueError(f"{shown}: file is empty; expected sequences")
    if input_format == "auto":
        first = text.lstrip()
        input_format = "fasta" if first.startswith(">") else ("symbols" if kind == "categorical" else "frames")
    if kind == "gaussian" and input_format != "frames":
        raise ValueError(f"{shown}: a GaussianHMM reads numeric frames (one frame per line, blank line between "
                         f"sequences), not {input_format}")
    if kind == "categorical" and input_format == "frames":
        raise ValueError(f"{shown}: a CategoricalHMM reads symbols or FASTA, not frames")
    index = {s: k for k, s in enumerate(symbols)} if symbols is not None else None
    if input_format == "fasta":
        if index is None:
            raise ValueError(f"{shown}: FASTA input needs the model's symbol names; add \"symbols\" "
                             "(e.g. \"ACGT\") to the model spec")
        records = read_fasta(io.StringIO(text), name=shown)
        seqs, ids = [], []
        for k, rec in enumerate(records):
            codes = np.empty(len(rec.seq), dtype=np.int64)
            for pos, ch in enumerate(str(rec.seq)):
                code = index.get(ch, index.get(ch.upper()))
                if code is None:
                    raise ValueError(f"{shown}: record {k + 1} ({rec.id!r}), position {pos + 1}: symbol {ch!r} "
                                     f"is not one of the model's symbols {''.join(symbols)!r}")
                codes[pos] = code
            seqs.append(codes)
            ids.append(rec.id)
        return seqs, ids
    seqs, ids = [], []
    if input_format == "symbols":
        for lineno, line in enumerate(text.splitlines(), 1):
            tokens = line.split()
            if not tokens or tokens[0].startswith("#"):
                continue
            codes = np.empty(len(tokens), dtype=np.int64)
            for pos, tok in enumerate(tokens):
                if index is not None:
                    if tok not in index:
                        raise ValueError(f"{shown}: line {lineno}, symbol {pos + 1}: {tok!r} is not one of the "
                                         f"model's symbols {' '.join(symbols)}")
                    codes[pos] = index[tok]
                    continue
                digits = tok[1:] if tok.startswith("-") else tok
                if not (digits.isascii() and digits.isdigit()):  # int() would take '1_0' and other digits
                    raise ValueError(f"{shown}: line {lineno}, symbol {pos + 1}: {tok!r} is not an integer code "
                                     "(the model names no symbols)")
                if tok.startswith("-"):
                    raise ValueError(f"{shown}: line {lineno}, symbol {pos + 1}: code {tok} is negative")
                if len(digits) > 9 or int(digits) >= MAX_CODE:
                    raise ValueError(f"{shown}: line {lineno}, symbol {pos + 1}: code {tok} is too large "
                                     f"(codes run from 0 to {MAX_CODE - 1}; every code up to the largest is "
                                     "a symbol of the model)")
                if n_symbols is not None and int(digits) >= n_symbols:
                    raise ValueError(f"{shown}: line {lineno}, symbol {pos + 1}: code {tok} is outside the "
                                     f"model's {n_symbols} symbols (codes 0 to {n_symbols - 1})")
                codes[pos] = int(digits)
            seqs.append(codes)
            ids.append(f"seq{len(seqs)}")
        if not seqs:
            raise ValueError(f"{shown}: no sequences (every line is blank or a comment)")
        return seqs, ids
    block: list = []
    width = None

    def flush():
        if block:
            seqs.append(np.array(block, dtype=float))
            ids.append(f"seq{len(seqs)}")
            block.clear()

    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if tokens and tokens[0].startswith("#"):
            continue
        if not tokens:
            flush()
            continue
        try:
            frame = [float(t) for t in tokens]
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise ValueError(f"{shown}: line {lineno}: {bad!r} is not a number") from None
        if not all(np.isfinite(frame)):
            raise ValueError(f"{shown}: line {lineno}: frames must be finite numbers (no nan or inf)")
        if width is None:
            width = len(frame)
        elif len(frame) != width:
            raise ValueError(f"{shown}: line {lineno}: {len(frame)} numbers, but earlier frames have {width}")
        block.append(frame)
    flush()
    if not seqs:
        raise ValueError(f"{shown}: no frames (every line is blank or a comment)")
    return seqs, ids


def _is_float(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------
# model reports
# --------------------------------------------------------------------------

def _block_summary(block, sep: str, cols=None) -> dict:
    import numpy as np

    cols = block.col_labels if cols is None else cols
    groups: dict[int, list[str]] = {}
    for (r, c), a in np.ndenumerate(block.tie):
        if a >= 0:
            groups.setdefault(int(a), []).append(f"{block.row_labels[r]}{sep}{cols[c]}")
    fixed = [f"{block.row_labels[r]}{sep}{cols[c]}={block.fixed[r, c]:g}"
             for r, c in np.argwhere(block.tie == -1)]
    return {"n_atoms": int(block.n_atoms), "n_free": int(block.n_free),
            "tied": [cells for cells in groups.values() if len(cells) > 1], "fixed": fixed}


def describe_model(model, symbols=None) -> dict:
    """States, tie groups, fixed cells and free parameters of a model, as plain values.

    ``symbols``: a categorical HMM's symbol names (as :func:`load_hmm`
    returns them), which then name the emission cells instead of their
    codes (``loaded1:6``, not ``loaded1:5``).

    Returns
    -------
    dict
        ``model`` (class name), ``states``, ``blocks`` (per parameter block:
        ``n_atoms``, ``n_free``, ``tied`` — lists of cells sharing one
        value, ``fixed`` — cells with their fixed values),
        ``n_free_parameters``; pair HMMs add ``alphabet``, ``preset``,
        ``local`` and ``hypothesis``; HMMs add ``emission_groups``.
    """
    kind = type(model).__name__
    out: dict = {"model": kind}
    if kind == "PairHMM":
        out["states"] = [[s.name, s.kind] for s in model.states]
        out["alphabet"] = model.alphabet if isinstance(model.alphabet, str) else str(model.alphabet)
        out["preset"] = model.preset_name
        out["local"] = model.local
        out["hypothesis"] = model.hypothesis
        out["blocks"] = model.tie_summary()
        out["n_free_parameters"] = int(model.n_free_parameters)
        return out
    tie = model.tie_
    out["states"] = list(tie.states)
    blocks = {"start": _block_summary(tie.start, ":"), "transitions": _block_summary(tie.trans, "->")}
    if tie.emission is not None:
        names = list(symbols) if symbols is not None and len(symbols) == tie.emission.tie.shape[1] else None
        blocks["emissions"] = _block_summary(tie.emission, ":", names)
    out["blocks"] = blocks
    out["emission_groups"] = [
        {"name": g.name, "states": [tie.states[s] for s in g.states], "share": g.share,
         **({"soft": g.soft} if g.soft is not None else {})}
        for g in tie.emission_groups
    ]
    if kind == "GaussianHMM":
        out["n_means"], out["n_covars"] = int(tie.n_means), int(tie.n_covars)
    try:
        out["n_free_parameters"] = int(model.n_free_parameters)
    except ValueError:  # a Gaussian spec before its frame width is known
        out["n_free_parameters"] = None
    return out
