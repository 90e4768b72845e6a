"""Apply a per-tile function over an image of any size, with bounded memory.

A 6000x4000 photo is cut into overlapping tiles (512 px by default); each tile's output is
blended into the full-resolution map with a weight that falls linearly to the tile's borders,
so seams do not show and a pixel near a tile edge is judged mostly by the tile that sees its
surroundings. Only the output map (float32) and one tile's activations live at once.

Tile origins are multiples of 8 so a JPEG's 8x8 block grid sits at the same phase in every
tile as in the image (methods that read JPEG cues rely on it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64
GRID = 8


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets (multiples of 8) covering ``[0, length)``; the last tile may run 7 px long."""
    if length <= tile:
        return [0]
    stride = max(GRID, (tile - overlap) // GRID * GRID)
    starts = list(range(0, length - tile + 1, stride))
    last = (length - tile) // GRID * GRID
    if starts[-1] != last:
        starts.append(last)
    return starts


def _ramp(length: int, overlap: int) -> np.ndarray:
    """1 in the middle, falling linearly to a small positive value over ``overlap`` px."""
    ramp = np.ones(length, dtype=np.float32)
    width = min(overlap, length // 2)
    if width > 0:
        edge = (np.arange(width, dtype=np.float32) + 1.0) / (width + 1.0)
        ramp[:width] = edge
        ramp[length - width :] = edge[::-1]
    return ramp


def tiled_map(
    image: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    channels: int = 0,
) -> np.ndarray:
    """``fn`` applied tile by tile and blended: float32 (H, W), or (H, W, channels) if > 0.

    ``fn`` receives an (h, w, 3) tile and returns an (h, w) map, or (h, w, channels).
    """
    height, width = image.shape[:2]
    if height <= tile + GRID - 1 and width <= tile + GRID - 1:
        return np.asarray(fn(image), dtype=np.float32)
    shape = (height, width, channels) if channels else (height, width)
    total = np.zeros(shape, dtype=np.float32)
    weight = np.zeros((height, width), dtype=np.float32)
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    for i, y0 in enumerate(ys):
        y1 = height if i == len(ys) - 1 else min(height, y0 + tile)
        for j, x0 in enumerate(xs):
            x1 = width if j == len(xs) - 1 else min(width, x0 + tile)
            out = np.asarray(fn(image[y0:y1, x0:x1]), dtype=np.float32)
            w = np.outer(_ramp(y1 - y0, overlap), _ramp(x1 - x0, overlap))
            total[y0:y1, x0:x1] += out * (w[..., None] if channels else w)
            weight[y0:y1, x0:x1] += w
    return total / (weight[..., None] if channels else weight)
