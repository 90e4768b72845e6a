"""Stream descriptors (Güera et al. 2019): box order, GOP, codec and tags on crafted videos.

Every video here is written by the test itself with PyAV (a few dozen 64x48 frames), so the
GOP, codec and container are known exactly.
"""

from __future__ import annotations

import json
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from fakescope.errors import ModelError  # noqa: E402
from fakescope.video.decode import NoVideoStreamError, TruncatedVideoError  # noqa: E402
from fakescope.video.stream_dataset import (  # noqa: E402
    RECIPES,
    build_dataset,
    descriptor_matrix,
    evaluate_grouped,
    render,
)
from fakescope.video.stream_descriptors import (  # noqa: E402
    FEATURE_NAMES,
    TAG_FEATURES,
    StreamClassifier,
    describe_isobmff,
    load_stream_classifier,
    read_stream_descriptors,
    read_top_level_boxes,
    stream_evidence,
)


def moving_frames(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """A textured pattern drifting one pixel per frame: encoders predict it well."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(height, width * 2, 3), dtype=np.uint8)
    return [np.ascontiguousarray(texture[:, i : i + width]) for i in range(count)]


def write_video(
    path: Path,
    *,
    codec: str = "libx264",
    frames: int = 30,
    rate: int = 25,
    gop: int | None = 10,
    b_frames: int = 0,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    with av.open(str(path), "w", options=container_options or {}) as output:
        stream = output.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = b_frames
        for index, pixels in enumerate(moving_frames(frames)):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, rate)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


X264_FIXED_GOP = {"preset": "ultrafast", "x264-params": "scenecut=0:keyint_min=10"}


# -- box order -----------------------------------------------------------------------------------
def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_box_parser_on_handmade_bytes(tmp_path: Path) -> None:
    ftyp = box(b"ftyp", b"mp42" + struct.pack(">I", 1) + b"mp42isom")
    uuid = box(b"uuid", bytes(range(16)) + b"xmp-ish")
    moov = box(b"moov", box(b"mvhd", bytes(100)) + box(b"trak", bytes(8)) + box(b"udta", b""))
    # mdat with a 64-bit size (size field 1, then the real size after the type).
    payload = bytes(40)
    mdat = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + len(payload)) + payload
    path = tmp_path / "hand.mp4"
    path.write_bytes(ftyp + uuid + moov + mdat)
    with path.open("rb") as stream:
        boxes = read_top_level_boxes(stream, path.stat().st_size)
    assert [b.type for b in boxes] == ["ftyp", "uuid", "moov", "mdat"]
    assert boxes[1].uuid == bytes(range(16)).hex() and boxes[3].size == 56
    layout = describe_isobmff(path)
    assert layout["fast_start"] is True and layout["moov_children"] == ["mvhd", "trak", "udta"]
    assert layout["major_brand"] == "mp42" and layout["compatible_brands"] == ["mp42", "isom"]
    assert layout["uuid_boxes"] == [bytes(range(16)).hex()]


def test_faststart_moves_moov_before_mdat(tmp_path: Path) -> None:
    plain = write_video(tmp_path / "plain.mp4")
    fast = write_video(tmp_path / "fast.mp4", container_options={"movflags": "faststart"})
    plain_order = describe_isobmff(plain)["box_order"]
    fast_order = describe_isobmff(fast)["box_order"]
    assert plain_order.index("mdat") < plain_order.index("moov")
    assert fast_order.index("moov") < fast_order.index("mdat")
    features = {p: read_stream_descriptors(p).features for p in (plain, fast)}
    assert features[plain]["fast_start"] == 0.0 and features[fast]["fast_start"] == 1.0


def test_truncated_mp4_gives_a_clear_error(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])  # moov is at the end: it is lost too
    with pytest.raises(TruncatedVideoError, match="truncated") as info:
        read_stream_descriptors(cut)
    assert info.value.kind == "truncated_video" and info.value.path == str(cut)
    header_only = tmp_path / "header.mp4"
    header_only.write_bytes(whole[:12])
    with pytest.raises(TruncatedVideoError):
        read_stream_descriptors(header_only)


def test_audio_only_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "voice.m4a"
    with av.open(str(path), "w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = (np.sin(np.arange(16000) / 5) * 0.3).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    with pytest.raises(NoVideoStreamError, match=r"no video stream.*audio") as info:
        read_stream_descriptors(path)
    assert info.value.kind == "no_video_stream"


# -- GOP, codec, timestamps ----------------------------------------------------------------------
def test_known_gop_without_b_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "gop10.mp4", frames=30, gop=10, options=X264_FIXED_GOP)
    described = read_stream_descriptors(path)
    gop, video = described.readable["gop"], described.readable["video"]
    assert video["codec"] == "h264" and (video["width"], video["height"]) == (64, 48)
    assert gop["packets"] == 30 and gop["keyframes"] == 3
    assert gop["keyframe_interval_mean"] == 10.0 and gop["keyframe_interval_cv"] == 0.0
    assert gop["b_frames"] is False and gop["reordered_packets"] == 0
    assert described.readable["timestamps"]["variable_frame_rate"] is False
    assert described.readable["timestamps"]["frame_duration_s"] == pytest.approx(0.04)
    assert described.readable["encoder_signatures"]["x264"] is True
    features = described.features
    assert features["codec=h264"] == 1.0 and features["container=mp4"] == 1.0
    assert features["b_frames"] == 0.0 and features["handler=lavf"] == 1.0
    assert features["encoder_lavf"] == 1.0 and features["audio"] == 0.0
    assert described.vector().shape == (len(FEATURE_NAMES),)


def test_b_frames_show_as_reordered_packets(tmp_path: Path) -> None:
    options = {"preset": "medium", "x264-params": "b-adapt=0:scenecut=0"}
    path = write_video(tmp_path / "bframes.mp4", frames=30, gop=30, b_frames=2, options=options)
    gop = read_stream_descriptors(path).readable["gop"]
    assert gop["b_frames"] is True and gop["reordered_packets"] >= 5
    assert gop["keyframes"] == 1


def test_mpeg4_in_avi_and_mkv_remux(tmp_path: Path) -> None:
    avi = write_video(tmp_path / "clip.avi", codec="mpeg4", gop=5, options={"qscale": "5"})
    described = read_stream_descriptors(avi)
    assert described.readable["container"] == "avi" and described.readable["isobmff"] == {}
    assert described.readable["gop"]["keyframes"] == 6
    assert described.features["codec=mpeg4"] == 1.0
    assert described.readable["encoder_signatures"]["lavc"] is True
    remux = next(recipe for recipe in RECIPES if recipe.name == "remux-mkv")
    mkv = render(avi, tmp_path / "clip.mkv", remux)
    remuxed = read_stream_descriptors(mkv)
    assert remuxed.readable["container"] == "matroska"
    # A remux keeps the coded video: same codec, same keyframes.
    assert remuxed.readable["gop"]["keyframes"] == 6 and remuxed.features["codec=mpeg4"] == 1.0
    assert remuxed.readable["encoder"].startswith("Lavf")  # MKV's ENCODER tag, case folded


def test_variable_frame_rate_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        times_ms = np.cumsum([0, 33, 33, 50, 33, 67, 33, 40, 33, 33, 80, 33])
        for pts, pixels in zip(times_ms, moving_frames(len(times_ms)), strict=True):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = int(pts), Fraction(1, 1000)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    timestamps = read_stream_descriptors(path).readable["timestamps"]
    assert timestamps["variable_frame_rate"] is True
    assert timestamps["distinct_frame_durations"] >= 4


# -- the classifier ------------------------------------------------------------------------------
def _separable(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Five noise columns (the rest constant) and one column that tells the classes apart.
    features = np.zeros((60, len(FEATURE_NAMES)))
    features[:, :5] = rng.normal(size=(60, 5))
    labels = np.array([0, 1, 1, 1, 1, 1] * 10)
    features[:, FEATURE_NAMES.index("encoder_lavf")] = labels + rng.normal(0, 0.1, 60)
    groups = np.repeat([f"source{i}" for i in range(10)], 6)
    return features, labels, groups


def test_classifier_round_trip_is_json_not_pickle(tmp_path: Path) -> None:
    features, labels, _ = _separable()
    model = StreamClassifier.fit(features, labels, training={"files": 60})
    path = model.save(tmp_path / "stream.json")
    raw = path.read_bytes()
    assert raw.lstrip().startswith(b"{") and b"pickle" not in raw
    data = json.loads(raw)
    assert data["feature_names"] == list(FEATURE_NAMES) and data["training"] == {"files": 60}
    loaded = StreamClassifier.load(path)
    np.testing.assert_allclose(loaded.predict_proba(features), model.predict_proba(features))
    assert ((loaded.predict_proba(features) >= 0.5) == labels).all()


def test_classifier_load_rejects_foreign_files(tmp_path: Path) -> None:
    features, labels, _ = _separable()
    data = StreamClassifier.fit(features, labels).to_dict()
    bad_names = tmp_path / "names.json"
    bad_names.write_text(json.dumps({**data, "feature_names": ["not_a_descriptor"]}))
    with pytest.raises(ModelError, match="other stream descriptors"):
        StreamClassifier.load(bad_names)
    not_ours = tmp_path / "other.json"
    not_ours.write_text(json.dumps({"weights": [1, 2]}))
    with pytest.raises(ModelError, match="not a fakescope-stream-classifier"):
        StreamClassifier.load(not_ours)
    with pytest.raises(ModelError, match="cannot read"):
        StreamClassifier.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="both"):
        StreamClassifier.fit(features, np.ones(60, dtype=int))


def test_grouped_evaluation_never_trains_on_the_held_out_source(monkeypatch) -> None:
    features, labels, groups = _separable()
    seen: list[set[str]] = []
    original_fit = StreamClassifier.fit.__func__
    # Rows differ in their noise columns, so each training row can be traced back to its source.
    group_of_row = {row.tobytes(): str(group) for row, group in zip(features, groups, strict=True)}

    def spy(cls: type, rows: np.ndarray, *args: object, **kwargs: object) -> StreamClassifier:
        seen.append({group_of_row[row.tobytes()] for row in rows})
        return original_fit(cls, rows, *args, **kwargs)

    monkeypatch.setattr(StreamClassifier, "fit", classmethod(spy))
    report = evaluate_grouped(features, labels, groups, bootstrap=50)
    assert len(seen) == 10
    assert all(len(trained) == 9 for trained in seen)
    assert {group for trained in seen for group in set(groups) - trained} == set(groups)
    assert report["auc"] == 1.0 and report["sources"] == 10 and report["originals"] == 10
    monkeypatch.undo()
    # Without the one informative column the same data carry no signal.
    noise = [name for name in FEATURE_NAMES if name != "encoder_lavf"]
    assert (
        evaluate_grouped(features, labels, groups, feature_names=noise, bootstrap=50)["auc"] < 0.8
    )
    assert "encoder_lavf" in TAG_FEATURES


def test_dataset_build_on_a_tiny_source(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    source = write_video(tmp_path / "src" / "camera.mp4", frames=20, gop=20, options=X264_FIXED_GOP)
    recipes = [r for r in RECIPES if r.name in ("x264-gop12", "remux-mov", "mjpeg-avi")]
    rows = build_dataset([source], tmp_path / "data", recipes=recipes, seed=3)
    assert [(row["recipe"], row["label"]) for row in rows] == [
        ("original", "0"),
        ("x264-gop12", "1"),
        ("mjpeg-avi", "1"),
        ("remux-mov", "1"),
    ]
    features, _, groups, kept = descriptor_matrix(rows)
    assert features.shape == (4, len(FEATURE_NAMES)) and set(groups) == {"camera"}
    by_recipe = {row["recipe"]: row for row in kept}
    gop12 = read_stream_descriptors(by_recipe["x264-gop12"]["path"]).readable["gop"]
    assert gop12["keyframes"] == 2  # 20 frames with GOP 12
    mov = read_stream_descriptors(by_recipe["remux-mov"]["path"]).readable
    assert mov["container"] == "mov" and mov["major_brand"].strip() == "qt"
    mjpeg = read_stream_descriptors(by_recipe["mjpeg-avi"]["path"]).readable
    assert mjpeg["gop"]["keyframes"] == mjpeg["gop"]["packets"]  # intra-only
    # Resumable: a second build reuses the files.
    stamp = Path(by_recipe["x264-gop12"]["path"]).stat().st_mtime_ns
    build_dataset([source], tmp_path / "data", recipes=recipes, seed=3)
    assert Path(by_recipe["x264-gop12"]["path"]).stat().st_mtime_ns == stamp


def test_bundled_classifier_matches_the_reader_and_flags_a_fresh_encode(tmp_path: Path) -> None:
    model = load_stream_classifier()
    # Retrain (python -m fakescope.video.stream_dataset) whenever the descriptors change.
    assert model.feature_names == FEATURE_NAMES
    assert model.training["originals"] >= 2 and "x264-medium-crf23" in model.training["recipes"]
    path = write_video(tmp_path / "fresh.mp4", frames=20, gop=10, options=X264_FIXED_GOP)
    evidence = stream_evidence(path, model)
    assert evidence["codec"] == "h264" and evidence["encoder_signatures"] == ["x264"]
    assert evidence["encoder"].startswith("Lavf") and evidence["fast_start"] is False
    # A file just written by libavformat + x264 is exactly what the classifier was taught.
    assert evidence["probability_reencoded"] > 0.5
    assert len(evidence["top_descriptors"]) == 5
