"""Benchmark: Conv1D forward + backward against NumPy / scipy.signal baselines.

Run:  python tests/benchmarks/bench_neural.py [--quick]

Prints the CPU, the median time of each implementation measured in the same
run, and ratios against the baselines; then times the N = 2048 sample-
efficiency experiment (must train in under 60 s).  BLAS is pinned to one
thread (set before NumPy is imported) because oversubscribed BLAS threads
dominate these small matrix products on a shared machine.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.signal import correlate, convolve  # noqa: E402

from hmmtie import tying  # noqa: E402
from hmmtie.neural import Conv1D  # noqa: E402
from hmmtie.neural.experiments import format_table, sample_efficiency  # noqa: E402
from _common import cpu_model  # noqa: E402  (tests/benchmarks/_common.py)


def median_time(f, repeat):
    f()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def scipy_conv_fb(x, W, b, dy):
    """Forward and backward of a valid 1-D cross-correlation with scipy.signal loops."""
    n, L, C = x.shape
    K, _, O = W.shape
    y = np.empty((n, L - K + 1, O))
    for i in range(n):
        for o in range(O):
            y[i, :, o] = sum(correlate(x[i, :, c], W[:, c, o], mode="valid") for c in range(C)) + b[o]
    dW = np.zeros_like(W)
    dx = np.zeros_like(x)
    for i in range(n):
        for o in range(O):
            for c in range(C):
                dW[:, c, o] += correlate(x[i, :, c], dy[i, :, o], mode="valid")
                dx[i, :, c] += convolve(dy[i, :, o], W[:, c, o], mode="full")
    return y, dW, dx


def numpy_conv_fb(x, W, b, dy):
    """Forward and backward by a loop over kernel offsets (tensordot per offset)."""
    n, L, C = x.shape
    K, _, O = W.shape
    P = L - K + 1
    y = sum(x[:, k:k + P, :] @ W[k] for k in range(K)) + b
    dW = np.stack([np.tensordot(x[:, k:k + P, :], dy, axes=([0, 1], [0, 1])) for k in range(K)])
    dx = np.zeros_like(x)
    for k in range(K):
        dx[:, k:k + P, :] += dy @ W[k].T
    return y, dW, dx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats, skip the N=2048 run")
    args = ap.parse_args()
    rep = 5 if args.quick else 15
    print(f"CPU: {cpu_model()}  (BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']})")
    print(f"{'shape (n, L, C->O, K)':28s} {'hmmtie':>10s} {'numpy':>10s} {'scipy':>10s} "
          f"{'numpy/hmmtie':>13s} {'scipy/hmmtie':>13s}")
    rng = np.random.default_rng(0)
    for n, L, C, O, K in [(64, 100, 4, 8, 19), (256, 100, 4, 16, 19), (32, 1000, 4, 32, 11)]:
        conv = Conv1D(C, O, K)
        theta = rng.normal(size=conv.n_atoms)
        P = {k: tying.expand(theta, t) for k, t in conv.ties().items()}
        x = rng.normal(size=(n, L, C))
        dy = rng.normal(size=(n, L - K + 1, O))

        def ours():
            y, c = conv.forward(P, x)
            return conv.backward(P, c, dy)

        y, c = conv.forward(P, x)
        dx, g = conv.backward(P, c, dy)
        ys, dWs, dxs = scipy_conv_fb(x[:2], P["W"], P["b"], dy[:2])
        assert np.allclose(y[:2], ys) and np.allclose(dx[:2], dxs)
        t_ours = median_time(ours, rep)
        t_np = median_time(lambda: numpy_conv_fb(x, P["W"], P["b"], dy), rep)
        t_sp = median_time(lambda: scipy_conv_fb(x, P["W"], P["b"], dy), max(3, rep // 5))
        print(f"{str((n, L, f'{C}->{O}', K)):28s} {t_ours * 1e3:8.2f}ms {t_np * 1e3:8.2f}ms "
              f"{t_sp * 1e3:8.1f}ms {t_np / t_ours:13.2f} {t_sp / t_ours:13.1f}")
    if not args.quick:
        t0 = time.perf_counter()
        res = sample_efficiency(sizes=(2048,))
        print(f"\nN = 2048 sample-efficiency run (4 models): {time.perf_counter() - t0:.1f} s")
        print(format_table(res))
        print("training seconds:", {k: round(v[2048], 1) for k, v in res["seconds"].items()})


if __name__ == "__main__":
    main()
