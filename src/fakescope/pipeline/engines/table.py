"""The one flat table of scan results, shared by every engine's Parquet output.

Columns follow :class:`~fakescope.results.ScanResult`'s fields in order, derived from the
dataclass itself, so a field added there flows into every engine's output without an edit
here. Scalars keep their type (``str`` and ``Literal`` of text as strings, ``float``, ``int``,
``bool``, each nullable); anything nested (``detectors``, ``evidence``, or any other dict or
list) is stored as JSON text, the same text the CSV writer puts in its cells, so every row has
the same schema whatever its evidence holds. :func:`result_from_row` reverses the flattening.

pyarrow is imported only by the functions that build Arrow objects, so the flattening works
without it (``pip install -e .[parquet]`` or ``.[ray]`` brings it).
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin, get_type_hints

from fakescope.results import ScanResult

if TYPE_CHECKING:
    import pyarrow as pa

ColumnKind = Literal["string", "float", "int", "bool", "json"]
#: Rows per Parquet row group: bounds the writer's memory, big enough for fast scans.
DEFAULT_ROWS_PER_GROUP = 8192
_SCALAR_KINDS: dict[type, ColumnKind] = {str: "string", float: "float", int: "int", bool: "bool"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind


def _column_kind(annotation: Any) -> ColumnKind:
    """The storage of one field's type: its scalar kind, or JSON text for everything else."""
    if get_origin(annotation) in (Union, types.UnionType):
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        kinds = {_column_kind(arg) for arg in present}
        return kinds.pop() if len(kinds) == 1 else "json"
    if get_origin(annotation) is Literal:
        kinds = {_SCALAR_KINDS.get(type(value), "json") for value in get_args(annotation)}
        return kinds.pop() if len(kinds) == 1 else "json"
    return _SCALAR_KINDS.get(annotation, "json") if isinstance(annotation, type) else "json"


@cache
def result_columns() -> tuple[Column, ...]:
    """The table's columns: one per ``ScanResult`` field, in declaration order."""
    hints = get_type_hints(ScanResult)
    return tuple(Column(f.name, _column_kind(hints[f.name])) for f in fields(ScanResult))


def flatten_result(result: ScanResult) -> dict[str, Any]:
    """One table row: scalars as they are, nested values as JSON text."""
    row: dict[str, Any] = {}
    for column in result_columns():
        value = getattr(result, column.name)
        if column.kind == "json":
            value = None if value is None else json.dumps(value, ensure_ascii=False)
        row[column.name] = value
    return row


def result_from_row(row: Mapping[str, Any]) -> ScanResult:
    """A :class:`ScanResult` back from a table row (the inverse of :func:`flatten_result`).

    Columns the table does not define are ignored, and a field missing from an older file
    keeps its default, so files written before a field was added still read.
    """
    values: dict[str, Any] = {}
    for column in result_columns():
        if column.name not in row:
            continue
        value = row[column.name]
        if column.kind == "json" and value is not None:
            value = json.loads(value)
        values[column.name] = value
    return ScanResult(**values)


# ----------------------------------------------------------------------------- Arrow


def _arrow_type(kind: ColumnKind) -> pa.DataType:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "json": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
    }[kind]


def arrow_schema() -> pa.Schema:
    """The Arrow schema of the table; every column is nullable (error rows have no score)."""
    import pyarrow as pa

    return pa.schema([pa.field(c.name, _arrow_type(c.kind)) for c in result_columns()])


def results_to_arrow(results: Iterable[ScanResult]) -> pa.Table:
    """A table of results with :func:`arrow_schema`, typed even when a column is all null."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {c.name: [] for c in result_columns()}
    for result in results:
        for name, value in flatten_result(result).items():
            columns[name].append(value)
    return pa.Table.from_pydict(columns, schema=arrow_schema())


def results_from_arrow(table: pa.Table) -> list[ScanResult]:
    return [result_from_row(row) for row in table.to_pylist()]


def read_results(path: str | Path) -> list[ScanResult]:
    """Every result in a Parquet file or a folder of shards (as the Ray engine writes)."""
    import pyarrow.parquet as pq

    return results_from_arrow(pq.read_table(path, schema=arrow_schema()))


def _parquet_module() -> Any:
    """``pyarrow.parquet``, or an ImportError that says how to install it."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(
            "Parquet output needs pyarrow: pip install -e '.[parquet]' (or pip install pyarrow)"
        ) from exc
    return pq


class ParquetResultWriter:
    """Streams results into one Parquet file, a row group at a time: memory stays bounded.

    Parquet's footer comes last, so the file is readable only after :meth:`close`; use it as a
    context manager, which closes it on an interruption too, so an interrupted scan keeps every
    row written so far, as the JSON Lines writer does.
    """

    def __init__(self, path: str | Path, rows_per_group: int = DEFAULT_ROWS_PER_GROUP) -> None:
        pq = _parquet_module()
        self.path = Path(path)
        self.rows_per_group = rows_per_group
        self.rows_written = 0
        self._pending: list[ScanResult] = []
        self._writer = pq.ParquetWriter(self.path, arrow_schema())

    def write(self, result: ScanResult) -> None:
        self._pending.append(result)
        if len(self._pending) >= self.rows_per_group:
            self._flush()

    def write_all(self, results: Sequence[ScanResult]) -> None:
        for result in results:
            self.write(result)

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(results_to_arrow(self._pending))
            self.rows_written += len(self._pending)
            self._pending = []

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def __enter__(self) -> ParquetResultWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = [
    "Column",
    "ParquetResultWriter",
    "arrow_schema",
    "flatten_result",
    "read_results",
    "result_columns",
    "result_from_row",
    "results_from_arrow",
    "results_to_arrow",
]
