"""The NPR detector: Tan et al. CVPR 2024, "Rethinking the up-sampling operations in CNN-based
generative network for generalizable deepfake detection".

Generators upsample; after 2x upsampling the pixels of each 2x2 cell are related in a way that
camera images are not. The network (:mod:`fakescope.detectors.npr.network`) computes the
neighbouring-pixel-relation residual ``x - up(down(x))`` of the normalised input inside its
forward pass (so an ONNX export carries it) and classifies it with a small residual CNN trained
from scratch. Training, inference and persistence are :class:`TorchDetector`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fakescope.detectors.torch_detector import TorchDetector
from fakescope.nn.preprocess import InputConfig

if TYPE_CHECKING:
    import torch

#: The 2x2 cell offsets (row, column) at which :func:`phase_residual_rms` measures the residual.
PHASES: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))


def phase_residual_rms(pixels: np.ndarray) -> np.ndarray:
    """RMS of the NPR residual (grey levels, all channels) for each 2x2 grid offset in PHASES.

    Offset (0, 0) is what the network sees. Shifting the grid shows whether the image is
    locally constant on *some* 2x2 grid: a 2x nearest-upsampled image has a zero residual at its
    own offset and a normal one at the others, a camera image about the same at all four.
    """
    values = []
    for top, left in PHASES:
        part = pixels[top:, left:].astype(np.float32)
        height, width = part.shape[0] // 2 * 2, part.shape[1] // 2 * 2
        part = part[:height, :width]
        anchors = np.repeat(np.repeat(part[::2, ::2], 2, axis=0), 2, axis=1)
        values.append(float(np.sqrt(np.mean((part - anchors) ** 2))) if part.size else 0.0)
    return np.asarray(values)


class NPRDetector(TorchDetector):
    """NPR residual (2x nearest down/up) -> small ResNet from scratch -> one logit."""

    name = "npr"

    def __init__(
        self,
        crop_size: int = 256,
        width: int = 24,
        stages: int = 3,
        epochs: int = 5,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        blur_prob: float = 0.1,
        jpeg_prob: float = 0.1,
        random_state: int = 0,
        threads: int = 0,
        crop_grid: int = 1,
    ) -> None:
        self.crop_size = crop_size
        self.width = width
        self.stages = stages
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.blur_prob = blur_prob
        self.jpeg_prob = jpeg_prob
        self.random_state = random_state
        self.threads = threads
        self.crop_grid = crop_grid

    def check_params(self) -> None:
        super().check_params()
        crop = int(self.crop_size)
        # Even, so that 2x2 cells tile a crop and the residual's grid stays aligned with it.
        if crop < 16 or crop % 2:
            raise ValueError(f"crop_size must be an even number >= 16, got {self.crop_size}")
        if int(self.width) < 4:
            raise ValueError(f"width must be at least 4, got {self.width}")
        if not 1 <= int(self.stages) <= 5:
            raise ValueError(f"stages must be between 1 and 5, got {self.stages}")

    def input_config(self) -> InputConfig:
        return InputConfig(crop_size=int(self.crop_size))

    def build_network(self) -> torch.nn.Module:
        from fakescope.detectors.npr.network import NPRNetwork

        return NPRNetwork(width=int(self.width), stages=int(self.stages))

    # -- evidence ----------------------------------------------------------------------------
    def explain(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        return self.predict_with_evidence(images)[1]

    def predict_with_evidence(
        self, images: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Scores, plus the logit and the residual statistics of the crop that was scored.

        ``npr_residual_rms``: the residual's RMS in grey levels at the grid the network uses;
        ``npr_phase_ratio``: smallest over largest RMS across the four 2x2 grid offsets, near 1
        for camera images and near 0 for images that are constant on 2x2 cells (2x nearest
        upsampling), 1 for a flat crop. They describe the input, not the network's reasoning.
        """
        from scipy.special import expit

        logits = self.predict_logits(images)
        config = self.input_config()
        evidence: list[dict[str, Any]] = []
        for logit, image in zip(logits, images, strict=True):
            rms = phase_residual_rms(config.centre_crop(image))
            evidence.append(
                {
                    "npr_logit": round(float(logit), 4),
                    "npr_residual_rms": round(float(rms[0]), 4),
                    "npr_phase_ratio": round(float(rms.min() / rms.max()) if rms.max() else 1.0, 4),
                }
            )
        return expit(logits), evidence
