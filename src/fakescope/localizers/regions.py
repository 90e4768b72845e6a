"""Connected regions of a binary mask, as the JSON-ready dicts a Localization lists."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

#: Regions are listed largest first, at most this many.
MAX_REGIONS = 20


def mask_regions(mask: np.ndarray, max_regions: int = MAX_REGIONS) -> list[dict[str, Any]]:
    """``bbox`` ([y0, x0, y1, x1], end-exclusive) and ``pixels`` of each 8-connected region."""
    if not mask.any():
        return []
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    boxes = ndimage.find_objects(labels)
    order = np.argsort(-sizes, kind="stable")[:max_regions]
    return [
        {
            "bbox": [boxes[i][0].start, boxes[i][1].start, boxes[i][0].stop, boxes[i][1].stop],
            "pixels": int(sizes[i]),
        }
        for i in order
    ]
