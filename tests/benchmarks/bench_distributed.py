"""Scale-out benchmark: one process (numba threads) against a Dask LocalCluster.

Run from the repository root (needs ``pip install -e '.[dask]'``)::

    python tests/benchmarks/bench_distributed.py                   # 10,000 pairs of ~300 aa
    python tests/benchmarks/bench_distributed.py --pairs 1000      # quicker
    python tests/benchmarks/bench_distributed.py --workers 2 4 8   # several cluster sizes

Protein pairs are drawn with a fixed seed: ``x`` of about ``--length``
residues from the 3-state preset's background frequencies, ``y`` from ``x``
with 30% substitutions and 5% single-residue indels.  For each
configuration, in a fresh subprocess:

* MEA alignment of every pair with ``PairHMM.align_many`` (pairs/s);
* EM with ``PairHMM.fit(params="all")``: seconds per iteration (time between
  consecutive E-step callbacks, which includes the M-step and, on Dask, the
  reduction of the partition statistics);
* peak resident memory: the process's own ``ru_maxrss`` (``single``); the
  client's plus the largest worker's (``dask``).

``single`` uses numba's threads (all cores); ``dask-N`` a LocalCluster of N
single-threaded worker processes on loopback.  The two paths give identical
results (checked: the EM log-likelihood histories must be equal).
The table is printed as Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def make_pairs(n, length, seed=0):
    from hmmtie import PairHMM

    m = PairHMM.preset("3state", alphabet="protein")
    letters = np.array(list(m._alph.letters))
    q = m.background_
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        L = max(20, int(rng.normal(length, length / 10)))
        x = rng.choice(letters, L, p=q)
        y = x.copy()
        sub = rng.random(L) < 0.30
        y[sub] = rng.choice(letters, int(sub.sum()), p=q)
        keep = rng.random(L) > 0.025
        y = list(y[keep])
        for pos in sorted(rng.choice(len(y), int(0.025 * L), replace=False), reverse=True):
            y.insert(int(pos), str(rng.choice(letters, p=q)))
        out.append(("".join(x), "".join(y)))
    return out


def child(mode, n_pairs, length, n_iter):
    import logging

    from hmmtie import PairHMM

    pairs = make_pairs(n_pairs, length)
    model = PairHMM.preset("3state", alphabet="protein")
    list(model.align_many(pairs[:2]))  # compile (cached) before timing
    client = cluster = None
    if mode.startswith("dask"):
        import distributed

        n = int(mode.split("-")[1])
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                           silence_logs=logging.ERROR)
        client = distributed.Client(cluster)
        client.run(lambda: list(PairHMM.preset("3state", alphabet="protein").align_many([("ACD", "AD")])))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    n_cols = 0
    for aln in model.align_many(pairs, method="mea", client=client):
        n_cols += aln.shape[1]
    t_align = time.perf_counter() - t
    stamps = []
    fitted = PairHMM.preset("3state", alphabet="protein")
    t = time.perf_counter()
    fitted.fit(pairs, n_iter=n_iter, tol=0.0, params="all", emission_pseudocount=1.0, client=client,
               callback=lambda it, obj: stamps.append(time.perf_counter()))
    t_first = stamps[0] - t
    per_iter = float(np.mean(np.diff(stamps))) if len(stamps) > 1 else float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker_peak = 0
    if client is not None:
        worker_peak = max(client.run(lambda: __import__("resource").getrusage(
            __import__("resource").RUSAGE_SELF).ru_maxrss).values())
        client.close()
        cluster.close()
    print(json.dumps({
        "mode": mode, "pairs": n_pairs, "align_s": t_align, "pairs_per_s": n_pairs / t_align,
        "first_estep_s": t_first, "em_iter_s": per_iter, "history": fitted.history_,
        "client_peak_mib": peak / 1024, "client_growth_mib": (peak - base) / 1024,
        "worker_peak_mib": worker_peak / 1024, "columns": n_cols,
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--length", type=int, default=300)
    ap.add_argument("--n-iter", type=int, default=2, help="EM iterations (n_iter + 1 E-steps are timed)")
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.pairs, args.length, args.n_iter)
        return
    rows = []
    for mode in ["single"] + [f"dask-{w}" for w in args.workers]:
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--pairs", str(args.pairs),
                              "--length", str(args.length), "--n-iter", str(args.n_iter)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{mode} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"# {mode} done", file=sys.stderr)
    same = all(r["history"] == rows[0]["history"] for r in rows)
    print(f"{args.pairs} protein pairs of ~{args.length} aa; {os.cpu_count()} cores; "
          f"EM histories identical across modes: {same}\n")
    print("| mode | MEA align pairs/s | EM s/iteration | first E-step s | peak RSS client MiB | peak RSS worker MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['pairs_per_s']:.1f} | {r['em_iter_s']:.2f} | {r['first_estep_s']:.2f} "
              f"| {r['client_peak_mib']:.0f} | {r['worker_peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
