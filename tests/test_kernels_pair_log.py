"""The log-space fallback (``pair_log``) against brute-force enumeration,
the scaled kernels and the pairs the scaled kernels cannot compute."""

import math
from pathlib import Path

import numba
import numpy as np
import pytest

import naive_pair as nv
from hmmtie._kernels import pair_fb as pf
from hmmtie._kernels import pair_log as pl
from test_kernels_pair_fb import MODELS, _acc, _seqs

DATA = Path(__file__).parent / "data"
NAMES = ("kind", "etab", "start", "trans", "end", "match_odds", "ins_odds")
NO_P = np.zeros((0, 0))


def _local_dna():
    from hmmtie import PairHMM
    return [np.array(a) for a in PairHMM.preset("3state", alphabet="dna", local=True)._kargs()]


def _no_counts():
    return np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0, 0)), np.zeros((0, 0))


def _log_all(model, x, y, band):
    """(forward, fb log-odds, P, counts) of the log-space kernels."""
    f = pl.log_forward(*model, x, y, band)
    P = np.zeros((len(x), len(y)))
    assert pl.log_posterior_counts(*model, x, y, band, P, *_no_counts()) == pytest.approx(f, abs=1e-12) \
        or f == -math.inf
    acc = _acc(model)
    z = pl.log_posterior_counts(*model, x, y, band, NO_P, *acc)
    return f, z, P, acc


@pytest.mark.parametrize("name", list(MODELS) + ["local"])
def test_log_kernels_match_brute_force(name):
    """Forward, posterior and every expected count equal the enumeration of
    all paths, with and without a band, on tiny pairs (empty sides
    included), for the fast-path, general and local models."""
    model = _local_dna() if name == "local" else MODELS[name]()
    kind, etab = model[0], model[1]
    S = len(kind)
    rng = np.random.default_rng(3)
    n_finite = 0
    for n, m in [(1, 1), (0, 3), (3, 0), (2, 3), (4, 4), (4, 2), (1, 4)]:
        x, y = _seqs(rng, n, m)
        for band in (-1, 1):
            paths = nv.enumerate_paths(*model, x, y, band if n and m else -1)
            ref = nv.total(paths)
            f, z, P, acc = _log_all(model, x, y, band)
            if ref == -math.inf:
                assert f == -math.inf and z == -math.inf
                assert not any(a.any() for a in acc)  # nothing added
                continue
            n_finite += 1
            assert abs(f - ref) < 1e-12 and abs(z - ref) < 1e-12
            np.testing.assert_allclose(P, nv.posterior(paths, kind, n, m), atol=1e-13)
            want = nv.expected_counts(paths, kind, etab, x, y, S, model[5].shape, model[6].shape)
            for a, w in zip(acc, want):
                np.testing.assert_allclose(a, w, atol=1e-13, rtol=1e-11)
    assert n_finite >= 8


@pytest.mark.parametrize("name", ["3state", "custom"])
def test_log_kernels_equal_the_scaled_kernels(name):
    """On pairs the scaled kernels compute exactly (a few hundred residues,
    banded or not), the log-space values agree to rounding."""
    model = MODELS[name]()
    rng = np.random.default_rng(5)
    x, y = _seqs(rng, 160, 130)
    for band in (-1, 20):
        f, z, P, acc = _log_all(model, x, y, band)
        ref = pf.forward(*model, x, y, band)
        assert abs(f - ref) < 1e-11 * abs(ref) and abs(z - ref) < 1e-11 * abs(ref)
        _, Pr = pf.posterior(*model, x, y, band)
        np.testing.assert_allclose(P, Pr, atol=1e-11)
        want = _acc(model)
        pf.expected_counts(*model, x, y, *want, band)
        for a, w in zip(acc, want):
            np.testing.assert_allclose(a, w, atol=1e-10, rtol=1e-9)


