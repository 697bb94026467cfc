"""Tests for the command line (hmmtie.cli): CliRunner in process, and the installed script as a subprocess."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from hmmtie.cli import cli
from hmmtie.cli import _common

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
EXAMPLES = os.path.join(ROOT, "data", "examples")
COMMANDS = [[], ["align"], ["compare"], ["train"], ["simulate"], ["info"], ["hmm"],
            ["hmm", "fit"], ["hmm", "decode"], ["hmm", "score"]]


def _pair_ready() -> str | None:
    try:
        from hmmtie import PairHMM

        PairHMM.preset("3state", alphabet="dna").score("ACGT", "ACG")
    except Exception as exc:  # the pair-HMM layer is still being built
        return f"{type(exc).__name__}: {exc}"
    return None


_PAIR_PROBLEM = _pair_ready()
needs_pair = pytest.mark.skipif(_PAIR_PROBLEM is not None, reason=f"pair HMM not usable yet ({_PAIR_PROBLEM})")


def invoke(*args, input=None, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=True)


def fasta(tmp_path, name, records):
    path = tmp_path / name
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in records))
    return str(path)


def assert_one_line_error(result, *needles, code=2):
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    err = result.stderr.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture
def dna(tmp_path):
    a = fasta(tmp_path, "a.fa", [("a1", "ACGTACGTTAGC"), ("a2", "GGATCCAT")])
    b = fasta(tmp_path, "b.fa", [("b1", "ACGTCGTTAGC"), ("b2", "GGATCAAT")])
    return a, b


# ---------------------------------------------------------------- help, version
@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "hmmtie")
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_everywhere_with_examples(cmd, flag):
    result = invoke(*cmd, flag)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert "Examples:" in result.stdout
    assert "[default:" in result.stdout or cmd in ([], ["hmm"])


def test_version():
    from hmmtie import __version__

    for flag in ("--version", "-V"):
        result = invoke(flag)
        assert result.exit_code == 0 and result.stdout.strip() == f"hmmtie {__version__}"


def test_help_and_version_import_nothing_heavy():
    code = (
        "import sys\n"
        "from hmmtie.cli import cli\n"
        "for args in (['--help'], ['--version'], ['align', '--help'], ['hmm', 'fit', '-h']):\n"
        "    cli.main(args, prog_name='hmmtie', standalone_mode=False)\n"
        "heavy = sorted(m for m in ('numpy', 'numba', 'scipy', 'Bio') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- usage errors: one line, exit 2
@pytest.mark.parametrize(
    "args, needles",
    [
        (["align"], ["Missing argument"]),
        (["align", "x.fa", "y.fa", "--band", "-1"], ["'--band'", "-1"]),
        (["align", "x.fa", "y.fa", "--threads", "0"], ["'--threads'"]),
        (["align", "x.fa", "y.fa", "--method", "best"], ["'--method'", "best"]),
        (["align", "x.fa", "y.fa", "--format", "pdf"], ["'--format'"]),
        (["align", "x.fa", "y.fa", "--model", "7state"], ["7state", "preset", "3state"]),
        (["compare", "x.fa", "y.fa", "--alpha", "1.5"], ["'--alpha'"]),
        (["compare", "x.fa", "y.fa", "--alpha", "nan"], ["'--alpha'", "not a number"]),
        (["train", "x.fa", "y.fa", "-o", "m.json", "--tol", "nan"], ["'--tol'", "not a number"]),
        (["hmm", "fit", "x.json", "y.txt", "-o", "m.json", "--tol", "nan"], ["'--tol'", "not a number"]),
        (["simulate", "-o", "s", "--pairs", "0"], ["'--pairs'"]),
        (["simulate", "-o", "-"], ["'--output'", "not a file prefix"]),
        (["info", "nostate"], ["nostate", "preset"]),
        (["hmm", "score", "3state", "x.txt"], ["3state", "pair-HMM preset"]),
        (["align", "--frobnicate"], ["--frobnicate"]),
        (["nosuchcommand"], ["nosuchcommand"]),
    ],
)
def test_usage_errors(args, needles):
    err = assert_one_line_error(invoke(*args), *needles)
    assert err.startswith("hmmtie")


def test_stdin_twice_is_usage_error(dna):
    assert_one_line_error(invoke("align", "-", "-"), "only one of A and B")


def test_output_never_replaces_an_input(dna, tmp_path):
    before = open(dna[0]).read()
    for args in (("align", *dna, "-o", dna[0]), ("compare", *dna, "-o", dna[1]),
                 ("train", *dna, "-o", dna[0]), ("align", *dna, "-o", str(tmp_path / "." / "a.fa"))):
        assert_one_line_error(invoke(*args), "'--output'", "is also an input")
    assert open(dna[0]).read() == before


# ---------------------------------------------------------------- input errors: one line, exit 2
@pytest.mark.parametrize(
    "content, needles",
    [
        (None, ["missing.fa", "not found"]),
        ("", ["a.fa", "file is empty"]),
        ("just text\n", ["a.fa", "no FASTA records"]),
        ("LOCUS  X 10 bp\n", ["a.fa", "GenBank"]),
        (">r1\nACGT\n>r2\n\n>r3\nAC\n", ["a.fa", "record 2", "'r2'", "zero length"]),
        (">r1\nACGT\n>r2\nACGTJA\n", ["a.fa", "'r2'", "position 5", "'J'"]),
        (">r1\nMKVL\n>r2\nMKV*L\n", ["a.fa", "'r2'", "position 4", "'*'"]),  # alphabet guessed
    ],
)
def test_bad_fasta_input(tmp_path, content, needles):
    b = fasta(tmp_path, "b.fa", [("b1", "ACGT")])
    if content is None:
        a = str(tmp_path / "missing.fa")
    else:
        a = str(tmp_path / "a.fa")
        open(a, "w").write(content)
    if "'J'" in needles:  # force the alphabet so the character check, not the guess, reports it
        result = invoke("align", a, b, "--alphabet", "dna")
    else:
        result = invoke("align", a, b)
    err = assert_one_line_error(result, *needles)
    assert err.startswith("hmmtie: error: ")


def test_protein_vs_dna_mismatch(tmp_path):
    a = fasta(tmp_path, "a.fa", [("a1", "ACGTACGTAGCT")])
    b = fasta(tmp_path, "b.fa", [("b1", "MKWVLLEHH")])
    assert_one_line_error(invoke("align", a, b), "a.fa looks like dna", "b.fa looks like protein")


def test_non_ascii_letter_names_record_and_position(tmp_path, dna):
    # Found by review: a Python codec message without record or position
    # (and, with --alphabet, without the file name).
    a = tmp_path / "u.fa"
    a.write_text(">a1\nACGTACGT\u00e9\n>a2\nGGTTACCA\n", encoding="utf-8")
    for extra in ([], ["--alphabet", "dna"]):
        assert_one_line_error(invoke("align", a, dna[1], *extra),
                              "u.fa: invalid character 'é' at position 9 of record 1 ('a1')")


def test_formats_that_need_distinct_row_names(tmp_path, dna):
    # Found by review: aligning a file against itself (same ids) wrote
    # Stockholm files with two rows of one name, which Biopython cannot read.
    a = dna[0]
    out = tmp_path / "o.sto"
    assert_one_line_error(invoke("align", a, a, "-f", "stockholm", "-o", out),
                          "pair 1: both sequences are named 'a1'", "stockholm needs distinct row names")
    assert not out.exists()
    res = invoke("align", a, a, "-f", "fasta", "-q")
    assert res.exit_code == 0 and res.stdout.count(">a1") == 2
    # PHYLIP keeps 10 characters of a name: two that agree on them collide
    # (review25: seq_long_name_1 and seq_long_name_1x were both 'seq_long_n')
    la = fasta(tmp_path, "la.fa", [("seq_long_name_1", "ACGTACGTTAGC")])
    lb = fasta(tmp_path, "lb.fa", [("seq_long_name_1x", "ACGTCGTTAGC")])
    assert_one_line_error(invoke("align", la, lb, "-f", "phylip"), "PHYLIP keeps 10 characters",
                          "'seq_long_n'")


def test_warnings_are_one_line(tmp_path):
    # Found by review: Python's warning format (file, line, source) on stderr.
    # (The warning here: a stale OUT.partial removed.  An M-step warning of
    # a pair compared with itself served until review 33's M-step fix.)
    a = fasta(tmp_path, "a.fa", [("a1", "ACGTACGT"), ("a2", "GGTTACCA")])
    out = tmp_path / "out.fa"
    (tmp_path / "out.fa.partial").write_text("left by a stopped run\n")
    res = subprocess.run([sys.executable, "-m", "hmmtie.cli", "align", a, a, "-o", out],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("hmmtie: warning: ") for ln in lines), res.stderr
    assert "removed" in res.stderr and not (tmp_path / "out.fa.partial").exists()


def test_mismatched_record_counts(tmp_path):
    a = fasta(tmp_path, "a.fa", [("a1", "ACGT"), ("a2", "ACGT")])
    b = fasta(tmp_path, "b.fa", [("b1", "ACGT"), ("b2", "ACGT"), ("b3", "ACG")])
    assert_one_line_error(invoke("align", a, b), "has 2 records", "has 3", "--all-vs-all")


@pytest.mark.parametrize(
    "doc, needles",
    [
        ("{not json", ["m.json", "not valid JSON"]),
        ('{"format": "hmmtie-model", "version": 99, "model": "PairHMM"}', ["m.json", "version 99", "upgrade"]),
        ('{"hello": 1}', ["m.json", "not an hmmtie model file"]),
    ],
)
def test_bad_model_file(tmp_path, dna, doc, needles):
    model = tmp_path / "m.json"
    model.write_text(doc)
    assert_one_line_error(invoke("align", *dna, "--model", str(model)), *needles)


def test_model_file_that_is_not_text(tmp_path, dna):
    model = tmp_path / "m.json"
    model.write_bytes(b"\x00\x01\xff")
    assert_one_line_error(invoke("align", *dna, "--model", str(model)), "m.json", "not a UTF-8 text model file")


def test_alphabet_option_against_a_model_file(tmp_path):
    # Found by review: simulate and info ignored an explicit --alphabet that
    # contradicts the model file (protein sequences came out for --alphabet dna).
    from hmmtie import PairHMM

    model = tmp_path / "prot.json"
    PairHMM.preset("3state", alphabet="protein").save(model)
    out = tmp_path / "sim"
    assert_one_line_error(invoke("simulate", "--model", model, "--alphabet", "dna", "-o", out, "--pairs", 2),
                          "prot.json is a protein model", "--alphabet dna")
    assert not list(tmp_path.glob("sim*"))
    assert_one_line_error(invoke("info", model, "--alphabet", "dna"), "prot.json is a protein model")
    assert invoke("info", model, "--alphabet", "protein").exit_code == 0
    # align's 'auto' (its default, also when given) never contradicts a model file
    dna_model = tmp_path / "dna.json"
    PairHMM.preset("3state", alphabet="dna").save(dna_model)
    a = fasta(tmp_path, "a.fa", [("a1", "ACGTACGTTAGC")])
    res = invoke("align", a, a, "--model", dna_model, "--alphabet", "auto", "-q")
    assert res.exit_code == 0, (res.output, res.exception)


def test_simulate_refuses_an_empty_prefix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("simulate", "-o", "", "--pairs", 1), "not a file prefix")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["align", "train"])
def test_output_to_a_pipe_is_written_directly(tmp_path, dna, command):
    # Found by review: outputs go to a temporary file renamed over the
    # target, which replaced a device (-o /dev/full as root) with a regular
    # file. A device or named pipe is now written directly.
    import stat
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    res = invoke(command, *dna, "-o", fifo, "-q")
    reader.join(timeout=60)
    assert res.exit_code == 0, (res.output, res.exception)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].strip()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fa", "b.fa", "out.fifo"]  # no temporary file left


def test_output_through_a_symbolic_link_keeps_the_link(tmp_path, dna):
    # Found by the second review: -o LINK replaced the link with a regular
    # file (as /dev/stdout -> /proc/self/fd/1 would be, as root).
    target = tmp_path / "real.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    res = invoke("align", *dna, "-o", link, "-q")
    assert res.exit_code == 0, (res.output, res.exception)
    assert link.is_symlink() and "pair 1" in target.read_text()


def test_unreadable_model_file(tmp_path, dna):
    model = tmp_path / "m.json"
    model.write_text("{}")
    model.chmod(0)
    if os.access(model, os.R_OK):  # running as root
        pytest.skip("cannot make a file unreadable as root")
    assert_one_line_error(invoke("align", *dna, "--model", str(model)), "m.json", "cannot read")


def test_internal_error_exit_1_without_traceback(monkeypatch, dna):
    import hmmtie.seqio

    def boom(*a, **k):
        raise ZeroDivisionError("kaboom")

    monkeypatch.setattr(hmmtie.seqio, "read_fasta", boom)
    monkeypatch.delenv(_common.DEBUG_ENV, raising=False)
    result = invoke("align", *dna)
    err = assert_one_line_error(result, "internal error", "ZeroDivisionError", "kaboom", "HMMTIE_DEBUG", code=1)
    assert err.startswith("hmmtie: internal error")
    result = invoke("align", *dna, env={_common.DEBUG_ENV: "1"})
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


def test_memory_error_is_input_error(monkeypatch, dna):
    import hmmtie.seqio

    def big(*a, **k):
        raise MemoryError("pair of lengths 9 x 9 needs about 9 GiB; use a band")

    monkeypatch.setattr(hmmtie.seqio, "read_fasta", big)
    assert_one_line_error(invoke("align", *dna), "use a band")


@needs_pair
def test_memory_guard_speaks_cli(tmp_path):
    # pair 2 is 30k x 30k: its posterior would need ~7.5 GiB, above the 4 GiB guard
    import random

    rng = random.Random(0)
    big = "".join(rng.choice("ACGT") for _ in range(30000))
    a = fasta(tmp_path, "a.fa", [("a1", "ACGTACGT"), ("a2", big)])
    b = fasta(tmp_path, "b.fa", [("b1", "ACGTACG"), ("b2", big)])
    res = invoke("align", a, b, "-q")
    err = assert_one_line_error(res, "pair 2", "30000 x 30000", "--method viterbi --band 200",
                                "nothing was written")
    assert res.stdout == ""  # checked before pair 1 was aligned (found by review: it was half-written)
    assert "memory_limit" not in err and "method='viterbi'" not in err
    # and the advice works: Viterbi without the posterior matrix (confidence
    # not available: null; strict JSON, no NaN tokens -- found by review)
    out = tmp_path / "o.json"
    result = invoke("align", a, b, "-q", "--method", "viterbi", "--band", "200", "-f", "json", "-o", out)
    assert result.exit_code == 0, result.output

    def refuse(token):
        raise ValueError(f"non-JSON token {token}")

    pairs = json.loads(out.read_text(), parse_constant=refuse)["pairs"]
    assert pairs[0]["mean_confidence"] > 0.5 and pairs[1]["mean_confidence"] is None
    assert set(pairs[1]["alignment"]["column_confidence"]) == {None}
    assert pairs[1]["identities"] == 30000


def test_progress_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not _common.progress_enabled(False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert _common.progress_enabled(False)
    assert not _common.progress_enabled(True)


# ---------------------------------------------------------------- align
@needs_pair
def test_align_text_summary(dna):
    result = invoke("align", *dna)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("# pair ") == 2
    for needle in ("log-likelihood", "log-odds", "identity", "mean posterior confidence",
                   "symmetric gaps, symmetric match", "free parameters", "a1", "b2"):
        assert needle in out
    assert result.stderr == ""  # no progress bar: stderr is not a terminal


@needs_pair
def test_align_json_document(dna):
    result = invoke("align", *dna, "--format", "json", "--asymmetric-gaps", "--method", "viterbi")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["method"] == "viterbi" and len(doc["pairs"]) == 2
    assert doc["model"]["hypothesis"].startswith("asymmetric gaps")
    assert doc["model"]["definition"]["symmetric_gaps"] is False
    assert "tying" in doc["model"]["definition"]
    p = doc["pairs"][0]
    gx, gy = p["alignment"]["aligned"]
    assert gx.replace("-", "") == "ACGTACGTTAGC" and gy.replace("-", "") == "ACGTCGTTAGC"
    assert p["log_likelihood"] < 0 and 0 <= p["identity"] <= 1
    assert p["log_likelihood"] - p["log_odds"] < 0  # the null model's log-probability is negative


@needs_pair
def test_align_hypothesis_changes_free_parameters(dna):
    counts = []
    for flag in ("--symmetric-gaps", "--asymmetric-gaps"):
        doc = json.loads(invoke("align", *dna, flag, "--format", "json").stdout)
        counts.append(doc["model"]["n_free_parameters"])
    assert counts[1] > counts[0]


@needs_pair
def test_align_one_alignment_formats(tmp_path, dna):
    from Bio import Align, AlignIO

    out = tmp_path / "r.aln"
    # clustal holds one alignment: several pairs are refused before aligning
    assert_one_line_error(invoke("align", *dna, "--format", "clustal", "-o", out),
                          "clustal holds one alignment per file", "2 pairs")
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["a.fa", "b.fa"]
    one = fasta(tmp_path, "one.fa", [("q", "ACGTACGTTAGC")])
    result = invoke("align", one, fasta(tmp_path, "two.fa", [("t", "ACGTCGTTAGC")]),
                    "--format", "clustal", "-o", out)
    assert result.exit_code == 0, result.output
    back = next(iter(Align.parse(str(out), "clustal")))
    assert str(back[0]).replace("-", "") == "ACGTACGTTAGC"
    # phylip: one data set per pair, read back by Bio.AlignIO
    phy = tmp_path / "r.phy"
    assert invoke("align", *dna, "--format", "phylip", "-o", phy).exit_code == 0
    assert len(list(AlignIO.parse(str(phy), "phylip"))) == 2


@needs_pair
@pytest.mark.parametrize("fmt", ["fasta", "stockholm", "maf", "sam", "psl", "bed", "phylip"])
def test_align_biopython_formats_to_file(tmp_path, dna, fmt):
    out = tmp_path / f"aln.{fmt}"
    result = invoke("align", *dna, "--format", fmt, "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "a1" in text and "b1" in text[:2000] + text
    assert "# pair 1" in result.stdout  # summary goes to stdout when the data goes to a file
    assert sorted(os.listdir(tmp_path)) == sorted(["a.fa", "b.fa", f"aln.{fmt}"])  # no temp files left
    result = invoke("align", *dna, "--format", fmt, "-q", "-o", out)
    assert result.stdout == "" and result.stderr == ""


@needs_pair
def test_align_fasta_to_stdout_keeps_summary_off_stdout(dna):
    from Bio import Align
    import io

    result = invoke("align", dna[0], dna[1], "--format", "fasta")
    assert result.exit_code == 0
    assert "# pair" not in result.stdout and "# pair 1" in result.stderr
    first = next(iter(Align.parse(io.StringIO(result.stdout.split(">a2")[0]), "fasta")))
    assert str(first[0]).replace("-", "") == "ACGTACGTTAGC"


@needs_pair
def test_align_pairing_rules(tmp_path, dna):
    one = fasta(tmp_path, "one.fa", [("q", "ACGTAC")])
    doc = json.loads(invoke("align", one, dna[1], "--format", "json").stdout)
    assert [(p["a"], p["b"]) for p in doc["pairs"]] == [("q", "b1"), ("q", "b2")]
    doc = json.loads(invoke("align", *dna, "--all-vs-all", "--format", "json").stdout)
    assert [(p["a"], p["b"]) for p in doc["pairs"]] == [("a1", "b1"), ("a1", "b2"), ("a2", "b1"), ("a2", "b2")]


@needs_pair
def test_align_stdin(dna):
    text = open(dna[0]).read()
    result = invoke("align", "-", dna[1], "--format", "json", input=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pairs"][0]["a"] == "a1"


@needs_pair
def test_align_failure_leaves_existing_output(tmp_path, dna):
    out = tmp_path / "keep.txt"
    out.write_text("previous")
    bad = fasta(tmp_path, "bad.fa", [("x", "ACGT"), ("y", "AC"), ("z", "A")])
    result = invoke("align", dna[0], bad, "-o", out)
    assert result.exit_code == 2
    assert out.read_text() == "previous"


@needs_pair
def test_align_fit_and_threads_reach_the_model(monkeypatch, dna):
    from hmmtie import PairHMM

    seen = {}
    original = PairHMM.fit

    def spy(self, pairs, **kw):
        seen.update(kw, n_threads=self.n_threads, n_pairs=len(pairs))
        return original(self, pairs, **kw)

    monkeypatch.setattr(PairHMM, "fit", spy)
    result = invoke("align", *dna, "--fit", "transitions", "--n-iter", "2", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert seen["params"] == "transitions" and seen["n_iter"] == 2 and seen["n_threads"] == 1
    assert seen["n_pairs"] == 2
    assert "fitted by EM (transitions" in result.stdout


@needs_pair
def test_align_band_out_of_memory_message(monkeypatch, dna):
    from hmmtie import PairHMM

    original = PairHMM.align

    def tiny(self, a, b, method="mea"):
        self.memory_limit = 1
        return original(self, a, b, method=method)

    monkeypatch.setattr(PairHMM, "align", tiny)
    err = assert_one_line_error(invoke("align", *dna), "band")
    assert "MemoryError" not in err


# ---------------------------------------------------------------- train, info, compare, simulate
@needs_pair
def test_train_then_align_with_model(tmp_path, dna):
    model = tmp_path / "model.json"
    result = invoke("train", *dna, "-o", model, "--params", "transitions", "--n-iter", "3")
    assert result.exit_code == 0, result.output
    assert "# trained 3state dna" in result.stdout
    doc = json.loads(model.read_text())
    assert doc["model"] == "PairHMM" and doc["format"] == "hmmtie-model"
    result = invoke("align", *dna, "--model", model, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["source"] == str(model)
    result = invoke("info", model)
    assert result.exit_code == 0 and "free parameters" in result.stdout
    # a DNA model refuses protein sequences, in one line
    p = fasta(tmp_path, "p.fa", [("p", "MKWLLEHHQ")])
    assert_one_line_error(invoke("align", p, p, "--model", model), "dna model")


@needs_pair
def test_train_asymmetric_flags_override_file_model(tmp_path, dna):
    model = tmp_path / "m.json"
    assert invoke("train", *dna, "-o", model, "--n-iter", "1", "--params", "transitions").exit_code == 0
    doc = json.loads(invoke("align", *dna, "--model", model, "--asymmetric-gaps", "--format", "json").stdout)
    assert doc["model"]["hypothesis"].startswith("asymmetric gaps")


@needs_pair
def test_info_preset():
    result = invoke("info", "3state", "--alphabet", "dna")
    assert result.exit_code == 0, result.output
    for needle in ("model: PairHMM (3state, dna)", "states: M (match), X (insert_x), Y (insert_y)",
                   "tied groups", "fixed cells", "free parameters: "):
        assert needle in result.stdout
    doc = json.loads(invoke("info", "3state", "--json", "--asymmetric-gaps").stdout)
    assert doc["hypothesis"].startswith("asymmetric gaps") and doc["n_free_parameters"] > 0


@needs_pair
def test_compare_table_and_json(dna):
    result = invoke("compare", *dna, "--n-iter", "3")
    assert result.exit_code == 0, result.output
    for needle in ("log-likelihood", "free parameters", "AIC", "BIC", "LRT statistic", "p-value", "verdict:"):
        assert needle in result.stdout
    doc = json.loads(invoke("compare", *dna, "--n-iter", "3", "--json").stdout)
    assert doc["untied"]["n_free_parameters"] > doc["tied"]["n_free_parameters"]
    assert doc["lrt"]["df"] == doc["untied"]["n_free_parameters"] - doc["tied"]["n_free_parameters"]
    assert 0 <= doc["lrt"]["p_value"] <= 1 and doc["verdict"]


@needs_pair
def test_simulate_then_align(tmp_path):
    prefix = tmp_path / "sim"
    result = invoke("simulate", "--pairs", 3, "--seed", 5, "-o", prefix)
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "sim.true.json").read_text())
    assert len(truth["pairs"]) == 3 and truth["seed"] == 5
    first = (tmp_path / "sim.a.fa").read_text()
    assert invoke("simulate", "--pairs", 3, "--seed", 5, "-o", tmp_path / "again", "-q").exit_code == 0
    assert (tmp_path / "again.a.fa").read_text() == first
    result = invoke("align", tmp_path / "sim.a.fa", tmp_path / "sim.b.fa", "--format", "json")
    doc = json.loads(result.stdout)
    assert [p["a"] for p in doc["pairs"]] == [p["a"] for p in truth["pairs"]]
    gx = truth["pairs"][0]["alignment"]["aligned"][0]
    assert gx.replace("-", "") == doc["pairs"][0]["alignment"]["aligned"][0].replace("-", "")


@needs_pair
def test_simulate_stockholm(tmp_path):
    from Bio import Align

    result = invoke("simulate", "--pairs", 2, "--seed", 1, "-o", tmp_path / "s", "--format", "stockholm")
    assert result.exit_code == 0, result.output
    assert len(list(Align.parse(str(tmp_path / "s.true.stockholm"), "stockholm"))) == 2


# ---------------------------------------------------------------- plain HMMs
@pytest.fixture
def casino(tmp_path):
    for name in ("casino_spec.json", "rolls.txt"):
        shutil.copy(os.path.join(EXAMPLES, name), tmp_path / name)
    return tmp_path


def test_hmm_fit_decode_score(casino):
    spec, rolls, model = casino / "casino_spec.json", casino / "rolls.txt", casino / "model.json"
    result = invoke("hmm", "fit", spec, rolls, "-o", model, "--n-iter", "20")
    assert result.exit_code == 0, result.output
    assert "free parameters" in result.stdout and "log-likelihood" in result.stdout
    doc = json.loads(model.read_text())
    assert doc["symbols"] == ["1", "2", "3", "4", "5", "6"] and doc["model"] == "CategoricalHMM"
    result = invoke("hmm", "decode", model, rolls)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "#id\tlogprob\tstates" and len(lines) == 6
    assert set(lines[1].split("\t")[2].split()) <= {"fair", "loaded1", "loaded2"}
    assert len(lines[1].split("\t")[2].split()) == 200
    doc = json.loads(invoke("hmm", "decode", model, rolls, "--algorithm", "map", "--json").stdout)
    assert doc["algorithm"] == "map" and len(doc["sequences"]) == 5
    post = invoke("hmm", "decode", model, rolls, "--posteriors").stdout.splitlines()
    assert post[0] == "#id\tposition\tfair\tloaded1\tloaded2" and len(post) == 1 + 5 * 200
    assert abs(sum(float(v) for v in post[1].split("\t")[2:]) - 1) < 1e-5
    result = invoke("hmm", "score", model, rolls)
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.stdout.splitlines()[1:6]]
    total = json.loads(invoke("hmm", "score", model, rolls, "--json").stdout)["total"]["log_likelihood"]
    assert abs(sum(float(r[2]) for r in rows) - total) < 1e-4
    assert "AIC" in result.stdout and "BIC" in result.stdout


def test_hmm_fit_continues_from_model_and_reads_stdin(casino):
    spec, rolls, model = casino / "casino_spec.json", casino / "rolls.txt", casino / "m.json"
    assert invoke("hmm", "fit", spec, rolls, "-o", model, "--n-iter", "5", "-q").exit_code == 0
    again = casino / "m2.json"
    result = invoke("hmm", "fit", model, "-", "-o", again, "--n-iter", "5", input=rolls.read_text())
    assert result.exit_code == 0, result.output
    h1 = json.loads(model.read_text())["fit"]["history"]
    h2 = json.loads(again.read_text())["fit"]["history"]
    assert h2[0] >= h1[-1] - 1e-6  # continued, not restarted


def test_hmm_fasta_input(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model": "CategoricalHMM", "states": ["at", "gc"], "symbols": "ACGT",
                                "settings": {"random_state": 0, "n_iter": 5}}))
    seqs = fasta(tmp_path, "s.fa", [("s1", "ATATATGCGCGCAT"), ("s2", "GGGCCCATAT")])
    assert invoke("hmm", "fit", spec, seqs, "-o", tmp_path / "m.json").exit_code == 0
    result = invoke("hmm", "decode", tmp_path / "m.json", seqs)
    assert result.stdout.splitlines()[1].startswith("s1\t")
    bad = fasta(tmp_path, "bad.fa", [("s1", "ACGU")])
    assert_one_line_error(invoke("hmm", "score", tmp_path / "m.json", bad), "bad.fa", "position 4", "'U'")


def test_hmm_decode_names_the_impossible_sequence(tmp_path):
    """Review 33: decode said "sequence 1 (1-based) has probability 0" for
    the third record of a file (the library is given one at a time)."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model": "CategoricalHMM", "states": ["a", "b"], "n_symbols": 2,
                                "tying": {"fixed": {"emissionprob": [["a", 1, 0.0], ["b", 1, 0.0]]}}}))
    (tmp_path / "fit.txt").write_text("0 0 0\n0 0\n")
    (tmp_path / "seqs.txt").write_text("0 0 0\n0 0\n0 1 0\n")
    assert invoke("hmm", "fit", spec, tmp_path / "fit.txt", "-o", tmp_path / "m.json", "-q").exit_code == 0
    for extra, what in (((), "best state path"), (("--algorithm", "map"), "state posteriors"),
                        (("--posteriors",), "state posteriors")):
        assert_one_line_error(invoke("hmm", "decode", tmp_path / "m.json", tmp_path / "seqs.txt", *extra),
                              "seqs.txt: sequence 'seq3' has probability 0", what)


