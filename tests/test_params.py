"""The default parameters shipped in hmmtie/params/ (see data/README.md)."""
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from hmmtie.pair import PairHMM

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "data" / "balifam" / "ref"
FILES = [(a, p) for a in ("protein", "dna") for p in ("3state", "5state")]


def _file(alphabet, preset):
    return resources.files("hmmtie").joinpath("params", f"{alphabet}_{preset}.json")


@pytest.mark.parametrize("alphabet,preset", FILES)
def test_file_is_package_data_with_provenance(alphabet, preset):
    f = _file(alphabet, preset)
    assert f.is_file(), f"{f} is not installed with the package"
    d = json.loads(f.read_text())
    assert {"background", "trans", "match", "insert", "provenance"} <= set(d)
    assert d["provenance"]["script"] == "data/train_defaults.py"


@pytest.mark.parametrize("alphabet", ["protein", "dna", "rna"])
@pytest.mark.parametrize("preset", ["3state", "5state"])
def test_defaults_load_normalised_and_symmetric(alphabet, preset):
    m = PairHMM.preset(preset, alphabet)
    generic = PairHMM.preset(preset, alphabet, defaults=False)
    # the shipped file is what was loaded (not the generic fallback)
    assert not np.allclose(m.trans_, generic.trans_) or not np.allclose(m.match_emissionprob_,
                                                                         generic.match_emissionprob_)
    d = json.loads(_file("dna" if alphabet == "rna" else alphabet, preset).read_text())
    np.testing.assert_allclose(m.trans_, np.asarray(d["trans"]), atol=1e-12)
    np.testing.assert_allclose(m.match_emissionprob_, np.asarray(d["match"]), atol=1e-12)
    # rows sum to one
    np.testing.assert_allclose(m.trans_.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(m.match_emissionprob_.sum(axis=(1, 2)), 1.0, atol=1e-9)
    np.testing.assert_allclose(m.insert_emissionprob_.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(m.background_.sum(), 1.0, atol=1e-9)
    assert np.all(m.background_ > 0) and np.all(m.match_emissionprob_ > 0)
    # symmetric match: p(a, b) = p(b, a)
    for t in m.match_emissionprob_:
        np.testing.assert_allclose(t, t.T, atol=1e-12)
    # symmetric gaps: swapping each insert-x state with its insert-y twin leaves trans_ unchanged
    names = [s.name for s in m.states]
    swap = {n: n for n in names}
    for n in names:
        if n.startswith("X"):
            swap[n], swap["Y" + n[1:]] = "Y" + n[1:], n
    perm = [names.index(swap[n]) for n in names]
    S = len(names)
    rows = [0] + [1 + p for p in perm]
    cols = perm + [S]
    np.testing.assert_allclose(m.trans_[np.ix_(rows, cols)], m.trans_, atol=1e-12)
    ins = {s.name: k for k, s in enumerate(s for s in m.states if s.kind != "match")}
    for n in names:
        if n.startswith("X"):
            np.testing.assert_allclose(m.insert_emissionprob_[ins[n]],
                                       m.insert_emissionprob_[ins["Y" + n[1:]]], atol=1e-12)
    # gap extension below one: finite expected gap lengths
    for k, n in enumerate(names):
        if n != "M":
            assert m.transmat_[k, k] < 0.999


def _reference_pair(family, id1, id2):
    from Bio import SeqIO

    recs = {r.id: str(r.seq) for r in SeqIO.parse(REF / family, "fasta")}
    r1, r2 = recs[id1], recs[id2]
    i = j = 0
    core = []
    for a, b in zip(r1, r2):
        ga, gb = a in "-.", b in "-."
        if not ga and not gb and a.isupper() and b.isupper():
            core.append((i, j))
        i += not ga
        j += not gb
    s1 = "".join(c for c in r1 if c not in "-.").upper()
    s2 = "".join(c for c in r2 if c not in "-.").upper()
    return s1, s2, core


def _aligned_pairs(aln):
    c = np.asarray(aln.coordinates)
    out = set()
    for k in range(c.shape[1] - 1):
        di, dj = c[0, k + 1] - c[0, k], c[1, k + 1] - c[1, k]
        if di and dj:
            out.update((c[0, k] + t, c[1, k] + t) for t in range(di))
    return out


@pytest.mark.skipif(not (REF / "PF00505.100").is_file(), reason="data/balifam not present")
@pytest.mark.parametrize("preset", ["3state", "5state"])
@pytest.mark.parametrize("method", ["mea", "viterbi"])
def test_protein_defaults_align_a_real_pair(preset, method):
    # an easy pair of a TEST family (never used in training): HMG boxes, ~50% identity in the core
    s1, s2, core = _reference_pair("PF00505.100", "SSRP_CAEEL", "1e7j_A")
    m = PairHMM.preset(preset, "protein")
    aln = m.align(s1, s2, method=method)
    got = _aligned_pairs(aln)
    q = sum(p in got for p in core) / len(core)
    assert q >= 0.7, f"{preset} {method}: Q = {q:.3f}"


@pytest.mark.parametrize("preset", ["3state", "5state"])
def test_protein_defaults_record_their_calibration(preset):
    # the match log-odds exponent was chosen on TRAIN references: the grid's best, recorded with the grid
    cal = json.loads(_file("protein", preset).read_text())["provenance"]["calibration"]
    grid = {float(b): q for b, q in cal["grid_mean_Q"].items()}
    assert cal["match_odds_exponent"] in grid
    assert grid[cal["match_odds_exponent"]] == max(grid.values())
    assert "TRAIN" in cal["criterion"]
    # the provenance summary describes the shipped (calibrated) table, not the EM fit before it
    d = json.loads(_file("protein", preset).read_text())
    p = np.asarray(d["match"][0])
    assert d["provenance"]["summary"]["match_identity_mass"] == pytest.approx(np.trace(p), abs=1e-9)
    assert d["provenance"]["summary_before_calibration"]["match_identity_mass"] > np.trace(p)


def test_scale_match_odds_scales_the_log_odds():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "data" / "train_defaults.py"
    spec = importlib.util.spec_from_file_location("train_defaults", path)
    td = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(td)
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(4))
    p = rng.dirichlet(np.ones(16)).reshape(4, 4)
    p = (p + p.T) / 2
    params = {"background": q.tolist(), "match": [p.tolist()]}
    same = np.array(td.scale_match_odds(params, 1.0)["match"][0])
    np.testing.assert_allclose(same, p, atol=1e-15)
    half = np.array(td.scale_match_odds(params, 0.5)["match"][0])
    lo_half = np.log(half / np.outer(q, q))
    lo = np.log(p / np.outer(q, q))
    # log-odds halved up to one normalising constant; still a symmetric joint distribution
    np.testing.assert_allclose(lo_half - 0.5 * lo, (lo_half - 0.5 * lo)[0, 0], atol=1e-12)
    assert half.sum() == pytest.approx(1.0) and np.allclose(half, half.T)
