"""Fourier spectra of real and fake images, and the spectral-matching counter-attack.

**Spectra.** Generators leave traces in the Fourier spectrum: up-sampling replicates spectra
(peaks on a grid), transposed convolutions add checkerboard energy at high frequencies, and
many generators lack the high-frequency energy of camera images (Durall et al. CVPR 2020,
"Watch your up-convolution"; Dzanic et al. 2020). For each class and fake group this module
computes the mean 2-D log magnitude spectrum (grey level, centred) and the azimuthally averaged
profile (1-D, DC to the corner), over the images of the scope's most common size: spectra of
different sizes sample different frequencies and are not averaged together.

**Spectral matching.** If a detector relies on those spectral differences, equalising them
should defeat it. Following the counter-attacks of Chandrasegaran et al. (CVPR 2021, "A Closer
Look at Fourier Spectrum Discrepancies for CNN-generated Images Detection") and Durall et al.
(2020), every fake's spectrum is equalised to the real spectrum in two steps, the phase always
kept:

1. *class-level*: per colour channel and frequency, the Fourier coefficients are multiplied by
   ``mean |F_real| / mean |F_fake|``, which removes a generator's systematic peaks and dips
   (up-sampling grids, checkerboards);
2. *per image*: each ring of frequencies (the azimuthal bins of Durall et al.) is scaled so
   that the image's mean log magnitude on that ring equals the real mean, which removes the
   per-image fall-off a spectral detector reads.

Both real references come from a *reference* half of the photos, disjoint from the images
attacked and tested, as an attacker with their own real photos would have. Gains are clipped
to [1/8, 8] so that near-empty frequencies do not explode, and frequencies below a quarter of
the Nyquist radius are left alone: they carry the image content (and the reference photos'
content differs from the attacked ones'), while generator traces live above; equalising
everything measured 15 dB PSNR on the benchmark's autoencoder fakes, this about 36 dB.

A detector is *defeated* on a group when its ROC-AUC on test reals vs equalised fakes drops to
0.6 or below from at least 0.7 before (a detector cannot be defeated on a group it did not
detect in the first place).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft

from fakescope.features.spectral import azimuthal_profile, to_grey

PROFILE_POINTS = 64
MAX_GAIN = 8.0
#: Frequencies below this fraction of the Nyquist radius are kept (image content).
KEPT_LOW_BAND = 0.25
DEFEATED_AUC = 0.6
DETECTED_AUC = 0.7  # below this before the attack, there is nothing to defeat
#: Bands of the azimuthal profile (fractions of DC-to-corner), as in the spectral detector.
BANDS: dict[str, tuple[float, float]] = {
    "low": (0.0, 1 / 3),
    "mid": (1 / 3, 2 / 3),
    "high": (2 / 3, 1.0),
}


def common_shape(images: Sequence[np.ndarray]) -> tuple[int, int] | None:
    """The most common (H, W) among ``images`` (None without images)."""
    shapes = Counter(image.shape[:2] for image in images)
    return shapes.most_common(1)[0][0] if shapes else None


def mean_log_spectrum(images: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over images (all of one shape) of the centred log magnitude of the grey level."""
    total: np.ndarray | None = None
    for image in images:
        grey = to_grey(image)
        grey = grey - grey.mean()  # DC would dominate the colour scale
        magnitude = np.abs(scipy.fft.fft2(grey, norm="ortho", workers=1))
        log_power = np.fft.fftshift(np.log(magnitude + 1e-8))
        total = log_power if total is None else total + log_power
    if total is None:
        raise ValueError("mean_log_spectrum needs at least one image")
    return total / len(images)


def resampled_profile(image: np.ndarray, points: int = PROFILE_POINTS) -> np.ndarray:
    """The azimuthal log profile interpolated onto ``points`` frequencies (DC to corner)."""
    profile = azimuthal_profile(image)
    source = np.linspace(0.0, 1.0, profile.size)
    return np.interp(np.linspace(0.0, 1.0, points), source, profile)


@dataclass(frozen=True)
class ScopeSpectrum:
    name: str
    n: int
    shape: tuple[int, int]
    mean_spectrum: np.ndarray  # (H, W), centred
    profile: np.ndarray  # (PROFILE_POINTS,) mean azimuthal log profile


