"""Tests for hmmtie.tying: index maps, exact M-step, spec validation, counts."""
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

from hmmtie import tying
from hmmtie.tying import FIXED, ProbBlock, compile_block, compile_hmm_spec


def test_expand_reduce_are_transposes():
    rng = np.random.default_rng(0)
    tie = np.array([[0, 1, FIXED], [2, 0, 1]])
    atoms = rng.random(3)
    full = tying.expand(atoms, tie, fixed=7.0)
    assert full[0, 2] == 7.0 and full[1, 1] == atoms[0]
    stat = rng.random(tie.shape)
    red = tying.reduce(stat, tie, 3)
    # <expand(a), s> over free cells == <a, reduce(s)>
    free = tie != FIXED
    assert np.isclose((tying.expand(atoms, tie, 0.0) * stat)[free].sum(), atoms @ red, rtol=1e-14)
    assert red[0] == pytest.approx(stat[0, 0] + stat[1, 1])
    assert tying.n_uses(tie, 3).tolist() == [2, 2, 1]


def test_reduce_with_trailing_dims():
    tie = np.array([0, 1, 0])
    stat = np.arange(6.0).reshape(3, 2)
    assert tying.reduce(stat, tie, 2).tolist() == [[4.0, 6.0], [2.0, 3.0]]


def _objective_check(block, counts):
    """The exact M-step against scipy.optimize on the same objective."""
    n = tying.reduce(counts, block.tie, block.n_atoms)
    p = block.mstep(counts)
    full = block.expand(p)
    assert np.allclose(full.sum(axis=1), 1.0, atol=1e-10)

    def negll(x):
        return -np.sum(n * np.log(np.maximum(x, 1e-300)))

    cons = []
    for r in range(block.tie.shape[0]):
        row_m = block.m[r]
        if row_m.sum() == 0:
            continue
        cons.append({"type": "eq", "fun": lambda x, row_m=row_m, r=r: row_m @ x - block.free_mass[r]})
    x0 = block.uniform_atoms()
    res = minimize(negll, x0, constraints=cons, bounds=[(1e-12, 1)] * block.n_atoms,
                   method="SLSQP", options={"ftol": 1e-14, "maxiter": 1000})
    assert res.success
    # The exact solution is at least as good as scipy's and agrees with it.
    assert negll(p) <= res.fun + 1e-8
    assert np.allclose(p, res.x, atol=1e-5)


def test_cross_row_mstep_matches_scipy():
    # One termination probability shared by rows that are otherwise different.
    tie = np.array([[0, 1, 2, 3], [4, 4, 5, 3], [6, 7, 8, 3]])
    block = ProbBlock("trans", tie)
    assert not block.components[0].closed_form
    counts = np.array([[10.0, 3, 2, 1], [4, 6, 9, 2], [1, 1, 30, 5]])
    _objective_check(block, counts)


