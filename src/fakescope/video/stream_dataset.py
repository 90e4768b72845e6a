"""Training data and grouped evaluation for the stream-descriptor classifier.

Güera et al. (2019) train on originals and on the same originals run through editing and
transcoding tools. We have no camera library, so the data are built from whatever real videos
are at hand (``../shared/data/video``, the videos of Debian's ``opencv-doc``): each source as
shipped is an **original** (label 0), and every file PyAV writes from it with one of
:data:`RECIPES` (libx264/x265 presets and CRFs, MPEG-4 Part 2, VP8/VP9, MJPEG, ProRes, other
GOPs, remuxes to MKV/MOV/MP4, lossless and re-encoded trims, a tag-stripping "bit-exact"
export) is **re-encoded or edited** (label 1).

Be honest about what "original" means here: the files as shipped. Some of them were themselves
written by ffmpeg (``cockatoo.mp4`` carries Lavf56 and x264 tags), so the label is "the file
as distributed", not "straight out of a camera". Evaluation is grouped by source video (a
source's re-encodes are never on both sides of a split), and with a handful of sources every
number has a wide interval: the report says how many groups it rests on.

Run: ``python -m fakescope.video.stream_dataset --source ../shared/data/video --opencv-doc
--out DATA_DIR --report report.json --model classifier.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.video.decode import VideoInputError
from fakescope.video.stream_descriptors import (
    FEATURE_NAMES,
    TAG_FEATURES,
    StreamClassifier,
    read_stream_descriptors,
)

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".3gp")
MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = ("path", "source", "recipe", "label")


@dataclass(frozen=True)
class Recipe:
    """One way a tool may rewrite a video: codec settings, container, and what it keeps.

    ``codec=None`` copies the video packets (a remux or a lossless cut). ``crf_jitter`` lets the
    seeded generator vary the quality per source, as users do. ``trim`` = (start, length) as
    fractions of the duration. ``audio``: "copy", an encoder name, or None to drop it.
    """

    name: str
    container: str  # libavformat muxer name
    suffix: str
    codec: str | None
    options: dict[str, str] = field(default_factory=dict)
    pix_fmt: str = "yuv420p"
    gop: int | None = None
    max_b_frames: int | None = None
    scale: float = 1.0
    audio: str | None = "copy"
    container_options: dict[str, str] = field(default_factory=dict)
    trim: tuple[float, float] | None = None
    crf_jitter: int = 0
    strip_metadata: bool = False


RECIPES: tuple[Recipe, ...] = (
    # ffmpeg's defaults (libx264 medium, CRF 23) and the usual quality/speed variants.
    Recipe("x264-medium-crf23", "mp4", ".mp4", "libx264", {"preset": "medium", "crf": "23"},
           audio="aac", crf_jitter=2),
    Recipe("x264-ultrafast-crf28", "mp4", ".mp4", "libx264",
           {"preset": "ultrafast", "crf": "28"}, audio="aac", crf_jitter=2),
    Recipe("x264-slow-crf18-faststart", "mp4", ".mp4", "libx264", {"preset": "slow", "crf": "18"},
           audio="aac", container_options={"movflags": "faststart"}, crf_jitter=2),
    Recipe("x264-gop12", "mp4", ".mp4", "libx264", {"preset": "veryfast", "crf": "23"}, gop=12,
           audio="aac"),
    Recipe("x264-baseline-nob", "mp4", ".mp4", "libx264",
           {"preset": "fast", "crf": "23", "profile": "baseline"}, max_b_frames=0, audio="aac"),
    Recipe("x264-yuv444", "mp4", ".mp4", "libx264", {"preset": "fast", "crf": "20"},
           pix_fmt="yuv444p", audio="copy"),
    Recipe("x264-half-scale", "mp4", ".mp4", "libx264", {"preset": "veryfast", "crf": "26"},
           scale=0.5, audio="aac", container_options={"movflags": "faststart"}),
    Recipe("x264-mov", "mov", ".mov", "libx264", {"preset": "fast", "crf": "21"}, audio="aac"),
    Recipe("x264-mkv", "matroska", ".mkv", "libx264", {"preset": "medium", "crf": "23"},
           audio="copy"),
    Recipe("x264-bitexact-notags", "mp4", ".mp4", "libx264", {"preset": "fast", "crf": "23"},
           audio=None, container_options={"fflags": "+bitexact"}, strip_metadata=True),
    Recipe("x265-fast", "mp4", ".mp4", "libx265",
           {"preset": "ultrafast", "crf": "28", "tag": "hvc1", "x265-params": "log-level=error"},
           audio="aac"),
    Recipe("mpeg4-avi", "avi", ".avi", "mpeg4", {"qscale": "4"}, gop=250, max_b_frames=2,
           audio="libmp3lame"),
    Recipe("mpeg4-mp4", "mp4", ".mp4", "mpeg4", {"b": "1500000"}, audio="aac"),
    Recipe("vp9-webm", "webm", ".webm", "libvpx-vp9",
           {"deadline": "realtime", "cpu-used": "8", "crf": "34", "b": "0"}, audio="libopus"),
    Recipe("vp8-webm", "webm", ".webm", "libvpx",
           {"deadline": "realtime", "cpu-used": "8", "b": "1000000"}, audio="libopus"),
    Recipe("mjpeg-avi", "avi", ".avi", "mjpeg", {"qscale": "3"}, pix_fmt="yuvj420p", audio=None),
    Recipe("prores-mov", "mov", ".mov", "prores_ks", {"profile": "0"},
           pix_fmt="yuv422p10le", audio=None),
    # Edits that keep the coded video: remuxes and lossless cuts, as editors' "export" does.
    Recipe("remux-mkv", "matroska", ".mkv", None),
    Recipe("remux-mov", "mov", ".mov", None),
    Recipe("remux-mp4-faststart", "mp4", ".mp4", None,
           container_options={"movflags": "faststart"}),
    Recipe("trim-copy-mp4", "mp4", ".mp4", None, trim=(0.3, 0.5)),
    Recipe("trim-reencode-mp4", "mp4", ".mp4", "libx264", {"preset": "veryfast", "crf": "22"},
           trim=(0.2, 0.5), audio="aac"),
)  # fmt: skip


def find_videos(sources: Iterable[str | Path]) -> list[Path]:
    """Video files among ``sources`` (files, or folders searched one level deep), sorted."""
    found: set[Path] = set()
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found.update(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.is_file():
            found.add(path)
    return sorted(found)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _seeded_options(recipe: Recipe, source: Path, seed: int) -> dict[str, str]:
    options = dict(recipe.options)
    if recipe.crf_jitter and "crf" in options:
        rng = np.random.default_rng([seed, zlib.crc32(f"{source.name}/{recipe.name}".encode())])
        jitter = int(rng.integers(-recipe.crf_jitter, recipe.crf_jitter + 1))
        options["crf"] = str(int(options["crf"]) + jitter)
    return options


def render(
    source: Path, destination: Path, recipe: Recipe, *, seed: int = 0, max_seconds: float = 12.0
) -> Path:
    """Write ``source`` through ``recipe`` to ``destination`` with PyAV; at most ``max_seconds``.

    A failed write leaves no file behind.
    """
    import av

    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(str(source)) as reader:
            video_in = reader.streams.video[0]
            duration = float(reader.duration / 1_000_000) if reader.duration else float(max_seconds)
            start, length = (0.0, duration)
            if recipe.trim is not None:
                start, length = duration * recipe.trim[0], duration * recipe.trim[1]
            end = start + min(length, max_seconds)
            metadata = {} if recipe.strip_metadata else dict(reader.metadata)
            with av.open(
                str(destination), "w", format=recipe.container, options=recipe.container_options
            ) as writer:
                if recipe.strip_metadata:
                    writer.metadata.clear()
                else:
                    # A tool that rewrites a file usually carries the source's tags over.
                    for key in ("creation_time", "title", "comment"):
                        if key in metadata:
                            writer.metadata[key] = metadata[key]
                if recipe.codec is None:
                    _copy_packets(reader, writer, start, end)
                else:
                    _reencode(reader, writer, video_in, recipe, source, seed, start, end)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    return destination


def _copy_packets(reader: Any, writer: Any, start: float, end: float) -> None:
    video_in = reader.streams.video[0]
    inputs = [video_in, *reader.streams.audio[:1]]
    outputs = {video_in.index: writer.add_stream_from_template(video_in)}
    for stream in inputs[1:]:
        try:
            outputs[stream.index] = writer.add_stream_from_template(stream)
        except ValueError:  # a codec this container cannot hold: the audio is dropped
            continue
    if start > 0:
        # A lossless cut starts on the keyframe at or before ``start`` (as "smart" cutters do).
        reader.seek(int(start / float(video_in.time_base)), stream=video_in, backward=True)
    offsets: dict[int, int] = {}
    for packet in reader.demux(*inputs):
        if packet.dts is None or packet.stream.index not in outputs:
            continue
        seconds = float(packet.dts * packet.time_base)
        if seconds > end:
            if packet.stream.index == video_in.index:
                break
            continue
        offset = offsets.setdefault(packet.stream.index, packet.dts if start > 0 else 0)
        packet.dts -= offset
        if packet.pts is not None:
            packet.pts -= offset
        packet.stream = outputs[packet.stream.index]
        writer.mux(packet)


def _reencode(
    reader: Any,
    writer: Any,
    video_in: Any,
    recipe: Recipe,
    source: Path,
    seed: int,
    start: float,
    end: float,
) -> None:
    import av
    from av.video.frame import PictureType

    rate = video_in.average_rate or video_in.guessed_rate or Fraction(25)
    rate = Fraction(rate).limit_denominator(1001)
    context = video_in.codec_context
    video_out = writer.add_stream(
        recipe.codec, rate=rate, options=_seeded_options(recipe, source, seed)
    )
    video_out.width = _even(context.width * recipe.scale)
    video_out.height = _even(context.height * recipe.scale)
    video_out.pix_fmt = recipe.pix_fmt
    if recipe.gop is not None:
        video_out.codec_context.gop_size = recipe.gop
    if recipe.max_b_frames is not None:
        video_out.codec_context.max_b_frames = recipe.max_b_frames
    audio_in = reader.streams.audio[0] if reader.streams.audio else None
    audio_out = resampler = None
    if audio_in is not None and recipe.audio is not None:
        if recipe.audio == "copy":
            try:
                audio_out = writer.add_stream_from_template(audio_in)
            except ValueError:
                audio_out = None
        else:
            audio_out = writer.add_stream(recipe.audio, rate=48000)
            audio_out.layout = "stereo"
            audio_format = audio_out.codec_context.codec.audio_formats[0].name
            resampler = av.AudioResampler(format=audio_format, layout="stereo", rate=48000)
    if start > 0:
        reader.seek(int(start / float(video_in.time_base)), stream=video_in, backward=True)
    streams = [video_in] + ([audio_in] if audio_out is not None else [])
    frame_index = 0
    for packet in reader.demux(*streams):
        if packet.stream.type == "audio" and resampler is None:
            if packet.dts is not None and start <= float(packet.dts * packet.time_base) <= end:
                packet.stream = audio_out
                writer.mux(packet)
            continue
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:
            continue  # a damaged packet (some AC-3 tracks have them): skip it, as ffmpeg does
        for frame in decoded:
            seconds = float(frame.time) if frame.time is not None else start
            if seconds < start or seconds > end:
                continue
            if packet.stream.type == "audio":
                for resampled in resampler.resample(frame):
                    resampled.pts = None
                    writer.mux(audio_out.encode(resampled))
                continue
            image = frame.reformat(
                width=video_out.width, height=video_out.height, format=recipe.pix_fmt
            )
            # Decoded frames carry the source's I/P/B decisions; a real transcode lets the
            # encoder choose its own GOP, as ffmpeg does.
            image.pict_type = PictureType.NONE
            image.pts = frame_index
            image.time_base = 1 / rate
            frame_index += 1
            writer.mux(video_out.encode(image))
        past_end = packet.dts is not None and float(packet.dts * packet.time_base) > end + 1.0
        if packet.stream.type == "video" and past_end:
            break
    writer.mux(video_out.encode(None))
    if resampler is not None and audio_out is not None:
        writer.mux(audio_out.encode(None))


# Megamind_bugy.avi is a damaged derivative of Megamind.avi (OpenCV's decoder test), not an
# original of its own.
OPENCV_DOC_VIDEOS = ("Megamind.avi", "tree.avi", "vtest.avi")


def opencv_doc_videos() -> list[Path]:
    """The real videos of Debian's ``opencv-doc``, downloaded and unpacked once (not installed)."""
    from fakescope.data.sources import default_cache_dir, fetch_debian_package

    root, _ = fetch_debian_package("opencv-doc", default_cache_dir())
    folder = root / "usr/share/doc/opencv-doc/examples/data"
    return [folder / name for name in OPENCV_DOC_VIDEOS if (folder / name).is_file()]


