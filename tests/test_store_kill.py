"""``kill -9`` of a running ``fakescope scan --db``, then a re-run: no result lost, none twice.

The scan reads its paths from a pipe, so the test decides how far it can get: it is given 20 of
the 40 files, killed with SIGKILL (its whole process group) as soon as a few batches are
committed, while it is still working through the rest of those 20, and then run again on the
whole folder.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("sqlalchemy")

from tests.conftest import natural_like

N_FILES = 40
FED_BEFORE_KILL = 20
BATCH = 2


def committed_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not created yet
        return 0


def scan_command(db: Path, *inputs: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fakescope",
        "scan",
        *inputs,
        "--db",
        str(db),
        "--format",
        "jsonl",
        "--batch-size",
        str(BATCH),
        "--workers",
        "1",
        "--no-progress",
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL of a process group is POSIX")
def test_kill_9_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(11)
    paths = []
    for index in range(N_FILES):
        path = folder / f"img{index:02d}.png"
        Image.fromarray(natural_like(rng, 128)).save(path)
        paths.append(str(path))
    db = tmp_path / "cases.sqlite"

    process = subprocess.Popen(
        scan_command(db, "-"),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill takes any worker with it
        text=True,
    )
    try:
        assert process.stdin is not None
        process.stdin.write("".join(f"{path}\n" for path in paths[:FED_BEFORE_KILL]))
        process.stdin.flush()
        deadline = time.monotonic() + 60
        while committed_rows(db) < 2 * BATCH:
            if process.poll() is not None:
                pytest.fail(f"the scan exited early: {process.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("the scan committed nothing within 60 s")
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert process.returncode == -signal.SIGKILL
    before = committed_rows(db)
    print(f"committed before the kill: {before} of {N_FILES}")
    assert 2 * BATCH <= before <= FED_BEFORE_KILL
    with sqlite3.connect(db) as connection:
        done_before = {row[0] for row in connection.execute("SELECT path FROM files")}

    rerun = subprocess.run(
        scan_command(db, str(folder)), capture_output=True, text=True, timeout=120, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    rescanned = [json.loads(line) for line in rerun.stdout.splitlines() if line.startswith("{")]

    # Everything committed before the kill was skipped; everything else was scanned now.
    assert len(rescanned) == N_FILES - before
    assert not done_before & {row["path"] for row in rescanned}
    assert all(row["error"] is None for row in rescanned)
    with sqlite3.connect(db) as connection:
        results = connection.execute("SELECT sha256, path FROM results").fetchall()
        per_path = connection.execute("SELECT path, count(*) FROM files GROUP BY path").fetchall()
    assert len(results) == N_FILES
    assert len({sha for sha, _ in results}) == N_FILES
    assert sorted(path for path, _ in per_path) == sorted(paths)
    assert all(count == 1 for _, count in per_path)
