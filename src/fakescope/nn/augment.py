"""Seeded, replayable training augmentation: Wang et al. 2020's blur + JPEG recipe, and flips.

The operations themselves are the perturbations of :mod:`fakescope.data.perturb` (exact
Gaussian blur, real JPEG round trips), so training sees exactly what ``data perturb`` writes.
Each image draws from its own generator derived from ``(seed, epoch, index)``, so an epoch can
be replayed bit for bit and does not depend on batch order or worker count; the returned record
says what was applied.

Wang et al.'s "Blur+JPEG (0.5)": blur with sigma ~ U[0, 3] with probability 0.5, then JPEG with
quality ~ U[30, 100] with probability 0.5. Both probabilities and ranges are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fakescope.data.perturb import Perturbation, derive_seed, parse_step


@dataclass(frozen=True)
class TrainingAugment:
    """Random horizontal flip, blur and JPEG, each applied with its own probability."""

    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (30, 100)
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("blur_prob", "jpeg_prob", "flip_prob"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        low, high = self.blur_sigma
        if not 0.0 <= low <= high:
            raise ValueError(f"blur_sigma must be 0 <= low <= high, got {self.blur_sigma}")
        q_low, q_high = self.jpeg_quality
        if not 1 <= q_low <= q_high <= 100:
            raise ValueError(f"jpeg_quality must be 1 <= low <= high <= 100: {self.jpeg_quality}")

    @property
    def _blur(self) -> Perturbation:
        low, high = self.blur_sigma
        return parse_step(f"blur:{low}-{high}" if high > low else f"blur:{low}")

    @property
    def _jpeg(self) -> Perturbation:
        low, high = self.jpeg_quality
        return parse_step(f"jpeg:{low}-{high}" if high > low else f"jpeg:{low}")

    def rng_for(self, seed: int, epoch: int, index: int) -> np.random.Generator:
        """The generator of one image in one epoch (independent of batch order)."""
        return np.random.default_rng(derive_seed(seed, f"augment/{epoch}/{index}"))

    def __call__(
        self, pixels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Augment one RGB uint8 image; returns the image and the records of what was applied."""
        records: list[dict[str, Any]] = []
        if rng.random() < self.flip_prob:
            pixels = np.ascontiguousarray(pixels[:, ::-1])
            records.append({"name": "hflip", "params": {}})
        if rng.random() < self.blur_prob:
            result = self._blur(pixels, rng)
            pixels, records = result.pixels, [*records, result.record]
        if rng.random() < self.jpeg_prob:
            result = self._jpeg(pixels, rng)
            pixels, records = result.pixels, [*records, result.record]
        return pixels, records
