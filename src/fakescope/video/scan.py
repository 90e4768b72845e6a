"""Scoring videos: sampled frames in batches, one verdict per video, the segments that score fake.

A video is decoded frame by frame (:mod:`fakescope.video.decode`) and scored in batches of
``batch_size`` frames with any :class:`~fakescope.calibration.model.CalibratedModel`, so memory
holds one batch of pixels whatever the length. Only small numbers are kept per frame.

**Video score (aggregation).** ``mean``, ``max`` or ``topk`` (the mean of the ``k`` highest
frame scores, ``k = ceil(top_k_fraction * n)``, at least 1). The default is ``topk`` with a
fraction of 0.25:

- ``mean`` dilutes a manipulation that covers part of a video: a fake segment over a fifth of
  the sampled frames moves the mean by a fifth of its effect. Manipulated videos are often
  partly manipulated (ForgeryNet's temporal task exists for that reason).
- ``max`` lets one frame decide. Frame scores are noisy: with a per-frame false-positive rate
  ``a`` and ``n`` frames that were independent, ``1 - (1 - a)^n`` of real videos would have a
  frame over the threshold (0.96 for a = 0.05, n = 64). Frames of a video are far from
  independent, but compression, motion blur and scene cuts still make single frames spike.
- ``topk`` keeps the full effect of a segment that covers at least a quarter of the sampled
  frames and averages over a quarter of the frames, which smooths single-frame spikes.
  The measured comparison of the three on synthetic videos is in ``docs/video.md``.

**Threshold.** A model's calibration is made on real *images* (a frame-level threshold at a
target false-positive rate). Applied to a video score it does not keep that rate: the video
score of ``topk`` or ``max`` sits above a typical frame's score. So:

- with ``video_calibration`` (a :class:`~fakescope.calibration.threshold.ThresholdCalibration`
  made by :func:`calibrate_video_threshold` from the video scores of held-out *real videos*,
  with the same options), the verdict uses it and the evidence says ``"source": "video"``;
- without one, the frame threshold is applied to the video score and the evidence says
  ``"source": "frame"`` with a note that the video-level false-positive rate is not calibrated.

**Temporal localization.** A sampled frame is *fake* when its own score reaches the model's
frame threshold (a per-frame decision, which the frame calibration does cover). Each scored
frame stands for a cell of time: from half-way to the previous sampled frame to half-way to the
next (on frame centres, so with every frame sampled a cell is exactly one frame long); the first
cell starts at 0 and the last ends at the video's end. A segment is a run of fake frames' cells;
segments closer than ``merge_gap_s`` are merged, then segments with fewer than
``min_segment_frames`` fake frames are dropped (one spiking frame is not a segment).

**Faces.** ``face_cropper`` (``options.face_cropper`` or the argument of :func:`score_frames`)
is a callable from a frame's RGB pixels to a sequence of crops, each with ``.pixels`` (RGB
``uint8``) and optionally ``.box`` (x0, y0, x1, y1) and ``.confidence``. With one, every crop is
scored and a frame's score is its most suspicious face (the maximum, as commercial APIs report);
frames without a usable face get no score and are left out of the aggregate and of segments; a
video without any face is an error row of kind ``no_faces``. Without one, whole frames are
scored.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, Literal, Protocol

import numpy as np

from fakescope.calibration.model import CalibratedModel
from fakescope.calibration.threshold import ThresholdCalibration, calibrate_threshold
from fakescope.errors import ImageTooSmallError, InputError, ScoringError, UnreadableInputError
from fakescope.results import ScanResult, Verdict
from fakescope.video.decode import (
    DEFAULT_MAX_FRAME_PIXELS,
    DEFAULT_MAX_FRAMES,
    SAMPLING_MODES,
    Sampling,
    VideoFrame,
    VideoInfo,
    VideoInputError,
    VideoSource,
    open_video,
)

Aggregate = Literal["mean", "max", "topk"]
AGGREGATES: tuple[str, ...] = ("mean", "max", "topk")
DEFAULT_AGGREGATE: Aggregate = "topk"
DEFAULT_TOP_K_FRACTION = 0.25
# 8 frames of 1080p RGB are 50 MB; detectors add their own working memory per image.
DEFAULT_BATCH_SIZE = 8
SCORE_DIGITS = 6


class NoFacesError(VideoInputError):
    """Face mode found no usable face in any sampled frame, so nothing could be scored."""

    kind = "no_faces"


class FaceCrop(Protocol):
    """What a face cropper returns per face: at least the crop's RGB ``uint8`` pixels."""

    @property
    def pixels(self) -> np.ndarray: ...


