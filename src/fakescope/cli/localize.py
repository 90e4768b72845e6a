"""``fakescope localize``: where each image was changed, as PNGs plus one JSON Lines file.

Inputs are read like ``fakescope scan`` reads them (files, folders walked recursively, ``-``
for a list of paths on stdin), one image at a time: decode, localize, write the PNGs, write
the row, drop everything. A file that cannot be localized (corrupt, truncated, too big, not an
image, an unreadable folder, a method failure) becomes an error row and the batch goes on.
The exit status is 1 only when no input could be localized at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from fakescope.cli.common import expand_inputs, progress_bar, stderr
from fakescope.errors import FakescopeError, InputError, UnsupportedFormatError
from fakescope.io.discover import VIDEO_EXTENSIONS, InputEntry, iter_input_files
from fakescope.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image
from fakescope.pipeline.localize import localize_loaded
from fakescope.results import ScanResult

#: The bundled localizer that un-warps images when the chosen one has no ``undo`` step.
UNDO_LOCALIZER = "warp-flow-default"
#: The JSON Lines file written next to the PNGs, one row per input.
ROWS_FILE = "localization.jsonl"
#: What to install when a localizer's package is missing.
INSTALL_HINT = (
    "learned localizers need the torch extra (pip install -e '.[torch]'), copy-move needs "
    "OpenCV (pip install -e '.[data]')"
)
#: Rows shown in the closing table on stderr (the JSON holds them all).
SUMMARY_ROWS = 20

Undo = Callable[[np.ndarray], np.ndarray]


def default_localizer() -> str:
    """The bundled localizer used when none is named (imported late: it pulls scikit-learn)."""
    from fakescope.localizers import DEFAULT_LOCALIZER

    return DEFAULT_LOCALIZER


def load_localizer_option(name_or_dir: str, param_hint: str = "--localizer") -> Any:
    """The localizer of a command-line option; a usage error (exit 2) names what is wrong."""
    from fakescope.localizers import load_localizer

    try:
        return load_localizer(name_or_dir)
    except FakescopeError as exc:
        raise typer.BadParameter(str(exc), param_hint=param_hint) from exc
    except ImportError as exc:  # a learned method without its extra (torch)
        raise typer.BadParameter(
            f"the localizer needs a package that is not installed ({exc}); {INSTALL_HINT}",
            param_hint=param_hint,
        ) from exc


@dataclass(frozen=True)
class UndoStep:
    """How ``--undo`` un-warps: ``undo(image)``, or ``with_flow(image, flow)`` when the
    localization already carries the same model's predicted flow (no second network pass)."""

    label: str
    undo: Undo
    with_flow: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    def run(self, pixels: np.ndarray, localization: Any) -> np.ndarray:
        flow = getattr(localization, "flow", None)
        if self.with_flow is not None and flow is not None:
            return self.with_flow(pixels, flow)
        return self.undo(pixels)


def _set_undo_views(localizer: Any, views: int | None) -> None:
    """Read each tile in ``views`` flips / transposes (``test_time_views``) for the undo."""
    if views is None:
        return
    if "test_time_views" not in localizer.get_params():
        raise typer.BadParameter(
            f"the {localizer.name!r} localizer has no test-time views", param_hint="--undo-views"
        )
    try:
        localizer.set_params(test_time_views=views)
        localizer.check_params()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--undo-views") from exc


def resolve_undo(localizer: Any, views: int | None = None) -> UndoStep:
    """The un-warping step: the localizer's own ``undo``, else the bundled warp-flow model;
    ``views`` overrides the warp model's calibrated number of test-time views.

    Checked once, before any file is read, so a missing model is one clear error, not one per
    file.
    """
    own = getattr(localizer, "undo", None)
    if callable(own):
        _set_undo_views(localizer, views)
        with_flow = getattr(localizer, "undo_with_flow", None)
        return UndoStep(str(localizer.name), own, with_flow if callable(with_flow) else None)
    from fakescope.localizers import load_localizer

    try:
        warp = load_localizer(UNDO_LOCALIZER)
    except (FakescopeError, KeyError, ImportError) as exc:
        raise typer.BadParameter(
            f"the {localizer.name!r} localizer cannot undo warps and the bundled "
            f"{UNDO_LOCALIZER!r} model is not available ({exc}); choose a warp-flow model with "
            "--localizer, or leave out --undo",
            param_hint="--undo",
        ) from exc
    _set_undo_views(warp, views)
    undo = getattr(warp, "undo", None)
    if not callable(undo):
        raise typer.BadParameter(
            f"the bundled {UNDO_LOCALIZER!r} localizer has no undo step", param_hint="--undo"
        )
    return UndoStep(f"{UNDO_LOCALIZER} ({warp.name})", undo)


