"""Streaming video decoding with PyAV: sampled RGB frames out, one at a time.

Untrusted video in, upright RGB ``uint8`` frames out, never more than one decoded frame held
here (the scanner batches them), so memory does not grow with the length of the video.

**Which frames** (``sampling``, with a budget ``max_frames``):

- ``"uniform"``: ``max_frames`` frames evenly spread over the video. Frame ``i`` of ``N`` is
  the one nearest to frame number ``floor((i + 0.5) * n / N)`` of the ``n`` in the stream (the
  middle of the i-th of N equal slices). When the next pick is far ahead the decoder *seeks*
  (to the keyframe before it) instead of decoding everything in between; "far" is twice the
  longest keyframe interval seen so far (at least 4 s until two keyframes were seen), so a seek
  never lands before frames already decoded by more than one GOP. ``max_frames=None`` decodes
  every frame.
- ``"keyframe"``: only keyframes, skipped at the demuxer: packets that are not keyframes are
  never sent to the decoder, and the decoder is told to drop non-key frames too
  (``skip_frame="NONKEY"``). With a budget, the video is cut into ``max_frames`` equal time
  slices and the first keyframe of each slice is kept, so at most ``max_frames`` are decoded
  and a video with fewer keyframes gives all of them. Keyframes are intra-coded: the cheapest
  frames to decode and the least touched by inter-frame prediction.

Frame times are presentation times in seconds from the start of the stream; ``index`` is the
frame number those times imply at the stream's average rate (exact for constant frame rate).

**Rotation.** Phone videos store pixels sideways with a display matrix; frames are rotated the
way a player shows them (``VideoFrame.rotation``, counter-clockwise degrees), so detectors and
face finders see them upright. Mirroring in the matrix is ignored (rare, and a mirrored frame
is as real or as fake as the original).

**Errors** are :class:`~fakescope.errors.InputError` subclasses with a ``kind``, so one bad
video is one error row: ``no_video_stream`` (e.g. audio only), ``truncated_video`` (the
container's own structure runs past the end of the file), ``corrupt_video`` (anything else that
yields no frame), ``frame_too_large`` and ``video_support_missing`` (PyAV not installed: ``pip
install fakescope[video]``). A file that decodes partly (damaged packets, or cut after its
header so the stream ends early) still gives the frames it has, with a note in
:attr:`VideoReader.warnings`.

Containers are recognised by their bytes (:func:`sniff_video_container`), never by a name:
ISO base media (``ftyp``: MP4, MOV, M4V, 3GP; not HEIF/AVIF images), Matroska/WebM (EBML) and
AVI (``RIFF....AVI``).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, Literal

import numpy as np

from fakescope.errors import InputError, UnreadableInputError

Sampling = Literal["uniform", "keyframe"]
SAMPLING_MODES: tuple[str, ...] = ("uniform", "keyframe")
DEFAULT_MAX_FRAMES = 64
DEFAULT_MAX_FRAME_PIXELS = 100_000_000  # same guard as for images: far above 8K (33 MP)
HEAD_BYTES = 64  # enough for the ftyp brand and the EBML DocType
INSTALL_HINT = "pip install 'fakescope[video]'"

# Seeking replaces decoding only when the gap is clearly longer than a GOP (see module doc).
_ASSUMED_KEYFRAME_INTERVAL_S = 2.0
# A stream that stops this far short of its declared end was cut (or is damaged near its end).
_EARLY_END_TOLERANCE_S = 1.0


class VideoInputError(InputError):
    """A video that cannot be scanned; subclasses say why."""

    kind = "video_error"


class VideoSupportMissingError(VideoInputError):
    """PyAV is not installed, so no video can be decoded here."""

    kind = "video_support_missing"


class NoVideoStreamError(VideoInputError):
    """The container is valid but holds no video stream (an audio-only MP4, for example)."""

    kind = "no_video_stream"


class CorruptVideoError(VideoInputError):
    kind = "corrupt_video"


class TruncatedVideoError(CorruptVideoError):
    kind = "truncated_video"


class FrameTooLargeError(VideoInputError):
    """Frames with more pixels than the limit: a guard against decompression bombs."""

    kind = "frame_too_large"


# -- recognising containers -------------------------------------------------------------------

# ISO base media brands that are still images (HEIF, AVIF), not videos.
_IMAGE_BRANDS = frozenset(
    {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
)
# QuickTime files written before ftyp existed start straight with one of these atoms.
_QUICKTIME_FIRST_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"


def sniff_video_container(head: bytes) -> str | None:
    """``"mp4"``, ``"mov"``, ``"webm"``, ``"mkv"`` or ``"avi"`` from a file's first bytes.

    ``None`` for anything else, images included (``RIFF....WEBP`` is an image, and so are
    HEIF/AVIF files, which share MP4's box structure).
    """
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        return "mov" if brand == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_FIRST_ATOMS:
        return "mov"
    if head.startswith(_EBML_MAGIC):
        return "webm" if b"webm" in head[:HEAD_BYTES] else "mkv"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    return None


def read_head(path: str | os.PathLike[str], size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a file, or ``b""`` when it cannot be read (not our call)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except (OSError, ValueError):
        return b""


def is_video_file(path: str | os.PathLike[str]) -> bool:
    """True when the file's bytes start like a video container we read."""
    return sniff_video_container(read_head(path)) is not None


# -- what a video is ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """The container and its video stream, as declared in the headers.

    ``width`` and ``height`` are the displayed size (after ``rotation``); ``frame_count`` and
    ``duration_s`` are what the container declares or what the rate and duration imply, and
    may be None when the file does not say.
    """

    container: str
    codec: str
    width: int
    height: int
    rotation: int
    fps: float | None
    duration_s: float | None
    frame_count: int | None
    has_audio: bool
    bit_rate: int | None = None

    def to_evidence(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "fps": None if self.fps is None else round(self.fps, 4),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 4),
            "frame_count": self.frame_count,
            "has_audio": self.has_audio,
            "bit_rate": self.bit_rate,
        }


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: upright RGB ``uint8`` (H, W, 3) pixels and where it sits in time."""

    index: int
    time_s: float
    keyframe: bool
    pixels: np.ndarray


VideoSource = str | os.PathLike[str] | bytes


def require_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise VideoSupportMissingError(
            f"video support is not installed; install it with `{INSTALL_HINT}` (PyAV)"
        ) from exc
    return av


# -- the reader ---------------------------------------------------------------------------------


@dataclass
class _Progress:
    """Where decoding stands: what a seek must not undo and what the warnings report."""

    last_time: float | None = None
    keyframe_time: float | None = None  # last keyframe of the current contiguous run
    keyframe_interval: float | None = None  # longest seen between two keyframes of a run
    yielded: int = 0
    bad_packets: int = 0
    stopped_by: str | None = None  # why decoding ended before the stream's end, if it did
    seek_failed: bool = False
    notes: list[str] = field(default_factory=list)


class VideoReader:
    """An open video; iterate :meth:`frames` once, then read :attr:`warnings`.

    Use as a context manager (``with VideoReader(path) as video: ...``) so the container is
    closed even when scanning stops half-way. ``source`` is a path or the file's bytes.
    """

    def __init__(
        self,
        source: VideoSource,
        *,
        path: str | None = None,
        max_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    ) -> None:
        self._av = require_av()
        self.source = source
        if path is None and not isinstance(source, bytes):
            path = os.fspath(source)
        self.path = path
        self.max_pixels = max_pixels
        self._progress = _Progress()
        self._container = self._open()
        try:
            self._stream = self._video_stream()
            self.info = self._read_info()
        except BaseException:
            self._container.close()
            raise

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    @property
    def warnings(self) -> list[str]:
        """What went wrong without stopping the scan: damaged packets, an early end."""
        progress = self._progress
        notes = list(progress.notes)
        if progress.bad_packets:
            notes.append(f"{progress.bad_packets} packets could not be decoded and were skipped")
        if progress.seek_failed:
            notes.append("seeking failed; the rest of the video was decoded sequentially")
        return notes

    # -- opening -----------------------------------------------------------------------------

    def _fresh_input(self) -> str | BinaryIO:
        if isinstance(self.source, bytes):
            return io.BytesIO(self.source)
        return os.fspath(self.source)

    def _open(self) -> Any:
        av = self._av
        try:
            return av.open(self._fresh_input(), mode="r")
        except FileNotFoundError as exc:
            raise UnreadableInputError("no such file", self.path) from exc
        except (IsADirectoryError, PermissionError) as exc:
            raise UnreadableInputError(f"cannot read: {exc.strerror or exc}", self.path) from exc
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise self._damage(f"cannot open the container: {_describe(exc)}") from exc

    def _damage(self, detail: str) -> CorruptVideoError:
        """Truncated when the container's own structure runs past the end, else corrupt."""
        truncated = container_truncated(self.source)
        if truncated:
            return TruncatedVideoError(f"truncated video ({detail})", self.path)
        return CorruptVideoError(f"corrupt video ({detail})", self.path)

    def _video_stream(self) -> Any:
        streams = self._container.streams
        if not streams.video:
            kinds = sorted({stream.type for stream in streams})
            if container_truncated(self.source):
                raise TruncatedVideoError(
                    "truncated video: the container's index is missing, no stream can be read",
                    self.path,
                )
            found = f"only {', '.join(kinds)}" if kinds else "no streams at all"
            raise NoVideoStreamError(f"the file has no video stream ({found})", self.path)
        stream = streams.video[0]
        context = stream.codec_context
        if context is None:  # a stream header cut short, or a codec FFmpeg cannot decode
            raise self._damage("the video stream has no usable decoder")
        width, height = int(context.width or 0), int(context.height or 0)
        if width * height > self.max_pixels:
            raise FrameTooLargeError(
                f"frames of {width}x{height} = {width * height} pixels are over the limit of "
                f"{self.max_pixels} pixels",
                self.path,
            )
        # Let FFmpeg pick slice or frame threads: decoding is the costly part of a video scan.
        stream.thread_type = "AUTO"
        return stream

    def _read_info(self) -> VideoInfo:
        stream = self._stream
        container = self._container
        fps = _positive(stream.average_rate) or _positive(stream.guessed_rate)
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # AV_TIME_BASE
        duration = duration if duration and duration > 0 else None
        frame_count = int(stream.frames) if stream.frames and stream.frames > 0 else None
        if frame_count is None and duration is not None and fps is not None:
            frame_count = max(1, round(duration * fps))
        if fps is None and frame_count and duration:
            fps = frame_count / duration
        # The display matrix is side data of decoded frames in PyAV's reader API, so the
        # rotation is known from the first frame on (see _to_video_frame); 0 until then.
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        kind = sniff_video_container(_head_of(self.source)) or container.format.name
        return VideoInfo(
            container=kind,
            codec=str(stream.codec_context.name),
            width=width,
            height=height,
            rotation=0,
            fps=fps,
            duration_s=duration,
            frame_count=frame_count,
            has_audio=bool(container.streams.audio),
            bit_rate=int(container.bit_rate) if container.bit_rate else None,
        )

    # -- sampling ------------------------------------------------------------------------------

    def frames(
        self, max_frames: int | None = DEFAULT_MAX_FRAMES, sampling: Sampling = "uniform"
    ) -> Iterator[VideoFrame]:
        """Yield the sampled frames in time order (see the module docstring).

        Raises :class:`TruncatedVideoError` or :class:`CorruptVideoError` at the end when not
        a single frame could be decoded.
        """
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be at least 1 (or None for all), got {max_frames}")
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING_MODES)}: {sampling!r}")
        if sampling == "keyframe":
            complete = yield from self._keyframes(max_frames)
        else:
            complete = yield from self._uniform(max_frames)
        self._finish(complete)

    def _finish(self, complete: bool | None) -> None:
        """Raise when nothing was decoded; note an early end. ``complete``: None = cannot tell."""
        progress = self._progress
        if progress.yielded == 0:
            reason = progress.stopped_by or (
                f"all {progress.bad_packets} packets read were damaged"
                if progress.bad_packets
                else "the stream holds no decodable frame"
            )
            raise self._damage(f"no frame could be decoded: {reason}")
        if progress.stopped_by:
            progress.notes.append(f"decoding stopped early: {progress.stopped_by}")
        elif complete is False:
            declared = self.info.duration_s
            reached = progress.last_time or 0.0
            of_declared = f" of a declared {declared:.2f} s" if declared else ""
            progress.notes.append(
                f"the stream ends at {reached:.2f} s{of_declared}: the file looks truncated or "
                "damaged; frames after that point could not be scanned"
            )

    def _plan_uniform(self, max_frames: int | None) -> list[float] | None:
        """Target times for uniform sampling, or None to take every frame."""
        info = self.info
        count, fps = info.frame_count, info.fps
        if max_frames is None:
            return None
        if count is None or fps is None:
            count, fps = self._count_by_demuxing()
            if count is None or fps is None:
                return None  # nothing known about the length: read it all, keep what comes
        if count <= max_frames:
            return None
        picks = [math.floor((i + 0.5) * count / max_frames) for i in range(max_frames)]
        return [pick / fps for pick in picks]

    def _count_by_demuxing(self) -> tuple[int | None, float | None]:
        """Packets and time span of the video stream, read without decoding (headers lacking).

        Reading packets costs I/O only; it is the fallback for streams (some Matroska/WebM
        files) whose headers give neither a frame count nor a duration.
        """
        av = self._av
        count, first, last = 0, None, None
        try:
            with av.open(self._fresh_input(), mode="r") as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue
                    count += 1
                    stamp = packet.pts if packet.pts is not None else packet.dts
                    if stamp is not None:
                        first = stamp if first is None else min(first, stamp)
                        last = stamp if last is None else max(last, stamp)
        except (av.error.FFmpegError, OSError, ValueError):
            pass  # the main pass reports damage; this one only estimates the length
        if count == 0:
            return None, None
        if first is None or last is None or last <= first:
            return count, self.info.fps
        span = float((last - first) * self._stream.time_base)
        return count, (count - 1) / span if count > 1 else self.info.fps

    def _uniform(self, max_frames: int | None) -> Generator[VideoFrame, None, bool | None]:
        """Yield the uniform picks; returns whether the stream reached every planned frame."""
        targets = self._plan_uniform(max_frames)
        if targets is None:
            for frame in self._decoded():
                yield self._to_video_frame(frame)
            return self._reached_declared_end()
        fps = self.info.fps or 25.0
        tolerance = 0.5 / fps
        next_target = 0
        while next_target < len(targets):
            if self._should_seek(targets[next_target]):
                self._seek(targets[next_target] - tolerance)
            jump = False
            for frame in self._decoded():
                time_s = self._time_of(frame)
                if time_s < targets[next_target] - tolerance:
                    continue
                yield self._to_video_frame(frame)
                # One frame answers every target up to its own time (no frame twice).
                while next_target < len(targets) and targets[next_target] - tolerance <= time_s:
                    next_target += 1
                if next_target == len(targets):
                    return True
                if self._should_seek(targets[next_target]):
                    jump = True
                    break
            if not jump:
                break  # the stream ended (or broke off) before every target was reached
        return next_target >= len(targets)

    def _reached_declared_end(self) -> bool | None:
        declared, last = self.info.duration_s, self._progress.last_time
        if declared is None or last is None:
            return None
        frame_time = 1.0 / self.info.fps if self.info.fps else 0.0
        return declared - last <= max(_EARLY_END_TOLERANCE_S, 0.05 * declared) + frame_time

    def _keyframes(self, max_frames: int | None) -> Generator[VideoFrame, None, None]:
        """Yield the first keyframe of each time slice; completeness cannot be judged (None).

        Keyframes may be far apart, so a last keyframe long before the end proves nothing.
        """
        slice_s = None
        if max_frames is not None:
            duration = self.info.duration_s
            if duration is None:
                count, fps = self._count_by_demuxing()
                duration = count / fps if count and fps else None
            if duration is not None:
                slice_s = duration / max_frames
        self._stream.codec_context.skip_frame = "NONKEY"
        for frame in self._decoded(keyframes_only=True, slice_s=slice_s):
            if max_frames is not None and self._progress.yielded >= max_frames:
                break
            yield self._to_video_frame(frame)
        return None

    # -- the decoding loop ---------------------------------------------------------------------

    def _decoded(
        self, *, keyframes_only: bool = False, slice_s: float | None = None
    ) -> Iterator[Any]:
        """Decoded frames from the current position to the end; damage ends it quietly.

        With ``keyframes_only`` the demuxer's non-key packets never reach the decoder, and with
        ``slice_s`` neither do keyframes of a time slice that already gave one.
        """
        av = self._av
        stream = self._stream
        seen_slices: set[int] = set()
        try:
            for packet in self._container.demux(stream):
                if packet.size and keyframes_only:
                    if not packet.is_keyframe:
                        continue
                    if slice_s is not None:
                        slot = self._packet_slot(packet, slice_s)
                        if slot is not None and slot in seen_slices:
                            continue
                        if slot is not None:
                            seen_slices.add(slot)
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    self._progress.bad_packets += 1
                    continue
                for frame in decoded:
                    self._note_keyframe(frame)
                    yield frame
        except (av.error.FFmpegError, OSError) as exc:
            self._progress.stopped_by = f"the container could not be read further ({exc})"

    def _packet_slot(self, packet: Any, slice_s: float) -> int | None:
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None or packet.time_base is None:
            return None
        start = self._stream.start_time or 0
        return int(max(float((stamp - start) * packet.time_base), 0.0) // slice_s)

    def _time_of(self, frame: Any) -> float:
        stamp = frame.pts if frame.pts is not None else frame.dts
        if stamp is None or frame.time_base is None:
            # No timestamp at all (rare raw streams): count frames at the declared rate.
            return self._progress.yielded / (self.info.fps or 25.0)
        start = self._stream.start_time or 0
        return float((stamp - start) * frame.time_base)

    def _note_keyframe(self, frame: Any) -> None:
        progress = self._progress
        time_s = self._time_of(frame)
        if frame.key_frame:
            if progress.keyframe_time is not None and time_s > progress.keyframe_time:
                interval = time_s - progress.keyframe_time
                progress.keyframe_interval = max(progress.keyframe_interval or 0.0, interval)
            progress.keyframe_time = time_s
        progress.last_time = time_s

    def _should_seek(self, target: float) -> bool:
        progress = self._progress
        if progress.seek_failed:
            return False
        interval = progress.keyframe_interval or _ASSUMED_KEYFRAME_INTERVAL_S
        position = progress.last_time if progress.last_time is not None else 0.0
        return target - position > 2 * interval

    def _seek(self, time_s: float) -> None:
        av = self._av
        stream = self._stream
        offset = int(max(time_s, 0.0) / stream.time_base) + (stream.start_time or 0)
        try:
            self._container.seek(offset, stream=stream, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError, ValueError):
            self._progress.seek_failed = True
            return
        # A new contiguous run: intervals must not span the jump.
        self._progress.keyframe_time = None

    def _to_video_frame(self, frame: Any) -> VideoFrame:
        width, height = int(frame.width), int(frame.height)
        if width * height > self.max_pixels:
            raise FrameTooLargeError(
                f"a frame of {width}x{height} pixels is over the limit of {self.max_pixels}",
                self.path,
            )
        try:
            pixels = frame.to_ndarray(format="rgb24")
        except (self._av.error.FFmpegError, ValueError) as exc:  # an odd pixel format
            raise CorruptVideoError(
                f"a decoded frame cannot be converted to RGB: {_describe(exc)}", self.path
            ) from exc
        quarter_turns = round(int(frame.rotation or 0) / 90) % 4
        if quarter_turns:
            pixels = np.ascontiguousarray(np.rot90(pixels, k=quarter_turns))
        if self._progress.yielded == 0 and quarter_turns * 90 != self.info.rotation:
            self.info = replace(
                self.info,
                rotation=quarter_turns * 90,
                width=pixels.shape[1],
                height=pixels.shape[0],
            )
        time_s = self._time_of(frame)
        fps = self.info.fps
        index = round(time_s * fps) if fps else self._progress.yielded
        self._progress.yielded += 1
        return VideoFrame(
            index=int(index), time_s=time_s, keyframe=bool(frame.key_frame), pixels=pixels
        )


# -- helpers ------------------------------------------------------------------------------------


def _positive(rate: Any) -> float | None:
    try:
        value = float(rate) if rate is not None else None
    except (TypeError, ZeroDivisionError):
        return None
    return value if value and value > 0 and math.isfinite(value) else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _head_of(source: VideoSource, size: int = HEAD_BYTES) -> bytes:
    if isinstance(source, bytes):
        return source[:size]
    return read_head(source, size)


def open_video(
    source: VideoSource, *, path: str | None = None, max_pixels: int = DEFAULT_MAX_FRAME_PIXELS
) -> VideoReader:
    """Open a video (a path or its bytes) for sampling; raises a :class:`VideoInputError`."""
    return VideoReader(source, path=path, max_pixels=max_pixels)


# -- telling truncated from corrupt --------------------------------------------------------------


def container_truncated(source: VideoSource) -> bool | None:
    """True when the container's structure needs bytes past the end; None if it cannot tell.

    Only the top level is walked (MP4/MOV boxes, the Matroska segment size, the RIFF size),
    reading a few bytes per box, so it is cheap on large files.
    """
    try:
        if isinstance(source, bytes):
            return _truncated(io.BytesIO(source), len(source))
        with open(source, "rb") as handle:
            return _truncated(handle, os.fstat(handle.fileno()).st_size)
    except (OSError, ValueError):
        return None


def _truncated(handle: BinaryIO, size: int) -> bool | None:
    head = handle.read(HEAD_BYTES)
    kind = sniff_video_container(head)
    if kind in {"mp4", "mov"}:
        return _boxes_truncated(handle, size)
    if kind in {"mkv", "webm"}:
        return _ebml_truncated(head, size)
    if kind == "avi":
        return int.from_bytes(head[4:8], "little") + 8 > size
    return None


def _boxes_truncated(handle: BinaryIO, size: int) -> bool:
    """MP4/MOV: a top-level box that ends past the file, or no ``moov`` box at all."""
    position, seen_moov = 0, False
    while position + 8 <= size:
        handle.seek(position)
        header = handle.read(16)
        box_size = int.from_bytes(header[:4], "big")
        box_type = header[4:8]
        if box_size == 1:  # 64-bit size follows the type
            if len(header) < 16:
                return True
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:  # "to the end of the file"
            box_size = size - position
        if box_size < 8 or not _is_box_type(box_type):
            return False  # garbage, not a cut: corrupt
        seen_moov = seen_moov or box_type == b"moov"
        if position + box_size > size:
            return True
        position += box_size
    return position != size or not seen_moov


def _is_box_type(box_type: bytes) -> bool:
    """Box types are four printable characters (QuickTime also uses the copyright sign)."""
    return len(box_type) == 4 and all(32 <= byte < 127 or byte == 0xA9 for byte in box_type)


def _ebml_truncated(head: bytes, size: int) -> bool | None:
    """Matroska/WebM: the Segment element declares its size; an unknown size cannot tell."""
    try:
        position = 4
        header_size, width = _ebml_vint(head, position)
        position += width + header_size  # past the EBML header element
        if head[position : position + 4] != b"\x18\x53\x80\x67":
            return None  # the segment starts beyond what was read: no cheap answer
        position += 4
        segment_size, width = _ebml_vint(head, position)
    except IndexError:
        return size < HEAD_BYTES
    if segment_size == (1 << (7 * width)) - 1:
        return None  # "unknown size" (live streams): the end is wherever the file ends
    return position + width + segment_size > size


def _ebml_vint(data: bytes, position: int) -> tuple[int, int]:
    """An EBML variable-length integer at ``position``: (value, width in bytes)."""
    first = data[position]
    width = 1
    while width <= 8 and not first & (0x80 >> (width - 1)):
        width += 1
    if width > 8:
        raise IndexError("invalid EBML length")
    value = first & (0xFF >> width)
    for offset in range(1, width):
        value = (value << 8) | data[position + offset]
    return value, width
