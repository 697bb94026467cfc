"""Pair-HMM commands: align, compare, train, simulate, info.

Each command parses its options, calls the library (``hmmtie``,
``hmmtie.seqio``) and prints.  Heavy imports happen inside the commands.
"""
from __future__ import annotations

import json
import math
import os
import stat
import sys

import click

from ._common import (
    ALPHABETS,
    CONTEXT_SETTINGS,
    PRESET_NAMES,
    FloatRange,
    alphabet_option,
    band_option,
    check_output,
    em_options,
    explicit,
    json_values,
    local_option,
    model_option,
    progress,
    quiet_option,
    dask_client,
    say,
    scheduler_option,
    summary_stream,
    threads_option,
    tying_options,
)

ALIGN_FORMATS = (
    "text", "fasta", "clustal", "stockholm", "phylip", "nexus",
    "maf", "sam", "psl", "bed", "chain", "exonerate", "json",
)

seq_a = click.argument("a", metavar="A.fa", type=click.Path(dir_okay=True, allow_dash=True))
seq_b = click.argument("b", metavar="B.fa", type=click.Path(dir_okay=True, allow_dash=True))
all_vs_all_option = click.option(
    "--all-vs-all", is_flag=True,
    help="Pair every record of A with every record of B (default: record i with record i; "
         "a file with one record pairs with every record of the other).")


# --------------------------------------------------------------------------
# shared steps
# --------------------------------------------------------------------------

def load_pairs(a, b, alphabet, all_vs_all, model_alphabet=None, model_source=None):
    """Read both FASTA files, settle the alphabet, pair the records."""
    from hmmtie import seqio

    if a == "-" and b == "-":
        raise click.UsageError("only one of A and B can be '-' (standard input)")
    ra = seqio.read_fasta(a)
    rb = seqio.read_fasta(b)
    name_a, name_b = ("<stdin>" if a == "-" else a), ("<stdin>" if b == "-" else b)
    sources = [(name_a, ra), (name_b, rb)]
    forced = None if alphabet == "auto" else alphabet
    alph = seqio.resolve_alphabet(sources, forced)  # guessed per file (they must agree), or forced and checked
    if model_alphabet is not None and alph != model_alphabet:
        raise _alphabet_mismatch(model_source, model_alphabet, alph, forced, [r for _, rs in sources for r in rs])
    pairs = seqio.pair_records(ra, rb, all_vs_all=all_vs_all, names=(name_a, name_b))
    return pairs, alph


def is_preset(name: str) -> bool:
    return name in PRESET_NAMES


def check_model_name(name: str) -> None:
    if is_preset(name):
        return
    if not os.path.exists(name):
        raise click.BadParameter(
            f"{name!r} is neither a preset ({', '.join(PRESET_NAMES)}) nor an existing model file",
            param_hint="'--model'")


def open_pair_model(ctx, name, alphabet, symmetric_gaps, symmetric_match, band=None, threads=None):
    """A PairHMM from a preset name or a model file; tying flags override a file only when given."""
    from hmmtie import PairHMM, load

    local = bool(ctx.params.get("local", False))
    if is_preset(name):
        model = PairHMM.preset(name, alphabet=alphabet, symmetric_gaps=symmetric_gaps,
                               symmetric_match=symmetric_match, local=local, band=band, n_threads=threads)
        return model
    model = load(name)
    if type(model).__name__ != "PairHMM":
        raise ValueError(f"{name}: holds a {type(model).__name__}, not a pair HMM (use 'hmmtie hmm' for plain HMMs)")
    if explicit(ctx, "alphabet") and ctx.params["alphabet"] not in (None, "auto", model_alphabet(model)):
        raise click.BadParameter(
            f"{name} is a {model_alphabet(model)} model but --alphabet {ctx.params['alphabet']} was given "
            "(leave out --alphabet, or use a model for that alphabet)", param_hint="'--alphabet'")
    if explicit(ctx, "local") and local != model.local:
        raise click.BadParameter(
            f"{name} is a {'local' if model.local else 'global'} model; its structure is fixed "
            f"(leave out --{'local' if local else 'global'})", param_hint="'--local/--global'")
    sg = symmetric_gaps if explicit(ctx, "symmetric_gaps") else None
    sm = symmetric_match if explicit(ctx, "symmetric_match") else None
    if sg is not None or sm is not None:
        was = model.hypothesis
        model = model.with_hypothesis(symmetric_gaps=sg, symmetric_match=sm)
        if model.hypothesis != was and not ctx.params.get("quiet"):
            click.echo(f"hmmtie: note: {name} holds a model with {was}; the flags given make it "
                       f"{model.hypothesis} (tied values are averaged from the file's)", err=True)
    model.band = band
    model.n_threads = threads
    return model


