"""Batch jobs: an in-process queue drained by a bounded pool of threads.

A job is split into batches of ``batch_size`` files, each a task for the pool, so a job of a
thousand files does not hold back a one-file request that arrives after it for long: batches of
different jobs take turns in arrival order. ``POST /v1/scan`` is a job too, waited on for a
while. The queue is bounded in files; past the bound new work is refused (429) rather than
letting memory and latency grow without limit.

Threads, not processes: decoding (Pillow) and the FFT (scipy) release the GIL for most of
their time, and a thread shares the loaded model instead of loading it once per process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from fakescope.results import ScanResult
from fakescope.server.scanning import ScanItem

JobState = Literal["queued", "running", "done"]
BatchScanner = Callable[[Sequence[ScanItem], bool], list[ScanResult]]


class QueueFullError(Exception):
    """More files are waiting than the queue accepts; retry later."""


@dataclass
class Job:
    id: str
    items: list[ScanItem]
    rescan: bool
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    results: list[ScanResult | None] = field(default_factory=list)
    completed: int = 0
    #: Resolved with the results once every batch has finished.
    future: Future[list[ScanResult]] = field(default_factory=Future)

    @property
    def state(self) -> JobState:
        if self.finished_at is not None:
            return "done"
        return "running" if self.started_at is not None else "queued"

    @property
    def total(self) -> int:
        return len(self.items)


class JobQueue:
    def __init__(
        self,
        scan_batch: BatchScanner,
        *,
        workers: int,
        batch_size: int,
        max_queued_files: int,
        max_finished_jobs: int,
    ) -> None:
        self.scan_batch = scan_batch
        self.workers = workers
        self.batch_size = max(1, batch_size)
        self.max_queued_files = max_queued_files
        self.max_finished_jobs = max_finished_jobs
        self._pool: ThreadPoolExecutor | None = None  # started on first use, again after shutdown
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queued_files = 0

    @property
    def queued_files(self) -> int:
        return self._queued_files

    def submit(self, items: list[ScanItem], rescan: bool = False) -> Job:
        """Queue a job; raises :class:`QueueFullError` when the queue cannot take its files."""
        job = Job(id=uuid.uuid4().hex, items=items, rescan=rescan)
        job.results = [None] * len(items)
        with self._lock:
            if self._queued_files + len(items) > self.max_queued_files:
                raise QueueFullError(
                    f"{self._queued_files} files are waiting; the queue takes "
                    f"{self.max_queued_files}"
                )
            self._queued_files += len(items)
            self._jobs[job.id] = job
            self._forget_old_jobs()
        if not items:
            self._finish(job)
            return job
        pool = self._executor()
        for start in range(0, len(items), self.batch_size):
            pool.submit(self._run_batch, job, start, items[start : start + self.batch_size])
        return job

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="fakescope-scan"
                )
            return self._pool

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run_batch(self, job: Job, start: int, batch: list[ScanItem]) -> None:
        with self._lock:
            if job.started_at is None:
                job.started_at = time.time()
        try:
            results = self.scan_batch(batch, job.rescan)
        except Exception as exc:  # a bug must cost this batch's rows, never the worker
            results = [ScanResult.failure(item.name, exc, sha256=item.sha256) for item in batch]
        with self._lock:
            for offset, result in enumerate(results):
                job.results[start + offset] = result
            job.completed += len(batch)
            self._queued_files -= len(batch)
            finished = job.completed >= job.total
        if finished:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        job.finished_at = time.time()
        job.future.set_result([result for result in job.results if result is not None])

    def _forget_old_jobs(self) -> None:
        """Drop the oldest finished jobs beyond the limit (their results stay in the store)."""
        finished = [job_id for job_id, job in self._jobs.items() if job.finished_at is not None]
        for job_id in finished[: max(0, len(finished) - self.max_finished_jobs)]:
            del self._jobs[job_id]

    def shutdown(self) -> None:
        """Stop the threads; queued batches are dropped. A later submit starts new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
