"""Cut photographs into fixed-size tiles without resampling, keeping where each tile came from.

Why these rules:

- **No resampling.** A tile is a plain crop of the decoded pixels. Resizing would low-pass the
  spectrum that the spectral detector measures, and do so differently for real and fake tiles.
- **Offsets are multiples of ``align`` (8 by default).** JPEG codes 8x8 blocks from the image
  origin; a crop at a multiple of 8 keeps that block grid at the tile's origin, so the blocking
  artefacts of the source sit where a later JPEG round trip of a fake tile puts its own
  (Grommelt et al. 2024). Use ``align=16`` to keep 4:2:0 chroma blocks aligned too.
- **Non-overlapping, seeded.** Tiles of one photo are drawn from a non-overlapping grid whose
  origin is chosen at random, then up to ``max_tiles`` grid cells are picked; the random stream
  is derived from ``(seed, photo_id)``, so adding a photo never changes another photo's tiles.
- **``photo_id`` travels with every tile** (also in the file name ``<photo_id>_<y>_<x>.png``),
  so a train/test split can be grouped by photo.
- **PNG output.** Lossless: a tile from a JPEG keeps exactly the source's JPEG artefacts.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin

from fakescope.data.records import record_columns, write_records_csv
from fakescope.io.image import load_image

TILE_SIZE = 256
# Offsets on a 16-pixel grid keep both the 8x8 luma blocks and the 16x16 4:2:0 chroma blocks of
# a JPEG source aligned with the tile's origin.
TILE_ALIGN = 16
# Tiles whose luma standard deviation is below this (blown-out sky, black borders) carry no
# spectral information and would be near-duplicates of each other.
TILE_MIN_STD = 2.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_TILE_NAME = re.compile(r"^(?P<photo_id>[^_]+)_(?P<y>\d+)_(?P<x>\d+)$")
# Pillow's subsampling codes from JpegImagePlugin.get_sampling: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
_SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


@dataclass(frozen=True)
class Tile:
    """A crop of ``size`` x ``size`` pixels at (``y``, ``x``) of photo ``photo_id``."""

    photo_id: str
    y: int
    x: int
    pixels: np.ndarray  # (size, size, 3) uint8

    @property
    def name(self) -> str:
        return tile_name(self.photo_id, self.y, self.x)


@dataclass(frozen=True)
class TileRecord:
    """One saved tile, as listed in ``tiles.csv``."""

    name: str
    photo_id: str
    y: int
    x: int
    path: str
    source_format: str
    jpeg_quality: int | None  # estimated quality of the source photo when it was a JPEG
    jpeg_subsampling: str  # of the source photo ("" when not a JPEG)


def tile_name(photo_id: str, y: int, x: int) -> str:
    """``<photo_id>_<y>_<x>``; photo ids must not contain ``_``."""
    if "_" in photo_id or not photo_id:
        raise ValueError(f"photo_id must be non-empty and free of '_': {photo_id!r}")
    return f"{photo_id}_{y}_{x}"


def parse_tile_name(name: str) -> tuple[str, int, int]:
    """Inverse of :func:`tile_name`; accepts a file name or path with any extension."""
    match = _TILE_NAME.match(Path(name).stem)
    if match is None:
        raise ValueError(f"not a tile name (<photo_id>_<y>_<x>): {name!r}")
    return match["photo_id"], int(match["y"]), int(match["x"])


def photo_rng(seed: int, photo_id: str) -> np.random.Generator:
    """A random stream per photo: stable whatever other photos are in the set."""
    key = int.from_bytes(hashlib.sha256(photo_id.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, key])


def tile_offsets(
    height: int,
    width: int,
    *,
    size: int = TILE_SIZE,
    align: int = 8,
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """All cells of a densest non-overlapping grid with a random aligned origin, shuffled."""
    if align <= 0 or size % align:
        raise ValueError(f"size {size} must be a positive multiple of align {align}")
    if height < size or width < size:
        return []

    def axis(length: int) -> np.ndarray:
        # The origin moves only within the slack that a densest grid leaves over, so the grid
        # always holds as many tiles as fit (a 512-pixel side gives 2, whatever the seed).
        last_origin = (length - size) % size // align * align
        origin = int(rng.integers(0, last_origin // align + 1)) * align
        return np.arange(origin, length - size + 1, size)

    ys, xs = axis(height), axis(width)
    cells = [(int(y), int(x)) for y in ys for x in xs]
    order = rng.permutation(len(cells))
    return [cells[i] for i in order]


def cut_tiles(
    pixels: np.ndarray,
    photo_id: str,
    *,
    size: int = TILE_SIZE,
    max_tiles: int | None = 16,
    seed: int = 0,
    align: int = 8,
    min_std: float = 0.0,
) -> list[Tile]:
    """Up to ``max_tiles`` crops of an (H, W, 3) ``uint8`` image, skipping near-uniform ones.

    ``min_std`` drops tiles whose luma standard deviation is below it (blown-out sky, black
    borders): they carry no spectral information and would be near-duplicates of each other.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 pixels, got {pixels.shape} {pixels.dtype}")
    tile_name(photo_id, 0, 0)  # validates the id before any work
    rng = photo_rng(seed, photo_id)
    tiles: list[Tile] = []
    for y, x in tile_offsets(pixels.shape[0], pixels.shape[1], size=size, align=align, rng=rng):
        if max_tiles is not None and len(tiles) >= max_tiles:
            break
        crop = pixels[y : y + size, x : x + size]
        if min_std > 0 and float(np.std(crop.astype(np.float32) @ _LUMA)) < min_std:
            continue
        tiles.append(Tile(photo_id, y, x, np.ascontiguousarray(crop)))
    return tiles


