"""Warp detection and reversal: the flow inverse, the grid cue, a tiny trained network."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from fakescope.data.forge import FORGERIES  # noqa: E402
from fakescope.errors import ModelError  # noqa: E402
from fakescope.localizers import create, load_localizer  # noqa: E402
from fakescope.localizers.warp_flow.localizer import (  # noqa: E402
    WarpFlowLocalizer,
    invert_flow,
    psnr,
    shrink_flow,
    unwarp,
)
from fakescope.localizers.warp_flow.network import (  # noqa: E402
    flow_features,
    grid_offset,
    run_network,
    run_network_views,
)
from fakescope.localizers.warp_flow.views import (  # noqa: E402
    DIHEDRAL_VIEWS,
    from_view,
    merge_views,
    to_view,
)

TINY = {"width": 4, "depth": 2, "cell": 4, "steps": 4, "batch_size": 2, "crop_size": 64}


def _photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth structure plus grain, JPEG-compressed at quality 85: a block grid at offset 0."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    pixels = np.clip(smooth + cv2.GaussianBlur(grain, (0, 0), 0.8), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def _warp(image: np.ndarray, seed: int, peak: float | None = None):
    return FORGERIES["warp"].forge(image, np.random.default_rng(seed), max_displacement_px=peak)


@pytest.fixture(scope="module")
def trained() -> WarpFlowLocalizer:
    images, masks, flows = [], [], []
    for seed in range(3):
        image = _photo_like(96, 96, seed)
        forgery = _warp(image, seed)
        images += [forgery.pixels, image]
        masks += [forgery.mask, None]
        flows += [forgery.flow, None]
    return WarpFlowLocalizer(**TINY).fit(images, masks, flows=flows)


# -- the inverse, independent of any learning ------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_inverting_the_true_flow_restores_the_original(seed: int) -> None:
    original = _photo_like(192, 160, seed)
    forgery = _warp(original, seed)
    before = psnr(forgery.pixels, original)
    restored = unwarp(forgery.pixels, forgery.flow)
    gain = psnr(restored, original) - before
    assert gain > 15.0, f"gain {gain:.2f} dB"
    # The exact inverse beats the first-order one, original(p) ~ forged(p - f(p)).
    first_order = psnr(_remap(forgery.pixels, -forgery.flow), original) - before
    assert gain > first_order


def _remap(image: np.ndarray, backward: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(
        image,
        xx + backward[..., 1],
        yy + backward[..., 0],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )


def test_inverse_satisfies_its_fixed_point_equation() -> None:
    flow = _warp(_photo_like(128, 128), 5).flow
    inverse = invert_flow(flow)
    # g(q) + f(q + g(q)) = 0: warping back then forth lands where it started.
    residual = inverse + _remap(flow, inverse)
    assert np.abs(residual).max() < 0.05
    # A strong pinch compresses content (|grad f| > 1): plain fixed-point iteration fails there.
    strong = _warp(_photo_like(192, 160, 2), 2, peak=10.0).flow
    residual = np.hypot(
        *(invert_flow(strong) + _remap(strong, invert_flow(strong))).transpose(2, 0, 1)
    )
    assert np.percentile(residual, 99) < 0.1
    assert np.abs(inverse).max() == pytest.approx(np.abs(flow).max(), rel=0.2)


def test_inversion_and_unwarp_in_strips_match_one_window() -> None:
    original = _photo_like(160, 128, 9)
    forgery = _warp(original, 9, peak=10.0)
    whole = invert_flow(forgery.flow, strip_rows=10_000)
    strips = invert_flow(forgery.flow, strip_rows=16)
    np.testing.assert_allclose(strips, whole, atol=1e-3)
    restored = unwarp(forgery.pixels, forgery.flow, strip_rows=16)
    reference = unwarp(forgery.pixels, forgery.flow, strip_rows=10_000)
    assert np.abs(restored.astype(int) - reference).max() <= 1


def test_zero_and_sub_threshold_flow_leave_the_image_byte_identical() -> None:
    image = _photo_like(80, 112)
    zero = np.zeros((80, 112, 2), np.float32)
    assert np.array_equal(unwarp(image, zero), image)
    tiny = np.full((80, 112, 2), 0.2, np.float32)
    assert not shrink_flow(tiny, 0.4).any()
    localizer = WarpFlowLocalizer(flow_threshold_px=0.4)
    assert np.array_equal(localizer.undo_with_flow(image, tiny), image)


def test_pixels_outside_the_predicted_warp_keep_their_bytes() -> None:
    image = _photo_like(128, 128, 7)
    forgery = _warp(image, 7, peak=8.0)
    restored = unwarp(forgery.pixels, forgery.flow)
    untouched = ~_dilate(np.hypot(*forgery.flow.transpose(2, 0, 1)) > 0, 20)
    assert untouched.any()
    assert np.array_equal(restored[untouched], forgery.pixels[untouched])


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


# -- the grid cue ----------------------------------------------------------------------------
def test_grid_offset_follows_a_crop() -> None:
    image = _photo_like(160, 160, 3)
    assert grid_offset(image) == (0, 0)
    assert grid_offset(image[3:, 5:]) == (5, 3)


@pytest.mark.parametrize("shift", [1.0, 2.0, -3.0])
def test_demodulated_grid_phase_reads_a_uniform_shift(shift: float) -> None:
    image = _photo_like(160, 160, 4)
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shifted = cv2.remap(image, xx + shift, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    features = flow_features(shifted)
    angle = math.atan2(features[5].mean(), features[4].mean())
    assert -angle * 8 / (2 * math.pi) == pytest.approx(shift, abs=1.0)


# -- the localizer ---------------------------------------------------------------------------
def test_registry_creates_the_warp_localizer() -> None:
    assert isinstance(create("warp-flow", **TINY), WarpFlowLocalizer)


def test_localize_shapes_and_ranges(trained: WarpFlowLocalizer) -> None:
    image = _warp(_photo_like(96, 128, 9), 9).pixels
    result = trained.localize(image)
    assert result.heatmap.shape == (96, 128) and result.heatmap.dtype == np.float32
    assert 0.0 <= result.heatmap.min() <= result.heatmap.max() <= 1.0
    assert result.mask.dtype == bool and 0.0 <= result.score <= 1.0
    assert result.flow is not None and result.flow.shape == (96, 128, 2)
    assert result.flow.dtype == np.float32 and np.isfinite(result.flow).all()
    assert result.method == "warp-flow"
    assert trained.fit_info_["warps_with_flow"] == 3
    assert trained.fit_info_["pristine_images"] == 3
    undone = trained.undo(image)
    assert undone.shape == image.shape and undone.dtype == np.uint8
    flow = trained.predict_flow(image)
    assert np.array_equal(flow, result.flow)


def test_save_load_round_trip(trained: WarpFlowLocalizer, tmp_path: Path) -> None:
    image = _photo_like(96, 96, 11)
    trained.threshold_ = 0.3
    trained.save(tmp_path / "warp")
    loaded = load_localizer(tmp_path / "warp")
    assert isinstance(loaded, WarpFlowLocalizer) and loaded.threshold == 0.3
    np.testing.assert_allclose(loaded.predict_flow(image), trained.predict_flow(image), atol=1e-5)
    np.testing.assert_allclose(
        loaded.predict_heatmap(image), trained.predict_heatmap(image), atol=1e-6
    )


def test_big_non_square_image_is_tiled(trained: WarpFlowLocalizer) -> None:
    localizer = WarpFlowLocalizer(**{**TINY, "tile": 128, "overlap": 32})
    localizer.network_ = trained.network_
    image = _photo_like(300, 520, 12)
    result = localizer.localize(image)
    assert result.heatmap.shape == (300, 520) and result.flow.shape == (300, 520, 2)
    assert np.isfinite(result.flow).all()
    assert localizer.undo(image).shape == image.shape


def test_unfitted_localizer_refuses_to_predict() -> None:
    with pytest.raises(ModelError):
        WarpFlowLocalizer(**TINY).predict_flow(_photo_like(64, 64))


@pytest.mark.parametrize(
    "params",
    [
        {"width": 0},
        {"depth": 0},
        {"crop_size": 100},
        {"learning_rate": 0.0},
        {"synthetic_share": 0.9, "pristine_share": 0.2},
        {"flow_threshold_px": -1.0},
        {"tile": 100},
        {"overlap": 300},
        {"threads": -1},
        {"mask_loss_weight": -1.0},
        {"test_time_views": 3},
        {"test_time_views": True},
        {"view_combine": "max"},
    ],
)
def test_bad_params_raise_value_error(params: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        create("warp-flow", **params)


def test_fit_rejects_mismatched_flows() -> None:
    image = _photo_like(96, 96)
    forgery = _warp(image, 0)
    localizer = WarpFlowLocalizer(**TINY)
    with pytest.raises(ValueError):
        localizer.fit([forgery.pixels], [forgery.mask], flows=[forgery.flow[:10]])
    with pytest.raises(ValueError):
        localizer.fit([forgery.pixels], [forgery.mask], flows=[])


def test_resampling_cues_tell_stretched_from_compressed_content() -> None:
    from fakescope.localizers.warp_flow.network import (
        IN_CHANNELS,
        RESAMPLING_CHANNELS,
        resampling_cues,
    )

    rng = np.random.default_rng(0)
    noise = np.clip(rng.normal(128, 25, (128, 256, 3)), 0, 255).astype(np.float32)
    xs = np.arange(256, dtype=np.float32)
    # Sampling positions: slope 0.6 (content stretched) on columns 64-127, 1.4 (compressed)
    # on 128-191, continuous, identity elsewhere.
    positions = np.where(
        xs < 64,
        xs,
        np.where(xs < 128, 64 + 0.6 * (xs - 64), np.where(xs < 192, 102.4 + 1.4 * (xs - 128), xs)),
    )
    map_x = np.broadcast_to(positions[None, :], (128, 256)).astype(np.float32)
    map_y = np.broadcast_to(np.arange(128, dtype=np.float32)[:, None], (128, 256)).copy()
    warped = cv2.remap(noise, map_x.copy(), map_y, cv2.INTER_LINEAR).round().astype(np.uint8)
    cues = resampling_cues(warped)
    assert cues.shape == (RESAMPLING_CHANNELS, 128, 256)
    horizontal = cues[0, 16:-16]
    stretched, compressed = horizontal[:, 76:116].mean(), horizontal[:, 140:180].mean()
    untouched = np.concatenate([horizontal[:, 8:52], horizontal[:, 204:248]], axis=1).mean()
    assert stretched > untouched + 0.2 and compressed < stretched - 0.2
    assert abs(cues[1, 16:-16, 8:52].mean()) < 0.1  # vertical: nothing changed along columns
    assert flow_features(warped, (0, 0), True).shape[0] == IN_CHANNELS + RESAMPLING_CHANNELS
    assert flow_features(warped).shape[0] == IN_CHANNELS


def test_warm_start_goes_on_training_the_same_network(trained: WarpFlowLocalizer) -> None:
    import copy

    rng = np.random.default_rng(3)
    image = _photo_like(96, 96, seed=3)
    forgery = FORGERIES["warp"].forge(image, rng)
    again = copy.deepcopy(trained)
    network = again.network_
    before = {k: v.clone() for k, v in network.state_dict().items()}
    again.set_params(warm_start=True, steps=2)
    again.fit([forgery.pixels, image], [forgery.mask, None], flows=[forgery.flow, None])
    assert again.network_ is network
    changed = [k for k, v in network.state_dict().items() if not torch.equal(v, before[k])]
    assert changed
    fresh = copy.deepcopy(trained).set_params(steps=2)
    fresh.fit([forgery.pixels, image], [forgery.mask, None], flows=[forgery.flow, None])
    assert fresh.network_ is not trained.network_


# -- test-time views ---------------------------------------------------------------------------
def _image_frame(pixels: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    """Undo ``to_view`` on an image (no flow channels): the test's own, independent inverse."""
    transpose, flip_rows, flip_cols = view
    if transpose:
        pixels = pixels.transpose(1, 0, 2)
    if flip_rows:
        pixels = pixels[::-1]
    if flip_cols:
        pixels = pixels[:, ::-1]
    return np.ascontiguousarray(pixels)


