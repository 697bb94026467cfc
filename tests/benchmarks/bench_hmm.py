"""Benchmark the plain-HMM kernels against hmmlearn 0.3.3.

Run:  python tests/benchmarks/bench_hmm.py [--quick] [--repeats N] [--ops OPS]
                                     [--states K1,K2,...] [--threads N]

What is timed (same data, same process; median of ``--repeats`` runs):

* score       hmmtie forward_loglik_categorical  | hmmlearn score(X, lengths)
* posteriors  hmmtie posteriors_categorical      | hmmlearn predict_proba(X, lengths)
* viterbi     hmmtie viterbi_categorical (incl. taking logs of the parameters)
                                                 | hmmlearn decode(X, lengths)
* em_iter     hmmtie expected_counts_categorical + normalising the counts
                                                 | hmmlearn _do_estep + _do_mstep
              (the body of one fit iteration, without fit's initialisation)

hmmlearn uses CategoricalHMM(implementation="scaling"), its fastest path; it is
single-threaded. hmmtie runs with numba.set_num_threads(1) and with all cores.
Ratios are hmmlearn time / hmmtie time (above 1: hmmtie is faster).

The 1-thread and n-thread runs are interleaved round by round with an ideal
parallel loop (``ceiling``: independent compute-bound chunks, see
``_common.thread_gain``); ``thr-gain`` is hmmtie's own gain and ``ceiling`` the
gain the machine gave that loop in the same rounds. On a shared VM the second
core is often partly stolen: judge thr-gain against the ceiling.
"""

import argparse
import statistics
import time
import warnings

import numba
import numpy as np

from hmmtie._kernels import hmm as K
from _common import cpu_model, thread_gain  # noqa: E402  (tests/benchmarks/_common.py)

FULL = [(4, 4, 1_000_000, 100), (16, 20, 1_000_000, 100),
        (64, 20, 200_000, 20), (256, 20, 50_000, 5)]
QUICK = [(4, 4, 200_000, 100), (16, 20, 200_000, 100),
         (64, 20, 40_000, 20), (256, 20, 10_000, 5)]


