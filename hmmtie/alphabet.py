"""Sequence alphabets: encoding to uint8 codes, ambiguity codes, odds tables.

Each alphabet has ``A`` canonical letters, encoded 0..A-1, followed by its
ambiguity codes, encoded A..n_codes-1.  Encoding is case-insensitive.  An
ambiguity code emits with the *summed* probability of the letters it stands
for (it is marginalised), so the extended odds tables are

    p(c, d) = sum_{a in c, b in d} p(a, b),   q(c) = sum_{a in c} q(a),
    odds(c, d) = p(c, d) / (q(c) q(d)).

In EM, expected counts of ambiguity codes go back to the canonical letters in
proportion to the current probabilities (:func:`split_code_counts`).

Alphabet decisions
------------------
* ``dna``: ACGT plus IUPAC N R Y S W K M B D H V.  ``U`` is *not* accepted
  (use ``rna``); the error says so.
* ``rna``: ACGU plus the same IUPAC codes (with U in place of T).  ``T`` is
  not accepted.
* ``protein``: the 20 amino acids ``ARNDCQEGHILKMFPSTWYV`` plus X (any),
  B (D or N), Z (E or Q), J (I or L), and, as in HMMER/Easel, U
  (selenocysteine) read as C and O (pyrrolysine) read as K.  Stop ``*``,
  gaps ``-``/``.`` and anything else are errors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Alphabet",
    "DNA",
    "RNA",
    "PROTEIN",
    "ALPHABETS",
    "get_alphabet",
    "encode",
    "decode",
    "guess_alphabet",
    "expand_matrix",
    "extend_match_odds",
    "extend_ins_odds",
    "split_code_counts",
]

INVALID = 255


@dataclass(frozen=True)
class Alphabet:
    """A sequence alphabet.

    Parameters
    ----------
    name : str
        ``"dna"``, ``"rna"`` or ``"protein"``.
    letters : str
        Canonical letters, in code order (codes 0..A-1).
    ambiguity : dict of str to str
        Ambiguity code -> the canonical letters it stands for, in code order
        (codes A..n_codes-1).
    accepts : str
        The one-line description of what is accepted, used in errors.
    """

    name: str
    letters: str
    ambiguity: dict = field(hash=False, compare=False)
    accepts: str = ""

    @property
    def size(self) -> int:
        """Number of canonical letters ``A``."""
        return len(self.letters)

    @property
    def symbols(self) -> str:
        """All code symbols, in code order: letters then ambiguity codes."""
        return self.letters + "".join(self.ambiguity)

    @property
    def n_codes(self) -> int:
        """Number of codes (letters plus ambiguity codes)."""
        return len(self.symbols)

    @property
    def table(self) -> NDArray[np.uint8]:
        """Byte -> code lookup of shape (256,); 255 marks an invalid byte."""
        tab = np.full(256, INVALID, np.uint8)
        for code, ch in enumerate(self.symbols):
            tab[ord(ch.upper())] = code
            tab[ord(ch.lower())] = code
        return tab

    def __repr__(self) -> str:
        return f"Alphabet({self.name!r})"


_IUPAC = {
    "N": "ACGT", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT",
    "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG",
}

DNA = Alphabet("dna", "ACGT", dict(_IUPAC),
               "DNA accepts ACGT and IUPAC codes NRYSWKMBDHV")
RNA = Alphabet("rna", "ACGU",
               {k: v.replace("T", "U") for k, v in _IUPAC.items()},
               "RNA accepts ACGU and IUPAC codes NRYSWKMBDHV")
PROTEIN = Alphabet(
    "protein", "ARNDCQEGHILKMFPSTWYV",
    {"X": "ARNDCQEGHILKMFPSTWYV", "B": "ND", "Z": "QE", "J": "IL",
     "U": "C", "O": "K"},
    "protein accepts the 20 amino acids ARNDCQEGHILKMFPSTWYV and "
    "X, B, Z, J, U (as C), O (as K)")

ALPHABETS = {"dna": DNA, "rna": RNA, "protein": PROTEIN}

# lookup tables built once
_TABLES = {name: alpha.table for name, alpha in ALPHABETS.items()}
_HINTS = {
    ("dna", "U"): " (U is RNA: use alphabet 'rna')",
    ("rna", "T"): " (T is DNA: use alphabet 'dna')",
}


def get_alphabet(alphabet: str | Alphabet) -> Alphabet:
    """Return the :class:`Alphabet` for a name or an Alphabet."""
    if isinstance(alphabet, Alphabet):
        return alphabet
    key = str(alphabet).lower()
    if key not in ALPHABETS:
        raise ValueError(
            f"alphabet must be one of 'dna', 'rna', 'protein' (got {alphabet!r})")
    return ALPHABETS[key]


def _table(alpha: Alphabet) -> NDArray[np.uint8]:
    tab = _TABLES.get(alpha.name)
    if tab is None or ALPHABETS.get(alpha.name) is not alpha:
        tab = alpha.table
    return tab


def _where(record, source, what=None) -> str:
    where = ""
    if record is not None:
        where += f" of record {str(record)!r}" + (f" ({what})" if what else "")
    elif what:
        where += f" of {what}"
    if source is not None:
        where += f" in {source}"
    return where


def encode(seq, alphabet: str | Alphabet, record: str | None = None,
           source: str | None = None, what: str | None = None) -> NDArray[np.uint8]:
    """Encode a sequence to uint8 codes.

    Parameters
    ----------
    seq : str, bytes or Bio.Seq.Seq
        The sequence; case is ignored.
    alphabet : str or Alphabet
        ``"dna"``, ``"rna"``, ``"protein"`` or an :class:`Alphabet`.
    record, source, what : str, optional
        Record id, file name and the argument's role (e.g. ``"sequence
        a"``), used only in error messages.

    Returns
    -------
    codes : ndarray of shape (len(seq),), dtype uint8
        Canonical letters map to 0..A-1, ambiguity codes to A..n_codes-1.

    Raises
    ------
    ValueError
        One line naming the character, its 1-based position, the record and
        file when given, and what the alphabet accepts.
    """
    alpha = get_alphabet(alphabet)
    if isinstance(seq, (bytes, bytearray, memoryview)):
        raw = bytes(seq)
        text = None
    else:
        text = str(seq)
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError as err:
            _raise_invalid(alpha, text[err.start], err.start, record, source, what)
    codes = _table(alpha)[np.frombuffer(raw, np.uint8)]
    bad = np.flatnonzero(codes == INVALID)
    if bad.size:
        pos = int(bad[0])
        ch = text[pos] if text is not None else chr(raw[pos])
        _raise_invalid(alpha, ch, pos, record, source, what)
    return codes


def _raise_invalid(alpha, ch, pos, record, source, what=None):
    hint = _HINTS.get((alpha.name, ch.upper()), "")
    raise ValueError(
        f"invalid character {ch!r} at position {pos + 1}"
        f"{_where(record, source, what)}: {alpha.accepts}{hint}")


def decode(codes, alphabet: str | Alphabet) -> str:
    """Inverse of :func:`encode` (upper case).

    Parameters
    ----------
    codes : array_like of int, shape (L,)
    alphabet : str or Alphabet

    Returns
    -------
    str
    """
    alpha = get_alphabet(alphabet)
    codes = np.asarray(codes)
    if codes.size and (codes.min() < 0 or codes.max() >= alpha.n_codes):
        raise ValueError(
            f"codes must lie in 0..{alpha.n_codes - 1} for alphabet "
            f"{alpha.name!r} (got {codes.min()}..{codes.max()})")
    lut = np.frombuffer(alpha.symbols.encode("ascii"), np.uint8)
    return lut[codes.astype(np.intp)].tobytes().decode("ascii")


def _mostly_nucleotides(texts) -> bool:
    """At least 3/4 of the residues are A, C, G, T, U or N (ambiguity codes
    other than N are rare in nucleotide data; the same letters are common
    amino acids)."""
    n = sum(len(t) for t in texts)
    core = sum(t.count(c) for t in texts for c in "ACGTUN")
    return 4 * core >= 3 * n


def guess_alphabet(seqs) -> Alphabet:
    """Guess the alphabet of some sequences.

    DNA when every character is a DNA symbol; RNA when every character is an
    RNA symbol (so U and no T); protein when every character is a protein
    symbol.  Nucleotide alphabets win ties (``"ACGN"`` is DNA) as long as
    at least 3/4 of the residues are A, C, G, T, U or N: a protein made
    only of letters that are also nucleotide ambiguity codes
    (``"MKVDHASTWYRKNG"``: 4 of 14) is protein.  No protein
    guess is made for nucleotides with T and U mixed, or for sequences that
    look like nucleotides (at least 10 residues, all of them A, C, G, T, U
    or N, with at least three of A, C, G, T/U) next to protein ones: that
    is an error asking for the alphabet.

    Parameters
    ----------
    seqs : str or iterable of str / Bio.Seq.Seq / Bio.SeqRecord.SeqRecord

    Raises
    ------
    ValueError
        When no alphabet accepts every character, or for the mixtures above.
    """
    if isinstance(seqs, (str, bytes)):
        seqs = [seqs]
    seqs = list(seqs)
    chars: set[str] = set()
    texts = []
    for s in seqs:
        s = getattr(s, "seq", s)
        if isinstance(s, (bytes, bytearray)):
            s = s.decode("latin-1")
        texts.append(str(s).upper())
        chars.update(texts[-1])
    for alpha in (DNA, RNA):
        if chars <= set(alpha.symbols) and (_mostly_nucleotides(texts)
                                            or not chars <= set(PROTEIN.symbols)):
            return alpha
    if chars <= set(PROTEIN.symbols):
        _refuse_mixed_nucleotides(seqs, texts)
        return PROTEIN
    known = set(PROTEIN.symbols) | set(DNA.symbols) | set(RNA.symbols)
    extra = sorted(chars - known)
    for k, text in enumerate(texts):  # name the first offending character
        bad = next((i for i, ch in enumerate(text) if ch not in known), None)
        if bad is not None:
            rid = getattr(seqs[k], "id", None)
            where = f"record {rid!r}" if rid is not None else f"sequence {k + 1}"
            raise ValueError(
                f"cannot guess the alphabet: invalid character {text[bad]!r} at position {bad + 1} "
                f"of {where} (characters {''.join(extra)!r} are not DNA, RNA or protein symbols)")
    raise ValueError("cannot guess the alphabet: the sequences mix symbols of no single alphabet")


#: A sequence of at least this many residues, all of them A, C, G, T, U or
#: N and at least three of A, C, G, T/U present, is taken for nucleotides
#: when the alphabet is guessed (a protein that long made only of those
#: letters is very unlikely; a low-complexity run such as poly-Gly or
#: poly-Ala is not counted).
_NUCLEOTIDE_LOOKING_MIN = 10


def _refuse_mixed_nucleotides(seqs, texts) -> None:
    """Before a protein guess: refuse input that is nucleotides with T and U
    mixed, or nucleotide-looking sequences next to protein ones (the union
    of their letters is protein, but reading them as protein is wrong)."""
    def name(k):
        rid = getattr(seqs[k], "id", None)
        return f"record {rid!r}" if rid is not None else f"sequence {k + 1}"

    strict = set("ACGTUN")
    nucleotide_symbols = set(DNA.symbols) | set(RNA.symbols)
    first = {}
    for k, text in enumerate(texts):
        cs = set(text)
        if len(text) >= _NUCLEOTIDE_LOOKING_MIN and cs <= strict and len(cs & set("ACGTU")) >= 3:
            first.setdefault("nucleotide", k)
            if "T" in cs:
                first.setdefault("T", k)
            if "U" in cs:
                first.setdefault("U", k)
        elif not cs <= nucleotide_symbols:
            first.setdefault("protein", k)
    if "T" in first and "U" in first and "protein" not in first:
        where = (f"{name(first['T'])} has both" if first["T"] == first["U"]
                 else f"T in {name(first['T'])}, U in {name(first['U'])}")
        raise ValueError(f"cannot guess the alphabet: DNA and RNA mixed ({where}); "
                         "give the alphabet (dna or rna) explicitly")
    if "nucleotide" in first and "protein" in first:
        raise ValueError(f"cannot guess the alphabet: {name(first['nucleotide'])} looks like nucleotides but "
                         f"{name(first['protein'])} like protein; give the alphabet explicitly")


def expand_matrix(alphabet: str | Alphabet) -> NDArray[np.float64]:
    """0/1 matrix of shape (n_codes, A): row c marks the letters code c
    stands for (the identity on canonical letters)."""
    alpha = get_alphabet(alphabet)
    E = np.zeros((alpha.n_codes, alpha.size))
    E[np.arange(alpha.size), np.arange(alpha.size)] = 1.0
    for k, (code, letters) in enumerate(alpha.ambiguity.items()):
        for ch in letters:
            E[alpha.size + k, alpha.letters.index(ch)] = 1.0
    return E


def _odds(p, q):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, p / np.where(q > 0, q, 1.0), 0.0)


def extend_match_odds(p_joint, q, alphabet: str | Alphabet) -> NDArray:
    """Match odds over all codes, shape (n_codes, n_codes).

    Parameters
    ----------
    p_joint : array of shape (A, A)
        Joint match emission probabilities p(a, b).
    q : array of shape (A,)
        Background frequencies.
    """
    E = expand_matrix(alphabet)
    p_ext = E @ np.asarray(p_joint, float) @ E.T
    q_ext = E @ np.asarray(q, float)
    return _odds(p_ext, np.outer(q_ext, q_ext))


def extend_ins_odds(p, q, alphabet: str | Alphabet) -> NDArray:
    """Insert odds over all codes, shape (n_codes,).

    Parameters
    ----------
    p : array of shape (A,)
        Insert emission probabilities.
    q : array of shape (A,)
        Background frequencies.
    """
    E = expand_matrix(alphabet)
    return _odds(E @ np.asarray(p, float), E @ np.asarray(q, float))


def split_code_counts(counts_ext, p, alphabet: str | Alphabet) -> NDArray:
    """Send expected counts of codes back to canonical letters.

    A count of code c (or code pair (c, d)) is shared among the letters it
    stands for in proportion to the current probabilities ``p`` (the E-step
    posterior of the hidden letter).  Where ``p`` gives zero to every
    represented letter the count is shared equally, so totals are conserved.

    Parameters
    ----------
    counts_ext : array of shape (n_codes,) or (n_codes, n_codes)
        Expected counts per code (insert emissions) or per code pair (match
        emissions).
    p : array of shape (A,) or (A, A)
        Current emission probabilities, same number of dimensions.
    alphabet : str or Alphabet

    Returns
    -------
    counts : array of shape (A,) or (A, A)
    """
    E = expand_matrix(alphabet)
    counts_ext = np.asarray(counts_ext, float)
    p = np.asarray(p, float)
    if counts_ext.ndim == 1:
        w = E * p[None, :]                      # (n_codes, A)
        tot = w.sum(1, keepdims=True)
        w = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0),
                     E / E.sum(1, keepdims=True))
        return counts_ext @ w
    if counts_ext.ndim == 2:
        n, A = E.shape
        # w[c, d, a, b] = share of (a, b) in code pair (c, d)
        w = E[:, None, :, None] * E[None, :, None, :] * p[None, None, :, :]
        tot = w.sum((2, 3), keepdims=True)
        uni = E[:, None, :, None] * E[None, :, None, :]
        uni = uni / uni.sum((2, 3), keepdims=True)
        w = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), uni)
        return np.einsum("cd,cdab->ab", counts_ext, w)
    raise ValueError(
        f"counts_ext must have 1 or 2 dimensions (got {counts_ext.ndim})")
