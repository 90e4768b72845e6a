"""Noise residuals: what is left after predicting each pixel from its neighbours.

Editing leaves traces in this residual even when the content looks seamless: a splice brings
another camera's and another compression's noise, an inpainted or resampled region is smoother
than its surroundings. The three fixed kernels are the classic SRM ones used as a first layer
by rich-model steganalysis and by manipulation detectors (Fridrich and Kodovsky 2012; Zhou et
al. 2018): a first-order edge residual, the 3x3 "KB" and the 5x5 "KV" second-order residuals.
A learned alternative (Bayar and Stamm's constrained convolution) lives in the networks that
train it; these fixed ones also serve methods without training (the one-class model).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

_FIRST_ORDER = np.array([[0, 0, 0], [0, -1, 1], [0, 0, 0]], dtype=np.float32)
_KB = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.float32) / 4.0
_KV = (
    np.array(
        [
            [-1, 2, -2, 2, -1],
            [2, -6, 8, -6, 2],
            [-2, 8, -12, 8, -2],
            [2, -6, 8, -6, 2],
            [-1, 2, -2, 2, -1],
        ],
        dtype=np.float32,
    )
    / 12.0
)


def srm_kernels() -> np.ndarray:
    """The three SRM kernels, each zero-padded to 5x5: float32 (3, 5, 5)."""
    kernels = np.zeros((3, 5, 5), dtype=np.float32)
    kernels[0, 1:4, 1:4] = _FIRST_ORDER
    kernels[1, 1:4, 1:4] = _KB
    kernels[2] = _KV
    return kernels


def luminance(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB uint8 image, float32 in [0, 255]."""
    rgb = image.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def srm_residuals(image: np.ndarray, clip: float = 3.0) -> np.ndarray:
    """SRM residuals of the luma, truncated to ``[-clip, clip]``: float32 (H, W, 3).

    Truncation (as in SRM) keeps strong edges from dominating the weak noise of interest.
    """
    gray = luminance(image)
    out = np.empty((*gray.shape, 3), dtype=np.float32)
    for index, kernel in enumerate(srm_kernels()):
        out[..., index] = ndimage.correlate(gray, kernel, mode="reflect")
    np.clip(out, -clip, clip, out=out)
    return out
