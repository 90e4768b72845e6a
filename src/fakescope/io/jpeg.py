"""JPEG quantization tables and quality estimation.

Quality is estimated by matching the file's tables against the IJG (libjpeg) reference tables
scaled to every quality from 1 to 100, the way libjpeg's ``jpeg_quality_scaling`` builds them.
Cameras and some encoders use their own tables; then ``exact`` is False and the estimate is the
nearest IJG quality, which is still what a dataset audit needs (Grommelt et al. 2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# IJG reference tables (ITU-T T.81, Annex K), natural (row-major) order.
_IJG_LUMINANCE = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)  # fmt: skip
_IJG_CHROMINANCE = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99,
        18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99,
        47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
    ],
    dtype=np.float64,
)  # fmt: skip


def ijg_table(reference: np.ndarray, quality: int, force_baseline: bool = True) -> np.ndarray:
    """The IJG table for ``quality`` (1-100), scaled as libjpeg's ``jpeg_add_quant_table``.

    ``force_baseline`` clamps entries to 255 (8-bit tables); without it libjpeg allows up to
    32767, which ``cjpeg`` does by default, so low-quality files can carry 16-bit tables.
    """
    quality = int(np.clip(quality, 1, 100))
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality  # integer, as libjpeg
    return np.clip(np.floor((reference * scale + 50) / 100), 1, 255 if force_baseline else 32767)


_QUALITIES = np.arange(1, 101)
# One bank per libjpeg clamping mode: a file's tables all come from the same mode.
_LUMA_BANKS = tuple(
    np.stack([ijg_table(_IJG_LUMINANCE, q, baseline) for q in _QUALITIES])
    for baseline in (True, False)
)
_CHROMA_BANKS = tuple(
    np.stack([ijg_table(_IJG_CHROMINANCE, q, baseline) for q in _QUALITIES])
    for baseline in (True, False)
)


@dataclass(frozen=True)
class JpegQuality:
    """The nearest IJG quality and whether the file's tables are exactly IJG tables."""

    quality: int
    exact: bool
    mean_abs_error: float


def estimate_quality(tables: dict[int, list[int]] | list[list[int]]) -> JpegQuality | None:
    """Estimate JPEG quality from quantization tables in natural order (Pillow's order).

    Table 0 is luminance, table 1 (if present) chrominance; a dict is read by table id, since
    a file may define its tables in any order. Returns None without usable 64-entry tables.
    """
    if isinstance(tables, dict):
        table_list = [tables[key] for key in sorted(tables)]
    else:
        table_list = list(tables)
    if not table_list:
        return None
    luma = np.asarray(table_list[0], dtype=np.float64).ravel()
    if luma.size != 64:
        return None
    chroma = None
    if len(table_list) > 1:
        chroma = np.asarray(table_list[1], dtype=np.float64).ravel()
        if chroma.size != 64:
            chroma = None
    per_mode = []
    for luma_bank, chroma_bank in zip(_LUMA_BANKS, _CHROMA_BANKS, strict=True):
        errors = np.abs(luma_bank - luma).sum(axis=1)
        if chroma is not None:
            errors = errors + np.abs(chroma_bank - chroma).sum(axis=1)
        per_mode.append(errors)
    errors = np.minimum(*per_mode)
    count = luma.size + (chroma.size if chroma is not None else 0)
    best = int(np.argmin(errors))
    return JpegQuality(
        quality=int(_QUALITIES[best]),
        exact=bool(errors[best] == 0),
        mean_abs_error=float(errors[best] / count),
    )
