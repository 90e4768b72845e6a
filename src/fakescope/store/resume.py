"""``fakescope scan --db``: skip what the case database already holds, record the rest.

The scan's inputs pass through :meth:`ScanRecorder.pending` before any engine sees them, and
every result passes through :meth:`ScanRecorder.add` after; so this works with whichever engine
runs the scan in between, since it only ever sees paths going in and results coming out.

Which files are known, cheapest test first:

1. the path was recorded with the same size and modification time (no read at all);
2. else the file's SHA-256 (one read; the scan's own read then comes from the page cache)
   names a content the database holds.

Either way the stored result must come from the same model and not be an error that a new
attempt could fix (:data:`~fakescope.store.db.RETRY_ERROR_KINDS`).

Results are committed every ``commit_every`` rows: a scan killed with ``kill -9`` loses at most
the uncommitted batch, which the next run scans again, and the upserts make a row written twice
a row written once.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterable, Iterator

from fakescope.io.discover import iter_input_files
from fakescope.results import ScanResult
from fakescope.store.db import CaseStore, Sighting


def file_sha256(path: str) -> str | None:
    """SHA-256 of a regular file, streamed; None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


class ScanRecorder:
    """Filters a scan's inputs against the case database and records its results."""

    def __init__(self, store: CaseStore, model: str, commit_every: int = 16) -> None:
        self.store = store
        self.model = model
        self.commit_every = max(1, commit_every)
        self.skipped = 0
        self.recorded = 0
        # Path -> (size, mtime, sha256) of files handed to the scan and not yet recorded.
        # Filled by `pending` (maybe in an engine's thread), emptied by `add`.
        self._in_flight: dict[str, tuple[Sighting, str | None]] = {}
        self._lock = threading.Lock()
        self._batch: list[tuple[ScanResult, Sighting | None]] = []

    def pending(self, inputs: Iterable[str]) -> Iterator[str]:
        """The files under ``inputs`` that still need a scan, as paths for any scan engine.

        Folders are walked here, so the engine receives single files; a file named explicitly
        is always attempted (as without ``--db``), and paths that cannot be listed or read go
        through unchanged for the scan to report.
        """
        seen_again: list[tuple[str, Sighting]] = []
        for entry in iter_input_files(inputs):
            if entry.error is not None:
                yield entry.path
                continue
            try:
                info = os.stat(entry.path)
            except OSError:
                yield entry.path
                continue
            sighting = Sighting(entry.path, info.st_size, info.st_mtime_ns, "scan")
            sha256 = self.store.sha256_of_unchanged(entry.path, info.st_size, info.st_mtime_ns)
            unchanged = sha256 is not None
            if sha256 is None:
                sha256 = file_sha256(entry.path)
            if sha256 is not None and self.store.is_done(sha256, self.model):
                self.skipped += 1
                if not unchanged:  # a copy, or a touched file: remember it under this path
                    seen_again.append((sha256, sighting))
                    if len(seen_again) >= self.commit_every:
                        self.store.record_sightings(seen_again)
                        seen_again = []
                continue
            with self._lock:
                self._in_flight[entry.path] = (sighting, sha256)
            yield entry.path
        self.store.record_sightings(seen_again)

    def add(self, result: ScanResult) -> ScanResult:
        """Queue one result for the database (committed in batches); returns it, with its
        SHA-256 filled in when the scan could not decode the file but the bytes were hashed."""
        with self._lock:
            sighting, sha256 = self._in_flight.pop(result.path, (None, None))
        if result.sha256 is None and sha256 is not None:
            result.sha256 = sha256
        self._batch.append((result, sighting))
        if len(self._batch) >= self.commit_every:
            self.flush()
        return result

    def flush(self) -> None:
        if self._batch:
            self.recorded += self.store.record(self._batch, self.model)
            self._batch = []

    def __enter__(self) -> ScanRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Also on Ctrl-C or an error: whatever was scanned is kept.
        self.flush()
        self.store.close()

    def summary(self) -> str:
        return (
            f"case database {self.store.display_url}: {self.recorded} results recorded, "
            f"{self.skipped} known files skipped (`fakescope export` dumps them all)"
        )
