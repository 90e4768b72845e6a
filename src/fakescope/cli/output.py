"""Writers for scan results: a streamed table for people, JSON Lines and CSV for machines."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

from rich.console import Console
from rich.markup import escape

from fakescope.results import ScanResult

CSV_COLUMNS = (
    "path",
    "sha256",
    "score",
    "verdict",
    "detectors",
    "evidence",
    "error",
    "error_kind",
    "decided_by",  # last, so the columns before it keep their positions
)
#: Prefix of the CSV columns holding one detector's score each (``score_spectral``, ...).
DETECTOR_COLUMN_PREFIX = "score_"
VERDICT_STYLES = {"fake": "bold red", "uncertain": "yellow", "real": "green"}


def detector_names(detector: Any) -> list[str]:
    """The names under which a model's rows report per-detector scores, in a stable order.

    The detector's own name first, then a fusion's members (``member_labels``). Writers need
    them before the first row arrives: a CSV header and table columns cannot grow later.
    """
    members = list(getattr(detector, "member_labels", ()) or ())
    return [detector.name, *(label for label in members if label != detector.name)]


class ResultWriter(Protocol):
    def write(self, result: ScanResult) -> None: ...
    def close(self) -> None: ...


class JsonLinesWriter:
    """One JSON object per row; ``detectors`` holds every per-detector score as a dict."""

    def __init__(self, stream: IO[str], detector_names: Sequence[str] = ()) -> None:
        self.stream = stream

    def write(self, result: ScanResult) -> None:
        self.stream.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        self.stream.flush()  # an interrupted scan keeps every row written so far

    def close(self) -> None:
        self.stream.flush()


class CsvWriter:
    """Nested fields (per-detector scores, evidence) are JSON strings inside their cell.

    With ``detector_names``, each detector's score also gets a column of its own
    (``score_<name>``, after the fixed columns, so their positions never move), for
    spreadsheets that cannot read JSON cells.
    """

    def __init__(self, stream: IO[str], detector_names: Sequence[str] = ()) -> None:
        self.stream = stream
        self.detector_columns = {
            name: f"{DETECTOR_COLUMN_PREFIX}{name}" for name in dict.fromkeys(detector_names)
        }
        fieldnames = (*CSV_COLUMNS, *self.detector_columns.values())
        self.writer = csv.DictWriter(stream, fieldnames=fieldnames)
        self.writer.writeheader()

    def write(self, result: ScanResult) -> None:
        row = result.to_dict()
        cells = {key: row[key] for key in CSV_COLUMNS}
        cells["detectors"] = json.dumps(row["detectors"])
        cells["evidence"] = json.dumps(row["evidence"], ensure_ascii=False)
        for name, column in self.detector_columns.items():
            cells[column] = result.detectors.get(name, "")
        self.writer.writerow(cells)

    def close(self) -> None:
        self.stream.flush()


class TableWriter:
    """Rows printed as they arrive (no buffering, so memory stays constant), colours on a TTY.

    A model of several detectors (more than one name in ``detector_names``) adds a compact
    ``detectors`` column, ``name=0.12`` per member, so a user sees which member fired.
    """

    def __init__(self, stream: IO[str], detector_names: Sequence[str] = ()) -> None:
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        # The first name is the model's own score, already in the score column.
        self.members = list(dict.fromkeys(detector_names))[1:]
        self.members_width = len(self._members_cell({}))
        header = f"{'verdict':<10}{'score':>7}  "
        if self.members:
            header += f"{'detectors':<{self.members_width}}  "
        self.console.print(f"[bold]{header}path[/bold]")

    def _members_cell(self, scores: dict[str, float]) -> str:
        parts = []
        for name in self.members:
            value = scores.get(name)
            parts.append(f"{name}=" + ("-" if value is None else f"{value:.2f}").rjust(4))
        return " ".join(parts)

    def write(self, result: ScanResult) -> None:
        members = ""
        if self.members:
            cell = self._members_cell(result.detectors)
            members = f"{escape(cell):<{self.members_width}}  "
        if result.error is not None:
            self.console.print(
                f"[magenta]{'error':<10}[/magenta]{'-':>7}  {members}{escape(result.path)}  "
                f"[dim]{escape(result.error)}[/dim]"
            )
            return
        verdict = result.verdict or "-"
        style = VERDICT_STYLES.get(verdict, "")
        self.console.print(
            f"[{style}]{verdict:<10}[/{style}]{result.score:>7.3f}  {members}{escape(result.path)}"
        )

    def close(self) -> None:
        self.console.file.flush()


WRITERS: dict[str, Callable[[IO[str], Sequence[str]], ResultWriter]] = {
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