def _run_undo(
    step: UndoStep, pixels: np.ndarray, localization: Any
) -> tuple[np.ndarray | None, str | None]:
    """The un-warped image, or why there is none (recorded in the row; the row still counts)."""
    try:
        unwarped = np.asarray(step.run(pixels, localization))
    except Exception as exc:  # a method failure costs the un-warped file, not the row
        return None, f"undo failed: {exc}"
    if unwarped.dtype != np.uint8 or unwarped.ndim != 3 or unwarped.shape[2] != 3:
        return None, f"undo returned {unwarped.dtype} {unwarped.shape}, not RGB uint8"
    return unwarped, None


def localize_entry(
    entry: InputEntry,
    localizer: Any,
    out_dir: Path,
    stems: Any,
    *,
    undo: UndoStep | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ScanResult:
    """One input's row, its PNGs written into ``out_dir``; failures become error rows."""
    from fakescope.reports.localization import localization_row, write_localization_images

    if entry.error is not None:
        return ScanResult.failure(entry.path, entry.error)
    if os.path.splitext(entry.path)[1].lower() in VIDEO_EXTENSIONS:
        error = UnsupportedFormatError("videos are not localized, only images", entry.path)
        return ScanResult.failure(entry.path, error)
    try:
        loaded = load_image(entry.path, max_pixels=max_pixels, max_bytes=max_bytes)
    except InputError as exc:
        return ScanResult.failure(entry.path, exc)
    try:
        localization = localize_loaded(localizer, loaded)
    except FakescopeError as exc:  # too small for the method, or the method failed
        return ScanResult.failure(entry.path, exc, sha256=loaded.sha256)
    extra: dict[str, Any] = {"file": loaded.metadata.to_evidence()}
    unwarped = None
    if undo is not None:
        unwarped, undo_error = _run_undo(undo, loaded.pixels, localization)
        extra["undo"] = {"method": undo.label, **({"error": undo_error} if undo_error else {})}
    stem = stems.claim(entry.path)
    try:
        files = write_localization_images(out_dir, stem, loaded.pixels, localization, unwarped)
    except FakescopeError as exc:  # OutputWriteError
        return ScanResult.failure(entry.path, exc, sha256=loaded.sha256)
    return localization_row(entry.path, loaded.sha256, localization, files, extra)


class Summary:
    """Counts by outcome and the first rows, for the closing table on stderr (bounded)."""

    def __init__(self, limit: int = SUMMARY_ROWS) -> None:
        self.limit = limit
        self.counts = {"fake": 0, "real": 0, "error": 0}
        self.rows: list[ScanResult] = []

    def add(self, result: ScanResult) -> None:
        outcome = "error" if result.error is not None else (result.verdict or "error")
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if len(self.rows) < self.limit:
            self.rows.append(result)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def localized(self) -> int:
        return self.total - self.counts["error"]

    def print(self, method: str, out_dir: Path) -> None:
        table = Table(title=f"localization ({method}) -> {out_dir}")
        for column in ("verdict", "score", "flagged", "regions"):
            table.add_column(column, justify="left" if column == "verdict" else "right")
        table.add_column("file", overflow="fold")  # a path must stay whole, folded if long
        for row in self.rows:
            if row.error is not None:
                table.add_row(
                    "[magenta]error[/magenta]", "-", "-", "-",
                    f"{escape(row.path)} [dim]{escape(row.error)}[/dim]",
                )  # fmt: skip
                continue
            loc = row.evidence["localization"]
            style = "bold red" if row.verdict == "fake" else "green"
            table.add_row(
                f"[{style}]{row.verdict}[/{style}]",
                f"{row.score:.3f}",
                f"{loc['tampered_fraction']:.1%}",
                str(len(loc["regions"])),
                escape(row.path),
            )
        if self.rows:
            stderr.print(table)
        hidden = self.total - len(self.rows)
        more = f" ({hidden} more rows in {ROWS_FILE})" if hidden > 0 else ""
        parts = ", ".join(f"{self.counts[key]} {key}" for key in ("fake", "real", "error"))
        stderr.print(f"[dim]{self.total} files: {parts}{more}[/dim]")


def localize(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Files or folders; '-' reads paths from stdin."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", file_okay=False, help="Folder for the PNGs and localization.jsonl."
        ),
    ],
    localizer_name: Annotated[
        str | None,
        typer.Option(
            "--localizer",
            "-l",
            help="A localizer folder or a bundled localizer name (default: the bundled "
            "default localizer, segmentation-default).",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Pixel threshold for the mask (default: the localizer's calibrated one).",
        ),
    ] = None,
    image_threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Image-score threshold for the verdict; below it the mask is left empty "
            "(default: the localizer's calibrated one).",
        ),
    ] = None,
    undo: Annotated[
        bool,
        typer.Option(
            "--undo",
            help="Also write <stem>.unwarped.png: the localizer's undo step, or the bundled "
            "warp-flow-default model's.",
        ),
    ] = False,
    undo_views: Annotated[
        int | None,
        typer.Option(
            "--undo-views",
            help="Flips / transposes the warp model reads each tile in and merges for the "
            "undo: 1, 2, 4 or 8 (default: the model's calibrated choice, 8 for "
            "warp-flow-default). Fewer is that many times faster and less exact.",
        ),
    ] = None,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Refuse images with more pixels (decompression bombs).")
    ] = DEFAULT_MAX_PIXELS,
    max_bytes: Annotated[
        int, typer.Option(min=1, help="Refuse files larger than this.")
    ] = DEFAULT_MAX_BYTES,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Show where images were changed: per image a heat map, a mask and an overlay PNG.

    Writes <stem>.heatmap.png, <stem>.mask.png (0/255) and <stem>.overlay.png into --out, and
    one JSON row per input to localization.jsonl (the scan's row format, the localization under
    evidence.localization). The verdict is "fake" when the image score reaches the image threshold.
    Inputs with the same file name get distinct stems (x, x-2, ...). Bad files become error
    rows; the exit status is 1 only when no input could be localized.
    """
    from fakescope.cli.output import JsonLinesWriter
    from fakescope.reports.localization import UniqueStems

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot create {out}: {exc.strerror or exc}", param_hint="--out"
        ) from exc
    localizer = load_localizer_option(localizer_name or default_localizer())
    if threshold is not None:
        localizer.threshold_ = float(threshold)
    if image_threshold is not None:
        localizer.image_threshold_ = float(image_threshold)
    if undo_views is not None and not undo:
        raise typer.BadParameter("needs --undo", param_hint="--undo-views")
    undo_step = resolve_undo(localizer, undo_views) if undo else None
    stems = UniqueStems()
    summary = Summary()
    rows_path = out / ROWS_FILE
    try:
        stream = rows_path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {rows_path}: {exc.strerror or exc}", param_hint="--out"
        ) from exc
    with stream, progress_bar(progress and stderr.is_terminal) as bar:
        writer = JsonLinesWriter(stream)
        task = bar.add_task("localizing", total=None)
        for entry in iter_input_files(expand_inputs(paths)):
            try:
                result = localize_entry(
                    entry,
                    localizer,
                    out,
                    stems,
                    undo=undo_step,
                    max_pixels=max_pixels,
                    max_bytes=max_bytes,
                )
            except ImportError as exc:
                writer.close()
                raise typer.BadParameter(
                    f"the localizer needs a package that is not installed ({exc}); {INSTALL_HINT}",
                    param_hint="--localizer",
                ) from exc
            writer.write(result)
            summary.add(result)
            bar.advance(task)
        writer.close()
    summary.print(str(localizer.name), out)
    if summary.localized == 0:
        stderr.print("[red]error:[/red] no input could be localized")
        raise typer.Exit(1)
