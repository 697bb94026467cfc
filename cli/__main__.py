"""``python -m hmmtie.cli`` runs the command line."""
from hmmtie.cli import main

main()
