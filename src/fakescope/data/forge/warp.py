"""Warp: a smooth local displacement, like a liquify edit (the FALdetector setting).

The flow is a sum of 1-3 *bumps*, each a brush stroke of radius ``R`` at a centre ``c`` with a
compactly supported smooth window ``w = (1 - r^2 / R^2)^3`` (zero for ``r >= R``, twice
differentiable everywhere, as a liquify brush's falloff):

- ``push``: content moves along a direction, ``f = -w * u`` with ``u`` a unit vector;
- ``swirl``: content turns about ``c``, ``f = +-w * perp(p - c) / R``;
- ``pinch`` / ``bloat``: content contracts to / expands from ``c``, ``f = +-w * (p - c) / R``.

Each bump is scaled to a peak of 1 px and weighted by ``weight``; the sum is scaled so that its
largest displacement is ``max_displacement_px`` (a few to 15 px, and at most 0.45 R of the
smallest brush, which keeps the map from folding over itself). The saved ``flow`` is that sum,
float32 ``(H, W, 2)`` as ``(dy, dx)``: a backward map, ``forged(y, x) = original(y + dy, x + dx)``,
applied with ``cv2.remap`` (bilinear, reflected border). Outside every brush the flow is exactly
zero and the pixels are the original bytes.

``mask`` marks the pixels displaced by more than ``mask_threshold_px`` (0.5 px). Pixels displaced
by less are outside the mask yet may change slightly through interpolation: a sub-pixel shift is
not an edit anyone could point at.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fakescope.data.forge.base import Forgery, choose, require_cv2, to_json_float

EFFECTS: tuple[str, ...] = ("push", "swirl", "pinch", "bloat")
BUMPS = (1, 3)
RADIUS_FRACTION = (0.1, 0.3)  # of the shorter image side: local edits
MAX_DISPLACEMENT_PX = (3.0, 15.0)
FOLD_LIMIT = 0.45  # max displacement / smallest radius; the window's slope peaks at 1.72 / R
MASK_THRESHOLD_PX = 0.5
# Peak of r/R * (1 - r^2/R^2)^3, at r/R = 1/sqrt(7): swirl and pinch bumps are divided by it.
_RADIAL_PEAK = (1 / math.sqrt(7)) * (6 / 7) ** 3


def forge_warp(
    target: np.ndarray,
    rng: np.random.Generator,
    *,
    donor: np.ndarray | None = None,
    max_displacement_px: float | None = None,
) -> Forgery:
    """Liquify ``target`` with a random smooth flow; ``max_displacement_px`` fixes its peak."""
    cv2 = require_cv2()
    height, width = target.shape[:2]
    # float32 throughout: the flow is stored as float32, and a 12-megapixel photo would
    # otherwise need gigabytes of float64 temporaries.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    total = np.zeros((height, width, 2), dtype=np.float32)
    bumps: list[dict[str, Any]] = []
    for _ in range(int(rng.integers(BUMPS[0], BUMPS[1] + 1))):
        bump, field = _bump(rng, yy, xx, height, width)
        bumps.append(bump)
        total += bump["weight"] * field
    peak = float(np.hypot(total[..., 0], total[..., 1]).max())
    if max_displacement_px is None:
        smallest = min(b["radius_px"] for b in bumps)
        high = min(MAX_DISPLACEMENT_PX[1], max(MAX_DISPLACEMENT_PX[0], FOLD_LIMIT * smallest))
        max_displacement_px = float(rng.uniform(min(MAX_DISPLACEMENT_PX[0], high), high))
    scale = max_displacement_px / peak if peak > 0 else 0.0
    flow = (total * scale).astype(np.float32)
    # Maps from the float32 flow itself, so remapping with the saved file gives these pixels.
    map_y = yy + flow[..., 0]
    map_x = xx + flow[..., 1]
    forged = cv2.remap(
        target, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    mask = magnitude > MASK_THRESHOLD_PX
    params = {
        "bumps": bumps,
        "max_displacement_px": to_json_float(float(magnitude.max())),
        "scale_px": to_json_float(scale, 6),
        "window": "(1 - r^2/R^2)^3 for r < R, else 0",
        "flow": "float32 (H, W, 2) (dy, dx): forged(y, x) = original(y + dy, x + dx)",
        "interpolation": "bilinear (cv2.remap INTER_LINEAR, BORDER_REFLECT_101)",
        "mask_threshold_px": MASK_THRESHOLD_PX,
        "mask_rule": "displacement magnitude > mask_threshold_px",
        "opencv": cv2.__version__,
    }
    return Forgery(np.ascontiguousarray(forged, dtype=np.uint8), mask, params, flow=flow)


def _bump(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, height: int, width: int
) -> tuple[dict[str, Any], np.ndarray]:
    """One brush stroke: its JSON description and its (H, W, 2) field with a peak near 1.

    Values are rounded before use, so the JSON describes the field exactly.
    """
    effect = choose(rng, EFFECTS)
    radius = to_json_float(rng.uniform(*RADIUS_FRACTION) * min(height, width))
    cy = to_json_float(rng.uniform(0.15, 0.85) * (height - 1))
    cx = to_json_float(rng.uniform(0.15, 0.85) * (width - 1))
    weight = to_json_float(rng.uniform(0.5, 1.0))
    oy, ox = (yy - cy) / radius, (xx - cx) / radius
    window = np.clip(1.0 - (oy**2 + ox**2), 0.0, None) ** 3
    bump: dict[str, Any] = {
        "effect": effect,
        "centre_yx": [cy, cx],
        "radius_px": radius,
        "weight": weight,
    }
    extra, field = _EFFECTS[effect](rng, window, oy, ox)
    bump.update(extra)
    return bump, field


def _push(
    rng: np.random.Generator, window: np.ndarray, oy: np.ndarray, ox: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    direction = to_json_float(rng.uniform(0.0, 360.0))  # degrees; content moves this way
    theta = math.radians(direction)
    field = np.stack([-window * math.sin(theta), -window * math.cos(theta)], axis=-1)
    return {"direction_deg": direction}, field


def _swirl(
    rng: np.random.Generator, window: np.ndarray, oy: np.ndarray, ox: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    turn = 1.0 if rng.random() < 0.5 else -1.0
    field = np.stack([turn * window * ox, -turn * window * oy], axis=-1) / _RADIAL_PEAK
    return {"turn": turn}, field


def _radial(sign: float) -> _Effect:
    def effect(
        rng: np.random.Generator, window: np.ndarray, oy: np.ndarray, ox: np.ndarray
    ) -> tuple[dict[str, Any], np.ndarray]:
        # Sampling from further out (pinch, sign +1) shrinks the content towards the centre.
        return {}, np.stack([sign * window * oy, sign * window * ox], axis=-1) / _RADIAL_PEAK

    return effect


_Effect = Callable[
    [np.random.Generator, np.ndarray, np.ndarray, np.ndarray],
    tuple[dict[str, Any], np.ndarray],
]
_EFFECTS: dict[str, _Effect] = {
    "push": _push,
    "swirl": _swirl,
    "pinch": _radial(1.0),
    "bloat": _radial(-1.0),
}
