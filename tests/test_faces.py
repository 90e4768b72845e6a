"""MTCNN face detection and face mode: box arithmetic, the networks, and real faces.

The real-face tests need the MTCNN weights in the local cache (``fakescope weights fetch
mtcnn-pnet`` / ``mtcnn-rnet`` / ``mtcnn-onet``) and skip cleanly without them, like the other
pretrained-weights tests. Hand-measured face boxes (forehead/hairline to chin, cheek to cheek)
were read off zoomed, gridded renderings of the sample images.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from fakescope.errors import WeightsMissingError  # noqa: E402
from fakescope.io.image import decode_image_bytes  # noqa: E402
from fakescope.models import load_model  # noqa: E402
from fakescope.video import faces  # noqa: E402
from fakescope.video.faces import (  # noqa: E402
    MTCNN,
    FaceCropper,
    OutputNet,
    ProposalNet,
    RefineNet,
    box_iou,
    non_maximum_suppression,
    square_boxes,
    square_region,
)
from fakescope.weights import weights_status  # noqa: E402
from tests.conftest import natural_like, upsampled_fake  # noqa: E402

WEIGHTS_READY = all(weights_status(name) == "ok" for name in faces.MTCNN_WEIGHT_NAMES.values())
needs_weights = pytest.mark.skipif(not WEIGHTS_READY, reason="MTCNN weights not cached")

# x1, y1, x2, y2 measured by hand on skimage's astronaut and matplotlib's grace_hopper.
ASTRONAUT_FACE = (186.0, 74.0, 270.0, 182.0)
GRACE_HOPPER_FACE = (168.0, 135.0, 365.0, 330.0)


# -- box arithmetic (no weights) -----------------------------------------------------------------
def test_box_iou_known_values() -> None:
    box = (0.0, 0.0, 10.0, 10.0)
    others = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    np.testing.assert_allclose(box_iou(box, others), [1.0, 50 / 150, 0.0, 0.25])


def test_nms_keeps_the_best_of_each_cluster() -> None:
    boxes = np.array(
        [
            [0, 0, 10, 10],  # cluster A, second best
            [1, 1, 11, 11],  # cluster A, best
            [50, 50, 60, 60],  # cluster B, alone
            [2, 0, 12, 10],  # cluster A, worst
        ],
        dtype=float,
    )
    scores = np.array([0.8, 0.9, 0.5, 0.7])
    assert non_maximum_suppression(boxes, scores, 0.5).tolist() == [1, 2]
    # A high threshold suppresses nothing: every box is kept, in score order.
    assert non_maximum_suppression(boxes, scores, 0.99).tolist() == [1, 0, 3, 2]
    assert non_maximum_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_nms_min_overlap_removes_a_box_nested_in_a_face() -> None:
    boxes = np.array([[0, 0, 100, 100], [10, 10, 40, 40]], dtype=float)
    scores = np.array([0.99, 0.98])
    # IoU of the nested box is only 0.09, so union-NMS keeps both; "min" sees a 100 % overlap.
    assert non_maximum_suppression(boxes, scores, 0.7).tolist() == [0, 1]
    assert non_maximum_suppression(boxes, scores, 0.7, overlap="min").tolist() == [0]
    with pytest.raises(ValueError, match="overlap"):
        non_maximum_suppression(boxes, scores, 0.7, overlap="max")


def test_square_boxes_and_crop_regions() -> None:
    squared = square_boxes(np.array([[10.0, 20.0, 30.0, 60.0]]))
    np.testing.assert_allclose(squared, [[0.0, 20.0, 40.0, 60.0]])  # centred, side = 40
    # Margin 0.5 around a 40 px face in the middle of a 200x300 image: a 60 px square.
    assert square_region((130, 80, 170, 120), 0.5, 200, 300) == (120, 70, 180, 130)
    # At the corner the square shifts back inside instead of being cut or padded.
    x1, y1, x2, y2 = square_region((0, 0, 40, 40), 0.5, 200, 300)
    assert (x1, y1) == (0, 0) and x2 - x1 == y2 - y1 == 60
    # A square larger than the image is cut down to the image's short side.
    assert square_region((0, 0, 180, 180), 0.5, 100, 300)[3] == 100


def test_networks_have_the_published_shapes() -> None:
    torch.manual_seed(0)
    probability, regression = ProposalNet()(torch.zeros(1, 3, 12, 12))
    assert probability.shape == (1, 1, 1) and regression.shape == (1, 4, 1, 1)
    probability, regression = ProposalNet()(torch.zeros(1, 3, 100, 60))
    assert probability.shape == (1, 45, 25)  # (n - 10) / 2 cells along each side
    probability, regression = RefineNet()(torch.zeros(5, 3, 24, 24))
    assert probability.shape == (5,) and regression.shape == (5, 4)
    probability, regression, landmarks = OutputNet()(torch.zeros(2, 3, 48, 48))
    assert landmarks.shape == (2, 10) and ((probability >= 0) & (probability <= 1)).all()


def test_pyramid_starts_at_the_minimum_face_and_stops_at_the_window() -> None:
    untrained = MTCNN(ProposalNet(), RefineNet(), OutputNet(), min_face_size=24)
    scales = untrained.pyramid_scales(480, 640)
    assert scales[0] == pytest.approx(0.5)  # a 24 px face fills the 12 px window
    assert min(480, 640) * scales[-1] >= 12 > min(480, 640) * scales[-1] * 0.709
    with pytest.raises(ValueError, match="min_face_size"):
        MTCNN(ProposalNet(), RefineNet(), OutputNet(), min_face_size=8)


def test_missing_weights_name_the_fetch_commands(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FAKESCOPE_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError, match="fakescope weights fetch mtcnn-pnet") as info:
        MTCNN.from_weights()
    assert "mtcnn-onet" in str(info.value) and "mtcnn-rnet" in str(info.value)


def _stub_crop(pixels: np.ndarray, x: int) -> faces.FaceCrop:
    detection = faces.FaceDetection((x, 10.0, x + 40.5, 50.0), 0.99, ((0.0, 0.0),) * 5)
    return faces.FaceCrop(pixels, (x - 5, 5, x + 45, 55), detection)


def test_image_face_mode_reports_the_most_suspicious_face() -> None:
    model = load_model()  # the bundled numpy-only model: no torch weights involved
    rng = np.random.default_rng(0)
    crops = [natural_like(rng, 96), upsampled_fake(rng, 96), natural_like(rng, 96)]
    expected = model.score(crops)
    buffer = io.BytesIO()
    Image.fromarray(natural_like(rng, 128)).save(buffer, format="PNG")
    image = decode_image_bytes(buffer.getvalue(), path="group.png")
    result = faces.scan_image_faces(
        image, model, lambda frame: [_stub_crop(c, 60 * i) for i, c in enumerate(crops)]
    )
    worst = int(np.argmax(expected))
    assert result.error is None and result.score == pytest.approx(expected[worst], abs=1e-6)
    report = result.evidence["faces"]
    assert report["faces_scored"] == 3 and len(report["all"]) == 3
    assert report["most_suspicious_face"]["box"] == [60 * worst, 10, 60 * worst + 41, 50]
    assert result.verdict == model.verdicts(np.array([expected[worst]]))[0]
    # No face: an error row of kind no_faces, not a silent whole-image score.
    empty = faces.scan_image_faces(image, model, lambda frame: [])
    assert empty.score is None and empty.error_kind == "no_faces" and empty.path == "group.png"


# -- real faces (weights needed) -----------------------------------------------------------------
@pytest.fixture(scope="module")
def detector() -> MTCNN:
    torch.set_num_threads(1)
    return MTCNN.from_weights()


def _grace_hopper() -> np.ndarray:
    cbook = pytest.importorskip("matplotlib.cbook")
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as image:
        return np.asarray(image.convert("RGB"))


@needs_weights
def test_astronaut_face_box_and_landmarks(detector: MTCNN) -> None:
    data = pytest.importorskip("skimage.data")
    found = detector.detect(data.astronaut())
    assert len(found) == 1
    face = found[0]
    assert face.probability > 0.99
    assert box_iou(ASTRONAUT_FACE, np.array([face.box]))[0] > 0.6
    (left_eye, right_eye, nose, mouth_left, mouth_right) = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0]
    assert left_eye[1] < nose[1] < mouth_left[1] and right_eye[1] < nose[1] < mouth_right[1]
    x1, y1, x2, y2 = face.box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)


@needs_weights
def test_grace_hopper_face_box(detector: MTCNN) -> None:
    found = detector.detect(_grace_hopper())
    assert len(found) == 1
    assert box_iou(GRACE_HOPPER_FACE, np.array([found[0].box]))[0] > 0.6


@needs_weights
def test_images_without_faces_give_none(detector: MTCNN) -> None:
    data = pytest.importorskip("skimage.data")
    assert detector.detect(data.coffee()) == []
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []


@needs_weights
def test_cropper_cuts_square_margin_crops_around_the_face(detector: MTCNN) -> None:
    data = pytest.importorskip("skimage.data")
    image = data.astronaut()
    cropper = FaceCropper(detector, margin=0.3)
    crops = cropper.crops(image)
    assert len(crops) == 1
    crop = crops[0]
    x1, y1, x2, y2 = crop.region
    assert crop.pixels.shape == (y2 - y1, x2 - x1, 3) and y2 - y1 == x2 - x1
    assert np.array_equal(crop.pixels, image[y1:y2, x1:x2])
    fx1, fy1, fx2, fy2 = crop.detection.box
    assert x1 <= fx1 and y1 <= fy1 and fx2 <= x2 and fy2 <= y2  # the margin holds the face
    assert (x2 - x1) == pytest.approx(1.3 * max(fx2 - fx1, fy2 - fy1), abs=1.5)
    # The hook form: a list of pixel arrays, resized when asked.
    resized = FaceCropper(detector, output_size=64)(image)
    assert [c.pixels.shape for c in resized] == [(64, 64, 3)]
    assert resized[0].box == tuple(int(v) for v in resized[0].box) and resized[0].confidence > 0.99
    assert FaceCropper(detector)(data.coffee()) == []


@needs_weights
def test_cropper_plugs_into_the_video_scan(detector: MTCNN) -> None:
    """The cropper is the video scan's face_cropper hook: per-frame faces, boxes, no-face frames."""
    data = pytest.importorskip("skimage.data")
    from fakescope.video.decode import VideoFrame
    from fakescope.video.scan import score_frames

    pictures = [data.astronaut(), data.coffee(), _grace_hopper()]
    frames = [VideoFrame(i, i * 0.04, i == 0, pixels) for i, pixels in enumerate(pictures)]
    cropper = FaceCropper(detector)
    scored = list(score_frames(frames, load_model(), face_cropper=cropper))
    assert [frame.faces for frame in scored] == [1, 0, 1]
    assert scored[1].score is None and scored[1].face_box is None
    assert scored[0].face_box == cropper(pictures[0])[0].box
    assert scored[0].score is not None and scored[2].score is not None


@needs_weights
def test_cropper_pickles_as_weight_paths_for_worker_processes(detector: MTCNN) -> None:
    import pickle

    cropper = FaceCropper(detector, margin=0.2)
    payload = pickle.dumps(cropper)
    assert len(payload) < 20_000  # paths and settings, not the networks' tensors
    clone = pickle.loads(payload)
    data = pytest.importorskip("skimage.data")
    assert [c.box for c in clone(data.astronaut())] == [c.box for c in cropper(data.astronaut())]
    assert clone.margin == 0.2 and clone.detector.min_face_size == detector.min_face_size


def test_cli_face_mode_without_weights_is_a_usage_error(monkeypatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from fakescope.cli.main import app

    monkeypatch.setenv("FAKESCOPE_WEIGHTS_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["scan", str(tmp_path), "--faces"])
    assert result.exit_code == 2
    assert "fakescope weights fetch mtcnn-pnet" in " ".join(result.output.split())
