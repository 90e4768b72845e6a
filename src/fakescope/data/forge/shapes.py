"""Random region shapes for forgeries: ellipses, star-shaped polygons and irregular blobs.

A shape is drawn inside a box of ``(h, w)`` pixels and returned as a local boolean mask; the
kinds place it. Three families because real edits come in all of them: a selection tool gives
ellipses and polygons, a lasso or a brush gives irregular outlines, and a detector that only
ever saw one family would learn the outline instead of the manipulation.

Ellipses and polygons are rasterised from their recorded parameters alone (exactly
reproducible from the JSON); blobs threshold smoothed noise drawn from the forgery's own random
stream (reproducible from the seed, and their mask is saved anyway).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from fakescope.data.forge.base import ForgeryError, choose, to_json_float

SHAPES: tuple[str, ...] = ("ellipse", "polygon", "blob")
MIN_SIDE = 8  # below this a region is a few pixels of noise, not an edit
_MAX_ASPECT = 1.6  # box width / height within [1 / 1.6, 1.6]


@dataclass(frozen=True)
class Region:
    """A shape inside its box: ``mask`` is (h, w) bool, ``params`` its JSON-ready description."""

    mask: np.ndarray
    params: dict[str, Any]


def sample_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    frac: tuple[float, float],
    margin: int = 0,
) -> tuple[int, int]:
    """Box sides: a square of ``frac`` of the shorter image side, then stretched by an aspect."""
    avail_h, avail_w = height - 2 * margin, width - 2 * margin
    if min(avail_h, avail_w) < MIN_SIDE:
        raise ForgeryError(f"a {height}x{width} image is too small for a forged region")
    side = rng.uniform(*frac) * min(height, width)
    aspect = math.exp(rng.uniform(-math.log(_MAX_ASPECT), math.log(_MAX_ASPECT)))
    box_h = int(np.clip(round(side / math.sqrt(aspect)), MIN_SIDE, avail_h))
    box_w = int(np.clip(round(side * math.sqrt(aspect)), MIN_SIDE, avail_w))
    return box_h, box_w


def sample_position(
    rng: np.random.Generator, height: int, width: int, box_h: int, box_w: int, *, margin: int = 0
) -> tuple[int, int]:
    """Top-left corner of a ``box_h`` x ``box_w`` box at least ``margin`` from every border."""
    if box_h + 2 * margin > height or box_w + 2 * margin > width:
        raise ForgeryError(f"a {box_h}x{box_w} region does not fit a {height}x{width} image")
    y = int(rng.integers(margin, height - margin - box_h + 1))
    x = int(rng.integers(margin, width - margin - box_w + 1))
    return y, x


def place(local: np.ndarray, height: int, width: int, y: int, x: int) -> np.ndarray:
    """The local mask at (y, x) in an otherwise empty (height, width) mask."""
    full = np.zeros((height, width), dtype=bool)
    full[y : y + local.shape[0], x : x + local.shape[1]] = local
    return full


def sample_shape(
    rng: np.random.Generator, box_h: int, box_w: int, shape: str | None = None
) -> Region:
    """A random shape of family ``shape`` (sampled when None) filling part of the box."""
    shape = shape or choose(rng, SHAPES)
    if shape not in _SHAPE_MAKERS:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    region = _SHAPE_MAKERS[shape](rng, box_h, box_w)
    if not region.mask.any():  # degenerate draw: an inscribed ellipse is never empty
        region = _ellipse(rng, box_h, box_w)
    return region


def _centre(box_h: int, box_w: int) -> tuple[float, float]:
    # Pixel centres sit at integer coordinates, so the box centre is at (n - 1) / 2.
    return (box_h - 1) / 2.0, (box_w - 1) / 2.0


def _ellipse(rng: np.random.Generator, box_h: int, box_w: int) -> Region:
    angle = rng.uniform(0.0, math.pi)
    ratio = rng.uniform(0.5, 1.0)  # minor / major axis
    cos, sin = math.cos(angle), math.sin(angle)
    # Half extents of the rotated ellipse with major axis 1; scale it to touch the box.
    extent_x = math.hypot(cos, ratio * sin)
    extent_y = math.hypot(sin, ratio * cos)
    major = min(box_w / 2.0 / extent_x, box_h / 2.0 / extent_y)
    minor = major * ratio
    cy, cx = _centre(box_h, box_w)
    yy, xx = np.mgrid[0:box_h, 0:box_w].astype(np.float64)
    u = (xx - cx) * cos + (yy - cy) * sin
    v = -(xx - cx) * sin + (yy - cy) * cos
    mask = (u / major) ** 2 + (v / minor) ** 2 <= 1.0
    params = {
        "shape": "ellipse",
        "centre_yx": [cy, cx],
        "semi_axes": [to_json_float(major), to_json_float(minor)],
        "angle_deg": to_json_float(math.degrees(angle)),
    }
    return Region(mask, params)


def _polygon(rng: np.random.Generator, box_h: int, box_w: int) -> Region:
    vertices = int(rng.integers(5, 13))
    step = 2.0 * math.pi / vertices
    # Evenly spaced angles with jitter: star-shaped around the centre, hence never
    # self-intersecting, yet irregular enough not to look like a regular polygon.
    angles = rng.uniform(0.0, 2.0 * math.pi) + step * (
        np.arange(vertices) + rng.uniform(-0.35, 0.35, vertices)
    )
    radii = rng.uniform(0.45, 1.0, vertices)
    cy, cx = _centre(box_h, box_w)
    ys = np.round(cy + radii * np.sin(angles) * (box_h - 1) / 2.0, 2)
    xs = np.round(cx + radii * np.cos(angles) * (box_w - 1) / 2.0, 2)
    canvas = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(canvas).polygon(
        [(float(x), float(y)) for y, x in zip(ys, xs, strict=True)], fill=1, outline=1
    )
    mask = np.asarray(canvas, dtype=np.uint8) > 0
    params = {
        "shape": "polygon",
        "vertices_yx": [[float(y), float(x)] for y, x in zip(ys, xs, strict=True)],
        "raster": "PIL.ImageDraw.polygon(fill=1, outline=1)",
    }
    return Region(mask, params)


def _blob(rng: np.random.Generator, box_h: int, box_w: int) -> Region:
    sigma = rng.uniform(0.08, 0.2) * min(box_h, box_w)
    roughness = rng.uniform(0.3, 0.8)
    fill = rng.uniform(0.45, 0.75)  # share of the inscribed ellipse the blob covers
    noise = ndimage.gaussian_filter(rng.normal(size=(box_h, box_w)), sigma, mode="reflect")
    noise /= noise.std() or 1.0
    cy, cx = _centre(box_h, box_w)
    yy, xx = np.mgrid[0:box_h, 0:box_w].astype(np.float64)
    rho2 = ((yy - cy) / (box_h / 2.0)) ** 2 + ((xx - cx) / (box_w / 2.0)) ** 2
    inside = rho2 < 1.0
    # A dome plus smooth noise: the dome keeps the blob centred and one piece, the noise
    # gives it a brush-like outline. The threshold is set for the sampled fill share.
    field = (1.0 - rho2) + roughness * noise
    threshold = float(np.quantile(field[inside], 1.0 - fill))
    mask = inside & (field >= threshold)
    labels, count = ndimage.label(mask)
    if count > 1:  # keep the largest piece: one edit, not confetti
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
        mask = labels == int(np.argmax(sizes)) + 1
    mask = ndimage.binary_fill_holes(mask)
    params = {
        "shape": "blob",
        "noise_sigma_px": to_json_float(sigma),
        "roughness": to_json_float(roughness),
        "fill": to_json_float(fill),
        "threshold": to_json_float(threshold, 6),
    }
    return Region(np.asarray(mask, dtype=bool), params)


_SHAPE_MAKERS = {"ellipse": _ellipse, "polygon": _polygon, "blob": _blob}
