"""The hmmtie command line (installed as ``hmmtie``; the package ``hmmtie.cli``).

One Click group; each command parses its options, calls the library through
its public API (``hmmtie``, ``hmmtie.seqio``) and prints.  No modelling
logic lives here.  Heavy modules (numpy, numba, scipy, Biopython) are
imported inside the commands, so ``hmmtie --help`` and ``--version`` stay
fast.

Exit status: 0 success; 2 usage or input error (one line on stderr, no
traceback); 1 internal error (traceback with ``HMMTIE_DEBUG=1``).
"""
from __future__ import annotations

import click

from hmmtie import __version__

from ._common import CONTEXT_SETTINGS, HmmtieGroup
from ._hmm import hmm
from ._pair import align, compare, info, simulate, train

__all__ = ["cli", "main"]


@click.group("hmmtie", cls=HmmtieGroup, context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  hmmtie align a.fa b.fa --symmetric-gaps
  hmmtie compare a.fa b.fa --test gaps
  hmmtie train a.fa b.fa -o model.json && hmmtie align c.fa d.fa --model model.json
  hmmtie simulate --pairs 50 --seed 1 -o sim
  hmmtie hmm fit spec.json seqs.txt -o model.json
  hmmtie info 3state

\b
'-' reads standard input or writes standard output. Outputs are written to a
temporary file and renamed on success (a device, pipe or symbolic link is
written directly).
Warnings are one line each. Exit status: 0 success, 2 usage or input error,
1 internal error (HMMTIE_DEBUG=1 shows the traceback).""")
@click.version_option(__version__, "-V", "--version", prog_name="hmmtie", message="%(prog)s %(version)s")
def cli():
    """hmmtie: HMMs and pair HMMs with tied parameters.

    Align sequence pairs under symmetric or asymmetric gap hypotheses, test
    one against the other, train and simulate pair HMMs, and fit or decode
    plain HMMs with tied states.
    """
    import warnings

    warnings.formatwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, line=None):
    """Warnings on the command line: one line, no source location."""
    return f"hmmtie: warning: {message}\n"


for _command in (align, compare, train, simulate, info, hmm):
    cli.add_command(_command)


def main(argv=None):
    """Console-script entry point (``hmmtie``)."""
    return cli.main(args=argv, prog_name="hmmtie")