def test_pair_every_tilt_loses_is_computed_in_log_space(monkeypatch):
    """Found by review (fuzz pair 8793, saved in tests/data/pair_fuzz_8793.npz:
    a 5-state custom model, 968 x 1133).  Its forward is exact at every tilt,
    but its reversed pass (the check) is 85 nats low at every tilt of the
    ladder, so the checked forward was refused (NaN: ``score`` raised) and
    so were its counts.  Every tilt still fails; the log-space fallback now
    gives the forward, the counts and the posterior."""
    d = np.load(DATA / "pair_fuzz_8793.npz")
    model = [d[k] for k in NAMES]
    x, y = d["x"], d["y"]
    ref, refP = nv.logspace_posterior(*model, x, y)
    # every tilt of the scaled ladder fails: the answer is the fallback's
    with monkeypatch.context() as mp:
        mp.setattr(pl, "log_forward", lambda *a: 12345.0)
        assert pf.forward(*model, x, y, -1) == 12345.0
    assert abs(pf.forward(*model, x, y, -1) - ref) < 1e-12 * abs(ref)
    assert pf.batch_forward(*model, np.concatenate([x, x[:50]]), np.array([0, len(x), len(x) + 50]),
                            np.concatenate([y, y[:40]]), np.array([0, len(y), len(y) + 40]), -1)[0] \
        == pytest.approx(ref, rel=1e-12)
    acc = _acc(model)
    assert abs(pf.expected_counts(*model, x, y, *acc, -1) - ref) < 1e-12 * abs(ref)
    assert abs(acc[0].sum() - 1.0) < 1e-10 and abs(acc[2].sum() - 1.0) < 1e-10
    assert abs(acc[3].sum() - refP.sum()) < 1e-9 * refP.sum()
    assert abs(2 * acc[3].sum() + acc[4].sum() - (len(x) + len(y))) < 1e-9 * (len(x) + len(y))
    lz, P = pf.posterior(*model, x, y, -1)
    assert abs(lz - ref) < 1e-12 * abs(ref)
    np.testing.assert_allclose(P, refP, atol=1e-10)


def _nan_chunks(monkeypatch, lose):
    """Chunk kernels whose pairs in ``lose`` come back NaN (every tilt
    failed), counts not added."""
    for table in (pf._FWD_CHUNK, pf._EC_CHUNK):
        for path, real in list(table.items()):
            def fake(*a, _real=real, _ec=table is pf._EC_CHUNK):
                p0, p1, out = a[-10 if _ec else -6], a[-9 if _ec else -5], a[-8 if _ec else -4]
                if not _ec:
                    _real(*a)
                    for p in range(p0, p1):
                        if p in lose:
                            out[p] = math.nan
                    return
                # counts: compute the others one at a time, leave the lost ones out
                for p in range(p0, p1):
                    if p in lose:
                        out[p] = math.nan
                    else:
                        b = list(a)
                        b[-10], b[-9] = p, p + 1
                        _real(*b)
            monkeypatch.setitem(table, path, fake)


def test_batches_fall_back_per_pair_on_any_thread_count(monkeypatch):
    """Pairs a batch kernel reports lost are computed in log space after the
    others: forward and counts equal the unforced values, whichever pairs
    are lost and on one or two threads."""
    model = MODELS["3state"]()
    rng = np.random.default_rng(9)
    pairs = [_seqs(rng, n, m) for n, m in [(90, 80), (40, 70), (120, 100), (15, 9)]]
    xs = np.concatenate([p[0] for p in pairs])
    ys = np.concatenate([p[1] for p in pairs])
    xo = np.cumsum([0] + [len(p[0]) for p in pairs])
    yo = np.cumsum([0] + [len(p[1]) for p in pairs])
    want_f = pf.batch_forward(*model, xs, xo, ys, yo, -1)
    want_c = pf.batch_expected_counts(*model, xs, xo, ys, yo, -1)
    _nan_chunks(monkeypatch, {1, 2})
    for threads in (1, 2):
        old = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            got_f = pf.batch_forward(*model, xs, xo, ys, yo, -1)
            got_c = pf.batch_expected_counts(*model, xs, xo, ys, yo, -1)
        finally:
            numba.set_num_threads(old)
        np.testing.assert_allclose(got_f, want_f, rtol=1e-12)
        for a, w in zip(got_c, want_c):
            np.testing.assert_allclose(a, w, rtol=1e-10, atol=1e-12)
    # the single-pair entry points too
    x, y = pairs[1]
    _nan_chunks(monkeypatch, {0})
    assert pf.forward(*model, x, y, -1) == pytest.approx(want_f[1], rel=1e-12)
    acc = _acc(model)
    assert pf.expected_counts(*model, x, y, *acc, -1) == pytest.approx(want_f[1], rel=1e-12)
    assert abs(acc[0].sum() - 1.0) < 1e-12
    # unchecked: one scaled pass, no fallback
    assert math.isnan(pf.forward(*model, x, y, -1, check=False))


