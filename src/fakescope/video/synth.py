"""Synthetic test videos: real footage in which one random segment of frames is manipulated.

:func:`make_synthetic_video` decodes a real video (or takes a list of frames), prepares every
frame the same way (optional downscale to ``max_side``, crop to a multiple of 8 pixels so that
generators and encoders take it), replaces the frames of one seeded random segment with
manipulated ones, and encodes the result (H.264 by default). The ground truth is written to a
JSON file next to the video (``clip.mp4`` -> ``clip.json``): the segment's first and last frame
(inclusive) and its start and end in seconds, the manipulation and its parameters, the source
and every option needed to make the same file again.

With ``manipulation=None`` the same clip is re-encoded untouched: a *real* video (label 0) with
exactly the compression history of its fake siblings, so a detector cannot tell them apart by
the encoding (the video form of Grommelt et al. 2024's point about JPEG).

Manipulations (:class:`Manipulation`):

- :func:`forgery_manipulation`: a forgery kind of :mod:`fakescope.data.forge` (``splice``,
  ``copymove``, ``inpaint``, ``warp``; OpenCV). Every frame of the segment draws the same
  parameters (one seed per video), so the edited region stays put, as in an edited clip.
- :func:`generator_manipulation`: an image-to-image member of the generator zoo
  (:mod:`fakescope.data.generators`, torch), applied to whole frames: a re-synthesised segment.
- :func:`brighten`: adds a constant; a toy for tests of the plumbing, not a forgery.

Real sources: the clips in ``../shared/data/video`` and Debian's ``opencv-doc`` videos
(:func:`opencv_doc_videos` downloads the package once with ``apt-get download`` and unpacks it
with ``dpkg-deb -x`` into a cache folder, never into the repository).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.jsonable import to_jsonable
from fakescope.video.decode import VideoSource, open_video, require_av

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18  # visually lossless for x264: the manipulation, not the encoder, should show
SEGMENT_FRACTION = (0.2, 0.5)  # share of the clip's frames that are manipulated
FRAME_ALIGN = 8
OPENCV_DOC_PACKAGE = "opencv-doc"
OPENCV_DOC_VIDEO_DIR = "usr/share/doc/opencv-doc/examples/data"
# The encoder each container gets by default (all in PyAV's wheels; WebM takes VP8/VP9 only).
CONTAINER_CODECS = {
    ".mp4": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".webm": "libvpx",
    ".avi": "mpeg4",
}


@dataclass(frozen=True)
class Manipulation:
    """A per-frame edit: ``apply(pixels)`` returns new RGB ``uint8`` pixels of the same shape."""

    name: str
    apply: Callable[[np.ndarray], np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)


def brighten(amount: int = 80) -> Manipulation:
    """Add ``amount`` to every channel (clipped): a plumbing toy whose segment is easy to see."""

    def apply(pixels: np.ndarray) -> np.ndarray:
        return np.clip(pixels.astype(np.int16) + amount, 0, 255).astype(np.uint8)

    return Manipulation("brighten", apply, {"amount": amount})


def forgery_manipulation(
    kind: str, seed: int, donor: np.ndarray | None = None, **options: Any
) -> Manipulation:
    """A forgery kind applied with the same parameters to every frame of the segment.

    ``donor`` is the image pasted from (``splice`` needs one; use a frame of another video).
    Raises :class:`~fakescope.data.forge.base.MissingDependencyError` without OpenCV.
    """
    from fakescope.data.forge import get_forgery

    forgery = get_forgery(kind)
    forgery.ensure_available()
    if forgery.needs_donor and donor is None:
        raise ValueError(f"the {kind!r} forgery needs a donor image")
    recorded: dict[str, Any] = {}

    def apply(pixels: np.ndarray) -> np.ndarray:
        # The same seed for every frame: the same region and parameters all segment long.
        result = forgery.forge(pixels, np.random.default_rng(seed), donor=donor, **options)
        if not recorded:
            recorded.update(result.params)
        return result.pixels

    return Manipulation(f"forge:{kind}", apply, {"kind": kind, "seed": seed, "sampled": recorded})


def generator_manipulation(generator: Any, name: str | None = None) -> Manipulation:
    """A trained image-to-image generator of the zoo (``generate(tiles) -> tiles``) per frame."""
    if getattr(generator, "kind", "image-to-image") != "image-to-image":
        raise ValueError("only image-to-image generators can rewrite frames of a video")
    label = name or str(getattr(generator, "name", type(generator).__name__))
    cache = getattr(generator, "cache", None)

    def apply(pixels: np.ndarray) -> np.ndarray:
        return np.asarray(generator.generate(pixels[None])[0], dtype=np.uint8)

    params: dict[str, Any] = {"generator": label}
    if cache is not None:
        params["fingerprint"] = getattr(cache, "fingerprint", None)
    return Manipulation(f"generator:{label}", apply, params)


@dataclass(frozen=True)
class GroundTruth:
    """What :func:`make_synthetic_video` wrote; saved as JSON next to the video."""

    video: str
    label: int
    fps: float
    frames: int
    width: int
    height: int
    segment_first_frame: int | None
    segment_last_frame: int | None
    manipulation: str | None
    manipulation_params: dict[str, Any]
    source: str
    source_start_frame: int
    seed: int
    codec: str
    crf: int | None  # x264's constant rate factor; None for other encoders
    max_side: int | None

    @property
    def segment_s(self) -> tuple[float, float] | None:
        """The manipulated time span ``[start, end)`` in seconds, None for a real video."""
        if self.segment_first_frame is None or self.segment_last_frame is None:
            return None
        return self.segment_first_frame / self.fps, (self.segment_last_frame + 1) / self.fps

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        span = self.segment_s
        document["segment"] = (
            None
            if span is None
            else {
                "first_frame": self.segment_first_frame,
                "last_frame": self.segment_last_frame,
                "start_s": round(span[0], 6),
                "end_s": round(span[1], 6),
            }
        )
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> GroundTruth:
        return cls(**{name: document[name] for name in cls.__dataclass_fields__})

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> GroundTruth:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def ground_truth_path(video: str | os.PathLike[str]) -> Path:
    """Where the ground truth of ``video`` lives: the same name with ``.json``."""
    return Path(video).with_suffix(".json")


def prepare_frame(pixels: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale so the longer side is at most ``max_side``, then crop to multiples of 8."""
    height, width = pixels.shape[:2]
    if max_side is not None and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(FRAME_ALIGN, round(width * scale)), max(FRAME_ALIGN, round(height * scale)))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
        height, width = pixels.shape[:2]
    keep_h, keep_w = height - height % FRAME_ALIGN, width - width % FRAME_ALIGN
    if keep_h < FRAME_ALIGN or keep_w < FRAME_ALIGN:
        raise ValueError(f"a {width}x{height} frame is too small for a test video")
    top, left = (height - keep_h) // 2, (width - keep_w) // 2
    return np.ascontiguousarray(pixels[top : top + keep_h, left : left + keep_w])


