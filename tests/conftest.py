"""Shared fixtures: small labelled datasets generated on the fly, never read from disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from fakescope.detectors import create
from fakescope.localizers.base import Localizer, check_images_masks


def natural_like(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A smooth random field plus sensor-like noise: a 1/f-ish stand-in for a photo."""
    field = sum(
        gaussian_filter(rng.normal(size=(size, size, 3)), (sigma, sigma, 0)) * (sigma * 20)
        for sigma in (1.0, 3.0, 8.0)
    )
    noisy = field + 128 + rng.normal(size=(size, size, 3)) * 3
    return np.clip(noisy, 0, 255).astype(np.uint8)


def upsampled_fake(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """Nearest-neighbour 2x upsampling: the periodic spectral trace CNN generators leave."""
    small = natural_like(rng, size // 2)
    return np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)


def make_images(n_per_class: int, seed: int = 0, size: int = 96) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = [natural_like(rng, size) for _ in range(n_per_class)]
    images += [upsampled_fake(rng, size) for _ in range(n_per_class)]
    labels = np.array([0] * n_per_class + [1] * n_per_class)
    return images, labels


def write_dataset(root: Path, n_per_class: int = 16, seed: int = 0, groups: int = 1) -> Path:
    """``root/real/*.png`` and ``root/fake/gen<k>/*.png``, file names ``<photo>_<tile>.png``."""
    rng = np.random.default_rng(seed)
    (root / "real").mkdir(parents=True)
    for i in range(n_per_class):
        Image.fromarray(natural_like(rng)).save(root / "real" / f"r{i}_0.png")
    for g in range(groups):
        folder = root / "fake" / f"gen{g}"
        folder.mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(upsampled_fake(rng)).save(folder / f"f{g}x{i}_0.png")
    return root


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "ds", n_per_class=16, groups=2)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> Path:
    from fakescope.pipeline.training import TrainingConfig, train_model

    model = train_model(dataset_dir, TrainingConfig(detector="spectral", params={}, seed=0))
    return model.save(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def few_shot_images() -> tuple[list, np.ndarray]:
    return make_images(10, seed=1)


@pytest.fixture
def fitted_spectral(few_shot_images: tuple[list, np.ndarray]):
    images, labels = few_shot_images
    return create("spectral").fit(images, labels)


class BrightLocalizer(Localizer):
    """Heat = brightness; counts its calls, so remembering a result is visible."""

    name = "test-bright"

    def __init__(self) -> None:
        self.calls = 0
        self.threshold_, self.image_threshold_ = 0.5, 0.5

    def fit(self, images: Any, masks: Any, on_progress: Any = None) -> BrightLocalizer:
        check_images_masks(images, masks)
        return self

    def predict_heatmap(self, image: np.ndarray, *, jpeg_quantization: Any = None) -> np.ndarray:
        self.calls += 1
        return (image.astype(np.float32).mean(axis=2) / 255.0).astype(np.float32)

    def _weights(self) -> dict[str, np.ndarray]:
        return {}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        pass
