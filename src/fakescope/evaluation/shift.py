"""Shift consistency: does a verdict survive moving the crop by a few pixels?

R. Zhang (*Making Convolutional Networks Shift-Invariant Again*, ICML 2019) measures how often a
classifier's decision agrees on two crops of the same image taken a few pixels apart. For a
forensic detector this is a robustness requirement in its own right: where a crop starts is
arbitrary (a screenshot, a re-crop, a different tiling), so a verdict that flips under a 3-pixel
shift is a verdict nobody should act on. Strided CNNs often fail this because generator traces
are periodic (period 2, 4, 8) and a stride-2 network samples them at a shift-dependent phase.

The protocol: every image yields a *base* crop and shifted crops, all of the same size
``(H - max_dy, W - max_dx)``; the shifted crop starts ``(dy, dx)`` pixels further, so its content
is the base content moved by exactly that amount. Default shifts: 1..8 px horizontally,
vertically and diagonally (24 shifted crops per image). Reported: the fraction of (image, shift)
pairs whose verdict (``score >= threshold``) differs from the base crop's, the fraction of images
flipped by at least one shift, and the mean / max absolute change of the probability.

Works with anything that has ``predict_proba(images) -> (n,)``: any fakescope detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

DEFAULT_MAX_SHIFT = 8


class Scorer(Protocol):
    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class ShiftResult:
    """Flip rate and probability change for one shift ``(dy, dx)``, over all images."""

    dy: int
    dx: int
    flip_rate: float
    mean_abs_change: float


@dataclass(frozen=True)
class ShiftConsistency:
    """Summary of :func:`shift_consistency` (0 flips and 0 change = perfectly shift-invariant)."""

    n_images: int
    threshold: float
    crop_shape: tuple[int, int] | None  # the common crop size when all images share one
    flip_rate: float  # fraction of (image, shift) pairs whose verdict differs from the base
    images_flipped: float  # fraction of images whose verdict flips under at least one shift
    mean_abs_change: float  # mean |p(shifted) - p(base)| over (image, shift) pairs
    max_abs_change: float
    per_shift: tuple[ShiftResult, ...]

    @property
    def consistency(self) -> float:
        """Zhang's consistency: the fraction of pairs with the same verdict (1 - flip rate)."""
        return 1.0 - self.flip_rate

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["consistency"] = self.consistency
        data["per_shift"] = [asdict(s) for s in self.per_shift]
        return data


def default_shifts(max_shift: int = DEFAULT_MAX_SHIFT) -> list[tuple[int, int]]:
    """``(0, s)``, ``(s, 0)`` and ``(s, s)`` for ``s`` in 1..``max_shift``."""
    if max_shift < 1:
        raise ValueError(f"max_shift must be at least 1, got {max_shift}")
    steps = range(1, max_shift + 1)
    return [(0, s) for s in steps] + [(s, 0) for s in steps] + [(s, s) for s in steps]


def shifted_crops(
    pixels: np.ndarray, shifts: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The base crop and one crop per shift, all ``(H - max_dy, W - max_dx)``; views, no copy."""
    height, width = pixels.shape[:2]
    max_dy = max(dy for dy, _ in shifts)
    max_dx = max(dx for _, dx in shifts)
    crop_h, crop_w = height - max_dy, width - max_dx
    if crop_h < 1 or crop_w < 1:
        raise ValueError(
            f"image of {height}x{width} is too small for shifts up to {max_dy, max_dx}"
        )
    base = pixels[:crop_h, :crop_w]
    return base, [pixels[dy : dy + crop_h, dx : dx + crop_w] for dy, dx in shifts]


def shift_consistency(
    detector: Scorer,
    images: Sequence[np.ndarray],
    *,
    threshold: float = 0.5,
    max_shift: int = DEFAULT_MAX_SHIFT,
    shifts: Sequence[tuple[int, int]] | None = None,
    chunk_size: int = 8,
) -> ShiftConsistency:
    """Score every image's base and shifted crops with ``detector`` and compare the verdicts.

    ``shifts`` (non-negative ``(dy, dx)`` pairs) overrides the default set built from
    ``max_shift``. Images are scored ``chunk_size`` at a time (each with all its crops) to bound
    memory. ``threshold`` is the decision threshold: 0.5 for a raw detector, the calibrated
    threshold for a deployed model.
    """
    shift_list = [(int(dy), int(dx)) for dy, dx in (shifts or default_shifts(max_shift))]
    if not shift_list or any(dy < 0 or dx < 0 or dy == dx == 0 for dy, dx in shift_list):
        raise ValueError("shifts must be non-negative (dy, dx) pairs, not all zero")
    if not images:
        raise ValueError("shift_consistency needs at least one image")
    min_side = int(getattr(detector, "min_image_side", 1))
    n_shifts = len(shift_list)
    base_scores = np.empty(len(images), dtype=np.float64)
    shifted_scores = np.empty((len(images), n_shifts), dtype=np.float64)
    shapes: set[tuple[int, int]] = set()
    for start in range(0, len(images), max(1, chunk_size)):
        chunk = images[start : start + max(1, chunk_size)]
        crops: list[np.ndarray] = []
        for pixels in chunk:
            base, moved = shifted_crops(pixels, shift_list)
            if min(base.shape[:2]) < min_side:
                raise ValueError(
                    f"crops of {base.shape[0]}x{base.shape[1]} are smaller than the detector's "
                    f"minimum side {min_side}"
                )
            shapes.add((base.shape[0], base.shape[1]))
            crops += [base, *moved]
        scores = np.asarray(detector.predict_proba(crops), dtype=np.float64)
        scores = scores.reshape(len(chunk), n_shifts + 1)
        base_scores[start : start + len(chunk)] = scores[:, 0]
        shifted_scores[start : start + len(chunk)] = scores[:, 1:]
    flips = (shifted_scores >= threshold) != (base_scores >= threshold)[:, None]
    change = np.abs(shifted_scores - base_scores[:, None])
    per_shift = tuple(
        ShiftResult(dy, dx, float(flips[:, k].mean()), float(change[:, k].mean()))
        for k, (dy, dx) in enumerate(shift_list)
    )
    return ShiftConsistency(
        n_images=len(images),
        threshold=float(threshold),
        crop_shape=next(iter(shapes)) if len(shapes) == 1 else None,
        flip_rate=float(flips.mean()),
        images_flipped=float(flips.any(axis=1).mean()),
        mean_abs_change=float(change.mean()),
        max_abs_change=float(change.max()),
        per_shift=per_shift,
    )
