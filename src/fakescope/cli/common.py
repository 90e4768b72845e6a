"""Pieces every command shares: the progress display and the ``--out`` stream."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

stderr = Console(stderr=True)


@contextmanager
def progress_bar(enabled: bool, console: Console = stderr) -> Iterator[Progress]:
    """A transient progress display on ``console``; a no-op display when disabled."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not enabled) as progress:
        yield progress


@contextmanager
def open_output(out: Path | None) -> Iterator[IO[str]]:
    """``--out FILE`` opened for writing, or stdout; an unwritable path is a usage error."""
    if out is None:
        yield sys.stdout
        return
    try:
        handle = out.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {out}: {exc.strerror}", param_hint="--out") from exc
    with handle:
        yield handle


def _read_stdin_paths() -> Iterator[str]:
    for line in sys.stdin:
        if line.strip():
            yield line.rstrip("\r\n")


def expand_inputs(paths: list[str]) -> Iterator[str]:
    """Paths as given, ``-`` replaced by the non-empty lines of stdin (one path each)."""
    for path in paths:
        if path == "-":
            yield from _read_stdin_paths()
        else:
            yield path
