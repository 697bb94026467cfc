"""Shared pieces of the command line: errors, options, progress, output streams.

Nothing here imports numpy, numba, scipy or Biopython: ``hmmtie --help``
and ``--version`` must stay fast.
"""
from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
import traceback

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}
PRESET_NAMES = ("3state", "5state")
ALPHABETS = ("dna", "rna", "protein")
DEBUG_ENV = "HMMTIE_DEBUG"


# --------------------------------------------------------------------------
# errors: 2 for usage and input errors (one line), 1 for internal errors
# --------------------------------------------------------------------------

def one_line(message) -> str:
    text = str(message).strip()
    return text.splitlines()[0] if text else "unknown error"


class InputError(click.ClickException):
    """Bad input (a file, a record, a model): one line on stderr, exit 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"hmmtie: error: {self.message}", err=True)


class InternalError(click.ClickException):
    """A bug: a short line on stderr, exit 1 (traceback with HMMTIE_DEBUG=1)."""

    exit_code = 1

    def show(self, file=None):
        click.echo(f"hmmtie: internal error: {self.message}", err=True)


def show_usage_error(exc: click.UsageError) -> None:
    where = exc.ctx.command_path if exc.ctx is not None else "hmmtie"
    msg = one_line(exc.format_message())
    click.echo(f"{where}: error: {msg} (see '{where} -h')", err=True)


class HmmtieGroup(click.Group):
    """A Click group that turns library errors into exit codes.

    ``ValueError`` and ``MemoryError`` from the library (and file errors)
    are input errors: one line, exit 2.  Usage errors are one line too,
    exit 2.  Anything else is an internal error: exit 1, with the
    traceback only when ``HMMTIE_DEBUG=1``.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except (ValueError, MemoryError) as exc:
            if os.environ.get(DEBUG_ENV):
                traceback.print_exc()
            msg = one_line(exc)
            remedy = getattr(exc, "remedy", None)  # (library wording, command-line wording)
            if remedy:
                msg = msg.replace(*remedy)
            raise InputError(msg) from exc
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise
            if os.environ.get(DEBUG_ENV):
                traceback.print_exc()
            where = f"{exc.filename}: " if exc.filename else ""
            if not where and exc.errno in (errno.ENOSPC, errno.EIO, errno.EFBIG):
                where = "standard output: cannot write: "  # files name themselves (seqio.open_output)
            raise InputError(f"{where}{exc.strerror or exc}") from exc
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            raise InternalError(
                f"{type(exc).__name__}: {one_line(exc)} (set {DEBUG_ENV}=1 for the traceback; please report it)"
            ) from exc

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            show_usage_error(exc)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("hmmtie: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


# --------------------------------------------------------------------------
# options shared by several commands
# --------------------------------------------------------------------------


class FloatRange(click.FloatRange):
    """click.FloatRange that also refuses NaN (every comparison with NaN is
    false, so click's own range checks let it through)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if rv != rv:
            self.fail(f"{value!r} is not a number", param, ctx)
        return rv


def check_output(output, *inputs) -> None:
    """Refuse, before any work (exit 2), an output path that is one of the
    input files (the temporary-file-and-rename would replace the input with
    the result), whose ``.partial`` (kept when a stream stops) would be one,
    or whose folder does not exist or cannot be written."""
    if output in (None, "-"):
        return
    from hmmtie._validation import is_special_file

    partial = os.fspath(output) + ".partial"
    for path in inputs:
        if path in (None, "-"):
            continue
        for target, what in ((output, "is also an input"), (partial, "would be replaced by OUTPUT.partial")):
            try:
                same = os.path.samefile(path, target)
            except OSError:  # either does not exist (yet)
                same = False
            if same:
                text = (f"{output} is also an input ({path})" if target == output
                        else f"{path} is an input and would be replaced by {partial} (kept if the run stops)")
                raise click.BadParameter(f"{text}; write the output elsewhere", param_hint="'--output'")
    if is_special_file(output):
        return
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"{output}: folder {folder} does not exist", param_hint="'--output'")
    if os.path.isdir(output):
        raise click.BadParameter(f"{output} is a folder", param_hint="'--output'")
    if os.path.isdir(partial):
        raise click.BadParameter(f"{partial} is a folder (OUTPUT.partial holds what a stopped run wrote)",
                                 param_hint="'--output'")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"{output}: folder {folder} is not writable", param_hint="'--output'")


def _stack(*decorators):
    def apply(func):
        for dec in reversed(decorators):
            func = dec(func)
        return func
    return apply


threads_option = click.option(
    "--threads", "-t", type=click.IntRange(min=1), default=None, metavar="N",
    help="Threads for the numba kernels (default: numba's setting, NUMBA_NUM_THREADS).")
scheduler_option = click.option(
    "--scheduler", metavar="local|ADDRESS", default=None,
    help="Run the work on Dask: 'local' starts a LocalCluster of one worker process per core; "
         "an address (tcp://host:8786) joins a running cluster. Needs pip install 'hmmtie[dask]'.")
quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar and no summary lines on stderr.")
alphabet_option = click.option(
    "--alphabet", type=click.Choice(("auto",) + ALPHABETS), default="auto",
    help="Residue alphabet; 'auto' guesses it from the sequences (both files must agree).")
band_option = click.option(
    "--band", type=click.IntRange(min=0), default=None, metavar="W",
    help="Restrict dynamic programming to a band of half-width W around the diagonal from start to end "
         "(faster, less memory; with --local, only when the aligned core is near that diagonal).")
model_option = click.option(
    "--model", "-m", "model_name", default="3state", metavar="PRESET|FILE",
    help="A preset (3state, 5state) or a model file written by 'hmmtie train'.")
tying_options = _stack(
    click.option("--symmetric-gaps/--asymmetric-gaps", default=True,
                 help="Tie each insert-x state to its insert-y twin (gap open, extend, emissions), or free them. "
                      "The default is for presets: a model file keeps its own hypothesis unless one of "
                      "these flags is given (then it is re-tied or freed, with a note on stderr)."),
    click.option("--symmetric-match/--asymmetric-match", default=True,
                 help="Tie p(a,b) to p(b,a) in the match table, or free them (a model file: as above)."),
)


local_option = click.option(
    "--local/--global", "local", default=False,
    help="Local alignment: a preset with flank states that leave unrelated ends unaligned "
         "(default: global). A model file keeps its own structure.")


def em_options(emission_pseudocount: float, n_iter: int = 50, tol: float = 1e-4):
    """--n-iter, --tol and the two pseudocount options, with per-command defaults."""
    return _stack(
        click.option("--n-iter", type=click.IntRange(min=0), default=n_iter, metavar="N",
                     help="Maximum EM iterations."),
        click.option("--tol", type=FloatRange(min=0), default=tol, metavar="X",
                     help="Stop EM when an iteration gains less than this (log-likelihood)."),
        click.option("--transition-pseudocount", type=FloatRange(min=0), default=0.0, metavar="X",
                     help="Dirichlet pseudocount added to every free transition."),
        click.option("--emission-pseudocount", type=FloatRange(min=0), default=emission_pseudocount, metavar="X",
                     help="Dirichlet pseudocount added to every free emission cell (keeps unseen residue "
                          "pairs possible)."),
    )


def explicit(ctx: click.Context, name: str) -> bool:
    """Whether the user gave option ``name`` on the command line."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


# --------------------------------------------------------------------------
# progress and output streams
# --------------------------------------------------------------------------

def progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextlib.contextmanager
def progress(length: int, label: str, quiet: bool):
    """A progress bar on stderr (only for a terminal and without --quiet); yields ``update(n, label=None)``."""
    if not progress_enabled(quiet) or length <= 1:
        yield lambda n=1, label=None: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr, show_eta=True, show_pos=True) as bar:
        def update(n=1, label=None):
            if label is not None:
                bar.label = label
            bar.update(n)
        yield update


def summary_stream(output, quiet: bool):
    """Where summary lines go: stdout when the data goes to a file, stderr when the data is on stdout."""
    if quiet:
        return None
    return sys.stderr if output in (None, "-") else sys.stdout


def say(stream, text: str = "") -> None:
    if stream is not None:
        click.echo(text, file=stream)


def version_message() -> str:
    from hmmtie import __version__

    return f"hmmtie {__version__} (Python {sys.version.split()[0]})"


@contextlib.contextmanager
def dask_client(scheduler):
    """A Dask client for ``--scheduler`` (None: no client), closed at the end."""
    if scheduler is None:
        yield None
        return
    from hmmtie import distributed

    try:
        client, cluster = distributed.connect(scheduler)
    except ImportError as exc:
        raise InputError(one_line(exc)) from None
    try:
        yield client
    except distributed.DistributedError as exc:
        raise InputError(one_line(exc)) from None
    finally:
        distributed.close(client, cluster)


def json_values(obj):
    """``obj`` with every NaN or infinite float replaced by None: JSON has
    no NaN (a strict parser rejects the token); null marks a value that is
    not available, such as the column confidences of a Viterbi alignment
    computed without posteriors."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_values(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_values(v) for v in obj]
    return obj
