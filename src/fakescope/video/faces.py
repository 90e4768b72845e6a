"""Face detection with MTCNN (Zhang et al. 2016) and margin-padded face crops for face mode.

MTCNN is a cascade of three small networks run on an image pyramid:

1. **P-Net**, fully convolutional, slides a 12x12 window (stride 2) over every pyramid level and
   proposes candidate boxes with a face probability and a box regression;
2. **R-Net** re-scores each candidate from a 24x24 crop and refines its box;
3. **O-Net** does the same from a 48x48 crop and adds five landmarks (eyes, nose, mouth
   corners).

Between the stages, non-maximum suppression (NMS) removes overlapping boxes and the boxes are
made square. The networks are written here in plain torch and load the state dicts that ship in
the ``facenet-pytorch`` wheel (``fakescope weights fetch mtcnn-pnet`` / ``-rnet`` / ``-onet``);
facenet-pytorch itself is never imported, nor torchvision (its NMS is reimplemented below).

Face mode follows the ForgeryNet and DeepfakeBench protocols: each detected face is cut out with
a margin (the blending boundary of a face swap lies just outside the tight box), the crop is
scored, and the video or image is reported by its most suspicious face, as commercial APIs do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional

from fakescope.errors import WeightsMissingError
from fakescope.results import ScanResult

if TYPE_CHECKING:
    from fakescope.calibration.model import CalibratedModel
    from fakescope.io.image import LoadedImage

MTCNN_WEIGHT_NAMES = {"pnet": "mtcnn-pnet", "rnet": "mtcnn-rnet", "onet": "mtcnn-onet"}
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# The networks were trained on pixels mapped to [-1, 1) this way.
_PIXEL_MEAN = 127.5
_PIXEL_SCALE = 1 / 128
_PNET_WINDOW = 12  # P-Net sees 12x12 windows...
_PNET_STRIDE = 2  # ...every 2 pixels (its one 2x2 max-pool)
_STAGE_BATCH = 256  # R-/O-Net crops per forward pass, to bound memory on crowded frames


# -- the three networks --------------------------------------------------------------------------
def _flatten_like_caffe(features: torch.Tensor) -> torch.Tensor:
    # The weights come from the authors' Caffe model, trained on transposed (column-major)
    # images; the dense layers therefore expect the feature map flattened as (W, H, C).
    return features.permute(0, 3, 2, 1).reshape(features.shape[0], -1)


class ProposalNet(nn.Module):
    """P-Net: per 12x12 window, a face probability and a box regression (fully convolutional)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)  # face / not-face logits
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)  # box offsets dx1, dy1, dx2, dy2

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> face probability (N, H', W') and regression (N, 4, H', W')."""
        x = self.prelu1(self.conv1(pixels))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        probability = torch.softmax(self.conv4_1(x), dim=1)[:, 1]
        return probability, self.conv4_2(x)


class RefineNet(nn.Module):
    """R-Net: re-scores and refines each 24x24 candidate."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 24, 24) -> face probability (N,) and regression (N, 4)."""
        x = self.pool1(self.prelu1(self.conv1(crops)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_like_caffe(x)))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class OutputNet(nn.Module):
    """O-Net: final score, box and five landmarks from 48x48 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)  # 5 landmark x's, then 5 y's, relative to the box

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, 48, 48) -> probability (N,), regression (N, 4), landmarks (N, 10)."""
        x = self.pool1(self.prelu1(self.conv1(crops)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_like_caffe(x)))
        probability = torch.softmax(self.dense6_1(x), dim=1)[:, 1]
        return probability, self.dense6_2(x), self.dense6_3(x)


