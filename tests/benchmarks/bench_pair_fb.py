"""Benchmark the pair-HMM forward/backward kernels.

Prints MCUPS (lattice cells per microsecond, single thread, median of a few
runs) for forward (checked by a second, reversed pass as ``score`` runs it;
one striped pass; one pass of the row kernels),
posterior (forward + backward + posterior) and
expected_counts on DNA and protein pairs with the 3-state and 5-state
models, the CPU model, first-call compile times (all six public kernels),
the peak memory of a 5k x 5k posterior and the time of one EM E-step
(batch_expected_counts) over 200 related protein pairs of ~300 residues.
Beside them, Biopython's PairwiseAligner score-only (global, affine gaps)
on the same pairs, timed alternately with one pass and the posterior, and
the medians of the rounds' MCUPS ratios: the pair-HMM issue's targets
(forward 1,000 and posterior 450 MCUPS where Biopython scored 285) are
3.5x and 1.6x Biopython score-only on the same machine.
Run: ``python tests/benchmarks/bench_pair_fb.py [--quick]``; for cold compile
times point NUMBA_CACHE_DIR at an empty directory.
"""
import argparse
import subprocess
import sys
import time

import numpy as np
from _common import aligner_for, cpu_model  # noqa: E402  (tests/benchmarks/_common.py)


def make_model(n_states, a, rng):
    """A plausible 3- or 5-state model with odds against background q."""
    q = rng.dirichlet(np.full(a, 20.0))
    p = rng.dirichlet(np.full(a * a, 5.0)).reshape(a, a) + 2.0 * np.diag(q)
    match = (p / p.sum() / np.outer(q, q))[None]
    if n_states == 3:
        kind = np.array([0, 1, 2], np.int64)
        etab = np.array([0, 0, 0], np.int64)
        d, e, tau = 0.05, 0.4, 0.01
        trans = np.array([[1 - 2 * d - tau, d, d], [1 - e - tau, e, 0],
                          [1 - e - tau, 0, e]])
    else:
        kind = np.array([0, 1, 2, 1, 2], np.int64)
        etab = np.zeros(5, np.int64)
        d1, d2, e1, e2, tau = 0.04, 0.01, 0.3, 0.9, 0.01
        trans = np.zeros((5, 5))
        trans[0] = [1 - 2 * d1 - 2 * d2 - tau, d1, d1, d2, d2]
        for s, e in ((1, e1), (2, e1), (3, e2), (4, e2)):
            trans[s, s] = e
            trans[s, 0] = 1 - e - tau
    start = trans[0] / trans[0].sum()
    end = np.full(len(kind), tau)
    ins = np.ones((1, a))
    return (kind, etab, start, trans, end, match, ins), q


def related_pair(n, a, q, rng, sub=0.3, indel=0.03):
    x = rng.choice(a, n, p=q).astype(np.uint8)
    out = []
    for c in x:
        r = rng.random()
        if r < indel / 2:
            continue
        if r < indel:
            out.append(rng.choice(a, p=q))
        out.append(c if rng.random() > sub else rng.choice(a, p=q))
    y = np.array(out[:n] + list(rng.choice(a, max(0, n - len(out)), p=q)),
                 np.uint8)
    return x, y


def median_time(fn, reps):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def letters_of(A):
    return "ACGT" if A == 4 else "ACDEFGHIKLMNPQRSTVWY"


def bio_strings(x, y, A):
    letters = letters_of(A)
    return ("".join(letters[c] for c in x), "".join(letters[c] for c in y))


def bio_rounds(one, bio, post, reps):
    """Median times of ``one``, ``bio`` and ``post`` timed in that order
    round by round, and the medians of the rounds' ratios bio / one and
    bio / post (MCUPS ratios): this VM's speed drifts by up to 1.7x within
    minutes, which a ratio within a round cancels."""
    one()
    bio()
    post()
    t = {0: [], 1: [], 2: []}
    for _ in range(reps):
        for k, fn in enumerate((one, bio, post)):
            t0 = time.perf_counter()
            fn()
            t[k].append(time.perf_counter() - t0)
    r1 = float(np.median(np.array(t[1]) / np.array(t[0])))
    rp = float(np.median(np.array(t[1]) / np.array(t[2])))
    return (float(np.median(t[0])), float(np.median(t[1])),
            float(np.median(t[2])), r1, rp)


