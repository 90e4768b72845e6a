"""``fakescope data forge``: forged images with exact masks, parameters and (warp) flows.

The forge package is imported inside the command, so ``fakescope --help`` stays fast and works
without OpenCV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from fakescope.cli.common import progress_bar


def _check_kind(value: str) -> str:
    from fakescope.data.forge import FORGERIES

    if value not in FORGERIES:
        raise typer.BadParameter(
            f"unknown kind {value!r}; registered: {', '.join(sorted(FORGERIES))}"
        )
    return value


def forge_command(
    out_dir: Annotated[
        Path,
        typer.Argument(
            metavar="OUT_DIR", file_okay=False, help="Dataset folder to write (or add to)."
        ),
    ],
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            callback=_check_kind,
            help="Forgery kind: splice, copymove, inpaint, warp (the registered kinds).",
        ),
    ],
    real_dir: Annotated[
        Path,
        typer.Option(
            "--from",
            exists=True,
            file_okay=False,
            help="Folder of real images (searched recursively).",
        ),
    ],
    count: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Forgeries to make, drawing inputs with the seed (default: one per input file).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the plan and of every forgery.")] = 0,
    size: Annotated[
        int | None,
        typer.Option(
            min=16, help="Centre-crop inputs to SIZE x SIZE first (no resampling; smaller skip)."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Forge real images (splice, copy-move, inpaint, warp) with exact masks and parameters."""
    from fakescope.data.forge.base import MissingDependencyError
    from fakescope.data.forge.build import ForgeOptions, ForgeSetupError, forge_dataset

    # soft_wrap: paths and the install command must stay copyable, not broken at 80 columns.
    console = Console(stderr=True, soft_wrap=True)
    options = ForgeOptions(kind=kind, seed=seed, count=count, size=size)
    enabled = progress and console.is_terminal
    try:
        with progress_bar(enabled, console) as bar:
            task = bar.add_task(f"forging ({kind})", total=None)

            def warn(path: str, reason: str) -> None:
                bar.console.print(f"[yellow]warning:[/yellow] {escape(path)}: {escape(reason)}")

            report = forge_dataset(
                real_dir,
                out_dir,
                options,
                on_skip=warn,
                on_forged=lambda: bar.advance(task),
                on_total=lambda total: bar.update(task, total=total),
            )
    except ForgeSetupError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except MissingDependencyError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    skipped = len(report.skipped)
    console.print(
        f"forged {report.forged} {kind} image(s) into {escape(str(out_dir))} "
        f"({report.reals} new real(s); {skipped} input file(s) skipped, "
        f"{len(report.failed)} forgery attempt(s) failed)"
    )
    if report.forged == 0:
        console.print("[red]error:[/red] no forgery could be made")
        raise typer.Exit(1)
    if count is not None and report.forged < count:
        console.print(f"[yellow]warning:[/yellow] made {report.forged} of the {count} requested")
