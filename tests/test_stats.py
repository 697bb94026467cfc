"""Tests for hmmtie.stats: LRT, AIC, BIC and the boundary warning."""

import numpy as np
import pytest
from scipy import stats as sps

from hmmtie import CategoricalHMM
from hmmtie.stats import BoundaryWarning, aic, bic, lrt, lrt_from_loglik


def test_lrt_from_loglik_values():
    res = lrt_from_loglik(-105.0, -100.0, 3, 5, n_obs=200)
    assert res.statistic == pytest.approx(10.0)
    assert res.df == 2
    assert res.p_value == pytest.approx(sps.chi2.sf(10.0, 2))
    assert res.aic_restricted == pytest.approx(aic(-105.0, 3)) == pytest.approx(216.0)
    assert res.bic_full == pytest.approx(bic(-100.0, 5, 200)) == pytest.approx(200 + 5 * np.log(200))
    assert "reject the tied hypothesis" in res.verdict(0.05)
    assert "no evidence" in res.verdict(0.001)


def test_lrt_needs_nested_counts_and_warns_on_negative_statistic():
    with pytest.raises(ValueError, match="more free parameters"):
        lrt_from_loglik(-1.0, -1.0, 5, 5, 10)
    with pytest.warns(RuntimeWarning, match="negative"):
        res = lrt_from_loglik(-100.0, -101.0, 3, 5, 10)
    assert res.p_value == 1.0


def test_bic_needs_observations():
    with pytest.raises(ValueError, match="n_obs"):
        bic(-1.0, 2, 0)


def test_boundary_warning_on_zero_free_probability():
    # symbol 2 never occurs: the untied fit puts emissionprob at exactly 0
    X = np.array([[0], [1], [0], [0], [1], [1], [0], [1]] * 10)
    restricted = CategoricalHMM(2, n_symbols=3, random_state=0, n_iter=20,
                                tying={"emission_groups": {"g": ["0", "1"]}}).fit(X)
    full = CategoricalHMM(2, n_symbols=3, random_state=0, n_iter=20).fit(X)
    with pytest.warns(BoundaryWarning, match="emissionprob_"):
        res = lrt(restricted, full, X)
    assert res.df == 2
    assert res.n_obs == len(X)
