"""``fakescope data forge``: forged images with exact masks, parameters and (warp) flows.

The forge package is imported inside the command, so ``fakescope --help`` stays fast and works
without OpenCV or torch. ``--kind inpaint-learned`` first trains (or loads from the cache) the
zoo's ``inpaint-net``, or loads ``--generator-dir``; the other kinds need no model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from fakescope.cli.common import progress_bar

LEARNED_KIND = "inpaint-learned"  # the one kind that needs a trained model


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
            help="Forgery kind: splice, copymove, inpaint, warp, inpaint-learned (the "
            "registered kinds).",
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
    generator_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="inpaint-learned: a saved inpaint-net folder (model.safetensors + config.json, "
            "e.g. a cache entry) instead of training one.",
        ),
    ] = None,
    train_from: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="inpaint-learned: photos to train the inpainter on (default: --from itself; "
            "other photos keep the forged ones unseen).",
        ),
    ] = None,
    train_steps: Annotated[
        int | None,
        typer.Option(min=1, help="inpaint-learned: training steps (default: the model's own)."),
    ] = None,
    train_seed: Annotated[
        int,
        typer.Option(help="inpaint-learned: seed of the training (--seed does not retrain)."),
    ] = 0,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="inpaint-learned: model cache (default: $FAKESCOPE_CACHE/generators or "
            "~/.cache/fakescope/generators).",
        ),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="inpaint-learned: retrain even when the cache has the model.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Forge real images (splice, copy-move, inpaint, warp, inpaint-learned) with exact masks.

    inpaint-learned fills the region with a learned inpainter: it trains one on --train-from
    (default: the --from photos) on first use and caches it by fingerprint, or loads
    --generator-dir.
    """
    from fakescope.data.forge.base import MissingDependencyError
    from fakescope.data.forge.build import ForgeOptions, ForgeSetupError, forge_dataset

    model_options = {
        "--generator-dir": generator_dir,
        "--train-from": train_from,
        "--train-steps": train_steps,
        "--cache-dir": cache_dir,
    }
    given = [name for name, value in model_options.items() if value is not None]
    given += ["--train-seed"] * (train_seed != 0) + ["--rebuild"] * rebuild
    if kind != LEARNED_KIND and given:
        raise typer.BadParameter(f"{', '.join(given)} only apply to --kind {LEARNED_KIND}")
    if generator_dir is not None and len(given) > 1:
        raise typer.BadParameter(
            "--generator-dir loads a trained model; the training options do not apply to it",
            param_hint="--generator-dir",
        )
    for name, folder in (("--generator-dir", generator_dir), ("--train-from", train_from)):
        if folder is not None and not folder.is_dir():
            raise typer.BadParameter(f"{folder} is not a folder", param_hint=name)

    # soft_wrap: paths and the install command must stay copyable, not broken at 80 columns.
    console = Console(stderr=True, soft_wrap=True)
    options = ForgeOptions(kind=kind, seed=seed, count=count, size=size)
    enabled = progress and console.is_terminal
    try:
        with progress_bar(enabled, console) as bar:

            def warn(path: str, reason: str) -> None:
                bar.console.print(f"[yellow]warning:[/yellow] {escape(path)}: {escape(reason)}")

            model = _model_context(
                kind,
                bar,
                console,
                warn,
                real_dir=real_dir,
                out_dir=out_dir,
                generator_dir=generator_dir,
                train_from=train_from,
                seed=train_seed,
                train_steps=train_steps,
                cache_dir=cache_dir,
                rebuild=rebuild,
            )
            with model:
                task = bar.add_task(f"forging ({kind})", total=None)
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


@contextmanager
def _model_context(
    kind: str, bar: Any, console: Console, warn: Any, **arguments: Any
) -> Iterator[None]:
    """For inpaint-learned: train, load or fetch the inpainter and install it for the batch.

    Torch is checked first, so a missing install is reported before any photo is read.
    """
    if kind != LEARNED_KIND:
        yield
        return
    from fakescope.data.forge.inpaint_learned import (
        GENERATOR,
        prepare_inpainter,
        require_torch,
        use_inpainter,
    )

    require_torch()
    tasks: dict[str, Any] = {}

    def train_step(done: int, total: int) -> None:
        if "train" not in tasks:
            tasks["train"] = bar.add_task(f"training {GENERATOR}", total=total)
        bar.update(tasks["train"], completed=done)

    inpainter = prepare_inpainter(**arguments, on_step=train_step, on_bad_file=warn)
    description = inpainter.description
    if inpainter.cache_hit is None:
        how = "loaded"
    elif inpainter.cache_hit:
        how = "loaded from cache"
    else:
        how = f"trained in {inpainter.train_seconds:.0f} s"
    training = description.get("training") or {}
    trained_on = (
        f" ({training['train_tiles']} tiles of {len(training['train_photo_ids'])} photos)"
        if training
        else ""
    )
    bar.console.print(f"{GENERATOR}: {how}{trained_on} at {escape(description['folder'])}")
    overlap = description["overlapping_photo_ids"]
    if overlap:
        bar.console.print(
            f"[dim]note: the inpainter trained on {len(overlap)} of the photos it forges "
            "(recorded in each forgery's meta; --train-from with other photos avoids it)[/dim]"
        )
    elif overlap is None:
        bar.console.print(
            "[dim]note: the model folder does not list its training photos, so whether they "
            "overlap the forged ones is unknown (overlapping_photo_ids: null)[/dim]"
        )
    with use_inpainter(inpainter):
        yield
