"""Writers for localization outputs: heat map, mask and overlay PNGs per image, and JSON rows.

Used by ``fakescope localize`` (and meant for the server). Per image: ``<stem>.heatmap.png``
(the heat map through a perceptual colour map, stored as a palette PNG), ``<stem>.mask.png``
(0/255), ``<stem>.overlay.png`` (the image with the heat blended in red and the mask's regions
outlined) and, when asked, ``<stem>.unwarped.png``. The JSON side is one
:class:`~fakescope.results.ScanResult` per image, the same result type as a scan row, with
:meth:`Localization.summary` and the file names under ``evidence["localization"]``.

Memory: colour mapping and blending run over bands of rows, so a 6000x4000 photo needs the
image, the heat map, the mask and one output array at a time, never float copies of all of
them; nothing is kept between images.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from fakescope.errors import FakescopeError
from fakescope.results import Localization, ScanResult, Verdict

#: Rows processed at once by the colour mapping and blending (bounds the float temporaries).
ROW_BAND = 256
#: zlib level of the PNGs: 1 writes a 6000x4000 overlay in about a second, 6 (Pillow's
#: default) takes several times longer for files barely smaller.
PNG_COMPRESS_LEVEL = 1
#: Heat blended into the overlay: ``alpha = heat * (OUTSIDE + INSIDE * mask)``, so the heat
#: shows faintly everywhere and strongly where the mask flags the pixel.
OVERLAY_ALPHA_OUTSIDE = 0.25
OVERLAY_ALPHA_INSIDE = 0.35
OVERLAY_RED = 255  # the heat is blended in pure red
OUTLINE_COLOUR = np.array([255, 255, 0], dtype=np.uint8)  # yellow stays visible on red
#: Bounding boxes of regions a method names by role (copy-move source and target).
ROLE_COLOURS: dict[str, tuple[int, int, int]] = {
    "source": (0, 255, 255),
    "target": (255, 0, 255),
}
DEFAULT_ROLE_COLOUR = (255, 255, 255)

#: The file kinds written per image, in the order they are written.
FILE_KINDS = ("heatmap", "mask", "overlay", "unwarped")

# Matplotlib's "inferno" sampled at nine points, used when matplotlib (the optional report
# extra) is missing; with it the exact 256-entry table is taken.
_INFERNO_ANCHORS = np.array(
    [
        [0, 0, 4],
        [31, 12, 72],
        [85, 15, 109],
        [136, 34, 106],
        [186, 54, 85],
        [227, 89, 51],
        [249, 140, 10],
        [249, 201, 50],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


class OutputWriteError(FakescopeError):
    """An output file could not be written (disk full, permissions); that image's row fails."""

    kind = "write_error"


def colour_table() -> np.ndarray:
    """The heat map's colour map as a (256, 3) uint8 table (perceptually uniform, dark = 0)."""
    try:
        import matplotlib

        rgba = matplotlib.colormaps["inferno"](np.linspace(0.0, 1.0, 256))
        return np.rint(rgba[:, :3] * 255.0).astype(np.uint8)
    except (ImportError, KeyError):
        positions = np.linspace(0.0, 1.0, len(_INFERNO_ANCHORS))
        grid = np.linspace(0.0, 1.0, 256)
        channels = [np.interp(grid, positions, _INFERNO_ANCHORS[:, c]) for c in range(3)]
        return np.rint(np.stack(channels, axis=1)).astype(np.uint8)


_TABLE: np.ndarray | None = None


def _table() -> np.ndarray:
    global _TABLE
    if _TABLE is None:
        _TABLE = colour_table()
    return _TABLE


def _heat_levels(heat: np.ndarray) -> np.ndarray:
    """Heat in [0, 1] as 0-255 indices; NaN (a broken method) shows as 0."""
    levels = np.nan_to_num(heat, nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(levels, 0.0, 1.0) * 255.0).astype(np.uint8)


