"""Inpaint: remove a random region and fill it from its surroundings with OpenCV.

``method`` is ``"telea"`` (fast marching, Telea 2004) or ``"ns"`` (Navier-Stokes, Bertalmio et
al. 2001), sampled per image; ``radius_px`` is the neighbourhood each filled pixel is estimated
from. The mask is the removed region: exactly the pixels the inpainter was asked to fill.

These classical inpainters leave smooth, texture-free fills. A learned inpainter (from the
generator zoo) is a separate registry entry in :mod:`fakescope.data.forge`, not a branch here.
"""

from __future__ import annotations

import numpy as np

from fakescope.data.forge.base import Forgery, choose, composite, require_cv2
from fakescope.data.forge.shapes import place, sample_box, sample_position, sample_shape

METHODS: tuple[str, ...] = ("telea", "ns")
SIZE_FRACTION = (0.1, 0.3)  # classical inpainting of larger holes is a smear, not an edit
RADIUS_PX = (3, 7)


def forge_inpaint(
    target: np.ndarray,
    rng: np.random.Generator,
    *,
    donor: np.ndarray | None = None,
    method: str | None = None,
    shape: str | None = None,
) -> Forgery:
    """Inpaint a random region of ``target``; ``method`` and ``shape`` fix those choices."""
    cv2 = require_cv2()
    flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
    height, width = target.shape[:2]
    box_h, box_w = sample_box(rng, height, width, frac=SIZE_FRACTION)
    region = sample_shape(rng, box_h, box_w, shape)
    y, x = sample_position(rng, height, width, box_h, box_w)
    method = method or choose(rng, METHODS)
    if method not in flags:
        raise ValueError(f"unknown inpainting method {method!r}; expected one of {METHODS}")
    radius = int(rng.integers(RADIUS_PX[0], RADIUS_PX[1] + 1))
    mask = place(region.mask, height, width, y, x)
    filled = cv2.inpaint(
        np.ascontiguousarray(target), mask.astype(np.uint8) * 255, radius, flags[method]
    )
    params = {
        "region": region.params,
        "box_hw": [box_h, box_w],
        "box_yx": [y, x],
        "method": method,
        "radius_px": radius,
        "inpainter": f"cv2.inpaint INPAINT_{method.upper()}",
        "opencv": cv2.__version__,
        "mask_rule": "the region handed to the inpainter",
    }
    return Forgery(composite(target, filled, mask), mask, params)
