"""The case database: every scan result, keyed by the file's SHA-256, in SQLite or PostgreSQL.

Two tables (SQLAlchemy Core, so one code path serves both databases):

``results``
    One row per file content (``sha256`` is the primary key): the model that scored it, the
    verdict, score and error kind as columns for queries, and the whole
    :meth:`~fakescope.results.ScanResult.to_dict` as JSON, so fields that later versions add to
    ``ScanResult`` are stored without a schema change.
``files``
    Where a content was seen: one row per (``path``, ``sha256``), with the file's size and
    modification time, so a re-scan recognises an unchanged file without reading it again.
    Uploads to the server are recorded under ``upload:<name the client gave>``.

Writes are upserts inside one transaction per batch: a process killed between two batches
leaves whole batches behind, and running the same batch again changes nothing.

SQLite runs in WAL mode, so the server can read while a ``scan --db`` writes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from fakescope.errors import FakescopeError
from fakescope.results import ScanResult
from fakescope.store import DEFAULT_DB, RETRY_ERROR_KINDS

__all__ = ["DEFAULT_DB", "RETRY_ERROR_KINDS", "CaseStore", "Sighting", "StoreError", "StoredResult"]

metadata = MetaData()

results_table = Table(
    "results",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("verdict", String(16)),
    Column("score", Float),
    Column("error_kind", String(64)),
    Column("path", Text, nullable=False),  # the latest path or upload name it came from
    Column("result", Text, nullable=False),  # ScanResult.to_dict() as JSON
    Column("scanned_at", Float, nullable=False),  # seconds since the epoch, UTC
)

files_table = Table(
    "files",
    metadata,
    Column("path", Text, primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger),
    Column("mtime_ns", BigInteger),
    Column("source", String(16), nullable=False),
    Column("seen_at", Float, nullable=False),
)
Index("files_by_sha256", files_table.c.sha256)
Index("results_by_verdict", results_table.c.verdict)


class StoreError(FakescopeError):
    """The case database cannot be opened or written (bad URL, missing driver, locked file)."""


@dataclass(frozen=True)
class Sighting:
    """Where a content was seen. ``size`` and ``mtime_ns`` are None for uploads."""

    path: str
    size: int | None = None
    mtime_ns: int | None = None
    source: str = "scan"


@dataclass(frozen=True)
class StoredResult:
    result: ScanResult
    model: str
    scanned_at: float


def result_from_dict(data: dict[str, Any]) -> ScanResult:
    """A ScanResult from stored JSON; keys this version does not know are left out.

    Rows written by a newer version (with fields added to ``ScanResult`` since) stay readable.
    """
    known = {item.name for item in fields(ScanResult)}
    return ScanResult(**{key: value for key, value in data.items() if key in known})


def database_url(db: str | os.PathLike[str]) -> str:
    """A SQLAlchemy URL from ``--db``: a URL as given (PostgreSQL through psycopg 3), else a
    path to a SQLite file."""
    text = os.fspath(db)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme, rest = text.split("://", 1)
    if scheme in {"postgresql", "postgres"}:
        return f"postgresql+psycopg://{rest}"
    return text


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (the server) never block the writer (a scan) and a crash never tears a
    # committed transaction. NORMAL sync is durable against a killed process, which is the
    # failure that matters here; only a power cut may lose the last transactions.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


class CaseStore:
    """The results of every scan, keyed by SHA-256. Thread-safe: one engine, pooled connections."""

    def __init__(self, db: str | os.PathLike[str] = DEFAULT_DB) -> None:
        url = database_url(db)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"not a database URL or path: {db!r}") from exc
        self.dialect = parsed.get_backend_name()
        try:
            if self.dialect == "sqlite":
                if parsed.database and parsed.database != ":memory:":
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                self.engine: Engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 15}
                )
                event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = create_engine(url, pool_pre_ping=True)
        except ImportError as exc:
            raise StoreError(f"the driver for {parsed.drivername} is not installed: {exc}") from exc
        except ArgumentError as exc:
            raise StoreError(f"cannot use database {parsed!r}: {exc}") from exc
        # The URL without its password, for messages and logs.
        self.display_url = parsed.render_as_string(hide_password=True)
        try:
            metadata.create_all(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open the case database {self.display_url}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def record(
        self,
        rows: Sequence[tuple[ScanResult, Sighting | None]],
        model: str,
        now: float | None = None,
    ) -> int:
        """Upsert a batch of results and where they were seen, in one transaction.

        Rows without a SHA-256 (a file that could not be read at all) have no key and are left
        out; a later scan tries them again. Returns the number of results stored.
        """
        now = time.time() if now is None else now
        result_rows: dict[str, dict[str, Any]] = {}
        file_rows: dict[tuple[str, str], dict[str, Any]] = {}
        for result, sighting in rows:
            if not result.sha256:
                continue
            # Last one wins within a batch too: PostgreSQL refuses to upsert one key twice in
            # a single statement.
            result_rows[result.sha256] = {
                "sha256": result.sha256,
                "model": model,
                "verdict": result.verdict,
                "score": result.score,
                "error_kind": result.error_kind,
                "path": result.path,
                "result": json.dumps(result.to_dict(), ensure_ascii=False, default=str),
                "scanned_at": now,
            }
            if sighting is not None:
                file_rows[(sighting.path, result.sha256)] = {
                    "path": sighting.path,
                    "sha256": result.sha256,
                    "size": sighting.size,
                    "mtime_ns": sighting.mtime_ns,
                    "source": sighting.source,
                    "seen_at": now,
                }
        if not result_rows:
            return 0
        with self.engine.begin() as connection:
            self._upsert(connection, results_table, ["sha256"], list(result_rows.values()))
            if file_rows:
                self._upsert(connection, files_table, ["path", "sha256"], list(file_rows.values()))
        return len(result_rows)

    def record_sightings(self, sightings: Sequence[tuple[str, Sighting]]) -> None:
        """Note that known contents (``sha256``) were seen again at these paths."""
        if not sightings:
            return
        now = time.time()
        rows = {
            (s.path, sha256): {
                "path": s.path,
                "sha256": sha256,
                "size": s.size,
                "mtime_ns": s.mtime_ns,
                "source": s.source,
                "seen_at": now,
            }
            for sha256, s in sightings
        }
        with self.engine.begin() as connection:
            self._upsert(connection, files_table, ["path", "sha256"], list(rows.values()))

    def _upsert(
        self, connection: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]
    ) -> None:
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            raise StoreError(f"unsupported database {self.dialect!r} (use SQLite or PostgreSQL)")
        statement = insert(table)
        updates = {
            column.name: statement.excluded[column.name]
            for column in table.columns
            if column.name not in keys
        }
        connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), rows)

    # -- reading ---------------------------------------------------------------------------

    def get(self, sha256: str) -> StoredResult | None:
        query = select(
            results_table.c.result, results_table.c.model, results_table.c.scanned_at
        ).where(results_table.c.sha256 == sha256)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return StoredResult(result_from_dict(json.loads(row.result)), row.model, row.scanned_at)

    def is_done(self, sha256: str, model: str) -> bool:
        """True when this content has a result from ``model`` that a new scan would repeat."""
        query = select(results_table.c.model, results_table.c.error_kind).where(
            results_table.c.sha256 == sha256
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return row is not None and row.model == model and row.error_kind not in RETRY_ERROR_KINDS

    def sha256_of_unchanged(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The content last seen at ``path`` if the file's size and mtime are still the same."""
        query = (
            select(files_table.c.sha256)
            .where(
                files_table.c.path == path,
                files_table.c.size == size,
                files_table.c.mtime_ns == mtime_ns,
            )
            .order_by(files_table.c.seen_at.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def paths_of(self, sha256: str, limit: int = 100) -> list[str]:
        query = (
            select(files_table.c.path)
            .where(files_table.c.sha256 == sha256)
            .order_by(files_table.c.seen_at.desc(), files_table.c.path)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(results_table)).scalar())

    def iter_results(self, chunk_size: int = 500) -> Iterator[StoredResult]:
        """Every stored result in SHA-256 order, streamed (constant memory on big stores)."""
        query = select(
            results_table.c.result, results_table.c.model, results_table.c.scanned_at
        ).order_by(results_table.c.sha256)
        with self.engine.connect() as connection:
            rows = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(
                query
            )
            for row in rows:
                yield StoredResult(
                    result_from_dict(json.loads(row.result)), row.model, row.scanned_at
                )

    def journal_mode(self) -> str | None:
        """SQLite's journal mode (``wal``); None on other databases."""
        if self.dialect != "sqlite":
            return None
        with self.engine.connect() as connection:
            return str(connection.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()
