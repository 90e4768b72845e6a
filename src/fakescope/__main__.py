"""``python -m fakescope`` runs the command line."""

from fakescope.cli.main import run

run()
