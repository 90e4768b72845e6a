"""``fakescope data ...``: build datasets offline and reproducibly (docs/dataset-layout.md).

Each subcommand lives in its own module ``fakescope.cli.data_<name>`` and is registered below;
heavy imports stay inside the command functions so that ``fakescope --help`` stays fast.
"""

from __future__ import annotations

import typer

data_app = typer.Typer(
    help="Build datasets offline: real photos, generated fakes, forgeries, perturbations, audits.",
    no_args_is_help=True,
)

# Subcommand registrations (one line each, added as the subcommands land):
