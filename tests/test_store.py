"""The case database (SQLite): WAL, idempotent upserts, skipping known files, exports."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("sqlalchemy")

from fakescope.cli.main import app
from fakescope.results import ScanResult
from fakescope.store import RETRY_ERROR_KINDS
from fakescope.store.db import CaseStore, Sighting, result_from_dict
from fakescope.store.export import write_csv, write_jsonl
from tests.conftest import natural_like

runner = CliRunner()


def row(sha: str, score: float = 0.5, path: str = "a.png", **extra: object) -> ScanResult:
    return ScanResult(
        path=path,
        sha256=sha * 64 if len(sha) == 1 else sha,
        score=score,
        verdict="uncertain",
        detectors={"spectral": score},
        evidence={"file": {"format": "PNG"}},
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def store(tmp_path: Path) -> CaseStore:
    with CaseStore(tmp_path / "cases.sqlite") as case_store:
        yield case_store


def test_sqlite_runs_in_wal_mode(store, tmp_path):
    assert store.journal_mode() == "wal"
    store.record([(row("a"), None)], "m")
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    with sqlite3.connect(tmp_path / "cases.sqlite") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_upsert_is_idempotent(store):
    batch = [(row("a"), Sighting("x/a.png", 10, 1)), (row("b"), Sighting("x/b.png", 11, 2))]
    assert store.record(batch, "m", now=100.0) == 2
    assert store.record(batch, "m", now=100.0) == 2
    assert store.count() == 2
    assert store.paths_of("a" * 64) == ["x/a.png"]
    # A new score for a known content replaces the old one; still one row.
    store.record([(row("a", score=0.9), Sighting("x/a.png", 10, 1))], "m", now=200.0)
    stored = store.get("a" * 64)
    assert stored.result.score == 0.9 and stored.scanned_at == 200.0 and store.count() == 2


def test_one_content_twice_in_a_batch_and_under_two_paths(store):
    batch = [
        (row("a", score=0.1, path="one.png"), Sighting("one.png")),
        (row("a", score=0.2, path="two.png"), Sighting("two.png")),
    ]
    assert store.record(batch, "m") == 1
    assert store.get("a" * 64).result.score == 0.2  # the last one wins
    assert sorted(store.paths_of("a" * 64)) == ["one.png", "two.png"]


def test_rows_without_a_key_are_not_stored(store):
    missing = ScanResult.failure("gone.png", FileNotFoundError("no such file"))
    assert store.record([(missing, Sighting("gone.png"))], "m") == 0
    assert store.count() == 0


def test_is_done_needs_the_same_model_and_a_final_result(store):
    store.record([(row("a"), None)], "model-1")
    failed = ScanResult(
        path="big.png", sha256="b" * 64, error="too big", error_kind="image_too_large"
    )
    corrupt = ScanResult(path="c.png", sha256="c" * 64, error="bad", error_kind="corrupt_image")
    store.record([(failed, None), (corrupt, None)], "model-1")
    assert store.is_done("a" * 64, "model-1")
    assert not store.is_done("a" * 64, "model-2")
    assert "image_too_large" in RETRY_ERROR_KINDS
    assert not store.is_done("b" * 64, "model-1")  # a limit error is worth another try
    assert store.is_done("c" * 64, "model-1")  # a corrupt file stays corrupt
    assert not store.is_done("d" * 64, "model-1")


def test_unchanged_file_lookup(store):
    store.record([(row("a"), Sighting("p.png", 100, 123))], "m")
    assert store.sha256_of_unchanged("p.png", 100, 123) == "a" * 64
    assert store.sha256_of_unchanged("p.png", 100, 124) is None
    assert store.sha256_of_unchanged("q.png", 100, 123) is None


def test_rows_of_a_newer_version_stay_readable():
    data = {**row("a").to_dict(), "field_from_the_future": 1}
    assert result_from_dict(data) == row("a")


def test_new_scanresult_fields_are_stored(store):
    result = row("a")
    if hasattr(result, "decided_by"):
        result.decided_by = "generator_metadata"
    store.record([(result, None)], "m")
    assert store.get("a" * 64).result == result


def test_export_jsonl_and_csv(store):
    store.record([(row("a", 0.25), None), (row("b", 0.75, path="b.png"), None)], "m", now=0.0)
    stream = io.StringIO()
    assert write_jsonl(store, stream) == 2
    rows = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["score"] for r in rows] == [0.25, 0.75]
    assert rows[0]["model"] == "m" and rows[0]["scanned_at"] == "1970-01-01T00:00:00+00:00"
    assert set(ScanResult(path="x").to_dict()) <= set(rows[0])
    stream = io.StringIO()
    assert write_csv(store, stream) == 2
    table = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert [r["path"] for r in table] == ["a.png", "b.png"]
    assert table[1]["score_spectral"] == "0.75"
    assert json.loads(table[0]["evidence"]) == {"file": {"format": "PNG"}}


def test_export_parquet(store, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from fakescope.store.export import write_parquet

    store.record([(row("a", 0.25), None), (row("b", 0.75), None)], "m")
    assert write_parquet(store, tmp_path / "out.parquet") == 2
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 2
    assert str(table.schema.field("score").type) == "double"
    assert table.column("score_spectral").to_pylist() == [0.25, 0.75]
    assert str(table.schema.field("scanned_at").type).startswith("timestamp")
    # An empty store still gives a readable file with the columns.
    with CaseStore(tmp_path / "empty.sqlite") as empty:
        assert write_parquet(empty, tmp_path / "empty.parquet") == 0
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for index in range(4):
        Image.fromarray(natural_like(rng, 64)).save(folder / f"p{index}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return folder


def scan_db(*args: str) -> object:
    return runner.invoke(app, ["scan", *args, "--format", "jsonl", "--workers", "1"])


def test_scan_db_skips_known_files_and_export_dumps_them(photos, tmp_path):
    db = str(tmp_path / "cases.sqlite")
    first = scan_db(str(photos), "--db", db)
    assert first.exit_code == 0, first.output
    assert len([line for line in first.stdout.splitlines() if line.startswith("{")]) == 5
    second = scan_db(str(photos), "--db", db)
    assert second.exit_code == 0
    assert not [line for line in second.stdout.splitlines() if line.startswith("{")]
    assert "5 known files skipped" in second.stderr.replace("\n", " ")
    # A copy under a new name is known by its content; a touched file by its hash too.
    shutil.copyfile(photos / "p0.png", photos / "copy.png")
    os.utime(photos / "p1.png", ns=(1, 1))
    third = scan_db(str(photos), "--db", db)
    assert not [line for line in third.stdout.splitlines() if line.startswith("{")]
    with CaseStore(db) as store:
        assert store.count() == 5  # four photos and the broken file, each once
        rows = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
        p0 = next(r["sha256"] for r in rows if r["path"].endswith("p0.png"))
        assert sorted(Path(path).name for path in store.paths_of(p0)) == ["copy.png", "p0.png"]
    exported = runner.invoke(app, ["export", "--db", db, "--format", "csv"])
    assert exported.exit_code == 0
    table = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(table) == 5 and {r["error_kind"] for r in table} == {"", "truncated_image"}


def test_scan_db_rescans_with_another_model(photos, tmp_path, trained_model_dir):
    db = str(tmp_path / "cases.sqlite")
    assert scan_db(str(photos), "--db", db).exit_code == 0
    other = scan_db(str(photos), "--db", db, "--model", str(trained_model_dir))
    assert len([line for line in other.stdout.splitlines() if line.startswith("{")]) == 5


def test_export_needs_an_existing_database(tmp_path):
    result = runner.invoke(app, ["export", "--db", str(tmp_path / "nope.sqlite")])
    assert result.exit_code == 2
    parquet_to_stdout = runner.invoke(app, ["export", "--format", "parquet", "--db", "x://"])
    assert parquet_to_stdout.exit_code == 2
