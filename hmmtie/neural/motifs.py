"""The CTCF motif used by the planted-motif experiment.

JASPAR MA0139.1 (CTCF, Homo sapiens), position frequency matrix: counts of
A, C, G, T at 19 positions over 913 sites.  Source: JASPAR CORE,
https://jaspar.genereg.net/matrix/MA0139.1/ (data licensed CC BY 4.0; cite
Rauluseviciute et al., JASPAR 2024, Nucleic Acids Res. 52:D174).  The same
counts are kept as ``data/motifs/MA0139.1.jaspar`` with its README.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["CTCF_MA0139_1_COUNTS", "ctcf_pwm"]

#: Rows are positions 1..19, columns A, C, G, T (JASPAR MA0139.1 counts).
CTCF_MA0139_1_COUNTS = np.array([
    [87, 291, 76, 459],
    [167, 145, 414, 187],
    [281, 49, 449, 134],
    [56, 800, 21, 36],
    [8, 903, 0, 2],
    [744, 13, 65, 91],
    [40, 528, 334, 11],
    [107, 433, 48, 324],
    [851, 11, 32, 18],
    [5, 0, 903, 3],
    [333, 3, 566, 9],
    [54, 12, 504, 341],
    [12, 0, 890, 8],
    [56, 8, 775, 71],
    [104, 733, 5, 67],
    [372, 13, 507, 17],
    [82, 482, 307, 37],
    [117, 322, 73, 396],
    [402, 181, 266, 59],
], dtype=np.int64)


def ctcf_pwm(pseudocount: float = 0.25) -> NDArray[np.float64]:
    """Position probability matrix of CTCF, shape (19, 4), rows sum to one."""
    if isinstance(pseudocount, bool) or not isinstance(pseudocount, (int, float)) or not 0 <= pseudocount < np.inf:
        raise ValueError(f"ctcf_pwm: pseudocount must be a finite number >= 0, got {pseudocount!r}")
    c = CTCF_MA0139_1_COUNTS + pseudocount
    return c / c.sum(1, keepdims=True)