def test_cross_row_with_fixed_cells_matches_scipy():
    tie = np.array([[0, 1, FIXED], [2, 1, 3], [FIXED, 1, 4]])
    fixed = np.array([[0, 0, 0.2], [0, 0, 0], [0.5, 0, 0]])
    block = ProbBlock("trans", tie, fixed)
    counts = np.array([[5.0, 2, 0], [3, 8, 1], [0, 4, 7]])
    _objective_check(block, counts)
    full = block.expand(block.mstep(counts))
    assert full[0, 2] == 0.2 and full[2, 0] == 0.5


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_random_cross_row_mstep_is_optimal(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = rng.integers(2, 4), rng.integers(2, 5)
    n_atoms = rng.integers(2, n_rows * n_cols + 1)
    tie = rng.integers(0, n_atoms, size=(n_rows, n_cols))
    _, tie = np.unique(tie, return_inverse=True)
    tie = tie.reshape(n_rows, n_cols)
    try:
        block = ProbBlock("t", tie)
    except ValueError as exc:  # infeasible random structure
        assert "cannot all sum to 1" in str(exc)
        return
    counts = rng.gamma(2.0, 3.0, size=tie.shape) + 0.1
    p = block.mstep(counts)
    full = block.expand(p)
    assert np.allclose(full.sum(axis=1), 1.0, atol=1e-9)
    n = tying.reduce(counts, tie, block.n_atoms)
    best = n @ np.log(p)
    # No random feasible point beats the M-step.
    for _ in range(20):
        q = block.random_atoms(rng)
        assert n @ np.log(q) <= best + 1e-12 * abs(best)


def test_closed_form_rows_tied_as_wholes():
    tie = np.array([[0, 1, 2], [0, 1, 2], [3, 4, 5]])
    block = ProbBlock("emission", tie)
    assert all(c.closed_form for c in block.components)
    counts = np.array([[1.0, 2, 3], [3, 2, 1], [5, 0, 5]])
    full = block.expand(block.mstep(counts))
    assert np.allclose(full[0], [4 / 12, 4 / 12, 4 / 12])
    assert np.allclose(full[2], [0.5, 0, 0.5])


def test_mstep_keeps_values_of_unvisited_rows():
    block = ProbBlock("t", np.array([[0, 1], [2, 3]]))
    old = np.array([0.3, 0.7, 0.6, 0.4])
    new = block.mstep(np.array([[0.0, 0.0], [1.0, 3.0]]), old)
    assert np.allclose(new, [0.3, 0.7, 0.25, 0.75])


def test_free_parameter_counts_by_hand():
    states = ["A", "B", "C", "D"]
    t = compile_hmm_spec(None, states, family="categorical", n_symbols=4)
    # untied K=4, M=4: 3 + 12 + 12 = 27
    assert t.start.n_free + t.trans.n_free + t.emission.n_free == 27
    # emission groups: A,B share; C,D share -> 2 distributions * 3 = 6
    t = compile_hmm_spec({"emission_groups": {"g1": ["A", "B"], "g2": ["C", "D"]}}, states,
                         family="categorical", n_symbols=4)
    assert t.emission.n_free == 6
    # left-right: upper bidiagonal transitions, start fixed at A
    zeros = [[a, b, 0.0] for i, a in enumerate(states) for j, b in enumerate(states) if j not in (i, i + 1)]
    t = compile_hmm_spec({"fixed": {"transmat": zeros, "startprob": [["B", 0.0], ["C", 0.0], ["D", 0.0]]}},
                         states, family="categorical", n_symbols=4)
    # start: fully determined (0); trans rows A,B,C have 1 free each, D is fixed (D->D = 1)
    assert t.start.n_free == 0
    assert t.trans.n_free == 3
    # a frozen value: A->B fixed at 0.1 leaves A's row with 2 free of 4 cells - 1 constraint
    t = compile_hmm_spec({"fixed": {"transmat": [["A", "B", 0.1]]}}, states, family="categorical", n_symbols=4)
    assert t.trans.n_free == 11
    # a cross-row tie: one 'stay' for all four rows; 4 rows of 3 other cells
    t = compile_hmm_spec({"transitions": {"stay": [[s, s] for s in states]}}, states,
                         family="categorical", n_symbols=4)
    # atoms: 1 + 12 = 13, constraints rank 4 -> 9
    assert t.trans.n_free == 9


def test_gaussian_tie_maps():
    t = compile_hmm_spec({"emission_groups": {"m": {"states": ["a", "b"], "share": "means"},
                                              "c": {"states": ["b", "c"], "share": "covars"}}},
                         ["a", "b", "c"], family="gaussian")
    assert t.means_tie.tolist() == [0, 0, 1] and t.n_means == 2
    assert t.covars_tie.tolist() == [0, 1, 1] and t.n_covars == 2


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"emission_groups": {"g": ["A", "Q"]}}, "group 'g': unknown state 'Q'"),
        ({"transitions": {"x": [["A", "B"]], "y": [["A", "B"], ["B", "A"]]}}, "cell (A, B) is in two groups, 'x' and 'y'"),
        ({"fixed": {"transmat": [["A", "A", 0.7], ["A", "B", 0.6]]}}, "fixed cells of row 'A' sum to 1.3 > 1"),
        ({"emission_groups": {"g": {"states": ["A", "B"], "share": "means"}}}, "this model's emissions are categorical"),
        ({"emission_groups": {"g": ["A", "B"], "h": ["B", "C"]}}, "state 'B' is in two emission groups"),
        ({"transitions": {"t": [["A", "A"], ["B", "B"]]}, "fixed": {"transmat": [["A", "A", 0.5]]}}, "cell (A, A) is fixed and cannot be tied"),
        ({"bogus": 1}, "unknown key(s) ['bogus']"),
        ({"fixed": {"transmat": [["C", "C", 0.5], ["C", "A", 0.25]] + [["C", "B", 0.25]]}}, None),
    ],
)
def test_spec_errors_are_one_line(spec, message):
    if message is None:  # a fully fixed row that sums to 1 is fine
        compile_hmm_spec(spec, ["A", "B", "C"], family="categorical", n_symbols=3)
        return
    with pytest.raises(ValueError) as exc:
        compile_hmm_spec(spec, ["A", "B", "C"], family="categorical", n_symbols=3)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_infeasible_tied_rows_are_rejected():
    # Row 0 holds atom a twice, row 1 holds only a: 2p = 1 and p = 1 cannot both hold.
    with pytest.raises(ValueError, match="cannot all sum to 1"):
        ProbBlock("t", np.array([[0, 0], [0, FIXED]]), np.zeros((2, 2)))