def scope_spectrum(name: str, images: Sequence[np.ndarray], max_images: int) -> ScopeSpectrum:
    """Mean spectrum and profile of the images of the scope's most common size."""
    shape = common_shape(images)
    if shape is None:
        raise ValueError(f"no images for {name!r}")
    chosen = [image for image in images if image.shape[:2] == shape][:max_images]
    profiles = np.stack([resampled_profile(image) for image in chosen])
    return ScopeSpectrum(name, len(chosen), shape, mean_log_spectrum(chosen), profiles.mean(0))


def band_differences(fake: ScopeSpectrum, real: ScopeSpectrum) -> dict[str, float]:
    """Mean log-power difference (fake - real) in each band of the profile (natural log)."""
    difference = fake.profile - real.profile
    positions = np.linspace(0.0, 1.0, difference.size)
    return {
        band: float(difference[(positions >= low) & (positions <= high)].mean())
        for band, (low, high) in BANDS.items()
    }


# ------------------------------------------------------------------ spectral matching attack


def _channel_spectra(image: np.ndarray) -> np.ndarray:
    return scipy.fft.rfft2(image.astype(np.float32), axes=(0, 1), workers=1)


def mean_magnitude(images: Sequence[np.ndarray]) -> np.ndarray:
    """Mean |rfft2| per channel over images of one shape: (H, W//2+1, 3)."""
    total = np.zeros(1)
    for image in images:
        total = total + np.abs(_channel_spectra(image))
    return total / max(len(images), 1)


def equalisation_gain(real_reference: np.ndarray, fake_reference: np.ndarray) -> np.ndarray:
    """Per-frequency, per-channel gain that maps the fake mean magnitude onto the real one."""
    gain = (real_reference + 1e-6) / (fake_reference + 1e-6)
    return np.clip(gain, 1.0 / MAX_GAIN, MAX_GAIN)


def _ring_index(height: int, width: int) -> np.ndarray:
    """Integer ring (radius in cycles per short side) of every ``rfft2`` coefficient."""
    side = min(height, width)
    ky = np.fft.fftfreq(height) * side
    kx = np.fft.rfftfreq(width) * side
    return np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.intp)


def ring_log_profile(image: np.ndarray) -> np.ndarray:
    """Mean log magnitude of the grey level's ``rfft2`` per ring (DC first)."""
    grey = to_grey(image)
    log_magnitude = np.log(np.abs(scipy.fft.rfft2(grey, workers=1)) + 1e-3)
    rings = _ring_index(*grey.shape).ravel()
    counts = np.maximum(np.bincount(rings), 1)
    return np.bincount(rings, weights=log_magnitude.ravel()) / counts


def equalise(
    image: np.ndarray,
    gain: np.ndarray,
    target_profile: np.ndarray | None = None,
    kept_low_band: float = KEPT_LOW_BAND,
) -> np.ndarray:
    """``image`` with its spectrum multiplied by ``gain`` (phase kept), then, with a
    ``target_profile`` (:func:`ring_log_profile` of reals), each ring scaled to that profile;
    frequencies below ``kept_low_band`` of the Nyquist radius stay as they are."""
    height, width = image.shape[:2]
    rings = _ring_index(height, width)
    changed = rings > kept_low_band * min(height, width) / 2
    spectrum = _channel_spectra(image) * np.where(changed[..., None], gain, 1.0)
    restored = scipy.fft.irfft2(spectrum, s=(height, width), axes=(0, 1), workers=1)
    if target_profile is not None:
        # Scaling every coefficient of a ring by g shifts its mean log magnitude by log g, in
        # each channel and so in the grey level too: one gain per ring matches the profile.
        profile = ring_log_profile(restored.astype(np.float32))
        ring_gain = np.clip(np.exp(target_profile - profile), 1.0 / MAX_GAIN, MAX_GAIN)
        ring_gain = np.where(changed, ring_gain[rings], 1.0)
        spectrum = _channel_spectra(restored) * ring_gain[..., None]
        restored = scipy.fft.irfft2(spectrum, s=(height, width), axes=(0, 1), workers=1)
    return np.clip(np.rint(restored), 0, 255).astype(np.uint8)
