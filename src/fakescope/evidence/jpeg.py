"""The ``jpeg`` reader: quality, whose quantization tables these are, and double compression.

**Quality and tables.** Every encoder built on the IJG library (libjpeg, libjpeg-turbo, and so
Pillow, OpenCV, ImageMagick, GIMP, most browsers and AI tools) writes the ITU-T T.81 Annex K
tables scaled by one quality setting; such files match :func:`fakescope.io.jpeg.ijg_table`
exactly (``family: "ijg"``). Luma and chroma are matched separately: IJG encoders scale both
with the same quality, so two different exact qualities mean a tool set them apart. The other
named family is Adobe Photoshop's, as Pillow ships them in ``PIL.JpegPresets`` ("JPEG quality
settings equivalent to the Photoshop settings"). Anything else (cameras, phone firmware,
mozjpeg's tuned tables) is ``custom`` with the nearest IJG quality.

**Double compression.** Quantizing a DCT coefficient twice, with step q1 and then q2, leaves
a periodic pattern in the histogram of the second quantization's integers: empty bins when
q1 > q2, periodic peaks when q1 < q2 (Lukáš & Fridrich 2003; Popescu & Farid 2004). For each
of the first nine AC frequencies (zigzag positions 1-9) the histogram of |k| is fitted
with two Poisson models: a smooth envelope ``exp(a + b k + c k^2)`` (single compression), and
the same envelope times the bin occupancy ``n_q1(k)``, the number of integers m with
``round(m q1 / q2) = k``, for every candidate q1 (double compression). The deviance the best q1
removes, relative to the smooth model's, says how much of the histogram's shape the
periodicity explains. A frequency counts as periodic when that share is over one half; the
file is ``likely`` double-compressed when at least three frequencies are periodic and the
periodicity explains over a third of all deviance. The estimated q1 of the periodic
frequencies give the primary quality when they agree with an IJG table.

Coefficients are recomputed from the decoded pixels (luma from RGB, an 8x8 DCT on the block
grid, divided by the file's table): decoding rounds each pixel, so each coefficient is known to
about 0.35 (in units of the DCT), which blurs but does not hide the pattern. Blocks touching 0
or 255 (clipped) are left out, and at most a 512x512 centre crop is analysed (the detection
rates below barely change at 1024, which costs four times as much).

Measured by ``benchmarks/bench_evidence.py --dq`` on 26 photos (the repository's examples,
the Stable Diffusion samples in ``../shared``, scikit-image's photos) saved by Pillow: no
single-compressed file flagged at qualities 60-98 except one whose source PNG was itself made
from a JPEG (matplotlib's ``grace_hopper``; its first compression is found near quality 80).
Double compression is found in 96 % of files at 75->90, 92 % at 70->80, 88 % at 50->75, 81 %
at 60->85, half at 85->80, and rarely when the second compression is much coarser (90->80:
8 %, 95->75: none) or finer but from a fine first step (80->95: 8 %); a second step that is a
multiple of the first leaves no pattern at all.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from PIL import JpegImagePlugin, JpegPresets
from scipy import fft

from fakescope.evidence.software import edit_sign
from fakescope.evidence.source import EvidenceSource
from fakescope.io.jpeg import _IJG_CHROMINANCE, _IJG_LUMINANCE, ijg_table

# Natural (row-major) index of each zigzag position.
ZIGZAG = np.array(
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ]
)  # fmt: skip
ANALYSED_FREQUENCIES = tuple(range(1, 10))  # zigzag positions of the first nine AC terms
MAX_ANALYSED_SIDE = 512
MIN_NONZERO_COEFFICIENTS = 500
PERIODIC_SHARE = 0.5  # share of a frequency's deviance the periodic model must remove
MIN_PERIODIC_GAIN = 25.0  # and in absolute terms (a chi-square scale), against tiny samples
LIKELY_MIN_PERIODIC = 3
LIKELY_MIN_EXPLAINED = 0.35
_SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
_EMPTY_BIN_FLOOR = 0.02  # decoding between the compressions leaks a little into empty bins


@cache
def _ijg_banks() -> tuple[np.ndarray, np.ndarray]:
    """IJG tables for qualities 1-100, both clamping modes: shape (2, 100, 64) each."""
    qualities = range(1, 101)
    luma = np.stack(
        [[ijg_table(_IJG_LUMINANCE, q, base) for q in qualities] for base in (True, False)]
    )
    chroma = np.stack(
        [[ijg_table(_IJG_CHROMINANCE, q, base) for q in qualities] for base in (True, False)]
    )
    return luma, chroma


def component_quality(table: list[int], bank: np.ndarray) -> tuple[int, bool]:
    """The nearest IJG quality of one table and whether it matches exactly."""
    errors = np.abs(bank - np.asarray(table, dtype=np.float64)).sum(axis=2).min(axis=0)
    best = int(np.argmin(errors))
    return best + 1, bool(errors[best] == 0)


def match_tables(tables: dict[int, list[int]]) -> dict[str, Any]:
    """Which known family the quantization tables belong to (natural order, as Pillow)."""
    ordered = [list(tables[key]) for key in sorted(tables)]
    luma_bank, chroma_bank = _ijg_banks()
    luma_quality, luma_exact = component_quality(ordered[0], luma_bank)
    report: dict[str, Any] = {"luma_quality": luma_quality, "luma_exact": luma_exact}
    chroma_exact = True
    if len(ordered) > 1:
        chroma_quality, chroma_exact = component_quality(ordered[1], chroma_bank)
        report |= {"chroma_quality": chroma_quality, "chroma_exact": chroma_exact}
        report["luma_chroma_mismatch"] = bool(
            luma_exact and chroma_exact and chroma_quality != luma_quality
        )
    if luma_exact and chroma_exact:
        report["family"] = "ijg"
        report["name"] = f"IJG standard tables, quality {luma_quality}"
        return report
    for preset, settings in JpegPresets.presets.items():
        if [list(t) for t in settings["quantization"]] == ordered:
            report["family"] = "adobe"
            report["name"] = f"Adobe (Photoshop, Lightroom) tables, Pillow preset '{preset}'"
            return report
    report["family"] = "custom"
    report["name"] = f"custom tables (camera or encoder), nearest IJG quality {luma_quality}"
    return report


def read_jpeg(source: EvidenceSource) -> dict[str, Any] | None:
    metadata = source.metadata
    if metadata.format not in {"JPEG", "MPO"} or not metadata.jpeg_quantization:
        return None
    tables = metadata.jpeg_quantization
    info = source.pil.info
    subsampling = JpegImagePlugin.get_sampling(source.pil)
    report: dict[str, Any] = {
        "quality": metadata.jpeg_quality,
        "quality_exact": metadata.jpeg_quality_exact,
        "progressive": bool(info.get("progressive") or info.get("progression")),
        "subsampling": _SUBSAMPLING.get(subsampling),
        "tables": len(tables),
        "table_match": match_tables(tables),
    }
    analysis = double_compression(source, tables[min(tables)])
    report["double_compression"] = analysis
    editing = []
    if analysis.get("likely"):
        primary = analysis.get("primary_quality")
        detail = f"{analysis['periodic_frequencies']} of {analysis['frequencies']} DCT "
        detail += "frequencies show a double-quantization pattern"
        if primary is not None:
            detail += f" (first compression near IJG quality {primary})"
        editing.append(edit_sign("double_jpeg_compression", detail))
    report["generator"] = []
    report["editing"] = editing
    return report


def double_compression(source: EvidenceSource, luma_table: list[int]) -> dict[str, Any]:
    """The double-quantization test of the module docstring on the file's luma."""
    if source.metadata.mode not in {"RGB", "L", "YCbCr"}:
        return {"analysed": False, "reason": f"pixel mode {source.metadata.mode}"}
    steps = {position: int(luma_table[ZIGZAG[position]]) for position in ANALYSED_FREQUENCIES}
    coefficients = luma_coefficients(source.stored_pixels())
    if coefficients is None:
        return {"analysed": False, "reason": "too few unclipped 8x8 blocks"}
    histograms = {
        position: magnitude_histogram(coefficients[:, ZIGZAG[position]] / step)
        for position, step in steps.items()
    }
    usable = {position: h for position, h in histograms.items() if h is not None}
    fits = fit_frequencies({position: (usable[position], steps[position]) for position in usable})
    per_frequency = [
        {"zigzag": position, "step": steps[position], **fit} for position, fit in fits.items()
    ]
    if not per_frequency:
        return {"analysed": False, "reason": "too few nonzero coefficients (a flat image)"}
    total = sum(item["smooth_deviance"] for item in per_frequency)
    removed = sum(max(item["gain"], 0.0) for item in per_frequency)
    periodic = [
        item
        for item in per_frequency
        if item["gain"] > PERIODIC_SHARE * item["smooth_deviance"]
        and item["gain"] > MIN_PERIODIC_GAIN
    ]
    explained = removed / total if total > 0 else 0.0
    return {
        "analysed": True,
        "frequencies": len(per_frequency),
        "periodic_frequencies": len(periodic),
        "explained": round(explained, 3),
        "likely": len(periodic) >= LIKELY_MIN_PERIODIC and explained > LIKELY_MIN_EXPLAINED,
        "primary_steps": {str(item["zigzag"]): item["q1"] for item in periodic},
        "primary_quality": primary_quality(periodic),
    }


