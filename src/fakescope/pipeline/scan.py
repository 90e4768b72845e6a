"""Scanning: files in, one :class:`~fakescope.results.ScanResult` per file out, streamed.

Files are decoded and scored in small batches, so memory holds one batch of pixels at a time.
A file that fails to decode becomes an error row. If a batch fails inside the model, its images
are scored one by one so that only the image at fault gets an error row.

Videos (recognised by their bytes: MP4/MOV, Matroska/WebM, AVI) leave stage 1 as a
:class:`PendingVideo` and are decoded and scored together in stage 2 by
:func:`fakescope.video.scan.scan_video`, frame batch by frame batch, into one row each; their
sampling and aggregation come from ``video`` (:class:`~fakescope.video.scan.VideoScanOptions`).
A video read from its path is streamed, so ``max_bytes`` applies to it only when its bytes are
handed over in memory (``data``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

import numpy as np

from fakescope.calibration.model import CalibratedModel
from fakescope.errors import FileTooLargeError, InputError, ScoringError
from fakescope.evidence import collect_evidence, file_summary
from fakescope.evidence.rules import decide
from fakescope.io.discover import InputEntry, iter_input_files
from fakescope.io.image import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    decode_image_bytes,
    read_file_bytes,
    require_min_side,
)
from fakescope.results import ScanResult
from fakescope.video.decode import HEAD_BYTES, read_head, sniff_video_container
from fakescope.video.scan import VideoScanOptions, scan_video


@dataclass(frozen=True)
class PendingVideo:
    """Stage 1's answer for a video: scanned in stage 2, where decoding and scoring interleave."""

    path: str
    data: bytes | None = None
    options: VideoScanOptions | None = None


def scan_paths(
    inputs: Iterable[str],
    model: CalibratedModel,
    *,
    batch_size: int = 16,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    video: VideoScanOptions | None = None,
) -> Iterator[ScanResult]:
    """Scan files and folders lazily, yielding results in input order (one process)."""
    entries = iter_input_files(inputs)
    while batch := list(islice(entries, batch_size)):
        yield from scan_entries(
            batch, model, max_pixels=max_pixels, max_bytes=max_bytes, video=video
        )


def scan_entries(
    batch: list[InputEntry],
    model: CalibratedModel,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    video: VideoScanOptions | None = None,
) -> list[ScanResult]:
    """One result per entry, in order: decode each (stage 1), then score them together (2)."""
    decoded = [
        decode_entry(
            entry,
            min_side=model.detector.min_image_side,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            video=video,
        )
        for entry in batch
    ]
    return score_decoded(decoded, model)


def decode_entry(
    entry: InputEntry,
    *,
    min_side: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    data: bytes | None = None,
    video: VideoScanOptions | None = None,
) -> LoadedImage | PendingVideo | ScanResult:
    """Stage 1: the decoded image, or the error row of a file that cannot be scanned.

    ``data`` is the file's bytes when they were read elsewhere (a cluster engine reads files
    in its own tasks); otherwise the file is read from ``entry.path``. A video is only
    recognised here (a :class:`PendingVideo`, carrying ``video``); stage 2 scans it.
    """
    if entry.error is not None:
        return ScanResult.failure(entry.path, entry.error)
    head = data[:HEAD_BYTES] if data is not None else read_head(entry.path)
    if sniff_video_container(head) is not None:
        if data is not None and len(data) > max_bytes:
            error = FileTooLargeError(f"file is over the limit of {max_bytes} bytes", entry.path)
            return ScanResult.failure(entry.path, error)
        return PendingVideo(entry.path, data, video)
    try:
        if data is None:
            data = read_file_bytes(entry.path, max_bytes=max_bytes)
        elif len(data) > max_bytes:
            raise FileTooLargeError(f"file is over the limit of {max_bytes} bytes", entry.path)
        image = decode_image_bytes(data, path=entry.path, max_pixels=max_pixels)
        require_min_side(image, min_side)
    except InputError as exc:
        return ScanResult.failure(entry.path, exc)
    # The evidence readers need the file's bytes, which are in memory only here.
    return replace(image, evidence=collect_evidence(data, image))


def score_decoded(
    decoded: Sequence[LoadedImage | PendingVideo | ScanResult], model: CalibratedModel
) -> list[ScanResult]:
    """Stage 2: score the decoded images of a batch together; error rows pass through.

    Each video is scanned on its own (its frames are the batch), one row per video.
    """
    results: list[ScanResult | None] = []
    loaded: list[tuple[int, LoadedImage]] = []
    for item in decoded:
        if isinstance(item, ScanResult):
            results.append(item)
            continue
        if isinstance(item, PendingVideo):
            source = item.data if item.data is not None else item.path
            results.append(scan_video(source, model, item.options, path=item.path))
            continue
        loaded.append((len(results), item))
        results.append(None)
    for position, result in _score(loaded, model):
        results[position] = result
    return [r for r in results if r is not None]


def _score(
    loaded: list[tuple[int, LoadedImage]], model: CalibratedModel
) -> list[tuple[int, ScanResult]]:
    if not loaded:
        return []
    try:
        return _score_together(loaded, model)
    except Exception as exc:  # any model failure must cost one row, never the batch
        if len(loaded) > 1:
            return [pair for item in loaded for pair in _score([item], model)]
        position, image = loaded[0]
        error = ScoringError(f"the model could not score this image: {exc}")
        return [(position, ScanResult.failure(image.path or "", error, sha256=image.sha256))]


def _score_together(
    loaded: list[tuple[int, LoadedImage]], model: CalibratedModel
) -> list[tuple[int, ScanResult]]:
    scores, evidence = model.detector.predict_with_evidence([img.pixels for _, img in loaded])
    if not np.isfinite(scores).all():
        raise ScoringError("the model produced a non-finite score")
    verdicts = model.verdicts(scores)
    name = model.detector.name
    rows = []
    for (position, image), score, verdict, extra in zip(
        loaded, scores, verdicts, evidence, strict=True
    ):
        detectors, extra = detector_scores(name, float(score), extra)
        # Evidence by reader, the detector's own under "detector"; the score stays the model's
        # and only the verdict may come from an evidence rule (fakescope.evidence.rules).
        readers = image.evidence or {"file": file_summary(image.metadata)}
        evidence = {**readers, "detector": extra}
        decision = decide(verdict, evidence)
        evidence["rule"] = decision.to_evidence(verdict)
        rows.append(
            (
                position,
                ScanResult(
                    path=image.path or "",
                    sha256=image.sha256,
                    score=round(float(score), 6),
                    verdict=decision.verdict,
                    detectors=detectors,
                    evidence=evidence,
                    decided_by=decision.decided_by,
                ),
            )
        )
    return rows


def detector_scores(
    name: str, score: float, evidence: dict[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    """The per-detector scores of one image, and its evidence without them.

    A model made of several detectors (a fusion) reports each member's score in its evidence
    under ``detector_scores``; they move to ``ScanResult.detectors``, next to the model's own
    score under the detector's name, so a user sees which member fired. The model's own score
    wins a name clash: it is the one the verdict is based on.
    """
    detectors = {name: round(score, 6)}
    members = evidence.get("detector_scores")
    if not isinstance(members, dict):
        return detectors, evidence
    for member, member_score in members.items():
        detectors.setdefault(str(member), round(float(member_score), 6))
    return detectors, {key: value for key, value in evidence.items() if key != "detector_scores"}