def model_alphabet(model) -> str:
    a = model.alphabet
    return a if isinstance(a, str) else getattr(a, "name", str(a))


def model_label(model) -> str:
    name = model.preset_name or f"{model.n_states}-state"
    return f"{name}{' local' if model.local else ''} {model_alphabet(model)}"


def run_fit(model, pairs, params, n_iter, tol, tp, ep, quiet, label="EM", client=None):
    """EM on the pairs with a progress bar; returns the model (fitted in place)."""
    with progress(n_iter + 1, label, quiet) as step:
        def callback(iteration, objective):
            step(1, label=f"{label} (log-lik {objective:.2f})")
        kw = {"client": client} if client is not None else {}
        model.fit(pairs, n_iter=n_iter, tol=tol, params=params, transition_pseudocount=tp,
                  emission_pseudocount=ep, callback=callback, **kw)
    return model


def fmt_num(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.{digits}f}"


# --------------------------------------------------------------------------
# align
# --------------------------------------------------------------------------

@click.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie align a.fa b.fa
  hmmtie align a.fa b.fa --asymmetric-gaps --method viterbi --format fasta -o aln.fa
  hmmtie align queries.fa target.fa --format json -o result.json
  hmmtie align a.fa b.fa --model model.json --band 50
  hmmtie align domain.fa proteins.fa --local --method viterbi
  cat a.fa | hmmtie align - b.fa --format stockholm

