"""Test-time views of a tile: its flips and transposes, and how a flow prediction maps back.

The warp-flow network is trained on all eight flips and transposes of its examples, so it
should predict the same flow on each view of an image, mapped back. Its errors, though, differ
from view to view; merging the views' predictions removes much of a single view's wrong-signed
flow. Pure numpy (no torch), so parameters can be checked without the network.

A view is ``(transpose, flip_rows, flip_cols)``, applied to the image as flip columns, then
flip rows, then transpose; :func:`from_view` undoes them in reverse order. Flows are in the
forge convention ``forged(y, x) = original(y + dy, x + dx)``: a flip negates the flow component
along its axis, a transpose swaps dy and dx. The JPEG block grid moves with a flip: a grid at
offset ``o`` on a side of ``n`` pixels is at ``(n - o) mod 8`` in the flipped image.
"""

from __future__ import annotations

import numpy as np

BLOCK = 8
#: The eight views, ordered so the first 2 are the image and its mirror, the first 4 all its
#: flips, and all 8 add the transposes.
DIHEDRAL_VIEWS: tuple[tuple[bool, bool, bool], ...] = tuple(
    (transpose, flip_rows, flip_cols)
    for transpose in (False, True)
    for flip_rows in (False, True)
    for flip_cols in (False, True)
)
#: Valid numbers of views: the identity, the mirror pair, the flips, all eight.
VIEW_COUNTS = (1, 2, 4, 8)
#: How the views' predictions are merged per pixel.
VIEW_COMBINERS = ("mean", "median")


def check_views(views: int, combine: str) -> None:
    """ValueError unless ``views`` is in :data:`VIEW_COUNTS` and ``combine`` a combiner."""
    if views not in VIEW_COUNTS or isinstance(views, bool):
        raise ValueError(f"test-time views must be one of {VIEW_COUNTS}, got {views!r}")
    if combine not in VIEW_COMBINERS:
        raise ValueError(f"view combiner must be one of {VIEW_COMBINERS}, got {combine!r}")


def to_view(
    image: np.ndarray, offset: tuple[int, int], view: tuple[bool, bool, bool]
) -> tuple[np.ndarray, tuple[int, int]]:
    """``image`` (H, W, C) seen in ``view``, contiguous, with its block-grid ``offset`` moved."""
    transpose, flip_rows, flip_cols = view
    height, width = image.shape[:2]
    offset_y, offset_x = offset
    if flip_cols:
        image, offset_x = image[:, ::-1], (width - offset_x) % BLOCK
    if flip_rows:
        image, offset_y = image[::-1], (height - offset_y) % BLOCK
    if transpose:
        image, (offset_y, offset_x) = image.transpose(1, 0, 2), (offset_x, offset_y)
    return np.ascontiguousarray(image), (offset_y, offset_x)


def from_view(prediction: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    """A (H, W, 2 + k) prediction made on a view (dy, dx, then any flow-free channels), mapped
    back to the image's own frame."""
    transpose, flip_rows, flip_cols = view
    out = prediction
    if transpose:
        order = [1, 0, *range(2, out.shape[2])]
        out = out.transpose(1, 0, 2)[..., order]
    sign = np.ones(out.shape[2], dtype=np.float32)
    if flip_rows:
        out = out[::-1]
        sign[0] = -sign[0]
    if flip_cols:
        out = out[:, ::-1]
        sign[1] = -sign[1]
    return np.ascontiguousarray(out * sign, dtype=np.float32)


def merge_views(predictions: list[np.ndarray], combine: str = "median") -> np.ndarray:
    """The per-pixel mean or median of the views' (mapped-back) predictions, float32."""
    if not predictions:
        raise ValueError("no view predictions to merge")
    if len(predictions) == 1:
        return np.ascontiguousarray(predictions[0], dtype=np.float32)
    merge = np.median if combine == "median" else np.mean
    return np.ascontiguousarray(merge(np.stack(predictions), axis=0), dtype=np.float32)