# -- the dataset ---------------------------------------------------------------------------------
def build_dataset(
    sources: Sequence[Path],
    out_dir: Path,
    *,
    recipes: Sequence[Recipe] = RECIPES,
    seed: int = 0,
    max_seconds: float = 12.0,
    echo: bool = False,
) -> list[dict[str, str]]:
    """Originals (as shipped, referenced in place) and their renders; writes the manifest.

    Resumable: renders already on disk are kept. A recipe that fails on a source (an encoder
    that refuses its size, a codec a container cannot hold) is skipped and reported.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    for source in sources:
        group = source.stem
        rows.append({"path": str(source), "source": group, "recipe": "original", "label": "0"})
        for recipe in recipes:
            destination = out_dir / group / f"{recipe.name}{recipe.suffix}"
            if not destination.is_file():
                try:
                    render(source, destination, recipe, seed=seed, max_seconds=max_seconds)
                except Exception as exc:  # one recipe failing must not stop the dataset
                    if echo:
                        print(f"skip {group}/{recipe.name}: {exc}")
                    continue
            rows.append(
                {"path": str(destination), "source": group, "recipe": recipe.name, "label": "1"}
            )
            if echo:
                print(f"{group}/{recipe.name}: {destination.stat().st_size} bytes")
    with (out_dir / MANIFEST_NAME).open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def read_manifest(out_dir: Path) -> list[dict[str, str]]:
    with (out_dir / MANIFEST_NAME).open(newline="") as stream:
        return list(csv.DictReader(stream))


def descriptor_matrix(
    rows: Sequence[dict[str, str]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Features, labels and groups of the rows whose descriptors could be read."""
    features, labels, groups, kept = [], [], [], []
    for row in rows:
        try:
            descriptors = read_stream_descriptors(row["path"])
        except VideoInputError:
            continue
        features.append(descriptors.vector())
        labels.append(int(row["label"]))
        groups.append(row["source"])
        kept.append(row)
    return np.array(features), np.array(labels), np.array(groups), kept


