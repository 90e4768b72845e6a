"""``fakescope data benchmark OUT_DIR``: the whole benchmark in one command.

The work is :func:`fakescope.data.benchmark.build_benchmark`, imported inside the command so
that ``fakescope --help`` imports nothing heavy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from fakescope.data.benchmark import BenchmarkResult

_stderr = Console(stderr=True, soft_wrap=True)
# Written out so that --help imports nothing; the default is the registry's families.
FAMILIES_HELP = (
    "Generator families (repeat or comma-separate; default: ae-transposed, ae-nearest, "
    "ae-bilinear, ae-pixelshuffle, sr-gan, dcgan)."
)
KINDS_HELP = (
    "Forgery kinds (repeat or comma-separate; default: every kind registered in "
    "fakescope.data.forge.FORGERIES: splice, copymove, inpaint, warp, inpaint-learned, ...)."
)


def split_list(values: list[str] | None) -> tuple[str, ...] | None:
    """``["a,b", "c"]`` -> ``("a", "b", "c")``; None when the option was not given."""
    if not values:
        return None
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def benchmark_command(
    out_dir: Annotated[
        Path,
        typer.Argument(
            metavar="OUT_DIR", file_okay=False, help="Benchmark folder (new or resumed)."
        ),
    ],
    seed: Annotated[int, typer.Option(help="Seed of roles, tiles, generators and forgeries.")] = 0,
    real_tiles: Annotated[int, typer.Option(min=1, help="Real tiles to cut, at least.")] = 2000,
    fakes_per_family: Annotated[
        int, typer.Option(min=1, help="Images per generator family (and processed reals).")
    ] = 400,
    forgeries_per_kind: Annotated[int, typer.Option(min=1, help="Forgeries per kind.")] = 500,
    tile_size: Annotated[
        int, typer.Option(min=64, help="Tile side in pixels (a multiple of 16).")
    ] = 256,
    kinds: Annotated[list[str] | None, typer.Option("--kinds", help=KINDS_HELP)] = None,
    families: Annotated[list[str] | None, typer.Option("--families", help=FAMILIES_HELP)] = None,
    train_steps: Annotated[
        int | None,
        typer.Option(min=1, help="Training steps of every generator (default: each its own)."),
    ] = None,
    sources_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Cache of real photos (default: $FAKESCOPE_REAL_SOURCES or "
            "~/.cache/fakescope/real-sources).",
        ),
    ] = None,
    debian: Annotated[
        bool, typer.Option(help="Include the Debian wallpaper photos (apt-get download once).")
    ] = True,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Generator weight cache (default: $FAKESCOPE_CACHE/generators or "
            "~/.cache/fakescope/generators)."
        ),
    ] = None,
    debias_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False, help="Where the debiased copy goes (default: OUT_DIR-debiased)."
        ),
    ] = None,
) -> None:
    """Build the benchmark: reals, 6 generator families, processed reals, forgeries, audit.

    Photos get one role each (generator: trains the zoo; source: turned into fakes, processed
    reals and forgeries; heldout: never trained on or faked), recorded in splits.csv. Fakes
    match their source's JPEG history; the 64-px DCGAN samples are paired with 64-px real crops.
    Ends with the bias audit, and when a variable is flagged a debiased copy and its audit.
    Writes benchmark.json (counts, timings, audits) and README.md. Seeded; a rerun skips the
    steps that are complete. See docs/dataset-layout.md, "Building the benchmark".
    """
    from fakescope.data.benchmark import BenchmarkError, BenchmarkPlan, build_benchmark
    from fakescope.errors import FakescopeError

    settings: dict[str, Any] = {
        "seed": seed,
        "real_tiles": real_tiles,
        "fakes_per_family": fakes_per_family,
        "forgeries_per_kind": forgeries_per_kind,
        "tile_size": tile_size,
        "train_steps": train_steps,
    }
    for name, values in (("kinds", split_list(kinds)), ("families", split_list(families))):
        if values is not None:
            settings[name] = values
    plan = BenchmarkPlan(**settings)
    try:
        plan.validate()
    except BenchmarkError as exc:
        raise typer.BadParameter(str(exc)) from exc

    # Long CPU training on a shared machine: OpenMP threads that spin while they wait burn the
    # cores the other steps (and other users) need. Set before torch loads; results unchanged.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    start = time.perf_counter()

    def log(message: str) -> None:
        elapsed = time.perf_counter() - start
        _stderr.print(f"[dim]{elapsed:7.0f} s[/dim] {escape(message)}")

    try:
        result = build_benchmark(
            out_dir,
            plan,
            sources_dir=sources_dir,
            cache_dir=cache_dir,
            debian=debian,
            debias_dir=debias_dir,
            log=log,
        )
    except FakescopeError as exc:  # torch or OpenCV missing, a foreign folder, no photos
        _stderr.print(f"[red]error:[/red] {escape(str(exc))}")
        _stderr.print(
            f"[dim]{escape(str(out_dir))} keeps the finished steps; rerun to resume[/dim]"
        )
        raise typer.Exit(1) from exc
    print_result(result, _stderr)


def print_result(result: BenchmarkResult, console: Console) -> None:
    summary = result.summary
    counts = summary["counts"]
    steps = Table(title="steps")
    for column in ("step", "seconds", "images", ""):
        steps.add_column(column, justify="right" if column in ("seconds", "images") else "left")
    for name, step in summary["steps"].items():
        steps.add_row(
            name,
            f"{step['seconds']:.0f}",
            str(step.get("rows") or ""),
            "skipped" if step.get("skipped") else "",
        )
    console.print(steps)
    console.print(
        f"{counts['real']} real ({counts['real_tiles']} tiles), {counts['fake']} fake "
        f"({counts['generated_fakes']} generated, {sum(counts['forgeries'].values())} forged) "
        f"in {escape(str(result.out_dir))}; {summary['wall_seconds']:.0f} s wall"
    )
    for title, audit in (("audit", result.audit), ("debiased audit", result.debiased_audit)):
        if audit is None:
            continue
        flagged = audit.get("flagged_by_group", {})
        text = "; ".join(f"{group}: {', '.join(names)}" for group, names in flagged.items())
        console.print(f"{title}: flagged {escape(text) if text else 'nothing'}")
