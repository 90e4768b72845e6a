"""Azimuthally averaged log spectra (Durall et al. 2019, arXiv:1911.00686), computed fast.

For an image of shape (H, W): grey level in float32 → real 2-D FFT (``scipy.fft.rfft2``,
orthonormal, so magnitudes do not grow with image size) → log magnitude → mean over rings of
integer radius → linear interpolation onto a fixed number of frequencies. The image is never
resized: resampling would itself change the spectrum we are measuring.

Speed comes from three choices: the real FFT computes half the plane in float32; the ring index
of every coefficient is computed once per image shape and cached; rings are averaged with
``np.bincount`` in one pass instead of sorting radii. The half plane is exact, not approximate:
conjugate symmetry makes |F(-k)| = |F(k)|, so each coefficient whose mirror lies outside the
half plane is counted twice, which gives the same average as the full plane.

Radii are measured in cycles per ``min(H, W)`` pixels, so rings are circles of physical frequency
on non-square images too; on square images they are plain integer radii.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
from sklearn.base import BaseEstimator, TransformerMixin

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601
_LOG_EPSILON = np.float32(1e-8)


@dataclass(frozen=True)
class RingGeometry:
    """Per-shape constants: the ring of each half-plane coefficient and each ring's weight."""

    ring_index: np.ndarray  # (H * (W//2+1),) intp
    mirror_weight: np.ndarray  # (H, W//2+1) float32: 2 where the mirror is outside the half plane
    ring_weight: np.ndarray  # (n_rings,) float64: weighted coefficient count per ring
    n_rings: int


@lru_cache(maxsize=64)
def ring_geometry(height: int, width: int) -> RingGeometry:
    """Ring indices for an (H, W) image's ``rfft2`` output, cached per shape."""
    side = min(height, width)
    ky = np.fft.fftfreq(height) * side  # cycles per `side` pixels, signed
    kx = np.fft.rfftfreq(width) * side
    radius = np.hypot(ky[:, None], kx[None, :])
    ring_index = np.rint(radius).astype(np.intp)
    mirror_weight = np.full(radius.shape, 2.0, dtype=np.float32)
    mirror_weight[:, 0] = 1.0  # the kx = 0 column holds both k and -k already
    if width % 2 == 0:
        mirror_weight[:, -1] = 1.0  # the Nyquist column is its own mirror
    n_rings = int(ring_index.max()) + 1
    ring_weight = np.bincount(ring_index.ravel(), weights=mirror_weight.ravel(), minlength=n_rings)
    ring_index.setflags(write=False)
    mirror_weight.setflags(write=False)
    ring_weight.setflags(write=False)
    return RingGeometry(ring_index.ravel(), mirror_weight, ring_weight, n_rings)


def to_grey(image: np.ndarray) -> np.ndarray:
    """BT.601 luma in float32 from an (H, W, 3) or (H, W) array."""
    if image.ndim == 2:
        return image.astype(np.float32, copy=False)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {image.shape}")
    return (
        image[..., :3] @ LUMA_WEIGHTS
        if image.dtype == np.float32
        else np.dot(image[..., :3], LUMA_WEIGHTS).astype(np.float32, copy=False)
    )


def log_magnitude_spectrum(grey: np.ndarray, workers: int = -1) -> np.ndarray:
    """Natural log of the orthonormal real FFT's magnitude, float32, shape (H, W//2+1)."""
    spectrum = scipy.fft.rfft2(grey, norm="ortho", workers=workers)
    magnitude = np.abs(spectrum)
    magnitude += _LOG_EPSILON
    return np.log(magnitude, out=magnitude)


def azimuthal_profile(image: np.ndarray, workers: int = -1) -> np.ndarray:
    """Mean log magnitude on each ring of integer radius, from DC (index 0) outward."""
    grey = to_grey(image)
    height, width = grey.shape
    geometry = ring_geometry(height, width)
    log_magnitude = log_magnitude_spectrum(grey, workers=workers)
    log_magnitude *= geometry.mirror_weight
    ring_sum = np.bincount(
        geometry.ring_index, weights=log_magnitude.ravel(), minlength=geometry.n_rings
    )
    return ring_sum / geometry.ring_weight


def spectral_feature(image: np.ndarray, n_features: int = 128, workers: int = -1) -> np.ndarray:
    """A fixed-length feature: the profile without DC, interpolated onto ``n_features`` points.

    DC is left out because it only measures mean brightness. The points run from the lowest
    non-zero frequency to the corner of the spectrum, so every image size maps onto one grid.
    """
    profile = azimuthal_profile(image, workers=workers)[1:]
    if profile.size < 2:
        raise ValueError(f"image of shape {image.shape[:2]} is too small for a spectrum")
    source = np.linspace(0.0, 1.0, profile.size)
    target = np.linspace(0.0, 1.0, n_features)
    return np.interp(target, source, profile).astype(np.float32)


class AzimuthalSpectrum(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: images → (n, n_features) azimuthal log spectra.

    Stateless, so it composes into a ``Pipeline`` in front of any classifier.
    """

    def __init__(self, n_features: int = 128, workers: int = -1) -> None:
        self.n_features = n_features
        self.workers = workers

    def fit(self, images: Iterable[np.ndarray], labels: object = None) -> AzimuthalSpectrum:
        return self

    def transform(self, images: Iterable[np.ndarray]) -> np.ndarray:
        rows = [spectral_feature(image, self.n_features, self.workers) for image in images]
        if not rows:
            return np.empty((0, self.n_features), dtype=np.float32)
        return np.stack(rows)