def luma_coefficients(pixels: np.ndarray) -> np.ndarray | None:
    """DCT coefficients (n_blocks, 64) of the luma of unclipped blocks in a centre crop."""
    height, width = pixels.shape[:2]
    crop_h = min(height, MAX_ANALYSED_SIDE) // 8 * 8
    crop_w = min(width, MAX_ANALYSED_SIDE) // 8 * 8
    if crop_h < 8 or crop_w < 8:
        return None
    # The crop starts on the file's 8x8 grid (a multiple of 8 from the stored top-left).
    top = (height - crop_h) // 2 // 8 * 8
    left = (width - crop_w) // 2 // 8 * 8
    crop = pixels[top : top + crop_h, left : left + crop_w]

    def blocks(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(crop_h // 8, 8, crop_w // 8, 8).swapaxes(1, 2).reshape(-1, 64)

    # Channel by channel: numpy reduces a length-3 last axis many times slower.
    red, green, blue = crop[..., 0], crop[..., 1], crop[..., 2]
    lowest = np.minimum(np.minimum(red, green), blue)
    highest = np.maximum(np.maximum(red, green), blue)
    unclipped = (blocks(lowest).min(axis=1) > 0) & (blocks(highest).max(axis=1) < 255)
    if unclipped.sum() < 64:
        return None
    # JFIF's RGB->Y weights; the colour terms of the decoder's inverse cancel, so this is the
    # decoded luma up to the rounding of R, G and B.
    luma = (
        red * np.float32(0.299) + green * np.float32(0.587) + blue * np.float32(0.114)
    ) - np.float32(128.0)
    luma_blocks = blocks(luma)[unclipped].reshape(-1, 8, 8)
    return fft.dctn(luma_blocks, axes=(1, 2), norm="ortho").reshape(-1, 64)


def occupancy(q1: int, q2: int, kmax: int) -> np.ndarray:
    """n(k) for k = 1..kmax: integers m with round(m q1 / q2) = k (round half away from 0)."""
    mmax = int(np.ceil((kmax + 1) * q2 / q1)) + 1
    landing = np.floor(np.arange(mmax + 1) * q1 / q2 + 0.5).astype(np.int64)
    return np.bincount(landing, minlength=kmax + 2)[1 : kmax + 1].astype(np.float64)


def magnitude_histogram(values: np.ndarray) -> np.ndarray | None:
    """Counts of |k| = 1..kmax for one frequency's quantized values, None if too few."""
    histogram = np.bincount(np.floor(np.abs(values) + 0.5).astype(np.int64))
    histogram[0] = 0  # zeros say nothing about the step and would swamp the fit
    nonzero = int(histogram.sum())
    if nonzero < MIN_NONZERO_COEFFICIENTS:
        return None
    # The bins holding 99.5 % of the nonzero coefficients, at most 60: the tail is too sparse.
    kmax = min(int(np.searchsorted(np.cumsum(histogram), 0.995 * nonzero)), 60)
    if kmax < 4:
        return None
    return histogram[1 : kmax + 1].astype(np.float64)


def fit_frequencies(
    histograms: dict[int, tuple[np.ndarray, int]],
) -> dict[int, dict[str, Any]]:
    """Smooth vs periodic Poisson fits of each frequency's |k| histogram, in one batch.

    For each frequency (keyed by zigzag position, with its histogram and step): the best
    first step ``q1``, the deviance it removes (``gain``) and the smooth model's deviance.
    Every candidate model of every frequency is one row of a single IRLS run, padded to the
    longest histogram (padding bins are masked out).
    """
    rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    owners: dict[int, tuple[tuple[int, ...], int, int]] = {}
    for position, (counts, step) in histograms.items():
        candidates, offsets, design = _models(step, counts.size)
        if len(candidates) < 2:
            continue
        owners[position] = (candidates, len(rows), len(rows) + len(candidates))
        rows += [(position, counts, offset, design) for offset in offsets]
    if not rows:
        return {}
    width = max(counts.size for _, counts, _, _ in rows)
    n_rows = len(rows)
    counts = np.zeros((n_rows, width))
    offsets = np.zeros((n_rows, width))
    design = np.zeros((n_rows, width, 3))
    mask = np.zeros((n_rows, width), dtype=bool)
    for row, (_, row_counts, row_offsets, row_design) in enumerate(rows):
        size = row_counts.size
        counts[row, :size] = row_counts
        offsets[row, :size] = row_offsets
        design[row, :size] = row_design
        mask[row, :size] = True
    deviances = poisson_deviances(counts, offsets, design, mask)
    fits = {}
    for position, (candidates, first, last) in owners.items():
        own = deviances[first:last]
        best = int(np.argmin(own[1:])) + 1
        fits[position] = {
            "q1": candidates[best],
            "gain": round(float(own[0] - own[best]), 2),
            "smooth_deviance": round(float(own[0]), 2),
        }
    return fits


@cache
def _models(step: int, kmax: int) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Candidate first steps (0 = single compression), their log-offsets, the envelope design.

    Depends only on the file's step and the histogram length, so it is built once per pair.
    """
    k = np.arange(1, kmax + 1, dtype=np.float64) / kmax
    design = np.stack([np.ones_like(k), k, k * k], axis=1)
    candidates = [0]
    offsets = [np.zeros(kmax)]
    for q1 in range(1, 3 * step + 8):
        if q1 == step:
            continue
        bins = occupancy(q1, step, kmax)
        if np.all(bins == bins[0]):
            continue  # the step a multiple of q1: no pattern to find
        candidates.append(q1)
        offsets.append(np.log(bins / bins.mean() + _EMPTY_BIN_FLOOR))
    stacked = np.asarray(offsets)
    stacked.flags.writeable = False
    design.flags.writeable = False
    return tuple(candidates), stacked, design


def poisson_deviances(
    counts: np.ndarray,
    offsets: np.ndarray,
    design: np.ndarray,
    mask: np.ndarray,
    iterations: int = 25,
) -> np.ndarray:
    """Deviance of the Poisson model ``log mu = offset + design @ beta`` fitted on every row.

    ``counts``, ``offsets``, ``mask``: (rows, bins); ``design``: (rows, bins, 3). Iteratively
    reweighted least squares on all rows at once (three parameters and at most 60 bins each,
    so one vectorized loop is far cheaper than an optimizer per fit). A step that raises a
    row's deviance is halved: a strongly periodic histogram can make plain IRLS overshoot.
    """
    weights_mask = mask.astype(np.float64)
    ridge = 1e-6 * np.eye(design.shape[2])
    design_t = design.transpose(0, 2, 1)  # (rows, 3, bins), for batched matrix products

    def solve(weights: np.ndarray, target: np.ndarray) -> np.ndarray:
        weighted = design_t * weights[:, None, :]
        normal = weighted @ design + ridge
        rhs = weighted @ target[..., None]
        with np.errstate(all="ignore"):
            return np.linalg.solve(normal, rhs)[..., 0]

    # Start from least squares on log counts: close to the optimum, so few steps are needed.
    beta = solve(weights_mask, np.log(counts + 1.0) - offsets)
    deviance = _deviance(counts, offsets, design, mask, beta)
    for _ in range(iterations):
        eta = offsets + (design @ beta[..., None])[..., 0]
        mu = np.exp(np.clip(eta, -50.0, 50.0))
        # Floored weights keep the normal equations solvable where a model predicts ~0.
        weights = np.maximum(mu, 1e-6) * weights_mask
        working = eta - offsets + (counts - mu) / np.maximum(mu, 1e-6)
        updated = solve(weights, working)
        updated = np.where(np.isfinite(updated), updated, beta)
        new_deviance = _deviance(counts, offsets, design, mask, updated)
        for _ in range(4):
            worse = ~(new_deviance <= deviance + 1e-9)
            if not worse.any():
                break
            updated[worse] = 0.5 * (beta[worse] + updated[worse])
            new_deviance = _deviance(counts, offsets, design, mask, updated)
        worse = ~(new_deviance <= deviance + 1e-9)
        updated[worse] = beta[worse]
        new_deviance = np.where(worse, deviance, new_deviance)
        converged = np.max(np.abs(updated - beta)) < 1e-4
        beta, deviance = updated, new_deviance
        if converged:
            break
    return deviance


def _deviance(
    counts: np.ndarray,
    offsets: np.ndarray,
    design: np.ndarray,
    mask: np.ndarray,
    beta: np.ndarray,
) -> np.ndarray:
    mu = np.exp(np.clip(offsets + (design @ beta[..., None])[..., 0], -50.0, 50.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, counts * np.log(counts / mu), 0.0) - (counts - mu)
    return 2.0 * np.sum(np.where(mask, terms, 0.0), axis=1)


def primary_quality(periodic: list[dict[str, Any]]) -> int | None:
    """The IJG quality whose luma table holds the estimated first steps, if one mostly does."""
    if len(periodic) < 2:
        return None
    luma_bank = _ijg_banks()[0][0]  # baseline tables: what 8-bit JPEGs carry
    positions = np.array([ZIGZAG[item["zigzag"]] for item in periodic])
    estimates = np.array([item["q1"] for item in periodic])
    agreement = (luma_bank[:, positions] == estimates).sum(axis=1)
    best = int(np.flatnonzero(agreement == agreement.max())[-1])
    return best + 1 if agreement[best] * 3 >= 2 * len(periodic) else None