@pytest.mark.parametrize("view", DIHEDRAL_VIEWS)
def test_a_flow_found_in_a_view_undoes_the_warp_in_the_image(
    view: tuple[bool, bool, bool],
) -> None:
    # Warp the view of a (non-square) photo, bring the forgery back to the image's frame: the
    # view's true flow, mapped back by from_view, must undo it there.
    original = _photo_like(96, 128, 4)
    seen, _ = to_view(original, (0, 0), view)
    forgery = _warp(seen, 4, peak=8.0)
    forged = _image_frame(forgery.pixels, view)
    flow = from_view(forgery.flow, view)
    assert flow.shape == (96, 128, 2)
    before = psnr(forged, original)
    assert psnr(unwarp(forged, flow), original) - before > 15.0
    if any(view):
        # Moving the flow without turning its components (what a naive mapping does) fails.
        naive = _image_frame(forgery.flow, view)
        assert psnr(unwarp(forged, naive), original) - before < 5.0


@pytest.mark.parametrize("view", DIHEDRAL_VIEWS)
def test_a_view_moves_the_jpeg_grid_offset_with_the_pixels(view: tuple[bool, bool, bool]) -> None:
    cropped = np.ascontiguousarray(_photo_like(136, 120, 2)[3:, 5:])
    offset = grid_offset(cropped)
    assert offset == (5, 3)
    seen, moved = to_view(cropped, offset, view)
    assert grid_offset(seen) == moved


