"""Decoding a labelled dataset into memory, keeping going past bad files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fakescope.data.layout import LabelledItem
from fakescope.errors import InputError
from fakescope.io.image import load_image

ProgressCallback = Callable[[int], None]


@dataclass
class DecodedDataset:
    items: list[LabelledItem]
    images: list[np.ndarray]
    errors: list[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([item.label for item in self.items], dtype=np.int64)


def decode_items(
    items: Sequence[LabelledItem], on_progress: ProgressCallback | None = None
) -> DecodedDataset:
    """Decode every item; undecodable files are left out and listed in ``errors``."""
    kept: list[LabelledItem] = []
    images: list[np.ndarray] = []
    errors: list[str] = []
    for item in items:
        try:
            images.append(load_image(item.path).pixels)
            kept.append(item)
        except InputError as exc:
            errors.append(str(exc))
        if on_progress is not None:
            on_progress(1)
    return DecodedDataset(kept, images, errors)