# -- grouped evaluation --------------------------------------------------------------------------
def evaluate_grouped(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    feature_names: Sequence[str] = FEATURE_NAMES,
    regularisation: float = 1.0,
    bootstrap: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Leave-one-source-out: train on all other sources, score the held-out source's files.

    The out-of-fold probabilities of all folds are pooled for accuracy (at 0.5), balanced
    accuracy and ROC-AUC; the interval is a bootstrap over *sources* (whole groups resampled),
    the unit that is actually independent.
    """
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    columns = [FEATURE_NAMES.index(name) for name in feature_names]
    matrix = features[:, columns]
    unique = sorted(set(groups.tolist()))
    probabilities = np.full(len(labels), np.nan)
    for held_out in unique:
        test = groups == held_out
        train = ~test
        if len(set(labels[train].tolist())) < 2:
            continue
        model = StreamClassifier.fit(
            matrix[train], labels[train], feature_names=feature_names, regularisation=regularisation
        )
        probabilities[test] = model.predict_proba(matrix[test])
    scored = ~np.isnan(probabilities)
    predictions = (probabilities[scored] >= 0.5).astype(int)
    truth = labels[scored]
    report: dict[str, Any] = {
        "files": int(scored.sum()),
        "sources": len(unique),
        "originals": int((truth == 0).sum()),
        "reencoded": int((truth == 1).sum()),
        "accuracy": float((predictions == truth).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predictions)),
        "auc": float(roc_auc_score(truth, probabilities[scored])) if len(set(truth)) == 2 else None,
        "originals_flagged": int(((predictions == 1) & (truth == 0)).sum()),
        "reencoded_missed": int(((predictions == 0) & (truth == 1)).sum()),
    }
    group_of = groups[scored]
    # Within one source: does its original score below its own re-encodes? (AUC of that
    # source's files alone; immune to the score shift between sources that pooling mixes in.)
    within = {}
    for group in unique:
        members = group_of == group
        if len(set(truth[members].tolist())) == 2:
            within[str(group)] = float(
                roc_auc_score(truth[members], probabilities[scored][members])
            )
    report["within_source_auc"] = within
    rng = np.random.default_rng(seed)
    aucs, balanced = [], []
    for _ in range(bootstrap):
        chosen = rng.choice(unique, size=len(unique), replace=True)
        index = np.concatenate([np.flatnonzero(group_of == g) for g in chosen])
        if len(set(truth[index].tolist())) < 2:
            continue
        aucs.append(roc_auc_score(truth[index], probabilities[scored][index]))
        balanced.append(balanced_accuracy_score(truth[index], predictions[index]))
    if aucs:
        report["auc_interval_95"] = [
            float(np.percentile(aucs, 2.5)),
            float(np.percentile(aucs, 97.5)),
        ]
        report["balanced_accuracy_interval_95"] = [
            float(np.percentile(balanced, 2.5)),
            float(np.percentile(balanced, 97.5)),
        ]
    report["per_file"] = [
        {"source": str(g), "label": int(t), "probability": round(float(p), 4)}
        for g, t, p in zip(group_of, truth, probabilities[scored], strict=True)
    ]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", action="append", default=[], help="video file or folder")
    parser.add_argument(
        "--opencv-doc",
        action="store_true",
        help="add the real videos of Debian's opencv-doc (apt-get download, unpacked, cached)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for renders + manifest")
    parser.add_argument("--model", type=Path, help="write the classifier fitted on all data here")
    parser.add_argument("--report", type=Path, help="write the evaluation JSON here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=12.0)
    args = parser.parse_args(argv)
    sources = find_videos(args.source)
    if args.opencv_doc:
        sources = sorted({*sources, *opencv_doc_videos()})
    if len(sources) < 2:
        parser.error("grouped evaluation needs at least two source videos")
    rows = build_dataset(sources, args.out, seed=args.seed, max_seconds=args.max_seconds, echo=True)
    features, labels, groups, kept = descriptor_matrix(rows)
    without_tags = [name for name in FEATURE_NAMES if name not in TAG_FEATURES]
    report = {
        "all_descriptors": evaluate_grouped(features, labels, groups, seed=args.seed),
        "without_tag_descriptors": evaluate_grouped(
            features, labels, groups, feature_names=without_tags, seed=args.seed
        ),
        "recipes": sorted({row["recipe"] for row in kept} - {"original"}),
    }
    for name, part in report.items():
        if isinstance(part, dict):
            summary = {k: v for k, v in part.items() if k != "per_file"}
            print(name, json.dumps(summary))
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    if args.model:
        training = {
            "sources": sorted(set(groups.tolist())),
            "files": len(labels),
            "originals": int((labels == 0).sum()),
            "recipes": report["recipes"],
            "grouped_cv": {k: v for k, v in report["all_descriptors"].items() if k != "per_file"},
            "seed": args.seed,
        }
        StreamClassifier.fit(features, labels, training=training).save(args.model)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = [
    "RECIPES",
    "Recipe",
    "build_dataset",
    "descriptor_matrix",
    "evaluate_grouped",
    "find_videos",
    "render",
]
