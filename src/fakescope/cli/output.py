"""Writers for scan results: a streamed table for people, JSON Lines and CSV for machines."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from typing import IO, Protocol

from rich.console import Console
from rich.markup import escape

from fakescope.results import ScanResult

CSV_COLUMNS = ("path", "sha256", "score", "verdict", "detectors", "evidence", "error", "error_kind")
VERDICT_STYLES = {"fake": "bold red", "uncertain": "yellow", "real": "green"}


class ResultWriter(Protocol):
    def write(self, result: ScanResult) -> None: ...
    def close(self) -> None: ...


class JsonLinesWriter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, result: ScanResult) -> None:
        self.stream.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        self.stream.flush()  # an interrupted scan keeps every row written so far

    def close(self) -> None:
        self.stream.flush()


class CsvWriter:
    """Nested fields (per-detector scores, evidence) are JSON strings inside their cell."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
        self.writer.writeheader()

    def write(self, result: ScanResult) -> None:
        row = result.to_dict()
        row["detectors"] = json.dumps(row["detectors"])
        row["evidence"] = json.dumps(row["evidence"], ensure_ascii=False)
        self.writer.writerow({key: row[key] for key in CSV_COLUMNS})

    def close(self) -> None:
        self.stream.flush()


class TableWriter:
    """Rows printed as they arrive (no buffering, so memory stays constant), colours on a TTY."""

    def __init__(self, stream: IO[str]) -> None:
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self.console.print(f"[bold]{'verdict':<10}{'score':>7}  path[/bold]")

    def write(self, result: ScanResult) -> None:
        if result.error is not None:
            self.console.print(
                f"[magenta]{'error':<10}[/magenta]{'-':>7}  {escape(result.path)}  "
                f"[dim]{escape(result.error)}[/dim]"
            )
            return
        verdict = result.verdict or "-"
        style = VERDICT_STYLES.get(verdict, "")
        self.console.print(
            f"[{style}]{verdict:<10}[/{style}]{result.score:>7.3f}  {escape(result.path)}"
        )

    def close(self) -> None:
        self.console.file.flush()


WRITERS: dict[str, Callable[[IO[str]], ResultWriter]] = {
    "table": TableWriter,
    "jsonl": JsonLinesWriter,
    "csv": CsvWriter,
}


class Tally:
    """Counts verdicts and errors for the closing summary line."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, result: ScanResult) -> None:
        self.counts["error" if result.error else (result.verdict or "error")] += 1

    def summary(self) -> str:
        total = sum(self.counts.values())
        parts = [f"{self.counts[key]} {key}" for key in ("fake", "uncertain", "real", "error")]
        return f"{total} files: " + ", ".join(parts)
