"""Model comparison: likelihood-ratio tests, AIC and BIC.

Free-parameter counts always come from the models' tie maps
(``model.n_free_parameters``), never from a per-model formula.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _sps

from ._validation import check_count, check_number
from .tying import FIXED

__all__ = ["LRTResult", "PairComparison", "aic", "bic", "compare_pairs", "lrt", "lrt_from_loglik", "BoundaryWarning"]


class BoundaryWarning(UserWarning):
    """A fitted free probability sits on the boundary (0), or the null fixes
    a free parameter of the full model at 0 or 1: the chi-square reference
    distribution of the LRT may not hold there."""


def aic(loglik: float, n_free: int) -> float:
    """Akaike information criterion ``-2 log L + 2 k``."""
    return -2.0 * check_number("loglik", loglik, nonnegative=False) + 2.0 * check_count("n_free", n_free)


def bic(loglik: float, n_free: int, n_obs: int) -> float:
    """Bayesian information criterion ``-2 log L + k log n``.

    ``n_obs`` is the number of observations: for HMMs the number of symbols
    or frames over all sequences; for pair HMMs the number of residues over
    all pairs (both sequences).
    """
    n_obs = check_count("n_obs", n_obs, low=1)
    return -2.0 * check_number("loglik", loglik, nonnegative=False) + check_count("n_free", n_free) * math.log(n_obs)


@dataclass
class LRTResult:
    """Likelihood-ratio test of a restricted (tied) against a full (untied) model."""

    statistic: float
    df: int
    p_value: float
    loglik_restricted: float
    loglik_full: float
    n_free_restricted: int
    n_free_full: int
    aic_restricted: float
    aic_full: float
    bic_restricted: float
    bic_full: float
    n_obs: int

    def as_dict(self) -> dict:
        return asdict(self)

    def verdict(self, alpha: float = 0.05, restricted: str = "tied", full: str = "untied") -> str:
        """One plain-words line on what the test says at level ``alpha``."""
        if self.p_value < alpha:
            return (
                f"reject the {restricted} hypothesis at alpha={alpha:g} "
                f"(LRT {self.statistic:.3f} on {self.df} df, p={self.p_value:.3g}); "
                f"the {full} model fits significantly better"
            )
        return (
            f"no evidence against the {restricted} hypothesis at alpha={alpha:g} "
            f"(LRT {self.statistic:.3f} on {self.df} df, p={self.p_value:.3g})"
        )


def lrt_from_loglik(
    loglik_restricted: float,
    loglik_full: float,
    n_free_restricted: int,
    n_free_full: int,
    n_obs: int,
) -> LRTResult:
    """LRT statistic ``2 (log L_full - log L_restricted)`` with a chi-square p-value.

    ``df`` is the difference of free-parameter counts.  A slightly negative
    statistic (the full fit found a worse optimum) is reported as computed
    with a warning; its p-value is 1.
    """
    loglik_restricted = check_number("loglik_restricted", loglik_restricted, nonnegative=False)
    loglik_full = check_number("loglik_full", loglik_full, nonnegative=False)
    df = check_count("n_free_full", n_free_full) - check_count("n_free_restricted", n_free_restricted)
    if df <= 0:
        raise ValueError(
            f"the full model must have more free parameters than the restricted one "
            f"(got {n_free_full} vs {n_free_restricted})"
        )
    stat = 2.0 * (float(loglik_full) - float(loglik_restricted))
    # rounding of the two sums is ~1e-12 relative; beyond this the full fit is worse
    if stat < -max(1e-6, 1e-9 * abs(loglik_full)):
        warnings.warn(
            f"LRT statistic is negative ({stat:.4g}): the full model's fit is worse than the "
            "restricted one's (a local optimum); refit the full model from the restricted fit",
            RuntimeWarning,
            stacklevel=2,
        )
    p = float(_sps.chi2.sf(max(stat, 0.0), df))
    return LRTResult(
        statistic=stat,
        df=df,
        p_value=p,
        loglik_restricted=float(loglik_restricted),
        loglik_full=float(loglik_full),
        n_free_restricted=int(n_free_restricted),
        n_free_full=int(n_free_full),
        aic_restricted=aic(loglik_restricted, n_free_restricted),
        aic_full=aic(loglik_full, n_free_full),
        bic_restricted=bic(loglik_restricted, n_free_restricted, n_obs),
        bic_full=bic(loglik_full, n_free_full, n_obs),
        n_obs=int(n_obs),
    )


# a fitted free probability this close to 0 is on the boundary (EM approaches
# 0 geometrically and stops at values like 1e-12, never exactly at 0)
_BOUNDARY_ATOL = 1e-8


def _blocks(model):
    tie = model.tie_
    blocks = [("startprob_", tie.start, model.startprob_[None, :]), ("transmat_", tie.trans, model.transmat_)]
    if getattr(tie, "emission", None) is not None and hasattr(model, "emissionprob_"):
        blocks.append(("emissionprob_", tie.emission, model.emissionprob_))
    return blocks


def _boundary_cells(model) -> list[str]:
    """Free probabilities that a fitted HMM holds at (or within 1e-8 of) 0."""
    out = []
    for name, block, full in _blocks(model):
        free = block.tie != -1
        zero = free & (np.asarray(full) <= _BOUNDARY_ATOL)
        for r, c in np.argwhere(zero):
            out.append(f"{name}[{block.row_labels[r]}, {block.col_labels[c]}]")
    return out


def _fixed_at_boundary(restricted, full) -> list[str]:
    """Cells the restricted model fixes at 0 (or 1) that the full model frees:
    the null then sits on the boundary of the full model's space and the
    statistic follows a mixture (1/2 chi2_0 + 1/2 chi2_1 for one such
    cell), not chi2_df."""
    out = []
    for (name, rb, _), (_, fb, _) in zip(_blocks(restricted), _blocks(full)):
        if rb.tie.shape != fb.tie.shape:
            continue
        at = (rb.tie == -1) & (fb.tie != -1) & ((rb.fixed <= 0) | (rb.fixed >= 1))
        for r, c in np.argwhere(at):
            out.append(f"{name}[{rb.row_labels[r]}, {rb.col_labels[c]}]")
    return out


def _block_violation(name, rb, fb) -> str | None:
    """The first constraint of the full model's block ``fb`` that the
    restricted model's ``rb`` does not keep (a fixed cell at its value, tied
    cells equal), as a phrase, or None."""
    def cell(rc):
        return f"{name}[{fb.row_labels[rc[0]]}, {fb.col_labels[rc[1]]}]"
    for rc in np.argwhere(fb.tie == FIXED):
        r, c = rc
        if rb.tie[r, c] != FIXED:
            return f"the full model fixes {cell(rc)} at {fb.fixed[r, c]:.6g}, the restricted model frees it"
        if abs(rb.fixed[r, c] - fb.fixed[r, c]) > 1e-12:
            return (f"the full model fixes {cell(rc)} at {fb.fixed[r, c]:.6g}, the restricted model at "
                    f"{rb.fixed[r, c]:.6g}")
    for atom in np.unique(fb.tie[fb.tie != FIXED]):
        cells = np.argwhere(fb.tie == atom)
        rt = rb.tie[tuple(cells.T)]
        rf = rb.fixed[tuple(cells.T)]
        differ = (rt != rt[0]) | ((rt == FIXED) & (np.abs(rf - rf[0]) > 1e-12))
        if differ.any():
            return (f"the full model ties {cell(cells[0])} to {cell(cells[np.argmax(differ)])}, the "
                    "restricted model does not")
    return None


def _state_tie_violation(name, r_tie, f_tie, states) -> str | None:
    """As :func:`_block_violation` for a Gaussian atom-per-state map."""
    for atom in np.unique(f_tie):
        idx = np.flatnonzero(f_tie == atom)
        bad = idx[r_tie[idx] != r_tie[idx[0]]]
        if bad.size:
            return (f"the full model ties the {name} of states {states[idx[0]]!r} and {states[bad[0]]!r}, "
                    "the restricted model does not")
    return None


def _held_violation(name, letter, restricted, rv, fv) -> str | None:
    """For a block the full model does not estimate (``letter`` not in its
    params): the restricted model must hold it at the same values."""
    held = f"the full model holds {name} at its values ({letter!r} not in params)"
    if letter in restricted.params:
        return f"{held}, the restricted model estimates it"
    if not np.allclose(rv, fv, rtol=0, atol=1e-12):
        return f"{held}, the restricted model at others"
    return None


def _nesting_violation(restricted, full) -> str | None:
    """Why the restricted model's parameter space is not inside the full
    model's (a constraint of the full model it does not keep, or a block
    the full model holds at its values that the restricted model estimates
    or holds elsewhere), or None."""
    rt, ft = restricted.tie_, full.tie_
    letters = {"startprob_": "s", "transmat_": "t", "emissionprob_": "e"}
    for (name, rb, rv), (_, fb, fv) in zip(_blocks(restricted), _blocks(full)):
        letter = letters[name]
        why = (_held_violation(name, letter, restricted, rv, fv) if letter not in full.params
               else _block_violation(name, rb, fb))
        if why:
            return why
    states = ft.states
    for letter, name, r_tie, f_tie, rv, fv in (
            ("m", "means_", rt.means_tie, ft.means_tie, getattr(restricted, "means_", None),
             getattr(full, "means_", None)),
            ("c", "covars_", rt.covars_tie, ft.covars_tie, getattr(restricted, "covars_", None),
             getattr(full, "covars_", None))):
        if f_tie is None or r_tie is None:
            continue
        why = (_held_violation(name, letter, restricted, rv, fv) if letter not in full.params
               else _state_tie_violation(name, np.asarray(r_tie), np.asarray(f_tie), states))
        if why:
            return why
    return None


def _check_nested(restricted, full) -> None:
    """The two fits must be HMMs of one family over as many states and the
    same alphabet, and every constraint of the full model's tie maps (fixed
    cells at their values, tied cells equal, blocks it does not estimate)
    must hold in the restricted model: its parameter space is then inside
    the full model's."""
    for m in (restricted, full):
        if not hasattr(m, "tie_") or not hasattr(m, "n_components"):
            raise ValueError(f"lrt: takes two fitted HMMs (CategoricalHMM, GaussianHMM), got "
                             f"{type(m).__name__}; for pair HMMs use hmmtie.compare_pairs")
    if type(restricted) is not type(full):
        raise ValueError(f"lrt: the models must be of one class, got {type(restricted).__name__} and "
                         f"{type(full).__name__}")
    nr, nf = restricted.n_components, full.n_components
    if nr != nf:
        raise ValueError(f"lrt: the models must have the same number of states (got {nr} and {nf}); the "
                         "chi-square reference does not hold for a test of the number of states")
    for attr in ("n_symbols", "n_features"):
        a, b = getattr(restricted, attr, None), getattr(full, attr, None)
        if a != b:
            raise ValueError(f"lrt: the models differ in {attr} ({a} vs {b})")
    why = _nesting_violation(restricted, full)
    if why:
        raise ValueError(f"lrt: the restricted model is not nested in the full one: {why}")


