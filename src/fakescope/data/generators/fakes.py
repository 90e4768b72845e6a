"""Turn real tiles into fake tiles with any generator, matching their JPEG history and format.

A generator is any function from an (N, H, W, 3) ``uint8`` batch to a batch of the same shape
(e.g. ``functools.partial(autoencoder.reconstruct, model)``). Each output is JPEG round-tripped
at the estimated quality and chroma subsampling of the photo its tile came from, when that photo
was a JPEG, and saved as PNG under the tile's own name, so file format, JPEG quality and content
are the same in both classes and only the generator's traces differ (Grommelt et al. 2024).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fakescope.data.generators.jpeg import jpeg_round_trip
from fakescope.data.tiles import TileRecord, save_png

Generator = Callable[[np.ndarray], np.ndarray]


def match_jpeg_history(pixels: np.ndarray, record: TileRecord) -> np.ndarray:
    """JPEG round trip at the source photo's quality when it was a JPEG; else unchanged."""
    if record.source_format in ("JPEG", "MPO") and record.jpeg_quality is not None:
        return jpeg_round_trip(pixels, record.jpeg_quality, record.jpeg_subsampling or None)
    return pixels


def write_fakes(
    generate: Generator,
    records: Sequence[TileRecord],
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 16,
) -> list[Path]:
    """Generate a fake for every tile in ``records``; write ``out_dir/<tile name>.png``."""
    written: list[Path] = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        batch = np.stack([np.asarray(Image.open(r.path).convert("RGB")) for r in chunk])
        fakes = generate(batch)
        if fakes.shape != batch.shape or fakes.dtype != np.uint8:
            raise ValueError(f"generator returned {fakes.shape} {fakes.dtype}, not {batch.shape}")
        for record, fake in zip(chunk, fakes, strict=True):
            written.append(
                save_png(match_jpeg_history(fake, record), Path(out_dir) / f"{record.name}.png")
            )
    return written
