"""Pairwise alignment accuracy on balifam reference alignments (TEST families only).

Run from the repository root::

    python tests/benchmarks/accuracy_balifam.py            # about 5-10 minutes on 2 cores
    python tests/benchmarks/accuracy_balifam.py --cap 5    # quick look

For every TEST family of ``data/balifam/split.tsv`` (families whose files
the default-parameter training in ``data/train_defaults.py`` never reads),
every pair of sequences is projected out of the reference alignment
``data/balifam/ref/<family>``; at most ``--cap`` pairs per family are drawn
with a fixed seed.  Each pair is realigned from its ungapped, upper-cased
sequences by

* hmmtie ``PairHMM.preset("3state"|"5state", "protein")`` with the shipped
  defaults: Viterbi (``viterbi``) and MEA (``align(method="mea")``);
* hmmtie with the untrained starting guess (``defaults=False``), MEA, to
  show what training bought;
* Biopython ``PairwiseAligner`` (global, BLOSUM62, open -11, extend -1;
  first alignment);
* ProbCons (Debian ``probcons``): default (MEA, plus consistency and
  refinement, which change nothing for two sequences) and ``-viterbi``.

Q of one pair = (reference core residue pairs that the test alignment also
aligns) / (reference core residue pairs), where a core pair is a column of the
reference in which both residues are upper case (balifam marks unreliable
regions in lower case).  Pairs with no core pair are skipped.  The table
gives mean and median Q over pairs, the mean of per-family means, and CPU
seconds per method; it is printed and written to ``data/accuracy_balifam.md``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from Bio import SeqIO  # noqa: E402
from Bio.Align import PairwiseAligner, substitution_matrices  # noqa: E402

from hmmtie.pair import PairHMM  # noqa: E402
from _common import cpu_model  # noqa: E402  (tests/benchmarks/_common.py)

DATA = ROOT / "data" / "balifam"
SEED = 7
CAP = 40


# --------------------------------------------------------------------------
# reference pairs
# --------------------------------------------------------------------------

def read_split(path=DATA / "split.tsv") -> dict[str, str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fam, side = line.split("\t")[:2]
        out[fam] = side
    return out


def project_pair(r1: str, r2: str):
    """(seq1, seq2, core pairs) from two rows of a reference alignment.

    Sequences are ungapped and upper-cased; core pairs are (i, j) residue
    indices of columns where both residues are upper case.
    """
    i = j = 0
    core = []
    for a, b in zip(r1, r2):
        ga, gb = a in "-.", b in "-."
        if not ga and not gb and a.isupper() and b.isupper():
            core.append((i, j))
        if not ga:
            i += 1
        if not gb:
            j += 1
    s1 = "".join(c for c in r1 if c not in "-.").upper()
    s2 = "".join(c for c in r2 if c not in "-.").upper()
    return s1, s2, core


def reference_pairs(cap: int = CAP, seed: int = SEED, families=None, side: str = "test"):
    """[(family, id1, id2, seq1, seq2, core)] for the TEST (or TRAIN) families."""
    split = read_split()
    fams = sorted(f for f, s in split.items() if s == side)
    if families:
        fams = [f for f in fams if f in families]
    rng = np.random.default_rng(seed)
    out = []
    for fam in fams:
        recs = [(r.id, str(r.seq)) for r in SeqIO.parse(DATA / "ref" / fam, "fasta")]
        n = len(recs)
        all_pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
        k = min(cap, len(all_pairs))
        for c in sorted(int(c) for c in rng.choice(len(all_pairs), size=k, replace=False)):
            a, b = all_pairs[c]
            s1, s2, core = project_pair(recs[a][1], recs[b][1])
            if core:
                out.append((fam, recs[a][0], recs[b][0], s1, s2, core))
    return out


def q_score(core, test_pairs_set) -> float:
    return sum(1 for p in core if p in test_pairs_set) / len(core)


# --------------------------------------------------------------------------
# aligners: each returns the set of aligned residue pairs (i, j)
# --------------------------------------------------------------------------

def pairs_from_coordinates(coords) -> set:
    coords = np.asarray(coords)
    out = set()
    for k in range(coords.shape[1] - 1):
        i0, j0 = coords[0, k], coords[1, k]
        di, dj = coords[0, k + 1] - i0, coords[1, k + 1] - j0
        if di and dj:
            out.update((i0 + t, j0 + t) for t in range(di))
    return out


def pairs_from_gapped(g1: str, g2: str) -> set:
    i = j = 0
    out = set()
    for a, b in zip(g1, g2):
        ga, gb = a == "-", b == "-"
        if not ga and not gb:
            out.add((i, j))
        if not ga:
            i += 1
        if not gb:
            j += 1
    return out


def hmmtie_mea(model):
    return lambda s1, s2: pairs_from_coordinates(model.align(s1, s2, method="mea").coordinates)


def hmmtie_viterbi(model):
    return lambda s1, s2: pairs_from_coordinates(model.viterbi(s1, s2)[1].coordinates)


def biopython_aligner():
    al = PairwiseAligner(mode="global", substitution_matrix=substitution_matrices.load("BLOSUM62"),
                         open_gap_score=-11, extend_gap_score=-1)
    return lambda s1, s2: pairs_from_coordinates(al.align(s1, s2)[0].coordinates)


def _read_two(text: str, s1: str, s2: str):
    recs = {r.id: str(r.seq) for r in SeqIO.parse(StringIO(text), "fasta")}
    g1, g2 = recs["a"], recs["b"]
    if g1.replace("-", "") != s1 or g2.replace("-", "") != s2:
        raise RuntimeError("probcons returned different sequences")
    return g1, g2


def probcons(viterbi: bool, exe: str):
    def run(s1, s2):
        with tempfile.TemporaryDirectory(prefix="hmmtie_pc_") as d:
            fa = Path(d) / "pair.fa"
            fa.write_text(f">a\n{s1}\n>b\n{s2}\n")
            if viterbi:
                # -viterbi implies -pairs: each pair goes to "<id1>-<id2>.fasta" in the cwd
                subprocess.run([exe, "-viterbi", "pair.fa"], cwd=d, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                text = (Path(d) / "a-b.fasta").read_text()
            else:
                text = subprocess.run([exe, "pair.fa"], cwd=d, check=True, capture_output=True, text=True).stdout
        return pairs_from_gapped(*_read_two(text, s1, s2))
    return run


def _child_cpu():
    r = os.times()
    return r.children_user + r.children_system


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def _paired_lines(q, ref_name, fam_of, fams, n_boot=2000):
    """Mean Q difference of each hmmtie MEA method against ``ref_name``, with a
    family-level bootstrap interval (pairs of one family are not independent)."""
    rng = np.random.default_rng(0)
    ref = np.array(q[ref_name])
    idx = [np.flatnonzero(fam_of == f) for f in fams]
    out = ["| method | mean Q difference | 95% interval | wins / losses |", "|---|---:|---:|---:|"]
    for name in q:
        if not name.startswith("hmmtie") or "MEA" not in name:
            continue
        d = np.array(q[name]) - ref
        boot = []
        for _ in range(n_boot):
            pick = np.concatenate([idx[k] for k in rng.integers(len(idx), size=len(idx))])
            boot.append(d[pick].mean())
        lo, hi = np.percentile(boot, [2.5, 97.5])
        out.append(f"| {name} | {d.mean():+.4f} | [{lo:+.4f}, {hi:+.4f}] | "
                   f"{int(np.sum(d > 1e-12))} / {int(np.sum(d < -1e-12))} |")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cap", type=int, default=CAP, help=f"pairs per family (default {CAP})")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--out", type=Path, default=None,
                    help="markdown table (use '-' for none; default data/accuracy_balifam.md for the full "
                         "TEST run with the shipped parameters, none otherwise)")
    ap.add_argument("--no-probcons", action="store_true")
    ap.add_argument("--side", choices=["test", "train"], default="test",
                    help="'train': TRAIN families' references, for choosing training settings (validation); "
                         "never writes --out")
    ap.add_argument("--params-dir", type=Path,
                    help="load protein_{3state,5state}.json from here instead of the shipped defaults")
    ap.add_argument("--only-hmmtie", action="store_true", help="skip Biopython and ProbCons")
    args = ap.parse_args(argv)
    if args.side == "train":
        args.out = Path("-")
    elif args.out is None:
        # only the full run with the shipped parameters replaces the published table
        full = args.params_dir is None and not args.only_hmmtie and not args.no_probcons
        args.out = ROOT / "data" / "accuracy_balifam.md" if full else Path("-")

    pairs = reference_pairs(args.cap, args.seed, side=args.side)
    fams = sorted({p[0] for p in pairs})
    print(f"{len(pairs)} pairs from {len(fams)} {args.side.upper()} families (cap {args.cap} per family, "
          f"seed {args.seed})", flush=True)

    methods = {}
    for preset in ("3state", "5state"):
        m = PairHMM.preset(preset, "protein", n_threads=1)
        if args.params_dir is not None:
            import json
            m._set_params_from_dict(json.loads((args.params_dir / f"protein_{preset}.json").read_text()),
                                    symmetrise=True)
        methods[f"hmmtie {preset} Viterbi"] = hmmtie_viterbi(m)
        methods[f"hmmtie {preset} MEA"] = hmmtie_mea(m)
    methods["hmmtie 3state MEA, untrained start (defaults=False)"] = hmmtie_mea(
        PairHMM.preset("3state", "protein", defaults=False, n_threads=1))
    if args.only_hmmtie:
        args.no_probcons = True
    else:
        methods["Biopython PairwiseAligner (BLOSUM62, -11/-1)"] = biopython_aligner()
    exe = shutil.which("probcons")
    pc_version = ""
    if exe and not args.no_probcons:
        methods["ProbCons default (MEA)"] = probcons(False, exe)
        methods["ProbCons -viterbi"] = probcons(True, exe)
        head = subprocess.run([exe], capture_output=True, text=True)
        pc_version = next((ln.strip() for ln in (head.stdout + head.stderr).splitlines() if "version" in ln), "")
    elif not args.no_probcons:
        print("probcons not found on PATH: its rows are left out", flush=True)

    # warm up numba (compile outside the timings)
    s1, s2 = pairs[0][3][:20], pairs[0][4][:20]
    for f in methods.values():
        if not isinstance(f, type(None)):
            try:
                f(s1, s2)
            except Exception:
                pass

    q = {name: [] for name in methods}
    secs = {name: 0.0 for name in methods}
    walls = {name: 0.0 for name in methods}
    fails = {name: 0 for name in methods}
    t_all = time.time()
    for k, (fam, id1, id2, s1, s2, core) in enumerate(pairs):
        for name, f in methods.items():
            c0, p0, w0 = time.process_time(), _child_cpu(), time.perf_counter()
            try:
                got = f(s1, s2)
            except Exception as e:  # a failure scores 0 and is counted
                fails[name] += 1
                print(f"  {name} failed on {fam} {id1} {id2}: {e}", flush=True)
                got = set()
            secs[name] += (time.process_time() - c0) + (_child_cpu() - p0)
            walls[name] += time.perf_counter() - w0
            q[name].append(q_score(core, got))
        if (k + 1) % 100 == 0:
            print(f"  {k + 1}/{len(pairs)} pairs, {time.time() - t_all:.0f} s", flush=True)
    wall = time.time() - t_all

    fam_of = np.array([p[0] for p in pairs])
    rows = []
    for name in methods:
        v = np.array(q[name])
        fam_means = [v[fam_of == f].mean() for f in fams]
        rows.append((name, v.mean(), np.median(v), float(np.mean(fam_means)), len(v), secs[name], walls[name],
                     fails[name]))

    n_core = sum(len(p[5]) for p in pairs)
    lines = [
        "| method | mean Q | median Q | mean of family means | pairs | CPU s | wall s | failures |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {n} | {m:.4f} | {md:.4f} | {fm:.4f} | {c} | {s:.1f} | {w:.1f} | {fl} |"
              for n, m, md, fm, c, s, w, fl in rows]
    info = [
        f"Pairs: {len(pairs)} from {len(fams)} {args.side.upper()} families of balifam100 "
        f"(`data/balifam/split.tsv`), at most {args.cap} per family drawn with seed {args.seed}; "
        f"{n_core} reference core residue pairs.",
        "Q = fraction of the reference's core residue pairs (both residues upper case) reproduced.",
        f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); hmmtie single-threaded; "
        + ("CPU s includes ProbCons child processes (" if pc_version else "(")
        + "numba's worker threads may escape process_time, so read hmmtie's wall s too); wall s per "
        f"method is elapsed time on a shared machine; whole run {wall:.0f} s.",
    ]
    if pc_version:
        info.append(f"ProbCons: {pc_version} ({exe}).")
    ref_name = "ProbCons default (MEA)"
    if ref_name in q:
        info.append("")
        info.append(f"Paired differences against {ref_name} (same pairs; 95% interval from 2000 bootstrap "
                    "resamples of whole families, seed 0; wins/losses count pairs):")
        info.append("")
        info += _paired_lines(q, ref_name, fam_of, fams)
    text = "\n".join(lines) + "\n\n" + "\n".join(info) + "\n"
    print()
    print(text)
    if str(args.out) != "-":
        hdr = ("# Pairwise alignment accuracy on balifam (TEST families)\n\n"
               "Made by `python tests/benchmarks/accuracy_balifam.py`"
               f"{'' if args.cap == CAP else f' --cap {args.cap}'}. "
               "Default parameters trained only on TRAIN families (`data/train_defaults.py`).\n\n")
        args.out.write_text(hdr + text)
        print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
