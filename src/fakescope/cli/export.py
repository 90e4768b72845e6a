"""``fakescope export``: dump the case database as JSON Lines, CSV or Parquet."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from fakescope.cli.common import open_output, stderr
from fakescope.store import DEFAULT_DB


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


def export(
    output_format: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.jsonl,
    db: Annotated[
        str,
        typer.Option(help="Case database: a SQLite file, or postgresql://user@host/dbname."),
    ] = DEFAULT_DB,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write here (required for parquet); default stdout."),
    ] = None,
) -> None:
    """Dump every stored result, one row per file content (SHA-256)."""
    try:
        from fakescope.store import export as exporting
        from fakescope.store.db import CaseStore, StoreError
    except ImportError as exc:
        stderr.print(
            f"[red]error:[/red] the case database needs: pip install 'fakescope[server]' ({exc})"
        )
        raise typer.Exit(1) from exc
    if "://" not in db and not Path(db).is_file():
        raise typer.BadParameter(f"no case database at {db}", param_hint="--db")
    try:
        store = CaseStore(db)
    except StoreError as exc:
        raise typer.BadParameter(str(exc), param_hint="--db") from exc
    with store:
        if output_format is ExportFormat.parquet:
            if out is None:
                raise typer.BadParameter("parquet is binary: give a file", param_hint="--out")
            try:
                count = exporting.write_parquet(store, out)
            except ImportError as exc:
                stderr.print(
                    f"[red]error:[/red] parquet needs pyarrow: pip install pyarrow ({exc})"
                )
                raise typer.Exit(1) from exc
        else:
            writer = (
                exporting.write_csv if output_format is ExportFormat.csv else exporting.write_jsonl
            )
            with open_output(out) as stream:
                count = writer(store, stream)
    stderr.print(f"[dim]{count} results exported from {store.display_url}[/dim]")


def open_scan_recorder(db: str, model_name: str, commit_every: int) -> Any:
    """The ``scan --db`` recorder (:class:`~fakescope.store.resume.ScanRecorder`); a database
    that cannot be opened is a usage error on ``--db``."""
    try:
        from fakescope.store.db import CaseStore, StoreError
        from fakescope.store.resume import ScanRecorder
    except ImportError as exc:
        raise typer.BadParameter(
            f"the case database needs: pip install 'fakescope[server]' ({exc})", param_hint="--db"
        ) from exc
    try:
        store = CaseStore(db)
    except StoreError as exc:
        raise typer.BadParameter(str(exc), param_hint="--db") from exc
    return ScanRecorder(store, model_name, commit_every=commit_every)
