"""Dataclass records as CSV rows: the one writer every manifest and index uses."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any


def record_columns(record_type: type[Any]) -> tuple[str, ...]:
    return tuple(field.name for field in fields(record_type))


def write_records_csv(
    records: Iterable[Any], path: str | os.PathLike[str], record_type: type[Any]
) -> Path:
    """One row per dataclass record, columns in field order; None is written as an empty cell."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=record_columns(record_type))
        writer.writeheader()
        for record in records:
            writer.writerow({k: "" if v is None else v for k, v in asdict(record).items()})
    return out
