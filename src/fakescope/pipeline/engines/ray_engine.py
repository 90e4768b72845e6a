"""The Ray engine: scan on a Ray cluster (or every core of this machine) with Ray Data.

The driver walks the inputs (:func:`~fakescope.io.discover.iter_input_files`, the local
engine's walk, so both engines see the same files) into a dataset of paths. ``map_batches``
runs :class:`ScanActor` over it: a pool of ``workers`` actors, each loading the model once,
reading and decoding its files itself and scoring them in batches with the same stages as the
local engine (:func:`~fakescope.pipeline.engines.common.scan_batch`). The rows are typed
with the one result schema (:mod:`~fakescope.pipeline.engines.table`) and written as Parquet
shards (``write_parquet``), or streamed back to the driver in input order (:meth:`scan`).

Why paths and not ``read_binary_files``: a file that vanished or cannot be read would fail
the read task, and the bytes of a huge file would be read before the size limit applies;
with paths, the actor's read is the one the local engine does (``read_file_bytes``), and each
of these is an error row.

Failures: a bad file is an error row inside the actor. An actor that dies (killed, out of
memory) is restarted and its task retried, up to ``max_retries`` times each (Ray Data's
own defaults retry forever, which a file that kills every actor it meets would turn into a
job that never ends). A block whose task still fails is skipped rather than failing the job
(``DataContext.max_errored_blocks``), and the driver then writes a ``worker_crashed`` error
row for each of its files: every input gets exactly one row.

Actors ask for a GPU each when the cluster has GPUs and the model says it can use one (a
``uses_gpu`` attribute on the detector); fakescope's detectors run on the CPU today, and an
actor holding a GPU it does not use would only limit how many actors run.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope.errors import FakescopeError
from fakescope.io.discover import InputEntry, iter_input_files
from fakescope.pipeline.engines.common import (
    ModelSource,
    RecordedInputError,
    ScanLimits,
    WorkerCrashedError,
    detectors_of,
    scan_batch,
)
from fakescope.pipeline.engines.table import (
    ParquetResultWriter,
    read_results,
    result_from_row,
    results_from_arrow,
    results_to_arrow,
)
from fakescope.results import ScanResult

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data

#: Restarts of a dead actor, and retries of a task whose actor died, before giving up a block.
DEFAULT_MAX_RETRIES = 3
#: Input blocks per worker: enough that fast actors take over from slow ones near the end.
BLOCKS_PER_WORKER = 8
#: The largest input block, in files: one task's share of a very large scan.
MAX_ROWS_PER_BLOCK = 4096
#: Rows per Parquet shard at least, so a large scan does not write a file per small block.
MIN_ROWS_PER_SHARD = 50_000
#: Name of the shard the driver writes for files whose block was lost.
LOST_ROWS_SHARD = "lost-blocks.parquet"
_INPUT_COLUMNS = ("path", "location", "input_error", "input_error_kind")


class RayNotInstalledError(FakescopeError):
    """The Ray engine needs the ``ray`` extra."""


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # the Data library is a separate part of the wheel
    except ImportError as exc:
        raise RayNotInstalledError(
            "the Ray engine needs Ray Data: pip install -e '.[ray]' (or pip install 'ray[data]')"
        ) from exc
    return ray


class ScanActor:
    """One Ray actor: loads the model once, then scans a batch of paths per call."""

    def __init__(self, source: ModelSource, limits: ScanLimits) -> None:
        self.model = source.load_in_worker()  # on one thread: Ray gives each actor one CPU
        self.limits = limits

    def __call__(self, batch: pa.Table) -> pa.Table:
        columns = batch.to_pydict()
        entries = [
            InputEntry(path, None if message is None else RecordedInputError(message, path, kind))
            for path, message, kind in zip(
                columns["path"], columns["input_error"], columns["input_error_kind"], strict=True
            )
        ]
        results = scan_batch(entries, self.model, self.limits, locations=columns["location"])
        return results_to_arrow(results)


def _lost_row(path: str) -> ScanResult:
    error = WorkerCrashedError(
        f"the Ray workers scanning this file's block died {DEFAULT_MAX_RETRIES + 1} times or "
        "more (killed, out of memory, a native crash); the block was given up, scan it again"
    )
    return ScanResult.failure(path, error)


class RayEngine:
    """Scan with Ray Data; see the module docstring.

    Connects to ``address`` (``"auto"``, ``"ray://head:10001"``), or reuses the Ray runtime
    this process already started, or starts a local one with ``workers`` CPUs.
    """

    def __init__(
        self,
        source: ModelSource,
        *,
        workers: int | None = None,
        limits: ScanLimits | None = None,
        address: str | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        progress: bool = False,
        actor_class: type[ScanActor] = ScanActor,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.ray = import_ray()
        self.source = source
        self.limits = limits or ScanLimits()
        self.max_retries = max_retries
        self.progress = progress
        self.actor_class = actor_class  # a subclass may wrap each call (the benchmark times it)
        self._started_ray = False
        if not self.ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
            if address is None and not os.environ.get("RAY_ADDRESS"):
                # A local runtime: the CPUs it may use are ours to set (not a cluster's).
                options["num_cpus"] = workers or os.cpu_count() or 1
            self.ray.init(address=address, **options)
            self._started_ray = True
        self.workers = workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        """Shut down the Ray runtime if this engine started it (a cluster stays up)."""
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the dataset -------------------------------------------------------------------------
    def gpus_per_worker(self) -> float:
        """1 when the cluster has GPUs and the model can use one (see the module doc), else 0."""
        if self.ray.cluster_resources().get("GPU", 0) < 1:
            return 0.0
        detectors = detectors_of(self.source.load().detector)
        return 1.0 if any(getattr(detector, "uses_gpu", False) for detector in detectors) else 0.0

    def input_blocks(self, entries: list[InputEntry]) -> list[pa.Table]:
        """The paths to scan as Arrow tables, sized so every worker gets several blocks."""
        import pyarrow as pa

        batch = self.limits.batch_size
        per_block = math.ceil(len(entries) / (self.workers * BLOCKS_PER_WORKER))
        per_block = min(MAX_ROWS_PER_BLOCK, max(batch, math.ceil(per_block / batch) * batch))
        blocks = []
        for start in range(0, len(entries), per_block):
            chunk = entries[start : start + per_block]
            columns = {
                "path": [entry.path for entry in chunk],
                # Actors may run in another folder, or on another machine over a shared mount.
                "location": [os.path.abspath(entry.path) for entry in chunk],
                "input_error": [None if e.error is None else e.error.message for e in chunk],
                "input_error_kind": [None if e.error is None else e.error.kind for e in chunk],
            }
            blocks.append(
                pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
            )
        return blocks

    def results_dataset(self, entries: list[InputEntry]) -> ray.data.Dataset:
        """The lazy dataset of result rows, one per entry (lost blocks excepted)."""
        data = self.ray.data
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing max_restarts/max_task_retries through map_batches but
            # offers no named parameter for them yet; its default (retry forever) is worse.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            # from_blocks keeps these blocks as they are and reads their metadata here, where
            # from_arrow would start a remote task per block only to read it.
            dataset = data.from_blocks(self.input_blocks(entries)).map_batches(
                self.actor_class,
                fn_constructor_kwargs={"source": self.source, "limits": self.limits},
                batch_size=self.limits.batch_size,
                batch_format="pyarrow",
                compute=data.ActorPoolStrategy(size=self.workers),
                num_cpus=1,
                num_gpus=self.gpus_per_worker(),
                max_restarts=self.max_retries,
                max_task_retries=self.max_retries,
            )
        context = dataset.context  # this dataset's own copy of the settings
        context.max_errored_blocks = -1  # a lost block becomes error rows, see the module doc
        context.enable_progress_bars = self.progress
        return dataset

    # -- scanning ----------------------------------------------------------------------------
    def scan(self, inputs: Iterable[str]) -> Iterator[ScanResult]:
        """One result per file, in input order, streamed back to this process."""
        entries = list(iter_input_files(inputs))
        if not entries:
            return
        dataset = self.results_dataset(entries)
        dataset.context.execution_options.preserve_order = True
        expected = iter(entries)
        for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            for result in results_from_arrow(batch):
                # Rows arrive in input order, so files before this row that have none were lost.
                for entry in expected:
                    if entry.path == result.path:
                        break
                    yield _lost_row(entry.path)
                yield result
        for entry in expected:
            yield _lost_row(entry.path)

    def write_parquet(
        self,
        inputs: Iterable[str],
        out: Path,
        on_result: Callable[[ScanResult], None] | None = None,
    ) -> int:
        """Write Parquet shards into the new folder ``out``; returns the number of rows.

        ``on_result`` sees each row after the shards are written, read back without the
        ``detectors`` and ``evidence`` columns (for counts, not for the results themselves).
        """
        out = Path(out).absolute()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(f"{out} exists: the Ray engine writes a new folder of shards")
        entries = list(iter_input_files(inputs))
        out.mkdir(parents=True, exist_ok=True)
        if entries:
            self.results_dataset(entries).write_parquet(
                str(out), min_rows_per_file=MIN_ROWS_PER_SHARD
            )
        written = Counter(self._written_paths(out))
        lost = [entry.path for entry in entries if not _take(written, entry.path)]
        if lost or not entries:  # an empty scan still leaves a readable, typed table
            with ParquetResultWriter(out / LOST_ROWS_SHARD) as writer:
                writer.write_all([_lost_row(path) for path in lost])
        return self._report(out, on_result)

    @staticmethod
    def _written_paths(out: Path) -> list[str]:
        import pyarrow.parquet as pq

        if not any(out.glob("*.parquet")):
            return []
        return pq.read_table(out, columns=["path"]).column("path").to_pylist()

    @staticmethod
    def _report(out: Path, on_result: Callable[[ScanResult], None] | None) -> int:
        import pyarrow.dataset as ds

        rows = 0
        columns = ["path", "score", "verdict", "error", "error_kind"]
        for batch in ds.dataset(out, format="parquet").to_batches(columns=columns):
            rows += batch.num_rows
            if on_result is not None:
                for row in batch.to_pylist():
                    on_result(result_from_row(row))
        return rows


def _take(counts: Counter[str], path: str) -> bool:
    """Use up one written row of ``path``; False when there is none left (it was lost)."""
    if counts[path] <= 0:
        return False
    counts[path] -= 1
    return True


__all__ = ["RayEngine", "RayNotInstalledError", "ScanActor", "import_ray", "read_results"]