def heatmap_rgb(heatmap: np.ndarray) -> np.ndarray:
    """The heat map (H, W) in [0, 1] as a colour-mapped (H, W, 3) uint8 image."""
    table = _table()
    out = np.empty((*heatmap.shape, 3), dtype=np.uint8)
    for top in range(0, heatmap.shape[0], ROW_BAND):
        band = slice(top, top + ROW_BAND)
        out[band] = table[_heat_levels(heatmap[band])]
    return out


def heat_levels(heatmap: np.ndarray) -> np.ndarray:
    """The heat map (H, W) in [0, 1] as 0-255 colour-map indices (uint8)."""
    out = np.empty(heatmap.shape, dtype=np.uint8)
    for top in range(0, heatmap.shape[0], ROW_BAND):
        band = slice(top, top + ROW_BAND)
        out[band] = _heat_levels(heatmap[band])
    return out


def heatmap_image(heatmap: np.ndarray) -> Image.Image:
    """The colour-mapped heat map as a palette image: one byte per pixel plus the colour map.

    Viewers show it in colour like an RGB PNG; it is a third of the data to compress, which
    matters on a 6000x4000 photo. ``.convert("RGB")`` gives :func:`heatmap_rgb`'s pixels.
    """
    image = Image.fromarray(heat_levels(heatmap), mode="L").convert("P")
    image.putpalette(_table().ravel().tolist())
    return image


def mask_gray(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as a 0/255 uint8 image."""
    return np.where(mask, np.uint8(255), np.uint8(0))


def outline_thickness(height: int, width: int) -> int:
    """Outline width in pixels: 1 on small images, growing so it stays visible on large ones."""
    return max(1, round(min(height, width) / 500))


def mask_outline(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """The inner border (``thickness`` px wide) of every region of ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    # An erosion by a square: a minimum filter on uint8 is separable and fast on big masks.
    eroded = ndimage.minimum_filter(
        mask.view(np.uint8), size=2 * thickness + 1, mode="constant", cval=0
    )
    return mask & (eroded == 0)


def overlay_rgb(
    image: np.ndarray,
    heatmap: np.ndarray,
    mask: np.ndarray,
    regions: Sequence[dict[str, Any]] = (),
) -> np.ndarray:
    """The image with the heat blended in red, mask outlines, and boxes for named regions.

    Blending: ``out = (1 - a) * image + a * red`` with ``a = heat * (0.25 + 0.35 * mask)``
    (in 1/256 steps).
    Outlines of the mask's regions are yellow; regions a method names by ``role`` (a copy-move
    ``source`` or ``target``) get their bounding box, cyan for sources, magenta for targets.
    """
    height, width = heatmap.shape
    if image.shape[:2] != (height, width) or mask.shape != (height, width):
        raise ValueError(
            f"image {image.shape[:2]}, heat map {heatmap.shape} and mask {mask.shape} differ"
        )
    # Fixed point (x/256) in uint16 rather than float32: the same blend at a fraction of the
    # memory traffic; a pixel without heat keeps its exact value (weight 256/256).
    outside, inside = round(OVERLAY_ALPHA_OUTSIDE * 256), round(OVERLAY_ALPHA_INSIDE * 256)
    out = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, ROW_BAND):
        band = slice(top, top + ROW_BAND)
        levels = _heat_levels(heatmap[band]).astype(np.uint16)
        alpha = (levels * (outside + inside * mask[band].astype(np.uint16))) >> 8
        blended = image[band].astype(np.uint16) * (256 - alpha)[..., None]
        blended[..., 0] += OVERLAY_RED * alpha
        out[band] = (blended >> 8).astype(np.uint8)
    thickness = outline_thickness(height, width)
    out[mask_outline(mask, thickness)] = OUTLINE_COLOUR
    for region in regions:
        role = region.get("role")
        bbox = region.get("bbox")
        if role is None or not isinstance(bbox, Sequence) or len(bbox) != 4:
            continue
        _draw_box(out, [int(v) for v in bbox], ROLE_COLOURS.get(str(role), DEFAULT_ROLE_COLOUR))
    return out


