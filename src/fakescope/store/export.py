"""Dumping the case database: JSON Lines, CSV or Parquet, streamed in chunks.

JSON Lines rows are ``ScanResult.to_dict()`` plus ``model`` and ``scanned_at``: the same result
type as ``fakescope scan --format jsonl``. CSV and Parquet are flat: one column per top-level
``ScanResult`` field (nested ones, ``detectors`` and ``evidence``, as JSON text), ``model``,
``scanned_at``, and one ``score_<detector>`` column per detector found in the store. The columns
come from the ``ScanResult`` dataclass itself, so a field added to it becomes a column here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fakescope.results import ScanResult
from fakescope.store.db import CaseStore, StoredResult

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
DETECTOR_COLUMN_PREFIX = "score_"
_CHUNK_ROWS = 1000


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def result_columns() -> list[str]:
    return [item.name for item in fields(ScanResult)] + ["model", "scanned_at"]


def detector_columns(store: CaseStore) -> list[str]:
    """``score_<name>`` for every detector any stored result reports, sorted (a first pass)."""
    names: set[str] = set()
    for stored in store.iter_results():
        names.update(stored.result.detectors)
    return [f"{DETECTOR_COLUMN_PREFIX}{name}" for name in sorted(names)]


def flat_row(stored: StoredResult) -> dict[str, Any]:
    """One flat row: scalars as they are, nested values as JSON text."""
    row: dict[str, Any] = {}
    for key, value in stored.result.to_dict().items():
        if isinstance(value, dict | list | tuple):
            value = json.dumps(value, ensure_ascii=False, default=str)
        row[key] = value
    row["model"] = stored.model
    row["scanned_at"] = _iso(stored.scanned_at)
    for name, score in stored.result.detectors.items():
        row[f"{DETECTOR_COLUMN_PREFIX}{name}"] = score
    return row


def write_jsonl(store: CaseStore, stream: IO[str]) -> int:
    count = 0
    for stored in store.iter_results():
        row = {**stored.result.to_dict(), "model": stored.model}
        row["scanned_at"] = _iso(stored.scanned_at)
        stream.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        count += 1
    return count


def write_csv(store: CaseStore, stream: IO[str]) -> int:
    columns = result_columns() + detector_columns(store)
    writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    count = 0
    for stored in store.iter_results():
        writer.writerow(flat_row(stored))
        count += 1
    return count


def _chunks(store: CaseStore) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for stored in store.iter_results():
        chunk.append(flat_row(stored))
        if len(chunk) >= _CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_parquet(store: CaseStore, path: Path) -> int:
    """Typed columns: scores as float64, ``scanned_at`` as a UTC timestamp, the rest text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = result_columns() + detector_columns(store)
    schema_fields = []
    for name in columns:
        if name == "score" or name.startswith(DETECTOR_COLUMN_PREFIX):
            schema_fields.append(pa.field(name, pa.float64()))
        elif name == "scanned_at":
            schema_fields.append(pa.field(name, pa.timestamp("s", tz="UTC")))
        else:
            schema_fields.append(pa.field(name, pa.string()))
    schema = pa.schema(schema_fields)
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for chunk in _chunks(store):
            arrays = {}
            for field in schema:
                values = [row.get(field.name) for row in chunk]
                if field.name == "scanned_at":
                    values = [datetime.fromisoformat(v) if v else None for v in values]
                elif pa.types.is_string(field.type):
                    values = [None if v is None else str(v) for v in values]
                arrays[field.name] = pa.array(values, type=field.type)
            writer.write_table(pa.table(arrays, schema=schema))
            count += len(chunk)
        if count == 0:  # an empty store still gives a readable file with the schema
            writer.write_table(schema.empty_table())
    return count