\b
Pairing: record i of A goes with record i of B; a file with one record pairs
with every record of the other; --all-vs-all pairs everything.
Summary lines (log-likelihood, log-odds, identity, confidence) are part of the
text and json output; with other formats they go to stderr (stdout with -o).""")
@seq_a
@seq_b
@model_option
@tying_options
@local_option
@click.option("--fit", "fit", type=click.Choice(("none", "transitions", "all")), default="none",
              help="Estimate parameters on the input pairs by EM before aligning. 'none' keeps the model's "
                   "parameters: the protein presets were trained on many pairs (the DNA ones are set from a "
                   "substitution model), and one short pair cannot support a match table of 400 (protein) "
                   "or 16 (DNA) cells (use 'transitions' with a few pairs, 'all' with many).")
@click.option("--method", type=click.Choice(("mea", "viterbi")), default="mea",
              help="mea: maximum expected accuracy from match posteriors; viterbi: most probable path.")
@band_option
@click.option("--format", "-f", "fmt", type=click.Choice(ALIGN_FORMATS), default="text",
              help="Output format: Biopython alignment formats, 'text' (readable, with summaries) or 'json'. "
                   "Several pairs: stockholm, maf, sam, psl, bed, chain and exonerate hold several "
                   "alignments per file; fasta writes the pairs one after another, two records each "
                   "(read them with Bio.SeqIO two at a time: Bio.Align.parse takes a FASTA file for one "
                   "alignment); phylip writes one data set per pair; clustal and nexus hold one pair. "
                   "With --local, json, maf, sam, psl, chain and exonerate keep where the aligned core "
                   "starts in each sequence; fasta, clustal, phylip, nexus and stockholm hold the core "
                   "alone (the summary lines give its span); bed gives the span in A only.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write alignments here ('-': stdout); written to a temporary file and renamed on success.")
@all_vs_all_option
@alphabet_option
@em_options(emission_pseudocount=1.0)
@threads_option
@scheduler_option
@click.option("--chunk-size", type=click.IntRange(min=1), default=256, metavar="N",
              help="Pairs read, aligned and written at a time when streaming (inputs over 16 MiB, stdin, pipes): "
                   "memory is then bounded by this, not by the input (except with --all-vs-all, --fit and "
                   "the formats written at the end).")
@quiet_option
@click.pass_context
def align(ctx, a, b, model_name, symmetric_gaps, symmetric_match, local, fit, method, band, fmt, output,
          all_vs_all, alphabet, n_iter, tol, transition_pseudocount, emission_pseudocount, threads, scheduler,
          chunk_size, quiet):
    """Align record pairs of A.fa and B.fa with a pair HMM.

    Prints, for each pair, the alignment and a summary: log-likelihood and
    log-odds (natural log, against independent residues), identity, mean
    posterior confidence, the tie hypothesis and the number of free
    parameters; with --local, also the aligned span of each sequence.
    Results are written as they come, in input order (formats clustal, maf,
    psl, exonerate and nexus are written at the end).  Inputs
    over 16 MiB, standard input and pipes are read lazily, --chunk-size
    pairs at a time; a bad record deep in such a stream stops the run with the pairs
    before it written (kept in OUTPUT.partial with -o; with --format json
    still a valid document, with an "error" entry) and an error naming the
    record.  Smaller inputs are checked whole before any output.
    """
    check_model_name(model_name)
    check_output(output, a, b, None if is_preset(model_name) else model_name)
    from hmmtie import __version__

    if a == "-" and b == "-":
        raise click.UsageError("only one of A and B can be '-' (standard input)")
    file_model = not is_preset(model_name)
    model = None
    if file_model:
        model = open_pair_model(ctx, model_name, None, symmetric_gaps, symmetric_match, band, threads)
    with dask_client(scheduler) as client:
        if fit != "none":  # EM needs every pair in memory
            pairs, alph = load_pairs(a, b, alphabet, all_vs_all,
                                     model_alphabet(model) if model is not None else None, model_name)
            if model is None:
                model = open_pair_model(ctx, model_name, alph, symmetric_gaps, symmetric_match, band, threads)
            check_pairs_memory(model, pairs, method)  # before the EM, not after it
            run_fit(model, pairs, fit, n_iter, tol, transition_pseudocount, emission_pseudocount, quiet,
                    label=f"EM on {len(pairs)} pair(s)", client=client)
            source = pairs
        else:
            source, alph = stream_pairs(a, b, alphabet, all_vs_all,
                                        model_alphabet(model) if model is not None else None, model_name)
            if model is None:
                model = open_pair_model(ctx, model_name, alph, symmetric_gaps, symmetric_match, band, threads)
        write_alignments(model, source, method, client, chunk_size, fmt, output, alph, quiet,
                         header=dict(hmmtie=__version__, fit=fit, band=band, model_name=model_name))


#: Input files up to this size (both together) are read whole before any
#: output, so every input error comes first and nothing is half-written;
#: larger files and standard input are streamed.
EAGER_READ_BYTES = 16 * 2**20


def _small_files(a, b) -> bool:
    """Whether both inputs are regular files small enough to read whole (a
    pipe, ``<(zcat x.gz)`` or ``/dev/stdin`` has no size: it streams)."""
    if a == "-" or b == "-":
        return False
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return True  # let the reader report it
    if not (stat.S_ISREG(sa.st_mode) and stat.S_ISREG(sb.st_mode)):
        return False
    return sa.st_size + sb.st_size <= EAGER_READ_BYTES


def _alphabet_mismatch(model_source, model_alphabet, alph, forced, records) -> ValueError:
    """The error for sequences of another alphabet than the model's; it
    suggests ``--alphabet`` only where every record (of those read) is
    written in the model's letters, so that the suggestion can work."""
    from hmmtie import alphabet as _alph

    hint = ""
    if not forced:
        model_alph = _alph.get_alphabet(model_alphabet)
        try:
            for r in records:
                _alph.encode(str(r.seq), model_alph, record=r.id)
            hint = f"; pass --alphabet {model_alphabet} to use it anyway"
        except ValueError:
            hint = f" (with letters that are not {model_alphabet} symbols)"
    return ValueError(f"{model_source} is a {model_alphabet} model but the sequences "
                      f"{'are' if forced else 'look like'} {alph}{hint}")


def stream_pairs(a, b, alphabet, all_vs_all, model_alphabet=None, model_source=None):
    """Pairs of the two FASTA files and the alphabet: read whole when small,
    otherwise lazily (the alphabet guessed from the first records)."""
    from hmmtie import seqio

    if _small_files(a, b):
        return load_pairs(a, b, alphabet, all_vs_all, model_alphabet, model_source)
    name_a, name_b = ("<stdin>" if a == "-" else a), ("<stdin>" if b == "-" else b)
    forced = None if alphabet == "auto" else alphabet
    stream = seqio.iter_pairs(a, b, all_vs_all=all_vs_all, alphabet=forced, names=(name_a, name_b))
    alph = stream.alphabet
    if model_alphabet is not None and alph != model_alphabet:
        raise _alphabet_mismatch(model_source, model_alphabet, alph, forced, [r for h in stream._heads for r in h])
    return stream, alph


