"""What every engine shares: how a worker gets its model, its limits and scans one batch.

A worker (a process of the local pool, a Ray actor) loads the model once, from a
:class:`ModelSource` it receives pickled; it never receives the model itself, which for torch
detectors can be large and is not meant to be pickled. Each worker then scans batches with
:func:`scan_batch`, the same two stages as the serial scan (``decode_entry`` then
``score_decoded`` from :mod:`fakescope.pipeline.scan`), so every engine produces the same rows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fakescope.errors import FakescopeError, InputError
from fakescope.io.discover import InputEntry
from fakescope.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, LoadedImage, read_file_bytes
from fakescope.pipeline.scan import decode_entry, score_decoded
from fakescope.results import ScanResult
from fakescope.video.scan import VideoScanOptions

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from fakescope.calibration.model import CalibratedModel
    from fakescope.detectors.base import Detector


class WorkerCrashedError(FakescopeError):
    """The worker process died while scanning the file (killed, out of memory, a native crash)."""

    kind = "worker_crashed"


class InternalScanError(FakescopeError):
    """Scanning the file raised an error that is not about the input: a bug to report."""

    kind = "internal_error"


class RecordedInputError(InputError):
    """An input error carried as text between processes, keeping its original ``kind``."""

    def __init__(self, message: str, path: str | None = None, kind: str = InputError.kind) -> None:
        super().__init__(message, path)
        self.kind = kind

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.path, self.kind))


@dataclass(frozen=True)
class ScanLimits:
    """The per-file limits of a scan (see :func:`fakescope.pipeline.scan.scan_paths`)."""

    batch_size: int = 16
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    video: VideoScanOptions | None = None  # how videos are sampled and summed up (None: defaults)

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_pixels", "max_bytes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class ModelSource:
    """Where a worker loads its model from: a bundled name or a folder, and whether to use ONNX.

    Pickles to its description only: a worker process loads its own copy once. In the process
    that created it, :meth:`load` loads once and keeps the model (an in-process engine and the
    command line, which needs the model before scanning, share that copy).
    """

    name_or_dir: str
    onnx: bool = False
    _model: CalibratedModel | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        name_or_dir: str | Path,
        *,
        onnx: bool = False,
        preloaded: CalibratedModel | None = None,
    ) -> ModelSource:
        """A source whose folder path, if it is one, is absolute: workers may run elsewhere.

        ``preloaded`` is the model this process already loaded from it (with ``onnx``
        applied), used as is by in-process scans instead of loading it a second time.
        """
        from fakescope.models import resolve_model_dir

        resolved = resolve_model_dir(name_or_dir)  # a ModelError now rather than in a worker
        if os.path.isdir(name_or_dir):  # a folder wins over a bundled name, as in load_model
            return cls(os.path.abspath(resolved), onnx=onnx, _model=preloaded)
        return cls(str(name_or_dir), onnx=onnx, _model=preloaded)

    def load(self) -> CalibratedModel:
        """The model for this process, loaded on first use."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def load_in_worker(self) -> CalibratedModel:
        """A model for one worker of many: on one thread (see :func:`limit_threads_to_one`)."""
        return self._load(one_thread=True)

    def _load(self, one_thread: bool = False) -> CalibratedModel:
        from fakescope.models import load_model, resolve_model_dir

        model = load_model(self.name_or_dir)
        if one_thread:  # before ONNX: its runtime reads the thread count when it starts
            limit_threads_to_one(model)
        if self.onnx:
            from fakescope.detectors.onnx_export import use_exported_onnx

            if not use_exported_onnx(model.detector, resolve_model_dir(self.name_or_dir)):
                raise FakescopeError(f"{model.detector.name!r} has no torch network to run in ONNX")
        return model

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}


class Engine(Protocol):
    """What the command line needs from an engine (see :mod:`fakescope.pipeline.engines`)."""

    def scan(self, inputs: Iterable[str]) -> Iterator[ScanResult]:
        """One result per file, in input order, streamed."""
        ...

    def write_parquet(self, inputs: Iterable[str], out: Path) -> int:
        """Write every result to Parquet at ``out``; returns the number of rows."""
        ...

    def close(self) -> None: ...


def detectors_of(detector: Detector) -> list[Detector]:
    """A detector and, for a fusion, its members (as ``onnx_export`` walks them)."""
    members = getattr(detector, "member_detectors_", None) or {}
    return [detector, *members.values()]


def limit_threads_to_one(model: CalibratedModel) -> None:
    """Make a worker use one thread, since the engine runs one worker per core.

    Without this, every worker would start a thread per core for FFTs, BLAS and torch, and N
    workers would fight over N cores with N x N threads. Thread counts do not change results:
    each transform and matrix product is computed the same way on one thread or many.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # BLAS and OpenMP pools already loaded by numpy, scipy, sklearn
    for detector in detectors_of(model.detector):
        if hasattr(detector, "fft_workers"):
            detector.fft_workers = 1  # the spectral detector's scipy.fft workers
        if hasattr(detector, "threads"):
            detector.threads = 1  # torch detectors set it before each forward pass
    if "torch" in sys.modules:  # only when the model loaded it: never import torch for nothing
        sys.modules["torch"].set_num_threads(1)


def decode_at(
    entry: InputEntry, location: str, model: CalibratedModel, limits: ScanLimits
) -> LoadedImage | ScanResult:
    """``decode_entry`` for a file read at ``location`` but reported under ``entry.path``.

    A cluster worker may run in another folder than the command, so it reads each file at its
    absolute path while the row keeps the path as the user gave it, as the local engine's do.
    """
    data = None
    if entry.error is None:
        try:
            data = read_file_bytes(location, max_bytes=limits.max_bytes)
        except InputError as exc:
            return ScanResult.failure(entry.path, exc)
    return decode_entry(
        entry,
        min_side=model.detector.min_image_side,
        max_pixels=limits.max_pixels,
        max_bytes=limits.max_bytes,
        data=data,
        video=limits.video,
    )


def scan_batch(
    entries: Sequence[InputEntry],
    model: CalibratedModel,
    limits: ScanLimits,
    locations: Sequence[str] | None = None,
) -> list[ScanResult]:
    """One result per entry, in order: the serial scan's two stages, for one worker's batch.

    ``locations`` are where to read each file, when that differs from the path to report. An
    error that is not about the input (a bug) becomes that file's ``internal_error`` row
    instead of failing the whole batch, which on a cluster would fail the job.
    """
    decoded: list[LoadedImage | ScanResult] = []
    for index, entry in enumerate(entries):
        try:
            if locations is None:
                item = decode_entry(
                    entry,
                    min_side=model.detector.min_image_side,
                    max_pixels=limits.max_pixels,
                    max_bytes=limits.max_bytes,
                    video=limits.video,
                )
            else:
                item = decode_at(entry, locations[index], model, limits)
        except Exception as exc:  # not an InputError: those are rows already
            error = InternalScanError(f"decoding failed unexpectedly: {exc!r}")
            item = ScanResult.failure(entry.path, error)
        decoded.append(item)
    return score_decoded(decoded, model)
