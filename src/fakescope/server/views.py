"""What the page draws besides the result itself: the spectrum curve and the overlay image.

The overlays: the localization heat map when a result carries one (``evidence["localization"]``
with a heat map or a mask); the server localizer's edits (:mod:`fakescope.server.localizing`,
drawn by :func:`heatmap_png` too); and the residual view: the image minus its 2x
nearest-neighbour down-and-up copy (the NPR residual of Tan et al. 2024), which lays the
pixel-grid traces of upsampling bare where they are. The residual is a view for a person's
eye, not a map of what a detector decided, and it is labelled that way.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fakescope.features.spectral import azimuthal_profile

#: The spectral detector's bands, as fractions of the profile past DC (see its README).
SPECTRUM_BANDS: dict[str, tuple[float, float]] = {
    "low": (0.0, 1 / 3),
    "mid": (1 / 3, 2 / 3),
    "high": (2 / 3, 1.0),
}
#: Points sent to the page; the curve of a large image is averaged down to this many.
SPECTRUM_POINTS = 256
#: Longest side of overlay images sent to the page: enough for a screen, cheap to encode.
OVERLAY_MAX_SIDE = 1024


def spectrum_payload(pixels: np.ndarray) -> dict[str, Any]:
    """The azimuthally averaged log spectrum, DC left out, as frequency fractions in (0, 1]."""
    profile = azimuthal_profile(pixels)[1:].astype(np.float64)
    n_rings = profile.size
    if n_rings > SPECTRUM_POINTS:
        # Averaging neighbouring rings (not picking every k-th) keeps the curve's level honest.
        edges = np.linspace(0, n_rings, SPECTRUM_POINTS + 1).astype(int)
        profile = np.array([profile[a:b].mean() for a, b in itertools.pairwise(edges)])
        positions = (edges[:-1] + edges[1:]) / 2 / n_rings
    else:
        positions = np.arange(1, n_rings + 1) / n_rings
    return {
        "frequency": [round(float(v), 4) for v in positions],
        "log_magnitude": [round(float(v), 4) for v in profile],
        "n_rings": int(n_rings),
        "bands": {name: list(bounds) for name, bounds in SPECTRUM_BANDS.items()},
    }


def _fit_for_screen(image: Image.Image) -> Image.Image:
    if max(image.size) > OVERLAY_MAX_SIDE:
        image = image.copy()
        image.thumbnail((OVERLAY_MAX_SIDE, OVERLAY_MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def original_png(pixels: np.ndarray) -> bytes:
    """The decoded, upright image as PNG, for pages that did not keep the upload (a video
    thumbnail, a result opened by its SHA-256)."""
    return png_bytes(_fit_for_screen(Image.fromarray(pixels)))


def residual_view(pixels: np.ndarray) -> np.ndarray:
    """|image - up(down(image))| per pixel, grey, stretched to 0..255 (uint8, H x W).

    Nearest 2x down then up keeps the top-left pixel of every 2x2 cell; the residual is zero
    where a generator's upsampling copied that pixel and large on detail a camera recorded.
    """
    grey = pixels.astype(np.float32).mean(axis=2)
    height, width = grey.shape
    down = grey[::2, ::2]
    up = np.repeat(np.repeat(down, 2, axis=0), 2, axis=1)[:height, :width]
    residual = np.abs(grey - up)
    # Stretch to the 99th percentile, so a few extreme edges do not flatten everything else.
    scale = float(np.percentile(residual, 99)) or 1.0
    return np.clip(residual * (255.0 / scale), 0, 255).astype(np.uint8)


def residual_png(pixels: np.ndarray) -> bytes:
    return png_bytes(_fit_for_screen(Image.fromarray(residual_view(pixels), mode="L")))


@dataclass(frozen=True)
class LocalizationMap:
    """A per-pixel map in [0, 1] (heat or mask) and what it is called in the evidence."""

    values: np.ndarray  # float32 (h, w), any size: the page stretches it over the image
    kind: str  # "heatmap" or "mask"


def _decode_png_text(text: str) -> np.ndarray | None:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text, validate=True)
        with Image.open(io.BytesIO(data)) as image:
            grey = np.asarray(image.convert("L"), dtype=np.float32)
    except (binascii.Error, ValueError, OSError):
        return None
    return grey / 255.0


def _as_map(value: Any) -> np.ndarray | None:
    if isinstance(value, str):
        return _decode_png_text(value)
    if isinstance(value, list) and value and isinstance(value[0], list):
        try:
            array = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            return None
        if array.ndim != 2 or not np.isfinite(array).all():
            return None
        high = float(array.max())
        return array / high if high > 1.0 else np.clip(array, 0.0, 1.0)
    return None


#: Keys under ``evidence["localization"]`` that may hold the map, most specific first: a
#: base64 PNG (optionally a data URL) or a 2-D list of numbers.
LOCALIZATION_KEYS: tuple[tuple[str, str], ...] = (
    ("heatmap_png", "heatmap"),
    ("heatmap", "heatmap"),
    ("mask_png", "mask"),
    ("mask", "mask"),
)


def localization_map(evidence: dict[str, Any]) -> LocalizationMap | None:
    """The localization a result's evidence carries, or None."""
    block = evidence.get("localization")
    if not isinstance(block, dict):
        return None
    for key, kind in LOCALIZATION_KEYS:
        values = _as_map(block.get(key))
        if values is not None and values.size:
            return LocalizationMap(values=values, kind=kind)
    return None


def heatmap_png(localization: LocalizationMap, size: tuple[int, int]) -> bytes:
    """The map as a transparent-to-red RGBA image of ``size`` (width, height).

    Alpha follows the value, so unremarkable regions leave the photo visible underneath and
    the colour does not have to carry the meaning alone.
    """
    width, height = size
    grey = Image.fromarray(np.clip(localization.values * 255.0, 0, 255).astype(np.uint8), "L")
    grey = _fit_for_screen(grey.resize((width, height), Image.Resampling.BILINEAR))
    level = np.asarray(grey, dtype=np.float32) / 255.0
    rgba = np.zeros((*level.shape, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = np.clip(200 * (1.0 - level), 0, 255).astype(np.uint8)
    rgba[..., 3] = np.clip(level * 200, 0, 255).astype(np.uint8)
    return png_bytes(Image.fromarray(rgba, "RGBA"))