def check_pairs_memory(model, pairs, method):
    """Refuse, before any work or output, a pair that the memory guard would
    stop mid-way (pairs read whole; the guard depends on lengths only)."""
    for k, (ra, rb) in enumerate(pairs):
        try:
            model._check_align_memory(len(ra.seq), len(rb.seq), method)
        except MemoryError as exc:
            err = MemoryError(f"pair {k + 1}: {exc}; nothing was written")
            err.remedy = getattr(exc, "remedy", None)
            raise err from None


def write_alignments(model, pairs, method, client, chunk_size, fmt, output, alph, quiet, header):
    """Align (streaming) and write each pair as it comes; see ``align``."""
    from hmmtie import seqio

    if hasattr(pairs, "__len__"):
        for k, (ra, rb) in enumerate(pairs):
            seqio.check_distinct_names(fmt, ra.id, rb.id, k + 1)
        check_pairs_memory(model, pairs, method)

    n_free = int(model.n_free_parameters)
    fit = header["fit"]
    fit_note = ""
    if fit != "none":
        fit_note = (f"; fitted by EM ({fit}, {model.n_iter_} iterations, "
                    f"{'converged' if model.converged_ else 'not converged'})")
    label = model_label(model)

    def summary(k, r):
        i = r["identity"]
        pct = 100.0 * i["identity"]
        c = r["alignment"].coordinates
        span = ""
        if model.local and not i["aligned_pairs"]:
            span = " (local: no residue aligned; every residue is listed unaligned)"
        elif model.local:
            span = f" (local: a {c[0, 0] + 1}-{c[0, -1]}, b {c[1, 0] + 1}-{c[1, -1]}, 1-based)"
        return [
            f"# pair {k + 1}: {r['a']} vs {r['b']}{span}",
            f"# log-likelihood {fmt_num(r['log_likelihood'])}  log-odds {fmt_num(r['log_odds'])}  (natural log)",
            f"# identity {i['identities']}/{i['columns']} columns ({pct:.1f}%)  "
            f"mean posterior confidence {fmt_num(r['mean_confidence'])}  ({method})",
            f"# model {label}: {model.hypothesis}; {n_free} free parameters{fit_note}",
        ]

    def results():
        for aln in model.align_many(pairs, method=method, client=client, chunk_size=chunk_size):
            step()
            yield {"a": aln.sequences[0].id, "b": aln.sequences[1].id, "alignment": aln,
                   "log_likelihood": aln.log_likelihood, "log_odds": aln.log_odds,
                   "identity": seqio.alignment_identity(aln, alph),
                   "mean_confidence": float(getattr(aln, "mean_confidence", float("nan")))}

    stream = summary_stream(output, quiet)
    done = 0
    n_known = len(pairs) if hasattr(pairs, "__len__") else 0  # no bar while streaming (length unknown)
    if n_known > 1:  # before aligning anything
        seqio.check_alignment_count(fmt, n_known)
    out = seqio.StreamOutput(output)
    try:
        with out, progress(n_known, "aligning", quiet) as step:
            if fmt == "json":
                doc = {"hmmtie": header["hmmtie"], "command": "align", "method": method, "fit": fit,
                       "band": header["band"],
                       "model": {"source": header["model_name"], "label": label, "hypothesis": model.hypothesis,
                                 "n_free_parameters": n_free, "definition": model.to_dict()},
                       "pairs": []}
                head = json.dumps(json_values(doc), indent=1, allow_nan=False)
                assert head.endswith('"pairs": []\n}')
                out.write(head[:-len("[]\n}")] + "[")
                try:
                    for k, r in enumerate(results()):
                        item = {"index": k + 1, "a": r["a"], "b": r["b"], "log_likelihood": r["log_likelihood"],
                                "log_odds": r["log_odds"], **r["identity"], "mean_confidence": r["mean_confidence"],
                                "alignment": seqio.alignment_to_dict(r["alignment"])}
                        text = json.dumps(json_values(item), indent=1, allow_nan=False).replace("\n", "\n  ")
                        out.write(("," if k else "") + "\n  " + text)
                        done += 1
                except (ValueError, MemoryError) as exc:
                    if isinstance(exc, seqio.OutputError):
                        raise  # the output itself failed: nothing more can be written
                    # a stream that stops keeps a valid document: the pairs so far and why it stopped
                    why = one_line_text(exc)
                    own = f"pair {done + 1}: "
                    if why.startswith(own):  # (the memory guard names the pair itself)
                        why = why[len(own):]
                    out.write(("\n ]" if done else "]") + ',\n "error": '
                              + json.dumps(f"{own}stopped: {why}") + "\n}\n")
                    raise
                out.write(("\n ]" if done else "]") + "\n}\n")
            elif fmt == "text":
                for k, r in enumerate(results()):
                    out.write(("\n" if k else "") + "\n".join(summary(k, r)) + "\n" + str(r["alignment"]))
                    done += 1
            elif fmt in seqio.STREAMABLE_FORMATS:
                for k, r in enumerate(results()):
                    out.write(seqio.format_alignments([r["alignment"]], fmt, alphabet=alph, first=k + 1))
                    done += 1
                    for line in summary(k, r):
                        say(stream, line)
            else:  # formats that are not a concatenation of one file per alignment: written at the end
                kept = []
                try:
                    for r in results():
                        kept.append(r)
                        if len(kept) == 2:  # a one-alignment format: refuse now, not after every pair
                            seqio.check_alignment_count(fmt, 2)
                except (ValueError, MemoryError):
                    # a bad record (or pair) mid-stream: the pairs aligned before it
                    # are written, and kept in OUT.partial, before the error stops the run
                    if kept and (len(kept) == 1 or fmt not in seqio.SINGLE_ALIGNMENT_FORMATS):
                        try:
                            text = seqio.format_alignments([r["alignment"] for r in kept], fmt, alphabet=alph)
                        except ValueError:
                            text = ""
                        if text:
                            out.write(text)
                            done = len(kept)
                    raise
                text = seqio.format_alignments([r["alignment"] for r in kept], fmt, alphabet=alph)
                out.write(text)
                done = len(kept)
                for k, r in enumerate(kept):
                    for line in summary(k, r):
                        say(stream, line)
    except (ValueError, MemoryError) as exc:
        if not done:
            raise
        where = (f"{out.partial} holds pairs 1-{done}" if out.partial else
                 f"pairs 1-{done} were written" if output in (None, "-") else
                 f"pairs 1-{done} were written to {output}" if getattr(out, "_direct", False) else "nothing kept")
        from hmmtie._validation import with_message

        raise with_message(exc, f"{one_line_text(exc)}; output stopped after pair {done} ({where})") from None


