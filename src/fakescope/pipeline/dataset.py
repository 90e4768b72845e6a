"""Decoding a labelled dataset into memory, keeping going past bad files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fakescope.data.layout import LabelledItem
from fakescope.errors import InputError
from fakescope.io.image import load_image, require_min_side

ProgressCallback = Callable[[int], None]


@dataclass
class DecodedDataset:
    items: list[LabelledItem]
    images: list[np.ndarray]
    errors: list[InputError] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([item.label for item in self.items], dtype=np.int64)


def describe_errors(errors: Sequence[InputError], root: str | Path, limit: int = 20) -> list[str]:
    """The first ``limit`` errors as ``relative/path: reason``, for reports and model files."""
    lines = []
    for error in errors[:limit]:
        path = Path(error.path or "")
        relative = path.relative_to(root) if path.is_relative_to(root) else path.name
        lines.append(f"{relative}: {error.message}")
    return lines


def decode_items(
    items: Sequence[LabelledItem],
    on_progress: ProgressCallback | None = None,
    min_side: int = 1,
) -> DecodedDataset:
    """Decode every item; undecodable or too small files are left out, listed in ``errors``."""
    kept: list[LabelledItem] = []
    images: list[np.ndarray] = []
    errors: list[InputError] = []
    for item in items:
        try:
            image = load_image(item.path)
            require_min_side(image, min_side)
            images.append(image.pixels)
            kept.append(item)
        except InputError as exc:
            errors.append(exc)
        if on_progress is not None:
            on_progress(1)
    return DecodedDataset(kept, images, errors)