FaceCropper = Callable[[np.ndarray], Sequence[FaceCrop]]


@dataclass(frozen=True)
class VideoScanOptions:
    """How a video is sampled, scored and summarised (see the module docstring).

    ``max_frames=None`` scores every frame. ``face_cropper`` is a callable, so options holding
    one travel to other processes only if the callable pickles.
    """

    max_frames: int | None = DEFAULT_MAX_FRAMES
    sampling: Sampling = "uniform"
    aggregate: Aggregate = DEFAULT_AGGREGATE
    top_k_fraction: float = DEFAULT_TOP_K_FRACTION
    batch_size: int = DEFAULT_BATCH_SIZE
    merge_gap_s: float = 1.0
    min_segment_frames: int = 2
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    video_calibration: ThresholdCalibration | None = None
    face_cropper: FaceCropper | None = None

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1 or None, got {self.max_frames}")
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING_MODES)}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}")
        if not 0.0 < self.top_k_fraction <= 1.0:
            raise ValueError(f"top_k_fraction must be in (0, 1], got {self.top_k_fraction}")
        if self.batch_size < 1 or self.min_segment_frames < 1 or self.merge_gap_s < 0:
            raise ValueError("batch_size and min_segment_frames >= 1, merge_gap_s >= 0")


@dataclass(frozen=True)
class FrameScore:
    """One sampled frame's score (None: no face in face mode) and where it sits in time.

    ``evidence`` is the detector's evidence for this frame; the scanner keeps it only for the
    most suspicious frame, so long videos do not pile it up.
    """

    index: int
    time_s: float
    keyframe: bool
    score: float | None
    faces: int | None = None
    face_box: tuple[int, ...] | None = None
    member_scores: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] | None = None

    def to_evidence(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "index": self.index,
            "time_s": round(self.time_s, 4),
            "score": None if self.score is None else round(self.score, SCORE_DIGITS),
            "keyframe": self.keyframe,
        }
        if self.faces is not None:
            row["faces"] = self.faces
            row["face_box"] = None if self.face_box is None else list(self.face_box)
        return row


@dataclass(frozen=True)
class Segment:
    """A stretch of time whose sampled frames score as fake."""

    start_s: float
    end_s: float
    first_index: int
    last_index: int
    frames: int
    peak_score: float
    mean_score: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_evidence(self) -> dict[str, Any]:
        return {
            "start_s": round(self.start_s, 4),
            "end_s": round(self.end_s, 4),
            "first_frame": self.first_index,
            "last_frame": self.last_index,
            "frames": self.frames,
            "peak_score": round(self.peak_score, SCORE_DIGITS),
            "mean_score": round(self.mean_score, SCORE_DIGITS),
        }


# -- scoring frames -----------------------------------------------------------------------------


def score_frames(
    frames: Iterable[VideoFrame],
    model: CalibratedModel,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    face_cropper: FaceCropper | None = None,
) -> Iterator[FrameScore]:
    """Score frames in batches of ``batch_size``, yielding one :class:`FrameScore` per frame.

    Only one batch of frames (and their face crops) is held at a time. With ``face_cropper``,
    each frame's crops are scored and the frame gets its highest crop score (crops smaller than
    the detector's ``min_image_side`` are skipped; no usable crop: score None). Without it the
    whole frame is scored, and a frame smaller than ``min_image_side`` raises
    :class:`~fakescope.errors.ImageTooSmallError`. A model failure raises
    :class:`~fakescope.errors.ScoringError`.
    """
    batch: list[VideoFrame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) >= batch_size:
            yield from _score_batch(batch, model, face_cropper)
            batch = []
    if batch:
        yield from _score_batch(batch, model, face_cropper)


