"""The case database on a real PostgreSQL server, started for the test on 127.0.0.1.

``initdb`` and ``pg_ctl`` come from the system (PATH, or Debian's /usr/lib/postgresql/*/bin);
the test skips, saying why, without them or without psycopg. As root (CI), the server runs as
the ``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import io
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

from fakescope.results import ScanResult
from fakescope.store.db import CaseStore, Sighting
from fakescope.store.export import write_csv, write_jsonl


def postgres_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = postgres_tool("initdb"), postgres_tool("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    run_as: dict[str, Any] = {}
    # Not under pytest's tmp_path: its parents are private to root, and the server may run as
    # another user.
    root = Path(tempfile.mkdtemp(prefix="fakescope-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and no 'postgres' user to run PostgreSQL as")
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid}
    data = root / "data"
    port = free_port()
    log = root / "server.log"
    try:
        subprocess.run(
            [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
            **run_as,
        )
        options = f"-k {root} -h 127.0.0.1 -p {port} -c fsync=off"
        subprocess.run(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            timeout=90,
            **run_as,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {exc} {detail.decode()[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
            **run_as,
        )
        shutil.rmtree(root, ignore_errors=True)


def result(sha: str, score: float, path: str) -> ScanResult:
    return ScanResult(
        path=path,
        sha256=sha * 64,
        score=score,
        verdict="real",
        detectors={"spectral": score},
        evidence={"file": {"format": "PNG", "note": "ünïcode"}},
    )


def test_postgres_store_upserts_and_exports(postgres_url):
    with CaseStore(postgres_url) as store:
        assert store.dialect == "postgresql" and store.journal_mode() is None
        assert "postgresql+psycopg" in store.display_url
        batch = [
            (result("a", 0.1, "one.png"), Sighting("one.png", 10, 1)),
            (result("a", 0.2, "two.png"), Sighting("two.png", 10, 2)),  # same content twice
            (result("b", 0.3, "b.png"), Sighting("b.png", 11, 3)),
        ]
        assert store.record(batch, "m") == 2
        assert store.record(batch, "m") == 2  # idempotent
        assert store.count() == 2
        assert store.get("a" * 64).result.score == 0.2
        assert sorted(store.paths_of("a" * 64)) == ["one.png", "two.png"]
        assert store.is_done("b" * 64, "m") and not store.is_done("b" * 64, "other")
        assert store.sha256_of_unchanged("b.png", 11, 3) == "b" * 64
        stream = io.StringIO()
        assert write_jsonl(store, stream) == 2
        rows = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert rows[0]["evidence"]["file"]["note"] == "ünïcode"
        stream = io.StringIO()
        assert write_csv(store, stream) == 2


def test_server_on_postgres(postgres_url, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from fakescope.server import ServerSettings, create_app

    examples = Path(__file__).resolve().parents[1] / "examples"
    settings = ServerSettings(db=postgres_url, workdir=tmp_path / "work", workers=1)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/health").json()["database"] == "postgresql"
        data = (examples / "real-skimage-coffee.png").read_bytes()
        row = client.post("/v1/scan", files=[("files", ("coffee.png", data))]).json()["results"][0]
        assert client.get(f"/v1/results/{row['sha256']}").json() == row