def one_line_text(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------

TEST_WORDS = {"gaps": "gap symmetry", "match": "match-table symmetry", "both": "gap and match-table symmetry"}

@click.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie compare a.fa b.fa
  hmmtie compare a.fa b.fa --test both --json -o comparison.json
  hmmtie compare a.fa b.fa --all-vs-all --n-iter 200 --alpha 0.01

\b
Both hypotheses are fitted by EM on the same pairs: the tied one first, then
the untied one starting from the tied fit, so its log-likelihood is never
lower. The LRT statistic is referred to a chi-square with df = the
difference in free parameters, counted from the tie maps.""")
@seq_a
@seq_b
@model_option
@local_option
@click.option("--test", type=click.Choice(("gaps", "match", "both")), default="gaps",
              help="Which symmetry to test: insert states (gaps), the match table, or both at once.")
@click.option("--params", type=click.Choice(("auto", "transitions", "all")), default="auto",
              help="What EM estimates; 'auto' is transitions for --test gaps and all otherwise "
                   "(the match table must be estimated to test its symmetry).")
@click.option("--alpha", type=FloatRange(min=0, max=1, min_open=True, max_open=True), default=0.05, metavar="P",
              help="Significance level of the verdict.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Write the table or JSON here ('-': stdout).")
@band_option
@all_vs_all_option
@alphabet_option
@em_options(emission_pseudocount=0.0, n_iter=100, tol=1e-6)
@threads_option
@scheduler_option
@quiet_option
@click.pass_context
def compare(ctx, a, b, model_name, local, test, params, alpha, as_json, output, band, all_vs_all, alphabet,
            n_iter, tol, transition_pseudocount, emission_pseudocount, threads, scheduler, quiet):
    """Test a tied (symmetric) against an untied pair-HMM hypothesis on the pairs of A.fa and B.fa.

    Prints log-likelihood, free parameters, AIC and BIC of each fit, the
    likelihood-ratio statistic, its df and p-value, and a verdict in plain
    words.
    """
    check_model_name(model_name)
    check_output(output, a, b, None if is_preset(model_name) else model_name)
    from hmmtie import __version__, compare_pairs, seqio

    file_model = not is_preset(model_name)
    model = open_pair_model(ctx, model_name, None, True, True, band, threads) if file_model else None
    pairs, alph = load_pairs(a, b, alphabet, all_vs_all,
                             model_alphabet(model) if model is not None else None, model_name)
    if model is None:
        model = open_pair_model(ctx, model_name, alph, True, True, band, threads)
    if params == "auto":
        params = "transitions" if test == "gaps" else "all"
    with dask_client(scheduler) as client, \
            progress(2 * (n_iter + 1), f"EM, tied and untied, {len(pairs)} pair(s)", quiet) as step:
        kw = {"client": client} if client is not None else {}
        result = compare_pairs(pairs, model=model, test=test, params=params, n_iter=n_iter, tol=tol,
                               transition_pseudocount=transition_pseudocount,
                               emission_pseudocount=emission_pseudocount, n_threads=threads,
                               callback=lambda it, obj: step(), **kw)
    verdict = result.verdict(alpha)
    d = result.as_dict()
    if as_json:
        doc = {"hmmtie": __version__, "command": "compare", "model": model_name, "alphabet": alph,
               "n_pairs": len(pairs), "alpha": alpha, **d, "verdict": verdict}
        seqio.write_text(output, json.dumps(doc, indent=1) + "\n")
        return
    t, u, lrt = d["tied"], d["untied"], d["lrt"]
    rows = [("", "tied", "untied"),
            ("hypothesis", t["hypothesis"], u["hypothesis"]),
            ("log-likelihood", fmt_num(t["loglik"]), fmt_num(u["loglik"])),
            ("free parameters", str(t["n_free_parameters"]), str(u["n_free_parameters"])),
            ("AIC", fmt_num(t["aic"], 2), fmt_num(u["aic"], 2)),
            ("BIC", fmt_num(t["bic"], 2), fmt_num(u["bic"], 2)),
            ("EM iterations", f"{t['n_iter']}{'' if t['converged'] else ' (not converged)'}",
             f"{u['n_iter']}{'' if u['converged'] else ' (not converged)'}")]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"# {len(pairs)} pair(s), {d['n_obs']} residues; model {model_label(model)}; "
             f"test: {TEST_WORDS[test]}; EM estimates {params}"]
    lines += [f"{r[0]:<{w0}}  {r[1]:<{w1}}  {r[2]}".rstrip() for r in rows]
    lines.append(f"LRT statistic {lrt['statistic']:.4f}, df {lrt['df']}, p-value {lrt['p_value']:.4g}")
    lines.append(f"verdict: {verdict}")
    seqio.write_text(output, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------

@click.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie train a.fa b.fa -o model.json
  hmmtie train a.fa b.fa --asymmetric-gaps --params transitions -o asym.json
  hmmtie align x.fa y.fa --model model.json""")