def lrt(restricted, full, X, lengths=None) -> LRTResult:
    """Likelihood-ratio test between two fitted HMMs on the same data.

    Parameters
    ----------
    restricted : fitted model
        The tied (nested) hypothesis.
    full : fitted model
        The untied hypothesis.
    X, lengths
        The data both were fitted on.

    Returns
    -------
    LRTResult
        Statistic, ``df`` (difference of free parameters from the tie maps),
        chi-square p-value (``scipy.stats.chi2``), AIC and BIC of both.
        ``n_obs`` for BIC is the number of symbols/frames.

    Raises
    ------
    ValueError
        When the models cannot be nested: not two HMMs (pair HMMs are
        compared by :func:`compare_pairs`), another class, another number
        of states or another alphabet size (a test of the number of states
        is not a chi-square test), a constraint of ``full``'s tie maps that
        ``restricted`` does not keep (a cell ``full`` fixes that
        ``restricted`` frees or fixes elsewhere, cells ``full`` ties that
        ``restricted`` does not, a block ``full`` does not estimate that
        ``restricted`` does), or no more free parameters in ``full``.

    Warns
    -----
    BoundaryWarning
        When a free probability of either fit is within 1e-8 of 0, or the
        restricted model fixes at 0 or 1 a cell the full model frees (the
        chi-square reference is then not exact; for one such fixed cell the
        p-value is about twice the exact mixture's, so conservative).
    """
    _check_nested(restricted, full)
    ll_r = restricted.score(X, lengths)
    ll_f = full.score(X, lengths)
    n_obs = int(restricted._prepare(X, lengths)["offsets"][-1])
    res = lrt_from_loglik(ll_r, ll_f, restricted.n_free_parameters, full.n_free_parameters, n_obs)
    for name, model in (("restricted", restricted), ("full", full)):
        cells = _boundary_cells(model)
        if cells:
            warnings.warn(
                f"{name} model has fitted probabilities on the boundary (0): {', '.join(cells[:5])}"
                + (" ..." if len(cells) > 5 else "")
                + "; the chi-square p-value may be inaccurate",
                BoundaryWarning,
                stacklevel=2,
            )
    cells = _fixed_at_boundary(restricted, full)
    if cells:
        warnings.warn(
            f"the restricted model fixes on the boundary (0 or 1) what the full model frees: "
            f"{', '.join(cells[:5])}" + (" ..." if len(cells) > 5 else "")
            + "; the chi-square p-value is conservative (for one such cell, twice the exact "
            "1/2 chi2_0 + 1/2 chi2_1 mixture's)",
            BoundaryWarning,
            stacklevel=2,
        )
    return res


