"""Video: sniffing, streaming decode and sampling, scoring, aggregation, segments, errors.

Every video is made here with PyAV (tiny, few frames), and the model is a toy that scores a frame
by its brightness: these tests check the video plumbing, not a detector's quality.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.calibration.model import CalibratedModel
from fakescope.calibration.threshold import ThresholdCalibration
from fakescope.detectors.base import Detector
from fakescope.io.discover import InputEntry, iter_input_files
from fakescope.pipeline.scan import PendingVideo, decode_entry, scan_paths, score_decoded
from fakescope.video.decode import container_truncated, open_video, sniff_video_container
from fakescope.video.scan import (
    FrameScore,
    VideoScanOptions,
    aggregate_scores,
    calibrate_video_threshold,
    find_segments,
    scan_video,
    top_k_count,
)
from fakescope.video.synth import GroundTruth, brighten, ground_truth_path, make_synthetic_video

# Every test here writes its videos with PyAV; without it (no `video` extra) they all skip.
av = pytest.importorskip("av")

FPS = 10
WIDTH, HEIGHT = 64, 48


# -- a toy model: brightness is "fakeness" ------------------------------------------------------


class BrightnessDetector(Detector):
    """P(fake) = mean brightness / 255. A toy that makes bright frames the fake ones."""

    name = "brightness-toy"
    min_image_side = 8

    def fit(self, images, labels, on_progress=None):
        return self

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.array([float(np.mean(image)) / 255.0 for image in images])

    def _weights(self) -> dict[str, np.ndarray]:
        return {}

    def _set_weights(self, weights, state) -> None:
        pass


class BrokenDetector(BrightnessDetector):
    name = "broken-toy"

    def predict_proba(self, images):
        raise RuntimeError("boom")


def toy_model(detector: Detector | None = None, threshold: float = 0.5) -> CalibratedModel:
    calibration = ThresholdCalibration(
        threshold=threshold,
        target_fpr=0.05,
        review_threshold=threshold - 0.1,
        review_fpr=0.2,
        n_calibration=100,
        calibration_fpr=0.05,
    )
    return CalibratedModel(detector or BrightnessDetector(), calibration, {"name": "toy"})


# -- crafted files ------------------------------------------------------------------------------


def dark_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.clip(rng.normal(60, 15, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8) for _ in range(n)
    ]


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    codec: str = "libx264",
    gop: int = 10,
    rotation: int | None = None,
    audio: bool = False,
    options: dict[str, str] | None = None,
) -> Path:
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.codec_context.options = {"sc_threshold": "0"}  # keyframes every `gop` only
        if rotation is not None:
            stream.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=8000) if audio else None
        for number, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = number
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            _write_silence(container, sound, 4)
    return path


def _write_silence(container, stream, n_frames: int) -> None:
    for number in range(n_frames):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 8000
        frame.pts = number * 1024
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        _write_silence(container, container.add_stream("aac", rate=8000), 8)
    return path


def has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames (6 s at 10 fps), keyframes every 10 frames, frame k has brightness ~ 2k."""
    frames = [np.full((HEIGHT, WIDTH, 3), 2 * k + 20, np.uint8) for k in range(60)]
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", frames)