def save_png(pixels: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write RGB ``uint8`` pixels as PNG (lossless), creating the folder."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(out, format="PNG")
    return out


def jpeg_subsampling(path: str | os.PathLike[str]) -> str:
    """``"4:2:0"``, ``"4:2:2"``, ``"4:4:4"`` for a JPEG file, ``""`` otherwise or if unknown."""
    with Image.open(path) as image:
        if image.format not in ("JPEG", "MPO"):
            return ""
        return _SUBSAMPLING_NAMES.get(JpegImagePlugin.get_sampling(image), "")


def tile_photo(
    path: str | os.PathLike[str],
    photo_id: str,
    out_dir: str | os.PathLike[str],
    *,
    size: int = TILE_SIZE,
    max_tiles: int | None = 16,
    seed: int = 0,
    align: int = 8,
    min_std: float = 0.0,
) -> list[TileRecord]:
    """Decode a photo (EXIF orientation applied), cut its tiles and save them as PNG."""
    loaded = load_image(path)
    subsampling = jpeg_subsampling(path) if loaded.metadata.format in ("JPEG", "MPO") else ""
    tiles = cut_tiles(
        loaded.pixels,
        photo_id,
        size=size,
        max_tiles=max_tiles,
        seed=seed,
        align=align,
        min_std=min_std,
    )
    records = []
    for tile in tiles:
        target = save_png(tile.pixels, Path(out_dir) / f"{tile.name}.png")
        records.append(
            TileRecord(
                name=tile.name,
                photo_id=photo_id,
                y=tile.y,
                x=tile.x,
                path=str(target),
                source_format=loaded.metadata.format,
                jpeg_quality=loaded.metadata.jpeg_quality,
                jpeg_subsampling=subsampling,
            )
        )
    return records


TILE_COLUMNS: tuple[str, ...] = record_columns(TileRecord)


def write_tile_index(records: Iterable[TileRecord], path: str | os.PathLike[str]) -> Path:
    """Write ``tiles.csv`` (columns :data:`TILE_COLUMNS`)."""
    return write_records_csv(records, path, TileRecord)


def read_tile_index(path: str | os.PathLike[str]) -> list[TileRecord]:
    """Read a ``tiles.csv`` written by :func:`write_tile_index`."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            TileRecord(
                **{
                    **row,
                    "y": int(row["y"]),
                    "x": int(row["x"]),
                    "jpeg_quality": int(row["jpeg_quality"]) if row["jpeg_quality"] else None,
                }
            )
            for row in csv.DictReader(handle)
        ]
