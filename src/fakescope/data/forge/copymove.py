"""Copy-move: copy a region of the image to another place in it, rotated and scaled.

A random shape (:mod:`.shapes`) is the source region. A similarity transform (rotation by
``angle_deg`` and scaling by ``scale`` about the source centre, then a move to ``target_centre``)
maps it onto the target region; the whole image is resampled through that transform with
``cv2.warpAffine`` (bilinear, reflected border) and composited through the target mask.

- ``mask`` (``masks/copymove/``) is the target region: the source mask warped with the same
  transform and thresholded at 0.5 (bilinear weights), i.e. the pixels whose new content comes
  from inside the source region.
- The source region is saved too (``masks/copymove-source/``) and described in the JSON, with
  the 2x3 ``affine`` matrix (source -> target, x/y order as OpenCV uses it).
- Target and source never overlap (not even within 2 pixels), so the copied content is the
  untouched original and the source region keeps its pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np
from scipy import ndimage

from fakescope.data.forge.base import (
    Forgery,
    ForgeryError,
    composite,
    require_cv2,
    to_json_float,
)
from fakescope.data.forge.shapes import (
    Region,
    place,
    sample_box,
    sample_position,
    sample_shape,
)

SIZE_FRACTION = (0.15, 0.35)
ANGLE_DEG = (-45.0, 45.0)
SCALE = (0.75, 1.3)
SOURCE_MASK_GROUP = "copymove-source"
_GAP = 2  # pixels between source and target regions
_ATTEMPTS = 60


def forge_copymove(
    target: np.ndarray,
    rng: np.random.Generator,
    *,
    donor: np.ndarray | None = None,
    angle_deg: float | None = None,
    scale: float | None = None,
    shape: str | None = None,
) -> Forgery:
    """Copy a random region of ``target`` elsewhere in it; ``angle_deg``/``scale`` fix them."""
    cv2 = require_cv2()
    height, width = target.shape[:2]
    placement: _Placement | None = None
    attempts = 0
    while placement is None:
        if attempts == _ATTEMPTS:
            raise ForgeryError(
                f"no room for two separate regions in a {height}x{width} image "
                f"after {_ATTEMPTS} attempts"
            )
        # Shrink the upper size bound as attempts fail: small images leave room only for
        # small regions, and giving up would lose the image from the dataset.
        frac_high = max(SIZE_FRACTION[1] * 0.95**attempts, 0.05)
        attempts += 1
        placement = _try_placement(
            cv2,
            rng,
            height,
            width,
            (min(SIZE_FRACTION[0], frac_high), frac_high),
            angle_deg,
            scale,
            shape,
        )
    affine, mask = placement.affine, placement.mask
    warped = cv2.warpAffine(
        target, affine, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    params = {
        "region": placement.region.params,
        "box_hw": list(placement.box_hw),
        "source_yx": list(placement.source_yx),
        "angle_deg": placement.angle_deg,
        "scale": placement.scale,
        "target_centre_yx": list(placement.target_centre_yx),
        "affine": [[float(v) for v in row] for row in affine],
        "interpolation": "bilinear (cv2.warpAffine INTER_LINEAR, BORDER_REFLECT_101)",
        "attempts": attempts,
        "mask_rule": "source mask warped bilinearly with the same affine, >= 0.5",
        "source_mask": SOURCE_MASK_GROUP,
    }
    return Forgery(
        composite(target, warped, mask),
        mask,
        params,
        extra_masks={SOURCE_MASK_GROUP: placement.source},
    )


@dataclass(frozen=True)
class _Placement:
    region: Region
    box_hw: tuple[int, int]
    source_yx: tuple[int, int]
    angle_deg: float
    scale: float
    target_centre_yx: tuple[float, float]
    affine: np.ndarray  # 2x3, source -> target, (x, y) order
    source: np.ndarray  # (H, W) bool
    mask: np.ndarray  # (H, W) bool, the target region


def _try_placement(
    cv2: ModuleType,
    rng: np.random.Generator,
    height: int,
    width: int,
    frac: tuple[float, float],
    angle_deg: float | None,
    scale: float | None,
    shape: str | None,
) -> _Placement | None:
    """One random source region and transform; None when the target misses or overlaps."""
    box_h, box_w = sample_box(rng, height, width, frac=frac)
    region = sample_shape(rng, box_h, box_w, shape)
    src_y, src_x = sample_position(rng, height, width, box_h, box_w)
    angle = to_json_float(rng.uniform(*ANGLE_DEG) if angle_deg is None else angle_deg)
    factor = to_json_float(rng.uniform(*SCALE) if scale is None else scale)
    centre = (src_x + (box_w - 1) / 2.0, src_y + (box_h - 1) / 2.0)  # (x, y) for OpenCV
    half_h, half_w = _rotated_half_extents(box_h, box_w, angle, factor)
    # The moved box stays 1 pixel inside the image, so no target pixel samples past the border.
    low_y, high_y = half_h + 1, height - 2 - half_h
    low_x, high_x = half_w + 1, width - 2 - half_w
    if low_y > high_y or low_x > high_x:
        return None
    dst_cy = to_json_float(rng.uniform(low_y, high_y))
    dst_cx = to_json_float(rng.uniform(low_x, high_x))
    affine = cv2.getRotationMatrix2D(centre, angle, factor)
    affine[:, 2] += (dst_cx - centre[0], dst_cy - centre[1])
    source = place(region.mask, height, width, src_y, src_x)
    moved = cv2.warpAffine(
        source.astype(np.float32), affine, (width, height), flags=cv2.INTER_LINEAR
    )
    mask = moved >= 0.5
    if not mask.any() or (mask & ndimage.binary_dilation(source, iterations=_GAP)).any():
        return None
    return _Placement(
        region,
        (box_h, box_w),
        (src_y, src_x),
        angle,
        factor,
        (dst_cy, dst_cx),
        affine,
        source,
        mask,
    )


def _rotated_half_extents(
    box_h: int, box_w: int, angle_deg: float, scale: float
) -> tuple[int, int]:
    """Half height and width (rounded up) of the box after rotation and scaling."""
    theta = math.radians(angle_deg)
    cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
    half_w = scale * (box_w * cos + box_h * sin) / 2.0
    half_h = scale * (box_w * sin + box_h * cos) / 2.0
    return math.ceil(half_h), math.ceil(half_w)
