"""Patch scanning: a tiny fitted detector on a sliding window finds the region that looks fake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakescope.calibration.model import CalibratedModel
from fakescope.calibration.threshold import ThresholdCalibration
from fakescope.detectors import create as create_detector
from fakescope.errors import ModelError
from fakescope.localizers import create, load_localizer
from fakescope.localizers.patch_scan.localizer import gaussian_window, window_starts
from tests.conftest import natural_like, upsampled_fake

WINDOW = 32


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spectral detector fitted on 32 px real-like and 2x-upsampled crops, saved as a model."""
    rng = np.random.default_rng(0)
    real = [natural_like(rng, WINDOW) for _ in range(40)]
    fake = [upsampled_fake(rng, WINDOW) for _ in range(40)]
    detector = create_detector("spectral", n_features=16)
    detector.fit(real + fake, [0] * 40 + [1] * 40)
    calibration = ThresholdCalibration(
        threshold=0.5,
        target_fpr=0.05,
        review_threshold=0.3,
        review_fpr=0.2,
        n_calibration=80,
        calibration_fpr=0.05,
    )
    directory = tmp_path_factory.mktemp("spectral-model")
    CalibratedModel(detector, calibration, {"name": "tiny-spectral"}).save(directory)
    return directory


def composite(rng: np.random.Generator, size: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """A real-like image whose ``box`` (y0, x0, y1, x1) is a 2x-upsampled fake."""
    image = natural_like(rng, size)
    y0, x0, y1, x1 = box
    fake = upsampled_fake(rng, max(y1 - y0, x1 - x0) + 1)
    image[y0:y1, x0:x1] = fake[: y1 - y0, : x1 - x0]
    return image


def test_window_layout_covers_the_image() -> None:
    assert window_starts(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert window_starts(20, 32, 16) == [0]
    weights = gaussian_window(8, 12)
    assert weights.shape == (8, 12)
    assert weights.max() <= 1.0
    assert weights[3:5, 5:7].min() > weights[0, 0]


def test_fake_region_is_hotter_than_the_rest(model_dir: Path) -> None:
    rng = np.random.default_rng(1)
    box = (48, 48, 112, 112)
    image = composite(rng, 160, box)
    localizer = create("patch-scan", model=str(model_dir), window=WINDOW, stride=8)
    result = localizer.localize(image)
    assert result.heatmap.shape == image.shape[:2]
    assert result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    inside = np.zeros(image.shape[:2], dtype=bool)
    inside[box[0] + 8 : box[2] - 8, box[1] + 8 : box[3] - 8] = True
    outside = np.ones(image.shape[:2], dtype=bool)
    outside[box[0] - 24 : box[2] + 24, box[1] - 24 : box[3] + 24] = False
    assert result.heatmap[inside].mean() > result.heatmap[outside].mean() + 0.3
    # The mask at the detector's own threshold follows the region.
    assert result.mask[inside].mean() > 0.5
    assert result.mask[outside].mean() < 0.1


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_other_aggregations_also_localize(model_dir: Path, aggregation: str) -> None:
    rng = np.random.default_rng(2)
    image = composite(rng, 128, (0, 0, 64, 64))
    heat = create(
        "patch-scan", model=str(model_dir), window=WINDOW, stride=16, aggregation=aggregation
    ).predict_heatmap(image)
    assert heat[8:56, 8:56].mean() > heat[80:, 80:].mean() + 0.3


def test_big_non_square_image_streams_windows(model_dir: Path) -> None:
    rng = np.random.default_rng(3)
    image = np.tile(natural_like(rng, 96), (13, 7, 1))[:1201, :650]
    localizer = create("patch-scan", model=str(model_dir), window=WINDOW, stride=8, max_windows=300)
    window_y, window_x, stride = localizer._geometry(*image.shape[:2])
    assert (window_y, window_x) == (WINDOW, WINDOW) and stride > 8  # widened to stay bounded
    heat = localizer.predict_heatmap(image)
    assert heat.shape == (1201, 650)
    assert np.isfinite(heat).all()


def test_fit_is_a_validating_no_op_and_save_keeps_the_reference(
    model_dir: Path, tmp_path: Path
) -> None:
    localizer = create("patch-scan", model=str(model_dir), window=WINDOW)
    image = natural_like(np.random.default_rng(4), 64)
    assert localizer.fit([image], [None]) is localizer
    with pytest.raises(ValueError, match="mask"):
        localizer.fit([image], [np.zeros((10, 10), dtype=bool)])
    assert localizer._weights() == {}
    loaded = load_localizer(localizer.save(tmp_path / "scan"))
    assert loaded.get_params() == localizer.get_params()
    np.testing.assert_allclose(loaded.predict_heatmap(image), localizer.predict_heatmap(image))


def test_bad_parameters_and_missing_model() -> None:
    with pytest.raises(ValueError, match="stride"):
        create("patch-scan", window=32, stride=64)
    with pytest.raises(ValueError, match="aggregation"):
        create("patch-scan", aggregation="median")
    localizer = create("patch-scan", model="no-such-model")
    with pytest.raises(ModelError):
        localizer.predict_heatmap(np.zeros((64, 64, 3), dtype=np.uint8))