def _score_batch(
    batch: list[VideoFrame], model: CalibratedModel, face_cropper: FaceCropper | None
) -> list[FrameScore]:
    min_side = int(model.detector.min_image_side)
    if face_cropper is None:
        for frame in batch:
            if min(frame.pixels.shape[:2]) < min_side:
                height, width = frame.pixels.shape[:2]
                raise ImageTooSmallError(
                    f"frames are {width}x{height}, smaller than the detector's minimum side "
                    f"{min_side}"
                )
        scores, evidence = _predict(model, [frame.pixels for frame in batch])
        return [
            _frame_score(frame, score, extra)
            for frame, score, extra in zip(batch, scores, evidence, strict=True)
        ]
    crops: list[np.ndarray] = []
    owners: list[int] = []
    boxes: list[tuple[int, ...] | None] = []
    found = [0] * len(batch)
    for position, frame in enumerate(batch):
        try:
            faces = list(face_cropper(frame.pixels))
        except Exception as exc:  # a face finder failing costs this video one row, no more
            raise ScoringError(f"the face cropper failed on frame {frame.index}: {exc}") from exc
        for crop in faces:
            found[position] += 1
            pixels = np.asarray(crop.pixels)
            if pixels.ndim != 3 or min(pixels.shape[:2]) < min_side:
                continue
            crops.append(pixels)
            owners.append(position)
            box = getattr(crop, "box", None)
            boxes.append(None if box is None else tuple(int(v) for v in box))
    scores, evidence = _predict(model, crops) if crops else (np.empty(0), [])
    best: dict[int, int] = {}  # frame position -> index of its most suspicious crop
    for crop_index, owner in enumerate(owners):
        if owner not in best or scores[crop_index] > scores[best[owner]]:
            best[owner] = crop_index
    results = []
    for position, frame in enumerate(batch):
        if position not in best:
            results.append(_frame_score(frame, None, None, faces=found[position]))
            continue
        crop_index = best[position]
        results.append(
            _frame_score(
                frame,
                scores[crop_index],
                evidence[crop_index],
                faces=found[position],
                face_box=boxes[crop_index],
            )
        )
    return results


