"""``fakescope data synth``: train (or load) a generator of the zoo and write its images.

Registered in :mod:`fakescope.cli.data`; the work is done by
:func:`fakescope.data.generators.synth.synthesize`, imported inside the command so that
``fakescope --help`` never imports numpy-heavy or torch code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from fakescope.cli.common import progress_bar

_stderr = Console(stderr=True)
# Written out rather than read from the registry, so that `fakescope --help` imports nothing
# heavy; a test checks that it names every registered generator.
GENERATOR_HELP = (
    "Generator: ae-transposed, ae-nearest, ae-bilinear, ae-pixelshuffle, sr-gan, dcgan, "
    "inpaint-net, processed-real (see src/fakescope/data/generators/README.md)."
)


def synth_command(
    generator: Annotated[
        str,
        typer.Option(
            "--generator",
            "-g",
            help=GENERATOR_HELP,
            show_default=False,
        ),
    ],
    from_dir: Annotated[
        Path,
        typer.Option(
            "--from", help="Folder of real photos or tiles (recursive).", show_default=False
        ),
    ],
    out_dir: Annotated[Path, typer.Argument(help="Dataset folder to write into.")],
    seed: Annotated[int, typer.Option(help="Seed of the split, the training and sampling.")] = 0,
    count: Annotated[
        int | None,
        typer.Option(min=1, help="Images to write (default: one per tile; dcgan: 64)."),
    ] = None,
    train_steps: Annotated[
        int | None, typer.Option(min=1, help="Training steps (default: the generator's own).")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Model cache (default: $FAKESCOPE_CACHE/generators or "
            "~/.cache/fakescope/generators)."
        ),
    ] = None,
    rebuild: Annotated[bool, typer.Option(help="Retrain even when the cache has the model.")] = (
        False
    ),
    train_from: Annotated[
        Path | None,
        typer.Option(help="Train on these photos instead of a seeded photo split of --from."),
    ] = None,
    train_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Share of --from photos that train.")
    ] = 0.3,
    tile_size: Annotated[int, typer.Option(min=16, help="Tile side cut from larger images.")] = (
        256
    ),
    max_tiles: Annotated[int, typer.Option(min=1, help="Tiles per input image at most.")] = 4,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Train (or load from the cache) a generator and write its images into a dataset.

    Fakes go to OUT_DIR/fake/<generator>/<photo_id>_<n>.png, processed reals (processed-real)
    to OUT_DIR/real/processed-real/; parameters to OUT_DIR/meta/<generator>/ and one
    manifest.csv row per image. Image-to-image generators train on --train-from or a seeded
    photo split of --from, never on the photos they are applied to.
    """
    from fakescope.data.generators.registry import (
        GeneratorUnavailableError,
        get_entry,
        list_generators,
    )
    from fakescope.data.generators.registry import UnknownGeneratorError as Unknown

    try:
        get_entry(generator)
    except Unknown as exc:
        raise typer.BadParameter(
            f"unknown generator {generator!r}; valid names: {', '.join(list_generators())}",
            param_hint="--generator",
        ) from exc
    if not from_dir.is_dir():
        raise typer.BadParameter(f"{from_dir} is not a folder", param_hint="--from")
    if train_from is not None and not train_from.is_dir():
        raise typer.BadParameter(f"{train_from} is not a folder", param_hint="--train-from")

    from fakescope.data.generators.synth import (
        SynthError,
        SynthEvents,
        SynthOptions,
        synthesize,
    )

    options = SynthOptions(
        generator=generator,
        seed=seed,
        count=count,
        train_steps=train_steps,
        cache_dir=cache_dir,
        rebuild=rebuild,
        train_from=train_from,
        train_fraction=train_fraction,
        tile_size=tile_size,
        max_tiles=max_tiles,
    )
    show = progress and _stderr.is_terminal
    with progress_bar(show, _stderr) as bar:
        tasks: dict[str, int] = {}

        def train_step(done: int, total: int) -> None:
            if "train" not in tasks:
                tasks["train"] = bar.add_task(f"training {generator}", total=total)
            bar.update(tasks["train"], completed=done)

        def generated(done: int, total: int | None) -> None:
            if "generate" not in tasks:
                tasks["generate"] = bar.add_task(f"writing {generator}", total=total)
            bar.update(tasks["generate"], completed=done)

        def bad_file(path: str, message: str) -> None:
            bar.console.print(
                f"[yellow]warning:[/yellow] skipped {escape(path)}: {escape(message)}"
            )

        events = SynthEvents(train_step=train_step, generated=generated, bad_file=bad_file)
        try:
            report = synthesize(from_dir, out_dir, options, events)
        except GeneratorUnavailableError as exc:
            _stderr.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from exc
        except SynthError as exc:
            _stderr.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from exc

    if report.cache is not None:
        how = (
            "loaded from cache" if report.cache.hit else f"trained in {report.train_seconds:.0f} s"
        )
        _stderr.print(
            f"{generator}: {how} ({report.train_tiles} tiles of {len(report.train_photo_ids)} "
            f"photos) at {escape(str(report.cache.path))}"
        )
    group = "real" if get_entry(generator).kind == "processing" else "fake"
    _stderr.print(
        f"wrote {len(report.written)} images to {escape(str(out_dir / group / generator))} "
        f"in {report.generate_seconds:.1f} s"
    )
    if report.skipped_files:
        _stderr.print(
            f"[dim]{report.skipped_files} files under fake/ or processed-real/ "
            "were not used as real sources[/dim]"
        )
    if report.bad_files:
        _stderr.print(f"[yellow]{len(report.bad_files)} bad input files were skipped[/yellow]")
