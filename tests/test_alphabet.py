"""Alphabets: encoding, ambiguity codes, extended odds, count splitting."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hmmtie.alphabet import (DNA, PROTEIN, RNA, decode, encode,
                             expand_matrix, extend_ins_odds,
                             extend_match_odds, get_alphabet, guess_alphabet,
                             split_code_counts)

ALL = [DNA, RNA, PROTEIN]


@pytest.mark.parametrize("alpha", ALL, ids=lambda a: a.name)
def test_canonical_letters_first(alpha):
    codes = encode(alpha.letters, alpha)
    assert codes.dtype == np.uint8
    assert list(codes) == list(range(alpha.size))
    amb = encode("".join(alpha.ambiguity), alpha)
    assert list(amb) == list(range(alpha.size, alpha.n_codes))


@pytest.mark.parametrize("alpha", ALL, ids=lambda a: a.name)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_round_trip_and_case(alpha, data):
    s = data.draw(st.text(alphabet=alpha.symbols + alpha.symbols.lower(),
                          max_size=60))
    codes = encode(s, alpha)
    assert decode(codes, alpha) == s.upper()
    assert np.array_equal(encode(s.lower(), alpha), encode(s.upper(), alpha))
    assert np.array_equal(encode(s.encode(), alpha), codes)


def test_letters_as_documented():
    assert DNA.letters == "ACGT" and RNA.letters == "ACGU"
    assert PROTEIN.letters == "ARNDCQEGHILKMFPSTWYV"
    assert set(DNA.ambiguity) == set("NRYSWKMBDHV")
    assert set(PROTEIN.ambiguity) == set("XBZJUO")
    assert get_alphabet("DNA") is DNA
    with pytest.raises(ValueError, match="'dna', 'rna', 'protein'.*'amino'"):
        get_alphabet("amino")


def test_error_names_record_position_and_accepted():
    with pytest.raises(ValueError) as err:
        encode("ACGTACGTACGTACGTJ", "dna", record="seq3", source="a.fa")
    msg = str(err.value)
    assert msg == ("invalid character 'J' at position 17 of record 'seq3' in "
                   "a.fa: DNA accepts ACGT and IUPAC codes NRYSWKMBDHV")
    assert "\n" not in msg
    with pytest.raises(ValueError, match=r"^invalid character '\*' at "
                                         r"position 3: protein accepts"):
        encode("AC*", "protein")
    with pytest.raises(ValueError, match="position 2 of record 'r'.*use "
                                         "alphabet 'rna'"):
        encode("AU", DNA, record="r")
    with pytest.raises(ValueError, match="'T' at position 1.*use alphabet 'dna'"):
        encode("T", RNA)
    with pytest.raises(ValueError, match="'é' at position 2"):
        encode("Aé", DNA)
    with pytest.raises(ValueError, match="'-' at position 2"):
        encode("A-C", DNA)


def test_selenocysteine_and_pyrrolysine_read_as_c_and_k():
    E = expand_matrix(PROTEIN)
    u, o = encode("UO", PROTEIN)
    assert E[u].nonzero()[0].tolist() == [PROTEIN.letters.index("C")]
    assert E[o].nonzero()[0].tolist() == [PROTEIN.letters.index("K")]


def test_guess_alphabet():
    assert guess_alphabet(["ACGTN", "acgt"]) is DNA
    assert guess_alphabet(["ACGUN"]) is RNA
    assert guess_alphabet("MKVLAAGIVGLLLA") is PROTEIN
    assert guess_alphabet(["ACGT", "MKVE"]) is PROTEIN
    with pytest.raises(ValueError, match="cannot guess.*'1' at position 2 of sequence 2"):
        guess_alphabet(["ACGT", "A1"])
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord
    with pytest.raises(ValueError, match="'\\*' at position 4 of record 'p2'"):
        guess_alphabet([SeqRecord(Seq("MKV"), id="p1"), SeqRecord(Seq("MKV*"), id="p2")])


def test_guess_alphabet_peptide_of_nucleotide_letters_is_protein():
    """A review: MKVDHASTWYRKNGCAMMKKVV (every letter also a nucleotide
    ambiguity code) was guessed DNA and aligned against DNA; at least 3/4
    of the residues must be A, C, G, T, U or N for a nucleotide guess."""
    assert guess_alphabet("MKVDHASTWYRKNGCAMMKKVV").name == "protein"
    assert guess_alphabet(["ACGTRYACGTNNNNACGT", "ACGGT"]).name == "dna"
    assert guess_alphabet("ACGR").name == "dna"  # 3 of 4
    assert guess_alphabet("ACGRKMSW").name == "protein"  # 3 of 8


def test_guess_alphabet_refuses_mixed_nucleotides():
    # Found by review: the union of the letters was guessed as protein, so
    # RNA with a stray T, or DNA next to RNA or protein, was aligned as
    # protein (U read as selenocysteine) without a word.
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord
    with pytest.raises(ValueError, match="DNA and RNA mixed .record 'a1' has both"):
        guess_alphabet([SeqRecord(Seq("ACGUACGUUAGT"), id="a1"), SeqRecord(Seq("GGUUACCA"), id="a2")])
    with pytest.raises(ValueError, match="T in sequence 1, U in sequence 2"):
        guess_alphabet(["ACGTACGTAA", "ACGUACGUAA"])
    with pytest.raises(ValueError, match="sequence 1 looks like nucleotides but sequence 2 like protein"):
        guess_alphabet(["ACGTACGTAC", "MKVLWPQEAA"])
    # short nucleotide-looking peptides, and low-complexity runs such as
    # poly-Gly or poly-Ala, next to proteins stay protein
    assert guess_alphabet(["GATTACA", "MKVLWPQE"]) is PROTEIN
    assert guess_alphabet(["GGGGGGGGGGGG", "AAAAAAAAAAAAAA", "MKVLWPQEAA"]) is PROTEIN


@pytest.mark.parametrize("alpha", ALL, ids=lambda a: a.name)
def test_expand_matrix(alpha):
    E = expand_matrix(alpha)
    assert E.shape == (alpha.n_codes, alpha.size)
    assert np.array_equal(E[:alpha.size], np.eye(alpha.size))
    for k, (code, letters) in enumerate(alpha.ambiguity.items()):
        row = E[alpha.size + k]
        assert row.sum() == len(letters)
        assert {alpha.letters[a] for a in row.nonzero()[0]} == set(letters)


def _random_params(rng, A):
    p = rng.random((A, A)) ** 2
    p /= p.sum()
    q = rng.random(A) + 0.1
    q /= q.sum()
    return p, q


@pytest.mark.parametrize("alpha", ALL, ids=lambda a: a.name)
def test_extended_odds_are_marginalised(alpha):
    rng = np.random.default_rng(1)
    p, q = _random_params(rng, alpha.size)
    E = expand_matrix(alpha)
    odds = extend_match_odds(p, q, alpha)
    assert np.allclose(odds[:alpha.size, :alpha.size], p / np.outer(q, q))
    # summed probability: odds(c, d) q(c) q(d) = sum of p over the letters
    qe = E @ q
    assert np.allclose(odds * np.outer(qe, qe), E @ p @ E.T)
    pi = rng.random(alpha.size)
    pi /= pi.sum()
    io = extend_ins_odds(pi, q, alpha)
    assert np.allclose(io * qe, E @ pi)
    # the any-letter code: p(any) = 1 and q(any) = 1, so odds 1
    any_code = encode("N" if alpha is not PROTEIN else "X", alpha)[0]
    assert io[any_code] == pytest.approx(1.0)
    # match with 'any' on one side, when p's marginals are q: odds 1
    pm = np.outer(q, q) * 0.3 + np.diag(q) * 0.7
    om = extend_match_odds(pm, q, alpha)
    assert np.allclose(om[any_code], 1.0)


@pytest.mark.parametrize("alpha", ALL, ids=lambda a: a.name)
def test_split_code_counts_conserves_and_is_proportional(alpha):
    rng = np.random.default_rng(2)
    A, n = alpha.size, alpha.n_codes
    p, _ = _random_params(rng, A)
    p[0, :] = 0.0  # a zero row: counts on codes covering only it still count
    counts = rng.random((n, n)) * 5
    out = split_code_counts(counts, p, alpha)
    assert out.shape == (A, A)
    assert out.sum() == pytest.approx(counts.sum())
    # canonical pairs pass through unchanged ...
    c0 = np.zeros((n, n))
    c0[:A, :A] = counts[:A, :A]
    assert np.allclose(split_code_counts(c0, p, alpha), c0[:A, :A])
    # ... and an ambiguity code is shared in proportion to p
    c1 = np.zeros((n, n))
    c1[n - 1, 1] = 3.0
    E = expand_matrix(alpha)
    share = E[n - 1] * p[:, 1]
    assert np.allclose(split_code_counts(c1, p, alpha)[:, 1],
                       3.0 * share / share.sum())
    pi = rng.random(A)
    pi[1] = 0.0
    ci = rng.random(n)
    oi = split_code_counts(ci, pi, alpha)
    assert oi.shape == (A,) and oi.sum() == pytest.approx(ci.sum())
    assert np.allclose(oi[:A] - ci[:A] >= -1e-12, True)


def test_decode_rejects_out_of_range():
    with pytest.raises(ValueError, match="0..14"):
        decode(np.array([15]), DNA)
