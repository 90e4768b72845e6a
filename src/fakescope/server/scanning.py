"""Scanning for the server: the CLI's two pipeline stages, the case database around them.

A content the database already holds (same SHA-256, same model, not an error worth retrying)
is answered from there; everything else is decoded and scored in one batch with
:func:`~fakescope.pipeline.scan.decode_entry` and :func:`~fakescope.pipeline.scan.score_decoded`,
so a server result is exactly what ``fakescope scan`` gives for the same file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fakescope.calibration.model import CalibratedModel
from fakescope.errors import InputError, UnreadableInputError
from fakescope.io.discover import InputEntry
from fakescope.io.image import LoadedImage, read_file_bytes
from fakescope.pipeline.scan import decode_entry, score_decoded
from fakescope.results import ScanResult
from fakescope.server.uploads import MediaKind, sniff_media_kind
from fakescope.store.db import RETRY_ERROR_KINDS, CaseStore, Sighting
from fakescope.video.decode import HEAD_BYTES

#: Reads a video file and scores it: (path on disk, name for the result, model) -> result.
VideoScanner = Callable[[Path, str, CalibratedModel], ScanResult]


class VideoUnsupportedError(InputError):
    kind = "video_unsupported"


@dataclass(frozen=True)
class ScanItem:
    """One file of a request. ``path`` is where its bytes are (an upload kept under its
    SHA-256, or an allowed server-side file); ``error`` is set when it was refused on arrival."""

    name: str
    path: Path | None
    sha256: str | None = None
    kind: MediaKind = "image"
    error: InputError | None = None
    sighting: Sighting | None = None


def find_video_scanner() -> VideoScanner | None:
    """The video pipeline (:func:`fakescope.video.scan.scan_video`), None if it cannot load.

    Without PyAV it still loads, and each video gets its error row saying how to install it.
    """
    try:
        from fakescope.video.scan import scan_video
    except ImportError:
        return None

    def scan(path: Path, name: str, model: CalibratedModel) -> ScanResult:
        return scan_video(path, model, path=name)

    return scan


class Scanner:
    """Scores batches of :class:`ScanItem` with one model and records every result."""

    def __init__(
        self,
        model: CalibratedModel,
        store: CaseStore,
        *,
        max_pixels: int,
        max_file_bytes: int,
        video_scanner: VideoScanner | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.max_pixels = max_pixels
        self.max_file_bytes = max_file_bytes
        self.video_scanner = video_scanner

    @property
    def model_name(self) -> str:
        return self.model.name

    def scan_batch(self, items: Sequence[ScanItem], rescan: bool = False) -> list[ScanResult]:
        """One result per item, in order; a bad item costs its own row only."""
        results: list[ScanResult | None] = [None] * len(items)
        to_record: list[tuple[ScanResult, Sighting | None]] = []
        seen_again: list[tuple[str, Sighting]] = []
        pending: list[tuple[int, ScanItem, LoadedImage | ScanResult]] = []
        for index, item in enumerate(items):
            if item.error is not None:
                results[index] = ScanResult.failure(item.name, item.error, sha256=item.sha256)
                to_record.append((results[index], item.sighting))
                continue
            data: bytes | None = None
            sha256 = item.sha256
            kind = item.kind
            if sha256 is None:  # a server-side path: its bytes give its key and its kind
                try:
                    data = read_file_bytes(item.path or item.name, max_bytes=self.max_file_bytes)
                except InputError as exc:
                    results[index] = ScanResult.failure(item.name, exc)
                    continue
                sha256 = hashlib.sha256(data).hexdigest()
                kind = sniff_media_kind(data[:HEAD_BYTES])
            cached = None if rescan else self._known(sha256)
            if cached is not None:
                results[index] = replace(cached, path=item.name)
                if item.sighting is not None:
                    seen_again.append((sha256, item.sighting))
                continue
            if kind == "video":
                result = self._scan_video(item)
                results[index] = result
                to_record.append((result, item.sighting))
                continue
            if data is None:
                try:
                    data = read_file_bytes(item.path or item.name, max_bytes=self.max_file_bytes)
                except InputError as exc:
                    results[index] = ScanResult.failure(item.name, exc, sha256=sha256)
                    to_record.append((results[index], item.sighting))
                    continue
            decoded = decode_entry(
                InputEntry(item.name),
                min_side=self.model.detector.min_image_side,
                max_pixels=self.max_pixels,
                max_bytes=self.max_file_bytes,
                data=data,
            )
            del data
            pending.append((index, replace(item, sha256=sha256), decoded))
        scored = score_decoded([decoded for _, _, decoded in pending], self.model)
        for (index, item, _), result in zip(pending, scored, strict=True):
            if result.sha256 is None:  # undecodable: the bytes still have a key
                result.sha256 = item.sha256
            results[index] = result
            to_record.append((result, item.sighting))
        self.store.record(to_record, self.model_name)
        self.store.record_sightings(seen_again)
        return [result for result in results if result is not None]

    def _known(self, sha256: str) -> ScanResult | None:
        stored = self.store.get(sha256)
        if stored is None or stored.model != self.model_name:
            return None
        if stored.result.error_kind in RETRY_ERROR_KINDS:
            return None
        return stored.result

    def _scan_video(self, item: ScanItem) -> ScanResult:
        if self.video_scanner is None or item.path is None:
            error = VideoUnsupportedError(
                "this is a video, and video scanning is not available on this server "
                "(install fakescope's video extra)"
            )
            return ScanResult.failure(item.name, error, sha256=item.sha256)
        try:
            result = self.video_scanner(item.path, item.name, self.model)
        except InputError as exc:
            return ScanResult.failure(item.name, exc, sha256=item.sha256)
        except Exception as exc:  # one bad video must cost its own row, never the batch
            error = UnreadableInputError(f"the video could not be scanned: {exc}")
            return ScanResult.failure(item.name, error, sha256=item.sha256)
        if result.sha256 is None:
            result.sha256 = item.sha256
        result.path = item.name
        return result


def path_is_allowed(path: str, roots: Sequence[Path]) -> bool:
    """True when ``path``, with every symlink resolved, lies inside one of ``roots``."""
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return False
    for root in roots:
        resolved = Path(os.path.realpath(root))
        if real == resolved or resolved in real.parents:
            return True
    return False


def model_summary(model: CalibratedModel) -> dict[str, Any]:
    calibration = model.calibration
    return {
        "name": model.name,
        "detector": model.detector.name,
        "threshold": calibration.threshold,
        "review_threshold": calibration.review_threshold,
        "target_fpr": calibration.target_fpr,
        "review_fpr": calibration.review_fpr,
        "n_calibration": calibration.n_calibration,
    }
