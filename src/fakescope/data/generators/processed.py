"""``processed-real``: real photos that were only processed, and are still real (label 0).

Not a network. A detector that calls every resized, recompressed or screenshotted photo "fake"
is useless in practice (Corvi et al. 2023 and Grommelt et al. 2024 both show detectors keying on
resampling and compression instead of generation), so this family is a *control*: it lives under
``real/processed-real/`` and is never a fake class (docs/dataset-layout.md).

Each source tile gets one operation; operations are dealt in a seeded, shuffled round so every
kind is equally represented, and each operation's parameters are drawn from a random stream
derived from ``(seed, tile key)`` (stable whatever else is in the batch). Pillow only:

- ``upscale``: bicubic or Lanczos, factor uniform in [1.25, 2.0] (output larger than the tile).
- ``downscale``: bicubic or Lanczos (both antialiased in Pillow), factor uniform in [0.5, 0.8].
- ``recompress``: JPEG at a quality uniform in 50..95, 4:2:0 or 4:4:4 chroma, decoded and stored
  as PNG (the JPEG artefacts are the point; the PNG container keeps them exactly).
- ``blur``: Gaussian blur, radius uniform in [0.6, 2.0] pixels.
- ``screenshot``: a "screenshot of a photo" as an image viewer or web page shows it. The recipe:
  a flat window background (one of a few light or dark UI greys), a title bar 28 px high with
  three circular window buttons and a few flat "text" bars, a 1 px border around the photo, the
  photo resized to 50-90 % of its size (bilinear, bicubic or Lanczos: what viewers and browsers
  use) and placed with 16-48 px margins. The whole canvas is drawn at a device pixel ratio of 1
  or 2 ("screen scale": on a HiDPI screen the UI is drawn twice as large and the photo resampled
  to twice its displayed size, as the compositor does), then saved losslessly as PNG, which is
  what screenshot tools write.

No JPEG history is added afterwards: the outputs are real photos whose history *is* their
processing (the source tile keeps whatever JPEG traces it had).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fakescope.data.generators.base import GeneratorKind

Params = dict[str, Any]
_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
# (background, title bar, border, "text") colours of a light and a dark window theme.
_THEMES: tuple[tuple[tuple[int, int, int], ...], ...] = (
    ((246, 246, 246), (225, 225, 228), (200, 200, 204), (150, 150, 156)),
    ((236, 239, 244), (214, 219, 228), (180, 186, 196), (120, 128, 140)),
    ((40, 42, 46), (30, 31, 34), (70, 72, 78), (160, 162, 168)),
    ((255, 255, 255), (240, 240, 240), (210, 210, 210), (90, 90, 90)),
)
_BUTTONS = ((237, 106, 94), (245, 191, 79), (98, 197, 85))


def _resize(pixels: np.ndarray, factor: float, method: str) -> np.ndarray:
    height, width = pixels.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(pixels).resize(size, _FILTERS[method]))


def upscale(pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    method = str(rng.choice(["bicubic", "lanczos"]))
    factor = round(float(rng.uniform(1.25, 2.0)), 3)
    return _resize(pixels, factor, method), {"method": method, "factor": factor}


def downscale(pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    method = str(rng.choice(["bicubic", "lanczos"]))
    factor = round(float(rng.uniform(0.5, 0.8)), 3)
    return _resize(pixels, factor, method), {"method": method, "factor": factor}


def recompress(pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    quality = int(rng.integers(50, 96))
    subsampling = str(rng.choice(["4:2:0", "4:4:4"]))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded.convert("RGB"))
    return out, {"quality": quality, "subsampling": subsampling}


def blur(pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    radius = round(float(rng.uniform(0.6, 2.0)), 3)
    image = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(image), {"radius": radius}


def screenshot(pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    """The photo shown in a flat UI window and captured as the screen shows it (see docstring)."""
    scale = int(rng.choice([1, 2]))  # device pixel ratio
    shown = round(float(rng.uniform(0.5, 0.9)), 3)  # displayed size / photo size, in CSS px
    method = str(rng.choice(list(_FILTERS)))
    margin = int(rng.integers(16, 49))
    theme = int(rng.integers(0, len(_THEMES)))
    background, bar, border, text = _THEMES[theme]
    title_bar = 28
    height, width = pixels.shape[:2]
    # The photo in device pixels: displayed size times the device pixel ratio.
    photo_w = max(1, round(width * shown) * scale)
    photo_h = max(1, round(height * shown) * scale)
    photo = Image.fromarray(pixels).resize((photo_w, photo_h), _FILTERS[method])
    m, t = margin * scale, title_bar * scale
    canvas = Image.new("RGB", (photo_w + 2 * m, photo_h + 2 * m + t), background)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, canvas.width - 1, t - 1], fill=bar)
    for i, colour in enumerate(_BUTTONS):
        x = (12 + 20 * i) * scale
        y = t // 2
        r = 6 * scale
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    # Flat bars where a window title and a caption would be (no font: fonts differ by system).
    draw.rectangle([80 * scale, t // 2 - 3 * scale, 180 * scale, t // 2 + 3 * scale], fill=text)
    caption_y = t + m + photo_h + m // 3
    if caption_y + 4 * scale < canvas.height:
        draw.rectangle([m, caption_y, m + photo_w // 2, caption_y + 4 * scale], fill=text)
    left, top = m, t + m
    draw.rectangle([left - 1, top - 1, left + photo_w, top + photo_h], outline=border)
    canvas.paste(photo, (left, top))
    params = {
        "device_pixel_ratio": scale,
        "displayed_fraction": shown,
        "method": method,
        "margin_css_px": margin,
        "title_bar_css_px": title_bar,
        "theme": theme,
        "photo_box": [top, left, photo_h, photo_w],
    }
    return np.asarray(canvas), params


# Operation name -> function(pixels, rng) -> (pixels, params). A new operation is one entry.
OPERATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, Params]]] = {
    "upscale": upscale,
    "downscale": downscale,
    "recompress": recompress,
    "blur": blur,
    "screenshot": screenshot,
}


class ProcessedReal:
    """Processing of real photos (no training); outputs are real, label 0."""

    kind: ClassVar[GeneratorKind] = "processing"
    label: ClassVar[int] = 0
    trainable: ClassVar[bool] = False

    def __init__(
        self, name: str = "processed-real", operations: Sequence[str] | None = None
    ) -> None:
        self.name = name
        self.operations = tuple(operations) if operations is not None else tuple(OPERATIONS)
        unknown = sorted(set(self.operations) - set(OPERATIONS))
        if unknown or not self.operations:
            raise ValueError(f"unknown operations {unknown}; choose from {sorted(OPERATIONS)}")

    def schedule(self, count: int, seed: int) -> list[str]:
        """Operation of each of ``count`` tiles: shuffled rounds, so kinds stay balanced."""
        rng = np.random.default_rng([seed, 0x9E3779B9])
        out: list[str] = []
        while len(out) < count:
            out += [self.operations[i] for i in rng.permutation(len(self.operations))]
        return out[:count]

    def process(
        self, pixels: np.ndarray, operation: str, rng: np.random.Generator
    ) -> tuple[np.ndarray, Params]:
        """Apply one operation; returns RGB uint8 pixels (any size) and its parameters."""
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 pixels, got {pixels.shape} {pixels.dtype}")
        out, params = OPERATIONS[operation](pixels, rng)
        return np.ascontiguousarray(out, dtype=np.uint8), {"operation": operation, **params}

    def generate(
        self, tiles: Sequence[np.ndarray], seed: int = 0
    ) -> list[tuple[np.ndarray, Params]]:
        """Process every tile (random stream per index); convenience for whole batches."""
        operations = self.schedule(len(tiles), seed)
        return [
            self.process(tile, operation, np.random.default_rng([seed, index]))
            for index, (tile, operation) in enumerate(zip(tiles, operations, strict=True))
        ]