def test_hmm_spec_fixed_emissions_name_their_symbols(tmp_path):
    """Review 33: with "symbols" ["1".."6"], a fixed emission cell took a
    0-based code (1 fixed the symbol "2", "6" was "not in [0, 6)").  With
    "symbols" the cells name the symbol; a code is refused there."""
    rolls = tmp_path / "rolls.txt"
    rolls.write_text("1 6 6 2 6 3\n6 6 1 5\n")

    def spec(cell, **extra):
        doc = {"model": "CategoricalHMM", "states": ["fair", "loaded"],
               "tying": {"fixed": {"emissionprob": [["fair", cell, 0.0]]}},
               "settings": {"random_state": 0, "n_iter": 3}, **extra}
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(doc))
        return path

    symbols = ["1", "2", "3", "4", "5", "6"]
    result = invoke("hmm", "fit", spec("6", symbols=symbols), rolls, "-o", tmp_path / "m.json", "-q")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "m.json").read_text())
    emis = np.array(doc["params"]["emissionprob"])
    assert emis[0, 5] == 0.0 and emis[0, 1] > 0.0  # symbol "6" (code 5), not code 6 or "2"
    assert_one_line_error(invoke("hmm", "fit", spec(1, symbols=symbols), rolls, "-o", tmp_path / "x.json"),
                          "spec.json: tying['fixed']['emissionprob']: symbol 1 of state 'fair': name it")
    assert_one_line_error(invoke("hmm", "fit", spec("7", symbols=symbols), rolls, "-o", tmp_path / "x.json"),
                          "symbol '7' of state 'fair' is not one of \"symbols\" (1, 2, 3, 4, 5, 6)")
    assert not (tmp_path / "x.json").exists()
    # with "n_symbols" the cells give codes, as the library takes them
    (tmp_path / "codes.txt").write_text("0 5 5 1 5 2\n")
    result = invoke("hmm", "fit", spec(5, n_symbols=6), tmp_path / "codes.txt", "-o", tmp_path / "c.json", "-q")
    assert result.exit_code == 0, result.output
    assert np.array(json.loads((tmp_path / "c.json").read_text())["params"]["emissionprob"])[0, 5] == 0.0
    # the model file written from names refits and decodes as it is
    assert invoke("hmm", "fit", tmp_path / "m.json", rolls, "-o", tmp_path / "m2.json", "-q").exit_code == 0
    assert invoke("hmm", "decode", tmp_path / "m2.json", rolls).exit_code == 0


