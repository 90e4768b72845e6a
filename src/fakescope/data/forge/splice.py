"""Splice: paste a region of another photo into the target, with or without edge blending.

Steps: a box size that fits both images; a random shape in it (:mod:`.shapes`); a position in
the donor (where the content comes from) and one in the target (where it goes; 2 pixels from the
border, which Poisson blending needs); then one of three blendings, recorded as ``blending``:

- ``"none"``: a hard paste, the classic cut-and-paste splice.
- ``"feather"``: an alpha ramp *inside* the shape, ``alpha = min(1, d / feather_px)`` with ``d``
  the Euclidean distance to the nearest pixel outside the shape (1 on the outline). Feathering
  inwards, rather than blurring the shape, keeps every pixel with nonzero weight inside the shape.
- ``"poisson"``: OpenCV ``seamlessClone`` (``NORMAL_CLONE``): the pasted gradients are integrated
  with the target's colours on the outline (Perez et al. 2003), so no colour seam remains.

The mask is the shape: exactly the pixels where the pasted content has nonzero weight. OpenCV's
Poisson result is composited through the same mask, so no blending changes a pixel outside it.
(Feathered pixels near the outline carry little donor weight and may round to their old value;
they are still marked, since the mask records the operation, not a diff. The alpha map is not
saved: it follows from the mask and ``feather_px``.)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from fakescope.data.forge.base import (
    Forgery,
    ForgeryError,
    choose,
    composite,
    require_cv2,
    to_json_float,
)
from fakescope.data.forge.shapes import place, sample_box, sample_position, sample_shape

BLENDINGS: tuple[str, ...] = ("none", "feather", "poisson")
SIZE_FRACTION = (0.2, 0.5)  # box side as a share of the shorter side of the smaller image
FEATHER_PX = (2.0, 6.0)
_MARGIN = 2  # seamlessClone clears the mask's outer pixel ring and needs a border to solve on


def forge_splice(
    target: np.ndarray,
    rng: np.random.Generator,
    *,
    donor: np.ndarray | None = None,
    blending: str | None = None,
    shape: str | None = None,
) -> Forgery:
    """Paste a random region of ``donor`` into ``target``; ``blending``/``shape`` fix a choice."""
    if donor is None:
        raise ForgeryError("splice needs a donor image from another photo")
    height, width = target.shape[:2]
    box_h, box_w = sample_box(
        rng,
        min(height, donor.shape[0]),
        min(width, donor.shape[1]),
        frac=SIZE_FRACTION,
        margin=_MARGIN,
    )
    region = sample_shape(rng, box_h, box_w, shape)
    src_y, src_x = sample_position(rng, donor.shape[0], donor.shape[1], box_h, box_w)
    dst_y, dst_x = sample_position(rng, height, width, box_h, box_w, margin=_MARGIN)
    blending = blending or choose(rng, BLENDINGS)
    if blending not in _BLENDERS:
        raise ValueError(f"unknown blending {blending!r}; expected one of {', '.join(BLENDINGS)}")

    mask = place(region.mask, height, width, dst_y, dst_x)
    # The donor's box moved onto the target's box: the content before any blending.
    pasted = target.copy()
    pasted[dst_y : dst_y + box_h, dst_x : dst_x + box_w] = donor[
        src_y : src_y + box_h, src_x : src_x + box_w
    ]
    content, blend_params = _BLENDERS[blending](rng, target, pasted, mask)
    params = {
        "region": region.params,
        "box_hw": [box_h, box_w],
        "donor_yx": [src_y, src_x],
        "target_yx": [dst_y, dst_x],
        "blending": blending,
        **blend_params,
        "mask_rule": "pixels where the pasted content has nonzero weight (the shape)",
    }
    return Forgery(composite(target, content, mask), mask, params)


def _hard(
    rng: np.random.Generator, target: np.ndarray, pasted: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, dict[str, object]]:
    return pasted, {}


def _feather(
    rng: np.random.Generator, target: np.ndarray, pasted: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, dict[str, object]]:
    feather_px = float(rng.uniform(*FEATHER_PX))
    # Only the region's bounding box plus a ring of unmasked pixels: the distance transform
    # over a whole 12-megapixel photo would take seconds for a region of a few thousand pixels.
    # distance_transform_edt measures to the nearest False pixel, which the ring guarantees.
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
    alpha = np.minimum(ndimage.distance_transform_edt(mask[box]) / feather_px, 1.0)[..., None]
    blended = pasted.copy()
    mixed = alpha * pasted[box].astype(np.float64) + (1.0 - alpha) * target[box]
    blended[box] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return blended, {
        "feather_px": to_json_float(feather_px),
        "alpha": "min(1, edt(mask) / feather_px), edt = distance to the nearest unmasked pixel",
    }


def _poisson(
    rng: np.random.Generator, target: np.ndarray, pasted: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, dict[str, object]]:
    cv2 = require_cv2()
    mask_u8 = mask.astype(np.uint8) * 255
    x, y, w, h = cv2.boundingRect(mask_u8)
    if w < 3 or h < 3:
        raise ForgeryError("region too small for Poisson blending")
    # seamlessClone places the mask's bounding box centred on ``centre``, at
    # (cx - w // 2, cy - h // 2); choosing this centre keeps the content where it already is.
    centre = (x + w // 2, y + h // 2)
    cloned = cv2.seamlessClone(pasted, target, mask_u8, centre, cv2.NORMAL_CLONE)
    return cloned, {"poisson": "cv2.seamlessClone NORMAL_CLONE", "opencv": cv2.__version__}


_BLENDERS = {"none": _hard, "feather": _feather, "poisson": _poisson}
