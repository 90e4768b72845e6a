"""The local engine: every core of one machine, a process per core, results in input order.

The parent walks the inputs lazily (:func:`~fakescope.io.discover.iter_input_files`), cuts
them into batches and keeps at most ``batches_in_flight`` batches submitted to a process pool;
it submits the next batch only after taking the oldest one's results. Memory therefore stays
flat however many files there are, and results come out in input order. Each worker loads the
model once (the pool initializer), runs one thread (one worker per core) and scans whole
batches with the serial scan's stages (:func:`~fakescope.pipeline.engines.common.scan_batch`):
decoding, hashing and feature extraction spread over the cores, scoring stays batched.

With one worker the scan runs in this process, exactly as
:func:`fakescope.pipeline.scan.scan_paths` does; so does a scan of one batch or less, for which
starting workers would take longer than the scan.

A worker that dies (killed, out of memory, a crash in a native decoder) breaks the pool and
every batch in flight with it. The engine then starts a fresh pool and re-runs those batches
one at a time, so a crash can be traced to its batch; a batch that crashes alone is re-run
file by file, and a file that crashes its worker alone gets a ``worker_crashed`` error row.
A worker killed once by something else (the OOM killer under a burst) costs a re-run, no row.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope.errors import FakescopeError
from fakescope.io.discover import InputEntry, iter_input_files
from fakescope.pipeline.engines.common import (
    ModelSource,
    ScanLimits,
    WorkerCrashedError,
    scan_batch,
)
from fakescope.pipeline.scan import scan_entries, scan_paths
from fakescope.results import ScanResult

if TYPE_CHECKING:
    from fakescope.calibration.model import CalibratedModel

#: Batches submitted per worker before the parent waits: one running, one queued, so a worker
#: never idles while the parent collects, and memory holds a few batches' rows at most.
BATCHES_IN_FLIGHT_PER_WORKER = 2


class WorkerStartError(FakescopeError):
    """A worker could not load the model: no file can be scanned, so the scan stops."""


def default_workers() -> int:
    """The cores this process may run on (the affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------- worker side

_worker_state: dict[str, Any] = {}


def _start_worker(source: ModelSource, limits: ScanLimits) -> None:
    """Pool initializer: load the model once per worker process, on one thread."""
    try:
        model = source.load_in_worker()
    except BaseException as exc:  # reported with the first batch: a dead initializer says nothing
        _worker_state["error"] = f"{type(exc).__name__}: {exc}"
        return
    _worker_state["model"] = model
    _worker_state["limits"] = limits


def _worker_ready() -> bool:
    if "error" in _worker_state:
        raise WorkerStartError(f"a worker could not load the model: {_worker_state['error']}")
    return True


def _scan_in_worker(batch: list[InputEntry]) -> list[ScanResult]:
    _worker_ready()
    model: CalibratedModel = _worker_state["model"]
    return scan_batch(batch, model, _worker_state["limits"])


# ----------------------------------------------------------------------------- parent side


def pool_context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes, never a fork of this one (which may hold threads and locks).

    ``forkserver`` forks each worker from a small server that imported the scan code once,
    so starting (and restarting) workers is cheap; ``spawn`` where it does not exist.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _batches(entries: Iterator[InputEntry], size: int) -> Iterator[list[InputEntry]]:
    while batch := list(islice(entries, size)):
        yield batch


class LocalEngine:
    """Scan with ``workers`` processes on this machine; see the module docstring."""

    def __init__(
        self,
        source: ModelSource,
        *,
        workers: int | None = None,
        limits: ScanLimits | None = None,
        address: str | None = None,
        batches_in_flight: int | None = None,
    ) -> None:
        if address is not None:
            raise ValueError("--address names a Ray cluster: use it with --engine ray")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.source = source
        self.workers = workers or default_workers()
        self.limits = limits or ScanLimits()
        self.batches_in_flight = batches_in_flight or BATCHES_IN_FLIGHT_PER_WORKER * self.workers
        self.worker_restarts = 0  # pools rebuilt after a worker died, for reports and tests
        self._pool: ProcessPoolExecutor | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalEngine:
        """Start the workers now (they load the model); otherwise the first batch does."""
        if self.workers > 1:
            self._check_workers_start()
        return self

    def _check_workers_start(self) -> None:
        """Start every worker; raise if one cannot start or load the model (no file's fault).

        The pool starts a process per task submitted while none is idle, so one task per
        worker, all submitted at once, starts them all.
        """
        pool = self._executor()
        try:
            for ready in [pool.submit(_worker_ready) for _ in range(self.workers)]:
                ready.result()
        except BrokenProcessPool as exc:
            self._restart_pool()
            raise WorkerStartError(
                "worker processes die as they start, before scanning anything"
            ) from exc

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=pool_context(),
                initializer=_start_worker,
                initargs=(self.source, self.limits),
            )
        return self._pool

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        self._discard_pool()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- scanning ----------------------------------------------------------------------------
    def scan(self, inputs: Iterable[str]) -> Iterator[ScanResult]:
        """One result per file, in input order; inputs are read only as batches are needed."""
        if self.workers == 1:
            yield from scan_paths(
                inputs,
                self.source.load(),
                batch_size=self.limits.batch_size,
                max_pixels=self.limits.max_pixels,
                max_bytes=self.limits.max_bytes,
                video=self.limits.video,
            )
            return
        entries = iter_input_files(inputs)
        first = list(islice(entries, self.limits.batch_size))
        after_first = list(islice(entries, 1))
        if not after_first and self._pool is None:
            # One batch in all (`fakescope scan photo.jpg`): starting workers would cost more
            # than the whole scan, so it runs here, as it would with one worker.
            yield from scan_entries(
                first,
                self.source.load(),
                max_pixels=self.limits.max_pixels,
                max_bytes=self.limits.max_bytes,
                video=self.limits.video,
            )
            return
        rest = _batches(chain(after_first, entries), self.limits.batch_size)
        yield from self._scan_in_pool(chain([first], rest))

    def write_parquet(
        self,
        inputs: Iterable[str],
        out: Path,
        on_result: Callable[[ScanResult], None] | None = None,
    ) -> int:
        """Write every result to one Parquet file at ``out``, streamed; returns the row count."""
        from fakescope.pipeline.engines.table import ParquetResultWriter

        with ParquetResultWriter(out) as writer:
            for result in self.scan(inputs):
                writer.write(result)
                if on_result is not None:
                    on_result(result)
        return writer.rows_written

    def _scan_in_pool(self, batches: Iterator[list[InputEntry]]) -> Iterator[ScanResult]:
        in_flight: deque[tuple[Future[list[ScanResult]], list[InputEntry]]] = deque()
        try:
            for batch in batches:
                in_flight.append((self._submit(batch, in_flight), batch))
                if len(in_flight) >= self.batches_in_flight:
                    yield from self._oldest_results(in_flight)
            while in_flight:
                yield from self._oldest_results(in_flight)
        finally:  # the consumer stopped early or failed: do not leave batches running
            for future, _ in in_flight:
                future.cancel()

    def _submit(
        self,
        batch: list[InputEntry],
        in_flight: deque[tuple[Future[list[ScanResult]], list[InputEntry]]],
    ) -> Future[list[ScanResult]]:
        try:
            return self._executor().submit(_scan_in_worker, batch)
        except BrokenProcessPool:  # a worker died since the last submit
            self._recover(in_flight)
            return self._executor().submit(_scan_in_worker, batch)

    def _oldest_results(
        self, in_flight: deque[tuple[Future[list[ScanResult]], list[InputEntry]]]
    ) -> list[ScanResult]:
        try:
            results = in_flight[0][0].result()
        except BrokenProcessPool:
            self._recover(in_flight)
            results = in_flight[0][0].result()
        in_flight.popleft()
        return results

    def _recover(self, in_flight: deque[tuple[Future[list[ScanResult]], list[InputEntry]]]) -> None:
        """A worker died and took the pool with it: redo, one at a time, what was lost.

        Batches that finished before the pool broke keep their results; the others are re-run
        alone on a fresh pool (in order), so that a second crash names its batch.
        """
        wait([future for future, _ in in_flight])  # a broken pool fails every pending future
        self._restart_pool()
        recovered: list[tuple[Future[list[ScanResult]], list[InputEntry]]] = []
        for future, batch in in_flight:
            if future.exception() is None:
                recovered.append((future, batch))
                continue
            if not isinstance(future.exception(), BrokenProcessPool):
                raise future.exception()  # type: ignore[misc]
            done: Future[list[ScanResult]] = Future()
            done.set_result(self._run_alone(batch))
            recovered.append((done, batch))
        in_flight.clear()
        in_flight.extend(recovered)

    def _run_alone(self, batch: list[InputEntry]) -> list[ScanResult]:
        """Scan ``batch`` as the only task on the pool: if the pool breaks, the batch did it."""
        try:
            return self._executor().submit(_scan_in_worker, batch).result()
        except BrokenProcessPool:
            self._restart_pool()
        if len(batch) > 1:
            return [result for entry in batch for result in self._run_alone([entry])]
        self._check_workers_start()  # a pool that cannot even start is not this file's fault
        error = WorkerCrashedError(
            "the worker process died while scanning this file, twice (once in its batch, "
            "once alone): a crash in a native decoder or the file needs more memory than "
            "there is; nothing else was lost"
        )
        return [ScanResult.failure(batch[0].path, error)]

    def _restart_pool(self) -> None:
        self.worker_restarts += 1
        if self._pool is not None:
            # The dead pool's other workers are still alive; wait=False would leak them.
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None