@pytest.fixture(scope="module")
def manipulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fake clip with a brightened segment and its real twin (same frames, same encoding)."""
    folder = tmp_path_factory.mktemp("synth")
    frames = dark_frames(50)
    fake = folder / "fake.mp4"
    real = folder / "real.mp4"
    make_synthetic_video(frames, fake, seed=7, manipulation=brighten(120), fps=FPS)
    make_synthetic_video(frames, real, seed=7, manipulation=None, fps=FPS)
    return fake, real


# -- sniffing -----------------------------------------------------------------------------------


def test_containers_are_recognised_by_their_bytes_not_their_names(tmp_path, clip):
    assert sniff_video_container(clip.read_bytes()[:64]) == "mp4"
    assert sniff_video_container(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00") == "mov"
    assert sniff_video_container(b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01webm") == "webm"
    assert sniff_video_container(b"RIFF\x00\x10\x00\x00AVI LIST") == "avi"
    # Images that share a container family stay images.
    assert sniff_video_container(b"RIFF\x00\x10\x00\x00WEBPVP8 ") is None
    assert sniff_video_container(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00") is None
    assert sniff_video_container(b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00") is None
    assert sniff_video_container(b"\xff\xd8\xff\xe0") is None
    # A video named like an image is still a video.
    disguised = tmp_path / "holiday.jpg"
    disguised.write_bytes(clip.read_bytes())
    decoded = decode_entry(InputEntry(str(disguised)))
    assert isinstance(decoded, PendingVideo)


# -- decoding and sampling ----------------------------------------------------------------------


def test_uniform_sampling_takes_the_middle_of_equal_slices(clip):
    with open_video(clip) as video:
        frames = list(video.frames(8, "uniform"))
        info = video.info
    assert info.frame_count == 60 and info.fps == pytest.approx(FPS)
    assert info.duration_s == pytest.approx(6.0)
    assert [f.index for f in frames] == [math.floor((i + 0.5) * 60 / 8) for i in range(8)]
    assert [f.time_s for f in frames] == pytest.approx([f.index / FPS for f in frames])
    for frame in frames:  # the right pixels, not just the right timestamps
        assert frame.pixels.shape == (HEIGHT, WIDTH, 3) and frame.pixels.dtype == np.uint8
        assert abs(float(frame.pixels.mean()) - (2 * frame.index + 20)) < 3


def test_budget_is_respected_and_none_means_every_frame(clip):
    for budget in (1, 3, 59):
        with open_video(clip) as video:
            indices = [f.index for f in video.frames(budget)]
        assert len(indices) == budget
        assert indices == sorted(set(indices))
    with open_video(clip) as video:
        assert [f.index for f in video.frames(None)] == list(range(60))
    with open_video(clip) as video:  # a budget above the length gives each frame once
        assert [f.index for f in video.frames(500)] == list(range(60))


def test_seeking_far_apart_frames_gives_the_same_frames_as_decoding_all(tmp_path):
    # 40 s with keyframes every second: targets 5 s apart make the reader seek.
    frames = [np.full((HEIGHT, WIDTH, 3), (k * 3) % 200 + 20, np.uint8) for k in range(400)]
    path = write_video(tmp_path / "long.mp4", frames, gop=10)
    with open_video(path) as video:
        sampled = list(video.frames(8))
    with open_video(path) as video:
        every = {f.index: f.pixels for f in video.frames(None)}
    assert [f.index for f in sampled] == [math.floor((i + 0.5) * 400 / 8) for i in range(8)]
    for frame in sampled:
        assert np.array_equal(frame.pixels, every[frame.index])


def test_keyframe_sampling_decodes_keyframes_only_within_the_budget(clip):
    with open_video(clip) as video:
        frames = list(video.frames(None, "keyframe"))
    assert [f.index for f in frames] == [0, 10, 20, 30, 40, 50]
    assert all(f.keyframe for f in frames)
    with open_video(clip) as video:
        budgeted = [f.index for f in video.frames(3, "keyframe")]
    assert budgeted == [0, 20, 40]  # the first keyframe of each of three 2-second slices


def test_rotation_metadata_turns_frames_upright(tmp_path):
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[:16, :16] = 255  # a white block at the top left of the stored frame
    path = write_video(tmp_path / "phone.mp4", [frame] * 4, rotation=90)
    with open_video(path) as video:
        first = next(iter(video.frames(None)))
        info = video.info
    assert first.pixels.shape == (WIDTH, HEIGHT, 3)
    assert (info.width, info.height, info.rotation) == (HEIGHT, WIDTH, 90)
    # 90 degrees counter-clockwise, as players show it: top left goes to bottom left.
    assert first.pixels[-8:, :8].mean() > 200 and first.pixels[:8, :8].mean() < 50


@pytest.mark.parametrize(
    ("suffix", "codec"), [(".webm", "libvpx"), (".mkv", "libx264"), (".avi", "mpeg4")]
)
def test_other_containers_decode(tmp_path, suffix, codec):
    if not has_encoder(codec):
        pytest.skip(f"no {codec} encoder in this PyAV build")
    path = write_video(tmp_path / f"clip{suffix}", dark_frames(20), codec=codec)
    assert (
        sniff_video_container(path.read_bytes()[:64])
        == {
            ".webm": "webm",
            ".mkv": "mkv",
            ".avi": "avi",
        }[suffix]
    )
    with open_video(path) as video:
        indices = [f.index for f in video.frames(4)]
    assert indices == [2, 7, 12, 17]


# -- errors -------------------------------------------------------------------------------------


def test_truncated_mp4_is_an_error_row_and_the_batch_goes_on(tmp_path, clip):
    data = clip.read_bytes()
    cut = tmp_path / "a_cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    Image.fromarray(dark_frames(1)[0]).save(tmp_path / "b_photo.png")
    assert container_truncated(str(cut)) is True
    assert container_truncated(str(clip)) is False
    rows = list(scan_paths([str(tmp_path)], toy_model()))
    assert [Path(r.path).name for r in rows] == ["a_cut.mp4", "b_photo.png"]
    assert rows[0].error_kind == "truncated_video" and rows[0].sha256 is not None
    assert rows[1].error is None and rows[1].verdict == "real"


def test_truncation_after_the_index_keeps_the_frames_that_are_there(tmp_path):
    rng = np.random.default_rng(1)
    noisy = [rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(60)]
    path = write_video(tmp_path / "fast.mp4", noisy, options={"movflags": "faststart"})
    data = path.read_bytes()
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with open_video(cut) as video:
        frames = list(video.frames(None))
        notes = video.warnings
    assert 5 < len(frames) < 60
    assert any("truncated" in note for note in notes)


def test_a_file_with_audio_but_no_video_is_a_clear_error(tmp_path):
    row = scan_video(audio_only(tmp_path / "voice.m4a"), toy_model())
    assert row.error_kind == "no_video_stream"
    assert "audio" in (row.error or "")


def test_garbage_behind_a_video_signature_is_corrupt(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + bytes(range(256)) * 8)
    assert scan_video(junk, toy_model()).error_kind == "corrupt_video"


def test_missing_pyav_is_an_error_row_that_says_how_to_install(tmp_path, clip, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "av", None)
    row = scan_video(clip, toy_model())
    assert row.error_kind == "video_support_missing"
    assert "fakescope[video]" in (row.error or "")


def test_a_model_failure_costs_the_video_one_row(clip):
    row = scan_video(clip, toy_model(BrokenDetector()))
    assert row.error_kind == "scoring_error" and "boom" in (row.error or "")


# -- aggregation and segments -------------------------------------------------------------------


def test_aggregates():
    scores = [0.1, 0.2, 0.9, 0.8, 0.3, 0.1, 0.1, 0.2]
    assert aggregate_scores(scores, "mean") == pytest.approx(np.mean(scores))
    assert aggregate_scores(scores, "max") == pytest.approx(0.9)
    assert top_k_count(8, 0.25) == 2
    assert aggregate_scores(scores, "topk", 0.25) == pytest.approx(0.85)
    assert top_k_count(1, 0.25) == 1 and top_k_count(9, 0.25) == 3
    with pytest.raises(ValueError):
        aggregate_scores([], "mean")


def _frames(scores: Sequence[float], step: float = 1.0) -> list[FrameScore]:
    return [
        FrameScore(index=i, time_s=i * step, keyframe=False, score=s) for i, s in enumerate(scores)
    ]


def test_segments_cover_exact_frame_times_when_every_frame_is_scored():
    frames = _frames([0, 0, 0.9, 0.9, 0.9, 0, 0, 0], step=0.1)
    (segment,) = find_segments(frames, 0.5, duration_s=0.8, fps=10, min_frames=2)
    assert (segment.start_s, segment.end_s) == pytest.approx((0.2, 0.5))
    assert (segment.first_index, segment.last_index, segment.frames) == (2, 4, 3)
    assert segment.peak_score == pytest.approx(0.9)


def test_segments_merge_short_gaps_and_drop_single_spikes():
    frames = _frames([0.9, 0.9, 0, 0.9, 0.9, 0, 0, 0, 0, 0.9, 0, 0], step=1.0)
    # One missed frame (1 s gap) merges; the lone spike at 9 s is dropped.
    segments = find_segments(frames, 0.5, duration_s=12, fps=1, merge_gap_s=1.0, min_frames=2)
    assert [(s.start_s, s.end_s, s.frames) for s in segments] == [(0.0, 5.0, 4)]
    # No merging: two segments; no minimum: the spike is one.
    separate = find_segments(frames, 0.5, duration_s=12, fps=1, merge_gap_s=0.0, min_frames=1)
    assert [(s.start_s, s.end_s) for s in separate] == [(0.0, 2.0), (3.0, 5.0), (9.0, 10.0)]


def test_sparse_samples_stand_for_the_time_around_them():
    frames = _frames([0, 0.9, 0.9, 0], step=10.0)  # one frame every 10 s of a 40 s video
    (segment,) = find_segments(frames, 0.5, duration_s=40, fps=25, min_frames=2)
    # Half-way between frame centres (a frame lasts 1/25 s, its centre is 0.02 s after it).
    assert (segment.start_s, segment.end_s) == pytest.approx((5.02, 25.02))


def test_unscored_frames_are_ignored_by_segments():
    frames = _frames([0.9, 0.9, 0.9], step=1.0)
    frames[1] = FrameScore(index=1, time_s=1.0, keyframe=False, score=None, faces=0)
    (segment,) = find_segments(frames, 0.5, duration_s=3, fps=1, merge_gap_s=0.0)
    assert segment.frames == 2


# -- end to end ---------------------------------------------------------------------------------


def _iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def test_the_manipulated_segment_is_found_in_a_synthetic_video(manipulated):
    fake, real = manipulated
    truth = GroundTruth.read(ground_truth_path(fake))
    assert truth.label == 1 and truth.segment_s is not None
    options = VideoScanOptions(max_frames=None, aggregate="topk")
    row = scan_video(fake, toy_model(), options)
    video = row.evidence["video"]
    assert row.verdict == "fake" and video["frames_sampled"] == truth.frames == 50
    (segment,) = video["segments"]
    assert segment["first_frame"] == truth.segment_first_frame
    assert segment["last_frame"] == truth.segment_last_frame
    assert _iou((segment["start_s"], segment["end_s"]), truth.segment_s) > 0.99
    assert video["threshold"]["source"] == "frame"
    assert row.detectors == {"brightness-toy": row.score}
    twin = scan_video(real, toy_model(), options)
    assert twin.verdict == "real" and twin.evidence["video"]["segments"] == []
    assert GroundTruth.read(ground_truth_path(real)).segment_s is None


def test_aggregate_choice_changes_the_video_score(manipulated):
    fake, _ = manipulated
    scores = {
        method: scan_video(fake, toy_model(), VideoScanOptions(max_frames=20, aggregate=method))
        for method in ("mean", "max", "topk")
    }
    values = {m: r.score for m, r in scores.items()}
    assert values["mean"] < values["topk"] <= values["max"]
    assert (
        scores["mean"].evidence["video"]["aggregates"]
        == scores["max"].evidence["video"]["aggregates"]
    )


def test_a_video_calibration_replaces_the_frame_threshold(manipulated):
    fake, real = manipulated
    real_score = scan_video(real, toy_model()).score
    calibration = calibrate_video_threshold([real_score] * 20 + [0.05] * 20, target_fpr=0.05)
    row = scan_video(fake, toy_model(), VideoScanOptions(video_calibration=calibration))
    assert row.evidence["video"]["threshold"]["source"] == "video"
    assert row.evidence["video"]["threshold"]["threshold"] == pytest.approx(
        calibration.threshold, abs=1e-6
    )


@dataclass
class Crop:
    pixels: np.ndarray
    box: tuple[int, int, int, int]


def test_face_cropper_hook_scores_the_most_suspicious_face(manipulated):
    fake, _ = manipulated

    def two_faces(pixels: np.ndarray) -> list[Crop]:
        left, right = pixels[:, :32], pixels[:, 32:].copy()
        right[:] = 10  # a dark "face": the bright one must win
        return [Crop(right, (32, 0, 64, 48)), Crop(left, (0, 0, 32, 48))]

    row = scan_video(fake, toy_model(), VideoScanOptions(max_frames=None, face_cropper=two_faces))
    video = row.evidence["video"]
    assert video["faces"] is True and row.verdict == "fake"
    assert all(f["faces"] == 2 and f["face_box"] == [0, 0, 32, 48] for f in video["frames"])
    assert len(video["segments"]) == 1

    no_faces = scan_video(fake, toy_model(), VideoScanOptions(face_cropper=lambda pixels: []))
    assert no_faces.error_kind == "no_faces"

    def failing(pixels: np.ndarray) -> list[Crop]:
        raise RuntimeError("no weights")

    broken = scan_video(fake, toy_model(), VideoScanOptions(face_cropper=failing))
    assert broken.error_kind == "scoring_error" and "no weights" in (broken.error or "")


def test_scan_reads_a_video_from_bytes_as_engines_hand_them_over(clip):
    data = clip.read_bytes()
    pending = decode_entry(InputEntry("remote/clip.mp4"), data=data)
    assert isinstance(pending, PendingVideo)
    (row,) = score_decoded([pending], toy_model())
    assert row.path == "remote/clip.mp4" and row.error is None
    assert row.evidence["format"] == "MP4" and row.evidence["video"]["frames_sampled"] == 60
    small = decode_entry(InputEntry("remote/clip.mp4"), data=data, max_bytes=100)
    assert getattr(small, "error_kind", None) == "file_too_large"


def test_folders_pick_up_videos_by_extension(tmp_path, clip):
    (tmp_path / "a.mp4").write_bytes(clip.read_bytes())
    (tmp_path / "b.webm").write_bytes(b"x")
    (tmp_path / "c.txt").write_text("no")
    names = [Path(e.path).name for e in iter_input_files([str(tmp_path)])]
    assert names == ["a.mp4", "b.webm"]


def test_cli_scans_a_video_with_the_video_options(tmp_path, clip, trained_model_dir):
    from fakescope.cli.main import app

    out = tmp_path / "rows.jsonl"
    args = ["scan", str(clip), "-m", str(trained_model_dir), "-f", "jsonl", "-o", str(out)]
    args += ["--frames", "5", "--sampling", "uniform", "--aggregate", "max", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    video = row["evidence"]["video"]
    assert video["frames_sampled"] == 5 and video["aggregate"] == "max"
    assert row["score"] == pytest.approx(video["aggregates"]["max"], abs=1e-6)


def test_synthetic_fakes_differ_from_their_real_twin_only_from_the_segment_on(tmp_path):
    pytest.importorskip("cv2")
    from fakescope.video.synth import forgery_manipulation, generator_manipulation

    class Negative:  # a stand-in for a trained image-to-image generator of the zoo
        kind = "image-to-image"
        name = "negative"

        def generate(self, tiles: np.ndarray) -> np.ndarray:
            return 255 - tiles

    frames = dark_frames(30, seed=4)
    real = make_synthetic_video(frames, tmp_path / "real.mp4", seed=5, manipulation=None, fps=FPS)
    for name, manipulation in [
        ("inpaint", forgery_manipulation("inpaint", seed=5)),
        ("negative", generator_manipulation(Negative())),
    ]:
        fake_path = tmp_path / f"{name}.mp4"
        truth = make_synthetic_video(frames, fake_path, seed=5, manipulation=manipulation, fps=FPS)
        assert truth.segment_first_frame is not None and truth.segment_last_frame is not None
        assert truth.manipulation_params  # what was done is recorded
        with open_video(tmp_path / "real.mp4") as a, open_video(fake_path) as b:
            pairs = list(zip(a.frames(None), b.frames(None), strict=True))
        assert len(pairs) == real.frames == truth.frames == 30
        for number, (before, after) in enumerate(pairs):
            difference = np.abs(before.pixels.astype(int) - after.pixels.astype(int)).max()
            if number < truth.segment_first_frame:  # same frames, same encoder: same bytes
                assert difference == 0
            elif number <= truth.segment_last_frame:
                assert difference > 10
    assert json.loads(ground_truth_path(tmp_path / "inpaint.mp4").read_text())["segment"]


def test_a_video_row_reports_how_the_file_was_written_beside_the_pixels(clip):
    row = scan_video(clip, toy_model())
    stream = row.evidence["stream"]
    assert stream["codec"] and stream["container"] and "error" not in stream
    assert 0.0 <= stream["probability_reencoded"] <= 1.0
    assert row.score == scan_video(clip, toy_model()).score  # evidence never moves the score
    assert (
        scan_video(Path(clip).read_bytes(), toy_model(), path="x.mp4")
        .evidence["stream"]["error"]
        .startswith("stream descriptors are read from a file path")
    )
