"""Tests for hmmtie.seqio: FASTA reading, pairing, alignment output, model files, HMM data."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from hmmtie import seqio

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "data", "examples")


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- FASTA
def test_read_fasta_records_in_order(tmp_path):
    path = write(tmp_path, "a.fa", ">s1 first\nACGT\nAC\n>s2\nGGG\n")
    recs = seqio.read_fasta(path)
    assert [r.id for r in recs] == ["s1", "s2"]
    assert [str(r.seq) for r in recs] == ["ACGTAC", "GGG"]


def test_read_fasta_from_handle_uses_given_name():
    recs = seqio.read_fasta(io.StringIO(">x\nAC\n"), name="mine.fa")
    assert str(recs[0].seq) == "AC"
    with pytest.raises(ValueError, match="^mine.fa: file is empty"):
        seqio.read_fasta(io.StringIO("  \n"), name="mine.fa")


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("", r"a.fa: file is empty"),
        ("\n\n", r"a.fa: file is empty"),
        ("ACGT\nACGT\n", r"a.fa: no FASTA records"),
        ("hello > world\n", r"a.fa: line 1: not FASTA"),
        ("@r1\nACGT\n+\nIIII\n", r"a.fa: looks like FASTQ"),
        ("# STOCKHOLM 1.0\n", r"a.fa: looks like Stockholm"),
        ('{"a": 1}\n', r"a.fa: looks like JSON"),
        (">s1\nACGT\n>empty\n>s3\nAC\n", r"a.fa: record 2 \('empty'\) is empty \(zero length\)"),
    ],
)
def test_read_fasta_bad_input_one_line(tmp_path, content, pattern):
    path = write(tmp_path, "a.fa", content)
    with pytest.raises(ValueError) as exc:
        seqio.read_fasta(path)
    assert exc.match(pattern.replace("a.fa", ".*a\\.fa"))
    one_line(exc)


def test_read_fasta_missing_directory_binary(tmp_path):
    with pytest.raises(ValueError, match=r"nope.fa: FASTA file not found"):
        seqio.read_fasta(str(tmp_path / "nope.fa"))
    with pytest.raises(ValueError, match=r"is a directory"):
        seqio.read_fasta(str(tmp_path))
    path = write(tmp_path, "b.fa", b"\x00\x01\x02>", mode="wb")
    with pytest.raises(ValueError, match=r"binary data"):
        seqio.read_fasta(path)
    path = write(tmp_path, "c.fa", b">x\nAC\xff\xfeGT\n", mode="wb")
    with pytest.raises(ValueError, match=r"line 2: not UTF-8"):
        seqio.read_fasta(path)


def test_read_fasta_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b">x\nACGT\n")))
    recs = seqio.read_fasta("-")
    assert str(recs[0].seq) == "ACGT"


# ---------------------------------------------------------------- alphabets
def recs(*seqs, ids=None):
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    ids = ids or [f"r{k + 1}" for k in range(len(seqs))]
    return [SeqRecord(Seq(s), id=i) for s, i in zip(seqs, ids)]


def test_resolve_alphabet_guesses_and_checks():
    assert seqio.resolve_alphabet([("a.fa", recs("ACGT")), ("b.fa", recs("ACGN"))]) == "dna"
    assert seqio.resolve_alphabet([("a.fa", recs("MKVLW")), ("b.fa", recs("MKKL"))]) == "protein"
    assert seqio.resolve_alphabet([("a.fa", recs("ACGT")), ("b.fa", recs("ACG"))], "protein") == "protein"


def test_resolve_alphabet_mismatch_between_files():
    with pytest.raises(ValueError) as exc:
        seqio.resolve_alphabet([("a.fa", recs("ACGTACGT")), ("b.fa", recs("MKWLLE"))])
    msg = one_line(exc)
    assert "a.fa looks like dna" in msg and "b.fa looks like protein" in msg


def test_resolve_alphabet_invalid_character_names_file_record_position():
    with pytest.raises(ValueError) as exc:
        seqio.resolve_alphabet([("a.fa", recs("ACGT", "ACGTJ", ids=["ok", "bad"])), ("b.fa", recs("ACGT"))], "dna")
    msg = one_line(exc)
    assert "'J'" in msg and "position 5" in msg and "'bad'" in msg and "a.fa" in msg


def test_resolve_alphabet_unguessable_names_file():
    with pytest.raises(ValueError, match=r"^b.fa: cannot guess"):
        seqio.resolve_alphabet([("a.fa", recs("ACGT")), ("b.fa", recs("AC*GT"))])


# ---------------------------------------------------------------- pairing
def test_pair_records_rules():
    a, b = recs("A", "C", "G"), recs("T", "T", "T")
    assert [(x.seq, y.seq) for x, y in seqio.pair_records(a, b)] == [("A", "T"), ("C", "T"), ("G", "T")]
    one = recs("N")
    assert len(seqio.pair_records(one, a)) == 3 and all(x is one[0] for x, _ in seqio.pair_records(one, a))
    assert all(y is one[0] for _, y in seqio.pair_records(a, one))
    assert len(seqio.pair_records(a, recs("A", "C"), all_vs_all=True)) == 6
    with pytest.raises(ValueError) as exc:
        seqio.pair_records(a, recs("A", "C"), names=("x.fa", "y.fa"))
    assert "x.fa has 3 records but y.fa has 2" in one_line(exc)


# ---------------------------------------------------------------- alignments
def make_alignment():
    from Bio.Align import Alignment

    aln = Alignment(recs("ACGTAC", "ACTTC", ids=["x", "y"]), np.array([[0, 3, 4, 6], [0, 3, 3, 5]]))
    aln.score = 1.5
    aln.column_confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    aln.mean_confidence = float(aln.column_confidence.mean())
    return aln


def test_alignment_identity_and_dict():
    aln = make_alignment()
    ident = seqio.alignment_identity(aln)
    # ACGTAC / ACT-TC: identical columns A, C, C -> 3 of 6 columns, 5 aligned pairs
    assert ident == {"identities": 3, "aligned_pairs": 5, "columns": 6, "identity": 0.5}
    d = seqio.alignment_to_dict(aln)
    assert d["ids"] == ["x", "y"] and d["aligned"] == ["ACGTAC", "ACT-TC"]
    assert d["coordinates"] == [[0, 3, 4, 6], [0, 3, 3, 5]]
    assert d["score"] == 1.5 and d["mean_confidence"] == pytest.approx(0.65)
    assert len(d["column_confidence"]) == 6
    json.dumps(d)


def test_alignment_identity_leaves_ambiguity_codes_out():
    """N against N (DNA) or X against X (protein) is not an identical residue
    (a review: NNNNNNNNNN against itself reported 10/10); N against N in a
    protein is asparagine and counts."""
    from Bio.Align import Alignment

    aln = Alignment(["ANNCR", "ANNCR"])
    assert seqio.alignment_identity(aln, "dna")["identities"] == 2
    assert seqio.alignment_identity(aln, "protein")["identities"] == 5
    assert seqio.alignment_identity(Alignment(["AXNBU", "AXNBU"]), "protein")["identities"] == 3
    assert seqio.alignment_identity(aln)["identities"] == 5


@pytest.mark.parametrize("fmt", [f for f in seqio.ALIGNMENT_FORMATS if f != "json"])
def test_format_alignments_every_format(fmt):
    text = seqio.format_alignments([make_alignment()], fmt, alphabet="dna")
    assert text.strip()
    if fmt in ("fasta", "clustal", "stockholm", "phylip", "nexus", "maf"):
        from Bio import Align

        back = next(iter(Align.parse(io.StringIO(text), fmt)))
        assert [str(back[0]).upper(), str(back[1]).upper()] == ["ACGTAC", "ACT-TC"]


def test_format_alignments_several_and_errors():
    from Bio import Align

    text = seqio.format_alignments([make_alignment(), make_alignment()], "stockholm")
    assert len(list(Align.parse(io.StringIO(text), "stockholm"))) == 2
    for fmt in ("nexus", "clustal"):
        with pytest.raises(ValueError, match=f"{fmt} holds one alignment"):
            seqio.format_alignments([make_alignment(), make_alignment()], fmt)
    with pytest.raises(ValueError, match="alignment format must be one of"):
        seqio.format_alignments([make_alignment()], "json")


# ---------------------------------------------------------------- output
def test_open_output_atomic(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with seqio.open_output(str(path)) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]
    seqio.write_text(str(path), "new")
    assert path.read_text() == "new"
    with pytest.raises(ValueError, match="does not exist"):
        seqio.write_text(str(tmp_path / "no" / "dir.txt"), "x")


def test_write_text_stdout(capsys):
    seqio.write_text("-", "hello\n")
    assert capsys.readouterr().out == "hello\n"


def test_write_fasta_round_trip(tmp_path):
    path = str(tmp_path / "x.fa")
    seqio.write_fasta([("a", "A" * 130), ("b", "CG")], path)
    assert [len(r.seq) for r in seqio.read_fasta(path)] == [130, 2]
    assert max(len(line) for line in open(path).read().splitlines()) == 60


# ---------------------------------------------------------------- HMM files and data
def test_load_hmm_spec_and_round_trip(tmp_path):
    spec = os.path.join(EXAMPLES, "casino_spec.json")
    model, symbols, fitted = seqio.load_hmm(spec)
    assert type(model).__name__ == "CategoricalHMM" and not fitted
    assert symbols == ["1", "2", "3", "4", "5", "6"] and model.n_symbols == 6
    X, ids = seqio.read_hmm_data(os.path.join(EXAMPLES, "rolls.txt"), symbols=symbols)
    assert len(X) == 5 and ids[0] == "seq1" and all(x.max() <= 5 for x in X)
    model.n_iter = 3
    model.fit(X)
    out = str(tmp_path / "m.json")
    seqio.save_model(model, out, symbols=symbols)
    again, sym2, fitted2 = seqio.load_hmm(out)
    assert fitted2 and sym2 == symbols
    assert again.score(X) == pytest.approx(model.score(X))
    d = seqio.describe_model(again)
    assert d["states"] == ["fair", "loaded1", "loaded2"]
    assert d["n_free_parameters"] == model.n_free_parameters
    assert any("loaded1->fair=0" == c for c in d["blocks"]["transitions"]["fixed"])
    assert len(d["blocks"]["emissions"]["tied"]) == 6
    # a model file whose symbol names disagree with its emission table (or
    # name a symbol twice) is refused, naming the file
    doc = json.loads(open(out).read())
    for names, pattern in ((list("abcd"), "lists 4 symbols but the emission table has 6 columns"),
                           ("abcdea", "lists a symbol twice")):
        doc["symbols"] = names
        bad = write(tmp_path, "bad.json", json.dumps(doc))
        with pytest.raises(ValueError, match=pattern) as exc:
            seqio.load_hmm(bad)
        assert "bad.json" in one_line(exc)


@pytest.mark.parametrize(
    "doc, pattern",
    [
        ("[1, 2]", "expected a JSON object"),
        ("{bad json", "not valid JSON"),
        ('{"model": "Foo"}', '"model" must be'),
        ('{"model": "CategoricalHMM", "states": ["a"], "colour": 1}', r"unknown key\(s\) \['colour'\]"),
        ('{"model": "CategoricalHMM", "states": ["a", "a"]}', "used twice"),
        ('{"format": "hmmtie-model", "version": 99, "model": "CategoricalHMM"}', "newer than this hmmtie"),
        ('{"format": "hmmtie-model", "version": 0, "model": "CategoricalHMM"}', "version 0 is not one hmmtie writes"),
        ('{"format": "hmmtie-model", "version": true, "model": "CategoricalHMM"}', "no integer format version"),
        ('{"model": "CategoricalHMM", "n_symbols": 3, "symbols": "AC", "states": ["a"]}', "n_symbols"),
    ],
)
def test_load_hmm_errors(tmp_path, doc, pattern):
    path = write(tmp_path, "m.json", doc)
    with pytest.raises(ValueError, match=pattern) as exc:
        seqio.load_hmm(path)
    assert "m.json" in one_line(exc)


def test_read_hmm_data_forms(tmp_path):
    fa = write(tmp_path, "s.fa", ">a\nACGT\n>b\nggca\n")
    X, ids = seqio.read_hmm_data(fa, symbols=list("ACGT"))
    assert ids == ["a", "b"] and X[0].tolist() == [0, 1, 2, 3] and X[1].tolist() == [2, 2, 1, 0]
    with pytest.raises(ValueError, match=r"record 2 \('b'\), position 2: symbol 'X'"):
        seqio.read_hmm_data(write(tmp_path, "t.fa", ">a\nAC\n>b\nAXC\n"), symbols=list("ACGT"))
    with pytest.raises(ValueError, match="FASTA input needs the model's symbol names"):
        seqio.read_hmm_data(fa)
    sym = write(tmp_path, "s.txt", "# comment\n0 1 2\n\n2 2\n")
    X, ids = seqio.read_hmm_data(sym)
    assert [x.tolist() for x in X] == [[0, 1, 2], [2, 2]] and ids == ["seq1", "seq2"]
    with pytest.raises(ValueError, match=r"line 2, symbol 2: 'q'"):
        seqio.read_hmm_data(write(tmp_path, "u.txt", "0 1\n1 q\n"))
    with pytest.raises(ValueError, match=r"v.txt: line 2, symbol 3: code 3 is outside the model's 3 symbols"):
        seqio.read_hmm_data(write(tmp_path, "v.txt", "0 1\n1 2 3\n"), n_symbols=3)
    frames = write(tmp_path, "f.txt", "0.5 1\n1.5 2\n\n3 4\n")
    X, ids = seqio.read_hmm_data(frames, kind="gaussian")
    assert [x.shape for x in X] == [(2, 2), (1, 2)]
    with pytest.raises(ValueError, match=r"line 2: 3 numbers, but earlier frames have 2"):
        seqio.read_hmm_data(write(tmp_path, "g.txt", "1 2\n1 2 3\n"), kind="gaussian")
    with pytest.raises(ValueError, match=r"line 1: 'x' is not a number"):
        seqio.read_hmm_data(write(tmp_path, "h.txt", "1 x\n"), kind="gaussian")
    with pytest.raises(ValueError, match="file is empty"):
        seqio.read_hmm_data(write(tmp_path, "e.txt", ""))
