"""Segmentation localizer: tiny U-Nets trained on generated forgeries, JPEG cues, persistence."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from fakescope.errors import NotFittedError  # noqa: E402
from fakescope.features.jpeg_cues import JPEG_CUE_CHANNELS, jpeg_cue_channels  # noqa: E402
from fakescope.localizers import create  # noqa: E402
from fakescope.localizers.base import Localizer, top_share_mean  # noqa: E402
from fakescope.localizers.segmentation import SegmentationLocalizer  # noqa: E402
from fakescope.localizers.segmentation import localizer as localizer_module  # noqa: E402
from fakescope.localizers.segmentation.inputs import jpeg_round_trip  # noqa: E402

TINY = {"widths": [4, 8], "bayar_filters": 2, "batch_size": 8, "crop_size": 64, "threads": 1}


def textured(rng: np.random.Generator, height: int = 96, width: int = 96) -> np.ndarray:
    """A smooth colour gradient with blobs and mild noise: a photo stand-in."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            120 + 60 * np.sin(xx / rng.uniform(9, 20) + rng.uniform(0, 6)),
            110 + 50 * np.cos(yy / rng.uniform(9, 20) + rng.uniform(0, 6)),
            100 + 40 * np.sin((xx + yy) / rng.uniform(12, 25)),
        ],
        axis=-1,
    )
    return np.clip(base + rng.normal(0, 2.0, base.shape), 0, 255).astype(np.uint8)