@seq_a
@seq_b
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), required=True,
              help="Model file to write (JSON; '-': stdout).")
@model_option
@tying_options
@local_option
@click.option("--params", type=click.Choice(("all", "transitions")), default="all",
              help="Estimate all parameters, or transitions only (keep the starting emissions).")
@band_option
@all_vs_all_option
@alphabet_option
@em_options(emission_pseudocount=1.0, n_iter=100, tol=1e-4)
@threads_option
@scheduler_option
@quiet_option
@click.pass_context
def train(ctx, a, b, output, model_name, symmetric_gaps, symmetric_match, local, params, band, all_vs_all, alphabet,
          n_iter, tol, transition_pseudocount, emission_pseudocount, threads, scheduler, quiet):
    """Fit a pair HMM by EM on the (unaligned) pairs of A.fa and B.fa and save it.

    Starts from --model (a preset's defaults or a model file) under the
    chosen tie hypothesis.
    """
    check_model_name(model_name)
    check_output(output, a, b, None if is_preset(model_name) else model_name)
    from hmmtie import seqio

    file_model = not is_preset(model_name)
    model = open_pair_model(ctx, model_name, None, symmetric_gaps, symmetric_match, band, threads) \
        if file_model else None
    pairs, alph = load_pairs(a, b, alphabet, all_vs_all,
                             model_alphabet(model) if model is not None else None, model_name)
    if model is None:
        model = open_pair_model(ctx, model_name, alph, symmetric_gaps, symmetric_match, band, threads)
    with dask_client(scheduler) as client:
        run_fit(model, pairs, params, n_iter, tol, transition_pseudocount, emission_pseudocount, quiet,
                label=f"EM on {len(pairs)} pair(s)", client=client)
    seqio.save_model(model, output)
    stream = summary_stream(output, quiet)
    say(stream, f"# trained {model_label(model)} ({model.hypothesis}) on {len(pairs)} pair(s): "
                f"log-likelihood {fmt_num(model.loglik_)}, {model.n_free_parameters} free parameters, "
                f"{model.n_iter_} EM iterations ({'converged' if model.converged_ else 'not converged'})")
    if output not in (None, "-"):
        say(stream, f"# wrote {output}")


