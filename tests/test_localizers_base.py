"""The localization contract: tiling, regions, the pixel threshold, registry and persistence."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest

from fakescope.calibration.pixel import best_f1_threshold, image_f1
from fakescope.errors import ImageTooSmallError, ModelError
from fakescope.localizers import (
    create,
    get_localizer_class,
    list_localizers,
    load_localizer,
    register,
)
from fakescope.localizers.base import Localizer, check_images_masks
from fakescope.localizers.regions import mask_regions
from fakescope.localizers.tiling import tile_starts, tiled_map
from fakescope.results import Localization


class BrightnessLocalizer(Localizer):
    """Heat = brightness above a learned level: enough to exercise the contract."""

    name = "test-brightness"

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def check_params(self) -> None:
        if self.gain <= 0:
            raise ValueError("gain must be positive")

    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        truths = check_images_masks(images, masks)
        pristine = [img[~m].mean() for img, m in zip(images, truths, strict=True)]
        self.level_ = np.array([np.mean(pristine)], dtype=np.float32)
        return self

    def predict_heatmap(self, image: np.ndarray, *, jpeg_quantization: Any = None) -> np.ndarray:
        level = float(self.level_[0])
        return tiled_map(
            image,
            lambda t: np.clip(self.gain * (t.mean(axis=2) - level) / 255.0, 0, 1),
            tile=64,
            overlap=16,
        )

    def _weights(self) -> dict[str, np.ndarray]:
        return {"level": self.level_}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.level_ = weights["level"]


def _bright_square(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(40, 60, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), dtype=bool)
    mask[20:50, 30:70] = True
    image[mask] = 230
    return image, mask


def test_tile_starts_cover_the_image_on_the_jpeg_grid() -> None:
    starts = tile_starts(4000, 512, 64)
    assert starts[0] == 0 and all(s % 8 == 0 for s in starts)
    assert starts[-1] + 512 + 7 >= 4000
    assert tile_starts(300, 512, 64) == [0]


@pytest.mark.parametrize("shape", [(130, 70), (300, 517), (64, 64)])
def test_tiled_map_of_a_pointwise_function_is_exact(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 255, (*shape, 3), dtype=np.uint8)
    out = tiled_map(image, lambda t: t[..., 0].astype(np.float32), tile=64, overlap=16)
    np.testing.assert_allclose(out, image[..., 0], atol=1e-3)
    two = tiled_map(image, lambda t: t[..., :2].astype(np.float32), tile=64, overlap=16, channels=2)
    assert two.shape == (*shape, 2)
    np.testing.assert_allclose(two, image[..., :2], atol=1e-3)


def test_mask_regions_lists_largest_first_with_end_exclusive_boxes() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:4, 2:5] = True
    mask[10:18, 5:15] = True
    regions = mask_regions(mask)
    assert regions == [
        {"bbox": [10, 5, 18, 15], "pixels": 80},
        {"bbox": [2, 2, 4, 5], "pixels": 6},
    ]
    assert mask_regions(np.zeros((4, 4), dtype=bool)) == []


def test_image_f1_conventions() -> None:
    truth = np.zeros((4, 4), dtype=bool)
    truth[:2] = True
    predicted = np.zeros_like(truth)
    predicted[:1] = True
    assert image_f1(predicted, truth) == pytest.approx(2 * 4 / (4 + 8))
    empty = np.zeros_like(truth)
    assert image_f1(empty, empty) == 1.0
    assert image_f1(predicted, empty) == 0.0


def test_best_f1_threshold_is_punished_by_pristine_images() -> None:
    heat = np.linspace(0, 1, 100).reshape(10, 10)
    truth = heat >= 0.6
    assert best_f1_threshold([heat], [truth]) == pytest.approx(0.6, abs=0.03)
    # A pristine image as hot as 0.8 forces the threshold above it.
    pristine = np.full((10, 10), 0.8)
    assert best_f1_threshold([heat, pristine], [truth, None]) > 0.8


def test_localize_calibrate_save_load_round_trip(tmp_path: Path) -> None:
    image, mask = _bright_square()
    pristine = _bright_square()[0].copy()
    pristine[mask] = 50
    localizer = BrightnessLocalizer(gain=2.0).fit([image, pristine], [mask, None])
    localizer.calibrate([image, pristine], [mask, None])
    result = localizer.localize(image)
    assert isinstance(result, Localization)
    assert result.heatmap.shape == mask.shape and result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    assert image_f1(result.mask, mask) > 0.95
    assert result.regions[0]["bbox"] == [20, 30, 50, 70]
    summary = result.summary()
    json.dumps(summary)
    assert summary["method"] == "test-brightness"
    assert summary["tampered_fraction"] == pytest.approx(mask.mean(), abs=0.01)

    register("test-brightness", f"{__name__}:BrightnessLocalizer")
    localizer.save(tmp_path / "model")
    loaded = load_localizer(tmp_path / "model")
    assert isinstance(loaded, BrightnessLocalizer)
    assert loaded.threshold == localizer.threshold and loaded.gain == 2.0
    np.testing.assert_array_equal(loaded.predict_heatmap(image), localizer.predict_heatmap(image))


def test_localize_refuses_tiny_and_malformed_images() -> None:
    localizer = BrightnessLocalizer().fit(*zip(_bright_square(), strict=True))
    with pytest.raises(ImageTooSmallError):
        localizer.localize(np.zeros((8, 40, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        localizer.localize(np.zeros((40, 40), dtype=np.uint8))


def test_fit_inputs_are_checked() -> None:
    image, mask = _bright_square()
    with pytest.raises(ValueError, match="masks"):
        check_images_masks([image], [])
    with pytest.raises(ValueError, match="does not match"):
        check_images_masks([image], [mask[:10]])


def test_registry_names_every_method_and_refuses_unknown_ones(tmp_path: Path) -> None:
    assert {"patch-scan", "segmentation", "one-class", "copy-move", "warp-flow"} <= set(
        list_localizers()
    )
    with pytest.raises(KeyError, match="unknown localizer"):
        get_localizer_class("nope")
    with pytest.raises(ModelError):
        load_localizer(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"detector": "spectral"}')
    with pytest.raises(ModelError, match="does not name a localizer"):
        load_localizer(tmp_path / "bad")
    register("test-brightness", f"{__name__}:BrightnessLocalizer")
    with pytest.raises(ValueError, match="gain"):
        create("test-brightness", gain=-1)


def test_best_f1_thresholds_gate_pristine_images_by_their_score() -> None:
    from fakescope.calibration.pixel import best_f1_thresholds

    heat = np.linspace(0, 1, 100).reshape(10, 10)
    truth = heat >= 0.6
    # A pristine image with a few hot pixels: one pixel threshold cannot serve both images,
    # but its low image score lets the image threshold empty its mask.
    pristine = np.zeros((10, 10))
    pristine[0, :3] = 0.9
    pixel, image = best_f1_thresholds([heat, pristine], [truth, None], [0.99, 0.5])
    assert pixel == pytest.approx(0.6, abs=0.03)
    assert 0.5 < image <= 0.99
    # Without the gate (pixel threshold alone) the best mean F1 is lower.
    alone = best_f1_threshold([heat, pristine], [truth, None])
    gated_f1 = (image_f1(heat >= pixel, truth) + 1.0) / 2
    ungated = (
        image_f1(heat >= alone, truth) + image_f1(pristine >= alone, np.zeros_like(truth))
    ) / 2
    assert gated_f1 > ungated


def test_a_score_below_the_image_threshold_empties_the_mask() -> None:
    image, mask = _bright_square()
    localizer = BrightnessLocalizer(gain=0.5).fit([image], [mask])
    localizer.threshold_, localizer.image_threshold_ = 0.2, 0.5
    result = localizer.localize(image)
    assert result.score < 0.5 and not result.mask.any() and result.regions == []
    assert result.summary()["image_threshold"] == 0.5
    localizer.image_threshold_ = None
    assert localizer.localize(image).mask.any()


def test_detectors_command_lists_localizers_and_bundled_localizer_models() -> None:
    from typer.testing import CliRunner

    from fakescope.cli.main import app

    result = CliRunner().invoke(app, ["detectors"])
    assert result.exit_code == 0
    assert "localizer:segmentation\t" in result.output
    assert "localizer-model:segmentation-default\t" in result.output


def test_every_bundled_localizer_loads_with_calibrated_thresholds() -> None:
    from fakescope.localizers import (
        FIELD_LOCALIZER,
        bundled_localizers_dir,
        list_bundled_localizers,
        load_localizer,
    )

    names = list_bundled_localizers()
    assert {"segmentation-default", FIELD_LOCALIZER, "warp-flow-default"} <= set(names)
    for name in names:
        assert (bundled_localizers_dir() / name / "weights.safetensors").is_file(), name
        try:
            localizer = load_localizer(name)
        except ImportError:
            continue  # its extra (torch, OpenCV) is not installed here
        assert 0.0 < localizer.threshold < 1.0, name
