"""JPEG grid cues: how well each 8x8 block fits the file's quantization tables.

A JPEG stores, for every 8x8 block of the luma aligned to the image's grid, DCT coefficients
that are integer multiples of the quantization steps of the file's table. Decoding and taking
the DCT again on the same grid gives back coefficients close to those multiples (off only by the
rounding of pixels to integers). Content that did not go through that quantization on that grid
does not: a region pasted from elsewhere, resampled (copy-move with rotation or scale), inpainted
or warped after the JPEG was decoded leaves coefficients spread evenly between the multiples.

:func:`jpeg_cue_channels` turns this into per-pixel channels for a network: for each block, the
mean normalised distance of its coefficients to the nearest multiple of their step, over all AC
coefficients, over the low-frequency ones (steps are small there, so the cue is strongest) and
for the DC coefficient, plus a flag channel saying that the tables were known. For an image that
is not a JPEG (no tables) every channel is zero, flag included, so one network serves both.

Limits: the cue only sees the *last* quantization on the file's grid; an edit saved again as a
JPEG at any quality is quantized with the rest, and only rounding, clipping and a shifted grid
(a cropped JPEG) remain visible. Steps of 1 or 2 carry little signal (rounding noise is of the
same size). Image origins are assumed to sit on the JPEG grid; tilers must cut at multiples of 8.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from fakescope.features.residuals import luminance

BLOCK = 8
#: Channels returned by :func:`jpeg_cue_channels`: all-AC, low-AC, DC distances and the flag.
JPEG_CUE_CHANNELS = 4
#: Low-frequency AC coefficients: ``0 < u + v <= LOW_FREQUENCY_SUM`` (9 coefficients).
LOW_FREQUENCY_SUM = 3
#: JPEG's level shift before the DCT.
_LEVEL_SHIFT = 128.0


def luma_table(jpeg_quantization: dict[int, list[int]] | None) -> np.ndarray | None:
    """Table 0 (luma) as float32 (8, 8) in natural order, as Pillow gives it; None if absent.

    Raises ValueError for a table that is not 64 positive steps.
    """
    if not jpeg_quantization:
        return None
    table = jpeg_quantization.get(0)
    if table is None:
        table = jpeg_quantization[min(jpeg_quantization)]
    steps = np.asarray(list(table), dtype=np.float32)
    if steps.size != BLOCK * BLOCK or np.any(steps <= 0):
        raise ValueError(f"a JPEG quantization table has 64 positive steps, got {steps.size}")
    return steps.reshape(BLOCK, BLOCK)


def block_dct(luma: np.ndarray) -> np.ndarray:
    """Orthonormal 8x8 DCT-II of each grid-aligned block: float32 (H/8, W/8, 8, 8).

    Sides must be multiples of 8. The orthonormal DCT is JPEG's forward DCT exactly.
    """
    height, width = luma.shape
    blocks = luma.reshape(height // BLOCK, BLOCK, width // BLOCK, BLOCK).transpose(0, 2, 1, 3)
    return fft.dctn(blocks - _LEVEL_SHIFT, type=2, axes=(2, 3), norm="ortho").astype(np.float32)


def quantization_distance(coefficients: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``|c/q - round(c/q)|`` scaled to [0, 1]: 0 on a multiple, 1 half-way between two."""
    ratio = coefficients / steps
    return 2.0 * np.abs(ratio - np.round(ratio))


def jpeg_cue_channels(
    image: np.ndarray, jpeg_quantization: dict[int, list[int]] | None
) -> np.ndarray:
    """Per-pixel JPEG cues of an RGB uint8 image: float32 (H, W, :data:`JPEG_CUE_CHANNELS`).

    Channels: mean distance over the 63 AC coefficients, over the low-frequency AC ones, the DC
    distance (all in [0, 1], constant over each 8x8 block), and a flag (1: tables given). Zeros
    everywhere when ``jpeg_quantization`` is None or empty.
    """
    height, width = image.shape[:2]
    steps = luma_table(jpeg_quantization)
    out = np.zeros((height, width, JPEG_CUE_CHANNELS), dtype=np.float32)
    if steps is None:
        return out
    # Pad to whole blocks by edge replication; the padded part is cropped away below.
    pad_y, pad_x = (-height) % BLOCK, (-width) % BLOCK
    luma = np.pad(luminance(image), ((0, pad_y), (0, pad_x)), mode="edge")
    distance = quantization_distance(block_dct(luma), steps)
    u, v = np.meshgrid(np.arange(BLOCK), np.arange(BLOCK), indexing="ij")
    ac = (u + v) > 0
    low = ac & ((u + v) <= LOW_FREQUENCY_SUM)
    per_block = np.stack(
        [
            distance[..., ac].mean(axis=-1),
            distance[..., low].mean(axis=-1),
            distance[..., 0, 0],
            np.ones(distance.shape[:2], dtype=np.float32),
        ],
        axis=-1,
    )
    # Each block's values cover its 8x8 pixels.
    per_pixel = np.repeat(np.repeat(per_block, BLOCK, axis=0), BLOCK, axis=1)
    out[:] = per_pixel[:height, :width]
    return out
