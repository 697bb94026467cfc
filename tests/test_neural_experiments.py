"""Planted-motif data, AUROC, parameter table, and the sample-efficiency result."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hmmtie.neural import (CTCF_MA0139_1_COUNTS, auroc, ctcf_pwm, parameter_table,
                           planted_motif_data)
from hmmtie.neural.experiments import build_classifier


def test_ctcf_counts_match_data_copy():
    # JASPAR MA0139.1: 19 positions; columns total 908..913 sites as published
    assert CTCF_MA0139_1_COUNTS.shape == (19, 4)
    assert CTCF_MA0139_1_COUNTS.sum(1).max() == 913 and CTCF_MA0139_1_COUNTS.sum(1).min() == 908
    path = Path(__file__).resolve().parents[1] / "data" / "motifs" / "MA0139.1.jaspar"
    if path.exists():                         # the documented copy must agree with the constant
        rows = [l.split("[")[1].split("]")[0].split() for l in path.read_text().splitlines()[1:]]
        np.testing.assert_array_equal(np.array(rows, dtype=int).T, CTCF_MA0139_1_COUNTS)
    np.testing.assert_allclose(ctcf_pwm().sum(1), 1.0)


def test_planted_data_is_seeded_balanced_and_planted():
    X, y = planted_motif_data(200, 100, random_state=7)
    X2, _ = planted_motif_data(200, 100, random_state=7)
    np.testing.assert_array_equal(X, X2)
    assert X.shape == (200, 100, 4) and y.sum() == 100
    np.testing.assert_array_equal(X.sum(2), 1.0)
    # best PWM log-odds over both strands separates positives from negatives
    lo = np.log(ctcf_pwm() / 0.25)
    win = np.lib.stride_tricks.sliding_window_view(X, 19, axis=1)        # (n, 82, 4, 19)
    s = np.maximum(np.einsum("npck,kc->np", win, lo), np.einsum("npck,kc->np", win, lo[::-1, ::-1]))
    assert auroc(y, s.max(1)) > 0.97


def test_auroc_known_values():
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auroc([0, 1, 0, 1], [1, 1, 1, 1]) == 0.5
    assert auroc([1, 0], [0.0, 1.0]) == 0.0


def test_parameter_table_comes_from_tie_maps():
    t = parameter_table(100, 19, 8, 16)
    n_pos = 100 - 19 + 1
    conv_first = 19 * 4 * 8 + 8
    assert t["lc"] - 9 == n_pos * conv_first           # LC/conv ratio = positions, exactly
    assert t["conv"] - 9 == conv_first
    assert t["rcconv"] == 19 * 4 * 4 + 4 + 4 + 1       # half the filters, tied head
    assert t["dense"] == 400 * 16 + 16 + 17
    for k, n in t.items():
        assert build_classifier(k).registry.n_atoms == n


_RUN = """
import json
from hmmtie.neural import sample_efficiency
r = sample_efficiency(sizes=(64, 256), n_test=1000)
print(json.dumps({k: {str(N): v for N, v in d.items()} for k, d in r["auroc"].items()}))
"""


@pytest.mark.slow
def test_sample_efficiency_shape():
    # a child process so that BLAS can be pinned to one thread before NumPy loads
    # (threaded BLAS on these small products is several times slower on 2 cores)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    a = json.loads(out.strip().splitlines()[-1])
    assert a["conv"]["256"] >= 0.90
    assert a["dense"]["256"] <= 0.65 and a["lc"]["256"] <= 0.65
    assert a["rcconv"]["64"] >= a["conv"]["64"] and a["rcconv"]["256"] >= a["conv"]["256"]
