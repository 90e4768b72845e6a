"""Tests for the azimuthal log-spectrum features (Durall et al. 2019).

The fast implementation works on the real FFT's half plane, folds rows ky and -ky together and
takes one log per pair, so every test of its numbers compares against a plain full-plane
complex128 computation written out here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fakescope.features import spectral
from fakescope.features.spectral import (
    LUMA_WEIGHTS,
    AzimuthalSpectrum,
    azimuthal_profile,
    log_magnitude_spectrum,
    ring_geometry,
    spectral_feature,
    to_grey,
)

EPSILON = 1e-8


def reference_profile(grey: np.ndarray) -> np.ndarray:
    """Ring means of log(|F_ortho| + 1e-8) over the full complex128 plane."""
    grey = np.asarray(grey, dtype=np.float64)
    height, width = grey.shape
    log_magnitude = np.log(np.abs(np.fft.fft2(grey, norm="ortho")) + EPSILON)
    side = min(height, width)
    ky = np.fft.fftfreq(height) * side
    kx = np.fft.fftfreq(width) * side
    ring = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.intp).ravel()
    return np.bincount(ring, weights=log_magnitude.ravel()) / np.bincount(ring)


def reference_grey(image: np.ndarray) -> np.ndarray:
    """BT.601 luma in float64 with the module's (float32) weights."""
    if image.ndim == 2:
        return image.astype(np.float64)
    return image[..., :3].astype(np.float64) @ LUMA_WEIGHTS.astype(np.float64)


def natural_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An RGB uint8 image with a photo-like 1/f spectrum plus sensor-like noise."""
    ky = np.fft.fftfreq(height)[:, None]
    kx = np.fft.fftfreq(width)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(ky, kx), 1.0 / max(height, width))
    channels = []
    for _ in range(3):
        phases = np.exp(2j * np.pi * rng.random((height, width)))
        field = np.fft.ifft2(amplitude * phases).real
        channels.append((field - field.mean()) / field.std())
    image = 128.0 + 35.0 * np.stack(channels, axis=-1) + rng.normal(0.0, 3.0, (height, width, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def upsample_nearest(image: np.ndarray) -> np.ndarray:
    """2x nearest-neighbour upsampling, as in many generators' decoders."""
    return image.repeat(2, axis=0).repeat(2, axis=1)


def upsample_zero_insertion(image: np.ndarray) -> np.ndarray:
    """2x transposed-convolution-like upsampling: insert zeros, then a 3x3 kernel.

    Zero insertion repeats the spectrum at half the sampling rate. The kernel's taps
    (0.4, 1, 0.4) overlap unevenly, as a learned transposed convolution's do: copied pixels keep
    weight 1, filled ones get 0.8 or 0.64, a checkerboard whose copy of DC survives at the
    Nyquist corner. (A kernel whose alternating sum is 0, such as bilinear, would null it.)
    """
    height, width = image.shape[:2]
    sparse = np.zeros((2 * height, 2 * width, 3), dtype=np.float64)
    sparse[::2, ::2] = image
    kernel = np.array([0.4, 1.0, 0.4])
    padded = np.pad(sparse, ((1, 1), (1, 1), (0, 0)), mode="wrap")
    rows = sum(kernel[i] * padded[i : i + 2 * height] for i in range(3))
    filtered = sum(kernel[j] * rows[:, j : j + 2 * width] for j in range(3))
    return np.clip(np.rint(filtered), 0, 255).astype(np.uint8)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20191102)


# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "shape",
    [(64, 64), (63, 63), (48, 80), (80, 48), (33, 50), (50, 33), (4, 4), (5, 7), (1, 16), (16, 1)],
)
def test_profile_equals_full_plane_complex_reference(
    rng: np.random.Generator, shape: tuple[int, ...]
) -> None:
    image = natural_image(rng, *shape)
    profile = azimuthal_profile(image)
    expected = reference_profile(reference_grey(image))
    assert profile.shape == expected.shape
    # Ring means of float32 logs; float32 FFT rounding stays orders of magnitude below this.
    np.testing.assert_allclose(profile, expected, rtol=0, atol=2e-4)


@pytest.mark.parametrize("shape", [(31, 40), (40, 31), (2, 2), (3, 5)])
def test_profile_of_float_grey_equals_reference(
    rng: np.random.Generator, shape: tuple[int, ...]
) -> None:
    grey = rng.normal(100.0, 30.0, shape).astype(np.float32)
    np.testing.assert_allclose(azimuthal_profile(grey), reference_profile(grey), atol=2e-4)