def test_no_path_is_confirmed_in_log_space():
    """-inf (no pass found a path) is final only when log space agrees: a
    pair the model cannot emit stays -inf everywhere and adds no counts."""
    model = list(MODELS["3state"]())
    model[6] = model[6].copy()
    model[6][:, 3] = 0.0  # no insert state emits residue 3
    model[5] = model[5].copy()
    model[5][0, 3, :] = 0.0  # nor does match, from x
    x = np.array([0, 1, 3, 2], np.uint8)
    y = np.array([0, 1, 2], np.uint8)
    assert pf.forward(*model, x, y, -1) == -math.inf
    assert pl.log_forward(*model, x, y, -1) == -math.inf
    acc = _acc(model)
    assert pf.expected_counts(*model, x, y, *acc, -1) == -math.inf
    assert not any(a.any() for a in acc)
    lz, P = pf.posterior(*model, x, y, -1)
    assert lz == -math.inf and P.shape == (4, 3) and not P.any()


def test_has_path_agrees_with_enumeration():
    """The boolean forward says whether any path has non-zero probability:
    against the enumeration of all paths, on models with zeros, with and
    without a band."""
    rng = np.random.default_rng(21)
    seen = set()
    for name in ("3state", "custom", "5state_noLong"):
        model = list(MODELS[name]())
        for trial in range(12):
            m = [a.copy() for a in model]
            # knock out a few emissions and transitions at random
            m[5][rng.random(m[5].shape) < 0.3] = 0.0
            m[6][rng.random(m[6].shape) < 0.3] = 0.0
            m[3][rng.random(m[3].shape) < 0.2] = 0.0
            n, k = rng.integers(0, 5, 2)
            x, y = _seqs(rng, max(n, 1), k)
            for band in (-1, 0):
                paths = nv.enumerate_paths(*m, x, y, band if len(x) and len(y) else -1)
                want = len(paths) > 0
                assert pl.has_path(*m, x, y, band) == want
                seen.add(want)
    assert seen == {True, False}


def test_counts_keep_terms_far_below_the_largest_successor():
    """Found by review: the counts' transition shortcut t(s, r) w[r] exp(.)
    dropped a term whose successor lies > 745 nats below the largest one
    (its weight underflowed to 0) although the term itself is
    representable: n(Y -> X1) came out 0 instead of 2e-40.  Such terms are
    now taken one by one."""
    kind = np.array([0, 2, 1, 1])
    etab = np.array([0, 0, 0, 1])
    start = np.array([0.0, 1.0, 0.0, 0.0])
    trans = np.zeros((4, 4))
    trans[1, 1:] = 0.25  # Y -> Y, X1, X2 (never to M)
    trans[2, 1] = 1e-40  # X1 -> Y only
    end = np.array([1.0, 0.5, 0.0, 1.0])
    match = np.ones((1, 4, 4))
    match[0, 0, 2] = 1e300  # M's successor value is huge
    ins = np.ones((2, 4))
    model = [kind, etab, start, trans, end, match, ins]
    x = np.array([0], np.uint8)
    y = np.array([1, 2], np.uint8)
    paths = nv.enumerate_paths(*model, x, y)
    want = nv.expected_counts(paths, kind, etab, x, y, 4, match.shape, ins.shape)
    acc = _acc(model)
    assert pl.log_posterior_counts(*model, x, y, -1, NO_P, *acc) == pytest.approx(nv.total(paths), abs=1e-12)
    assert want[1][1, 2] > 1e-41
    for a, w in zip(acc, want):
        np.testing.assert_allclose(a, w, rtol=1e-12, atol=0)


def test_fallback_of_a_pair_whose_second_sequence_is_longer(monkeypatch):
    """The fallback runs with the longer sequence along the rows (as the
    scaled kernels do: its memory is that of the shorter side) and turns
    the posterior and the match counts back."""
    model = MODELS["custom"]()
    rng = np.random.default_rng(4)
    x, y = _seqs(rng, 30, 170)
    ref, refP = nv.logspace_posterior(*model, x, y)
    seen = []
    real = pl.log_posterior_counts

    def spy(kind, etab, start, trans, end, mo, io, u, v, *rest):
        seen.append((len(u), len(v)))
        return real(kind, etab, start, trans, end, mo, io, u, v, *rest)

    monkeypatch.setattr(pl, "log_posterior_counts", spy)
    lz, P = pf._log_posterior(*model, x, y, -1)
    assert seen[-1] == (170, 30)
    assert abs(lz - ref) < 1e-12 * abs(ref)
    np.testing.assert_allclose(P, refP, atol=1e-12)
    acc = _acc(model)
    assert abs(pf._log_counts(*model, x, y, -1, *acc) - ref) < 1e-12 * abs(ref)
    want = _acc(model)
    pf.expected_counts(*model, x, y, *want, -1)
    for a, w in zip(acc, want):
        np.testing.assert_allclose(a, w, rtol=1e-9, atol=1e-12)