def test_merging_views(trained: WarpFlowLocalizer) -> None:
    image = _photo_like(96, 80, 3)
    network = trained.network_
    single = run_network_views(network, image, (0, 0), True, views=1)
    assert np.array_equal(single, run_network(network, image, (0, 0), True))
    eight = [
        from_view(run_network(network, *to_view(image, (0, 0), v), True), v) for v in DIHEDRAL_VIEWS
    ]
    median = run_network_views(network, image, (0, 0), True, views=8, combine="median")
    np.testing.assert_allclose(median, np.median(np.stack(eight), axis=0), atol=1e-6)
    mean = run_network_views(network, image, (0, 0), True, views=4, combine="mean")
    np.testing.assert_allclose(mean, np.mean(np.stack(eight[:4]), axis=0), atol=1e-6)
    with pytest.raises(ValueError):
        merge_views([])
    with pytest.raises(ValueError):
        run_network_views(network, image, views=3)


def test_localizer_with_views_predicts_through_tiles(trained: WarpFlowLocalizer) -> None:
    image = _photo_like(200, 168, 6)
    trained.set_params(test_time_views=8, view_combine="median", tile=64, overlap=16)
    try:
        flow = trained.predict_flow(image)
        heat = trained.predict_heatmap(image)
    finally:
        trained.set_params(test_time_views=1, tile=512, overlap=64)
    assert flow.shape == (200, 168, 2) and heat.shape == (200, 168)
    assert np.isfinite(flow).all() and ((heat >= 0) & (heat <= 1)).all()


def test_localize_cli_undo_views(trained: WarpFlowLocalizer, tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from fakescope.cli.main import app

    model = trained.save(tmp_path / "warp")
    Image.fromarray(_warp(_photo_like(96, 96, 8), 8).pixels).save(tmp_path / "w.png")
    out = tmp_path / "out"
    base = ["localize", str(tmp_path / "w.png"), "--out", str(out), "-l", str(model), "--undo"]
    result = CliRunner().invoke(app, [*base, "--undo-views", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (out / "w.unwarped.png").is_file()
    result = CliRunner().invoke(app, [*base, "--undo-views", "3", "--no-progress"])
    assert result.exit_code == 2
    assert "views must be one of" in " ".join(result.output.replace("│", " ").split())
