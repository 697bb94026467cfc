"""Benchmark: pair-HMM Viterbi (with traceback) and MEA against peers.

Prints MCUPS (million DP cells per second, median of a few runs) for
hmmtie's 3-state Viterbi with traceback and for the MEA DP, next to
Biopython's PairwiseAligner (global, affine gaps) score-only and with
traceback on the same pairs, and the ratios (Viterbi + traceback against
Biopython + traceback: the two timed alternately, the median of the
per-round ratios); when the ``parasail`` package
is installed (``pip install parasail``; not a dependency of hmmtie), also
parasail's SIMD Needleman-Wunsch (``nw_scan_16`` score-only,
``nw_trace_scan_16`` with traceback) on the same pairs with the integer-rounded
substitution scores.  When ``/usr/bin/probcons``
exists, times ``probcons -c 0 -ir 0`` and default ProbCons on a 1k x 1k
protein pair (CPU from getrusage of the child) against hmmtie's posterior +
MEA kernels, and against ``PairHMM.align`` end to end (the shipped 3-state
protein preset), the two alternately round by round (the ratio is the
median of the rounds' ratios), and the peak memory of ProbCons at 5k x 5k
DNA.

Usage: python tests/benchmarks/bench_pair_decode.py [--repeats 3] [--quick]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from Bio.Align import substitution_matrices

from hmmtie._kernels.pair_decode import mea, viterbi
from hmmtie._kernels.pair_fb import posterior
from _common import aligner_for, cpu_model  # noqa: E402  (tests/benchmarks/_common.py)

PROBCONS = "/usr/bin/probcons"
AMINO = "ARNDCQEGHILKMFPSTWYV"


def median_time(fn, repeats):
    """Median CPU seconds of this process (single-threaded calls; CPU time
    is robust on a shared machine, and ProbCons is timed by CPU too)."""
    fn()  # warm up (compilation, caches)
    ts = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        ts.append(time.process_time() - t0)
    return statistics.median(ts)


def paired_times(fa, fb, repeats):
    """(median CPU s of fa, of fb, median of the per-round ratios fb / fa)
    with fa and fb timed alternately, round by round: on a noisy VM the
    ratio of two medians taken minutes apart moved by up to 1.6x between
    runs; a ratio within each round cancels the slow drift."""
    fa()
    fb()
    ta, tb, r = [], [], []
    for _ in range(repeats):
        t0 = time.process_time()
        fa()
        t1 = time.process_time()
        fb()
        t2 = time.process_time()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
        r.append((t2 - t1) / (t1 - t0))
    return statistics.median(ta), statistics.median(tb), statistics.median(r)


def pair(rng, n, A, identity, freqs=None):
    """A related pair of length n over A letters (uniform, or drawn with
    ``freqs``): identity ``identity``, about 3% indels."""
    def draw(k):
        if freqs is None:
            return rng.integers(0, A, k).astype(np.uint8)
        return rng.choice(A, k, p=freqs).astype(np.uint8)
    x = draw(n)
    y = x.copy()
    mut = rng.random(n) > identity
    y[mut] = draw(mut.sum())
    # a few indels so the traceback has gaps to follow
    keep = rng.random(n) > 0.03
    y = y[keep]
    ins = draw(n - keep.sum() + 1)
    pos = np.sort(rng.integers(0, len(y), len(ins)))
    y = np.insert(y, pos, ins)[:n]
    if len(y) < n:
        y = np.concatenate([y, draw(n - len(y))])
    return x, y


def dna_model():
    A = 4
    q = np.full(A, 0.25)
    p = np.full((A, A), 0.05 / 3 * 0.25 * 4)
    p[np.diag_indices(A)] = 0.95 * 0.25
    p /= p.sum()
    return p, q, "ACGT", np.log(p / np.outer(q, q)) / np.log(2) * 2


def protein_model():
    b62 = substitution_matrices.load("BLOSUM62")
    s = np.array([[b62[a, b] for b in AMINO] for a in AMINO], float)
    q = np.full(20, 0.05)
    odds = 2.0 ** (s / 2.0)
    p = odds * np.outer(q, q)
    p /= p.sum()
    return p, q, AMINO, s


def three_state(p, q, delta=0.02, eps=0.4, tau=0.001):
    kind = np.array([0, 1, 2])
    etab = np.zeros(3, np.int64)
    start = np.array([1 - 2 * delta - tau, delta, delta]) / (1 - tau)
    trans = np.array([[1 - 2 * delta - tau, delta, delta],
                      [1 - eps - tau, eps, 0.0],
                      [1 - eps - tau, 0.0, eps]])
    end = np.full(3, tau)
    mo = (p / np.outer(q, q))[None]
    io = np.ones((1, len(q)))
    return kind, etab, start, trans, end, mo, io


def five_state(p, q, tau=0.001):
    """Match plus a short-gap and a long-gap pair of insert states."""
    kind = np.array([0, 1, 2, 1, 2])
    etab = np.zeros(5, np.int64)
    d1, e1, d2, e2 = 0.02, 0.3, 0.002, 0.9
    mm = 1 - 2 * d1 - 2 * d2 - tau
    start = np.array([mm, d1, d1, d2, d2]) / (1 - tau)
    trans = np.zeros((5, 5))
    trans[0] = [mm, d1, d1, d2, d2]
    for s, e in ((1, e1), (2, e1), (3, e2), (4, e2)):
        trans[s, s] = e
        trans[s, 0] = 1 - e - tau
    end = np.full(5, tau)
    mo = (p / np.outer(q, q))[None]
    io = np.ones((1, len(q)))
    return kind, etab, start, trans, end, mo, io


def logs(m):
    with np.errstate(divide="ignore"):
        return tuple(m[:2]) + tuple(np.log(a) for a in m[2:])


def parasail_for(letters, sub):
    """(score-only, with-traceback) callables, or None without parasail."""
    try:
        import parasail
    except ImportError:
        return None
    mat = parasail.matrix_create(letters, 0, 0)
    for i in range(len(letters)):
        for j in range(len(letters)):
            mat[i, j] = int(round(float(sub[i, j])))
    op = 11 if len(letters) == 20 else 10
    return (lambda a, b: parasail.nw_scan_16(a, b, op, 1, mat).score,
            lambda a, b: parasail.nw_trace_scan_16(a, b, op, 1, mat).traceback)


def run_child(cmd):
    """Run cmd in a fresh Python child; returns (wall, cpu, maxrss_MiB)."""
    code = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL,"
            " stderr=subprocess.DEVNULL)\n"
            "w = time.perf_counter() - t\n"
            "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(w, r.ru_utime + r.ru_stime, r.ru_maxrss / 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True,
                         capture_output=True, text=True).stdout.split()
    return tuple(float(v) for v in out)


def write_fasta(path, letters, x, y):
    with open(path, "w") as fh:
        for name, s in (("x", x), ("y", y)):
            fh.write(f">{name}\n{''.join(letters[c] for c in s)}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="skip the 5k x 5k cases")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"CPU: {cpu_model()}  ({os.cpu_count()} logical CPUs visible); "
          f"numba threads {os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    print("single-threaded kernels; MCUPS = cells / median CPU seconds / 1e6;"
          " vit = three-state (striped without a band); vit rows = the same"
          " through the row kernel (a band as wide as the lattice);"
          " vit5 = five-state model (general kernel)\n")

    cases = [("DNA", 1000), ("DNA", 5000), ("protein", 300), ("protein", 1000)]
    if args.quick:
        cases = [c for c in cases if c[1] < 5000]
    hdr = (f"{'pair':<16}{'vit+tb':>9}{'vit rows':>9}{'vit5+tb':>9}"
           f"{'mea DP':>9}"
           f"{'bio score':>11}"
           f"{'bio+tb':>9}{'vit/bio+tb':>12}{'vit/bio score':>15}"
           f"{'ps score':>10}{'ps+tb':>8}{'vit/ps+tb':>11}")
    print(hdr)
    print("-" * len(hdr))
    for name, n in cases:
        p, q, letters, sub = dna_model() if name == "DNA" else protein_model()
        m = logs(three_state(p, q))
        x, y = pair(rng, n, len(q), 0.7 if name == "DNA" else 0.5)
        cells = len(x) * len(y)
        al = aligner_for(letters, sub)
        sx = "".join(letters[c] for c in x)
        sy = "".join(letters[c] for c in y)
        # Viterbi + traceback and Biopython + traceback alternately
        t_vit, t_bt, ratio = paired_times(
            lambda: viterbi(*m, x, y, -1),
            lambda: next(iter(al.align(sx, sy))), max(args.repeats, 5))
        # the row kernel (a band as wide as the lattice) for reference
        t_vrow = median_time(lambda: viterbi(*m, x, y, n), args.repeats)
        m5 = logs(five_state(p, q))
        t_vit5 = median_time(lambda: viterbi(*m5, x, y, -1), args.repeats)
        P = rng.random((len(x), len(y))) ** 4
        t_mea = median_time(lambda: mea(P, -1), args.repeats)
        t_bs = median_time(lambda: al.score(sx, sy), args.repeats)
        mc = lambda t: cells / t / 1e6
        ps = parasail_for(letters, sub)
        if ps is not None:
            t_ps = median_time(lambda: ps[0](sx, sy), args.repeats)
            t_pt = median_time(lambda: ps[1](sx, sy), args.repeats)
            ps_cols = f"{mc(t_ps):10.0f}{mc(t_pt):8.0f}{t_pt / t_vit:11.2f}"
        else:
            ps_cols = f"{'-':>10}{'-':>8}{'-':>11}"
        print(f"{name + f' {n}x{n}':<16}{mc(t_vit):9.0f}{mc(t_vrow):9.0f}"
              f"{mc(t_vit5):9.0f}"
              f"{mc(t_mea):9.0f}"
              f"{mc(t_bs):11.0f}{mc(t_bt):9.0f}{ratio:12.1f}"
              f"{t_bs / t_vit:15.1f}{ps_cols}")

    # end-to-end MEA (posterior + MEA DP) against ProbCons
    p, q, letters, sub = protein_model()
    m = three_state(p, q)
    x, y = pair(rng, 1000, 20, 0.5)

    def ours():
        _, post = posterior(*m, x, y, -1)
        return mea(post, -1)

    # what a user calls, end to end: PairHMM.align with the shipped
    # 3-state protein preset (encoding, the checked posterior, MEA, the
    # per-column confidences, the Biopython Alignment), on a pair drawn
    # with the preset's background frequencies: under a model trained on
    # real proteins, uniformly random letters have insert odds of 1.37 on
    # average, and the tilt chosen for such a composition wastes a pass
    # (tests/benchmarks/HISTORY.md, fifteenth session)
    from hmmtie import PairHMM
    preset = PairHMM.preset("3state", alphabet="protein")
    pl = preset._alph.letters
    xa, ya = pair(rng, 1000, len(pl), 0.5, freqs=preset.background_)
    xs = "".join(pl[c] for c in xa)
    ys = "".join(pl[c] for c in ya)

    def ours_api():
        return preset.align(xs, ys, method="mea")

    t_ours = median_time(ours, args.repeats)
    t_api = median_time(ours_api, args.repeats)
    _, post = posterior(*m, x, y, -1)
    t_dp = median_time(lambda: mea(post, -1), args.repeats)
    print(f"\nhmmtie posterior + MEA, protein 1000x1000: {t_ours:.4f} s CPU "
          f"(MEA DP alone {t_dp * 1e3:.2f} ms); PairHMM.align end to end "
          f"(3state protein preset): {t_api:.4f} s")
    if not os.path.exists(PROBCONS) and shutil.which("probcons") is None:
        print("probcons not found: ProbCons comparison skipped")
        return
    exe = PROBCONS if os.path.exists(PROBCONS) else shutil.which("probcons")
    with tempfile.TemporaryDirectory() as tmp:
        fa = os.path.join(tmp, "p.fa")
        write_fasta(fa, letters, x, y)
        fb = os.path.join(tmp, "b.fa")  # the pair PairHMM.align aligns
        write_fasta(fb, pl, xa, ya)
        for label, extra, fn, f in (
                ("probcons -c 0 -ir 0", ["-c", "0", "-ir", "0"], ours, fa),
                ("probcons (default)", [], ours, fa),
                ("probcons -c 0 -ir 0", ["-c", "0", "-ir", "0"], ours_api,
                 fb)):
            # ours and ProbCons alternately, round by round (see
            # paired_times): the ratio is the median of the rounds' ratios
            to, tp, r = [], [], []
            for _ in range(max(args.repeats, 5)):
                t0 = time.process_time()
                fn()
                to.append(time.process_time() - t0)
                w, c, rss = run_child([exe, *extra, f])
                tp.append(c)
                r.append(c / to[-1])
            what = "PairHMM.align" if fn is ours_api else "kernels"
            print(f"{label:<22} CPU {statistics.median(tp):.3f} s (ours, "
                  f"{what}: {statistics.median(to):.4f} s in the same "
                  f"rounds) -> hmmtie is {statistics.median(r):.1f}x faster "
                  f"(CPU, median of {len(r)} rounds' ratios)")
        if not args.quick:
            xd, yd = pair(rng, 5000, 4, 0.7)
            fd = os.path.join(tmp, "d.fa")
            write_fasta(fd, "ACGT", xd, yd)
            w, c, rss = run_child([exe, "-c", "0", "-ir", "0", fd])
            print(f"probcons -c 0 -ir 0, DNA 5000x5000: wall {w:.2f} s, "
                  f"CPU {c:.2f} s, peak RSS {rss:.0f} MiB")
            print("hmmtie Viterbi traceback at 5000x5000: "
                  f"{5001 * 5001 / 2**20:.0f} MiB (1 byte per cell)")


if __name__ == "__main__":
    main()
