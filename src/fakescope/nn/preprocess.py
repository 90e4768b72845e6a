"""What a network expects as input, carried with the model (the timm "pretrained config" idea).

Artifact detectors must never resample: resizing erases the very traces they look for (Wang et
al. 2020 test on centre crops at native resolution). So preprocessing is crop + normalise only:

- training: a random ``crop_size`` square crop per image (plus augmentation, see
  :mod:`fakescope.nn.augment`);
- inference: the centre ``crop_size`` crop; an image smaller than that on a side keeps its own
  size on that side, and images are batched by their cropped shape (the networks end in global
  pooling, so any size works).

A model whose backbone was trained on resized inputs (CLIP) declares ``resize=True`` instead; then
the short side is resized to ``crop_size`` (bicubic) before the centre crop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class InputConfig:
    """Crop size and normalisation of a network's input (RGB, values scaled to [0, 1] first)."""

    crop_size: int
    mean: Triple = (0.5, 0.5, 0.5)
    std: Triple = (0.5, 0.5, 0.5)
    resize: bool = False  # resize the short side to crop_size first (only for CLIP-like models)

    def __post_init__(self) -> None:
        if int(self.crop_size) < 8:
            raise ValueError(f"crop_size must be at least 8, got {self.crop_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need three values each, std positive")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputConfig:
        return cls(
            crop_size=int(data["crop_size"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            resize=bool(data.get("resize", False)),
        )

    # -- crops -------------------------------------------------------------------------------
    def centre_crop(self, pixels: np.ndarray) -> np.ndarray:
        """The centre ``crop_size`` square (or less on a side that is shorter)."""
        if self.resize:
            pixels = resize_short_side(pixels, self.crop_size)
        height, width = pixels.shape[:2]
        crop_h, crop_w = min(height, self.crop_size), min(width, self.crop_size)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        return pixels[top : top + crop_h, left : left + crop_w]

    def grid_crops(self, pixels: np.ndarray, grid: int) -> list[np.ndarray]:
        """Up to ``grid`` x ``grid`` crops spread evenly from corner to corner (``grid`` 1: centre).

        Scoring a large image from its centre crop alone judges a small part of it; averaging
        the network over a grid of crops sees all of it at native resolution. Along a side no
        longer than ``crop_size`` there is one position.
        """
        if grid <= 1:
            return [self.centre_crop(pixels)]
        if self.resize:
            pixels = resize_short_side(pixels, self.crop_size)
        height, width = pixels.shape[:2]
        crop_h, crop_w = min(height, self.crop_size), min(width, self.crop_size)
        tops = _spread(height - crop_h, grid)
        lefts = _spread(width - crop_w, grid)
        return [pixels[t : t + crop_h, x : x + crop_w] for t in tops for x in lefts]

    def random_crop(self, pixels: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
        """A random ``size`` square crop (``size`` no larger than either side)."""
        if self.resize:
            pixels = resize_short_side(pixels, self.crop_size)
        height, width = pixels.shape[:2]
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        return pixels[top : top + size, left : left + size]

    # -- normalisation -----------------------------------------------------------------------
    def normalise(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, 3, H, W) float32, scaled to [0, 1] then standardised."""
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, 3, 1, 1)
        array = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        return (array - mean) / std


def _spread(slack: int, count: int) -> list[int]:
    """``count`` offsets from 0 to ``slack`` inclusive, evenly spaced, without repeats."""
    return sorted({round(v) for v in np.linspace(0, slack, count)}) if slack > 0 else [0]


def resize_short_side(pixels: np.ndarray, side: int) -> np.ndarray:
    """Bicubic resize so that the short side is ``side`` (aspect kept)."""
    from PIL import Image

    height, width = pixels.shape[:2]
    scale = side / min(height, width)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC))


def batches_by_shape(
    crops: Sequence[np.ndarray], batch_size: int
) -> Iterator[tuple[list[int], np.ndarray]]:
    """Group crops of equal shape into stacked batches; yields (original indices, batch)."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, crop in enumerate(crops):
        by_shape.setdefault(crop.shape, []).append(index)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            yield chunk, np.stack([crops[i] for i in chunk])


IMAGENET = InputConfig(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = InputConfig(
    224, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711), resize=True
)