@pytest.mark.parametrize("settings, needle", [
    ({"random_state": "abc"}, 'spec.json: "settings" random_state must be None'),
    ({"transmat_prior": 0.5}, 'spec.json: "settings" transmat_prior must be Dirichlet concentrations >= 1'),
    ({"emissionprob_prior": [1, 2]}, 'spec.json: "settings" emissionprob_prior must be a scalar or have shape'),
    ({"init_params": "st"}, "spec.json: \"settings\" init_params 'st' leaves 'e' uninitialised"),
])
def test_hmm_spec_settings_name_the_spec(tmp_path, settings, needle):
    """Review 33: settings that fit checks only when it runs came out
    without the spec file's name (init_params with advice the command line
    cannot follow)."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"model": "CategoricalHMM", "n_states": 2, "symbols": "ACGT", "settings": settings}))
    seqs = fasta(tmp_path, "s.fa", [("s1", "ACGTACGT")])
    assert_one_line_error(invoke("hmm", "fit", spec, seqs, "-o", tmp_path / "m.json"), needle)
    assert not (tmp_path / "m.json").exists()


def test_hmm_gaussian_frames(tmp_path):
    spec = tmp_path / "g.json"
    spec.write_text(json.dumps({"model": "GaussianHMM", "states": ["lo", "hi"],
                                "settings": {"random_state": 1, "n_iter": 10}}))
    frames = tmp_path / "f.txt"
    frames.write_text("0.1\n0.2\n5.1\n4.9\n\n0.0\n5.2\n")
    assert invoke("hmm", "fit", spec, frames, "-o", tmp_path / "gm.json", "-q").exit_code == 0
    result = invoke("hmm", "decode", tmp_path / "gm.json", frames)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 3
    result = invoke("info", tmp_path / "gm.json")
    assert result.exit_code == 0 and "GaussianHMM" in result.stdout


def test_hmm_errors(casino, tmp_path):
    spec, rolls = casino / "casino_spec.json", casino / "rolls.txt"
    # found by review: exit 1 (internal errors) or unbounded memory before
    ispec = tmp_path / "ispec.json"
    ispec.write_text('{"model": "CategoricalHMM", "n_states": 2, "settings": {"n_iter": 2}}')
    for line, needle in (("0 1 99999999999999999999999 1", "symbol 3: code 99999999999999999999999 is too large"),
                         ("0 1 1000000000000 1", "code 1000000000000 is too large"),
                         ("0 1 1_0 1", "'1_0' is not an integer code")):
        data = tmp_path / "codes.txt"
        data.write_text(line + "\n")
        assert_one_line_error(invoke("hmm", "fit", ispec, data, "-o", tmp_path / "im.json"), "codes.txt", needle)
    # a code outside the spec's n_symbols is named by file, line and position
    nspec = tmp_path / "nspec.json"
    nspec.write_text('{"model": "CategoricalHMM", "n_states": 2, "n_symbols": 3, "settings": {"n_iter": 2}}')
    data = tmp_path / "codes.txt"
    data.write_text("0 1 2\n2 1 3 0\n")
    assert_one_line_error(invoke("hmm", "fit", nspec, data, "-o", tmp_path / "nm.json"), "codes.txt",
                          "line 2, symbol 3: code 3 is outside the model's 3 symbols")
    assert not (tmp_path / "nm.json").exists()
    data.write_text("0 1 2\n2 1 0\n")
    assert invoke("hmm", "fit", nspec, data, "-o", tmp_path / "nm.json", "-q").exit_code == 0
    data.write_text("0 1\n5\n")
    assert_one_line_error(invoke("hmm", "score", tmp_path / "nm.json", data), "codes.txt", "line 2, symbol 1: code 5")
    lspec = tmp_path / "lspec.json"
    lspec.write_text('{"model": "CategoricalHMM", "states": ["a", "b"], "symbols": "123456", '
                     '"tying": {"emission_groups": ["a", "b"]}}')
    assert_one_line_error(invoke("info", lspec), "tying['emission_groups'] must be a mapping")
    # found by review: fit -o SPEC replaced its own input with the fitted model
    before = spec.read_text()
    assert_one_line_error(invoke("hmm", "fit", spec, rolls, "-o", spec), "casino_spec.json")
    assert spec.read_text() == before
    assert_one_line_error(invoke("hmm", "decode", spec, rolls), "spec without parameters", "hmm fit")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n1 7 2\n")
    assert_one_line_error(invoke("hmm", "fit", spec, bad, "-o", tmp_path / "x.json"), "bad.txt", "line 2", "'7'")
    assert not (tmp_path / "x.json").exists()
    future = tmp_path / "future.json"
    future.write_text('{"format": "hmmtie-model", "version": 42, "model": "CategoricalHMM"}')
    assert_one_line_error(invoke("hmm", "score", future, rolls), "future.json", "version 42")
    assert_one_line_error(invoke("hmm", "score", tmp_path / "nope.json", rolls), "nope.json", "not found")
    assert_one_line_error(invoke("hmm", "fit", spec, rolls, "-o", tmp_path / "x.json", "--n-iter", "-3"), "'--n-iter'")
    for setting, needle in (('"n_iter": -3', "n_iter must be >= 0"), ('"tol": "x"', "tol must be a finite number")):
        bad_spec = tmp_path / "bad_spec.json"
        bad_spec.write_text('{"model": "CategoricalHMM", "n_states": 2, "settings": {%s}}' % setting)
        assert_one_line_error(invoke("hmm", "fit", bad_spec, rolls, "-o", tmp_path / "x.json"),
                              "bad_spec.json", '"settings"', needle)


# ---------------------------------------------------------------- the installed script, as a subprocess
def run_script(*args, input=None, cwd=None):
    exe = shutil.which("hmmtie")
    cmd = [exe] if exe else [sys.executable, "-m", "hmmtie.cli"]
    return subprocess.run(cmd + [str(a) for a in args], input=input, capture_output=True, text=True, cwd=cwd)


def test_script_help_version_and_errors(tmp_path):
    proc = run_script("--help")
    assert proc.returncode == 0 and "align" in proc.stdout and "hmm" in proc.stdout
    assert run_script("--version").stdout.startswith("hmmtie ")
    proc = run_script("align", tmp_path / "nope.fa", tmp_path / "nope2.fa")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "nope.fa" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_script("align", "a.fa", "b.fa", "--band", "x")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_script_hmm_pipeline_through_stdout(casino):
    proc = run_script("hmm", "fit", "casino_spec.json", "rolls.txt", "-o", "-", "--n-iter", "3", cwd=casino)
    assert proc.returncode == 0, proc.stderr
    model = json.loads(proc.stdout)
    assert model["format"] == "hmmtie-model"
    assert "log-likelihood" in proc.stderr  # the summary moves to stderr when the model goes to stdout
    (casino / "m.json").write_text(proc.stdout)
    proc = run_script("hmm", "score", "m.json", "-", input=(casino / "rolls.txt").read_text(), cwd=casino)
    assert proc.returncode == 0 and proc.stdout.startswith("#id\tlength\tlog_likelihood")


@needs_pair
def test_script_align_stdin_pipe(tmp_path):
    a = fasta(tmp_path, "a.fa", [("x", "ACGTACGT")])
    b = fasta(tmp_path, "b.fa", [("y", "ACGTCGT")])
    proc = run_script("align", "-", b, "--format", "fasta", "-q", input=open(a).read())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(">x\n") and proc.stderr == ""


@needs_pair
def test_align_local_and_model_file_structure(tmp_path):
    from test_pair_local import _embedded_pair

    a, b, _ = _embedded_pair()
    fa, fb = fasta(tmp_path, "a.fa", [("a", a)]), fasta(tmp_path, "b.fa", [("b", b)])
    result = invoke("align", fa, fb, "--local", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (start_a, start_b) = [row[0] for row in doc["pairs"][0]["alignment"]["coordinates"]]
    assert abs(start_a - 70) <= 3 and abs(start_b - 12) <= 3
    assert "RX1" in [s[0] for s in doc["model"]["definition"]["states"]]
    text = invoke("align", fa, fb, "--local").stdout
    assert "# model 3state local protein" in text
    # formats without coordinates (FASTA, Stockholm, ...) still say where the core is, in the summary
    summ = invoke("align", fa, fb, "--local", "--format", "fasta").stderr
    span = f"(local: a {start_a + 1}-"
    assert span in summ and ", b " in summ
    # a model file keeps its structure: --local on a global file is a usage error
    model = tmp_path / "global.json"
    assert invoke("train", fa, fb, "-o", model, "--n-iter", "1", "--params", "transitions").exit_code == 0
    assert_one_line_error(invoke("align", fa, fb, "--model", model, "--local"), "global model", "--local")
    assert_one_line_error(invoke("info", model, "--local", "--json"), "global model", "--local")
    out = invoke("info", "3state", "--local", "--alphabet", "protein").stdout
    assert "(3state local, protein)" in out and "RX1 (flank_x)" in out
    assert "RX1->RX1 = RY1->RY1 = RX2->RX2 = RY2->RY2" in out


# --------------------------------------------------------------------------
# Outputs and streamed inputs (found by review)

def test_output_checks_before_any_work(tmp_path, dna):
    a, b = dna
    model = tmp_path / "m.json"
    assert invoke("train", a, b, "-o", model, "--n-iter", "1", "-q").exit_code == 0
    before = model.read_bytes()
    # the model file is an input: align -o M --model M replaced the model with alignments
    for cmd in ("align", "compare", "train"):
        r = invoke(cmd, a, b, "--model", model, "-o", model, "-q")
        assert_one_line_error(r, "m.json is also an input")
    assert model.read_bytes() == before
    # OUTPUT.partial (kept when a stream stops) must not be an input either
    shutil.copy(a, tmp_path / "out.txt.partial")
    r = invoke("align", tmp_path / "out.txt.partial", b, "-o", tmp_path / "out.txt", "-q")
    assert_one_line_error(r, "would be replaced by", "out.txt.partial")
    # a missing folder is refused before EM, not after it
    for cmd in ("train", "compare"):
        assert_one_line_error(invoke(cmd, a, b, "-o", tmp_path / "nope" / "x.json", "-q"), "does not exist")


def test_stale_partial_is_removed_after_a_complete_run(tmp_path, dna):
    a, b = dna
    (tmp_path / "out.txt.partial").write_text("# pair 1: left from a run that stopped\n")
    with pytest.warns(RuntimeWarning, match=r"removed .*out.txt.partial, left by an earlier run that stopped"):
        r = invoke("align", a, b, "-o", tmp_path / "out.txt", "-q")
    assert r.exit_code == 0
    assert (tmp_path / "out.txt").exists() and not (tmp_path / "out.txt.partial").exists()


def test_streamed_inputs_name_the_bad_record_and_read_boms_cr_and_pipes(tmp_path, monkeypatch):
    from hmmtie.cli import _pair

    recs = [(f"r{k}", "ACGTACGTAC" * 3) for k in range(30)]
    a = fasta(tmp_path, "a.fa", recs)
    b = fasta(tmp_path, "b.fa", [(f"s{k}", "ACGAACGTTC" * 3) for k in range(30)])
    ref = invoke("align", a, b, "-q")
    assert ref.exit_code == 0
    data = open(a, "rb").read()
    for eager in (True, False):
        monkeypatch.setattr(_pair, "EAGER_READ_BYTES", 16 * 2**20 if eager else 0)
        # a byte-order mark and old-Mac (CR) line ends read like plain LF text
        for name, raw in (("bom.fa", b"\xef\xbb\xbf" + data), ("cr.fa", data.replace(b"\n", b"\r"))):
            (tmp_path / name).write_bytes(raw)
            r = invoke("align", tmp_path / name, b, "-q")
            assert r.exit_code == 0 and r.stdout == ref.stdout, (name, eager, r.stderr)
        # a byte that is not UTF-8 in record 20: named there, not one read-ahead earlier
        i = data.index(b">r19\n") + 6
        (tmp_path / "bad.fa").write_bytes(data[:i] + b"\xe9" + data[i + 1:])
        r = invoke("align", tmp_path / "bad.fa", b, "-q")
        assert_one_line_error(r, "bad.fa", "record 20" if not eager else "line 40", "not UTF-8")
        if not eager:
            assert r.stdout.count("# pair ") == 19
        # gzip is named as such
        import gzip

        (tmp_path / "z.fa").write_bytes(gzip.compress(data))
        assert_one_line_error(invoke("align", tmp_path / "z.fa", b, "-q"), "gzip-compressed")
    # a pipe path has no size: it streams instead of being read whole
    monkeypatch.setattr(_pair, "EAGER_READ_BYTES", 16 * 2**20)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert not _pair._small_files(str(fifo), b)
    assert _pair._small_files(a, b)


def test_a_full_disk_cuts_the_partial_back_to_whole_results(tmp_path):
    """A write that fails (ENOSPC) leaves OUTPUT.partial ending with the last
    whole result and names the path (the .partial ended mid-alignment)."""
    import errno

    from hmmtie import seqio

    out = tmp_path / "o.txt"
    with pytest.raises(seqio.OutputError, match=r"o.txt: cannot write \(No space left on device\)") as exc:
        with seqio.StreamOutput(str(out)) as so:
            so.write("pair 1\n" * 100)
            raw = so.fh.buffer.raw
            real = raw.write
            calls = []

            class Full:
                def __getattr__(self, k):
                    return getattr(raw, k)

                def write(self, data):
                    calls.append(len(data))
                    if len(calls) > 1:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    return real(data[:5])  # a short write, then the disk is full

            class Buf:
                raw = Full()

            so.fh = type("FH", (), {"buffer": Buf(), "name": so.fh.name, "flush": so.fh.flush,
                                     "close": so.fh.close})()
            so.write("pair 2\n" * 100)
    assert "\n" not in str(exc.value)
    assert (tmp_path / "o.txt.partial").read_text() == "pair 1\n" * 100
    assert not out.exists()


def test_streamed_one_alignment_format_is_refused_at_the_second_pair(tmp_path, monkeypatch):
    from hmmtie.cli import _pair

    monkeypatch.setattr(_pair, "EAGER_READ_BYTES", 0)
    a = fasta(tmp_path, "a.fa", [(f"r{k}", "ACGTACGTAC") for k in range(50)])
    calls = []
    from hmmtie import PairHMM

    orig = PairHMM.align_many

    def counting(self, *args, **kw):
        for aln in orig(self, *args, **kw):
            calls.append(1)
            yield aln

    monkeypatch.setattr(PairHMM, "align_many", counting)
    r = invoke("align", a, a, "-f", "clustal", "-q")
    assert_one_line_error(r, "format clustal holds one alignment per file")
    assert len(calls) == 2  # not all 50 pairs first


def test_streamed_record_counts_that_differ_are_refused_up_front(tmp_path, monkeypatch):
    """A file that ended within the first records read, next to one with more
    records: refused before aligning (it failed only after every pair of the
    shorter file was aligned; found by review)."""
    from hmmtie import seqio

    a = fasta(tmp_path, "a.fa", [(f"r{k}", "ACGTAC") for k in range(5)])
    b = fasta(tmp_path, "b.fa", [(f"s{k}", "ACGTAC") for k in range(12)])
    with pytest.raises(ValueError, match="a.fa has 5 records but .*b.fa has at least 10"):
        seqio.PairStream(a, b, guess_records=10)
    one = fasta(tmp_path, "one.fa", [("x", "ACGTAC")])
    assert len(list(seqio.PairStream(one, b, guess_records=10))) == 12  # one record pairs with all


# ---------------------------------------------------------------- review25
def _unaligned_local_pair():
    """A DNA pair the local 3state preset aligns nothing of (as in
    test_pair_local)."""
    import numpy as np
    from hmmtie import PairHMM

    m = PairHMM.preset("3state", local=True)
    rng = np.random.default_rng(11)
    letters, q = list(m._alph.letters), m.background_
    for _ in range(20):
        a = "".join(rng.choice(letters, 60, p=q))
        b = "".join(rng.choice(letters, 50, p=q))
        if m.align(a, b).score == 0.0:
            return a, b
    raise AssertionError("no unaligned pair found")


@needs_pair
def test_local_pair_with_nothing_aligned(tmp_path):
    """A review: ``--local -f psl`` on a pair whose local MEA aligns nothing
    failed with an internal error (exit 1), BED wrote an unreadable record,
    and the summary gave a span as if the whole pair were aligned."""
    a, b = _unaligned_local_pair()
    fa = fasta(tmp_path, "a.fa", [("ua", a)])
    fb = fasta(tmp_path, "b.fa", [("ub", b)])
    for fmt in ("psl", "bed"):
        out = tmp_path / f"o.{fmt}"
        err = assert_one_line_error(invoke("align", fa, fb, "--local", "-f", fmt, "-o", out),
                                    "ua vs ub", "no residue is aligned", f"format {fmt}")
        assert not out.exists(), err
    result = invoke("align", fa, fb, "--local")
    assert result.exit_code == 0, result.output
    assert "(local: no residue aligned" in result.output
    assert "identity 0/" in result.output


@needs_pair
def test_identity_leaves_ambiguity_codes_out(tmp_path):
    """A review: NNNNNNNNNN against itself reported 10/10 identities."""
    fa = fasta(tmp_path, "a.fa", [("n", "ACGTNNNNNN")])
    result = invoke("align", fa, fa, "-f", "json", "-o", "-")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["pairs"][0]["identities"] == 4


@needs_pair
def test_peptide_of_nucleotide_letters_is_not_aligned_as_dna(tmp_path, dna):
    """A review: a peptide made of letters that are also nucleotide codes
    was guessed DNA and aligned against a DNA file without a word."""
    p = fasta(tmp_path, "p.fa", [("p", "MKVDHASTWYRKNGCAMMKKVV")])
    assert_one_line_error(invoke("align", p, dna[1]), "p.fa looks like protein", "b.fa looks like dna")


@needs_pair
def test_tying_flags_on_a_model_file(tmp_path, dna):
    """A review: a model trained on transitions counted 3 free parameters,
    but 231 once ``--symmetric-gaps`` re-tied it (``with_hypothesis`` lost
    which blocks the fit estimated), and re-tying a file's asymmetric gaps
    happened without a word."""
    from hmmtie import PairHMM, load

    pairs = [(x, y) for x, y, _ in PairHMM.preset("3state", alphabet="dna").sample(6, random_state=3)]
    m = PairHMM.preset("3state", alphabet="dna", symmetric_gaps=False).fit(pairs, n_iter=3, params="transitions")
    path = tmp_path / "asym.json"
    m.save(path)
    want = load(path).with_hypothesis(symmetric_gaps=True).n_free_parameters
    assert want == PairHMM.preset("3state", alphabet="dna").n_free_parameters - \
        PairHMM.preset("3state", alphabet="dna")._match.n_free - PairHMM.preset("3state", alphabet="dna")._insert.n_free
    result = invoke("align", *dna, "-m", path, "--symmetric-gaps", "-f", "json", "-o", "-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["n_free_parameters"] == want
    assert "note: " in result.stderr and "asymmetric gaps" in result.stderr
    same = invoke("align", *dna, "-m", path, "--asymmetric-gaps", "-f", "json", "-o", "-")
    assert same.exit_code == 0 and "note:" not in same.stderr
    quiet = invoke("align", *dna, "-m", path, "--symmetric-gaps", "--quiet", "-f", "json", "-o", "-")
    assert quiet.exit_code == 0 and "note:" not in quiet.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_is_named(tmp_path):
    """A review: ``-o /dev/full`` said only "No space left on device"."""
    spec = os.path.join(EXAMPLES, "casino_spec.json")
    rolls = os.path.join(EXAMPLES, "rolls.txt")
    assert_one_line_error(invoke("hmm", "fit", spec, rolls, "-o", "/dev/full", "-q"),
                          "/dev/full: cannot write", "No space left")
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "hmmtie.cli", "info", "3state"], stdout=full,
                             stderr=subprocess.PIPE, text=True)
    assert res.returncode == 2 and "standard output: cannot write" in res.stderr, res.stderr


def test_gaussian_data_with_the_wrong_number_of_values_names_the_file(tmp_path):
    """A review: scoring a file of 200 values a line with a 2-feature model
    said "X has 200 features per frame" without the file."""
    import numpy as np
    from hmmtie import GaussianHMM, seqio

    m = GaussianHMM(n_states=2, n_iter=2).fit(np.random.default_rng(0).normal(size=(100, 2)))
    model = tmp_path / "g.json"
    seqio.save_model(m, model)
    data = tmp_path / "d.txt"
    data.write_text("1 2 3\n4 5 6\n")
    assert_one_line_error(invoke("hmm", "score", model, data), f"{data}:", "3 values per frame",
                          "expects 2")


def test_info_names_emission_cells_by_symbol(tmp_path):
    """A review: ``hmmtie info`` listed the casino's ties as loaded1:0 =
    loaded2:0 (codes) for dice whose symbols are 1..6."""
    model = tmp_path / "casino.json"
    res = invoke("hmm", "fit", os.path.join(EXAMPLES, "casino_spec.json"), os.path.join(EXAMPLES, "rolls.txt"),
                 "-o", model, "-q")
    assert res.exit_code == 0, res.output
    out = invoke("info", model).output
    assert "loaded1:6 = loaded2:6" in out and "loaded1:0" not in out


# --------------------------------------------------------------------------
# Found by review (review 31: the CLI, seqio and the output paths)

def test_review31_streamed_errors_name_the_pair_and_end_formats_keep_their_pairs(tmp_path, monkeypatch):
    from hmmtie.cli import _pair
    from Bio import Align

    monkeypatch.setattr(_pair, "EAGER_READ_BYTES", 0)  # stream, as stdin and big files do
    # pair 3's two records share a name: a per-pair format named it pair 1
    a = fasta(tmp_path, "a.fa", [("x1", "ACGTACGTAC"), ("x2", "GGGTTTAAAC"), ("same", "ACGTTTGA")])
    b = fasta(tmp_path, "b.fa", [("y1", "ACGTACGTAC"), ("y2", "GGGTTTAAAC"), ("same", "ACGTTTGA")])
    err = assert_one_line_error(invoke("align", a, b, "-q", "-f", "stockholm", "-o", tmp_path / "o.sto"),
                                "pair 3: both sequences are named 'same'", "output stopped after pair 2")
    assert "pair 1:" not in err
    # formats written at the end kept nothing when a record deep in the stream was bad
    recs = [(f"a{k}", "ACGTTGCAAC" * 5) for k in range(10)] + [("bad", "ACGTXXQQ")]
    a = fasta(tmp_path, "a2.fa", recs)
    b = fasta(tmp_path, "b2.fa", [(f"b{k}", "ACGTTGCTAC" * 5) for k in range(11)])
    for fmt in ("maf", "psl", "exonerate"):
        out = tmp_path / f"o.{fmt}"
        assert_one_line_error(invoke("align", a, b, "-q", "--alphabet", "dna", "-f", fmt, "-o", out),
                              "record 11", f"output stopped after pair 10 ({out}.partial holds pairs 1-10)")
        assert not out.exists()
        assert len(list(Align.parse(f"{out}.partial", fmt))) == 10


def test_review31_writers_refuse_what_their_readers_cannot_read_back(tmp_path):
    from Bio import Align

    # Clustal keeps 30 characters of a name
    long_a, long_b = "sp|P12345|VERY_LONG_PROTEIN_NAME_ISOFORM_A", "sp|P12345|VERY_LONG_PROTEIN_NAME_ISOFORM_B"
    a = fasta(tmp_path, "a.fa", [(long_a, "MKVLAAGIVGLLLAQ")])
    b = fasta(tmp_path, "b.fa", [(long_b, "MKVLAGIVGLLAQ")])
    assert_one_line_error(invoke("align", a, b, "-f", "clustal", "-o", tmp_path / "o.aln"),
                          "Clustal keeps 30 characters of a name", "'sp|P12345|VERY_LONG_PROTEIN_NA'")
    assert not (tmp_path / "o.aln").exists()
    # NEXUS protein data has no J, O or U
    a = fasta(tmp_path, "j.fa", [("a1", "MKVLJAAGIVGOLLAQ")])
    b = fasta(tmp_path, "k.fa", [("b1", "MKVLAAGIVGLLUAQ")])
    assert_one_line_error(invoke("align", a, b, "-f", "nexus", "-o", tmp_path / "o.nex"),
                          "NEXUS protein data has no symbol for J, O, U")
    a = fasta(tmp_path, "bz.fa", [("a1", "MKVLBAAGIVGZLLAQ")])  # B, Z and X are NEXUS symbols
    b = fasta(tmp_path, "x.fa", [("b1", "MKVLAAGIVGLLXAQ")])
    r = invoke("align", a, b, "-f", "nexus", "-o", tmp_path / "ok.nex")
    assert r.exit_code == 0, r.stderr
    assert len(Align.read(tmp_path / "ok.nex", "nexus").sequences) == 2


def test_review31_tabs_read_alike_from_files_and_streams(tmp_path, monkeypatch):
    from hmmtie.cli import _pair

    a = tmp_path / "a.fa"
    a.write_text(">a1\nACGT\tACGT\n")
    b = fasta(tmp_path, "b.fa", [("b1", "ACGTACGT")])
    whole = invoke("align", a, b, "-q", "-f", "fasta")
    piped = invoke("align", "-", b, "-q", "-f", "fasta", input=a.read_text())
    monkeypatch.setattr(_pair, "EAGER_READ_BYTES", 0)
    streamed = invoke("align", a, b, "-q", "-f", "fasta")
    assert whole.exit_code == piped.exit_code == streamed.exit_code == 0, (piped.stderr, streamed.stderr)
    assert whole.stdout == piped.stdout == streamed.stdout and "ACGTACGT" in whole.stdout


def test_review31_alphabet_hint_only_where_it_can_work(tmp_path):
    from hmmtie import PairHMM

    dna_model = tmp_path / "dna.json"
    PairHMM.preset("3state", alphabet="dna").save(dna_model)
    prot_model = tmp_path / "prot.json"
    PairHMM.preset("3state", alphabet="protein").save(prot_model)
    pa = fasta(tmp_path, "pa.fa", [("p1", "MKVLQAGIVGLLLAQEWR")])
    pb = fasta(tmp_path, "pb.fa", [("q1", "MKVLAGIVGLLAQEWR")])
    err = assert_one_line_error(invoke("align", pa, pb, "-m", dna_model),
                                "is a dna model but the sequences look like protein",
                                "with letters that are not dna symbols")
    assert "--alphabet" not in err
    da = fasta(tmp_path, "da.fa", [("d1", "ACGTACGTTAGCAGT")])
    db = fasta(tmp_path, "db.fa", [("e1", "ACGTCGTTAGCAGT")])
    assert_one_line_error(invoke("align", da, db, "-m", prot_model),
                          "is a protein model but the sequences look like dna; pass --alphabet protein")
    assert invoke("align", da, db, "-m", prot_model, "--alphabet", "protein", "-q").exit_code == 0


def test_review31_folders_in_the_way_are_refused_before_any_file_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("s.a.fa")  # simulate wrote s.b.fa, then failed naming a temporary file
    assert_one_line_error(invoke("simulate", "--pairs", "2", "--seed", "1", "-o", "s"), "s.a.fa is a folder")
    assert sorted(os.listdir(".")) == ["s.a.fa"]
    a = fasta(tmp_path, "x.fa", [("a1", "ACGTACGTAC")])
    os.mkdir("out.json.partial")
    assert_one_line_error(invoke("align", a, a, "-f", "json", "-o", "out.json"),
                          "out.json.partial is a folder")
    assert not os.path.exists("out.json")


def test_review31_hand_edited_model_files_are_input_errors(tmp_path, dna):
    import json as _json
    from hmmtie import PairHMM

    path = tmp_path / "m.json"
    PairHMM.preset("3state", alphabet="dna").save(path)
    doc = _json.loads(path.read_text())
    for key, value, message in (("fit", 2, "'fit' must be an object"),
                                ("model", ["PairHMM"], "unknown model type ['PairHMM']")):
        bad = tmp_path / f"bad_{key}.json"
        bad.write_text(_json.dumps({**doc, key: value}))
        assert_one_line_error(invoke("align", *dna, "-m", bad), f"bad_{key}.json", message)