def test_fully_fixed_row_must_sum_to_one():
    with pytest.raises(ValueError, match="no free cells"):
        compile_block("transmat", ["A", "B"], ["A", "B"], fixed={("A", "A"): 0.5, ("A", "B"): 0.2})


def test_atoms_from_full_names_violated_tie():
    block = compile_block("transmat", ["A", "B"], ["A", "B"], cell_groups={"stay": [("A", "A"), ("B", "B")]})
    with pytest.raises(ValueError, match=r"tied cells \(A, A\) = 0.9 and \(B, B\) = 0.8 differ"):
        block.atoms_from_full(np.array([[0.9, 0.1], [0.2, 0.8]]))


def test_unvisited_row_sharing_an_atom_takes_the_slack():
    # tau (atom 2) is shared; row 1 was never visited (its own atoms have no counts)
    block = ProbBlock("trans", np.array([[0, 1, 2], [3, 4, 2]]))
    old = np.array([0.5, 0.4, 0.1, 0.6, 0.3])
    counts = np.array([[6.0, 3.0, 1.0], [0.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = block.mstep(counts, old)
    full = block.expand(p)
    assert np.allclose(full[0], [0.6, 0.3, 0.1])  # row 0 alone decides tau
    assert np.allclose(full.sum(axis=1), 1.0)
    assert full[1, 0] / full[1, 1] == pytest.approx(2.0)  # slack spread as before (0.6 : 0.3)


@pytest.mark.parametrize("tie, counts, expected", [
    # rows r0 = [x, y], r1 = [x, z], x tied; r1 never visited: x = 5/8, y = z = 3/8
    # (the dual solve pinned z at 0 and returned x = 1, y = 0: Q = -inf; found by review)
    ([[0, 1, FIXED], [0, FIXED, 2]], [[5.0, 3.0, 0.0], [0.0, 0.0, 0.0]],
     [[0.625, 0.375, 0.0], [0.625, 0.0, 0.375]]),
])
def test_atoms_without_counts_take_up_the_slack(tie, counts, expected):
    block = ProbBlock("trans", np.array(tie))
    for old in (None, block.uniform_atoms()):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            full = block.expand(block.mstep(np.array(counts), old))
        np.testing.assert_allclose(full, expected, atol=1e-7)


def test_zero_count_atoms_shared_across_rows_match_scipy():
    """Ties across rows with atoms that received no counts: the M-step
    equals a multi-start SLSQP optimum (it returned a point 23 log-units
    worse without a warning before; found by review)."""
    block = tying.compile_block("transmat", ["r0", "r1", "r2", "r3"], ["c0", "c1", "c2"], cell_groups={
        "g0": [("r0", "c2"), ("r1", "c0"), ("r1", "c2")], "g1": [("r2", "c0"), ("r3", "c0")],
        "g2": [("r2", "c2"), ("r0", "c0")]})
    counts = np.array([[0.321, 1.9359, 0.8282], [6.7677, 2.1037, 0.7153],
                       [1.5453, 0.0, 0.0], [3.2091, 11.5117, 0.0]])
    old = np.array([0.199, 0.4109, 0.3902, 0.2197, 0.3713, 0.4297, 0.0882, 0.5405])
    n = tying.reduce(counts, block.tie, block.n_atoms)

    def q(x):
        return float(np.sum(np.where(n > 0, n * np.log(np.maximum(x, 1e-300)), 0.0)))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = block.mstep(counts, old)
    assert np.allclose(block.expand(p).sum(axis=1), 1.0, atol=1e-9)
    cons = [{"type": "eq", "fun": lambda x, r=r: block.m[r] @ x - 1.0} for r in range(4)]
    rng = np.random.default_rng(0)
    best = -np.inf
    for _ in range(30):
        res = minimize(lambda x: -q(x), block.random_atoms(rng), constraints=cons,
                       bounds=[(0, 1)] * block.n_atoms, method="SLSQP", options={"ftol": 1e-15, "maxiter": 2000})
        if np.max(np.abs(block.m @ res.x - 1.0)) < 1e-9:
            best = max(best, -res.fun)
    assert best > q(old) + 20  # the case is far from its start
    assert q(p) >= best - 1e-6 * abs(best)


@pytest.mark.parametrize("states, spec, forced, n_free", [
    # ties force (s2, s3) and (s2, s4) to 0: counted as free parameters before
    # (8 instead of 7; found by review)
    (["s1", "s2", "s3", "s4"], {"transitions": {"self": [["s1", "s1"], ["s2", "s2"]],
                                                "cross": [["s1", "s2"], ["s2", "s1"]]},
                                "fixed": {"transmat": [["s1", "s3", 0.0], ["s1", "s4", 0.0]]}},
     ["(s2, s3)", "(s2, s4)"], 7),
    # a transition fixed at 1 leaves the row's other cells only 0 (5 instead of 4)
    (["a", "b", "c"], {"fixed": {"transmat": [["a", "b", 1.0]]}}, ["(a, a)", "(a, c)"], 4),
])
def test_free_cells_forced_to_zero_are_fixed_at_zero(states, spec, forced, n_free):
    tie = tying.compile_hmm_spec(spec, states, family="categorical", n_symbols=2)
    assert tie.trans.forced_zero == forced
    assert tie.trans.n_free == n_free
    full = tie.trans.expand(tie.trans.uniform_atoms())
    assert np.allclose(full.sum(axis=1), 1.0)
    for cell in forced:
        r, c = (states.index(v) for v in cell.strip("()").split(", "))
        assert full[r, c] == 0.0


def test_expand_and_reduce_refuse_entries_outside_the_atoms():
    """-2 read atoms[-2] and an index >= n_atoms lengthened the result (found by review)."""
    with pytest.raises(ValueError, match="tie map holds -2"):
        tying.expand(np.arange(3.0), np.array([0, -2, -1]))
    with pytest.raises(ValueError, match="tie map holds 2"):
        tying.reduce(np.ones(3), np.array([0, 1, 2]), 2)


def _q(block, counts, atoms):
    n = tying.reduce(np.asarray(counts, float), block.tie, block.n_atoms)
    return tying._expected_loglik(n, atoms)


def test_mstep_after_a_candidate_of_zero_likelihood():
    """Review 33: the slack-row candidate came first with an expected
    log-likelihood of -inf, and the next comparison read -inf + inf = NaN:
    the optimal candidate behind it was never taken and the M-step kept
    the old values (EM stalled with a warning each iteration)."""
    blk = ProbBlock("transmat", [[0, 1, 0], [2, 2, 3], [0, 4, 2]], row_labels="abc", col_labels="abc")
    counts = [[0.05, 1.1, 0.0], [0.9, 0.9, 0.0], [0.0, 0.0, 0.0]]
    old = np.array([0.04, 0.92, 0.49, 0.02, 0.47])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = blk.mstep(np.array(counts), old)
    # the optimum (row b takes no counts of its own: p2 = 1/2, rows a and c
    # split their mass 0.05 : 1.1 between p0 and p1, p4 = 1 - p0 - p2)
    p0, p1 = 1.0 / 46.0, 22.0 / 23.0
    assert abs(_q(blk, counts, new) - _q(blk, counts, np.array([p0, p1, 0.5, 0.0, 1 - p0 - 0.5]))) < 1e-9
    assert _q(blk, counts, new) > _q(blk, counts, old) + 0.04


def test_mstep_with_counts_spanning_many_orders_of_magnitude():
    """Review 33: counts from 1e-76 to 3 left the dual's Newton system
    singular and the M-step kept the old values ("no interior solution");
    the solves with floored counts come within the floor of the optimum
    (closed form here:
    p2 = n2 / N, p3 = p4 = 1 - p2, p0 : p1 = n0 : n1)."""
    blk = ProbBlock("transmat", [[0, 1, 2], [3, -1, 2], [4, -1, 2]], row_labels="abc", col_labels="abc")
    counts = np.array([[2.5938929814379231e-76, 3.7982601644386861e-04, 9.9962017398355618e-01],
                       [3.8097955952084521e-25, 0.0, 3.7982601644386850e-04],
                       [3.6934182533183910e-20, 0.0, 1.9996201739835557e+00]])
    old = np.array([6.5482995381163795e-59, 2.5321734429591239e-04, 9.9974678265570416e-01,
                    2.5321734429586181e-04, 2.5321734429594605e-04])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = blk.mstep(counts, old)
    n = tying.reduce(counts, blk.tie, blk.n_atoms)
    p2 = n[2] / n.sum()
    best = np.array([n[0] / (n[0] + n[1]) * (1 - p2), n[1] / (n[0] + n[1]) * (1 - p2), p2, 1 - p2, 1 - p2])
    # the floor (1e-14 of the total count, the lowest that solved) moves
    # the objective by about that much
    assert abs(_q(blk, counts, new) - _q(blk, counts, best)) <= 1e-13 * n.sum()
    assert np.allclose(blk.expand(new).sum(axis=1), 1.0, atol=1e-12)