def make_problem(n_states, n_symbols, n_samples, n_seqs, seed=0):
    rng = np.random.default_rng(seed)
    startprob = rng.dirichlet(np.ones(n_states))
    transmat = rng.dirichlet(np.ones(n_states), size=n_states)
    emissionprob = rng.dirichlet(np.ones(n_symbols), size=n_states)
    symbols = rng.integers(n_symbols, size=n_samples).astype(np.int64)
    lengths = np.full(n_seqs, n_samples // n_seqs)
    lengths[: n_samples - lengths.sum()] += 1
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return startprob, transmat, emissionprob, symbols, lengths, offsets


def hmmtie_ops(startprob, transmat, emissionprob, symbols, offsets):
    def score():
        return K.forward_loglik_categorical(startprob, transmat, emissionprob,
                                            symbols, offsets)

    def post():
        return K.posteriors_categorical(startprob, transmat, emissionprob,
                                        symbols, offsets)

    def vit():
        with np.errstate(divide="ignore"):
            ls, lt, le = np.log(startprob), np.log(transmat), np.log(emissionprob)
        return K.viterbi_categorical(ls, lt, le, symbols, offsets)

    def em():
        lp, n_start, n_trans, n_emit = K.expected_counts_categorical(
            startprob, transmat, emissionprob, symbols, offsets)
        return (n_start / n_start.sum(),
                n_trans / n_trans.sum(axis=1, keepdims=True),
                n_emit / n_emit.sum(axis=1, keepdims=True))

    return {"score": score, "posteriors": post, "viterbi": vit, "em_iter": em}


def hmmlearn_ops(startprob, transmat, emissionprob, symbols, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hmmlearn.hmm import CategoricalHMM
    n_states, n_symbols = emissionprob.shape
    model = CategoricalHMM(n_components=n_states, n_features=n_symbols,
                           implementation="scaling", init_params="")
    model.startprob_, model.transmat_, model.emissionprob_ = (
        startprob.copy(), transmat.copy(), emissionprob.copy())
    X = symbols[:, None]

    def em():
        m = CategoricalHMM(n_components=n_states, n_features=n_symbols,
                           implementation="scaling", init_params="")
        m.startprob_, m.transmat_, m.emissionprob_ = (
            startprob.copy(), transmat.copy(), emissionprob.copy())
        stats, _ = m._do_estep(X, lengths)
        m._do_mstep(stats)
        return m

    return {"score": lambda: model.score(X, lengths),
            "posteriors": lambda: model.predict_proba(X, lengths),
            "viterbi": lambda: model.decode(X, lengths),
            "em_iter": em}


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compile_times():
    """First-call time of each public function on a tiny problem (includes
    numba compilation, or loading from the cache when it is warm)."""
    sp, tm, ep, sym, lengths, off = make_problem(3, 4, 40, 8, seed=1)
    fp = np.ascontiguousarray(ep.T[sym])
    lo = np.zeros(len(sym))
    with np.errstate(divide="ignore"):
        lsp, ltm, lep, lfp = np.log(sp), np.log(tm), np.log(ep), np.log(fp)
    calls = [
        ("forward_loglik", lambda: K.forward_loglik(sp, tm, fp, lo, off)),
        ("posteriors", lambda: K.posteriors(sp, tm, fp, lo, off)),
        ("expected_counts", lambda: K.expected_counts(sp, tm, fp, lo, off)),
        ("forward_loglik_categorical",
         lambda: K.forward_loglik_categorical(sp, tm, ep, sym, off)),
        ("posteriors_categorical",
         lambda: K.posteriors_categorical(sp, tm, ep, sym, off)),
        ("expected_counts_categorical",
         lambda: K.expected_counts_categorical(sp, tm, ep, sym, off)),
        ("viterbi", lambda: K.viterbi(lsp, ltm, lfp, off)),
        ("viterbi_categorical",
         lambda: K.viterbi_categorical(lsp, ltm, lep, sym, off)),
    ]
    out = []
    for name, fn in calls:
        t0 = time.perf_counter()
        fn()
        out.append((name, time.perf_counter() - t0))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="5x shorter data (K and sequence counts kept)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS,
                        help="thread count for the multi-threaded column")
    parser.add_argument("--ops", default="score,posteriors,viterbi,em_iter")
    parser.add_argument("--states", default=None,
                        help="only the problems with these K (comma-separated)")
    args = parser.parse_args()

    print(f"CPU: {cpu_model()}  (numba threads available: "
          f"{numba.config.NUMBA_NUM_THREADS})")
    t0 = time.perf_counter()
    first = compile_times()
    print(f"first calls (compile or cache load), total "
          f"{time.perf_counter() - t0:.2f} s:")
    for name, dt in first:
        print(f"  {name:30s} {dt:8.3f} s")
    print()
    ops = args.ops.split(",")
    header = (f"{'K':>4} {'M':>3} {'T':>8} {'S':>4} {'op':>11} "
              f"{'hmmlearn':>9} {'hmmtie@1':>9} {'ratio@1':>8} "
              f"{'hmmtie@' + str(args.threads):>9} {'ratio@' + str(args.threads):>8} "
              f"{'thr-gain':>8} {'ceiling':>8}")
    print(header)
    print("-" * len(header))
    problems = QUICK if args.quick else FULL
    if args.states:
        keep = {int(k) for k in args.states.split(",")}
        problems = [p for p in problems if p[0] in keep]
    for n_states, n_symbols, n_samples, n_seqs in problems:
        sp, tm, ep, sym, lengths, off = make_problem(n_states, n_symbols,
                                                     n_samples, n_seqs)
        mine = hmmtie_ops(sp, tm, ep, sym, off)
        theirs = hmmlearn_ops(sp, tm, ep, sym, lengths)
        for op in ops:
            t_ref = median_time(theirs[op], args.repeats)
            mine[op]()  # warm (first-touch, dispatch)
            t1, tn, ceil = thread_gain(mine[op], args.threads, args.repeats)
            row = [t1, tn]
            print(f"{n_states:4d} {n_symbols:3d} {n_samples:8d} {n_seqs:4d} "
                  f"{op:>11} {t_ref:9.4f} {row[0]:9.4f} {t_ref / row[0]:7.2f}x "
                  f"{row[1]:9.4f} {t_ref / row[1]:7.2f}x "
                  f"{row[0] / row[1]:7.2f}x {ceil:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