def test_log_magnitude_spectrum_is_the_half_plane(rng: np.random.Generator) -> None:
    grey = rng.normal(0.0, 1.0, (24, 30)).astype(np.float32)
    log_magnitude = log_magnitude_spectrum(grey)
    expected = np.log(np.abs(np.fft.fft2(grey.astype(np.float64), norm="ortho")) + EPSILON)
    assert log_magnitude.shape == (24, 16)
    assert log_magnitude.dtype == np.float32
    np.testing.assert_allclose(log_magnitude, expected[:, :16], atol=1e-4)


def test_huge_values_fall_back_without_overflow(rng: np.random.Generator) -> None:
    # Products of paired magnitudes overflow float32 here; the result must not show it.
    grey = (rng.random((32, 32)) * 1e30).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        profile = azimuthal_profile(grey)
    np.testing.assert_allclose(profile, reference_profile(grey), rtol=1e-5)


def test_thread_count_does_not_change_results(rng: np.random.Generator) -> None:
    image = natural_image(rng, 512, 300)  # large enough for the FFT to use threads
    np.testing.assert_array_equal(spectral_feature(image, workers=1), spectral_feature(image))


# ----------------------------------------------------------------------------- shapes, caching


@pytest.mark.parametrize("shape", [(16, 16), (64, 100), (129, 257), (300, 200)])
@pytest.mark.parametrize("n_features", [128, 40])
def test_feature_length_is_fixed(
    rng: np.random.Generator, shape: tuple[int, ...], n_features: int
) -> None:
    feature = spectral_feature(natural_image(rng, *shape), n_features=n_features)
    assert feature.shape == (n_features,)
    assert feature.dtype == np.float32
    assert np.all(np.isfinite(feature))


def test_feature_interpolates_the_profile_without_dc(rng: np.random.Generator) -> None:
    image = natural_image(rng, 40, 40)
    profile = azimuthal_profile(image)[1:]
    feature = spectral_feature(image, n_features=profile.size)
    np.testing.assert_allclose(feature, profile, rtol=1e-6)


def test_ring_geometry_is_cached_per_shape() -> None:
    first = ring_geometry(40, 50)
    assert ring_geometry(40, 50) is first
    assert ring_geometry(50, 40) is not first
    assert not first.ring_index.flags.writeable
    assert not first.ring_weight.flags.writeable
    assert not first.folded_ring_index.flags.writeable


def test_ring_weights_count_the_full_plane() -> None:
    for height, width in [(8, 8), (9, 9), (8, 11), (11, 8)]:
        geometry = ring_geometry(height, width)
        side = min(height, width)
        ky = np.fft.fftfreq(height) * side
        kx = np.fft.fftfreq(width) * side
        ring = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.intp).ravel()
        np.testing.assert_array_equal(geometry.ring_weight, np.bincount(ring))
        assert geometry.n_rings == ring.max() + 1


# ----------------------------------------------------------------------------- inputs