def noisy_square(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paste a square of strong noise: an easy forgery a working network must find."""
    height, width = image.shape[:2]
    side = int(rng.integers(24, 40))
    top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + side, left : left + side] = True
    noisy = image.astype(np.float32) + rng.normal(0, 25.0, image.shape)
    forged = np.where(mask[..., None], np.clip(noisy, 0, 255), image).astype(np.uint8)
    return forged, mask


@pytest.fixture(scope="module")
def square_data() -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    rng = np.random.default_rng(1)
    images: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    for index in range(24):
        image = textured(rng)
        if index % 4 == 0:
            images.append(image)
            masks.append(None)
        else:
            forged, mask = noisy_square(rng, image)
            images.append(forged)
            masks.append(mask)
    return images, masks


@pytest.fixture(scope="module")
def trained(square_data: tuple[list[np.ndarray], list[np.ndarray | None]]) -> SegmentationLocalizer:
    images, masks = square_data
    params = {**TINY, "widths": [8, 16], "epochs": 14, "learning_rate": 1e-2, "on_the_fly": 8}
    return SegmentationLocalizer(**params).fit(images, masks)


def test_learns_an_easy_forgery(trained: SegmentationLocalizer) -> None:
    rng = np.random.default_rng(99)
    inside, outside = [], []
    for _ in range(6):
        forged, mask = noisy_square(rng, textured(rng))
        heat = trained.predict_heatmap(forged)
        inside.append(heat[mask].mean())
        outside.append(heat[~mask].mean())
    assert np.mean(inside) > np.mean(outside) + 0.2


def test_heatmap_shape_and_range_on_odd_sizes(trained: SegmentationLocalizer) -> None:
    image = textured(np.random.default_rng(3), 77, 131)
    heat = trained.predict_heatmap(image)
    assert heat.shape == (77, 131) and heat.dtype == np.float32
    assert 0.0 <= heat.min() <= heat.max() <= 1.0
    result = trained.localize(image)
    assert result.mask.shape == (77, 131) and 0.0 <= result.score <= 1.0
    assert result.method == "segmentation"


def test_large_non_square_image_is_tiled(
    trained: SegmentationLocalizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    original = localizer_module.tiled_map

    def counting(image: np.ndarray, fn, **kwargs):  # type: ignore[no-untyped-def]
        def wrapped(tile: np.ndarray) -> np.ndarray:
            calls.append(tile.shape[:2])
            return fn(tile)

        return original(image, wrapped, **kwargs)

    monkeypatch.setattr(localizer_module, "tiled_map", counting)
    small_tiles = SegmentationLocalizer(**{**trained.get_params(), "tile_size": 64})
    small_tiles.net_ = trained.net_
    image = textured(np.random.default_rng(4), 150, 290)
    heat = small_tiles.predict_heatmap(image)
    assert heat.shape == (150, 290) and np.isfinite(heat).all()
    assert len(calls) > 4 and max(max(shape) for shape in calls) < 150
    # Tiles see their own neighbourhood only, but the overlap blending keeps the map close to
    # the whole-image one.
    whole = trained.predict_heatmap(image)
    assert np.corrcoef(heat.ravel(), whole.ravel())[0, 1] > 0.8


def test_save_load_round_trip(trained: SegmentationLocalizer, tmp_path: Path) -> None:
    trained.threshold_ = 0.35
    trained.save(tmp_path / "model")
    assert (tmp_path / "model" / "weights.safetensors").is_file()
    restored = SegmentationLocalizer.load(tmp_path / "model")
    image = textured(np.random.default_rng(5), 100, 100)
    np.testing.assert_array_equal(restored.predict_heatmap(image), trained.predict_heatmap(image))
    assert restored.threshold == 0.35
    assert restored.get_params()["widths"] == [8, 16]


def test_bayar_constraint_holds_after_training(trained: SegmentationLocalizer) -> None:
    weight = trained.net_.bayar.weight.detach().numpy()
    centre = weight.shape[-1] // 2
    np.testing.assert_allclose(weight[:, :, centre, centre], -1.0)
    others = weight.sum(axis=(2, 3)) - weight[:, :, centre, centre]
    np.testing.assert_allclose(others, 1.0, atol=1e-5)


def test_jpeg_cues_nonzero_for_jpeg_zero_otherwise() -> None:
    image = textured(np.random.default_rng(6), 80, 72)
    assert not jpeg_cue_channels(image, None).any()
    decoded, tables = jpeg_round_trip(image, 50)
    cues = jpeg_cue_channels(decoded, tables)
    assert cues.shape == (80, 72, JPEG_CUE_CHANNELS)
    assert (cues[..., -1] == 1).all()
    # Decoded on its own grid, the JPEG fits its table; a pasted noisy (never quantized)
    # region does not, so its coefficients sit far from the multiples.
    rng = np.random.default_rng(7)
    forged = decoded.copy()
    patch = np.clip(decoded[16:48, 16:48] + rng.normal(0, 12, (32, 32, 3)), 0, 255)
    forged[16:48, 16:48] = patch.astype(np.uint8)
    low = jpeg_cue_channels(forged, tables)[..., 1]
    inside = np.zeros(low.shape, dtype=bool)
    inside[16:48, 16:48] = True
    assert low[inside].mean() > low[~inside].mean() + 0.2


def test_jpeg_tables_change_the_input_only_when_used(trained: SegmentationLocalizer) -> None:
    decoded, tables = jpeg_round_trip(textured(np.random.default_rng(8)), 70)
    plain = trained.predict_heatmap(decoded)
    with_tables = trained.predict_heatmap(decoded, jpeg_quantization=tables)
    assert not np.array_equal(plain, with_tables)
    ignoring = SegmentationLocalizer(**{**trained.get_params(), "use_jpeg_cues": False})
    ignoring.net_ = trained.net_
    np.testing.assert_array_equal(
        ignoring.predict_heatmap(decoded, jpeg_quantization=tables), plain
    )


def test_trains_on_benchmark_like_forgeries_with_jpeg_samples() -> None:
    """The on-the-fly forge path (splice, copy-move, inpaint) and JPEG samples run end to end."""
    rng = np.random.default_rng(9)
    images = [textured(rng, 128, 128) for _ in range(6)]
    masks: list[np.ndarray | None] = [None] * 6
    progress: list[tuple[int, int]] = []
    localizer = SegmentationLocalizer(
        **TINY, epochs=1, on_the_fly=10, jpeg_share=0.5, jpeg_source_share=0.5
    )
    localizer.fit(images, masks, on_progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (2, 2)
    assert localizer.predict_heatmap(images[0]).shape == (128, 128)


def test_warm_start_goes_on_training_the_same_network(trained: SegmentationLocalizer) -> None:
    rng = np.random.default_rng(11)
    images = [textured(rng) for _ in range(4)]
    again = SegmentationLocalizer(**{**trained.get_params(), "epochs": 1, "warm_start": True})
    # A copy, so the module's trained fixture stays as the other tests expect it.
    network = copy.deepcopy(trained.net_)
    again.net_ = network
    before = {k: v.clone() for k, v in network.state_dict().items()}
    again.fit(images, [None] * 4)
    assert again.net_ is network
    assert any(not torch.equal(before[k], v) for k, v in network.state_dict().items())
    fresh = SegmentationLocalizer(**{**trained.get_params(), "epochs": 1}).fit(images, [None] * 4)
    assert fresh.net_ is not trained.net_


@pytest.mark.parametrize(
    "params",
    [
        {"widths": []},
        {"widths": [8, 0]},
        {"crop_size": 60},
        {"epochs": 0},
        {"learning_rate": 0.0},
        {"jpeg_share": 1.5},
        {"bayar_filters": -1},
        {"tile_size": 100},
        {"score_top_share": 0.0},
        {"score_top_share": 1.5},
    ],
)
def test_bad_params_raise_value_error(params: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        create("segmentation", **params)


def test_unfitted_and_bad_training_input() -> None:
    localizer = SegmentationLocalizer(**TINY)
    image = textured(np.random.default_rng(10), 64, 64)
    with pytest.raises(NotFittedError):
        localizer.predict_heatmap(image)
    with pytest.raises(ValueError):
        localizer.fit([image], [np.zeros((10, 10), dtype=bool)])
    with pytest.raises(ValueError):
        localizer.fit([image[:40, :40]], [None])


def test_flip_average_is_the_mean_of_the_image_and_its_mirror(
    trained: SegmentationLocalizer,
) -> None:
    single = SegmentationLocalizer(**{**trained.get_params(), "flip_average": False})
    single.net_ = trained.net_
    averaged = SegmentationLocalizer(**{**trained.get_params(), "flip_average": True})
    averaged.net_ = trained.net_
    image = textured(np.random.default_rng(5), 64, 96)  # sides on the JPEG grid
    expected = 0.5 * (
        single.predict_heatmap(image)
        + single.predict_heatmap(np.ascontiguousarray(image[:, ::-1]))[:, ::-1]
    )
    np.testing.assert_allclose(averaged.predict_heatmap(image), expected, atol=1e-5)
    # Off the grid the tile is padded first, so the mirror still maps blocks onto blocks.
    odd = textured(np.random.default_rng(6), 61, 93)
    heat = averaged.predict_heatmap(odd)
    assert heat.shape == (61, 93) and 0.0 <= heat.min() <= heat.max() <= 1.0


def test_image_score_is_not_diluted_by_a_small_edit() -> None:
    heat = np.full((200, 200), 0.05, np.float32)
    heat[100:110, 100:112] = 0.95  # 120 px: 0.3 % of the map
    # The base class's hottest-1 % mean is mostly background here; the segmentation
    # localizer's hottest 0.2 % lies inside the edit.
    assert Localizer.image_score(SegmentationLocalizer(), heat) < 0.4
    assert SegmentationLocalizer().image_score(heat) == pytest.approx(0.95)
    assert SegmentationLocalizer(score_top_share=0.01).image_score(heat) < 0.4


def test_top_share_mean_of_a_huge_map_reads_a_strided_view() -> None:
    heat = np.zeros((3000, 2000), np.float32)
    heat[1000:1200, 600:800] = 1.0  # 0.67 % of the map
    assert top_share_mean(heat, 0.002) == pytest.approx(1.0)
    assert top_share_mean(heat, 0.01) == pytest.approx(0.67, abs=0.02)
    assert top_share_mean(np.zeros((1, 1), np.float32), 0.002) == 0.0


def test_perturbation_augmentation_moves_the_mask_with_the_image() -> None:
    localizer = SegmentationLocalizer(
        **{**TINY, "perturb_share": 1.0, "perturb_specs": ["resize:0.5", "jpeg:70-90"]}
    )
    chains = localizer._perturbations()
    image = textured(np.random.default_rng(11), 128, 128)
    mask = np.zeros((128, 128), dtype=bool)
    mask[32:64, 80:112] = True
    rng = np.random.default_rng(0)
    pixels, moved, tables = localizer._perturb(image, mask, None, chains[:1], rng)
    assert pixels.shape == (64, 64, 3) and moved.shape == (64, 64) and tables is None
    assert moved[16:32, 40:56].all() and moved.sum() == 16 * 16
    pixels, moved, tables = localizer._perturb(image, mask, None, chains[1:], rng)
    assert pixels.shape == image.shape and (moved == mask).all()
    assert tables is not None and 0 in tables  # a recompressed file's own tables
    # Smaller than a crop after the perturbation: the sample is left as it was.
    small = SegmentationLocalizer(**{**TINY, "crop_size": 96})
    same, kept, _ = small._perturb(image, mask, None, chains[:1], rng)
    assert same is image and kept is mask


def test_training_under_perturbations_runs_and_records_its_specs(
    square_data: tuple[list[np.ndarray], list[np.ndarray | None]], tmp_path: Path
) -> None:
    images, masks = square_data
    params = {**TINY, "epochs": 1, "on_the_fly": 4, "perturb_share": 0.5}
    localizer = SegmentationLocalizer(**params, perturb_specs=["blur:0.5-1.5", "jpeg:60-95"])
    localizer.fit(images[:8], masks[:8]).save(tmp_path / "robust")
    restored = SegmentationLocalizer.load(tmp_path / "robust")
    assert list(restored.get_params()["perturb_specs"]) == ["blur:0.5-1.5", "jpeg:60-95"]
    with pytest.raises(ValueError, match="perturb_specs"):
        SegmentationLocalizer(perturb_share=0.5).check_params()
    with pytest.raises(ValueError):
        SegmentationLocalizer(perturb_share=0.5, perturb_specs=["nosuch:1"]).check_params()
