"""Plain-HMM commands: ``hmmtie hmm fit | decode | score``."""
from __future__ import annotations

import json
import os

import click

from ._common import (
    CONTEXT_SETTINGS,
    PRESET_NAMES,
    FloatRange,
    HmmtieGroup,
    check_output,
    dask_client,
    explicit,
    json_values,
    quiet_option,
    say,
    scheduler_option,
    summary_stream,
    threads_option,
)

SPEC_HELP = """\b
Examples:
  hmmtie hmm fit casino_spec.json rolls.txt -o casino_model.json
  hmmtie hmm decode casino_model.json rolls.txt
  hmmtie hmm score casino_model.json rolls.txt --json

\b
Model spec (JSON) for 'hmm fit', an unfitted structure:
  {"model": "CategoricalHMM",          (or "GaussianHMM")
   "states": ["fair", "loaded"],        (or "n_states": 2)
   "symbols": ["1","2","3","4","5","6"],(or "n_symbols": 6; "ACGT" or "dna" also work)
   "tying": {"emission_groups": {...}, "transitions": {...}, "fixed": {...}},
            (fixed emission cells [state, symbol, value] name the symbol as
             "symbols" does, or give its 0-based code with "n_symbols")
   "settings": {"n_iter": 100, "tol": 1e-4, "random_state": 0}}
A model file written by 'hmm fit' works too (fitting continues from it).

\b
Sequences: FASTA (categorical, letters mapped through "symbols"); or one
sequence per line of whitespace-separated symbols (the model's symbol names,
or integer codes when it names none);
or, for GaussianHMM, one frame per line (numbers) with a blank line between
sequences. Lines starting with '#' are comments."""

model_arg = click.argument("model_path", metavar="MODEL", type=click.Path(allow_dash=False))
data_arg = click.argument("data", metavar="SEQUENCES", type=click.Path(allow_dash=True))
input_format_option = click.option(
    "--input-format", type=click.Choice(("auto", "fasta", "symbols", "frames")), default="auto",
    help="How to read SEQUENCES; 'auto' takes FASTA when the file starts with '>'.")


@click.group(cls=HmmtieGroup, context_settings=CONTEXT_SETTINGS, epilog=SPEC_HELP)
def hmm():
    """Plain HMMs with tied parameters: fit, decode, score."""


def _kind(model) -> str:
    return "gaussian" if type(model).__name__ == "GaussianHMM" else "categorical"


def _read(data, model, symbols, input_format):
    from hmmtie import seqio

    n_symbols = getattr(model, "n_symbols", None) if symbols is None else None
    X, ids = seqio.read_hmm_data(data, kind=_kind(model), symbols=symbols, input_format=input_format,
                                 n_symbols=n_symbols)
    want = getattr(model, "n_features", None)
    if _kind(model) != "categorical" and want is not None:
        for x, i in zip(X, ids):
            got = x.shape[1] if getattr(x, "ndim", 1) == 2 else 1
            if got != want:
                raise ValueError(f"{data}: sequence {i!r} has {got} values per frame (per line), the "
                                 f"model expects {want}")
    return X, ids


def _load(model_path):
    from hmmtie import seqio

    if model_path in PRESET_NAMES and not os.path.exists(model_path):
        raise ValueError(f"{model_path}: no such model file ({model_path} is a pair-HMM preset, for "
                         "'hmmtie align/compare/train'; 'hmmtie hmm' takes an HMM spec or model file)")
    return seqio.load_hmm(model_path)


def _fitted_model(model_path):
    model, symbols, fitted = _load(model_path)
    if not fitted:
        raise ValueError(f"{model_path}: a model spec without parameters; fit it first with "
                         f"'hmmtie hmm fit {model_path} SEQUENCES -o model.json'")
    return model, symbols


@hmm.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie hmm fit casino_spec.json rolls.txt -o casino_model.json
  hmmtie hmm fit spec.json seqs.fa -o model.json --n-iter 500 --seed 3""")
@model_arg
@data_arg
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), required=True,
              help="Fitted model file to write ('-': stdout).")
@click.option("--n-iter", type=click.IntRange(min=0), default=100, help="Maximum EM iterations (given: overrides the spec's settings).")
@click.option("--tol", type=FloatRange(min=0), default=1e-4, metavar="X", help="EM convergence tolerance (given: overrides the spec's settings).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Random seed of the initial parameters (overrides the spec's random_state).")
@input_format_option
@threads_option
@scheduler_option
@quiet_option
@click.pass_context
def fit(ctx, model_path, data, output, n_iter, tol, seed, input_format, threads, scheduler, quiet):
    """Fit an HMM (spec or model file) to SEQUENCES by EM and save it.

    MODEL is a spec (structure and tie spec, see 'hmmtie hmm -h') or a
    fitted model file, from whose parameters EM then continues.
    """
    check_output(output, data, model_path)
    from hmmtie import seqio

    model, symbols, fitted = _load(model_path)
    X, ids = _read(data, model, symbols, input_format)
    if fitted:
        model.init_params = ""  # continue from the file's parameters
    # the spec's (or model file's) settings hold unless an option is given
    if explicit(ctx, "n_iter"):
        model.n_iter = n_iter
    if explicit(ctx, "tol"):
        model.tol = tol
    if seed is not None:
        model.random_state = seed
    if threads is not None:
        model.n_threads = threads
    with dask_client(scheduler) as client:
        if client is None:
            model.fit(X)
        else:
            model.fit(X, client=client)
    seqio.save_model(model, output, symbols=symbols)
    stream = summary_stream(output, quiet)
    n_obs = sum(len(x) for x in X)
    loglik = model.score(X)
    k = model.n_free_parameters
    import math

    say(stream, f"# fitted {type(model).__name__} ({len(model.tie_.states)} states) on {len(X)} sequence(s), "
                f"{n_obs} observations: {model.n_iter_} EM iterations "
                f"({'converged' if model.converged_ else 'not converged'})")
    say(stream, f"# log-likelihood {loglik:.4f}, {k} free parameters, AIC {-2 * loglik + 2 * k:.2f}, "
                f"BIC {-2 * loglik + k * math.log(n_obs):.2f}")
    if output not in (None, "-"):
        say(stream, f"# wrote {output}")


@hmm.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie hmm decode casino_model.json rolls.txt
  hmmtie hmm decode model.json seqs.fa --algorithm map --json -o paths.json
  hmmtie hmm decode model.json seqs.txt --posteriors -o posteriors.tsv

\b
Output (tsv): a header, then one line per sequence: id, log-probability
(Viterbi: of the best path; map: sum of the chosen states' log posteriors)
and the state names. With --posteriors: one line per position with the
posterior of every state.""")
@model_arg
@data_arg
@click.option("--algorithm", type=click.Choice(("viterbi", "map")), default="viterbi",
              help="viterbi: the single best state path; map: the most probable state at each step.")