def test_grey_rgb_and_rgba_inputs_agree(rng: np.random.Generator) -> None:
    rgb = natural_image(rng, 48, 40)
    alpha = rng.integers(0, 256, (48, 40, 1), dtype=np.uint8)
    rgba = np.concatenate([rgb, alpha], axis=-1)
    expected = spectral_feature(rgb)
    np.testing.assert_allclose(spectral_feature(rgba), expected, atol=1e-5)
    np.testing.assert_allclose(spectral_feature(rgb.astype(np.float32)), expected, atol=1e-5)
    np.testing.assert_allclose(spectral_feature(rgb.astype(np.float64)), expected, atol=1e-5)
    np.testing.assert_allclose(spectral_feature(to_grey(rgb)), expected, atol=1e-5)
    # A grey image is the same image in RGB with equal channels (the weights sum to 1).
    grey = rgb[..., 1]
    np.testing.assert_allclose(
        spectral_feature(grey), spectral_feature(np.repeat(grey[..., None], 3, -1)), atol=1e-4
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("channels", [3, 4])
def test_to_grey_is_bt601_in_float32(
    rng: np.random.Generator, dtype: type[np.generic], channels: int
) -> None:
    image = (rng.random((37, 23, channels)) * 255).astype(dtype)
    grey = to_grey(image)
    assert grey.dtype == np.float32
    assert grey.shape == (37, 23)
    np.testing.assert_allclose(grey, reference_grey(image), rtol=1e-6, atol=1e-4)


def test_to_grey_does_not_touch_the_input(rng: np.random.Generator) -> None:
    grey = rng.random((16, 16)).astype(np.float32)
    before = grey.copy()
    azimuthal_profile(grey)
    np.testing.assert_array_equal(grey, before)


@pytest.mark.parametrize("shape", [(8, 8, 2), (8, 8, 3, 1), (8,)])
def test_bad_layouts_raise(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        spectral_feature(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 3), (1, 40), (40, 1), (0, 8), (2, 2, 3)])
def test_too_small_images_raise(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        spectral_feature(np.zeros(shape, dtype=np.uint8))


def test_smallest_usable_image() -> None:
    assert spectral_feature(np.arange(16, dtype=np.uint8).reshape(4, 4)).shape == (128,)


# ----------------------------------------------------------------------------- behaviour


def test_checkerboard_shows_as_a_high_frequency_peak(rng: np.random.Generator) -> None:
    size = 64
    clean = natural_image(rng, size, size)
    checker = np.where(np.add.outer(np.arange(size), np.arange(size)) % 2 == 0, 3, -3)
    artifact = np.clip(clean.astype(np.int16) + checker[..., None], 0, 255).astype(np.uint8)

    clean_profile = azimuthal_profile(clean)
    profile = azimuthal_profile(artifact)
    corner = int(np.rint(np.hypot(size / 2, size / 2)))  # where (-1)^(x+y) puts its energy
    rise = profile - clean_profile
    assert int(np.argmax(rise)) == corner
    assert rise[corner] > 1.0  # nats: well above the ring-to-ring noise
    assert np.max(np.abs(rise[: size // 4])) < 0.05  # low frequencies are untouched
    assert profile[corner] > profile[corner - 3 : corner].max()  # a peak, not just a rise


def test_transposed_convolution_upsampling_leaves_a_corner_peak(rng: np.random.Generator) -> None:
    size = 64
    corner = int(np.rint(np.hypot(size / 2, size / 2)))
    real = azimuthal_profile(natural_image(rng, size, size))
    fake = azimuthal_profile(upsample_zero_insertion(natural_image(rng, size // 2, size // 2)))

    def peak_height(profile: np.ndarray) -> float:
        return float(profile[corner] - np.median(profile[corner - 6 : corner]))

    assert peak_height(fake) > 1.0
    assert peak_height(real) < 0.6  # the noise floor of a camera-like image is flat


def test_transformer_separates_upsampled_images_in_a_pipeline(rng: np.random.Generator) -> None:
    def sample(count: int) -> tuple[list[np.ndarray], np.ndarray]:
        images, labels = [], []
        for index in range(count):
            if index % 2 == 0:
                images.append(natural_image(rng, 64, 64))
                labels.append(0)
            else:
                upsample = upsample_nearest if index % 4 == 1 else upsample_zero_insertion
                images.append(upsample(natural_image(rng, 32, 32)))
                labels.append(1)
        return images, np.array(labels)

    train_images, train_labels = sample(40)
    test_images, test_labels = sample(40)
    pipeline = make_pipeline(
        AzimuthalSpectrum(n_features=32), StandardScaler(), LogisticRegression(max_iter=1000)
    )
    pipeline.fit(train_images, train_labels)
    assert pipeline.score(test_images, test_labels) >= 0.95
    assert clone(pipeline).get_params()["azimuthalspectrum__n_features"] == 32


def test_transformer_output_shape() -> None:
    transformer = AzimuthalSpectrum(n_features=16)
    assert transformer.fit([]) is transformer
    assert transformer.transform([]).shape == (0, 16)
    images = [np.zeros((20, 20, 3), dtype=np.uint8), np.ones((30, 25), dtype=np.uint8)]
    features = transformer.fit_transform(images)
    assert features.shape == (2, 16)
    assert features.dtype == np.float32


def test_ring_geometry_cache_is_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan over many image sizes must not grow the cache without limit."""
    monkeypatch.setattr(spectral, "GEOMETRY_CACHE_BYTES", 4 * ring_geometry(64, 64).nbytes)
    for side in range(60, 90):
        ring_geometry(side, side)
        assert spectral.geometry_cache_bytes() <= spectral.GEOMETRY_CACHE_BYTES
    big = ring_geometry(200, 200)  # over a quarter of the budget: computed, not kept
    assert ring_geometry(200, 200) is not big
