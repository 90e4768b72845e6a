"""Localization metrics against hand-computed values, and the streaming evaluation runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fakescope.data.benchmark_splits import LocalizationItem
from fakescope.data.perturb import parse_spec
from fakescope.evaluation.localization import (
    DEFAULT_LOCALIZATION_SUITE,
    LocalizationMetrics,
    evaluate_localizer,
    image_iou,
    prepare_item,
    resolve_localization_perturbations,
    select_items,
)
from fakescope.localizers.base import Localizer


def test_iou_and_f1_conventions() -> None:
    truth = np.array([[1, 1, 0, 0]], dtype=bool)
    assert image_iou(np.array([[1, 0, 1, 0]], dtype=bool), truth) == pytest.approx(1 / 3)
    assert image_iou(truth, truth) == 1.0
    empty = np.zeros((1, 4), dtype=bool)
    assert image_iou(empty, empty) == 1.0  # pristine, nothing flagged
    assert image_iou(np.array([[0, 0, 0, 1]], dtype=bool), empty) == 0.0  # pristine, flagged
    assert image_iou(empty, truth) == 0.0  # tampered, nothing found


def hand_made() -> LocalizationMetrics:
    """Four 2x4 images; the expected values are worked out in the comments."""
    metrics = LocalizationMetrics(0.5, pixel_samples=1000, seed=0)
    # A (splice): flags (0,0) right and (0,2) wrong, misses (0,1): F1 2/4 = 0.5, IoU 1/3.
    metrics.add(
        np.array([[0.9, 0.4, 0.6, 0.1], [0.2, 0.0, 0.3, 0.1]]),
        np.array([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool),
        "splice",
        score=0.9,
    )
    # B (copymove): exact, F1 1, IoU 1.
    metrics.add(
        np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.8, 0.7]]),
        np.array([[0, 0, 0, 0], [0, 0, 1, 1]], dtype=bool),
        "copymove",
        score=0.8,
    )
    # C (pristine): one pixel flagged, F1 0, IoU 0; a high image score.
    heat_c = np.full((2, 4), 0.1)
    heat_c[1, 1] = 0.55
    metrics.add(heat_c, None, "pristine", score=0.85)
    # D (pristine): nothing flagged, F1 1, IoU 1.
    metrics.add(np.full((2, 4), 0.2), np.zeros((2, 4), dtype=bool), "pristine", score=0.2)
    return metrics


def test_hand_computed_metrics() -> None:
    result = hand_made().result()
    overall = result["overall"]
    assert (overall["n_tampered"], overall["n_pristine"]) == (2, 2)
    assert overall["f1_all"] == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    assert overall["f1_tampered"] == pytest.approx(0.75)
    assert overall["f1_pristine"] == pytest.approx(0.5)
    assert overall["iou_all"] == pytest.approx((1 / 3 + 1 + 0 + 1) / 4)
    assert overall["iou_tampered"] == pytest.approx((1 / 3 + 1) / 2)
    assert overall["iou_pristine"] == pytest.approx(0.5)
    # Scores ranked A(T) 0.9, C(P) 0.85, B(T) 0.8, D(P) 0.2: AP = (1 + 2/3) / 2.
    assert overall["image_ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert overall["image_tpr"] == 1.0 and overall["image_fpr"] == 0.5
    assert overall["pristine_flagged_fraction"] == pytest.approx((1 / 8 + 0) / 2)
    # Pixels: positives 0.9, 0.4 (A), 0.8, 0.7 (B) against 28 negatives, of which only
    # 0.6 and 0.55 beat 0.4: (28 + 26 + 28 + 28) / (4 * 28).
    assert overall["n_pixels"] == 32
    assert overall["pixel_auc"] == pytest.approx(110 / 112)

    kinds = result["kinds"]
    assert set(kinds) == {"splice", "copymove"}  # pristine is not a kind of its own
    splice, copymove = kinds["splice"], kinds["copymove"]
    # Each kind: its tampered images with *every* pristine image.
    assert (splice["n_tampered"], splice["n_pristine"]) == (1, 2)
    assert splice["f1_all"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert splice["f1_tampered"] == pytest.approx(0.5)
    assert splice["f1_pristine"] == pytest.approx(0.5)
    assert splice["image_ap"] == pytest.approx(1.0)  # A 0.9 above C 0.85 and D 0.2
    assert copymove["image_ap"] == pytest.approx(0.5)  # B 0.8 below C 0.85
    assert copymove["f1_all"] == pytest.approx((1 + 0 + 1) / 3)
    # copymove pixels: 0.8 and 0.7 above all 6 + 8 + 8 negatives of B, C and D.
    assert copymove["pixel_auc"] == pytest.approx(1.0)
    assert result["n_images"] == 4 and result["n_errors"] == 0


def test_only_one_class_leaves_threshold_free_metrics_empty() -> None:
    metrics = LocalizationMetrics(0.5)
    metrics.add(np.full((4, 4), 0.1), None, "pristine", score=0.1)
    overall = metrics.result()["overall"]
    assert overall["pixel_auc"] is None and overall["image_ap"] is None
    assert overall["f1_tampered"] is None and overall["f1_all"] == 1.0
    assert metrics.result()["kinds"] == {}


def test_predicted_mask_overrides_the_threshold() -> None:
    metrics = LocalizationMetrics(0.5)
    truth = np.array([[1, 0]], dtype=bool)
    outcome = metrics.add(
        np.array([[0.9, 0.9]]), truth, "splice", score=0.9, predicted=truth.copy()
    )
    assert outcome.f1 == 1.0 and outcome.iou == 1.0


def test_pixel_subsample_is_bounded_and_seeded() -> None:
    rng = np.random.default_rng(1)
    truth = np.zeros((200, 200), dtype=bool)
    truth[50:120, 60:150] = True
    heat = np.clip(truth * 0.4 + rng.uniform(0, 0.6, truth.shape), 0, 1)
    pristine = rng.uniform(0, 0.6, (100, 100))

    def run(seed: int) -> dict[str, Any]:
        metrics = LocalizationMetrics(0.5, pixel_samples=500, seed=seed)
        metrics.add(heat, truth, "splice", score=0.9)
        metrics.add(pristine, None, "pristine", score=0.3)
        assert all(sample.size <= 500 for sample in metrics.heat_samples)
        return metrics.result()["overall"]

    first, again, other = run(7), run(7), run(8)
    assert first["n_pixels"] == 1000
    assert first["pixel_auc"] == again["pixel_auc"]
    assert first["pixel_auc"] != other["pixel_auc"]
    assert 0.7 < first["pixel_auc"] < 1.0
    with pytest.raises(ValueError):
        LocalizationMetrics(0.5).add(heat, truth[:10], "splice", score=0.5)


def test_default_suite_reuses_robustness_specs() -> None:
    assert DEFAULT_LOCALIZATION_SUITE[0] == "clean"
    assert {"jpeg:90", "jpeg:75", "jpeg:50", "resize:0.5", "blur:1"} <= set(
        DEFAULT_LOCALIZATION_SUITE
    )
    assert any(spec.startswith("social:") for spec in DEFAULT_LOCALIZATION_SUITE)
    for spec in DEFAULT_LOCALIZATION_SUITE[1:]:
        parse_spec(spec)
    assert resolve_localization_perturbations([]) == list(DEFAULT_LOCALIZATION_SUITE)
    assert resolve_localization_perturbations(["clean", "jpeg:75", "default"])[:2] == [
        "clean",
        "jpeg:75",
    ]
    assert "blur:3" in resolve_localization_perturbations(["blur"])  # a robustness sweep
    with pytest.raises(ValueError):
        resolve_localization_perturbations(["jpg:7"])


# ------------------------------------------------------------------ the streaming runner


class BlueLocalizer(Localizer):
    """Heat = how much bluer than red a pixel is; records the JPEG tables it is given."""

    name = "test-blue"

    def __init__(self) -> None:
        self.tables_seen: list[bool] = []

    def fit(self, images: Any, masks: Any, on_progress: Any = None) -> BlueLocalizer:
        return self

    def predict_heatmap(self, image: np.ndarray, *, jpeg_quantization: Any = None) -> np.ndarray:
        self.tables_seen.append(jpeg_quantization is not None)
        blue, red = image[..., 2].astype(np.float32), image[..., 0].astype(np.float32)
        return np.clip((blue - red) / 200.0, 0.0, 1.0)

    def _weights(self) -> dict[str, np.ndarray]:
        return {}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        pass


def write_items(root: Path) -> list[LocalizationItem]:
    """Two forged images (a blue square, its 0/255 mask), one pristine, one unreadable."""
    root.mkdir()
    items = []
    for i, (y, x) in enumerate(((8, 8), (30, 20))):
        pixels = np.full((64, 64, 3), 120, dtype=np.uint8)
        pixels[y : y + 24, x : x + 24] = (20, 40, 230)
        mask = np.zeros((64, 64), dtype=np.uint8)
        mask[y : y + 24, x : x + 24] = 255
        Image.fromarray(pixels).save(root / f"f{i}.png")
        Image.fromarray(mask).save(root / f"f{i}.mask.png")
        items.append(
            LocalizationItem(root / f"f{i}.png", "splice", f"f{i}", root / f"f{i}.mask.png")
        )
    Image.fromarray(np.full((64, 64, 3), 120, dtype=np.uint8)).save(root / "p.png")
    items.append(LocalizationItem(root / "p.png", "pristine", "p"))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    items.append(LocalizationItem(root / "broken.png", "pristine", "q"))
    return items


@pytest.mark.parametrize(
    ("spec", "min_f1"),
    [("clean", 1.0), ("resize:0.5", 0.9), ("rotate:20:expand", 0.85), ("crop:0.7", 0.95)],
)
def test_masks_follow_geometric_perturbations(tmp_path: Path, spec: str, min_f1: float) -> None:
    localizer = BlueLocalizer()
    result = evaluate_localizer(localizer, write_items(tmp_path / "items"), spec, seed=3)
    assert result["spec"] == spec
    assert result["n_images"] == 3 and result["n_errors"] == 1  # the broken file is counted
    overall = result["overall"]
    # A misaligned mask would drop F1 far below this (or fail on the shape).
    assert overall["f1_tampered"] >= min_f1 - 1e-9
    assert overall["f1_pristine"] == 1.0


def test_jpeg_tables_of_the_perturbed_file_reach_the_localizer(tmp_path: Path) -> None:
    items = write_items(tmp_path / "items")[:3]
    localizer = BlueLocalizer()
    evaluate_localizer(localizer, items, "clean")
    assert localizer.tables_seen == [False] * 3  # PNGs
    localizer.tables_seen.clear()
    evaluate_localizer(localizer, items, "jpeg:75")
    assert localizer.tables_seen == [True] * 3
    localizer.tables_seen.clear()
    evaluate_localizer(localizer, items, "jpeg:75,resize:0.5")  # no longer that JPEG's grid
    assert localizer.tables_seen == [False] * 3


def test_runner_perturbation_is_seeded_per_image(tmp_path: Path) -> None:
    item = write_items(tmp_path / "items")[0]
    chain = parse_spec("noise:5,crop:0.6-0.9")
    first, again = (prepare_item(item, chain, 0, "noise") for _ in range(2))
    np.testing.assert_array_equal(first.pixels, again.pixels)
    np.testing.assert_array_equal(first.truth, again.truth)
    other = prepare_item(item, chain, 1, "noise")
    assert other.pixels.shape != first.pixels.shape or (other.pixels != first.pixels).any()
    assert first.truth.shape == first.pixels.shape[:2] and first.truth.dtype == bool


def test_select_items_caps_each_kind(tmp_path: Path) -> None:
    items = [LocalizationItem(Path(f"{k}{i}.png"), k, f"{k}{i}") for k in "ab" for i in range(5)]
    items.append(LocalizationItem(Path("p.png"), "pristine", "p"))
    chosen = select_items(items, 2, seed=0)
    assert [item.kind for item in chosen].count("a") == 2
    assert [item.kind for item in chosen].count("pristine") == 1
    assert select_items(items, 2, seed=0) == chosen
    assert select_items(items, None) == items