@dataclass
class PairComparison:
    """Tied against untied pair-HMM fits on the same pairs (:func:`compare_pairs`)."""

    tied: object
    untied: object
    test: str
    params: str
    lrt: LRTResult

    @property
    def hypotheses(self) -> tuple[str, str]:
        return self.tied.hypothesis, self.untied.hypothesis

    def as_dict(self) -> dict:
        d = {"test": self.test, "params": self.params,
             "tied": {"hypothesis": self.tied.hypothesis, "loglik": self.lrt.loglik_restricted,
                      "n_free_parameters": self.lrt.n_free_restricted, "aic": self.lrt.aic_restricted,
                      "bic": self.lrt.bic_restricted, "converged": bool(self.tied.converged_),
                      "n_iter": int(self.tied.n_iter_)},
             "untied": {"hypothesis": self.untied.hypothesis, "loglik": self.lrt.loglik_full,
                        "n_free_parameters": self.lrt.n_free_full, "aic": self.lrt.aic_full,
                        "bic": self.lrt.bic_full, "converged": bool(self.untied.converged_),
                        "n_iter": int(self.untied.n_iter_)},
             "lrt": {"statistic": self.lrt.statistic, "df": self.lrt.df, "p_value": self.lrt.p_value},
             "n_obs": self.lrt.n_obs}
        return d

    def verdict(self, alpha: float = 0.05) -> str:
        what = {"gaps": ("symmetric-gap", "asymmetric-gap"), "match": ("symmetric-match", "asymmetric-match"),
                "both": ("symmetric", "asymmetric")}[self.test]
        return self.lrt.verdict(alpha, restricted=what[0], full=what[1])