# --------------------------------------------------------------------------
# simulate
# --------------------------------------------------------------------------

@click.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie simulate --pairs 100 --seed 1 -o sim
  hmmtie simulate --model model.json --pairs 20 --seed 7 -o sim --format stockholm
  hmmtie align sim.a.fa sim.b.fa --format json -o predicted.json

\b
Writes PREFIX.a.fa and PREFIX.b.fa (record i of one pairs with record i of
the other) and PREFIX.true.<format> with the true alignments.""")
@click.option("--model", "-m", "model_name", default="3state", metavar="PRESET|FILE",
              help="A preset (3state, 5state) or a model file.")
@click.option("--alphabet", type=click.Choice(ALPHABETS), default="dna",
              help="Alphabet of a preset (a model file has its own).")
@tying_options
@local_option
@click.option("--pairs", "n_pairs", type=click.IntRange(min=1), default=10, help="Number of pairs to draw.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Random seed (default: fresh randomness).")
@click.option("--output", "-o", "prefix", required=True, metavar="PREFIX",
              help="Output prefix: PREFIX.a.fa, PREFIX.b.fa, PREFIX.true.<format>.")
@click.option("--format", "-f", "fmt", type=click.Choice(("json", "stockholm", "maf", "fasta", "clustal")),
              default="json", help="Format of the true alignments (json matches 'hmmtie align --format json'; "
                                   "fasta: the pairs one after another, two records each; clustal: --pairs 1).")
@quiet_option
@click.pass_context
def simulate(ctx, model_name, alphabet, symmetric_gaps, symmetric_match, local, n_pairs, seed, prefix, fmt, quiet):
    """Draw sequence pairs and their true alignments from a pair HMM."""
    check_model_name(model_name)
    if prefix in ("", "-") or prefix.endswith(os.sep):
        raise click.BadParameter(f"{prefix!r} is not a file prefix (files PREFIX.a.fa, PREFIX.b.fa "
                                 f"and PREFIX.true.FORMAT are written)", param_hint="'--output'")
    from hmmtie import __version__, seqio

    model = open_pair_model(ctx, model_name, alphabet, symmetric_gaps, symmetric_match)
    drawn = model.sample(n_pairs, random_state=seed)
    path_a, path_b, path_t = f"{prefix}.a.fa", f"{prefix}.b.fa", f"{prefix}.true.{fmt}"
    for path in (path_a, path_b, path_t):  # refused before any file is written
        check_output(path)
    alignments = [aln for _, _, aln in drawn]
    if fmt == "json":
        doc = {"hmmtie": __version__, "command": "simulate", "seed": seed,
               "model": {"source": model_name, "label": model_label(model), "hypothesis": model.hypothesis},
               "pairs": [{"index": k + 1, "a": aln.sequences[0].id, "b": aln.sequences[1].id,
                          "alignment": seqio.alignment_to_dict(aln)} for k, aln in enumerate(alignments)]}
        true_text = json.dumps(doc, indent=1) + "\n"
    else:
        true_text = seqio.format_alignments(alignments, fmt, alphabet=model_alphabet(model))
    # every file is complete before any is renamed into place
    with seqio.open_output(path_t) as fh_t, seqio.open_output(path_a) as fh_a, seqio.open_output(path_b) as fh_b:
        fh_t.write(true_text)
        for k, aln in enumerate(alignments):
            for fh, rec in ((fh_a, aln.sequences[0]), (fh_b, aln.sequences[1])):
                seq = str(rec.seq)
                fh.write(f">{rec.id}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60)))
    stream = summary_stream(prefix, quiet)
    say(stream, f"# drew {n_pairs} pair(s) from {model_label(model)} ({model.hypothesis}), seed {seed}")
    say(stream, f"# wrote {path_a}, {path_b}, {path_t}")


# --------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------

def _print_blocks(lines, blocks, limit):
    for name, blk in blocks.items():
        lines.append(f"{name}: {blk['n_atoms']} values (atoms), {blk['n_free']} free")
        tied = blk["tied"]
        if tied:
            lines.append(f"  tied groups ({len(tied)}):")
            for cells in tied[:limit]:
                lines.append("    " + " = ".join(cells))
            if len(tied) > limit:
                lines.append(f"    ... {len(tied) - limit} more (--full shows all)")
        fixed = blk["fixed"]
        if fixed:
            lines.append(f"  fixed cells ({len(fixed)}):")
            for cell in fixed[:limit]:
                lines.append("    " + cell)
            if len(fixed) > limit:
                lines.append(f"    ... {len(fixed) - limit} more (--full shows all)")


@click.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie info 3state
  hmmtie info 5state --alphabet protein --asymmetric-gaps
  hmmtie info model.json --json""")