def _draw_box(out: np.ndarray, bbox: list[int], colour: tuple[int, int, int]) -> None:
    """A rectangle outline ``[y0, x0, y1, x1]`` (end-exclusive), clipped to the image."""
    height, width = out.shape[:2]
    y0, x0 = max(0, bbox[0]), max(0, bbox[1])
    y1, x1 = min(height, bbox[2]), min(width, bbox[3])
    if y1 <= y0 or x1 <= x0:
        return
    t = outline_thickness(height, width)
    out[y0 : min(y1, y0 + t), x0:x1] = colour
    out[max(y0, y1 - t) : y1, x0:x1] = colour
    out[y0:y1, x0 : min(x1, x0 + t)] = colour
    out[y0:y1, max(x0, x1 - t) : x1] = colour


def save_png(pixels: np.ndarray | Image.Image, path: Path) -> None:
    """Write an (H, W) or (H, W, 3) uint8 array (or an image) as PNG; OSError becomes
    OutputWriteError."""
    image = (
        pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.ascontiguousarray(pixels))
    )
    try:
        image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc


class UniqueStems:
    """Output stems that never collide within one run (``x``, then ``x-2``, ``x-3``, ...).

    Two inputs with the same file name from different folders must not overwrite each other's
    outputs. Names are compared case-folded, for case-insensitive file systems.
    """

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = {name.casefold() for name in taken}

    def claim(self, path: str) -> str:
        stem = Path(path).stem or "image"
        candidate, n = stem, 1
        while candidate.casefold() in self._taken:
            n += 1
            candidate = f"{stem}-{n}"
        self._taken.add(candidate.casefold())
        return candidate


def write_localization_images(
    out_dir: Path,
    stem: str,
    image: np.ndarray,
    localization: Localization,
    unwarped: np.ndarray | None = None,
) -> dict[str, str]:
    """Write one image's PNGs into ``out_dir``; returns ``{kind: file name}`` (relative).

    Each array is built, written and dropped before the next, so at most one output image is
    in memory beside the inputs.
    """
    files: dict[str, str] = {}

    def write(kind: str, pixels: np.ndarray | Image.Image) -> None:
        name = f"{stem}.{kind}.png"
        save_png(pixels, out_dir / name)
        files[kind] = name

    write("heatmap", heatmap_image(localization.heatmap))
    write("mask", mask_gray(localization.mask))
    write(
        "overlay",
        overlay_rgb(image, localization.heatmap, localization.mask, localization.regions),
    )
    if unwarped is not None:
        write("unwarped", unwarped)
    return files


def verdict_for(score: float, threshold: float) -> Verdict:
    """``fake`` when the image score reaches the image threshold, else ``real``.

    The localizer's calibrated image threshold (``Localization.verdict_threshold``) is the
    one below which it empties the mask, so a ``real`` verdict never comes with a mask.
    """
    return "fake" if score >= threshold else "real"


def localization_row(
    path: str,
    sha256: str | None,
    localization: Localization,
    files: dict[str, str],
    extra: dict[str, Any] | None = None,
) -> ScanResult:
    """The JSON row of one localized image: the scan's result type with the localization."""
    evidence: dict[str, Any] = dict(extra or {})
    evidence["localization"] = {**localization.summary(), "files": files}
    score = round(float(localization.score), 6)
    return ScanResult(
        path=path,
        sha256=sha256,
        score=score,
        verdict=verdict_for(float(localization.score), localization.verdict_threshold),
        detectors={localization.method: score},
        evidence=evidence,
        decided_by="localization",
    )


__all__ = [
    "FILE_KINDS",
    "OutputWriteError",
    "UniqueStems",
    "colour_table",
    "heat_levels",
    "heatmap_image",
    "heatmap_rgb",
    "localization_row",
    "mask_gray",
    "mask_outline",
    "overlay_rgb",
    "save_png",
    "verdict_for",
    "write_localization_images",
]
