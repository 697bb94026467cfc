"""Make the default pair-HMM parameters shipped in ``hmmtie/params/``.

Run from the repository root::

    python data/train_defaults.py                  # protein (EM) + DNA (model)
    python data/train_defaults.py --only dna       # DNA file only (seconds)

Protein
    Trained by hmmtie's own EM (``PairHMM.fit``) on unaligned
    pairs of sequences from the TRAIN families of balifam100 (R.C. Edgar 2021,
    CC0; see ``data/balifam/README.md``).  The families are split into TRAIN
    and TEST deterministically (sorted family ids, alternating; families that
    share a sequence are kept on one side); the split is written to
    ``data/balifam/split.tsv`` and the accuracy benchmark
    (``tests/benchmarks/accuracy_balifam.py``) uses only the TEST families.
    Training never reads a TEST family's files.

    By default EM fits the transitions only, with the match table fixed at
    BLOSUM62's implied joint frequencies (``--params transitions --start
    blosum62``, the recipe of ProbCons).  Then the match table is calibrated
    for alignment accuracy: its log-odds are scaled by the exponent beta (grid
    0.70-1.00) that maximises the mean MEA Q on the TRAIN families' reference
    pairs (``--no-calibrate`` skips this; ``--calibrate-only`` applies it to
    EM-trained files already written).  TEST families are never read.  Fitting everything
    (``--params all --start generic``) gives a higher likelihood but less
    accurate alignments of the TRAIN families' reference pairs
    (``tests/benchmarks/accuracy_balifam.py --side train``), so it is not the
    default; see data/README.md.

DNA
    No DNA reference data ship with hmmtie, so the DNA defaults are *not*
    trained: the match table is the Kimura (1980) two-parameter model
    (K80, kappa = 2) at a stated divergence with a uniform background, and the
    gap parameters are chosen for stated mean gap lengths (see DNA_* below).

The script first copies the balifam files it uses into ``data/balifam/``
(``in/`` of TRAIN families, ``ref/`` of all families: TEST ones for the
benchmark, TRAIN ones for validation; README, LICENSE);
later runs read that copy, so the repository alone reproduces the files.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from Bio import SeqIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmmtie.alphabet import get_alphabet  # noqa: E402
from hmmtie.pair import PairHMM  # noqa: E402

SOURCE = Path("/work/shared/data/balifam")  # where balifam was found; the copy below is what is used
COPY = ROOT / "data" / "balifam"
PARAMS = ROOT / "hmmtie" / "params"

# ---- protein training settings -------------------------------------------
SEED = 20240611            # pair sampling
PAIRS_PER_FAMILY = 25      # unaligned pairs drawn per TRAIN family (fewer if the family has fewer)
MAX_LEN = 500              # sequences longer than this are not drawn (bounds one EM iteration)
N_ITER = 50                # EM iteration cap
TOL = 1.0                  # stop when an iteration gains < 1 nat (objective is ~ -1e6)
TRANSITION_PSEUDOCOUNT = 1.0
EMISSION_PSEUDOCOUNT = 1.0

# ---- DNA model settings ----------------------------------------------------
DNA_KAPPA = 2.0            # K80 transition/transversion rate ratio
DNA_DISTANCE = 0.3         # expected substitutions per site between the two sequences
DNA_3STATE = {"delta": 0.02, "epsilon": 0.75, "tau": 0.001}
#   gap opens in one given sequence after 1 in 50 match columns (2% each direction),
#   mean gap length 1/(1-0.75) = 4, mean alignment length ~ 1/tau = 1000 columns.
DNA_5STATE = {"delta1": 0.02, "epsilon1": 0.6, "delta2": 0.005, "epsilon2": 0.95, "tau": 0.001}
#   short gaps: open 2%, mean length 2.5; long gaps: open 0.5%, mean length 20.


# --------------------------------------------------------------------------
# balifam: copy, split, read
# --------------------------------------------------------------------------

def family_ids(base: Path) -> list[str]:
    return sorted(p.name for p in (base / "ref").iterdir())


def _seqs(path: Path) -> list[tuple[str, str]]:
    return [(r.id, str(r.seq).replace("-", "").replace(".", "").upper()) for r in SeqIO.parse(path, "fasta")]


def make_split(base: Path) -> dict[str, str]:
    """TRAIN/TEST by sorted family id, alternating (index 0 TRAIN, 1 TEST, ...).

    A family that shares a reference sequence with an earlier family goes to
    that family's side (in balifam100 only PF11427 shares one with PF00538).
    """
    fams = family_ids(base)
    seen: dict[str, str] = {}
    split = {}
    for k, fam in enumerate(fams):
        side = "train" if k % 2 == 0 else "test"
        seqs = [s for _, s in _seqs(base / "ref" / fam)]
        for s in seqs:
            if s in seen:
                side = split[seen[s]]
                break
        split[fam] = side
        for s in seqs:
            seen.setdefault(s, fam)
    return split


def copy_balifam(source: Path) -> dict[str, str]:
    """Copy what is used into data/balifam/ and write split.tsv; return the split."""
    src = source / "balifam100"
    split = make_split(src)
    (COPY / "in").mkdir(parents=True, exist_ok=True)
    (COPY / "ref").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "LICENSE", COPY / "LICENSE")
    shutil.copyfile(source / "README.md", COPY / "README.balifam.md")
    for fam, side in split.items():
        if side == "train":
            shutil.copyfile(src / "in" / fam, COPY / "in" / fam)
        # ref/ of every family: TEST ones for the benchmark, TRAIN ones for
        # choosing training settings (validation) without touching TEST
        shutil.copyfile(src / "ref" / fam, COPY / "ref" / fam)
    write_split(split)
    return split


def write_split(split: dict[str, str]) -> None:
    lines = ["# family\tside\t(TRAIN: in/ used for EM training; TEST: ref/ used by tests/benchmarks/accuracy_balifam.py)"]
    lines += [f"{fam}\t{side}" for fam, side in sorted(split.items())]
    (COPY / "split.tsv").write_text("\n".join(lines) + "\n")


def read_split() -> dict[str, str]:
    out = {}
    for line in (COPY / "split.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fam, side = line.split("\t")[:2]
        out[fam] = side
    return out


def training_pairs(split: dict[str, str]):
    """(pairs, per-family counts, all TRAIN sequences) with a fixed seed."""
    rng = np.random.default_rng(SEED)
    pairs, per_family, all_seqs = [], {}, []
    for fam in sorted(f for f, s in split.items() if s == "train"):
        seqs = _seqs(COPY / "in" / fam)
        all_seqs += [s for _, s in seqs]
        seqs = [(i, s) for i, s in seqs if len(s) <= MAX_LEN]
        # distinct sequences only (an exact duplicate teaches nothing about gaps)
        uniq = {}
        for i, s in seqs:
            uniq.setdefault(s, i)
        seqs = sorted(((i, s) for s, i in uniq.items()), key=lambda t: t[0])
        n = len(seqs)
        all_pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
        k = min(PAIRS_PER_FAMILY, len(all_pairs))
        chosen = rng.choice(len(all_pairs), size=k, replace=False) if k else []
        for c in sorted(int(c) for c in chosen):
            a, b = all_pairs[c]
            # random orientation, so x and y play the same role on average
            if rng.random() < 0.5:
                a, b = b, a
            pairs.append((seqs[a][1], seqs[b][1]))
        per_family[fam] = k
    return pairs, per_family, all_seqs


def residue_frequencies(seqs, letters: str) -> np.ndarray:
    counts = np.zeros(len(letters))
    idx = {c: k for k, c in enumerate(letters)}
    for s in seqs:
        for ch in s:
            k = idx.get(ch)
            if k is not None:
                counts[k] += 1
    return counts / counts.sum()


# --------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------

def summarise(model: PairHMM) -> dict:
    """Gap parameters in words, for README and provenance."""
    names = [s.name for s in model.states]
    S = len(names)
    T = model.trans_
    row = {n: T[1 + k] for k, n in enumerate(names)}
    col = {n: k for k, n in enumerate(names)}
    out = {"tau": float(row["M"][S])}
    ins = [n for n in names if n != "M" and n.startswith("X")]
    for n in ins:
        sfx = n[1:]
        eps = float(row[n][col[n]])
        out[f"delta{sfx}"] = float(row["M"][col[n]])
        out[f"epsilon{sfx}"] = eps
        out[f"mean_gap_length{sfx}"] = 1.0 / (1.0 - eps)
    p = model.match_emissionprob_[0]
    out["match_identity_mass"] = float(np.trace(p))
    q = model.background_
    with np.errstate(divide="ignore"):
        out["match_expected_score_bits"] = float(np.sum(p * np.log2(p / np.outer(q, q))))
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_params(model: PairHMM, path: Path, provenance: dict) -> None:
    params = {
        "background": model.background_.tolist(),
        "trans": model.trans_.tolist(),
        "match": model.match_emissionprob_.tolist(),
        "insert": model.insert_emissionprob_.tolist(),
        "provenance": provenance,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(params, indent=1) + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------
# protein
# --------------------------------------------------------------------------

def blosum62_joint(letters: str) -> np.ndarray:
    """Joint p(a, b) implied by BLOSUM62 with its own background: q_a q_b 2^(s_ab / 2), normalised."""
    from Bio.Align import substitution_matrices

    m = substitution_matrices.load("BLOSUM62")
    s = np.array([[m[a][b] for b in letters] for a in letters], dtype=float)
    # the implied background solves sum_b q_b 2^(s_ab/2) = const for every a (rows of p sum to q_a)
    r = 2.0 ** (s / 2.0)
    q = np.linalg.solve(r, np.ones(len(letters)))
    q = q / q.sum()
    if np.any(q <= 0):
        raise ValueError("BLOSUM62 implies a non-positive background frequency")
    p = np.outer(q, q) * r
    return p / p.sum()


# Calibration of the match table for alignment accuracy (after EM): the match
# log-odds are scaled by an exponent beta, p'(a, b) ~ q_a q_b (p(a, b) /
# (q_a q_b))^beta, beta chosen on this grid by the mean MEA Q on the TRAIN
# families' reference pairs (tests/benchmarks/accuracy_balifam.py --side train
# draws the same pairs); ties go to the beta closest to 1.
CALIBRATION_GRID = (0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.00)


def scale_match_odds(params: dict, beta: float) -> dict:
    """A copy of ``params`` with the match log-odds multiplied by ``beta``."""
    q = np.asarray(params["background"], dtype=float)
    qq = np.outer(q, q)
    match = []
    for p in np.asarray(params["match"], dtype=float):
        scaled = qq * (p / qq) ** beta
        match.append((scaled / scaled.sum()).tolist())
    return dict(params, match=match)


def calibrate_match_exponent(name: str, params: dict) -> tuple[float, dict]:
    """Pick beta from CALIBRATION_GRID by the mean MEA Q on TRAIN reference pairs."""
    sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
    import accuracy_balifam as acc

    pairs = acc.reference_pairs(side="train")
    scores = {}
    for beta in CALIBRATION_GRID:
        model = PairHMM.preset(name, "protein", n_threads=1)
        model._set_params_from_dict(scale_match_odds(params, beta), symmetrise=True)
        align = acc.hmmtie_mea(model)
        scores[beta] = float(np.mean([acc.q_score(core, align(s1, s2)) for _, _, _, s1, s2, core in pairs]))
        print(f"  {name} calibration: beta {beta:.2f}  mean MEA Q on {len(pairs)} TRAIN pairs {scores[beta]:.4f}",
              flush=True)
    best = max(CALIBRATION_GRID, key=lambda b: (round(scores[b], 6), -abs(b - 1.0)))
    info = {"match_odds_exponent": best, "criterion": "mean MEA Q, TRAIN reference pairs "
            "(accuracy_balifam.reference_pairs(side='train'): cap 40 per family, seed 7)",
            "n_pairs": len(pairs), "grid_mean_Q": {f"{b:.2f}": round(v, 5) for b, v in scores.items()}}
    return best, info


def _record_calibration(prov: dict, info: dict, model: PairHMM) -> None:
    """Store the calibration in the provenance; the summary describes the
    shipped (calibrated) table, the EM figures the fit before it."""
    prov["calibration"] = info
    prov["summary_before_calibration"] = prov.get("summary")
    prov["summary"] = summarise(model)
    prov["log_likelihood_note"] = ("log_likelihood and history are those of the EM fit (match odds exponent 1), "
                                   "before the calibration")


def calibrate_files(presets, out_dir=None):
    """Calibrate the EM-trained protein files in place (``--calibrate-only``)."""
    out_dir = PARAMS if out_dir is None else Path(out_dir)
    for name in presets:
        path = out_dir / f"protein_{name}.json"
        params = json.loads(path.read_text())
        prov = params.pop("provenance")
        if "calibration" in prov:
            raise SystemExit(f"{path} is already calibrated (beta {prov['calibration']['match_odds_exponent']}); "
                             "retrain first")
        beta, info = calibrate_match_exponent(name, params)
        model = PairHMM.preset(name, "protein", defaults=False)
        model._set_params_from_dict(scale_match_odds(params, beta), symmetrise=True)
        _record_calibration(prov, info, model)
        write_params(model, path, prov)
        print(f"protein {name}: match odds exponent {beta:.2f} -> {path}", flush=True)


def train_protein(presets, split, params="all", start_kind="generic", out_dir=None, inserts="uniform",
                  calibrate=True):
    out_dir = PARAMS if out_dir is None else Path(out_dir)
    letters = get_alphabet("protein").letters
    pairs, per_family, all_seqs = training_pairs(split)
    q = residue_frequencies(all_seqs, letters)
    cells = sum(len(a) * len(b) for a, b in pairs)
    n_train = sum(1 for s in split.values() if s == "train")
    print(f"TRAIN families: {n_train}; pairs: {len(pairs)}; residues: "
          f"{sum(len(a) + len(b) for a, b in pairs)}; DP cells per iteration: {cells / 1e6:.1f} M", flush=True)
    results = {}
    for name in presets:
        model = PairHMM.preset(name, "protein", symmetric_gaps=True, symmetric_match=True, defaults=False)
        start = model.to_dict()["params"]
        start["background"] = q.tolist()
        if start_kind == "blosum62":
            start["match"] = [blosum62_joint(letters).tolist()] * len(start["match"])
        if inserts == "background":
            # insert states emit with the background frequencies (as ProbCons)
            start["insert"] = [q.tolist()] * len(start["insert"])
        model._set_params_from_dict(start, symmetrise=True)
        log = []
        t0 = time.time()
        last = [t0]

        def cb(it, obj, log=log, last=last):
            now = time.time()
            log.append({"iteration": it, "objective": obj, "seconds": round(now - last[0], 2)})
            print(f"  {name} EM iteration {it:3d}: objective {obj:.3f}  ({now - last[0]:.1f} s)", flush=True)
            last[0] = now

        print(f"protein {name}: EM from the BLOSUM62-derived guess (PairHMM.preset(..., defaults=False))", flush=True)
        model.fit(pairs, n_iter=N_ITER, tol=TOL, params=params,
                  transition_pseudocount=TRANSITION_PSEUDOCOUNT, emission_pseudocount=EMISSION_PSEUDOCOUNT,
                  callback=cb)
        wall = time.time() - t0
        summ = summarise(model)
        print(f"  {name}: {model.n_iter_} E-steps, converged={model.converged_}, log-likelihood {model.loglik_:.3f}, "
              f"{wall:.0f} s; {json.dumps({k: round(v, 5) for k, v in summ.items()})}", flush=True)
        prov = {
            "data": "balifam100 (R.C. Edgar 2021, CC0), unaligned sequences (in/) of the TRAIN families",
            "split": "sorted family ids, alternating TRAIN/TEST (index 0 TRAIN); families sharing a sequence on one "
                     "side; see data/balifam/split.tsv",
            "families": sorted(per_family),
            "pairs_per_family": per_family,
            "n_pairs": len(pairs),
            "n_residues": int(sum(len(a) + len(b) for a, b in pairs)),
            "max_sequence_length": MAX_LEN,
            "seed": SEED,
            "start": ("PairHMM.preset(name, 'protein', defaults=False): BLOSUM62-implied match table "
                      "(uniform-background approximation), uniform inserts" if start_kind == "generic" else
                      "BLOSUM62 joint table q_a q_b 2^(s/2) with BLOSUM62's own background; uniform inserts; "
                      "preset's generic transitions") + f"; insert emissions: {inserts}",
            "hypothesis": "symmetric_gaps=True, symmetric_match=True",
            "fit": {"params": params, "n_iter_cap": N_ITER, "tol": TOL,
                    "transition_pseudocount": TRANSITION_PSEUDOCOUNT, "emission_pseudocount": EMISSION_PSEUDOCOUNT},
            "em_iterations": model.n_iter_ - 1,
            "converged": bool(model.converged_),
            "log_likelihood": model.loglik_,
            "history": model.history_,
            "background": "residue frequencies of all sequences of the TRAIN families' in/ files (not fitted)",
            "summary": summ,
            "date": _dt.date.today().isoformat(),
            "script": "data/train_defaults.py",
            "wall_seconds": round(wall, 1),
        }
        if calibrate:
            fitted = {"background": model.background_, "trans": model.trans_,
                      "match": model.match_emissionprob_, "insert": model.insert_emissionprob_}
            beta, info = calibrate_match_exponent(name, fitted)
            model._set_params_from_dict(scale_match_odds(fitted, beta), symmetrise=True)
            _record_calibration(prov, info, model)
        write_params(model, out_dir / f"protein_{name}.json", prov)
        results[name] = {"log": log, "summary": summ, "loglik": model.loglik_, "n_iter": model.n_iter_,
                         "wall": wall}
    return results


# --------------------------------------------------------------------------
# DNA
# --------------------------------------------------------------------------

def k80_joint(letters: str, d: float, kappa: float) -> np.ndarray:
    """Joint p(a, b) = 1/4 P_ab(d) under K80 with d substitutions per site."""
    e1 = math.exp(-4.0 * d / (kappa + 2.0))
    e2 = math.exp(-2.0 * d * (kappa + 1.0) / (kappa + 2.0))
    p_ts = 0.25 + 0.25 * e1 - 0.5 * e2      # transition (A<->G, C<->T)
    p_tv = 0.25 - 0.25 * e1                 # each transversion
    p_same = 1.0 - p_ts - 2.0 * p_tv
    purines = set("AG")
    A = len(letters)
    P = np.zeros((A, A))
    for i, a in enumerate(letters):
        for j, b in enumerate(letters):
            if i == j:
                P[i, j] = p_same
            elif (a in purines) == (b in purines):
                P[i, j] = p_ts
            else:
                P[i, j] = p_tv
    return P / A


def dna_params(name: str) -> PairHMM:
    letters = get_alphabet("dna").letters
    model = PairHMM.preset(name, "dna", defaults=False)
    names = [s.name for s in model.states]
    S = len(names)
    col = {n: k for k, n in enumerate(names)}
    col["End"] = S
    T = np.zeros((S + 1, S + 1))
    if name == "3state":
        p = DNA_3STATE
        d, e, tau = p["delta"], p["epsilon"], p["tau"]
        T[0, [col["M"], col["X"], col["Y"]]] = [1 - 2 * d, d, d]
        T[1 + col["M"], [col["M"], col["X"], col["Y"], col["End"]]] = [1 - 2 * d - tau, d, d, tau]
        for n in ("X", "Y"):
            T[1 + col[n], [col["M"], col[n], col["End"]]] = [1 - e - tau, e, tau]
    else:
        p = DNA_5STATE
        d1, e1, d2, e2, tau = p["delta1"], p["epsilon1"], p["delta2"], p["epsilon2"], p["tau"]
        T[0, [col[n] for n in ("M", "X1", "Y1", "X2", "Y2")]] = [1 - 2 * d1 - 2 * d2, d1, d1, d2, d2]
        T[1 + col["M"], [col[n] for n in ("M", "X1", "Y1", "X2", "Y2", "End")]] = \
            [1 - 2 * d1 - 2 * d2 - tau, d1, d1, d2, d2, tau]
        for n, e in (("X1", e1), ("Y1", e1), ("X2", e2), ("Y2", e2)):
            T[1 + col[n], [col["M"], col[n], col["End"]]] = [1 - e - tau, e, tau]
    q = np.full(len(letters), 1.0 / len(letters))
    match = k80_joint(letters, DNA_DISTANCE, DNA_KAPPA)
    n_match = len(model.match_emissionprob_)
    n_ins = len(model.insert_emissionprob_)
    model._set_params_from_dict({"background": q.tolist(), "trans": T.tolist(),
                                 "match": [match.tolist()] * n_match, "insert": [q.tolist()] * n_ins},
                                symmetrise=True)
    assert np.allclose(model.trans_, T), "DNA transition table does not respect the preset's ties"
    return model


def make_dna(presets):
    out = {}
    for name in presets:
        model = dna_params(name)
        summ = summarise(model)
        prov = {
            "data": "none: not trained (no DNA reference alignments ship with hmmtie)",
            "match": f"K80 (Kimura 1980), kappa={DNA_KAPPA}, d={DNA_DISTANCE} substitutions/site, "
                     "uniform base frequencies: p(a,b) = 1/4 P_ab(d)",
            "gaps": DNA_3STATE if name == "3state" else DNA_5STATE,
            "insert": "uniform",
            "background": "uniform",
            "summary": summ,
            "date": _dt.date.today().isoformat(),
            "script": "data/train_defaults.py",
        }
        write_params(model, PARAMS / f"dna_{name}.json", prov)
        print(f"dna {name}: {json.dumps({k: round(v, 5) for k, v in summ.items()})}", flush=True)
        out[name] = summ
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["protein", "dna"], help="make only these files")
    ap.add_argument("--presets", nargs="+", default=["3state", "5state"])
    ap.add_argument("--params", choices=["all", "transitions"], default="transitions",
                    help="what EM estimates (default transitions: chosen on TRAIN-family references, see "
                         "data/README.md; 'all' also fits the emissions)")
    ap.add_argument("--start", choices=["generic", "blosum62"], default="blosum62",
                    help="starting match table (default blosum62; 'generic' = preset(defaults=False))")
    ap.add_argument("--inserts", choices=["background", "uniform"], default="uniform",
                    help="insert-state emissions at the start (kept when only transitions are fitted)")
    ap.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                    help="keep the EM match table (default: scale its log-odds by the exponent that maximises "
                         "MEA accuracy on TRAIN reference pairs, see CALIBRATION_GRID)")
    ap.add_argument("--calibrate-only", action="store_true",
                    help="only calibrate the existing (EM-trained, uncalibrated) protein files")
    ap.add_argument("--out-dir", type=Path, help="write the protein files here instead of hmmtie/params/")
    ap.add_argument("--source", type=Path, default=SOURCE,
                    help="balifam checkout to copy from when data/balifam/ is absent")
    args = ap.parse_args(argv)
    if args.calibrate_only:
        calibrate_files(args.presets, args.out_dir)
        return
    if args.only != "protein":
        make_dna(args.presets)
    if args.only != "dna":
        if (COPY / "split.tsv").is_file():
            split = read_split()
        else:
            if not (args.source / "balifam100").is_dir():
                raise SystemExit(f"balifam not found at {args.source}; pass --source")
            split = copy_balifam(args.source)
        train_protein(args.presets, split, args.params, args.start, args.out_dir, args.inserts, args.calibrate)
    dirs = {PARAMS} if args.only != "protein" else set()
    if args.only != "dna":
        dirs.add(args.out_dir or PARAMS)
    for d in sorted(dirs):
        for p in sorted(Path(d).glob("*.json")):
            print(f"{p}  sha256 {sha256(p)[:16]}")


if __name__ == "__main__":
    main()