@click.option("--posteriors", is_flag=True, help="Write state posteriors per position instead of paths.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (paths, and posteriors with --posteriors).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Where to write ('-': stdout).")
@input_format_option
@threads_option
def decode(model_path, data, algorithm, posteriors, as_json, output, input_format, threads):
    """State paths (Viterbi or MAP) or posteriors of SEQUENCES under a fitted HMM."""
    check_output(output, data, model_path)
    from hmmtie import __version__, seqio

    model, symbols = _fitted_model(model_path)
    if threads is not None:
        model.n_threads = threads
    X, ids = _read(data, model, symbols, input_format)
    states = list(model.tie_.states)
    out = []
    for sid, x in zip(ids, X):
        item = {"id": sid}
        try:
            if posteriors:
                logprob, gamma = model.score_samples(x)
                item.update(log_likelihood=logprob, posteriors=gamma)
            else:
                logprob, path = model.decode(x, algorithm=algorithm)
                item.update(logprob=logprob, states=[states[s] for s in path])
        except ValueError as exc:  # the library numbers the one sequence it was given as 1
            raise ValueError(f"{data}: sequence {sid!r}" + str(exc).removeprefix("sequence 1 (1-based)")) from None
        out.append(item)
    if as_json:
        for item in out:
            if "posteriors" in item:
                item["posteriors"] = [[round(float(p), 8) for p in row] for row in item["posteriors"]]
        doc = {"hmmtie": __version__, "command": "hmm decode", "model": model_path, "states": states,
               "algorithm": None if posteriors else algorithm, "sequences": out}
        seqio.write_text(output, json.dumps(json_values(doc), indent=1, allow_nan=False) + "\n")
        return
    if posteriors:
        lines = ["#id\tposition\t" + "\t".join(states)]
        for item in out:
            for pos, row in enumerate(item["posteriors"], 1):
                lines.append(f"{item['id']}\t{pos}\t" + "\t".join(f"{p:.6g}" for p in row))
    else:
        lines = ["#id\tlogprob\tstates"]
        lines += [f"{item['id']}\t{item['logprob']:.6f}\t{' '.join(item['states'])}" for item in out]
    seqio.write_text(output, "\n".join(lines) + "\n")


@hmm.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie hmm score casino_model.json rolls.txt
  hmmtie hmm score model.json seqs.fa --json""")
@model_arg
@data_arg
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Where to write ('-': stdout).")
@input_format_option
@threads_option
def score(model_path, data, as_json, output, input_format, threads):
    """Log-likelihood (forward algorithm, natural log) of each sequence, and the total with AIC and BIC."""
    check_output(output, data, model_path)
    import math

    from hmmtie import __version__, seqio

    model, symbols = _fitted_model(model_path)
    if threads is not None:
        model.n_threads = threads
    X, ids = _read(data, model, symbols, input_format)
    each = [model.score(x) for x in X]
    total = float(sum(each))
    n_obs = sum(len(x) for x in X)
    k = model.n_free_parameters
    aic, bic = -2 * total + 2 * k, -2 * total + k * math.log(n_obs)
    if as_json:
        doc = {"hmmtie": __version__, "command": "hmm score", "model": model_path,
               "sequences": [{"id": i, "length": len(x), "log_likelihood": s} for i, x, s in zip(ids, X, each)],
               "total": {"log_likelihood": total, "n_obs": n_obs, "n_free_parameters": k, "aic": aic, "bic": bic}}
        seqio.write_text(output, json.dumps(json_values(doc), indent=1, allow_nan=False) + "\n")
        return
    lines = ["#id\tlength\tlog_likelihood"]
    lines += [f"{i}\t{len(x)}\t{s:.6f}" for i, x, s in zip(ids, X, each)]
    lines.append(f"# total log-likelihood {total:.6f} over {len(X)} sequence(s), {n_obs} observations; "
                 f"{k} free parameters, AIC {aic:.2f}, BIC {bic:.2f}")
    seqio.write_text(output, "\n".join(lines) + "\n")