def count_decodable_frames(source: VideoSource) -> int:
    """Frames a decoder actually returns (declared counts lie: AVI files skip empty frames)."""
    with open_video(source) as video:
        return sum(1 for _ in video.frames(None))


def choose_segment(n_frames: int, seed: int, fraction: tuple[float, float]) -> tuple[int, int]:
    """First and last frame (inclusive) of a seeded random segment covering ``fraction``."""
    rng = np.random.default_rng([seed, 0x5E6])
    share = rng.uniform(*fraction)
    length = int(np.clip(round(share * n_frames), 1, n_frames))
    first = int(rng.integers(0, n_frames - length + 1))
    return first, first + length - 1


def _decoded_frames(source: VideoSource, start: int, count: int) -> Iterator[np.ndarray]:
    with open_video(source) as video:
        for number, frame in enumerate(video.frames(None)):
            if number >= start + count:
                break
            if number >= start:
                yield frame.pixels


def make_synthetic_video(
    source: VideoSource | Sequence[np.ndarray],
    out_path: str | os.PathLike[str],
    *,
    seed: int,
    manipulation: Manipulation | None,
    fps: float | None = None,
    start_frame: int = 0,
    n_frames: int | None = None,
    total_frames: int | None = None,
    max_side: int | None = None,
    segment_fraction: tuple[float, float] = SEGMENT_FRACTION,
    codec: str | None = None,
    crf: int = DEFAULT_CRF,
) -> GroundTruth:
    """Write a (partly manipulated) clip of ``source`` to ``out_path`` and its ground truth.

    ``source`` is a video (path or bytes) or a sequence of RGB frames (then ``fps`` is
    required). The clip is ``n_frames`` frames from ``start_frame`` (default: to the end);
    ``total_frames`` saves a counting pass when the caller knows it. The segment is drawn from
    ``seed`` alone, so a real and a fake clip made with the same seed differ only inside it.
    Frames are streamed: one is held at a time.
    """
    av = require_av()
    out = Path(out_path)
    codec = codec or CONTAINER_CODECS.get(out.suffix.lower(), DEFAULT_CODEC)
    video_source: VideoSource | None = None
    frame_source: Sequence[np.ndarray] = ()
    if isinstance(source, str | bytes | os.PathLike):
        video_source = source
        if fps is None:
            with open_video(video_source) as video:
                fps = video.info.fps
        total = total_frames if total_frames is not None else count_decodable_frames(source)
    else:
        frame_source = source
        total = len(frame_source)
    if fps is None or fps <= 0:
        raise ValueError("the frame rate is unknown: pass fps")
    available = total - start_frame
    count = available if n_frames is None else min(n_frames, available)
    if count < 2:
        raise ValueError(f"only {max(count, 0)} frames from frame {start_frame}: too short a clip")
    first, last = choose_segment(count, seed, segment_fraction)
    rate = Fraction(fps).limit_denominator(100_000)
    out.parent.mkdir(parents=True, exist_ok=True)
    written, shape = 0, (0, 0)
    with av.open(str(out), mode="w") as container:
        stream = None
        frames = (
            _decoded_frames(video_source, start_frame, count)
            if video_source is not None
            else (np.asarray(f, dtype=np.uint8) for f in frame_source[start_frame:][:count])
        )
        for number, raw in enumerate(frames):
            pixels = prepare_frame(raw, max_side)
            if stream is None:
                shape = pixels.shape[:2]
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height = shape[1], shape[0]
                stream.pix_fmt = "yuv420p"
                if codec == "libx264":
                    stream.codec_context.options = {"crf": str(crf), "preset": "veryfast"}
                else:
                    stream.codec_context.options = {"qscale": "2"} if codec == "mpeg4" else {}
            if pixels.shape[:2] != shape:
                raise ValueError("the source changes frame size mid-stream")
            if manipulation is not None and first <= number <= last:
                pixels = manipulation.apply(pixels)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = number  # in the encoder's time base, 1 / rate: one tick per frame
            for packet in stream.encode(frame):
                container.mux(packet)
            written += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    if written < 2:
        raise ValueError(f"only {written} frames could be read from the source")
    last = min(last, written - 1)
    truth = GroundTruth(
        video=out.name,
        label=0 if manipulation is None else 1,
        fps=float(rate),
        frames=written,
        width=int(shape[1]),
        height=int(shape[0]),
        segment_first_frame=None if manipulation is None else first,
        segment_last_frame=None if manipulation is None else last,
        manipulation=None if manipulation is None else manipulation.name,
        manipulation_params={} if manipulation is None else to_jsonable(manipulation.params),
        source=_describe_source(video_source),
        source_start_frame=start_frame,
        seed=seed,
        codec=codec,
        crf=crf if codec == "libx264" else None,
        max_side=max_side,
    )
    ground_truth_path(out).write_text(json.dumps(truth.to_dict(), indent=2) + "\n")
    return truth


def _describe_source(source: VideoSource | None) -> str:
    if source is None:
        return "<frames>"
    return "<bytes>" if isinstance(source, bytes) else os.fspath(source)


def video_cache_dir() -> Path:
    """``$FAKESCOPE_CACHE/video-sources`` if the variable is set, else ``~/.cache/...``."""
    root = os.environ.get("FAKESCOPE_CACHE") or "~/.cache/fakescope"
    return Path(root).expanduser() / "video-sources"


def opencv_doc_videos(cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The real videos of Debian's ``opencv-doc`` (``vtest.avi``, ...), fetched once.

    ``apt-get download`` and ``dpkg-deb -x`` into ``cache_dir`` (default
    :func:`video_cache_dir`); nothing is installed. Raises
    :class:`~fakescope.data.sources.SourceError` where those tools are missing.
    """
    from fakescope.data.sources import fetch_debian_package

    root, _version = fetch_debian_package(
        OPENCV_DOC_PACKAGE, Path(cache_dir) if cache_dir else video_cache_dir()
    )
    return sorted((root / OPENCV_DOC_VIDEO_DIR).glob("*.avi"))