# -- box arithmetic (numpy; boxes are float (N, 4) arrays of x1, y1, x2, y2 in pixels) ----------
def box_iou(box: Sequence[float], others: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with each row of ``others``."""
    others = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    intersection = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    other_areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + other_areas - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)


def non_maximum_suppression(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, *, overlap: str = "union"
) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS, highest score first.

    A box is dropped when its overlap with an already kept box exceeds ``threshold``. Overlap is
    intersection over union, or with ``overlap="min"`` intersection over the smaller area: the
    last MTCNN stage uses "min" so that a small box nested inside a face box is removed too.
    """
    if overlap not in ("union", "min"):
        raise ValueError(f"overlap must be 'union' or 'min', not {overlap!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        intersection = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        if overlap == "min":
            denominator = np.minimum(areas[best], areas[rest])
        else:
            denominator = areas[best] + areas[rest] - intersection
        ratio = intersection / np.maximum(denominator, 1e-12)
        order = rest[ratio <= threshold]
    return np.asarray(keep, dtype=np.int64)


def apply_box_regression(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each edge by its predicted offset, in units of the box's width or height."""
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes + offsets * size


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (the next stage's input is square)."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    x1 = boxes[:, 0] + (width - side) / 2
    y1 = boxes[:, 1] + (height - side) / 2
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


# -- detection -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceDetection:
    """One face: its box (x1, y1, x2, y2 in pixels), O-Net probability and five landmarks."""

    box: tuple[float, float, float, float]
    probability: float
    landmarks: tuple[tuple[float, float], ...]  # LANDMARK_NAMES order, (x, y) each

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(value, 1) for value in self.box],
            "probability": round(self.probability, 4),
            "landmarks": {
                name: [round(x, 1), round(y, 1)]
                for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks, strict=True)
            },
        }


def _load_state_dict(network: nn.Module, path: Path) -> nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    return network.eval()


def resolve_mtcnn_weights() -> dict[str, Path]:
    """The verified local files of the three networks; one error naming every missing one."""
    from fakescope.weights import resolve_weights

    paths: dict[str, Path] = {}
    missing: list[str] = []
    for stage, name in MTCNN_WEIGHT_NAMES.items():
        try:
            paths[stage] = resolve_weights(name)
        except WeightsMissingError:
            missing.append(name)
    if missing:
        commands = " && ".join(f"fakescope weights fetch {name}" for name in missing)
        raise WeightsMissingError(
            f"MTCNN face-detector weights {', '.join(missing)} are not installed or fail their "
            f"SHA-256 check; install them with `{commands}` (one facenet-pytorch wheel, "
            "downloaded with pip --no-deps and never installed)"
        )
    return paths


class MTCNN:
    """The three-stage face detector; ``detect(rgb_uint8)`` -> faces, most probable first.

    ``min_face_size`` is the smallest face (in pixels of the input) searched for: it sets the
    first pyramid level, and so most of the cost (a 1080p frame at 20 px costs about four times
    as much as at 40 px). ``thresholds`` are the face probabilities each stage needs;
    ``scale_factor`` is the ratio between pyramid levels (0.709 = 1/sqrt(2), the paper's).
    """

    def __init__(
        self,
        pnet: ProposalNet,
        rnet: RefineNet,
        onet: OutputNet,
        *,
        min_face_size: float = 20.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
    ) -> None:
        if min_face_size < _PNET_WINDOW:
            raise ValueError(f"min_face_size must be at least {_PNET_WINDOW} pixels")
        if not 0 < scale_factor < 1:
            raise ValueError("scale_factor must be between 0 and 1")
        self.pnet, self.rnet, self.onet = pnet.eval(), rnet.eval(), onet.eval()
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.weight_paths: dict[str, Path] | None = None

    @classmethod
    def from_weights(cls, weight_paths: dict[str, Path] | None = None, **options: Any) -> MTCNN:
        """Build the detector from the cached weights (or explicit ``{"pnet": path, ...}``)."""
        paths = weight_paths or resolve_mtcnn_weights()
        detector = cls(
            _load_state_dict(ProposalNet(), paths["pnet"]),
            _load_state_dict(RefineNet(), paths["rnet"]),
            _load_state_dict(OutputNet(), paths["onet"]),
            **options,
        )
        detector.weight_paths = dict(paths)
        return detector

    # A scan engine ships its options (the face cropper included) to worker processes: send the
    # weight files' paths, not 2 MB of pickled tensors, and load them again on arrival.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if state.get("weight_paths"):
            del state["pnet"], state["rnet"], state["onet"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "pnet" not in state:
            paths = state["weight_paths"]
            self.pnet = _load_state_dict(ProposalNet(), paths["pnet"])
            self.rnet = _load_state_dict(RefineNet(), paths["rnet"])
            self.onet = _load_state_dict(OutputNet(), paths["onet"])

    # The pyramid: level k shows the image at scale (12 / min_face_size) * factor**k, so that a
    # face of min_face_size pixels fills P-Net's 12-pixel window at level 0; levels stop when
    # the short side drops below the window.
    def pyramid_scales(self, height: int, width: int) -> list[float]:
        scale = _PNET_WINDOW / self.min_face_size
        scales = []
        while min(height, width) * scale >= _PNET_WINDOW:
            scales.append(scale)
            scale *= self.scale_factor
        return scales

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in an RGB uint8 image (H, W, 3), highest probability first."""
        image = np.asarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
        height, width = image.shape[:2]
        pixels = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
        boxes, scores = self._propose(image)
        if len(boxes):
            boxes, scores = self._refine(pixels, boxes)
        if not len(boxes):
            return []
        boxes, scores, landmarks = self._output(pixels, boxes)
        detections = []
        for box, score, points in zip(boxes, scores, landmarks, strict=True):
            x1, y1 = max(float(box[0]), 0.0), max(float(box[1]), 0.0)
            x2, y2 = min(float(box[2]), float(width)), min(float(box[3]), float(height))
            if x2 <= x1 or y2 <= y1:
                continue
            detections.append(
                FaceDetection(
                    box=(x1, y1, x2, y2),
                    probability=float(score),
                    landmarks=tuple((float(x), float(y)) for x, y in points),
                )
            )
        return detections

    def _propose(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        candidates: list[np.ndarray] = []
        candidate_scores: list[np.ndarray] = []
        picture = Image.fromarray(image)
        for scale in self.pyramid_scales(height, width):
            size = (math.ceil(width * scale), math.ceil(height * scale))
            # A box filter (area averaging) so the levels do not alias; Pillow's is several
            # times faster than torch's adaptive pooling at non-integer ratios on uint8 frames.
            level = np.asarray(picture.resize(size, Image.Resampling.BOX), dtype=np.float32)
            level_pixels = torch.from_numpy(level).permute(2, 0, 1)[None]
            probability, regression = self.pnet((level_pixels - _PIXEL_MEAN) * _PIXEL_SCALE)
            probability = probability[0].numpy()
            rows, cols = np.nonzero(probability >= self.thresholds[0])
            if not rows.size:
                continue
            # Each output cell is a 12x12 window of this level, mapped back to image pixels.
            x1 = cols * _PNET_STRIDE / scale
            y1 = rows * _PNET_STRIDE / scale
            windows = np.stack([x1, y1, x1 + _PNET_WINDOW / scale, y1 + _PNET_WINDOW / scale], 1)
            offsets = regression[0].numpy()[:, rows, cols].T
            scores = probability[rows, cols]
            keep = non_maximum_suppression(windows, scores, 0.5)
            candidates.append(apply_box_regression(windows[keep], offsets[keep]))
            candidate_scores.append(scores[keep])
        if not candidates:
            return np.zeros((0, 4)), np.zeros(0)
        boxes, scores = np.concatenate(candidates), np.concatenate(candidate_scores)
        keep = non_maximum_suppression(boxes, scores, 0.7)
        return square_boxes(boxes[keep]), scores[keep]

    def _refine(self, pixels: torch.Tensor, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        crops = crop_and_resize(pixels, boxes, 24)
        probability, regression = _batched(self.rnet, crops)
        passed = probability >= self.thresholds[1]
        boxes, scores, offsets = boxes[passed], probability[passed], regression[passed]
        keep = non_maximum_suppression(boxes, scores, 0.7)
        return square_boxes(apply_box_regression(boxes[keep], offsets[keep])), scores[keep]

    def _output(
        self, pixels: torch.Tensor, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        crops = crop_and_resize(pixels, boxes, 48)
        probability, regression, points = _batched(self.onet, crops)
        passed = probability >= self.thresholds[2]
        boxes, scores = boxes[passed], probability[passed]
        regression, points = regression[passed], points[passed]
        # Landmarks are fractions of the (pre-regression) box that O-Net saw.
        width = (boxes[:, 2] - boxes[:, 0])[:, None]
        height = (boxes[:, 3] - boxes[:, 1])[:, None]
        landmarks = np.stack(
            [boxes[:, :1] + points[:, :5] * width, boxes[:, 1:2] + points[:, 5:] * height],
            axis=2,
        )
        boxes = apply_box_regression(boxes, regression)
        keep = non_maximum_suppression(boxes, scores, 0.7, overlap="min")
        return boxes[keep], scores[keep], landmarks[keep]


def crop_and_resize(pixels: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Normalised (N, 3, size, size) crops of ``boxes``; parts outside the image are black.

    Black padding, rather than clamping the box to the image, keeps a face at the border in the
    same place of the crop as in training (the authors' code pads with zeros too).
    """
    height, width = pixels.shape[2:]
    crops = torch.empty((len(boxes), 3, size, size))
    for index, box in enumerate(np.round(boxes).astype(np.int64)):
        x1, y1, x2, y2 = (int(v) for v in box)
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        region = torch.zeros((1, 3, y2 - y1, x2 - x1))
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if sx2 > sx1 and sy2 > sy1:
            region[:, :, sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = pixels[:, :, sy1:sy2, sx1:sx2]
        crops[index] = functional.interpolate(region, size=(size, size), mode="area")[0]
    return (crops - _PIXEL_MEAN) * _PIXEL_SCALE


def _batched(network: nn.Module, crops: torch.Tensor) -> tuple[np.ndarray, ...]:
    outputs = [
        network(crops[start : start + _STAGE_BATCH]) for start in range(0, len(crops), _STAGE_BATCH)
    ]
    if not outputs:
        return tuple(np.zeros((0,)) for _ in range(3))
    return tuple(
        torch.cat(parts).numpy().astype(np.float64) for parts in zip(*outputs, strict=True)
    )


# -- face crops ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceCrop:
    """A face cut out of a frame: the pixels, the region cut (x1, y1, x2, y2) and the face.

    ``box`` and ``confidence`` are what the video scan's ``face_cropper`` hook reads
    (:mod:`fakescope.video.scan`): the face's own box, not the margin-padded region.
    """

    pixels: np.ndarray
    region: tuple[int, int, int, int]
    detection: FaceDetection

    @property
    def box(self) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = self.detection.box
        return (math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2))

    @property
    def confidence(self) -> float:
        return self.detection.probability

    def to_evidence(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "crop": list(self.region),
            "confidence": round(self.confidence, 4),
        }


def square_region(
    box: Sequence[float], margin: float, height: int, width: int
) -> tuple[int, int, int, int]:
    """The square around ``box`` grown by ``margin`` (0.3 = 30 % wider), kept inside the image.

    A square that crosses the border is shifted back inside rather than padded, so the crop
    holds only real pixels (a black band would itself look like an artefact to a detector);
    only a square larger than the image is cut down to it.
    """
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = round(max(box[2] - box[0], box[3] - box[1]) * (1 + margin))
    side = max(1, min(side, height, width))
    x1 = round(min(max(centre_x - side / 2, 0), width - side))
    y1 = round(min(max(centre_y - side / 2, 0), height - side))
    return x1, y1, x1 + side, y1 + side


class FaceCropper:
    """frame (H, W, 3 uint8) -> margin-padded square face crops, most probable face first.

    This is the ``face_cropper`` hook of the video scan (:class:`fakescope.video.scan.
    VideoScanOptions`): ``cropper(frame)`` returns :class:`FaceCrop` objects (``.pixels``,
    ``.box``, ``.confidence``). ``margin`` follows the common deepfake-benchmark preprocessing
    (DeepfakeBench enlarges the box by 1.3x, so the blending boundary of a swap is inside the
    crop); ``output_size`` resizes every crop to one square size (None keeps the native pixels:
    resampling would add its own spectral traces). Faces below ``min_probability`` are dropped
    and at most ``max_faces`` are kept. ``min_face_size`` (pixels) sets the detector's cost; 40
    finds any face a frame-level detector could judge.
    """

    def __init__(
        self,
        detector: MTCNN | None = None,
        *,
        margin: float = 0.3,
        output_size: int | None = None,
        min_probability: float = 0.9,
        max_faces: int = 8,
        min_face_size: float = 40.0,
    ) -> None:
        if margin < 0:
            raise ValueError("margin must be >= 0")
        if max_faces < 1:
            raise ValueError("max_faces must be >= 1")
        self.detector = detector or MTCNN.from_weights(min_face_size=min_face_size)
        self.margin = margin
        self.output_size = output_size
        self.min_probability = min_probability
        self.max_faces = max_faces

    def crops(self, frame: np.ndarray) -> list[FaceCrop]:
        frame = np.asarray(frame)
        height, width = frame.shape[:2]
        faces = [f for f in self.detector.detect(frame) if f.probability >= self.min_probability]
        crops = []
        for face in faces[: self.max_faces]:
            x1, y1, x2, y2 = square_region(face.box, self.margin, height, width)
            pixels = np.ascontiguousarray(frame[y1:y2, x1:x2])
            if self.output_size is not None and pixels.shape[0] != self.output_size:
                pixels = _resize(pixels, self.output_size)
            crops.append(FaceCrop(pixels=pixels, region=(x1, y1, x2, y2), detection=face))
        return crops

    def __call__(self, frame: np.ndarray) -> list[FaceCrop]:
        return self.crops(frame)


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC))