def compare_pairs(
    pairs,
    model=None,
    *,
    preset: str = "3state",
    alphabet: str | None = None,
    test: str = "gaps",
    params: str = "transitions",
    n_iter: int = 100,
    tol: float = 1e-6,
    transition_pseudocount: float = 0.0,
    emission_pseudocount: float = 0.0,
    n_threads: int | None = None,
    callback=None,
    client=None,
) -> PairComparison:
    """Fit the tied and the untied pair-HMM hypotheses on the same pairs and test them.

    The tied model is fitted by EM from ``model`` (or the preset's
    defaults); the untied model is then fitted starting from the tied fit,
    so its log-likelihood can only be higher.  The likelihood-ratio
    statistic is referred to a chi-square with ``df`` = difference of free
    parameters counted from the tie maps.

    Parameters
    ----------
    pairs : sequence of (a, b)
    model : PairHMM, optional
        Starting model (its tie flags are overridden by ``test``).
    preset, alphabet
        Used when ``model`` is None; ``alphabet`` is guessed from the
        sequences when None.
    test : {"gaps", "match", "both"}
        Which symmetry is tested: gap (insert-state) symmetry, match-table
        symmetry, or both at once.
    params : {"transitions", "all"}
        What EM estimates.  Testing gap symmetry with ``"transitions"``
        compares δx = δy, εx = εy only; ``"all"`` includes the insert
        emission tables (and the match table).
    n_iter, tol, transition_pseudocount, emission_pseudocount, n_threads
        Passed to :meth:`PairHMM.fit`.
    client : dask.distributed.Client, optional
        Run both fits' E-steps on the cluster (:meth:`PairHMM.fit`).

    Returns
    -------
    PairComparison
        ``tied``, ``untied`` (fitted models), ``lrt`` (statistic, df,
        p-value, log-likelihoods, free parameters, AIC, BIC; ``n_obs`` =
        residues in all pairs).
    """
    from .pair import PairHMM
    from ._validation import check_choice

    check_choice("test", test, ("gaps", "match", "both"))
    check_choice("params", params, ("transitions", "all"))
    if test in ("match", "both") and params != "all":
        raise ValueError("testing match symmetry needs params='all' (the match table must be estimated)")
    pairs = list(pairs)
    if model is not None and not isinstance(model, PairHMM):
        raise ValueError(f"model must be a PairHMM, got {type(model).__name__} "
                         "(for a preset by name use preset=..., e.g. preset='3state')")
    if model is None:
        if alphabet is None:
            from .alphabet import guess_alphabet

            alphabet = guess_alphabet([str(getattr(p, "seq", p)) for pair in pairs for p in pair[:2]])
        model = PairHMM.preset(preset, alphabet=alphabet)
    tied_gaps = True if test in ("gaps", "both") else model.symmetric_gaps
    tied_match = True if test in ("match", "both") else model.symmetric_match
    tied = model.with_hypothesis(symmetric_gaps=tied_gaps, symmetric_match=tied_match)
    tied.n_threads = n_threads
    fit_kw = dict(n_iter=n_iter, tol=tol, params=params, transition_pseudocount=transition_pseudocount,
                  emission_pseudocount=emission_pseudocount, callback=callback)
    if client is not None:
        fit_kw["client"] = client
    tied.fit(pairs, **fit_kw)
    untied = tied.with_hypothesis(
        symmetric_gaps=False if test in ("gaps", "both") else tied_gaps,
        symmetric_match=False if test in ("match", "both") else tied_match,
    )
    untied.fit(pairs, **fit_kw)
    res = lrt_from_loglik(tied.loglik_, untied.loglik_, tied.n_free_parameters, untied.n_free_parameters,
                          tied.n_obs_)
    return PairComparison(tied=tied, untied=untied, test=test, params=params, lrt=res)
