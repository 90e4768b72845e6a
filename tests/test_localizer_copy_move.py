"""Copy-move matcher: a rotated, scaled copy in a textured image is found, with its source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from fakescope.calibration.pixel import image_f1
from fakescope.localizers import create, load_localizer

pytest.importorskip("cv2")

from fakescope.data.forge import FORGERIES


def textured(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Blobs at several scales: rich in SIFT keypoints, unlike a flat synthetic field."""
    field = sum(
        gaussian_filter(rng.normal(size=(size, size, 3)), (sigma, sigma, 0)) * (sigma * 25)
        for sigma in (1.5, 3.0, 6.0)
    )
    noisy = field + 128 + rng.normal(size=(size, size, 3)) * 2
    return np.clip(noisy, 0, 255).astype(np.uint8)


def forged(seed: int, **params: float):
    rng = np.random.default_rng(seed)
    image = textured(rng)
    return FORGERIES["copymove"].forge(image, rng, **params)


@pytest.mark.parametrize(("seed", "angle", "scale"), [(0, 20.0, 1.15), (2, -35.0, 0.85)])
def test_rotated_scaled_copy_is_found(seed: int, angle: float, scale: float) -> None:
    forgery = forged(seed, angle_deg=angle, scale=scale)
    target, source = forgery.mask, forgery.extra_masks["copymove-source"]
    result = create("copy-move").localize(forgery.pixels)
    assert result.heatmap.shape == target.shape
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    assert image_f1(result.mask, target | source) > 0.6
    assert result.score > 0.5
    roles = {region["role"]: region for region in result.regions}
    assert set(roles) == {"source", "target"}
    # The boxes land on the right regions: the copy's target is the one that was resampled.
    for role, truth in (("source", source), ("target", target)):
        y0, x0, y1, x1 = roles[role]["bbox"]
        box = np.zeros_like(truth)
        box[y0:y1, x0:x1] = True
        assert (box & truth).sum() > 0.7 * truth.sum()
    affine = np.array(result.details["copies"][0]["affine_source_to_target"])
    assert np.hypot(affine[0, 0], affine[1, 0]) == pytest.approx(scale, abs=0.05)


def test_pristine_textured_image_gives_an_empty_mask() -> None:
    for seed in (10, 11, 12):
        result = create("copy-move").localize(textured(np.random.default_rng(seed)))
        assert result.mask.mean() < 0.005
        assert result.regions == [] or all(r["pixels"] < 300 for r in result.regions)


def test_big_image_is_analysed_downscaled() -> None:
    import cv2

    forgery = forged(0, angle_deg=10.0, scale=1.0)
    size = (1000, 1000)  # 4x: matched back at 256 px with max_side=256

    def enlarge(values: np.ndarray, interpolation: int) -> np.ndarray:
        return cv2.resize(values, size, interpolation=interpolation)

    big = enlarge(forgery.pixels, cv2.INTER_CUBIC)[:, :960]
    truth = forgery.mask | forgery.extra_masks["copymove-source"]
    truth = enlarge(truth.astype(np.uint8), cv2.INTER_NEAREST).astype(bool)[:, :960]
    localizer = create("copy-move", max_side=256)
    result = localizer.localize(big)
    assert result.heatmap.shape == big.shape[:2]
    assert image_f1(result.mask, truth) > 0.5
    for region in result.regions:  # boxes in the image's own pixels, not the analysed ones
        y0, x0, y1, x1 = region["bbox"]
        assert 0 <= y0 < y1 <= 1000 and 0 <= x0 < x1 <= 960


def test_fit_is_a_validating_no_op(tmp_path: Path) -> None:
    image = textured(np.random.default_rng(4), 64)
    localizer = create("copy-move")
    assert localizer.fit([image], [None]) is localizer
    with pytest.raises(ValueError):
        localizer.fit([image], [])
    with pytest.raises(ValueError, match="ratio"):
        create("copy-move", ratio=1.5)
    loaded = load_localizer(localizer.save(tmp_path / "cm"))
    assert loaded.get_params() == localizer.get_params()