PEAK_SNIPPET = """
import resource, sys, numpy as np
sys.path.insert(0, {bench!r})
from bench_pair_fb import make_model, related_pair
from hmmtie._kernels import pair_fb as pf
rng = np.random.default_rng(0)
model, q = make_model({ns}, 4, rng)
x, y = related_pair({n}, 4, q, rng)
pf.posterior(*model, x[:50], y[:50], -1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lz, P = pf.posterior(*model, x, y, -1)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) / 1024.0, lz)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer sizes/runs")
    args = ap.parse_args()
    import numba

    numba.set_num_threads(1)
    t0 = time.perf_counter()
    from hmmtie._kernels import pair_fb as pf
    t_import = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    print(f"CPU: {cpu_model()}; numba {numba.__version__}, numpy {np.__version__}")
    print(f"import pair_fb: {t_import:.2f} s")

    # first calls: compile, or load from the on-disk cache
    model, q = make_model(3, 4, rng)
    x, y = related_pair(60, 4, q, rng)
    S = 3
    acc = [np.zeros(S), np.zeros((S, S)), np.zeros(S), np.zeros(model[5].shape),
           np.zeros(model[6].shape)]
    xo = np.array([0, len(x)], np.int64)
    yo = np.array([0, len(y)], np.int64)
    t_all = time.perf_counter()
    for name, fn in [("forward", lambda: pf.forward(*model, x, y, -1)),
                     ("posterior", lambda: pf.posterior(*model, x, y, -1)),
                     ("expected_counts",
                      lambda: pf.expected_counts(*model, x, y, *acc, -1)),
                     ("forward_constrained",
                      lambda: pf.forward_constrained(
                          *model, x, y, np.zeros(len(x), np.uint8), -1)),
                     ("batch_forward",
                      lambda: pf.batch_forward(*model, x, xo, y, yo, -1)),
                     ("batch_expected_counts",
                      lambda: pf.batch_expected_counts(*model, x, xo, y, yo,
                                                       -1))]:
        t = time.perf_counter()
        fn()
        print(f"first call {name}: {time.perf_counter() - t:.2f} s "
              "(compile, or cache load when cached)")
    print(f"first calls in all: {time.perf_counter() - t_all:.2f} s")

    # before the big timings: a child inherits its parent's ru_maxrss
    if not args.quick:
        for ns in (3, 5):
            out = subprocess.run(
                [sys.executable, "-c",
                 PEAK_SNIPPET.format(bench=sys.path[0], ns=ns, n=5000)],
                capture_output=True, text=True, check=True).stdout.split()
            print(f"posterior 5000x5000 {ns}-state: peak RSS growth "
                  f"{float(out[0]):.0f} MiB (the (N, M) output alone is 191 MiB)")


    sizes = [("DNA", 4, 1000), ("protein", 20, 300), ("protein", 20, 1000)]
    if not args.quick:
        sizes.insert(1, ("DNA", 4, 5000))
    reps = 3 if args.quick else 5
    print()
    print(f"{'alphabet':8} {'size':>11} {'model':>6} {'forward':>9} "
          f"{'1 pass':>9} {'fwd rows':>9} {'posterior':>9} {'exp_counts':>10}"
          f" {'bio score':>9} {'1pass/bio':>9} {'post/bio':>9}   "
          "(MCUPS, 1 thread; 'forward': checked against its reversed pass, "
          "as score() runs it; '1 pass': unchecked (check=False); "
          "'fwd rows': one pass of the row kernels, forced by a band "
          "as wide as the lattice, where forward runs striped; 'bio score': "
          "Biopython's PairwiseAligner score-only (global, affine gaps) on "
          "the same pair, timed alternately with '1 pass' and 'posterior', "
          "round by round; the ratios are MCUPS ratios, medians of the "
          "rounds' ratios)")
    for alpha, a, n in sizes:
        for ns in (3, 5):
            model, q = make_model(ns, a, rng)
            x, y = related_pair(n, a, q, rng)
            cells = len(x) * len(y)
            r = 3 if n >= 5000 else reps
            if n >= 5000:
                # untimed: the first (N, M) output of this size in a process
                # pays the first touch of fresh pages (0.3-0.4 s for 191 MiB
                # on the 2-core VM); later ones reuse the freed memory
                pf.posterior(*model, x, y, -1)
            tf = median_time(lambda: pf.forward(*model, x, y, -1), r)
            tr = median_time(lambda: pf.forward(*model, x, y, n, check=False),
                             r)
            al = aligner_for(letters_of(a), np.log(model[5][0]))
            sx, sy = bio_strings(x, y, a)
            t1, tb, tp, r1, rp = bio_rounds(
                lambda: pf.forward(*model, x, y, -1, check=False),
                lambda: al.score(sx, sy),
                lambda: pf.posterior(*model, x, y, -1), max(r, 5))
            if n <= 1000:
                acc = [np.zeros(ns), np.zeros((ns, ns)), np.zeros(ns),
                       np.zeros(model[5].shape), np.zeros(model[6].shape)]
                te = median_time(
                    lambda: pf.expected_counts(*model, x, y, *acc, -1), r)
                ec = f"{cells / te / 1e6:10.0f}"
            else:
                ec = f"{'-':>10}"
            print(f"{alpha:8} {f'{n}x{n}':>11} {f'{ns}st':>6} "
                  f"{cells / tf / 1e6:9.0f} {cells / t1 / 1e6:9.0f} "
                  f"{cells / tr / 1e6:9.0f} "
                  f"{cells / tp / 1e6:9.0f} {ec} {cells / tb / 1e6:9.0f} "
                  f"{r1:9.2f} {rp:9.2f}")

    # one EM E-step over a batch of protein pairs
    n_pairs = 200
    print()
    for ns in (3, 5):
        model, q = make_model(ns, 20, rng)
        xs, ys = [], []
        for _ in range(n_pairs):
            x, y = related_pair(int(rng.integers(250, 350)), 20, q, rng)
            xs.append(x)
            ys.append(y)
        cells = sum(len(x) * len(y) for x, y in zip(xs, ys))
        xo = np.concatenate([[0], np.cumsum([len(v) for v in xs])]).astype(np.int64)
        yo = np.concatenate([[0], np.cumsum([len(v) for v in ys])]).astype(np.int64)
        xc, yc = np.concatenate(xs), np.concatenate(ys)
        for nt in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(nt)
            t = median_time(lambda: pf.batch_expected_counts(
                *model, xc, xo, yc, yo, -1), 3)
            print(f"E-step {n_pairs} protein pairs ~300 aa, {ns}-state, "
                  f"{nt} thread(s): {t:.2f} s ({cells / t / 1e6:.0f} MCUPS)")
        numba.set_num_threads(1)


if __name__ == "__main__":
    main()