def _predict(
    model: CalibratedModel, images: list[np.ndarray]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    try:
        scores, evidence = model.detector.predict_with_evidence(images)
    except Exception as exc:  # whatever the model raises costs this video one row, no more
        raise ScoringError(f"the model could not score the frames: {exc}") from exc
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size != len(images) or not np.isfinite(scores).all():
        raise ScoringError("the model produced a missing or non-finite frame score")
    return scores, list(evidence)


def _frame_score(
    frame: VideoFrame,
    score: float | None,
    evidence: dict[str, Any] | None,
    *,
    faces: int | None = None,
    face_box: tuple[int, ...] | None = None,
) -> FrameScore:
    members: dict[str, float] = {}
    if evidence is not None:
        raw = evidence.get("detector_scores")
        if isinstance(raw, dict):
            members = {str(name): float(value) for name, value in raw.items()}
            evidence = {key: value for key, value in evidence.items() if key != "detector_scores"}
    return FrameScore(
        index=frame.index,
        time_s=frame.time_s,
        keyframe=frame.keyframe,
        score=None if score is None else float(score),
        faces=faces,
        face_box=face_box,
        member_scores=members,
        evidence=evidence,
    )


# -- from frames to a video --------------------------------------------------------------------


def top_k_count(n_frames: int, fraction: float = DEFAULT_TOP_K_FRACTION) -> int:
    """How many of ``n_frames`` scores the ``topk`` aggregate averages (at least 1)."""
    return max(1, math.ceil(fraction * n_frames - 1e-9))


def aggregate_scores(
    scores: Sequence[float] | np.ndarray,
    method: Aggregate = DEFAULT_AGGREGATE,
    top_k_fraction: float = DEFAULT_TOP_K_FRACTION,
) -> float:
    """One video score from frame scores: ``mean``, ``max`` or ``topk`` (see module doc)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no frame scores to aggregate")
    if method == "mean":
        return float(values.mean())
    if method == "max":
        return float(values.max())
    if method == "topk":
        k = top_k_count(values.size, top_k_fraction)
        return float(np.sort(values)[-k:].mean())
    raise ValueError(f"unknown aggregate {method!r}; choose from {', '.join(AGGREGATES)}")


def find_segments(
    frames: Sequence[FrameScore],
    threshold: float,
    *,
    duration_s: float | None = None,
    fps: float | None = None,
    merge_gap_s: float = 1.0,
    min_frames: int = 2,
) -> list[Segment]:
    """Time segments whose sampled frames score at or above ``threshold`` (module docstring)."""
    scored = sorted((f for f in frames if f.score is not None), key=lambda f: f.time_s)
    if not scored:
        return []
    frame_s = 1.0 / fps if fps else 0.0
    centres = [f.time_s + frame_s / 2 for f in scored]
    end = scored[-1].time_s + frame_s
    if duration_s is not None:
        end = max(end, duration_s)
    bounds = [0.0, *((a + b) / 2 for a, b in pairwise(centres)), end]
    runs: list[list[int]] = []  # each run: positions in ``scored`` of consecutive fake frames
    for position, frame in enumerate(scored):
        assert frame.score is not None
        if frame.score < threshold:
            continue
        if runs and runs[-1][-1] == position - 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    merged: list[list[int]] = []
    for run in runs:
        if merged and bounds[run[0]] - bounds[merged[-1][-1] + 1] <= merge_gap_s:
            merged[-1].extend(run)
        else:
            merged.append(list(run))
    segments = []
    for positions in merged:
        if len(positions) < min_frames:
            continue
        values = [float(scored[p].score or 0.0) for p in positions]
        segments.append(
            Segment(
                start_s=bounds[positions[0]],
                end_s=bounds[positions[-1] + 1],
                first_index=scored[positions[0]].index,
                last_index=scored[positions[-1]].index,
                frames=len(positions),
                peak_score=max(values),
                mean_score=float(np.mean(values)),
            )
        )
    return segments


def calibrate_video_threshold(
    real_video_scores: Sequence[float] | np.ndarray,
    target_fpr: float = 0.05,
    review_fpr: float = 0.20,
) -> ThresholdCalibration:
    """A video-level threshold from the video scores of held-out real videos.

    The scores must come from the same model and the same :class:`VideoScanOptions` (sampling,
    budget, aggregate) as the scans the threshold will judge. Few videos cannot resolve a low
    FPR; the calibration's ``warnings`` say so.
    """
    return calibrate_threshold(np.asarray(real_video_scores), target_fpr, review_fpr)


@dataclass
class VideoReport:
    """Everything a video scan found; :meth:`to_result` makes the scan's row."""

    info: VideoInfo
    options: VideoScanOptions
    frames: list[FrameScore]
    score: float
    verdict: Verdict
    aggregates: dict[str, float]
    member_scores: dict[str, float]
    segments: list[Segment]
    threshold: dict[str, Any]
    frame_threshold: float
    peak: FrameScore
    warnings: list[str]

    def to_evidence(self) -> dict[str, Any]:
        options = self.options
        scored = [f for f in self.frames if f.score is not None]
        video: dict[str, Any] = {
            **self.info.to_evidence(),
            "sampling": options.sampling,
            "max_frames": options.max_frames,
            "frames_sampled": len(self.frames),
            "frames_scored": len(scored),
            "frames_fake": sum(1 for f in scored if (f.score or 0.0) >= self.frame_threshold),
            "aggregate": options.aggregate,
            "top_k": top_k_count(len(scored), options.top_k_fraction)
            if options.aggregate == "topk"
            else None,
            "aggregates": {k: round(v, SCORE_DIGITS) for k, v in self.aggregates.items()},
            "threshold": self.threshold,
            "segments": [segment.to_evidence() for segment in self.segments],
            "peak_frame": {**self.peak.to_evidence(), "evidence": self.peak.evidence or {}},
            "frames": [frame.to_evidence() for frame in self.frames],
            "warnings": self.warnings,
        }
        if options.face_cropper is not None:
            video["faces"] = True
        return {
            "format": self.info.container.upper(),
            "width": self.info.width,
            "height": self.info.height,
            "video": video,
        }

    def to_result(self, path: str, sha256: str | None, detector_name: str) -> ScanResult:
        detectors = {detector_name: round(self.score, SCORE_DIGITS)}
        for name, value in self.member_scores.items():
            detectors.setdefault(name, round(value, SCORE_DIGITS))
        return ScanResult(
            path=path,
            sha256=sha256,
            score=round(self.score, SCORE_DIGITS),
            verdict=self.verdict,
            detectors=detectors,
            evidence=self.to_evidence(),
        )


def analyze_video(
    source: VideoSource,
    model: CalibratedModel,
    options: VideoScanOptions | None = None,
    *,
    path: str | None = None,
) -> VideoReport:
    """Sample, score and summarise one video; raises InputError/ScoringError subclasses."""
    options = options or VideoScanOptions()
    with open_video(source, path=path, max_pixels=options.max_frame_pixels) as video:
        frames: list[FrameScore] = []
        peak: FrameScore | None = None
        stream = video.frames(options.max_frames, options.sampling)
        for frame in score_frames(
            stream, model, batch_size=options.batch_size, face_cropper=options.face_cropper
        ):
            if frame.score is not None and (
                peak is None or peak.score is None or frame.score > peak.score
            ):
                peak = frame
            # Evidence is kept for the peak only: per-frame evidence would grow with length.
            frames.append(replace(frame, evidence=None))
        info, notes = video.info, video.warnings
    if peak is None:
        raise NoFacesError(
            f"no usable face in any of the {len(frames)} sampled frames "
            "(face mode scores faces only)",
            path,
        )
    return summarise(frames, peak, info, model, options, notes)


def summarise(
    frames: list[FrameScore],
    peak: FrameScore,
    info: VideoInfo,
    model: CalibratedModel,
    options: VideoScanOptions,
    warnings: list[str] | None = None,
) -> VideoReport:
    """Aggregate scored frames into a :class:`VideoReport` (verdict, segments, threshold)."""
    scores = [f.score for f in frames if f.score is not None]
    aggregates = {m: aggregate_scores(scores, m, options.top_k_fraction) for m in AGGREGATES}
    score = aggregates[options.aggregate]
    member_scores = _aggregate_members(frames, options)
    frame_calibration = model.calibration
    calibration = options.video_calibration or frame_calibration
    threshold = {
        "source": "video" if options.video_calibration is not None else "frame",
        "threshold": round(calibration.threshold, SCORE_DIGITS),
        "review_threshold": round(calibration.review_threshold, SCORE_DIGITS),
        "target_fpr": calibration.target_fpr,
        "n_calibration": calibration.n_calibration,
        "frame_threshold": round(frame_calibration.threshold, SCORE_DIGITS),
    }
    if options.video_calibration is None:
        threshold["note"] = (
            "the frame-level threshold is applied to the video score; the video-level "
            "false-positive rate is not calibrated (docs/video.md)"
        )
    segments = find_segments(
        frames,
        frame_calibration.threshold,
        duration_s=info.duration_s,
        fps=info.fps,
        merge_gap_s=options.merge_gap_s,
        min_frames=options.min_segment_frames,
    )
    return VideoReport(
        info=info,
        options=options,
        frames=frames,
        score=score,
        verdict=calibration.verdict(score),
        aggregates=aggregates,
        member_scores=member_scores,
        segments=segments,
        threshold=threshold,
        frame_threshold=frame_calibration.threshold,
        peak=peak,
        warnings=list(warnings or []),
    )


def _aggregate_members(frames: list[FrameScore], options: VideoScanOptions) -> dict[str, float]:
    """A fusion's members, each aggregated like the model's own score, so users see who fired."""
    by_member: dict[str, list[float]] = {}
    for frame in frames:
        for name, value in frame.member_scores.items():
            by_member.setdefault(name, []).append(value)
    return {
        name: aggregate_scores(values, options.aggregate, options.top_k_fraction)
        for name, values in by_member.items()
    }


def file_sha256(source: VideoSource) -> str:
    """SHA-256 of a video's bytes, read in chunks (a long video is never held in memory)."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    with open(source, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def scan_video(
    source: VideoSource,
    model: CalibratedModel,
    options: VideoScanOptions | None = None,
    *,
    path: str | None = None,
) -> ScanResult:
    """One :class:`~fakescope.results.ScanResult` for one video; failures become error rows.

    ``source`` is a path or the file's bytes (``path`` then names it in the row).
    """
    if path is None:
        path = "" if isinstance(source, bytes) else os.fspath(source)
    digest: str | None = None
    try:
        try:
            digest = file_sha256(source)
        except OSError as exc:
            raise UnreadableInputError(f"cannot read: {exc.strerror or exc}", path) from exc
        report = analyze_video(source, model, options, path=path)
    except (InputError, ScoringError) as exc:
        return ScanResult.failure(path, exc, sha256=digest)
    result = report.to_result(path, digest, model.detector.name)
    result.evidence["stream"] = container_evidence(source)
    return result


def container_evidence(source: VideoSource) -> dict[str, Any]:
    """How the file was written (Güera et al.'s stream descriptors), reported beside the pixels.

    A hint, never part of the score or verdict (see :func:`stream_evidence`); a file that cannot
    be described gets an ``error`` entry here and nothing else changes.
    """
    from fakescope.video.stream_descriptors import stream_evidence

    if isinstance(source, bytes):
        return {"error": "stream descriptors are read from a file path, not from memory"}
    try:
        return stream_evidence(source)
    except Exception as exc:  # one reader failing must never cost the video's row
        return {"error": f"{type(exc).__name__}: {exc}"}
