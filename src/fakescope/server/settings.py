"""Server settings: limits, the API key, where uploads and results go.

Every limit has a default that suits one machine serving a newsroom; ``fakescope serve`` sets
them from its options, and ``FAKESCOPE_API_KEY`` from the environment sets the key without
putting it on a command line (where ``ps`` would show it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fakescope.localizers import FIELD_LOCALIZER
from fakescope.models import DEFAULT_MODEL
from fakescope.store import DEFAULT_DB

API_KEY_ENV = "FAKESCOPE_API_KEY"
MIB = 1024 * 1024


@dataclass
class ServerSettings:
    model: str = DEFAULT_MODEL
    db: str = DEFAULT_DB
    #: Localizer (bundled name or folder) run on demand on kept uploads to show where they were
    #: edited; None switches it off. Loaded on first use; without torch it is reported
    #: unavailable and the rest of the server works as before.
    localizer: str | None = FIELD_LOCALIZER
    #: Uploads are kept here under their SHA-256 (never a client's name) so that the page can
    #: ask for views of them (spectrum, overlay); None: a temporary folder removed at shutdown.
    workdir: Path | None = None
    #: Required in ``X-API-Key`` (or ``Authorization: Bearer``) on every ``/v1`` route but
    #: ``/v1/health`` when set; the page asks for it.
    api_key: str | None = field(default_factory=lambda: os.environ.get(API_KEY_ENV) or None)
    #: A whole request body larger than this is refused with 413 before it is read.
    max_request_bytes: int = 512 * MIB
    #: One file larger than this gets a ``file_too_large`` error row; the others are scanned.
    max_file_bytes: int = 256 * MIB
    max_files_per_request: int = 64
    #: Decompression-bomb guard, checked from the header before any pixel is decoded.
    max_pixels: int = 50_000_000
    #: A client that takes longer than this to send its request body gets 408.
    upload_timeout_s: float = 120.0
    #: ``POST /v1/scan`` waits this long for its results, then answers 202 with the job to poll
    #: instead (the work goes on; nothing is lost).
    scan_timeout_s: float = 60.0
    #: Threads that decode and score; more than the cores only adds contention.
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    batch_size: int = 16
    #: Files waiting in the queue beyond which new work is refused with 429 (and Retry-After).
    max_queued_files: int = 2048
    #: Finished jobs kept for polling (their results also stay in the case database).
    max_finished_jobs: int = 1000
    #: Uploads kept on disk for the page's views; the oldest go first beyond this.
    max_workdir_bytes: int = 2048 * MIB
    #: Folders whose files ``POST /v1/scan`` with JSON ``{"paths": [...]}`` may read; empty:
    #: server-side paths are refused (403).
    allowed_path_roots: list[Path] = field(default_factory=list)
