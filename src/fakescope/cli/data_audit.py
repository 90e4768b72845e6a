"""``fakescope data audit``: which storage variables give the label away, and a debiased copy.

The numbers come from :mod:`fakescope.data.audit` (see its docstring for the AUC rule); this
module only parses options and renders them. Heavy imports (numpy, scikit-learn, Pillow) stay
inside the command so that ``fakescope --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fakescope.cli.common import open_output

if TYPE_CHECKING:
    from fakescope.data.audit import AucResult, AuditReport, DebiasResult, PopulationSummary

stderr = Console(stderr=True)
_SPARKS = "▁▂▃▄▅▆▇█"
_MAX_LISTED = 20  # errors and skipped files shown in the table; JSON lists them all


class AuditFormat(StrEnum):
    table = "table"
    json = "json"


class CropChoice(StrEnum):
    center = "center"
    random = "random"
    none = "none"


def audit_command(
    data_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DATA_DIR", help="Dataset: real/ + fake/[<generator>/] or 0_real/1_fake."
        ),
    ],
    debias: Annotated[
        Path | None,
        typer.Option(
            "--debias",
            metavar="OUT_DIR",
            help="Also write a debiased copy here (JPEG at --quality, square crops), "
            "then audit the copy.",
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(min=0.5, max=1.0, help="Flag a variable whose ROC-AUC alone exceeds this."),
    ] = 0.6,
    format: Annotated[AuditFormat, typer.Option("--format", "-f")] = AuditFormat.table,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the report here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds and of random crops.")] = 0,
    size: Annotated[
        int | None,
        typer.Option(min=1, help="Side of the debias crop; default the smallest side in the set."),
    ] = None,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality of the copy.")] = 96,
    crop: Annotated[
        CropChoice, typer.Option(help="Debias crop: centred, random (seeded) or none.")
    ] = CropChoice.center,
    decode: Annotated[
        bool, typer.Option(help="Decode every file too (finds damaged pixel data; slower).")
    ] = False,
) -> None:
    """Audit format, JPEG quality, size and metadata as real-vs-fake giveaways (ROC-AUC each)."""
    from fakescope.data.audit import audit_dataset, debias_dataset
    from fakescope.errors import InputError

    if not data_dir.is_dir():
        raise typer.BadParameter(
            f"{data_dir} does not exist or is not a folder", param_hint="DATA_DIR"
        )
    try:
        report = audit_dataset(data_dir, threshold=threshold, seed=seed, decode=decode)
    except InputError as exc:  # not a dataset: no real/ or fake/ images
        raise typer.BadParameter(str(exc), param_hint="DATA_DIR") from exc
    result = debiased = None
    if debias is not None:
        try:
            result = debias_dataset(data_dir, debias, seed, quality, size=size, crop=crop.value)
            debiased = audit_dataset(debias, threshold=threshold, seed=seed, decode=decode)
        except (InputError, ValueError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--debias") from exc
    with open_output(out) as stream:
        if format is AuditFormat.json:
            document = {
                "audit": report.to_dict(),
                "debias": result.to_dict() if result is not None else None,
                "debiased_audit": debiased.to_dict() if debiased is not None else None,
            }
            stream.write(json.dumps(document, indent=2) + "\n")
        else:
            console = _console(stream)
            print_report(report, console)
            if result is not None and debiased is not None:
                print_debias(result, console)
                print_report(debiased, console)
    for name, audited in (("dataset", report), ("debiased copy", debiased)):
        if audited is not None and audited.errors:
            stderr.print(f"[yellow]{len(audited.errors)} unreadable files in the {name} skipped[/]")


def _console(stream: IO[str]) -> Console:
    # Off a terminal rich assumes 80 columns, which folds the per-group AUC table unreadably.
    is_terminal = stream is sys.stdout and sys.stdout.isatty()
    return Console(file=stream, highlight=False, width=None if is_terminal else 160)


# --------------------------------------------------------------------------- rendering


def print_report(report: AuditReport, console: Console) -> None:
    chance = report.variables[0].overall.chance_auc if report.variables else None
    console.print(
        f"[bold]Bias audit of {escape(report.root)}[/bold]: {len(report.records)} files "
        f"({report.n_real} real, {report.n_fake} fake), {len(report.errors)} unreadable; "
        f"flag above AUC {report.threshold:g}"
        + (f"; chance level {chance:.3f}" if chance is not None else "")
    )
    console.print(_auc_table(report))
    flagged = report.flagged
    if flagged:
        console.print(f"[bold red]flagged:[/bold red] {', '.join(flagged)}")
    else:
        console.print("[green]no variable separates real from fake above the threshold[/green]")
    console.print(_formats_table(report.summaries))
    console.print(_sizes_table(report.summaries))
    if report.errors:
        errors = Table(title=f"unreadable files ({len(report.errors)}, skipped)")
        for column in ("path", "kind", "message"):
            errors.add_column(column)
        for error in report.errors[:_MAX_LISTED]:
            errors.add_row(escape(error.path), error.kind, escape(error.message))
        console.print(errors)


def print_debias(result: DebiasResult, console: Console) -> None:
    shape = f"{result.size}x{result.size} {result.crop} crops" if result.size else "no crop"
    console.print(
        f"\n[bold]Debiased copy[/bold] {escape(result.out_dir)}: {len(result.files)} written "
        f"as JPEG q{result.quality} {result.subsampling}, {shape}; "
        f"{len(result.skipped)} skipped, {len(result.errors)} errors\n"
    )
    for skipped in result.skipped[:_MAX_LISTED]:
        console.print(f"  skipped {escape(skipped.path)}: {escape(skipped.reason)}")
    for error in result.errors[:_MAX_LISTED]:
        console.print(f"  error {escape(error.path)}: {escape(error.message)}")


def _auc_cell(result: AucResult, threshold: float) -> str:
    if result.auc is None:
        return "-"
    text = f"{result.auc:.3f}"
    if result.auc <= threshold:
        return text
    # "?" marks a flag the sample is too small to tell from chance.
    noisy = result.chance_auc is not None and result.auc <= result.chance_auc
    return f"[bold red]{text} {'?' if noisy else '!'}[/bold red]"


def _auc_table(report: AuditReport) -> Table:
    table = Table(
        title="ROC-AUC of each variable alone, real vs fake (! flagged, ? flagged within chance)"
    )
    table.add_column("variable")
    table.add_column("overall", justify="right")
    for group in report.groups:
        table.add_column(escape(group), justify="right")
    table.add_column("evidence (overall)")
    for variable in report.variables:
        cells = [_auc_cell(variable.overall, report.threshold)]
        cells += [_auc_cell(variable.groups[g], report.threshold) for g in report.groups]
        name = f"[bold red]{variable.name}[/bold red]" if variable.flagged else variable.name
        table.add_row(name, *cells, escape(variable.overall.evidence))
    return table


def _counts(counts: dict[Any, int], limit: int = 3) -> str:
    if not counts:
        return "-"
    items = list(counts.items())
    text = ", ".join(f"{key} {value}" for key, value in items[:limit])
    return text + (f", +{len(items) - limit}" if len(items) > limit else "")


def quality_histogram(histogram: dict[int, int]) -> str:
    """Ten bins of quality (1-10 ... 91-100) as a sparkline, then the most common qualities."""
    if not histogram:
        return "-"
    bins = [0] * 10
    for quality, count in histogram.items():
        bins[min(9, max(0, (quality - 1) // 10))] += count
    peak = max(bins)
    spark = "".join(
        " " if count == 0 else _SPARKS[min(7, (count * 8 - 1) // peak)] for count in bins
    )
    top = sorted(histogram.items(), key=lambda kv: -kv[1])[:3]
    return f"|{spark}| " + " ".join(f"q{q}:{n}" for q, n in top)


def _formats_table(summaries: dict[str, PopulationSummary]) -> Table:
    table = Table(title="formats and metadata (JPEG quality bins 1-10 ... 91-100)")
    for column in ("population", "n", "formats", "JPEG quality", "subsampling", "mode"):
        table.add_column(column, justify="right" if column == "n" else "left")
    for column in ("EXIF", "PNG text", "ICC"):
        table.add_column(column, justify="right")
    for name, s in summaries.items():
        table.add_row(
            escape(name),
            str(s.n),
            _counts(s.formats),
            quality_histogram(s.jpeg_quality),
            _counts(s.chroma_subsampling),
            _counts(s.modes),
            str(s.n_exif),
            str(s.n_png_text),
            str(s.n_icc_profile),
        )
    return table


def _spread(summary: PopulationSummary, name: str, digits: int = 0) -> str:
    q = summary.quantiles.get(name)
    if not q:
        return "-"
    return " / ".join(f"{q[key]:.{digits}f}" for key in ("p5", "median", "p95"))


def _sizes_table(summaries: dict[str, PopulationSummary]) -> Table:
    table = Table(title="sizes: p5 / median / p95")
    for column in ("population", "top sizes", "width", "height", "aspect", "bytes/pixel"):
        table.add_column(column)
    for name, s in summaries.items():
        table.add_row(
            escape(name),
            _counts(s.top_sizes),
            _spread(s, "width"),
            _spread(s, "height"),
            _spread(s, "aspect_ratio", 2),
            _spread(s, "bytes_per_pixel", 3),
        )
    return table