@click.argument("model_name", metavar="MODEL")
@click.option("--alphabet", type=click.Choice(ALPHABETS), default="dna", help="Alphabet of a preset.")
@tying_options
@local_option
@click.option("--full", is_flag=True, help="List every tie group and fixed cell (default: the first 12 of each).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def info(ctx, model_name, alphabet, symmetric_gaps, symmetric_match, local, full, as_json):
    """Show a model's states, tie groups, fixed cells and free parameters.

    MODEL is a pair-HMM preset (3state, 5state) or any model file (pair HMM,
    CategoricalHMM, GaussianHMM, or an HMM spec for 'hmmtie hmm fit').
    """
    from hmmtie import seqio

    if is_preset(model_name):
        model = open_pair_model(ctx, model_name, alphabet, symmetric_gaps, symmetric_match)
        symbols = None
    elif not os.path.exists(model_name):
        raise click.BadParameter(
            f"{model_name!r} is neither a preset ({', '.join(PRESET_NAMES)}) nor an existing model file",
            param_hint="'MODEL'")
    else:
        model, symbols, _ = seqio.load_hmm(model_name, allow_pair=True)
        if explicit(ctx, "alphabet") and (type(model).__name__ != "PairHMM" or model_alphabet(model) != alphabet):
            what = (f"a {model_alphabet(model)} model" if type(model).__name__ == "PairHMM"
                    else f"a {type(model).__name__}")
            raise click.BadParameter(f"{model_name} is {what}; --alphabet applies to presets only "
                                     "(leave it out)", param_hint="'--alphabet'")
        if type(model).__name__ == "PairHMM" and (explicit(ctx, "symmetric_gaps") or explicit(ctx, "symmetric_match")):
            model = model.with_hypothesis(
                symmetric_gaps=symmetric_gaps if explicit(ctx, "symmetric_gaps") else None,
                symmetric_match=symmetric_match if explicit(ctx, "symmetric_match") else None)
    d = seqio.describe_model(model, symbols)
    if explicit(ctx, "local") and local != bool(d.get("local")):
        what = ("a local model" if d.get("local") else "a global model") if "local" in d \
            else f"a {d['model']}, not a pair HMM"
        raise click.BadParameter(f"{model_name} is {what}; its structure is fixed "
                                 f"(leave out --{'local' if local else 'global'})", param_hint="'--local/--global'")
    if symbols is not None:
        d["symbols"] = symbols
    if as_json:
        click.echo(json.dumps(d, indent=1))
        return
    limit = sys.maxsize if full else 12
    kind = " local" if d.get("local") else ""
    lines = [f"model: {d['model']}" + (f" ({d['preset']}{kind}, {d['alphabet']})" if d.get("preset") else
                                       (f" ({d['alphabet']})" if d.get("alphabet") else ""))]
    if "hypothesis" in d:
        lines.append(f"hypothesis: {d['hypothesis']}")
    states = d["states"]
    if states and isinstance(states[0], list):
        lines.append("states: " + ", ".join(f"{n} ({k})" for n, k in states))
    else:
        lines.append("states: " + ", ".join(states))
    if symbols is not None:
        lines.append("symbols: " + " ".join(symbols))
    for g in d.get("emission_groups", []):
        extra = f", share {g['share']}" if g["share"] != "all" else ""
        soft = f", soft {g['soft']:g}" if "soft" in g else ""
        lines.append(f"emission group {g['name']}: {', '.join(g['states'])}{extra}{soft}")
    _print_blocks(lines, d["blocks"], limit)
    nfp = d["n_free_parameters"]
    lines.append(f"free parameters: {nfp if nfp is not None else 'unknown until fit (n_features)'}")
    click.echo("\n".join(lines))
