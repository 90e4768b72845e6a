"""``fakescope data ...``: build datasets offline and reproducibly (docs/dataset-layout.md).

Each subcommand lives in its own module ``fakescope.cli.data_<name>``; heavy imports (torch,
OpenCV) stay inside the command functions so that ``fakescope --help`` stays fast.
"""

from __future__ import annotations

import typer

from fakescope.cli.data_audit import audit_command
from fakescope.cli.data_benchmark import benchmark_command
from fakescope.cli.data_forge import forge_command
from fakescope.cli.data_perturb import perturb_command
from fakescope.cli.data_real import real_command
from fakescope.cli.data_synth import synth_command

data_app = typer.Typer(
    help="Build datasets offline: real photos, generated fakes, forgeries, perturbations, audits.",
    no_args_is_help=True,
)
data_app.command("real")(real_command)
data_app.command("synth")(synth_command)
data_app.command("forge")(forge_command)
data_app.command("perturb")(perturb_command)
data_app.command("audit")(audit_command)
data_app.command("benchmark")(benchmark_command)
