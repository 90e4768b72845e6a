"""Stream descriptors: how a video file was written, read without decoding a pixel.

After Güera et al. 2019, "We Need No Pixels: Video Manipulation Detection Using Stream
Descriptors": a camera writes its files in one fixed way (its container brand and box order,
codec profile and level, GOP length, timestamp clock, handler names and tags), and any tool
that re-encodes or edits a file rewrites most of that. The descriptors below are read with PyAV
(demuxing only: packet flags, sizes and timestamps) plus a small ISO-BMFF box parser for
MP4/MOV, whose top-level box order PyAV does not expose. :func:`read_stream_descriptors` gives a
readable dict and a flat numeric vector (:data:`FEATURE_NAMES`); :class:`StreamClassifier` is a
logistic regression over that vector, stored as JSON, that tells camera-original files from
re-encoded or edited ones.

Caveat kept in every report: the classifier only knows the originals and the tools it was
trained on (see :mod:`fakescope.video.stream_dataset`); an unseen camera or editor is out of
distribution, and a descriptor says how a file was *written*, not whether its pixels are real.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fakescope.errors import InputError, ModelError
from fakescope.video.decode import (
    INSTALL_HINT,
    CorruptVideoError,
    NoVideoStreamError,
    TruncatedVideoError,
    VideoInputError,
    VideoSupportMissingError,
)


# -- ISO base media file format (MP4 / MOV / 3GP) boxes --------------------------------------------
@dataclass(frozen=True)
class Box:
    """One top-level box: its four-character type, byte offset and declared size."""

    type: str
    offset: int
    size: int
    uuid: str | None = None  # the 16-byte extended type of a 'uuid' box, as hex


_ISOBMFF_TOP_LEVEL = {
    "ftyp", "moov", "mdat", "free", "skip", "wide", "uuid", "moof", "mfra", "sidx", "styp",
    "meta", "pdin", "pnot", "junk", "prfl", "emsg", "ssix", "beam", "PICT",
}  # fmt: skip


def read_top_level_boxes(stream: BinaryIO, file_size: int) -> list[Box]:
    """The top-level boxes of an ISO-BMFF file, in file order.

    Raises :class:`TruncatedVideoError` when a box declares more bytes than the file holds, and
    `CorruptVideoError` on a size that cannot be a box (smaller than its header).
    """
    boxes: list[Box] = []
    offset = 0
    while offset < file_size:
        stream.seek(offset)
        header = stream.read(8)
        if len(header) < 8:
            raise TruncatedVideoError(
                f"the file ends inside a box header at byte {offset} ({file_size - offset} "
                "bytes left): it is truncated"
            )
        size, raw_type = struct.unpack(">I4s", header)
        box_type = raw_type.decode("latin-1")
        header_size = 8
        if size == 1:  # a 64-bit size follows the type
            large = stream.read(8)
            if len(large) < 8:
                raise TruncatedVideoError(f"the file ends inside the '{box_type}' box header")
            size = struct.unpack(">Q", large)[0]
            header_size = 16
        elif size == 0:  # the box runs to the end of the file
            size = file_size - offset
        uuid = None
        if box_type == "uuid":
            extended = stream.read(16)
            if len(extended) < 16:
                raise TruncatedVideoError("the file ends inside a 'uuid' box header")
            uuid = extended.hex()
        if size < header_size:
            raise CorruptVideoError(
                f"box '{box_type}' at byte {offset} declares {size} bytes, less than its header: "
                "the file is corrupt"
            )
        if offset + size > file_size:
            raise TruncatedVideoError(
                f"box '{box_type}' at byte {offset} declares {size} bytes but the file ends "
                f"after {file_size - offset}: the file is truncated"
            )
        boxes.append(Box(box_type, offset, size, uuid))
        offset += size
    return boxes


def read_child_boxes(stream: BinaryIO, parent: Box) -> list[str]:
    """The types of the direct children of a container box (moov: mvhd, trak, udta, ...)."""
    children: list[str] = []
    header = 16 if parent.size > 0xFFFFFFFF else 8
    offset, end = parent.offset + header, parent.offset + parent.size
    while offset + 8 <= end:
        stream.seek(offset)
        size, raw_type = struct.unpack(">I4s", stream.read(8))
        if size == 1:
            size = struct.unpack(">Q", stream.read(8))[0]
        if size < 8 or offset + size > end:
            break  # a malformed child: keep what was read, PyAV decides if the file is usable
        children.append(raw_type.decode("latin-1"))
        offset += size
    return children


def read_ftyp(stream: BinaryIO, box: Box) -> dict[str, Any]:
    stream.seek(box.offset + 8)
    body = stream.read(min(box.size - 8, 256))
    if len(body) < 8:
        return {"major_brand": "", "minor_version": 0, "compatible_brands": []}
    brands = [body[i : i + 4].decode("latin-1") for i in range(8, len(body) - 3, 4)]
    return {
        "major_brand": body[:4].decode("latin-1"),
        "minor_version": struct.unpack(">I", body[4:8])[0],
        "compatible_brands": brands,
    }


def looks_like_isobmff(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8].decode("latin-1") in _ISOBMFF_TOP_LEVEL


def describe_isobmff(path: Path) -> dict[str, Any]:
    """Box order, brands and moov layout of an MP4/MOV file (empty dict for other formats)."""
    file_size = path.stat().st_size
    with path.open("rb") as stream:
        if not looks_like_isobmff(stream.read(8)):
            return {}
        boxes = read_top_level_boxes(stream, file_size)
        types = [box.type for box in boxes]
        ftyp = next((box for box in boxes if box.type == "ftyp"), None)
        brands = read_ftyp(stream, ftyp) if ftyp else {}
        moov = next((box for box in boxes if box.type == "moov"), None)
        moov_children = read_child_boxes(stream, moov) if moov else []
    if "moov" not in types:
        raise TruncatedVideoError(
            "the MP4/MOV file has no 'moov' box (the index a player needs); a recording that "
            "was cut off before it finished writing looks like this"
        )
    mdat_index = types.index("mdat") if "mdat" in types else len(types)
    return {
        "box_order": types,
        "fast_start": types.index("moov") < mdat_index,
        "uuid_boxes": [box.uuid for box in boxes if box.uuid],
        "moov_children": moov_children,
        "fragmented": "moof" in types,
        **brands,
    }


# -- descriptors ---------------------------------------------------------------------------------
# Categorical values are one-hot encoded over these vocabularies (plus "other").
CONTAINERS = ("mp4", "mov", "matroska", "webm", "avi", "mpegts")
CODECS = ("h264", "hevc", "mpeg4", "msmpeg4", "vp8", "vp9", "av1", "mjpeg", "prores", "mpeg2")
H264_PROFILES = ("baseline", "main", "high", "high10", "high422", "high444")
PIXEL_FORMATS = ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "10bit", "rgb")
BRANDS = ("isom", "mp42", "mp41", "qt", "3gp", "avc1", "iso5", "m4v")
HANDLERS = ("lavf", "android", "apple", "gpac", "none")
AUDIO_CODECS = ("aac", "mp3", "ac3", "opus", "vorbis", "pcm")
ENCODER_SIGNATURES = {
    # Text that encoders leave inside the first keyframe (x264/x265 SEI, libavcodec user data).
    "x264": b"x264 - core",
    "x265": b"x265 (build",
    "lavc": b"Lavc",
    "xvid": b"XviD",
    "divx": b"DivX",
}
_STANDARD_RATES = (
    10.0,
    12.0,
    15.0,
    23.976,
    24.0,
    25.0,
    29.97,
    30.0,
    48.0,
    50.0,
    59.94,
    60.0,
    120.0,
    240.0,
)


def _one_hot(prefix: str, value: str | None, vocabulary: Sequence[str]) -> dict[str, float]:
    hot = {f"{prefix}={item}": float(value == item) for item in vocabulary}
    hot[f"{prefix}=other"] = float(value not in vocabulary)
    return hot


def _stats(values: np.ndarray) -> tuple[float, float, float, float]:
    """mean, coefficient of variation, min, max (zeros for an empty array)."""
    if values.size == 0:
        return 0.0, 0.0, 0.0, 0.0
    mean = float(values.mean())
    cv = float(values.std() / mean) if mean > 0 else 0.0
    return mean, cv, float(values.min()), float(values.max())


def _container_name(format_name: str, path: Path, major_brand: str | None) -> str:
    names = set(format_name.split(","))
    if "mp4" in names or "mov" in names:
        if major_brand is not None and major_brand.strip() == "qt":
            return "mov"
        return "mov" if path.suffix.lower() == ".mov" and not major_brand else "mp4"
    if "matroska" in names:
        return "webm" if path.suffix.lower() == ".webm" else "matroska"
    return next((name for name in CONTAINERS if name in names), format_name)


def _codec_family(name: str) -> str:
    if name.startswith("msmpeg4"):
        return "msmpeg4"
    if name in ("mpeg2video", "mpeg1video"):
        return "mpeg2"
    return name


def _h264_profile(profile: str | None) -> str | None:
    if not profile:
        return None
    text = profile.lower()
    for key, label in (
        ("4:4:4", "high444"),
        ("4:2:2", "high422"),
        ("high 10", "high10"),
        ("high", "high"),
        ("main", "main"),
        ("baseline", "baseline"),
    ):
        if key in text:
            return label
    return text


def _pixel_format_family(pix_fmt: str | None) -> str | None:
    if pix_fmt is None:
        return None
    if "10" in pix_fmt or "12" in pix_fmt:
        return "10bit"
    if pix_fmt.startswith(("rgb", "bgr", "gbr", "argb", "rgba", "bgra", "pal8")):
        return "rgb"
    return pix_fmt


def _brand_family(brand: str | None) -> str | None:
    if brand is None:
        return None
    brand = brand.strip().lower()
    if brand.startswith("3g"):
        return "3gp"
    return brand


def _handler_family(names: Sequence[str]) -> str:
    text = " ".join(names).lower()
    if not text.strip():
        return "none"
    if "videohandler" in text or "soundhandler" in text:
        return "lavf"  # libavformat's default handler names
    if "core media" in text or "apple" in text:
        return "apple"
    if "gpac" in text or "iso media file produced by" in text:
        return "gpac"
    if "videohandle" in text or "soundhandle" in text:
        return "android"  # Android's MediaMuxer / camera stack writes these (no trailing r)
    return "other"


def _nearest_standard_rate(rate: float) -> float:
    return min(abs(rate - standard) / standard for standard in _STANDARD_RATES)


@dataclass
class StreamDescriptors:
    """The readable description of how a file was written, and its numeric feature vector."""

    path: str
    readable: dict[str, Any]
    features: dict[str, float]

    def vector(self) -> np.ndarray:
        """The features in :data:`FEATURE_NAMES` order, float64."""
        return np.array([self.features[name] for name in FEATURE_NAMES], dtype=np.float64)


def read_stream_descriptors(
    path: str | Path, *, max_packets: int = 20_000, signature_bytes: int = 1 << 16
) -> StreamDescriptors:
    """Describe the container and the first video stream of ``path`` without decoding frames.

    At most ``max_packets`` video packets are read for the GOP and timestamp statistics, so a
    long file costs a bounded time. Raises :class:`TruncatedVideoError`,
    :class:`NoVideoStreamError` or another :class:`VideoInputError` (all from
    :mod:`fakescope.video.decode`) with a readable message.
    """
    try:
        import av
    except ImportError as exc:
        raise VideoSupportMissingError(
            f"stream descriptors need PyAV; install it with `{INSTALL_HINT}`", str(path)
        ) from exc
    path = Path(path)
    if not path.is_file():
        raise VideoInputError("no such file", str(path))
    if path.stat().st_size == 0:
        raise VideoInputError("the file is empty", str(path))
    try:
        boxes = describe_isobmff(path)
    except InputError as exc:
        raise type(exc)(exc.message, str(path)) from None
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise CorruptVideoError(f"not a readable video container ({exc})", str(path)) from exc
    with container:
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams}) or ["no streams"]
            raise NoVideoStreamError(
                f"the container has no video stream (it holds: {', '.join(kinds)})", str(path)
            )
        video = container.streams.video[0]
        readable = _describe_container(container, path, boxes)
        readable["video"] = _describe_video_stream(video)
        readable["audio"] = _describe_audio(container)
        try:
            packets = _read_packets(container, video, max_packets, signature_bytes)
        except av.error.FFmpegError as exc:
            raise CorruptVideoError(f"cannot demux the video stream ({exc})", str(path)) from exc
    if packets["count"] == 0:
        raise TruncatedVideoError("the video stream holds no packets", str(path))
    readable["gop"] = packets["gop"]
    readable["timestamps"] = packets["timestamps"]
    readable["encoder_signatures"] = packets["signatures"]
    features = _features(readable, packets)
    return StreamDescriptors(path=str(path), readable=readable, features=features)


def _describe_container(container: Any, path: Path, boxes: dict[str, Any]) -> dict[str, Any]:
    # Matroska writes its tags in capitals (ENCODER), MP4 in lower case: compare them folded.
    metadata = {str(k).lower(): str(v) for k, v in container.metadata.items()}
    major_brand = boxes.get("major_brand", metadata.get("major_brand"))
    stream_tags = [
        {str(k).lower(): str(v) for k, v in stream.metadata.items()} for stream in container.streams
    ]
    handlers = [tags["handler_name"] for tags in stream_tags if "handler_name" in tags]
    encoders = [metadata.get("encoder", "")] + [tags.get("encoder", "") for tags in stream_tags]
    apple_keys = sorted(
        key for tags in [metadata, *stream_tags] for key in tags if key.startswith("com.apple.")
    )
    duration = container.duration / 1_000_000 if container.duration else None
    return {
        "format": container.format.name,
        "container": _container_name(container.format.name, path, boxes.get("major_brand")),
        "file_size": path.stat().st_size,
        "duration_s": duration,
        "bit_rate": container.bit_rate or None,
        "isobmff": boxes,
        "major_brand": major_brand,
        "compatible_brands": boxes.get("compatible_brands", metadata.get("compatible_brands")),
        "encoder": next((e.strip() for e in encoders if e and e.strip()), None),
        "encoder_tag_blank": any(e and not e.strip() for e in encoders),
        "software": metadata.get("software"),
        "handler_names": handlers,
        "apple_keys": apple_keys,
        "creation_time": metadata.get("creation_time"),
        "stream_kinds": [stream.type for stream in container.streams],
    }


def _describe_video_stream(video: Any) -> dict[str, Any]:
    context = video.codec_context
    rate = video.average_rate or video.guessed_rate
    return {
        "codec": context.name,
        "codec_tag": video.codec_tag if hasattr(video, "codec_tag") else None,
        "profile": context.profile,
        "level": context.level if context.level and context.level > 0 else None,
        "pix_fmt": context.pix_fmt,
        "width": context.width,
        "height": context.height,
        "bit_rate": context.bit_rate or None,
        "frame_rate": float(rate) if rate else None,
        "time_base": str(video.time_base) if video.time_base else None,
        "has_b_frames_flag": bool(context.has_b_frames),
        "frames_declared": video.frames or None,
    }


def _describe_audio(container: Any) -> dict[str, Any] | None:
    if not container.streams.audio:
        return None
    audio = container.streams.audio[0]
    context = audio.codec_context
    return {
        "codec": context.name,
        "sample_rate": context.sample_rate,
        "channels": context.channels,
        "bit_rate": context.bit_rate or None,
    }


def _read_packets(
    container: Any, video: Any, max_packets: int, signature_bytes: int
) -> dict[str, Any]:
    pts_values: list[int] = []
    dts_values: list[int] = []
    keyframe_flags: list[bool] = []
    sizes: list[int] = []
    head = bytearray()
    for packet in container.demux(video):
        if packet.size == 0:
            continue  # the demuxer's flush packet
        if len(head) < signature_bytes:
            head += bytes(packet)[: signature_bytes - len(head)]
        pts_values.append(packet.pts if packet.pts is not None else -(1 << 62))
        dts_values.append(packet.dts if packet.dts is not None else -(1 << 62))
        keyframe_flags.append(bool(packet.is_keyframe))
        sizes.append(packet.size)
        if len(sizes) >= max_packets:
            break
    extradata = bytes(video.codec_context.extradata or b"")
    signatures = {
        name: (marker in head or marker in extradata) for name, marker in ENCODER_SIGNATURES.items()
    }
    count = len(sizes)
    key = np.array(keyframe_flags, dtype=bool)
    size = np.array(sizes, dtype=np.float64)
    key_positions = np.flatnonzero(key)
    intervals = np.diff(key_positions).astype(np.float64)
    pts = np.array(pts_values, dtype=np.float64)
    dts = np.array(dts_values, dtype=np.float64)
    valid_pts = pts > -(1 << 61)
    # Reordering: a packet shown before one decoded earlier means B-frames (or a pyramid).
    reordered = 0
    if valid_pts.sum() > 1:
        shown = pts[valid_pts]
        reordered = int((shown < np.maximum.accumulate(shown)).sum())
    time_base = float(video.time_base) if video.time_base else 0.0
    durations = np.diff(np.sort(pts[valid_pts])) * time_base
    durations = durations[durations > 0]
    mean_duration = float(durations.mean()) if durations.size else 0.0
    jitter = float(durations.std() / mean_duration) if mean_duration > 0 else 0.0
    distinct = len(Counter(np.round(durations / mean_duration, 3))) if mean_duration > 0 else 0
    non_key = size[~key]
    key_size = float(size[key].mean()) if key.any() else 0.0
    gop = {
        "packets": count,
        "keyframes": int(key.sum()),
        "keyframe_interval_mean": float(intervals.mean()) if intervals.size else float(count),
        "keyframe_interval_cv": (
            float(intervals.std() / intervals.mean()) if intervals.size else 0.0
        ),
        "keyframe_interval_max": float(intervals.max()) if intervals.size else float(count),
        "reordered_packets": reordered,
        "b_frames": reordered > 0,
        "keyframe_to_delta_size": key_size / float(non_key.mean()) if non_key.size else 1.0,
        "packet_size_cv": float(size.std() / size.mean()) if size.mean() > 0 else 0.0,
    }
    timestamps = {
        "time_base_denominator": Fraction(video.time_base).denominator if video.time_base else 0,
        "frame_duration_s": mean_duration,
        "frame_duration_jitter": jitter,
        "distinct_frame_durations": distinct,
        "variable_frame_rate": jitter > 0.01,
        "first_dts_negative": bool(dts.size and dts[0] < 0 and dts[0] > -(1 << 61)),
        "first_pts": float(pts[0] * time_base) if valid_pts.size and valid_pts[0] else None,
    }
    return {
        "count": count,
        "gop": gop,
        "timestamps": timestamps,
        "signatures": signatures,
        "key_fraction": float(key.mean()) if count else 0.0,
    }


def _log1p(value: float | None) -> float:
    return math.log1p(max(float(value or 0.0), 0.0))


def _features(readable: dict[str, Any], packets: dict[str, Any]) -> dict[str, float]:
    video = readable["video"]
    audio = readable["audio"]
    boxes = readable["isobmff"]
    gop, timestamps = packets["gop"], packets["timestamps"]
    width, height = video["width"] or 0, video["height"] or 0
    rate = video["frame_rate"] or (
        1 / timestamps["frame_duration_s"] if timestamps["frame_duration_s"] else 0.0
    )
    bit_rate = video["bit_rate"] or readable["bit_rate"] or 0
    bits_per_pixel = bit_rate / (width * height * rate) if width and height and rate else 0.0
    brands = boxes.get("compatible_brands") or []
    order = boxes.get("box_order", [])
    moov_children = boxes.get("moov_children", [])
    encoder = (readable["encoder"] or "").lower()
    software = (readable["software"] or "").lower()
    features: dict[str, float] = {}
    features |= _one_hot("container", readable["container"], CONTAINERS)
    features |= {
        "isobmff": float(bool(boxes)),
        "fast_start": float(bool(boxes.get("fast_start"))),
        "top_level_boxes": float(len(order)),
        "free_or_skip_boxes": float(sum(t in ("free", "skip") for t in order)),
        "wide_box": float("wide" in order),
        "uuid_boxes": float(len(boxes.get("uuid_boxes", []))),
        "fragmented": float(bool(boxes.get("fragmented"))),
        "moov_udta": float("udta" in moov_children),
        "moov_meta": float("meta" in moov_children),
        "moov_iods": float("iods" in moov_children),
        "moov_tracks": float(moov_children.count("trak")),
        "compatible_brands": float(len(brands)),
        "minor_version_nonzero": float(bool(boxes.get("minor_version"))),
    }
    features |= _one_hot("brand", _brand_family(readable["major_brand"]), (*BRANDS, None))
    features |= _one_hot("codec", _codec_family(video["codec"]), CODECS)
    profile = _h264_profile(video["profile"]) if video["codec"] == "h264" else None
    features |= _one_hot("h264_profile", profile, (*H264_PROFILES, None))
    features |= _one_hot("pix_fmt", _pixel_format_family(video["pix_fmt"]), PIXEL_FORMATS)
    features |= {
        "level": float(video["level"] or 0) / 10,
        "log_width": _log1p(width),
        "aspect_ratio": width / height if height else 0.0,
        "width_mod16": float(width % 16 != 0),
        "height_mod16": float(height % 16 != 0),
        "log_bits_per_pixel": _log1p(bits_per_pixel * 100),
        "frame_rate_off_standard": min(_nearest_standard_rate(rate), 1.0) if rate else 1.0,
        "log_time_base_denominator": _log1p(timestamps["time_base_denominator"]),
        "time_base_is_90k": float(timestamps["time_base_denominator"] == 90000),
        "frame_duration_jitter": min(timestamps["frame_duration_jitter"], 2.0),
        "log_distinct_frame_durations": _log1p(timestamps["distinct_frame_durations"]),
        "variable_frame_rate": float(timestamps["variable_frame_rate"]),
        "first_dts_negative": float(timestamps["first_dts_negative"]),
        "log_keyframe_interval": _log1p(gop["keyframe_interval_mean"]),
        "keyframe_interval_cv": min(gop["keyframe_interval_cv"], 3.0),
        "single_keyframe": float(gop["keyframes"] <= 1),
        "keyframe_fraction": packets["key_fraction"],
        "b_frames": float(gop["b_frames"]),
        "reordered_fraction": gop["reordered_packets"] / max(gop["packets"], 1),
        "has_b_frames_flag": float(video["has_b_frames_flag"]),
        "log_keyframe_to_delta_size": _log1p(gop["keyframe_to_delta_size"]),
        "packet_size_cv": min(gop["packet_size_cv"], 5.0),
    }
    features |= {
        f"signature_{name}": float(found) for name, found in readable["encoder_signatures"].items()
    }
    features |= _one_hot("handler", _handler_family(readable["handler_names"]), HANDLERS)
    features |= {
        "encoder_tag": float(bool(readable["encoder"])),
        "encoder_tag_blank": float(readable["encoder_tag_blank"]),
        "encoder_lavf": float(encoder.startswith("lavf") or software.startswith("lavf")),
        "software_tag": float(bool(readable["software"])),
        "apple_keys": float(len(readable["apple_keys"])),
        "creation_time": float(bool(readable["creation_time"])),
        "audio": float(audio is not None),
        "extra_streams": float(
            sum(kind not in ("video", "audio") for kind in readable["stream_kinds"])
        ),
        "log_audio_sample_rate": _log1p(audio["sample_rate"]) if audio else 0.0,
        "audio_channels": float(audio["channels"]) if audio else 0.0,
    }
    features |= _one_hot("audio_codec", _audio_family(audio), (*AUDIO_CODECS, None))
    return features


def _audio_family(audio: dict[str, Any] | None) -> str | None:
    if audio is None:
        return None
    name = audio["codec"]
    if name.startswith("pcm_"):
        return "pcm"
    if name.startswith("mp3"):
        return "mp3"
    return name


def _feature_names() -> tuple[str, ...]:
    # The names come from the same code that fills them, run on an empty description, so the
    # two can never disagree.
    readable: dict[str, Any] = {
        "container": None, "isobmff": {}, "major_brand": None, "encoder": None,
        "encoder_tag_blank": False, "software": None, "handler_names": [], "apple_keys": [],
        "creation_time": None, "stream_kinds": [], "bit_rate": None,
        "encoder_signatures": dict.fromkeys(ENCODER_SIGNATURES, False),
        "video": {
            "codec": "", "profile": None, "level": None, "pix_fmt": None, "width": 0,
            "height": 0, "bit_rate": None, "frame_rate": None, "has_b_frames_flag": False,
        },
        "audio": None,
    }  # fmt: skip
    packets: dict[str, Any] = {
        "gop": {
            "packets": 0, "keyframes": 0, "keyframe_interval_mean": 0.0,
            "keyframe_interval_cv": 0.0, "reordered_packets": 0, "b_frames": False,
            "keyframe_to_delta_size": 0.0, "packet_size_cv": 0.0,
        },
        "timestamps": {
            "time_base_denominator": 0, "frame_duration_s": 0.0, "frame_duration_jitter": 0.0,
            "distinct_frame_durations": 0, "variable_frame_rate": False,
            "first_dts_negative": False,
        },
        "key_fraction": 0.0,
    }  # fmt: skip
    return tuple(_features(readable, packets))


FEATURE_NAMES: tuple[str, ...] = _feature_names()

# Features that name the writing software outright. They are the strongest evidence in practice
# and the easiest to forge or strip, so the evaluation also reports a model without them.
TAG_FEATURES = tuple(
    name
    for name in FEATURE_NAMES
    if name.startswith(("signature_", "handler=", "encoder_", "software_tag", "apple_keys"))
)


# -- the classifier ------------------------------------------------------------------------------
CLASSIFIER_FORMAT = "fakescope-stream-classifier/1"


@dataclass
class StreamClassifier:
    """Logistic regression over standardised descriptors: P(re-encoded or edited).

    Stored as one JSON file (feature names, means, scales, coefficients): no pickle, readable,
    and loading checks that the feature names match this version of the reader.
    """

    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    intercept: float
    training: dict[str, Any]

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        *,
        feature_names: Sequence[str] = FEATURE_NAMES,
        regularisation: float = 1.0,
        training: dict[str, Any] | None = None,
    ) -> StreamClassifier:
        """Fit on rows of ``feature_names`` columns; label 1 = re-encoded/edited, 0 = original.

        Classes are weighted to balance: re-encodes of each original outnumber it many times.
        """
        from sklearn.linear_model import LogisticRegression

        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        if features.ndim != 2 or features.shape[1] != len(feature_names):
            raise ValueError(
                f"expected features of shape (n, {len(feature_names)}), got {features.shape}"
            )
        if set(np.unique(labels)) != {0, 1}:
            raise ValueError("training needs both originals (0) and re-encoded files (1)")
        mean = features.mean(axis=0)
        scale = features.std(axis=0)
        scale[scale < 1e-9] = 1.0  # a constant column carries no information; keep it inert
        model = LogisticRegression(C=regularisation, class_weight="balanced", max_iter=5000)
        model.fit((features - mean) / scale, labels)
        return cls(
            feature_names=tuple(feature_names),
            mean=mean,
            scale=scale,
            coefficients=model.coef_[0].astype(np.float64),
            intercept=float(model.intercept_[0]),
            training=dict(training or {}),
        )

    def decision(self, features: np.ndarray) -> np.ndarray:
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        return ((features - self.mean) / self.scale) @ self.coefficients + self.intercept

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """P(re-encoded or edited) for each row."""
        return 1.0 / (1.0 + np.exp(-self.decision(features)))

    def score_descriptors(self, descriptors: StreamDescriptors) -> dict[str, Any]:
        """The probability for one file and the descriptors that pushed it most, both ways."""
        row = np.array([descriptors.features[name] for name in self.feature_names])
        contributions = ((row - self.mean) / self.scale) * self.coefficients
        order = np.argsort(-np.abs(contributions))[:5]
        return {
            "probability_reencoded": round(float(self.predict_proba(row)[0]), 6),
            "top_descriptors": {
                self.feature_names[i]: round(float(contributions[i]), 3) for i in order
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CLASSIFIER_FORMAT,
            "feature_names": list(self.feature_names),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coefficients": self.coefficients.tolist(),
            "intercept": self.intercept,
            "training": self.training,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> StreamClassifier:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the stream classifier {path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != CLASSIFIER_FORMAT:
            raise ModelError(f"{path} is not a {CLASSIFIER_FORMAT} file")
        names = tuple(data["feature_names"])
        if not names or not set(names) <= set(FEATURE_NAMES):
            raise ModelError(
                f"{path} was trained on other stream descriptors than this version of fakescope "
                "reads; retrain it (python -m fakescope.video.stream_dataset)"
            )
        arrays = [np.asarray(data[key], dtype=np.float64) for key in ("mean", "scale")]
        coefficients = np.asarray(data["coefficients"], dtype=np.float64)
        if any(array.shape != (len(names),) for array in (*arrays, coefficients)):
            raise ModelError(f"{path}: arrays do not match the {len(names)} feature names")
        return cls(
            names,
            arrays[0],
            arrays[1],
            coefficients,
            float(data["intercept"]),
            data.get("training", {}),
        )


__all__ = [
    "FEATURE_NAMES",
    "TAG_FEATURES",
    "Box",
    "StreamClassifier",
    "StreamDescriptors",
    "describe_isobmff",
    "read_stream_descriptors",
    "read_top_level_boxes",
]


# -- the bundled classifier and the evidence it gives --------------------------------------------
BUNDLED_CLASSIFIER = "stream-descriptors/classifier.json"


def load_stream_classifier(path: str | Path | None = None) -> StreamClassifier:
    """The classifier at ``path``, or the one bundled with fakescope (see its README)."""
    if path is None:
        from fakescope.models import bundled_models_dir

        path = bundled_models_dir() / BUNDLED_CLASSIFIER
    return StreamClassifier.load(path)


def stream_evidence(path: str | Path, classifier: StreamClassifier | None = None) -> dict[str, Any]:
    """The ``stream`` evidence of a video: how it was written, and P(re-encoded or edited).

    Raises the :mod:`fakescope.video.decode` errors when the file cannot be described. The
    probability is evidence beside the pixel score, never folded into it: a re-encode is not a
    manipulation (every upload platform re-encodes), and the classifier knows only the sources
    and tools it was trained on.
    """
    descriptors = read_stream_descriptors(path)
    readable = descriptors.readable
    video, gop, timestamps = readable["video"], readable["gop"], readable["timestamps"]
    boxes = readable["isobmff"]
    evidence: dict[str, Any] = {
        "container": readable["container"],
        "major_brand": (readable["major_brand"] or "").strip() or None,
        "box_order": boxes.get("box_order"),
        "fast_start": boxes.get("fast_start"),
        "codec": video["codec"],
        "profile": video["profile"],
        "level": video["level"],
        "pix_fmt": video["pix_fmt"],
        "keyframe_interval": round(gop["keyframe_interval_mean"], 2),
        "b_frames": gop["b_frames"],
        "variable_frame_rate": timestamps["variable_frame_rate"],
        "encoder": readable["encoder"] or readable["software"],
        "handler_names": readable["handler_names"],
        "encoder_signatures": sorted(k for k, v in readable["encoder_signatures"].items() if v),
        "audio": (readable["audio"] or {}).get("codec"),
    }
    classifier = classifier or load_stream_classifier()
    evidence.update(classifier.score_descriptors(descriptors))
    evidence["classifier_note"] = (
        "trained on few source videos (see the model's README): a hint about the file's "
        "history, not a verdict on its pixels"
    )
    return evidence
