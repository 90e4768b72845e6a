"""One-class localization: fitted on pristine noise only, it flags a smoothed (inpainted) square."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from fakescope.errors import NotFittedError
from fakescope.localizers import create, load_localizer
from fakescope.localizers.one_class.localizer import FEATURE_NAMES, block_features, cell_sums
from tests.conftest import natural_like

pytest.importorskip("cv2")


def pristine(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    return natural_like(rng, size)


def with_smoothed_square(rng: np.random.Generator, box: tuple[int, int, int, int]) -> np.ndarray:
    """A pristine-like image whose ``box`` lost its sensor noise, as an inpainted fill does."""
    image = pristine(rng, 160)
    y0, x0, y1, x1 = box
    smooth = gaussian_filter(image.astype(np.float32), (2.5, 2.5, 0))
    image[y0:y1, x0:x1] = np.clip(smooth[y0:y1, x0:x1], 0, 255).astype(np.uint8)
    return image


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    images = [pristine(rng) for _ in range(24)]
    localizer = create("one-class").fit(images, [None] * len(images))
    return localizer.calibrate_pristine([pristine(rng) for _ in range(8)])


def test_features_have_the_documented_layout() -> None:
    image = pristine(np.random.default_rng(1), 100)
    features = block_features(cell_sums(image, 16))
    # 100 px -> 7 cells (the last one ragged) -> 6 blocks of 2x2 cells per side.
    assert features.shape == (6, 6, len(FEATURE_NAMES))
    assert np.isfinite(features).all()
    # Strips do not change the sums: the first strip's cells (but its last, whose lag-1
    # products reach into the next strip) equal those of the image cut at 256 rows.
    tall = pristine(np.random.default_rng(2), 96)
    tall = np.concatenate([tall] * 6, axis=0)  # 576 rows: three strips of 256/256/64
    sums = cell_sums(tall, 16)
    top = cell_sums(tall[:256], 16)
    np.testing.assert_allclose(sums[:15, :, :], top[:15, :, :], rtol=1e-6, atol=1e-6)


def test_each_feature_reads_its_own_statistic() -> None:
    """Feature columns respond to what they are named after (guards the sum indices)."""
    import io

    from PIL import Image

    rng = np.random.default_rng(11)
    image = pristine(rng, 128)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=40)
    compressed = np.asarray(Image.open(buffer).convert("RGB"))
    column = {name: index for index, name in enumerate(FEATURE_NAMES)}
    plain = block_features(cell_sums(image, 16))
    jpeg = block_features(cell_sums(compressed, 16))
    for axis in ("x", "y"):
        grid = column[f"jpeg_grid_{axis}"]
        assert abs(np.median(plain[..., grid])) < 0.1  # no grid in the uncompressed image
        assert np.median(jpeg[..., grid]) > 0.2  # JPEG blocking: stronger steps at 8x8 borders
    smooth = gaussian_filter(image.astype(np.float32), (2, 2, 0)).astype(np.uint8)
    smoothed = block_features(cell_sums(smooth, 16))
    assert (smoothed[..., column["log_variance_kb"]] < plain[..., column["log_variance_kb"]]).all()
    assert np.median(smoothed[..., column["autocorr_x_edge"]]) > np.median(
        plain[..., column["autocorr_x_edge"]]
    )
    bright = block_features(cell_sums(np.clip(image.astype(int) + 40, 0, 255).astype(np.uint8), 16))
    assert np.median(bright[..., column["mean_luma"]] - plain[..., column["mean_luma"]]) > 0.1


def test_smoothed_square_is_hotter_than_elsewhere(fitted) -> None:
    box = (48, 48, 112, 112)
    image = with_smoothed_square(np.random.default_rng(3), box)
    result = fitted.localize(image)
    assert result.heatmap.shape == image.shape[:2]
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    inside = np.zeros(image.shape[:2], dtype=bool)
    inside[box[0] + 8 : box[2] - 8, box[1] + 8 : box[3] - 8] = True
    outside = np.ones(image.shape[:2], dtype=bool)
    outside[box[0] - 24 : box[2] + 24, box[1] - 24 : box[3] + 24] = False
    assert result.heatmap[inside].mean() > result.heatmap[outside].mean() + 0.3
    assert result.mask[inside].mean() > 0.5
    assert result.mask[outside].mean() < 0.1
    # And the whole image scores above a pristine one.
    clean = fitted.localize(pristine(np.random.default_rng(4), 160))
    assert result.score > clean.score


def test_threshold_comes_from_pristine_false_positives(fitted) -> None:
    rng = np.random.default_rng(5)
    flagged = [fitted.localize(pristine(rng)).mask.mean() for _ in range(8)]
    assert 0.0 < fitted.threshold < 1.0
    assert np.mean(flagged) < 0.05  # ~1 % by construction, on other pristine draws


def test_refuses_forgery_masks() -> None:
    rng = np.random.default_rng(6)
    images = [pristine(rng) for _ in range(2)]
    mask = np.zeros(images[0].shape[:2], dtype=bool)
    mask[10:20, 10:20] = True
    with pytest.raises(ValueError, match="pristine"):
        create("one-class").fit(images, [None, mask])
    # All-False masks are pristine and accepted.
    create("one-class", max_blocks=100).fit(images, [None, np.zeros_like(mask)])


def test_save_load_round_trip(fitted, tmp_path: Path) -> None:
    image = with_smoothed_square(np.random.default_rng(7), (40, 40, 100, 100))
    loaded = load_localizer(fitted.save(tmp_path / "one-class"))
    assert (tmp_path / "one-class" / "weights.safetensors").is_file()
    assert loaded.threshold == pytest.approx(fitted.threshold)
    np.testing.assert_allclose(loaded.predict_heatmap(image), fitted.predict_heatmap(image))


def test_unfitted_model_refuses_to_predict() -> None:
    with pytest.raises(NotFittedError):
        create("one-class").predict_heatmap(np.zeros((64, 64, 3), dtype=np.uint8))


def test_large_non_square_image(fitted) -> None:
    rng = np.random.default_rng(8)
    image = np.tile(pristine(rng, 128), (5, 9, 1))[:610, :1100]
    heat = fitted.predict_heatmap(image)
    assert heat.shape == (610, 1100)
    assert np.isfinite(heat).all()


def test_bundled_model_loads() -> None:
    localizer = load_localizer("one-class-default")
    heat = localizer.predict_heatmap(pristine(np.random.default_rng(9), 96))
    assert heat.shape == (96, 96)
    assert localizer.threshold_ is not None