# -- face mode for still images ------------------------------------------------------------------
def scan_image_faces(
    image: LoadedImage, model: CalibratedModel, cropper: FaceCropper
) -> ScanResult:
    """Score every face of a decoded image; the image's score is its most suspicious face.

    The row's evidence lists each face (box, crop region, detector confidence, score) under
    ``faces``; an image without a usable face is an error row of kind ``no_faces``, as a video
    is in the video scan (face mode never falls back to the whole frame silently).
    """
    from fakescope.pipeline.scan import detector_scores
    from fakescope.video.scan import NoFacesError

    path = image.path or ""
    crops = [
        c for c in cropper(image.pixels) if min(c.pixels.shape[:2]) >= model.detector.min_image_side
    ]
    if not crops:
        return ScanResult.failure(
            path,
            NoFacesError("no usable face in the image (face mode scores faces only)", path),
            sha256=image.sha256,
        )
    scores, evidence = model.detector.predict_with_evidence([crop.pixels for crop in crops])
    worst = int(np.argmax(scores))
    score = float(scores[worst])
    detectors, extra = detector_scores(model.detector.name, score, evidence[worst])
    faces = [
        {**crop.to_evidence(), "score": round(float(s), 6)}
        for crop, s in zip(crops, scores, strict=True)
    ]
    return ScanResult(
        path=path,
        sha256=image.sha256,
        score=round(score, 6),
        verdict=model.verdicts(np.array([score]))[0],
        detectors=detectors,
        evidence={
            **image.metadata.to_evidence(),
            **extra,
            "faces": {
                "mode": "faces",
                "faces_scored": len(crops),
                "most_suspicious_face": faces[worst],
                "all": faces,
            },
        },
    )
