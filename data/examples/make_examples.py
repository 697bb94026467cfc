"""Rebuild the example files in this folder (see README.md here).

    python data/examples/make_examples.py [--balifam ../shared/data/balifam/balifam100/in]

Protein pairs are copied from balifam (CC0); the DNA pair and the dice rolls
are drawn from hmmtie models with fixed seeds, so the files are reproducible.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FAMILIES = ("PF00018.100", "PF00046.100", "PF07679.100")  # SH3, homeodomain, Ig I-set
DNA_SEED = 11  # first seed >= 0 whose 3state DNA pair has both sequences 900-1100 nt (searched below)

CASINO_SPEC = {
    "model": "CategoricalHMM",
    "states": ["fair", "loaded1", "loaded2"],
    "symbols": ["1", "2", "3", "4", "5", "6"],
    "tying": {
        "emission_groups": {"loaded die": ["loaded1", "loaded2"]},
        "fixed": {
            "startprob": [["loaded2", 0.0]],
            "transmat": [["fair", "loaded2", 0.0], ["loaded1", "fair", 0.0], ["loaded1", "loaded1", 0.0],
                         ["loaded2", "loaded1", 0.0]],
        },
    },
    "settings": {"n_iter": 200, "tol": 1e-6, "random_state": 3},  # seed 3: best of seeds 0-6
}


def fasta(records) -> str:
    out = []
    for rid, seq in records:
        out.append(f">{rid}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60)))
    return "".join(out)


def proteins(balifam: Path) -> None:
    from Bio import SeqIO

    a, b = [], []
    for fam in FAMILIES:
        recs = list(SeqIO.parse(balifam / fam, "fasta"))
        a.append((recs[0].id, str(recs[0].seq).upper()))
        b.append((recs[1].id, str(recs[1].seq).upper()))
    (HERE / "proteins_a.fa").write_text(fasta(a))
    (HERE / "proteins_b.fa").write_text(fasta(b))


def dna() -> None:
    from hmmtie import PairHMM

    model = PairHMM.preset("3state", alphabet="dna")
    seed = DNA_SEED
    x, y, _ = model.sample(1, random_state=seed)[0]
    if not (900 <= len(x) <= 1100 and 900 <= len(y) <= 1100):
        for seed in range(10_000):
            x, y, _ = model.sample(1, random_state=seed)[0]
            if 900 <= len(x) <= 1100 and 900 <= len(y) <= 1100:
                break
        print(f"DNA_SEED should be {seed} for these default parameters")
    (HERE / "dna_a.fa").write_text(fasta([(f"sim{seed}_a", x)]))
    (HERE / "dna_b.fa").write_text(fasta([(f"sim{seed}_b", y)]))
    print(f"DNA pair: seed {seed}, lengths {len(x)} and {len(y)}")


def casino() -> None:
    from hmmtie import CategoricalHMM

    spec = CASINO_SPEC
    model = CategoricalHMM(states=spec["states"], n_symbols=6, tying=spec["tying"])
    model.startprob_ = np.array([1.0, 0.0, 0.0])
    model.transmat_ = np.array([[0.95, 0.05, 0.0], [0.0, 0.0, 1.0], [0.1, 0.0, 0.9]])
    loaded = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.5])
    model.emissionprob_ = np.array([np.full(6, 1 / 6), loaded, loaded])
    lines = ["# dice rolls, one sequence per line; drawn by make_examples.py (seeds 0-4)"]
    for seed in range(5):
        X, _ = model.sample(200, random_state=seed)
        lines.append(" ".join(spec["symbols"][int(s)] for s in X[:, 0]))
    (HERE / "rolls.txt").write_text("\n".join(lines) + "\n")
    (HERE / "casino_spec.json").write_text(json.dumps(spec, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--balifam", type=Path,
                        default=HERE.parents[2] / "shared" / "data" / "balifam" / "balifam100" / "in")
    parser.add_argument("--only", choices=("proteins", "dna", "casino"))
    args = parser.parse_args()
    if args.only in (None, "proteins"):
        proteins(args.balifam)
    if args.only in (None, "casino"):
        casino()
    if args.only in (None, "dna"):
        dna()


if __name__ == "__main__":
    main()
